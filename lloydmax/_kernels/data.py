"""Quantizers of empirical data: Lloyd on sorted weighted points with prefix sums.

Numba kernels, pure functions over float64/int arrays.  The points x_0 <= ... <= x_{N-1}
(standardised, sorted) carry weights w_p; with the prefix sums::

    W_j = sum_{p < j} w_p,    S_j = sum_{p < j} w_p x_p,    T_j = sum_{p < j} w_p x_p^2

the points [lo, hi) have, in O(1)::

    M0 = W_hi - W_lo,    c = (S_hi - S_lo) / M0,    v = (T_hi - T_lo) / M0 - c^2

A point goes to cell i when t_{i-1} < x_p <= t_i (as for densities, a value on a
threshold goes to the lower level), so the cell edges are
``searchsorted(xs, t, side="right")``.

* :func:`solve_data_lloyd`: plain Lloyd (levels to the cell means, thresholds to the
  midpoints), stopped at the exact fixed point where no point changes cell.
* :func:`solve_data_uniform`: the uniform family ``q_i = coef_off[i] * offset +
  coef_step[i] * step``; with the cells fixed, theta = (offset, step) is the weighted
  least-squares fit of x ~ q, from the normal equations::

      [sum_i M0_i a_i^2    sum_i M0_i a_i b_i] theta = [sum_i S_i a_i]
      [sum_i M0_i a_i b_i  sum_i M0_i b_i^2  ]         [sum_i S_i b_i]

  (a = coef_off, b = coef_step, S_i the weighted sum of cell i; with the offset fixed,
  the second row alone gives the step), repeated until no point changes cell.
* :func:`point_metrics`: MSE, entropy, residual and signal power of a table on the
  points, in one pass.

The globally optimal partition (dynamic programming) is in :mod:`lloydmax._kernels.dp`.
"""
from __future__ import annotations

import math

import numpy as np

from .._jit import jit
from .cells import (
    EMPTY_CELL,
    MAXITER,
    OK,
    STALLED,
    _span,
    centroid_residual,
    fill_thresholds,
    midpoint_residual,
)
from .newton import _uniform_levels


@jit
def _data_cell(prefix_w, prefix_wx, prefix_wxx, lo, hi):
    m0 = prefix_w[hi] - prefix_w[lo]
    if m0 <= 0.0:
        return 0.0, 0.0, 0.0
    s1 = prefix_wx[hi] - prefix_wx[lo]
    s2 = prefix_wxx[hi] - prefix_wxx[lo]
    c = s1 / m0
    v = s2 / m0 - c * c
    if v < 0.0:
        v = 0.0
    return m0, c, v


@jit
def solve_data_lloyd(xs, prefix_w, prefix_wx, prefix_wxx, levels, level_pinned,
                     thr_pinned, thr_value, max_iter, thresholds, info):
    """Plain Lloyd on sorted weighted points; stops at the exact fixed point where no
    point changes cell.  info = [iterations, centroid residual, 0, status]."""
    n = levels.shape[0]
    idx = np.empty(n + 1, dtype=np.int64)
    new_idx = np.empty(n + 1, dtype=np.int64)
    npts = xs.shape[0]
    idx[0] = 0
    idx[n] = npts
    new_idx[0] = 0
    new_idx[n] = npts
    fill_thresholds(levels, thr_pinned, thr_value, thresholds)
    for j in range(n - 1):
        idx[j + 1] = np.searchsorted(xs, thresholds[j], side="right")
    it = 0
    status = OK
    while it < max_iter:
        it += 1
        for i in range(n):
            if level_pinned[i]:
                continue
            m0, c, _v = _data_cell(prefix_w, prefix_wx, prefix_wxx, idx[i], idx[i + 1])
            if m0 > 0.0:
                levels[i] = c
            else:
                # empty cell: move the level into the middle of its neighbours' gap
                lo = levels[i - 1] if i > 0 else xs[0]
                hi = levels[i + 1] if i < n - 1 else xs[npts - 1]
                levels[i] = 0.5 * (lo + hi)
        fill_thresholds(levels, thr_pinned, thr_value, thresholds)
        same = True
        for j in range(n - 1):
            new_idx[j + 1] = np.searchsorted(xs, thresholds[j], side="right")
            if new_idx[j + 1] != idx[j + 1]:
                same = False
        for j in range(n + 1):
            idx[j] = new_idx[j]
        if same:
            break
    else:
        status = MAXITER
    span = _span(levels)
    res = 0.0
    for i in range(n):
        if level_pinned[i]:
            continue
        m0, c, _v = _data_cell(prefix_w, prefix_wx, prefix_wxx, idx[i], idx[i + 1])
        if m0 <= 0.0:
            res = np.inf
            status = EMPTY_CELL
            break
        res = max(res, abs(levels[i] - c) / span)
    info[0] = it
    info[1] = res
    info[2] = 0
    info[3] = status


