"""The streaming update of a histogram: data in bounded chunks through one fused pass that
feeds the grid and the moments.

An update checks the data (real numbers; with ``strict``, no NaN / Inf), cuts it into
``(outer, channels, inner)`` views of at most :data:`CHUNK` values -- without copying
wherever the memory layout allows -- and runs two kernel passes per chunk
(:mod:`lloydmax.analysis._kernels`): ``scan_bits`` counts NaN, Inf and zeros and finds
the range, the grids move to cover it (:class:`~lloydmax.analysis._grid.BinGrid`), then
``accumulate`` bins every finite non-zero value and adds its powers into the
superaccumulator (:class:`~lloydmax.analysis._moments.PowerSums`): grid and moments are
fed in the same read of the data.
"""
from __future__ import annotations

import math

import numpy as np

from lloydmax.errors import InvalidDataError

from . import _kernels as K
from ._grid import BinGrid
from ._kernels import COL_INF, COL_NAN
from ._moments import PowerSums

__all__ = ["CHUNK", "add_chunk", "as_numeric", "block_chunks", "check_finite", "chunks"]

#: values per kernel call: bounds the temporaries and keeps a chunk in cache
CHUNK = 1 << 16
_PACK = 1024  # values per packing buffer of K.accumulate (two buffers, 16 KiB: in L1)


def as_numeric(data) -> np.ndarray:
    """``data`` as an array of real numbers (ints or floats, any shape).

    Raises
    ------
    InvalidDataError
        Data that is not an array of real numbers.
    """
    try:
        arr = np.asarray(data)
    except Exception as exc:  # e.g. ragged lists
        raise InvalidDataError(f"cannot read the data as an array ({exc})") from None
    if arr.dtype.kind not in "fiu":
        raise InvalidDataError(
            f"histogram data must be real numbers, got dtype {arr.dtype} ({arr.dtype.kind!r})")
    return arr


def _native(x3: np.ndarray) -> np.ndarray:
    if x3.dtype == np.float32 or x3.dtype == np.float64:
        return x3
    return x3.astype(np.float64)  # ints, float16, non-native byte order: one chunk


def chunks(arr: np.ndarray, axis: int | None):
    """Yield ``(x3, channel_offset)`` views of at most ~CHUNK values of ``arr``, whose
    channel axis is ``axis`` (None: one channel, the whole tensor)."""
    if axis is None:
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
    ax = axis if axis >= 0 else axis + arr.ndim
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


def block_chunks(arr: np.ndarray):
    """Yield ``(1, channels, inner)`` views of at most ~CHUNK values of ``arr``, a block of
    consecutive channels on axis 0."""
    x3 = np.ascontiguousarray(arr).reshape(1, arr.shape[0], -1)
    step = max(1, CHUNK // max(1, x3.shape[1]))
    for start in range(0, x3.shape[2], step):
        yield x3[:, :, start:start + step]


def check_finite(arr: np.ndarray) -> None:
    """Raise unless every value of ``arr`` is finite (the strict policy: nothing is added
    when the data holds NaN or Inf).

    Raises
    ------
    InvalidDataError
        With the numbers of NaN and Inf values.
    """
    n_nan = n_inf = 0
    arr = arr.reshape(1) if arr.ndim == 0 else arr
    rows = max(1, CHUNK // max(1, arr[0].size))
    for start in range(0, arr.shape[0], rows):
        x3 = _native(np.ascontiguousarray(arr[start:start + rows]).reshape(1, 1, -1))
        stats = np.zeros((x3.shape[1], 3), dtype=np.int64)
        lohi = np.zeros((x3.shape[1], 2))
        K.scan(x3, stats, lohi, np.array([np.inf, 0.0]))
        n_nan += int(stats[:, COL_NAN].sum())
        n_inf += int(stats[:, COL_INF].sum())
    if n_nan or n_inf:
        raise InvalidDataError(f"data holds {n_nan} NaN and {n_inf} Inf value(s) "
                               "(strict histogram)")


def add_chunk(x3: np.ndarray, c_off: int, bins: BinGrid, sums: PowerSums,
              stats: np.ndarray) -> None:
    """Add one ``(outer, channels, inner)`` chunk into channels c_off, c_off+1, ... of the
    bin counts ``bins``, the power sums ``sums`` and the NaN / Inf / zero counters
    ``stats``."""
    x3 = _native(x3)
    n_ch = x3.shape[1]
    sl = slice(c_off, c_off + n_ch)
    chunk_stats = np.zeros((n_ch, 3), dtype=np.int64)
    lohi = bins.lohi[sl].copy()
    absrange = np.array([np.inf, 0.0])
    bits = x3.view(np.int32 if x3.dtype == np.float32 else np.int64)
    scratch = np.zeros(1, dtype=bits.dtype)
    K.scan_bits(bits, x3.dtype == np.float32, chunk_stats, lohi, absrange, scratch,
                scratch.view(x3.dtype))
    stats[sl] += chunk_stats
    if absrange[1] == 0.0:
        return  # only zeros, NaN and Inf
    bins.extend(c_off, lohi)
    ex_lo = math.frexp(absrange[0])[1] - 1
    ex_hi = math.frexp(absrange[1])[1] - 1
    acc = np.zeros((ex_hi - ex_lo + 1, K.ACC_COLS), dtype=np.int64)
    K.accumulate(x3, bits, x3.dtype == np.float32, c_off, bins.counts, bins.grid[:, 1].copy(),
                 bins.inv_w, bins.w, acc, ex_lo, sums.limbs, chunk_stats,
                 np.empty(_PACK, dtype=np.float64), np.empty(_PACK, dtype=np.int64))
