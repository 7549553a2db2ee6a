"""Histogram: exact, split-independent merges; counts, zeros and moments against oracles."""
import json
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
import scipy.stats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from lloydmax.analysis.histogram import Histogram, canonical_grid

from lloydmax.errors import InvalidDataError, InvalidInputError


# ---------------------------------------------------------------- naive oracles
def exact_sums(x):
    """Exact S1, S2 of the values."""
    fx = [Fraction(float(v)) for v in np.asarray(x, dtype=np.float64).ravel()]
    return sum(fx, Fraction(0)), sum((f * f for f in fx), Fraction(0))


def exact_shape(x):
    """Exact skewness and excess kurtosis (population definitions) from Fractions."""
    fx = [Fraction(float(v)) for v in np.asarray(x, dtype=np.float64).ravel()]
    n = len(fx)
    mean = sum(fx, Fraction(0)) / n
    m2, m3, m4 = (sum(((f - mean) ** k for f in fx), Fraction(0)) / n for k in (2, 3, 4))
    return math.copysign(math.sqrt(float(m3 * m3 / m2 ** 3)), m3), float(m4 / (m2 * m2)) - 3


def assert_shape_within_bounds(h, x, channel=None):
    """skewness / kurtosis of h within h.shape_error_bounds() of the exact values."""
    skew, kurt = exact_shape(x)
    b_skew, b_kurt = h.shape_error_bounds(channel)
    got_skew = h.skewness if channel is None else h.skewness[channel]
    got_kurt = h.kurtosis if channel is None else h.kurtosis[channel]
    slack = 1e-9  # the float64 evaluation of the binned sums
    assert abs(got_skew - skew) <= b_skew * (1 + slack) + slack * (1 + abs(skew))
    assert abs(got_kurt - kurt) <= b_kurt * (1 + slack) + slack * (3 + abs(kurt))


def naive_grid(lo, hi, n_bins):
    """Smallest e (>= -1074) whose floor-bins of [lo, hi] fit n_bins, with |x| < 2^(e+60)."""
    e = -1074
    while True:
        w = Fraction(2) ** e
        klo = math.floor(Fraction(lo) / w)
        khi = math.floor(Fraction(hi) / w)
        if khi - klo < n_bins and max(abs(lo), abs(hi)) < 2.0 ** (e + 60) if e + 60 < 1024 \
                else khi - klo < n_bins:
            return e, klo
        e += 1


finite = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False, width=64),
    st.floats(-1e-30, 1e-30, allow_nan=False, width=64),
    st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1e300, -1e300, 1.0, -2.5]),
)


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(finite, min_size=0, max_size=60), data=st.data())
def test_merge_is_bit_identical_for_any_split(values, data):
    x = np.array(values, dtype=np.float64)
    whole = Histogram(n_bins=16).update(x)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(x)), max_size=4)))
    parts = np.split(x, cuts)
    streamed = Histogram(n_bins=16)
    for part in parts:
        streamed.update(part)
    merged = Histogram(n_bins=16)
    for part in reversed(parts):  # another order, and merges instead of updates
        merged = Histogram(n_bins=16).update(part) + merged
    for h in (streamed, merged):
        assert h == whole
        assert np.array_equal(h.counts(), whole.counts())
        assert h.power_sums() == whole.power_sums()
        for name in ("count", "zeros", "mean", "var", "skewness", "kurtosis"):
            a, b = getattr(h, name), getattr(whole, name)
            assert a == b or (math.isnan(a) and math.isnan(b))
    # the exact sums equal the naive Fraction oracle, and the grid the naive definition
    assert whole.power_sums()[:2] == list(exact_sums(x))
    if np.unique(x).size > 1 and np.max(np.abs(x)) < 1e100:
        assert_shape_within_bounds(whole, x)
    nz = x[x != 0]
    if nz.size:
        e, k0 = naive_grid(float(nz.min()), float(nz.max()), 16)
        assert whole.bin_width() == 2.0 ** e
        assert whole.edges()[0] == k0 * 2.0 ** e


@settings(deadline=None, max_examples=25)
@given(hnp.arrays(np.float32, st.integers(1, 300),
                  elements=st.floats(-1e4, 1e4, width=32, allow_nan=False)))
def test_float32_sums_exact(x):
    h = Histogram(n_bins=64).update(x)
    assert h.power_sums()[:2] == list(exact_sums(x))
    assert h.count == x.size and h.zeros == int(np.sum(x == 0))


def test_counts_equal_numpy_histogram_on_same_edges():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal(50_000) * 3, np.zeros(1234), -np.zeros(10)])
    h = Histogram(n_bins=256).update(x)
    ref, _ = np.histogram(x[x != 0], bins=h.edges())
    assert np.array_equal(h.counts(), ref)
    assert h.zeros == 1244 and h.count == x.size
    assert h.counts().sum() + h.zeros == x.size
    # floor binning: a value on an edge goes to the bin it opens
    edges = h.edges()
    g = Histogram(n_bins=256).update(np.array([edges[0], edges[10], edges[-2]]))
    assert g.bin_width() <= h.bin_width()


