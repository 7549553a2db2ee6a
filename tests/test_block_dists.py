"""absmax-gaussian against its closed form (B = 2) and Monte Carlo on real normalised
Gaussian blocks; sphere-coordinate against scipy's beta."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import special, stats

import lloydmax as lm
from lloydmax import _kernels as K
from lloydmax._dists import get_distribution
from lloydmax._dists_blocks import absmax_density

PEERS = json.loads((Path(__file__).parent / "data" / "peer_codebooks.json").read_text())


def _cells(d, thresholds):
    mass, mean = np.empty(len(thresholds) + 1), np.empty(len(thresholds) + 1)
    K.cell_table(*d.kernel_args(), np.asarray(thresholds, dtype=float), mass, mean)
    return mass, mean


def test_block_of_two_is_the_closed_form():
    y = np.linspace(-1, 1, 201)
    np.testing.assert_allclose(absmax_density(y, 2), 1 / (np.pi * (1 + y * y)),
                               rtol=1e-13, atol=0)


@pytest.mark.parametrize("block", [2, 8, 64, 128])
def test_mass_and_atoms(block):
    from scipy import integrate

    cont = integrate.quad(lambda v: absmax_density(np.array([v]), block)[0], -1, 1,
                          epsabs=1e-14, epsrel=1e-13)[0]
    assert cont == pytest.approx((block - 1) / block, rel=1e-12)
    d = get_distribution("absmax-gaussian", block=block)
    mass, mean = _cells(d, [-1 + 1e-9, 1 - 1e-9])
    assert mass[0] == pytest.approx(1 / (2 * block), rel=1e-8)
    assert mass[2] == pytest.approx(1 / (2 * block), rel=1e-8)
    assert mean[2] == pytest.approx(1.0, abs=1e-12)


def _stream(block, n_blocks, tables, seed, chunk=250_000):
    """Per-block sums of squared errors of each table, and cell statistics of the first
    table, over n_blocks blocks of iid N(0, 1) normalised by their absmax."""
    rng = np.random.default_rng(seed)
    first = tables[0]
    n = first.n_levels
    sse = np.zeros(len(tables))
    sse2 = np.zeros(len(tables))
    counts = np.zeros(n)
    sums = np.zeros(n)
    done = 0
    while done < n_blocks:
        nb = min(chunk, n_blocks - done)
        x = rng.standard_normal((nb, block))
        y = x / np.abs(x).max(axis=1, keepdims=True)
        for k, t in enumerate(tables):
            per_block = ((y - t.quantize(y)) ** 2).sum(axis=1)
            sse[k] += per_block.sum()
            sse2[k] += (per_block ** 2).sum()
        idx = first.quantize(y.ravel(), return_index=True)
        counts += np.bincount(idx, minlength=n)
        sums += np.bincount(idx, weights=y.ravel(), minlength=n)
        done += nb
    values = n_blocks * block
    mse = sse / values
    # blocks are independent, values within a block are not: the error of the mean is
    # the spread of the per-block sums
    err = np.sqrt(np.maximum(sse2 / n_blocks - (sse / n_blocks) ** 2, 0) / n_blocks) / block
    return mse, err, counts / values, sums / np.maximum(counts, 1), values


@pytest.mark.slow
def test_density_and_moments_match_monte_carlo_on_1e7_blocks():
    """1e7 real blocks of 16 iid N(0, 1) in float64 (1.6e8 values, drawn 1.25e5 blocks
    at a time: about 80 MB at once), each divided by its absmax.  Per cell of the
    optimal 4-bit table: the mass, the first and the second partial moment E[y^k; cell]
    agree with the density's (the kernel's cell moments of the quadrature table) within
    5 Monte Carlo standard errors, and so do the table's MSE and E[y^2] by
    scipy.integrate.quad on the density.  Blocks are independent and values within a
    block are not, so the standard error is the spread of the 80 batch means (the
    masses' relative error is about 5e-4, the MSE's about 1e-4)."""
    from scipy import integrate

    block, n_blocks, chunk = 16, 10_000_000, 125_000
    t = lm.solve(4, dist="absmax-gaussian", params={"block": block})
    d = get_distribution("absmax-gaussian", block=block)
    thresholds, levels = np.asarray(t.thresholds), np.asarray(t.levels)
    n = levels.size
    rng = np.random.default_rng(20261202)
    batches = np.empty((n_blocks // chunk, 3 * n + 1))
    for k in range(batches.shape[0]):
        x = rng.standard_normal((chunk, block))
        y = (x / np.abs(x).max(axis=1, keepdims=True)).ravel()
        idx = np.searchsorted(thresholds, y, side="left")  # on a threshold: the lower cell
        err = y - levels[idx]
        batches[k] = np.concatenate([np.bincount(idx, minlength=n),
                                     np.bincount(idx, weights=y, minlength=n),
                                     np.bincount(idx, weights=y * y, minlength=n),
                                     [err @ err]]) / y.size
    est = batches.mean(axis=0)
    se = batches.std(axis=0, ddof=1) / np.sqrt(batches.shape[0])
    edges = np.concatenate([[-np.inf], thresholds, [np.inf]])
    cells = np.array([K.cell_moments(*d.kernel_args(), a, b) for a, b in zip(edges[:-1],
                                                                              edges[1:])])
    mass, mean, var = cells.T
    want = np.concatenate([mass, mass * mean, mass * (var + mean * mean), [t.mse]])
    z = (est - want) / se
    assert np.all(np.abs(z) <= 5), z.round(2)
    assert np.all(se[:n] < 1e-3 * mass)  # the test has the resolution it claims
    # the second moment of the whole law, by quad on g(y) plus the atoms at +-1
    ey2 = integrate.quad(lambda v: v * v * absmax_density(np.array([v]), block)[0], -1, 1,
                         epsabs=1e-14, epsrel=1e-13)[0] + 1 / block
    ey2_batches = batches[:, 2 * n:3 * n].sum(axis=1)
    assert abs(ey2_batches.mean() - ey2) <= 5 * ey2_batches.std(ddof=1) / np.sqrt(
        batches.shape[0])


def test_solved_tables_beat_nf4_on_real_blocks_of_64(capsys):
    """The docs' claim, measured on 4e5 real blocks of 64 (2.6e7 values): the MSE that
    ``lloydmax solve --dist absmax-gaussian --param block=64 --bits 4`` reports (free,
    and with --pin-levels=-1,0,1) agrees with Monte Carlo, and NF4 is 14.4 % / 8.6 %
    above."""
    from lloydmax.cli import main

    nf4 = lm.check(levels=PEERS["codebooks"]["nf4"]["levels"], dist="absmax-gaussian",
                   params={"block": 64}).table
    solved = []
    for pins in ([], ["--pin-levels=-1,0,1"]):
        assert main(["solve", "--dist", "absmax-gaussian", "--param", "block=64",
                     "--bits", "4", *pins, "--format", "json"]) == 0
        solved.append(lm.table_from_dict(json.loads(capsys.readouterr().out)))
    free, pinned = solved
    api = lm.solve(4, dist="absmax-gaussian", params={"block": 64}, pin_levels=[-1, 0, 1])
    np.testing.assert_array_equal(pinned.levels, api.levels)
    assert {-1.0, 0.0, 1.0} <= set(pinned.levels.tolist())
    mse, err, *_ = _stream(64, 400_000, [free, pinned, nf4], seed=5)
    for k, t in enumerate([free, pinned, nf4]):
        assert abs(mse[k] - t.mse) <= 5 * err[k], (k, mse[k], t.mse, err[k])
    assert 100 * (nf4.mse / free.mse - 1) == pytest.approx(14.45, abs=0.05)
    assert 100 * (nf4.mse / pinned.mse - 1) == pytest.approx(8.60, abs=0.05)
    assert mse[2] / mse[0] > 1.14 and mse[2] / mse[1] > 1.08


@pytest.mark.parametrize("dim", [2, 2.5, 3, 4, 5, 64, 128])
def test_sphere_coordinate_matches_scipy_beta(dim):
    a = (dim - 1) / 2
    beta = stats.beta(a, a, loc=-1, scale=2)
    d = get_distribution("sphere-coordinate", dim=dim)
    t = lm.solve(3, dist="sphere-coordinate", params={"dim": dim})
    assert t.converged and t.params == {"dim": float(dim)}
    z_thr = (np.asarray(t.thresholds) - d.loc) / d.scale
    mass, mean_z = _cells(d, z_thr)
    edges = np.concatenate([[-1.0], t.thresholds, [1.0]])
    u = (edges + 1) / 2
    want_mass = np.diff(special.betainc(a, a, u))
    # E[U; cell] = a / (2a) * (I_u1(a + 1, a) - I_u0(a + 1, a)), X = 2U - 1
    want_mean = (2 * 0.5 * np.diff(special.betainc(a + 1, a, u)) - want_mass) / want_mass
    np.testing.assert_allclose(mass, want_mass, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(d.loc + d.scale * mean_z, want_mean, rtol=0, atol=1e-9)
    np.testing.assert_allclose(want_mass, np.diff(beta.cdf(edges)), rtol=1e-10, atol=1e-14)


def _arcsine_lloyd_max(n):
    """Plain Lloyd at 30 digits on the closed-form partial moments of the arcsine law
    p(x) = 1 / (pi sqrt(1 - x^2)): F(x) = asin(x) / pi (up to a constant),
    int x p = -sqrt(1 - x^2) / pi, int x^2 p = (asin x - x sqrt(1 - x^2)) / (2 pi);
    started from evenly spaced levels.  Returns the levels and the MSE."""
    import mpmath as mp

    mp.mp.dps = 30
    m0 = lambda x: mp.asin(x) / mp.pi  # noqa: E731
    m1 = lambda x: -mp.sqrt(1 - x * x) / mp.pi  # noqa: E731
    m2 = lambda x: (mp.asin(x) - x * mp.sqrt(1 - x * x)) / (2 * mp.pi)  # noqa: E731
    levels = [mp.mpf(-1) + mp.mpf(2 * k + 1) / n for k in range(n)]
    for _ in range(20000):
        edges = [mp.mpf(-1)] + [(levels[k] + levels[k + 1]) / 2 for k in range(n - 1)] + [1]
        new = [(m1(edges[k + 1]) - m1(edges[k])) / (m0(edges[k + 1]) - m0(edges[k]))
               for k in range(n)]
        moved = max(abs(a - b) for a, b in zip(new, levels))
        levels = new
        if moved < mp.mpf(10) ** -26:
            break
    else:
        raise AssertionError("the oracle did not converge")
    edges = [mp.mpf(-1)] + [(levels[k] + levels[k + 1]) / 2 for k in range(n - 1)] + [1]
    mse = sum((m2(b) - m2(a)) - 2 * q * (m1(b) - m1(a)) + q * q * (m0(b) - m0(a))
              for a, b, q in zip(edges[:-1], edges[1:], levels))
    return np.array([float(v) for v in levels]), float(mse)


@pytest.mark.parametrize("n_levels", range(2, 9))
def test_sphere_coordinate_dim_2_is_the_arcsine_lloyd_max(n_levels):
    """d = 2: the arcsine law, infinite at +-1.  The table equals an independent mpmath
    Lloyd-Max on the closed-form moments, and its cells those of scipy's beta(1/2, 1/2)
    on [-1, 1]."""
    t = lm.solve(n_levels=n_levels, dist="sphere-coordinate", params={"dim": 2})
    levels, mse = _arcsine_lloyd_max(n_levels)
    assert t.converged
    np.testing.assert_allclose(t.levels, levels, rtol=0, atol=1e-13)
    assert t.mse == pytest.approx(mse, rel=1e-11)
    beta = stats.beta(0.5, 0.5, loc=-1, scale=2)
    edges = np.concatenate([[-1.0], t.thresholds, [1.0]])
    d = get_distribution("sphere-coordinate", dim=2)
    mass, _ = _cells(d, t.thresholds)
    np.testing.assert_allclose(mass, np.diff(beta.cdf(edges)), rtol=1e-12, atol=0)


def test_sphere_coordinate_dim_2_at_high_resolution():
    """The tabulation near the singular ends holds at 16 bits: certified against quad
    (converged), the total mass is 1 to 1e-14, and the outermost cell's mass is the
    closed form 1/2 - asin(t) / pi."""
    d = get_distribution("sphere-coordinate", dim=2)
    total = K.cell_moments(*d.kernel_args(), -np.inf, np.inf)[0]
    assert total == pytest.approx(1.0, abs=1e-14)
    assert d.tab_p[0] == pytest.approx(1 / np.pi, rel=1e-13)  # g is 1/pi exactly
    t = lm.solve(16, dist="sphere-coordinate", params={"dim": 2})
    assert t.converged and t.levels[-1] < 1.0 and -t.levels[0] == pytest.approx(t.levels[-1])
    mass, _ = _cells(d, t.thresholds)
    top = float(np.arccos(t.thresholds[-1]) / np.pi)  # = 1/2 - asin(t)/pi, accurately
    assert mass[-1] == pytest.approx(top, rel=1e-8)


def test_sphere_coordinate_below_dim_2_is_refused():
    with pytest.raises(lm.errors.InvalidInputError, match="at least 2"):
        lm.solve(2, dist="sphere-coordinate", params={"dim": 1.5})


def test_block_normalised_data_path_meets_the_density_table():
    from lloydmax._dists_blocks import absmax_normalize

    x = np.random.default_rng(2).standard_normal(64 * 3000 + 10)
    y = absmax_normalize(x, 64)
    assert np.abs(y).max() == 1.0 and np.count_nonzero(np.abs(y) == 1.0) == 3001
    np.testing.assert_array_equal(y[:64], x[:64] / np.abs(x[:64]).max())
    t = lm.solve_dp(x, 4, block=64, pin_levels=[-1, 0, 1])
    d = lm.solve(4, dist="absmax-gaussian", params={"block": 64}, pin_levels=[-1, 0, 1])
    assert t.levels[0] == -1.0 and t.levels[-1] == 1.0 and 0.0 in t.levels.tolist()
    # the law is symmetric and 13 free levels do not split evenly: two mirror optima
    mirror = -d.levels[::-1]
    near = min((d.levels, mirror), key=lambda v: np.abs(v - t.levels).max())
    np.testing.assert_allclose(t.levels, near, atol=0.02)
    assert t.mse == pytest.approx(d.mse, rel=0.03)
