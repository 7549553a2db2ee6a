"""Pinned levels on data: the dynamic programme of one gap between two pins.

Numba kernel for :func:`lloydmax.solve_dp` with ``pin_levels`` (see
:mod:`lloydmax._pins`).  The sorted points of a gap between pins ``left`` and ``right``
(NaN for an open end) are cut into a run reconstructed by ``left`` (possibly empty;
empty when ``left`` is NaN), ``m`` non-empty runs reconstructed by their means, and a run
reconstructed by ``right`` (the same rules), for every ``m`` at once::

    D_0(j) = sum_{p < j} w_p (x_p - left)^2
    D_m(j) = min_{i < j} D_{m-1}(i) + c(i, j)
    cost[m] = min_i D_m(i) + sum_{p >= i} w_p (x_p - right)^2

each layer by the monotone-minimiser divide and conquer of :mod:`lloydmax._kernels.dp`
(adding a function of ``i`` alone keeps the Monge property of ``c``).
"""
from __future__ import annotations

import math

import numpy as np

from .._jit import jit
from .dp import _dp_layer


@jit
def dp_gap_layers(z, w, left, right, n_free, cost, split):
    """Fill ``cost[m]`` (m = 0..n_free) and the run edges ``split[m, :m + 2]``: the left
    pinned run is [0, split[m, 1]), free run r (1..m) is [split[m, r], split[m, r + 1]),
    the right pinned run is [split[m, m + 1], n).  ``cost[m]`` is +inf when the gap
    cannot hold m free levels."""
    n = z.shape[0]
    pw = np.zeros(n + 1)
    pwx = np.zeros(n + 1)
    pwxx = np.zeros(n + 1)
    prev = np.empty(n + 1)
    rc = np.empty(n + 1)
    for p in range(n):
        pw[p + 1] = pw[p] + w[p]
        pwx[p + 1] = pwx[p] + w[p] * z[p]
        pwxx[p + 1] = pwxx[p] + w[p] * z[p] * z[p]
    prev[0] = 0.0
    for j in range(1, n + 1):
        if math.isnan(left):
            prev[j] = np.inf
        else:
            d = z[j - 1] - left
            prev[j] = prev[j - 1] + w[j - 1] * d * d
    rc[n] = 0.0
    for i in range(n - 1, -1, -1):
        if math.isnan(right):
            rc[i] = np.inf
        else:
            d = z[i] - right
            rc[i] = rc[i + 1] + w[i] * d * d
    arg = np.zeros((n_free + 1, n + 1), dtype=np.int64)
    cur = np.empty(n + 1)
    for m in range(n_free + 1):
        if m > 0:
            cur[:] = np.inf
            if n >= 1:
                _dp_layer(prev, pw, pwx, pwxx, 0, 1, n, cur, arg[m])
            for j in range(n + 1):
                prev[j] = cur[j]
        best = np.inf
        bi = n
        for i in range(n + 1):
            v = prev[i] + rc[i]
            if v < best:
                best = v
                bi = i
        cost[m] = best
        split[m, 0] = 0
        split[m, m + 1] = bi
        j = bi
        for r in range(m, 0, -1):
            i = arg[r, j]
            split[m, r] = i
            j = i
