"""torch.ao-style observer and fake-quantize module on exact histograms.

:class:`LloydMaxObserver` is a ``torch.ao.quantization.ObserverBase``: its forward adds the
input to an exact streaming :class:`~lloydmax.analysis.Histogram` (per tensor, or per
channel along ``ch_axis``) and returns the input unchanged; :meth:`LloydMaxObserver.table`
gives the globally optimal table of the data seen (the exact DP of
:func:`lloydmax._dp.solve_dp` on the histogram's weighted points).

:class:`LloydMaxFakeQuantize` is a ``torch.ao.quantization.FakeQuantizeBase``: it observes
while its observer is enabled and, while fake quantization is enabled, replaces its input
by the table's levels (exact lookup, straight-through gradient on ``[q_0, q_max]``).  It
sits in a ``QConfig`` for eager ``prepare_qat``; ``torch.ao.quantization.convert`` cannot
lower it (a lookup table has no affine scale and zero point, so
:meth:`calculate_qparams` raises): export the trained model with ``torch.onnx`` instead.
Imported lazily by :mod:`lloydmax.analysis` (it needs torch).
"""
from __future__ import annotations

import numpy as np
import torch
from torch.ao.quantization.fake_quantize import FakeQuantizeBase
from torch.ao.quantization.observer import ObserverBase

from lloydmax._dp import solve_dp
from lloydmax._torch_lookup import round_down_float32
from lloydmax.errors import InvalidDataError, InvalidInputError

from .histogram import Histogram

__all__ = ["LloydMaxFakeQuantize", "LloydMaxObserver"]

_NO_QPARAMS = ("a Lloyd-Max lookup table has no affine scale / zero point, so "
               "torch.ao.quantization.convert cannot lower it; export the QAT model with "
               "torch.onnx.export (the levels are in the graph)")


class LloydMaxObserver(ObserverBase):
    """Record an exact histogram of what passes through; forward returns its input.

    Parameters
    ----------
    ch_axis : int or None
        ``None`` (default): one histogram for the tensor; an axis: one per channel.
    n_bins : int
        Bins of the histogram (a power of two, see :class:`Histogram`).
    dtype : torch.dtype
        Passed to ``ObserverBase`` (torch.ao bookkeeping only).
    """

    def __init__(self, ch_axis: int | None = None, n_bins: int = 2048,
                 dtype=torch.quint8, **kwargs):
        super().__init__(dtype=dtype)
        self.ch_axis = ch_axis
        self.n_bins = n_bins
        self.histogram = Histogram(n_bins=n_bins, axis=ch_axis)
        self.updates = 0

    def forward(self, x):
        if x.numel():
            data = x.detach().to("cpu", torch.float64).numpy()
            self.histogram.update(data)
            self.updates += 1
        return x

    def table(self, bits: int, convention: str | None = None, **kwargs):
        """The exact DP table of the data seen (a list, one per channel, when per
        channel); ``convention`` pins the zero level as in :func:`lloydmax.solve`."""
        if self.updates == 0:
            raise InvalidDataError("the observer has seen no data yet")
        if self.ch_axis is None:
            v, w = self.histogram.to_weighted_points()
            return solve_dp(v, bits=bits, weights=w, convention=convention, **kwargs)
        n_ch = int(np.asarray(self.histogram.count).size)
        out = []
        for c in range(n_ch):
            v, w = self.histogram.to_weighted_points(c)
            out.append(solve_dp(v, bits=bits, weights=w, convention=convention, **kwargs))
        return out

    @torch.jit.export
    def calculate_qparams(self):
        raise NotImplementedError(_NO_QPARAMS)

    def extra_repr(self) -> str:
        return f"ch_axis={self.ch_axis}, n_bins={self.n_bins}, updates={self.updates}"


