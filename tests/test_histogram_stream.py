"""Histogram update kernel: threads, in-kernel grid moves, exact float32 sums, old files."""
import io
import json
import math
import zipfile
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from lloydmax.analysis import _binkern, _stream
from lloydmax.analysis._exactsum import LEGACY_TOTAL_LIMBS, TOTAL_LIMBS
from lloydmax.analysis.histogram import Histogram, canonical_grid

from lloydmax.errors import InvalidInputError


def fraction_sums(x):
    fx = [Fraction(float(v)) for v in np.asarray(x, dtype=np.float64).ravel()]
    return [sum(fx, Fraction(0)), sum((f * f for f in fx), Fraction(0))]


def exact_shape(x):
    fx = [Fraction(float(v)) for v in np.asarray(x, dtype=np.float64).ravel()]
    n = len(fx)
    mean = sum(fx, Fraction(0)) / n
    m2, m3, m4 = (sum(((f - mean) ** k for f in fx), Fraction(0)) / n for k in (2, 3, 4))
    return math.copysign(math.sqrt(float(m3 * m3 / m2 ** 3)), m3), float(m4 / (m2 * m2)) - 3


@pytest.fixture
def threads(monkeypatch):
    """Split every update over n threads, however small."""
    def use(n):
        monkeypatch.setattr(_stream, "THREADS", n)
        monkeypatch.setattr(_stream, "PARALLEL_MIN", 1)
    return use


magnitudes = st.one_of(st.floats(-1e4, 1e4, width=32), st.floats(-2 ** -100, 2 ** -100, width=32),
                       st.sampled_from([float(np.float32(v)) for v in
                                        (0.0, -0.0, 1e-45, -1e-45, 3e38, -3e38)]))


@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(x=hnp.arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(1, 3),
                                          st.integers(1, 70)), elements=magnitudes),
       n_threads=st.integers(2, 3), per_channel=st.booleans())
def test_threaded_updates_are_bit_identical(threads, x, n_threads, per_channel):
    axis = 1 if per_channel else None
    single = Histogram(n_bins=32, axis=axis).update(x)
    threads(n_threads)
    split = Histogram(n_bins=32, axis=axis).update(x)
    assert split == single
    wide = Histogram(n_bins=32, axis=axis).update(x.astype(np.float64))
    assert wide == single  # float32 and float64 kernels give the same exact state
    if not per_channel:
        assert split.power_sums()[:2] == fraction_sums(x)


@settings(deadline=None, max_examples=200)
@given(a=st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: v != 0),
       b=st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: v != 0),
       log2_bins=st.integers(1, 24))
def test_kernel_grid_equals_the_canonical_grid(a, b, log2_bins):
    lo, hi = min(a, b), max(a, b)
    assert _binkern.grid_of(lo, hi, 1 << log2_bins) == canonical_grid(lo, hi, 1 << log2_bins)


def test_float32_sums_exact_across_exponents_and_blocks():
    # magnitudes from 1e-44 (subnormal) to 3e38 in one block: the kernel's float sums take
    # the values within 2^14 of the block's largest, the integer table the rest
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(3 * _binkern.BLOCK + 17)
         * 10.0 ** rng.integers(-44, 38, 3 * _binkern.BLOCK + 17)).astype(np.float32)
    x[::5] = 0
    h = Histogram(n_bins=64).update(x)
    assert h.power_sums()[:2] == fraction_sums(x)
    assert h.count == x.size and h.zeros == int(np.sum(x == 0))
    near = (rng.standard_normal(100_000) * 3).astype(np.float32)  # the common case
    assert Histogram().update(near).power_sums()[:2] == fraction_sums(near)


def test_per_channel_ranges_grow_in_one_call():
    rng = np.random.default_rng(12)
    n_ch = 40
    scales = 10.0 ** rng.uniform(-3, 3, n_ch)
    h = Histogram(n_bins=64, axis=1)
    batches = []
    for i in range(6):  # every batch widens every channel's range
        batch = (rng.standard_normal((3, n_ch, 7, 7)) * scales[None, :, None, None]
                 * 2.0 ** i).astype(np.float32)
        batch[:, ::3] = np.maximum(batch[:, ::3], 0)
        batches.append(batch)
        h.update(batch)
    data = np.concatenate(batches)
    for c in range(n_ch):
        values = data[:, c].ravel()
        alone = Histogram(n_bins=64).update(values)
        assert np.array_equal(h.counts(c), alone.counts())
        assert h.edges(c)[0] == alone.edges()[0] and h.bin_width(c) == alone.bin_width()
        ref, _ = np.histogram(values[values != 0], bins=h.edges(c))
        assert np.array_equal(h.counts(c), ref)
        assert h.power_sums(c)[:2] == fraction_sums(values)
    # the chunked readers' entry points give the same state
    blocks = Histogram(n_bins=64, axis=1)
    blocks.ensure_channels(n_ch)
    moved = np.moveaxis(data, 1, 0)
    blocks.update_block(moved[:15], 0)
    blocks.update_block(moved[15:], 15)
    assert blocks == h
    along = Histogram(n_bins=64, axis=1)
    along.update_along(np.ascontiguousarray(np.moveaxis(data, 1, -1)), -1)
    assert along == h


@settings(deadline=None, max_examples=30)
@given(seed=st.integers(0, 2 ** 16), n=st.integers(20, 400), kind=st.sampled_from(
    ["normal", "relu", "gamma", "shifted"]), n_bins=st.sampled_from([8, 64, 2048]))