@jit
def solve_data_uniform(xs, prefix_w, prefix_wx, prefix_wxx, theta, free_offset,
                       coef_off, coef_step, thr_pinned, thr_value, max_iter,
                       levels, thresholds, info):
    """Lloyd for the uniform family: with cells fixed, (offset, step) is a weighted
    least-squares fit of x ~ coef_off*offset + coef_step*step; repeat until no point
    changes cell.  info = [iterations, 0, 0, status]."""
    n = levels.shape[0]
    idx = np.empty(n + 1, dtype=np.int64)
    npts = xs.shape[0]
    idx[0] = 0
    idx[n] = npts
    it = 0
    status = OK
    _uniform_levels(theta, coef_off, coef_step, levels)
    fill_thresholds(levels, thr_pinned, thr_value, thresholds)
    for j in range(n - 1):
        idx[j + 1] = np.searchsorted(xs, thresholds[j], side="right")
    while it < max_iter:
        it += 1
        a00 = 0.0
        a01 = 0.0
        a11 = 0.0
        b0 = 0.0
        b1 = 0.0
        for i in range(n):
            m0 = prefix_w[idx[i + 1]] - prefix_w[idx[i]]
            s1 = prefix_wx[idx[i + 1]] - prefix_wx[idx[i]]
            a00 += m0 * coef_off[i] * coef_off[i]
            a01 += m0 * coef_off[i] * coef_step[i]
            a11 += m0 * coef_step[i] * coef_step[i]
            b0 += s1 * coef_off[i]
            b1 += s1 * coef_step[i]
        if free_offset:
            det = a00 * a11 - a01 * a01
            if det <= 0.0:
                status = STALLED
                break
            theta[0] = (a11 * b0 - a01 * b1) / det
            theta[1] = (a00 * b1 - a01 * b0) / det
        else:
            if a11 <= 0.0:
                status = STALLED
                break
            theta[1] = (b1 - a01 * theta[0]) / a11
        if not (theta[1] > 0.0):
            status = STALLED
            break
        _uniform_levels(theta, coef_off, coef_step, levels)
        fill_thresholds(levels, thr_pinned, thr_value, thresholds)
        same = True
        for j in range(n - 1):
            k = np.searchsorted(xs, thresholds[j], side="right")
            if k != idx[j + 1]:
                same = False
            idx[j + 1] = k
        if same:
            break
    else:
        status = MAXITER
    info[0] = it
    info[1] = 0.0
    info[2] = 0
    info[3] = status


@jit
def _pairwise_leaf(a, lo, n):
    """numpy's sum of at most 128 values: 8 accumulators, then the rest in order."""
    if n < 8:
        r = 0.0
        for i in range(lo, lo + n):
            r += a[i]
        return r
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = lo + 8
    stop = lo + n - n % 8
    while i < stop:
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
        i += 8
    r = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < lo + n:
        r += a[i]
        i += 1
    return r


@jit
def pairwise_sum(a, lo, n):
    """Sum of a[lo:lo+n] in numpy's own order, so that it equals ``np.sum`` bit for bit:
    blocks of at most 128 values (:func:`_pairwise_leaf`), longer ranges split in halves
    on multiples of 8 and the halves' sums added.  The split tree is walked with an
    explicit stack (a recursive kernel crashes when loaded from numba's cache)."""
    if n <= 128:
        return _pairwise_leaf(a, lo, n)
    los = np.empty(64, dtype=np.int64)
    lens = np.empty(64, dtype=np.int64)
    state = np.empty(64, dtype=np.int64)  # 0 new, 1 left half pending, 2 right pending
    left = np.empty(64)
    top = 0
    los[0] = lo
    lens[0] = n
    state[0] = 0
    while True:
        m = lens[top]
        if m > 128:
            half = m // 2
            half -= half % 8
            state[top] = 1
            top += 1
            los[top] = los[top - 1]
            lens[top] = half
            continue
        v = _pairwise_leaf(a, los[top], m)
        top -= 1
        while top >= 0 and state[top] == 2:
            v = left[top] + v
            top -= 1
        if top < 0:
            return v
        # the left half of frame `top` is done: keep it, descend into the right half
        left[top] = v
        state[top] = 2
        half = lens[top] // 2
        half -= half % 8
        los[top + 1] = los[top] + half
        lens[top + 1] = lens[top] - half
        top += 1


@jit
def point_metrics(z, w, levels, thresholds, level_pinned, thr_pinned, z_offset, out):
    """out = [MSE, index entropy (bits), residual, total weight, E[(z + z_offset)^2]] of a
    table on sorted weighted points, in one pass.

    A point goes to the first cell whose threshold is >= it (``searchsorted(side="left")``
    on the thresholds).  The MSE sums w (z - Q(z))^2 point by point (the prefix-sum form
    E[z^2] - E[z]^2 loses about 1e-10 relative accuracy on 1e5 points); every sum over the
    points is :func:`pairwise_sum`, numpy's order, so the figures equal the numpy
    expressions they replace.  The residual is the largest centroid/midpoint violation
    relative to the level span, with the cells as the table assigns them.
    """
    n = levels.shape[0]
    npts = z.shape[0]
    n_thr = thresholds.shape[0]
    buf = np.empty(npts)
    power = np.empty(npts)
    mass = np.zeros(n)
    wsum = np.zeros(n)
    total = pairwise_sum(w, 0, npts)
    j = 0
    for p in range(npts):
        x = z[p]
        while j < n_thr and thresholds[j] < x:
            j += 1
        d = x - levels[j]
        buf[p] = w[p] * d * d
        t = x + z_offset
        power[p] = t * t * w[p]
        mass[j] += w[p]
        wsum[j] += w[p] * x
    out[0] = pairwise_sum(buf, 0, npts) / total
    out[4] = pairwise_sum(power, 0, npts) / total
    m = 0
    for i in range(n):
        if mass[i] > 0.0:
            pi = mass[i] / total
            buf[m] = pi * math.log2(pi)
            m += 1
            wsum[i] = wsum[i] / mass[i]
        else:
            wsum[i] = 0.0
    out[1] = -pairwise_sum(buf, 0, m)
    out[2] = max(centroid_residual(levels, level_pinned, mass, wsum),
                 midpoint_residual(levels, thr_pinned, thresholds))
    out[3] = total
