"""Numba kernels, split along the math.

=====================================  ===============================================
module                                 holds
=====================================  ===============================================
:mod:`lloydmax._kernels.cells`         distribution and status codes, densities, cell
                                       moments (mass, mean, variance) serial, parallel
                                       and mirrored, residuals
:mod:`lloydmax._kernels.summary`       MSE, signal power, entropy of a table
:mod:`lloydmax._kernels.quantize`      quantizing values by the thresholds
:mod:`lloydmax._kernels.newton`        Lloyd-Max by safeguarded Newton (tridiagonal),
                                       optimal uniform step (Newton on offset, step)
:mod:`lloydmax._kernels.start`         Panter-Dite (compander) start, closed form for
                                       the built-in densities
:mod:`lloydmax._kernels.tabulated`     tabulated (scipy) densities: singular points,
                                       exponential / power-law tails
:mod:`lloydmax._kernels.data`          Lloyd and uniform Lloyd on weighted points,
                                       their one-pass metrics (numpy's summation
                                       order)
:mod:`lloydmax._kernels.dp`            globally optimal partition of weighted points
                                       (dynamic programming, used by
                                       :func:`lloydmax.solve_dp`)
=====================================  ===============================================

Every kernel is compiled by :func:`lloydmax._jit.jit` (``cache=True``) and runs as plain
Python under ``NUMBA_DISABLE_JIT=1``.  Nothing here validates input:
:mod:`lloydmax._solver` does that and wraps the results.  This package re-exports the
names the rest of the package uses as ``K.name``.

Notes
-----
numba's on-disk cache keys a kernel on its *own* source file only: a kernel that calls
into another module is not recompiled when only that other module changes.  After
editing :mod:`~lloydmax._kernels.cells` (or :mod:`~lloydmax._kernels.newton`, which
:mod:`~lloydmax._kernels.data` calls), delete ``lloydmax/_kernels/__pycache__/*.nb?`` or
work with ``LLOYDMAX_JIT_CACHE=0``.
"""
from .cells import (
    EMPTY_CELL,
    GAUSS,
    HALFNORM,
    LAPLACE,
    MAXITER,
    OK,
    STALLED,
    TAB,
    UNIFORM,
    cell_moments,
    centroid_residual,
    fill_thresholds,
    midpoint_residual,
    pdf,
)
from .data import point_metrics, solve_data_lloyd, solve_data_uniform
from .newton import solve_nonuniform, solve_uniform
from .quantize import quantize_index, quantize_values
from .start import compander_guess
from .summary import cell_table, summarize, summarize_cells
from .tabulated import PIECE_BASE, piece_moments

__all__ = [
    "EMPTY_CELL",
    "GAUSS",
    "HALFNORM",
    "LAPLACE",
    "MAXITER",
    "OK",
    "PIECE_BASE",
    "STALLED",
    "TAB",
    "UNIFORM",
    "cell_moments",
    "cell_table",
    "centroid_residual",
    "compander_guess",
    "fill_thresholds",
    "midpoint_residual",
    "pdf",
    "point_metrics",
    "piece_moments",
    "quantize_index",
    "quantize_values",
    "solve_data_lloyd",
    "solve_data_uniform",
    "solve_nonuniform",
    "solve_uniform",
    "summarize",
    "summarize_cells",
]
