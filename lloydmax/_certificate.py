"""A-posteriori certificate of a table solved on a tabulated (scipy.stats) density.

The kernels integrate a tabulated model of the density; this module checks the answer
against the distribution itself, independently: ``scipy.integrate.quad`` on the scipy
density over each checked cell gives its mass M0 and centroid c, and the table passes
when, for every checked cell,

    |q_i - c_i| <= CENTROID_TOL * (q_max - q_min)     (free levels: the centroid condition)
    |M0_i - M0_i(kernel)| <= MASS_RTOL * M0_i + MASS_ATOL

Which cells: all of them up to ``FULL_CELLS`` levels; above that the first and last
``EDGE_CELLS`` (the tails, where a tabulation is weakest), the cells next to each
singular point, and an evenly spaced sample, ``SAMPLE_CELLS`` in all.  The cost is a
few quad calls per checked cell (about 1-30 ms per table), small against the
tabulation itself.
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


def certify(dist, z_levels, z_thresholds, level_pinned) -> str | None:
    """None when the table passes, else a sentence naming the worst cell."""
    frozen = dist.frozen
    if frozen is None:
        return None
    n = z_levels.size
    loc, s = dist.loc, dist.scale
    levels = loc + s * np.asarray(z_levels)
    edges = np.concatenate([[-np.inf], loc + s * np.asarray(z_thresholds), [np.inf]])
    mass = np.empty(n)
    mean = np.empty(n)
    K.cell_table(*dist.kernel_args(), np.ascontiguousarray(z_thresholds, dtype=np.float64),
                 mass, mean)
    kp = dist.kparams
    breaks = [loc + s * float(kp[2 * k]) for k in range(2)
              if kp.size >= 4 and kp[2 * k + 1] != 0.0]
    singular_cells = [int(np.searchsorted(edges[1:-1], x)) for x in breaks]
    span = float(levels[-1] - levels[0]) or 1.0
    for i in _cells(n, singular_cells):
        m0, m1 = _moments(frozen, float(edges[i]), float(edges[i + 1]), breaks)
        if not (math.isfinite(m0) and math.isfinite(m1)):
            return f"scipy.integrate.quad could not integrate cell {i}"
        if abs(m0 - mass[i]) > MASS_RTOL * m0 + MASS_ATOL:
            return (f"cell {i} has mass {m0:.10g} by quad but {mass[i]:.10g} in the "
                    f"tabulated density")
        if level_pinned[i] or m0 <= 0.0:
            continue
        err = abs(levels[i] - m1 / m0) / span
        if err > CENTROID_TOL:
            return (f"level {i} is {err:.2g} of the span away from its cell's centroid by "
                    f"quad (certificate tolerance {CENTROID_TOL:g})")
    return None
