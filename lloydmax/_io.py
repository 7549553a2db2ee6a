"""Reading and writing tables: JSON, CSV and NPZ, written atomically and byte-deterministically.

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

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ._table import SCHEMA, QuantizerTable, table_from_dict
from ._version import __version__
from .errors import InvalidInputError, InvalidTableError

__all__ = ["save_tables", "load_tables", "load_table", "dumps_json", "atomic_write",
           "FORMATS", "format_from_path"]

SET_SCHEMA = "lloydmax.tableset/1"
FORMATS = ("json", "csv", "npz")


def dumps_json(obj, indent: int | None = 2) -> str:
    return json.dumps(obj, indent=indent, allow_nan=False, ensure_ascii=True) + "\n"


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
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise InvalidInputError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
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


def save_tables(tables, path, format: str | None = None) -> None:
    """Write one or more tables to ``path`` atomically (format from the suffix)."""
    fmt = format_from_path(path, format)
    atomic_write(path, encode_tables(tables, fmt))


def _meta(table: QuantizerTable) -> dict:
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


# ---------------------------------------------------------------------- reading


def load_tables(path, format: str | None = None) -> list[QuantizerTable]:
    """Read every table in a JSON, CSV or NPZ table file.

    Raises
    ------
    InvalidTableError
        For a missing, unreadable or malformed file (one-line message).
    """
    path = Path(path)
    fmt = format_from_path(path, format)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InvalidTableError(f"table file not found: {path}") from None
    except OSError as exc:
        raise InvalidTableError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        if fmt == "json":
            return _decode_json(raw)
        if fmt == "csv":
            return _decode_csv(raw)
        return _decode_npz(raw)
    except InvalidTableError as exc:
        raise InvalidTableError(f"{path}: {exc}") from None


def load_table(path, format: str | None = None, index: int | None = None) -> QuantizerTable:
    """Read one table; a file with several needs ``index``."""
    tables = load_tables(path, format)
    if index is None:
        if len(tables) != 1:
            raise InvalidTableError(f"{path} holds {len(tables)} tables; pick one with index=")
        return tables[0]
    if not 0 <= index < len(tables):
        raise InvalidTableError(f"{path} holds {len(tables)} tables; index {index} is out of range")
    return tables[index]


def _no_constants(token):
    raise InvalidTableError(f"non-finite number {token} in table")


def _decode_json(raw: bytes):
    try:
        obj = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidTableError(f"not valid JSON ({exc})") from None
    if isinstance(obj, dict) and obj.get("schema") == SET_SCHEMA:
        tables = obj.get("tables")
        if not isinstance(tables, list) or not tables:
            raise InvalidTableError("table set has no 'tables' list")
        return [table_from_dict(t) for t in tables]
    return [table_from_dict(obj)]


def _decode_csv(raw: bytes):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidTableError("not a text file") from None
    lines = text.splitlines()
    if not lines or lines[0].strip() != "table,index,level,threshold":
        raise InvalidTableError("missing CSV header 'table,index,level,threshold'")
    metas: list[dict] = []
    rows: dict[int, list] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        if line.startswith("#"):
            body = line[1:].strip()
            if not body.startswith(SCHEMA):
                raise InvalidTableError(f"line {lineno}: expected '# {SCHEMA} {{...}}'")
            try:
                metas.append(json.loads(body[len(SCHEMA):], parse_constant=_no_constants))
            except json.JSONDecodeError as exc:
                raise InvalidTableError(f"line {lineno}: bad metadata JSON ({exc})") from None
            continue
        parts = line.split(",")
        if len(parts) != 4:
            raise InvalidTableError(f"line {lineno}: expected 4 fields, got {len(parts)}")
        try:
            k, i = int(parts[0]), int(parts[1])
            level = float(parts[2])
            thr = float(parts[3]) if parts[3].strip() else None
        except ValueError:
            raise InvalidTableError(f"line {lineno}: not a number") from None
        rows.setdefault(k, []).append((i, level, thr))
    if not metas:
        raise InvalidTableError("no table metadata line found")
    if sorted(rows) != list(range(len(metas))):
        raise InvalidTableError("table numbers in the rows do not match the metadata lines")
    tables = []
    for k, meta in enumerate(metas):
        entries = sorted(rows[k])
        if [e[0] for e in entries] != list(range(len(entries))):
            raise InvalidTableError(f"table {k}: level indices are not 0..n-1")
        if not isinstance(meta, dict):
            raise InvalidTableError(f"table {k}: metadata must be a JSON object")
        thr = [e[2] for e in entries[:-1]]
        if any(v is None for v in thr) or entries[-1][2] is not None:
            raise InvalidTableError(f"table {k}: every level but the last needs a threshold")
        d = dict(meta)
        d["levels"] = [e[1] for e in entries]
        d["thresholds"] = thr
        tables.append(table_from_dict(d))
    return tables


def _decode_npz(raw: bytes):
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            files = dict(z.items())
    except Exception:
        raise InvalidTableError("not a readable .npz archive") from None
    if "meta" not in files:
        raise InvalidTableError("archive has no 'meta' entry")
    try:
        meta = json.loads(str(files["meta"]), parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise InvalidTableError(f"bad 'meta' JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("schema") != SET_SCHEMA:
        raise InvalidTableError(f"'meta' is not a {SET_SCHEMA} object")
    tables = []
    for k, d in enumerate(meta.get("tables") or []):
        try:
            lv, th = files[f"levels_{k}"], files[f"thresholds_{k}"]
        except KeyError:
            raise InvalidTableError(f"archive lacks levels_{k} or thresholds_{k}") from None
        if lv.ndim != 1 or th.ndim != 1 or lv.dtype.kind != "f" or th.dtype.kind != "f":
            raise InvalidTableError(f"levels_{k} / thresholds_{k} must be 1-D float arrays")
        d = dict(d)
        d["levels"] = [float(v) for v in lv]
        d["thresholds"] = [float(v) for v in th]
        tables.append(table_from_dict(d))
    if not tables:
        raise InvalidTableError("archive holds no tables")
    return tables
