"""Reading and saving table files (JSON, CSV, NPZ); the encodings are described in
:mod:`lloydmax._files`, the table format itself in :mod:`lloydmax._format`."""
from __future__ import annotations

import io

import numpy as np

from ._files import atomic_write, encode_tables, format_from_path
from ._format import SCHEMA, SET_SCHEMA, decode_json, read_file, tables_of
from ._inputs import as_path
from ._table import QuantizerTable, table_from_dict
from .errors import InvalidTableError

__all__ = ["save_tables", "load_tables", "load_table", "quantize"]


def save_tables(tables, path, format: str | None = None) -> None:
    """Write one or more tables to ``path`` atomically (format from the suffix)."""
    fmt = format_from_path(path, format)
    atomic_write(path, encode_tables(tables, fmt))


# ---------------------------------------------------------------------- reading


def load_tables(path, format: str | None = None) -> list[QuantizerTable]:
    """Read every table in a JSON, CSV or NPZ table file.

    Raises
    ------
    InvalidTableError
        For a missing, unreadable or malformed file (one-line message).
    """
    path = as_path(path, "table file path")
    fmt = format_from_path(path, format)
    raw = read_file(path)
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


def _decode_json(raw: bytes):
    return [table_from_dict(t) for t in tables_of(decode_json(raw))]


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
                metas.append(decode_json(body[len(SCHEMA):]))
            except InvalidTableError as exc:
                raise InvalidTableError(f"line {lineno}: bad metadata ({exc})") from None
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
    meta_entry = files["meta"]
    if meta_entry.dtype.kind != "U" or meta_entry.ndim != 0:
        raise InvalidTableError("'meta' must be a text entry")
    try:
        meta = decode_json(str(meta_entry))
    except InvalidTableError as exc:
        raise InvalidTableError(f"bad 'meta' ({exc})") from None
    if not isinstance(meta, dict) or meta.get("schema") != SET_SCHEMA:
        raise InvalidTableError(f"'meta' is not a {SET_SCHEMA} object")
    entries = meta.get("tables")
    if not isinstance(entries, list) or not all(isinstance(d, dict) for d in entries):
        raise InvalidTableError("'meta' has no list of table objects under 'tables'")
    tables = []
    for k, d in enumerate(entries):
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


def quantize(x, table):
    """Quantize ``x`` with ``table`` (a :class:`QuantizerTable` or a table file path)."""
    if not isinstance(table, QuantizerTable):
        table = load_table(table)
    return table.quantize(x)
