"""Direct Quantization's activation quantizers (Hoang et al., IJCAI 2020): one table per
channel, and levels that are learned.  Part of :mod:`lloydmax.torch`, which re-exports
:class:`ChannelQuantizer` and :class:`LearnableLevelsQuantizer`.

Both decide with comparisons ``x > boundary`` summed into a cell index (``Greater`` +
``ReduceSum`` in ONNX), so they export, compile and trace like
:class:`~lloydmax.torch.HalfWaveQuantizer`.
"""
from __future__ import annotations

import torch
from torch import nn

from ._torch_lookup import _round_down_scalar, round_down_float32
from ._torch_tables import read_table
from .errors import InvalidInputError, InvalidTableError

__all__ = ["ChannelQuantizer", "LearnableLevelsQuantizer"]


def _cells(keys, bounds):
    """Cell index of each key: how many boundaries lie strictly below it (a key on a
    boundary goes to the lower cell; NaN to 0, replaced by the caller)."""
    return (keys.unsqueeze(-1) > bounds).sum(dim=-1)


class _ChannelFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, bounds, values, offsets, q_max, vanilla):
        keys = x if x.dtype in (torch.float64, torch.float32) else x.to(torch.float32)
        ctx.save_for_backward(keys, q_max)
        ctx.vanilla = vanilla
        flat = _cells(keys, bounds) + offsets
        out = values.reshape(-1)[flat].to(x.dtype)
        return torch.where(torch.isnan(x), x, out)

    @staticmethod
    def backward(ctx, grad_out):
        keys, q_max = ctx.saved_tensors
        passes = keys > 0
        if not ctx.vanilla:
            passes = passes & (keys <= q_max)
        grad = torch.where(passes, grad_out, torch.zeros_like(grad_out))
        return grad, None, None, None, None, None


def channel_quantize(x, thresholds, bounds32, levels, levels32, q_max64, q_max32,
                     axis: int, vanilla: bool):
    """What :class:`ChannelQuantizer` computes (one FX leaf: it branches on the shape)."""
    if not x.is_floating_point():
        raise InvalidInputError("ChannelQuantizer needs floating input")
    n_channels, n_levels = levels.shape
    if x.shape[axis] != n_channels:
        raise InvalidInputError(f"input has {x.shape[axis]} channels on axis {axis}, the "
                                f"quantizer {n_channels}")
    shape = [1] * x.dim()
    shape[axis] = n_channels
    wide = x.dtype == torch.float64
    bounds = (thresholds if wide else bounds32).reshape(*shape, -1)
    values = levels if wide else levels32
    q_max = (q_max64 if wide else q_max32).reshape(shape)
    offsets = (torch.arange(n_channels, device=x.device) * n_levels).reshape(shape)
    return _ChannelFunction.apply(x, bounds, values, offsets, q_max, vanilla)


torch.fx.wrap("channel_quantize")


def _refresh_after_load(module, incompatible_keys):
    module._refresh()  # a module-level hook, so a saved whole module pickles


