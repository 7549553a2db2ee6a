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

from lloydmax.errors import MissingDependencyError

try:
    import torch
    from torch import nn
    from torch.autograd.function import once_differentiable
except ImportError as exc:  # pragma: no cover - exercised with torch hidden
    raise MissingDependencyError(
        "lloydmax.torch needs PyTorch: pip install 'lloydmax[torch]'") from exc

from lloydmax._torch_channels import ChannelQuantizer, LearnableLevelsQuantizer
from lloydmax._torch_convert import ConversionSummary, ReplacedLayer, convert, onnx_metadata
from lloydmax._torch_lookup import (
    BACKWARDS,
    HalfWaveQuantizeFunction,
    HalfWaveQuantizer,
    halfwave_quantize,
    quantize,
    round_down_float32,
)
from lloydmax._torch_tables import read_table
from lloydmax._torch_trainers import TSQReLU2B, edmips_weight
from lloydmax._torch_weights import (
    BinaryWeightFunction,
    QuantConv2d,
    QuantLinear,
    TernaryWeightFunction,
    UniformWeightFunction,
    binary_weight,
    optimal_uniform_step,
    syq_initial_scales,
    syq_weight,
    ternary_weight,
    uniform_weight,
)

__all__ = [
    "BACKWARDS",
    "read_table",
    "round_down_float32",
    "quantize",
    "HalfWaveQuantizeFunction",
    "HalfWaveQuantizer",
    "halfwave_quantize",
    "ChannelQuantizer",
    "LearnableLevelsQuantizer",
    "SignHardTanhFunction",
    "SignHardTanh",
    "sign_hardtanh",
    "BinaryWeightFunction",
    "TernaryWeightFunction",
    "binary_weight",
    "ternary_weight",
    "uniform_weight",
    "optimal_uniform_step",
    "UniformWeightFunction",
    "edmips_weight",
    "TSQReLU2B",
    "syq_weight",
    "syq_initial_scales",
    "QuantConv2d",
    "QuantLinear",
    "convert",
    "onnx_metadata",
    "ConversionSummary",
    "ReplacedLayer",
]


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
