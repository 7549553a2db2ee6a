"""Quantizers fitted to empirical data: input preparation, Lloyd iteration and the one
pointwise metric that every data fit (Lloyd here, the exact DP in :mod:`lloydmax._dp`)
reports."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _kernels as K
from ._conventions import Layout, layout, resolve_levels
from ._inputs import as_float_array
from ._solver import check_status
from ._table import QuantizerTable, build_table
from .errors import ConventionError, InvalidDataError

__all__ = ["solve_data", "standardized_points", "Points", "data_table"]


def _clean_data(x, weights):
    """(values sorted, their weights, weight scale, top weight, values distinct): finite
    data and positive weights, by the rules of :func:`standardized_points`.

    Data already sorted and distinct (histogram bin centres) skip the sort; one
    comparison of neighbours shows that and, with finite end points, that every value is
    finite (a NaN fails every comparison).
    """
    arr = as_float_array(x, "data").reshape(-1)
    if arr.size == 0:
        raise InvalidDataError("data is empty")
    distinct = bool((arr[1:] > arr[:-1]).all())
    if not (distinct and -math.inf < arr[0] and arr[-1] < math.inf) and not (
            np.isfinite(arr).all()):
        raise InvalidDataError(
            f"data holds {int(np.isnan(arr).sum())} NaN and {int(np.isinf(arr).sum())} Inf "
            "values; remove them first")
    if weights is None:
        w = np.ones_like(arr)
        w_scale = top = 1.0
    else:
        w = as_float_array(weights, "weights").reshape(-1)
        if w.shape != arr.shape:
            raise InvalidDataError(f"weights have {w.size} entries but data has {arr.size}")
        low, top = float(w.min()), float(w.max())  # NaN in w makes both NaN
        if not (low >= 0.0 and top < math.inf):
            raise InvalidDataError("weights must be finite and non-negative")
        if low == 0.0:
            keep = w > 0
            arr, w = arr[keep], w[keep]
            if arr.size == 0:
                raise InvalidDataError("every weight is zero")
        # only relative weights matter: where their sum overflows (1e308 weights) or they
        # are tiny enough to underflow in products, scale them so the largest is 1
        w_scale = 1.0
        if not (top > 1e-290 and top * w.size < 1e300):  # else the sum is finite
            with np.errstate(over="ignore"):
                total = float(np.sum(w))
            if not (math.isfinite(total) and top > 1e-290):
                w, w_scale, top = w / top, top, 1.0
    if distinct:
        return arr, w, w_scale, top, True
    order = np.argsort(arr, kind="stable")
    # unit weights need no gather: they are all ones in any order
    return arr[order], (w if weights is None else w[order]), w_scale, top, False


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
    w_scale: float = 1.0  # the caller's weights are w_scale * w


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
    xs, w, w_scale, top, sorted_distinct = _clean_data(x, weights)
    count = int(xs.size)
    unit_weights = weights is None  # until ties are merged
    if not sorted_distinct:
        step_up = xs[1:] > xs[:-1]  # no overflow
        if not step_up.all():
            starts = np.flatnonzero(np.concatenate([[True], step_up]))
            xs, w = xs[starts], np.add.reduceat(w, starts)
            unit_weights = False
    if xs.size == 1:
        raise InvalidDataError(f"data is constant (every value is {xs[0]:g}): nothing to quantize")
    if xs.size < n:
        raise InvalidDataError(
            f"data has {xs.size} distinct values, fewer than the {n} levels asked")
    relu = convention is not None or zero_threshold is not None
    first, last = float(xs[0]), float(xs[-1])
    if relu and first < 0:
        raise InvalidDataError("half-wave conventions need non-negative (ReLU) data")
    # sum |x| w and sum w over count points stay finite: no overflow check needed (a
    # weight of merged ties is at most count times the top weight)
    moderate = max(-first, last, 1.0) * top * count < 1e300
    if relu:
        shift = 0.0
    elif moderate:
        # np.average's own arithmetic without its overhead; with unit weights
        # (x * 1).sum() / (1 + ... + 1) is x.sum() / count exactly
        mean = xs.sum() / count if unit_weights else (xs * w).sum() / w.sum()
        shift = min(max(float(mean), first), last)
    else:
        shift = _weighted_mean(xs, w)
    # sorted values: the largest |x - shift| is at an end (rounding is monotone)
    scale = max(last - shift, shift - first)
    if math.isfinite(scale):
        z = (xs - shift) / scale
        distinct = bool((z[1:] > z[:-1]).all())
    else:
        # scale first: xs - shift overflows for data spanning more than half the float range
        with np.errstate(over="ignore", invalid="ignore"):
            scale = 2.0 * float(np.max(np.abs(0.5 * xs - 0.5 * shift)))
            z = (xs - shift) / scale
            distinct = bool(np.all(z[1:] > z[:-1]))
    if not (math.isfinite(scale) and distinct):
        # centring lost distinct values (2.42e-107 next to 0 and a mean of 0.375) or
        # overflowed: standardise by a power of two only, which is exact
        shift, scale = 0.0, _power_of_two_above(float(np.max(np.abs(xs))))
        z = xs / scale
        if not np.all(z[1:] > z[:-1]):
            raise InvalidDataError("data values are too close together to be told apart "
                                   "after scaling (subnormal values next to large ones)")
    return Points(xs, w, z, count, relu, shift, scale, w_scale)


def _power_of_two_above(value: float) -> float:
    """The least power of two >= ``value`` (2**1023 at most, so it stays finite)."""
    mantissa, exponent = math.frexp(value)
    return math.ldexp(1.0, min(exponent - (mantissa == 0.5), 1023))


def _weighted_mean(xs, w) -> float:
    """Weighted mean (numpy's); where it overflows (1.7e308 data, 1e308 weights) the data
    are divided by their largest magnitude before the products and sums.  The mean is
    clipped into the data's range (rounding can put it a hair outside)."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean = float(np.average(xs, weights=w))
    if not math.isfinite(mean):
        top = float(np.max(np.abs(xs)))
        mean = top * float(np.sum(w * (xs / top)) / np.sum(w))
    return min(max(mean, float(xs[0])), float(xs[-1]))


def solve_data(x, bits=None, *, n_levels=None, weights=None, uniform: bool = False,
               convention: str | None = None, zero_threshold=None, max_iter: int = 10000,
               strict: bool = True) -> QuantizerTable:
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
    w, z, relu, _shift, scale = pts.w, pts.z, pts.relu, pts.shift, pts.scale
    pw = np.concatenate([[0.0], np.cumsum(w)])
    pwx = np.concatenate([[0.0], np.cumsum(w * z)])
    pwxx = np.concatenate([[0.0], np.cumsum(w * z * z)])

    lay = layout(relu, scale, n, convention, zero_threshold, None)
    levels = np.empty(n)
    cum = pw[1:] / pw[-1]
    if relu:
        pos = z[z > (lay.zero_threshold or 0.0)]
        m = n - 1
        levels[0] = 0.0
        levels[1:] = (np.quantile(pos, (np.arange(m) + 0.5) / m) if pos.size
                      else np.linspace(0, 1, m + 1)[1:])
    else:
        levels[:] = z[np.searchsorted(cum, (np.arange(n) + 0.5) / n).clip(0, z.size - 1)]
    levels = _spread_ties(levels, z)
    thr = np.empty(n - 1)
    info = np.zeros(4)
    K.solve_data_lloyd(z, pw, pwx, pwxx, levels, lay.level_pinned, lay.thr_pinned,
                       lay.thr_value, int(max_iter), thr, info)
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
                             lay.thr_pinned, lay.thr_value, int(max_iter), levels, thr,
                             uinfo)
        info = uinfo
        kind = "uniform"
        step = theta[1]
        residual = 0.0 if int(uinfo[3]) == K.OK else math.inf
        if not np.all(np.diff(thr) > 0):
            # the least-squares grid put the first level(s) inside the dead zone
            raise ConventionError(
                f"a dead zone at eps={scale * lay.zero_threshold:g} swallows the first level "
                f"of the {b}-bit uniform grid fitted to this data; use fewer bits, a smaller "
                "eps, or a non-uniform table")
    table = data_table(pts, levels, thr, lay, bits=b, n=n, kind=kind, step_z=step,
                       residual=residual, iterations=info[0],
                       converged=int(info[3]) == K.OK)
    return check_status(info, table, "Lloyd on data", 0.0, strict)


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


