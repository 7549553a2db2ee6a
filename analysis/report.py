"""Per-layer quantization report: how far each layer's activations are from the
half-wave Gaussian, and what every way of building a b-bit activation quantizer costs on
them.

:func:`report` turns histograms (:class:`lloydmax.analysis.histogram.Histogram`) into a
:class:`pandas.DataFrame`; :func:`best_tables` picks the least-MSE table per layer, ready
for :func:`lloydmax.save_tables`.
"""
from __future__ import annotations

import math

import numpy as np

import lloydmax as lm
from lloydmax._conventions import resolve_levels
from lloydmax._dp import solve_dp
from lloydmax._table import build_table
from lloydmax.constants import TSQ_EPS
from lloydmax.errors import (
    ConventionError,
    InvalidBitsError,
    InvalidDataError,
    InvalidInputError,
    MissingDependencyError,
)

from ._moments import exact_moments
from ._progress import phase, report_units

__all__ = ["METHODS_DOC", "best_tables", "report"]

_CONVENTIONS = ("hwgq", "round", "deadzone")
# failures that mean "this method does not apply to this layer" (too few distinct values,
# negative data under a half-wave convention, a dead zone above every value, ...): the
# cell is NaN; anything else is a bug or a bad argument and propagates
_NOT_APPLICABLE = (InvalidDataError, ConventionError)

METHODS_DOC = {
    "<c>_unit": "published recipe: the unit half-wave Gaussian optimal uniform table in "
                "convention <c>, times the layer's sigma",
    "dp": "exact global optimum (any levels, no pinned zero): the floor for every column",
    "dp_<c>": "exact global optimum with level 0 pinned at 0 in convention <c>",
    "uniform_<c>": "optimal uniform step fitted to the data (lloydmax.solve_data, "
                   "uniform=True) in convention <c>",
    "pclip": "uniform over [0, percentile clip], round to nearest",
    "maxrange": "uniform over [0, max], round to nearest",
}


class _TableStore(dict):
    """The report's tables, keyed ``(layer, channel, bits, method)``.

    Kept in ``DataFrame.attrs``; pandas deep-copies attrs on many operations, and the
    tables are immutable, so a copy is the same store."""

    def __deepcopy__(self, memo):
        return self


# --------------------------------------------------------------------------- inputs


def _as_histograms(histograms) -> dict:
    if isinstance(histograms, dict):
        if not histograms:
            raise InvalidInputError("no histograms given")
        items = histograms
    else:
        items = {"tensor": histograms}
    for name, hist in items.items():
        # looked up on the type (or the instance's own attributes): hasattr would run
        # the properties, each a pass over every channel's bins
        missing = [a for a in ("to_weighted_points", "n_channels", "power_sums", "count",
                               "zeros", "min", "max")
                   if not (hasattr(type(hist), a) or a in getattr(hist, "__dict__", ()))]
        if missing:
            raise InvalidInputError(
                f"layer {name!r}: expected an lloydmax.analysis.histogram.Histogram, got "
                f"{type(hist).__name__} (no {', '.join(missing)})")
    return {str(k): v for k, v in items.items()}


def _check_args(bits, conventions, percentile, eps):
    if isinstance(bits, (int, np.integer)) and not isinstance(bits, bool):
        bits = (bits,)
    try:
        bits = tuple(bits)
    except TypeError:
        raise InvalidBitsError(f"bits must be an integer or a sequence of them, got {bits!r}") \
            from None
    if not bits:
        raise InvalidBitsError("give at least one bit-width")
    bits = tuple(resolve_levels(b)[0] for b in bits)
    if isinstance(conventions, str):
        conventions = (conventions,)
    conventions = tuple(str(c).lower() for c in conventions)
    bad = [c for c in conventions if c not in _CONVENTIONS]
    if bad:
        raise ConventionError(f"unknown convention(s) {', '.join(bad)}; valid: "
                              f"{', '.join(_CONVENTIONS)}")
    p = float(percentile)
    if not 0.0 < p <= 100.0:
        raise InvalidInputError(f"percentile must be in (0, 100], got {percentile!r}")
    e = float(eps)
    if not (e > 0.0 and math.isfinite(e)):
        raise ConventionError(f"eps must be a positive finite number, got {eps!r}")
    return bits, conventions, p, e


def _channel_summary(hist) -> dict:
    """Per-channel count, zeros, min and max of a histogram, read once: each property
    covers every channel, so reading it inside a channel loop would be quadratic."""
    return {key: np.atleast_1d(np.asarray(getattr(hist, key))).reshape(-1)
            for key in ("count", "zeros", "min", "max")}


