"""Figures: lloydmax.plot, lloydmax.analysis.plot and the ``lloydmax plot`` command.

Oracles: the HWGQ equations 11-14 written out point by point, scipy's normal density,
numpy histograms, closed-form Panter-Dite constants and published MSE values
(REFERENCES.md, Max 1960)."""
from __future__ import annotations

import math
import sys

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lloydmax.analysis import plot as aplot
from scipy import integrate, stats

import lloydmax as lm
from lloydmax import plot as lplot
from lloydmax.cli import build_parser, main
from lloydmax.cli._common import UsageError
from lloydmax.errors import InvalidInputError, InvalidTableError, MissingDependencyError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SQRT3PI_2 = math.sqrt(3.0) * math.pi / 2.0


# ------------------------------------------------------------------ helpers


def check_png(path, width=None, height=None):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 10_000
    img = mpimg.imread(str(path))
    if width is not None:
        assert img.shape[:2] == (height, width)
    # not a blank canvas: many distinct colours
    assert len(np.unique(img.reshape(-1, img.shape[-1]), axis=0)) > 20
    return img


def check_readable(fig):
    """Every axis that holds data has both axis labels and a legend."""
    data_axes = [a for a in fig.axes if a.lines or a.patches or a.collections]
    assert data_axes
    for axis in data_axes:
        assert axis.get_xlabel().strip() and axis.get_ylabel().strip()
        legend = axis.get_legend()
        assert legend is not None and len(legend.get_texts()) >= 1


def line_by_label(axis, fragment):
    hits = [ln for ln in axis.lines if fragment in ln.get_label()]
    assert hits, [ln.get_label() for ln in axis.lines]
    return hits[0]


def naive_quantize(x, levels, thresholds):
    """Rule of REFERENCES.md: level i for thresholds[i-1] < x <= thresholds[i]."""
    return np.asarray(levels)[np.searchsorted(thresholds, x, side="left")]


def hwgq_backward(x, q_m):
    """Eqs. 11-14 of Cai et al. (2017), one scalar at a time."""
    tau = q_m - 1.0
    if x <= 0:
        return {"vanilla": (0.0, 0.0), "clipped": (0.0, 0.0), "log-tailed": (0.0, 0.0)}
    if x <= q_m:
        return {"vanilla": (x, 1.0), "clipped": (x, 1.0), "log-tailed": (x, 1.0)}
    return {"vanilla": (x, 1.0), "clipped": (q_m, 0.0),
            "log-tailed": (q_m + math.log(x - tau), 1.0 / (x - tau))}


def cli_args(*argv):
    """``lloydmax plot KIND ...`` parsed by the real parser (``plot KIND`` subcommands)."""
    return build_parser().parse_args(["plot", *argv])


def run_plot(args):
    """Run a parsed plot command as ``main`` does, but let its exceptions through."""
    return args.handler(args)


# ------------------------------------------------------------------ maths drawn


def test_backward_functions_match_hwgq_equations():
    q_m = 1.614
    x = np.array([-2.0, -1e-9, 0.0, 1e-9, 0.5, 1.0, q_m, q_m + 1e-9, 2.0, 3.7, 10.0])
    got = lplot.backward_functions(x, q_m)
    for j, xv in enumerate(x):
        want = hwgq_backward(float(xv), q_m)
        for name in lplot.BACKWARDS:
            assert got[name][0][j] == pytest.approx(want[name][0], abs=1e-12)
            assert got[name][1][j] == pytest.approx(want[name][1], abs=1e-12)


@settings(deadline=None, max_examples=40)
@given(q_m=st.floats(0.05, 8.0), x=st.floats(-5.0, 20.0))
def test_backward_derivatives_are_derivatives(q_m, x):
    """Central differences of each function match the drawn derivative away from kinks."""
    h = 1e-6
    if min(abs(x), abs(x - q_m)) < 10 * h:
        return
    f = lambda v: lplot.backward_functions(np.array([v]), q_m)  # noqa: E731
    up, down, mid = f(x + h), f(x - h), f(x)
    for name in lplot.BACKWARDS:
        numeric = (up[name][0][0] - down[name][0][0]) / (2 * h)
        assert numeric == pytest.approx(mid[name][1][0], abs=1e-5)
    # tau = q_m - 1 makes the log tail continuous with slope 1 at q_m
    at = f(q_m + 1e-12)["log-tailed"]
    assert at[0][0] == pytest.approx(q_m, abs=1e-9)
    assert at[1][0] == pytest.approx(1.0, abs=1e-9)


