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

The numba kernels here are pure functions over float64/int arrays; :func:`solve_dp`
validates, standardises and wraps the result in a :class:`~lloydmax.QuantizerTable`.
"""
from __future__ import annotations

import math

import numpy as np

from . import _kernels as K
from ._jit import jit
from ._solver import _layout, resolve_levels, standardized_points
from ._table import QuantizerTable
from .errors import InvalidDataError

__all__ = ["solve_dp"]

# argmin rows are int32 (n + 1 entries each); past this many entries (64 MB) the backtrack
# keeps only every B-th row of D and recomputes a block of B = sqrt(L) layers at a time
# (O(n sqrt(L)) memory for about 1.5 times the time), so 1e5 points x 256 levels stays
# near 20 MB instead of 100 MB
_ARG_BUDGET = 1 << 24


# --------------------------------------------------------------------------- kernels


@jit
def _run_cost(prefix_w, prefix_wx, prefix_wxx, i, j):
    """Weighted sum of squared deviations from their mean of the points [i, j)."""
    m0 = prefix_w[j] - prefix_w[i]
    s1 = prefix_wx[j] - prefix_wx[i]
    c = (prefix_wxx[j] - prefix_wxx[i]) - s1 * s1 / m0
    # E[x^2] - E[x]^2 can round to a tiny negative number for a nearly constant run
    return c if c > 0.0 else 0.0


@jit
def _dp_layer(prev, prefix_w, prefix_wx, prefix_wxx, i_min, j_lo, j_hi, cur, arg):
    """cur[j] = min_{i_min <= i < j} prev[i] + c(i, j) for j in [j_lo, j_hi], arg[j] the
    minimiser, by divide and conquer on the monotone minimiser (explicit stack: the
    recursion depth is about log2(n), each frame pushes two children)."""
    stack = np.empty((256, 4), dtype=np.int64)
    top = 0
    stack[0, 0] = j_lo
    stack[0, 1] = j_hi
    stack[0, 2] = i_min
    stack[0, 3] = j_hi - 1
    top = 1
    while top > 0:
        top -= 1
        jl = stack[top, 0]
        jh = stack[top, 1]
        il = stack[top, 2]
        ih = stack[top, 3]
        if jl > jh:
            continue
        jm = (jl + jh) // 2
        hi = min(ih, jm - 1)
        best = np.inf
        bi = il
        for i in range(il, hi + 1):
            v = prev[i] + _run_cost(prefix_w, prefix_wx, prefix_wxx, i, jm)
            if v < best:
                best = v
                bi = i
        cur[jm] = best
        arg[jm] = bi
        stack[top, 0] = jl
        stack[top, 1] = jm - 1
        stack[top, 2] = il
        stack[top, 3] = bi
        stack[top + 1, 0] = jm + 1
        stack[top + 1, 1] = jh
        stack[top + 1, 2] = bi
        stack[top + 1, 3] = ih
        top += 2


@jit
def _layer_range(k, n, n_free, first_start):
    """(i_min, j_lo, j_hi) of free layer k (1-based): every earlier run holds at least one
    point (the first run from ``first_start`` points on), every later one too."""
    i_min = first_start + k - 1
    return i_min, i_min + 1, n - (n_free - k)


@jit
def dp_partition(prefix_w, prefix_wx, prefix_wxx, first, n_free, block, bounds, info):
    """Optimal cut of n sorted points into 1 + n_free runs.

    ``first[j]`` is the cost of the first run when it holds points [0, j) (+inf where not
    allowed); the n_free later runs cost c(i, j).  Fills ``bounds`` (n_free + 2 entries:
    run s is [bounds[s], bounds[s+1])) and info = [optimal cost, layers computed].

    Memory: argmin rows of ``block`` layers at a time; the D row before each block is
    kept, and blocks before the last are recomputed during the backtrack.
    """
    n = prefix_w.shape[0] - 1
    first_start = 0
    while first_start <= n and not (first[first_start] < np.inf):
        first_start += 1
    bounds[0] = 0
    bounds[n_free + 1] = n
    if n_free == 0:
        info[0] = first[n]
        info[1] = 1
        return
    n_blocks = (n_free + block - 1) // block
    saved = np.empty((n_blocks, n + 1))
    arg = np.zeros((block, n + 1), dtype=np.int32)
    prev = first.copy()
    cur = np.empty(n + 1)
    layers = 1
    for k in range(1, n_free + 1):
        if (k - 1) % block == 0:
            saved[(k - 1) // block, :] = prev
        i_min, j_lo, j_hi = _layer_range(k, n, n_free, first_start)
        cur[:] = np.inf
        if k == n_free:
            j_lo = n
        _dp_layer(prev, prefix_w, prefix_wx, prefix_wxx, i_min, j_lo, j_hi, cur,
                  arg[(k - 1) % block])
        prev, cur = cur, prev
        layers += 1
    info[0] = prev[n]
    last_block = n_blocks - 1
    j = n
    for k in range(n_free, 0, -1):
        b = (k - 1) // block
        if b < last_block and k == (b + 1) * block:
            # entering an earlier block from above: redo its layers from the saved row
            row = saved[b].copy()
            nxt = np.empty(n + 1)
            for kk in range(b * block + 1, k + 1):
                i_min, j_lo, j_hi = _layer_range(kk, n, n_free, first_start)
                # the backtrack only descends from j: later columns are not needed (on
                # average this halves the recomputation)
                j_hi = min(j_hi, j)
                nxt[:] = np.inf
                _dp_layer(row, prefix_w, prefix_wx, prefix_wxx, i_min, j_lo, j_hi, nxt,
                          arg[(kk - 1) % block])
                row, nxt = nxt, row
                layers += 1
        i = arg[(k - 1) % block, j]
        bounds[k] = i
        j = i
    info[1] = layers


@jit
def first_run_free(prefix_w, prefix_wx, prefix_wxx, out):
    """First-run costs when its level is free: c(0, j), and +inf for the empty run."""
    out[0] = np.inf
    for j in range(1, out.shape[0]):
        out[j] = _run_cost(prefix_w, prefix_wx, prefix_wxx, 0, j)


# --------------------------------------------------------------------------- public


def solve_dp(x, bits=None, *, n_levels=None, weights=None, convention=None,
             zero_threshold=None) -> QuantizerTable:
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
    pts = standardized_points(x, weights, n, convention, zero_threshold)
    w, z, relu, shift, scale, count = pts.w, pts.z, pts.relu, pts.shift, pts.scale, pts.count
    layout = _layout(relu, scale, n, convention, zero_threshold, None)

    levels = np.zeros(n)
    if layout.convention in ("hwgq", "deadzone"):
        split = int(np.searchsorted(z, layout.zero_threshold, side="right"))
        if z.size - split < n - 1:
            raise InvalidDataError(
                f"data has {z.size - split} distinct values above the zero threshold, "
                f"fewer than the {n - 1} positive levels asked")
        runs, layers = _optimal_runs(z[split:], w[split:], n - 1, pinned_first=False)
        levels[1:] = runs
    elif layout.convention == "round":
        runs, layers = _optimal_runs(z, w, n, pinned_first=True)
        levels[1:] = runs[1:]
    else:
        levels, layers = _optimal_runs(z, w, n, pinned_first=False)

    thresholds = np.empty(n - 1)
    K.fill_thresholds(levels, layout.thr_pinned, layout.thr_value, thresholds)
    mse_z, entropy, residual = _summary(z, w, levels, thresholds, layout)
    power_z = float(np.average((z + shift / scale) ** 2, weights=w))
    mse = scale * scale * mse_z
    return QuantizerTable(
        levels=shift + scale * levels,
        thresholds=shift + scale * thresholds,
        step=None,
        bits=b,
        n_levels=n,
        distribution="empirical",
        params={"count": count, "weight": float(np.sum(w))},
        convention=layout.convention,
        kind="nonuniform",
        mse=mse,
        # in standardised units, so that huge data (1e200) does not overflow the ratio
        sqnr_db=10.0 * math.log10(power_z / mse_z) if mse_z > 0 else math.inf,
        entropy_bits=float(entropy),
        residual=float(residual),
        iterations=int(layers),
        converged=True,
        zero_threshold=None if layout.zero_threshold is None else scale * layout.zero_threshold,
    )


def _optimal_runs(z, w, n_runs, *, pinned_first):
    """Levels (run means) of the optimal cut of sorted distinct ``z`` into ``n_runs`` runs.

    With ``pinned_first`` the first run is reconstructed by 0 (cost sum w z^2, may be
    empty) and its returned level is 0.
    """
    # z is standardised (|z| <= 1, centred unless it is ReLU data, whose pinned run needs
    # the distance to 0), which keeps the prefix sums O(1) and the cost differences small
    pw = np.concatenate([[0.0], np.cumsum(w)])
    pwx = np.concatenate([[0.0], np.cumsum(w * z)])
    pwxx = np.concatenate([[0.0], np.cumsum(w * z * z)])
    npts = z.size
    n_free = n_runs - 1
    if pinned_first:
        first = pwxx.copy()
    else:
        first = np.empty(npts + 1)
        first_run_free(pw, pwx, pwxx, first)
    block = n_free if n_free * (npts + 1) <= _ARG_BUDGET else max(1, math.isqrt(n_free))
    bounds = np.zeros(n_runs + 1, dtype=np.int64)
    info = np.zeros(2)
    dp_partition(pw, pwx, pwxx, first, n_free, max(block, 1), bounds, info)
    levels = np.empty(n_runs)
    for s in range(n_runs):
        lo, hi = bounds[s], bounds[s + 1]
        if s == 0 and pinned_first:
            levels[s] = 0.0
        else:
            levels[s] = (pwx[hi] - pwx[lo]) / (pw[hi] - pw[lo])
    return levels, int(info[1])


def _summary(z, w, levels, thresholds, layout):
    """(MSE, index entropy in bits, residual) of the table on the standardised points.

    The MSE sums w (z - Q(z))^2 point by point: the prefix-sum form E[z^2] - E[z]^2 loses
    about 1e-10 relative accuracy on 1e5 points, the pointwise sum keeps 1e-15.  The
    residual is the largest centroid/midpoint violation relative to the level span, with
    cells as the table assigns them.
    """
    idx = np.searchsorted(thresholds, z, side="left")
    total = float(np.sum(w))
    d = z - levels[idx]
    mse = float(np.sum(w * d * d)) / total
    mass = np.bincount(idx, weights=w, minlength=levels.size)
    wsum = np.bincount(idx, weights=w * z, minlength=levels.size)
    p = mass[mass > 0] / total
    entropy = float(-np.sum(p * np.log2(p)))
    mean = np.divide(wsum, mass, out=np.zeros_like(wsum), where=mass > 0)
    centroid = K.centroid_residual(levels, layout.level_pinned, mass, mean)
    midpoint = K.midpoint_residual(levels, layout.thr_pinned, thresholds)
    return mse, entropy, max(centroid, midpoint)
