"""Analysis report: every number against a direct numpy / scipy / ckwrap computation on
the same weighted points (or the raw data for the exact statistics)."""
import math

import ckwrap
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lloydmax.analysis.histogram import Histogram
from lloydmax.analysis.report import best_tables, report
from scipy import stats
from scipy.special import ndtr

import lloydmax as lm

CONVENTIONS = ("hwgq", "round", "deadzone")
METHODS = ([f"{c}_unit" for c in CONVENTIONS] + ["dp"] + [f"dp_{c}" for c in CONVENTIONS]
           + [f"uniform_{c}" for c in CONVENTIONS] + ["pclip", "maxrange"])


def relu_data(seed, n=20_000, scale=1.3, shift=0.1):
    rng = np.random.default_rng(seed)
    return np.maximum(scale * rng.standard_normal(n) + shift, 0.0)


def hist_of(x, axis=None, n_bins=512):
    h = Histogram(n_bins=n_bins, axis=axis)
    h.update(x)
    return h


# --------------------------------------------------------------------------- numpy oracles


def np_mse(levels, thresholds, v, w):
    """x <= t_i goes to the lower level; searched by comparison, not by the kernel."""
    idx = (v[:, None] > np.asarray(thresholds)[None, :]).sum(axis=1)
    return float(np.sum(w * (v - np.asarray(levels)[idx]) ** 2) / np.sum(w))


def np_uniform_mse(step, n, v, w, zero_threshold=None):
    """Nearest multiple of step in [0, (n-1) step]; below a pinned zero threshold -> 0."""
    k = np.clip(np.round(v / step), 0, n - 1)
    if zero_threshold is not None:
        k = np.where(v <= zero_threshold, 0, np.maximum(k, 1))
    return float(np.sum(w * (v - k * step) ** 2) / np.sum(w))


def ck_sse(v, w, k):
    return float(np.sum(ckwrap.ckmeans(v, k, weights=w).withinss))


def ks_oracle(v, w, sigma):
    """sup |F - G| evaluated on every point, on the float just left of every point, and
    on both sides of 0 (F is a step function and G is continuous except at 0)."""
    xs = np.unique(np.concatenate([v, np.nextafter(v, -np.inf), [0.0, -5e-324]]))
    f = np.array([w[v <= x].sum() for x in xs]) / w.sum()
    g = np.where(xs < 0, 0.0, ndtr(xs / sigma))
    return float(np.max(np.abs(f - g)))


# --------------------------------------------------------------------------- oracle tests


@pytest.fixture(scope="module")
def relu_case():
    x = relu_data(0)
    h = hist_of(x)
    df = report({"conv1": h}, bits=(1, 2, 3))
    v, w = h.to_weighted_points()
    return x, h, df, v, w


def test_statistics_equal_numpy_on_the_raw_data(relu_case):
    x, _h, df, v, w = relu_case
    row = df.iloc[0]
    assert (row["layer"], row["count"], row["zeros"]) == ("conv1", x.size, np.sum(x == 0))
    assert pd.isna(row["channel"])
    assert row["sparsity"] == pytest.approx(np.mean(x == 0), rel=1e-15)
    assert row["mean"] == pytest.approx(np.mean(x), rel=1e-12)
    assert row["std"] == pytest.approx(np.std(x), rel=1e-12)
    # skewness and kurtosis come from the exact bin counts, within the histogram's own
    # proven bound (docs/analysis.md); the bound is loose, the error far smaller
    skew_bound, kurt_bound = _h.shape_error_bounds()
    assert abs(row["skewness"] - stats.skew(x)) <= skew_bound
    assert abs(row["kurtosis"] - stats.kurtosis(x)) <= kurt_bound
    assert row["skewness"] == pytest.approx(stats.skew(x), rel=1e-3)
    assert (row["min"], row["max"]) == (x.min(), x.max())
    assert row["sigma"] == pytest.approx(np.sqrt(2 * np.mean(x * x)), rel=1e-12)
    assert row["points"] == v.size
    assert row["ks_halfwave"] == pytest.approx(ks_oracle(v, w, row["sigma"]), rel=1e-12)


