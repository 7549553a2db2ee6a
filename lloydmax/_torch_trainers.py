"""Faithful trainer rules for :class:`lloydmax.torch.HalfWaveQuantizer` (``rule=``): the
edge behaviour of the authors' own code, where it differs from the exact lookup.

* ``"caffe"``: the HWGQ Caffe layer (zhaoweicai/hwgq, ``src/caffe/layers/quant_layer.cpp``).
  Thresholds are the float32 midpoints of the float32 positive centers (lines 23-28,
  ``0.5*(c_i + c_{i+1})`` with a float32 sum), the last one ``FLT_MAX``; the forward
  (lines 49-62) sends ``x <= 0`` to ``-negative_slope`` (``-0.0``), a positive ``x`` to
  the first center whose threshold is ``>= x``, and leaves ``+inf`` and NaN at the 0 the
  output was cleared to (line 38).  The clipped backward (lines 93-98) passes the
  gradient where ``0 < x <= clip_thr`` in float32, ``x = q_m`` included.
* ``"edmips"``: EdMIPS (zhaoweicai/EdMIPS, ``models/quant_module.py`` lines 47 and
  64-70): ``clamp(x, 0, step * (2^b - 1))`` then ``torch.round(y / step) * step``
  (half to even), straight-through gradient through the rounding and the clamp's own
  gradient (passing at both ends).
* :class:`TSQReLU2B`: TSQ's ``ReLU2BLayer`` (``relu2b_layer.cpp``, ``Forward_cpu`` lines
  15-26, ``Backward_cpu`` lines 36 and 43): float32 ``x <= thresh -> 0``, then the
  double midpoints ``1.5*d``, ``2.5*d``; NaN falls through to the top level ``3*d``; the
  backward passes where ``0 < x < 3*d``, strictly below the top level.
* :func:`edmips_weight`: EdMIPS's weights (``models/quant_module.py``,
  ``_gauss_quantize`` lines 14-25): the step is ``gaussian_steps[b]`` times the whole
  tensor's (unbiased) std, mid-rise rounding, clamp, straight-through gradient.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ._torch_tables import read_table
from .constants import TSQ_EPS
from .errors import InvalidInputError, InvalidTableError

RULES = ("exact", "caffe", "edmips")
FLT_MAX = float(torch.finfo(torch.float32).max)


def caffe_tables(levels64: torch.Tensor):
    """Caffe's float32 centers (the positive levels) and thresholds (their float32
    midpoints, ``quant_layer.cpp`` lines 23-27)."""
    centers = levels64[1:].to(torch.float32)
    thresholds = (centers[:-1] + centers[1:]) * 0.5  # float32 sum, exact halving
    return centers, thresholds


class CaffeHWGQFunction(torch.autograd.Function):
    """The HWGQ Caffe layer's forward and ``relu`` backward with ``clip_thr``."""

    @staticmethod
    def forward(ctx, x, centers, thresholds, clip):
        keys = x.to(torch.float32)
        ctx.save_for_backward(keys)
        ctx.clip = clip
        ctx.dtype = x.dtype
        index = (keys.unsqueeze(-1) > thresholds).sum(dim=-1)
        value = centers[index]
        zero = torch.zeros((), dtype=torch.float32, device=x.device)
        value = torch.where((keys > FLT_MAX) | torch.isnan(keys), zero, value)
        value = torch.where(keys <= 0, -zero, value)
        return value.to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        (keys,) = ctx.saved_tensors
        passes = (keys > 0) & (keys <= ctx.clip)
        return torch.where(passes, grad_out, torch.zeros_like(grad_out)), None, None, None


def caffe_hwgq(x, centers, thresholds, clip: float):
    """The Caffe rule on precomputed float32 centers and thresholds (one FX leaf)."""
    return CaffeHWGQFunction.apply(x, centers, thresholds, clip)


class EdMIPSRoundFunction(torch.autograd.Function):
    """EdMIPS's ``_hwgq``: ``torch.round(x / step) * step`` forward, identity backward."""

    @staticmethod
    def forward(ctx, x, step):
        return torch.round(x / step) * step

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out, None


def edmips_hwgq(x, step: float, clip: float):
    """EdMIPS's ``HWGQ.forward``: clamp to ``[0, step * (2^b - 1)]``, round half to even
    on the grid, straight-through through the rounding."""
    return EdMIPSRoundFunction.apply(x.clamp(min=0.0, max=clip), step)


torch.fx.wrap("caffe_hwgq")


