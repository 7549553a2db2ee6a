"""Collect histograms from numpy arrays, iterables of batches, ``.npy`` and ``.npz`` files.

Files are read in slabs along their first axis, so memory stays bounded whatever their
size: ``.npy`` through a read-only memory map, ``.npz`` members by streaming each stored
array out of the zip (compressed or not) instead of loading it whole.
"""
from __future__ import annotations

import math
import os
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from lloydmax.errors import InvalidDataError, InvalidInputError, LloydMaxError

from ._progress import Progress, phase
from .histogram import Histogram

__all__ = ["collect", "feed", "histograms_from", "layer_histogram", "memory_order", "planned_units"]

#: values per slab read from a file
SLAB = 1 << 22
#: values per channel-major slab of a channels-last activation (4 MiB of float32)
SCRATCH = 1 << 20


def collect(source, *, axis: int | None = None, n_bins: int = 2048, strict: bool = False,
            progress: bool | Progress | None = None):
    """Histogram(s) of activation data.

    Parameters
    ----------
    source
        * a numpy array (or anything with ``__array__``, e.g. a CPU torch tensor);
        * an iterable of batches (arrays of the same channel count), e.g. a generator;
        * a mapping ``name -> array``;
        * a path to a ``.npy`` file (memory-mapped, read in slabs) or a ``.npz`` file
          (every array one layer, streamed in slabs).
    axis : int or None
        Channel axis of each array (e.g. 1 for NCHW); None for one histogram per tensor.
    n_bins, strict
        Passed to :class:`~lloydmax.analysis.histogram.Histogram`.
    progress : bool, None or Progress
        Show a progress bar on stderr; None shows it only when stderr is a terminal.  An
        existing :class:`~lloydmax.analysis._progress.Progress` is advanced instead, one
        unit per array (``.npy``, ``.npz`` member) or batch, and left open.

    Returns
    -------
    Histogram, or dict[str, Histogram]
        One histogram; a dict for a ``.npz`` file or a mapping (one entry per layer).

    Raises
    ------
    InvalidInputError
        A missing or unsupported file, or an axis out of range for an array.
    InvalidDataError
        Non-numeric arrays (or NaN / Inf with ``strict=True``).
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        suffix = path.suffix.lower()
        if suffix not in (".npy", ".npz"):
            raise InvalidInputError(f"cannot collect from {path.name!r}: use a .npy or .npz file")
        if not path.is_file():
            raise InvalidInputError(f"activation file not found: {path}")
        if suffix == ".npy":
            return _collect_npy(path, axis, n_bins, strict, progress)
        return _collect_npz(path, axis, n_bins, strict, progress)
    if isinstance(source, Mapping):
        return {str(name): collect(value, axis=axis, n_bins=n_bins, strict=strict,
                                   progress=progress)
                for name, value in source.items()}
    hist = Histogram(n_bins=n_bins, axis=axis, strict=strict)
    if isinstance(source, np.ndarray) or hasattr(source, "__array__"):
        arr = np.asarray(source)
        _check_array(arr, axis, "data")
        done = _array_units(progress, 1)
        _feed_array(hist, arr, progress, "histogram")
        done()
        return hist
    if isinstance(source, Iterable):
        total = len(source) if hasattr(source, "__len__") else None
        with phase(progress, total, "histogram") as bar:
            for batch in source:
                feed(hist, batch)
                bar.advance()
        return hist
    raise InvalidInputError(f"cannot collect from a {type(source).__name__}: give an array, "
                            "an iterable of batches, a mapping or a .npy/.npz path")


def planned_units(path, axis: int | None = None, per_channel: bool = False) -> int | None:
    """The progress units of collecting and reporting a ``.npy`` / ``.npz`` file, from its
    headers only: one per array, plus one report row per array (or, ``per_channel``, per
    channel along ``axis``); None when a header cannot be read (collect says why)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            shapes = [np.load(path, mmap_mode="r", allow_pickle=False).shape]
        else:
            with zipfile.ZipFile(path) as zf:
                shapes = [_member_shape(zf, member) for member in zf.namelist()]
        rows = sum(s[axis] for s in shapes) if per_channel else len(shapes)
    except (OSError, ValueError, IndexError, TypeError, EOFError, zlib.error,
            zipfile.BadZipFile, NotImplementedError):
        return None
    return len(shapes) + int(rows)


def _member_shape(zf, member: str) -> tuple:
    with zf.open(member) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(fh)[0]
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(fh)[0]
    raise ValueError(f"header version {version}")


def _check_array(arr: np.ndarray, axis, name: str) -> None:
    if arr.dtype.kind not in "fiu":
        raise InvalidDataError(f"{name}: data must be real numbers, got dtype {arr.dtype}")
    if axis is not None and not -arr.ndim <= axis < arr.ndim:
        raise InvalidInputError(f"{name}: axis {axis} is out of range for an array of shape "
                                f"{arr.shape}")