def _metrics(z, w, levels, thresholds, lay: Layout, z_offset: float):
    """[MSE, index entropy in bits, residual, total weight, E[(z + z_offset)^2]] of a table
    on sorted standardised weighted points, by :func:`lloydmax._kernels.point_metrics` in
    one pass: the MSE sums w (z - Q(z))^2 point by point (the prefix-sum form loses about
    1e-10 relative accuracy on 1e5 points), the residual is the largest centroid/midpoint
    violation relative to the level span, with cells as the table assigns them.  Shared by
    :func:`solve_data` and :func:`lloydmax.solve_dp`."""
    out = np.empty(5)
    K.point_metrics(z, w, levels, thresholds, lay.level_pinned, lay.thr_pinned,
                    z_offset, out)
    return out


def data_table(pts: Points, levels, thresholds, lay: Layout, *, bits, n, kind, step_z,
               residual, iterations, converged, metrics=None) -> QuantizerTable:
    """The table of a data fit, in the data's units (:func:`build_table`), with the MSE
    and entropy from :func:`_metrics` (and its residual when ``residual`` is None).
    ``metrics``: the five figures of :func:`_metrics` when the caller's kernel already
    computed them (the DP's does)."""
    # pts.w sums to a finite number (standardized_points scales weights whose sum
    # overflows); the weight in the caller's units may not (1e308 weights): then it is
    # left out of the params
    if metrics is None:
        metrics = _metrics(pts.z, pts.w, levels, thresholds, lay, pts.shift / pts.scale)
    mse_z, entropy, measured, total, power_z = metrics.tolist()
    weight = pts.w_scale * total
    residual = measured if residual is None else residual
    return build_table(
        levels, thresholds, shift=pts.shift, scale=pts.scale, step_z=step_z, bits=bits,
        n_levels=n, kind=kind, distribution="empirical",
        params={"count": pts.count, **({"weight": weight} if math.isfinite(weight) else {})},
        convention=lay.convention, mse_z=mse_z, power_z=power_z, entropy_bits=entropy,
        residual=residual, iterations=iterations, converged=converged,
        zero_threshold_z=lay.zero_threshold)
