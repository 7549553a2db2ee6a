"""Exact DP quantizer: brute force on tiny cases, ckwrap (Ckmeans.1d.dp) on larger ones,
never worse than Lloyd, the half-wave conventions, and errors."""
import itertools
import json
import math
import os
import subprocess
import sys

import ckwrap
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import lloydmax as lm
from lloydmax import _dp
from lloydmax._dp import solve_dp

# --------------------------------------------------------------------------- oracles


def run_sse(x, w):
    """Weighted SSE of one run about its weighted mean (two-pass, exact enough)."""
    m = np.sum(w * x) / np.sum(w)
    return float(np.sum(w * (x - m) ** 2))


def brute_force(x, w, n_runs):
    """Least weighted SSE over every cut of the sorted points into n_runs non-empty runs."""
    order = np.argsort(x, kind="stable")
    x, w = np.asarray(x, float)[order], np.asarray(w, float)[order]
    n = x.size
    if n_runs == 0:
        return 0.0 if n == 0 else math.inf
    best = math.inf
    for cuts in itertools.combinations(range(1, n), n_runs - 1):
        edges = (0,) + cuts + (n,)
        best = min(best, sum(run_sse(x[a:b], w[a:b]) for a, b in zip(edges[:-1], edges[1:])))
    return best


def brute_force_halfwave(x, w, n_levels, convention, eps=0.0):
    """Least weighted SSE with level 0 pinned at 0 (ReLU data)."""
    x, w = np.asarray(x, float), np.asarray(w, float)
    if convention in ("hwgq", "deadzone"):
        zero = x <= eps
        return float(np.sum(w[zero] * x[zero] ** 2)) + brute_force(x[~zero], w[~zero],
                                                                   n_levels - 1)
    order = np.argsort(x, kind="stable")
    x, w = x[order], w[order]
    best = math.inf
    for p in range(x.size + 1):  # the zero cell is a (possibly empty) prefix
        rest = x.size - p
        if rest < n_levels - 1:
            break
        best = min(best, float(np.sum(w[:p] * x[:p] ** 2)) + brute_force(x[p:], w[p:],
                                                                          n_levels - 1))
    return best


def direct_mse(table, x, w):
    x = np.asarray(x, float)
    w = np.broadcast_to(np.asarray(w, float), x.shape)
    q = table.quantize(x)
    return float(np.sum(w * (q - x) ** 2) / np.sum(w))


def ckwrap_answer(x, w, k):
    r = ckwrap.ckmeans(np.asarray(x, float), k, weights=np.asarray(w, float))
    return float(np.sum(r.withinss)) / float(np.sum(w)), np.asarray(r.centers)


# --------------------------------------------------------------------------- strategies

weighted_points = st.integers(2, 9).flatmap(lambda n: st.tuples(
    st.lists(st.integers(-20, 20), min_size=n, max_size=n),
    st.lists(st.floats(0.1, 10.0), min_size=n, max_size=n)))

relu_points = st.integers(2, 9).flatmap(lambda n: st.tuples(
    st.lists(st.one_of(st.just(0), st.integers(0, 40)), min_size=n, max_size=n),
    st.lists(st.floats(0.1, 10.0), min_size=n, max_size=n)))


# --------------------------------------------------------------------------- exactness


@settings(deadline=None, max_examples=150)
@given(weighted_points, st.integers(2, 4))
def test_equals_brute_force_on_tiny_weighted_data(points, n_levels):
    xi, w = points
    x = np.array(xi, float) * 0.37
    w = np.array(w)
    assume(np.unique(x).size >= n_levels)
    t = solve_dp(x, n_levels=n_levels, weights=w)
    best = brute_force(x, w, n_levels) / w.sum()
    assert t.mse == pytest.approx(best, rel=1e-12, abs=1e-15)
    assert direct_mse(t, x, w) == pytest.approx(best, rel=1e-12, abs=1e-15)
    assert np.all(np.diff(t.levels) > 0)
    assert t.converged and t.residual <= 1e-12


