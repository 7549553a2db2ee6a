"""Densities and cell moments: the distribution side of the Lloyd-Max conditions.

Numba kernels, pure functions over float64 arrays and scalars.  Nothing here validates
input; :mod:`lloydmax._solver` does that and wraps the results.

A distribution is passed to the kernels as ``(kind, params, tab_x, tab_p, pm_loc, pm_w)``
in *standardised* coordinates:

=========  ==========================================================  ==============
kind       continuous density p(x)                                      params
=========  ==========================================================  ==============
GAUSS      phi(x) on R                                                  --
HALFNORM   params[0] * phi(x) on (0, inf)                               [weight]
LAPLACE    exp(-|x|) / 2 on R                                           --
UNIFORM    1 on (0, 1)                                                  --
TAB        piecewise-linear through (tab_x[j], tab_p[j])                -- (or the
           singular form w(x) g(x) below)                               [s0, a0, s1, a1]
=========  ==========================================================  ==============

plus an optional point mass ``pm_w`` at ``pm_loc`` (the ReLU zeros of the half-wave
Gaussian).  A cell is the half-open interval (a, b]: a value equal to a threshold goes
to the lower level.

For a cell (a, b] the kernels return its mass, mean (centroid) and variance::

    M0 = P(a < X <= b),    c = E[X | a < X <= b],    v = Var[X | a < X <= b]

and from those, for levels q_i and cells (t_{i-1}, t_i] (t_0 = -inf, t_L = +inf)::

    mse     = sum_i M0_i (v_i + (c_i - q_i)^2)
    power   = sum_i M0_i (v_i + c_i^2)                  (= E[X^2])
    entropy = -sum_i M0_i log2 M0_i                     (bits of the output index)

    centroid residual = max_i |q_i - c_i| / (q_max - q_min)          (free levels)
    midpoint residual = max_i |t_i - (q_i + q_{i+1}) / 2| / (q_max - q_min)   (free thresholds)

The Lloyd-Max solvers (:mod:`lloydmax._kernels.newton`) drive both residuals to zero.


Notes
-----
Cell moments are computed without catastrophic cancellation: narrow finite cells by
Gauss-Legendre quadrature in coordinates relative to the cell's left edge, wide and
infinite cells by closed forms built on ``erfc`` (never ``1 - cdf``):

* Gaussian, with Q(x) = P(X > x) = erfc(x / sqrt(2)) / 2::

      M0 = Q(a) - Q(b),   c = (phi(a) - phi(b)) / M0,
      E[X^2 | cell] = 1 + (a phi(a) - b phi(b)) / M0

  the mass taken as Q(-b) - Q(-a) for b <= 0 and 1 - Q(b) - Q(-a) across 0, so that
  neither difference loses the tail.

* Laplace: each half from the exponential tail exp(-x) on (a, a + w], a >= 0::

      M0 = e^-a (1 - e^-w),   c - a = (1 - e^-w (1 + w)) / (1 - e^-w),
      E[(X - a)^2 | cell] = (2 - e^-w (w^2 + 2 w + 2)) / (1 - e^-w)

  with ``1 - e^-w`` as ``-expm1(-w)``; a cell across the kink at 0 is split there.
* Tabulated: see :mod:`lloydmax._kernels.tabulated`.
* The point mass, and the two halves of a split cell, are merged by the parallel-axis
  rule.

The distribution kind codes and the status codes that every solver writes into
``info[3]`` live here too, the one module that the solver modules all import.
"""
from __future__ import annotations

import math

import numpy as np

from .._jit import jit
from .tabulated import tab_cell, tab_pdf

GAUSS = 0
HALFNORM = 1
LAPLACE = 2
UNIFORM = 3
TAB = 4

# Gauss-Legendre rules for narrow cells (standardised units).  Measured against
# scipy.integrate.quad on Gaussian cells across [-3, 5], the centroid offset agrees to
# quad's own accuracy (below 1e-14 of the width) with 6 nodes up to width 0.25 and 12 up
# to width 1; far in the tail (z ~ 8) mpmath shows ~1e-12 of the width, far below the
# solver's tolerance, which is relative to the whole level span.
# The 3-point rule's error on a cell of width h is 5e-7 h^6 |p^(6) / p| relative to its
# mass; |p^(6) / p| = |He_6(z)| < 2.1e5 for |z| <= 8, so up to h = 2e-3 it stays below
# 1e-17 (the cells of 12-16-bit tables, half the exp calls of the 6-point rule).
_GL3_X, _GL3_W = np.polynomial.legendre.leggauss(3)
_GL6_X, _GL6_W = np.polynomial.legendre.leggauss(6)
_GL_TINY = 2e-3
_GL12_X, _GL12_W = np.polynomial.legendre.leggauss(12)
_GL_NARROW = 0.25
_GL_WIDTH = 1.0
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)

