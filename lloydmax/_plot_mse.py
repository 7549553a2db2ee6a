"""MSE and SQNR of optimal quantizers against bit-width, with the Panter-Dite limit and
the dead-zone floor."""
from __future__ import annotations

import math

import numpy as np

from . import _kernels as K
from ._dists import get_distribution
from ._plotting import (
    _C_CONV,
    _C_FORWARD,
    _C_LEVEL,
    _DEADZONE_EPS,
    _new_axes,
)
from ._solver import signal_power, solve
from .errors import ConventionError, ConvergenceError, InvalidInputError

__all__ = ["plot_mse", "panter_dite"]


# ----------------------------------------------------------------------- MSE


def panter_dite(n_levels, dist="gaussian", params=None):
    """High-resolution (Panter-Dite 1951) MSE of an optimal ``n_levels``-level quantizer.

    ``D ~ (1/12) (int p(x)^(1/3) dx)^3 / N^2`` over the continuous part p of the density
    (the integral is taken numerically with scipy.integrate.quad over the solver's own
    density kernel).  A point mass (the ReLU zeros) takes one level of its own and adds
    no error, so N is ``n_levels - 1`` for the half-wave Gaussian.

    Closed forms: unit Gaussian ``sqrt(3) pi / 2 / N^2`` (= 2.7207 / N^2); half-wave
    Gaussian with m = n_levels - 1 positive levels: p is phi on (0, inf), whose
    int p^(1/3) is half the Gaussian's, so ``D ~ (sqrt(3) pi / 2) / (8 m^2)``
    ``= (1/2) (sqrt(3) pi / 2) / (2m)^2``: half the MSE of the 2m-level Gaussian
    quantizer, as the hwgq convention's exact identity says.
    """
    from scipy import integrate

    d = get_distribution(dist, **(params or {}))
    args = d.kernel_args()[:4]
    zlo, zhi = d.reach
    # split at the mode region so quad sees the bulk of the integrand
    pieces = [(zlo, max(zlo, -1.0)), (max(zlo, -1.0), min(zhi, 1.0)), (min(zhi, 1.0), zhi)]
    total = 0.0
    for a, b in pieces:
        if b > a:
            total += integrate.quad(lambda z: K.pdf(*args, z) ** (1.0 / 3.0), a, b,
                                    limit=200, epsabs=0.0, epsrel=1e-11)[0]
    n = np.asarray(n_levels, dtype=np.float64)
    n_cont = n - 1.0 if d.pm_w > 0.0 else n
    return d.scale ** 2 * total ** 3 / 12.0 / n_cont ** 2


def _mse_series(bits, dist, conventions):
    """{(label, convention, uniform): (bits, mse, sqnr)} for every solvable point."""
    series = {}
    for conv in conventions:
        for uniform in (False, True):
            pts = []
            for b in bits:
                kwargs = {} if conv is None else (
                    {"zero_threshold": _DEADZONE_EPS} if conv == "deadzone"
                    else {"convention": conv})
                try:
                    t = solve(b, dist=dist, uniform=uniform, **kwargs)
                except (ConvergenceError, ConventionError):
                    if conv != "deadzone":
                        raise
                    # a uniform grid with a fixed dead zone once the best step falls
                    # below eps: no valid table, so no point
                    continue
                pts.append((b, t.mse, t.sqnr_db))
            series[(conv, uniform)] = pts
    return series