def test_relu_data_uses_one_sided_grid():
    rng = np.random.default_rng(2)
    x = np.maximum(rng.standard_normal(100_000), 0.0).astype(np.float32)
    h = Histogram(n_bins=1024).update(x)
    assert h.edges()[0] >= 0.0
    assert h.edges()[-1] >= x.max() and h.edges()[-1] < 2 * x.max() + 1
    assert h.zeros == int(np.sum(x == 0))
    pts = h.to_weighted_points()
    assert pts.values[0] == 0.0 and pts.weights[0] == h.zeros
    assert pts.weights.sum() == x.size
    assert np.all(np.diff(pts.values) > 0)


def test_moments_against_fraction_and_scipy():
    rng = np.random.default_rng(3)
    x = rng.gamma(2.0, 1.5, 20_000) + 3.0
    x[::9] = 0.0
    h = Histogram().update(x)
    s1, s2 = exact_sums(x)
    n = x.size
    assert h.mean == float(s1 / n)  # correctly rounded exact mean
    assert h.var == float(s2 / n - (s1 / n) ** 2)  # correctly rounded exact variance
    assert h.mean == pytest.approx(math.fsum(x) / n, rel=1e-15)
    assert h.var == pytest.approx(np.var(x), rel=1e-12)
    assert h.std == pytest.approx(np.std(x), rel=1e-12)
    # skewness / kurtosis come from the bins: within the documented bound of scipy's, and
    # equal to the same moments of the bin centres computed in Fractions
    b_skew, b_kurt = h.shape_error_bounds()
    assert b_skew < 0.02 and b_kurt < 0.05
    assert abs(h.skewness - scipy.stats.skew(x)) <= b_skew
    assert abs(h.kurtosis - scipy.stats.kurtosis(x)) <= b_kurt
    mean = Fraction(s1) / n
    m2 = Fraction(s2) / n - mean ** 2
    binned = [(Fraction(float(c)) - mean, int(k)) for c, k in zip(h.centers(), h.counts()) if k]
    binned.append((-mean, h.zeros))
    m3, m4 = (sum((d ** j * k for d, k in binned), Fraction(0)) / n for j in (3, 4))
    assert h.skewness == pytest.approx(float(m3) / float(m2) ** 1.5, rel=1e-12)
    assert h.kurtosis == pytest.approx(float(m4 / m2 ** 2) - 3, rel=1e-12)
    assert h.min == 0.0 and h.max == x.max()


def test_extreme_magnitudes_do_not_overflow_moments():
    x = np.array([1e200, -3e200, 2.5e200, 1e-300, -7e-310])
    h = Histogram().update(x)
    s1, s2 = exact_sums(x)
    assert h.power_sums()[:2] == [s1, s2]
    assert h.mean == float(s1 / 5)
    # x^4 ~ 1e-480 underflows in float64; the unbounded-exponent sums keep it
    tiny = np.array([3e-120, -1e-120, 5e-120, 2e-120, 2e-120])
    t = Histogram().update(tiny)
    scaled = tiny * 1e120
    assert t.var == pytest.approx(np.var(scaled) * 1e-240, rel=1e-14)
    assert_shape_within_bounds(t, tiny)
    assert math.isfinite(t.kurtosis) and math.isfinite(t.skewness)


def test_empty_constant_and_single():
    h = Histogram()
    assert h.count == 0 and math.isnan(h.mean) and math.isnan(h.min)
    h.update(np.array([], dtype=np.float32))
    assert h.count == 0
    with pytest.raises(InvalidDataError):
        h.edges()
    one = Histogram().update([2.0])
    assert one.mean == 2.0 and math.isnan(one.var) and math.isnan(one.std)
    const = Histogram().update(np.full(1000, 0.7, dtype=np.float32))
    assert const.var == 0.0 and math.isnan(const.skewness) and math.isnan(const.kurtosis)
    assert const.counts().sum() == 1000
    zeros = Histogram().update(np.zeros(10))
    pts = zeros.to_weighted_points()
    assert list(pts.values) == [0.0] and list(pts.weights) == [10.0]


def test_per_channel_equals_independent_histograms():
    rng = np.random.default_rng(4)
    scales = np.array([1e-3, 1.0, 100.0])
    x = (rng.standard_normal((8, 3, 5, 5)) * scales[None, :, None, None]).astype(np.float32)
    x[:, 0] = np.maximum(x[:, 0], 0)
    h = Histogram(n_bins=128, axis=1).update(x[:5]).update(x[5:])
    assert h.n_channels == 3
    for c in range(3):
        single = Histogram(n_bins=128).update(x[:, c])
        assert np.array_equal(h.counts(c), single.counts())
        assert np.array_equal(h.edges(c), single.edges())
        assert h.mean[c] == single.mean and h.var[c] == single.var
        assert h.zeros[c] == single.zeros
    assert h.bin_width(2) > 1000 * h.bin_width(1) / 10  # own grid per channel
    # one channel: per channel == per tensor
    y = x[:, 1:2]
    pc = Histogram(n_bins=128, axis=1).update(y)
    pt = Histogram(n_bins=128).update(y)
    assert np.array_equal(pc.counts(0), pt.counts()) and pc.kurtosis[0] == pt.kurtosis
    # negative axis and a Fortran-ordered array give the same result
    assert Histogram(n_bins=128, axis=1).update(np.asfortranarray(x)) == h
    neg = Histogram(n_bins=128, axis=-3).update(x)
    assert all(np.array_equal(neg.counts(c), h.counts(c)) for c in range(3))
    assert np.array_equal(neg.kurtosis, h.kurtosis)


