"""Exact, mergeable streaming histograms of activations (per tensor or per channel).

:class:`Histogram` is a composition of three parts, one module each:

* *Grid* (:mod:`lloydmax.analysis._grid`): per channel ``n_bins`` int64 counts on the
  power-of-two canonical grid of the channel's range $[lo, hi]$ of finite non-zero values.
  The grid is a function of $(lo, hi)$ only -- never of batch order -- so histograms of the
  same values, however split into batches and merged, are bit-identical.
* *Moments* (:mod:`lloydmax.analysis._moments`): exact $S_1, S_2$ in a superaccumulator
  (``mean`` and ``var`` rounded once); ``skewness`` and ``kurtosis`` from the exact bins,
  with an error bound (:meth:`Histogram.shape_error_bounds`).
* *File format* (:mod:`lloydmax.analysis._histfile`): the exact state as a dict, ``.json``
  or ``.npz`` file (``lloydmax.histogram/2``; ``/1`` files still load).

The streaming update -- the strict NaN / Inf check, the threads and the one kernel call
that scans, re-grids, bins and sums -- is :mod:`lloydmax.analysis._stream`.

Exact zeros (``-0.0`` too) are counted apart and sit in no bin.  NaN and +/-Inf are counted
and skipped with one warning per update, or raise :class:`~lloydmax.errors.InvalidDataError`
with ``strict=True``.  The count $n$ of the moments includes the zeros.  Memory does not
depend on how many values were seen: per channel ``n_bins`` counts and 210 limbs (one such
state more per extra thread during a large update).
"""
from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np

from lloydmax.errors import InvalidDataError, InvalidInputError

from . import _histfile
from ._grid import BinGrid, WeightedPoints
from ._grid import canonical_grid as canonical_grid  # re-exported: the grid of [lo, hi]
from ._histfile import SCHEMA, HistogramArrays
from ._kernels import COL_INF, COL_NAN, COL_ZERO
from ._moments import PowerSums, binned_shape, exact_std, moments, to_float
from ._pool import channel_indices, pooled, pooled_points
from ._stream import CHUNK, add_array, as_numeric, block_chunks, check_finite, chunks

__all__ = ["CHUNK", "SCHEMA", "Histogram", "WeightedPoints"]


