"""Pooling the channels of a per-channel histogram into one per-tensor histogram."""
from __future__ import annotations

import math

import numpy as np

from lloydmax.errors import InvalidDataError, InvalidInputError

from ._binkern import pool_counts
from ._grid import WeightedPoints, canonical_grid, merge_points
from ._histfile import HistogramArrays
from ._kernels import COL_ZERO


def pooled(hist, channels=None):
    """One per-tensor histogram of ``hist``'s given channels (default: all).

    Every channel's counts are re-binned onto the canonical grid of their joint range
    (exact: power-of-two grids only coarsen) and added in one kernel pass
    (:func:`~lloydmax.analysis._binkern.pool_counts`), without copying or moving them;
    the zero/NaN/Inf counts and the exact sums (normalised limbs, each below 2^32, added
    in int64) are added too.  The grid depends on the range only, so the result is
    bit-identical to the histogram of the same values collected per tensor."""
    n_ch = hist.n_channels
    if n_ch is None:
        raise InvalidInputError("the histogram has seen no data yet")
    every = channels is None
    chans = np.arange(n_ch) if every else channel_indices(hist, channels)
    # the histogram's own arrays, read without integer_state()'s copies (this module is
    # the histogram's own helper).  Normalising the limbs in place changes no sum (a
    # restored state need not be normalised; the update kernel's always is)
    hist._sums.normalize()
    bins = hist._bins
    lohi_ch = bins.lohi if every else bins.lohi[chans]
    lo = float(lohi_ch[:, 0].min()) if chans.size else math.inf
    hi = float(lohi_ch[:, 1].max()) if chans.size else -math.inf
    counts = np.zeros((1, hist.n_bins), dtype=np.int64)
    if lo <= hi:
        e, k0 = canonical_grid(lo, hi, hist.n_bins)
        pool_counts(bins.counts, bins.grid, bins.lohi, chans, e, k0, counts[0])
        grid = np.array([[e, k0]], dtype=np.int64)
        lohi = np.array([[lo, hi]])
    else:
        grid = np.zeros((1, 2), dtype=np.int64)
        lohi = HistogramArrays.empty(1, 1).lohi
    stats = hist._stats if every else hist._stats[chans]
    limbs = hist._sums.limbs if every else hist._sums.limbs[chans]
    if chans.size >= 1 << 31:  # pragma: no cover - far beyond any layer
        raise OverflowError("too many channels to add in int64")
    out = type(hist)(hist.n_bins, strict=hist.strict)
    out.restore(HistogramArrays(counts, grid, lohi, stats.sum(axis=0, keepdims=True),
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
