"""Analysis benchmark: streaming histogram, activation collection and the exact DP, in one run.

Run ``python benchmarks/analysis.py`` (``--help`` for options).  The main process runs on
ONE core: ``NUMBA_NUM_THREADS=1`` is set before numba is imported (so ``Histogram.update``
uses one thread) and ``torch.set_num_threads(1)`` before torch runs anything.  One run
measures:

1. **Histogram throughput** on ``--n`` float32 values (default 10M), N(0,1) and
   ReLU(N(0,1)) (half exact zeros): ``lloydmax.analysis.histogram.Histogram().update(x)`` (exact,
   split-independent bins on a power-of-two grid, zeros counted apart, exact S1, S2;
   skewness and kurtosis come from the bins) against
   ``np.histogram(x, bins=2048, range=(x.min(), x.max()))`` and
   ``torch.histc(t, bins=2048, min=..., max=...)`` (uniform bins, counts only).  The
   baselines' min/max pass is included in their time, as the histogram must find its own
   range.  Best of ``--repeat`` rounds after one warm-up, each round one call of every
   method (interleaved, so that a shared machine's load falls on all alike); ratio =
   baseline time / our time
   (> 1: ``Histogram`` is faster).  The same is then measured on **both cores** in a
   subprocess of this script started with ``--both-cores`` (``NUMBA_NUM_THREADS=2``:
   ``Histogram.update`` splits large updates over two threads; numpy stays on one,
   torch gets two), with the ratios taken within that subprocess.
1b. **Per-channel collection**: ``--pc-batches`` batches of ``8x1280x7x7`` and of
   ``8x32x56x56`` float32 ReLU activations with channel scales from 0.5 to 2 (and a
   growing range), fed to ``Histogram(axis=1).update``: the grid moves of every channel
   happen inside the one kernel call per batch.
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
import sys

# before numba is imported (by lloydmax or analysis): one core, or both with --both-cores
BOTH = "--both-cores" in sys.argv
os.environ["NUMBA_NUM_THREADS"] = "2" if BOTH else "1"

import argparse  # noqa: E402
import importlib.metadata  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

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

    torch.set_num_threads(2 if BOTH else 1)
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

    methods = (("Histogram.update", ours), ("np.histogram", numpy_hist))
    for _, fn in methods:
        fn()  # warm-up: JIT cache load, allocator
    # interleaved (one call of each per round), so that the load of a shared machine
    # falls on every method alike and the same-run ratios stay meaningful
    out = dict.fromkeys((name for name, _ in methods), float("inf"))
    for _ in range(max(1, repeat)):
        for name, fn in methods:
            took, res = best_of(fn, 1)
            out[name] = min(out[name], took)
            if name == "Histogram.update":
                assert res.count == x.size  # the timed call did the work
    # torch last, on its own: after each parallel op its OpenMP threads spin-wait for more
    # work (OMP_WAIT_POLICY=active by default), which took the second core from the next
    # call of a method run right after it (both-core Histogram.update 19 ms instead of
    # 14 ms in one measurement)
    torch_hist()
    out["torch.histc"], _ = best_of(torch_hist, max(1, repeat))
    return out


def print_histogram(label: str, n: int, times: dict, cores: str = "one core") -> dict:
    ours = times["Histogram.update"]
    print(f"\n## Histogram throughput: {n:,} float32 values, {label}, {cores}\n")
    print("| method | time | values/s | ratio (baseline / Histogram) |")
    print("|---|---:|---:|---:|")
    ratios = {}
    for name, t in times.items():
        ratios[name] = t / ours
        print(f"| {name} | {t * 1e3:.1f} ms | {n / t / 1e6:.0f} M | {t / ours:.2f} |")
    return ratios


def both_cores(args) -> dict | None:
    """Run the throughput part in a subprocess on both cores; its times (s), or None."""
    cmd = [sys.executable, os.path.abspath(__file__), "--both-cores", "--n", str(args.n),
           "--repeat", str(args.repeat), "--seed", str(args.seed)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"\n(both-cores run failed: {proc.stderr.strip().splitlines()[-1:]})")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def throughput_data(n: int, seed: int):
    x = np.random.default_rng(seed).standard_normal(n, dtype=np.float32)
    return (("N(0,1)", x), ("ReLU(N(0,1)) (half zeros)", np.maximum(x, np.float32(0.0))))


def bench_per_channel(batches: int, repeat: int, seed: int) -> dict:
    """Times (s) of Histogram(axis=1) over ``batches`` per-channel batches of two shapes."""
    rng = np.random.default_rng(seed)
    out = {}
    for shape in ((8, 1280, 7, 7), (8, 32, 56, 56)):
        scales = np.linspace(0.5, 2.0, shape[1])[None, :, None, None]
        data = [np.maximum(rng.standard_normal(shape, dtype=np.float32), 0) * scales
                * np.float32(1 + i / batches) for i in range(batches)]
        data = [d.astype(np.float32) for d in data]

        def run(data=data):
            h = Histogram(axis=1)
            for d in data:
                h.update(d)
            return h
        run()
        out["x".join(map(str, shape))], _ = best_of(run, repeat)
    return out


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
    what = {"Histogram.update": "exact 2048-bin pow2 grid, zeros apart, exact S1, S2",
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
    p.add_argument("--repeat", type=int, default=11, help="timed calls; best is reported")
    p.add_argument("--batches", type=int, default=100, help="batches for the collection test")
    p.add_argument("--collect-repeat", type=int, default=3)
    p.add_argument("--dp-repeat", type=int, default=7)
    p.add_argument("--kmeans-samples", type=int, default=10**6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pc-batches", type=int, default=20,
                   help="batches per shape for the per-channel collection test")
    p.add_argument("--both-cores", action="store_true",
                   help="(internal) measure only the throughput, on both cores, as JSON")
    args = p.parse_args(argv)

    if args.both_cores:
        times = {label: bench_histogram(x, args.repeat)
                 for label, x in throughput_data(args.n, args.seed)}
        print(json.dumps(times))
        return 0

    torch = _torch()
    import sklearn

    print("# lloydmax analysis benchmark\n")
    info = machine_info() + [("torch", f"{torch.__version__} (threads: {torch.get_num_threads()})"),
                             ("NUMBA_NUM_THREADS", os.environ["NUMBA_NUM_THREADS"]),
                             ("ckwrap", importlib.metadata.version("ckwrap")),
                             ("scikit-learn", sklearn.__version__)]
    for key, value in info:
        print(f"- {key}: {value}")

    one = {label: print_histogram(label, args.n, bench_histogram(x, args.repeat))
           for label, x in throughput_data(args.n, args.seed)}
    t0 = time.perf_counter()
    two_times = both_cores(args)
    two = {} if two_times is None else {
        label: print_histogram(label, args.n, times, "both cores (NUMBA_NUM_THREADS=2)")
        for label, times in two_times.items()}
    print(f"\n(both-cores subprocess: {time.perf_counter() - t0:.1f} s including start-up)")

    pc = bench_per_channel(args.pc_batches, args.collect_repeat, args.seed)
    print(f"\n## Per-channel collection: {args.pc_batches} batches per shape, one core\n")
    print("| batch shape | total | per batch | values/s |")
    print("|---|---:|---:|---:|")
    for shape, t in pc.items():
        n_vals = args.pc_batches * int(np.prod([int(v) for v in shape.split("x")]))
        print(f"| {shape} | {t * 1e3:.0f} ms | {t / args.pc_batches * 1e3:.2f} ms "
              f"| {n_vals / t / 1e6:.0f} M |")

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
    for label, r in one.items():
        q = r["np.histogram"]
        print(f"- Histogram.update >= 2x np.histogram on one core ({label}): "
              f"{'met' if q >= 2 else 'NOT met'} ({q:.2f}x; torch.histc {r['torch.histc']:.2f}x)")
    for label, r in two.items():
        q = r["np.histogram"]
        print(f"- Histogram.update >= 3.5x np.histogram on both cores ({label}): "
              f"{'met' if q >= 3.5 else 'NOT met'} ({q:.2f}x; torch.histc on 2 threads "
              f"{r['torch.histc']:.2f}x)")
    print(f"- Collection vs HistogramObserver: {r_coll['HistogramObserver']:.2f}x "
          f"(MinMaxObserver floor: {r_coll['MinMaxObserver']:.2f}x)")
    print(f"- DP no slower than ckwrap (2048 bins, 16 levels): "
          f"{'met' if min(dp_ratio, dp_ratio_log) >= 1 else 'NOT met'} "
          f"(ckwrap linear {dp_ratio:.2f}x, loglinear {dp_ratio_log:.2f}x of DP time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