def test_mse_and_sqnr_equal_numpy_on_the_weighted_points(relu_case):
    x, _h, df, v, w = relu_case
    row = df.iloc[0]
    sigma = np.sqrt(2 * np.mean(x * x))
    power = np.sum(w * v * v) / np.sum(w)
    total = np.sum(w)
    pos = v > 0
    repeated = np.repeat(v, w.astype(int))
    for b in (1, 2, 3):
        n = 1 << b
        # unit tables x sigma: the published recipe, quantized here by numpy
        steps = {c: lm.solve(bits=b, dist="halfwave-gaussian", uniform=True,
                             **({"zero_threshold": 0.32} if c == "deadzone" else
                                {"convention": c})).step * sigma for c in CONVENTIONS}
        expect = {
            "hwgq_unit": np_uniform_mse(steps["hwgq"], n, v, w, zero_threshold=0.0),
            "round_unit": np_uniform_mse(steps["round"], n, v, w),
            "deadzone_unit": np_uniform_mse(steps["deadzone"], n, v, w,
                                            zero_threshold=0.32 * sigma),
            # exact optima from ckwrap (Ckmeans.1d.dp): free, and with the zero cell pinned
            "dp": ck_sse(v, w, n) / total,
            "dp_hwgq": ck_sse(v[pos], w[pos], n - 1) / total,
        }
        dz = v > 0.32 * sigma
        expect["dp_deadzone"] = (np.sum(w[~dz] * v[~dz] ** 2) + ck_sse(v[dz], w[dz], n - 1)) / total
        for name, clip in (("pclip", np.percentile(repeated, 99.99, method="inverted_cdf")),
                           ("maxrange", v.max())):
            expect[name] = np_uniform_mse(clip / (n - 1), n, v, w)
        for c in CONVENTIONS:
            kw = {"zero_threshold": 0.32 * sigma} if c == "deadzone" else {"convention": c}
            t = lm.solve_data(v, bits=b, weights=w, uniform=True, strict=False, **kw)
            expect[f"uniform_{c}"] = np_mse(t.levels, t.thresholds, v, w)
        for method, mse in expect.items():
            assert row[f"mse_b{b}_{method}"] == pytest.approx(mse, rel=1e-9), (b, method)
            assert row[f"sqnr_b{b}_{method}"] == pytest.approx(10 * np.log10(power / mse),
                                                               abs=1e-8)
        # round with a pinned zero: the optimum is between the free and hwgq optima
        assert expect["dp"] <= row[f"mse_b{b}_dp_round"] <= expect["dp_hwgq"] * (1 + 1e-12)


def test_column_names_and_order(relu_case):
    df = relu_case[2]
    head = ["layer", "channel", "count", "zeros", "sparsity", "mean", "std", "skewness",
            "kurtosis", "min", "max", "sigma", "ks_halfwave", "points"]
    tail = []
    for b in (1, 2, 3):
        tail += [f"mse_b{b}_{m}" for m in METHODS] + [f"sqnr_b{b}_{m}" for m in METHODS]
    assert list(df.columns) == head + tail


def test_half_gaussian_data_is_close_and_exponential_data_is_not():
    rng = np.random.default_rng(3)
    g = np.maximum(rng.standard_normal(50_000), 0.0)
    e = np.where(rng.random(50_000) < 0.5, 0.0, rng.exponential(1.0, 50_000))
    df = report({"g": hist_of(g, n_bins=4096), "e": hist_of(e, n_bins=4096)}, bits=2)
    ks = dict(zip(df["layer"], df["ks_halfwave"]))
    assert ks["g"] < 0.01 < 0.05 < ks["e"]


# --------------------------------------------------------------------------- properties


@settings(deadline=None, max_examples=12)
@given(st.integers(0, 10**6), st.floats(0.2, 5.0), st.floats(-1.0, 1.0),
       st.sampled_from([1.0, 3.0]))
def test_dp_is_the_floor_of_every_column(seed, scale, shift, tail):
    rng = np.random.default_rng(seed)
    x = np.maximum(scale * rng.standard_t(tail * 4, 3000) + shift * scale, 0.0)
    df = report(hist_of(x, n_bins=256), bits=(1, 2, 3, 4))
    row = df.iloc[0]
    for b in (1, 2, 3, 4):
        dp = row[f"mse_b{b}_dp"]
        assert dp > 0
        for m in METHODS:
            value = row[f"mse_b{b}_{m}"]
            assert math.isnan(value) or dp <= value * (1 + 1e-12), (b, m)
        for c in CONVENTIONS:  # the exact pinned optimum beats Lloyd's uniform table
            uni = row[f"mse_b{b}_uniform_{c}"]
            assert math.isnan(uni) or row[f"mse_b{b}_dp_{c}"] <= uni * (1 + 1e-12)
            # NaN only for a dead-zone table whose step fell below the dead zone
            assert not math.isnan(uni) or c == "deadzone"
        assert row[f"sqnr_b{b}_dp"] == max(row[f"sqnr_b{b}_{m}"] for m in METHODS
                                           if not math.isnan(row[f"sqnr_b{b}_{m}"]))


