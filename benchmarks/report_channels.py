"""Per-layer report of a wide per-channel histogram against the per-tensor report of the
same data (issue 9: report() must be linear in the channel count).

    python benchmarks/report_channels.py [--channels 1280] [--repeat 3]

Prints the best-of times and their ratio; the target is a ratio within 3.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from lloydmax.analysis import Histogram, report


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=1280)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    spread = rng.uniform(0.5, 2.0, (1, args.channels, 1, 1)).astype(np.float32)
    x = np.maximum(rng.standard_normal((8, args.channels, 7, 7)).astype(np.float32) * spread, 0)
    per_channel = Histogram(axis=1).update(x)
    per_tensor = Histogram().update(x)
    report({"warm": per_tensor}, bits=(2,))  # JIT and caches
    t_tensor = best_of(lambda: report({"l": per_tensor}, bits=(2,)), args.repeat)
    t_layer = best_of(lambda: report({"l": per_channel}, bits=(2,)), args.repeat)
    print(f"channels {args.channels}: per-tensor report {t_tensor * 1e3:.0f} ms, per-layer "
          f"report of the per-channel histogram {t_layer * 1e3:.0f} ms, ratio "
          f"{t_layer / t_tensor:.2f} (target <= 3)")


if __name__ == "__main__":
    main()
