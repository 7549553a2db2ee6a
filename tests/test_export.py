"""``lloydmax export``: the C header decides as the float64 table on every float32
neighbour of every threshold (compiled and run), and integer thresholds give the table's
index for every integer input of the format."""
from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

import lloydmax as lm
from lloydmax._export import c_header, float32_round_down, int_thresholds
from lloydmax.cli import main
from lloydmax.errors import InvalidInputError

CC = shutil.which("cc") or shutil.which("gcc")

TABLES = {
    "gauss1": lambda: lm.solve(1, dist="gaussian"),
    "gauss4": lambda: lm.solve(4, dist="gaussian"),
    "gauss3_uniform_scaled": lambda: lm.solve(3, dist="gaussian", uniform=True).scaled(0.037),
    "hwgq2": lambda: lm.solve(2, dist="halfwave-gaussian"),
    "hwgq3_uniform": lambda: lm.solve(3, dist="halfwave-gaussian", uniform=True),
    "deadzone2": lambda: lm.solve(2, dist="halfwave-gaussian", zero_threshold=0.32),
    "laplace5": lambda: lm.solve(5, dist="laplace"),
}

HARNESS = r"""
#include <stdio.h>
#include "table.h"
int main(void)
{
    float x;
    while (fread(&x, sizeof x, 1, stdin) == 1) {
        int index = lloydmax_index(x);
        float value = lloydmax_quantize(x);
        if (value != lloydmax_levels[index]) return 3;
        fwrite(&index, sizeof index, 1, stdout);
    }
    return 0;
}
"""


def _neighbours(thresholds) -> np.ndarray:
    """Every float32 within 3 ulps of each threshold, and the special values."""
    down = float32_round_down(thresholds)
    out = [down]
    up, below = down.copy(), down.copy()
    for _ in range(3):
        up = np.nextafter(up, np.float32(np.inf))
        below = np.nextafter(below, np.float32(-np.inf))
        out += [up, below]
    fmax = np.finfo(np.float32).max
    special = np.array([0.0, -0.0, np.inf, -np.inf, fmax, -fmax, 1e-45, -1e-45],
                       dtype=np.float32)
    rng = np.random.default_rng(0)
    return np.concatenate(out + [special, rng.standard_normal(1000).astype(np.float32)])


def test_round_down_is_the_largest_float32_not_above():
    rng = np.random.default_rng(1)
    t = np.concatenate([rng.standard_normal(10000), [0.0, 1.0, 1e39, -1e39, 0.1]])
    down = float32_round_down(t)
    assert np.all(down.astype(np.float64) <= t)
    with np.errstate(over="ignore"):
        nxt = np.nextafter(down, np.float32(np.inf)).astype(np.float64)
    assert np.all(nxt > t)
    assert down[-1] == np.float32(0.1) or down[-1] < np.float32(0.1)


@pytest.mark.skipif(CC is None, reason="needs a C compiler")
@pytest.mark.parametrize("name", sorted(TABLES))
def test_compiled_header_agrees_on_every_neighbour_of_every_threshold(name, tmp_path):
    table = TABLES[name]()
    (tmp_path / "table.h").write_text(c_header(table))
    (tmp_path / "run.c").write_text(HARNESS)
    exe = tmp_path / "run"
    subprocess.run([CC, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2",
                    "-o", str(exe), str(tmp_path / "run.c")], check=True, cwd=tmp_path)
    x = _neighbours(table.thresholds)
    done = subprocess.run([str(exe)], input=x.tobytes(), capture_output=True, check=True)
    got = np.frombuffer(done.stdout, dtype=np.int32)
    want = table.quantize(x, return_index=True)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{name}: x={x[bad[:5]]} header {got[bad[:5]]} table {want[bad[:5]]}"


