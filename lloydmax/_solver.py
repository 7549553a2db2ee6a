"""Public solver API: validate, call the kernels, wrap the result in a QuantizerTable."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _kernels as K
from ._dists import HALFWAVE, Distribution, get_distribution
from ._table import QuantizerTable
from .errors import (ConvergenceError, ConventionError, InvalidBitsError, InvalidDataError,
                     InvalidInputError)

__all__ = ["solve", "solve_data", "evaluate", "MAX_BITS", "MAX_LEVELS", "resolve_levels",
           "zero_threshold_for_sparsity"]

MAX_BITS = 16
MAX_LEVELS = 1 << MAX_BITS
DEFAULT_TOL = 1e-12
_STATUS = {K.MAXITER: "iteration limit reached", K.EMPTY_CELL: "a cell lost all its mass",
           K.STALLED: "the iteration stopped making progress"}


def _as_int(name: str, value) -> int:
    if isinstance(value, bool):
        raise InvalidBitsError(f"{name} must be a whole number, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise InvalidBitsError(f"{name} must be a whole number, got {value!r}")


def resolve_levels(bits=None, n_levels=None) -> tuple[int, int]:
    """(bits, n_levels) from either; ``bits = ceil(log2(n_levels))``.

    Raises
    ------
    InvalidBitsError
        For a bit-width outside 1..16, a level count outside 2..65536, or both given
        inconsistently.
    """
    if bits is None and n_levels is None:
        raise InvalidBitsError("give a bit-width (bits) or a level count (n_levels)")
    if bits is not None:
        b = _as_int("bits", bits)
        if not 1 <= b <= MAX_BITS:
            raise InvalidBitsError(f"bits must be between 1 and {MAX_BITS}, got {b}")
    if n_levels is not None:
        n = _as_int("levels", n_levels)
        if n < 2:
            raise InvalidBitsError(f"a quantizer needs at least 2 levels, got {n}")
        if n > MAX_LEVELS:
            raise InvalidBitsError(f"at most {MAX_LEVELS} levels ({MAX_BITS} bits) are supported, "
                                   f"got {n}")
        nb = max(1, math.ceil(math.log2(n)))
        if bits is not None and b != nb:
            raise InvalidBitsError(f"{n} levels need {nb} bits, not {b}")
        return nb, n
    return b, 1 << b


def zero_threshold_for_sparsity(sparsity: float, std: float = 1.0) -> float:
    """The dead-zone threshold eps with P(ReLU(X) <= eps) = sparsity for X ~ N(0, std^2).

    P(ReLU(X) <= eps) = Phi(eps / std), so eps = std * Phi^-1(sparsity); sparsity must lie
    in [0.5, 1) because half the mass is already at 0.
    """
    p = float(sparsity)
    if not (0.5 <= p < 1.0):
        raise ConventionError(
            f"sparsity must be in [0.5, 1): ReLU(N(0,1)) is already 50% zeros; got {sparsity!r}")
    from statistics import NormalDist

    return std * NormalDist().inv_cdf(p)


@dataclass(frozen=True)
class _Layout:
    """Which levels and thresholds a convention pins (in standardised units)."""

    convention: str
    level_pinned: np.ndarray
    thr_pinned: np.ndarray
    thr_value: np.ndarray
    zero_threshold: float | None  # standardised


def _layout(halfwave: bool, std: float, n: int, convention, zero_threshold, sparsity) -> _Layout:
    """Pins of a convention; ``std`` converts a dead-zone threshold to standard units."""
    level_pinned = np.zeros(n, dtype=np.bool_)
    thr_pinned = np.zeros(n - 1, dtype=np.bool_)
    thr_value = np.zeros(n - 1)
    if not halfwave:
        if convention not in (None, "none"):
            raise ConventionError(
                f"convention {convention!r} applies to the half-wave Gaussian only "
                f"(use dist='{HALFWAVE}' / --half-wave)")
        if zero_threshold is not None or sparsity is not None:
            raise ConventionError("a zero threshold or sparsity needs the half-wave Gaussian "
                                  "(--half-wave)")
        return _Layout("none", level_pinned, thr_pinned, thr_value, None)
    conv, eps = _halfwave_convention(convention, zero_threshold, sparsity, std)
    level_pinned[0] = True  # ReLU zeros map to exactly 0 in every convention
    zt = None
    if conv == "hwgq":
        thr_pinned[0] = True
        zt = 0.0
    elif conv == "deadzone":
        thr_pinned[0] = True
        thr_value[0] = eps
        zt = eps
    return _Layout(conv, level_pinned, thr_pinned, thr_value, zt)


def _halfwave_convention(convention, zero_threshold, sparsity, std):
    """(convention, standardised epsilon) from the three ways of saying it."""
    conv = None if convention is None else str(convention).lower()
    if conv not in (None, "hwgq", "round", "deadzone"):
        raise ConventionError(f"unknown convention {convention!r}; valid: hwgq, round, deadzone")
    if zero_threshold is not None and sparsity is not None:
        raise ConventionError("give a zero threshold or a sparsity, not both")
    eps = None
    if isinstance(zero_threshold, str) and zero_threshold.strip().lower() in ("hwgq", "round"):
        named = zero_threshold.strip().lower()
        if conv not in (None, named):
            raise ConventionError(f"zero threshold {named!r} contradicts convention {conv!r}")
        conv = named
    elif zero_threshold is not None:
        try:
            eps = float(zero_threshold)
        except (TypeError, ValueError):
            raise ConventionError(
                f"zero threshold must be hwgq, round or a number, got {zero_threshold!r}") from None
        if not (eps > 0.0 and math.isfinite(eps)):
            raise ConventionError(
                f"a dead-zone threshold must be a positive finite number, got {zero_threshold!r} "
                "(0 is the hwgq convention)")
        eps /= std
    elif sparsity is not None:
        eps = zero_threshold_for_sparsity(sparsity)
        if eps == 0.0:
            if conv == "deadzone":
                raise ConventionError("sparsity 0.5 puts the dead-zone threshold at 0: that is "
                                      "the hwgq convention")
            conv = conv or "hwgq"
    if eps is not None and eps > 0.0:
        if conv not in (None, "deadzone"):
            raise ConventionError(f"a dead-zone threshold contradicts convention {conv!r}")
        conv = "deadzone"
    if conv == "deadzone" and eps is None:
        raise ConventionError("the deadzone convention needs a zero threshold or a sparsity")
    if eps is not None and eps > 30.0:
        raise ConventionError("the dead-zone threshold is beyond 30 standard deviations: "
                              "no activation would ever be non-zero")
    return conv or "hwgq", (eps if eps is not None else 0.0)


def _guess(dist: Distribution, layout: _Layout, n: int) -> np.ndarray:
    """Panter-Dite compander start for the optimised levels."""
    lo, hi = dist.reach
    args = dist.kernel_args()[:4]
    levels = np.zeros(n)
    if dist.halfwave:
        m = n - 1
        start = layout.zero_threshold if layout.convention == "deadzone" else 0.0
        q = (np.arange(m) + 0.5) / m
        out = np.empty(m)
        K.compander_guess(*args, max(lo, start), hi, q, out)
        levels[1:] = out
        levels[0] = 0.0
        return levels
    q = (np.arange(n) + 0.5) / n
    K.compander_guess(*args, lo, hi, q, levels)
    return levels


def _check_status(info, table: QuantizerTable, what: str, tol: float, check: bool):
    status = int(info[3])
    if table.converged:
        return table
    why = _STATUS.get(status, "tolerance not met")
    msg = (f"{what} did not converge: {why} after {int(info[0])} iterations "
           f"(residual {table.residual:.3g} > tol {tol:.3g})")
    if check:
        raise ConvergenceError(msg, table)
    return table


def _finish(dist: Distribution, layout: _Layout, z_levels, z_thr, *, bits, n, kind, step_z,
            residual, iterations, converged, label=None) -> QuantizerTable:
    summary = np.empty(3)
    K.summarize(*dist.kernel_args(), z_levels, z_thr, summary)
    mse_z, power_z, entropy = summary
    s, loc = dist.scale, dist.loc
    power = _signal_power(dist, power_z)
    mse = s * s * mse_z
    return QuantizerTable(
        levels=loc + s * np.asarray(z_levels),
        thresholds=loc + s * np.asarray(z_thr),
        step=None if step_z is None else s * step_z,
        bits=bits,
        n_levels=n,
        distribution=label or dist.name,
        params=dist.params,
        convention=layout.convention,
        kind=kind,
        mse=mse,
        sqnr_db=10.0 * math.log10(power / mse) if mse > 0 else math.inf,
        entropy_bits=float(entropy),
        residual=float(residual),
        iterations=int(iterations),
        converged=bool(converged),
        scale=s,
        zero_threshold=None if layout.zero_threshold is None else s * layout.zero_threshold,
    )


def _signal_power(dist: Distribution, power_z: float) -> float:
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
          tol: float = DEFAULT_TOL, max_iter: int = 500, check: bool = True) -> QuantizerTable:
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
    check : bool
        Raise :class:`ConvergenceError` when the tolerance is not met (default).  With
        ``check=False`` the unconverged table is returned with ``converged=False``.

    Returns
    -------
    QuantizerTable
    """
    b, n = resolve_levels(bits, n_levels)
    d = get_distribution(dist, **(params or {}))
    if not (tol > 0.0):
        raise InvalidInputError(f"tol must be positive, got {tol!r}")
    layout = _layout(d.halfwave, d.scale, n, convention, zero_threshold, sparsity)
    args = d.kernel_args()
    levels = _guess(d, layout, n)
    coef_off, coef_step, free_offset = _uniform_coefficients(d, n)
    if uniform and not free_offset:
        return _solve_uniform(d, layout, levels, b, n, tol, max_iter, check)
    thr = np.empty(n - 1)
    info = np.zeros(4)
    K.solve_nonuniform(*args, levels, layout.level_pinned, layout.thr_pinned, layout.thr_value,
                       tol, int(max_iter), d.symmetric, _centre(d), thr, info)
    if uniform:
        # an asymmetric density: the uniform grid starts from the Lloyd-Max levels, whose
        # extent keeps every level on the support (a compander start can slide into a
        # stationary point with half the levels in an empty region)
        return _solve_uniform(d, layout, levels, b, n, tol, max_iter, check)
    mass = np.empty(n)
    mean = np.empty(n)
    K.cell_table(*args, thr, mass, mean)
    residual = max(K.centroid_residual(levels, layout.level_pinned, mass, mean),
                   K.midpoint_residual(levels, layout.thr_pinned, thr))
    table = _finish(d, layout, levels, thr, bits=b, n=n, kind="nonuniform", step_z=None,
                    residual=residual, iterations=info[0],
                    converged=residual <= tol and int(info[3]) == K.OK)
    return _check_status(info, table, "Lloyd-Max solve", tol, check)


