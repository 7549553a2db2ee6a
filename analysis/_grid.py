"""The canonical power-of-two bin grid and the per-channel bin counts on it.

Bin $k$ covers $[k w, (k+1) w)$ with a power-of-two width $w = 2^e$, and a value goes to
bin $k = \\lfloor x / w \\rfloor$.  Dividing by a power of two is exact, so coarsening the
grid by $2^s$ maps bin $k$ to $\\lfloor k / 2^s \\rfloor$ (an integer shift) with no loss.
A channel stores ``n_bins`` int64 counts for bins $k_0 \\dots k_0 + n_{bins} - 1$ where,
for the smallest and largest finite non-zero values seen, $lo$ and $hi$:

$$e = \\min\\{e \\ge -1074 : \\lfloor hi/2^e \\rfloor - \\lfloor lo/2^e \\rfloor < n_{bins},\\;
\\max(|lo|, |hi|) < 2^{e+60}\\},\\qquad k_0 = \\lfloor lo / 2^e \\rfloor .$$

The grid is a function of $(lo, hi)$ only -- never of batch order -- so histograms of the
same values, however split into batches and merged, are bit-identical.  Non-negative
(ReLU) data get bins over $[lo, hi]$ only; no bin is spent on negatives.

This module holds :func:`canonical_grid` and :class:`BinGrid`, the counts of every channel
with the grid moves (re-binning onto the grid of a wider range) that updates, merges and
the distributed all-reduce need.  Exact zeros, NaN and Inf are in no bin; the histogram
counts them apart.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lloydmax.errors import InvalidDataError, InvalidInputError

from . import _binkern as K

__all__ = ["MAG_BITS", "BinGrid", "WeightedPoints", "canonical_grid", "merge_points"]

MAG_BITS = 60  # bin indices stay below 2^60 in magnitude


def canonical_grid(lo: float, hi: float, n_bins: int) -> tuple[int, int]:
    """``(e, k0)`` of the canonical grid covering the finite non-zero range [lo, hi].

    Exact: floors are taken on the rationals ``lo / 2^e`` with Python integers.
    """
    n_lo, d_lo = float(lo).as_integer_ratio()
    n_hi, d_hi = float(hi).as_integer_ratio()

    def floor_div(num, den, e):
        return num // (den << e) if e >= 0 else (num << -e) // den

    e = max(-1074, math.frexp(max(abs(lo), abs(hi)))[1] - MAG_BITS)
    half_span = hi / 2 - lo / 2  # no overflow
    if half_span > 0:
        e = max(e, math.frexp(half_span)[1] + 1 - (n_bins.bit_length() - 1) - 1)
    while True:
        k_lo = floor_div(n_lo, d_lo, e)
        if floor_div(n_hi, d_hi, e) - k_lo < n_bins:
            return e, k_lo
        e += 1


class BinGrid:
    """Bin counts of ``n_channels`` channels, each on the canonical grid of its own range.

    Parameters
    ----------
    n_channels : int
    n_bins : int
        Bins per channel, a power of two (the caller validates it).

    Attributes
    ----------
    n_bins : int
    counts : numpy.ndarray
        ``(n_channels, n_bins)`` int64 bin counts.
    lohi : numpy.ndarray
        ``(n_channels, 2)`` float64 smallest and largest finite non-zero value seen;
        ``(+inf, -inf)`` while a channel has none (then it has no grid).
    grid : numpy.ndarray
        ``(n_channels, 2)`` int64 ``(e, k0)`` of each channel, ``(0, 0)`` before it has one.
    w, inv_w : numpy.ndarray
        ``(n_channels,)`` float64 $2^e$ and $2^{-e}$ (0 where $2^{-e}$ is not a float).

    Notes
    -----
    The arrays are read and moved by the update kernel (``_binkern.update``, which
    re-grids every channel whose range grows, in the same call), and read by the file
    format.  Besides that kernel only the methods here change them; they keep ``grid``,
    ``w`` and ``inv_w`` the canonical grid of ``lohi``.
    """

    def __init__(self, n_channels: int, n_bins: int):
        self.n_bins = n_bins
        self.counts = np.zeros((n_channels, n_bins), dtype=np.int64)
        self.grid = np.zeros((n_channels, 2), dtype=np.int64)  # (e, k0)
        self.lohi = np.empty((n_channels, 2), dtype=np.float64)
        self.lohi[:, 0] = np.inf
        self.lohi[:, 1] = -np.inf
        self.inv_w = np.ones(n_channels, dtype=np.float64)
        self.w = np.ones(n_channels, dtype=np.float64)

    @classmethod
    def from_arrays(cls, counts: np.ndarray, grid: np.ndarray, lohi: np.ndarray) -> BinGrid:
        """Adopt stored arrays (int64 counts and grid, float64 lohi, one row per channel).

        The caller (the file reader) has checked ``grid`` against ``lohi``; it is taken as
        it is, and ``w`` / ``inv_w`` follow from it.
        """
        new = cls(counts.shape[0], counts.shape[1])
        new.counts, new.lohi = counts, lohi
        new.grid = np.array(grid, dtype=np.int64).reshape(-1, 2)
        e = new.grid[:, 0]
        # as set_grid, for every channel at once: 2^e, and 2^-e where it is a float
        new.w = np.ldexp(1.0, e.astype(np.int32))
        new.inv_w = np.where(e >= -1023, np.ldexp(1.0, (-np.maximum(e, -1023)).astype(np.int32)),
                             0.0)
        return new

    def copy(self) -> BinGrid:
        """An independent copy."""
        new = BinGrid.__new__(BinGrid)
        new.__dict__.update({k: (v.copy() if isinstance(v, np.ndarray) else v)
                             for k, v in self.__dict__.items()})
        return new

    def __eq__(self, other):
        if not isinstance(other, BinGrid):
            return NotImplemented
        return all(np.array_equal(getattr(self, name), getattr(other, name))
                   for name in ("counts", "grid", "lohi"))

    __hash__ = None

    @property
    def n_channels(self) -> int:
        return self.counts.shape[0]

    def has_range(self, ch: int) -> bool:
        """Whether channel ``ch`` has seen a finite non-zero value (and so has a grid)."""
        return bool(self.lohi[ch, 0] <= self.lohi[ch, 1])

    # ------------------------------------------------------------------ grid moves
    def set_grid(self, ch: int, e: int, k0: int) -> None:
        """Put channel ``ch`` on the grid ``(e, k0)`` (its counts are not moved)."""
        self.grid[ch] = (e, k0)
        self.w[ch] = math.ldexp(1.0, e)
        # 2^-e is a float only for e >= -1023; below, the kernel divides by w
        self.inv_w[ch] = math.ldexp(1.0, -e) if e >= -1023 else 0.0

    def move(self, ch: int, lo: float, hi: float) -> None:
        """Re-bin channel ``ch`` onto the canonical grid of [lo, hi] (a superset range)."""
        K.move_channel(self.counts, self.grid, self.lohi, self.inv_w, self.w, int(ch),
                       float(lo), float(hi), np.empty(self.n_bins, dtype=np.int64))

    def widen(self, lo: np.ndarray, hi: np.ndarray) -> None:
        """Move every channel onto the canonical grid of ``[lo[c], hi[c]]`` -- a range that
        contains its own, e.g. the range over all workers; channels with ``lo > hi`` (no
        value anywhere) stay as they are.  One kernel pass over all channels."""
        lo = np.asarray(lo, dtype=np.float64).reshape(-1)
        hi = np.asarray(hi, dtype=np.float64).reshape(-1)
        given = lo <= hi
        own = self.lohi[:, 0] <= self.lohi[:, 1]
        bad = given & own & ~((lo <= self.lohi[:, 0]) & (self.lohi[:, 1] <= hi))
        if bad.any():
            ch = int(np.flatnonzero(bad)[0])
            raise InvalidInputError(f"channel {ch}: [{lo[ch]!r}, {hi[ch]!r}] does not contain "
                                    "the channel's own range")
        K.widen_grids(self.counts, self.grid, self.lohi, self.inv_w, self.w, lo, hi,
                      np.empty(self.n_bins, dtype=np.int64))

    def add(self, other: BinGrid) -> None:
        """Add the counts of ``other`` (same shape), both on the grid of the joint range
        (one kernel pass over all channels)."""
        K.merge_grids(self.counts, self.grid, self.lohi, self.inv_w, self.w, other.counts,
                      other.grid, other.lohi, np.empty(self.n_bins, dtype=np.int64))

    def set_counts(self, counts: np.ndarray) -> None:
        """Replace the counts by int64 ``counts`` of the same shape on the same grids (e.g.
        their sum over workers that share these grids)."""
        self.counts = counts

    # ------------------------------------------------------------------ bins of a channel
    def defined_grid(self, ch: int) -> tuple[int, int]:
        """``(e, k0)`` of channel ``ch``.

        Raises
        ------
        InvalidDataError
            When the channel has no finite non-zero value, so no grid.
        """
        if not self.has_range(ch):
            raise InvalidDataError("no finite non-zero values in this channel: "
                                   "the bin grid is undefined")
        e, k0 = (int(v) for v in self.grid[ch])
        return e, k0

    def edges(self, ch: int) -> np.ndarray:
        """The ``n_bins + 1`` bin edges $k w$, $k = k_0 \\dots k_0 + n_{bins}$ (float64)."""
        e, k0 = self.defined_grid(ch)
        return np.ldexp((k0 + np.arange(self.n_bins + 1)).astype(np.float64), e)

    def centers(self, ch: int) -> np.ndarray:
        """The ``n_bins`` bin centres $(k + 1/2) w$ (float64)."""
        e, k0 = self.defined_grid(ch)
        return np.ldexp((k0 + np.arange(self.n_bins)).astype(np.float64) + 0.5, e)

    def pooled_centres(self, chans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(centres, counts) of every non-empty bin of the channels ``chans``, unsorted:
        the centres $(k_0 + i + 1/2) 2^e$ of each channel's own grid, as :meth:`centers`
        computes them, without a copy of the counts when ``chans`` is every channel."""
        every = chans.size == self.counts.shape[0] and np.array_equal(
            chans, np.arange(chans.size))
        counts = self.counts if every else self.counts[chans]
        grid = self.grid if every else self.grid[chans]
        rows, cols = np.nonzero(counts)
        centres = np.ldexp((grid[rows, 1] + cols).astype(np.float64) + 0.5,
                           grid[rows, 0].astype(np.int32))
        return centres, counts[rows, cols].astype(np.float64)


@dataclass(frozen=True)
class WeightedPoints:
    """Bin centres (sorted, with the exact zero as its own point) and their counts.

    Unpacks as ``values, weights = hist.to_weighted_points()``.
    """

    values: np.ndarray
    weights: np.ndarray

    def __iter__(self):
        return iter((self.values, self.weights))


def merge_points(values, weights, zeros: float = 0.0) -> WeightedPoints:
    """Points from several grids in value order, equal values merged (their counts
    add up), with the point 0 weighted by ``zeros`` when it is non-zero."""
    if zeros:
        values, weights = np.append(values, 0.0), np.append(weights, zeros)
    if values.size == 0:
        return WeightedPoints(np.zeros(0), np.zeros(0))
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    starts = np.flatnonzero(np.concatenate([[True], np.diff(values) > 0]))
    return WeightedPoints(values[starts], np.add.reduceat(weights, starts))
