"""Invariants, by hypothesis."""
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import lloydmax as lm

from . import naive

DISTS = ["gaussian", "laplace", "half-normal", "halfwave-gaussian", "uniform"]
FAST = settings(deadline=None, max_examples=30)

levels_st = st.integers(min_value=2, max_value=300)
dist_st = st.sampled_from(DISTS)
scale_st = st.floats(min_value=1e-3, max_value=1e3)


@FAST
@given(dist=dist_st, n=levels_st, uniform=st.booleans())
def test_levels_sorted_thresholds_between(dist, n, uniform):
    t = lm.solve(n_levels=n, dist=dist, uniform=uniform)
    assert np.all(np.diff(t.levels) > 0)
    assert np.all(np.diff(t.thresholds) > 0)
    assert np.all((t.levels[:-1] <= t.thresholds) & (t.thresholds <= t.levels[1:]))
    assert t.converged and t.residual <= 1e-12


@FAST
@given(dist=dist_st, n=levels_st)
def test_midpoint_and_centroid_conditions(dist, n):
    t = lm.solve(n_levels=n, dist=dist)
    ev = lm.evaluate(t)
    assert ev["midpoint_residual"] <= 1e-12
    assert ev["centroid_residual"] <= 1e-12
    assert math.isclose(ev["mse"], t.mse, rel_tol=1e-12)


@settings(deadline=None, max_examples=10)
@given(dist=st.sampled_from(["gaussian", "laplace", "half-normal"]), n=st.integers(2, 5))
def test_centroid_condition_against_quad(dist, n):
    """Each level equals the quad-integrated conditional mean of its cell."""
    t = lm.solve(n_levels=n, dist=dist)
    oracle = {"gaussian": naive.gaussian(), "laplace": naive.laplace(),
              "half-normal": naive.half_normal()}[dist]
    edges = np.concatenate([[-np.inf], t.thresholds, [np.inf]])
    for i, q in enumerate(t.levels):
        m0, m1, _ = oracle.moments(edges[i], edges[i + 1])
        assert abs(q - m1 / m0) <= 1e-9


@FAST
@given(dist=dist_st, n=st.integers(2, 200), uniform=st.booleans())
def test_mse_does_not_increase_with_levels(dist, n, uniform):
    a = lm.solve(n_levels=n, dist=dist, uniform=uniform)
    b = lm.solve(n_levels=n + 1, dist=dist, uniform=uniform)
    assert b.mse <= a.mse * (1 + 1e-12)


@FAST
@given(dist=st.sampled_from(["gaussian", "laplace", "uniform"]), n=levels_st, uniform=st.booleans())
def test_symmetric_density_gives_symmetric_levels(dist, n, uniform):
    t = lm.solve(n_levels=n, dist=dist, uniform=uniform)
    centre = 0.5 if dist == "uniform" else 0.0
    np.testing.assert_allclose(t.levels - centre, -(t.levels[::-1] - centre), atol=1e-12)


@FAST
@given(dist=st.sampled_from(["gaussian", "halfwave-gaussian", "half-normal"]), n=st.integers(2, 64),
       s=scale_st, uniform=st.booleans())
def test_scale_equivariance(dist, n, s, uniform):
    unit = lm.solve(n_levels=n, dist=dist, uniform=uniform)
    scaled = lm.solve(n_levels=n, dist=dist, params={"std": s}, uniform=uniform)
    np.testing.assert_allclose(scaled.levels, s * unit.levels, rtol=1e-11, atol=1e-300)
    assert math.isclose(scaled.mse, s * s * unit.mse, rel_tol=1e-10)
    via = unit.scaled(s)
    np.testing.assert_allclose(via.levels, scaled.levels, rtol=1e-11)
    assert math.isclose(via.mse, scaled.mse, rel_tol=1e-10)
    assert via.params == scaled.params


@FAST
@given(n=st.integers(2, 64), mean=st.floats(-50, 50), std=st.floats(0.01, 100))
def test_gaussian_location_shift(n, mean, std):
    base = lm.solve(n_levels=n)
    t = lm.solve(n_levels=n, params={"mean": mean, "std": std})
    np.testing.assert_allclose(t.levels, mean + std * base.levels, rtol=1e-12,
                               atol=1e-12 * (abs(mean) + std))


@FAST
@given(n=levels_st, dist=dist_st)
def test_nonuniform_beats_uniform(n, dist):
    nu = lm.solve(n_levels=n, dist=dist)
    un = lm.solve(n_levels=n, dist=dist, uniform=True)
    assert nu.mse <= un.mse * (1 + 1e-12)


@settings(deadline=None, max_examples=15)
@given(n=st.integers(2, 40), convention=st.sampled_from(["hwgq", "round"]), uniform=st.booleans())
def test_halfwave_zero_level_and_whole_distribution_mse(n, convention, uniform):
    t = lm.solve(n_levels=n, dist="halfwave-gaussian", convention=convention, uniform=uniform)
    assert t.levels[0] == 0.0
    if convention == "hwgq":
        assert t.thresholds[0] == 0.0
    else:
        assert t.thresholds[0] == 0.5 * t.levels[1]
    # MSE over the whole ReLU distribution, the point mass at 0 included, by quad
    assert math.isclose(naive.halfwave().mse(t.levels, t.thresholds), t.mse, rel_tol=1e-9)


@FAST
@given(x=st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=50),
       n=st.integers(2, 16))
def test_quantize_rule(x, n):
    """x goes to levels[i] where thresholds[i-1] < x <= thresholds[i]: checked with bisect."""
    import bisect

    t = lm.solve(n_levels=n)
    got = t.quantize(np.array(x))
    for v, g in zip(x, got):
        assert g == t.levels[bisect.bisect_left(list(t.thresholds), v)]
    # a value exactly on a threshold goes to the lower level
    for i, thr in enumerate(t.thresholds):
        assert t.quantize(np.array([thr]))[0] == t.levels[i]


@FAST
@given(data=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=8, max_size=300),
       n=st.integers(2, 6))
def test_solve_data_is_a_lloyd_fixed_point(data, n):
    x = np.array(data)
    # distinct after standardisation: 0 and -8.7e-220 are one value to the solver, which
    # works in (x - mean) / std and refuses (ConvergenceError) when a cell must go empty
    if np.unique(x).size < n or np.unique((x - x.mean()) / x.std()).size < n:
        return
    t = lm.solve_data(x, n_levels=n)
    idx = t.quantize(x, return_index=True)
    for i in range(n):
        cell = x[idx == i]
        assert cell.size > 0
        assert abs(cell.mean() - t.levels[i]) <= 1e-9 * max(1.0, np.abs(x).max())
    np.testing.assert_allclose(t.thresholds, 0.5 * (t.levels[1:] + t.levels[:-1]), rtol=1e-12,
                               atol=1e-12)
    # rounding in the standardised prefix sums is relative to the data's variance
    assert math.isclose(t.mse, np.mean((t.quantize(x) - x) ** 2), rel_tol=1e-9,
                        abs_tol=1e-10 * np.var(x))
