"""Figures of measured data: an activation histogram with a table's levels over it, and
per-layer SQNR bars from an analysis report.

Built on :mod:`lloydmax.plot` (same look, same lazy matplotlib import, same
:func:`lloydmax.plot.save_figure`).
"""
from __future__ import annotations

import re

import numpy as np

from lloydmax.errors import InvalidInputError
from lloydmax.plot import _as_table, _new_axes, save_figure

__all__ = ["plot_histogram", "plot_layers", "save_figure", "sqnr_columns"]

_C_BARS = "#4c72b0"
_C_ZEROS = "#dd8452"
_C_LEVEL = "#c44e52"
_C_THRESH = "0.25"


def _pick_channel(values, channel, what: str):
    """A 1-D array from a per-tensor (1-D) or per-channel (channels x bins) quantity."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim <= 1 and (channel is None or arr.ndim == 0):
        return arr
    if arr.ndim == 1:
        raise InvalidInputError(f"channel={channel} given but the histogram's {what} is "
                                "per-tensor")
    if channel is None:
        # no channel chosen: the whole tensor, i.e. the sum over channels
        return arr.sum(axis=0)
    if not -arr.shape[0] <= int(channel) < arr.shape[0]:
        raise InvalidInputError(f"channel {channel} out of range: the histogram has "
                                f"{arr.shape[0]} channels")
    return arr[int(channel)]


def _hist_arrays(hist, channel):
    """(edges, counts, zeros) of ``hist`` for ``channel`` (duck-typed: ``edges()``,
    ``counts()``, ``zeros``; a channel argument is passed on when the methods take it)."""
    def call(name):
        attr = getattr(hist, name, None)
        if attr is None:
            raise InvalidInputError(f"{type(hist).__name__} has no {name}(): not a Histogram")
        if not callable(attr):
            return attr
        if channel is not None:
            try:
                return attr(channel)
            except TypeError:
                pass
        return attr()

    edges = np.asarray(call("edges"), dtype=np.float64)
    counts = np.asarray(call("counts"), dtype=np.float64)
    if edges.ndim == 2:
        edges = _pick_channel(edges, channel, "edges")
    if counts.ndim == 2:
        counts = _pick_channel(counts, channel, "counts")
    zeros = getattr(hist, "zeros", 0)
    zeros = zeros() if callable(zeros) else zeros
    zeros = np.asarray(zeros, dtype=np.float64)
    if zeros.ndim == 1:
        # one zero count per channel
        if channel is None:
            zeros = zeros.sum()
        elif -zeros.size <= int(channel) < zeros.size:
            zeros = zeros[int(channel)]
        else:
            raise InvalidInputError(f"channel {channel} out of range: the histogram has "
                                    f"{zeros.size} channels")
    if edges.ndim != 1 or counts.ndim != 1 or edges.size != counts.size + 1:
        raise InvalidInputError(f"histogram has {edges.size} edges for {counts.size} bins; "
                                "expected one more edge than bins")
    return edges, counts, float(zeros)


def _coarsen(edges, counts, max_bars: int):
    """Merge runs of adjacent bins so at most ``max_bars`` bars are drawn (a 2048-bin
    histogram drawn bar by bar is unreadable).  Counts are summed, so the merge is exact."""
    factor = -(-counts.size // max_bars)
    if factor <= 1:
        return edges, counts
    pad = (-counts.size) % factor
    widths = np.diff(edges)
    padded = np.concatenate([counts, np.zeros(pad)])
    merged = padded.reshape(-1, factor).sum(axis=1)
    last_width = widths[-1] if widths.size else 0.0
    full_edges = np.concatenate([edges, edges[-1] + last_width * np.arange(1, pad + 1)])
    return full_edges[::factor], merged


def plot_histogram(hist, table=None, channel=None, ax=None, log: bool = False,
                   max_bars: int = 128):
    """Bars of a measured histogram as a density, the exact zeros apart, levels over it.

    The bins are drawn as a density (count / (total * bin width)) so their area is the
    fraction of values in them.  Exact zeros (ReLU outputs) are counted apart by the
    histogram: they have no width, so they are drawn as an arrow at 0 annotated with
    their count and fraction, like the point mass of the half-wave Gaussian in
    :func:`lloydmax.plot.plot_levels`.

    Parameters
    ----------
    hist : lloydmax.analysis.histogram.Histogram
        Anything with ``edges()``, ``counts()``, ``zeros`` (and optionally ``count``).
        Per-channel histograms (2-D counts) need ``channel``; without it the channels
        are summed.
    table : QuantizerTable or path, optional
        Thresholds (dashed) and levels (solid) drawn over the bars.
    channel : int, optional
    ax : Axes, optional
    log : bool
        Logarithmic density axis (to see the tails).
    max_bars : int
        Adjacent bins are merged (counts summed) until at most this many bars remain.

    Returns
    -------
    matplotlib.figure.Figure
    """
    edges, counts, zeros = _hist_arrays(hist, channel)
    n_bins = counts.size
    filled = np.nonzero(counts)[0]
    if filled.size:
        # a power-of-two grid can reach well past the largest value: drop the empty ends
        edges = edges[filled[0]:filled[-1] + 2]
        counts = counts[filled[0]:filled[-1] + 1]
    edges, counts = _coarsen(edges, counts, max(1, int(max_bars)))
    total = getattr(hist, "count", None)
    total = float(np.asarray(total() if callable(total) else total, dtype=np.float64).sum()) \
        if total is not None and channel is None else float(counts.sum() + zeros)
    if not total > 0.0:
        raise InvalidInputError("the histogram is empty")
    fig, (axis,) = _new_axes(ax)
    widths = np.diff(edges)
    density = counts / (total * np.where(widths > 0, widths, 1.0))
    axis.bar(edges[:-1], density, width=widths, align="edge", color=_C_BARS, alpha=0.55,
             edgecolor=_C_BARS, lw=0.3,
             label=f"non-zero values: {round(float(counts.sum())):,}"
                   + f" in {n_bins} bins" + (f", drawn as {counts.size} bars"
                                                if counts.size < n_bins else ""))
    top = float(density.max()) if density.size else 1.0
    if zeros > 0:
        height = 1.15 * top
        axis.annotate("", xy=(0.0, height), xytext=(0.0, 0.0), zorder=6,
                      arrowprops={"arrowstyle": "-|>", "color": _C_ZEROS, "lw": 2.2})
        axis.annotate(f"exact zeros: {round(zeros):,} ({zeros / total:.1%})",
                      (0.0, height), xytext=(7, -4), textcoords="offset points",
                      color=_C_ZEROS, fontsize=9, zorder=6,
                      bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none"})
        axis.plot([], [], color=_C_ZEROS, marker=r"$\uparrow$", ls="none", ms=10,
                  label="exact zeros (a point mass, not a bin)")
        top = height
    lo, hi = float(edges[0]), float(edges[-1])
    if zeros > 0:
        lo = min(lo, 0.0)
    if table is not None:
        table = _as_table(table)
        many = table.n_levels > 40
        across = axis.get_xaxis_transform()  # x in data units, y over the whole axes
        axis.vlines(table.thresholds, 0.0, 1.0, transform=across, colors=_C_THRESH,
                    linewidths=0.4 if many else 0.9, linestyles="--", label="thresholds $t_i$")
        axis.vlines(table.levels, 0.0, 1.0, transform=across, colors=_C_LEVEL,
                    linewidths=0.5 if many else 1.3, label="levels $q_i$")
        lo = min(lo, float(table.levels[0]))
        hi = max(hi, float(table.levels[-1]))
    pad = 0.03 * (hi - lo if hi > lo else 1.0)
    axis.set_xlim(lo - pad, hi + pad)
    if log:
        axis.set_yscale("log")
    else:
        axis.set_ylim(0.0, 1.25 * top)
    axis.set_xlabel("activation value (input units)")
    axis.set_ylabel("density (fraction per unit of x)")
    where = "" if channel is None else f", channel {channel}"
    title = f"histogram of {round(total):,} values{where}"
    if table is not None:
        kind = f"uniform step {table.step:.4g}" if table.step is not None else "Lloyd-Max"
        title += f" with a {table.n_levels}-level table ({kind})"
    axis.set_title(title, fontsize=10)
    axis.legend(loc="upper right", fontsize=8)
    return fig


def sqnr_columns(report_df, bits: int = 2) -> list[str]:
    """Columns ``sqnr_b{bits}_<method>`` of a report, in their order."""
    pattern = re.compile(rf"^sqnr_b{int(bits)}_(.+)$")
    return [c for c in report_df.columns if pattern.match(str(c))]


_METHOD_PREFIX = re.compile(r"^sqnr_b\d+_")
# 12 distinct colours: a report has up to 12 methods per bit-width
_PALETTE = ["#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728",
            "#ff9896", "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf"]


def _resolve_columns(report_df, bits, columns) -> list[str]:
    """Full column names; a bare method name (``dp``) means ``sqnr_b{bits}_dp``."""
    if columns is None:
        found = sqnr_columns(report_df, bits)
        if not found:
            raise InvalidInputError(
                f"report has no sqnr_b{bits}_* columns; it has: "
                + ", ".join(map(str, report_df.columns)))
        return found
    columns = [columns] if isinstance(columns, str) else list(columns)
    out, missing = [], []
    for col in columns:
        if col in report_df.columns:
            out.append(col)
        elif f"sqnr_b{int(bits)}_{col}" in report_df.columns:
            out.append(f"sqnr_b{int(bits)}_{col}")
        else:
            missing.append(str(col))
    if missing:
        raise InvalidInputError(f"report has no column(s) {', '.join(missing)} "
                                f"(nor sqnr_b{int(bits)}_<name>)")
    return out


def _layer_labels(report_df) -> list[str]:
    layers = report_df["layer"] if "layer" in report_df.columns else report_df.index
    labels = [str(v) for v in layers]
    if "channel" in report_df.columns:
        # <NA> (nullable Int64), NaN (read back from CSV) or None: a per-tensor row
        missing = np.asarray(report_df["channel"].isna())
        channels = report_df["channel"].tolist()
        labels = [lab if missing[i] else f"{lab}[{int(channels[i])}]"
                  for i, lab in enumerate(labels)]
    return labels


def plot_layers(report_df, bits: int = 2, columns=None, ax=None):
    """Per-layer SQNR bars, one bar per method, from an analysis report.

    Parameters
    ----------
    report_df : pandas.DataFrame
        One row per layer (or per channel): a ``layer`` column (else the index names the
        layers), optionally ``channel``, and SQNR columns ``sqnr_b{bits}_<method>`` in dB
        as :func:`lloydmax.analysis.report.report` writes them (``sqnr_b2_dp``,
        ``sqnr_b2_hwgq_unit``, ...).
    bits : int
        Which bit-width's columns to draw.
    columns : list of str, optional
        Draw only these: full column names, or method names such as ``dp`` and
        ``hwgq_unit`` (read as ``sqnr_b{bits}_<name>``).
    ax : Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    A NaN cell (a method that does not apply to the layer) draws no bar; an infinite
    SQNR (zero error) is drawn as no bar either and marked with "inf" above the group.
    """
    columns = _resolve_columns(report_df, bits, columns)
    if len(report_df) == 0:
        raise InvalidInputError("the report has no rows")
    labels = _layer_labels(report_df)
    values = np.asarray(report_df[columns].to_numpy(dtype=np.float64))
    infinite = np.isinf(values)
    values = np.where(infinite, np.nan, values)
    n_layers, n_methods = values.shape
    width = 0.8 / n_methods
    n_bars = n_layers * n_methods
    fig, (axis,) = _new_axes(ax, figsize=(min(12.0, max(8.0, 3.0 + 0.12 * n_bars)), 4.5))
    x = np.arange(n_layers)
    for j, col in enumerate(columns):
        name = _METHOD_PREFIX.sub("", str(col))
        bars = axis.bar(x - 0.4 + width * (j + 0.5), values[:, j], width=width,
                        color=_PALETTE[j % len(_PALETTE)], label=name)
        if n_bars <= 40:
            axis.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
        for i in np.nonzero(infinite[:, j])[0]:
            axis.annotate("inf", (x[i] - 0.4 + width * (j + 0.5), 0.0), ha="center",
                          va="bottom", fontsize=7)
    rotate = n_layers > 6 or max(len(s) for s in labels) > 12
    axis.set_xticks(x, labels, rotation=30 if rotate else 0, ha="right" if rotate else "center",
                    fontsize=8)
    axis.axhline(0.0, color="0.3", lw=0.6)
    axis.set_xlabel("layer")
    axis.set_ylabel("SQNR (dB, higher is better)")
    axis.grid(True, axis="y", alpha=0.3)
    axis.set_title(f"per-layer SQNR of {bits}-bit activation quantizers, by method",
                   fontsize=10)
    axis.legend(title="method", fontsize=8, title_fontsize=8, loc="upper left",
                bbox_to_anchor=(1.0, 1.0))
    return fig
