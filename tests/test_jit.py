"""The kernels run as plain Python too (NUMBA_DISABLE_JIT=1), with the same answers."""
import json
import os
import subprocess
import sys

import lloydmax as lm

SCRIPT = """
import json, lloydmax as lm
t = lm.solve(bits=2, dist="halfwave-gaussian", uniform=True)
u = lm.solve(bits=3, dist="laplace")
print(json.dumps([t.step, list(u.levels), u.mse]))
"""


def test_plain_python_kernels_agree_with_jit():
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env,
                         check=True)
    step, levels, mse = json.loads(out.stdout)
    t = lm.solve(bits=2, dist="halfwave-gaussian", uniform=True)
    u = lm.solve(bits=3, dist="laplace")
    assert abs(step - t.step) <= 1e-15
    assert max(abs(a - b) for a, b in zip(levels, u.levels)) <= 1e-14
    assert abs(mse - u.mse) <= 1e-15


def test_fastmath_override_never_enables_nnan_or_ninf():
    code = ("import lloydmax._jit as j; f = j.JIT_OPTIONS.get('fastmath', set()); "
            "print(sorted(f))")
    env = dict(os.environ, LLOYDMAX_FASTMATH="nnan,ninf,contract,fast")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    assert out.stdout.strip() == "['contract']"


CALLEE = """
from lloydmax._jit import jit


@jit
def value(x):
    return x + {offset}
"""

CALLER = """
from lloydmax._jit import jit
from callee import value


@jit
def caller(x):
    return value(x) * 2.0
"""


def test_a_changed_callee_purges_the_stale_cached_caller(tmp_path):
    """numba keys a cached kernel on its own file only: after the callee's file changes,
    the caller's cached machine code would still call the old callee.  The stamp in
    lloydmax._jit deletes the directory's cached kernels first, so the caller sees the
    new callee."""
    (tmp_path / "caller.py").write_text(CALLER)
    env = dict(os.environ, PYTHONPATH=str(tmp_path), LLOYDMAX_JIT_CACHE="1")
    run = [sys.executable, "-c", "from caller import caller; print(caller(1.0))"]
    (tmp_path / "callee.py").write_text(CALLEE.format(offset="1.0"))
    first = subprocess.run(run, capture_output=True, text=True, env=env, check=True)
    assert float(first.stdout) == 4.0
    assert list((tmp_path / "__pycache__").glob("caller.*.nbi"))  # cached
    (tmp_path / "callee.py").write_text(CALLEE.format(offset="2.0"))
    second = subprocess.run(run, capture_output=True, text=True, env=env, check=True)
    assert float(second.stdout) == 6.0
