"""Exact DP quantizer benchmark: ``lloydmax._dp.solve_dp`` against ckwrap and k-means.

Run ``python benchmarks/analysis_dp.py`` (``--help`` for options).  One run measures:

1. **DP vs ckwrap (Ckmeans.1d.dp 4.3.5, C++)** on weighted histograms: bin centres of
   ``--bins`` bins of ReLU(N(0,1)) samples with the bin counts as weights (occupied bins
   only, the same arrays given to both), for ``--levels`` levels, plus a small size
   sweep.  Both compute the same exact optimum; the script prints the relative MSE
   difference, the largest level difference and the wall times (best of ``--repeat``
   calls after one warm-up call), and the ratio ckwrap / lloydmax (> 1: lloydmax is
   faster).  ckwrap runs with its default ``method="linear"`` (SMAWK) and with
   ``"loglinear"`` (divide and conquer, the algorithm lloydmax uses).
2. **DP vs scikit-learn KMeans** on the raw samples (``--samples`` values of
   ReLU(N(0,1)), 16 clusters): k-means is a local method (Lloyd's iteration from a
   k-means++ start); the DP is the global optimum of the same objective.  KMeans runs
   with ``n_init=1``, the default (``"auto"``: one k-means++ run in scikit-learn >= 1.4)
   and ``n_init=10`` (the pre-1.4 default).  Each row prints MSE, time, the MSE excess
   over the DP and the time ratio.  ``lm.solve_data`` (Lloyd from quantiles) is included
   for reference.

3. **The wrapper on tiny inputs** (``--tiny-calls`` calls each, min and median per call):
   ``solve_dp`` against ``ckwrap.ckmeans`` on ``TINY`` (points, levels) cases of N(0,1)
   samples, unweighted and weighted.  Here the DP itself takes a few microseconds, so the
   figures are the Python wrapper's cost (validation, standardisation, table and metrics);
   the goal of issue 9 is a wrapper of at most 40 us, below ckwrap.

Nothing here asserts on time; the script only reports.  Machine information comes from
``benchmarks/solver.py``.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import time

import numpy as np

import lloydmax as lm
from lloydmax._dp import solve_dp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from solver import best_of, machine_info

SWEEP = ((2048, 16), (2048, 256), (16384, 16), (16384, 256), (100_000, 256))
TINY = ((100, 4), (100, 16), (1000, 16))
GOAL_TINY_US = 40.0


def relu_samples(n: int, seed: int) -> np.ndarray:
    return np.maximum(np.random.default_rng(seed).standard_normal(n), 0.0)


def histogram_points(samples: np.ndarray, bins: int):
    counts, edges = np.histogram(samples, bins=bins)
    centres = 0.5 * (edges[1:] + edges[:-1])
    keep = counts > 0
    return centres[keep], counts[keep].astype(np.float64)


def bench_ckwrap(x, w, k, repeat):
    import ckwrap

    solve_dp(x, n_levels=k, weights=w)  # warm-up (JIT cache load)
    t_dp, table = best_of(lambda: solve_dp(x, n_levels=k, weights=w), repeat)
    row = {"points": x.size, "levels": k, "dp_s": t_dp, "dp_mse": table.mse}
    for method in ("linear", "loglinear"):
        ckwrap.ckmeans(x, k, weights=w, method=method)
        t, res = best_of(lambda method=method: ckwrap.ckmeans(x, k, weights=w, method=method),
                         repeat)
        row[f"ck_{method}_s"] = t
        mse = float(np.sum(res.withinss)) / float(np.sum(w))
        row[f"ck_{method}_relmse"] = abs(mse - table.mse) / mse
        row[f"ck_{method}_dlevel"] = float(np.max(np.abs(np.asarray(res.centers) - table.levels)))
    return row


def print_ckwrap(rows):
    print("\n## DP vs ckwrap (weighted histogram of ReLU(N(0,1)) samples)\n")
    print("| points | levels | lloydmax DP | ckwrap linear | ckwrap loglinear | ratio linear "
          "| ratio loglinear | rel. MSE diff | max level diff |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['points']} | {r['levels']} | {r['dp_s'] * 1e3:.3f} ms "
              f"| {r['ck_linear_s'] * 1e3:.3f} ms | {r['ck_loglinear_s'] * 1e3:.3f} ms "
              f"| {r['ck_linear_s'] / r['dp_s']:.2f} | {r['ck_loglinear_s'] / r['dp_s']:.2f} "
              f"| {max(r['ck_linear_relmse'], r['ck_loglinear_relmse']):.1e} "
              f"| {max(r['ck_linear_dlevel'], r['ck_loglinear_dlevel']):.1e} |")
    print("\nratio = ckwrap time / lloydmax time (> 1: lloydmax is faster); best of the repeats")


def per_call_us(fn, calls: int) -> tuple[float, float]:
    """(min, median) wall time of one call of ``fn()`` in microseconds over ``calls`` calls."""
    times = []
    for _ in range(max(1, calls)):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    times.sort()
    return times[0] / 1e3, times[len(times) // 2] / 1e3


def bench_tiny(calls: int, seed: int) -> list[dict]:
    """solve_dp against ckwrap on tiny inputs, where the wrapper dominates."""
    import ckwrap

    rng = np.random.default_rng(seed)
    rows = []
    for npts, k in TINY:
        x = rng.standard_normal(npts)
        for weighted in (False, True):
            w = rng.random(npts) + 0.5 if weighted else None
            if w is None:
                def ours(x=x, k=k):
                    return solve_dp(x, n_levels=k)

                def theirs(x=x, k=k):
                    return ckwrap.ckmeans(x, k)
            else:
                def ours(x=x, k=k, w=w):
                    return solve_dp(x, n_levels=k, weights=w)

                def theirs(x=x, k=k, w=w):
                    return ckwrap.ckmeans(x, k, weights=w)
            ours()
            theirs()
            # interleave two halves so a change of machine load hits both alike
            a1, b1 = per_call_us(ours, calls // 2), per_call_us(theirs, calls // 2)
            a2, b2 = per_call_us(ours, calls // 2), per_call_us(theirs, calls // 2)
            mse = float(np.sum(theirs().withinss)) / (npts if w is None else float(np.sum(w)))
            rows.append({"points": npts, "levels": k, "weighted": weighted,
                         "dp_min": min(a1[0], a2[0]), "dp_med": min(a1[1], a2[1]),
                         "ck_min": min(b1[0], b2[0]), "ck_med": min(b1[1], b2[1]),
                         "relmse": abs(ours().mse - mse) / mse})
    return rows


def print_tiny(rows, calls):
    print(f"\n## The wrapper on tiny inputs (N(0,1) samples; min / median of {calls} calls)\n")
    print("| points | levels | weights | lloydmax solve_dp | ckwrap linear | ratio (min) "
          "| ratio (median) | rel. MSE diff |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['points']} | {r['levels']} | {'yes' if r['weighted'] else 'no'} "
              f"| {r['dp_min']:.1f} / {r['dp_med']:.1f} us "
              f"| {r['ck_min']:.1f} / {r['ck_med']:.1f} us "
              f"| {r['ck_min'] / r['dp_min']:.2f} | {r['ck_med'] / r['dp_med']:.2f} "
              f"| {r['relmse']:.1e} |")
    print("\nratio = ckwrap time / lloydmax time (> 1: lloydmax is faster)")
    first = [r for r in rows if r["points"] == TINY[0][0] and r["levels"] == TINY[0][1]]
    for r in first:
        met = r["dp_min"] <= GOAL_TINY_US and r["dp_min"] < r["ck_min"]
        print(f"Goal (wrapper <= {GOAL_TINY_US:g} us and below ckwrap at {r['points']} points x "
              f"{r['levels']} levels, {'weighted' if r['weighted'] else 'unweighted'}): "
              f"{'met' if met else 'NOT met'} ({r['dp_min']:.1f} us, ratio "
              f"{r['ck_min'] / r['dp_min']:.2f})")


def bench_kmeans(samples, k, repeat, seed):
    from sklearn.cluster import KMeans

    x = samples.reshape(-1)
    rows = []
    solve_dp(x[:1000], n_levels=k)
    t_dp, dp = best_of(lambda: solve_dp(x, n_levels=k), repeat)
    rows.append(("lloydmax solve_dp (exact)", dp.mse, t_dp))
    t_ll, ll = best_of(lambda: lm.solve_data(x, n_levels=k, strict=False), repeat)
    rows.append(("lloydmax solve_data (Lloyd)", ll.mse, t_ll))
    for label, n_init in (("KMeans n_init=1", 1), ("KMeans default (n_init='auto')", "auto"),
                          ("KMeans n_init=10", 10)):
        def fit(n_init=n_init):
            return KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x.reshape(-1, 1))

        t, km = best_of(fit, 1 if n_init == 10 else repeat)
        rows.append((label, float(km.inertia_) / x.size, t))
    return rows


def print_kmeans(rows, n, k):
    dp_mse, dp_t = rows[0][1], rows[0][2]
    print(f"\n## DP vs k-means on {n} raw ReLU(N(0,1)) samples, {k} levels\n")
    print("| method | MSE | MSE excess over DP | time | time / DP time |")
    print("|---|---:|---:|---:|---:|")
    for label, mse, t in rows:
        print(f"| {label} | {mse:.6e} | {(mse - dp_mse) / dp_mse:+.2e} | {t:.3f} s "
              f"| {t / dp_t:.2f} |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bins", type=int, default=2048)
    p.add_argument("--levels", type=int, default=16)
    p.add_argument("--hist-samples", type=int, default=10**6,
                   help="ReLU(N(0,1)) samples behind each histogram")
    p.add_argument("--samples", type=int, default=10**6, help="raw samples for k-means")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--no-sweep", action="store_true", help="only the --bins x --levels case")
    p.add_argument("--tiny-calls", type=int, default=4000,
                   help="calls per tiny case and library (default 4000)")
    p.add_argument("--only-tiny", action="store_true", help="only the tiny-input section")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import sklearn

    print("# Exact DP quantizer benchmark\n")
    for label, value in machine_info() + [("ckwrap", importlib.metadata.version("ckwrap")),
                                          ("scikit-learn", sklearn.__version__)]:
        print(f"- {label}: {value}")

    tiny = bench_tiny(args.tiny_calls, args.seed)
    print_tiny(tiny, args.tiny_calls)
    if args.only_tiny:
        return 0

    samples = relu_samples(args.hist_samples, args.seed)
    cases = [(args.bins, args.levels)]
    if not args.no_sweep:
        cases += [c for c in SWEEP if c != cases[0]]
    rows = []
    for bins, k in cases:
        x, w = histogram_points(samples, bins)
        rep = args.repeat if x.size * k <= 16384 * 256 else 1
        rows.append(bench_ckwrap(x, w, k, rep))
    print_ckwrap(rows)
    main_row = rows[0]
    ratio = main_row["ck_linear_s"] / main_row["dp_s"]
    print(f"\nGoal (DP no slower than ckwrap at {args.bins} bins x {args.levels} levels): "
          f"{'met' if ratio >= 1 else 'NOT met'} (ratio {ratio:.2f})")

    raw = relu_samples(args.samples, args.seed + 1)
    km_rows = bench_kmeans(raw, 16, max(1, args.repeat // 3), args.seed)
    print_kmeans(km_rows, args.samples, 16)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
