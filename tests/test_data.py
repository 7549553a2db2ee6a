"""Empirical data: plain Lloyd against a numpy Lloyd oracle, and clear errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lloydmax as lm
from lloydmax._kernels import point_metrics
from lloydmax._kernels.data import pairwise_sum


def numpy_lloyd(x, levels, iters=10_000):
    """Plain Lloyd in numpy: assign each point (x <= t goes low), move levels to means."""
    q = np.array(levels, dtype=float)
    for _ in range(iters):
        t = 0.5 * (q[1:] + q[:-1])
        idx = np.searchsorted(t, x, side="left")
        new = np.array([x[idx == i].mean() for i in range(q.size)])
        if np.array_equal(new, q):
            break
        q = new
    return q


@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_matches_numpy_lloyd_from_the_same_fixed_point(n):
    x = np.random.default_rng(n).standard_normal(50_000)
    t = lm.solve_data(x, n_levels=n)
    q = numpy_lloyd(x, t.levels)
    np.testing.assert_allclose(t.levels, q, rtol=0, atol=1e-12)
    err = np.mean((t.quantize(x) - x) ** 2)
    assert t.mse == pytest.approx(err, rel=1e-10)
    assert t.sqnr_db == pytest.approx(10 * np.log10(np.mean(x * x) / err), abs=1e-9)
    # and it approaches the Gaussian table as data grows
    ref = lm.solve(n_levels=n)
    np.testing.assert_allclose(t.levels, ref.levels, atol=0.1)


def test_weights_equal_repeats():
    x = np.array([0.0, 1.0, 2.0, 5.0, 9.0])
    w = np.array([3, 1, 2, 1, 4])
    a = lm.solve_data(x, n_levels=3, weights=w)
    b = lm.solve_data(np.repeat(x, w), n_levels=3)
    np.testing.assert_allclose(a.levels, b.levels, rtol=1e-12)
    assert a.mse == pytest.approx(b.mse, rel=1e-12)


def test_relu_data_with_hwgq_convention():
    x = np.maximum(np.random.default_rng(0).standard_normal(20000), 0.0)
    t = lm.solve_data(x, bits=2, convention="hwgq")
    assert t.levels[0] == 0.0 and t.thresholds[0] == 0.0
    ref = lm.solve(bits=2, dist="halfwave-gaussian")
    np.testing.assert_allclose(t.levels, ref.levels, atol=0.05)
    u = lm.solve_data(x, bits=2, convention="hwgq", uniform=True)
    assert u.kind == "uniform" and abs(u.step - 0.5388) < 0.03


@pytest.mark.parametrize("x,needle", [
    ([], "empty"),
    ([1.0, np.nan, 2.0], "NaN"),
    ([1.0, np.inf, 2.0], "Inf"),
    ([3.0] * 10, "constant"),
    ([1.0, 2.0, 1.0], "distinct"),
])
def test_bad_data_raises_typed_error(x, needle):
    with pytest.raises(lm.InvalidDataError, match=needle):
        lm.solve_data(np.array(x, dtype=float), bits=2)


def test_tiny_and_huge_data_do_not_underflow_or_overflow():
    t = lm.solve_data(np.array([0.0] * 7 + [4.3e-200]), n_levels=2)
    assert t.converged and t.levels[1] == 4.3e-200 and abs(t.levels[0]) < 1e-210
    h = lm.solve_data(np.array([1e200, -1e200, 3e199, 5.0]), n_levels=2)
    assert h.levels[0] == -1e200 and np.isfinite(h.sqnr_db)


def test_bad_weights_and_negative_relu_data():
    with pytest.raises(lm.InvalidDataError, match="weights"):
        lm.solve_data([1.0, 2.0, 3.0], bits=1, weights=[1.0, -1.0, 1.0])
    with pytest.raises(lm.InvalidDataError, match="non-negative"):
        lm.solve_data([-1.0, 2.0, 3.0], bits=1, convention="hwgq")


def test_uniform_dead_zone_on_data_that_swallows_level_one_raises():
    x = np.maximum(np.random.default_rng(0).standard_t(12, 3000) + 1, 0)
    with pytest.raises(lm.ConventionError, match="swallows"):
        lm.solve_data(x, bits=4, uniform=True, zero_threshold=0.66)
    ok = lm.solve_data(x, bits=2, uniform=True, zero_threshold=0.66)
    assert np.all(np.diff(ok.thresholds) > 0) and ok.thresholds[0] == 0.66


# --- the one-pass metrics kernel against numpy itself ---------------------------------




@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 20000), lo=st.integers(0, 40), seed=st.integers(0, 2**32 - 1))
def test_pairwise_sum_is_numpys_sum_bit_for_bit(n, lo, seed):
    a = np.random.default_rng(seed).standard_normal(n + lo) * 10.0 ** np.random.default_rng(
        seed).uniform(-8, 8, n + lo)
    assert pairwise_sum(a, lo, n) == np.sum(a[lo:lo + n])


@settings(max_examples=60, deadline=None)
@given(npts=st.integers(2, 400), n=st.integers(2, 12), seed=st.integers(0, 2**32 - 1),
       pin=st.booleans())
def test_point_metrics_equal_the_numpy_expressions(npts, n, seed, pin):
    rng = np.random.default_rng(seed)
    z = np.sort(rng.standard_normal(npts))
    w = rng.random(npts) + 0.01
    levels = np.sort(rng.standard_normal(n))
    thr = 0.5 * (levels[1:] + levels[:-1])
    level_pinned = np.zeros(n, dtype=np.bool_)
    thr_pinned = np.zeros(n - 1, dtype=np.bool_)
    if pin:
        level_pinned[0] = True
        thr_pinned[0] = True
        thr[0] = levels[0] + 0.25 * (levels[1] - levels[0])
    out = np.empty(5)
    point_metrics(z, w, levels, thr, level_pinned, thr_pinned, 0.3, out)
    # the oracle: numpy's searchsorted / bincount / log2 on the same points
    idx = thr.searchsorted(z, side="left")
    total = w.sum()
    mass = np.bincount(idx, weights=w, minlength=n)
    wsum = np.bincount(idx, weights=w * z, minlength=n)
    assert out[3] == total
    d = z - levels[idx]
    assert out[0] == (w * d * d).sum() / total
    assert out[4] == ((z + 0.3) ** 2 * w).sum() / total
    p = mass[mass > 0] / total
    assert out[1] == pytest.approx(-(p * np.log2(p)).sum(), rel=1e-14, abs=1e-15)
    span = levels[-1] - levels[0]
    free = ~level_pinned
    if np.all(mass[free] > 0):
        centroid = np.max(np.abs(levels - wsum / np.where(mass > 0, mass, 1))[free]) / span
    else:
        centroid = np.inf
    midpoint = np.max(np.abs(thr - 0.5 * (levels[1:] + levels[:-1]))[~thr_pinned],
                      initial=0.0) / span
    assert out[2] == pytest.approx(max(centroid, midpoint), rel=1e-12, abs=1e-15)
