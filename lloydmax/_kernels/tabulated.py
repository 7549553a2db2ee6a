"""Tabulated densities: the scipy.stats distributions, as the kernels integrate them.

A tabulated density is given by nodes ``tab_x`` (standardised units) and values
``tab_p``, and ``params`` says how to read them:

* ``params`` of length 1: p is piecewise linear through (tab_x, tab_p).
* ``params = [s0, alpha0, s1, alpha1, xl, xr, mode_l, mode_r]``: p(x) = w(x) g(x) with

      w(x) = |x - s0|^alpha0 |x - s1|^alpha1     (alpha = 0: no singular point)

  integrable singular points (gamma a < 1, chi2 df = 1, beta a or b < 1, weibull_min
  c < 1, dgamma a < 1), and g (smooth and bounded) interpolated between the nodes:
  linearly between xl and xr, and in the tails (pieces left of xl, right of xr) by
  ``mode_l`` / ``mode_r``: 0 linear, 1 exponential (log g linear in x: exact for
  exponential tails), 2 power law (log g linear in log |x|: exact for Student-t-like
  tails).  The tabulation (:mod:`lloydmax._dists`) picks the mode that reproduces
  the density best between the nodes of that tail.

Cell moments are summed piece by piece, relative to the cell edge nearer the origin,
with Neumaier compensation: a linear piece without singular factor in closed form; a
piece that ends on a singular point in closed form (v^alpha (g0 + g1 v), the other
factor frozen: such pieces are 1e-40 std wide); every other piece by Gauss-Legendre
on w g, with 3 nodes when it is narrow against its distance to the singular points
and 6 otherwise (the tabulation keeps the ratio of distances across a piece near a
singular point below 1.01, and tail pieces narrow against |x|).
"""
from __future__ import annotations

import math

import numpy as np

from .._jit import jit

_GL3_X, _GL3_W = np.polynomial.legendre.leggauss(3)
_GL6_X, _GL6_W = np.polynomial.legendre.leggauss(6)

LINEAR = 0
EXPONENTIAL = 1
POWER = 2
PIECE_BASE = 8  # params[PIECE_BASE:] holds the cached piece moments, when present


@jit
def _piece_mode(params, x0, x1, g0, g1):
    """How g is interpolated on the piece (x0, x1]: LINEAR, EXPONENTIAL or POWER."""
    if params.shape[0] < 8 or not (g0 > 0.0 and g1 > 0.0):
        return LINEAR
    if x1 <= params[4]:
        mode = int(params[6])
    elif x0 >= params[5]:
        mode = int(params[7])
    else:
        return LINEAR
    if mode == POWER and not (x0 * x1 > 0.0):
        return LINEAR
    return mode


@jit
def _piece_value(mode, x0, x1, g0, g1, x):
    """g at x in the piece (x0, x1] under its interpolation mode."""
    if mode == EXPONENTIAL:
        return g0 * math.exp(math.log(g1 / g0) * ((x - x0) / (x1 - x0)))
    if mode == POWER:
        return g0 * math.exp(math.log(g1 / g0) * (math.log(x / x0) / math.log(x1 / x0)))
    return g0 + (x - x0) / (x1 - x0) * (g1 - g0)


@jit
def tab_pdf(params, tab_x, tab_p, x):
    """The tabulated density at x (+inf on a singular point)."""
    n = tab_x.shape[0]
    if x < tab_x[0] or x > tab_x[n - 1]:
        return 0.0
    j = np.searchsorted(tab_x, x, side="right") - 1
    if j >= n - 1:
        g = tab_p[n - 1]
    else:
        mode = _piece_mode(params, tab_x[j], tab_x[j + 1], tab_p[j], tab_p[j + 1])
        g = _piece_value(mode, tab_x[j], tab_x[j + 1], tab_p[j], tab_p[j + 1], x)
    if params.shape[0] >= 4:
        return g * _singular_weight(params, x)
    return g


@jit
def _singular_weight(params, x):
    """w(x) = |x - s0|^alpha0 |x - s1|^alpha1 of a singular tabulated density
    (params = [s0, alpha0, s1, alpha1]; alpha = 0 for an unused point); +inf at s."""
    w = 1.0
    for k in range(2):
        alpha = params[2 * k + 1]
        if alpha != 0.0:
            v = abs(x - params[2 * k])
            if v == 0.0:
                return np.inf
            w *= v ** alpha
    return w


@jit
def _neumaier(total, comp, value):
    """One step of Neumaier's compensated summation: (new total, new compensation)."""
    t = total + value
    if abs(total) >= abs(value):
        comp += (total - t) + value
    else:
        comp += (value - t) + total
    return t, comp