class Histogram:
    """Streaming, exactly mergeable histogram with exact moments, per tensor or per channel.

    Parameters
    ----------
    n_bins : int
        Bins per channel, a power of two between 2 and 2**24 (default 2048).
    axis : int or None
        Channel axis of the arrays given to :meth:`update` (e.g. 1 for NCHW activations);
        ``None`` for one histogram over the whole tensor.  Each channel gets its own grid.
    strict : bool
        Raise :class:`~lloydmax.errors.InvalidDataError` on NaN / Inf instead of counting
        and skipping them with a warning.

    Notes
    -----
    Properties (``count``, ``zeros``, ``nan_count``, ``inf_count``, ``min``, ``max``,
    ``mean``, ``var``, ``std``, ``skewness``, ``kurtosis``) are Python scalars per tensor
    and arrays of length ``n_channels`` per channel.  ``mean`` of no values, the others of
    fewer than 2 values and ``skewness`` / ``kurtosis`` of constant data are NaN.

    ``a + b`` and :meth:`merge` return a new histogram; ``a += b`` merges in place.  Both
    require the same ``n_bins``, ``axis`` and channel count.

    The methods under "internal API" serve the rest of :mod:`lloydmax.analysis`.
    """

    def __init__(self, n_bins: int = 2048, axis: int | None = None, strict: bool = False):
        if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)):
            raise InvalidInputError(f"n_bins must be an integer, got {n_bins!r}")
        n_bins = int(n_bins)
        if not 2 <= n_bins <= 1 << 24 or n_bins & (n_bins - 1):
            raise InvalidInputError(f"n_bins must be a power of two in [2, 2**24], got {n_bins}")
        if axis is not None and (isinstance(axis, bool) or not isinstance(axis, (int, np.integer))):
            raise InvalidInputError(f"axis must be an integer or None, got {axis!r}")
        self._n_bins = n_bins
        self._axis = None if axis is None else int(axis)
        self.strict = bool(strict)
        self._allocate(1 if axis is None else 0)
        self._known = axis is None  # per channel: the count is fixed by the first update

    # ------------------------------------------------------------------ state
    def _allocate(self, n_ch: int) -> None:
        self._bins = BinGrid(n_ch, self._n_bins)  # counts on the canonical grids
        self._sums = PowerSums(n_ch)  # exact S1, S2
        self._stats = np.zeros((n_ch, 3), dtype=np.int64)  # nan, inf, zeros: in no bin

    def _ensure_channels(self, n_ch: int, axis) -> None:
        if not self._known:
            self._allocate(n_ch)
            self._known = True
        elif n_ch != self._stats.shape[0]:
            raise InvalidInputError(
                f"data has {n_ch} channels on axis {axis}, the histogram has "
                f"{self._stats.shape[0]}")

    def copy(self) -> Histogram:
        """An independent copy."""
        new = Histogram.__new__(Histogram)
        new.__dict__.update(self.__dict__)
        new._bins, new._sums, new._stats = self._bins.copy(), self._sums.copy(), self._stats.copy()
        return new

    # ------------------------------------------------------------------ update
    def update(self, data) -> Histogram:
        """Add the values of ``data`` (array-like of real numbers, any shape) and return self.

        Per channel, ``data`` must have the histogram's channel axis (negative axes count
        from the end) with the same length as earlier updates.

        Raises
        ------
        InvalidDataError
            Non-numeric data; NaN or Inf with ``strict=True`` (nothing is added then).
        InvalidInputError
            The channel axis is out of range, or the channel count changed.
        """
        self._warn_skipped(self._add(as_numeric(data), self._axis))
        return self

    def _add(self, arr: np.ndarray, axis: int | None):
        """Add ``arr`` with its channels on ``axis``; the number of NaN / Inf skipped."""
        if axis is not None:
            if not -arr.ndim <= axis < arr.ndim:
                raise InvalidInputError(
                    f"axis {axis} is out of range for data with {arr.ndim} dimension(s) "
                    f"(shape {arr.shape})")
            self._ensure_channels(arr.shape[axis], axis)
        return self._feed(arr, chunks(arr, axis)) if arr.size else 0

    def _feed(self, arr: np.ndarray, views) -> int:
        """Add the ``(x3, channel_offset)`` views of ``arr``; the number of NaN / Inf."""
        if self.strict:
            check_finite(arr)
        before = self._stats[:, :2].sum()
        for x3, c_off in views:
            add_array(x3, c_off, self._bins, self._sums, self._stats)
        return self._stats[:, :2].sum() - before

    def _warn_skipped(self, skipped) -> None:
        # stacklevel 3: the line that called the public update method
        if skipped:
            n_nan = int(self._stats[:, COL_NAN].sum())
            n_inf = int(self._stats[:, COL_INF].sum())
            warnings.warn(f"histogram skipped {int(skipped)} NaN/Inf value(s) in this update "
                          f"(totals: nan_count={n_nan}, inf_count={n_inf})",
                          RuntimeWarning, stacklevel=3)

    # ------------------------------------------------------------------ merge
    def _check_compatible(self, other) -> None:
        if not isinstance(other, Histogram):
            raise InvalidInputError(f"can only merge a Histogram, got {type(other).__name__}")
        if other._n_bins != self._n_bins:
            raise InvalidInputError(f"cannot merge histograms with {self._n_bins} and "
                                    f"{other._n_bins} bins")
        if other._axis != self._axis:
            raise InvalidInputError(f"cannot merge histograms over axis {self._axis} and "
                                    f"axis {other._axis}")
        if self._known and other._known and self.n_channels != other.n_channels:
            raise InvalidInputError(f"cannot merge histograms with {self.n_channels} and "
                                    f"{other.n_channels} channels")

    def _absorb(self, other: Histogram) -> None:
        self._check_compatible(other)
        if not other._known:
            return
        self.ensure_channels(other.n_channels)
        self._bins.add(other._bins)
        self._stats += other._stats
        self._sums.add(other._sums)

    def merge(self, other: Histogram) -> Histogram:
        """A new histogram of the values of both (exact; the result does not depend on
        which values each side held)."""
        out = self.copy()
        out._absorb(other)
        return out

    def __add__(self, other):
        if not isinstance(other, Histogram):
            return NotImplemented
        return self.merge(other)

    def __iadd__(self, other):
        if not isinstance(other, Histogram):
            return NotImplemented
        self._absorb(other)
        return self

    def __eq__(self, other):
        if not isinstance(other, Histogram):
            return NotImplemented
        if (self._n_bins, self._axis, self._known) != (other._n_bins, other._axis, other._known):
            return False
        return (self._bins == other._bins and np.array_equal(self._stats, other._stats)
                and self._sums == other._sums)

    __hash__ = None

    # ------------------------------------------------------------------ shape
    @property
    def n_bins(self) -> int:
        return self._n_bins

    @property
    def axis(self) -> int | None:
        return self._axis

    @property
    def n_channels(self) -> int | None:
        """1 per tensor; per channel the channel count, None before the first update."""
        return self._stats.shape[0] if self._known else None

    def _out(self, values):
        if self._axis is None:
            return values[0]
        return np.asarray(values)

    def _channel(self, channel) -> int:
        n_ch = self.n_channels
        if n_ch is None:
            raise InvalidInputError("the histogram has seen no data yet")
        if channel is None:
            if n_ch != 1 or (self._axis is not None and n_ch != 1):
                raise InvalidInputError(f"the histogram has {n_ch} channels: pass channel=")
            return 0
        if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)):
            raise InvalidInputError(f"channel must be an integer, got {channel!r}")
        c = int(channel)
        if not -n_ch <= c < n_ch:
            raise InvalidInputError(f"channel {c} is out of range for {n_ch} channel(s)")
        return c % n_ch

    # ------------------------------------------------------------------ counters
    def _n(self, c: int) -> int:
        return int(self._bins.counts[c].sum() + self._stats[c, COL_ZERO])

    @property
    def count(self):
        """Finite values seen (zeros included, NaN and Inf excluded)."""
        totals = self._bins.counts.sum(axis=1) + self._stats[:, COL_ZERO]
        return self._out([int(v) for v in totals])

    @property
    def zeros(self):
        """Exact zeros seen (``-0.0`` included); they are in no bin."""
        return self._out([int(v) for v in self._stats[:, COL_ZERO]])

    @property
    def nan_count(self):
        return self._out([int(v) for v in self._stats[:, COL_NAN]])

    @property
    def inf_count(self):
        return self._out([int(v) for v in self._stats[:, COL_INF]])

    def _extreme(self, side: int, pick):
        v = self._bins.lohi[:, side].copy()
        zeros = self._stats[:, COL_ZERO] > 0
        v[zeros] = pick(v[zeros], 0.0)  # the exact zeros count as values
        v[~np.isfinite(v)] = np.nan
        return self._out([float(x) for x in v])

    @property
    def min(self):
        """Smallest finite value (NaN when there is none)."""
        return self._extreme(0, np.minimum)

    @property
    def max(self):
        """Largest finite value (NaN when there is none)."""
        return self._extreme(1, np.maximum)

    # ------------------------------------------------------------------ moments
    def _shape(self, chans: list[int], s1s2: list[Fraction]):
        n = int(self._bins.counts[chans].sum() + self._stats[chans, COL_ZERO].sum())
        return binned_shape(n, *s1s2, self._bins.counts[chans],
                            self._bins.grid[chans], int(self._stats[chans, COL_ZERO].sum()))

    def power_sums(self, channel=None) -> list[Fraction]:
        """$[S_1, S_2, S_3, S_4]$ of a channel as fractions: $S_1$, $S_2$ exact; $S_3$, $S_4$
        those that give the central moments of the bins (:mod:`~lloydmax.analysis._moments`)."""
        c = self._channel(channel)
        s1s2 = self._sums.power_sums(c)
        return s1s2 + list(self._shape([c], s1s2)[:2])

    def total_power_sums(self, channels) -> list[Fraction]:
        """:meth:`power_sums` of the given channels pooled (one conversion)."""
        chans = channel_indices(self, channels)
        s1s2 = self._sums.total_power_sums(chans)
        return s1s2 + list(self._shape(chans, s1s2)[:2])

    def shape_error_bounds(self, channel=None) -> tuple[float, float]:
        """Bounds on the errors of :attr:`skewness` and :attr:`kurtosis` of a channel (they
        come from the bins; :func:`~lloydmax.analysis._moments.binned_shape`); NaN without
        spread."""
        c = self._channel(channel)
        s1s2 = self._sums.power_sums(c)
        _, _, b3, b4 = self._shape([c], s1s2)
        n = self._n(c)
        m2 = s1s2[1] / n - (s1s2[0] / n) ** 2 if n > 1 else Fraction(0)
        if not m2 > 0:
            return math.nan, math.nan
        return math.sqrt(to_float(b3 * b3 / m2 ** 3)), to_float(b4 / (m2 * m2))

    def _moment(self, index: int):
        def sums(c):  # the binned S3, S4 only when needed
            s = self._sums.power_sums(c)
            return s + (list(self._shape([c], s)[:2]) if index >= 2 else [Fraction(0)] * 2)
        return self._out([moments(self._n(c), sums(c))[index]
                          for c in range(self._stats.shape[0])])

    @property
    def mean(self):
        """Correctly rounded mean $S_1 / n$ of the finite values."""
        return self._moment(0)

    @property
    def var(self):
        """Correctly rounded population variance $S_2/n - (S_1/n)^2$ (ddof = 0)."""
        return self._moment(1)

    @property
    def std(self):
        """Square root of the exact variance (finite at 1e300, positive for subnormals)."""
        return self._out([exact_std(self._n(c), self._sums.power_sums(c))
                          for c in range(self._stats.shape[0])])

    @property
    def skewness(self):
        """$m_3 / m_2^{3/2}$ (``scipy.stats.skew`` with ``bias=True``), $m_3$ from the bins
        (error bound: :meth:`shape_error_bounds`)."""
        return self._moment(2)

    @property
    def kurtosis(self):
        """Excess kurtosis $m_4 / m_2^2 - 3$ (``scipy.stats.kurtosis`` defaults), $m_4$ from
        the bins (error bound: :meth:`shape_error_bounds`)."""
        return self._moment(3)

    # ------------------------------------------------------------------ bins
    def bin_width(self, channel=None) -> float:
        """Width $2^e$ of the bins of a channel."""
        e, _ = self._bins.defined_grid(self._channel(channel))
        return math.ldexp(1.0, e)

    def edges(self, channel=None) -> np.ndarray:
        """The ``n_bins + 1`` bin edges $k w$, $k = k_0 \\dots k_0 + n_{bins}$ (float64)."""
        return self._bins.edges(self._channel(channel))

    def centers(self, channel=None) -> np.ndarray:
        """The ``n_bins`` bin centres $(k + 1/2) w$ (float64)."""
        return self._bins.centers(self._channel(channel))

    def counts(self, channel=None) -> np.ndarray:
        """Counts of the ``n_bins`` bins (int64, a copy); exact zeros are not in them."""
        return self._bins.counts[self._channel(channel)].copy()

    def to_weighted_points(self, channel=None, include_zeros: bool = True) -> WeightedPoints:
        """Non-empty bin centres and counts, sorted, plus the point 0 weighted by
        :attr:`zeros` -- ready for ``lloydmax.solve_data(values, weights=weights)``.

        Raises
        ------
        InvalidDataError
            When the channel holds no point at all.
        """
        c = self._channel(channel)
        if self._bins.has_range(c):
            nz = np.flatnonzero(self._bins.counts[c])
            values = self._bins.centers(c)[nz]
            weights = self._bins.counts[c, nz].astype(np.float64)
        else:
            values = weights = np.zeros(0)
        zeros = int(self._stats[c, COL_ZERO])
        if include_zeros and zeros:
            pos = int(np.searchsorted(values, 0.0))
            values = np.insert(values, pos, 0.0)
            weights = np.insert(weights, pos, float(zeros))
        if values.size == 0:
            raise InvalidDataError("the histogram holds no finite values for this channel")
        return WeightedPoints(values, weights)

    def pooled(self, channels=None) -> Histogram:
        """The channels (default: all) as one per-tensor histogram (see ``_pool.pooled``)."""
        return pooled(self, channels)

    def pooled_points(self, channels) -> WeightedPoints:
        """The points of several channels pooled (each on its own grid), with the point 0,
        sorted and merged, in one vectorised pass; InvalidDataError when there are none."""
        return pooled_points(self, channels)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        """JSON-able exact state: counts and limbs as integers, min/max as floats."""
        return _histfile.to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Histogram:
        """Inverse of :meth:`to_dict` (exact)."""
        return _histfile.from_dict(cls, d)

    def save(self, path) -> None:
        """Write atomically to ``.json`` (exact integers) or ``.npz`` (int64 arrays)."""
        _histfile.save(self, path)

    @classmethod
    def load(cls, path) -> Histogram:
        """Read a histogram written by :meth:`save`."""
        return _histfile.load(cls, path)

    def __repr__(self) -> str:
        kind = "per tensor" if self._axis is None else f"axis={self._axis}, " \
            f"n_channels={self.n_channels}"
        total = int(self._bins.counts.sum() + self._stats[:, COL_ZERO].sum())
        return f"Histogram(n_bins={self._n_bins}, {kind}, count={total})"

    # ------------------------------------------------------------------ internal API
    def ensure_channels(self, n_channels: int) -> None:
        """Fix the channel count of a per-channel histogram that has seen no data yet, or
        check it (as :meth:`update` does with the data's channel count).

        Raises
        ------
        InvalidInputError
            The histogram already has another channel count.
        """
        self._ensure_channels(n_channels, self._axis)

    def update_along(self, data, axis: int) -> None:
        """:meth:`update` with the channels of ``data`` on ``axis`` instead of the
        histogram's own axis: for a slab of a transposed array (read in memory order),
        whose channels sit on another axis.  Per-channel histograms only."""
        if self._axis is None or axis is None:
            raise InvalidInputError("update_along needs a per-channel histogram and an axis")
        self._warn_skipped(self._add(as_numeric(data), int(axis)))

    def update_block(self, block, channel_offset: int) -> None:
        """Add a slab of a per-channel array whose channel axis is axis 0: ``block`` holds
        channels ``channel_offset .. channel_offset + len(block) - 1`` (for the chunked file
        readers; fix the channel count first with :meth:`ensure_channels`)."""
        arr = as_numeric(block)
        if arr.size == 0:
            return
        n_ch = self.n_channels
        if arr.ndim == 0 or n_ch is None or not 0 <= channel_offset <= n_ch - arr.shape[0]:
            raise InvalidInputError(f"a block of shape {arr.shape} at channel {channel_offset} "
                                    f"does not fit {n_ch} channel(s)")
        self._warn_skipped(self._feed(arr, ((x3, channel_offset) for x3 in block_chunks(arr))))

    def channel_ranges(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel smallest and largest finite non-zero value seen, as two new float64
        arrays (``+inf`` / ``-inf`` for a channel without one)."""
        return self._bins.lohi[:, 0].copy(), self._bins.lohi[:, 1].copy()

    def widen_ranges(self, lo, hi) -> None:
        """Re-bin every channel onto the canonical grid of ``[lo[c], hi[c]]``, a range that
        contains the channel's own (e.g. the range over all workers); channels with
        ``lo[c] > hi[c]`` are left alone.  Exact: grids only coarsen."""
        self._bins.widen(lo, hi)

    def integer_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """New copies of the additive state ``(counts, stats, limbs)``: histograms on the
        same grids (see :meth:`widen_ranges`) merge by summing them.  The limbs are
        normalised, each below 2^32, so sums over fewer than 2^31 histograms cannot
        overflow; give the sums to :meth:`set_integer_state`."""
        sums = self._sums.copy()
        sums.normalize()
        return self._bins.counts.copy(), self._stats.copy(), sums.limbs

    def set_integer_state(self, counts, stats, limbs) -> None:
        """Replace the additive state by ``(counts, stats, limbs)`` of the same shapes (e.g.
        the sums of :meth:`integer_state` over workers) and normalise the limbs."""
        counts, stats, limbs = (np.asarray(v, dtype=np.int64) for v in (counts, stats, limbs))
        if (counts.shape, stats.shape, limbs.shape) != (
                self._bins.counts.shape, self._stats.shape, self._sums.limbs.shape):
            raise InvalidInputError("the integer state does not match the histogram's shape")
        self._bins.set_counts(counts)
        self._stats = stats
        self._sums = PowerSums(limbs.shape[0], limbs)
        self._sums.normalize()

    def arrays(self) -> HistogramArrays:
        """The exact state, one row per channel, as the file format stores it (the live
        arrays: read, do not modify)."""
        b = self._bins
        return HistogramArrays(b.counts, b.grid, b.lohi, self._stats, self._sums.limbs)

    def restore(self, arrays: HistogramArrays) -> None:
        """Take over a state read by the file format (int64 / float64 arrays, the grid
        checked to be canonical), with its channel count."""
        self._bins = BinGrid.from_arrays(arrays.counts, arrays.grid, arrays.lohi)
        self._sums = PowerSums(arrays.limbs.shape[0], arrays.limbs)
        self._stats = arrays.stats
        self._known = True