@pytest.mark.parametrize("seed,n,k", [(0, 500, 3), (1, 2000, 16), (2, 3000, 64), (3, 800, 100)])
def test_equals_ckwrap_on_random_weighted_data(seed, n, k):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.standard_normal(n // 2), rng.exponential(2.0, n - n // 2) + 1.0])
    w = rng.integers(1, 50, n).astype(float)
    mse, centers = ckwrap_answer(x, w, k)
    t = solve_dp(x, n_levels=k, weights=w)
    assert t.mse == pytest.approx(mse, rel=1e-9)
    np.testing.assert_allclose(t.levels, centers, rtol=0, atol=1e-9 * np.ptp(x))
    assert direct_mse(t, x, w) == pytest.approx(t.mse, rel=1e-12)


@settings(deadline=None, max_examples=30)
@given(st.integers(0, 10**6), st.integers(20, 400), st.integers(2, 12))
def test_equals_ckwrap_property(seed, n, k):
    rng = np.random.default_rng(seed)
    # rounded values: ties and clusters of equal points
    x = np.round(rng.standard_t(3, n), 2)
    w = rng.random(n) + 0.01
    assume(np.unique(x).size >= k)
    mse, centers = ckwrap_answer(x, w, k)
    t = solve_dp(x, n_levels=k, weights=w)
    assert t.mse == pytest.approx(mse, rel=1e-9)
    np.testing.assert_allclose(t.levels, centers, rtol=0, atol=1e-9 * np.ptp(x))


def test_histogram_2048_bins_16_levels_equals_ckwrap():
    rng = np.random.default_rng(7)
    s = np.maximum(rng.standard_normal(200_000), 0.0)
    counts, edges = np.histogram(s, bins=2048)
    centres = 0.5 * (edges[1:] + edges[:-1])
    keep = counts > 0  # ckwrap is given the occupied bins only; solve_dp drops zero weights
    mse, centers = ckwrap_answer(centres[keep], counts[keep], 16)
    t = solve_dp(centres, n_levels=16, weights=counts)
    assert t.mse == pytest.approx(mse, rel=1e-9)
    np.testing.assert_allclose(t.levels, centers, atol=1e-12)


def test_blocked_backtrack_equals_full_table(monkeypatch):
    rng = np.random.default_rng(11)
    x = rng.standard_normal(3000)
    w = rng.random(3000)
    full = solve_dp(x, n_levels=40, weights=w)
    monkeypatch.setattr(_dp, "_ARG_BUDGET", 1000)  # forces blocks of 6 layers
    blocked = solve_dp(x, n_levels=40, weights=w)
    assert blocked.iterations > full.iterations  # the earlier blocks were recomputed
    np.testing.assert_array_equal(blocked.levels, full.levels)
    mse, _ = ckwrap_answer(x, w, 40)
    assert blocked.mse == pytest.approx(mse, rel=1e-9)


def test_weights_equal_repeats_and_ties_collapse():
    x = np.array([0.0, 1.0, 2.0, 5.0, 9.0, 9.5])
    w = np.array([3, 1, 2, 1, 4, 2])
    a = solve_dp(x, n_levels=3, weights=w)
    b = solve_dp(np.repeat(x, w), n_levels=3)
    np.testing.assert_allclose(a.levels, b.levels, rtol=1e-14)
    assert a.mse == pytest.approx(b.mse, rel=1e-13)
    assert b.params["count"] == int(w.sum())


@settings(deadline=None, max_examples=60)
@given(st.integers(0, 10**6), st.integers(2, 8))
def test_lloyd_is_never_better(seed, n_levels):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(-3, 0.3, 40), rng.normal(0, 1, 60), rng.normal(4, 0.1, 7)])
    w = rng.random(x.size) + 0.05
    dp = solve_dp(x, n_levels=n_levels, weights=w)
    lloyd = lm.solve_data(x, n_levels=n_levels, weights=w, strict=False)
    assert dp.mse <= direct_mse(lloyd, x, w) * (1 + 1e-12)
    assert dp.mse <= lloyd.mse * (1 + 1e-12)


def test_escapes_a_lloyd_local_optimum():
    # a big cluster and two small far ones: Lloyd from quantiles spends two levels on the
    # big cluster and one on the midpoint of the small ones
    x = np.concatenate([np.linspace(0, 1, 1000), np.linspace(10, 11, 10), np.linspace(20, 21, 10)])
    lloyd = lm.solve_data(x, n_levels=3)
    dp = solve_dp(x, n_levels=3)
    assert dp.mse < 0.2 * lloyd.mse
    np.testing.assert_allclose(dp.levels, [0.5, 10.5, 20.5], rtol=1e-14)