def test_panter_dite_closed_forms():
    n = np.array([2.0, 16.0, 256.0])
    assert np.allclose(lplot.panter_dite(n, "gaussian") * n ** 2, SQRT3PI_2, rtol=1e-9)
    # half-wave: m = N - 1 positive levels share the density phi on (0, inf)
    m = n - 1
    assert np.allclose(lplot.panter_dite(n, "halfwave-gaussian"), SQRT3PI_2 / (8 * m ** 2),
                       rtol=1e-9)
    # Laplace(scale 1), variance 2: (1/12) (int (e^-|x|/2)^(1/3))^3 = (1/12) (6 / 2^(1/3))^3 = 9
    assert np.allclose(lplot.panter_dite(n, "laplace") * n ** 2, 9.0, rtol=1e-7)
    # scale: std 3 multiplies the MSE by 9
    assert lplot.panter_dite(16, "gaussian", {"std": 3.0}) == pytest.approx(
        9 * SQRT3PI_2 / 256, rel=1e-9)


def test_panter_dite_is_the_limit_of_max_tables():
    # Max (1960) 16 levels: MSE 0.009501; 16^2 * 0.009501 = 2.432, below 2.7207 and rising
    assert lplot.panter_dite(16) * 256 > 256 * 0.009501
    # at 256 levels the exact optimum is within 1 % of the high-resolution value
    mse8 = lm.solve(8, dist="gaussian").mse
    assert mse8 == pytest.approx(float(lplot.panter_dite(256)), rel=0.01)


def test_deadzone_floor_is_the_integral_below_eps():
    want = integrate.quad(lambda v: v * v * stats.norm.pdf(v), 0.0, 0.32)[0]
    d = lm.get_distribution("halfwave-gaussian")
    from lloydmax import _plot_mse
    assert _plot_mse._deadzone_floor(d, 0.32) == pytest.approx(want, rel=1e-10)


# ------------------------------------------------------------------ API figures


def test_curves_halfwave(tmp_path):
    table = lm.solve(bits=2, dist="halfwave-gaussian", uniform=True)
    fig = lplot.plot_curves()
    check_readable(fig)
    ax_f, ax_d = fig.axes[:2]
    stair = line_by_label(ax_f, "forward Q(x)")
    x, y = stair.get_data()
    assert np.array_equal(y, naive_quantize(x, table.levels, table.thresholds))
    assert float(np.max(y)) == pytest.approx(3 * 0.538, rel=2e-3)  # HWGQ centers 0.538 ...
    logt = line_by_label(ax_d, "log-tailed")
    xd, yd = logt.get_data()
    q_m = table.levels[-1]
    far = xd > q_m + 0.5
    assert np.allclose(yd[far], 1.0 / (xd[far] - (q_m - 1.0)))
    path = tmp_path / "curves.png"
    lplot.save_figure(fig, path)
    check_png(path, 1000, 450)


def test_curves_sign_and_subset(tmp_path):
    fig = lplot.plot_curves(kind="sign")
    check_readable(fig)
    x, y = line_by_label(fig.axes[0], "sign").get_data()
    assert np.array_equal(y, np.where(x >= 0, 1.0, -1.0))  # sign(0) = +1, eq. 3
    assert y[np.searchsorted(x, 0.0)] == 1.0
    x, y = line_by_label(fig.axes[0], "hard tanh").get_data()
    assert np.array_equal(y, np.clip(x, -1, 1))
    lplot.save_figure(fig, tmp_path / "sign.png")
    check_png(tmp_path / "sign.png", 1000, 450)
    fig = lplot.plot_curves(lm.solve(n_levels=3, dist="halfwave-gaussian"),
                            backward=["clipped"], x_range=(-0.5, 4.0))
    labels = [ln.get_label() for ln in fig.axes[1].lines]
    assert any("clipped" in s for s in labels) and not any("log-tailed" in s for s in labels)
    with pytest.raises(InvalidInputError, match="backward"):
        lplot.plot_curves(backward=["smooth"])
    with pytest.raises(InvalidInputError, match="kind"):
        lplot.plot_curves(kind="ternary")
    with pytest.raises(InvalidInputError):
        lplot.plot_curves(x_range=(2.0, 1.0))