class _TableSTE(torch.autograd.Function):
    """Exact lookup forward (float32 boundaries rounded down); gradient passes where
    ``q_0 <= x <= q_max`` of the element's channel."""

    @staticmethod
    def forward(ctx, x, bounds, values, offsets, low, high):
        keys = x.to(torch.float32)
        ctx.save_for_backward(keys, low, high)
        flat = (keys.unsqueeze(-1) > bounds).sum(dim=-1) + offsets
        out = values.reshape(-1)[flat].to(x.dtype)
        return torch.where(torch.isnan(x), x, out)

    @staticmethod
    def backward(ctx, grad_out):
        keys, low, high = ctx.saved_tensors
        passes = (keys >= low) & (keys <= high)
        return torch.where(passes, grad_out, torch.zeros_like(grad_out)), None, None, None, \
            None, None


class LloydMaxFakeQuantize(FakeQuantizeBase):
    """Fake quantization with the exact DP table of the observed data (QAT).

    Parameters
    ----------
    bits : int
        Bit-width of the table.
    convention : str, optional
        Half-wave convention pinning a zero level (``"hwgq"`` for ReLU outputs).
    ch_axis : int or None
        Per-channel tables along this axis (e.g. 0 for weights), or one table.
    n_bins : int
        Histogram bins of the observer.

    Notes
    -----
    The table is recomputed from the observer's histogram at the first fake-quantized
    forward after new data was observed; call ``torch.ao.quantization.disable_observer``
    to freeze it.  The histograms accumulate over every observed batch (exactly,
    independent of batching).
    """

    def __init__(self, bits: int = 2, convention: str | None = None,
                 ch_axis: int | None = None, n_bins: int = 2048, **kwargs):
        super().__init__()
        self.bits = int(bits)
        self.convention = convention
        self.ch_axis = ch_axis
        self.activation_post_process = LloydMaxObserver(ch_axis=ch_axis, n_bins=n_bins)
        self._seen = -1
        for name in ("bounds32", "levels32", "low", "high"):
            self.register_buffer(name, None, persistent=False)

    def _refresh(self):
        tables = self.activation_post_process.table(self.bits, convention=self.convention)
        tables = tables if isinstance(tables, list) else [tables]
        sizes = {len(t.levels) for t in tables}
        if len(sizes) != 1:
            raise InvalidDataError("channels with too few distinct values for "
                                   f"{self.bits}-bit tables")
        thresholds = torch.tensor(np.array([t.thresholds for t in tables]),
                                  dtype=torch.float64)
        levels = torch.tensor(np.array([t.levels for t in tables]), dtype=torch.float64)
        self.bounds32 = round_down_float32(thresholds.reshape(-1)).reshape(thresholds.shape)
        self.levels32 = levels.to(torch.float32)
        self.low, self.high = self.levels32[:, 0].clone(), self.levels32[:, -1].clone()
        self.tables = tables
        self._seen = self.activation_post_process.updates

    def forward(self, x):
        if self.observer_enabled[0] == 1:
            self.activation_post_process(x)
        if self.fake_quant_enabled[0] != 1:
            return x
        if self._seen != self.activation_post_process.updates:
            self._refresh()
        n_ch, n_levels = self.levels32.shape
        shape = [1] * x.dim()
        if self.ch_axis is not None:
            if x.shape[self.ch_axis] != n_ch:
                raise InvalidInputError(f"input has {x.shape[self.ch_axis]} channels, the "
                                        f"tables {n_ch}")
            shape[self.ch_axis] = n_ch
        device = x.device
        offsets = (torch.arange(n_ch, device=device) * n_levels).reshape(shape)
        return _TableSTE.apply(x, self.bounds32.to(device).reshape(*shape, -1),
                               self.levels32.to(device), offsets,
                               self.low.to(device).reshape(shape),
                               self.high.to(device).reshape(shape))

    @torch.jit.export
    def calculate_qparams(self, **kwargs):
        raise NotImplementedError(_NO_QPARAMS)

    def extra_repr(self) -> str:
        return (f"bits={self.bits}, convention={self.convention}, ch_axis={self.ch_axis}, "
                f"fake_quant_enabled={int(self.fake_quant_enabled[0])}, "
                f"observer_enabled={int(self.observer_enabled[0])}")