@pytest.mark.skipif(CC is None, reason="needs a C compiler")
def test_cli_writes_a_header_that_compiles_under_cc_wall_werror(tmp_path):
    lm.solve(3, dist="gaussian").save(tmp_path / "g3.json")
    header = tmp_path / "g3.h"
    assert main(["export", str(tmp_path / "g3.json"), "--format", "c-header",
                 "--name", "g3", "-o", str(header)]) == 0
    (tmp_path / "use.c").write_text('#include "g3.h"\nint main(void)\n{\n'
                                    '    return g3_index(0.1f) == 4 && g3_quantize(-9.0f) < 0'
                                    ' ? 0 : 1;\n}\n')
    subprocess.run([CC, "-Wall", "-Werror", "-o", str(tmp_path / "use"),
                    str(tmp_path / "use.c")], check=True, cwd=tmp_path)
    assert subprocess.run([str(tmp_path / "use")]).returncode == 0


FORMATS = [(8, False, 0.02), (8, True, 1 / 64), (4, True, 0.5), (12, True, 0.001),
           (6, False, 0.03125)]


@pytest.mark.parametrize("name", sorted(TABLES))
@pytest.mark.parametrize("bits,signed,scale", FORMATS)
def test_int_thresholds_equal_the_table_on_every_integer_input(name, bits, signed, scale):
    table = TABLES[name]()
    if name == "gauss3_uniform_scaled":
        scale *= 0.037
    try:
        out = int_thresholds(table, scale, bits, signed)
    except InvalidInputError as exc:  # a collapse is allowed, and must say why
        assert "input step" in str(exc) or "input range" in str(exc)
        return
    assert out["rule"] == "index = count(x_int >= T_i)"
    lo, hi = out["input"]["min"], out["input"]["max"]
    x_int = np.arange(lo, hi + 1, dtype=np.int64)
    T = np.asarray(out["thresholds"], dtype=np.int64)
    index = (x_int[:, None] >= T[None, :]).sum(axis=1)
    want = table.quantize(scale * x_int.astype(np.float64), return_index=True)
    np.testing.assert_array_equal(index, want)
    assert all(isinstance(v, int) for v in out["thresholds"])
    if out["out_scale"] is not None:
        np.testing.assert_allclose(out["out_scale"] * np.arange(table.n_levels)
                                   + out["out_bias"], table.levels, rtol=0, atol=1e-12)


def test_uniform_tables_carry_out_scale_and_bias():
    table = lm.solve(2, dist="halfwave-gaussian", uniform=True)
    out = int_thresholds(table, 0.05, 8)
    assert out["out_scale"] == pytest.approx(table.step) and out["out_bias"] == 0.0
    assert int_thresholds(lm.solve(2, dist="gaussian"), 0.05, 8, True)["out_scale"] is None


def test_collapsing_thresholds_name_the_input_resolution_needed(tmp_path, capsys):
    table = lm.solve(4, dist="gaussian")
    table.save(tmp_path / "g4.json")
    code = main(["export", str(tmp_path / "g4.json"), "--format", "int-thresholds",
                 "--input-scale", "0.5", "--input-bits", "8", "--signed"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    gap = float(np.diff(table.thresholds).min())
    assert "fall on the same integer" in err and f"{gap:.6g}" in err
    with pytest.raises(InvalidInputError, match="input range"):
        int_thresholds(table, 0.01, 4, signed=True)  # +-0.08: most thresholds outside


def test_cli_int_thresholds_file(tmp_path):
    lm.solve(2, dist="halfwave-gaussian", uniform=True).save(tmp_path / "a2.json")
    assert main(["export", str(tmp_path / "a2.json"), "--format", "int-thresholds",
                 "--input-scale", "0.0625", "--input-bits", "8",
                 "-o", str(tmp_path / "a2_int.json")]) == 0
    obj = json.loads((tmp_path / "a2_int.json").read_text())
    assert obj["thresholds"] == [1, 13, 22] and obj["out_bias"] == 0.0
    assert main(["export", str(tmp_path / "a2.json"), "--format", "int-thresholds"]) == 2
    assert main(["export", str(tmp_path / "a2.json"), "--format", "c-header",
                 "--input-bits", "8"]) == 2
