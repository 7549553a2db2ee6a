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
