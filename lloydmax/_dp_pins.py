"""Pinned levels on data: the exact global optimum for :func:`lloydmax.solve_dp`.

The pins cut the sorted points into gaps; the DP of :mod:`lloydmax._kernels.pins` gives
the least cost of every gap for every count of free levels, and a small knapsack over
the gaps allocates the free levels exactly (see :mod:`lloydmax._pins`).
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from . import _kernels as K
from ._conventions import layout
from ._data import data_table, standardized_points
from ._kernels.pins import dp_gap_layers
from ._pins import exact_pins, parse_pins, pinned_values
from ._table import QuantizerTable
from .errors import ConventionError, InvalidInputError

__all__ = ["optimal_gap_runs", "solve_dp_pinned"]


def optimal_gap_runs(z, w, pins, n_free):
    """Exact pinned optimum on sorted distinct weighted points ``z``.

    Returns the sorted levels (pins included) of the least weighted squared error with
    the pins held and ``n_free`` free levels, or raises :class:`InvalidInputError` when
    the points cannot fill that many free levels.
    """
    k = pins.size
    cut = np.searchsorted(z, pins, side="right")  # a point on a pin costs 0 in either gap
    bounds = np.concatenate([[0], cut, [z.size]])
    tables, rows = [], []
    for g in range(k + 1):
        lo, hi = int(bounds[g]), int(bounds[g + 1])
        left = pins[g - 1] if g > 0 else math.nan
        right = pins[g] if g < k else math.nan
        cost = np.full(n_free + 1, np.inf)
        split = np.zeros((n_free + 1, n_free + 2), dtype=np.int64)
        dp_gap_layers(z[lo:hi], w[lo:hi], left, right, n_free, cost, split)
        tables.append(cost)
        rows.append(split)
    # knapsack over the gaps: best[g][m] = least cost of gaps < g holding m free levels
    best = np.full((k + 2, n_free + 1), np.inf)
    take = np.zeros((k + 2, n_free + 1), dtype=np.int64)
    best[0, 0] = 0.0
    for g in range(k + 1):
        for m in range(n_free + 1):
            for j in range(m + 1):
                v = best[g, m - j] + tables[g][j]
                if v < best[g + 1, m]:
                    best[g + 1, m] = v
                    take[g + 1, m] = j
    if not math.isfinite(best[k + 1, n_free]):
        raise InvalidInputError(
            f"the data has too few distinct values between the pins for {n_free} free levels")
    counts = np.zeros(k + 1, dtype=np.int64)
    m = n_free
    for g in range(k + 1, 0, -1):
        counts[g - 1] = take[g, m]
        m -= take[g, m]
    levels, pinned = [], []
    for g in range(k + 1):
        lo = int(bounds[g])
        cuts = rows[g][counts[g]]  # m + 2 run edges: pinned-left, m free, pinned-right
        for r in range(1, counts[g] + 1):
            a, b = lo + cuts[r], lo + cuts[r + 1]
            levels.append(float(np.dot(w[a:b], z[a:b]) / np.sum(w[a:b])))
            pinned.append(False)
        if g < k:
            levels.append(float(pins[g]))
            pinned.append(True)
    return np.array(levels), np.array(pinned, dtype=np.bool_)


def solve_dp_pinned(x, weights, pin_levels, bits: int, n: int, convention,
                    zero_threshold) -> QuantizerTable:
    """:func:`lloydmax.solve_dp` with pinned levels: the exact global optimum (module
    docstring).  Points equal to a pin cost nothing and are left out of the DP."""
    if convention is not None or zero_threshold is not None:
        raise ConventionError("pin_levels does not combine with the half-wave conventions, "
                              "which pin level 0 themselves")
    k = parse_pins(pin_levels).size
    pts = standardized_points(x, weights, max(2, n - k), None, None)
    pins = pinned_values(pin_levels, n, loc=pts.shift, scale=pts.scale,
                         support=(float(pts.z[0]), float(pts.z[-1])), where="the data")
    keep = ~np.isin(pts.z, pins)
    if int(np.count_nonzero(keep)) < n - k:
        raise InvalidInputError(f"the data has {int(np.count_nonzero(keep))} distinct values "
                                f"off the pins, fewer than the {n - k} free levels")
    levels, pinned = optimal_gap_runs(pts.z[keep], pts.w[keep], pins, n - k)
    lay = replace(layout(False, 1.0, n, None, None, None), level_pinned=pinned)
    thresholds = np.empty(n - 1)
    K.fill_thresholds(levels, lay.thr_pinned, lay.thr_value, thresholds)
    table = data_table(pts, levels, thresholds, lay, bits=bits, n=n, kind="nonuniform",
                       step_z=None, residual=None, iterations=n - k, converged=True)
    return exact_pins(table, pinned, pin_levels)