def test_scale_and_shift_equivariance():
    rng = np.random.default_rng(5)
    x = rng.gamma(2.0, size=700)
    t = solve_dp(x, bits=3)
    u = solve_dp(3e-150 * x - 7e-150, bits=3)
    np.testing.assert_allclose(u.levels, 3e-150 * t.levels - 7e-150, rtol=1e-11)
    assert u.mse == pytest.approx(9e-300 * t.mse, rel=1e-10)
    v = solve_dp(1e150 * x, bits=3)
    assert np.isfinite(v.sqnr_db) and v.sqnr_db == pytest.approx(
        10 * np.log10(np.mean(x * x) / t.mse), rel=1e-10)


def test_table_fields_and_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(1000)
    t = solve_dp(x, bits=2)
    assert (t.distribution, t.kind, t.convention, t.converged) == ("empirical", "nonuniform",
                                                                   "none", True)
    assert t.iterations == 4 and t.step is None and t.n_levels == 4
    np.testing.assert_allclose(t.thresholds, 0.5 * (t.levels[1:] + t.levels[:-1]), rtol=1e-15)
    idx = t.quantize(x, return_index=True)
    np.testing.assert_allclose(t.levels, [x[idx == i].mean() for i in range(4)], rtol=1e-12)
    p = np.bincount(idx) / x.size
    assert t.entropy_bits == pytest.approx(-np.sum(p * np.log2(p)), rel=1e-12)
    assert t.sqnr_db == pytest.approx(10 * np.log10(np.mean(x * x) / direct_mse(t, x, 1.0)),
                                      rel=1e-12)
    path = tmp_path / "dp.json"
    lm.save_tables([t], path)
    back = lm.load_table(path)
    np.testing.assert_array_equal(back.levels, t.levels)


# --------------------------------------------------------------------------- conventions


@settings(deadline=None, max_examples=120)
@given(relu_points, st.integers(2, 4), st.sampled_from(["hwgq", "round", "deadzone"]))
def test_conventions_equal_brute_force(points, n_levels, convention):
    xi, w = points
    x = np.array(xi, float) * 0.25
    w = np.array(w)
    eps = 2.6  # between grid values 2.5 and 2.75
    kw = {"zero_threshold": eps} if convention == "deadzone" else {"convention": convention}
    pinned_to = eps if convention == "deadzone" else 0.0
    assume(np.unique(x).size >= n_levels and x.max() > 0)
    if convention != "round":
        assume(np.unique(x[x > pinned_to]).size >= n_levels - 1)
    t = solve_dp(x, n_levels=n_levels, weights=w, **kw)
    best = brute_force_halfwave(x, w, n_levels, convention, pinned_to) / w.sum()
    assert t.levels[0] == 0.0 and t.convention == convention
    assert t.mse == pytest.approx(best, rel=1e-12, abs=1e-15)
    assert direct_mse(t, x, w) == pytest.approx(best, rel=1e-12, abs=1e-15)
    if convention == "round":
        assert t.thresholds[0] == pytest.approx(t.levels[1] / 2, rel=1e-15)
    else:
        assert t.thresholds[0] == pinned_to


@pytest.mark.parametrize("convention", ["hwgq", "round", "deadzone"])
@pytest.mark.parametrize("bits", [1, 2, 3])
def test_conventions_beat_or_equal_lloyd(convention, bits):
    rng = np.random.default_rng(bits)
    x = np.maximum(rng.standard_normal(5000), 0.0)
    kw = {"zero_threshold": 0.32} if convention == "deadzone" else {"convention": convention}
    dp = solve_dp(x, bits=bits, **kw)
    lloyd = lm.solve_data(x, bits=bits, strict=False, **kw)
    assert dp.convention == lloyd.convention == convention
    assert dp.mse <= lloyd.mse * (1 + 1e-12)
    assert dp.mse == pytest.approx(direct_mse(dp, x, 1.0), rel=1e-12)
    if convention == "deadzone":
        assert dp.zero_threshold == 0.32 and np.all(dp.quantize(x[x <= 0.32]) == 0)


def test_round_without_zeros_can_leave_the_zero_cell_empty():
    x = np.array([10.0, 11.0, 12.0])
    t = solve_dp(x, n_levels=2, convention="round")
    np.testing.assert_allclose(t.levels, [0.0, 11.0])
    assert t.mse == pytest.approx(2.0 / 3.0, rel=1e-14)


