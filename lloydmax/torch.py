"""PyTorch consumers of lloydmax tables: HWGQ activations, sign / hard tanh, binary and
ternary weights (the optional extra ``lloydmax[torch]``).

This module needs only PyTorch and the standard library: tables are read from JSON (or
taken from a mapping or a :class:`lloydmax.QuantizerTable`) without calling the numba
kernels, so a trainer can load a table file shipped with a model.

Forward rule (HWGQ, Cai et al. 2017, eq. 7): ``Q(x) = levels[i]`` for
``thresholds[i-1] < x <= thresholds[i]`` (a value on a threshold goes to the lower level),
the same rule as :meth:`lloydmax.QuantizerTable.quantize`, and bit for bit the same result:

* float64 input is compared with the float64 thresholds;
* float32 input is compared with ``RD32(t)``, the largest float32 not above each float64
  threshold ``t``.  For a float32 ``x``, ``x <= t`` holds exactly when ``x <= RD32(t)``,
  so the float32 comparison decides like numpy's float64 one;
* float16 / bfloat16 input is widened exactly to float32 for the comparison, and the
  levels are rounded once, correctly, from float64 to the input's type;
* NaN stays NaN.

Backward approximations (HWGQ eqs. 11-14) are chosen by name: ``vanilla`` (ReLU),
``clipped`` (clipped ReLU at the largest level ``q_m``) and ``log-tailed``.
"""
from __future__ import annotations

import math
import os
import stat
from collections.abc import Mapping

from lloydmax import _format, _hwgq
from lloydmax.errors import InvalidInputError, InvalidTableError, MissingDependencyError

try:
    import torch
    from torch import nn
    from torch.autograd.function import once_differentiable
except ImportError as exc:  # pragma: no cover - exercised with torch hidden
    raise MissingDependencyError(
        "lloydmax.torch needs PyTorch: pip install 'lloydmax[torch]'") from exc

from lloydmax._torch_weights import (
    BinaryWeightFunction,
    QuantConv2d,
    QuantLinear,
    TernaryWeightFunction,
    binary_weight,
    ternary_weight,
)

__all__ = [
    "BACKWARDS",
    "read_table",
    "round_down_float32",
    "quantize",
    "HalfWaveQuantizeFunction",
    "HalfWaveQuantizer",
    "SignHardTanhFunction",
    "SignHardTanh",
    "sign_hardtanh",
    "BinaryWeightFunction",
    "TernaryWeightFunction",
    "binary_weight",
    "ternary_weight",
    "QuantConv2d",
    "QuantLinear",
]

BACKWARDS = _hwgq.BACKWARDS


# ---------------------------------------------------------------------- reading tables


def _checked(obj) -> dict:
    """A validated table: the full format for anything that names a schema (every file
    does), only the lookup part for a bare ``{"levels", "thresholds"}`` mapping."""
    if not isinstance(obj, Mapping):
        raise InvalidTableError("a table must be a JSON object")
    if "schema" in obj:
        return _format.validate_table(obj)
    convention = obj.get("convention", "none")
    if convention not in _format.CONVENTIONS:
        raise InvalidTableError(f"field 'convention' must be one of "
                                f"{', '.join(_format.CONVENTIONS)}")
    levels, thresholds = _format.validate_lookup(obj, convention)
    out = dict(obj)
    out.update(levels=levels, thresholds=thresholds, convention=convention,
               bits=_format.bits_for_levels(len(levels)))
    return out