def test_single_channel_report_equals_per_tensor_report():
    x = relu_data(5, n=8000)
    tensor = report({"l": hist_of(x)}, bits=(1, 2))
    per_ch = report({"l": hist_of(x[:, None], axis=1)}, bits=(1, 2), per_channel=True)
    assert len(per_ch) == 1 and per_ch["channel"].iloc[0] == 0
    cols = [c for c in tensor.columns if c != "channel"]
    pd.testing.assert_frame_equal(tensor[cols], per_ch[cols], check_exact=True)


def test_per_channel_rows_and_merged_tensor_row():
    rng = np.random.default_rng(9)
    x = np.maximum(rng.standard_normal((4000, 3)) * np.array([0.5, 1.0, 3.0]), 0.0)
    h = hist_of(x, axis=1)
    per = report(h, bits=2, per_channel=True)
    assert list(per["channel"]) == [0, 1, 2]
    for c in range(3):
        one = report(hist_of(x[:, c]), bits=2)
        assert per["mse_b2_dp"].iloc[c] == one["mse_b2_dp"].iloc[0]
        assert per["std"].iloc[c] == pytest.approx(np.std(x[:, c]), rel=1e-12)
    merged = report(h, bits=2).iloc[0]
    assert merged["count"] == x.size and merged["zeros"] == np.sum(x == 0)
    assert merged["mean"] == pytest.approx(np.mean(x), rel=1e-12)
    # pooled over channels from the bins (no pooled bound method): well within 1e-3
    assert merged["kurtosis"] == pytest.approx(stats.kurtosis(x.ravel()), rel=1e-3)
    # the layer row is the per-tensor report of the same values, to the last bit: the
    # channels are pooled onto the joint range's grid (Histogram.pooled)
    flat = hist_of(x.ravel())
    tensor = report(flat, bits=2).iloc[0]
    for key in merged.index:
        if key in ("layer", "channel"):
            continue
        assert merged[key] == tensor[key] or (pd.isna(merged[key]) and pd.isna(tensor[key])), key
    v, w = flat.to_weighted_points()
    power = np.sum(w * v * v) / np.sum(w)
    assert merged["sqnr_b2_dp"] == pytest.approx(10 * np.log10(power / merged["mse_b2_dp"]),
                                                 abs=1e-9)
    assert merged["mse_b2_dp"] == pytest.approx(ck_sse(v, w, 4) / np.sum(w), rel=1e-9)


def test_signed_data_leaves_the_convention_columns_empty():
    x = np.random.default_rng(4).standard_normal(5000)
    row = report(hist_of(x), bits=2).iloc[0]
    for c in CONVENTIONS:
        for m in (f"{c}_unit", f"dp_{c}", f"uniform_{c}"):
            assert math.isnan(row[f"mse_b2_{m}"])
    v, w = hist_of(x).to_weighted_points()
    assert row["mse_b2_dp"] == pytest.approx(ck_sse(v, w, 4) / w.sum(), rel=1e-9)
    rep = np.repeat(v, w.astype(int))
    lo, hi = (np.percentile(rep, q, method="inverted_cdf") for q in (0.01, 99.99))
    step = (hi - lo) / 3
    q = lo + step * np.clip(np.round((v - lo) / step), 0, 3)
    assert row["mse_b2_pclip"] == pytest.approx(np.sum(w * (v - q) ** 2) / w.sum(), rel=1e-9)


def test_an_invalid_uniform_dead_zone_table_is_not_scored():
    # the fitted step (about 0.27) is below the dead zone (0.32 sigma = 0.66): that table's
    # first positive level lies inside the dead zone and its thresholds are not sorted
    x = np.maximum(np.random.default_rng(0).standard_t(12, 3000) + 1.0, 0.0)
    df = report(hist_of(x, n_bins=256), bits=4)
    assert math.isnan(df["mse_b4_uniform_deadzone"].iloc[0])
    assert ("tensor", None, 4, "uniform_deadzone") not in df.attrs["tables"]
    for _key, table in df.attrs["tables"].items():
        lm.table_from_dict(table.to_dict())  # every stored table passes the format check


def test_a_layer_with_too_few_values_gets_nan_not_an_error():
    h = hist_of(np.array([0.0, 0.0, 1.0, 2.0]))
    row = report({"tiny": h}, bits=(1, 3)).iloc[0]
    assert np.isfinite(row["mse_b1_dp"]) and math.isnan(row["mse_b3_dp"])


