"""On-disk cache of solved tables for ``lloydmax solve`` (standard library only).

One file per request in :func:`cache_dir` (``$LLOYDMAX_CACHE_DIR``, else
``$XDG_CACHE_HOME/lloydmax``, else ``~/.cache/lloydmax``), named by :func:`request_key`:
a SHA-256 of the normalised request, ``lloydmax.__version__`` and the size and
modification time of the solver's source files (:func:`code_stamp`).  An entry is
``{"cache": "lloydmax.cache/1", "key": KEY, "table": <lloydmax.table/1 mapping>}``.

A hit is answered by :class:`CachedTable`, which carries the attributes that
:func:`lloydmax._text.table_text` and :func:`lloydmax._files.encode_tables` read, so
neither numba nor the solver is imported.  Entries are written atomically (temporary
file in the same directory, then ``os.replace``), so concurrent writers of one key both
succeed and a reader never sees half a file.  A corrupt, truncated or foreign entry is
ignored (and rewritten by the next solve); an unusable directory disables the cache.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

from ._format import dumps_json, validate_table
from ._version import __version__

__all__ = ["CachedTable", "cache_dir", "code_stamp", "enabled", "load", "request_key",
           "store"]

ENTRY_SCHEMA = "lloydmax.cache/1"


def enabled(no_cache: bool = False) -> bool:
    """False for ``--no-cache`` or ``LLOYDMAX_CACHE=0``."""
    return not no_cache and os.environ.get("LLOYDMAX_CACHE", "1").strip() != "0"


def cache_dir() -> Path:
    """``$LLOYDMAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/lloydmax``, else ``~/.cache/lloydmax``."""
    explicit = os.environ.get("LLOYDMAX_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "lloydmax"


def request_key(request: dict, version: str = __version__, code: str | None = None) -> str:
    """SHA-256 (hex) of the request (JSON-ready values), the package version and the
    :func:`code_stamp` of the installed solver sources."""
    text = json.dumps({"request": request, "version": version,
                       "code": code_stamp() if code is None else code}, sort_keys=True,
                      separators=(",", ":"), allow_nan=True, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def code_stamp(root: Path | None = None) -> str:
    """Name, size and modification time of every source file of the solver
    (``lloydmax/*.py`` and ``lloydmax/_kernels/*.py``): an editable install whose code
    changed under the same version number must not answer from tables the old code
    solved.  A ``stat`` per file (about 40), no reads."""
    here = Path(__file__).resolve().parent if root is None else Path(root)
    parts = []
    for folder in (here, here / "_kernels"):
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith(".py"):
                    st = entry.stat()
                    parts.append(f"{folder.name}/{entry.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()[:32]


def _path(key: str) -> Path:
    return cache_dir() / f"{key}.json"


class CachedTable:
    """A cached ``lloydmax.table/1`` mapping with the attributes the text and file
    encoders read (``to_text()``, ``to_dict()``, ``levels``, ``mse``, ...)."""

    def __init__(self, obj: dict):
        fields = validate_table(obj)
        self._dict = obj
        dist = fields.pop("distribution")
        self.distribution = dist["name"]
        self.params = dict(dist["params"])
        for name, value in fields.items():
            setattr(self, name, value)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(self._dict))

    def to_text(self) -> str:
        from ._text import table_text

        return table_text(self)


def load(key: str) -> CachedTable | None:
    """The cached table of ``key``, or None (missing, unreadable, corrupt or foreign)."""
    try:
        with open(_path(key), "rb") as fh:
            entry = json.loads(fh.read().decode("utf-8"))
        if (not isinstance(entry, dict) or entry.get("cache") != ENTRY_SCHEMA
                or entry.get("key") != key):
            return None
        table = CachedTable(entry["table"])
    except Exception:  # any bad entry is a miss, never an error
        return None
    return table if table.converged else None


def store(key: str, table_dict: dict) -> bool:
    """Write the entry of ``key`` atomically; False (silently) when it cannot be written."""
    try:
        directory = cache_dir()
        directory.mkdir(parents=True, exist_ok=True)
        data = dumps_json({"cache": ENTRY_SCHEMA, "key": key, "table": table_dict})
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data.encode("utf-8"))
            os.replace(tmp, directory / f"{key}.json")
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except Exception:  # an unwritable cache only turns caching off
        return False
    return True
