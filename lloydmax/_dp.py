"""Globally optimal quantizer of weighted 1-D data by dynamic programming.

Lloyd iteration (:func:`lloydmax.solve_data`) stops at a local optimum.  On the real line
the optimal cells of a squared-error quantizer are contiguous runs of the sorted points,
so the best ``L``-level quantizer is the best partition of the sorted points into ``L``
runs, each reconstructed by its weighted mean.  That partition is found exactly by the
dynamic programme of Ckmeans.1d.dp (Wang & Song 2011, *The R Journal* 3(2))::

    D_k(j) = min_{i < j} D_{k-1}(i) + c(i, j),      c(i, j) = sum_{i <= p < j} w_p (x_p - mu_ij)^2

where ``D_k(j)`` is the least cost of cutting the first ``j`` points into ``k + 1`` runs.
The within-run cost ``c`` is a Monge array (c(a,c) + c(b,d) <= c(a,d) + c(b,c) for
a <= b <= c <= d), so the minimising ``i`` is non-decreasing in ``j`` and each layer is
filled by divide and conquer in O(n log n) evaluations of ``c``, each O(1) from prefix
sums of w, w x and w x^2.

The numba kernels (pure functions over float64/int arrays) are in
:mod:`lloydmax._kernels.dp`; :func:`solve_dp` validates, standardises and wraps the result
in a :class:`~lloydmax.QuantizerTable`.
"""
from __future__ import annotations

import math

import numpy as np

from ._conventions import layout, resolve_levels
from ._data import data_table, standardized_points
from ._dists_blocks import absmax_normalize
from ._dp_pins import solve_dp_pinned
from ._kernels.dp import dp_fit
from ._table import QuantizerTable
from .errors import InvalidDataError

__all__ = ["solve_dp"]

# argmin rows are int32 (n + 1 entries each); past this many entries (64 MB) the backtrack
# keeps only every B-th row of D and recomputes a block of B = sqrt(L) layers at a time
# (O(n sqrt(L)) memory for about 1.5 times the time), so 1e5 points x 256 levels stays
# near 20 MB instead of 100 MB
_ARG_BUDGET = 1 << 24


# --------------------------------------------------------------------------- public


