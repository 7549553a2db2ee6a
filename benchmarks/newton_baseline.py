"""The baseline a competent user would write instead of lloydmax: vectorized numpy/scipy
Newton on the Lloyd-Max conditions.

Used by ``benchmarks/solver.py``; nothing here is part of the package.

**Non-uniform tables.**  Unknowns: the free levels ``q`` (sorted), with thresholds at the
midpoints and fixed outer edges ``lo``, ``hi`` (``-inf``/``+inf``, or ``0`` on the left
for the half-wave Gaussian, whose level 0 and first threshold are pinned at 0).  Newton
on the centroid conditions ``G_i = q_i - c_i = 0``, ``c_i = M1_i / M0_i``, with ``G``'s
own tridiagonal Jacobian (solved by :func:`scipy.linalg.solve_banded`)::

    dc_i / dt_upper = f(t) (t - c_i) / M0_i,    dc_i / dt_lower = f(t) (c_i - t) / M0_i,
    dt / dq = 1/2 for each neighbour of a midpoint

and a backtracking (Armijo) line search on ``sum G^2`` (at most 8 halvings, then a Lloyd
step ``q <- c``).  Cell masses come from the tail function ``T(x) = P(X > |x|)`` of a
symmetric density (``ndtr(-|x|)``, ``stdtr(nu, -|x|)``), which keeps every cell's mass
accurate far in the tails: ``M0 = T(a) - T(b)`` right of 0, ``T(b) - T(a)`` left of 0,
``1 - T(a) - T(b)`` across 0.  Partial first moments are closed forms,
``M1 = g(a) - g(b)`` with ``g = phi`` for the Gaussian and
``g(x) = f(x) (nu + x^2) / (nu - 1)`` for Student t (``d/dx g = -x f``).  Starts are the
closed-form compander levels ``F_{f^(1/3)}^-1((i + 1/2) / N)``: ``sqrt(3) Phi^-1(u)`` for
the Gaussian, ``sqrt(nu / nu') t_{nu'}^-1(u)`` with ``nu' = (nu - 2) / 3`` for t.

**Uniform tables** (the Gaussian, symmetric): ``q_k = a_k step``, thresholds
``b_j step``; Newton on the one-dimensional stationarity condition
``h(step) = sum_k a_k (M1_k - a_k step M0_k) = 0`` with its exact derivative, halving a
step that would not keep ``step > 0`` and lower ``|h|``.

Stopping rules are lloydmax's: the relative residual ``max|q - c| / (q_max - q_min)``
(non-uniform, over the free levels, the span including a pinned level 0), or the last
Newton correction relative to the step (uniform), at most ``tol``.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.linalg import solve_banded
from scipy.special import gammaln, ndtr, ndtri, stdtr, stdtrit

__all__ = ["Gaussian", "StudentT", "newton_lloyd_max", "gaussian_table", "halfwave_table",
           "student_t_table", "uniform_gaussian_table"]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Gaussian:
    """The unit Gaussian: pdf, g (M1 = g(a) - g(b)) and the tail P(X > |x|)."""

    @staticmethod
    def pdf_g_tail(t):
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * t * t)
        return pdf, pdf, ndtr(-np.abs(t))

    @staticmethod
    def start(n):
        return math.sqrt(3.0) * ndtri((np.arange(n) + 0.5) / n)

    @staticmethod
    def narrow(a, b, m0, m1):
        """Replace the moments of narrow cells, where the differences of ndtr and phi lose
        digits (a 16-bit table's cells are 1e-4 wide, with masses of 1e-5 from tails of
        0.1): M0 by the midpoint series 2 h phi(m) sum_k He_2k(m) h^2k / (2k + 1)!
        (truncation below 1e-18 relative where h max(1, |m|) <= 0.05) and
        M1 = phi(a) (1 - exp(-(b - a)(b + a) / 2)) by expm1."""
        h = 0.5 * (b - a)
        sel = np.isfinite(h) & (h * np.maximum(1.0, np.abs(a)) <= 0.05)
        if not sel.any():
            return
        a, b, h = a[sel], b[sel], h[sel]
        m = 0.5 * (a + b)
        m2, h2 = m * m, h * h
        he2 = m2 - 1.0
        he4 = (m2 - 6.0) * m2 + 3.0
        he6 = ((m2 - 15.0) * m2 + 45.0) * m2 - 15.0
        he8 = (((m2 - 28.0) * m2 + 210.0) * m2 - 420.0) * m2 + 105.0
        series = 1.0 + h2 * (he2 / 6.0 + h2 * (he4 / 120.0 + h2 * (he6 / 5040.0
                                                                    + h2 * he8 / 362880.0)))
        m0[sel] = 2.0 * h * _INV_SQRT_2PI * np.exp(-0.5 * m2) * series
        m1[sel] = -_INV_SQRT_2PI * np.exp(-0.5 * a * a) * np.expm1(-0.5 * (b - a) * (b + a))


class StudentT:
    """Student t with ``nu > 2`` degrees of freedom (finite variance)."""

    def __init__(self, nu: float):
        self.nu = float(nu)
        self.log_c = (gammaln(0.5 * (nu + 1.0)) - gammaln(0.5 * nu)
                      - 0.5 * math.log(nu * math.pi))

    def pdf_g_tail(self, t):
        nu = self.nu
        u = 1.0 + t * t / nu
        pdf = np.exp(self.log_c - 0.5 * (nu + 1.0) * np.log(u))
        return pdf, pdf * (nu * u) / (nu - 1.0), stdtr(nu, -np.abs(t))

    def start(self, n):
        nu1 = (self.nu - 2.0) / 3.0  # f^(1/3) is a scaled t with nu1 degrees of freedom
        return math.sqrt(self.nu / nu1) * stdtrit(nu1, (np.arange(n) + 0.5) / n)


def _cells(dens, q, lo, hi):
    """Thresholds, pdf at them, cell masses and centroids of the free levels ``q``."""
    t = 0.5 * (q[:-1] + q[1:])
    pdf, g, tail = dens.pdf_g_tail(t)
    n = q.size
    # edges: lo, t, hi; an infinite edge has pdf = g = tail = 0, and an edge at 0 has
    # g = pdf(0) for the Gaussian (the half-wave case), tail = 1/2
    ge = np.empty(n + 1)
    te = np.empty(n + 1)
    ge[1:-1], te[1:-1] = g, tail
    for k, e in ((0, lo), (n, hi)):
        if math.isinf(e):
            ge[k], te[k] = 0.0, 0.0
        else:
            _, gk, tk = dens.pdf_g_tail(np.array([e]))
            ge[k], te[k] = gk[0], tk[0]
    a_neg = np.empty(n + 1, dtype=bool)  # edge < 0
    a_neg[1:-1] = t < 0.0
    a_neg[0], a_neg[-1] = lo < 0.0, hi < 0.0
    right = ~a_neg[:-1]  # cell wholly right of 0 (lower edge >= 0)
    left = a_neg[1:] | (np.append(t, hi) == 0.0)  # upper edge <= 0
    m0 = np.where(right, te[:-1] - te[1:], np.where(left, te[1:] - te[:-1],
                                                    1.0 - te[:-1] - te[1:]))
    m1 = ge[:-1] - ge[1:]
    narrow = getattr(dens, "narrow", None)
    if narrow is not None:
        edges = np.concatenate([[lo], t, [hi]])
        narrow(edges[:-1], edges[1:], m0, m1)
    return t, pdf, m0, m1 / m0


def newton_lloyd_max(dens, q, lo=-math.inf, hi=math.inf, *, span_from=None, tol=1e-12,
                     max_iter=100, max_halvings=8):
    """Newton on the centroid conditions from the start ``q``.

    Returns ``(levels, iterations, evaluations, residual)``; ``evaluations`` counts the
    vectorized passes over the cells (one per trial point).  ``span_from`` is the lowest
    level of the whole table when it is pinned outside ``q`` (0 for the half-wave case).
    """
    q = np.array(q, dtype=np.float64)
    t, pdf, m0, c = _cells(dens, q, lo, hi)
    evals = 1
    for it in range(max_iter + 1):
        G = q - c
        low = q[0] if span_from is None else span_from
        residual = float(np.max(np.abs(G)) / (q[-1] - low))
        if residual <= tol or it == max_iter:
            return q, it, evals, residual
        up = pdf * (t - c[:-1]) / m0[:-1]  # dc_i / dt_i, t_i the upper edge of cell i
        dn = pdf * (c[1:] - t) / m0[1:]  # dc_{i+1} / dt_i, t_i its lower edge
        ab = np.zeros((3, q.size))
        ab[0, 1:] = -0.5 * up
        ab[1] = 1.0
        ab[1, :-1] -= 0.5 * up
        ab[1, 1:] -= 0.5 * dn
        ab[2, :-1] = -0.5 * dn
        step = solve_banded((1, 1), ab, -G, overwrite_ab=True, check_finite=False)
        merit = float((G * G).sum())  # no BLAS: its threads stall on a busy machine
        s = 1.0
        for _ in range(max_halvings + 1):
            trial = q + s * step
            if np.all(trial[1:] > trial[:-1]) and trial[0] > lo and trial[-1] < hi:
                tt, tpdf, tm0, tc = _cells(dens, trial, lo, hi)
                evals += 1
                tG = trial - tc
                if float((tG * tG).sum()) <= (1.0 - 2e-4 * s) * merit:
                    q, t, pdf, m0, c = trial, tt, tpdf, tm0, tc
                    break
            s *= 0.5
        else:  # no acceptable Newton point: a Lloyd step (always sorted and inside)
            q = c
            t, pdf, m0, c = _cells(dens, q, lo, hi)
            evals += 1
    raise AssertionError("unreachable")


def gaussian_table(n, tol=1e-12):
    """Lloyd-Max table of the unit Gaussian: (levels, iterations, evaluations, residual)."""
    return newton_lloyd_max(Gaussian, Gaussian.start(n), tol=tol)


def halfwave_table(n, tol=1e-12):
    """ReLU(N(0,1)) with level 0 and the first threshold pinned at 0 (lloydmax's hwgq
    convention): n - 1 free levels on the half-normal part."""
    m = n - 1
    start = math.sqrt(3.0) * ndtri(0.5 + 0.5 * (np.arange(m) + 0.5) / m)
    q, it, ev, res = newton_lloyd_max(Gaussian, start, lo=0.0, span_from=0.0, tol=tol)
    return np.concatenate([[0.0], q]), it, ev, res


def student_t_table(n, nu, tol=1e-12):
    dens = StudentT(nu)
    return newton_lloyd_max(dens, dens.start(n), tol=tol)


def uniform_gaussian_table(n, tol=1e-12, max_iter=100):
    """Optimal uniform (symmetric) quantizer of the unit Gaussian.

    Returns ``(levels, step, iterations, evaluations, residual)``.
    """
    a = np.arange(n) - 0.5 * (n - 1)  # level coefficients
    b = np.zeros(n + 1)  # edge coefficients; the outer edges (+-inf) contribute nothing
    b[1:-1] = np.arange(1, n) - 0.5 * n

    def h_and_slope(step):
        t = b[1:-1] * step
        pdf, g, tail = Gaussian.pdf_g_tail(t)
        fe, ge, te, tfe = (np.zeros(n + 1) for _ in range(4))
        fe[1:-1], ge[1:-1], te[1:-1], tfe[1:-1] = pdf, g, tail, t * pdf
        neg = np.zeros(n + 1, dtype=bool)
        neg[0], neg[1:-1] = True, t < 0.0
        right, left = ~neg[:-1], neg[1:] | (np.append(t, 1.0) == 0.0)
        m0 = np.where(right, te[:-1] - te[1:], np.where(left, te[1:] - te[:-1],
                                                        1.0 - te[:-1] - te[1:]))
        m1 = ge[:-1] - ge[1:]
        edges = np.concatenate([[-math.inf], t, [math.inf]])
        Gaussian.narrow(edges[:-1], edges[1:], m0, m1)
        dm0 = b[1:] * fe[1:] - b[:-1] * fe[:-1]
        dm1 = b[1:] * tfe[1:] - b[:-1] * tfe[:-1]
        h = float((a * (m1 - a * step * m0)).sum())
        slope = float((a * (dm1 - a * m0 - a * step * dm0)).sum())
        return h, slope

    start = Gaussian.start(n)
    step = (start[-1] - start[0]) / (n - 1)
    h, slope = h_and_slope(step)
    evals, iterations, residual = 1, 0, math.inf
    while iterations < max_iter and residual > tol:
        iterations += 1
        delta = -h / slope
        s = 1.0
        while True:
            trial = step + s * delta
            if trial > 0.0:
                th, tslope = h_and_slope(trial)
                evals += 1
                if abs(th) < abs(h) or s < 1e-3:
                    break
            s *= 0.5
        residual = abs(delta) / step
        if abs(th) >= abs(h) and residual < 1e-8:
            # |h| no longer drops: h is rounding noise here (at 16 bits it sums terms of
            # 5e3 to a root known to about 1e-10 of the step); stop at the better point
            break
        step, h, slope = trial, th, tslope
    return a * step, step, iterations, evals, residual