def test_levels_density_in_user_units(tmp_path):
    table = lm.solve(bits=3, dist="gaussian", params={"mean": 1.0, "std": 2.0})
    fig = lplot.plot_levels(table)
    check_readable(fig)
    x, p = line_by_label(fig.axes[0], "density").get_data()
    assert np.allclose(p, stats.norm.pdf(x, loc=1.0, scale=2.0), rtol=1e-12, atol=1e-15)
    lplot.save_figure(fig, tmp_path / "levels.png")
    check_png(tmp_path / "levels.png", 800, 450)


def test_levels_halfwave_point_mass():
    table = lm.solve(bits=2, dist="halfwave-gaussian", uniform=True)
    fig = lplot.plot_levels(table)
    axis = fig.axes[0]
    x, p = line_by_label(axis, "density").get_data()
    assert np.allclose(p, np.where(x > 0, stats.norm.pdf(x), 0.0), atol=1e-15)
    assert any("point mass" in ln.get_label() and "0.5" in ln.get_label() for ln in axis.lines)
    assert any(t.get_text() == "mass 0.5" for t in axis.texts)
    # thresholds drawn where the table has them
    def xs(label):
        (coll,) = [c for c in axis.collections if c.get_label() == label]
        return sorted(seg[0][0] for seg in coll.get_segments())

    assert np.allclose(xs("thresholds $t_i$"), table.thresholds)
    assert np.allclose(xs("levels $q_i$"), table.levels)


def test_levels_of_an_empirical_table_and_a_file(tmp_path):
    rng = np.random.default_rng(0)
    table = lm.solve_data(rng.standard_normal(2000), bits=2)
    fig = lplot.plot_levels(table)
    assert fig.axes[0].get_xlabel()
    path = tmp_path / "t.json"
    lm.solve(bits=2).save(path)
    fig = lplot.plot_levels(str(path))
    assert "gaussian" in fig.axes[0].get_title()


def test_mse_against_published_values(tmp_path):
    fig = lplot.plot_mse(bits=range(1, 5))
    check_readable(fig)
    axis = fig.axes[0]
    assert axis.get_yscale() == "log"
    b, mse = line_by_label(axis, "hwgq: uniform").get_data()
    assert mse[list(b).index(2)] == pytest.approx(0.0432, rel=0.01)  # HWGQ 2-bit
    b, mse = line_by_label(axis, "round: uniform").get_data()
    assert mse[list(b).index(2)] == pytest.approx(0.0234, rel=0.01)  # EdMIPS rounding
    # hwgq non-uniform, 1 positive level = half the 2-level Gaussian MSE (Max: 0.3634)
    b, mse = line_by_label(axis, "hwgq: Lloyd-Max").get_data()
    assert mse[0] == pytest.approx(0.3634 / 2, rel=1e-3)
    x, pd_line = line_by_label(axis, "Panter").get_data()
    m = 2.0 ** x - 1
    assert np.allclose(pd_line, SQRT3PI_2 / (8 * m ** 2), rtol=1e-9)
    lplot.save_figure(fig, tmp_path / "mse.png")
    check_png(tmp_path / "mse.png", 800, 450)


def test_sqnr_gaussian():
    fig = lplot.plot_mse(bits=[1, 2, 3, 4], dist="gaussian", quantity="sqnr")
    check_readable(fig)
    _b, sqnr = line_by_label(fig.axes[0], "Lloyd-Max").get_data()
    max_mse = np.array([0.3634, 0.1175, 0.03455, 0.009501])  # Max (1960)
    assert np.allclose(sqnr, 10 * np.log10(1.0 / max_mse), atol=0.01)
    with pytest.raises(InvalidInputError, match="quantity"):
        lplot.plot_mse(quantity="snr")