def _select(hist, name, channel, summary=None):
    """(values, weights, stats) of one channel, or of the whole tensor (channel None).

    ``summary`` is :func:`_channel_summary` of ``hist``, computed once by the caller."""
    n_ch = hist.n_channels
    if n_ch is None or n_ch == 0:
        raise InvalidDataError(f"layer {name!r}: the histogram is empty (no update yet)")
    where = "" if channel is None else f" channel {channel}"
    if channel is None and n_ch > 1:
        # the layer of a per-channel histogram: its channels re-binned onto the grid of
        # their joint range and added, which is the per-tensor histogram of the same
        # values bit for bit (Histogram.pooled), in one pass over the channels
        hist, channel, summary = hist.pooled(), 0, None
    if summary is None:
        summary = _channel_summary(hist)
    c = 0 if channel is None else channel
    count = int(summary["count"][c])
    if count == 0:
        raise InvalidDataError(f"layer {name!r}{where}: the histogram is empty (no finite values)")
    zeros = int(summary["zeros"][c])
    lo, hi = float(summary["min"][c]), float(summary["max"][c])
    v, w = hist.to_weighted_points(channel=c, include_zeros=True)
    v, w = np.asarray(v, dtype=np.float64), np.asarray(w, dtype=np.float64)
    stats = {"count": count, "zeros": zeros, "min": lo, "max": hi}
    stats.update(exact_moments(count, hist.total_power_sums([c])))
    return v, w, stats


# --------------------------------------------------------------------------- measures


def _table_mse(table, v, w) -> float:
    """Exact MSE of ``table`` on the weighted points: sum w (v - Q(v))^2 / sum w."""
    d = v - table.quantize(v)
    with np.errstate(over="ignore", invalid="ignore"):  # 1e300-scale data: inf, not a warning
        return float(np.sum(w * d * d) / np.sum(w))


def _weighted_percentile(v, w, p: float) -> float:
    """Smallest value whose cumulative weight fraction reaches p / 100 (the inverted-CDF
    percentile, numpy's ``method="inverted_cdf"`` on the repeated values)."""
    cum = np.cumsum(w)
    k = int(np.searchsorted(cum, p / 100.0 * cum[-1], side="left"))
    return float(v[min(k, v.size - 1)])


def _ks_halfwave(v, w, sigma: float) -> float:
    """sup_x |F(x) - G(x)|: F the weighted empirical CDF, G the CDF of ReLU(N(0, sigma^2))
    (0 below 0, a jump of 1/2 at 0, Phi(x / sigma) above)."""
    from scipy.special import ndtr

    if not (sigma > 0.0):
        return math.nan
    if not np.any(v == 0.0):  # G jumps at 0: look there even when no data sit at 0
        k = int(np.searchsorted(v, 0.0))
        v, w = np.insert(v, k, 0.0), np.insert(w, k, 0.0)
    cdf = np.cumsum(w) / np.sum(w)
    before = np.concatenate([[0.0], cdf[:-1]])
    g = np.where(v < 0.0, 0.0, ndtr(v / sigma))
    g_left = np.where(v <= 0.0, 0.0, g)  # the limit from the left; G is continuous off 0
    return float(max(np.max(np.abs(cdf - g)), np.max(np.abs(before - g_left))))


def _uniform_table(v, w, bits: int, lo: float, hi: float):
    """Uniform levels lo + k (hi - lo) / (2^b - 1), round to nearest (midpoints)."""
    n = 1 << bits
    if not hi > lo:
        raise InvalidDataError("the clipping range is empty")
    step = (hi - lo) / (n - 1)
    levels = lo + step * np.arange(n)
    levels[-1] = hi
    thresholds = 0.5 * (levels[1:] + levels[:-1])
    relu = lo == 0.0 and v[0] >= 0.0
    # measured on the data first (the table's rule: thresholds[i-1] < x <= thresholds[i])
    index = np.searchsorted(thresholds, v, side="left")
    d = v - levels[index]
    total = np.sum(w)
    with np.errstate(over="ignore", invalid="ignore"):  # 1e300-scale data: inf, not a warning
        mse = float(np.sum(w * d * d) / total)
        power = float(np.sum(w * v * v) / total)
    mass = np.bincount(index, weights=w, minlength=n)
    p = mass[mass > 0] / total
    return build_table(
        levels, thresholds, step_z=step, bits=bits, n_levels=n, distribution="empirical",
        params={"count": round(float(total))}, convention="round" if relu else "none",
        kind="uniform", mse_z=mse, power_z=power, entropy_bits=float(-np.sum(p * np.log2(p))),
        residual=0.0, iterations=0, converged=True)