@jit
def _tab_cell(tab_x, tab_p, a, b):
    """Exact moments of the piecewise-linear density on (a, b], summed piece by piece
    in coordinates relative to a (no prefix-sum differences, so no cancellation)."""
    n = tab_x.shape[0]
    lo = max(a, tab_x[0])
    hi = min(b, tab_x[n - 1])
    if not (lo < hi):
        return 0.0, 0.5 * (lo + hi), 0.0
    j = np.searchsorted(tab_x, lo, side="right") - 1
    if j < 0:
        j = 0
    # Neumaier-compensated sums: a tail cell adds up thousands of pieces of very
    # different sizes, and plain summation leaves ~1e-12 noise in its centroid.  Offsets
    # are taken from the cell edge nearer the origin: a tail cell's far edge (the end of
    # the tabulation, ~1e4 std away) would cost its centroid ulp(1e4) ~ 1e-12.
    ref = lo if abs(lo) <= abs(hi) else hi
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    c0 = 0.0
    c1 = 0.0
    c2 = 0.0
    while j < n - 1 and tab_x[j] < hi:
        x0 = tab_x[j]
        x1 = tab_x[j + 1]
        u0 = max(lo, x0)
        u1 = min(hi, x1)
        if u1 > u0:
            slope = (tab_p[j + 1] - tab_p[j]) / (x1 - x0)
            p0 = tab_p[j] + slope * (u0 - x0)
            h = u1 - u0
            # density p0 + slope * v on v in (0, h]; shift d = u0 - lo
            i0 = p0 * h + 0.5 * slope * h * h
            i1 = p0 * h * h / 2.0 + slope * h * h * h / 3.0
            i2 = p0 * h * h * h / 3.0 + slope * h * h * h * h / 4.0
            d = u0 - ref
            s0, c0 = _neumaier(s0, c0, i0)
            s1, c1 = _neumaier(s1, c1, i1 + d * i0)
            s2, c2 = _neumaier(s2, c2, i2 + 2.0 * d * i1 + d * d * i0)
        j += 1
    s0 += c0
    s1 += c1
    s2 += c2
    if s0 <= 0.0:
        return 0.0, 0.5 * (lo + hi), 0.0
    off = s1 / s0
    var = s2 / s0 - off * off
    if var < 0.0:
        var = 0.0
    return s0, ref + off, var


@jit
def _singular_piece(params, g0, slope, u0, h):
    """Moments (i0, i1, i2) about u0 of w(x) (g0 + slope (x - u0)) on (u0, u0 + h].

    A piece with an end on a singular point s (x ~ |x - s|^alpha) is integrated in
    closed form with the other factor frozen (such pieces are 1e-40 std wide); any
    other piece by Gauss-Legendre, 3 nodes when it is narrow against its distance to
    the singular points (w is then a low-order polynomial to rounding), 6 otherwise
    (the tabulation's geometric grid keeps the ratio of distances below 1.01)."""
    u1 = u0 + h
    for k in range(2):
        alpha = params[2 * k + 1]
        if alpha == 0.0:
            continue
        s = params[2 * k]
        if u0 == s or u1 == s:
            other = params[2 * (1 - k) + 1]
            wo = 1.0
            if other != 0.0:
                wo = abs(u0 + 0.5 * h - params[2 * (1 - k)]) ** other
            # J_m = int_0^h v^(alpha+m) g dv, v the distance from s
            gs = g0 if u0 == s else g0 + slope * h  # g at s
            gslope = slope if u0 == s else -slope   # dg/dv
            e1 = alpha + 1.0
            hp = h ** e1
            j0 = wo * (gs * hp / e1 + gslope * hp * h / (e1 + 1.0))
            j1 = wo * (gs * hp * h / (e1 + 1.0) + gslope * hp * h * h / (e1 + 2.0))
            j2 = wo * (gs * hp * h * h / (e1 + 2.0) + gslope * hp * h * h * h / (e1 + 3.0))
            if u0 == s:
                return j0, j1, j2
            # the singular point is at the right end: x - u0 = h - v
            return j0, h * j0 - j1, h * h * j0 - 2.0 * h * j1 + j2
    near = np.inf
    for k in range(2):
        if params[2 * k + 1] != 0.0:
            d = min(abs(u0 - params[2 * k]), abs(u1 - params[2 * k]))
            if d < near:
                near = d
    if h <= 1e-2 * near:
        nodes, weights = _GL3_X, _GL3_W
    else:
        nodes, weights = _GL6_X, _GL6_W
    half = 0.5 * h
    i0 = 0.0
    i1 = 0.0
    i2 = 0.0
    for k in range(nodes.shape[0]):
        v = half * (nodes[k] + 1.0)
        f = weights[k] * half * (g0 + slope * v) * _singular_weight(params, u0 + v)
        i0 += f
        i1 += f * v
        i2 += f * v * v
    return i0, i1, i2