def read_table(source, bits: int | None = None, index: int | None = None) -> dict:
    """Read one ``lloydmax.table/1`` table with the standard library alone.

    Parameters
    ----------
    source : str, os.PathLike, Mapping or QuantizerTable
        A JSON file (one table or a ``lloydmax.tableset/1`` set), the parsed mapping, or
        an object with ``to_dict()`` such as :class:`lloydmax.QuantizerTable`.  A bare
        mapping ``{"levels": [...], "thresholds": [...]}`` is accepted too.
    bits : int, optional
        Pick the table with this bit-width from a set (and check it for a single table).
    index : int, optional
        Pick the table at this position of a set.

    Returns
    -------
    dict
        The table's fields; ``levels`` and ``thresholds`` are lists of floats (validated:
        finite, strictly increasing, each threshold between its neighbouring levels),
        ``bits`` and ``convention`` are always present.

    Raises
    ------
    InvalidTableError
        For an unreadable or malformed table, or a selection that matches no table or
        several.
    """
    if hasattr(source, "to_dict") and callable(source.to_dict):
        obj = source.to_dict()
    elif isinstance(source, Mapping):
        obj = source
    elif isinstance(source, (str, os.PathLike)):
        obj = _read_file(source)
        if not (isinstance(obj, Mapping) and "schema" in obj):
            raise InvalidTableError(f"{source}: not a {_format.SCHEMA} table file (no 'schema')")
    else:
        raise InvalidTableError(
            f"expected a path, a mapping or a QuantizerTable, got {type(source).__name__}")
    tables = _format.tables_of(obj)
    if index is not None:
        if isinstance(index, bool) or not isinstance(index, int) or not (
                0 <= index < len(tables)):
            raise InvalidTableError(
                f"index {index!r} is out of range for {len(tables)} table(s)")
        chosen = _checked(tables[index])
        if bits is not None and chosen["bits"] != bits:
            raise InvalidTableError(f"table {index} has bits={chosen['bits']}, not {bits}")
        return chosen
    checked = [_checked(t) for t in tables]
    if bits is not None:
        hits = [t for t in checked if t["bits"] == bits]
        if not hits:
            have = ", ".join(str(t["bits"]) for t in checked)
            raise InvalidTableError(f"no table with bits={bits} (available: {have})")
        if len(hits) > 1:
            raise InvalidTableError(f"{len(hits)} tables have bits={bits}; pick one with index=")
        return hits[0]
    if len(checked) != 1:
        raise InvalidTableError(f"the set holds {len(checked)} tables; pick one with bits= "
                                "or index=")
    return checked[0]


