"""PyTorch weight quantizers: binary (XNOR alpha) and ternary (TWN, SYQ thresholds)
weights with a straight-through backward, and the layers that use them.  Part of
:mod:`lloydmax.torch`, which re-exports every public name here."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .constants import SYQ_ETA, TWN_FACTOR
from .errors import InvalidInputError

WEIGHT_MODES = ("binary", "ternary")
TERNARY_THRESHOLDS = ("twn", "syq")

# ---------------------------------------------------------------------- weights


def _channel_reduce(a: torch.Tensor, per_channel: bool, op: str) -> torch.Tensor:
    """Reduce over everything but dim 0 (per output channel) or over all, keeping a
    shape that broadcasts against ``a``."""
    if per_channel and a.dim() >= 2:
        flat = a.reshape(a.shape[0], -1)
        shape = (a.shape[0],) + (1,) * (a.dim() - 1)
    else:
        flat = a.reshape(1, -1)
        shape = (1,) * a.dim()
    if op == "mean":
        red = flat.mean(dim=1)
    elif op == "sum":
        red = flat.sum(dim=1)
    else:
        red = flat.amax(dim=1)
    return red.reshape(shape)


def _binary(w, per_channel):
    alpha = _channel_reduce(w.abs(), per_channel, "mean")
    return torch.where(w >= 0, alpha, -alpha)


def _ternary_delta(absw, threshold, per_channel):
    if isinstance(threshold, str):
        if threshold == "twn":
            return TWN_FACTOR * _channel_reduce(absw, per_channel, "mean")
        if threshold == "syq":
            return SYQ_ETA * _channel_reduce(absw, per_channel, "max")
        raise InvalidInputError(f"unknown ternary threshold {threshold!r}; valid: "
                                f"{', '.join(TERNARY_THRESHOLDS)} or a number >= 0")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not (
            math.isfinite(threshold) and threshold >= 0):
        raise InvalidInputError(f"ternary threshold must be 'twn', 'syq' or a finite number "
                                f">= 0, got {threshold!r}")
    return torch.tensor(float(threshold), dtype=absw.dtype, device=absw.device)


def _ternary(w, threshold, per_channel):
    absw = w.abs()
    support = absw > _ternary_delta(absw, threshold, per_channel)
    kept = torch.where(support, absw, torch.zeros_like(absw))
    count = _channel_reduce(support.to(w.dtype), per_channel, "sum")
    alpha = _channel_reduce(kept, per_channel, "sum") / count.clamp(min=1)
    zero = torch.zeros((), dtype=w.dtype, device=w.device)
    return torch.where(support, torch.where(w > 0, alpha, -alpha), zero)


class BinaryWeightFunction(torch.autograd.Function):
    """``alpha * sign(w)`` forward (``w >= 0 -> +1``; alpha = mean |w| per output
    channel, XNOR-Net / HWGQ eq. 2), straight-through backward (gradient unchanged)."""

    @staticmethod
    def forward(ctx, w, per_channel=True):
        return _binary(w, per_channel)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out, None


class TernaryWeightFunction(torch.autograd.Function):
    """``alpha * t`` forward with ``t = sign(w)`` on the support ``|w| > Delta`` and 0
    elsewhere; alpha = mean |w| over the support (the least-squares scale for that
    support, TWN, Li & Liu 2016).  Straight-through backward."""

    @staticmethod
    def forward(ctx, w, threshold="twn", per_channel=True):
        return _ternary(w, threshold, per_channel)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out, None, None


def binary_weight(w: torch.Tensor, per_channel: bool = True) -> torch.Tensor:
    """Binary weights ``alpha * sign(w)`` with a straight-through gradient.

    ``B = sign(W)`` (``w >= 0 -> +1``) and ``alpha = ||W||_1 / n`` per output channel
    (dim 0), the scale that minimises ``||W - alpha B||^2`` (XNOR-Net; HWGQ eq. 2).
    ``per_channel=False`` or a tensor with fewer than 2 dims uses one scale.
    """
    return BinaryWeightFunction.apply(w, per_channel)


def ternary_weight(w: torch.Tensor, threshold="twn", per_channel: bool = True):
    """Ternary weights ``alpha * t``, ``t in {-1, 0, +1}``, with a straight-through gradient.

    ``t = sign(w)`` where ``|w| > Delta``, else 0; ``alpha`` is the mean of ``|w|`` over
    that support, which minimises ``||W - alpha t||^2`` for the fixed support.

    Parameters
    ----------
    threshold : "twn", "syq" or float
        ``twn``: ``Delta = 0.7 E|w|`` (TWN, Li & Liu 2016); ``syq``: ``Delta = 0.05
        max|w|`` (SYQ's eta); a number: ``Delta`` itself, in weight units.
    per_channel : bool
        ``Delta`` and ``alpha`` per output channel (dim 0) or one for the tensor.
    """
    return TernaryWeightFunction.apply(w, threshold, per_channel)


class _SignIdentityFunction(torch.autograd.Function):
    """``sign(w) * mask`` forward; identity backward to ``w`` (SYQ overrides the
    gradients of ``Sign`` with ``Identity`` and of that ``Mul`` with ``Add``)."""

    @staticmethod
    def forward(ctx, w, mask):
        return torch.sign(w) * mask

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out, None


def syq_initial_scales(w: torch.Tensor) -> torch.Tensor:
    """SYQ's starting scales: mean ``|w|`` of each subgroup, one per kernel pixel
    ``(kh, kw)`` of a conv weight ``(out, in, kh, kw)`` (shape ``(1, 1, kh, kw)``), one for
    a Linear weight (shape ``()``)."""
    if w.dim() == 4:
        return w.detach().abs().mean(dim=(0, 1), keepdim=True)
    return w.detach().abs().mean()


def syq_weight(w: torch.Tensor, scales: torch.Tensor, eta: float = SYQ_ETA,
               binary: bool = True) -> torch.Tensor:
    """SYQ's weights exactly as its code computes them (julianfaraone/SYQ,
    ``tensorpack/examples/SYQ-AlexNet/quantize.py``, ``fine_grained_quant`` lines 13-47
    for conv, 60-72 for fully connected layers).

    ``eta_x = eta * max|w|`` over the whole tensor; where ``|w| > eta_x`` the weight is
    ``sign(w) * scale`` of its subgroup (``scales``, learned, broadcast against ``w``:
    ``(1, 1, kh, kw)`` per pixel, a scalar per layer); elsewhere it is ``sign(w)``
    unscaled in binary mode (the mode of SYQ's AlexNet script: such weights become +-1),
    and in ternary mode 0 where ``|w| < eta_x`` and ``sign(w)`` unscaled at exactly
    ``|w| = eta_x``.  ``sign(0) = 0`` as in TensorFlow.  Gradients: identity to ``w``
    through the sign (times the scale where applied), and to ``scales`` from the scaled
    weights.
    """
    eta_x = (w.detach().abs().amax() * eta)
    scaled = (w > eta_x) | (w < -eta_x)
    one = torch.ones((), dtype=w.dtype, device=w.device)
    if binary:
        mask_z = torch.ones_like(w)
    else:
        mask_z = torch.where((w < eta_x) & (w > -eta_x), torch.zeros_like(w), one)
    masker = torch.where(scaled, scales.to(w.dtype) * torch.ones_like(w), one)
    return _SignIdentityFunction.apply(w, mask_z) * masker


# FX keeps each weight quantizer as one call (their reductions branch on the shape)
torch.fx.wrap("binary_weight")
torch.fx.wrap("ternary_weight")


def _check_weight_mode(weight, threshold):
    if weight not in WEIGHT_MODES:
        raise InvalidInputError(
            f"unknown weight quantizer {weight!r}; valid names: {', '.join(WEIGHT_MODES)}")
    if weight == "ternary":  # fail at construction, not at the first forward
        _ternary_delta(torch.ones(1), threshold, False)


class _QuantWeightMixin:
    def quantized_weight(self) -> torch.Tensor:
        """The binary or ternary weight used in the forward pass."""
        if self.weight_quant == "binary":
            return binary_weight(self.weight)
        return ternary_weight(self.weight, self.ternary_threshold)

    def extra_repr(self) -> str:
        extra = f", weight={self.weight_quant}"
        if self.weight_quant == "ternary":
            extra += f", threshold={self.ternary_threshold!r}"
        return super().extra_repr() + extra


class QuantConv2d(_QuantWeightMixin, nn.Conv2d):
    """``nn.Conv2d`` whose forward uses binary or ternary weights (per output channel
    scales, straight-through gradient to the float weights).

    ``QuantConv2d(in_channels, out_channels, kernel_size, weight="binary"|"ternary",
    threshold="twn", **conv2d_kwargs)``.
    """

    def __init__(self, in_channels, out_channels, kernel_size, weight: str = "binary",
                 threshold="twn", **kwargs):
        _check_weight_mode(weight, threshold)
        super().__init__(in_channels, out_channels, kernel_size, **kwargs)
        self.weight_quant = weight
        self.ternary_threshold = threshold

    def forward(self, x):
        return self._conv_forward(x, self.quantized_weight(), self.bias)


class QuantLinear(_QuantWeightMixin, nn.Linear):
    """``nn.Linear`` with binary or ternary weights (per output feature scales,
    straight-through gradient): ``QuantLinear(in_features, out_features,
    weight="binary"|"ternary", threshold="twn", bias=True)``."""

    def __init__(self, in_features, out_features, weight: str = "binary", threshold="twn",
                 **kwargs):
        _check_weight_mode(weight, threshold)
        super().__init__(in_features, out_features, **kwargs)
        self.weight_quant = weight
        self.ternary_threshold = threshold

    def forward(self, x):
        return F.linear(x, self.quantized_weight(), self.bias)