def _centre(d: Distribution) -> float:
    """Centre of symmetry in standardised units (0, or 1/2 for the unit uniform)."""
    return 0.5 if d.kind == K.UNIFORM else 0.0


def _uniform_coefficients(d: Distribution, n: int):
    k = np.arange(n, dtype=np.float64)
    if d.halfwave:
        return np.zeros(n), k, False
    if d.symmetric:
        return np.ones(n), k - 0.5 * (n - 1), False
    return np.ones(n), k, True  # offset is the lowest level


def _solve_uniform(d, layout, start_levels, b, n, tol, max_iter, check):
    """Start from the compander guess's mean spacing: Newton on one or two parameters
    needs no better start, and skipping the non-uniform solve halves the time."""
    coef_off, coef_step, free_offset = _uniform_coefficients(d, n)
    if d.halfwave:
        theta = np.array([0.0, start_levels[-1] / (n - 1)])
    else:
        first = _centre(d) if d.symmetric else float(start_levels[0])
        theta = np.array([first, (start_levels[-1] - start_levels[0]) / (n - 1)])
    levels = np.empty(n)
    thr = np.empty(n - 1)
    info = np.zeros(4)
    K.solve_uniform(*d.kernel_args(), theta, free_offset, coef_off, coef_step, layout.thr_pinned,
                    layout.thr_value, tol, int(max_iter), levels, thr, info)
    converged = info[1] <= tol and int(info[3]) == K.OK
    if (not converged and layout.convention == "deadzone" and n > 2
            and thr[1] <= layout.zero_threshold * (1.0 + 1e-6)):
        # The search pressed against 1.5*step = eps: the best grid would leave level 1
        # inside the dead zone (an empty cell), which a table with increasing thresholds
        # cannot hold.  Say so instead of reporting a convergence failure.
        eps = d.scale * layout.zero_threshold
        raise ConventionError(
            f"a dead zone at eps={eps:g} swallows the first level of the {b}-bit uniform grid "
            f"(its best step puts 1.5*step below eps); use fewer bits, a smaller eps, or a "
            f"non-uniform table")
    table = _finish(d, layout, levels, thr, bits=b, n=n, kind="uniform", step_z=theta[1],
                    residual=info[1], iterations=info[0], converged=converged)
    return _check_status(info, table, "uniform-step solve", tol, check)