def solve_dp(x, bits=None, *, n_levels=None, weights=None, convention=None,
             zero_threshold=None, pin_levels=None, block=None) -> QuantizerTable:
    """Globally optimal (least weighted MSE) quantizer of weighted 1-D data.

    Exact dynamic programme of Ckmeans.1d.dp (Wang & Song 2011): the sorted points are
    cut into ``L`` contiguous runs minimising

    .. math:: \\sum_{k=1}^{L} \\sum_{p \\in \\text{run } k} w_p (x_p - \\mu_k)^2,

    :math:`\\mu_k` the weighted mean of run ``k``, by
    :math:`D_k(j) = \\min_{i<j} D_{k-1}(i) + c(i, j)` with the monotone-minimiser divide
    and conquer, O(L n log n) time and O(n sqrt L) memory for the backtrack.  Levels are
    the run means; thresholds are midpoints of adjacent levels (a value on a threshold
    goes to the lower level).  At the global optimum no point lies on a midpoint (moving it
    across would keep the cost and re-centring would lower it), so the table's cells are
    the DP's runs.

    Parameters
    ----------
    x : array_like
        Data values (e.g. histogram bin centres).
    bits, n_levels : int, optional
        ``2**bits`` levels, or any level count ``n_levels`` (>= 2).
    weights : array_like, optional
        Non-negative weights (e.g. bin counts); zero-weight points are dropped.
    convention : {"hwgq", "round", "deadzone"}, optional
        Treat the data as ReLU outputs (x >= 0) with level 0 pinned at 0:

        * ``hwgq``: x <= 0 maps to 0; the DP fits ``L - 1`` levels to the positive points.
        * ``deadzone``: x <= ``zero_threshold`` maps to 0 (cost sum w x^2 of those points);
          the DP fits ``L - 1`` levels to the rest.
        * ``round``: 0 is an ordinary level whose cell is a (possibly empty) prefix of the
          sorted points, costing sum w x^2 (distance to 0, not to the run mean); the first
          threshold is the midpoint q_1 / 2.
    zero_threshold : "hwgq", "round" or float, optional
        As in :func:`lloydmax.solve_data`; a number is the dead-zone threshold.
    pin_levels : sequence of float, optional
        Levels held at these values (e.g. ``[-1, 0, 1]``, in the data's units, inside
        the data's range); the other levels are fitted.  Still the exact global optimum:
        the pins cut the line into gaps, the DP runs on each gap for every count of free
        levels, and the counts are allocated exactly (:mod:`lloydmax._pins`).
    block : int, optional
        First divide ``x`` (flattened) by the largest magnitude of each block of
        ``block`` consecutive values, as NF4-style weight quantizers do
        (:func:`lloydmax._dists_blocks.absmax_normalize`); ``weights`` still go with the
        values one for one.  The table is then in normalised units (within [-1, 1]).

    Returns
    -------
    QuantizerTable
        ``distribution="empirical"``, ``kind="nonuniform"``, ``converged=True``,
        ``residual`` the largest centroid/midpoint violation of the result relative to the
        level span (rounding only), ``iterations`` the number of DP layers computed.

    Raises
    ------
    InvalidDataError
        Empty data, NaN or Inf, constant data, fewer distinct values than levels (or, with
        hwgq/deadzone, fewer distinct values above the zero threshold than ``L - 1``), or
        negative data with a half-wave convention.
    """
    b, n = resolve_levels(bits, n_levels)
    if block is not None:
        x = absmax_normalize(x, block)
    if pin_levels is not None:
        return solve_dp_pinned(x, weights, pin_levels, b, n, convention, zero_threshold)
    pts = standardized_points(x, weights, n, convention, zero_threshold)
    z = pts.z
    lay = layout(pts.relu, pts.scale, n, convention, zero_threshold, None)

    if lay.convention in ("hwgq", "deadzone"):
        # the dead zone's points (z <= the zero threshold) go to the pinned level 0; the
        # DP fits n - 1 levels to the rest
        lo = int(np.searchsorted(z, lay.zero_threshold, side="right"))
        if z.size - lo < n - 1:
            raise InvalidDataError(
                f"data has {z.size - lo} distinct values above the zero threshold, "
                f"fewer than the {n - 1} positive levels asked")
        n_runs, pinned_first = n - 1, False
    else:
        # "round": 0 is an ordinary level whose run (a possibly empty prefix) costs sum w z^2
        lo, n_runs, pinned_first = 0, n, lay.convention == "round"
    levels, thresholds, metrics = _fit(pts, lo, n_runs, pinned_first, lay, n)
    return data_table(pts, levels, thresholds, lay, bits=b, n=n, kind="nonuniform",
                      step_z=None, residual=None, iterations=int(metrics[5]), converged=True,
                      metrics=metrics[:5])


def _fit(pts, lo, n_runs, pinned_first, lay, n):
    """(levels, thresholds, [MSE, entropy, residual, total, power, layers]) of the exact DP
    on the standardised points [lo, end) for ``n_runs`` runs: one kernel call
    (:func:`lloydmax._kernels.dp.dp_fit`)."""
    # z is standardised (|z| <= 1, centred unless it is ReLU data, whose pinned run needs
    # the distance to 0), which keeps the prefix sums O(1) and the cost differences small
    n_free = n_runs - 1
    npts = pts.z.size - lo
    block = n_free if n_free * (npts + 1) <= _ARG_BUDGET else max(1, math.isqrt(n_free))
    levels = np.empty(n)
    thresholds = np.empty(n - 1)
    out = np.empty(6)
    dp_fit(pts.z, pts.w, lo, n_runs, pinned_first, max(block, 1), lay.level_pinned,
           lay.thr_pinned, lay.thr_value, pts.shift / pts.scale, levels, thresholds, out)
    return levels, thresholds, out
