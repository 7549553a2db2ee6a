"""Numba kernels: pure functions over float64 arrays and scalars.

Nothing here validates input; :mod:`lloydmax._solver` does that and wraps the results.

A distribution is passed to the kernels as ``(kind, params, tab_x, tab_p, pm_loc, pm_w)``
in *standardised* coordinates:

=========  ==========================================================  ==============
kind       continuous density p(x)                                      params
=========  ==========================================================  ==============
GAUSS      phi(x) on R                                                  --
HALFNORM   params[0] * phi(x) on (0, inf)                               [weight]
LAPLACE    exp(-|x|) / 2 on R                                           --
UNIFORM    1 on (0, 1)                                                  --
TAB        piecewise-linear through (tab_x[j], tab_p[j])                --
=========  ==========================================================  ==============

plus an optional point mass ``pm_w`` at ``pm_loc`` (the ReLU zeros of the half-wave
Gaussian).  A cell is the half-open interval (a, b]: a value equal to a threshold goes
to the lower level.

Cell moments are computed without catastrophic cancellation: narrow finite cells by
Gauss-Legendre quadrature in coordinates relative to the cell's left edge, wide and
infinite cells by closed forms built on ``erfc`` (never ``1 - cdf``).
"""
from __future__ import annotations

import math

import numpy as np

from ._jit import jit

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
_GL6_X, _GL6_W = np.polynomial.legendre.leggauss(6)
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


@jit
def pdf(kind, params, tab_x, tab_p, x):
    """Continuous density at x (the point mass has no density)."""
    if kind == GAUSS:
        return _INV_SQRT2PI * math.exp(-0.5 * x * x)
    if kind == HALFNORM:
        if x <= 0.0:
            return 0.0
        return params[0] * _INV_SQRT2PI * math.exp(-0.5 * x * x)
    if kind == LAPLACE:
        return 0.5 * math.exp(-abs(x))
    if kind == UNIFORM:
        return 1.0 if 0.0 <= x <= 1.0 else 0.0
    # TAB
    n = tab_x.shape[0]
    if x < tab_x[0] or x > tab_x[n - 1]:
        return 0.0
    j = np.searchsorted(tab_x, x, side="right") - 1
    if j >= n - 1:
        return tab_p[n - 1]
    u = (x - tab_x[j]) / (tab_x[j + 1] - tab_x[j])
    return tab_p[j] + u * (tab_p[j + 1] - tab_p[j])


@jit
def _support(kind, tab_x):
    if kind == GAUSS or kind == LAPLACE:
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
def _gl_cell(kind, params, tab_x, tab_p, a, b):
    """Gauss-Legendre moments of a smooth density on a narrow finite cell (a, b]."""
    half = 0.5 * (b - a)
    if b - a <= _GL_NARROW:
        nodes, weights = _GL6_X, _GL6_W
    else:
        nodes, weights = _GL12_X, _GL12_W
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    for k in range(nodes.shape[0]):
        u = half * (nodes[k] + 1.0)
        f = weights[k] * pdf(kind, params, tab_x, tab_p, a + u)
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
def _continuous_cell(kind, params, tab_x, tab_p, a, b):
    lo, hi = _support(kind, tab_x)
    if a > lo:
        lo = a
    if b < hi:
        hi = b
    if not (lo < hi):
        return 0.0, 0.5 * (lo + hi) if not math.isinf(lo + hi) else lo, 0.0
    if kind == UNIFORM:
        w = hi - lo
        return w, 0.5 * (lo + hi), w * w / 12.0
    if kind == TAB:
        return _tab_cell(tab_x, tab_p, lo, hi)
    if kind == LAPLACE and lo < 0.0 < hi:
        # the density has a kink at 0: treat the halves apart
        m1, c1, v1 = _continuous_cell(kind, params, tab_x, tab_p, lo, 0.0)
        m2, c2, v2 = _continuous_cell(kind, params, tab_x, tab_p, 0.0, hi)
        return _combine(m1, c1, v1, m2, c2, v2)
    if hi - lo <= _GL_WIDTH:
        return _gl_cell(kind, params, tab_x, tab_p, lo, hi)
    if kind == LAPLACE:
        return _laplace_closed(lo, hi)
    m0, c, v = _gauss_closed(lo, hi)
    if kind == HALFNORM:
        m0 *= params[0]
    return m0, c, v


