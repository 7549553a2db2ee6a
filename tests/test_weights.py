"""Weight codebooks against plain numpy formulas, brute force and published constants."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import optimize, stats

import lloydmax.weights as W
from lloydmax.errors import InvalidBitsError, InvalidDataError, InvalidInputError

RNG = np.random.default_rng(20260125)
CONV = RNG.normal(size=(6, 4, 3, 3))

# small weight tensors (channels, elements) with moderate magnitudes; no subnormals, whose
# missing precision makes 0.7 * |w| round up to |w| (no trained weight is 1e-320)
weights_2d = hnp.arrays(
    np.float64, st.tuples(st.integers(1, 4), st.integers(1, 12)),
    elements=st.floats(-8.0, 8.0, allow_nan=False, allow_infinity=False).filter(
        lambda v: v == 0.0 or abs(v) > 1e-100))


def _per_channel(w):
    return w.reshape(w.shape[0], -1)


def _brute_ternary_mse(row):
    """Every support {|w| > t} for t in {0} and the magnitudes: least-squares alpha."""
    mags = np.abs(row)
    best = np.mean(row ** 2)  # empty support
    for t in np.concatenate([[0.0], mags]):
        sup = mags > t
        if sup.any():
            alpha = mags[sup].mean()
            err = np.mean((row - alpha * np.sign(row) * sup) ** 2)
            best = min(best, err)
    return best


# --------------------------------------------------------------------------- binary


def test_binary_matches_xnor_formula():
    cb = W.binary(CONV)
    alpha = np.abs(_per_channel(CONV)).mean(axis=1)
    np.testing.assert_allclose(cb.scales.reshape(-1), alpha, rtol=1e-14)
    assert cb.scales.shape == (6, 1, 1, 1)
    np.testing.assert_array_equal(cb.codes, np.where(CONV >= 0, 1, -1))
    want = np.mean((CONV - alpha[:, None, None, None] * np.where(CONV >= 0, 1, -1)) ** 2)
    assert cb.mse == pytest.approx(want, rel=1e-13)
    assert cb.codes.dtype == np.int8 and cb.method == "binary"


def test_binary_zero_weight_is_plus_one_and_axis_none():
    w = np.array([[0.0, -0.0, -2.0, 1.0]])
    cb = W.binary(w, axis=None)
    np.testing.assert_array_equal(cb.codes, [[1, 1, -1, 1]])
    assert cb.scales.shape == (1, 1) and cb.scales[0, 0] == pytest.approx(0.75)
    # axis=1 on a 2-D array: one scale per column
    cb1 = W.binary(CONV[:, :, 0, 0], axis=1)
    np.testing.assert_allclose(cb1.scales.reshape(-1), np.abs(CONV[:, :, 0, 0]).mean(axis=0))
    assert cb1.scales.shape == (1, 4)


@settings(deadline=None, max_examples=40)
@given(weights_2d)
def test_binary_alpha_is_mean_abs_per_channel(w):
    cb = W.binary(w)
    np.testing.assert_allclose(cb.scales.reshape(-1), np.abs(w).mean(axis=1), rtol=1e-12)
    assert set(np.unique(cb.codes)) <= {-1, 0, 1}
    assert cb.mse == pytest.approx(np.mean((w - cb.scales * cb.codes) ** 2), rel=1e-12, abs=1e-300)


# --------------------------------------------------------------------------- ternary


def test_twn_threshold_and_scale():
    cb = W.ternary(CONV, method="twn")
    for c, row in enumerate(_per_channel(CONV)):
        delta = 0.7 * np.abs(row).mean()
        sup = np.abs(row) > delta
        assert cb.threshold.reshape(-1)[c] == pytest.approx(delta, rel=1e-14)
        assert cb.scales.reshape(-1)[c] == pytest.approx(np.abs(row[sup]).mean(), rel=1e-14)
        np.testing.assert_array_equal(cb.codes[c].reshape(-1), np.sign(row) * sup)


def test_syq_ternary_threshold_and_init_scale():
    cb = W.ternary(CONV, method="syq")
    for c, row in enumerate(_per_channel(CONV)):
        assert cb.threshold.reshape(-1)[c] == pytest.approx(0.05 * np.abs(row).max(), rel=1e-14)
        assert cb.scales.reshape(-1)[c] == pytest.approx(np.abs(row).mean(), rel=1e-14)
    cb2 = W.ternary(CONV, method="syq", eta=0.5)
    assert np.count_nonzero(cb2.codes) < np.count_nonzero(cb.codes)


def _gaussian_ternary_oracle():
    """3-level Lloyd-Max for N(0,1): t = q/2 with q = E[X | X > t] = phi(t)/sf(t)."""
    t = optimize.brentq(lambda t: 2 * t - stats.norm.pdf(t) / stats.norm.sf(t), 0.1, 2.0,
                        xtol=1e-15)
    return t, 2 * t


def test_gaussian_ternary_uses_lloyd_max_table():
    t, q = _gaussian_ternary_oracle()
    assert round(t, 4) == 0.6120 and round(q, 4) == 1.2240  # the brief's printed values
    cb = W.ternary(CONV, method="gaussian")
    sigma = np.sqrt(np.mean(_per_channel(CONV) ** 2, axis=1))
    np.testing.assert_allclose(cb.threshold.reshape(-1), t * sigma, rtol=1e-10)
    np.testing.assert_allclose(cb.scales.reshape(-1), q * sigma, rtol=1e-10)


def test_optimal_ternary_matches_brute_force_and_gaussian_limit():
    cb = W.ternary(CONV, method="optimal")
    per = [np.mean((row - s * c) ** 2) for row, s, c in
           zip(_per_channel(CONV), cb.scales.reshape(-1), _per_channel(cb.codes))]
    for row, got in zip(_per_channel(CONV), per):
        assert got == pytest.approx(_brute_ternary_mse(row), rel=1e-12)
    # a large Gaussian sample approaches the 3-level Lloyd-Max threshold and level
    x = RNG.normal(size=400_000)
    big = W.ternary(x, axis=None)
    t, q = _gaussian_ternary_oracle()
    assert abs(big.threshold.item() - t) < 0.02 and abs(big.scales.item() - q) < 0.02


def test_optimal_ternary_with_ties():
    # magnitudes tied across the best cut: the support must hold all or none of a tie
    w = np.array([3.0, -3.0, 1.0, -1.0, 1.0, 0.0, 0.0])
    cb = W.ternary(w, axis=None)
    assert cb.mse == pytest.approx(_brute_ternary_mse(w), rel=1e-14)
    support = np.abs(w) > cb.threshold.item()
    np.testing.assert_array_equal(cb.codes, np.sign(w) * support)
    assert cb.scales.item() == pytest.approx(np.abs(w[support]).mean())


@settings(deadline=None, max_examples=60)
@given(weights_2d)
def test_ternary_properties(w):
    books = {m: W.ternary(w, method=m) for m in W.TERNARY_METHODS}
    for cb in books.values():
        assert set(np.unique(cb.codes)) <= {-1, 0, 1}
        assert cb.codes.shape == w.shape and cb.scales.shape == (w.shape[0], 1)
        assert cb.mse == pytest.approx(np.mean((w - cb.scales * cb.codes) ** 2),
                                       rel=1e-12, abs=1e-300)
        nz = cb.codes != 0
        # non-zero codes exactly where |w| exceeds the threshold (all-zero rows: none)
        live = np.broadcast_to(cb.scales > 0, w.shape)
        np.testing.assert_array_equal(nz, (np.abs(w) > cb.threshold) & live)
    best = books["optimal"].mse
    slack = 1e-12 * np.mean(w ** 2)  # rounding of the scales' sums, relative to the power
    for m in ("twn", "syq", "gaussian"):
        assert best <= books[m].mse + slack
    for row, s, c in zip(w, books["optimal"].scales[:, 0], books["optimal"].codes):
        assert np.mean((row - s * c) ** 2) == pytest.approx(
            _brute_ternary_mse(row), rel=1e-9, abs=1e-12 * np.mean(row ** 2) + 1e-300)


@settings(deadline=None, max_examples=40)
@given(weights_2d, st.integers(-6, 6), st.sampled_from(W.TERNARY_METHODS))
def test_scaling_weights_scales_the_scales(w, k, method):
    s = 2.0 ** k  # exact in binary floating point: codes must not change
    a, b = W.ternary(w, method=method), W.ternary(s * w, method=method)
    np.testing.assert_array_equal(a.codes, b.codes)
    np.testing.assert_allclose(b.scales, s * a.scales, rtol=1e-12)
    np.testing.assert_allclose(b.threshold, s * a.threshold, rtol=1e-12)
    c, d = W.binary(w), W.binary(s * w)
    np.testing.assert_array_equal(c.codes, d.codes)
    np.testing.assert_allclose(d.scales, s * c.scales, rtol=1e-12)


def test_scaling_by_arbitrary_factor():
    s = 3.7
    for f in (W.binary, lambda x: W.ternary(x, method="twn"), lambda x: W.uniform(x, 3)):
        a, b = f(CONV), f(s * CONV)
        np.testing.assert_array_equal(a.codes, b.codes)
        np.testing.assert_allclose(b.scales, s * a.scales, rtol=1e-12)
        assert b.mse == pytest.approx(s * s * a.mse, rel=1e-10)


# --------------------------------------------------------------------------- SYQ groups


def test_syq_pixel_row_layer_groups():
    w = CONV
    layer_thr = 0.05 * np.abs(w).max()
    pix = W.syq_scales(w, group="pixel")
    assert pix.scales.shape == (1, 1, 3, 3) and pix.axis == (2, 3)
    for i in range(3):
        for j in range(3):
            assert pix.scales[0, 0, i, j] == pytest.approx(np.abs(w[:, :, i, j]).mean())
    assert pix.threshold.item() == pytest.approx(layer_thr)
    np.testing.assert_array_equal(pix.codes, np.sign(w) * (np.abs(w) > layer_thr))
    row = W.syq_scales(w, group="row")
    assert row.scales.shape == (1, 1, 3, 1)
    np.testing.assert_allclose(row.scales.reshape(-1), [np.abs(w[:, :, i, :]).mean()
                                                       for i in range(3)])
    lay = W.syq_scales(w, group="layer", ternary=False)
    assert lay.scales.shape == (1, 1, 1, 1) and lay.threshold is None
    assert lay.scales.item() == pytest.approx(np.abs(w).mean())
    np.testing.assert_array_equal(lay.codes, np.where(w >= 0, 1, -1))
    assert lay.method == "syq-layer-binary"


def test_syq_tensorflow_layout_and_fc():
    hwio = np.transpose(CONV, (2, 3, 1, 0))
    a = W.syq_scales(CONV, group="pixel")
    b = W.syq_scales(hwio, group="pixel", layout="hwio")
    np.testing.assert_allclose(b.scales[:, :, 0, 0], a.scales[0, 0], rtol=1e-14)
    assert a.mse == pytest.approx(b.mse, rel=1e-13)
    fc = RNG.normal(size=(5, 7))
    r = W.syq_scales(fc, group="row")
    np.testing.assert_allclose(r.scales.reshape(-1), np.abs(fc).mean(axis=1))
    assert W.syq_scales(fc.T, group="row", layout="hwio").scales.shape == (1, 5)
    for g in ("pixel", "layer"):  # SYQ's code: one scale per fully connected layer
        assert W.syq_scales(fc, group=g).scales.shape == (1, 1)
    with pytest.raises(InvalidInputError, match="4-D conv kernels"):
        W.syq_scales(np.ones(4))


# --------------------------------------------------------------------------- uniform


MAX_STEPS = {1: 1.596, 2: 0.9957, 3: 0.5860, 4: 0.3352}  # Max (1960), unit Gaussian


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_uniform_step_and_codes(bits):
    cb = W.uniform(CONV, bits)
    rows = _per_channel(CONV)
    sigma = np.sqrt(np.mean(rows ** 2, axis=1))
    unit = cb.step.reshape(-1) / sigma
    decimals = len(repr(MAX_STEPS[bits]).split(".")[1])
    assert np.all(np.abs(unit - MAX_STEPS[bits]) <= 0.5 * 10.0 ** -decimals)
    n = 2 ** bits
    step = cb.step.reshape(-1)[:, None]
    k = np.clip(np.ceil(rows / step + n / 2 - 1), 0, n - 1)  # cells (t_{k-1}, t_k]
    np.testing.assert_array_equal(_per_channel(cb.codes), 2 * k - (n - 1))
    levels = (k - (n - 1) / 2) * step
    np.testing.assert_allclose(_per_channel(cb.dequantize()), levels, rtol=1e-13, atol=1e-15)
    assert cb.mse == pytest.approx(np.mean((rows - levels) ** 2), rel=1e-12)


def test_uniform_code_dtypes_and_levels():
    x = RNG.normal(size=(2, 3000))
    assert W.uniform(x, 7).codes.dtype == np.int8
    c8 = W.uniform(x, 8)
    assert c8.codes.dtype == np.int16 and c8.codes.max() <= 255 and c8.codes.min() >= -255
    assert np.all(c8.codes % 2 != 0)
    with pytest.raises(InvalidBitsError):
        W.uniform(x, 0)


@settings(deadline=None, max_examples=40)
@given(weights_2d, st.integers(1, 4))
def test_uniform_picks_the_nearest_level(w, bits):
    cb = W.uniform(w, bits)
    n = 2 ** bits
    for row, s, code in zip(w, cb.step[:, 0], cb.codes):
        if s == 0:
            assert np.all(code == 0)
            continue
        levels = (np.arange(n) - (n - 1) / 2) * s
        dist = np.abs(row[:, None] - levels[None, :])
        chosen = np.abs(row - s * code / 2)
        assert np.all(chosen <= dist.min(axis=1) + 1e-12 * s)
    assert cb.mse == pytest.approx(np.mean((w - cb.dequantize()) ** 2), rel=1e-12, abs=1e-300)


# --------------------------------------------------------------------------- edge cases


def test_all_zero_group_gets_zero_scale_and_codes():
    w = CONV.copy()
    w[2] = 0.0
    books = [W.binary(w), W.uniform(w, 2)] + [W.ternary(w, method=m) for m in W.TERNARY_METHODS]
    for cb in books:
        assert cb.scales.reshape(-1)[2] == 0.0
        assert np.all(cb.codes[2] == 0)
        assert np.all(np.isfinite(cb.scales))
        assert np.all(cb.dequantize()[2] == 0.0)
    zero = W.ternary(np.zeros((2, 3)))
    assert zero.mse == 0.0 and np.all(zero.codes == 0)


def test_tiny_weights_do_not_underflow():
    w = 1e-200 * CONV
    for cb in (W.uniform(w, 2), W.ternary(w, method="gaussian")):
        assert np.all(cb.scales > 0)
        np.testing.assert_array_equal(cb.codes, (W.uniform(CONV, 2) if cb.step is not None
                                                 else W.ternary(CONV, method="gaussian")).codes)


def test_codebook_is_frozen():
    cb = W.binary(CONV)
    with pytest.raises(ValueError):
        cb.codes[0, 0, 0, 0] = 5
    with pytest.raises(AttributeError):
        cb.mse = 0.0


@pytest.mark.parametrize("bad, match", [
    (np.array([]), "empty"),
    (np.array([1.0, np.nan]), "1 NaN"),
    (np.array([1.0, np.inf, -np.inf]), "2 Inf"),
    ([["a", "b"]], "real numbers"),
])
def test_bad_data(bad, match):
    for f in (W.binary, W.ternary, lambda x: W.uniform(x, 2)):
        with pytest.raises(InvalidDataError, match=match):
            f(bad)


def test_bad_arguments():
    with pytest.raises(InvalidInputError, match="out of range"):
        W.binary(CONV, axis=4)
    with pytest.raises(InvalidInputError, match="axis=None"):
        W.binary(3.0, axis=0)
    assert W.binary(3.0, axis=None).scales.item() == 3.0
    with pytest.raises(InvalidInputError, match="integer or None"):
        W.ternary(CONV, axis=1.5)
    with pytest.raises(InvalidInputError, match="valid: twn, syq, optimal, gaussian"):
        W.ternary(CONV, method="ttq")
    with pytest.raises(InvalidInputError, match="eta"):
        W.ternary(CONV, method="syq", eta=1.0)
    with pytest.raises(InvalidInputError, match="valid: pixel, row, layer"):
        W.syq_scales(CONV, group="column")
    with pytest.raises(InvalidInputError, match="layout"):
        W.syq_scales(CONV, layout="nchw")
    assert W.binary(CONV, axis=-4).scales.shape == (6, 1, 1, 1)
