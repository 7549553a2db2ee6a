"""Naive oracle: slow, obviously correct reference quantizers.

Cell integrals by ``scipy.integrate.quad`` on ``scipy.stats`` densities (independent of
the kernels' closed forms and quadrature), plain Lloyd iteration for non-uniform tables,
and ``scipy.optimize.minimize_scalar`` for the uniform step.  Used only in tests.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import integrate, optimize, stats

QUAD = dict(epsabs=1e-15, epsrel=1e-13, limit=200)


class NaiveDist:
    """Continuous density ``pdf`` on (lo, hi) with total mass ``cmass`` plus an optional
    point mass ``pm_w`` at ``pm_loc``."""

    def __init__(self, pdf, lo, hi, pm_loc=0.0, pm_w=0.0, breaks=()):
        self.pdf, self.lo, self.hi = pdf, lo, hi
        self.pm_loc, self.pm_w = pm_loc, pm_w
        self.breaks = tuple(breaks)  # kinks quad should know about

    def _quad(self, f, a, b):
        a, b = max(a, self.lo), min(b, self.hi)
        if not a < b:
            return 0.0
        pts = [a] + [c for c in self.breaks if a < c < b] + [b]
        return sum(integrate.quad(f, u, v, **QUAD)[0] for u, v in zip(pts[:-1], pts[1:]))

    def moments(self, a, b):
        """(mass, first moment, second moment) on the cell (a, b]."""
        m0 = self._quad(self.pdf, a, b)
        m1 = self._quad(lambda x: x * self.pdf(x), a, b)
        m2 = self._quad(lambda x: x * x * self.pdf(x), a, b)
        if self.pm_w and a < self.pm_loc <= b:
            m0 += self.pm_w
            m1 += self.pm_w * self.pm_loc
            m2 += self.pm_w * self.pm_loc ** 2
        return m0, m1, m2

    def mse(self, levels, thresholds):
        edges = np.concatenate([[-np.inf], thresholds, [np.inf]])
        total = 0.0
        for i, q in enumerate(levels):
            m0, m1, m2 = self.moments(edges[i], edges[i + 1])
            total += m2 - 2 * q * m1 + q * q * m0
        return total


def gaussian(mean=0.0, std=1.0):
    d = stats.norm(mean, std)
    return NaiveDist(d.pdf, -np.inf, np.inf, breaks=(mean,))


def halfwave(std=1.0):
    """ReLU(N(0, std^2)): point mass 1/2 at 0, normal density on (0, inf)."""
    d = stats.norm(0.0, std)
    return NaiveDist(d.pdf, 0.0, np.inf, pm_loc=0.0, pm_w=0.5)


def half_normal(std=1.0):
    d = stats.halfnorm(scale=std)
    return NaiveDist(d.pdf, 0.0, np.inf)


def laplace(loc=0.0, scale=1.0):
    d = stats.laplace(loc, scale)
    return NaiveDist(d.pdf, -np.inf, np.inf, breaks=(loc,))


def uniform(low=0.0, high=1.0):
    d = stats.uniform(low, high - low)
    return NaiveDist(d.pdf, low, high)


def scipy_dist(name, **params):
    d = getattr(stats, name)(**params)
    lo, hi = d.support()
    return NaiveDist(d.pdf, lo, hi, breaks=(float(d.median()),))


def lloyd(dist: NaiveDist, levels, *, pinned_levels=(), pinned_thresholds=None,
          tol=1e-13, max_iter=20000):
    """Plain Lloyd: thresholds to midpoints (or pinned), levels to centroids, repeat.

    ``pinned_thresholds`` maps a threshold index to its fixed value.
    Returns (levels, thresholds, iterations).
    """
    q = np.array(levels, dtype=float)
    pinned_thresholds = dict(pinned_thresholds or {})
    n = q.size
    for it in range(1, max_iter + 1):  # noqa: B007 - returned after the loop
        t = 0.5 * (q[1:] + q[:-1])
        for j, v in pinned_thresholds.items():
            t[j] = v
        edges = np.concatenate([[-np.inf], t, [np.inf]])
        new = q.copy()
        for i in range(n):
            if i in pinned_levels:
                continue
            m0, m1, _ = dist.moments(edges[i], edges[i + 1])
            new[i] = m1 / m0
        change = np.max(np.abs(new - q))
        q = new
        if change < tol:
            break
    t = 0.5 * (q[1:] + q[:-1])
    for j, v in pinned_thresholds.items():
        t[j] = v
    return q, t, it


def uniform_step(dist: NaiveDist, n, *, offset=0.0, coef=None, pinned_thresholds=None,
                 bracket=(1e-3, 5.0)):
    """MSE-optimal step of q_i = offset + coef_i * step by bounded scalar minimisation."""
    coef = np.arange(n) - 0.5 * (n - 1) if coef is None else np.asarray(coef, dtype=float)
    pinned_thresholds = dict(pinned_thresholds or {})

    def table(step):
        q = offset + coef * step
        t = 0.5 * (q[1:] + q[:-1])
        for j, v in pinned_thresholds.items():
            t[j] = v
        return q, t

    def mse(step):
        return dist.mse(*table(step))

    res = optimize.minimize_scalar(mse, bounds=bracket, method="bounded",
                                   options={"xatol": 1e-12})
    return res.x, res.fun


def panter_dite_gaussian():
    return math.sqrt(3.0) * math.pi / 2.0
