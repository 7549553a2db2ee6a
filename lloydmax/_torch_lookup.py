"""The exact table lookup in PyTorch and the HWGQ activation module built on it.  Part of
:mod:`lloydmax.torch` (see its docstring for the forward rule), which re-exports every
public name here."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from . import _hwgq
from ._torch_tables import read_table
from ._torch_trainers import FLT_MAX, caffe_hwgq, caffe_tables, check_rule, edmips_hwgq
from .errors import InvalidInputError, InvalidTableError

BACKWARDS = _hwgq.BACKWARDS

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


def _boundaries(thresholds: torch.Tensor, levels: torch.Tensor) -> dict:
    """Everything the lookup needs besides the float64 table, computed once: the float32
    comparison boundaries ``RD32(t)`` and the levels rounded once to each input dtype.

    The modules keep these as buffers, so their forward holds no ``nextafter`` and no
    dtype arithmetic: it exports to ONNX, compiles and traces (see docs/consumers.md)."""
    t64 = thresholds.detach().to(torch.float64)
    l64 = levels.detach().to(torch.float64)
    return {"bounds32": round_down_float32(t64), "levels32": l64.to(torch.float32),
            "levels16": _round_once(l64, torch.float16),
            "levelsbf16": _round_once(l64, torch.bfloat16)}


def _lookup_with(x, thresholds, levels, bounds32, levels32, levels16, levelsbf16,
                 return_index: bool = False):
    """Q(x), or the cell index with ``return_index``, from precomputed boundaries.

    The branches depend on ``x.dtype`` alone, which is fixed when a graph is traced or
    compiled.  A NaN has no cell: its index is ``len(levels) - 1`` (``bucketize`` sorts
    NaN last) and its value stays NaN."""
    if x.is_complex():
        raise InvalidInputError("complex input cannot be quantized")
    if not x.is_floating_point():
        x = x.to(torch.float64)  # as numpy: integer input gives float64 levels
    if x.dtype == torch.float64:
        keys, bounds, values = x, thresholds, levels
    elif x.dtype == torch.float32:
        keys, bounds, values = x, bounds32, levels32
    else:
        keys, bounds = x.to(torch.float32), bounds32  # exact widening
        if x.dtype == torch.float16:
            values = levels16
        elif x.dtype == torch.bfloat16:
            values = levelsbf16
        else:
            values = _round_once(levels, x.dtype)
    if torch.onnx.is_in_onnx_export():
        # the same cells as bucketize (x > b exactly when bucketize puts x above b), as
        # Greater + ReduceSum: small, shape-free ONNX, where the exporters' binary search
        # folds input-shaped constants into the file
        index = (keys.unsqueeze(-1) > bounds).sum(dim=-1)
    else:
        index = torch.bucketize(keys.contiguous(), bounds, right=False)  # channels_last too
    if return_index:
        # NaN gets the top code explicitly: an exporter may lower bucketize to a sum of
        # comparisons, which would put it at 0
        return index.masked_fill(torch.isnan(keys), bounds.shape[0])
    out = values[index]
    return torch.where(torch.isnan(x), x, out)


def _lookup(x: torch.Tensor, thresholds: torch.Tensor, levels: torch.Tensor,
            return_index: bool = False):
    """Q(x) for float64 ``thresholds``/``levels`` (see the module docstring)."""
    device = x.device if isinstance(x, torch.Tensor) else None
    thresholds = thresholds.to(device=device, dtype=torch.float64)
    levels = levels.to(device=device, dtype=torch.float64)
    extra = _boundaries(thresholds, levels)
    return _lookup_with(x, thresholds, levels, extra["bounds32"], extra["levels32"],
                        extra["levels16"], extra["levelsbf16"], return_index)


def quantize(x: torch.Tensor, table, *, bits: int | None = None,
             index: int | None = None, return_index: bool = False) -> torch.Tensor:
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
    return_index : bool
        Return the integer code ``i`` of each value's cell (int64, ``levels[i]`` is its
        value) instead of the value.  NaN has no cell and gets ``len(levels) - 1``.
    """
    t = read_table(table, bits=bits, index=index)
    thresholds = torch.tensor(t["thresholds"], dtype=torch.float64)
    levels = torch.tensor(t["levels"], dtype=torch.float64)
    with torch.no_grad():
        return _lookup(torch.as_tensor(x), thresholds, levels, return_index)


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

    The modules pass the rest precomputed (``bounds32, levels32, levels16, levelsbf16``
    from :func:`_boundaries` and ``q_max32 = RD32(q_m)``), so the forward holds only a
    ``bucketize`` and a gather.
    """

    @staticmethod
    def forward(ctx, x, thresholds, levels, q_max, backward, bounds32=None, levels32=None,
                levels16=None, levelsbf16=None, q_max32=None):
        if backward not in BACKWARDS:
            raise InvalidInputError(
                f"unknown backward {backward!r}; valid names: {', '.join(BACKWARDS)}")
        ctx.save_for_backward(x)
        if bounds32 is None:
            extra = _boundaries(thresholds, levels)
            bounds32, levels32 = extra["bounds32"], extra["levels32"]
            levels16, levelsbf16 = extra["levels16"], extra["levelsbf16"]
        bound = float(q_max)
        if x.is_floating_point() and x.dtype != torch.float64:
            # x <= q_m decided exactly as in float64: compare the float32-widened x with
            # RD32(q_m), never with q_m rounded to nearest in x's dtype
            bound = q_max32 if q_max32 is not None else _round_down_scalar(bound)
        ctx.q_max_exact = float(q_max)
        ctx.q_max = bound
        ctx.backward_name = backward
        return _lookup_with(x, thresholds, levels, bounds32, levels32, levels16, levelsbf16)

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
        return grad, None, None, None, None, None, None, None, None, None


def _round_down_scalar(value: float) -> float:
    """``RD32(value)`` as a Python float."""
    return float(round_down_float32(torch.tensor([value], dtype=torch.float64))[0])


def halfwave_quantize(x, thresholds, levels, bounds32, levels32, levels16, levelsbf16,
                      q_max: float, q_max32: float, backward: str,
                      return_index: bool = False):
    """The HWGQ activation on precomputed boundaries (what :class:`HalfWaveQuantizer`
    calls).  FX sees it as one leaf call (``torch.fx.wrap``), so a traced graph keeps it
    whole; ``return_index`` gives the int64 cell codes without a gradient."""
    if return_index:
        return _lookup_with(x, thresholds, levels, bounds32, levels32, levels16, levelsbf16,
                            True)
    return HalfWaveQuantizeFunction.apply(x, thresholds, levels, q_max, backward, bounds32,
                                          levels32, levels16, levelsbf16, q_max32)


torch.fx.wrap("halfwave_quantize")

_DERIVED = ("bounds32", "levels32", "levels16", "levelsbf16", "caffe_centers",
            "caffe_thresholds")


def _refresh_derived(module, incompatible_keys=None):
    """Recompute the float32 boundaries and the per-dtype levels from the float64 table
    (at construction and after ``load_state_dict``)."""
    levels = module._buffers["levels"]
    thresholds = module._buffers["thresholds"]
    with torch.no_grad():
        for name, value in _boundaries(thresholds, levels).items():
            module._buffers[name] = value.to(levels.device)
    if hasattr(module, "_q_max"):
        module._q_max = float(levels.reshape(-1, levels.shape[-1])[:, -1].max())
        module._q_max32 = _round_down_scalar(module._q_max)
    rule = getattr(module, "rule", "exact")
    if rule == "caffe":  # quant_layer.cpp: float32 centers, thresholds and clip_thr
        centers, caffe_thresholds = caffe_tables(levels)
        module._buffers["caffe_centers"] = centers
        module._buffers["caffe_thresholds"] = caffe_thresholds
        module._clip32 = (float(centers[-1]) if module.backward == "clipped" else FLT_MAX)
    if rule == "edmips":  # quant_module.py: step * (2^b - 1) as a Python float
        module._step = float(levels[1] - levels[0])
        module._clip = module._step * float(levels.numel() - 1)


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
    return_index : bool
        Forward returns the int64 cell codes (``levels[code]`` is the value) instead of
        the values; no gradient.
    rule : {"exact", "caffe", "edmips"}
        ``exact`` (default): the table's rule, bit-exact with the numpy reference.
        ``caffe``: the HWGQ Caffe layer's float32 rule (``quant_layer.cpp``: float32
        midpoints, ``x <= 0 -> -0.0``, ``+inf`` and NaN -> 0, clipped backward passing at
        ``q_m``); ``edmips``: EdMIPS's clamp and ``torch.round`` (half to even) on a
        uniform table.  See :mod:`lloydmax._torch_trainers` and docs/trainers.md.

    Notes
    -----
    ``levels`` and ``thresholds`` are float64 buffers: they follow ``.to(device)`` and
    are saved in ``state_dict``, but keep float64 under ``.half()`` / ``.to(dtype)`` so
    the lookup stays exact for every input precision.  The float32 boundaries
    ``bounds32 = RD32(thresholds)`` and the levels in float32 / float16 / bfloat16 are
    non-persistent buffers computed at construction and on ``load_state_dict``, so the
    forward exports to ONNX (both exporters), ``torch.export``, ``torch.compile`` and FX.
    """

    def __init__(self, table, backward: str = "clipped", *, bits: int | None = None,
                 index: int | None = None, return_index: bool = False,
                 rule: str = "exact"):
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
        check_rule(rule, t, backward)
        if rule != "exact" and return_index:
            raise InvalidInputError("return_index=True goes with rule='exact'")
        self.rule = rule
        self.backward = backward
        self.return_index = bool(return_index)
        self.bits = int(t["bits"])
        self.convention = str(t.get("convention", "none"))
        self.register_buffer("levels", torch.tensor(t["levels"], dtype=torch.float64))
        self.register_buffer("thresholds", torch.tensor(t["thresholds"], dtype=torch.float64))
        for name in _DERIVED:
            self.register_buffer(name, None, persistent=False)
        # q_m as a Python float, so that a forward on a GPU never waits to read it back;
        # refreshed when a state_dict is loaded
        self._q_max = float(t["levels"][-1])
        _refresh_derived(self)
        self.register_load_state_dict_post_hook(_refresh_derived)

    @property
    def q_max(self) -> float:
        """The largest level ``q_m`` (clip point of the clipped and log-tailed backward)."""
        return self._q_max

    def forward(self, x):
        if self.rule == "caffe":
            return caffe_hwgq(x, self.caffe_centers, self.caffe_thresholds, self._clip32)
        if self.rule == "edmips":
            return edmips_hwgq(x, self._step, self._clip)
        return halfwave_quantize(x, self.thresholds, self.levels, self.bounds32,
                                 self.levels32, self.levels16, self.levelsbf16, self._q_max,
                                 self._q_max32, self.backward, self.return_index)

    def _apply(self, fn, *args, **kwargs):
        # keep the table (float64) and its derived boundaries (their own dtypes) whatever
        # dtype conversion is applied to the module; only the device follows
        kept = {name: self._buffers[name] for name in ("levels", "thresholds", *_DERIVED)
                if self._buffers.get(name) is not None}
        super()._apply(fn, *args, **kwargs)
        for name, original in kept.items():
            moved = self._buffers[name]
            self._buffers[name] = original.to(device=moved.device, dtype=original.dtype)
        return self

    def extra_repr(self) -> str:
        rule = "" if self.rule == "exact" else f", rule={self.rule}"
        return (f"bits={self.bits}, n_levels={self.levels.numel()}, "
                f"convention={self.convention}, backward={self.backward}, "
                f"q_max={self.q_max:.6g}{rule}")
