"""Pinned levels: densities (free levels meet the centroid conditions, against the naive
quad oracle) and data (the pinned DP is the global optimum, against brute force)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import lloydmax as lm
from lloydmax.errors import ConventionError, InvalidDataError, InvalidInputError

from . import naive

CASES = [
    ("gaussian", {}, naive.gaussian(), 4, [-1.0, 0.0, 1.0]),
    ("gaussian", {"std": 2.0}, naive.gaussian(std=2.0), 3, [0.0]),
    ("laplace", {}, naive.laplace(), 3, [-0.5, 2.0]),
    ("uniform", {}, naive.uniform(), 2, [0.25]),
]


@pytest.mark.parametrize("dist,params,oracle,bits,pins", CASES)
def test_free_levels_are_centroids_and_pins_stay(dist, params, oracle, bits, pins):
    t = lm.solve(bits, dist=dist, params=params, pin_levels=pins)
    assert t.converged and t.n_levels == 2 ** bits
    for p in pins:  # pinned exactly, not to an ulp
        assert p in t.levels.tolist()
    np.testing.assert_allclose(t.thresholds, 0.5 * (t.levels[1:] + t.levels[:-1]),
                               rtol=0, atol=1e-15 * np.ptp(t.levels))
    edges = np.concatenate([[-np.inf], t.thresholds, [np.inf]])
    span = np.ptp(t.levels)
    for i, q in enumerate(t.levels):
        if q in pins:
            continue
        m0, m1, _ = oracle.moments(edges[i], edges[i + 1])
        assert abs(q - m1 / m0) <= 1e-9 * span, (i, q, m1 / m0)
    assert t.mse == pytest.approx(oracle.mse(t.levels, t.thresholds), rel=1e-9)
    assert t.mse >= lm.solve(bits, dist=dist, params=params).mse


def test_naive_lloyd_with_the_same_pins_reaches_the_same_table():
    t = lm.solve(n_levels=5, dist="gaussian", pin_levels=[0.0, 1.5])
    pinned = [int(np.flatnonzero(t.levels == p)[0]) for p in (0.0, 1.5)]
    start = t.levels + np.where(np.isin(t.levels, [0.0, 1.5]), 0.0, 0.05)
    q, _, _ = naive.lloyd(naive.gaussian(), start, pinned_levels=pinned, tol=1e-12)
    np.testing.assert_allclose(q, t.levels, rtol=0, atol=1e-9)


@pytest.mark.parametrize("dist,pins,n", [("gaussian", [-1.0, 0.5], 6),
                                         ("laplace", [-1.0, 0.0, 1.5], 8)])
def test_the_allocation_is_the_global_one(dist, pins, n):
    """The density solve places as many free levels between each pair of pins as the
    exact pinned DP does on a fine discretisation of the same density."""
    from scipy import stats

    t = lm.solve(n_levels=n, dist=dist, pin_levels=pins)
    frozen = {"gaussian": stats.norm(), "laplace": stats.laplace()}[dist]
    edges = np.linspace(-12, 12, 60001)
    mid = 0.5 * (edges[1:] + edges[:-1])
    w = np.diff(frozen.cdf(edges))
    d = lm.solve_dp(mid, n_levels=n, weights=w, pin_levels=pins)
    gaps = [np.searchsorted(pins, lv[~np.isin(lv, pins)]) for lv in (t.levels, d.levels)]
    assert np.bincount(gaps[0], minlength=4).tolist() == np.bincount(gaps[1],
                                                                      minlength=4).tolist()
    np.testing.assert_allclose(t.levels, d.levels, rtol=2e-3, atol=2e-3)  # the grid ends at 12
    assert t.mse == pytest.approx(d.mse, rel=5e-3)  # Laplace mass beyond 12 costs 0.4 %


def test_pin_errors_are_clear():
    with pytest.raises(InvalidInputError, match="outside the support"):
        lm.solve(2, dist="uniform", pin_levels=[1.5])
    with pytest.raises(InvalidInputError, match="no free level"):
        lm.solve(1, pin_levels=[-1, 1])
    with pytest.raises(InvalidInputError, match="distinct"):
        lm.solve(3, pin_levels=[0, 0])
    with pytest.raises(InvalidInputError, match="non-uniform"):
        lm.solve(3, pin_levels=[0], uniform=True)
    with pytest.raises(ConventionError):
        lm.solve(3, dist="halfwave-gaussian", pin_levels=[1.0])
    x = np.linspace(-1, 1, 50)
    with pytest.raises(InvalidInputError, match="outside the support"):
        lm.solve_dp(x, 2, pin_levels=[2.0])
    with pytest.raises(InvalidInputError, match="no free level"):
        lm.solve_dp(x, n_levels=2, pin_levels=[-1, 1])
    with pytest.raises((InvalidInputError, InvalidDataError)):
        lm.solve_dp([0.0, 1.0, 2.0], n_levels=4, pin_levels=[1.0])


# ------------------------------------------------------------------ data: brute force


def _brute(x, w, pins, n_levels):
    """Least cost over every cut of the sorted points into runs, each run reconstructed
    by a pin or by its own mean, with at most n_levels - len(pins) mean runs."""
    n_free = n_levels - len(pins)
    n = x.size
    best = np.inf
    for cuts in itertools.product([False, True], repeat=n - 1):
        edges = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [n]
        runs = list(zip(edges[:-1], edges[1:]))
        for labels in itertools.product(range(len(pins) + 1), repeat=len(runs)):
            if sum(1 for lab in labels if lab == len(pins)) > n_free:
                continue
            cost = 0.0
            for (a, b), lab in zip(runs, labels):
                level = (np.dot(w[a:b], x[a:b]) / w[a:b].sum() if lab == len(pins)
                         else pins[lab])
                cost += float(np.dot(w[a:b], (x[a:b] - level) ** 2))
            best = min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_pinned_dp_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.choice(np.linspace(-1, 1, 41), size=7, replace=False))
    w = rng.integers(1, 5, size=7).astype(float)
    inside = [v for v in (-0.5, -0.3, 0.0, 0.25, 0.45) if x[0] <= v <= x[-1]]
    pins = sorted(rng.choice(inside, size=min(len(inside), int(rng.integers(1, 3))),
                             replace=False).tolist())
    n_levels = len(pins) + int(rng.integers(1, 3))
    t = lm.solve_dp(x, n_levels=n_levels, weights=w, pin_levels=pins)
    for p in pins:
        assert p in t.levels.tolist()
    got = float(np.dot(w, (x - t.quantize(x)) ** 2))
    assert got == pytest.approx(_brute(x, w, pins, n_levels), rel=1e-12, abs=1e-15)
    assert t.mse * w.sum() == pytest.approx(got, rel=1e-9)


def test_pinned_dp_on_many_points_beats_or_equals_pinned_lloyd_cells():
    x = np.random.default_rng(3).standard_normal(5000)
    t = lm.solve_dp(x, 3, pin_levels=[0.0])
    assert t.converged and 0.0 in t.levels.tolist()
    # free levels are the means of their cells
    idx = t.quantize(x, return_index=True)
    for i, q in enumerate(t.levels):
        if q != 0.0:
            assert q == pytest.approx(x[idx == i].mean(), abs=1e-12)
    assert t.mse >= lm.solve_dp(x, 3).mse


def test_mirror_image_pinned_optima_are_broken_the_same_way_from_any_start():
    """13 free levels between the pins -1, 0, 1 of a symmetric density: two mirror-image
    allocations with one MSE.  The search settles on the one with more levels above 0
    (NF4's choice) whether it starts from the lower or the upper one."""
    from lloydmax import _pins as P

    def run(counts):
        # a toy symmetric problem: best when the two middle gaps differ by one level
        # (two mirror-image optima), worse with any level outside them
        c0, c1, c2, c3 = (int(v) for v in counts)
        return 1.0 + ((c1 - c2) ** 2 - 1) ** 2 + c0 + c3, tuple(counts)

    for start in ([0, 7, 6, 0], [0, 6, 7, 0], [0, 5, 8, 0]):
        _, _, counts = P.search_allocations(run, np.array(start))
        assert tuple(counts) == (0, 6, 7, 0)
    table = lm.solve(bits=4, dist="absmax-gaussian", params={"block": 64}, pin_levels=[-1, 0, 1])
    assert int(np.sum(np.asarray(table.levels) > 0)) == 8  # 7 free above 0, and 1
