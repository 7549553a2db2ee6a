"""Public solver API for densities: validate, call the kernels, wrap the result in a
QuantizerTable.  The data fits are in :mod:`lloydmax._data` and :mod:`lloydmax._dp`; the
conventions' rules in :mod:`lloydmax._conventions`."""
from __future__ import annotations

import math

import numpy as np

from . import _kernels as K
from . import _pins as P
from ._conventions import (
    MAX_BITS,
    MAX_LEVELS,
    Layout,
    centre,
    evaluation_pins,
    layout,
    resolve_levels,
)
from ._dists import Distribution, get_distribution
from ._table import QuantizerTable, build_table
from .errors import ConventionError, ConvergenceError, InvalidInputError

__all__ = ["solve", "evaluate", "MAX_BITS", "MAX_LEVELS", "resolve_levels", "check_status",
           "signal_power"]

DEFAULT_TOL = 1e-12
# a uniform step whose Newton correction stalls at float64's rounding floor (the sums
# over 2^14-2^16 cells) is accepted when that floor is at most this, relative to the step
FLOOR_TOL = 1e-10
_STATUS = {K.MAXITER: "iteration limit reached", K.EMPTY_CELL: "a cell lost all its mass",
           K.STALLED: "the iteration stopped making progress"}


def _guess(dist: Distribution, lay: Layout, n: int) -> np.ndarray:
    """Panter-Dite compander start for the optimised levels."""
    lo, hi = dist.reach
    args = dist.kernel_args()[:4]
    levels = np.full(n, 0.0)  # np.full: see _conventions.layout
    if dist.halfwave:
        m = n - 1
        start = lay.zero_threshold if lay.convention == "deadzone" else 0.0
        q = (np.arange(m) + 0.5) / m
        out = np.empty(m)
        K.compander_guess(*args, max(lo, start), hi, q, out, True)
        levels[1:] = out
        levels[0] = 0.0
        return levels
    q = (np.arange(n) + 0.5) / n
    K.compander_guess(*args, lo, hi, q, levels, True)
    return levels


def check_status(info, table: QuantizerTable, what: str, tol: float, strict: bool):
    """Return ``table``; when it did not converge, raise :class:`ConvergenceError` (with
    ``strict``) naming why, from the kernel's status word ``info[3]``."""
    status = int(info[3])
    if table.converged:
        return table
    why = _STATUS.get(status, "tolerance not met")
    msg = (f"{what} did not converge: {why} after {int(info[0])} iterations "
           f"(residual {table.residual:.3g} > tol {tol:.3g})")
    if strict:
        raise ConvergenceError(msg, table)
    return table


def _finish(dist: Distribution, lay: Layout, z_levels, z_thr, *, bits, n, kind, step_z,
            residual, iterations, converged, cells=None) -> QuantizerTable:
    """Wrap a solution; ``cells`` (3 x n: mass, mean, variance) are the kernel's own
    from its last pass, so that the summary costs no further pass."""
    summary = np.empty(3)
    if cells is None:
        K.summarize(*dist.kernel_args(), z_levels, z_thr, summary)
    else:
        K.summarize_cells(z_levels, cells[0], cells[1], cells[2], summary)
    mse_z, power_z, entropy = summary
    s = dist.scale
    with np.errstate(over="ignore", invalid="ignore"):  # build_table refuses a huge scale
        power_user = signal_power(dist, power_z) / (s * s)
    return build_table(
        z_levels, z_thr, shift=dist.loc, scale=s, table_scale=s, step_z=step_z, bits=bits,
        n_levels=n, kind=kind, distribution=dist.name, params=dist.params,
        convention=lay.convention, mse_z=mse_z, power_z=power_user,
        entropy_bits=entropy, residual=residual, iterations=iterations, converged=converged,
        zero_threshold_z=lay.zero_threshold)


def signal_power(dist: Distribution, power_z: float) -> float:
    """E[X^2] in user units from E[Z^2] of the standardised shape, X = loc + scale Z:
    loc^2 + 2 loc scale E[Z] + scale^2 E[Z^2] (E[Z] is needed only when loc != 0)."""
    s, loc = dist.scale, dist.loc
    power = s * s * power_z
    if loc:
        mass = np.empty(1)
        mean = np.empty(1)
        K.cell_table(*dist.kernel_args(), np.empty(0), mass, mean)  # one cell: the whole line
        power += loc * loc + 2.0 * loc * s * float(mean[0])
    return power


