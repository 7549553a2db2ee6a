"""Analysis benchmark: streaming histogram, activation collection and the exact DP, in one run.

Run ``python benchmarks/analysis.py`` (``--help`` for options).  Everything runs on ONE
core: ``NUMBA_NUM_THREADS=1`` is set before numba is imported and
``torch.set_num_threads(1)`` before torch runs anything.  One run measures:

1. **Histogram throughput** on ``--n`` float32 values (default 10M), N(0,1) and
   ReLU(N(0,1)) (half exact zeros): ``lloydmax.analysis.histogram.Histogram().update(x)`` (exact,
   split-independent bins on a power-of-two grid, zeros counted apart, and exact power
   sums S1..S4) against ``np.histogram(x, bins=2048, range=(x.min(), x.max()))`` and
   ``torch.histc(t, bins=2048, min=..., max=...)`` (uniform bins, counts only).  The
   baselines' min/max pass is included in their time, as the histogram must find its own
   range.  Best of ``--repeat`` calls after one warm-up; ratio = baseline time / our time
   (> 1: ``Histogram`` is faster).
2. **Activation collection**: ``--batches`` batches of ``64x32x16x16`` float32 ReLU
   activations fed to ``torch.ao.quantization.HistogramObserver`` (per tensor, uniform
   2048-bin histogram that is re-binned with interpolation when the range grows; no
   moments), to ``MinMaxObserver`` (running min/max only: the floor of any observer) and
   to ``Histogram.update``.  Total time over all batches, best of ``--collect-repeat``.
3. **Exact DP** (``benchmarks/analysis_dp.py``'s functions): DP vs ckwrap on a 2048-bin
   histogram for 16 levels, and DP vs scikit-learn KMeans on raw samples.
4. The goals of the performance issue and whether this run met them.

Nothing asserts on time; the script only reports.
"""
from __future__ import annotations

import os

os.environ["NUMBA_NUM_THREADS"] = "1"  # before numba is imported (by lloydmax or analysis)

import argparse
import importlib.metadata
import sys

import numpy as np

# this script is named like the `analysis` package: import the package with the script's
# own directory off sys.path, then the sibling scripts (not a package) from that directory
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.modules.pop("analysis", None)
from lloydmax.analysis.histogram import Histogram  # noqa: E402

sys.path.insert(0, _HERE)
import analysis_dp  # noqa: E402
from solver import best_of, machine_info  # noqa: E402

BINS = 2048


def _torch():
    import torch

    torch.set_num_threads(1)
    return torch


def bench_histogram(x: np.ndarray, repeat: int) -> dict:
    """Times (s) of Histogram.update, np.histogram and torch.histc on ``x`` (float32)."""
    torch = _torch()
    t = torch.from_numpy(x)

    def ours():
        return Histogram().update(x)

    def numpy_hist():
        return np.histogram(x, bins=BINS, range=(float(x.min()), float(x.max())))

    def torch_hist():
        return torch.histc(t, bins=BINS, min=float(t.min()), max=float(t.max()))

    out = {}
    for name, fn in (("Histogram.update", ours), ("np.histogram", numpy_hist),
                     ("torch.histc", torch_hist)):
        fn()  # warm-up: JIT cache load, allocator
        out[name], res = best_of(fn, repeat)
        if name == "Histogram.update":
            assert res.count == x.size  # the timed call did the work
    return out


def print_histogram(label: str, n: int, times: dict) -> dict:
    ours = times["Histogram.update"]
    print(f"\n## Histogram throughput: {n:,} float32 values, {label}, one core\n")
    print("| method | time | values/s | ratio (baseline / Histogram) |")
    print("|---|---:|---:|---:|")
    ratios = {}
    for name, t in times.items():
        ratios[name] = t / ours
        print(f"| {name} | {t * 1e3:.1f} ms | {n / t / 1e6:.0f} M | {t / ours:.2f} |")
    return ratios


def bench_collect(batches: int, shape, repeat: int, seed: int) -> dict:
    torch = _torch()
    from torch.ao.quantization import HistogramObserver, MinMaxObserver

    gen = torch.Generator().manual_seed(seed)
    data = [torch.relu(torch.randn(*shape, generator=gen)) for _ in range(batches)]
    arrays = [d.numpy() for d in data]

    def observer(cls):
        def run():
            obs = cls()
            for d in data:
                obs(d)
            return obs
        return run

    def ours():
        h = Histogram()
        for a in arrays:
            h.update(a)
        return h

    out = {}
    for name, fn in (("Histogram.update", ours), ("HistogramObserver", observer(HistogramObserver)),
                     ("MinMaxObserver", observer(MinMaxObserver))):
        fn()  # warm-up
        out[name], _ = best_of(fn, repeat)
    return out