def check_rule(rule: str, table: dict, backward: str) -> None:
    """Refuse a rule that the table or the backward cannot follow."""
    if rule == "tsq":
        raise InvalidInputError("TSQ's rule is its own layer: lloydmax.torch.TSQReLU2B"
                                ".from_table(table) (its backward is strict at the top)")
    if rule not in RULES:
        raise InvalidInputError(f"unknown rule {rule!r}; valid names: {', '.join(RULES)}")
    levels = table["levels"]
    if rule == "caffe":
        if levels[0] != 0.0 or table["thresholds"][0] != 0.0:
            raise InvalidTableError("rule='caffe' needs an hwgq-convention table (level 0 "
                                    "and first threshold 0)")
        if backward == "log-tailed":
            raise InvalidInputError("rule='caffe' has the vanilla and clipped backward only")
    if rule == "edmips":
        step = levels[1] - levels[0]
        grid = [k * step for k in range(len(levels))]
        if levels[0] != 0.0 or any(abs(a - b) > 1e-12 * max(1.0, abs(b))
                                   for a, b in zip(levels, grid)):
            raise InvalidTableError("rule='edmips' needs a uniform table with levels "
                                    "k * step from 0")
        if backward != "clipped":
            raise InvalidInputError("rule='edmips' has EdMIPS's own backward: use "
                                    "backward='clipped'")


# ---------------------------------------------------------------------- TSQ

#: TSQ's ``relu_param`` ``delta`` of ``ReLU2BLayer`` (Wang et al., CVPR 2018) at unit
#: std, with ``thresh`` = :data:`lloydmax.constants.TSQ_EPS` (docs/trainers.md).
TSQ_DELTA = 0.6487


class TSQReLU2BFunction(torch.autograd.Function):
    """``relu2b_layer.cpp``: the forward of lines 15-26 and the backward of line 43."""

    @staticmethod
    def forward(ctx, x, thresh, mids, values, top):
        keys = x if x.dtype == torch.float64 else x.to(torch.float32)
        ctx.save_for_backward(keys)
        ctx.top = top
        # `bottom_data[i] <= 1.5*d`: the float x against a double midpoint; a NaN fails
        # every test and falls through to the top level
        above = ~(keys.to(torch.float64).unsqueeze(-1) <= mids)
        index = torch.where(keys <= thresh, 0, 1 + above.sum(dim=-1))
        return values[index].to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        (keys,) = ctx.saved_tensors
        passes = (keys > 0) & (keys < ctx.top)  # strict at the top: x = 3*d gets 0
        return (torch.where(passes, grad_out, torch.zeros_like(grad_out)), None, None,
                None, None)


def tsq_relu2b(x, float32_constants, float64_constants):
    """TSQ's rule on precomputed ``(thresh, mids, values, top)`` for ``Dtype = float``
    and ``Dtype = double`` (one FX leaf: the choice depends on ``x.dtype``)."""
    thresh, mids, values, top = (float64_constants if x.dtype == torch.float64 else
                                 float32_constants)
    return TSQReLU2BFunction.apply(x, thresh, mids, values, top)


torch.fx.wrap("tsq_relu2b")


