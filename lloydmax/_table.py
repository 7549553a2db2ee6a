"""The quantizer table: a frozen result object and the ``lloydmax.table/1`` format."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from . import _kernels as K
from ._files import atomic_write, encode_tables, format_from_path
from ._format import CONVENTIONS, SCHEMA, dumps_json, validate_table
from ._inputs import as_float_array
from ._version import __version__
from .errors import ConvergenceError, InvalidDataError, InvalidInputError

__all__ = ["QuantizerTable", "SCHEMA", "CONVENTIONS", "table_from_dict", "build_table"]


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
        has the input's floating dtype (float64 for integer input and lists).  NaN stays
        NaN (index -1).  None, boolean, complex, text and object input raise
        :class:`~lloydmax.errors.InvalidDataError` (``docs/inputs.md``).

        Parameters
        ----------
        x : array_like
        return_index : bool
            Return the level index (int64) instead of the level value.
        """
        arr = as_float_array(x, "x")  # the input rules of lloydmax._inputs
        dtype = getattr(x, "dtype", None)
        if not isinstance(dtype, np.dtype):
            dtype = np.asarray(x).dtype  # as_float_array has shown this works
        out_dtype = dtype if dtype.kind == "f" else np.float64
        flat = arr.reshape(-1)
        if return_index:
            idx = np.empty(flat.shape[0], dtype=np.int64)
            K.quantize_index(flat, self.thresholds, idx)
            return idx.reshape(arr.shape)
        out = np.empty(flat.shape[0], dtype=np.float64)
        K.quantize_values(flat, self.thresholds, self.levels, out)
        return out.reshape(arr.shape).astype(out_dtype, copy=False)

    def scaled(self, sigma: float) -> QuantizerTable:
        """The same table for an input scaled by ``sigma`` (levels, thresholds and step
        times sigma, MSE times sigma^2)."""
        sigma = float(sigma)
        if not (sigma > 0.0 and math.isfinite(sigma)):
            raise InvalidInputError(f"scale must be a positive finite number, got {sigma!r}")
        with np.errstate(over="ignore", invalid="ignore"):
            params = {k: (v * sigma if k in _SCALES_WITH_INPUT else v)
                      for k, v in self.params.items()}
            problem = _unrepresentable(self.levels * sigma, self.thresholds * sigma)
        if problem is None and not all(math.isfinite(v) for v in params.values()
                                       if isinstance(v, float)):
            problem = "parameters beyond the float64 range"
        if problem is not None:
            raise InvalidInputError(f"the table scaled by {sigma:g} has {problem}")
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
        """The table as ``lloydmax.table/1`` JSON text."""
        return dumps_json(self.to_dict(), indent=indent)

    def save(self, path, format: str | None = None) -> None:
        """Write this table atomically; the format comes from the suffix unless given."""
        atomic_write(path, encode_tables([self], format_from_path(path, format)))

    def to_text(self) -> str:
        """The table as text, as ``lloydmax solve`` prints it: a header (distribution,
        kind, convention, MSE, SQNR, output entropy, residual) and one row per level with
        its upper threshold; a table with more than 64 levels shows its first and last 16
        rows (:mod:`lloydmax._text`)."""
        from ._text import table_text

        return table_text(self)

    def __repr__(self) -> str:
        lv = np.array2string(self.levels[:8], precision=4, separator=", ")
        more = "" if self.n_levels <= 8 else f" ... ({self.n_levels} levels)"
        return (f"QuantizerTable({self.distribution}, bits={self.bits}, kind={self.kind}, "
                f"convention={self.convention}, levels={lv}{more}, mse={self.mse:.6g}, "
                f"residual={self.residual:.1e}, converged={self.converged})")


# location and scale parameters follow the input; shape parameters and counts do not
_SCALES_WITH_INPUT = frozenset({"mean", "std", "loc", "scale", "low", "high"})

def table_from_dict(obj) -> QuantizerTable:
    """Validate a ``lloydmax.table/1`` mapping (:func:`lloydmax._format.validate_table`)
    and build the table.

    Raises
    ------
    InvalidTableError
        With a one-line message naming the first problem found.
    """
    fields = validate_table(obj)
    dist = fields.pop("distribution")
    del fields["schema"]
    return QuantizerTable(distribution=dist["name"], params=dist["params"], **fields)


