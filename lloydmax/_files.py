"""Writing tables: JSON, CSV and NPZ bytes, written atomically and byte-deterministically.

* JSON: one table is a ``lloydmax.table/1`` object; several are
  ``{"schema": "lloydmax.tableset/1", "version": ..., "tables": [...]}``.
* CSV: per table, one comment line ``# lloydmax.table/1 {...metadata JSON...}`` and then
  rows ``table,index,level,threshold`` (``threshold`` is the cell's upper threshold,
  empty for the last level).  ``pandas.read_csv(path, comment="#")`` reads the rows.
* NPZ: ``meta`` (the JSON text of the table set without the numbers) plus
  ``levels_K`` / ``thresholds_K`` float64 arrays for table K.

Floats are written with ``repr`` precision, so reading a file back gives the very
same numbers.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import stat
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ._format import SCHEMA, SET_SCHEMA, dumps_json
from ._inputs import as_path
from ._version import __version__
from .errors import InvalidInputError, InvalidTableError

__all__ = ["atomic_write", "atomic_write_many", "check_target", "encode_tables", "FORMATS",
           "format_from_path"]

FORMATS = ("json", "csv", "npz")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a pipe"
    return "not a regular file"


def _same_file(a: Path, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError, TypeError):  # one of them does not exist (yet)
        try:
            return os.path.realpath(a) == os.path.realpath(b)
        except (OSError, ValueError, TypeError):
            return False


def _identity(path: Path) -> tuple:
    """What :func:`_same_file` compares, as a key: the inode of an existing file, else
    the resolved path."""
    try:
        info = os.stat(path)
        return ("inode", info.st_dev, info.st_ino)
    except (OSError, ValueError):
        return ("path", os.path.realpath(path))


def check_target(path, inputs=()) -> Path:
    """Refuse to write ``path`` when it is not a regular file (a device such as
    ``/dev/null``, a directory, a pipe: a rename would replace the node itself) or when it
    is one of ``inputs``, the files the command reads (writing there loses the input).

    Raises
    ------
    InvalidInputError
        For either refusal, or a target that cannot be inspected.
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}"
                                ) from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise InvalidInputError(f"refusing to write {path}: it is {_kind(info.st_mode)}, not a "
                                "regular file (leave out -o to write to standard output)")
    for source in inputs:
        if source is not None and _same_file(path, source):
            raise InvalidInputError(f"refusing to write {path}: it is an input of this command "
                                    "and would be lost")
    return path


def _directory_of(path: Path) -> Path:
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise InvalidInputError(f"cannot write {path}: directory {directory} does not exist")
    return directory


def _write_temp(path: Path, directory: Path, data: bytes, sync: bool = True) -> str:
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise InvalidInputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise InvalidInputError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
    return tmp


