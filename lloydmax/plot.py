"""Figures of quantizer tables: HWGQ forward/backward curves, levels over a density,
MSE and SQNR against bit-width.

matplotlib is optional (``pip install 'lloydmax[plot]'``) and imported only when a
function here is called.  Figures are built as :class:`matplotlib.figure.Figure`
objects with the non-interactive Agg canvas, never through :mod:`matplotlib.pyplot`:
that needs no display, leaves the user's pyplot backend alone and keeps no figure
alive in pyplot's registry.  Every function takes an optional ``ax`` to draw into an
existing figure instead.

>>> import lloydmax as lm
>>> from lloydmax.plot import plot_levels, save_figure
>>> fig = plot_levels(lm.solve(bits=2, dist="halfwave-gaussian"))
>>> save_figure(fig, "levels.png")                                  # doctest: +SKIP
"""
from __future__ import annotations

import math

import numpy as np

from . import _hwgq
from . import _kernels as K
from ._dists import get_distribution
from ._plot_mse import panter_dite, plot_mse
from ._plotting import (
    _C_BACK,
    _C_DENSITY,
    _C_FORWARD,
    _C_LEVEL,
    _C_REF,
    _C_THRESH,
    BACKWARDS,
    FIGSIZE,
    SAVE_FORMATS,
    _as_table,
    _new_axes,
    save_figure,
)
from ._solver import solve
from .errors import InvalidInputError

__all__ = ["plot_curves", "plot_levels", "plot_mse", "save_figure", "panter_dite",
           "backward_functions", "BACKWARDS", "FIGSIZE", "SAVE_FORMATS"]



# ----------------------------------------------------------------------- curves


def backward_functions(x, q_max: float):
    """The HWGQ backward approximations (Cai et al. 2017, eqs. 11-14) at ``x``.

    Returns ``{name: (function, derivative)}`` for

    * ``vanilla``: ReLU, derivative 1 for x > 0 (eq. 11);
    * ``clipped``: x on (0, q_m], q_m above, 0 below (eq. 12); derivative 1 on (0, q_m];
    * ``log-tailed``: q_m + log(x - tau) above q_m with tau = q_m - 1, x on (0, q_m]
      (eq. 13); derivative 1 / (x - tau) above q_m (eq. 14).  tau = q_m - 1 makes both
      the function and its derivative continuous at q_m.
    """
    x = np.asarray(x, dtype=np.float64)
    return {kind: _hwgq.surrogate(x, q_max, kind, np) for kind in BACKWARDS}


def _check_backward(backward) -> tuple:
    if isinstance(backward, str):
        backward = (backward,)
    return tuple(_hwgq.check_backward(b) for b in backward)


