"""The solver's fast paths give the numbers of the plain paths, and its tables hold
against an independent 40-digit mpmath Lloyd-Max solution.

Fast paths (issue 9): per-cell code that takes no arrays, the mirrored half for
symmetric tables, the piece moments of a
tabulated density integrated once, the cells handed back by the solver instead of a
second pass, the vectorised certificate, the per-process cache of tabulated densities,
and the line search matched to the Newton system (passes counted).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

import lloydmax as lm
from lloydmax import _kernels as K
from lloydmax import _solver as S
from lloydmax._conventions import layout
from lloydmax._dists import get_distribution
from lloydmax._kernels import cells as C

mpmath = pytest.importorskip("mpmath")


def _fills(d, thr, mirror=False):
    n = thr.size + 1
    out = [np.empty(n) for _ in range(3)]
    C.fill_cells_mirrored(*d.kernel_args(), thr, mirror, *out)
    return out


def _serial(d, thr):
    n = thr.size + 1
    out = [np.empty(n) for _ in range(3)]
    C._fill_serial(*d.kernel_args(), thr, n, *out)
    return out


@given(st.integers(2, 3000), st.sampled_from(["gaussian", "laplace"]))
@settings(max_examples=25, deadline=None)
def test_mirrored_cells_are_the_reflected_lower_half(n, name):
    """Cells of antisymmetric thresholds, lower half integrated and reflected, against
    every cell integrated on its own: equal to rounding."""
    d = get_distribution(name)
    half = np.sort(np.random.default_rng(n).uniform(0.0, 6.0, (n - 1) // 2))
    thr = np.concatenate([-half[::-1], [0.0] if (n - 1) % 2 else [], half])
    assert np.array_equal(thr, -thr[::-1])
    fast = _fills(d, thr, mirror=True)
    slow = _serial(d, thr)
    np.testing.assert_allclose(fast[0], slow[0], rtol=1e-13, atol=0.0)
    np.testing.assert_allclose(fast[1], slow[1], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(fast[2], slow[2], rtol=1e-11, atol=1e-16)


@pytest.mark.parametrize("name,params", [("t", {"df": 5}), ("gamma", {"a": 0.5}),
                                         ("beta", {"a": 0.5, "b": 2.0})])
def test_cached_piece_moments_change_no_bit(name, params):
    d = get_distribution(name, **params)
    assert d.kparams.size == K.PIECE_BASE + 3 * (d.tab_x.size - 1)
    bare = d.kparams[:K.PIECE_BASE].copy()
    rng = np.random.default_rng(1)
    lo, hi = d.tab_x[0], d.tab_x[-1]
    inner = np.sort(rng.uniform(max(lo, -8.0), min(hi, 8.0), 40))
    edges = np.concatenate([[-np.inf], inner, [np.inf]])
    for a, b in zip(edges[:-1], edges[1:]):
        cached = K.cell_moments(K.TAB, d.kparams, d.tab_x, d.tab_p, 0.0, 0.0, a, b)
        walked = K.cell_moments(K.TAB, bare, d.tab_x, d.tab_p, 0.0, 0.0, a, b)
        assert cached == walked


def test_scipy_distributions_are_tabulated_once_per_process():
    a = get_distribution("t", df=7.5)
    b = get_distribution("t", df=7.5)
    assert a is b
    assert get_distribution("t", df=7.25) is not a
    t1 = lm.solve(bits=3, dist="t", params={"df": 7.5})
    t2 = lm.solve(bits=3, dist="t", params={"df": 7.5})
    np.testing.assert_array_equal(t1.levels, t2.levels)


@pytest.mark.parametrize("name,params,bits,uniform",
                         [("gaussian", {}, 6, False), ("halfwave-gaussian", {}, 5, False),
                          ("laplace", {}, 4, True), ("t", {"df": 5}, 4, False),
                          ("gaussian", {}, 7, True)])
def test_summary_from_the_solvers_cells_equals_a_fresh_pass(name, params, bits, uniform):
    table = lm.solve(bits=bits, dist=name, params=params, uniform=uniform)
    fresh = lm.evaluate(table)
    assert math.isclose(table.mse, fresh["mse"], rel_tol=1e-13)


def _passes(name, bits, uniform=False):
    d = get_distribution(name)
    n = 1 << bits
    lay = layout(d.halfwave, d.scale, n, None, None, None)
    levels = S._guess(d, lay, n)
    info = np.zeros(5)
    cells = np.empty((3, n))
    if uniform:
        coef_off, coef_step, free = S._uniform_coefficients(d, n)
        theta = np.array([0.0, (levels[-1] - levels[0]) / (n - 1)])
        K.solve_uniform(*d.kernel_args(), theta, free, coef_off, coef_step, lay.thr_pinned,
                        lay.thr_value, 1e-12, 500, np.empty(n), np.empty(n - 1), info, cells,
                        d.symmetric)
    else:
        K.solve_nonuniform(*d.kernel_args(), levels, lay.level_pinned, lay.thr_pinned,
                           lay.thr_value, 1e-12, 500, d.symmetric, 0.0, np.empty(n - 1), info,
                           cells)
    return int(info[0]), int(info[4]), int(info[3])


@pytest.mark.parametrize("name", ["gaussian", "halfwave-gaussian", "laplace"])
@pytest.mark.parametrize("bits", [2, 4, 8, 12, 16])
def test_the_line_search_wastes_no_pass(name, bits):
    """The merit matches the Newton system: a step is almost always taken whole.  (The
    mismatched merit of 0.1 spent 40 halvings in the first iteration: 50 passes.)"""
    iterations, passes, status = _passes(name, bits)
    assert status == K.OK
    assert iterations <= 8
    assert passes <= iterations + 8


def _mp_lloyd(q0, kind, digits=40):
    """Newton on q_i = E[X | cell i] in mpmath, from ``q0``: the Gaussian or the
    half-normal (density 2 phi on (0, inf)), every level free."""
    mp = mpmath.mp
    mp.dps = digits
    q = [mp.mpf(float(v)) for v in q0]
    n = len(q)
    lo = -mp.inf if kind == "gauss" else mp.mpf(0)
    w = 1 if kind == "gauss" else 2

    def upper(x):
        return mp.erfc(x / mp.sqrt(2)) / 2

    def phi(x):
        return mp.mpf(0) if mp.isinf(x) else mp.npdf(x)

    for _ in range(8):
        t = [lo] + [(q[i] + q[i + 1]) / 2 for i in range(n - 1)] + [mp.inf]
        m0, c = [], []
        for i in range(n):
            a, b = t[i], t[i + 1]
            m = upper(a) - upper(b) if a >= 0 else (upper(-b) - upper(-a) if b <= 0
                                                    else 1 - upper(b) - upper(-a))
            m0.append(w * m)
            c.append((phi(a) - phi(b)) / m)
        g = [q[i] - c[i] for i in range(n)]
        if max(abs(v) for v in g) < mp.mpf(10) ** (-digits + 5):
            break
        lower = [mp.mpf(0)] * n
        up = [mp.mpf(0)] * n
        diag = [mp.mpf(0)] * n
        for i in range(n):
            inv = 1 / (2 * m0[i])
            if i > 0:
                lower[i] = -(c[i] - t[i]) * w * phi(t[i]) * inv
            if i < n - 1:
                up[i] = (c[i] - t[i + 1]) * w * phi(t[i + 1]) * inv
            diag[i] = 1 + lower[i] + up[i]
        cp, dp = [mp.mpf(0)] * n, [mp.mpf(0)] * n
        cp[0], dp[0] = up[0] / diag[0], -g[0] / diag[0]
        for i in range(1, n):
            den = diag[i] - lower[i] * cp[i - 1]
            cp[i], dp[i] = up[i] / den, (-g[i] - lower[i] * dp[i - 1]) / den
        x = [mp.mpf(0)] * n
        x[-1] = dp[-1]
        for i in range(n - 2, -1, -1):
            x[i] = dp[i] - cp[i] * x[i + 1]
        q = [q[i] + x[i] for i in range(n)]
    return np.array([float(v) for v in q])


@pytest.mark.parametrize("dist,kind,bits", [("gaussian", "gauss", 8),
                                            ("half-normal", "half", 8),
                                            ("gaussian", "gauss", 3)])
def test_tables_hold_against_a_40_digit_mpmath_solution(dist, kind, bits):
    """The fast solver against an independent 40-digit Newton solution of the same
    conditions: the levels agree to 1e-13 of the span (at 8 bits the problem's own
    conditioning already amplifies float64 rounding of the cell moments to ~1e-14)."""
    table = lm.solve(bits=bits, dist=dist)
    truth = _mp_lloyd(table.levels, kind)
    span = truth[-1] - truth[0]
    assert np.max(np.abs(np.asarray(table.levels) - truth)) <= 1e-13 * span


@given(st.lists(st.floats(-4.0, 4.0), min_size=2, max_size=6, unique=True))
@settings(max_examples=20, deadline=None)
def test_vectorised_certificate_rule_matches_quad(points):
    """The certificate's composite rule (scipy's t(5) pdf, both tails mapped) against
    scipy.integrate.quad cell by cell."""
    from lloydmax._certificate import _rule_moments

    frozen = stats.t(5)
    edges = np.concatenate([[-np.inf], np.sort(points), [np.inf]])
    m0, m1 = _rule_moments(frozen, edges[:-1], edges[1:], frozen.std(), 16)
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        q0 = integrate.quad(frozen.pdf, a, b, epsabs=0, epsrel=1e-12, limit=400)[0]
        q1 = integrate.quad(lambda x: x * frozen.pdf(x), a, b, epsabs=0, epsrel=1e-12,
                            limit=400)[0]
        assert math.isclose(m0[k], q0, rel_tol=1e-9, abs_tol=1e-15)
        assert math.isclose(m1[k], q1, rel_tol=1e-8, abs_tol=1e-12)


@pytest.mark.parametrize("width", [1e-4, 5e-4, 2e-3])
@pytest.mark.parametrize("name", ["gaussian", "laplace", "half-normal"])
def test_narrow_cells_hold_against_mpmath(name, width):
    """The 3-point Gauss-Legendre rule of the narrowest cells (12-16-bit tables), against
    40-digit mpmath quadrature: mass to the density's own float64 accuracy, centroid to
    its own rounding."""
    mp = mpmath.mp
    mp.dps = 40
    d = get_distribution(name)
    if name == "gaussian":
        dens = mp.npdf
    elif name == "laplace":
        def dens(x):
            return mp.exp(-abs(x)) / 2
    else:
        def dens(x):
            return 2 * mp.npdf(x) if x > 0 else mp.mpf(0)
    for a in (-7.9, -3.0, -0.4, 0.3, 2.5, 6.0, 7.9):
        if name == "half-normal" and a < 0:
            continue
        if name == "laplace" and a < 0 < a + width:
            continue
        b = a + width
        m0, c, _ = K.cell_moments(d.kind, d.kparams, d.tab_x, d.tab_p, 0.0, 0.0, a, b)
        am, bm = mp.mpf(a), mp.mpf(b)
        true0 = mp.quad(dens, [am, bm])
        true1 = mp.quad(lambda x, am=am: (x - am) * dens(x), [am, bm])
        # phi(z) itself is good to (1 + z^2 / 2) ulp in float64: exp of a rounded -z^2/2
        assert abs(m0 - float(true0)) <= 4e-16 * (1.0 + b * b) * float(true0)
        # the centroid is stored as a float near a: to its own rounding, 2 ulp of |b|
        exact = am + true1 / true0
        assert abs(c - float(exact)) <= 2.0 * np.spacing(abs(b)) + 1e-15 * width