@jit(inline=True)
def _piece_integrals(params, plain, x0, x1, g0, g1, u0, h):
    """Moments (i0, i1, i2) about u0 of w g on (u0, u0 + h] inside the piece (x0, x1]."""
    mode = _piece_mode(params, x0, x1, g0, g1)
    if mode != LINEAR:
        return _model_piece(params, mode, x0, x1, g0, g1, u0, h)
    slope = (g1 - g0) / (x1 - x0)
    p0 = g0 + slope * (u0 - x0)
    if plain:
        i0 = p0 * h + 0.5 * slope * h * h
        i1 = p0 * h * h / 2.0 + slope * h * h * h / 3.0
        i2 = p0 * h * h * h / 3.0 + slope * h * h * h * h / 4.0
        return i0, i1, i2
    return _singular_piece(params, p0, slope, u0, h)


@jit
def piece_moments(params, tab_x, tab_p, out):
    """out[3 j : 3 j + 3] = moments (i0, i1, i2) of piece j about its left node, exactly
    as :func:`_tab_model_cell` integrates a whole piece.  Stored after the first
    PIECE_BASE entries of ``params``, they turn a cell's walk over its whole pieces into
    additions (the same numbers, so the same result to the last bit)."""
    plain = params[1] == 0.0 and params[3] == 0.0
    for j in range(tab_x.shape[0] - 1):
        x0 = tab_x[j]
        x1 = tab_x[j + 1]
        i0, i1, i2 = _piece_integrals(params, plain, x0, x1, tab_p[j], tab_p[j + 1], x0,
                                      x1 - x0)
        out[3 * j] = i0
        out[3 * j + 1] = i1
        out[3 * j + 2] = i2


@jit
def _tab_model_cell(params, tab_x, tab_p, lo, hi):
    """Moments on (lo, hi] of the density w(x) g(x) (module docstring; the nodes include
    every singular point, so no piece straddles one)."""
    n = tab_x.shape[0]
    j = np.searchsorted(tab_x, lo, side="right") - 1
    if j < 0:
        j = 0
    ref = lo if abs(lo) <= abs(hi) else hi
    plain = params[1] == 0.0 and params[3] == 0.0
    cached = params.shape[0] >= PIECE_BASE + 3 * (n - 1)
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    c0 = 0.0
    c1 = 0.0
    c2 = 0.0
    while j < n - 1 and tab_x[j] < hi:
        x0 = tab_x[j]
        x1 = tab_x[j + 1]
        u0 = max(lo, x0)
        u1 = min(hi, x1)
        if u1 > u0:
            if cached and u0 == x0 and u1 == x1:
                # a whole piece: its moments about x0, integrated once (piece_moments)
                k = PIECE_BASE + 3 * j
                i0 = params[k]
                i1 = params[k + 1]
                i2 = params[k + 2]
            else:
                i0, i1, i2 = _piece_integrals(params, plain, x0, x1, tab_p[j], tab_p[j + 1],
                                              u0, u1 - u0)
            d = u0 - ref
            s0, c0 = _neumaier(s0, c0, i0)
            s1, c1 = _neumaier(s1, c1, i1 + d * i0)
            s2, c2 = _neumaier(s2, c2, i2 + 2.0 * d * i1 + d * d * i0)
        j += 1
    s0 += c0
    s1 += c1
    s2 += c2
    if s0 <= 0.0:
        return 0.0, 0.5 * (lo + hi), 0.0
    off = s1 / s0
    var = s2 / s0 - off * off
    if var < 0.0:
        var = 0.0
    return s0, ref + off, var


@jit
def _model_piece(params, mode, x0, x1, g0, g1, u0, h):
    """Moments (i0, i1, i2) about u0 of w g on (u0, u0 + h] inside the tail piece
    (x0, x1], g interpolated by ``mode``, by 6-point Gauss-Legendre."""
    half = 0.5 * h
    i0 = 0.0
    i1 = 0.0
    i2 = 0.0
    for k in range(6):
        v = half * (_GL6_X[k] + 1.0)
        x = u0 + v
        f = _GL6_W[k] * half * _piece_value(mode, x0, x1, g0, g1, x)
        if params[1] != 0.0 or params[3] != 0.0:
            f *= _singular_weight(params, x)
        i0 += f
        i1 += f * v
        i2 += f * v * v
    return i0, i1, i2


@jit
def tab_cell(params, tab_x, tab_p, lo, hi):
    """(mass, mean, variance) of the tabulated density on (lo, hi], lo < hi, both
    inside the table."""
    if params.shape[0] < 4:
        return _tab_cell(tab_x, tab_p, lo, hi)
    return _tab_model_cell(params, tab_x, tab_p, lo, hi)