def _sync_all(temps) -> None:
    """Flush the data of many new files at once, before they are renamed into place: one
    ``sync(2)`` instead of one ``fsync`` per file (26k fsyncs took ~100 s; 96 ms each on a
    busy disk).  Without ``os.sync`` (Windows), each file is synced."""
    if hasattr(os, "sync"):
        os.sync()
        return
    for tmp, _ in temps:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_directory(directory: Path) -> None:
    """Make the renames durable; some file systems cannot open a directory: no matter."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path, data: bytes, *, inputs=()) -> None:
    """Write ``data`` to a temporary file in the target's directory, then rename it over
    the target, so a reader never sees a half-written file and a failure loses nothing.

    ``inputs`` are the files the caller read; the target may not be one of them, nor a
    device, directory or pipe (:func:`check_target`).

    Raises
    ------
    InvalidInputError
        When the directory does not exist or is not writable, or the target is refused.
    """
    atomic_write_many([(path, data)], inputs=inputs)


def atomic_write_many(items, *, inputs=()) -> None:
    """Write several ``(path, data)`` files as :func:`atomic_write` does: every target is
    checked before anything is written, every file is written under a temporary name in
    its target's directory, the data of all of them is flushed to disk (one fsync for a
    single file, one ``sync`` for several), then all are renamed, with one fsync per
    directory at the end.  Each file is atomic, also across a crash: a rename never
    reaches the disk before the data it names."""
    items = [(check_target(path, inputs), data) for path, data in items]
    seen = set()
    for p, _ in items:  # by identity, not pairwise: 26k files would be 338M comparisons
        key = _identity(p)
        if key in seen:
            raise InvalidInputError(f"cannot write {p} twice in one command")
        seen.add(key)
    directories = {}
    for p, _ in items:
        directories.setdefault(str(_directory_of(p)), _directory_of(p))
    temps: list[tuple[str, Path]] = []
    try:
        single = len(items) == 1
        for p, data in items:
            temps.append((_write_temp(p, _directory_of(p), data, sync=single), p))
        if not single:
            try:
                _sync_all(temps)
            except OSError as exc:
                raise InvalidInputError(f"cannot write {temps[0][1]}: {exc.strerror or exc}"
                                        ) from None
        while temps:
            tmp, p = temps[0]
            try:
                os.replace(tmp, p)
            except OSError as exc:
                raise InvalidInputError(f"cannot write {p}: {exc.strerror or exc}") from None
            temps.pop(0)
    finally:
        for tmp, _ in temps:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    for directory in directories.values():
        _fsync_directory(directory)


def format_from_path(path, format: str | None = None) -> str:
    path = as_path(path, "table file path")  # str or os.PathLike, else InvalidInputError
    if format is not None:
        fmt = format.lower()
    else:
        fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise InvalidInputError(
            f"unsupported table format {fmt or '(no suffix)'!r} for {path}; use one of "
            + ", ".join(FORMATS))
    return fmt


def _set_dict(tables) -> dict:
    return {"schema": SET_SCHEMA, "version": __version__,
            "tables": [t.to_dict() for t in tables]}


def encode_tables(tables, fmt: str) -> bytes:
    tables = list(tables)
    if not tables:
        raise InvalidInputError("no tables to write")
    for t in tables:
        bad = [name for name in ("mse", "residual", "step", "zero_threshold", "entropy_bits")
               if getattr(t, name, None) is not None and not math.isfinite(getattr(t, name))]
        if bad:
            raise InvalidTableError(
                f"the {t.distribution} table has a non-finite {', '.join(bad)} (beyond the "
                "float64 range at this scale): the table format needs finite numbers")
    if fmt == "json":
        obj = tables[0].to_dict() if len(tables) == 1 else _set_dict(tables)
        return dumps_json(obj).encode("ascii")
    if fmt == "csv":
        return _encode_csv(tables)
    return _encode_npz(tables)


def _meta(table) -> dict:
    d = table.to_dict()
    d.pop("levels")
    d.pop("thresholds")
    return d


def _encode_csv(tables) -> bytes:
    out = io.StringIO()
    out.write("table,index,level,threshold\n")
    for k, t in enumerate(tables):
        out.write(f"# {SCHEMA} {json.dumps(_meta(t), allow_nan=False, separators=(',', ':'))}\n")
        for i, level in enumerate(t.levels):
            thr = repr(float(t.thresholds[i])) if i < t.n_levels - 1 else ""
            out.write(f"{k},{i},{float(level)!r},{thr}\n")
    return out.getvalue().encode("ascii")


_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _encode_npz(tables) -> bytes:
    meta = _set_dict(tables)
    for d in meta["tables"]:
        d.pop("levels")
        d.pop("thresholds")
    arrays = {"meta": np.array(json.dumps(meta, allow_nan=False, separators=(",", ":")))}
    for k, t in enumerate(tables):
        arrays[f"levels_{k}"] = np.ascontiguousarray(t.levels, dtype=np.float64)
        arrays[f"thresholds_{k}"] = np.ascontiguousarray(t.thresholds, dtype=np.float64)
    buf = io.BytesIO()
    # np.savez stamps the current time into the zip; write entries with a fixed date
    # so the same tables always give the same bytes.
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            body = io.BytesIO()
            np.lib.format.write_array(body, arr, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            zf.writestr(info, body.getvalue())
    return buf.getvalue()