def plot_curves(table=None, kind: str = "halfwave", backward=BACKWARDS, x_range=None, ax=None):
    """Forward and backward functions of a quantized activation (HWGQ, Figure 1).

    Left panel: the functions; right panel: their derivatives.

    * ``kind="halfwave"``: the forward staircase Q(x) of ``table`` (eq. 7,
      ``Q(x) = q_i`` for ``x`` in ``(t_i, t_{i+1}]``) against ReLU(x), with the backward
      approximations named in ``backward``: vanilla ReLU (eq. 11), clipped ReLU (eq. 12)
      and log-tailed ReLU (eqs. 13-14), q_m being the largest level.
    * ``kind="sign"``: the binary baseline, sign(x) forward (x >= 0 -> +1, eq. 3) and
      the hard tanh clip(x, -1, 1) backward.

    Parameters
    ----------
    table : QuantizerTable or path, optional
        Half-wave only.  Default ``solve(bits=2, dist="halfwave-gaussian", uniform=True)``,
        HWGQ's 2-bit uniform quantizer (step 0.5388).
    kind : {"halfwave", "sign"}
    backward : sequence of {"vanilla", "clipped", "log-tailed"}
    x_range : (float, float), optional
        Horizontal extent; default (-1, q_m + 2) or (-2, 2) for sign.
    ax : pair of Axes, optional
        Draw into these two axes instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    kind = str(kind).lower().replace("_", "-")
    if kind in ("half-wave", "hwgq"):
        kind = "halfwave"
    if kind not in ("halfwave", "sign"):
        raise InvalidInputError(f"unknown curve kind {kind!r}; valid: halfwave, sign")
    if kind == "sign":
        if table is not None:
            raise InvalidInputError("kind='sign' draws the fixed sign / hard-tanh pair and takes "
                                    "no table")
        return _plot_sign(x_range, ax)
    names = _check_backward(backward)
    table = _as_table(table) if table is not None else solve(
        bits=2, dist="halfwave-gaussian", uniform=True)
    q_max = float(table.levels[-1])
    lo, hi = x_range if x_range is not None else (-1.0, q_max + 2.0)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise InvalidInputError(f"x_range must be two finite numbers lo < hi, got {x_range!r}")
    x = np.linspace(lo, hi, 4001)
    # put the exact jump points on the grid so the staircase has vertical risers
    x = np.unique(np.concatenate([x, table.thresholds[(table.thresholds > lo) &
                                                      (table.thresholds < hi)]]))
    fig, (ax_f, ax_d) = _new_axes(ax, 2, figsize=(10.0, 4.5))
    curves = backward_functions(x, q_max)

    # ReLU is both the full-precision reference and the vanilla backward function (eq. 11)
    vanilla = "vanilla" in names
    ax_f.plot(x, curves["vanilla"][0], color=_C_BACK["vanilla"] if vanilla else _C_REF,
              lw=1.0, ls=":",
              label="ReLU(x) = vanilla backward" if vanilla else "ReLU(x) (full precision)")
    ax_f.step(x, table.quantize(x), where="post", color=_C_FORWARD, lw=2.2,
              label=f"forward Q(x), {table.n_levels} levels")
    styles = {"clipped": "--", "log-tailed": "-."}
    for name in names:
        if name != "vanilla":
            ax_f.plot(x, curves[name][0], color=_C_BACK[name], lw=1.6, ls=styles[name],
                      label=f"backward: {name} ReLU")
    ax_f.axvline(q_max, color="0.8", lw=0.8, zorder=0)
    ax_f.annotate(f"$q_m$ = {q_max:.4g}", (q_max, 0.0), xytext=(4, 4),
                  textcoords="offset points", fontsize=8, color="0.35")
    ax_f.set_xlabel("pre-activation x (units of the BatchNorm std)")
    ax_f.set_ylabel("activation")
    ax_f.set_title("functions")
    ax_f.legend(loc="upper left", fontsize=8)

    # derivatives: thick to thin so overlapping stretches (all equal 1 on (0, q_m]) stay visible
    widths = {"vanilla": 4.0, "clipped": 2.6, "log-tailed": 1.4}
    ax_d.axhline(0.0, color="0.85", lw=0.8, zorder=0)
    for name in names:
        ax_d.plot(x, curves[name][1], color=_C_BACK[name], lw=widths[name],
                  ls="-" if name != "clipped" else "--",
                  label={"vanilla": "vanilla (eq. 11)", "clipped": "clipped",
                         "log-tailed": r"log-tailed, $1/(x-\tau)$ (eq. 14)"}[name])
    ax_d.axvline(q_max, color="0.8", lw=0.8, zorder=0)
    ax_d.set_ylim(-0.1, 1.25)
    ax_d.set_xlabel("pre-activation x (units of the BatchNorm std)")
    ax_d.set_ylabel("gradient dA/dx used in backprop")
    ax_d.set_title(r"derivatives ($Q'(x) = 0$ almost everywhere)")
    ax_d.legend(loc="upper right", fontsize=8)
    if ax is None:
        kind_txt = f"uniform, step {table.step:.4g}" if table.step is not None else "non-uniform"
        fig.suptitle(f"HWGQ forward and backward: {table.distribution}, {table.bits} bits "
                     f"({kind_txt}, {table.convention} convention)", fontsize=11)
    return fig


def _plot_sign(x_range, ax):
    lo, hi = x_range if x_range is not None else (-2.0, 2.0)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise InvalidInputError(f"x_range must be two finite numbers lo < hi, got {x_range!r}")
    x = np.unique(np.concatenate([np.linspace(lo, hi, 2001), [0.0] if lo < 0 < hi else []]))
    fig, (ax_f, ax_d) = _new_axes(ax, 2, figsize=(10.0, 4.5))
    sign = np.where(x >= 0.0, 1.0, -1.0)  # eq. 3: sign(0) = +1
    htanh = np.clip(x, -1.0, 1.0)
    ax_f.plot(x, x, color=_C_REF, lw=1.0, ls=":", label="identity (full precision)")
    ax_f.step(x, sign, where="post", color=_C_FORWARD, lw=2.2, label="forward: sign(x)")
    ax_f.plot(x, htanh, color=_C_BACK["vanilla"], lw=1.6, ls="--",
              label="backward: hard tanh")
    ax_f.set_ylim(-1.6, 1.6)
    ax_f.set_xlabel("pre-activation x")
    ax_f.set_ylabel("activation")
    ax_f.set_title("functions")
    ax_f.legend(loc="upper left", fontsize=8)

    ax_d.plot(x, (np.abs(x) <= 1.0).astype(float), color=_C_BACK["vanilla"], lw=2.0, ls="--",
              label=r"hard tanh: 1 on $|x| \leq 1$")
    ax_d.plot(x, np.zeros_like(x), color=_C_FORWARD, lw=2.2, label=r"sign: 0 for $x \neq 0$")
    if lo < 0.0 < hi:
        # sign' is 2 delta(x): an arrow for the impulse, its weight written beside it
        ax_d.annotate("", xy=(0.0, 1.4), xytext=(0.0, 0.0),
                      arrowprops={"arrowstyle": "-|>", "color": _C_FORWARD, "lw": 1.6})
        ax_d.annotate(r"$2\,\delta(x)$", (0.0, 1.4), xytext=(6, -4), textcoords="offset points",
                      color=_C_FORWARD, fontsize=9)
    ax_d.set_ylim(-0.1, 1.6)
    ax_d.set_xlabel("pre-activation x")
    ax_d.set_ylabel("gradient dA/dx used in backprop")
    ax_d.set_title("derivatives")
    ax_d.legend(loc="upper right", fontsize=8)
    if ax is None:
        fig.suptitle("Binary activation: sign forward, hard tanh backward", fontsize=11)
    return fig


# ----------------------------------------------------------------------- levels


def _density(dist, x):
    """Continuous density of ``dist`` at ``x`` (user units) through the solver's own
    kernel: p_X(x) = p_Z((x - loc) / scale) / scale."""
    args = dist.kernel_args()[:4]
    z = (np.asarray(x, dtype=np.float64) - dist.loc) / dist.scale
    return np.array([K.pdf(*args, float(v)) for v in z]) / dist.scale


def plot_levels(table, dist=None, ax=None):
    """The levels and thresholds of ``table`` drawn over the input density.

    Thresholds are dashed vertical lines, levels solid vertical lines with a marker on
    the axis.  For the half-wave Gaussian the point mass P(X = 0) = 1/2 (the ReLU zeros)
    has no density; it is drawn as an arrow at 0 labelled with its mass.

    Parameters
    ----------
    table : QuantizerTable or path
    dist : str or Distribution, optional
        Density to draw; default the table's own (``table.distribution`` with
        ``table.params``).  A table fitted to data (``empirical``) has none: only the
        levels are drawn.
    ax : Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    table = _as_table(table)
    if dist is None and table.distribution != "empirical":
        dist = get_distribution(table.distribution, **table.params)
    elif dist is not None:
        dist = get_distribution(dist)
    fig, (axis,) = _new_axes(ax)
    levels, thresholds = table.levels, table.thresholds
    span = float(levels[-1] - levels[0])
    lo = float(levels[0]) - 0.15 * span
    hi = float(levels[-1]) + 0.15 * span
    if dist is not None:
        # at least +-3.5 standard deviations of the input, within its support
        zlo, zhi = dist.reach
        lo = min(lo, dist.loc + dist.scale * max(zlo, -3.5))
        hi = max(hi, dist.loc + dist.scale * min(zhi, 3.5))
        if dist.pm_w > 0.0 or dist.reach[0] == 0.0:
            lo = min(float(levels[0]), dist.loc) - 0.08 * (hi - lo)
        x = np.linspace(lo, hi, 1501)
        x = np.unique(np.concatenate([x, [dist.loc]]))  # the half-wave edge, exactly
        p = _density(dist, x)
        axis.fill_between(x, p, color=_C_DENSITY, alpha=0.18, lw=0)
        axis.plot(x, p, color=_C_DENSITY, lw=1.6, label=f"density of {dist.describe()}")
        top = float(np.max(p))
        if dist.pm_w > 0.0:
            where = dist.loc + dist.scale * dist.pm_loc
            height = 1.15 * top
            axis.annotate("", xy=(where, height), xytext=(where, 0.0), zorder=6,
                          arrowprops={"arrowstyle": "-|>", "color": _C_DENSITY, "lw": 2.2})
            axis.plot([], [], color=_C_DENSITY, marker=r"$\uparrow$", ls="none", ms=10,
                      label=f"point mass P(X = {where:g}) = {dist.pm_w:g} (ReLU zeros)")
            axis.annotate(f"mass {dist.pm_w:g}", (where, height), xytext=(7, -4),
                          textcoords="offset points", color=_C_DENSITY, fontsize=9, zorder=6,
                          bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none"})
            top = height
        axis.set_ylim(0.0, 1.3 * top)
        axis.set_ylabel("probability density")
    else:
        axis.set_ylim(0.0, 1.0)
        axis.set_yticks([])
        axis.set_ylabel("(no density: table fitted to data)")
    many = table.n_levels > 40
    # one collection per kind (not one line per threshold): a 16-bit table has 65,535
    across = axis.get_xaxis_transform()  # x in data units, y from 0 to 1 of the axes
    axis.vlines(thresholds, 0.0, 1.0, transform=across, colors=_C_THRESH,
                linewidths=0.4 if many else 1.0, linestyles="--", label="thresholds $t_i$")
    if not many:
        axis.vlines(levels, 0.0, 1.0, transform=across, colors=_C_LEVEL, linewidths=1.4,
                    alpha=0.9, label="levels $q_i$")
    axis.plot(levels, np.zeros_like(levels), ls="none", marker="v" if not many else "|",
              ms=7, color=_C_LEVEL, clip_on=False, zorder=5,
              label=None if not many else "levels $q_i$")
    if table.n_levels <= 16:
        # level values as ticks on a top axis: readable and never on top of the legend
        top_axis = axis.secondary_xaxis("top")
        top_axis.set_xticks(levels, [f"{q:.4g}" for q in levels], fontsize=7.5,
                            color=_C_LEVEL, rotation=0 if table.n_levels <= 8 else 45)
        top_axis.tick_params(colors=_C_LEVEL)
    axis.set_xlim(lo, hi)
    unit = "input units" if table.distribution == "empirical" else "units of the input"
    axis.set_xlabel(f"x ({unit})")
    kind = f"uniform, step {table.step:.4g}" if table.step is not None else "Lloyd-Max"
    conv = "" if table.convention == "none" else f", {table.convention}"
    axis.set_title(f"{table.distribution}: {table.n_levels} levels ({kind}{conv}), "
                   f"MSE {table.mse:.4g}, SQNR {table.sqnr_db:.2f} dB", fontsize=10)
    axis.legend(loc="upper right", fontsize=8)
    return fig


