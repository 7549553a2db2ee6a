"""PyTorch weight quantizers: binary (XNOR alpha), ternary (TWN, the exact optimum, SYQ)
and uniform b-bit weights (the exact MSE-optimal step) with a straight-through backward,
and the layers that use them.  Part of :mod:`lloydmax.torch`, which re-exports every
public name here.

Groups (``group=``): one scale per output channel (``"channel"``, dim 0), per SYQ
subgroup (``"pixel"``: one per kernel position ``(kh, kw)`` of a conv weight, one per
layer for a Linear weight, as SYQ's code) or for the whole tensor (``"layer"``)."""
from __future__ import annotations

import math
import warnings

import torch
from torch import nn
from torch.nn import functional as F

from ._torch_trainers import EDMIPS_GAUSSIAN_STEPS, edmips_weight
from .constants import SYQ_ETA, TWN_FACTOR
from .errors import InvalidInputError

WEIGHT_MODES = ("binary", "ternary", "uniform", "edmips", "syq")
TERNARY_THRESHOLDS = ("twn", "syq", "optimal")
WEIGHT_GROUPS = ("channel", "pixel", "layer")

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


def _group_name(group) -> str:
    """``True`` / ``False`` (the old ``per_channel`` flag) or a name in WEIGHT_GROUPS."""
    if group is True:
        return "channel"
    if group is False:
        return "layer"
    if group not in WEIGHT_GROUPS:
        raise InvalidInputError(f"unknown weight group {group!r}; valid names: "
                                f"{', '.join(WEIGHT_GROUPS)}")
    return group


def _grouped(w: torch.Tensor, group, rows_fn) -> torch.Tensor:
    """Apply ``rows_fn`` (per-row rule on a ``(G, m)`` tensor) to the groups of ``w``.

    ``channel``: one row per output channel (dim 0; a 1-D or 0-D tensor is one group);
    ``pixel``: one row per kernel position ``(kh, kw)`` of a 4-D conv weight, SYQ's
    subgroup (other shapes: one group, as SYQ's fully connected layers); ``layer``: one.
    """
    group = _group_name(group)
    if group == "channel" and w.dim() >= 2:
        return rows_fn(w.reshape(w.shape[0], -1)).reshape(w.shape)
    if group == "pixel" and w.dim() == 4:
        moved = w.permute(2, 3, 0, 1)
        rows = rows_fn(moved.reshape(moved.shape[0] * moved.shape[1], -1))
        return rows.reshape(moved.shape).permute(2, 3, 0, 1)
    return rows_fn(w.reshape(1, -1)).reshape(w.shape)


def _binary(w, per_channel):
    if not isinstance(per_channel, bool):
        return _grouped(w, per_channel, lambda rows: _binary(rows, True))
    alpha = _channel_reduce(w.abs(), per_channel, "mean")
    return torch.where(w >= 0, alpha, -alpha)


def _ternary_delta(absw, threshold, per_channel):
    if isinstance(threshold, str):
        if threshold == "twn":
            return TWN_FACTOR * _channel_reduce(absw, per_channel, "mean")
        if threshold == "syq":
            return SYQ_ETA * _channel_reduce(absw, per_channel, "max")
        if threshold == "optimal":
            return _optimal_ternary_rows(absw.reshape(absw.shape[0], -1) if per_channel
                                         and absw.dim() >= 2 else absw.reshape(1, -1))[0]
        raise InvalidInputError(f"unknown ternary threshold {threshold!r}; valid: "
                                f"{', '.join(TERNARY_THRESHOLDS)} or a number >= 0")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not (
            math.isfinite(threshold) and threshold >= 0):
        raise InvalidInputError(f"ternary threshold must be 'twn', 'syq', 'optimal' or a "
                                f"finite number >= 0, got {threshold!r}")
    return torch.tensor(float(threshold), dtype=absw.dtype, device=absw.device)