def solve(bits=None, *, n_levels=None, dist="gaussian", params=None, uniform: bool = False,
          convention: str | None = None, zero_threshold=None, sparsity=None,
          tol: float = DEFAULT_TOL, max_iter: int = 500, strict: bool = True,
          pin_levels=None) -> QuantizerTable:
    """MSE-optimal scalar quantizer for a distribution.

    Non-uniform tables satisfy the Lloyd-Max conditions (Max 1960; Lloyd 1982)::

        t_i = (q_{i-1} + q_i) / 2                    (midpoint condition)
        q_i = E[X | t_i < X <= t_{i+1}]              (centroid condition)

    solved by Newton's method on the centroid conditions (tridiagonal Jacobian),
    safeguarded by Lloyd steps.  Uniform tables ``q_i = offset + k_i * step`` minimise the
    MSE over (offset, step) by Newton's method; the offset is fixed for symmetric and
    half-wave distributions.

    Parameters
    ----------
    bits : int, optional
        Bit-width 1..16: ``2**bits`` levels.
    n_levels : int, optional
        Any level count 2..65536 instead of ``bits`` (e.g. 3 for ternary).
    dist : str or Distribution
        Registry name: ``gaussian``, ``halfwave-gaussian``, ``half-normal``, ``laplace``,
        ``uniform``, or any continuous scipy.stats distribution.
    params : dict, optional
        Distribution parameters (e.g. ``{"std": 2.0}``).
    uniform : bool
        Solve for the optimal uniform step instead of free levels.
    convention : {"hwgq", "round", "deadzone"}, optional
        Half-wave only: where 0 hands over to the first positive level (default hwgq).
    zero_threshold : "hwgq", "round" or float, optional
        Half-wave only: a number is the dead-zone threshold eps (in input units).
    sparsity : float, optional
        Half-wave only: set eps so that P(x <= eps) equals this (in [0.5, 1)).
    tol : float
        Tolerance on the relative residual (see :class:`QuantizerTable`).
    max_iter : int
        Iteration limit.
    strict : bool
        Raise :class:`ConvergenceError` when the tolerance is not met (default).  With
        ``strict=False`` the unconverged table is returned with ``converged=False``.
        (Called ``check`` before 0.2.)
    pin_levels : sequence of float, optional
        Levels held at these values (e.g. ``[-1, 0, 1]``, in input units, inside the
        support); the free levels meet the centroid conditions and every threshold is a
        midpoint.  Non-uniform tables only; see :mod:`lloydmax._pins`.

    Returns
    -------
    QuantizerTable
    """
    b, n = resolve_levels(bits, n_levels)
    d = get_distribution(dist, **(params or {}))
    if not (tol > 0.0):
        raise InvalidInputError(f"tol must be positive, got {tol!r}")
    lay = layout(d.halfwave, d.scale, n, convention, zero_threshold, sparsity)
    if pin_levels is not None:
        return _solve_pinned(d, lay, b, n, pin_levels, uniform, tol, max_iter, strict)
    args = d.kernel_args()
    levels = _guess(d, lay, n)
    free_offset = _uniform_coefficients(d, n)[2]
    if uniform and not free_offset:
        return _solve_uniform(d, lay, levels, b, n, tol, max_iter, strict)
    thr = np.empty(n - 1)
    info = np.zeros(5)  # [iterations, centroid residual, newton steps, status, passes]
    cells = np.empty((3, n))  # the returned table's cells: mass, mean, variance
    K.solve_nonuniform(*args, levels, lay.level_pinned, lay.thr_pinned, lay.thr_value,
                       tol, int(max_iter), d.symmetric, _centre(d), thr, info, cells)
    if uniform:
        # an asymmetric density: the uniform grid starts from the Lloyd-Max levels, whose
        # extent keeps every level on the support (a compander start can slide into a
        # stationary point with half the levels in an empty region)
        return _solve_uniform(d, lay, levels, b, n, tol, max_iter, strict)
    # info[1] and ``cells`` come from the kernel's last pass, at the returned levels, so
    # no pass over the cells is repeated here (nor in the certificate or the summary)
    residual = max(float(info[1]), K.midpoint_residual(levels, lay.thr_pinned, thr))
    converged = residual <= tol and int(info[3]) == K.OK
    refused = _certify(d, levels, thr, lay.level_pinned, cells[0]) if converged else None
    table = _finish(d, lay, levels, thr, bits=b, n=n, kind="nonuniform", step_z=None,
                    residual=residual, iterations=info[0], converged=converged and not refused,
                    cells=cells)
    if refused:
        return _refuse(table, refused, strict)
    return check_status(info, table, "Lloyd-Max solve", tol, strict)


