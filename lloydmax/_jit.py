"""The one place where JIT options live.

Every kernel in :mod:`lloydmax._kernels` is decorated with :func:`jit`.  Options:

* ``cache=True`` so that a command-line start loads machine code from numba's
  on-disk cache instead of recompiling (set ``LLOYDMAX_JIT_CACHE=0`` to turn it off,
  e.g. on a read-only install).
* fastmath stays off: the solver relies on IEEE NaN/Inf semantics (``erfc`` tails,
  ``-inf``/``+inf`` cell edges).  ``LLOYDMAX_FASTMATH`` may name a flag set such as
  ``contract,reassoc``; ``nnan`` and ``ninf`` are always stripped from it.
* numba keys each kernel's cache on its *own* source file only.  A kernel that calls a
  kernel of another module of :mod:`lloydmax._kernels` keeps its cached machine code
  when only the callee's file changes, so while editing kernels set
  ``LLOYDMAX_JIT_CACHE=0`` (or delete ``lloydmax/_kernels/__pycache__/*.nb?``).  An
  installed release is never affected: installing replaces every file.
* ``NUMBA_DISABLE_JIT=1`` (numba's own switch) runs every kernel as plain Python,
  for coverage and debugging.
"""
from __future__ import annotations

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


def jit(func):
    """Compile ``func`` with the project's JIT options (see module docstring)."""
    return njit(**JIT_OPTIONS)(func)
