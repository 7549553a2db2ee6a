"""Solver benchmark: ``lloydmax.solve`` against a plain numpy Lloyd loop, plus CLI start-up.

Run ``python benchmarks/solver.py`` (``--help`` for options).  One run measures:

1. **In-process solve time** of ``lm.solve(bits=b, dist="gaussian")`` on the unit
   Gaussian at b = 4, 6, 8 (best of ``--repeat`` calls) and b = 12, 16 (best of
   ``--repeat-large`` calls).  The JIT is warmed by one untimed call first, so the
   figures are the warm cost a library user pays per table.
2. **The baseline a user would otherwise write**: a vectorized numpy Lloyd iteration
   for the unit Gaussian (levels ``q``, thresholds at the midpoints, cell masses from
   ``scipy.special.ndtr`` differences, centroids ``(phi(a) - phi(b)) / mass``,
   ``q <- centroids``), started from levels spread uniformly over +-3 and stopped by
   the *same* criterion lloydmax uses: relative residual
   ``max|q - centroid| / (q_max - q_min) <= tol`` (default 1e-12), or an iteration cap.
   Masses of cells right of 0 are taken from the upper tail (``ndtr(-a) - ndtr(-b)``)
   so the baseline is not limited by cancellation in ``ndtr`` near 1.  It runs at
   4, 6 and 8 bits only: plain Lloyd converges linearly with a rate that approaches 1
   as the level count grows, so 12 and 16 bits are out of its reach.
   The maximum level difference between the two tables is printed; note that at an
   equal residual the slowly converging Lloyd iterate is further from the fixed point
   than Newton's (distance ~ residual / (1 - rate)), so this difference is dominated by
   the baseline's error.
3. **CLI start-up**: wall time of ``lloydmax solve --bits 2 --half-wave`` in a fresh
   process (``python -m lloydmax`` and the console script), median of ``--cli-runs``
   runs after one warm-up run that fills numba's on-disk cache, against bare
   ``python -c "import numba"``.  For context it also times the interpreter alone and
   ``import numba`` plus one call of a trivial ``cache=True`` kernel (the floor for
   any program that runs a cached numba function).
4. **The targets of issue 9, against a vectorized numpy/scipy Newton baseline**
   (``benchmarks/newton_baseline.py``: Newton on the centroid conditions with a
   tridiagonal Jacobian and a backtracking line search; tail-safe ``ndtr``/``stdtr``
   closed forms, vectorized over the cells).  For each target, timed in the same run:
   lloydmax (iterations, residual, and passes over the cells from the kernel's
   ``info[4]``, read by wrapping ``lloydmax._kernels.solve_nonuniform`` for one untimed
   call) and the baseline (iterations, vectorized passes, residual), the largest level
   difference between the two tables, the ratio baseline / lloydmax and whether
   lloydmax meets the target.
5. The goals of the performance issue and whether this run met them.

Nothing here asserts on time; the script only reports.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time

import numpy as np
from scipy.special import ndtr

import lloydmax as lm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import newton_baseline as nb

SMALL_BITS = (4, 6, 8)
LARGE_BITS = (12, 16)
BASELINE_BITS = SMALL_BITS
CLI_ARGS = ["solve", "--bits", "2", "--half-wave"]
GOAL_8BIT_MS = 5.0
GOAL_16BIT_S = 1.0
GOAL_CLI_RATIO = 1.5
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)

# issue 9: (label, lm.solve keywords, baseline, target in ms, large); a baseline returns
# (levels, iterations, passes, residual)
TARGETS = (
    ("Gaussian 8 bits", {"bits": 8}, lambda tol: nb.gaussian_table(256, tol), 0.3, False),
    ("half-wave 8 bits", {"bits": 8, "dist": "halfwave-gaussian"},
     lambda tol: nb.halfwave_table(256, tol), 0.3, False),
    ("Gaussian 16 bits", {"bits": 16}, lambda tol: nb.gaussian_table(65536, tol), 30.0, True),
    ("half-wave 16 bits", {"bits": 16, "dist": "halfwave-gaussian"},
     lambda tol: nb.halfwave_table(65536, tol), 30.0, True),
    ("uniform quantizer, Gaussian 16 bits", {"bits": 16, "uniform": True},
     lambda tol: _drop_step(nb.uniform_gaussian_table(65536, tol)), 10.0, True),
    ("t(nu=5) 8 bits", {"bits": 8, "dist": "t", "params": {"df": 5}},
     lambda tol: nb.student_t_table(256, 5.0, tol), 20.0, True),
)


def _drop_step(result):
    levels, _step, iterations, passes, residual = result
    return levels, iterations, passes, residual

_FLOOR_MODULE = textwrap.dedent("""\
    from numba import njit

    @njit(cache=True)
    def total(x):
        s = 0.0
        for i in range(x.shape[0]):
            s += x[i]
        return s
    """)


# --------------------------------------------------------------------------- machine info

def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> list[tuple[str, str]]:
    """(label, value) pairs describing the machine and the software stack."""
    import numba
    import scipy

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return [
        ("date", _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")),
        ("platform", platform.platform()),
        ("cpu", _cpu_model()),
        ("cores", f"{os.cpu_count()} logical, {usable} usable"),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("numpy", np.__version__),
        ("scipy", scipy.__version__),
        ("numba", numba.__version__),
        ("lloydmax", lm.__version__),
    ]


# --------------------------------------------------------------------------- timing helpers

def best_of(fn, repeat: int) -> tuple[float, object]:
    """Best wall time of ``repeat`` calls of ``fn()`` (seconds) and the last result."""
    best, out = float("inf"), None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def wall(cmd: list[str], cwd: str) -> float:
    """Wall time (s) of one run of ``cmd``; raises if the command fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                           f"{proc.stderr.decode(errors='replace')}")
    return dt