def _optimal_ternary_rows(rows: torch.Tensor):
    """Exact MSE-optimal ternary ``(threshold, alpha)`` of each row, shape ``(G, 1)``,
    in float64.

    For the support made of the ``k`` largest magnitudes the least-squares scale is
    their mean ``alpha_k = S_k / k`` and the squared error is ``sum w^2 - S_k^2 / k``; so
    the best ``k`` maximises ``S_k^2 / k``.  One sort and one cumulative sum give every
    ``k``; inside a run of tied magnitudes ``S_k^2 / k`` is convex in ``k``, so only run
    ends are candidates and the support is exactly ``|w| > threshold`` (the next
    magnitude).  The first best ``k`` wins a tie, as :func:`lloydmax.weights.ternary`.
    An all-zero row gets threshold 0 and scale 0.
    """
    mags = rows.detach().abs().to(torch.float64).sort(dim=1, descending=True).values
    csum = mags.cumsum(dim=1)
    k = torch.arange(1, mags.shape[1] + 1, dtype=torch.float64, device=mags.device)
    nxt = torch.cat([mags[:, 1:], torch.zeros_like(mags[:, :1])], dim=1)
    run_end = mags > nxt  # the end of a run of ties, and a non-zero magnitude
    gain = torch.where(run_end, csum * csum / k, torch.full_like(csum, -math.inf))
    best = gain.argmax(dim=1, keepdim=True)
    has = run_end.gather(1, best)
    zero = torch.zeros_like(nxt[:, :1])
    threshold = torch.where(has, nxt.gather(1, best), zero)
    alpha = torch.where(has, csum.gather(1, best) / (best + 1).to(torch.float64), zero)
    return threshold, alpha


def _optimal_ternary(rows):
    threshold, alpha = _optimal_ternary_rows(rows)
    support = rows.detach().abs().to(torch.float64) > threshold
    scale = alpha.to(rows.dtype)
    zero = torch.zeros((), dtype=rows.dtype, device=rows.device)
    return torch.where(support, torch.where(rows > 0, scale, -scale), zero)