def _array_units(progress, n: int):
    """For a shared Progress: expect ``n`` arrays and return its ``advance``; else a no-op."""
    if isinstance(progress, Progress):
        progress.extend(n)
        return progress.advance
    return lambda k=1: None


def _rows_bar(progress, n: int, desc: str) -> Progress:
    """The bar over one array's rows: off inside a shared Progress (it counts arrays)."""
    return Progress(n, desc, enabled=False if isinstance(progress, Progress) else progress)


def memory_order(arr: np.ndarray, axis: int | None):
    """``arr`` with its axes permuted into memory order, as a C-contiguous view, and where
    the channel ``axis`` went: a Fortran-order or channels-last (NHWC memory, NCHW shape)
    array is then read without a copy.  Unchanged when no permutation is contiguous."""
    if arr.ndim < 2 or arr.flags.c_contiguous:
        return arr, axis
    order = sorted(range(arr.ndim), key=lambda k: -arr.strides[k])  # stable
    view = arr.transpose(order)
    if not view.flags.c_contiguous:  # strided slices, broadcasts: the histogram copies
        return arr, axis
    return view, None if axis is None else order.index(axis % arr.ndim)


def feed(hist: Histogram, data) -> None:
    """``hist.update(data)``, reading ``data`` in its memory order (:func:`memory_order`):
    no copy of a strided activation whose layout is a permutation of C order."""
    arr = np.asarray(data)
    if arr.dtype.kind not in "fiu" or hist.axis is None:
        hist.update(memory_order(arr, None)[0] if arr.dtype.kind in "fiu" else arr)
        return
    if not -arr.ndim <= hist.axis < arr.ndim:
        hist.update(arr)  # raises the histogram's own axis error
        return
    view, axis = memory_order(arr, hist.axis)
    own = hist.axis % arr.ndim
    if axis == own:
        hist.update(view)
    elif (hist.strict or own == 0
          or math.prod(view.shape[axis + 1:]) >= math.prod(arr.shape[own + 1:])):
        hist.update_along(view, axis)  # each channel's run is as long in memory order
    else:  # channels-last: a channel's values are far apart in memory
        _feed_channel_major(hist, arr)