def _is_valid_table(table) -> bool:
    """Thresholds strictly increasing, each between its two levels (the table rule needs
    both).  lm.solve_data(uniform=True) with a dead zone wider than the step can return a
    table whose first positive level lies below the dead zone; such a table has no
    well-defined cells, so its column is NaN rather than a meaningless number."""
    lv, th = table.levels, table.thresholds
    return bool(np.all(np.diff(th) > 0) and np.all(lv[:-1] <= th) and np.all(th <= lv[1:]))


def _method_tables(v, w, stats, bits, conventions, percentile, eps, unit_cache):
    """{method: table or None} for one bit-width on one layer's weighted points."""
    sigma = stats["sigma"]
    relu = bool(v[0] >= 0.0)
    out: dict = {}

    def attempt(name, build):
        try:
            table = build()
        except _NOT_APPLICABLE:
            table = None
        out[name] = table if table is None or _is_valid_table(table) else None

    def conv_kw(c):
        return {"zero_threshold": eps * sigma} if c == "deadzone" else {"convention": c}

    for c in conventions:
        def unit(c=c):
            if not (relu and sigma > 0.0):
                raise InvalidDataError("not ReLU data")
            key = (bits, c)
            if key not in unit_cache:
                kw = {"zero_threshold": eps} if c == "deadzone" else {"convention": c}
                unit_cache[key] = lm.solve(bits=bits, dist="halfwave-gaussian", uniform=True,
                                           **kw)
            return unit_cache[key].scaled(sigma)
        attempt(f"{c}_unit", unit)
    attempt("dp", lambda: solve_dp(v, bits=bits, weights=w))
    for c in conventions:
        attempt(f"dp_{c}", lambda c=c: solve_dp(v, bits=bits, weights=w, **conv_kw(c)))
    for c in conventions:
        attempt(f"uniform_{c}", lambda c=c: lm.solve_data(v, bits=bits, weights=w, uniform=True,
                                                          strict=False, **conv_kw(c)))
    lo_clip = 0.0 if relu else _weighted_percentile(v, w, 100.0 - percentile)
    attempt("pclip", lambda: _uniform_table(v, w, bits, lo_clip,
                                            _weighted_percentile(v, w, percentile)))
    attempt("maxrange", lambda: _uniform_table(v, w, bits, min(0.0, float(v[0])), float(v[-1])))
    return out


# --------------------------------------------------------------------------- public