def test_binned_skewness_and_kurtosis_stay_within_their_bounds(seed, n, kind, n_bins):
    rng = np.random.default_rng(seed)
    x = {"normal": rng.standard_normal(n), "relu": np.maximum(rng.standard_normal(n), 0),
         "gamma": rng.gamma(0.7, 2.0, n), "shifted": rng.standard_normal(n) * 1e-3 + 50}[kind]
    x = x.astype(np.float32)
    if np.unique(x).size < 2:
        return
    h = Histogram(n_bins=n_bins).update(x)
    skew, kurt = exact_shape(x)
    b_skew, b_kurt = h.shape_error_bounds()
    assert abs(h.skewness - skew) <= b_skew * (1 + 1e-9) + 1e-9 * (1 + abs(skew))
    assert abs(h.kurtosis - kurt) <= b_kurt * (1 + 1e-9) + 1e-9 * (3 + abs(kurt))


def test_bounds_shrink_with_the_bin_width():
    x = np.random.default_rng(13).standard_normal(50_000)
    coarse, fine = Histogram(n_bins=64).update(x), Histogram(n_bins=4096).update(x)
    assert fine.shape_error_bounds()[0] < coarse.shape_error_bounds()[0] / 32
    skew, kurt = exact_shape(x)
    assert abs(fine.skewness - skew) < 2e-3 and abs(fine.kurtosis - kurt) < 2e-3


def _as_v1_dict(d: dict) -> dict:
    old = json.loads(json.dumps(d))
    old["schema"] = "lloydmax.histogram/1"
    for ch in old["channels"]:  # format /1 also held S3 and S4
        ch["sums"] += [{"exponent": -1074 * 3 - 104, "negative": False, "limbs": [7]},
                       {"exponent": -1074 * 4 - 104, "negative": True, "limbs": [1, 2]}]
    return old


def test_format_v1_files_still_load(tmp_path):
    rng = np.random.default_rng(14)
    h = Histogram(n_bins=32, axis=1).update(rng.standard_normal((50, 3)) * [1, 1e-4, 1e4])
    assert h.to_dict()["schema"] == "lloydmax.histogram/2"
    old = _as_v1_dict(h.to_dict())
    assert Histogram.from_dict(old) == h
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert Histogram.load(tmp_path / "old.json") == h
    # NPZ /1: 682 limbs per channel, S1 and S2 first in the same layout
    a = h.arrays()
    limbs = np.concatenate([a.limbs, rng.integers(0, 1 << 32, (3, LEGACY_TOTAL_LIMBS
                                                               - TOTAL_LIMBS))], axis=1)
    meta = {"schema": "lloydmax.histogram/1", "n_bins": 32, "axis": 1, "strict": False,
            "n_channels": 3}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, arr in {"meta": np.array(json.dumps(meta)), "counts": a.counts,
                          "grid": a.grid, "lohi": a.lohi, "stats": a.stats,
                          "limbs": limbs}.items():
            body = io.BytesIO()
            np.lib.format.write_array(body, arr, allow_pickle=False)
            zf.writestr(f"{name}.npy", body.getvalue())
    (tmp_path / "old.npz").write_bytes(buf.getvalue())
    assert Histogram.load(tmp_path / "old.npz") == h
    # a /2 file with four sums, or a /1 file with two, is malformed
    bad = h.to_dict()
    bad["channels"][0]["sums"] = old["channels"][0]["sums"]
    with pytest.raises(InvalidInputError, match="power sums"):
        Histogram.from_dict(bad)
    with pytest.raises(InvalidInputError, match="histogram/2"):
        Histogram.from_dict(dict(old, schema="lloydmax.histogram/3"))


@settings(deadline=None, max_examples=25)
@given(seed=st.integers(0, 2 ** 16), dtype=st.sampled_from([np.float32, np.float64]))
def test_limbs_stay_normalised_after_every_update(seed, dtype):
    # the kernel carries only the limbs it touched; the state must still be the unique
    # normalised form (each limb but a power's top one in [0, 2^32))
    from lloydmax.analysis._exactsum import OFFSETS

    rng = np.random.default_rng(seed)
    h = Histogram(n_bins=16, axis=0)
    for _ in range(4):
        x = rng.standard_normal((2, int(rng.integers(1, 3000)))) * 10.0 ** rng.integers(
            -20, 20, (2, 1))
        x[:, ::7] = -np.abs(x[:, ::7]) * 1e6
        h.update(x.astype(dtype))
        limbs = h.arrays().limbs
        for k in range(len(OFFSETS) - 1):
            body = limbs[:, OFFSETS[k]:OFFSETS[k + 1] - 1]
            assert body.min() >= 0 and body.max() < 1 << 32


@given(st.integers(1, 6), st.integers(1, 40), st.integers(0, 2**32 - 1),
       st.sampled_from(["relu", "normal", "subnormal", "wide"]))
@settings(max_examples=60, deadline=None)
def test_pooled_channels_are_the_per_tensor_histogram_bit_for_bit(channels, per, seed, kind):
    """Histogram.pooled: every channel re-binned onto the joint range's grid and added is
    the histogram of the same values collected per tensor (state, and so every
    statistic), whatever the channels' own ranges; a subset pools only those channels."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((per, channels)) * rng.uniform(0.1, 10.0, channels)
    if kind == "relu":
        x = np.maximum(x, 0.0)
    elif kind == "subnormal":
        x = x * 1e-310
    elif kind == "wide":  # channels 2^100 apart: grids far coarser than their own
        x = x * 10.0 ** rng.uniform(-30, 30, channels)
    per_channel = Histogram(axis=1).update(x)
    assert per_channel.pooled() == Histogram().update(x)
    pick = [c for c in range(channels) if c % 2 == 0]
    assert per_channel.pooled(pick) == Histogram().update(x[:, pick])