def _feed_channel_major(hist: Histogram, arr: np.ndarray) -> None:
    """A channels-last activation in slabs along its batch axis, each re-laid out in
    channel-major (C) order in one reused buffer of at most :data:`SCRATCH` values (or one
    sample): the per-channel pass runs about 2x faster on a channel's contiguous run than on
    values that change channel at every step, and memory stays bounded (no copy of the
    whole activation).  One NaN / Inf warning for the whole array, as one update gives."""
    rows = max(1, SCRATCH // max(1, arr[0].size))
    buf = np.empty((min(rows, arr.shape[0]), *arr.shape[1:]), dtype=arr.dtype)
    before = _skipped(hist)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for start in range(0, arr.shape[0], rows):
            block = arr[start:start + rows]
            out = buf[:block.shape[0]]
            np.copyto(out, block)
            hist.update(out)
    skipped = _skipped(hist) - before
    if skipped:
        warnings.warn(f"histogram skipped {skipped} NaN/Inf value(s) in this update (totals: "
                      f"nan_count={int(np.sum(hist.nan_count))}, "
                      f"inf_count={int(np.sum(hist.inf_count))})", RuntimeWarning, stacklevel=3)


def _skipped(hist: Histogram) -> int:
    return int(np.sum(hist.nan_count)) + int(np.sum(hist.inf_count))


def layer_histogram(histograms: dict, name: str, ndim: int, n_bins, axis, strict):
    """The histogram of layer ``name`` in ``histograms``, made on first sight: per channel
    along ``axis`` unless its arrays have too few dimensions."""
    hist = histograms.get(name)
    if hist is None:
        layer_axis = axis if axis is None or ndim > axis else None
        hist = histograms[name] = Histogram(n_bins=n_bins, axis=layer_axis, strict=strict)
    return hist


def histograms_from(activations: Iterable[tuple[str, np.ndarray]], *, n_bins: int = 2048,
                    axis: int | None = 1, strict: bool = False) -> dict:
    """Feed a stream of ``(layer_name, array)`` pairs into one histogram per layer.

    Parameters
    ----------
    activations : iterable of (str, numpy.ndarray)
        For example :func:`iter_activations` or
        :func:`lloydmax.analysis.onnx_collect.iter_onnx_activations`.  A strided array
        (a channels-last activation) is read in its memory order, without a copy.
    n_bins, axis, strict
        Passed to :class:`lloydmax.analysis.histogram.Histogram`; ``axis`` is the channel
        axis for per-channel statistics (``None`` pools the whole tensor).  Arrays with
        fewer than ``axis + 1`` dimensions are pooled whole.

    Returns
    -------
    dict[str, Histogram]
        In the order the layers first produced an activation.

    Raises
    ------
    InvalidInputError
        When the stream is empty (no selected layer ran).
    """
    histograms: dict = {}
    for name, array in activations:
        array = np.asarray(array)
        feed(layer_histogram(histograms, name, array.ndim, n_bins, axis, strict), array)
    if not histograms:
        raise InvalidInputError("no activation was collected: the selected layers never ran")
    return histograms


def _feed_array(hist: Histogram, arr: np.ndarray, progress, desc: str) -> None:
    """Update ``hist`` from ``arr`` in slabs along the first axis (bounded memory)."""
    axis = hist.axis
    if arr.ndim == 0 or arr.size == 0:
        hist.update(arr)
        return
    if axis is not None and axis < 0:
        axis += arr.ndim
    arr, axis = memory_order(arr, axis)  # slabs along the slowest axis of the memory layout
    if axis is not None:
        hist.ensure_channels(arr.shape[axis])
    rows = max(1, SLAB // max(1, arr[0].size))
    with _rows_bar(progress, arr.shape[0], desc) as bar:
        for start in range(0, arr.shape[0], rows):
            block = arr[start:start + rows]
            if axis == 0:
                hist.update_block(block, start)
            elif axis is None:
                hist.update(block)
            else:
                # the slab keeps every channel; only the batch axis is cut (and, for a
                # transposed array, the channels sit on axis, not on the histogram's axis)
                hist.update_along(block, axis)
            bar.advance(block.shape[0])


def _collect_npy(path: Path, axis, n_bins, strict, progress) -> Histogram:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{path}: not a readable .npy file ({exc})") from None
    _check_array(arr, axis, path.name)
    hist = Histogram(n_bins=n_bins, axis=axis, strict=strict)
    done = _array_units(progress, 1)
    _feed_array(hist, arr, progress, path.name)
    done()
    return hist


class _Stream:
    """Rows of one ``.npy`` member of a zip, read sequentially in slabs."""

    def __init__(self, fh, shape, dtype):
        self.fh, self.shape, self.dtype = fh, shape, dtype

    def slabs(self, rows: int):
        row_values = int(np.prod(self.shape[1:], dtype=np.int64))
        for start in range(0, self.shape[0], rows):
            n = min(rows, self.shape[0] - start)
            nbytes = n * row_values * self.dtype.itemsize
            raw = self.fh.read(nbytes)
            if len(raw) != nbytes:
                raise InvalidInputError("truncated array in .npz file")
            yield start, np.frombuffer(raw, dtype=self.dtype).reshape((n, *self.shape[1:]))


def _collect_npz(path: Path, axis, n_bins, strict, progress) -> dict:
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InvalidInputError(f"{path}: not a readable .npz file ({exc})") from None
    try:
        with zf:
            return _collect_members(zf, path, axis, n_bins, strict, progress)
    except LloydMaxError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
            NotImplementedError) as exc:  # a bad CRC, a truncated or odd member
        raise InvalidInputError(f"{path}: corrupted .npz file ({' '.join(str(exc).split())})"
                                ) from None


def _collect_members(zf, path: Path, axis, n_bins, strict, progress) -> dict:
    out = {}
    done = _array_units(progress, len(zf.namelist()))
    for member in zf.namelist():
        name = member[:-4] if member.endswith(".npy") else member
        hist = Histogram(n_bins=n_bins, axis=axis, strict=strict)
        with zf.open(member) as fh:
            try:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
                else:
                    fortran, shape, dtype = True, None, None  # read whole, below
            except ValueError as exc:
                raise InvalidInputError(f"{path}: member {member!r} is not an array "
                                        f"({exc})") from None
            if not fortran and dtype.kind in "fiu" and len(shape) > 0:
                _check_array(np.empty((0,) * len(shape), dtype), axis, f"{path.name}:{name}")
                if axis is not None:
                    hist.ensure_channels(shape[axis])
                _feed_stream(hist, _Stream(fh, shape, dtype), axis, progress,
                             f"{path.name}:{name}")
                out[name] = hist
                done()
                continue
        # Fortran order, 0-d, an exotic header or a non-numeric dtype: load this member
        with np.load(path, allow_pickle=False) as z:
            try:
                arr = z[name]
            except ValueError as exc:
                raise InvalidDataError(f"{path.name}:{name}: cannot read ({exc})") from None
        _check_array(arr, axis, f"{path.name}:{name}")
        _feed_array(hist, arr, progress, f"{path.name}:{name}")
        out[name] = hist
        done()
    return out


def _feed_stream(hist: Histogram, stream: _Stream, axis, progress, desc: str) -> None:
    shape = stream.shape
    ax = None if axis is None else axis % len(shape)
    rows = max(1, SLAB // max(1, int(np.prod(shape[1:], dtype=np.int64))))
    with _rows_bar(progress, shape[0], desc) as bar:
        for start, block in stream.slabs(rows):
            if ax == 0:
                hist.update_block(block, start)
            else:
                hist.update(block)
            bar.advance(block.shape[0])