def median_walls(cmds: dict[str, list[str]], runs: int, cwd: str) -> dict[str, float]:
    """Median wall time (s) per command over ``runs`` rounds, after one warm-up round.

    The warm-up fills numba's on-disk cache and the OS file cache.  Rounds interleave
    the commands so that a drifting machine load hits every command alike.
    """
    for cmd in cmds.values():
        wall(cmd, cwd)
    times: dict[str, list[float]] = {label: [] for label in cmds}
    for r in range(max(1, runs)):
        for label, cmd in cmds.items():
            times[label].append(wall(cmd, cwd))
        print(f"  CLI round {r + 1}/{runs} done", file=sys.stderr, flush=True)
    return {label: statistics.median(ts) for label, ts in times.items()}


# --------------------------------------------------------------------------- numpy baseline

def numpy_lloyd_gaussian(n: int, tol: float = 1e-12, max_iter: int = 300_000):
    """Plain vectorized Lloyd iteration for the unit Gaussian.

    Returns ``(levels, iterations, residual)``; ``iterations == max_iter`` with a
    residual above ``tol`` means the cap was hit.  The residual is the one lloydmax
    reports: ``max|q - centroid| / (q_max - q_min)`` at the returned levels.
    """
    q = np.linspace(-3.0, 3.0, n)
    edges = np.empty(n + 1)
    edges[0], edges[-1] = -np.inf, np.inf
    residual = np.inf
    for it in range(max_iter + 1):
        edges[1:-1] = 0.5 * (q[:-1] + q[1:])
        a, b = edges[:-1], edges[1:]
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * edges * edges)
        # upper-tail form right of 0: ndtr(b) - ndtr(a) loses digits where ndtr ~ 1
        mass = np.where(a >= 0.0, ndtr(-a) - ndtr(-b), ndtr(b) - ndtr(a))
        centroid = (pdf[:-1] - pdf[1:]) / mass
        residual = float(np.max(np.abs(q - centroid)) / (q[-1] - q[0]))
        if residual <= tol or it == max_iter:
            return q, it, residual
        q = centroid
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- benchmarks

