"""Globally optimal partition of sorted weighted points by dynamic programming.

Numba kernels, pure functions over float64/int arrays, for :func:`lloydmax.solve_dp`
(which validates, standardises and wraps the result).

On the real line the optimal cells of a squared-error quantizer are contiguous runs of
the sorted points, so the best ``L``-level quantizer is the best partition of the sorted
points into ``L`` runs, each reconstructed by its weighted mean.  That partition is found
exactly by the dynamic programme of Ckmeans.1d.dp (Wang & Song 2011, *The R Journal*
3(2))::

    D_k(j) = min_{i < j} D_{k-1}(i) + c(i, j),      c(i, j) = sum_{i <= p < j} w_p (x_p - mu_ij)^2

where ``D_k(j)`` is the least cost of cutting the first ``j`` points into ``k + 1`` runs
and ``mu_ij`` the weighted mean of the points [i, j).  From the prefix sums ``W``, ``S``,
``T`` of w, w x and w x^2, each ``c`` is O(1)::

    c(i, j) = (T_j - T_i) - (S_j - S_i)^2 / (W_j - W_i)

The within-run cost ``c`` is a Monge array (c(a,c) + c(b,d) <= c(a,d) + c(b,c) for
a <= b <= c <= d), so the minimising ``i`` is non-decreasing in ``j`` and each layer is
filled by divide and conquer in O(n log n) evaluations of ``c``: O(L n log n) in all.

The first run's cost is given as a row (``first``), so that it can be reconstructed by a
pinned level (the ReLU zero: cost sum w x^2, possibly empty) as well as by its mean
(:func:`first_run_free`).  The backtrack keeps argmin rows for ``block`` layers at a time
and recomputes earlier blocks from saved rows of D, so that ``block = sqrt(L)`` needs
O(n sqrt L) memory for about 1.5 times the time.
"""
from __future__ import annotations

import numpy as np

from .._jit import jit
from .cells import fill_thresholds
from .data import point_metrics


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


@jit
def dp_fit(z, w, lo, n_runs, pinned_first, block, level_pinned, thr_pinned, thr_value,
           z_offset, levels, thresholds, out):
    """The whole exact-DP table of sorted weighted points in one call.

    Cuts the points [lo, n) into ``n_runs`` optimal runs (the first reconstructed by 0 when
    ``pinned_first``) and writes their means to the last ``n_runs`` entries of ``levels``
    (earlier entries, and a pinned first run's level, are 0: the points below ``lo`` are
    the dead zone).  Then the thresholds (:func:`fill_thresholds`) and out = [MSE,
    entropy, residual, total weight, signal power, DP layers computed] on all the points
    (:func:`point_metrics`).
    """
    zz = z[lo:]
    ww = w[lo:]
    npts = zz.shape[0]
    pw = np.empty(npts + 1)
    pwx = np.empty(npts + 1)
    pwxx = np.empty(npts + 1)
    pw[0] = pwx[0] = pwxx[0] = 0.0
    # sequential sums, in np.cumsum's order
    for p in range(npts):
        t = ww[p] * zz[p]
        pw[p + 1] = pw[p] + ww[p]
        pwx[p + 1] = pwx[p] + t
        pwxx[p + 1] = pwxx[p] + t * zz[p]
    if pinned_first:
        first = pwxx.copy()
    else:
        first = np.empty(npts + 1)
        first_run_free(pw, pwx, pwxx, first)
    bounds = np.zeros(n_runs + 1, dtype=np.int64)
    info = np.zeros(2)
    dp_partition(pw, pwx, pwxx, first, n_runs - 1, block, bounds, info)
    off = levels.shape[0] - n_runs
    for i in range(off):
        levels[i] = 0.0
    for s in range(n_runs):
        if pinned_first and s == 0:
            levels[off] = 0.0  # the pinned run may be empty: its level is 0, not 0 / 0
            continue
        a = bounds[s]
        b = bounds[s + 1]
        levels[off + s] = (pwx[b] - pwx[a]) / (pw[b] - pw[a])
    fill_thresholds(levels, thr_pinned, thr_value, thresholds)
    point_metrics(z, w, levels, thresholds, level_pinned, thr_pinned, z_offset, out)
    out[5] = info[1]
