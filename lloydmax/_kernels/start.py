"""Starting guesses for the Lloyd-Max solvers: the Panter-Dite compander.

For many levels the optimal density of levels is proportional to p^(1/3) (Panter &
Dite 1951), so the levels are put at given quantiles (the solver takes (i + 1/2) / L)
of p^(1/3) normalised on [lo, hi].  For the built-in densities p^(1/3) is again a
density of the same family, so the start is in closed form:

* Gaussian: phi^(1/3) is N(0, 3), so q_i = sqrt(3) Phi^-1(u_i);
* half-normal on (lo, inf): q_i = sqrt(3) Q^-1(Q(lo / sqrt 3) (1 - u_i)), Q = 1 - Phi;
* Laplace: e^(-|x|/3), a Laplace law of scale 3; uniform: uniform.

A tabulated density integrates p^(1/3) by the trapezoid rule over its own nodes
(which already resolve it) and inverts that by linear interpolation.
"""
from __future__ import annotations

import math

import numpy as np

from .._jit import jit
from .cells import GAUSS, HALFNORM, LAPLACE, TAB, UNIFORM, pdf
from .tabulated import _singular_weight

_SQRT3 = math.sqrt(3.0)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)
# Acklam's rational approximation of Phi^-1 (relative error 1.2e-9), refined below
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
      1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
      6.680131188771972e01, -1.328068155288572e01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
      -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
      3.754408661907416e00)


@jit
def _ndtri_lower(p):
    """Phi^-1(p) for 0 < p <= 1/2, to rounding: Acklam's approximation and one Halley
    step on 0.5 erfc(-x / sqrt 2) = p (accurate in the lower tail)."""
    if p < 0.02425:
        q = math.sqrt(-2.0 * math.log(p))
        x = ((((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5])
             / ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0))
    else:
        q = p - 0.5
        r = q * q
        x = (((((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q)
             / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0))
    e = 0.5 * math.erfc(-x * _INV_SQRT2) - p
    u = e * _SQRT2PI * math.exp(0.5 * x * x)
    return x - u / (1.0 + 0.5 * x * u)


@jit
def _ndtri(p):
    if p <= 0.5:
        return _ndtri_lower(p)
    return -_ndtri_lower(1.0 - p)


@jit
def compander_guess(kind, params, tab_x, tab_p, lo, hi, quantiles, out, closed_form=False):
    """Panter-Dite start: points at the given quantiles of the density p^(1/3) on [lo, hi]
    (with ``closed_form``, closed forms for the built-in densities, see the module
    docstring; otherwise the original trapezoid grid of 4096 or 16 per level points on
    [lo, hi], which the solver keeps so that the built-in tables stay identical; a
    tabulated density always integrates over its own nodes)."""
    if kind == TAB:
        _tabulated_guess(kind, params, tab_x, tab_p, lo, hi, quantiles, out)
        return
    m = quantiles.shape[0]
    if not closed_form:
        _grid_guess(kind, params, tab_x, tab_p, lo, hi, quantiles, out)
        return
    if kind == GAUSS:
        for k in range(m):
            out[k] = _SQRT3 * _ndtri(quantiles[k])
        return
    if kind == HALFNORM:
        upper = 0.5 * math.erfc(max(lo, 0.0) / _SQRT3 * _INV_SQRT2)  # Q(lo / sqrt 3)
        for k in range(m):
            out[k] = -_SQRT3 * _ndtri_lower(upper * (1.0 - quantiles[k]))
        return
    if kind == LAPLACE:
        for k in range(m):
            u = quantiles[k]
            out[k] = 3.0 * math.log(2.0 * u) if u <= 0.5 else -3.0 * math.log(2.0 * (1.0 - u))
        return
    if kind == UNIFORM:
        for k in range(m):
            out[k] = lo + quantiles[k] * (hi - lo)
        return
    _tabulated_guess(kind, params, tab_x, tab_p, lo, hi, quantiles, out)


@jit
def _node_cbrt(params, tab_x, tab_p, k):
    """p(tab_x[k])^(1/3) read at the node itself (the density there is g_k w(x_k), with
    no search and no interpolation); 0 on an integrable singular point."""
    p = tab_p[k]
    if params.shape[0] >= 4:
        p *= _singular_weight(params, tab_x[k])
    v = np.cbrt(p)  # a third of the cost of p ** (1/3)
    return v if math.isfinite(v) else 0.0


@jit
def _tabulated_guess(kind, params, tab_x, tab_p, lo, hi, quantiles, out):
    """Trapezoid rule for p^(1/3) over the table's nodes inside [lo, hi], inverted by
    linear interpolation (an integrable singular point contributes 0 at the node).
    A start needs no more than 4096 + 16 per level nodes: a longer table is read at
    every k-th node (and its last), not at all of its half a million."""
    m = quantiles.shape[0]
    first = np.searchsorted(tab_x, lo, side="left")
    last = np.searchsorted(tab_x, hi, side="right") - 1
    stride = max(1, (last - first) // (4096 + 16 * m))
    g = (last - first) // stride + 1
    if first + (g - 1) * stride < last:
        g += 1
    nodes = np.empty(g)
    cum = np.empty(g)
    cum[0] = 0.0
    nodes[0] = tab_x[first]
    prev = _node_cbrt(params, tab_x, tab_p, first)
    for k in range(1, g):
        idx = min(first + k * stride, last)
        nodes[k] = tab_x[idx]
        cur = _node_cbrt(params, tab_x, tab_p, idx)
        cum[k] = cum[k - 1] + 0.5 * (nodes[k] - nodes[k - 1]) * (prev + cur)
        prev = cur
    total = cum[g - 1]
    j = 0
    for k in range(m):
        target = quantiles[k] * total
        while j < g - 2 and cum[j + 1] < target:
            j += 1
        span = cum[j + 1] - cum[j]
        u = (target - cum[j]) / span if span > 0.0 else 0.5
        out[k] = nodes[j] + u * (nodes[j + 1] - nodes[j])


__all__ = ["compander_guess"]


@jit
def _grid_guess(kind, params, tab_x, tab_p, lo, hi, quantiles, out):
    """The cumulative integral of p^(1/3) on a uniform grid of [lo, hi], inverted by
    linear interpolation."""
    m = quantiles.shape[0]
    g = max(4096, 16 * m) + 1
    xs = np.empty(g)
    cum = np.empty(g)
    h = (hi - lo) / (g - 1)
    prev = pdf(kind, params, tab_x, tab_p, lo) ** (1.0 / 3.0)
    xs[0] = lo
    cum[0] = 0.0
    for k in range(1, g):
        x = lo + k * h
        cur = pdf(kind, params, tab_x, tab_p, x) ** (1.0 / 3.0)
        xs[k] = x
        cum[k] = cum[k - 1] + 0.5 * h * (prev + cur)
        prev = cur
    total = cum[g - 1]
    j = 0
    for k in range(m):
        target = quantiles[k] * total
        while j < g - 2 and cum[j + 1] < target:
            j += 1
        span = cum[j + 1] - cum[j]
        u = (target - cum[j]) / span if span > 0.0 else 0.5
        out[k] = xs[j] + u * h