def bench_solver(args) -> list[dict]:
    """Time lloydmax (and the numpy baseline) per bit-width; one dict per row."""
    t0 = time.perf_counter()
    lm.solve(bits=4, dist="gaussian")  # JIT warm-up (loads the on-disk cache or compiles)
    warm_up = time.perf_counter() - t0
    print(f"JIT warm-up call (bits=4): {warm_up * 1e3:.0f} ms\n")

    rows = []
    for b in SMALL_BITS + LARGE_BITS:
        repeat = args.repeat if b in SMALL_BITS else args.repeat_large
        t, table = best_of(lambda b=b: lm.solve(bits=b, dist="gaussian", tol=args.tol), repeat)
        row = {"bits": b, "ours_s": t, "ours_iter": table.iterations,
               "ours_res": table.residual}
        if b in BASELINE_BITS and not args.no_baseline:
            tb, (q, it, res) = best_of(
                lambda b=b: numpy_lloyd_gaussian(1 << b, args.tol, args.max_iter),
                args.baseline_repeat)
            row.update(base_s=tb, base_iter=it, base_res=res,
                       base_capped=res > args.tol,
                       diff=float(np.max(np.abs(q - table.levels))))
        rows.append(row)
        print(f"  {b:2d} bits done", file=sys.stderr, flush=True)
    return rows


def print_solver_table(rows: list[dict], tol: float) -> None:
    print(f"Unit Gaussian, non-uniform (Lloyd-Max) tables, relative residual tol {tol:g}")
    head = (f"{'bits':>4}  {'lloydmax ms':>11}  {'iter':>4}  {'residual':>8}  "
            f"{'numpy-Lloyd ms':>14}  {'iter':>7}  {'residual':>8}  {'ratio':>7}  "
            f"{'max |dq|':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        ours = (f"{r['bits']:>4}  {r['ours_s'] * 1e3:11.3f}  {r['ours_iter']:>4}  "
                f"{r['ours_res']:8.1e}")
        if "base_s" in r:
            capped = "*" if r["base_capped"] else " "
            base = (f"  {r['base_s'] * 1e3:14.1f}  {r['base_iter']:>6}{capped}  "
                    f"{r['base_res']:8.1e}  {r['base_s'] / r['ours_s']:6.0f}x  "
                    f"{r['diff']:8.1e}")
        else:
            base = f"  {'-':>14}  {'-':>7}  {'-':>8}  {'-':>7}  {'-':>8}"
        print(ours + base)
    if any(r.get("base_capped") for r in rows):
        print("* iteration cap reached before the tolerance; the residual column shows "
              "how far it got")
    print("lloydmax: best of N warm calls; numpy-Lloyd: best of N runs from uniform levels "
          "on [-3, 3].")
    print("ratio = numpy-Lloyd time / lloydmax time; max |dq| = largest level difference.\n")


def solver_passes(kwargs: dict):
    """Passes over the cells of one ``lm.solve(**kwargs)``: the table's own ``passes``
    when it has one, else ``info[4]`` of the kernel's info array (a 5-entry array is
    given to ``solve_nonuniform`` and ``solve_uniform``), read by wrapping the kernels
    for this call and summed over their calls; None when neither is available."""
    import lloydmax._kernels as kernels

    seen: list[np.ndarray] = []
    originals = {name: getattr(kernels, name) for name in ("solve_nonuniform", "solve_uniform")
                 if hasattr(kernels, name)}

    def recording(original):
        def call(*call_args):
            out = original(*call_args)
            # the info array: the last 1-D argument of 5 entries
            infos = [a for a in call_args if isinstance(a, np.ndarray) and a.ndim == 1
                     and a.size == 5]
            if infos:
                seen.append(np.array(infos[-1]))
            return out
        return call

    for name, original in originals.items():
        setattr(kernels, name, recording(original))
    try:
        table = lm.solve(**kwargs)
    finally:
        for name, original in originals.items():
            setattr(kernels, name, original)
    passes = getattr(table, "passes", None)
    if passes is not None:
        return int(passes)
    counts = [int(info[4]) for info in seen]
    return sum(counts) if counts else None