def _certify(d: Distribution, z_levels, z_thr, level_pinned, mass=None) -> str | None:
    """The certificate of a table on a tabulated density (None: it passed, or the
    density is built in and needs none); see :mod:`lloydmax._certificate`."""
    if d.kind != K.TAB or d.frozen is None:
        return None
    from ._certificate import certify

    return certify(d, z_levels, z_thr, level_pinned, mass)


def _refuse(table: QuantizerTable, why: str, strict: bool) -> QuantizerTable:
    msg = (f"the table on the tabulated {table.distribution} density failed its "
           f"certificate against scipy.integrate.quad: {why}")
    if strict:
        raise ConvergenceError(msg, table)
    return table


def _solve_pinned(d, lay, b, n, pin_levels, uniform, tol, max_iter, strict):
    """Newton with the pins held, for each allocation of the free levels to the gaps
    between pins that :func:`lloydmax._pins.search_allocations` tries."""
    if uniform:
        raise InvalidInputError("pin_levels needs a non-uniform table (uniform=False)")
    support = P.support_of(d)
    pins = P.pinned_values(pin_levels, n, loc=d.loc, scale=d.scale, support=support,
                           where=d.describe(), halfwave=d.halfwave)
    args = d.kernel_args()
    compander = _guess(d, lay, n)

    def run(counts):
        levels, pinned = P.pinned_layout_levels(counts, pins, compander)
        thr = np.empty(n - 1)
        info = np.zeros(5)
        cells = np.empty((3, n))
        K.solve_nonuniform(*args, levels, pinned, lay.thr_pinned, lay.thr_value, tol,
                           int(max_iter), False, _centre(d), thr, info, cells)
        residual = max(K.centroid_residual(levels, pinned, cells[0], cells[1]),
                       K.midpoint_residual(levels, lay.thr_pinned, thr))
        summary = np.empty(3)
        K.summarize_cells(levels, cells[0], cells[1], cells[2], summary)
        ok = (residual <= tol and int(info[3]) == K.OK and bool(np.all(np.diff(levels) > 0)))
        return (summary[0] if ok else math.inf), (levels, thr, pinned, residual, info, ok)

    _, (levels, thr, pinned, residual, info, ok), _ = P.search_allocations(
        run, P.pinned_start(compander, pins))
    table = _finish(d, lay, levels, thr, bits=b, n=n, kind="nonuniform", step_z=None,
                    residual=residual, iterations=info[0], converged=ok)
    return check_status(info, P.exact_pins(table, pinned, pin_levels), "pinned Lloyd-Max solve",
                        tol, strict)


def _centre(d: Distribution) -> float:
    return centre(d.kind == K.UNIFORM)


def _uniform_coefficients(d: Distribution, n: int):
    k = np.arange(n, dtype=np.float64)
    if d.halfwave:
        return np.full(n, 0.0), k, False
    if d.symmetric:
        return np.ones(n), k - 0.5 * (n - 1), False
    return np.ones(n), k, True  # offset is the lowest level


_MODEL_START_LEVELS = 256


def _high_resolution_step(d: Distribution, n: int, guess: float) -> float:
    """Start for the uniform step of a density symmetric about 0 at many levels: the
    minimiser of the high-resolution model of the MSE,

        D(step) = step^2 / 12 * P(|X| <= L) + 2 E[(X - q_top)^2; X > L],
        L = (n/2 - 1) step,  q_top = (n - 1) step / 2,

    granular noise inside the outer thresholds (exact up to O(step^4)) plus the exact
    overload error of the two outer cells (one cell-moment call).  Golden-section search
    in log(step), 60 evaluations: Newton then starts within about 1e-4 of the optimum
    and needs 2-3 iterations instead of 8 (the compander spacing is 20-40 % too wide
    for light tails, hundreds of times for heavy ones, and the MSE is far from
    quadratic there)."""
    args = d.kernel_args()

    def model(step):
        top = 0.5 * (n - 2) * step
        q_top = 0.5 * (n - 1) * step
        m0, c, v = K.cell_moments(*args, top, math.inf)
        return step * step / 12.0 * (1.0 - 2.0 * m0) + 2.0 * m0 * (v + (c - q_top) ** 2)

    # golden section on log(step) over [1e-6, 2] x the compander spacing (which for a
    # heavy tail is hundreds of times too wide: p^(1/3) has a heavier tail still)
    lo, hi = math.log(guess) + math.log(1e-6), math.log(guess) + math.log(2.0)
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    f1, f2 = model(math.exp(x1)), model(math.exp(x2))
    for _ in range(60):
        if f1 <= f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - ratio * (hi - lo)
            f1 = model(math.exp(x1))
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + ratio * (hi - lo)
            f2 = model(math.exp(x2))
    best = math.exp(0.5 * (lo + hi))
    return best if math.isfinite(model(best)) else guess