# status codes written into info[3]
OK = 0
MAXITER = 1
EMPTY_CELL = 2
STALLED = 3


# --------------------------------------------------------------------------------------
# densities


@jit
def pdf(kind, params, tab_x, tab_p, x):
    """Continuous density at x (the point mass has no density)."""
    if kind == TAB:
        return tab_pdf(params, tab_x, tab_p, x)
    return _builtin_pdf(kind, builtin_weight(kind, params), x)


@jit
def _support(kind, tab_x):
    if kind in (GAUSS, LAPLACE):
        return -np.inf, np.inf
    if kind == HALFNORM:
        return 0.0, np.inf
    if kind == UNIFORM:
        return 0.0, 1.0
    return tab_x[0], tab_x[tab_x.shape[0] - 1]


@jit
def _gauss_upper(x):
    """Q(x) = P(X > x) for X ~ N(0, 1), accurate in both tails."""
    return 0.5 * math.erfc(x * _INV_SQRT2)


@jit
def _phi(x):
    if math.isinf(x):
        return 0.0
    return _INV_SQRT2PI * math.exp(-0.5 * x * x)


# --------------------------------------------------------------------------------------
# cell moments: closed forms, Gauss-Legendre, tabulated pieces, point mass


@jit
def _gauss_closed(a, b):
    """Mass, mean and variance of phi restricted to (a, b], a < b, by closed forms."""
    if a >= 0.0:
        m0 = _gauss_upper(a) - _gauss_upper(b)
    elif b <= 0.0:
        m0 = _gauss_upper(-b) - _gauss_upper(-a)
    else:
        m0 = 1.0 - _gauss_upper(b) - _gauss_upper(-a)
    if m0 <= 0.0:
        return 0.0, 0.5 * (a + b), 0.0
    pa = _phi(a)
    pb = _phi(b)
    mean = (pa - pb) / m0
    apa = 0.0 if math.isinf(a) else a * pa
    bpb = 0.0 if math.isinf(b) else b * pb
    # E[X^2 | cell] = 1 + (a phi(a) - b phi(b)) / m0; shift to the mean.
    var = 1.0 + (apa - bpb) / m0 - mean * mean
    if var < 0.0:
        var = 0.0
    return m0, mean, var


@jit
def _exp_tail(a, w):
    """Moments of exp(-x) on (a, a + w], a >= 0, about a: (mass, mean offset, var)."""
    ea = math.exp(-a)
    if math.isinf(w):
        # exponential tail: mass e^-a, mean a + 1, variance 1
        return ea, 1.0, 1.0
    em = -math.expm1(-w)  # 1 - e^-w without cancellation
    m0 = ea * em
    if m0 <= 0.0:
        return 0.0, 0.5 * w, 0.0
    ew = math.exp(-w)
    s1 = 1.0 - ew * (1.0 + w)  # integral of u e^-u on (0, w]
    s2 = 2.0 - ew * (w * w + 2.0 * w + 2.0)
    off = s1 / em
    var = s2 / em - off * off
    if var < 0.0:
        var = 0.0
    return m0, off, var


@jit
def _combine(m0, mean, var, n0, nmean, nvar):
    """Merge two weighted groups by the parallel-axis rule."""
    tot = m0 + n0
    if tot <= 0.0:
        return 0.0, 0.5 * (mean + nmean), 0.0
    c = (m0 * mean + n0 * nmean) / tot
    d1 = mean - c
    d2 = nmean - c
    v = (m0 * (var + d1 * d1) + n0 * (nvar + d2 * d2)) / tot
    return tot, c, v


@jit
def _laplace_closed(a, b):
    """exp(-|x|)/2 on (a, b], a < b, by closed forms with expm1."""
    if a >= 0.0:
        m0, off, var = _exp_tail(a, b - a)
        return 0.5 * m0, a + off, var
    if b <= 0.0:
        m0, off, var = _exp_tail(-b, b - a)
        return 0.5 * m0, b - off, var
    m1, o1, v1 = _exp_tail(0.0, -a)
    m2, o2, v2 = _exp_tail(0.0, b)
    return _combine(0.5 * m1, -o1, v1, 0.5 * m2, o2, v2)