def test_hwgq_relu_gaussian_approaches_the_half_wave_table():
    x = np.maximum(np.random.default_rng(0).standard_normal(200_000), 0.0)
    counts, edges = np.histogram(x[x > 0], bins=4096)
    centres = np.concatenate([[0.0], 0.5 * (edges[1:] + edges[:-1])])
    weights = np.concatenate([[np.count_nonzero(x == 0)], counts])
    t = solve_dp(centres, bits=2, weights=weights, convention="hwgq")
    ref = lm.solve(bits=2, dist="halfwave-gaussian")
    np.testing.assert_allclose(t.levels, ref.levels, atol=0.02)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("x,kw,needle", [
    ([], {}, "empty"),
    ([1.0, np.nan, 2.0], {}, "NaN"),
    ([1.0, np.inf, 2.0], {}, "Inf"),
    ([3.0] * 10, {}, "constant"),
    ([1.0, 2.0, 1.0, 2.0], {}, "distinct"),
    ([-1.0, 2.0, 3.0, 4.0], {"convention": "hwgq"}, "non-negative"),
    ([0.0, 0.1, 0.2, 2.0], {"zero_threshold": 0.5}, "above the zero threshold"),
])
def test_bad_data_raises_typed_error(x, kw, needle):
    with pytest.raises(lm.InvalidDataError, match=needle):
        solve_dp(np.array(x, dtype=float), bits=2, **kw)


def test_bad_arguments():
    with pytest.raises(lm.InvalidDataError, match="weights"):
        solve_dp([1.0, 2.0, 3.0], bits=1, weights=[1.0, -1.0, 1.0])
    with pytest.raises(lm.InvalidDataError, match="entries"):
        solve_dp([1.0, 2.0, 3.0], bits=1, weights=[1.0, 1.0])
    with pytest.raises(lm.InvalidBitsError):
        solve_dp([1.0, 2.0, 3.0], n_levels=1)
    with pytest.raises(lm.ConventionError):
        solve_dp([1.0, 2.0, 3.0], bits=1, convention="nearest")


def test_plain_python_kernels_agree_with_jit():
    script = ("import json, numpy as np, lloydmax._dp as d\n"
              "d._ARG_BUDGET = 50\n"
              "x = np.random.default_rng(3).standard_normal(60)\n"
              "t = d.solve_dp(x, n_levels=7)\n"
              "print(json.dumps([list(t.levels), t.mse]))\n")
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         check=True)
    levels, mse = json.loads(out.stdout)
    t = solve_dp(np.random.default_rng(3).standard_normal(60), n_levels=7)
    np.testing.assert_allclose(levels, t.levels, rtol=0, atol=1e-15)
    assert mse == pytest.approx(t.mse, rel=1e-14)


def test_sorted_input_and_unit_weights_take_the_same_path_results():
    """The wrapper's shortcuts (sorted distinct data skip the sort, unit weights the
    weighted mean, build_table one of its two checks) give the tables of the general
    path bit for bit."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal(200)
    w = rng.random(200) + 0.25
    order = np.argsort(x)
    for kw in ({}, {"weights": w}):
        shuffled = solve_dp(x, n_levels=8, **kw).to_dict()
        sorted_kw = {"weights": w[order]} if kw else {}
        assert solve_dp(x[order], n_levels=8, **sorted_kw).to_dict() == shuffled
        ones = solve_dp(x, n_levels=8, weights=np.ones_like(x) if not kw else w).to_dict()
        assert ones["levels"] == shuffled["levels"] and ones["mse"] == shuffled["mse"]
    # a float32 list, a 2-D array and a strided view are converted, not aliased
    xs = x[order]
    assert solve_dp(list(xs), n_levels=4).to_dict() == solve_dp(xs, n_levels=4).to_dict()
    assert (solve_dp(xs[::2], n_levels=4).to_dict()
            == solve_dp(xs[::2].copy(), n_levels=4).to_dict())


def test_round_convention_with_an_empty_zero_run_warns_nothing():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = solve_dp([10.0, 11.0, 12.0, 13.0], n_levels=3, convention="round")
    assert table.levels[0] == 0.0
    np.testing.assert_allclose(table.levels[1:], [10.5, 12.5], rtol=1e-14)
    assert not table.levels.flags.writeable and not table.thresholds.flags.writeable
