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
"""
from __future__ import annotations

import torch

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