def test_nan_inf_counted_and_warned_strict_raises():
    x = np.array([1.0, np.nan, -np.inf, 2.0, np.inf, 0.0], dtype=np.float32)
    with pytest.warns(RuntimeWarning, match="NaN/Inf"):
        h = Histogram().update(x)
    assert (h.nan_count, h.inf_count, h.count, h.zeros) == (1, 2, 3, 1)
    assert h.mean == 1.0
    s = Histogram(strict=True)
    with pytest.raises(InvalidDataError, match="NaN"):
        s.update(x)
    assert s.count == 0  # nothing added
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Histogram().update(np.ones(3))


def test_memory_bounded():
    h = Histogram(n_bins=64, axis=0)
    rng = np.random.default_rng(5)
    h.update(rng.standard_normal((2, 100)))
    sizes = {k: v.nbytes for k, v in vars(h).items() if isinstance(v, np.ndarray)}
    for i in range(30):
        h.update(rng.standard_normal((2, 1000)) * 10.0 ** (i % 7 - 3))
    assert {k: v.nbytes for k, v in vars(h).items() if isinstance(v, np.ndarray)} == sizes
    assert h.count[0] == 30_100


def test_errors():
    with pytest.raises(InvalidInputError):
        Histogram(n_bins=1000)
    with pytest.raises(InvalidInputError):
        Histogram(axis=2).update(np.ones((3, 3)))
    with pytest.raises(InvalidDataError):
        Histogram().update(np.array(["a", "b"]))
    with pytest.raises(InvalidDataError):
        Histogram().update(np.ones(3, dtype=complex))
    a = Histogram(axis=0).update(np.ones((3, 4)))
    with pytest.raises(InvalidInputError, match="channels"):
        a.update(np.ones((2, 4)))
    with pytest.raises(InvalidInputError, match="channels"):
        a + Histogram(axis=0).update(np.ones((2, 4)))
    with pytest.raises(InvalidInputError, match="bins"):
        Histogram(n_bins=8) + Histogram(n_bins=16)
    with pytest.raises(InvalidInputError, match="axis"):
        Histogram(axis=0) + Histogram()
    with pytest.raises(InvalidInputError, match="channel="):
        a.counts()


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_save_load_roundtrip_exact(tmp_path, suffix):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((20, 4)) * [1, -1e-5, 1e5, 0]
    h = Histogram(n_bins=32, axis=1).update(x)
    h.save(tmp_path / f"h{suffix}")
    back = Histogram.load(tmp_path / f"h{suffix}")
    assert back == h
    assert back.power_sums(2) == h.power_sums(2)
    assert Histogram.from_dict(json.loads(json.dumps(h.to_dict()))) == h
    with pytest.raises(InvalidInputError):
        Histogram.load(tmp_path / f"missing{suffix}")
    with pytest.raises(InvalidInputError):
        h.save(tmp_path / "h.txt")


def test_canonical_grid_matches_naive_definition():
    rng = np.random.default_rng(7)
    for _ in range(50):
        lo, hi = sorted(rng.standard_normal(2) * 10.0 ** rng.integers(-5, 5, 2))
        assert canonical_grid(lo, hi, 64) == naive_grid(lo, hi, 64)
    assert canonical_grid(3.0, 3.0, 2048) == naive_grid(3.0, 3.0, 2048)


def test_weighted_points_feed_the_solver():
    import lloydmax as lm

    rng = np.random.default_rng(8)
    x = rng.standard_normal(50_000)
    pts = Histogram().update(x).to_weighted_points()
    table = lm.solve_data(pts.values, weights=pts.weights, bits=2)
    exact = lm.solve(bits=2)
    assert np.allclose(table.levels, exact.levels, atol=0.05)


def test_plain_python_kernels_agree_with_jit():
    import os
    import subprocess
    import sys

    code = ("import json, numpy as np; from lloydmax.analysis.histogram import Histogram; "
            "x = np.linspace(-3, 5, 301); x[::7] = 0; x[3] = 5e-320; "
            "h = Histogram(n_bins=32, axis=0).update(np.stack([x, x.astype(np.float32) * 2])); "
            "print(json.dumps(h.to_dict()))")
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    x = np.linspace(-3, 5, 301)
    x[::7] = 0
    x[3] = 5e-320
    h = Histogram(n_bins=32, axis=0).update(np.stack([x, x.astype(np.float32) * 2]))
    assert Histogram.from_dict(json.loads(out.stdout)) == h
