"""The quantizer table: a frozen result object and the ``lloydmax.table/1`` format."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from . import _kernels as K
from ._version import __version__
from .errors import InvalidTableError

__all__ = ["QuantizerTable", "SCHEMA", "CONVENTIONS", "table_from_dict"]

SCHEMA = "lloydmax.table/1"
CONVENTIONS = ("none", "hwgq", "round", "deadzone")
KINDS = ("uniform", "nonuniform")


def _frozen_array(values) -> np.ndarray:
    arr = np.array(values, dtype=np.float64)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class QuantizerTable:
    """A scalar quantizer and how it was obtained.

    The rule (REFERENCES.md): ``x`` maps to ``levels[i]`` where
    ``thresholds[i-1] < x <= thresholds[i]`` (a value on a threshold goes to the lower
    level).

    Attributes
    ----------
    levels, thresholds : ndarray
        Sorted reconstruction levels (``n_levels``) and interior thresholds
        (``n_levels - 1``); read-only.
    step : float or None
        Spacing of a uniform table; ``None`` for a non-uniform one.
    bits, n_levels : int
        ``n_levels`` levels, indexed with ``bits = ceil(log2(n_levels))`` bits.
    distribution : str
        Registry name (``"empirical"`` for tables fitted to data).
    params : dict
        The distribution's parameters, in the table's own units.
    convention : str
        ``none``, or a half-wave convention: ``hwgq``, ``round``, ``deadzone``.
    kind : str
        ``uniform`` or ``nonuniform``.
    mse : float
        E[(Q(X) - X)^2] over the whole distribution (ReLU zeros included).
    sqnr_db : float
        ``10 log10(E[X^2] / mse)`` (+inf when the MSE is 0; written as null).
    entropy_bits : float or None
        Entropy of the output index, -sum P_i log2 P_i (None when a loaded file lacks it).
    residual : float
        Non-uniform: the largest violation of the centroid and midpoint conditions,
        relative to the level span ``levels[-1] - levels[0]``.  Uniform: the size of the
        last Newton correction of (offset, step) relative to the step.
    iterations : int
        Solver iterations.
    converged : bool
        ``residual`` met the tolerance.
    scale : float
        The scale of the distribution (its ``std``; ``scale`` for Laplace, the width for
        uniform): the table is the unit table times ``scale``, so
        ``solve(dist, params={"std": s})`` and ``solve(dist).scaled(s)`` agree.  1 for
        tables fitted to data, times any later :meth:`scaled` factor.
    zero_threshold : float or None
        The pinned first threshold of a half-wave table (0 for hwgq, epsilon for deadzone).
    version : str
        lloydmax version that produced the table.
    """

    levels: np.ndarray
    thresholds: np.ndarray
    step: float | None
    bits: int
    n_levels: int
    distribution: str
    params: dict
    convention: str
    kind: str
    mse: float
    sqnr_db: float
    entropy_bits: float | None
    residual: float
    iterations: int
    converged: bool
    scale: float = 1.0
    zero_threshold: float | None = None
    version: str = field(default=__version__)

    def __post_init__(self):
        object.__setattr__(self, "levels", _frozen_array(self.levels))
        object.__setattr__(self, "thresholds", _frozen_array(self.thresholds))
        object.__setattr__(self, "params", dict(self.params))
        # plain Python numbers, whether solved (numpy scalars) or loaded (JSON)
        for name in ("mse", "sqnr_db", "residual", "scale"):
            object.__setattr__(self, name, float(getattr(self, name)))
        for name in ("step", "zero_threshold", "entropy_bits"):
            value = getattr(self, name)
            object.__setattr__(self, name, None if value is None else float(value))
        for name in ("bits", "n_levels", "iterations"):
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "converged", bool(self.converged))

    # ------------------------------------------------------------------ use
    def quantize(self, x, *, return_index: bool = False):
        """Quantize ``x`` with this table (numba kernel).

        Comparisons are made in float64 (float32 input is widened exactly); the result
        has the input's floating dtype (float64 for integer input).  NaN stays NaN
        (index -1).

        Parameters
        ----------
        x : array_like
        return_index : bool
            Return the level index (int64) instead of the level value.
        """
        arr = np.asarray(x)
        out_dtype = arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float64
        flat = np.ascontiguousarray(arr, dtype=np.float64).reshape(-1)
        if return_index:
            idx = np.empty(flat.shape[0], dtype=np.int64)
            K.quantize_index(flat, self.thresholds, idx)
            return idx.reshape(arr.shape)
        out = np.empty(flat.shape[0], dtype=np.float64)
        K.quantize_values(flat, self.thresholds, self.levels, out)
        return out.reshape(arr.shape).astype(out_dtype, copy=False)

    def scaled(self, sigma: float) -> "QuantizerTable":
        """The same table for an input scaled by ``sigma`` (levels, thresholds and step
        times sigma, MSE times sigma^2)."""
        sigma = float(sigma)
        if not (sigma > 0.0 and math.isfinite(sigma)):
            from .errors import InvalidInputError

            raise InvalidInputError(f"scale must be a positive finite number, got {sigma!r}")
        params = {k: (v * sigma if k in _SCALES_WITH_INPUT else v) for k, v in self.params.items()}
        return replace(
            self,
            levels=self.levels * sigma,
            thresholds=self.thresholds * sigma,
            step=None if self.step is None else self.step * sigma,
            mse=self.mse * sigma * sigma,
            params=params,
            scale=self.scale * sigma,
            zero_threshold=None if self.zero_threshold is None else self.zero_threshold * sigma,
        )

    # ------------------------------------------------------------------ export
    def to_dict(self) -> dict:
        """The table as a ``lloydmax.table/1`` mapping (JSON-ready, keys in schema order)."""
        return {
            "schema": SCHEMA,
            "version": self.version,
            "distribution": {"name": self.distribution, "params": dict(self.params)},
            "bits": int(self.bits),
            "n_levels": int(self.n_levels),
            "kind": self.kind,
            "convention": self.convention,
            "levels": [float(v) for v in self.levels],
            "thresholds": [float(v) for v in self.thresholds],
            "step": None if self.step is None else float(self.step),
            "zero_threshold": None if self.zero_threshold is None else float(self.zero_threshold),
            "scale": float(self.scale),
            "mse": float(self.mse),
            "sqnr_db": float(self.sqnr_db) if math.isfinite(self.sqnr_db) else None,
            "entropy_bits": None if self.entropy_bits is None else float(self.entropy_bits),
            "residual": float(self.residual),
            "iterations": int(self.iterations),
            "converged": bool(self.converged),
        }

    def to_json(self, indent: int | None = 2) -> str:
        from ._io import dumps_json

        return dumps_json(self.to_dict(), indent=indent)

    def save(self, path, format: str | None = None) -> None:
        """Write this table atomically; the format comes from the suffix unless given."""
        from ._io import save_tables

        save_tables([self], path, format=format)

    def __repr__(self) -> str:
        lv = np.array2string(self.levels[:8], precision=4, separator=", ")
        more = "" if self.n_levels <= 8 else f" ... ({self.n_levels} levels)"
        return (f"QuantizerTable({self.distribution}, bits={self.bits}, kind={self.kind}, "
                f"convention={self.convention}, levels={lv}{more}, mse={self.mse:.6g}, "
                f"residual={self.residual:.1e}, converged={self.converged})")


# location and scale parameters follow the input; shape parameters and counts do not
_SCALES_WITH_INPUT = frozenset({"mean", "std", "loc", "scale", "low", "high"})

_REQUIRED = ("schema", "distribution", "bits", "n_levels", "kind", "convention", "levels",
             "thresholds", "step", "mse", "sqnr_db", "residual", "scale", "version")


def _num(obj: dict, key: str, *, allow_none: bool = False, integer: bool = False):
    v = obj.get(key)
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InvalidTableError(f"field {key!r} must be a number, got {v!r}")
    if integer:
        if isinstance(v, float) and not v.is_integer():
            raise InvalidTableError(f"field {key!r} must be an integer, got {v!r}")
        return int(v)
    v = float(v)
    if not math.isfinite(v):
        raise InvalidTableError(f"field {key!r} must be finite, got {v!r}")
    return v


def _vector(obj: dict, key: str) -> np.ndarray:
    v = obj.get(key)
    if not isinstance(v, list) or any(isinstance(x, bool) or not isinstance(x, (int, float))
                                      for x in v):
        raise InvalidTableError(f"field {key!r} must be a list of numbers")
    arr = np.array(v, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise InvalidTableError(f"field {key!r} holds a non-finite number")
    if arr.size > 1 and not np.all(np.diff(arr) > 0):
        raise InvalidTableError(f"field {key!r} must be strictly increasing")
    return arr


def table_from_dict(obj) -> QuantizerTable:
    """Validate a ``lloydmax.table/1`` mapping and build the table.

    Raises
    ------
    InvalidTableError
        With a one-line message naming the first problem found.
    """
    if not isinstance(obj, dict):
        raise InvalidTableError("a table must be a JSON object")
    missing = [k for k in _REQUIRED if k not in obj]
    if missing:
        raise InvalidTableError(f"table is missing required field(s): {', '.join(missing)}")
    if obj["schema"] != SCHEMA:
        raise InvalidTableError(f"unsupported schema {obj['schema']!r} (expected {SCHEMA!r})")
    dist = obj["distribution"]
    if not (isinstance(dist, dict) and isinstance(dist.get("name"), str)
            and isinstance(dist.get("params"), dict)):
        raise InvalidTableError("field 'distribution' must be an object with 'name' and 'params'")
    levels = _vector(obj, "levels")
    thresholds = _vector(obj, "thresholds")
    n_levels = _num(obj, "n_levels", integer=True)
    bits = _num(obj, "bits", integer=True)
    if not 2 <= n_levels <= 65536:
        raise InvalidTableError(f"n_levels must be between 2 and 65536, got {n_levels}")
    if levels.size != n_levels:
        raise InvalidTableError(f"n_levels is {n_levels} but 'levels' has {levels.size} entries")
    if thresholds.size != n_levels - 1:
        raise InvalidTableError(
            f"'thresholds' must have n_levels - 1 = {n_levels - 1} entries, has {thresholds.size}")
    between = (levels[:-1] <= thresholds) & (thresholds <= levels[1:])
    if obj.get("convention") == "deadzone":
        # a dead-zone threshold eps may lie above q_1 (a wide dead zone with a uniform grid)
        between[0] = levels[0] <= thresholds[0]
    if not np.all(between):
        raise InvalidTableError("every threshold must lie between its two neighbouring levels")
    if bits != max(1, math.ceil(math.log2(n_levels))):
        raise InvalidTableError(f"bits = {bits} does not match n_levels = {n_levels}")
    if obj["kind"] not in KINDS:
        raise InvalidTableError(f"field 'kind' must be one of {', '.join(KINDS)}")
    if obj["convention"] not in CONVENTIONS:
        raise InvalidTableError(f"field 'convention' must be one of {', '.join(CONVENTIONS)}")
    step = _num(obj, "step", allow_none=True)
    if (obj["kind"] == "uniform") != (step is not None):
        raise InvalidTableError("'step' must be a number for a uniform table and null otherwise")
    if not isinstance(obj["version"], str):
        raise InvalidTableError("field 'version' must be a string")
    params = {}
    for k, v in dist.get("params", {}).items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise InvalidTableError(f"distribution parameter {k!r} must be a number")
        params[k] = float(v) if isinstance(v, float) else v
    conv = obj.get("converged", True)
    if not isinstance(conv, bool):
        raise InvalidTableError("field 'converged' must be true or false")
    mse = _num(obj, "mse")
    scale = _num(obj, "scale")
    if mse < 0.0:
        raise InvalidTableError(f"field 'mse' must be non-negative, got {mse!r}")
    if not scale > 0.0:
        raise InvalidTableError(f"field 'scale' must be positive, got {scale!r}")
    sqnr = math.inf if obj["sqnr_db"] is None else _num(obj, "sqnr_db")
    return QuantizerTable(
        levels=levels,
        thresholds=thresholds,
        step=step,
        bits=bits,
        n_levels=n_levels,
        distribution=dist["name"],
        params=params,
        convention=obj["convention"],
        kind=obj["kind"],
        mse=mse,
        sqnr_db=sqnr,
        entropy_bits=_num(obj, "entropy_bits", allow_none=True),
        residual=_num(obj, "residual"),
        iterations=_num(obj, "iterations", integer=True) if "iterations" in obj else 0,
        converged=conv,
        scale=scale,
        zero_threshold=_num(obj, "zero_threshold", allow_none=True),
        version=obj["version"],
    )