def report(histograms, bits=(1, 2, 3, 4), *, per_channel: bool = False,
           conventions=("hwgq", "round", "deadzone"), percentile: float = 99.99,
           eps: float = TSQ_EPS, progress=None):
    """One row per layer (or per channel): statistics, distance from the half-wave
    Gaussian, and the MSE / SQNR of every way of building a b-bit quantizer.

    Parameters
    ----------
    histograms : dict[str, Histogram] or Histogram
        Layer name -> :class:`lloydmax.analysis.histogram.Histogram`; a single histogram is
        reported as layer ``"tensor"``.
    bits : int or sequence of int
        Bit-widths (``2**b`` levels each).
    per_channel : bool
        One row per channel of per-channel histograms (``axis`` set).  Without it a
        per-channel histogram is reported as one tensor: the exact moments from the summed
        power sums, the points of all channels merged (each channel at its own bin width).
    conventions : sequence of {"hwgq", "round", "deadzone"}
        Half-wave conventions for the ``<c>_unit``, ``dp_<c>`` and ``uniform_<c>`` columns.
    percentile : float
        Clipping percentile of the ``pclip`` columns, in (0, 100].
    eps : float
        Dead-zone threshold in units of sigma (TSQ's 0.32 for unit-variance BN outputs);
        the layer's threshold is ``eps * sigma``.
    progress : bool, None or Progress
        Progress over the rows (layers or channels); default None shows nothing.  A
        :class:`~lloydmax.analysis._progress.Progress` is advanced and left open.

    Returns
    -------
    pandas.DataFrame
        Columns, in order:

        * ``layer``; ``channel`` (nullable integer, <NA> for a per-tensor row).
        * ``count`` finite values seen, ``zeros`` exact zeros, ``sparsity`` = zeros / count,
          ``mean``, ``std`` (population), ``skewness`` $m_3/m_2^{3/2}$, ``kurtosis``
          (excess, $m_4/m_2^2 - 3$), ``min``, ``max``: exact, from the raw data (the
          histogram's power sums), not from the bins.
        * ``sigma``: the scale of the ReLU(N(0, sigma^2)) with the layer's second moment.
          For BN + ReLU, $E[\\mathrm{ReLU}(Z)^2] = \\sigma^2/2$, so
          $\\sigma = \\sqrt{2 E[x^2]}$ (exact $E[x^2]$).  It is the factor by which the
          unit-variance tables are scaled.
        * ``ks_halfwave``: Kolmogorov-Smirnov distance $\\sup_x |F_n(x) - G(x)|$ between
          the layer's CDF and ReLU(N(0, sigma^2)) (G = 0 below 0, 1/2 at 0,
          $\\Phi(x/\\sigma)$ above), at bin resolution.
        * ``points``: number of weighted points (occupied bins, plus 0 for the zeros).
        * For each b in ``bits`` and each method below, ``mse_b{b}_{method}`` and
          ``sqnr_b{b}_{method}`` = $10\\log_{10}(E[x^2] / \\mathrm{MSE})$ dB, both on
          the weighted points (MSE columns first, then SQNR, per bit-width):

          - ``{c}_unit`` for each convention c: the published recipe, the optimal uniform
            table of the unit half-wave Gaussian (``lm.solve(bits=b,
            dist="halfwave-gaussian", uniform=True, convention=c)``, dead zone at ``eps``)
            scaled by sigma;
          - ``dp``: the exact global optimum (:func:`lloydmax._dp.solve_dp`, free levels);
            no b-bit quantizer does better, so it is the floor of every other column;
          - ``dp_{c}``: the exact optimum with level 0 pinned at 0 in convention c;
          - ``uniform_{c}``: the optimal uniform step fitted to the data
            (``lm.solve_data(..., uniform=True)``) in convention c;
          - ``pclip``: levels $k \\cdot clip / (2^b - 1)$, clip = the ``percentile``-th
            percentile (inverted CDF), round to nearest;
          - ``maxrange``: the same with clip = max.

          For data with negative values the convention columns are NaN and ``pclip`` /
          ``maxrange`` span [percentile 100 - p, percentile p] / [min, max].  A method
          that does not apply (fewer distinct values than levels, a dead zone above
          every value, a constant layer) gives NaN, and so does a table whose thresholds
          are not increasing (``uniform_deadzone`` when the fitted step is smaller than
          the dead zone).

        ``df.attrs["tables"]`` maps ``(layer, channel, bits, method)`` to the
        :class:`~lloydmax.QuantizerTable` behind each column (see :func:`best_tables`).

    Notes
    -----
    Every MSE is evaluated exactly on the histogram's weighted points (bin centres with
    their counts, and 0 with the number of exact zeros).  The points stand for the raw
    data at bin-width resolution: a value is moved to its bin centre, so a quantizer's MSE
    on the raw data differs from the reported one by up to about a bin width times the
    RMS error (and the bins' own variance, width^2 / 12, is not counted).

    Raises
    ------
    InvalidInputError
        No histograms, an object that is not a histogram, bad ``bits``, ``conventions``,
        ``percentile`` or ``eps``.
    InvalidDataError
        A histogram (or a requested channel) that holds no finite values.
    """
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is in the test extra
        raise MissingDependencyError("report needs pandas: pip install 'lloydmax[analysis]'") \
            from None
    hists = _as_histograms(histograms)
    bits, conventions, percentile, eps = _check_args(bits, conventions, percentile, eps)
    bar = phase(False if progress is None else progress,
                report_units(hists, per_channel), "report")
    unit_cache: dict = {}
    store = _TableStore()
    rows = []
    for name, hist in hists.items():
        n_ch = hist.n_channels
        if n_ch is None or n_ch == 0:
            raise InvalidDataError(f"layer {name!r}: the histogram is empty (no update yet)")
        channels = list(range(n_ch)) if per_channel else [None]
        summary = _channel_summary(hist) if per_channel else None
        for ch in channels:
            v, w, stats = _select(hist, name, ch, summary)
            sigma = stats["sigma"]
            with np.errstate(over="ignore"):  # 1e300-scale data: inf (SQNR NaN), no warning
                power_pts = float(np.sum(w * v * v) / np.sum(w))
            row = {"layer": name, "channel": ch, "count": stats["count"],
                   "zeros": stats["zeros"], "sparsity": stats["zeros"] / stats["count"],
                   "mean": stats["mean"], "std": stats["std"], "skewness": stats["skewness"],
                   "kurtosis": stats["kurtosis"], "min": stats["min"], "max": stats["max"],
                   "sigma": sigma, "ks_halfwave": _ks_halfwave(v, w, sigma),
                   "points": int(v.size)}
            for b in bits:
                tables = _method_tables(v, w, stats, b, conventions, percentile, eps,
                                        unit_cache)
                sqnr = {}
                for method, table in tables.items():
                    if table is None:
                        mse = math.nan
                    else:
                        mse = _table_mse(table, v, w)
                        store[(name, ch, b, method)] = table
                    row[f"mse_b{b}_{method}"] = mse
                    sqnr[f"sqnr_b{b}_{method}"] = (
                        math.nan if mse != mse else
                        math.inf if mse == 0.0 else 10.0 * math.log10(power_pts / mse))
                row.update(sqnr)
            rows.append(row)
            bar.advance()
    bar.close()
    df = pd.DataFrame(rows)
    df["channel"] = df["channel"].astype("Int64")
    df.attrs["tables"] = store
    return df