def _read_file(source):
    try:
        info = os.stat(source)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidTableError(f"{source} is not a regular file")
        if info.st_size > _format.MAX_FILE_BYTES:
            raise InvalidTableError(f"{source} is too large to be a table file")
        with open(source, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise InvalidTableError(f"table file not found: {source}") from None
    except OSError as exc:
        raise InvalidTableError(f"cannot read table {source}: {exc.strerror or exc}") from None
    try:
        return _format.decode_json(raw)
    except InvalidTableError as exc:
        raise InvalidTableError(f"{source}: {exc}") from None


# ---------------------------------------------------------------------- exact lookup


def round_down_float32(thresholds: torch.Tensor) -> torch.Tensor:
    """``RD32(t)``: the largest float32 not above each float64 threshold ``t``.

    For float32 ``x`` and float64 ``t``, ``x <= t`` if and only if ``x <= RD32(t)``
    (``RD32(t) <= t``, and no float32 lies in ``(RD32(t), t]``), so bucketing float32
    input against these boundaries gives the same cells as comparing in float64.
    """
    t64 = thresholds.to(torch.float64)
    nearest = t64.to(torch.float32)  # round to nearest; may land above t (or at +inf)
    above = nearest.to(torch.float64) > t64
    below = torch.nextafter(nearest, torch.full_like(nearest, -math.inf))
    return torch.where(above, below, nearest)


def _round_once(values64: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """float64 -> float16/bfloat16 rounded once to nearest-even.

    PyTorch converts float64 to half through float32, which can round twice.  Rounding
    to float32 *to odd* first (truncate, then set the last bit when inexact) keeps the
    second rounding correct, because float32 carries more than two extra bits.
    """
    f32 = values64.to(torch.float32)
    inexact = f32.to(torch.float64) != values64
    too_far = inexact & (f32.to(torch.float64).abs() > values64.abs())
    f32 = torch.where(too_far, torch.nextafter(f32, torch.zeros_like(f32)), f32)
    raw = f32.view(torch.int32)
    f32 = torch.where(inexact, raw | 1, raw).view(torch.float32)
    return f32.to(dtype)


def _lookup(x: torch.Tensor, thresholds: torch.Tensor, levels: torch.Tensor):
    """Q(x) for float64 ``thresholds``/``levels`` (see the module docstring)."""
    if x.is_complex():
        raise InvalidInputError("complex input cannot be quantized")
    if not x.is_floating_point():
        x = x.to(torch.float64)  # as numpy: integer input gives float64 levels
    thresholds = thresholds.to(device=x.device, dtype=torch.float64)
    levels = levels.to(device=x.device, dtype=torch.float64)
    if x.dtype == torch.float64:
        keys, bounds, values = x, thresholds, levels
    elif x.dtype == torch.float32:
        keys, bounds, values = x, round_down_float32(thresholds), levels.to(torch.float32)
    else:
        keys = x.to(torch.float32)  # exact widening
        bounds, values = round_down_float32(thresholds), _round_once(levels, x.dtype)
    index = torch.bucketize(keys.contiguous(), bounds, right=False)  # e.g. channels_last input
    out = values[index]
    return torch.where(torch.isnan(x), x, out)


def quantize(x: torch.Tensor, table, *, bits: int | None = None,
             index: int | None = None) -> torch.Tensor:
    """Quantize a tensor with a table (forward only, no gradient).

    ``Q(x) = levels[i]`` for ``thresholds[i-1] < x <= thresholds[i]`` (HWGQ eq. 7),
    bit for bit equal to :meth:`lloydmax.QuantizerTable.quantize` on the same input.

    Parameters
    ----------
    x : torch.Tensor
        Floating input (integer input gives float64, as in numpy).
    table : path, mapping or QuantizerTable
        Anything :func:`read_table` accepts.
    bits, index : int, optional
        Select a table from a set (see :func:`read_table`).
    """
    t = read_table(table, bits=bits, index=index)
    thresholds = torch.tensor(t["thresholds"], dtype=torch.float64)
    levels = torch.tensor(t["levels"], dtype=torch.float64)
    with torch.no_grad():
        return _lookup(torch.as_tensor(x), thresholds, levels)


# ---------------------------------------------------------------------- HWGQ activation


class HalfWaveQuantizeFunction(torch.autograd.Function):
    """Forward ``Q(x)`` (HWGQ eq. 7); backward one of the approximations of eqs. 11-14.

    ``apply(x, thresholds, levels, q_max, backward)`` with float64 ``thresholds`` and
    ``levels`` tensors, ``q_max`` the largest level and ``backward`` a name in
    :data:`BACKWARDS`:

    * ``vanilla`` (eq. 11): ``dQ/dx = 1`` for ``x > 0``, else 0;
    * ``clipped`` (eq. 12): 1 on ``(0, q_m]``, else 0;
    * ``log-tailed`` (eqs. 13-14): 1 on ``(0, q_m]``, ``1 / (x - tau)`` above ``q_m``
      with ``tau = q_m - 1`` (continuous at ``q_m``), 0 for ``x <= 0``.
    """

    @staticmethod
    def forward(ctx, x, thresholds, levels, q_max, backward):
        if backward not in BACKWARDS:
            raise InvalidInputError(
                f"unknown backward {backward!r}; valid names: {', '.join(BACKWARDS)}")
        ctx.save_for_backward(x)
        bound = float(q_max)
        if x.is_floating_point() and x.dtype != torch.float64:
            # x <= q_m decided exactly as in float64: compare the float32-widened x with
            # RD32(q_m), never with q_m rounded to nearest in x's dtype
            bound = float(round_down_float32(torch.tensor([bound], dtype=torch.float64))[0])
        ctx.q_max_exact = float(q_max)
        ctx.q_max = bound
        ctx.backward_name = backward
        return _lookup(x, thresholds, levels)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        zero = torch.zeros((), dtype=grad_out.dtype, device=grad_out.device)
        if ctx.backward_name == "vanilla":
            grad = torch.where(x > 0, grad_out, zero)
        else:
            q_max = ctx.q_max  # RD32(q_m) for float32/16 input, see forward
            keys = x if x.dtype in (torch.float64, torch.float32) else x.to(torch.float32)
            _, inside, above = _hwgq.regions(keys, q_max)
            grad = torch.where(inside, grad_out, zero)
            if ctx.backward_name == "log-tailed":
                # eq. 14; tau = q_m - 1 in the table's own float64 value of q_m
                tau = _hwgq.log_tail_tau(ctx.q_max_exact)
                grad = torch.where(above, grad_out / (x - tau), grad)
        return grad, None, None, None, None


def _refresh_q_max(module, incompatible_keys):
    module._q_max = float(module.levels[-1])


class HalfWaveQuantizer(nn.Module):
    """Half-wave Gaussian quantizer activation (HWGQ; Cai et al., CVPR 2017).

    Forward: the table's quantizer, bit-exact with :meth:`lloydmax.QuantizerTable.quantize`
    (eq. 7).  Backward: ``vanilla`` ReLU (eq. 11), ``clipped`` ReLU at the largest level
    ``q_m`` (eq. 12; the Caffe layer's ``clip_thr``) or ``log-tailed`` ReLU (eqs. 13-14).
    Replace ``ReLU`` after BatchNorm with it; tables are for unit-variance input.

    Parameters
    ----------
    table : path, mapping or QuantizerTable
        A half-wave table (no negative level), e.g.
        ``lm.solve(bits=2, dist="halfwave-gaussian", uniform=True)``.
    backward : {"vanilla", "clipped", "log-tailed"}
        Backward approximation (default ``clipped``).
    bits, index : int, optional
        Select a table from a set (see :func:`read_table`).

    Notes
    -----
    ``levels`` and ``thresholds`` are float64 buffers: they follow ``.to(device)`` and
    are saved in ``state_dict``, but keep float64 under ``.half()`` / ``.to(dtype)`` so
    the lookup stays exact for every input precision.
    """

    def __init__(self, table, backward: str = "clipped", *, bits: int | None = None,
                 index: int | None = None):
        super().__init__()
        if backward not in BACKWARDS:
            raise InvalidInputError(
                f"unknown backward {backward!r}; valid names: {', '.join(BACKWARDS)}")
        t = read_table(table, bits=bits, index=index)
        if t["levels"][0] < 0.0:
            raise InvalidTableError(
                "HalfWaveQuantizer needs a half-wave table (no negative level); got levels "
                f"from {t['levels'][0]!r}")
        if not t["levels"][-1] > 0.0:
            raise InvalidTableError("HalfWaveQuantizer needs a positive largest level")
        self.backward = backward
        self.bits = int(t["bits"])
        self.convention = str(t.get("convention", "none"))
        self.register_buffer("levels", torch.tensor(t["levels"], dtype=torch.float64))
        self.register_buffer("thresholds", torch.tensor(t["thresholds"], dtype=torch.float64))
        # q_m as a Python float, so that a forward on a GPU never waits to read it back;
        # refreshed when a state_dict is loaded
        self._q_max = float(t["levels"][-1])
        self.register_load_state_dict_post_hook(_refresh_q_max)

    @property
    def q_max(self) -> float:
        """The largest level ``q_m`` (clip point of the clipped and log-tailed backward)."""
        return self._q_max

    def forward(self, x):
        return HalfWaveQuantizeFunction.apply(x, self.thresholds, self.levels, self._q_max,
                                              self.backward)

    def _apply(self, fn, *args, **kwargs):
        # keep the table in float64 whatever dtype conversion is applied to the module;
        # only the device follows
        kept = {name: self._buffers[name] for name in ("levels", "thresholds")}
        super()._apply(fn, *args, **kwargs)
        for name, original in kept.items():
            moved = self._buffers[name]
            self._buffers[name] = original.to(device=moved.device, dtype=torch.float64)
        return self

    def extra_repr(self) -> str:
        return (f"bits={self.bits}, n_levels={self.levels.numel()}, "
                f"convention={self.convention}, backward={self.backward}, "
                f"q_max={self.q_max:.6g}")


# ---------------------------------------------------------------------- binary baseline


class SignHardTanhFunction(torch.autograd.Function):
    """Forward ``sign(x)`` with ``x >= 0 -> +1``, else -1 (HWGQ eq. 3; NaN stays NaN);
    backward the hard tanh derivative: the gradient passes where ``|x| <= 1``."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        one = torch.ones((), dtype=x.dtype, device=x.device)
        out = torch.where(x >= 0, one, -one)
        return torch.where(torch.isnan(x), x, out)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        zero = torch.zeros((), dtype=grad_out.dtype, device=grad_out.device)
        return torch.where(x.abs() <= 1, grad_out, zero)


def sign_hardtanh(x: torch.Tensor) -> torch.Tensor:
    """Binary activation: sign forward, hard tanh backward (see :class:`SignHardTanh`)."""
    return SignHardTanhFunction.apply(x)


class SignHardTanh(nn.Module):
    """The binary activation baseline of HWGQ (eq. 3): forward ``sign(x)`` (``x >= 0 ->
    +1``), backward ``1`` on ``|x| <= 1`` and 0 elsewhere (hard tanh)."""

    def forward(self, x):
        return SignHardTanhFunction.apply(x)