def bench_targets(args) -> list[dict]:
    """lloydmax against the numpy/scipy Newton baseline on every target of issue 9."""
    rows = []
    for label, kwargs, baseline, goal_ms, large in TARGETS:
        kwargs = {**kwargs, "tol": args.tol}
        lm.solve(**kwargs)  # warm: JIT, and any per-density set-up caches
        repeat = args.repeat_large if large else args.repeat
        passes = solver_passes(kwargs)
        t, table = best_of(lambda kwargs=kwargs: lm.solve(**kwargs), repeat)
        row = {"label": label, "goal_ms": goal_ms, "ours_s": t, "ours_iter": table.iterations,
               "ours_res": table.residual, "passes": passes}
        if not args.no_baseline:
            baseline(args.tol)
            tb, (q, it, ev, res) = best_of(lambda baseline=baseline: baseline(args.tol), repeat)
            row.update(base_s=tb, base_iter=it, base_passes=ev, base_res=res,
                       diff=float(np.max(np.abs(q - table.levels))))
        rows.append(row)
        print(f"  {label} done", file=sys.stderr, flush=True)
    return rows


def print_targets(rows: list[dict], tol: float) -> None:
    print(f"Issue 9 targets: lloydmax against a vectorized numpy/scipy Newton baseline "
          f"(relative residual tol {tol:g})")
    head = (f"{'solve':<36} {'lloydmax ms':>11} {'it':>3} {'passes':>6} {'residual':>8}  "
            f"{'numpy ms':>9} {'it':>3} {'passes':>6} {'residual':>8}  {'max |dq|':>8} "
            f"{'ratio':>7}  {'target':>8}  status")
    print(head)
    print("-" * len(head))
    for r in rows:
        passes = "n/a" if r["passes"] is None else str(r["passes"])
        line = (f"{r['label']:<36} {r['ours_s'] * 1e3:11.3f} {r['ours_iter']:>3} {passes:>6} "
                f"{r['ours_res']:8.1e}  ")
        if "base_s" in r:
            line += (f"{r['base_s'] * 1e3:9.3f} {r['base_iter']:>3} {r['base_passes']:>6} "
                     f"{r['base_res']:8.1e}  {r['diff']:8.1e} "
                     f"{r['base_s'] / r['ours_s']:6.3g}x  ")
        else:
            line += f"{'-':>9} {'-':>3} {'-':>6} {'-':>8}  {'-':>8} {'-':>7}  "
        met = r["ours_s"] * 1e3 <= r["goal_ms"]
        line += f"{'<= ' + format(r['goal_ms'], 'g') + ' ms':>8}  {'met' if met else 'NOT MET'}"
        print(line)
    print("lloydmax and numpy: best of N warm calls in this run.  passes = passes over the "
          "cells (lloydmax: the kernel's info[4], n/a where the kernel does not count them;")
    print("numpy: vectorized evaluations of every cell, one per trial point).  ratio = numpy "
          "time / lloydmax time (> 1: lloydmax is faster).")
    print("max |dq| = largest level difference between the two tables (both stop at the "
          "same relative residual; at 16 bits the small eigenvalues of the Jacobian of")
    print("the centroid conditions leave the levels free to a few 1e-9 at a residual of "
          "1e-14).\n")


def bench_cli(args) -> dict[str, float]:
    """Median wall time (s) of each CLI start-up command, keyed by label."""
    exe = sys.executable
    argv = " ".join(CLI_ARGS)
    with tempfile.TemporaryDirectory() as tmp:
        # the scratch directory holds the floor kernel's module and numba cache; running
        # from it also makes `-m lloydmax` import the installed package
        with open(os.path.join(tmp, "_floor_mod.py"), "w", encoding="utf-8") as fh:
            fh.write(_FLOOR_MODULE)
        cmds = {
            "python (interpreter only)": [exe, "-c", "pass"],
            "python -c 'import numba'": [exe, "-c", "import numba"],
            "import numba + 1 cached kernel call":
                [exe, "-c", "import numpy as np, _floor_mod; _floor_mod.total(np.ones(3))"],
            f"python -m lloydmax {argv}": [exe, "-m", "lloydmax", *CLI_ARGS],
        }
        direct = os.path.join(sysconfig.get_path("scripts"), "lloydmax")
        if os.path.isfile(direct):
            cmds[f"lloydmax (console script) {argv}"] = [direct, *CLI_ARGS]
        on_path = shutil.which("lloydmax")
        if on_path and os.path.realpath(on_path) != os.path.realpath(direct):
            where = "PATH, pyenv shim" if f"{os.sep}shims{os.sep}" in on_path else "first on PATH"
            cmds[f"lloydmax ({where}) {argv}"] = [on_path, *CLI_ARGS]
        return median_walls(cmds, args.cli_runs, cwd=tmp)