@jit
def _builtin_pdf(kind, w, x):
    """Density of a built-in kind at x; ``w`` is the half-normal's weight (scalars only,
    so that the per-cell loops pass no arrays and pay no reference counting)."""
    if kind == GAUSS:
        return _INV_SQRT2PI * math.exp(-0.5 * x * x)
    if kind == HALFNORM:
        if x <= 0.0:
            return 0.0
        return w * _INV_SQRT2PI * math.exp(-0.5 * x * x)
    if kind == LAPLACE:
        return 0.5 * math.exp(-abs(x))
    if kind == UNIFORM:
        return 1.0 if 0.0 <= x <= 1.0 else 0.0
    return 0.0


@jit
def builtin_weight(kind, params):
    """The one scalar a built-in density reads from ``params`` (the half-normal weight)."""
    if kind == HALFNORM:
        return params[0]
    return 1.0


@jit
def _gl_cell(kind, w, a, b):
    """Gauss-Legendre moments of a smooth built-in density on a narrow cell (a, b]."""
    half = 0.5 * (b - a)
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    if b - a <= _GL_TINY:
        for k in range(3):
            u = half * (_GL3_X[k] + 1.0)
            f = _GL3_W[k] * _builtin_pdf(kind, w, a + u)
            s0 += f
            s1 += f * u
            s2 += f * u * u
    elif b - a <= _GL_NARROW:
        for k in range(6):
            u = half * (_GL6_X[k] + 1.0)
            f = _GL6_W[k] * _builtin_pdf(kind, w, a + u)
            s0 += f
            s1 += f * u
            s2 += f * u * u
    else:
        for k in range(12):
            u = half * (_GL12_X[k] + 1.0)
            f = _GL12_W[k] * _builtin_pdf(kind, w, a + u)
            s0 += f
            s1 += f * u
            s2 += f * u * u
    if s0 <= 0.0:
        return 0.0, 0.5 * (a + b), 0.0
    off = s1 / s0
    var = s2 / s0 - off * off
    if var < 0.0:
        var = 0.0
    return s0 * half, a + off, var


@jit
def _laplace_part(lo, hi):
    """exp(-|x|)/2 on (lo, hi] with no kink inside."""
    if hi - lo <= _GL_WIDTH:
        return _gl_cell(LAPLACE, 1.0, lo, hi)
    return _laplace_closed(lo, hi)


@jit
def builtin_cell(kind, w, a, b):
    """(mass, mean, variance) of a built-in continuous density on (a, b]: scalars in,
    scalars out, no recursion (the Laplace kink at 0 splits the cell explicitly)."""
    lo = a
    hi = b
    if kind in (HALFNORM, UNIFORM) and lo < 0.0:
        lo = 0.0
    if kind == UNIFORM and hi > 1.0:
        hi = 1.0
    if not (lo < hi):
        return 0.0, 0.5 * (lo + hi) if not math.isinf(lo + hi) else lo, 0.0
    if kind == UNIFORM:
        wd = hi - lo
        return wd, 0.5 * (lo + hi), wd * wd / 12.0
    if kind == LAPLACE:
        if lo < 0.0 < hi:
            # the density has a kink at 0: treat the halves apart
            m1, c1, v1 = _laplace_part(lo, 0.0)
            m2, c2, v2 = _laplace_part(0.0, hi)
            return _combine(m1, c1, v1, m2, c2, v2)
        return _laplace_part(lo, hi)
    if hi - lo <= _GL_WIDTH:
        return _gl_cell(kind, w, lo, hi)
    m0, c, v = _gauss_closed(lo, hi)
    if kind == HALFNORM:
        m0 *= w
    return m0, c, v


@jit
def _continuous_cell(kind, params, tab_x, tab_p, a, b):
    if kind == TAB:
        lo, hi = _support(kind, tab_x)
        if a > lo:
            lo = a
        if b < hi:
            hi = b
        if not (lo < hi):
            return 0.0, 0.5 * (lo + hi) if not math.isinf(lo + hi) else lo, 0.0
        return tab_cell(params, tab_x, tab_p, lo, hi)
    return builtin_cell(kind, builtin_weight(kind, params), a, b)


@jit
def cell_moments(kind, params, tab_x, tab_p, pm_loc, pm_w, a, b):
    """(mass, mean, variance) of the distribution restricted to the cell (a, b]."""
    m0, c, v = _continuous_cell(kind, params, tab_x, tab_p, a, b)
    if pm_w > 0.0 and a < pm_loc <= b:
        return _combine(m0, c, v, pm_w, pm_loc, 0.0)
    return m0, c, v


# --------------------------------------------------------------------------------------
# whole tables: thresholds, cells, residuals, summaries