def _solve_uniform(d, lay, start_levels, b, n, tol, max_iter, strict):
    """Start from the compander guess's mean spacing: Newton on one or two parameters
    needs no better start, and skipping the non-uniform solve halves the time."""
    coef_off, coef_step, free_offset = _uniform_coefficients(d, n)
    if d.halfwave:
        theta = np.array([0.0, start_levels[-1] / (n - 1)])
    else:
        first = _centre(d) if d.symmetric else float(start_levels[0])
        theta = np.array([first, (start_levels[-1] - start_levels[0]) / (n - 1)])
        if d.symmetric and _centre(d) == 0.0 and n >= _MODEL_START_LEVELS:
            theta[1] = _high_resolution_step(d, n, theta[1])
    levels = np.empty(n)
    thr = np.empty(n - 1)
    info = np.zeros(5)  # [iterations, correction, 0, status, passes]
    cells = np.empty((3, n))
    K.solve_uniform(*d.kernel_args(), theta, free_offset, coef_off, coef_step, lay.thr_pinned,
                    lay.thr_value, tol, int(max_iter), levels, thr, info, cells,
                    d.symmetric and _centre(d) == 0.0)
    # converged: the correction is within tol, or Newton stopped at float64's rounding
    # floor (info[2]) with a correction still within FLOOR_TOL of the step
    converged = int(info[3]) == K.OK and (
        info[1] <= tol or (info[2] == 1.0 and info[1] <= max(tol, FLOOR_TOL)))
    if (not converged and lay.convention == "deadzone" and n > 2
            and thr[1] <= lay.zero_threshold * (1.0 + 1e-6)):
        # The search pressed against 1.5*step = eps: the best grid would leave level 1
        # inside the dead zone (an empty cell), which a table with increasing thresholds
        # cannot hold.  Say so instead of reporting a convergence failure.
        eps = d.scale * lay.zero_threshold
        raise ConventionError(
            f"a dead zone at eps={eps:g} swallows the first level of the {b}-bit uniform grid "
            f"(its best step puts 1.5*step below eps); use fewer bits, a smaller eps, or a "
            f"non-uniform table")
    # a uniform grid meets no centroid condition: its certificate checks the cell masses
    refused = (_certify(d, levels, thr, np.full(n, True), cells[0]) if converged else None)
    table = _finish(d, lay, levels, thr, bits=b, n=n, kind="uniform", step_z=theta[1],
                    residual=info[1], iterations=info[0], converged=converged and not refused,
                    cells=cells)
    if refused:
        return _refuse(table, refused, strict)
    return check_status(info, table, "uniform-step solve", tol, strict)


def evaluate(table: QuantizerTable, dist=None, params=None):
    """MSE of an arbitrary table under a distribution (default: the table's own).

    Returns a dict with ``mse``, ``sqnr_db``, ``entropy_bits``, and the largest relative
    violations ``centroid_residual`` and ``midpoint_residual`` (relative to the span).
    """
    if params is None:
        params = table.params if dist is None else {}
    d = get_distribution(dist or table.distribution, **params)
    z_levels = (np.asarray(table.levels) - d.loc) / d.scale
    z_thr = (np.asarray(table.thresholds) - d.loc) / d.scale
    n = z_levels.size
    summary = np.empty(3)
    K.summarize(*d.kernel_args(), z_levels, z_thr, summary)
    mass = np.empty(n)
    mean = np.empty(n)
    K.cell_table(*d.kernel_args(), z_thr, mass, mean)
    pinned, tpin = evaluation_pins(d.halfwave, z_levels[0], table.convention, n)
    mse = d.scale ** 2 * summary[0]
    power = signal_power(d, summary[1])
    return {
        "mse": float(mse),
        "sqnr_db": 10.0 * math.log10(power / mse) if mse > 0 else math.inf,
        "entropy_bits": float(summary[2]),
        "centroid_residual": float(K.centroid_residual(z_levels, pinned, mass, mean)),
        "midpoint_residual": float(K.midpoint_residual(z_levels, tpin, z_thr)),
    }
