"""The streaming update of a histogram: one kernel call per array, on one or more threads.

An update checks the data (real numbers; with ``strict``, no NaN / Inf) and views it as
``(outer, channels, inner)`` -- without copying wherever the memory layout allows.  One
call of :func:`lloydmax.analysis._binkern.update` then walks the view in cache-sized blocks:
per block and channel it scans the bits (NaN, Inf, zeros, range), moves the channel's grid
when the range grew, bins the values and adds $S_1$, $S_2$ into the superaccumulator.

Large updates run on :data:`THREADS` threads (numba's ``NUMBA_NUM_THREADS``, default: the
cores): the view is cut into that many pieces, the first goes into the histogram itself
and each other into a fresh state, which is then merged in (exact, so the result is the
same bits as on one thread).  The kernels release the GIL.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from lloydmax.errors import InvalidDataError

from . import _binkern as B
from . import _kernels as K
from ._grid import BinGrid
from ._kernels import COL_INF, COL_NAN
from ._moments import PowerSums

__all__ = ["CHUNK", "THREADS", "add_array", "add_chunk", "as_numeric", "block_chunks",
           "check_finite", "chunks"]

#: values per copied piece of an array that has to be copied (neither C nor F order)
CHUNK = 1 << 16
#: threads of a large update (numba's NUMBA_NUM_THREADS: its value when numba was imported)
THREADS = max(1, int(numba.config.NUMBA_NUM_THREADS))
#: values from which an update is split over the threads
PARALLEL_MIN = 1 << 20
_local = threading.local()
_pool: list = []


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
    """Yield ``(x3, channel_offset)`` views of ``arr``, whose channel axis is ``axis``
    (None: one channel, the whole tensor): the whole array as one view when its memory
    layout allows, else copied pieces of ~CHUNK values."""
    if axis is None:
        if arr.flags.f_contiguous and not arr.flags.c_contiguous:
            arr = arr.T  # order does not matter for one histogram of the tensor
        if arr.flags.c_contiguous:
            yield arr.reshape(1, 1, -1), 0
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
    inner = int(np.prod(arr.shape[ax + 1:], dtype=np.int64))
    yield arr.reshape(outer, arr.shape[ax], inner), 0


def block_chunks(arr: np.ndarray):
    """Yield the ``(1, channels, inner)`` view of ``arr``, a block of consecutive channels
    on axis 0 (one view: the kernel walks it in cache-sized blocks)."""
    yield np.ascontiguousarray(arr).reshape(1, arr.shape[0], -1)


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


def _scratch(n_bins: int, dtype):
    """This thread's zeroed kernel table, packing buffer (``dtype``) and its integer view,
    and scratch row."""
    mine = getattr(_local, "scratch", None)
    if mine is None or mine[3].shape[0] != n_bins or mine[1].dtype != dtype:
        buf = np.empty(B.PACK, dtype=dtype)
        mine = (np.zeros((B.ACC_ROWS, B.ACC_COLS), dtype=np.int64), buf,
                buf.view(np.int32 if dtype == np.float32 else np.int64),
                np.empty(n_bins, dtype=np.int64))
        _local.scratch = mine
    return mine


def add_chunk(x3: np.ndarray, c_off: int, bins: BinGrid, sums: PowerSums,
              stats: np.ndarray) -> None:
    """Add one ``(outer, channels, inner)`` view into channels c_off, c_off+1, ... of the
    bin counts ``bins``, the power sums ``sums`` and the NaN / Inf / zero counters
    ``stats``, in one kernel call on this thread."""
    x3 = _native(x3)
    if x3.size == 0:
        return
    is32 = x3.dtype == np.float32
    acc, xbuf, bbuf, tmp = _scratch(bins.n_bins, x3.dtype)
    B.update(x3, x3.view(np.int32 if is32 else np.int64), is32, c_off, bins.counts, bins.grid,
             bins.lohi, bins.inv_w, bins.w, sums.limbs, stats, acc, xbuf, bbuf, tmp, B.BLOCK)


def _pieces(x3: np.ndarray, n: int) -> list[np.ndarray]:
    """``x3`` cut into ``n`` views of about equal size, along its outer axis if it has
    enough rows, else along the inner one."""
    axis = 0 if x3.shape[0] >= n else 2
    cuts = np.linspace(0, x3.shape[axis], n + 1).astype(np.int64)
    return [x3[a:b] if axis == 0 else x3[:, :, a:b] for a, b in zip(cuts[:-1], cuts[1:])]


def add_array(x3: np.ndarray, c_off: int, bins: BinGrid, sums: PowerSums,
              stats: np.ndarray) -> None:
    """:func:`add_chunk`, split over :data:`THREADS` threads when ``x3`` is large (at least
    :data:`PARALLEL_MIN` values and 4 values per bin of the extra states).  Each extra
    thread fills a fresh state, merged in afterwards: bit-identical to one thread."""
    n_ch = bins.n_channels
    if THREADS < 2 or x3.size < max(PARALLEL_MIN, 4 * n_ch * bins.n_bins):
        add_chunk(x3, c_off, bins, sums, stats)
        return
    x3 = _native(x3)
    pieces = _pieces(x3, THREADS)
    states = [(BinGrid(n_ch, bins.n_bins), PowerSums(n_ch), np.zeros_like(stats))
              for _ in pieces[1:]]
    if not _pool:
        _pool.append(ThreadPoolExecutor(max_workers=THREADS - 1,
                                        thread_name_prefix="lloydmax-hist"))
    futures = [_pool[0].submit(add_chunk, piece, c_off, *state)
               for piece, state in zip(pieces[1:], states)]
    add_chunk(pieces[0], c_off, bins, sums, stats)
    for future, (o_bins, o_sums, o_stats) in zip(futures, states):
        future.result()
        bins.add(o_bins)
        sums.add(o_sums)
        stats += o_stats