# --------------------------------------------------------------------------- data


def _clean_data(x, weights):
    arr = np.asarray(x, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise InvalidDataError("data is empty")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InvalidDataError(
            f"data holds {int(np.isnan(arr).sum())} NaN and {int(np.isinf(arr).sum())} Inf "
            "values; remove them first")
    if weights is None:
        w = np.ones_like(arr)
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape != arr.shape:
            raise InvalidDataError(f"weights have {w.size} entries but data has {arr.size}")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise InvalidDataError("weights must be finite and non-negative")
        keep = w > 0
        arr, w = arr[keep], w[keep]
        if arr.size == 0:
            raise InvalidDataError("every weight is zero")
    order = np.argsort(arr, kind="stable")
    return arr[order], w[order]


@dataclass(frozen=True)
class Points:
    """Sorted distinct data values with their weights, standardised for the kernels:
    ``z = (xs - shift) / scale``."""

    xs: np.ndarray
    w: np.ndarray
    z: np.ndarray
    count: int  # values before ties were merged
    relu: bool
    shift: float
    scale: float


def standardized_points(x, weights, n: int, convention, zero_threshold) -> Points:
    """Validate data for an ``n``-level fit and standardise it.

    Ties are merged into one weighted point (no cell boundary can split equal values).
    ReLU data (any half-wave convention) keep 0 at 0; other data are shifted by their
    weighted mean.  The scale is the largest deviation, not the RMS: squaring tiny data
    (1e-200) underflows to 0.

    Raises
    ------
    InvalidDataError
        Empty, NaN/Inf, constant data, fewer distinct values than levels, or negative
        values under a half-wave convention.
    """
    xs, w = _clean_data(x, weights)
    count = int(xs.size)
    starts = np.flatnonzero(np.concatenate([[True], np.diff(xs) > 0]))
    xs, w = xs[starts], np.add.reduceat(w, starts)
    if xs.size == 1:
        raise InvalidDataError(f"data is constant (every value is {xs[0]:g}): nothing to quantize")
    if xs.size < n:
        raise InvalidDataError(f"data has {xs.size} distinct values, fewer than the {n} levels asked")
    relu = convention is not None or zero_threshold is not None
    if relu and xs[0] < 0:
        raise InvalidDataError("half-wave conventions need non-negative (ReLU) data")
    shift = 0.0 if relu else float(np.average(xs, weights=w))
    scale = float(np.max(np.abs(xs - shift)))
    return Points(xs, w, (xs - shift) / scale, count, relu, shift, scale)


def solve_data(x, bits=None, *, n_levels=None, weights=None, uniform: bool = False,
               convention: str | None = None, zero_threshold=None, max_iter: int = 10000,
               check: bool = True) -> QuantizerTable:
    """Quantizer fitted to empirical data (weighted points) by plain Lloyd iteration.

    Lloyd stops at an exact fixed point (no point changes cell), so the centroid and
    midpoint conditions hold to rounding; it is a *local* optimum.  Uniform tables fit
    (offset, step) by least squares with the cells fixed, repeated to a fixed point.

    With ``convention`` (hwgq, round or deadzone) the data are treated as ReLU outputs:
    level 0 is pinned at 0 and must be the smallest value.

    Raises
    ------
    InvalidDataError
        For empty data, NaN or Inf, constant data, or fewer distinct values than levels.
    """
    b, n = resolve_levels(bits, n_levels)
    pts = standardized_points(x, weights, n, convention, zero_threshold)
    w, z, relu, shift, scale = pts.w, pts.z, pts.relu, pts.shift, pts.scale
    pw = np.concatenate([[0.0], np.cumsum(w)])
    pwx = np.concatenate([[0.0], np.cumsum(w * z)])
    pwxx = np.concatenate([[0.0], np.cumsum(w * z * z)])

    layout = _layout(relu, scale, n, convention, zero_threshold, None)
    levels = np.empty(n)
    cum = pw[1:] / pw[-1]
    if relu:
        pos = z[z > (layout.zero_threshold or 0.0)]
        m = n - 1
        levels[0] = 0.0
        levels[1:] = np.quantile(pos, (np.arange(m) + 0.5) / m) if pos.size else np.linspace(0, 1, m + 1)[1:]
    else:
        levels[:] = z[np.searchsorted(cum, (np.arange(n) + 0.5) / n).clip(0, z.size - 1)]
    levels = _spread_ties(levels, z)
    thr = np.empty(n - 1)
    info = np.zeros(4)
    K.solve_data_lloyd(z, pw, pwx, pwxx, levels, layout.level_pinned, layout.thr_pinned,
                       layout.thr_value, int(max_iter), thr, info)
    kind = "nonuniform"
    step = None
    residual = info[1]
    if uniform:
        coef_off = np.zeros(n) if relu else np.ones(n)
        coef_step = np.arange(n, dtype=np.float64) - (0.0 if relu else 0.5 * (n - 1))
        theta = np.array([0.0 if relu else float(np.mean(levels)),
                          (levels[-1] - levels[0]) / (n - 1)])
        uinfo = np.zeros(4)
        K.solve_data_uniform(z, pw, pwx, pwxx, theta, not relu, coef_off, coef_step,
                             layout.thr_pinned, layout.thr_value, int(max_iter), levels, thr,
                             uinfo)
        info = uinfo
        kind = "uniform"
        step = theta[1]
        residual = 0.0 if int(uinfo[3]) == K.OK else math.inf
        if not np.all(np.diff(thr) > 0):
            # the least-squares grid put the first level(s) inside the dead zone
            raise ConventionError(
                f"a dead zone at eps={scale * layout.zero_threshold:g} swallows the first level "
                f"of the {b}-bit uniform grid fitted to this data; use fewer bits, a smaller "
                "eps, or a non-uniform table")
    out = np.empty(3)
    K.data_summary(pw, pwx, pwxx, z, levels, thr, out)
    mse = scale * scale * out[0]
    # SQNR in standardised units, so that huge data (1e200) does not overflow the ratio
    power_z = float(np.average((z + shift / scale) ** 2, weights=w))
    table = QuantizerTable(
        levels=shift + scale * levels,
        thresholds=shift + scale * thr,
        step=None if step is None else scale * step,
        bits=b,
        n_levels=n,
        distribution="empirical",
        params={"count": pts.count, "weight": float(pw[-1])},
        convention=layout.convention,
        kind=kind,
        mse=mse,
        sqnr_db=10.0 * math.log10(power_z / out[0]) if out[0] > 0 else math.inf,
        entropy_bits=float(out[2]),
        residual=float(residual),
        iterations=int(info[0]),
        converged=int(info[3]) == K.OK,
        zero_threshold=None if layout.zero_threshold is None else scale * layout.zero_threshold,
    )
    return _check_status(info, table, "Lloyd on data", 0.0, check)


def _spread_ties(levels, z):
    """Make starting levels strictly increasing (quantiles of tied data coincide)."""
    out = levels.copy()
    n = out.size
    uniq = np.unique(z)
    for i in range(1, n):
        if out[i] <= out[i - 1]:
            j = min(np.searchsorted(uniq, out[i - 1], side="right"), uniq.size - 1)
            out[i] = uniq[j] if uniq[j] > out[i - 1] else out[i - 1] + 1e-9 * (abs(out[i - 1]) + 1)
    return out


def evaluate(table: QuantizerTable, dist=None, params=None):
    """MSE of an arbitrary table under a distribution (default: the table's own).

    Returns a dict with ``mse``, ``sqnr_db``, ``entropy_bits``, and the largest relative
    violations ``centroid_residual`` and ``midpoint_residual`` (relative to the span).
    """
    d = get_distribution(dist or table.distribution,
                         **(params if params is not None else (table.params if dist is None else {})))
    z_levels = (np.asarray(table.levels) - d.loc) / d.scale
    z_thr = (np.asarray(table.thresholds) - d.loc) / d.scale
    n = z_levels.size
    summary = np.empty(3)
    K.summarize(*d.kernel_args(), z_levels, z_thr, summary)
    mass = np.empty(n)
    mean = np.empty(n)
    K.cell_table(*d.kernel_args(), z_thr, mass, mean)
    pinned = np.zeros(n, dtype=np.bool_)
    if d.halfwave and z_levels[0] == 0.0:
        pinned[0] = True
    tpin = np.zeros(n - 1, dtype=np.bool_)
    if d.halfwave and table.convention in ("hwgq", "deadzone"):
        tpin[0] = True
    mse = d.scale ** 2 * summary[0]
    power = _signal_power(d, summary[1])
    return {
        "mse": float(mse),
        "sqnr_db": 10.0 * math.log10(power / mse) if mse > 0 else math.inf,
        "entropy_bits": float(summary[2]),
        "centroid_residual": float(K.centroid_residual(z_levels, pinned, mass, mean)),
        "midpoint_residual": float(K.midpoint_residual(z_levels, tpin, z_thr)),
    }
