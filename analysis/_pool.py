"""Pooling the channels of a per-channel histogram into one per-tensor histogram."""
from __future__ import annotations

import math

import numpy as np

from lloydmax.errors import InvalidDataError, InvalidInputError

from ._grid import WeightedPoints, canonical_grid, merge_points
from ._histfile import HistogramArrays
from ._kernels import COL_ZERO


def pooled(hist, channels=None):
    """One per-tensor histogram of ``hist``'s given channels (default: all).

    Every channel is re-binned onto the canonical grid of their joint range (exact:
    power-of-two grids only coarsen), then the counts, the zero/NaN/Inf counts and the
    exact sums are added.  The grid depends on the range only, so the result is
    bit-identical to the histogram of the same values collected per tensor; the cost is
    one kernel pass over the channels and one copy of their counts."""
    n_ch = hist.n_channels
    if n_ch is None:
        raise InvalidInputError("the histogram has seen no data yet")
    chans = np.arange(n_ch) if channels is None else channel_indices(hist, channels)
    every = chans.size == n_ch and np.array_equal(chans, np.arange(n_ch))
    # one copy of each array (fancy indexing copies already): widening moves it in place
    part = HistogramArrays(*((a.copy() if every else a[chans]) for a in hist.arrays()))
    tmp = type(hist)(hist.n_bins, axis=0)
    tmp.restore(part)
    lo = float(part.lohi[:, 0].min()) if chans.size else math.inf
    hi = float(part.lohi[:, 1].max()) if chans.size else -math.inf
    if lo <= hi:
        tmp.widen_ranges(np.full(chans.size, lo), np.full(chans.size, hi))
    # the temporary's own arrays, read without integer_state()'s copies (this module is
    # the histogram's own helper)
    tmp._sums.normalize()
    counts, stats, limbs = tmp._bins.counts, tmp._stats, tmp._sums.limbs
    out = type(hist)(hist.n_bins, strict=hist.strict)
    lohi = np.array([[lo, hi]]) if lo <= hi else HistogramArrays.empty(1, 1).lohi
    grid = (np.array([canonical_grid(lo, hi, hist.n_bins)], dtype=np.int64) if lo <= hi
            else np.zeros((1, 2), dtype=np.int64))
    # limbs are normalised below 2^32, so sums over fewer than 2^31 channels fit int64
    out.restore(HistogramArrays(
        counts.sum(axis=0, keepdims=True), grid, lohi, stats.sum(axis=0, keepdims=True),
        limbs.sum(axis=0, keepdims=True)))
    out._sums.normalize()
    return out


def channel_indices(hist, channels) -> np.ndarray:
    """``hist._channel`` of each channel, vectorised for integer arrays and lists."""
    arr = np.asarray(channels)
    n_ch = hist.n_channels
    if arr.dtype.kind in "iu" and arr.ndim == 1 and n_ch is not None:
        if arr.size and not (-n_ch <= arr.min() and arr.max() < n_ch):
            bad = int(arr[(arr < -n_ch) | (arr >= n_ch)][0])
            raise InvalidInputError(f"channel {bad} is out of range for {n_ch} channel(s)")
        return arr.astype(np.int64) % n_ch
    return np.asarray([hist._channel(c) for c in channels], dtype=np.int64)


def pooled_points(hist, channels) -> WeightedPoints:
    """The points of several channels pooled (each on its own grid), with the point 0,
    sorted and merged, in one vectorised pass; InvalidDataError when there are none."""
    chans = channel_indices(hist, channels)
    values, weights = hist._bins.pooled_centres(chans)
    points = merge_points(values, weights, float(np.sum(hist._stats[chans, COL_ZERO])))
    if points.values.size == 0:
        raise InvalidDataError("the histogram holds no finite values for these channels")
    return points
