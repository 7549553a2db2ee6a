"""Reading ``lloydmax.table/1`` tables with the standard library alone (no numba, no
solver), for :mod:`lloydmax.torch`, which re-exports :func:`read_table`."""
from __future__ import annotations

import os
from collections.abc import Mapping

from . import _format
from .errors import InvalidTableError

# ---------------------------------------------------------------------- reading tables


def _checked(obj) -> dict:
    """A validated table: the full format for anything that names a schema (every file
    does), only the lookup part for a bare ``{"levels", "thresholds"}`` mapping."""
    if not isinstance(obj, Mapping):
        raise InvalidTableError("a table must be a JSON object")
    if "schema" in obj:
        return _format.validate_table(obj)
    convention = obj.get("convention", "none")
    if convention not in _format.CONVENTIONS:
        raise InvalidTableError(f"field 'convention' must be one of "
                                f"{', '.join(_format.CONVENTIONS)}")
    levels, thresholds = _format.validate_lookup(obj, convention)
    out = dict(obj)
    out.update(levels=levels, thresholds=thresholds, convention=convention,
               bits=_format.bits_for_levels(len(levels)))
    return out


def read_table(source, bits: int | None = None, index: int | None = None) -> dict:
    """Read one ``lloydmax.table/1`` table with the standard library alone.

    Parameters
    ----------
    source : str, os.PathLike, Mapping or QuantizerTable
        A JSON file (one table or a ``lloydmax.tableset/1`` set), the parsed mapping, or
        an object with ``to_dict()`` such as :class:`lloydmax.QuantizerTable`.  A bare
        mapping ``{"levels": [...], "thresholds": [...]}`` is accepted too.
    bits : int, optional
        Pick the table with this bit-width from a set (and check it for a single table).
    index : int, optional
        Pick the table at this position of a set.

    Returns
    -------
    dict
        The table's fields; ``levels`` and ``thresholds`` are lists of floats (validated:
        finite, strictly increasing, each threshold between its neighbouring levels),
        ``bits`` and ``convention`` are always present.

    Raises
    ------
    InvalidTableError
        For an unreadable or malformed table, or a selection that matches no table or
        several.
    """
    if hasattr(source, "to_dict") and callable(source.to_dict):
        obj = source.to_dict()
    elif isinstance(source, Mapping):
        obj = source
    elif isinstance(source, (str, os.PathLike)):
        obj = _read_file(source)
        if not (isinstance(obj, Mapping) and "schema" in obj):
            raise InvalidTableError(f"{source}: not a {_format.SCHEMA} table file (no 'schema')")
    else:
        raise InvalidTableError(
            f"expected a path, a mapping or a QuantizerTable, got {type(source).__name__}")
    tables = _format.tables_of(obj)
    if index is not None:
        if isinstance(index, bool) or not isinstance(index, int) or not (
                0 <= index < len(tables)):
            raise InvalidTableError(
                f"index {index!r} is out of range for {len(tables)} table(s)")
        chosen = _checked(tables[index])
        if bits is not None and chosen["bits"] != bits:
            raise InvalidTableError(f"table {index} has bits={chosen['bits']}, not {bits}")
        return chosen
    checked = [_checked(t) for t in tables]
    if bits is not None:
        hits = [t for t in checked if t["bits"] == bits]
        if not hits:
            have = ", ".join(str(t["bits"]) for t in checked)
            raise InvalidTableError(f"no table with bits={bits} (available: {have})")
        if len(hits) > 1:
            raise InvalidTableError(f"{len(hits)} tables have bits={bits}; pick one with index=")
        return hits[0]
    if len(checked) != 1:
        raise InvalidTableError(f"the set holds {len(checked)} tables; pick one with bits= "
                                "or index=")
    return checked[0]


def _read_file(source):
    raw = _format.read_file(source)
    try:
        return _format.decode_json(raw)
    except InvalidTableError as exc:
        raise InvalidTableError(f"{source}: {exc}") from None
