"""lloydmax: exact Lloyd-Max and optimal-uniform quantizer tables for low-precision networks.

>>> import lloydmax as lm
>>> t = lm.solve(bits=2, dist="halfwave-gaussian", uniform=True)   # HWGQ's 2-bit step
>>> round(t.step, 4)
0.5388

The namespace is curated and lazy: every public name is listed below, and the module
that defines it is imported on first use (PEP 562).  ``import lloydmax`` therefore loads
neither numpy nor numba, so that :mod:`lloydmax.torch` (standard library + PyTorch) and
the command line start quickly.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__
from .errors import (
    ConventionError,
    ConvergenceError,
    InvalidBitsError,
    InvalidDataError,
    InvalidInputError,
    InvalidTableError,
    LloydMaxError,
    MissingDependencyError,
    UnknownDistributionError,
)

# public name -> module that defines it
_LAZY = {
    "SCHEMA": "._format",
    "MAX_BITS": "._solver",
    "MAX_LEVELS": "._solver",
    "QuantizerTable": "._table",
    "table_from_dict": "._table",
    "Distribution": "._dists",
    "get_distribution": "._dists",
    "list_distributions": "._dists",
    "solve": "._solver",
    "evaluate": "._solver",
    "solve_data": "._data",
    "solve_dp": "._dp",
    "check": "._check",
    "CheckResult": "._check",
    "table_from_levels": "._check",
    "table_from_step": "._check",
    "zero_threshold_for_sparsity": "._conventions",
    "load_table": "._io",
    "load_tables": "._io",
    "save_tables": "._io",
    "quantize": "._io",
}
_SUBMODULES = ("presets", "weights")

__all__ = [
    "__version__",
    "SCHEMA",
    "MAX_BITS",
    "MAX_LEVELS",
    "QuantizerTable",
    "Distribution",
    "solve",
    "solve_data",
    "solve_dp",
    "evaluate",
    "check",
    "CheckResult",
    "table_from_levels",
    "table_from_step",
    "presets",
    "weights",
    "quantize",
    "zero_threshold_for_sparsity",
    "get_distribution",
    "list_distributions",
    "load_table",
    "load_tables",
    "save_tables",
    "table_from_dict",
    "LloydMaxError",
    "InvalidInputError",
    "InvalidBitsError",
    "InvalidDataError",
    "InvalidTableError",
    "UnknownDistributionError",
    "ConventionError",
    "ConvergenceError",
    "MissingDependencyError",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'lloydmax' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - static analysis sees the real imports
    from . import presets, weights
    from ._check import CheckResult, check, table_from_levels, table_from_step
    from ._conventions import zero_threshold_for_sparsity
    from ._data import solve_data
    from ._dists import Distribution, get_distribution, list_distributions
    from ._dp import solve_dp
    from ._format import SCHEMA
    from ._io import load_table, load_tables, quantize, save_tables
    from ._solver import MAX_BITS, MAX_LEVELS, evaluate, solve
    from ._table import QuantizerTable, table_from_dict