@jit
def fill_thresholds(levels, thr_pinned, thr_value, thresholds):
    """Interior thresholds: the pinned value, or the midpoint of the neighbours."""
    for j in range(thresholds.shape[0]):
        if thr_pinned[j]:
            thresholds[j] = thr_value[j]
        else:
            thresholds[j] = 0.5 * (levels[j] + levels[j + 1])


@jit(inline=True)
def _cell_at(kind, params, tab_x, tab_p, w, pm_loc, pm_w, thresholds, n, i):
    """Moments of cell i of n, inlined into the loops below (it takes arrays)."""
    a = -np.inf if i == 0 else thresholds[i - 1]
    b = np.inf if i == n - 1 else thresholds[i]
    if kind == TAB:
        m0, c, v = _continuous_cell(kind, params, tab_x, tab_p, a, b)
    else:
        m0, c, v = builtin_cell(kind, w, a, b)
    if pm_w > 0.0 and a < pm_loc <= b:
        m0, c, v = _combine(m0, c, v, pm_w, pm_loc, 0.0)
    return m0, c, v


@jit
def _fill_serial(kind, params, tab_x, tab_p, pm_loc, pm_w, thresholds, count, mass, mean,
                 var):
    n = mass.shape[0]
    w = builtin_weight(kind, params)
    for i in range(count):
        m0, c, v = _cell_at(kind, params, tab_x, tab_p, w, pm_loc, pm_w, thresholds, n, i)
        mass[i] = m0
        mean[i] = c
        var[i] = v


@jit
def fill_cells_mirrored(kind, params, tab_x, tab_p, pm_loc, pm_w, thresholds, mirror,
                        mass, mean, var):
    """Mass, mean and variance of every cell.

    The built-in kinds pass only scalars to the per-cell code (no reference counting in
    the loop).  With ``mirror`` (a density symmetric about 0, no point mass, thresholds
    exactly antisymmetric, as the solver's symmetric projection makes them), only the
    lower half of the cells is integrated and cell n-1-i is cell i reflected.

    The loop is serial on purpose: a ``prange`` version ran, but a cached kernel that
    calls a ``parallel=True`` kernel segfaults when numba loads it from its cache
    (numba issue 8578, open), and on a loaded 2-core machine the threads made a 12-bit
    solve 100x slower (docs/benchmarks.md)."""
    n = mass.shape[0]
    count = (n + 1) // 2 if (mirror and pm_w == 0.0) else n
    _fill_serial(kind, params, tab_x, tab_p, pm_loc, pm_w, thresholds, count, mass, mean,
                 var)
    for i in range(count, n):
        j = n - 1 - i
        mass[i] = mass[j]
        mean[i] = -mean[j]
        var[i] = var[j]


@jit
def fill_cells(kind, params, tab_x, tab_p, pm_loc, pm_w, thresholds, mass, mean, var):
    """Mass, mean and variance of every cell (see :func:`fill_cells_mirrored`)."""
    fill_cells_mirrored(kind, params, tab_x, tab_p, pm_loc, pm_w, thresholds, False, mass,
                        mean, var)


@jit
def _span(levels):
    n = levels.shape[0]
    s = levels[n - 1] - levels[0]
    if not (s > 0.0):
        s = max(abs(levels[0]), 1.0)
    return s


@jit
def centroid_residual(levels, level_pinned, mass, mean):
    """max |q_i - E[X | cell i]| / (q_max - q_min) over the optimised levels.
    An empty optimised cell gives +inf (its centroid does not exist)."""
    span = _span(levels)
    r = 0.0
    for i in range(levels.shape[0]):
        if level_pinned[i]:
            continue
        if mass[i] <= 0.0:
            return np.inf
        d = abs(levels[i] - mean[i]) / span
        if d > r:
            r = d
    return r


@jit
def midpoint_residual(levels, thr_pinned, thresholds):
    span = _span(levels)
    r = 0.0
    for j in range(thresholds.shape[0]):
        if thr_pinned[j]:
            continue
        d = abs(thresholds[j] - 0.5 * (levels[j] + levels[j + 1])) / span
        if d > r:
            r = d
    return r


@jit
def fill_pdf(kind, params, tab_x, tab_p, x, out):
    """The continuous density at every x (one loop; scalars only for built-in kinds)."""
    w = builtin_weight(kind, params)
    for j in range(x.shape[0]):
        if kind == TAB:
            out[j] = tab_pdf(params, tab_x, tab_p, x[j])
        else:
            out[j] = _builtin_pdf(kind, w, x[j])
