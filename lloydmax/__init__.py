"""lloydmax: exact Lloyd-Max and optimal-uniform quantizer tables for low-precision networks.

>>> import lloydmax as lm
>>> t = lm.solve(bits=2, dist="halfwave-gaussian", uniform=True)   # HWGQ's 2-bit step
>>> round(t.step, 4)
0.5388
"""
from . import presets, weights
from ._check import CheckResult, check, table_from_levels, table_from_step
from ._dists import Distribution, get_distribution, list_distributions
from ._dp import solve_dp
from ._io import load_table, load_tables, save_tables
from ._solver import (MAX_BITS, MAX_LEVELS, evaluate, solve, solve_data,
                      zero_threshold_for_sparsity)
from ._table import SCHEMA, QuantizerTable, table_from_dict
from ._version import __version__
from .errors import (ConvergenceError, ConventionError, InvalidBitsError, InvalidDataError,
                     InvalidInputError, InvalidTableError, LloydMaxError, MissingDependencyError,
                     UnknownDistributionError)


def quantize(x, table):
    """Quantize ``x`` with ``table`` (a :class:`QuantizerTable` or a table file path)."""
    if not isinstance(table, QuantizerTable):
        table = load_table(table)
    return table.quantize(x)


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