class TSQReLU2B(nn.Module):
    """TSQ's activation layer ``ReLU2BLayer`` (Wang et al., CVPR 2018), bit for bit.

    ``relu2b_layer.cpp`` (``Forward_cpu`` lines 15-26): ``x <= thresh -> 0``, ``x <=
    1.5*d -> d``, ``x <= 2.5*d -> 2*d``, else ``3*d``.  ``thresh`` and ``d`` are float32
    (``Dtype``), the midpoints ``1.5*d`` are doubles, the top level ``3*d`` a float32
    product.  A NaN fails every comparison and gets the top level.  Backward (line 43):
    the gradient passes where ``0 < x < 3*d``: strict at the top level, where
    :class:`HalfWaveQuantizer`'s clipped backward passes at ``x = q_m``, and open over
    the dead zone ``(0, thresh]``.

    Parameters
    ----------
    thresh, delta : float
        The layer's ``relu_param`` (defaults: TSQ's 0.32 and 0.6487, unit std).
    bits : int
        2 is TSQ's layer; other widths extend it to ``2^b - 1`` positive levels
        ``k * d`` with midpoints ``(k + 1/2) * d``.

    ``TSQReLU2B.from_table(table)`` takes ``thresh``, ``delta`` and the width from a
    deadzone-convention uniform table (e.g. ``get_preset("tsq").activation_table(2)``).
    float64 input is decided in double, as the layer's ``Dtype = double`` instance does;
    every other dtype in float32.
    """

    def __init__(self, thresh: float = TSQ_EPS, delta: float = TSQ_DELTA, bits: int = 2):
        super().__init__()
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 16:
            raise InvalidInputError(f"bits must be an integer in 1..16, got {bits!r}")
        if not (math.isfinite(delta) and delta > 0 and math.isfinite(thresh)):
            raise InvalidInputError(f"TSQ needs a finite thresh and a positive delta, got "
                                    f"thresh={thresh!r}, delta={delta!r}")
        self.thresh, self.delta, self.bits = float(thresh), float(delta), int(bits)
        n = 2 ** bits
        for dtype, tag in ((torch.float32, "32"), (torch.float64, "64")):
            d = torch.tensor(self.delta, dtype=dtype)
            k = torch.arange(n, dtype=torch.float64)
            # Dtype(k*d): one rounding of the exact product (k*d is exact in double)
            values = (k * d.to(torch.float64)).to(dtype)
            mids = (torch.arange(1, n - 1, dtype=torch.float64) + 0.5) * d.to(torch.float64)
            self.register_buffer("values" + tag, values, persistent=False)
            self.register_buffer("mids" + tag, mids, persistent=False)
            setattr(self, "_thresh" + tag, float(torch.tensor(self.thresh, dtype=dtype)))
            setattr(self, "_top" + tag, float(values[-1]))

    @classmethod
    def from_table(cls, table) -> TSQReLU2B:
        """The layer for a deadzone uniform table: ``thresh = thresholds[0]``, ``delta =
        step``, ``bits`` from the level count."""
        t = read_table(table)
        levels, thresholds = t["levels"], t["thresholds"]
        n = len(levels)
        step = levels[1] - levels[0] if n > 1 else 0.0
        uniform = levels[0] == 0.0 and all(
            abs(v - k * step) <= 1e-9 * max(1.0, abs(v)) for k, v in enumerate(levels))
        if n < 2 or n & (n - 1) or not uniform or step <= 0:
            raise InvalidTableError("TSQReLU2B needs a uniform table with 2^b levels k * step "
                                    "from 0 (a deadzone table)")
        return cls(thresholds[0], step, n.bit_length() - 1)

    def forward(self, x):
        return tsq_relu2b(x, (self._thresh32, self.mids32, self.values32, self._top32),
                          (self._thresh64, self.mids64, self.values64, self._top64))

    def _apply(self, fn, *args, **kwargs):
        kept = {name: self._buffers[name] for name in ("values32", "values64", "mids32",
                                                       "mids64")}
        super()._apply(fn, *args, **kwargs)
        for name, original in kept.items():  # keep their dtypes; follow the device
            self._buffers[name] = original.to(device=self._buffers[name].device)
        return self

    def extra_repr(self) -> str:
        return f"thresh={self.thresh:g}, delta={self.delta:g}, bits={self.bits}"


# ---------------------------------------------------------------------- EdMIPS weights

#: EdMIPS ``models/quant_module.py`` line 7: the optimal uniform steps of N(0, 1).
EDMIPS_GAUSSIAN_STEPS = {1: 1.596, 2: 0.996, 3: 0.586, 4: 0.336}


class EdMIPSWeightFunction(torch.autograd.Function):
    """EdMIPS's ``_gauss_quantize`` forward (lines 14-21), identity backward (24-25)."""

    @staticmethod
    def forward(ctx, w, step, bits):
        lvls = 2 ** bits / 2
        # `alpha = x.std().item(); step *= alpha`: the unbiased std of the whole tensor,
        # times the unit step in double
        alpha = w.detach().std().to(torch.float64)
        scaled = alpha * step
        y = (torch.round(w / scaled + 0.5) - 0.5) * scaled
        thr = (lvls - 0.5) * scaled
        return torch.maximum(torch.minimum(y, thr.to(y.dtype)), (-thr).to(y.dtype))

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out, None, None


def edmips_weight(w: torch.Tensor, bits: int, step: float | None = None) -> torch.Tensor:
    """EdMIPS's weight quantizer, as its code computes it (zhaoweicai/EdMIPS,
    ``models/quant_module.py``, ``_gauss_quantize`` lines 11-25, used by ``QuantConv2d``
    and ``QuantLinear`` lines 85 and 106).

    ``step = gaussian_steps[bits] * std(w)`` with the unbiased std of the **whole
    tensor** (one scale per layer, not per channel); ``y = (round(w / step + 1/2) - 1/2)
    * step`` (mid-rise, ``torch.round`` half to even), clamped to ``+-(2^b/2 - 1/2) *
    step``.  Straight-through gradient.  ``step`` overrides EdMIPS's unit step (its
    table covers 1-4 bits: 1.596, 0.996, 0.586, 0.336).
    """
    if step is None:
        if bits not in EDMIPS_GAUSSIAN_STEPS:
            raise InvalidInputError(f"EdMIPS's gaussian_steps cover bits 1-4, got {bits!r}; "
                                    "pass step=")
        step = EDMIPS_GAUSSIAN_STEPS[bits]
    return EdMIPSWeightFunction.apply(w, float(step), int(bits))


torch.fx.wrap("edmips_weight")
