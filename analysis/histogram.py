"""Exact, mergeable streaming histograms of activations (per tensor or per channel).

Design
------
*Grid.* Bin $k$ covers $[k w, (k+1) w)$ with a power-of-two width $w = 2^e$, and a value goes
to bin $k = \\lfloor x / w \\rfloor$.  Dividing by a power of two is exact, so coarsening the
grid by $2^s$ maps bin $k$ to $\\lfloor k / 2^s \\rfloor$ (an integer shift) with no loss.
A histogram stores ``n_bins`` int64 counts for bins $k_0 \\dots k_0 + n_{bins} - 1$ where,
for the smallest and largest finite non-zero values seen, $lo$ and $hi$:

$$e = \\min\\{e \\ge -1074 : \\lfloor hi/2^e \\rfloor - \\lfloor lo/2^e \\rfloor < n_{bins},\\;
\\max(|lo|, |hi|) < 2^{e+60}\\},\\qquad k_0 = \\lfloor lo / 2^e \\rfloor .$$

The grid is a function of $(lo, hi)$ only -- never of batch order -- so histograms of the
same values, however split into batches and merged, are bit-identical.  Non-negative
(ReLU) data get bins over $[lo, hi]$ only; no bin is spent on negatives.

*Zeros, NaN, Inf.* Exact zeros (``x == 0``, so ``-0.0`` too) are counted apart (ReLU
sparsity) and sit in no bin.  NaN and +/-Inf are counted and skipped with one warning per
update, or raise :class:`~lloydmax.errors.InvalidDataError` with ``strict=True``.

*Moments.* Exact power sums in a superaccumulator (:mod:`lloydmax.analysis._exactsum`):
$S_1 = \\sum x$ and $S_2 = \\sum x^2$ exactly, $S_3$, $S_4$ as exact sums of the float64
powers ``(x*x)*x`` and ``(x*x)*(x*x)`` (rounded once per value, exponent unbounded).  The
moments are evaluated from them in exact rational arithmetic and rounded once:
``mean`` is the correctly rounded mean, ``var`` the correctly rounded population variance
$m_2 = S_2/n - (S_1/n)^2$; ``skewness`` $m_3 / m_2^{3/2}$ and excess ``kurtosis``
$m_4 / m_2^2 - 3$ (scipy's default, biased definitions).  The count $n$ includes the zeros
and excludes NaN / Inf.

Memory does not depend on how many values were seen: per channel ``n_bins`` counts, 682
limbs and a few scalars; data are processed in chunks of at most ``CHUNK`` values.
"""
from __future__ import annotations

import io
import json
import math
import warnings
import zipfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from lloydmax._io import atomic_write, dumps_json
from lloydmax.errors import InvalidDataError, InvalidInputError

from . import _kernels as K
from ._exactsum import (BASE_EXP, LIMB_BITS, N_LIMBS, N_POWERS, OFFSETS, TOTAL_LIMBS,
                        int_to_limbs, limbs_to_int, power_sums)

__all__ = ["Histogram", "WeightedPoints", "SCHEMA", "CHUNK"]

SCHEMA = "lloydmax.histogram/1"
#: values per kernel call: bounds the temporaries and keeps a chunk in cache
CHUNK = 1 << 16
_MAG_BITS = 60  # bin indices stay below 2^60 in magnitude
_PACK = 1024  # values per packing buffer of K.accumulate (two buffers, 16 KiB: in L1)
_NAN, _INF, _ZERO = 0, 1, 2


@dataclass(frozen=True)
class WeightedPoints:
    """Bin centres (sorted, with the exact zero as its own point) and their counts.

    Unpacks as ``values, weights = hist.to_weighted_points()``.
    """

    values: np.ndarray
    weights: np.ndarray

    def __iter__(self):
        return iter((self.values, self.weights))