def best_tables(source, bits: int, *, methods=None, keep_zero: bool = True,
                **report_kwargs) -> dict:
    """The least-MSE table per layer (per channel for a per-channel report).

    A non-negative layer keeps an exact zero level by default (``keep_zero``): ReLU
    hardware and trainers need ``Q(0) = 0``, while the free optimum ``dp`` moves its
    lowest level slightly off 0 (docs/analysis.md).

    Parameters
    ----------
    source : pandas.DataFrame or dict[str, Histogram] or Histogram
        A :func:`report` result (its ``attrs["tables"]``), or histograms, which are
        reported first with ``report(source, bits=(bits,), **report_kwargs)``.
    bits : int
        Bit-width to choose at.
    methods : sequence of str, optional
        Restrict the choice to these methods (e.g. ``["uniform_hwgq", "pclip"]`` for the
        best uniform table); default every method in the report.
    keep_zero : bool
        For a layer with no negative value, choose only among tables whose lowest level
        is exactly 0 (default).  ``False`` picks the least MSE overall, where ``dp``
        always wins.

    Returns
    -------
    dict
        ``layer -> QuantizerTable`` (keys ``(layer, channel)`` for per-channel rows).
        Write them with ``lloydmax.save_tables(list(result.values()), path)``.

    Raises
    ------
    InvalidInputError
        A DataFrame without the report's tables, or no column for ``bits`` / ``methods``.
    """
    import pandas as pd

    b = resolve_levels(bits)[0]
    if hasattr(source, "columns") and hasattr(source, "attrs"):
        df = source
        if report_kwargs:
            raise InvalidInputError("report options apply to histograms, not to a report")
    else:
        df = report(source, bits=(b,), **report_kwargs)
    store = df.attrs.get("tables")
    if not isinstance(store, dict):
        raise InvalidInputError("this DataFrame carries no tables (attrs['tables']): "
                                "pass the report() result or the histograms")
    prefix = f"mse_b{b}_"
    cols = [c for c in df.columns if str(c).startswith(prefix)]
    if methods is not None:
        methods = [methods] if isinstance(methods, str) else list(methods)
        missing = [m for m in methods if prefix + m not in cols]
        if missing:
            raise InvalidInputError(f"the report has no {b}-bit column for method(s) "
                                    f"{', '.join(missing)}")
        cols = [prefix + m for m in methods]
    if not cols:
        raise InvalidInputError(f"the report has no {b}-bit columns (mse_b{b}_*)")
    out = {}
    for _, row in df.iterrows():
        values = row[cols].to_numpy(dtype=np.float64)
        ch = row["channel"]
        ch = None if pd.isna(ch) else int(ch)
        if keep_zero and "min" in row and row["min"] >= 0:
            for i, col in enumerate(cols):
                table = store.get((row["layer"], ch, b, col[len(prefix):]))
                if table is not None and table.levels[0] != 0.0:
                    values[i] = np.nan
        if np.all(np.isnan(values)):
            continue
        method = cols[int(np.nanargmin(values))][len(prefix):]
        table = store.get((row["layer"], ch, b, method))
        if table is None:
            raise InvalidInputError(f"no stored table for layer {row['layer']!r} "
                                    f"({method}, {b} bits)")
        out[row["layer"] if ch is None else (row["layer"], ch)] = table
    return out