def optimal_uniform_step(rows: torch.Tensor, bits: int) -> torch.Tensor:
    """The exact MSE-optimal step ``Delta`` of the symmetric ``2^b``-level mid-rise
    uniform quantizer (levels ``+-(j + 1/2) Delta``, ``j < 2^b / 2``, outer cells
    clipped) for each row of ``rows`` (``(G, m)``), as float64 ``(G, 1)``.

    As ``Delta`` falls, a magnitude ``a`` moves up one level each time ``Delta`` passes
    ``a / k``, ``k = 1 .. 2^b/2 - 1``.  Between two consecutive such breakpoints every
    weight's level index is fixed, so the squared error is the quadratic
    ``sum w^2 - 2 Delta A + Delta^2 B`` with ``A = sum a c`` and ``B = sum c^2`` over the
    half-odd level magnitudes ``c``; each crossing adds ``a`` to ``A`` and ``2k`` to
    ``B``.  Sorting the ``m (2^b/2 - 1)`` breakpoints and taking cumulative sums gives
    every segment; the minimiser of each quadratic, clipped to its segment, and the best
    of them is the global optimum (a weight on a breakpoint is equidistant from both
    levels, so the segment ends are exact too).  O(m 2^b log(m 2^b)) per row.
    An all-zero row gets step 0.  A tensor of another shape is read as one row per
    index of dim 0 (a 0-D or 1-D tensor as one row).  Rows are searched in chunks of
    about 2^22 breakpoints, which bounds the memory at 5-8 bits.
    """
    _check_bits(bits, 8)
    a = rows.detach().abs().to(torch.float64)
    a = a.reshape(a.shape[0], -1) if a.dim() >= 2 else a.reshape(1, -1)
    chunk = max(1, 2 ** 22 // (a.shape[1] * max(1, 2 ** bits // 2 - 1)))
    if a.shape[0] > chunk:
        return torch.cat([_optimal_step_rows(a[i:i + chunk], bits)
                          for i in range(0, a.shape[0], chunk)])
    return _optimal_step_rows(a, bits)


def _optimal_step_rows(a: torch.Tensor, bits: int) -> torch.Tensor:
    g, m = a.shape
    a0 = 0.5 * a.sum(dim=1, keepdim=True)
    b0 = torch.full_like(a0, 0.25 * m)
    half = 2 ** bits // 2
    if half == 1:  # binary: no breakpoint, the XNOR scale Delta / 2 = mean |w|
        return a0 / b0
    k = torch.arange(1, half, dtype=torch.float64, device=a.device)
    events = (a.unsqueeze(-1) / k).reshape(g, -1)
    order = events.argsort(dim=1, descending=True)
    points = events.gather(1, order)
    d_a = a.unsqueeze(-1).expand(g, m, half - 1).reshape(g, -1).gather(1, order)
    d_b = (2.0 * k).expand(g, m, half - 1).reshape(g, -1).gather(1, order)
    big_a = torch.cat([a0, a0 + d_a.cumsum(dim=1)], dim=1)
    big_b = torch.cat([b0, b0 + d_b.cumsum(dim=1)], dim=1)
    upper = torch.cat([torch.full_like(a0, math.inf), points], dim=1)
    lower = torch.cat([points, torch.zeros_like(a0)], dim=1)
    cand = torch.minimum(torch.maximum(big_a / big_b, lower), upper)
    err = cand * (cand * big_b - 2.0 * big_a)  # the error minus the constant sum w^2
    return cand.gather(1, err.argmin(dim=1, keepdim=True))


def _uniform_rows(rows, bits):
    step = optimal_uniform_step(rows, bits)
    n = 2 ** bits
    safe = torch.where(step > 0, step, torch.ones_like(step))
    # thresholds at 0, +-Delta, ...: w lies in cell ceil(w / Delta) + n/2 - 1 (a value
    # on a threshold goes to the lower level, as QuantizerTable and weights.uniform)
    index = (torch.ceil(rows.detach().to(torch.float64) / safe) + (n // 2 - 1)).clamp(0, n - 1)
    codes = 2.0 * index - (n - 1)
    out = (codes * (0.5 * step)).to(rows.dtype)
    return torch.where(step > 0, out, torch.zeros_like(out))


def _ternary(w, threshold, per_channel):
    if not isinstance(per_channel, bool):
        return _grouped(w, per_channel, lambda rows: _ternary(rows, threshold, True))
    if threshold == "optimal":
        return _grouped(w, per_channel, _optimal_ternary)
    absw = w.abs()
    support = absw > _ternary_delta(absw, threshold, per_channel)
    kept = torch.where(support, absw, torch.zeros_like(absw))
    count = _channel_reduce(support.to(w.dtype), per_channel, "sum")
    alpha = _channel_reduce(kept, per_channel, "sum") / count.clamp(min=1)
    zero = torch.zeros((), dtype=w.dtype, device=w.device)
    return torch.where(support, torch.where(w > 0, alpha, -alpha), zero)


class BinaryWeightFunction(torch.autograd.Function):
    """``alpha * sign(w)`` forward (``w >= 0 -> +1``; alpha = mean |w| per output
    channel, XNOR-Net / HWGQ eq. 2), straight-through backward (gradient unchanged).
    ``apply(w, per_channel)``: ``True``, ``False`` or a group name."""

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


class UniformWeightFunction(torch.autograd.Function):
    """Uniform b-bit weights with the exact optimal step per group; straight-through."""

    @staticmethod
    def forward(ctx, w, bits, group="channel"):
        return _grouped(w, group, lambda rows: _uniform_rows(rows, bits))

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out, None, None


def binary_weight(w: torch.Tensor, per_channel: bool = True, *, group=None) -> torch.Tensor:
    """Binary weights ``alpha * sign(w)`` with a straight-through gradient.

    ``B = sign(W)`` (``w >= 0 -> +1``) and ``alpha = ||W||_1 / n`` per output channel
    (dim 0), the scale that minimises ``||W - alpha B||^2`` (XNOR-Net; HWGQ eq. 2).
    ``per_channel=False`` or a tensor with fewer than 2 dims uses one scale;
    ``group="pixel"`` one per SYQ subgroup (see the module docstring).
    """
    return BinaryWeightFunction.apply(w, per_channel if group is None else _group_name(group))


def ternary_weight(w: torch.Tensor, threshold="twn", per_channel: bool = True, *,
                   group=None):
    """Ternary weights ``alpha * t``, ``t in {-1, 0, +1}``, with a straight-through gradient.

    ``t = sign(w)`` where ``|w| > Delta``, else 0; ``alpha`` is the mean of ``|w|`` over
    that support, which minimises ``||W - alpha t||^2`` for the fixed support.

    Parameters
    ----------
    threshold : "twn", "optimal", "syq" or float
        ``twn``: ``Delta = 0.7 E|w|`` (TWN, Li & Liu 2016); ``optimal``: the support and
        scale that minimise the group's squared error exactly (the best top-``k``
        support by enumeration, O(n log n); TSQ's least-squares scale for it); ``syq``:
        ``Delta = 0.05 max|w|`` of the group (SYQ's eta; **not** SYQ's codebook, which
        takes the max over the layer and unscaled +-1 at the threshold: use
        :func:`syq_weight`; deprecated, see docs/trainers.md); a number: ``Delta``
        itself, in weight units.
    per_channel : bool
        ``Delta`` and ``alpha`` per output channel (dim 0) or one for the tensor.
    group : {"channel", "pixel", "layer"}, optional
        Overrides ``per_channel``: ``pixel`` is SYQ's subgroup (one per kernel position).
    """
    if threshold == "syq":
        _warn_syq()
    return TernaryWeightFunction.apply(w, threshold,
                                       per_channel if group is None else _group_name(group))


def uniform_weight(w: torch.Tensor, bits: int, group="channel") -> torch.Tensor:
    """Symmetric uniform b-bit weights with the exact MSE-optimal step of each group.

    ``2^b`` levels ``+-(j + 1/2) Delta`` (mid-rise, no zero level, the codebook of
    :func:`lloydmax.weights.uniform` and of EdMIPS), thresholds at ``0, +-Delta, ...``,
    the outer cells clipped; a value on a threshold goes to the lower level.  ``Delta``
    minimises the group's squared error exactly (see :func:`optimal_uniform_step`), so
    it adapts to heavy-tailed weights where a Gaussian step (``sigma * Delta*_b``) does
    not.  1 bit gives the XNOR binary weights.  Straight-through gradient.

    Parameters
    ----------
    bits : int
        1..8 (the exact search holds ``2^(b-1) - 1`` breakpoints per weight).
    group : {"channel", "pixel", "layer"}
        One step per output channel (default), per SYQ subgroup or for the tensor.
    """
    _check_bits(bits, 8)
    return UniformWeightFunction.apply(w, int(bits), _group_name(group))


def _check_bits(bits, top: int) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= top:
        raise InvalidInputError(f"bits must be an integer in 1..{top}, got {bits!r}")


def _warn_syq() -> None:
    # the default warning filter shows it once per calling line, not every step
    warnings.warn("ternary_weight(threshold='syq') is 0.05 * max|w| per group with a "
                  "support-mean scale, not SYQ's codebook; it is deprecated and will be "
                  "removed: use syq_weight(w, syq_initial_scales(w), binary=False) for "
                  "SYQ's own rule, or threshold='optimal' (the least-squares ternary "
                  "codebook) or 'twn'", FutureWarning, stacklevel=3)


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
torch.fx.wrap("uniform_weight")


def _check_weight_mode(weight, threshold, bits=None, group="channel"):
    if weight not in WEIGHT_MODES:
        raise InvalidInputError(
            f"unknown weight quantizer {weight!r}; valid names: {', '.join(WEIGHT_MODES)}")
    _group_name(group)
    if weight == "ternary":  # fail at construction, not at the first forward
        _ternary_delta(torch.ones(1), threshold, False)
    if weight == "uniform":
        _check_bits(bits, 8)
    if weight == "edmips" and bits not in EDMIPS_GAUSSIAN_STEPS:
        raise InvalidInputError(f"weight='edmips' needs bits in 1..4 (EdMIPS's "
                                f"gaussian_steps), got {bits!r}")
    if weight == "syq" and bits not in (1, 2):
        raise InvalidInputError(f"weight='syq' needs bits=1 (SYQ's binary mode) or 2 "
                                f"(ternary), got {bits!r}")


class _QuantWeightMixin:
    def _setup(self, weight, threshold, bits, group):
        self.weight_quant = weight
        self.ternary_threshold = threshold
        self.weight_bits = bits
        self.weight_group = _group_name(group)
        if weight == "syq":  # SYQ's learned scales, one per kernel pixel (conv) or layer
            self.syq_scales = nn.Parameter(syq_initial_scales(self.weight))

    def reset_syq_scales(self) -> None:
        """Start SYQ's scales again at the subgroup means of ``|w|`` (SYQ's
        initialisation), e.g. after the weights were replaced."""
        with torch.no_grad():
            self.syq_scales.copy_(syq_initial_scales(self.weight))

    def quantized_weight(self) -> torch.Tensor:
        """The binary, ternary, uniform or EdMIPS weight used in the forward pass."""
        mode, group = self.weight_quant, self.weight_group
        if mode == "binary":
            return binary_weight(self.weight, group=group)
        if mode == "uniform":
            return uniform_weight(self.weight, self.weight_bits, group)
        if mode == "edmips":
            return edmips_weight(self.weight, self.weight_bits)
        if mode == "syq":
            return syq_weight(self.weight, self.syq_scales, binary=self.weight_bits == 1)
        return ternary_weight(self.weight, self.ternary_threshold, group=group)

    def extra_repr(self) -> str:
        extra = f", weight={self.weight_quant}"
        if self.weight_quant == "ternary":
            extra += f", threshold={self.ternary_threshold!r}"
        if self.weight_quant in ("uniform", "edmips", "syq"):
            extra += f", bits={self.weight_bits}"
        if self.weight_group != "channel" and self.weight_quant not in ("edmips", "syq"):
            extra += f", group={self.weight_group}"
        return super().extra_repr() + extra


class QuantConv2d(_QuantWeightMixin, nn.Conv2d):
    """``nn.Conv2d`` whose forward uses quantized weights (straight-through gradient to
    the float weights).

    ``QuantConv2d(in_channels, out_channels, kernel_size, weight="binary", threshold="twn",
    bits=None, group="channel", **conv2d_kwargs)``: ``weight`` is ``"binary"`` (XNOR
    alpha), ``"ternary"`` (``threshold`` as :func:`ternary_weight`), ``"uniform"``
    (``bits``, exact optimal step, :func:`uniform_weight`) or ``"edmips"`` (``bits`` 1-4,
    EdMIPS's whole-tensor std rule, :func:`edmips_weight`) or ``"syq"`` (SYQ's code,
    :func:`syq_weight`, ``bits=1`` binary mode or ``2`` ternary, with a learned
    ``syq_scales`` parameter started at the subgroup means); ``group`` the scale's group
    (``"channel"``, ``"pixel"`` or ``"layer"``; EdMIPS has one per tensor, SYQ its own).
    """

    def __init__(self, in_channels, out_channels, kernel_size, weight: str = "binary",
                 threshold="twn", bits=None, group="channel", **kwargs):
        _check_weight_mode(weight, threshold, bits, group)
        super().__init__(in_channels, out_channels, kernel_size, **kwargs)
        self._setup(weight, threshold, bits, group)

    def forward(self, x):
        return self._conv_forward(x, self.quantized_weight(), self.bias)


class QuantLinear(_QuantWeightMixin, nn.Linear):
    """``nn.Linear`` with quantized weights (straight-through gradient):
    ``QuantLinear(in_features, out_features, weight="binary", threshold="twn", bits=None,
    group="channel", bias=True)``, the modes of :class:`QuantConv2d`."""

    def __init__(self, in_features, out_features, weight: str = "binary", threshold="twn",
                 bits=None, group="channel", **kwargs):
        _check_weight_mode(weight, threshold, bits, group)
        super().__init__(in_features, out_features, **kwargs)
        self._setup(weight, threshold, bits, group)

    def forward(self, x):
        return F.linear(x, self.quantized_weight(), self.bias)
