"""Start-up of ``lloydmax solve`` with and without the on-disk table cache.

Best of 7 wall-clock runs each, in one run of this script:

- ``python -c "import numba"`` (the reference of issue 9, part 3);
- ``lloydmax solve --bits 2 --half-wave`` answered from the cache (numba never imported);
- the same with ``--no-cache`` (numba kernels loaded from numba's own cache);
- the first call: a cold table cache (the solve, then the entry written).

The table cache lives in a temporary directory (``LLOYDMAX_CACHE_DIR``), so the user's
~/.cache is not touched.  Run: ``python benchmarks/cli_startup.py``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

REPEATS = 7
SOLVE = [sys.executable, "-m", "lloydmax", "solve", "--bits", "2", "--half-wave"]


def best(cmd, env, before=None) -> float:
    times = []
    for _ in range(REPEATS):
        if before is not None:
            before()
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "LLOYDMAX_CACHE_DIR": cache}
        env.pop("LLOYDMAX_CACHE", None)

        def clear():
            for name in os.listdir(cache):
                os.unlink(os.path.join(cache, name))

        subprocess.run([*SOLVE, "--no-cache"], env=env, stdout=subprocess.DEVNULL,
                       check=True)  # numba's kernel cache warm
        numba = best([sys.executable, "-c", "import numba"], env)
        first = best(SOLVE, env, before=clear)
        subprocess.run(SOLVE, env=env, stdout=subprocess.DEVNULL, check=True)
        cached = best(SOLVE, env)
        fresh = best([*SOLVE, "--no-cache"], env)
    print(f"python {sys.version.split()[0]}, best of {REPEATS}")
    print(f"{'import numba':<34}{numba * 1e3:8.1f} ms   1.00x")
    for label, t in (("solve --bits 2 --half-wave, cached", cached),
                     ("solve ... --no-cache", fresh),
                     ("solve ..., first call (cold cache)", first)):
        print(f"{label:<34}{t * 1e3:8.1f} ms   {t / numba:.2f}x")


if __name__ == "__main__":
    main()
