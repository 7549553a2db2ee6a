"""Lloyd-Max solvers on a density: safeguarded Newton, non-uniform and uniform.

Numba kernels, pure functions over float64 arrays and scalars; the density and its cell
moments come from :mod:`lloydmax._kernels.cells`.

With levels q_1 < ... < q_L and cells (t_i, t_{i+1}] (t_1 = -inf, t_{L+1} = +inf), the
MSE-optimal non-uniform quantizer satisfies the Lloyd-Max conditions::

    q_i = E[X | t_i < X <= t_{i+1}]        (centroid)
    t_i = (q_{i-1} + q_i) / 2              (midpoint; a pinned threshold keeps its value)

:func:`solve_nonuniform` eliminates the thresholds and solves
``F_i(q) = q_i M0_i - M1_i = 0`` (M0_i, M1_i the mass and first moment of cell i) by
Newton.  The Jacobian is tridiagonal::

    dF_i/dq_i     = M0_i + [(q_i - t_{i+1}) p(t_{i+1}) - (q_i - t_i) p(t_i)] / 2
    dF_i/dq_{i+1} = (q_i - t_{i+1}) p(t_{i+1}) / 2
    dF_i/dq_{i-1} = -(q_i - t_i) p(t_i) / 2

(dt/dq = 1/2 for a midpoint threshold, 0 for a pinned one; a pinned level gets an
identity row), so each step is one Thomas solve, O(L).

:func:`solve_uniform` restricts the levels to the affine family
``q = C theta``, ``q_i = coef_off[i] * offset + coef_step[i] * step``, and solves the
stationarity conditions of the MSE D(theta)::

    (1/2) dD/dtheta = C^T F = 0,      (1/2) d^2D/dtheta^2 = C^T J C

(J the tridiagonal Jacobian above) by Newton on the 2 x 2 (or, with the offset fixed,
1 x 1) system, backtracking on the MSE.

Both report through ``info = [iterations, residual, newton steps, status]`` with the
status codes of :mod:`lloydmax._kernels.cells`.

The start is the Panter-Dite compander guess of :mod:`lloydmax._kernels.start`.
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
    centroid_residual,
    fill_cells_mirrored,
    fill_pdf,
    fill_thresholds,
)

_FLOOR_START = 1e-8  # corrections below this are in Newton's quadratic range
_HALVINGS = 8  # backtracking steps before a Lloyd step (Armijo on sum G^2 rarely needs 1)


@jit
def _is_valid(levels, thresholds):
    n = levels.shape[0]
    for i in range(n - 1):
        if not (levels[i] < levels[i + 1]):
            return False
    # explicit loops: numba cannot compile all() over a generator (ruff's SIM110)
    for j in range(thresholds.shape[0] - 1):  # noqa: SIM110
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
def _jacobian(levels, level_pinned, thr_pinned, thresholds, p_thr, mass, lower, diag,
              upper):
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
            g = -(levels[i] - t) * p_thr[i - 1] * 0.5
            d += g
            lower[i] = g
        if i < n - 1 and not thr_pinned[i]:
            t = thresholds[i]
            g = (levels[i] - t) * p_thr[i] * 0.5
            d += g
            upper[i] = g
        diag[i] = d


@jit
def _centroid_jacobian(level_pinned, thr_pinned, thresholds, p_thr, mass, mean, lower, diag,
                       upper):
    """Tridiagonal Jacobian of G_i = q_i - c_i (c_i the centroid of cell i), the
    system whose merit sum G_i^2 the line search measures::

        dG_i/dq_{i-1} = -(c_i - t_i) p(t_i) / (2 M0_i)
        dG_i/dq_{i+1} = (c_i - t_{i+1}) p(t_{i+1}) / (2 M0_i)
        dG_i/dq_i     = 1 + dG_i/dq_{i-1} + dG_i/dq_{i+1}

    A pinned threshold contributes nothing, nor does one on an integrable singular
    point (p = inf there: by symmetry such a threshold does not move)."""
    n = mass.shape[0]
    for i in range(n):
        lower[i] = 0.0
        upper[i] = 0.0
        diag[i] = 1.0
        if level_pinned[i]:
            continue
        inv = 0.5 / mass[i]
        if i > 0 and not thr_pinned[i - 1]:
            t = thresholds[i - 1]
            pt = p_thr[i - 1]
            if math.isfinite(pt):
                lower[i] = -(mean[i] - t) * pt * inv
        if i < n - 1 and not thr_pinned[i]:
            t = thresholds[i]
            pt = p_thr[i]
            if math.isfinite(pt):
                upper[i] = (mean[i] - t) * pt * inv
        diag[i] = 1.0 + lower[i] + upper[i]


@jit
def _merit(levels, level_pinned, mean):
    s = 0.0
    for i in range(levels.shape[0]):
        if not level_pinned[i]:
            d = levels[i] - mean[i]
            s += d * d
    return s


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
                     thr_pinned, thr_value, tol, max_iter, symmetric, centre, thresholds, info,
                     cells):
    """Lloyd-Max by safeguarded Newton on the centroid conditions.

    ``levels`` holds the initial guess and receives the solution.  The Newton step
    solves J_G d = -G for G = q - centroid (:func:`_centroid_jacobian`); it is accepted
    by an Armijo test on sum G^2, halved at most ``_HALVINGS`` times, and otherwise a
    plain Lloyd step (q <- centroids) is taken, which always keeps the levels sorted.

    info receives [iterations, centroid residual, newton steps, status] and, when it has
    a fifth entry, the number of passes over the cells.  ``cells`` (3 x n) receives the
    mass, mean and variance of the returned table's cells, from the last pass, so that
    the caller's summary needs no pass of its own.
    """
    n = levels.shape[0]
    mass = cells[0]
    mean = cells[1]
    var = cells[2]
    t_var = np.empty(n)
    lower = np.empty(n)
    diag = np.empty(n)
    upper = np.empty(n)
    rhs = np.empty(n)
    step = np.empty(n)
    trial = np.empty(n)
    trial_thr = np.empty(n - 1)
    p_thr = np.empty(n - 1)
    t_mass = np.empty(n)
    t_mean = np.empty(n)

    if symmetric:
        _symmetrize(levels, centre)
    mirror = symmetric and centre == 0.0  # exactly antisymmetric thresholds: half the cells
    fill_thresholds(levels, thr_pinned, thr_value, thresholds)
    fill_cells_mirrored(kind, params, tab_x, tab_p, pm_loc, pm_w, thresholds, mirror, mass,
                        mean, var)
    res = centroid_residual(levels, level_pinned, mass, mean)
    passes = 1
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
        # Newton on G = q - centroid with G's own Jacobian, so that the step is a descent
        # direction of the merit sum G^2 that the line search measures (Armijo); a
        # step that is still refused after _HALVINGS halvings gives way to a Lloyd step.
        # The built-in densities keep the original scheme (F's Jacobian scaled by rows,
        # acceptance on max|G|, up to 40 halvings), so that their tables stay identical
        # to the last bit: the matched merit moves their 12-16-bit outermost levels by up
        # to 1e-9, within the tolerance but not bit for bit.
        matched = True
        fill_pdf(kind, params, tab_x, tab_p, thresholds, p_thr)
        if matched:
            _centroid_jacobian(level_pinned, thr_pinned, thresholds, p_thr, mass, mean,
                               lower, diag, upper)
        else:
            _jacobian(levels, level_pinned, thr_pinned, thresholds, p_thr, mass, lower,
                      diag, upper)
        for i in range(n):
            if level_pinned[i]:
                rhs[i] = 0.0
                continue
            if not matched:
                inv = 1.0 / mass[i]
                diag[i] *= inv
                lower[i] *= inv
                upper[i] *= inv
            rhs[i] = mean[i] - levels[i]
        merit = _merit(levels, level_pinned, mean)
        accepted = False
        if _tridiag_solve(lower, diag, upper, rhs, step):
            lam = 1.0
            for _ in range(_HALVINGS if matched else 40):
                passes += 1
                for i in range(n):
                    trial[i] = levels[i] + lam * step[i]
                if symmetric:
                    _symmetrize(trial, centre)
                fill_thresholds(trial, thr_pinned, thr_value, trial_thr)
                if _is_valid(trial, trial_thr):
                    fill_cells_mirrored(kind, params, tab_x, tab_p, pm_loc, pm_w,
                                        trial_thr, mirror, t_mass, t_mean, t_var)
                    m = _merit(trial, level_pinned, t_mean)
                    r = centroid_residual(trial, level_pinned, t_mass, t_mean)
                    if (r < res) if not matched else (
                            m <= (1.0 - 1e-4 * lam) * merit or (r < res and m < merit)):
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
            passes += 1
            fill_cells_mirrored(kind, params, tab_x, tab_p, pm_loc, pm_w, trial_thr, mirror,
                                t_mass, t_mean, t_var)
            r = centroid_residual(trial, level_pinned, t_mass, t_mean)
        for i in range(n):
            levels[i] = trial[i]
            mass[i] = t_mass[i]
            mean[i] = t_mean[i]
            var[i] = t_var[i]
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
    if info.shape[0] > 4:
        info[4] = passes


# --------------------------------------------------------------------------------------
# uniform quantizer: levels affine in (offset, step)


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
                  levels, thresholds, info, cells, mirror=False):
    """MSE-optimal uniform quantizer q_i = coef_off[i]*offset + coef_step[i]*step.

    theta = [offset, step] holds the start and receives the optimum; the offset moves
    only when ``free_offset``.  Newton on the stationarity conditions
    sum_i F_i dq_i/dtheta = 0 with Hessian C^T J C (J the tridiagonal Jacobian of the
    centroid conditions, C = dq/dtheta), backtracking on the MSE.

    info receives [iterations, relative size of the last Newton correction
    max|d theta| / step, 1 when it stopped at the rounding floor (a correction of at
    most _FLOOR_START that Newton could not shrink tenfold) else 0, status] and, when
    it has a fifth entry, the number of passes over the cells.  ``cells`` (3 x n)
    receives the mass, mean and variance of the returned grid's cells.
    """
    n = levels.shape[0]
    mass = cells[0]
    mean = cells[1]
    var = cells[2]
    lower = np.empty(n)
    diag = np.empty(n)
    upper = np.empty(n)
    no_pin = np.zeros(n, dtype=np.bool_)
    p_thr = np.empty(n - 1)
    trial = np.empty(2)

    # ``mirror``: a density symmetric about 0 with the grid centred on 0 (the offset
    # fixed at 0): levels (k - (n-1)/2) step are exactly antisymmetric, so are the
    # thresholds, and only half the cells are integrated
    mirror = mirror and not free_offset and theta[0] == 0.0
    _uniform_levels(theta, coef_off, coef_step, levels)
    fill_thresholds(levels, thr_pinned, thr_value, thresholds)
    fill_cells_mirrored(kind, params, tab_x, tab_p, pm_loc, pm_w, thresholds, mirror, mass,
                        mean, var)
    mse = _mse_from_cells(levels, mass, mean, var)
    passes = 1
    it = 0
    status = OK
    corr = np.inf
    best = np.inf
    since_best = 0
    small = 0
    prev = np.inf
    floor = 0
    while True:
        # gradient (halved) and Hessian (halved) in theta
        fill_pdf(kind, params, tab_x, tab_p, thresholds, p_thr)
        _jacobian(levels, no_pin, thr_pinned, thresholds, p_thr, mass, lower, diag, upper)
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
        if corr > tol and prev <= _FLOOR_START and corr > 0.1 * prev:
            # Newton contracts quadratically from here: a correction that does not
            # shrink tenfold is rounding noise of the cell sums (1e-12 to 1e-11 of the
            # step at 2^14-2^16 levels), not a distance to the optimum
            floor = 1
            break
        prev = corr
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
                passes += 1
                _uniform_levels(trial, coef_off, coef_step, levels)
                fill_thresholds(levels, thr_pinned, thr_value, thresholds)
                if _is_valid(levels, thresholds):
                    fill_cells_mirrored(kind, params, tab_x, tab_p, pm_loc, pm_w,
                                        thresholds, mirror, mass, mean, var)
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
            fill_cells_mirrored(kind, params, tab_x, tab_p, pm_loc, pm_w, thresholds, mirror,
                                mass, mean, var)
            break
        theta[0] = trial[0]
        theta[1] = trial[1]
        mse = m
    if status == OK and it >= max_iter and corr > tol:
        status = MAXITER
    info[0] = it
    info[1] = corr
    info[2] = floor
    info[3] = status
    if info.shape[0] > 4:
        info[4] = passes