# --------------------------------------------------------------------------- best tables


def test_best_tables_pick_the_least_mse_and_export(tmp_path):
    hists = {"a": hist_of(relu_data(1)), "b": hist_of(relu_data(2, scale=3.0))}
    df = report(hists, bits=(2,))
    best = best_tables(df, 2, keep_zero=False)  # the free optimum, zero level or not
    assert set(best) == {"a", "b"}
    for name, table in best.items():
        row = df[df["layer"] == name].iloc[0]
        assert table.mse == pytest.approx(row["mse_b2_dp"], rel=1e-12)
        v, w = hists[name].to_weighted_points()
        assert np_mse(table.levels, table.thresholds, v, w) == pytest.approx(row["mse_b2_dp"],
                                                                             rel=1e-12)
    uni = best_tables(hists, 2, methods=["uniform_round", "pclip", "hwgq_unit"])
    for name, table in uni.items():
        row = df[df["layer"] == name].iloc[0]
        best_mse = min(row[f"mse_b2_{m}"] for m in ("uniform_round", "pclip", "hwgq_unit"))
        assert table.kind == "uniform"
        v, w = hists[name].to_weighted_points()
        assert np_mse(table.levels, table.thresholds, v, w) == pytest.approx(best_mse, rel=1e-12)
    path = tmp_path / "best.json"
    lm.save_tables(list(best.values()), path)
    back = lm.load_tables(path)
    assert [list(t.levels) for t in back] == [list(t.levels) for t in best.values()]


def test_best_tables_keep_an_exact_zero_for_non_negative_layers():
    hists = {"a": hist_of(relu_data(1)), "b": hist_of(relu_data(2, scale=3.0))}
    df = report(hists, bits=(2,))
    store = df.attrs["tables"]
    for name, table in best_tables(df, 2).items():
        row = df[df["layer"] == name].iloc[0]
        assert table.levels[0] == 0.0
        with_zero = [row[c] for c in df.columns if c.startswith("mse_b2_")
                     and store.get((name, None, 2, c[len("mse_b2_"):])) is not None
                     and store[(name, None, 2, c[len("mse_b2_"):])].levels[0] == 0.0]
        assert table.mse == pytest.approx(min(with_zero), rel=1e-12)
        assert table.mse >= row["mse_b2_dp"]
    signed = {"s": hist_of(np.random.default_rng(3).standard_normal(4000))}
    df = report(signed, bits=(2,))
    assert best_tables(df, 2)["s"].mse == pytest.approx(df.iloc[0]["mse_b2_dp"], rel=1e-12)


def test_best_tables_per_channel_keys():
    x = np.maximum(np.random.default_rng(6).standard_normal((3000, 2)), 0.0)
    best = best_tables(report({"c": hist_of(x, axis=1)}, bits=1, per_channel=True), 1)
    assert set(best) == {("c", 0), ("c", 1)}


# --------------------------------------------------------------------------- errors


def test_errors():
    h = hist_of(relu_data(0, n=500))
    with pytest.raises(lm.InvalidDataError, match="empty"):
        report({"x": Histogram()})
    with pytest.raises(lm.InvalidDataError, match="empty"):
        report({"x": Histogram(axis=1)}, per_channel=True)
    with pytest.raises(lm.InvalidInputError, match="Histogram"):
        report({"x": np.ones(10)})
    with pytest.raises(lm.InvalidInputError, match="Histogram"):
        report([h, h])
    with pytest.raises(lm.InvalidInputError, match="no histograms"):
        report({})
    with pytest.raises(lm.InvalidBitsError):
        report(h, bits=(2, 17))
    with pytest.raises(lm.InvalidBitsError):
        report(h, bits=())
    with pytest.raises(lm.ConventionError, match="nearest"):
        report(h, conventions=("hwgq", "nearest"))
    with pytest.raises(lm.InvalidInputError, match="percentile"):
        report(h, percentile=0.0)
    with pytest.raises(lm.ConventionError, match="eps"):
        report(h, eps=-1.0)
    df = report(h, bits=2)
    with pytest.raises(lm.InvalidInputError, match="no tables"):
        best_tables(pd.DataFrame(df.to_dict()), 2)
    with pytest.raises(lm.InvalidInputError, match="no 3-bit"):
        best_tables(df, 3)
    with pytest.raises(lm.InvalidInputError, match="nearest"):
        best_tables(df, 2, methods=["nearest"])