def print_collect(times: dict, batches: int, shape) -> dict:
    ours = times["Histogram.update"]
    n = batches * int(np.prod(shape))
    print(f"\n## Collection: {batches} batches of {'x'.join(map(str, shape))} float32 ReLU "
          f"activations ({n:,} values), one core\n")
    print("| collector | what it computes | total | per batch | ratio (other / Histogram) |")
    print("|---|---|---:|---:|---:|")
    what = {"Histogram.update": "exact 2048-bin pow2 grid, zeros apart, exact S1..S4",
            "HistogramObserver": "uniform 2048-bin histogram, per tensor, interpolated regrid",
            "MinMaxObserver": "running min / max only"}
    ratios = {}
    for name, t in times.items():
        ratios[name] = t / ours
        print(f"| {name} | {what[name]} | {t * 1e3:.0f} ms | {t / batches * 1e3:.2f} ms "
              f"| {t / ours:.2f} |")
    return ratios


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10_000_000, help="values for the throughput test")
    p.add_argument("--repeat", type=int, default=7, help="timed calls; best is reported")
    p.add_argument("--batches", type=int, default=100, help="batches for the collection test")
    p.add_argument("--collect-repeat", type=int, default=3)
    p.add_argument("--dp-repeat", type=int, default=7)
    p.add_argument("--kmeans-samples", type=int, default=10**6)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    torch = _torch()
    import sklearn

    print("# lloydmax analysis benchmark\n")
    info = machine_info() + [("torch", f"{torch.__version__} (threads: {torch.get_num_threads()})"),
                             ("NUMBA_NUM_THREADS", os.environ["NUMBA_NUM_THREADS"]),
                             ("ckwrap", importlib.metadata.version("ckwrap")),
                             ("scikit-learn", sklearn.__version__)]
    for key, value in info:
        print(f"- {key}: {value}")

    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal(args.n, dtype=np.float32)
    r_gauss = print_histogram("N(0,1)", args.n, bench_histogram(x, args.repeat))
    x = np.maximum(x, np.float32(0.0))
    r_relu = print_histogram("ReLU(N(0,1)) (half zeros)", args.n, bench_histogram(x, args.repeat))
    del x

    shape = (64, 32, 16, 16)
    r_coll = print_collect(bench_collect(args.batches, shape, args.collect_repeat, args.seed),
                           args.batches, shape)

    samples = analysis_dp.relu_samples(10**6, args.seed)
    dp_rows = [analysis_dp.bench_ckwrap(*analysis_dp.histogram_points(samples, BINS), 16,
                                        args.dp_repeat)]
    analysis_dp.print_ckwrap(dp_rows)
    raw = analysis_dp.relu_samples(args.kmeans_samples, args.seed + 1)
    analysis_dp.print_kmeans(analysis_dp.bench_kmeans(raw, 16, max(1, args.dp_repeat // 3),
                                                      args.seed), args.kmeans_samples, 16)
    dp_ratio = dp_rows[0]["ck_linear_s"] / dp_rows[0]["dp_s"]
    dp_ratio_log = dp_rows[0]["ck_loglinear_s"] / dp_rows[0]["dp_s"]

    print("\n## Goals\n")
    for label, r in (("N(0,1)", r_gauss), ("ReLU", r_relu)):
        q = r["np.histogram"]
        print(f"- Histogram.update >= 4x np.histogram on one core ({label}): "
              f"{'met' if q >= 4 else 'NOT met'} ({q:.2f}x; torch.histc {r['torch.histc']:.2f}x)")
    print(f"- Collection vs HistogramObserver: {r_coll['HistogramObserver']:.2f}x "
          f"(MinMaxObserver floor: {r_coll['MinMaxObserver']:.2f}x)")
    print(f"- DP no slower than ckwrap (2048 bins, 16 levels): "
          f"{'met' if min(dp_ratio, dp_ratio_log) >= 1 else 'NOT met'} "
          f"(ckwrap linear {dp_ratio:.2f}x, loglinear {dp_ratio_log:.2f}x of DP time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