def canonical_grid(lo: float, hi: float, n_bins: int) -> tuple[int, int]:
    """``(e, k0)`` of the canonical grid covering the finite non-zero range [lo, hi].

    Exact: floors are taken on the rationals ``lo / 2^e`` with Python integers.
    """
    n_lo, d_lo = float(lo).as_integer_ratio()
    n_hi, d_hi = float(hi).as_integer_ratio()

    def floor_div(num, den, e):
        return num // (den << e) if e >= 0 else (num << -e) // den

    e = max(-1074, math.frexp(max(abs(lo), abs(hi)))[1] - _MAG_BITS)
    half_span = hi / 2 - lo / 2  # no overflow
    if half_span > 0:
        e = max(e, math.frexp(half_span)[1] + 1 - (n_bins.bit_length() - 1) - 1)
    while True:
        k_lo = floor_div(n_lo, d_lo, e)
        if floor_div(n_hi, d_hi, e) - k_lo < n_bins:
            return e, k_lo
        e += 1


def _to_float(value: Fraction) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _as_numeric(data) -> np.ndarray:
    try:
        arr = np.asarray(data)
    except Exception as exc:  # e.g. ragged lists
        raise InvalidDataError(f"cannot read the data as an array ({exc})") from None
    if arr.dtype.kind not in "fiu":
        raise InvalidDataError(
            f"histogram data must be real numbers, got dtype {arr.dtype} ({arr.dtype.kind!r})")
    return arr


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
    ``mean``, ``var``, ``std``, ``skewness``, ``kurtosis``) are Python scalars for a
    per-tensor histogram and arrays of length ``n_channels`` per channel.  ``mean`` of no
    values, and ``var``/``std``/``skewness``/``kurtosis`` of fewer than 2 values, are NaN;
    ``skewness`` and ``kurtosis`` of constant data are NaN too (``var`` is 0).  Whatever
    needs spread (solvers, reports) must check this and raise.

    ``a + b`` and :meth:`merge` return a new histogram; ``a += b`` merges in place.  Both
    require the same ``n_bins``, ``axis`` and channel count.
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
        self._counts = np.zeros((n_ch, self._n_bins), dtype=np.int64)
        self._grid = np.zeros((n_ch, 2), dtype=np.int64)  # (e, k0)
        self._lohi = np.empty((n_ch, 2), dtype=np.float64)
        self._lohi[:, 0] = np.inf
        self._lohi[:, 1] = -np.inf
        self._stats = np.zeros((n_ch, 3), dtype=np.int64)  # nan, inf, zeros
        self._limbs = np.zeros((n_ch, TOTAL_LIMBS), dtype=np.int64)
        self._inv_w = np.ones(n_ch, dtype=np.float64)
        self._w = np.ones(n_ch, dtype=np.float64)

    def _ensure_channels(self, n_ch: int) -> None:
        if not self._known:
            self._allocate(n_ch)
            self._known = True
        elif n_ch != self._counts.shape[0]:
            raise InvalidInputError(
                f"data has {n_ch} channels on axis {self._axis}, the histogram has "
                f"{self._counts.shape[0]}")

    def _set_grid(self, ch: int, e: int, k0: int) -> None:
        self._grid[ch] = (e, k0)
        self._w[ch] = math.ldexp(1.0, e)
        # 2^-e is a float only for e >= -1023; below, the kernel divides by w
        self._inv_w[ch] = math.ldexp(1.0, -e) if e >= -1023 else 0.0

    def _move_grid(self, ch: int, lo: float, hi: float) -> None:
        """Re-bin channel ``ch`` onto the canonical grid of [lo, hi] (a superset range)."""
        e, k0 = canonical_grid(lo, hi, self._n_bins)
        old_lo, old_hi = self._lohi[ch]
        if old_lo <= old_hi:
            e_old, k0_old = (int(v) for v in self._grid[ch])
            if (e, k0) != (e_old, k0_old):
                out = np.zeros(self._n_bins, dtype=np.int64)
                K.regrid(self._counts[ch], k0_old, e - e_old, k0, out)
                self._counts[ch] = out
        self._set_grid(ch, e, k0)
        self._lohi[ch] = (lo, hi)

    def copy(self) -> "Histogram":
        """An independent copy."""
        new = Histogram.__new__(Histogram)
        new.__dict__.update({k: (v.copy() if isinstance(v, np.ndarray) else v)
                             for k, v in self.__dict__.items()})
        return new

    # ------------------------------------------------------------------ update
    def _chunks(self, arr: np.ndarray):
        """Yield ``(x3, channel_offset)`` views of at most ~CHUNK values."""
        if self._axis is None:
            if arr.flags.f_contiguous and not arr.flags.c_contiguous:
                arr = arr.T  # order does not matter for one histogram of the tensor
            if arr.flags.c_contiguous:
                flat = arr.reshape(-1)
                for start in range(0, flat.size, CHUNK):
                    yield flat[start:start + CHUNK].reshape(1, 1, -1), 0
                return
            rows = max(1, CHUNK // max(1, arr[0].size))
            for start in range(0, arr.shape[0], rows):
                yield np.ascontiguousarray(arr[start:start + rows]).reshape(1, 1, -1), 0
            return
        ax = self._axis if self._axis >= 0 else self._axis + arr.ndim
        if arr.flags.f_contiguous and not arr.flags.c_contiguous:
            arr, ax = arr.T, arr.ndim - 1 - ax
        arr = np.ascontiguousarray(arr)  # copies only an array that is neither C nor F order
        outer = int(np.prod(arr.shape[:ax], dtype=np.int64))
        n_ch = arr.shape[ax]
        inner = int(np.prod(arr.shape[ax + 1:], dtype=np.int64))
        x3 = arr.reshape(outer, n_ch, inner)
        if outer > 1:
            step = max(1, CHUNK // max(1, n_ch * inner))
            for start in range(0, outer, step):
                yield x3[start:start + step], 0
        else:
            step = max(1, CHUNK // max(1, n_ch))
            for start in range(0, inner, step):
                yield x3[:, :, start:start + step], 0

    def update(self, data) -> "Histogram":
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
        arr = _as_numeric(data)
        if self._axis is not None:
            if not -arr.ndim <= self._axis < arr.ndim:
                raise InvalidInputError(
                    f"axis {self._axis} is out of range for data with {arr.ndim} dimension(s) "
                    f"(shape {arr.shape})")
            self._ensure_channels(arr.shape[self._axis])
        if arr.size == 0:
            return self
        if self.strict:
            self._check_finite(arr)
        before = self._stats[:, :2].sum()
        for x3, c_off in self._chunks(arr):
            self._update_chunk(x3, c_off)
        self._warn_skipped(self._stats[:, :2].sum() - before)
        return self

    def _update_part(self, block: np.ndarray, c_off: int) -> None:
        """Add a slab of a per-channel array whose channel axis is axis 0: ``block`` holds
        channels ``c_off .. c_off + len(block) - 1`` (used by the chunked file readers)."""
        arr = _as_numeric(block)
        if arr.size == 0:
            return
        if self.strict:
            self._check_finite(arr)
        before = self._stats[:, :2].sum()
        x3 = np.ascontiguousarray(arr).reshape(1, arr.shape[0], -1)
        step = max(1, CHUNK // max(1, x3.shape[1]))
        for start in range(0, x3.shape[2], step):
            self._update_chunk(x3[:, :, start:start + step], c_off)
        self._warn_skipped(self._stats[:, :2].sum() - before)

    def _warn_skipped(self, skipped) -> None:
        if skipped:
            n_nan = int(self._stats[:, _NAN].sum())
            n_inf = int(self._stats[:, _INF].sum())
            warnings.warn(f"histogram skipped {int(skipped)} NaN/Inf value(s) in this update "
                          f"(totals: nan_count={n_nan}, inf_count={n_inf})",
                          RuntimeWarning, stacklevel=3)

    def _check_finite(self, arr: np.ndarray) -> None:
        n_nan = n_inf = 0
        arr = arr.reshape(1) if arr.ndim == 0 else arr
        rows = max(1, CHUNK // max(1, arr[0].size))
        for start in range(0, arr.shape[0], rows):
            x3 = self._native(np.ascontiguousarray(arr[start:start + rows]).reshape(1, 1, -1))
            stats = np.zeros((x3.shape[1], 3), dtype=np.int64)
            lohi = np.zeros((x3.shape[1], 2))
            K.scan(x3, stats, lohi, np.array([np.inf, 0.0]))
            n_nan += int(stats[:, _NAN].sum())
            n_inf += int(stats[:, _INF].sum())
        if n_nan or n_inf:
            raise InvalidDataError(f"data holds {n_nan} NaN and {n_inf} Inf value(s) "
                                   "(strict histogram)")

    @staticmethod
    def _native(x3: np.ndarray) -> np.ndarray:
        if x3.dtype == np.float32 or x3.dtype == np.float64:
            return x3
        return x3.astype(np.float64)  # ints, float16, non-native byte order: one chunk

    def _update_chunk(self, x3: np.ndarray, c_off: int) -> None:
        """Add one ``(outer, channels, inner)`` chunk into channels c_off, c_off+1, ..."""
        x3 = self._native(x3)
        n_ch = x3.shape[1]
        sl = slice(c_off, c_off + n_ch)
        stats = np.zeros((n_ch, 3), dtype=np.int64)
        lohi = self._lohi[sl].copy()
        absrange = np.array([np.inf, 0.0])
        bits = x3.view(np.int32 if x3.dtype == np.float32 else np.int64)
        scratch = np.zeros(1, dtype=bits.dtype)
        K.scan_bits(bits, x3.dtype == np.float32, stats, lohi, absrange, scratch,
                    scratch.view(x3.dtype))
        self._stats[sl] += stats
        if absrange[1] == 0.0:
            return  # only zeros, NaN and Inf
        for c in np.flatnonzero((lohi[:, 0] != self._lohi[sl, 0])
                                | (lohi[:, 1] != self._lohi[sl, 1])):
            self._move_grid(c_off + int(c), float(lohi[c, 0]), float(lohi[c, 1]))
        ex_lo = math.frexp(absrange[0])[1] - 1
        ex_hi = math.frexp(absrange[1])[1] - 1
        acc = np.zeros((ex_hi - ex_lo + 1, K.ACC_COLS), dtype=np.int64)
        K.accumulate(x3, bits, x3.dtype == np.float32, c_off, self._counts, self._grid[:, 1].copy(),
                     self._inv_w, self._w, acc, ex_lo, self._limbs, stats,
                     np.empty(_PACK, dtype=np.float64), np.empty(_PACK, dtype=np.int64))

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

    def _absorb(self, other: "Histogram") -> None:
        self._check_compatible(other)
        if not other._known:
            return
        self._ensure_channels(other.n_channels)
        for ch in range(self.n_channels):
            o_lo, o_hi = (float(v) for v in other._lohi[ch])
            if o_lo > o_hi:
                continue  # no binned values in other
            s_lo, s_hi = (float(v) for v in self._lohi[ch])
            lo, hi = min(s_lo, o_lo), max(s_hi, o_hi)
            if (lo, hi) != (s_lo, s_hi):
                self._move_grid(ch, lo, hi)
            e, k0 = (int(v) for v in self._grid[ch])
            e_o, k0_o = (int(v) for v in other._grid[ch])
            K.regrid(other._counts[ch], k0_o, e - e_o, k0, self._counts[ch])
        self._stats += other._stats
        self._limbs += other._limbs
        for ch in range(self.n_channels):
            K.normalize_limbs(self._limbs, ch)

    def merge(self, other: "Histogram") -> "Histogram":
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
        return all(np.array_equal(getattr(self, name), getattr(other, name))
                   for name in ("_counts", "_grid", "_lohi", "_stats", "_limbs"))

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
        return self._counts.shape[0] if self._known else None

    def _out(self, values):
        if self._axis is None:
            return values[0]
        return np.asarray(values)

    def _channel(self, channel) -> int:
        n_ch = self.n_channels
        if n_ch is None:
            raise InvalidInputError("the histogram has seen no data yet")
        if channel is None:
            if n_ch != 1 or self._axis is not None and n_ch != 1:
                raise InvalidInputError(f"the histogram has {n_ch} channels: pass channel=")
            return 0
        if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)):
            raise InvalidInputError(f"channel must be an integer, got {channel!r}")
        c = int(channel)
        if not -n_ch <= c < n_ch:
            raise InvalidInputError(f"channel {c} is out of range for {n_ch} channel(s)")
        return c % n_ch

    # ------------------------------------------------------------------ counters
    @property
    def count(self):
        """Finite values seen (zeros included, NaN and Inf excluded)."""
        return self._out([int(self._counts[c].sum() + self._stats[c, _ZERO])
                          for c in range(self._counts.shape[0])])

    @property
    def zeros(self):
        """Exact zeros seen (``-0.0`` included); they are in no bin."""
        return self._out([int(v) for v in self._stats[:, _ZERO]])

    @property
    def nan_count(self):
        return self._out([int(v) for v in self._stats[:, _NAN]])

    @property
    def inf_count(self):
        return self._out([int(v) for v in self._stats[:, _INF]])

    @property
    def min(self):
        """Smallest finite value (NaN when there is none)."""
        out = []
        for c in range(self._counts.shape[0]):
            lo = float(self._lohi[c, 0])
            if self._stats[c, _ZERO]:
                lo = min(lo, 0.0)
            out.append(lo if math.isfinite(lo) else math.nan)
        return self._out(out)

    @property
    def max(self):
        """Largest finite value (NaN when there is none)."""
        out = []
        for c in range(self._counts.shape[0]):
            hi = float(self._lohi[c, 1])
            if self._stats[c, _ZERO]:
                hi = max(hi, 0.0)
            out.append(hi if math.isfinite(hi) else math.nan)
        return self._out(out)

    # ------------------------------------------------------------------ moments
    def power_sums(self, channel=None) -> list[Fraction]:
        """Exact $[S_1, S_2, S_3, S_4]$ of a channel as fractions (see module docstring)."""
        return power_sums(self._limbs[self._channel(channel)])

    def _moments(self, c: int):
        n = int(self._counts[c].sum() + self._stats[c, _ZERO])
        nan = math.nan
        if n == 0:
            return nan, nan, nan, nan
        s1, s2, s3, s4 = power_sums(self._limbs[c])
        mean = s1 / n
        if n < 2:
            return _to_float(mean), nan, nan, nan
        m2 = s2 / n - mean * mean
        if m2 == 0:
            return _to_float(mean), 0.0, nan, nan
        m3 = s3 / n - 3 * mean * s2 / n + 2 * mean ** 3
        m4 = s4 / n - 4 * mean * s3 / n + 6 * mean * mean * s2 / n - 3 * mean ** 4
        skew = math.sqrt(_to_float(m3 * m3 / m2 ** 3)) * (1 if m3 > 0 else -1) if m3 else 0.0
        return _to_float(mean), _to_float(m2), skew, _to_float(m4 / (m2 * m2) - 3)

    def _moment(self, index: int):
        return self._out([self._moments(c)[index] for c in range(self._counts.shape[0])])

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
        """Square root of :attr:`var`."""
        var = self.var
        return np.sqrt(var) if isinstance(var, np.ndarray) else math.sqrt(var)

    @property
    def skewness(self):
        """$m_3 / m_2^{3/2}$ (``scipy.stats.skew`` with ``bias=True``)."""
        return self._moment(2)

    @property
    def kurtosis(self):
        """Excess kurtosis $m_4 / m_2^2 - 3$ (``scipy.stats.kurtosis`` defaults)."""
        return self._moment(3)

    # ------------------------------------------------------------------ bins
    def _grid_of(self, channel):
        c = self._channel(channel)
        if not self._lohi[c, 0] <= self._lohi[c, 1]:
            raise InvalidDataError("no finite non-zero values in this channel: "
                                   "the bin grid is undefined")
        e, k0 = (int(v) for v in self._grid[c])
        return c, e, k0

    def bin_width(self, channel=None) -> float:
        """Width $2^e$ of the bins of a channel."""
        _, e, _ = self._grid_of(channel)
        return math.ldexp(1.0, e)

    def edges(self, channel=None) -> np.ndarray:
        """The ``n_bins + 1`` bin edges $k w$, $k = k_0 \\dots k_0 + n_{bins}$ (float64)."""
        _, e, k0 = self._grid_of(channel)
        return np.ldexp((k0 + np.arange(self._n_bins + 1)).astype(np.float64), e)

    def centers(self, channel=None) -> np.ndarray:
        """The ``n_bins`` bin centres $(k + 1/2) w$ (float64)."""
        _, e, k0 = self._grid_of(channel)
        return np.ldexp((k0 + np.arange(self._n_bins)).astype(np.float64) + 0.5, e)

    def counts(self, channel=None) -> np.ndarray:
        """Counts of the ``n_bins`` bins (int64, a copy); exact zeros are not in them."""
        return self._counts[self._channel(channel)].copy()

    def to_weighted_points(self, channel=None, include_zeros: bool = True) -> WeightedPoints:
        """Non-empty bin centres and counts, sorted, plus the point 0 weighted by
        :attr:`zeros` -- ready for ``lloydmax.solve_data(values, weights=weights)``.

        Raises
        ------
        InvalidDataError
            When the channel holds no point at all.
        """
        c = self._channel(channel)
        if self._lohi[c, 0] <= self._lohi[c, 1]:
            nz = np.flatnonzero(self._counts[c])
            values = self.centers(c)[nz]
            weights = self._counts[c, nz].astype(np.float64)
        else:
            values = weights = np.zeros(0)
        zeros = int(self._stats[c, _ZERO])
        if include_zeros and zeros:
            pos = int(np.searchsorted(values, 0.0))
            values = np.insert(values, pos, 0.0)
            weights = np.insert(weights, pos, float(zeros))
        if values.size == 0:
            raise InvalidDataError("the histogram holds no finite values for this channel")
        return WeightedPoints(values, weights)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        """JSON-able exact state: counts and limbs as integers, min/max as floats."""
        channels = []
        for c in range(self._counts.shape[0]):
            counts = self._counts[c]
            nz = np.flatnonzero(counts)
            first = int(nz[0]) if nz.size else 0
            last = int(nz[-1]) + 1 if nz.size else 0
            sums = []
            for k in range(N_POWERS):
                value = limbs_to_int(self._limbs[c, OFFSETS[k]:OFFSETS[k + 1]])
                sums.append({"exponent": BASE_EXP[k], "negative": value < 0,
                             "limbs": _magnitude_limbs(abs(value))})
            binned = bool(self._lohi[c, 0] <= self._lohi[c, 1])
            channels.append({
                "nan_count": int(self._stats[c, _NAN]), "inf_count": int(self._stats[c, _INF]),
                "zeros": int(self._stats[c, _ZERO]),
                "lo": float(self._lohi[c, 0]) if binned else None,
                "hi": float(self._lohi[c, 1]) if binned else None,
                "exponent": int(self._grid[c, 0]), "k0": int(self._grid[c, 1]),
                "first_bin": first, "counts": [int(v) for v in counts[first:last]],
                "sums": sums})
        return {"schema": SCHEMA, "n_bins": self._n_bins, "axis": self._axis,
                "strict": self.strict, "n_channels": self.n_channels, "channels": channels}

    @classmethod
    def from_dict(cls, d: dict) -> "Histogram":
        """Inverse of :meth:`to_dict` (exact)."""
        try:
            if d.get("schema") != SCHEMA:
                raise InvalidInputError(f"not a {SCHEMA} object")
            hist = cls(n_bins=d["n_bins"], axis=d["axis"], strict=bool(d.get("strict", False)))
            chans = d["channels"]
            if d["n_channels"] is None:
                if chans:
                    raise InvalidInputError("channels given but n_channels is null")
                return hist
            if len(chans) != d["n_channels"]:
                raise InvalidInputError("n_channels does not match the channel list")
            hist._allocate(len(chans))
            hist._known = True
            for c, ch in enumerate(chans):
                hist._stats[c] = (int(ch["nan_count"]), int(ch["inf_count"]), int(ch["zeros"]))
                counts = [int(v) for v in ch["counts"]]
                first = int(ch["first_bin"])
                if first < 0 or first + len(counts) > hist._n_bins or min(counts, default=0) < 0:
                    raise InvalidInputError("bin counts out of range")
                hist._counts[c, first:first + len(counts)] = counts
                if ch["lo"] is not None:
                    lo, hi = float(ch["lo"]), float(ch["hi"])
                    e, k0 = canonical_grid(lo, hi, hist._n_bins)
                    if (e, k0) != (int(ch["exponent"]), int(ch["k0"])):
                        raise InvalidInputError("bin grid does not match min/max")
                    hist._set_grid(c, e, k0)
                    hist._lohi[c] = (lo, hi)
                elif counts and any(counts):
                    raise InvalidInputError("bin counts without a grid")
                for k, s in enumerate(ch["sums"]):
                    if int(s["exponent"]) != BASE_EXP[k]:
                        raise InvalidInputError("unexpected superaccumulator exponent")
                    value = 0
                    for limb in reversed(s["limbs"]):
                        value = (value << LIMB_BITS) + int(limb)
                    if s["negative"]:
                        value = -value
                    hist._limbs[c, OFFSETS[k]:OFFSETS[k + 1]] = int_to_limbs(value, N_LIMBS[k])
            return hist
        except InvalidInputError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
            raise InvalidInputError(f"malformed histogram dictionary ({type(exc).__name__}: "
                                    f"{exc})") from None

    def save(self, path) -> None:
        """Write atomically to ``.json`` (exact integers) or ``.npz`` (int64 arrays)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            atomic_write(path, dumps_json(self.to_dict()).encode("ascii"))
        elif suffix == ".npz":
            atomic_write(path, self._encode_npz())
        else:
            raise InvalidInputError(f"unsupported histogram file {path.name!r}; use .json or .npz")

    def _encode_npz(self) -> bytes:
        meta = {"schema": SCHEMA, "n_bins": self._n_bins, "axis": self._axis,
                "strict": self.strict, "n_channels": self.n_channels}
        arrays = {"meta": np.array(json.dumps(meta)), "counts": self._counts,
                  "grid": self._grid, "lohi": self._lohi, "stats": self._stats,
                  "limbs": self._limbs}
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, arr in arrays.items():
                body = io.BytesIO()
                np.lib.format.write_array(body, np.ascontiguousarray(arr), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                zf.writestr(info, body.getvalue())
        return buf.getvalue()

    @classmethod
    def load(cls, path) -> "Histogram":
        """Read a histogram written by :meth:`save`."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".json", ".npz"):
            raise InvalidInputError(f"unsupported histogram file {path.name!r}; use .json or .npz")
        if not path.is_file():
            raise InvalidInputError(f"histogram file not found: {path}")
        if suffix == ".json":
            try:
                return cls.from_dict(json.loads(path.read_text()))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InvalidInputError(f"{path}: not valid JSON ({exc})") from None
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"].reshape(-1)[0]))
                arrays = {k: z[k] for k in ("counts", "grid", "lohi", "stats", "limbs")}
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise InvalidInputError(f"{path}: not a histogram archive ({exc})") from None
        if meta.get("schema") != SCHEMA:
            raise InvalidInputError(f"{path}: not a {SCHEMA} archive")
        hist = cls(n_bins=meta["n_bins"], axis=meta["axis"], strict=meta.get("strict", False))
        if meta["n_channels"] is None:
            return hist
        n_ch = int(meta["n_channels"])
        shapes = {"counts": (n_ch, hist._n_bins), "grid": (n_ch, 2), "lohi": (n_ch, 2),
                  "stats": (n_ch, 3), "limbs": (n_ch, TOTAL_LIMBS)}
        for name, shape in shapes.items():
            if arrays[name].shape != shape:
                raise InvalidInputError(f"{path}: array {name} has shape {arrays[name].shape}, "
                                        f"expected {shape}")
        hist._allocate(n_ch)
        hist._known = True
        hist._counts[:] = arrays["counts"]
        hist._stats[:] = arrays["stats"]
        hist._limbs[:] = arrays["limbs"]
        hist._lohi[:] = arrays["lohi"]
        for c in range(n_ch):
            if hist._lohi[c, 0] <= hist._lohi[c, 1]:
                e, k0 = canonical_grid(float(hist._lohi[c, 0]), float(hist._lohi[c, 1]),
                                       hist._n_bins)
                if (e, k0) != tuple(int(v) for v in arrays["grid"][c]):
                    raise InvalidInputError(f"{path}: bin grid of channel {c} does not match")
                hist._set_grid(c, e, k0)
        return hist

    def __repr__(self) -> str:
        kind = "per tensor" if self._axis is None else f"axis={self._axis}, " \
            f"n_channels={self.n_channels}"
        total = int(self._counts.sum() + self._stats[:, _ZERO].sum())
        return f"Histogram(n_bins={self._n_bins}, {kind}, count={total})"


def _magnitude_limbs(value: int) -> list[int]:
    """Base-2^32 digits of a non-negative integer, least significant first, trimmed."""
    mask = (1 << LIMB_BITS) - 1
    out = []
    while value:
        out.append(value & mask)
        value >>= LIMB_BITS
    return out
