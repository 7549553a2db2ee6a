"""A-posteriori certificate of a table solved on a tabulated (scipy.stats) density.

The kernels integrate a tabulated model of the density; this module checks the answer
against the distribution itself, independently: ``scipy.integrate.quad`` on the scipy
density over each checked cell gives its mass M0 and centroid c, and the table passes
when, for every checked cell,

    |q_i - c_i| <= CENTROID_TOL * (q_max - q_min)     (free levels: the centroid condition)
    |M0_i - M0_i(kernel)| <= MASS_RTOL * M0_i + MASS_ATOL

Which cells: all of them up to ``FULL_CELLS`` levels; above that the first and last
``EDGE_CELLS`` (the tails, where a tabulation is weakest), the cells next to each
singular point, and an evenly spaced sample, ``SAMPLE_CELLS`` in all.

How: scipy's own density (never the tabulated model) is integrated over all checked
cells at once by composite Gauss-Legendre, 20 nodes on each of 8 and again on each of
16 equal panels (an infinite cell (t, inf) is first mapped onto (0, 1) by
x = t + L (1 - u) / u with L = max(|t|, std), which turns an algebraic tail into a
smooth power of u); two scipy ``pdf`` calls in all.  A cell whose two
rules differ by more than ``RULE_RTOL`` (a singular point at an edge, an algebraic
tail that the map leaves non-smooth), and every cell next to a singular point, is
integrated by ``scipy.integrate.quad`` instead.  The cost is about 1-5 ms per table
(it was a few quad calls per cell, 0.1-0.7 s, before).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from . import _kernels as K

__all__ = ["certify", "CENTROID_TOL", "MASS_RTOL"]

CENTROID_TOL = 1e-8
MASS_RTOL = 1e-7
MASS_ATOL = 1e-14
FULL_CELLS = 64
EDGE_CELLS = 8
SAMPLE_CELLS = 64
_QUAD = dict(epsabs=0.0, epsrel=1e-12, limit=400)
RULE_RTOL = 1e-11  # agreement of the 8- and 16-panel rules that lets a cell skip quad
_GL_X, _GL_W = np.polynomial.legendre.leggauss(20)


def _panel_rule(panels: int):
    """Nodes u in (0, 1) and weights of the composite rule: 20-point Gauss-Legendre on
    each of ``panels`` equal panels."""
    edges = np.arange(panels)[:, None] / panels
    u = (edges + (_GL_X[None, :] + 1.0) / (2.0 * panels)).ravel()
    w = np.tile(_GL_W / (2.0 * panels), panels)
    return u, w


def _rule_moments(frozen, a, b, scale, panels):
    """(mass, first moment) of the scipy density on each cell (a_i, b_i) by the
    composite rule; a_i = -inf or b_i = +inf mapped onto (0, 1) first."""
    u, w = _panel_rule(panels)
    a = a[:, None]
    b = b[:, None]
    with np.errstate(all="ignore"):
        left_inf = np.isneginf(a)
        right_inf = np.isposinf(b)
        finite = ~(left_inf | right_inf)
        x = np.where(finite, a + (b - a) * u, 0.0)
        jac = np.where(finite, b - a, 0.0)
        # x = t + L (1 - u) / u, L = max(|t|, std): an algebraic tail p ~ x^-(k+1)
        # becomes a polynomial-like u^(k-1) at u -> 0, and a Gaussian tail stays smooth
        edge = np.where(right_inf, a, b)
        big = np.maximum(np.abs(np.where(np.isfinite(edge), edge, 0.0)), scale)
        t = big * (1.0 - u) / u
        dt = big / (u * u)
        x = np.where(right_inf & ~left_inf, a + t, x)
        x = np.where(left_inf & ~right_inf, b - t, x)
        jac = np.where(finite, jac, dt)
        f = frozen.pdf(x) * jac * w
        f = np.where(np.isfinite(f), f, np.nan)
        return f.sum(axis=1), (f * x).sum(axis=1)


def _cells(n: int, singular_cells) -> np.ndarray:
    if n <= FULL_CELLS:
        return np.arange(n)
    picks = set(range(EDGE_CELLS)) | set(range(n - EDGE_CELLS, n))
    for c in singular_cells:
        picks |= {j for j in range(c - 2, c + 3) if 0 <= j < n}
    rest = max(SAMPLE_CELLS - len(picks), 2)
    picks |= {round(float(v)) for v in np.linspace(0, n - 1, rest)}
    return np.array(sorted(picks))


def _moments(frozen, a: float, b: float, breaks) -> tuple[float, float]:
    """Mass and first moment of the scipy density on (a, b), split at the breaks."""
    from scipy import integrate

    lo, hi = (float(v) for v in frozen.support())
    a, b = max(a, lo), min(b, hi)
    if not a < b:
        return 0.0, 0.0
    pts = [a, *sorted(c for c in breaks if a < c < b), b]
    m0 = m1 = 0.0
    with np.errstate(all="ignore"), warnings.catch_warnings():
        # quad's own accuracy warnings: the comparison below is the verdict
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        for u, v in zip(pts[:-1], pts[1:]):
            m0 += integrate.quad(frozen.pdf, u, v, **_QUAD)[0]
            m1 += integrate.quad(lambda x: x * frozen.pdf(x), u, v, **_QUAD)[0]
    return m0, m1


def certify(dist, z_levels, z_thresholds, level_pinned, mass=None) -> str | None:
    """None when the table passes, else a sentence naming the worst cell.  ``mass``:
    the kernel's own cell masses, when the caller has them from its last pass."""
    frozen = dist.frozen
    if frozen is None:
        return None
    n = z_levels.size
    loc, s = dist.loc, dist.scale
    levels = loc + s * np.asarray(z_levels)
    edges = np.concatenate([[-np.inf], loc + s * np.asarray(z_thresholds), [np.inf]])
    if mass is None:
        mass = np.empty(n)
        K.cell_table(*dist.kernel_args(), np.ascontiguousarray(z_thresholds, dtype=np.float64),
                     mass, np.empty(n))
    kp = dist.kparams
    breaks = [loc + s * float(kp[2 * k]) for k in range(2)
              if kp.size >= 4 and kp[2 * k + 1] != 0.0]
    singular_cells = [int(np.searchsorted(edges[1:-1], x)) for x in breaks]
    span = float(levels[-1] - levels[0]) or 1.0
    cells = _cells(n, singular_cells)
    lo, hi = (float(v) for v in frozen.support())
    a = np.maximum(edges[cells], lo)
    b = np.minimum(edges[cells + 1], hi)
    near_break = np.zeros(cells.size, dtype=bool)
    for x in breaks:
        near_break |= (a <= x) & (x <= b)
    usable = (a < b) & ~near_break
    m0 = np.zeros(cells.size)
    m1 = np.zeros(cells.size)
    if np.any(usable):
        c0, c1 = _rule_moments(frozen, a[usable], b[usable], s, 8)
        f0, f1 = _rule_moments(frozen, a[usable], b[usable], s, 16)
        with np.errstate(all="ignore"):
            ok = ((np.abs(f0 - c0) <= RULE_RTOL * np.abs(f0))
                  & (np.abs(f1 - c1) <= RULE_RTOL * (np.abs(f1) + span * np.abs(f0))))
        m0[usable], m1[usable] = f0, f1
        usable[np.flatnonzero(usable)[~ok]] = False
    for k in np.flatnonzero(~usable):
        m0[k], m1[k] = _moments(frozen, float(edges[cells[k]]), float(edges[cells[k] + 1]),
                                breaks)
    for k, i in enumerate(cells):
        if not (math.isfinite(m0[k]) and math.isfinite(m1[k])):
            return f"scipy.integrate.quad could not integrate cell {i}"
        if abs(m0[k] - mass[i]) > MASS_RTOL * m0[k] + MASS_ATOL:
            return (f"cell {i} has mass {m0[k]:.10g} by quad but {mass[i]:.10g} in the "
                    f"tabulated density")
        if level_pinned[i] or m0[k] <= 0.0:
            continue
        err = abs(levels[i] - m1[k] / m0[k]) / span
        if err > CENTROID_TOL:
            return (f"level {i} is {err:.2g} of the span away from its cell's centroid by "
                    f"quad (certificate tolerance {CENTROID_TOL:g})")
    return None
