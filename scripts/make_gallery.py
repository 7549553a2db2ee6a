"""Regenerate every image of the documentation gallery, and docs/gallery.md.

    python scripts/make_gallery.py

Each image is drawn by the command line (``python -m lloydmax plot ...``) in a
subprocess, so the gallery also checks that the commands shown in docs/gallery.md work
exactly as printed.  Images go to docs/gallery/*.png (100 dpi); the script warns about
any image over 150 KB.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "docs" / "gallery"
PAGE = ROOT / "docs" / "gallery.md"
MAX_BYTES = 150_000

# (file name, arguments after "lloydmax plot", section title, caption)
FIGURES = [
    ("curves_hwgq_2bit.png", ["curves"],
     "HWGQ forward and backward functions",
     "The 2-bit uniform HWGQ quantizer (step 0.5388, levels 0, 0.539, 1.078, 1.616) as a "
     "staircase against ReLU, with the three backward approximations of the HWGQ paper "
     "(eqs. 11-14). Left: the functions. Right: the derivatives that backpropagation uses "
     "in place of Q'(x), which is 0 almost everywhere. The clipped ReLU passes gradient 1 "
     "on (0, q_m] and nothing above; the log-tailed ReLU decays as 1/(x - tau) with "
     "tau = q_m - 1, so both it and its slope are continuous at q_m."),
    ("curves_sign.png", ["curves", "--sign"],
     "Binary baseline: sign and hard tanh",
     "The left half of HWGQ's Figure 1: the forward sign(x), with sign(0) = +1, and the "
     "hard tanh clip(x, -1, 1) whose derivative (1 on |x| <= 1) stands in for the "
     "derivative of sign, an impulse 2 delta(x)."),
    ("curves_nonuniform_3level.png",
     ["curves", "--levels", "3", "--backward", "clipped", "log-tailed"],
     "Non-uniform 3-level HWGQ",
     "The non-uniform half-wave table with two positive levels, 0.4528 and 1.510: the "
     "positive half of Max's 4-level Gaussian quantizer, the `centers: 0.453 1.51` of the "
     "HWGQ repository's non-uniform example. Only the clipped and log-tailed backward "
     "functions are drawn."),
    ("levels_hwgq_2bit.png", ["levels", "--bits", "2", "--half-wave", "--uniform"],
     "Levels over the half-wave Gaussian",
     "The same 2-bit uniform table over the density of ReLU(N(0, 1)): the half-normal "
     "density above 0 and the point mass of 1/2 at 0 (the arrow; it has no density). "
     "Dashed lines are the thresholds, solid lines the levels, whose values are on the "
     "top axis."),
    ("levels_tsq_deadzone.png",
     ["levels", "--bits", "2", "--half-wave", "--uniform", "--zero-threshold", "0.32"],
     "TSQ dead zone",
     "The dead-zone convention of TSQ: everything at or below eps = 0.32 goes to 0. The "
     "optimal step given that eps is 0.6488, TSQ's published 0.6487."),
    ("levels_gaussian_3bit.png", ["levels", "--bits", "3", "--dist", "gaussian"],
     "Max's 8-level Gaussian quantizer",
     "The 3-bit Lloyd-Max quantizer of the unit Gaussian (Max 1960): levels 0.2451, "
     "0.7560, 1.344, 2.152 and their negatives, MSE 0.03455."),
    ("mse_halfwave.png", ["mse", "--bits", "1-8", "--half-wave"],
     "MSE against bit-width, half-wave Gaussian",
     "MSE of the optimal uniform (dashed) and non-uniform (solid) quantizers of "
     "ReLU(N(0, 1)) for the three conventions, 1 to 8 bits, with the Panter-Dite "
     "high-resolution value (sqrt(3) pi / 2) / (8 m^2) for m = 2^b - 1 positive levels "
     "(dotted). The fixed dead zone of eps = 0.32 cannot beat the error of the values it "
     "zeroes, E[X^2; 0 < X <= eps] = 0.00423, so its curves flatten. Past 3 bits the best "
     "uniform step would be smaller than eps, so no uniform dead-zone table exists and "
     "those points are missing."),
    ("sqnr_halfwave.png", ["mse", "--bits", "1-8", "--half-wave", "--sqnr"],
     "SQNR against bit-width, half-wave Gaussian",
     "The same tables as signal-to-quantization-noise ratio, 10 log10(E[X^2] / MSE) with "
     "E[X^2] = 1/2. Non-uniform tables gain about 6 dB per bit; uniform ones fall "
     "further behind as the bit-width grows."),
    ("mse_gaussian.png", ["mse", "--bits", "1-8", "--dist", "gaussian"],
     "MSE against bit-width, Gaussian",
     "Uniform and Lloyd-Max quantizers of the unit Gaussian (weights scaled by their "
     "standard deviation) with the Panter-Dite value sqrt(3) pi / (2 N^2)."),
]


# figures of measured data: their input files are made by measured_inputs() in a
# scratch directory, and the command runs there so that the names match the page
MEASURED = [
    ("histogram_relu2.png",
     ["levels", "--histogram", "relu2.json", "--table", "relu2_hwgq2.json"],
     "A measured activation histogram",
     "The output of `relu2` of the reference network of the [analysis guide](analysis.md) "
     "(`tests.digits_net`, trained with seed 0), over the 450 held-out digits: an exact "
     "histogram collected with `lloydmax.analysis.torch_collect.collect_torch(..., axis=None)` and "
     "saved with `Histogram.save('relu2.json')`. About 57 % of the values are exact zeros; "
     "they sit in no bin and are drawn as the arrow at 0. Over it, the 2-bit uniform HWGQ "
     "table scaled to the layer (`relu2_hwgq2.json`): the unit table times "
     "sigma = sqrt(2 E[x^2]), the standard deviation of a Gaussian whose ReLU has the "
     "measured second moment."),
    ("layers_report_2bit.png", ["layers", "--report", "report.csv", "--bits", "2"],
     "Every 2-bit method, layer by layer",
     "`lloydmax.analysis.report.report(histograms, bits=(2,))` over the four ReLU layers of the "
     "same "
     "network, saved with `DataFrame.to_csv('report.csv', index=False)`, drawn with one bar "
     "per `sqnr_b2_*` column. `dp` is the exact optimum on the histogram, the ceiling for "
     "every other bar. The published recipe in the hwgq convention (`hwgq_unit`) sits 3.0 to "
     "3.6 dB below it on every layer; the same unit table in the round or dead-zone "
     "convention is within 1 dB of it; clipping at a percentile (`pclip`) or at the "
     "maximum (`maxrange`) loses 5 to 7.5 dB on the first three layers."),
    ("layers_report_selected.png",
     ["layers", "--report", "report.csv", "--bits", "2", "--columns", "dp", "dp_hwgq",
      "hwgq_unit", "round_unit", "deadzone_unit", "pclip"],
     "A few methods, with their values",
     "The same report restricted with `--columns` to six methods (method names stand for "
     "`sqnr_b2_<name>`); with few bars each is labelled with its SQNR in dB."),
]


def measured_inputs(workdir: Path) -> None:
    """From the reference digits network: the histogram of relu2, the 2-bit HWGQ table
    scaled to it, and the 2-bit report over every ReLU layer."""
    import math

    from lloydmax.analysis.report import report
    from lloydmax.analysis.torch_collect import collect_torch

    import lloydmax as lm
    from tests.digits_net import load_digits_split, train_digits_net

    data = load_digits_split(0)
    net = train_digits_net(seed=0, data=data)
    hists = collect_torch(net.model, data.x_test, axis=None)
    hist = hists["relu2"]
    hist.save(workdir / "relu2.json")
    sigma = math.sqrt(2.0 * (hist.var + hist.mean ** 2))
    table = lm.solve(bits=2, dist="halfwave-gaussian", uniform=True).scaled(sigma)
    table.save(workdir / "relu2_hwgq2.json")
    report(hists, bits=(2,)).to_csv(workdir / "report.csv", index=False)


def run(args, out: Path, cwd: Path = ROOT) -> float:
    cmd = [sys.executable, "-m", "lloydmax", "plot", *args, "-o", str(out)]
    # this checkout's lloydmax, whatever the working directory
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): lloydmax plot {' '.join(args)}\n{done.stderr}")
    return time.perf_counter() - start


def page(entries) -> str:
    lines = [
        "# Gallery",
        "",
        "Every image on this page is drawn by the `lloydmax plot` command shown under it "
        "(matplotlib needed: `pip install 'lloydmax[plot]'`). "
        "`python scripts/make_gallery.py` redraws them all and rewrites this page. "
        "The same figures come from Python through `lloydmax.plot` "
        "(`plot_curves`, `plot_levels`, `plot_mse`, `save_figure`) and, for measured "
        "data, `lloydmax.analysis.plot` (`plot_histogram`, `plot_layers`).",
        "",
    ]
    for name, args, title, caption in entries:
        lines += [
            f"## {title}",
            "",
            f"![{title}](gallery/{name})",
            "",
            caption,
            "",
            "```sh",
            f"lloydmax plot {' '.join(args)} -o {name}",
            "```",
            "",
        ]
    return "\n".join(lines)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    GALLERY.mkdir(parents=True, exist_ok=True)
    jobs = [(entry, ROOT) for entry in FIGURES]
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        measured_inputs(workdir)
        jobs += [(entry, workdir) for entry in MEASURED]
        for (name, args, _, _), cwd in jobs:
            seconds = run(args, GALLERY / name, cwd)
            size = (GALLERY / name).stat().st_size
            flag = "  (over 150 KB!)" if size > MAX_BYTES else ""
            print(f"{name:32s} {size / 1000:6.1f} KB  {seconds:5.1f} s{flag}")
    entries = FIGURES + MEASURED
    PAGE.write_text(page(entries), encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