def _unrepresentable(levels, thresholds) -> str | None:
    """What keeps these levels and thresholds from being a table, or None."""
    # fast path: strictly increasing (which no NaN passes, and which compares without
    # overflowing) with finite ends is finite throughout
    if (levels.size and thresholds.size and bool((levels[1:] > levels[:-1]).all())
            and bool((thresholds[1:] > thresholds[:-1]).all())
            and -math.inf < levels[0] and levels[-1] < math.inf
            and -math.inf < thresholds[0] and thresholds[-1] < math.inf):
        return None
    if not (np.all(np.isfinite(levels)) and np.all(np.isfinite(thresholds))):
        return "non-finite levels or thresholds"
    with np.errstate(over="ignore", invalid="ignore"):
        if not (np.all(np.diff(levels) > 0) and np.all(np.diff(thresholds) > 0)):
            return "levels or thresholds that are not strictly increasing"
    return None


def build_table(z_levels, z_thresholds, *, bits: int, n_levels: int, kind: str,
                distribution: str, params: dict, convention: str, mse_z: float,
                power_z: float, entropy_bits, residual: float, iterations: int,
                converged: bool, shift: float = 0.0, scale: float = 1.0, step_z=None,
                zero_threshold_z=None, table_scale: float = 1.0) -> QuantizerTable:
    """The one constructor from standardised solver output to a :class:`QuantizerTable`.

    Every solver works on ``z = (x - shift) / scale``; this maps its levels, thresholds,
    step, dead zone and MSE back (``x = shift + scale z``, MSE times ``scale**2``) and
    takes the SQNR in standard units, ``10 log10(power_z / mse_z)`` with ``power_z =
    E[X^2] / scale**2``, so that huge or tiny data cannot overflow the ratio.

    Post-condition: levels and thresholds finite and strictly increasing, first in
    standard units (else :class:`ConvergenceError`: never a table marked
    converged), then levels and thresholds in the table's units (else
    :class:`InvalidInputError`, :class:`InvalidDataError` for data: the scale or offset
    cannot be represented, e.g. ``mean=1e17`` collapses the levels of a unit Gaussian).
    An MSE that overflows (``std=1e300``: 1e600) stays ``inf`` in the table, whose SQNR
    is taken in standard units; such a table cannot be written to a file
    (:class:`InvalidTableError` from :meth:`QuantizerTable.save`).
    """
    z_levels = np.asarray(z_levels, dtype=np.float64)
    z_thresholds = np.asarray(z_thresholds, dtype=np.float64)
    checked = False
    if z_levels.size and z_thresholds.size and scale > 0:
        # the usual case: no overflow is possible, and x = shift + scale z is monotone in
        # z, so x finite and strictly increasing shows z is too: one check instead of two
        bound = max(-z_levels[0], z_levels[-1], -z_thresholds[0], z_thresholds[-1])
        if (bound < 1e290 and abs(shift) + scale * bound < 1e300 and scale < 1e100
                and abs(mse_z) < 1e100):
            levels = shift + scale * z_levels
            thresholds = shift + scale * z_thresholds
            mse = scale * scale * float(mse_z)
            checked = _unrepresentable(levels, thresholds) is None
    if not checked:
        problem = _unrepresentable(z_levels, z_thresholds)
        if problem is not None:  # the solver's own output is bad: not a units problem
            raise ConvergenceError(f"the {distribution} solver produced {problem}")
        with np.errstate(over="ignore", invalid="ignore"):
            levels = shift + scale * z_levels
            thresholds = shift + scale * z_thresholds
            mse = scale * scale * float(mse_z)
        problem = _unrepresentable(levels, thresholds)
        if problem is not None:
            # solved in standard units; only the scale and offset cannot be represented
            if distribution == "empirical":
                raise InvalidDataError(
                    f"the table of this data (range about {scale:g} around {shift:g}) has "
                    f"{problem} in float64; rescale the data first")
            raise InvalidInputError(
                f"the {distribution} table at scale {scale:g} and offset {shift:g} has "
                f"{problem} in float64; use a smaller scale or offset, or solve in standard "
                "units")
    # the fields as QuantizerTable.__post_init__ would leave them (levels and thresholds
    # are new arrays here, so they are frozen in place rather than copied)
    levels.setflags(write=False)
    thresholds.setflags(write=False)
    table = object.__new__(QuantizerTable)
    table.__dict__.update(
        levels=levels,
        thresholds=thresholds,
        step=None if step_z is None else float(scale * float(step_z)),
        bits=int(bits),
        n_levels=int(n_levels),
        distribution=distribution,
        params=dict(params),
        convention=convention,
        kind=kind,
        mse=float(mse),
        sqnr_db=float(10.0 * math.log10(power_z / mse_z) if mse_z > 0 else math.inf),
        entropy_bits=None if entropy_bits is None else float(entropy_bits),
        residual=float(residual),
        iterations=int(iterations),
        converged=bool(converged),
        scale=float(table_scale),
        zero_threshold=(None if zero_threshold_z is None
                        else float(scale * float(zero_threshold_z))),
        version=__version__,
    )
    return table
