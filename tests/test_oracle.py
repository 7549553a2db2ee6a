"""The kernels against the naive oracle (scipy quad + plain Lloyd), to 1e-9."""
import numpy as np
import pytest

import lloydmax as lm

from . import naive

TOL = 1e-9

CASES = [
    ("gaussian", {}, naive.gaussian(), [2, 3, 5, 8]),
    ("gaussian", {"mean": 1.5, "std": 2.0}, naive.gaussian(1.5, 2.0), [4]),
    ("laplace", {}, naive.laplace(), [2, 3, 4, 7]),
    ("laplace", {"loc": -1.0, "scale": 0.5}, naive.laplace(-1.0, 0.5), [5]),
    ("half-normal", {}, naive.half_normal(), [2, 3, 4]),
    ("uniform", {"low": -1.0, "high": 3.0}, naive.uniform(-1.0, 3.0), [3, 4]),
    ("halfwave-gaussian", {}, naive.halfwave(), [2, 3, 4]),
    ("logistic", {}, naive.scipy_dist("logistic"), [2, 4]),
    ("gamma", {"a": 3.0}, naive.scipy_dist("gamma", a=3.0), [3]),
    ("t", {"df": 6.0}, naive.scipy_dist("t", df=6.0), [4]),
]


def _start(n, dist_name):
    if dist_name in ("half-normal", "gamma"):
        return np.linspace(0.3, 3.0, n)
    if dist_name == "uniform":
        return np.linspace(-0.5, 2.5, n)
    return np.linspace(-2.0, 2.0, n)


@pytest.mark.parametrize("name,params,oracle,counts", CASES, ids=[c[0] + str(c[1]) for c in CASES])
def test_nonuniform_matches_naive_lloyd(name, params, oracle, counts):
    for n in counts:
        t = lm.solve(n_levels=n, dist=name, params=params)
        if name == "halfwave-gaussian":
            start = np.concatenate([[0.0], np.linspace(0.3, 2.0, n - 1)])
            q, thr, _ = naive.lloyd(oracle, start, pinned_levels={0}, pinned_thresholds={0: 0.0})
        else:
            q, thr, _ = naive.lloyd(oracle, _start(n, name) * params.get("std", 1.0)
                                    + params.get("mean", 0.0) + params.get("loc", 0.0))
        np.testing.assert_allclose(t.levels, q, rtol=0, atol=TOL * max(1.0, np.ptp(q)))
        np.testing.assert_allclose(t.thresholds, thr, rtol=0, atol=TOL * max(1.0, np.ptp(q)))
        assert abs(t.mse - oracle.mse(q, thr)) <= TOL * t.mse


@pytest.mark.parametrize("n", [2, 3, 4, 8])
def test_uniform_gaussian_matches_bounded_minimisation(n):
    step, mse = naive.uniform_step(naive.gaussian(), n)
    t = lm.solve(n_levels=n, uniform=True)
    assert abs(t.step - step) <= 1e-7  # minimize_scalar's own accuracy limits this side
    assert t.mse <= mse * (1 + 1e-12)
    assert abs(t.mse - mse) <= 1e-12


@pytest.mark.parametrize("convention,eps", [("hwgq", None), ("round", None), ("deadzone", 0.32)])
@pytest.mark.parametrize("bits", [1, 2, 3])
def test_uniform_halfwave_conventions_match_naive(convention, eps, bits):
    n = 1 << bits
    pins = {"hwgq": {0: 0.0}, "round": {}, "deadzone": {0: 0.32}}[convention]
    step, mse = naive.uniform_step(naive.halfwave(), n, coef=np.arange(n),
                                   pinned_thresholds=pins, bracket=(0.05, 2.0))
    t = lm.solve(bits=bits, dist="halfwave-gaussian", uniform=True,
                 convention=convention if eps is None else None, zero_threshold=eps)
    assert abs(t.step - step) <= 1e-7
    assert abs(t.mse - mse) <= 1e-12


@pytest.mark.parametrize("convention,kw", [("round", {"convention": "round"}),
                                           ("deadzone", {"zero_threshold": 0.5})])
def test_nonuniform_halfwave_round_and_deadzone_match_naive(convention, kw):
    for n in (2, 4):
        t = lm.solve(n_levels=n, dist="halfwave-gaussian", **kw)
        pins = {0: 0.5} if convention == "deadzone" else {}
        start = np.concatenate([[0.0], np.linspace(0.6, 2.0, n - 1)])
        q, thr, _ = naive.lloyd(naive.halfwave(), start, pinned_levels={0}, pinned_thresholds=pins)
        np.testing.assert_allclose(t.levels, q, atol=TOL)
        np.testing.assert_allclose(t.thresholds, thr, atol=TOL)


def test_evaluate_matches_naive_mse_for_any_table():
    levels = np.array([-2.0, -0.5, 0.1, 1.7])
    thresholds = np.array([-1.0, -0.2, 0.9])
    t = lm.solve(bits=2)
    import dataclasses
    odd = dataclasses.replace(t, levels=levels, thresholds=thresholds)
    got = lm.evaluate(odd)["mse"]
    assert abs(got - naive.gaussian().mse(levels, thresholds)) <= 1e-13


def test_dead_zone_that_swallows_level_one_is_reported():
    """At 4 bits with eps = 0.32 the best uniform grid (step ~0.197, by a scan of the naive
    MSE with thresholds max(eps, midpoint)) leaves level 1 inside the dead zone."""
    h = naive.halfwave()

    def mse(step):
        q = step * np.arange(16)
        t = np.maximum(0.5 * (q[1:] + q[:-1]), 0.32)
        return h.mse(q, t)

    steps = np.linspace(0.17, 0.25, 17)
    best = steps[np.argmin([mse(s) for s in steps])]
    assert 1.5 * best < 0.32  # the premise: the optimum has an empty cell
    with pytest.raises(lm.ConventionError, match="swallows the first level"):
        lm.solve(bits=4, dist="halfwave-gaussian", uniform=True, zero_threshold=0.32)