def print_cli(results: dict, runs: int) -> dict:
    ref = results["python -c 'import numba'"]
    print(f"CLI start-up, median of {runs} fresh processes per command (interleaved) "
          f"after one warm-up run")
    width = max(len(k) for k in results)
    for label, t in results.items():
        print(f"  {label:<{width}}  {t * 1e3:7.0f} ms  {t / ref:5.2f}x import numba")
    print()
    # the goal is judged on the commands themselves; a pyenv shim's own start-up is not ours
    return {k.split(" solve")[0]: t / ref for k, t in results.items()
            if "lloydmax" in k and "PATH" not in k}


def print_goals(rows: list[dict], cli_ratios: dict) -> None:
    by_bits = {r["bits"]: r for r in rows}
    goals = []
    if 8 in by_bits:
        t = by_bits[8]["ours_s"] * 1e3
        goals.append((f"8-bit table <= {GOAL_8BIT_MS:g} ms in-process (warm)",
                      f"{t:.2f} ms", t <= GOAL_8BIT_MS))
    if 16 in by_bits:
        t = by_bits[16]["ours_s"]
        goals.append((f"16-bit table <= {GOAL_16BIT_S:g} s", f"{t:.3f} s", t <= GOAL_16BIT_S))
    for label, ratio in cli_ratios.items():
        goals.append((f"CLI <= {GOAL_CLI_RATIO:g}x bare 'import numba' [{label}]",
                      f"{ratio:.2f}x", ratio <= GOAL_CLI_RATIO))
    print("Goals")
    width = max(len(g[0]) for g in goals)
    for name, value, met in goals:
        print(f"  {name:<{width}}  {value:>10}  {'met' if met else 'NOT MET'}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=20,
                   help="timed calls at 4, 6, 8 bits; the best is reported (default 20)")
    p.add_argument("--repeat-large", type=int, default=3,
                   help="timed calls at 12 and 16 bits (default 3)")
    p.add_argument("--baseline-repeat", type=int, default=2,
                   help="timed runs of the numpy Lloyd baseline per bit-width (default 2)")
    p.add_argument("--max-iter", type=int, default=300_000,
                   help="iteration cap of the numpy Lloyd baseline (default 300000)")
    p.add_argument("--tol", type=float, default=1e-12,
                   help="relative residual tolerance for both solvers (default 1e-12)")
    p.add_argument("--cli-runs", type=int, default=7,
                   help="timed runs per CLI command; the median is reported (default 7)")
    p.add_argument("--no-baseline", action="store_true",
                   help="skip both numpy baselines (Lloyd, and the Newton baseline of the targets)")
    p.add_argument("--no-cli", action="store_true", help="skip the CLI start-up timings")
    p.add_argument("--no-targets", action="store_true",
                   help="skip the issue 9 targets against the numpy/scipy Newton baseline")
    args = p.parse_args(argv)

    print("lloydmax solver benchmark")
    info = machine_info()
    width = max(len(k) for k, _ in info)
    for key, value in info:
        print(f"  {key:<{width}}  {value}")
    print()

    rows = bench_solver(args)
    print_solver_table(rows, args.tol)
    if not args.no_targets:
        print_targets(bench_targets(args), args.tol)
    cli_ratios = {} if args.no_cli else print_cli(bench_cli(args), args.cli_runs)
    print_goals(rows, cli_ratios)
    return 0


if __name__ == "__main__":
    sys.exit(main())