def test_save_figure_formats(tmp_path):
    fig = lplot.plot_curves(kind="sign")
    lplot.save_figure(fig, tmp_path / "a.svg")
    lplot.save_figure(fig, tmp_path / "a.pdf")
    assert b"<svg" in (tmp_path / "a.svg").read_bytes()[:500]
    assert (tmp_path / "a.pdf").read_bytes()[:5] == b"%PDF-"
    assert b"CreationDate" not in (tmp_path / "a.pdf").read_bytes()
    for bad in ("a.bmp", "a.txt", "noext"):
        with pytest.raises(InvalidInputError, match="unsupported output extension"):
            lplot.save_figure(fig, tmp_path / bad)
        assert not (tmp_path / bad).exists()
    with pytest.raises(InvalidInputError, match="does not exist"):
        lplot.save_figure(fig, tmp_path / "missing" / "a.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pdf", "a.svg"]


def test_draws_into_given_axes():
    from matplotlib.figure import Figure

    fig = Figure()
    ax1, ax2, ax3 = fig.subplots(1, 3)
    assert lplot.plot_curves(ax=(ax1, ax2)) is fig
    assert lplot.plot_mse(bits=[1, 2], dist="gaussian", ax=ax3) is fig
    with pytest.raises(InvalidInputError, match="panel"):
        lplot.plot_curves(ax=ax1)


