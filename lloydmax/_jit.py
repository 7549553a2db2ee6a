"""The one place where JIT options live.

Every kernel in :mod:`lloydmax._kernels` is decorated with :func:`jit`.  Options:

* ``cache=True`` so that a command-line start loads machine code from numba's
  on-disk cache instead of recompiling (set ``LLOYDMAX_JIT_CACHE=0`` to turn it off,
  e.g. on a read-only install).
* fastmath stays off: the solver relies on IEEE NaN/Inf semantics (``erfc`` tails,
  ``-inf``/``+inf`` cell edges).  ``LLOYDMAX_FASTMATH`` may name a flag set such as
  ``contract,reassoc``; ``nnan`` and ``ninf`` are always stripped from it.
* numba keys each kernel's cache on its *own* source file only.  A kernel that calls a
  kernel of another module keeps its cached machine code when only the callee's file
  changes, and stale code that calls a changed signature crashes the process.  So the
  first kernel of each directory compares a digest of that directory's kernel
  modules (the ``.py`` files that import this ``jit``) with a stamp in its
  ``__pycache__`` and, when they differ (an edit, a ``git pull`` into an editable
  install), deletes the directory's cached kernels before numba reads any.
  ``LLOYDMAX_JIT_CACHE=0`` turns caching off altogether.
* ``NUMBA_DISABLE_JIT=1`` (numba's own switch) runs every kernel as plain Python,
  for coverage and debugging.
"""
from __future__ import annotations

import contextlib
import hashlib
import os

from numba import njit

__all__ = ["jit", "JIT_OPTIONS"]


def _options() -> dict:
    # error_model="numpy": IEEE results (inf, nan) instead of Python's ZeroDivisionError,
    # which the kernels rely on and which also drops the per-division checks
    opts: dict = {"cache": os.environ.get("LLOYDMAX_JIT_CACHE", "1") != "0", "nogil": True,
                  "error_model": "numpy"}
    flags = os.environ.get("LLOYDMAX_FASTMATH", "").strip()
    if flags:
        wanted = {f.strip() for f in flags.split(",") if f.strip()} - {"nnan", "ninf", "fast"}
        if wanted:
            opts["fastmath"] = wanted
    return opts


JIT_OPTIONS = _options()


_CHECKED: set = set()
_STAMP = "lloydmax-sources.stamp"


def _purge_stale_cache(func) -> None:
    """Delete the cached kernels of ``func``'s directory when any source there changed
    since they were compiled (see the module docstring).  Never raises."""
    folder = os.path.dirname(os.path.abspath(func.__code__.co_filename))
    if folder in _CHECKED:
        return
    _CHECKED.add(folder)
    try:
        digest = hashlib.sha256()
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                with open(os.path.join(folder, name), "rb") as fh:
                    text = fh.read()
                if b"_jit import jit" in text:  # the kernel modules of this directory
                    digest.update(name.encode() + b"\0" + text)
        cache = os.path.join(folder, "__pycache__")
        stamp = os.path.join(cache, _STAMP)
        try:
            with open(stamp) as fh:
                if fh.read() == digest.hexdigest():
                    return
        except OSError:
            pass
        if not os.path.isdir(cache):
            return
        for name in os.listdir(cache):
            if name.endswith((".nbi", ".nbc")):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(cache, name))
        tmp = f"{stamp}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            fh.write(digest.hexdigest())
        os.replace(tmp, stamp)
    except OSError:  # a read-only install: numba then caches elsewhere or not at all
        return


def jit(func=None, *, inline: bool = False):
    """Compile ``func`` with the project's JIT options (see module docstring).

    ``@jit(inline=True)`` inlines the function into its callers at numba's IR level:
    for per-cell helpers that take arrays, so that the inner loops pay no reference
    counting on each call.  There is no ``parallel`` option: a cached kernel that calls a
    ``parallel=True`` kernel segfaults when numba loads it from its cache (numba issue
    8578)."""
    opts = dict(JIT_OPTIONS)
    if func is None:
        return lambda f: jit(f, inline=inline)
    if opts["cache"]:
        _purge_stale_cache(func)
    if inline:
        opts["inline"] = "always"
    return njit(**opts)(func)