@jit
def cell_moments(kind, params, tab_x, tab_p, pm_loc, pm_w, a, b):
    """(mass, mean, variance) of the distribution restricted to the cell (a, b]."""
    m0, c, v = _continuous_cell(kind, params, tab_x, tab_p, a, b)
    if pm_w > 0.0 and a < pm_loc <= b:
        return _combine(m0, c, v, pm_w, pm_loc, 0.0)
    return m0, c, v


@jit
def fill_thresholds(levels, thr_pinned, thr_value, thresholds):
    """Interior thresholds: the pinned value, or the midpoint of the neighbours."""
    for j in range(thresholds.shape[0]):
        if thr_pinned[j]:
            thresholds[j] = thr_value[j]
        else:
            thresholds[j] = 0.5 * (levels[j] + levels[j + 1])


@jit
def fill_cells(kind, params, tab_x, tab_p, pm_loc, pm_w, thresholds, mass, mean, var):
    n = mass.shape[0]
    for i in range(n):
        a = -np.inf if i == 0 else thresholds[i - 1]
        b = np.inf if i == n - 1 else thresholds[i]
        m0, c, v = cell_moments(kind, params, tab_x, tab_p, pm_loc, pm_w, a, b)
        mass[i] = m0
        mean[i] = c
        var[i] = v


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
def _is_valid(levels, thresholds):
    n = levels.shape[0]
    for i in range(n - 1):
        if not (levels[i] < levels[i + 1]):
            return False
    for j in range(thresholds.shape[0] - 1):
        if not (thresholds[j] < thresholds[j + 1]):
            return False
    return True


@jit
def _tridiag_solve(lower, diag, upper, rhs, out):
    """Thomas algorithm; lower[0] and upper[n-1] are ignored.  Returns False on a zero pivot."""
    n = diag.shape[0]
    cp = np.empty(n)
    dp = np.empty(n)
    if diag[0] == 0.0:
        return False
    cp[0] = upper[0] / diag[0]
    dp[0] = rhs[0] / diag[0]
    for i in range(1, n):
        den = diag[i] - lower[i] * cp[i - 1]
        if den == 0.0 or not math.isfinite(den):
            return False
        cp[i] = upper[i] / den if i < n - 1 else 0.0
        dp[i] = (rhs[i] - lower[i] * dp[i - 1]) / den
    out[n - 1] = dp[n - 1]
    for i in range(n - 2, -1, -1):
        out[i] = dp[i] - cp[i] * out[i + 1]
    return True


@jit
def _jacobian(kind, params, tab_x, tab_p, levels, level_pinned, thr_pinned, thresholds,
              mass, lower, diag, upper):
    """Tridiagonal Jacobian of F_i = q_i M0_i - M1_i (pinned levels get an identity row).

    dF_i/dt_{i+1} = (q_i - t_{i+1}) p(t_{i+1}),  dF_i/dt_i = -(q_i - t_i) p(t_i),
    dt/dq = 1/2 for a midpoint threshold and 0 for a pinned one.
    """
    n = levels.shape[0]
    for i in range(n):
        lower[i] = 0.0
        upper[i] = 0.0
        if level_pinned[i]:
            diag[i] = 1.0
            continue
        d = mass[i]
        if i > 0 and not thr_pinned[i - 1]:
            t = thresholds[i - 1]
            g = -(levels[i] - t) * pdf(kind, params, tab_x, tab_p, t) * 0.5
            d += g
            lower[i] = g
        if i < n - 1 and not thr_pinned[i]:
            t = thresholds[i]
            g = (levels[i] - t) * pdf(kind, params, tab_x, tab_p, t) * 0.5
            d += g
            upper[i] = g
        diag[i] = d