def test_import_does_not_load_matplotlib():
    import subprocess

    code = ("import sys, lloydmax.plot, lloydmax.cli.plot, lloydmax.analysis.plot; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(MissingDependencyError, match=r"lloydmax\[plot\]"):
        lplot.plot_curves(kind="sign")


# ------------------------------------------------------------------ analysis figures


class StandInHistogram:
    """The interface of lloydmax.analysis.histogram.Histogram that the plots read."""

    def __init__(self, data, bins=40):
        data = np.asarray(data, dtype=np.float64)
        self.zeros = int(np.count_nonzero(data == 0))
        self._counts, self._edges = np.histogram(data[data != 0], bins=bins)
        self.count = data.size

    def edges(self):
        return self._edges

    def counts(self):
        return self._counts


def test_histogram_bars_are_densities(tmp_path):
    rng = np.random.default_rng(1)
    data = np.maximum(rng.standard_normal(20_000), 0.0)
    hist = StandInHistogram(data)
    table = lm.solve(bits=2, dist="halfwave-gaussian", uniform=True)
    fig = aplot.plot_histogram(hist, table)
    check_readable(fig)
    axis = fig.axes[0]
    heights = np.array([p.get_height() for p in axis.patches])
    counts, edges = np.histogram(data[data > 0], bins=40)
    assert np.allclose(heights, counts / (data.size * np.diff(edges)))
    zeros = int(np.count_nonzero(data == 0))
    assert any(f"{zeros:,}" in t.get_text() and f"{zeros / data.size:.1%}" in t.get_text()
               for t in axis.texts)
    lplot.save_figure(fig, tmp_path / "hist.png")
    check_png(tmp_path / "hist.png", 800, 450)


def test_histogram_per_channel():
    class PerChannel:
        zeros = np.array([5, 0])
        count = np.array([15, 10])

        def edges(self):
            return np.linspace(0.0, 1.0, 6)

        def counts(self):
            return np.array([[2, 2, 2, 2, 2], [1, 2, 3, 2, 2]])

    fig = aplot.plot_histogram(PerChannel(), channel=1)
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert np.allclose(heights, np.array([1, 2, 3, 2, 2]) / (10 * 0.2))
    with pytest.raises(InvalidInputError, match="out of range"):
        aplot.plot_histogram(PerChannel(), channel=5)


def test_histogram_of_a_real_histogram(tmp_path):
    from lloydmax.analysis.histogram import Histogram

    rng = np.random.default_rng(2)
    spread = np.array([0.5, 1.0, 2.0, 4.0])[None, :, None]
    data = np.maximum(rng.standard_normal((200, 4, 25)) * spread, 0.0)
    hist = Histogram(n_bins=1024, axis=1).update(data)
    fig = aplot.plot_histogram(hist, channel=3, max_bars=64)
    check_readable(fig)
    bars = fig.axes[0].patches
    assert len(bars) <= 64
    edges = np.array([p.get_x() for p in bars] + [bars[-1].get_x() + bars[-1].get_width()])
    values = data[:, 3, :].ravel()
    counts, _ = np.histogram(values[values != 0], bins=edges)
    assert counts.sum() == np.count_nonzero(values)  # every non-zero value is in a bar
    heights = np.array([p.get_height() for p in bars])
    assert np.allclose(heights, counts / (values.size * np.diff(edges)))
    with pytest.raises(InvalidInputError, match="channel"):
        aplot.plot_histogram(hist)  # four channels: which one?
    # the command line reads the saved histogram
    hist.save(tmp_path / "h.json")
    lm.solve(bits=2, dist="halfwave-gaussian", uniform=True).scaled(4.0).save(tmp_path / "t.json")
    out = tmp_path / "h.png"
    assert run_plot(cli_args("levels", "--histogram", str(tmp_path / "h.json"), "--channel", "3",
                             "--table", str(tmp_path / "t.json"), "-o", str(out))) == 0
    check_png(out, 800, 450)
    with pytest.raises(InvalidInputError, match="not found"):
        run_plot(cli_args("levels", "--histogram", str(tmp_path / "no.json"), "-o", str(out)))


def report_frame():
    return pd.DataFrame({"layer": ["conv1", "conv2", "fc"],
                         "sqnr_b2_dp": [10.5, 11.0, 9.0],
                         "sqnr_b2_hwgq_unit": [9.5, 10.1, 7.5],
                         "sqnr_b4_dp": [20.0, 21.0, 19.0]})


def test_layers_bars(tmp_path):
    df = report_frame()
    assert aplot.sqnr_columns(df, 2) == ["sqnr_b2_dp", "sqnr_b2_hwgq_unit"]
    fig = aplot.plot_layers(df, bits=2)
    check_readable(fig)
    axis = fig.axes[0]
    assert [t.get_text() for t in axis.get_legend().get_texts()] == ["dp", "hwgq_unit"]
    heights = np.array([p.get_height() for p in axis.patches])
    assert np.allclose(heights, np.concatenate([df.sqnr_b2_dp, df.sqnr_b2_hwgq_unit]))
    assert [t.get_text() for t in axis.get_xticklabels()] == ["conv1", "conv2", "fc"]
    lplot.save_figure(fig, tmp_path / "layers.png")
    check_png(tmp_path / "layers.png")
    # method names stand for sqnr_b{bits}_<name>
    fig = aplot.plot_layers(df, bits=4, columns=["dp"])
    assert np.allclose([p.get_height() for p in fig.axes[0].patches], df.sqnr_b4_dp)
    with pytest.raises(InvalidInputError, match="sqnr_b3"):
        aplot.plot_layers(df, bits=3)
    with pytest.raises(InvalidInputError, match="nope"):
        aplot.plot_layers(df, columns=["nope"])


def test_layers_nan_inf_and_channels():
    df = pd.DataFrame({"layer": ["a", "a"], "channel": pd.array([0, 1], dtype="Int64"),
                       "sqnr_b2_x": [np.inf, 5.0], "sqnr_b2_y": [np.nan, 4.0]})
    fig = aplot.plot_layers(df)
    axis = fig.axes[0]
    assert [t.get_text() for t in axis.get_xticklabels()] == ["a[0]", "a[1]"]
    heights = [p.get_height() for p in axis.patches]
    assert heights[1] == 5.0 and heights[3] == 4.0
    assert np.isnan(heights[0]) and np.isnan(heights[2])  # no bar for inf or NaN
    assert any(t.get_text() == "inf" for t in axis.texts)


def test_layers_of_a_real_report():
    from lloydmax.analysis.histogram import Histogram
    from lloydmax.analysis.report import report

    rng = np.random.default_rng(3)
    hists = {name: Histogram(n_bins=256).update(np.maximum(rng.standard_normal(4000) * s, 0))
             for name, s in (("relu1", 1.0), ("relu2", 2.5))}
    df = report(hists, bits=(2,))
    fig = aplot.plot_layers(df, bits=2)
    axis = fig.axes[0]
    names = [t.get_text() for t in axis.get_legend().get_texts()]
    assert "dp" in names and "hwgq_unit" in names
    bars = axis.patches
    per_method = len(bars) // len(names)
    dp = [b.get_height() for b in bars[names.index("dp") * per_method:][:per_method]]
    assert np.allclose(dp, df["sqnr_b2_dp"])


# ------------------------------------------------------------------ command line


@pytest.mark.parametrize("argv, size", [
    (["curves"], (1000, 450)),
    (["curves", "--sign"], (1000, 450)),
    (["curves", "--bits", "3", "--uniform", "--backward", "clipped", "log-tailed"], (1000, 450)),
    (["levels", "--bits", "2", "--half-wave", "--zero-threshold", "0.32"], (800, 450)),
    (["levels", "--levels", "3", "--dist", "laplace"], (800, 450)),
    (["mse", "--bits", "1-4", "--dist", "gaussian", "--sqnr"], (800, 450)),
])
def test_cli_kinds(tmp_path, argv, size):
    out = tmp_path / "fig.png"
    assert run_plot(cli_args(*argv, "-o", str(out))) == 0
    check_png(out, *size)


def test_cli_table_and_report_files(tmp_path):
    table = tmp_path / "act2.json"
    lm.solve(bits=2, dist="halfwave-gaussian", uniform=True).save(table)
    assert run_plot(cli_args("levels", "--table", str(table), "-o", str(tmp_path / "l.png"))) == 0
    check_png(tmp_path / "l.png", 800, 450)
    assert run_plot(cli_args("curves", "--table", str(table), "-o", str(tmp_path / "c.svg"))) == 0
    assert b"<svg" in (tmp_path / "c.svg").read_bytes()[:500]
    report = tmp_path / "report.csv"
    report_frame().to_csv(report, index=False)
    assert run_plot(cli_args("layers", "--report", str(report), "-o", str(tmp_path / "r.png"))) == 0
    check_png(tmp_path / "r.png")
    assert run_plot(cli_args("layers", "--report", str(report), "--bits", "4",
                             "-o", str(tmp_path / "r4.pdf"))) == 0


@pytest.mark.parametrize("argv, message", [
    (["histogramme"], "invalid choice: 'histogramme'"),
    (["mse", "--report", "r.csv"], "unrecognized arguments: --report r.csv "
                                   "(see 'lloydmax plot mse --help')"),
    (["curves", "--dist", "laplace"], "unrecognized arguments: --dist laplace"),
    (["layers", "--uniform"], "unrecognized arguments: --uniform"),
    (["levels", "--sqnr"], "unrecognized arguments: --sqnr"),
])
def test_cli_kinds_take_only_their_own_options(tmp_path, capsys, argv, message):
    """Each kind is an argparse subcommand with only its own options: anything else is a
    usage error, one line and exit status 2, and nothing is written."""
    import re

    out = tmp_path / "x.png"
    with pytest.raises(UsageError, match=re.escape(message)):
        cli_args(*argv, "-o", str(out))
    assert main(["plot", *argv, "-o", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("lloydmax: error: ") and message in captured.err
    assert not out.exists()


@pytest.mark.parametrize("kind", ["curves", "levels", "mse", "layers"])
def test_cli_each_kind_has_its_own_help_with_examples(capsys, kind):
    with pytest.raises(SystemExit) as info:
        main(["plot", kind, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: lloydmax plot {kind} ")
    assert f"\nexamples:\n  lloydmax plot {kind} " in text
    others = {"curves": "--sign", "levels": "--histogram", "mse": "--sqnr", "layers": "--report"}
    for other, flag in others.items():
        assert (flag in text) == (other == kind)


@pytest.mark.parametrize("argv, error, message", [
    (["levels", "--table", "/no/such/table.json"], InvalidTableError, "not found"),
    (["levels"], InvalidInputError, "--table FILE or --bits"),
    (["curves", "--sign", "--bits", "2"], InvalidInputError, "--sign"),
    (["layers", "--report", "/no/such/report.csv"], InvalidInputError, "not found"),
    (["layers"], InvalidInputError, "--report"),
    (["mse", "--bits", "0-3"], InvalidInputError, "bits"),
])
def test_cli_errors(tmp_path, argv, error, message):
    out = tmp_path / "x.png"
    with pytest.raises(error, match=message) as info:
        run_plot(cli_args(*argv, "-o", str(out)))
    assert "\n" not in str(info.value)
    assert not out.exists()


@pytest.mark.parametrize("name", ["x.bmp", "x.txt", "x"])
def test_cli_rejects_output_extension(tmp_path, name):
    with pytest.raises(InvalidInputError, match="unsupported output extension"):
        run_plot(cli_args("mse", "-o", str(tmp_path / name)))
