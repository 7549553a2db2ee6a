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
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ._format import SCHEMA, SET_SCHEMA, dumps_json
from ._version import __version__
from .errors import InvalidInputError

__all__ = ["atomic_write", "encode_tables", "FORMATS", "format_from_path"]

FORMATS = ("json", "csv", "npz")


def atomic_write(path, data: bytes) -> None:
    """Write ``data`` to a temporary file in the target's directory, then rename it over
    the target, so a reader never sees a half-written file and a failure loses nothing.

    Raises
    ------
    InvalidInputError
        When the directory does not exist or is not writable.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise InvalidInputError(f"cannot write {path}: directory {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise InvalidInputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise InvalidInputError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def format_from_path(path, format: str | None = None) -> str:
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