@jit
def _symmetrize(levels, centre):
    """Project onto tables symmetric about ``centre``.  For a symmetric density the
    optimum is symmetric, and some problems (the 2-level Laplace: its exponential tail
    is memoryless) are flat to second order along the antisymmetric direction, where a
    small residual would otherwise allow a visible drift of the levels."""
    n = levels.shape[0]
    for i in range(n // 2):
        j = n - 1 - i
        a = 0.5 * ((levels[i] - centre) - (levels[j] - centre))
        levels[i] = centre + a
        levels[j] = centre - a
    if n % 2 == 1:
        levels[n // 2] = centre


@jit
def solve_nonuniform(kind, params, tab_x, tab_p, pm_loc, pm_w, levels, level_pinned,
                     thr_pinned, thr_value, tol, max_iter, symmetric, centre, thresholds, info):
    """Lloyd-Max by safeguarded Newton on the centroid conditions.

    ``levels`` holds the initial guess and receives the solution.  The Newton step
    solves the tridiagonal system J d = -(q - centroid); a step that does not lower the
    residual is halved, and after 40 halvings a plain Lloyd step (q <- centroids) is
    taken instead, which always keeps the levels sorted.

    info receives [iterations, centroid residual, newton steps, status].
    """
    n = levels.shape[0]
    mass = np.empty(n)
    mean = np.empty(n)
    var = np.empty(n)
    lower = np.empty(n)
    diag = np.empty(n)
    upper = np.empty(n)
    rhs = np.empty(n)
    step = np.empty(n)
    trial = np.empty(n)
    trial_thr = np.empty(n - 1)
    t_mass = np.empty(n)
    t_mean = np.empty(n)

    if symmetric:
        _symmetrize(levels, centre)
    fill_thresholds(levels, thr_pinned, thr_value, thresholds)
    fill_cells(kind, params, tab_x, tab_p, pm_loc, pm_w, thresholds, mass, mean, var)
    res = centroid_residual(levels, level_pinned, mass, mean)
    it = 0
    newton = 0
    status = OK
    polish = 0
    best = res
    since_best = 0
    while it < max_iter:
        if not math.isfinite(res):
            status = EMPTY_CELL
            break
        if res <= tol:
            # quadratic convergence: one or two more steps reach rounding level
            polish += 1
            if polish > 1 or res == 0.0:
                break
        it += 1
        _jacobian(kind, params, tab_x, tab_p, levels, level_pinned, thr_pinned, thresholds,
                  mass, lower, diag, upper)
        for i in range(n):
            if level_pinned[i]:
                rhs[i] = 0.0
            else:
                # rows divided by the cell mass: G_i = q_i - centroid_i (masses > 0 here)
                inv = 1.0 / mass[i]
                diag[i] *= inv
                lower[i] *= inv
                upper[i] *= inv
                rhs[i] = mean[i] - levels[i]
        accepted = False
        if _tridiag_solve(lower, diag, upper, rhs, step):
            lam = 1.0
            for _ in range(40):
                for i in range(n):
                    trial[i] = levels[i] + lam * step[i]
                if symmetric:
                    _symmetrize(trial, centre)
                fill_thresholds(trial, thr_pinned, thr_value, trial_thr)
                if _is_valid(trial, trial_thr):
                    fill_cells(kind, params, tab_x, tab_p, pm_loc, pm_w, trial_thr,
                               t_mass, t_mean, var)
                    r = centroid_residual(trial, level_pinned, t_mass, t_mean)
                    if r < res:
                        accepted = True
                        break
                lam *= 0.5
        if accepted:
            newton += 1
        else:
            if res <= tol:
                break  # at rounding level: nothing left to gain
            # Lloyd step: move every free level to its centroid
            for i in range(n):
                trial[i] = levels[i] if level_pinned[i] else mean[i]
            if symmetric:
                _symmetrize(trial, centre)
            fill_thresholds(trial, thr_pinned, thr_value, trial_thr)
            if not _is_valid(trial, trial_thr):
                status = STALLED
                break
            fill_cells(kind, params, tab_x, tab_p, pm_loc, pm_w, trial_thr, t_mass, t_mean, var)
            r = centroid_residual(trial, level_pinned, t_mass, t_mean)
        for i in range(n):
            levels[i] = trial[i]
            mass[i] = t_mass[i]
            mean[i] = t_mean[i]
        for j in range(n - 1):
            thresholds[j] = trial_thr[j]
        res = r
        if res < 0.5 * best:
            best = res
            since_best = 0
        else:
            since_best += 1
            if since_best >= 50 and res > tol:
                status = STALLED  # no progress: report it rather than spin to max_iter
                break
    else:
        if res > tol:
            status = MAXITER
    info[0] = it
    info[1] = res
    info[2] = newton
    info[3] = status


@jit
def _uniform_levels(theta, coef_off, coef_step, levels):
    for i in range(levels.shape[0]):
        levels[i] = coef_off[i] * theta[0] + coef_step[i] * theta[1]


@jit
def _mse_from_cells(levels, mass, mean, var):
    s = 0.0
    for i in range(levels.shape[0]):
        d = mean[i] - levels[i]
        s += mass[i] * (var[i] + d * d)
    return s


@jit
def solve_uniform(kind, params, tab_x, tab_p, pm_loc, pm_w, theta, free_offset,
                  coef_off, coef_step, thr_pinned, thr_value, tol, max_iter,
                  levels, thresholds, info):
    """MSE-optimal uniform quantizer q_i = coef_off[i]*offset + coef_step[i]*step.

    theta = [offset, step] holds the start and receives the optimum; the offset moves
    only when ``free_offset``.  Newton on the stationarity conditions
    sum_i F_i dq_i/dtheta = 0 with Hessian C^T J C (J the tridiagonal Jacobian of the
    centroid conditions, C = dq/dtheta), backtracking on the MSE.

    info receives [iterations, relative size of the last Newton correction
    max|d theta| / step, 0, status].
    """
    n = levels.shape[0]
    mass = np.empty(n)
    mean = np.empty(n)
    var = np.empty(n)
    lower = np.empty(n)
    diag = np.empty(n)
    upper = np.empty(n)
    no_pin = np.zeros(n, dtype=np.bool_)
    trial = np.empty(2)

    _uniform_levels(theta, coef_off, coef_step, levels)
    fill_thresholds(levels, thr_pinned, thr_value, thresholds)
    fill_cells(kind, params, tab_x, tab_p, pm_loc, pm_w, thresholds, mass, mean, var)
    mse = _mse_from_cells(levels, mass, mean, var)
    it = 0
    status = OK
    corr = np.inf
    best = np.inf
    since_best = 0
    small = 0
    while True:
        # gradient (halved) and Hessian (halved) in theta
        _jacobian(kind, params, tab_x, tab_p, levels, no_pin, thr_pinned, thresholds,
                  mass, lower, diag, upper)
        g0 = 0.0
        g1 = 0.0
        h00 = 0.0
        h01 = 0.0
        h11 = 0.0
        for i in range(n):
            f = mass[i] * (levels[i] - mean[i])
            g0 += f * coef_off[i]
            g1 += f * coef_step[i]
            # row i of J applied to the columns of C
            jd = diag[i]
            jl = lower[i]
            ju = upper[i]
            jc0 = jd * coef_off[i]
            jc1 = jd * coef_step[i]
            if i > 0:
                jc0 += jl * coef_off[i - 1]
                jc1 += jl * coef_step[i - 1]
            if i < n - 1:
                jc0 += ju * coef_off[i + 1]
                jc1 += ju * coef_step[i + 1]
            h00 += coef_off[i] * jc0
            h01 += coef_off[i] * jc1
            h11 += coef_step[i] * jc1
        convex = h11 > 0.0
        if free_offset:
            det = h00 * h11 - h01 * h01
            convex = det > 0.0 and h00 > 0.0
            if convex:
                d0 = -(h11 * g0 - h01 * g1) / det
                d1 = -(h00 * g1 - h01 * g0) / det
            else:
                # not positive definite: a diagonally scaled descent step instead
                d0 = -g0 / max(abs(h00), 1e-300)
                d1 = -g1 / max(abs(h11), 1e-300)
        else:
            d0 = 0.0
            d1 = -g1 / h11 if h11 > 0.0 else -g1 / max(abs(h11), 1e-300)
        corr = max(abs(d0), abs(d1)) / abs(theta[1])
        if corr <= tol:
            small += 1
        if corr < 0.5 * best:
            best = corr
            since_best = 0
        else:
            since_best += 1
        if small > 1 or corr == 0.0 or it >= max_iter:
            break
        if since_best >= 25:
            status = STALLED  # Newton has stopped contracting: report, do not spin
            break
        it += 1
        lam = 1.0
        accepted = False
        for _ in range(60):
            trial[0] = theta[0] + lam * d0
            trial[1] = theta[1] + lam * d1
            if trial[1] > 0.0:
                _uniform_levels(trial, coef_off, coef_step, levels)
                fill_thresholds(levels, thr_pinned, thr_value, thresholds)
                if _is_valid(levels, thresholds):
                    fill_cells(kind, params, tab_x, tab_p, pm_loc, pm_w, thresholds,
                               mass, mean, var)
                    m = _mse_from_cells(levels, mass, mean, var)
                    # Inside the quadratic basin (small correction, positive-definite
                    # Hessian) the MSE change of a Newton step is below the rounding
                    # noise of the MSE itself (about 1e-10 relative for tabulated
                    # densities), so the step is taken on the gradient's word.
                    if m <= mse or (convex and corr <= 1e-6):
                        accepted = True
                        break
            lam *= 0.5
        if not accepted:
            status = STALLED
            _uniform_levels(theta, coef_off, coef_step, levels)
            fill_thresholds(levels, thr_pinned, thr_value, thresholds)
            break
        theta[0] = trial[0]
        theta[1] = trial[1]
        mse = m
    if status == OK and it >= max_iter and corr > tol:
        status = MAXITER
    info[0] = it
    info[1] = corr
    info[2] = 0
    info[3] = status


@jit
def summarize(kind, params, tab_x, tab_p, pm_loc, pm_w, levels, thresholds, out):
    """out = [mse, second moment E[X^2], entropy (bits) of the output index]."""
    n = levels.shape[0]
    mse = 0.0
    power = 0.0
    ent = 0.0
    for i in range(n):
        a = -np.inf if i == 0 else thresholds[i - 1]
        b = np.inf if i == n - 1 else thresholds[i]
        m0, c, v = cell_moments(kind, params, tab_x, tab_p, pm_loc, pm_w, a, b)
        d = c - levels[i]
        mse += m0 * (v + d * d)
        power += m0 * (v + c * c)
        if m0 > 0.0:
            ent -= m0 * math.log2(m0)
    out[0] = mse
    out[1] = power
    out[2] = ent


@jit
def cell_table(kind, params, tab_x, tab_p, pm_loc, pm_w, thresholds, mass, mean):
    var = np.empty(mass.shape[0])
    fill_cells(kind, params, tab_x, tab_p, pm_loc, pm_w, thresholds, mass, mean, var)


@jit
def compander_guess(kind, params, tab_x, tab_p, lo, hi, quantiles, out):
    """Panter-Dite start: points at the given quantiles of the density p^(1/3) on [lo, hi].

    The cumulative integral of p^(1/3) is tabulated on a grid fine enough to resolve
    every level and inverted by linear interpolation.
    """
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


@jit
def quantize_index(x, thresholds, out):
    """Index i with thresholds[i-1] < x <= thresholds[i]; NaN gives -1."""
    for k in range(x.shape[0]):
        v = x[k]
        if v != v:
            out[k] = -1
        else:
            out[k] = np.searchsorted(thresholds, v, side="left")


@jit
def quantize_values(x, thresholds, levels, out):
    """Quantized values; NaN stays NaN."""
    for k in range(x.shape[0]):
        v = x[k]
        if v != v:
            out[k] = v
        else:
            out[k] = levels[np.searchsorted(thresholds, v, side="left")]


# --------------------------------------------------------------------------------------
# weighted points (empirical data): plain Lloyd on sorted values with prefix sums


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
            m0, c, v = _data_cell(prefix_w, prefix_wx, prefix_wxx, idx[i], idx[i + 1])
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
        m0, c, v = _data_cell(prefix_w, prefix_wx, prefix_wxx, idx[i], idx[i + 1])
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
def data_summary(prefix_w, prefix_wx, prefix_wxx, xs, levels, thresholds, out):
    """out = [mse, E[X^2], entropy bits, centroid residual] of a table on weighted points."""
    n = levels.shape[0]
    npts = xs.shape[0]
    lo = 0
    mse = 0.0
    ent = 0.0
    total = prefix_w[npts]
    for i in range(n):
        hi = npts if i == n - 1 else np.searchsorted(xs, thresholds[i], side="right")
        m0, c, v = _data_cell(prefix_w, prefix_wx, prefix_wxx, lo, hi)
        if m0 > 0.0:
            d = c - levels[i]
            mse += m0 * (v + d * d)
            p = m0 / total
            ent -= p * math.log2(p)
        lo = hi
    out[0] = mse / total
    out[1] = prefix_wxx[npts] / total
    out[2] = ent