def plot_mse(bits=range(1, 9), dist="halfwave-gaussian", quantity: str = "mse", ax=None):
    """MSE (log scale) or SQNR against bit-width, uniform and non-uniform.

    For the half-wave Gaussian, one curve per convention (hwgq, round, and deadzone with
    TSQ's eps = 0.32) and quantizer kind; for other distributions, uniform and
    non-uniform only.  The dotted line is the Panter-Dite high-resolution MSE
    (:func:`panter_dite`): ``(sqrt(3) pi / 2) / (8 m^2)`` with m = 2^b - 1 positive
    levels for the half-wave Gaussian, ``(sqrt(3) pi / 2) / N^2`` for the unit Gaussian.
    Non-uniform tables approach it from above; uniform ones fall behind it (their error
    decays like (log N) / N^2).  A fixed dead zone leaves the error of (0, eps] however
    many levels there are, so its curves flatten.

    Parameters
    ----------
    bits : iterable of int
    dist : str
    quantity : {"mse", "sqnr"}
        SQNR is ``10 log10(E[X^2] / MSE)`` in dB.
    ax : Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    quantity = str(quantity).lower()
    if quantity not in ("mse", "sqnr"):
        raise InvalidInputError(f"quantity must be 'mse' or 'sqnr', got {quantity!r}")
    bits = sorted({int(b) for b in bits})
    if not bits:
        raise InvalidInputError("give at least one bit-width")
    d = get_distribution(dist)
    conventions = ("hwgq", "round", "deadzone") if d.halfwave else (None,)
    series = _mse_series(bits, d, conventions)
    fig, (axis,) = _new_axes(ax)
    for (conv, uniform), pts in series.items():
        if not pts:
            continue
        b, mse, sqnr = (np.array(v) for v in zip(*pts))
        name = "Lloyd-Max" if not uniform else "uniform"
        if conv is not None:
            extra = f", eps = {_DEADZONE_EPS}" if conv == "deadzone" else ""
            name = f"{conv}{extra}: {name}"
        if len(pts) < len(bits):
            name += f" (none valid at b > {int(b[-1])})"
        axis.plot(b, mse if quantity == "mse" else sqnr, marker="o" if not uniform else "s",
                  ms=4, lw=1.6, ls="-" if not uniform else "--",
                  color=_C_CONV.get(conv, _C_FORWARD if not uniform else _C_LEVEL), label=name)
    if d.halfwave and "deadzone" in conventions:
        floor = _deadzone_floor(d, _DEADZONE_EPS)
        y = floor if quantity == "mse" else 10.0 * math.log10(_signal_power(d) / floor)
        axis.axhline(y, color=_C_CONV["deadzone"], lw=0.8, ls=(0, (1, 3)))
        axis.annotate(rf"dead-zone floor $E[X^2;\ 0 < X \leq \varepsilon]$ = {floor:.3g}",
                      (bits[-1], y), xytext=(0, 4 if quantity == "mse" else -12),
                      textcoords="offset points", ha="right", fontsize=8,
                      color=_C_CONV["deadzone"])
    bb = np.linspace(bits[0], bits[-1], 200)
    pd_mse = panter_dite(2.0 ** bb, d)
    power = _signal_power(d)
    if d.halfwave:
        pd_label = r"Panter-Dite $\frac{\sqrt{3}\pi/2}{8m^2}$, $m = 2^b - 1$"
    elif d.name == "gaussian":
        pd_label = r"Panter-Dite $\frac{\sqrt{3}\pi}{2N^2}$"
    else:
        pd_label = r"Panter-Dite $\frac{1}{12N^2}(\int p^{1/3})^3$"
    axis.plot(bb, pd_mse if quantity == "mse" else 10.0 * np.log10(power / pd_mse),
              color="k", lw=1.0, ls=":", label=pd_label)
    if quantity == "mse":
        axis.set_yscale("log")
        axis.set_ylabel(r"MSE $E[(Q(X) - X)^2]$ (input units$^2$)")
    else:
        axis.set_ylabel(r"SQNR $10\log_{10}(E[X^2]/\mathrm{MSE})$ (dB)")
    axis.set_xlabel("bits b (levels N = 2^b)")
    axis.set_xticks(bits)
    axis.grid(True, which="major", alpha=0.3)
    axis.set_title(f"{'MSE' if quantity == 'mse' else 'SQNR'} of optimal quantizers of "
                   f"{d.describe()}", fontsize=10)
    axis.legend(fontsize=7.5, loc="lower left" if quantity == "mse" else "upper left", ncol=2)
    return fig


def _signal_power(d) -> float:
    """E[X^2] of the distribution, from a one-cell evaluation by the kernels."""
    summary = np.empty(3)
    K.summarize(*d.kernel_args(), np.zeros(1), np.empty(0), summary)
    return signal_power(d, summary[1])


def _deadzone_floor(d, eps: float) -> float:
    """Error no dead-zone quantizer can avoid: every x in (0, eps] is sent to 0, so
    E[X^2; 0 < X <= eps] = mass * (variance + centroid^2) of that cell."""
    mass, centroid, var = K.cell_moments(*d.kernel_args(), 0.0, eps / d.scale)
    return d.scale ** 2 * mass * (var + centroid * centroid)
