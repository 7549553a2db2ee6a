"""Densities singular at a point, against an independent 30-digit mpmath Lloyd-Max oracle.

gamma(1/2), chi2(df=1), beta(1/2, 2), weibull_min(0.7) are infinite at the edge of their
support, dgamma(1/2) at its centre.  The oracle knows each one only through its closed-form
partial moments (regularised incomplete gamma and beta functions): it solves the centroid
conditions q_i = (M1(t_{i+1}) - M1(t_i)) / (M0(t_{i+1}) - M0(t_i)), t_i = (q_{i-1} + q_i)/2
by damped Newton at 30 digits (from equal-mass quantiles up to 4 levels, from the table
put 1e-3 off above), so it shares nothing with the kernels' tabulation or quadrature.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import lloydmax as lm

mpmath = pytest.importorskip("mpmath")
mp = mpmath.mp


def _gamma_moments(a, scale=1):
    a = mp.mpf(a)
    scale = mp.mpf(scale)

    def cum(x, m):  # E[X^m; X <= x] of scale * Gamma(a)
        if x <= 0:
            return mp.mpf(0)
        if mp.isinf(x):
            return scale ** m * mp.rf(a, m)
        return scale ** m * mp.rf(a, m) * mp.gammainc(a + m, 0, x / scale, regularized=True)

    def pdf(x):
        return 0 if x <= 0 else (x / scale) ** (a - 1) * mp.exp(-x / scale) / (scale * mp.gamma(a))
    return cum, pdf


def _beta_moments(a, b):
    a, b = mp.mpf(a), mp.mpf(b)

    def cum(x, m):
        x = min(max(x, mp.mpf(0)), mp.mpf(1))
        return mp.rf(a, m) / mp.rf(a + b, m) * mp.betainc(a + m, b, 0, x, regularized=True)

    def pdf(x):
        return 0 if not 0 < x < 1 else x ** (a - 1) * (1 - x) ** (b - 1) / mp.beta(a, b)
    return cum, pdf


def _weibull_moments(c):
    c = mp.mpf(c)

    def cum(x, m):  # X = Y^(1/c), Y ~ Exp(1)
        if x <= 0:
            return mp.mpf(0)
        k = 1 + m / c
        if mp.isinf(x):
            return mp.gamma(k)
        return mp.gamma(k) * mp.gammainc(k, 0, x ** c, regularized=True)

    def pdf(x):
        return 0 if x <= 0 else c * x ** (c - 1) * mp.exp(-x ** c)
    return cum, pdf


def _dgamma_moments(a):
    half_cum, half_pdf = _gamma_moments(a)

    def cum(x, m):  # half the mass on each side, mirrored
        total = half_cum(mp.inf, m)
        if x >= 0:
            return ((-1) ** m * total + half_cum(x, m)) / 2
        return (-1) ** m * (total - half_cum(-x, m)) / 2

    def pdf(x):
        # a threshold on the singular centre does not move (by symmetry): no Jacobian term
        return 0 if abs(x) < mp.mpf(10) ** -20 else half_pdf(abs(x)) / 2
    return cum, pdf


CASES = {
    "gamma": ({"a": 0.5}, lambda: _gamma_moments("0.5")),
    "chi2": ({"df": 1}, lambda: _gamma_moments("0.5", 2)),
    "beta": ({"a": 0.5, "b": 2}, lambda: _beta_moments("0.5", 2)),
    "weibull_min": ({"c": 0.7}, lambda: _weibull_moments("0.7")),
    "dgamma": ({"a": 0.5}, lambda: _dgamma_moments("0.5")),
}
LEVELS = (2, 3, 4, 8, 16)


def oracle(cum, pdf, start, symmetric=False):
    """30-digit Lloyd-Max levels and MSE by damped Newton on G(q) = q - centroids.
    ``symmetric`` keeps the levels exactly symmetric about 0 (dgamma: a threshold that
    strays from its singular centre by d changes the cell masses by ~sqrt(d))."""
    with mp.workdps(30):
        q = [mp.mpf(float(v)) for v in start]
        n = len(q)

        def project(q):
            return [(q[i] - q[n - 1 - i]) / 2 for i in range(n)] if symmetric else q
        q = project(q)

        def cells(q):
            t = [-mp.inf] + [(q[i] + q[i + 1]) / 2 for i in range(n - 1)] + [mp.inf]
            m0 = [cum(t[i + 1], 0) - cum(t[i], 0) for i in range(n)]
            m1 = [cum(t[i + 1], 1) - cum(t[i], 1) for i in range(n)]
            return t, m0, [m1[i] / m0[i] for i in range(n)]

        for _ in range(200):
            t, m0, c = cells(q)
            g = [q[i] - c[i] for i in range(n)]
            if max(abs(v) for v in g) < mp.mpf(10) ** -25:
                break
            jac = mp.zeros(n, n)
            for i in range(n):
                jac[i, i] = 1
                if i > 0:
                    d = -(c[i] - t[i]) * pdf(t[i]) / (2 * m0[i])
                    jac[i, i - 1] = d
                    jac[i, i] += d
                if i < n - 1:
                    d = (c[i] - t[i + 1]) * pdf(t[i + 1]) / (2 * m0[i])
                    jac[i, i + 1] = d
                    jac[i, i] += d
            step = mp.lu_solve(jac, mp.matrix([-v for v in g]))
            merit = sum(v * v for v in g)
            lam = mp.mpf(1)
            for _ in range(40):  # sorted levels, no empty cell, a smaller residual
                trial = project([q[i] + lam * step[i] for i in range(n)])
                if all(trial[i] < trial[i + 1] for i in range(n - 1)):
                    try:
                        tc = cells(trial)[2]
                    except ZeroDivisionError:  # an empty cell
                        tc = None
                    if tc is not None and sum((trial[i] - tc[i]) ** 2 for i in range(n)) < merit:
                        break
                lam /= 2
            else:
                trial = project(c)  # a Lloyd step
            q = trial
        else:
            raise AssertionError("the oracle did not converge")
        t, m0, c = cells(q)
        mse = sum(cum(t[i + 1], 2) - cum(t[i], 2) - 2 * q[i] * (cum(t[i + 1], 1) - cum(t[i], 1))
                  + q[i] ** 2 * m0[i] for i in range(n))
        return np.array([float(v) for v in q]), float(mse)


@pytest.fixture(scope="module")
def distributions():
    return {name: lm.get_distribution(name, **params) for name, (params, _) in CASES.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_singular_densities_match_the_mpmath_oracle(name, distributions):
    from scipy import stats

    params, moments = CASES[name]
    cum, pdf = moments()
    frozen = getattr(stats, name)(**params)
    for n in LEVELS:
        table = lm.solve(n_levels=n, dist=distributions[name])
        assert table.converged
        start = frozen.ppf((np.arange(n) + 0.5) / n)  # equal-mass quantiles, from scipy
        if n > 4:
            # from far away Newton needs many Lloyd steps at 16 levels: start from the
            # table, 1e-3 off.  The oracle still converges on its own equations (to
            # 1e-25), so a table off the true optimum fails the comparison below.
            start = np.asarray(table.levels) * (1.0 + 1e-3 * (-1.0) ** np.arange(n))
        levels, mse = oracle(cum, pdf, start, symmetric=name == "dgamma")
        span = levels[-1] - levels[0]
        # the certificate's tolerance (lloydmax._certificate.CENTROID_TOL); most cases
        # agree to 1e-10, weibull_min(0.7) to 2e-9 (its g = c exp(-x^c) is not smooth at 0)
        assert np.max(np.abs(np.asarray(table.levels) - levels)) <= 1e-8 * span, (name, n)
        assert table.mse == pytest.approx(mse, rel=1e-8), (name, n)


def test_the_published_gamma_half_two_level_optimum():
    # /work/shared/REFERENCES.md: levels 0.2712, 1.9253, MSE 0.1739 (30-digit mpmath)
    table = lm.solve(n_levels=2, dist="gamma", params={"a": 0.5})
    assert np.round(table.levels, 4).tolist() == [0.2712, 1.9253]
    assert round(table.mse, 4) == 0.1739


def test_the_symmetric_singular_centre_is_two_mirrored_gammas(distributions):
    # dgamma(a) with 2N levels is gamma(a) with N levels, mirrored about 0
    two = lm.solve(n_levels=4, dist=distributions["dgamma"])
    one = lm.solve(n_levels=2, dist=distributions["gamma"])
    assert np.allclose(two.levels[2:], one.levels, rtol=0, atol=1e-9)
    assert np.allclose(two.levels[:2], -np.asarray(one.levels)[::-1], rtol=0, atol=1e-9)


@pytest.mark.parametrize("bits", [1, 4, 8, 12, 16])
def test_heavy_tails_solve_where_the_variance_is_finite(bits):
    table = lm.solve(bits=bits, dist="t", params={"df": 3})  # certified, or it raises
    assert table.converged and np.all(np.diff(table.levels) > 0)


def test_a_failed_certificate_is_a_convergence_error(monkeypatch, distributions):
    from lloydmax import _certificate

    monkeypatch.setattr(_certificate, "CENTROID_TOL", 0.0)  # nothing can pass
    with pytest.raises(lm.ConvergenceError, match="certificate"):
        lm.solve(n_levels=4, dist=distributions["gamma"])
    table = lm.solve(n_levels=4, dist=distributions["gamma"], strict=False)
    assert not table.converged


def test_no_finite_variance_is_refused():
    with pytest.raises(lm.InvalidInputError, match="variance"):
        lm.solve(bits=2, dist="t", params={"df": 2})


def test_certificate_picks_cells_at_high_n():
    from lloydmax._certificate import SAMPLE_CELLS, _cells

    picked = _cells(1 << 16, [5])
    assert picked[0] == 0 and picked[-1] == (1 << 16) - 1 and len(picked) <= SAMPLE_CELLS + 16
    assert math.isclose(len(_cells(10, [])), 10)
