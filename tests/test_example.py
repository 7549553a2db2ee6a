"""The end-to-end HWGQ example runs (fast variant) and prints the Table-3-style summary."""
import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hwgq_digits.py"


def test_hwgq_digits_fast_variant(tmp_path):
    table = tmp_path / "hwgq_a2.json"
    subprocess.run([sys.executable, "-m", "lloydmax", "table", "--bits", "1-3", "--half-wave",
                    "--uniform", "-o", str(table)], check=True)
    out = subprocess.run([sys.executable, "-W", "error::UserWarning", str(EXAMPLE),
                          "--table", str(table), "--bits", "2", "--epochs", "1", "--max-steps", "4",
                          "--width", "8"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "convention hwgq, step 0.53881192" in out.stdout
    rows = dict(re.findall(r"^(full|BW|BW\+Q \S+)\s+([\d.]+)", out.stdout, flags=re.M))
    assert set(rows) == {"full", "BW", "BW+Q vanilla", "BW+Q clipped", "BW+Q log-tailed"}
    assert all(0.0 <= float(v) <= 100.0 for v in rows.values())


def test_hwgq_digits_rejects_unknown_run():
    out = subprocess.run([sys.executable, str(EXAMPLE), "--runs", "full,nope"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and "unknown run" in out.stderr