class ChannelQuantizer(nn.Module):
    """One half-wave table per channel (Direct Quantization's per-channel activation
    quantizer), bit-exact per channel with :meth:`lloydmax.QuantizerTable.quantize`.

    Parameters
    ----------
    tables : sequence of tables
        One per channel, all with the same number of levels (e.g.
        ``get_preset("dq").activation_tables(sigmas, bits)`` or the values of a
        per-channel ``best_tables``).
    backward : {"clipped", "vanilla"}
        Clipped ReLU at each channel's own top level, or ReLU.
    axis : int
        Channel axis of the input (1 for NCHW).
    """

    def __init__(self, tables, backward: str = "clipped", *, axis: int = 1):
        super().__init__()
        if backward not in ("clipped", "vanilla"):
            raise InvalidInputError(f"ChannelQuantizer backward must be 'clipped' or "
                                    f"'vanilla', got {backward!r}")
        read = [read_table(t) for t in tables]
        if not read:
            raise InvalidTableError("ChannelQuantizer needs one table per channel")
        sizes = {len(t["levels"]) for t in read}
        if len(sizes) != 1:
            raise InvalidTableError(f"the channel tables have different level counts "
                                    f"{sorted(sizes)}")
        if any(t["levels"][0] < 0.0 for t in read):
            raise InvalidTableError("ChannelQuantizer needs half-wave tables (no negative "
                                    "level)")
        self.backward, self.axis = backward, int(axis)
        self.register_buffer("levels", torch.tensor([t["levels"] for t in read],
                                                    dtype=torch.float64))
        self.register_buffer("thresholds", torch.tensor([t["thresholds"] for t in read],
                                                        dtype=torch.float64))
        for name in ("bounds32", "levels32", "q_max64", "q_max32"):
            self.register_buffer(name, None, persistent=False)
        self._refresh()
        self.register_load_state_dict_post_hook(_refresh_after_load)

    def _refresh(self):
        with torch.no_grad():
            self.bounds32 = round_down_float32(self.thresholds.reshape(-1)).reshape(
                self.thresholds.shape)
            self.levels32 = self.levels.to(torch.float32)
            self.q_max64 = self.levels[:, -1].clone()
            self.q_max32 = torch.tensor([_round_down_scalar(float(v)) for v in self.q_max64],
                                        dtype=torch.float32, device=self.levels.device)

    @property
    def n_channels(self) -> int:
        return self.levels.shape[0]

    def forward(self, x):
        return channel_quantize(x, self.thresholds, self.bounds32, self.levels,
                                self.levels32, self.q_max64, self.q_max32, self.axis,
                                self.backward == "vanilla")

    def extra_repr(self) -> str:
        return (f"channels={self.n_channels}, n_levels={self.levels.shape[1]}, "
                f"axis={self.axis}, backward={self.backward}")


class _LearnableFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, levels, thresholds):
        index = _cells(x, thresholds)
        ctx.save_for_backward(x, index, levels)
        return torch.where(torch.isnan(x), x, levels[index])

    @staticmethod
    def backward(ctx, grad_out):
        x, index, levels = ctx.saved_tensors
        passes = (x > levels[0]) & (x <= levels[-1])
        grad_x = torch.where(passes, grad_out, torch.zeros_like(grad_out))
        # each level receives the gradient of the outputs it produced (DQ's direct update)
        keep = ~torch.isnan(x)
        grad_levels = torch.zeros_like(levels).index_add_(
            0, index[keep].reshape(-1), grad_out[keep].reshape(-1).to(levels.dtype))
        return grad_x, grad_levels, None


class LearnableLevelsQuantizer(nn.Module):
    """Quantizer whose levels are parameters (Direct Quantization's direct update).

    The forward maps ``x`` to the nearest level (thresholds at the midpoints of the
    sorted levels, a value on a midpoint to the lower level); the gradient reaches the
    levels (each level gets the sum of the output gradients of its cell) and ``x``
    (clipped straight-through on ``(q_0, q_max]``).  In training mode the parameter is
    re-sorted in place before each forward, so the levels stay sorted whatever an
    optimizer step does.

    Parameters
    ----------
    table : path, mapping or QuantizerTable
        The starting levels, e.g. the exact table of the layer's data.
    """

    def __init__(self, table, *, bits: int | None = None, index: int | None = None):
        super().__init__()
        t = read_table(table, bits=bits, index=index)
        self.levels = nn.Parameter(torch.tensor(t["levels"], dtype=torch.float32))
        self.bits = int(t["bits"])

    @torch.no_grad()
    def sort_levels_(self) -> None:
        """Sort the level parameter in place."""
        self.levels.copy_(torch.sort(self.levels).values)

    def forward(self, x):
        if self.training:
            self.sort_levels_()
        levels = self.levels
        thresholds = (levels[:-1] + levels[1:]) * 0.5
        return _LearnableFunction.apply(x.to(levels.dtype), levels, thresholds.detach())

    def extra_repr(self) -> str:
        return f"bits={self.bits}, n_levels={self.levels.numel()}"

