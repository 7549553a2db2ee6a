"""The catalogue of bad inputs (issue 12): every one a clear, typed error.

CLI cases run in-process (``lloydmax.cli.main``) and assert the exit status (2 for bad
input, 1 where documented), exactly one line on stderr and no traceback.  API cases
assert the exception type, a :class:`~lloydmax.LloydMaxError` subclass.  The cases that
need a real process (stdout closed, stdout on a full device, a closed pipe) run the
console script.  Grouped by the cause in the issue that they cover.
"""
from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from lloydmax.analysis import Histogram

import lloydmax as lm
from lloydmax.cli import main
from lloydmax.errors import (
    ConvergenceError,
    InvalidBitsError,
    InvalidDataError,
    InvalidInputError,
    InvalidTableError,
    LloydMaxError,
)

# ----------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A directory of good and bad input files; ``{d}`` in an argv is its path."""
    d = tmp_path_factory.mktemp("bad")
    table = lm.solve(bits=2)
    table.save(d / "good.json")
    table.save(d / "good.csv")
    table.save(d / "good.npz")
    rng = np.random.default_rng(0)
    np.savez(d / "act.npz", conv1=np.abs(rng.normal(size=(40, 3))),
             conv2=np.abs(rng.normal(size=(40, 3))))
    np.save(d / "act.npy", np.abs(rng.normal(size=200)))
    raw = bytearray((d / "act.npz").read_bytes())
    raw[200] ^= 0xFF  # inside conv1's data: the CRC no longer matches
    (d / "crc.npz").write_bytes(bytes(raw))
    (d / "trunc.npz").write_bytes(bytes(raw[:150]))
    (d / "empty.onnx").write_bytes(b"")
    (d / "zeros.onnx").write_bytes(b"\0" * 64)
    (d / "garbage.onnx").write_bytes(b"\xff" * 64)
    (d / "notes.txt").write_text("hello")
    (d / "afile").write_text("x")
    (d / "subdir").mkdir()
    (d / "dir.png").mkdir()
    hist = Histogram()
    hist.update(np.arange(10.0))
    hist.save(d / "hist.json")
    good = json.loads((d / "good.json").read_text())
    bad_json = {
        "empty.json": "",
        "bigint.json": json.dumps(dict(good, mse=0)).replace('"mse": 0', '"mse": ' + "1" * 5000),
        "huge.json": json.dumps(good).replace('"mse": ', '"mse": 1e400, "x": '),
        "deep.json": "[" * 100000 + "]" * 100000,
        "nan.json": json.dumps(good).replace('"mse": ', '"mse": NaN, "x": '),
        "list.json": "[5, 6, 7]",
        "number.json": "5",
        "object.json": '{"a": 1}',
        "binary.json": "\udcff",
        "decreasing.json": json.dumps(dict(good, levels=good["levels"][::-1])),
        "nolevels.json": json.dumps({k: v for k, v in good.items() if k != "levels"}),
        "strlevels.json": json.dumps(dict(good, levels=["a", "b", "c", "d"])),
        "set5.json": json.dumps({"schema": "lloydmax.tableset/1", "tables": 5}),
        "setempty.json": json.dumps({"schema": "lloydmax.tableset/1", "tables": []}),
        "bits99.json": json.dumps(dict(good, bits=99)),
    }
    for name, text in bad_json.items():
        (d / name).write_bytes(text.encode("utf-8", "surrogateescape"))
    (d / "hdeep.json").write_text("[" * 100000 + "]" * 100000)
    (d / "hbigint.json").write_text("1" * 5000)
    (d / "hlist.json").write_text("[5, 6, 7]")
    csv = (d / "good.csv").read_text().splitlines()
    bad_csv = {
        "noheader.csv": "\n".join(csv[1:]),
        "rows.csv": "\n".join(csv + ["0,9,1.0,"]),
        "nanrow.csv": "\n".join(csv[:2] + ["0,0,nan,0.1"] + csv[3:]),
        "fields.csv": "\n".join(csv[:2] + ["0,0"] + csv[3:]),
        "meta.csv": "\n".join([csv[0], "# lloydmax.table/1 [1,2]"] + csv[2:]),
        "huge.csv": "\n".join(csv[:2] + ["0,0,1e400,0.1"] + csv[3:]),
    }
    for name, text in bad_csv.items():
        (d / name).write_text(text + "\n")
    arrays = dict(np.load(d / "good.npz"))
    for name, meta in {"meta5.npz": '{"schema":"lloydmax.tableset/1","tables":5}',
                       "metalist.npz": "[5, 6, 7]", "metaobj.npz": '{"a": 1}',
                       "metanum.npz": "5", "metadeep.npz": "[" * 5000 + "]" * 5000,
                       "metabig.npz": "1" * 5000,
                       "metaitems.npz": '{"schema":"lloydmax.tableset/1","tables":[5]}'}.items():
        np.savez(d / name, **dict(arrays, meta=np.array(meta)))
    np.savez(d / "metafloat.npz", **dict(arrays, meta=np.array(5.0)))
    np.savez(d / "nolevels.npz", meta=arrays["meta"])
    np.savez(d / "intlevels.npz", **dict(arrays, levels_0=np.arange(4)))
    (d / "notzip.npz").write_bytes(b"PK\x03\x04 not really")
    # a report CSV for plot layers
    (d / "report.csv").write_text("layer,channel\nconv1,\n")
    return d


def run_cli(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def fill(argv, d):
    return [a.replace("{d}", str(d)) for a in argv]


# ----------------------------------------------------------------------- CLI catalogue

BAD_NUMBERS = ["nan", "inf", "-inf", "abc", "1e400"]
NUMERIC_OPTIONS = [
    (["check", "{d}/good.json", "--strict", "--tolerance"], ["-5"]),
    (["plot", "curves", "-o", "{d}/o.png", "--dpi"], ["100000", "0", "-1"]),
    (["analyze", "{d}/act.npz", "--bins"], ["1", "0", "-3", "99999999999"]),
    (["analyze", "{d}/act.npz", "--per-channel", "--axis"], ["99", "-99"]),
    (["solve", "--bits", "2", "--tol"], ["0", "-1", "2"]),
    (["solve", "--bits", "2", "--half-wave", "--sparsity"], ["0.2", "1", "-1"]),
    (["check", "--bits", "2", "--step"], ["0", "-0.5"]),
    (["plot", "curves", "-o", "{d}/o.png", "--table", "{d}/good.json", "--index"], ["-1"]),
    (["plot", "levels", "-o", "{d}/o.png", "--histogram", "{d}/hist.json", "--table",
      "{d}/good.json", "--channel"], ["-1"]),
]
NUMERIC_CASES = [(argv + [value], 2) for argv, extra in NUMERIC_OPTIONS
                 for value in BAD_NUMBERS + extra
                 if not (argv[-1] in ("--bins", "--axis", "--index", "--channel")
                         and value in ("inf", "-inf", "1e400"))]

BITS_CASES = [(["table", "--bits", bits], 2) for bits in
              ["1-1000000000", "0", "-1", "1-", "a-b", "9" * 5000, "1,,2", "17", "3-1",
               "1-99999999999999999999999", "2.5", ""]]
BITS_CASES += [(["solve", "--bits", bits], 2) for bits in ["0", "17", "x", "1e3", "-2"]]
BITS_CASES += [(["analyze", "{d}/act.npz", "--bits", "1-1000000000"], 2)]

PARAM_CASES = [(["solve", "--bits", "2", "--param", p] + extra, 2) for p, extra in [
    ("mean=1e17", []), ("mean=1e308", []), ("mean=-1e308", []),
    ("std=1e300", ["--format", "json"]), ("std=1e300", ["--format", "csv"]),
    ("std=nan", []), ("std=inf", []), ("std=-1", []), ("std=0", []), ("std=abc", []),
    ("mean=nan", []), ("=1", []), ("std", []),
]]
PARAM_CASES += [(["table", "--bits", "1-2", "--param", "mean=1e17"], 2),
                (["check", "{d}/good.json", "--dist", "gaussian", "--param", "std=nan"], 2)]

TABLE_FILES = ["empty.json", "bigint.json", "huge.json", "deep.json", "nan.json",
               "list.json", "number.json", "object.json", "binary.json", "decreasing.json",
               "nolevels.json", "strlevels.json", "set5.json", "setempty.json", "bits99.json",
               "noheader.csv", "rows.csv", "nanrow.csv", "fields.csv", "meta.csv", "huge.csv",
               "meta5.npz", "metalist.npz", "metaobj.npz", "metanum.npz", "metadeep.npz",
               "metabig.npz", "metaitems.npz", "metafloat.npz", "nolevels.npz",
               "intlevels.npz", "notzip.npz", "missing.json", "notes.txt", "subdir"]
LOADER_CASES = [(["check", "{d}/" + name], 2) for name in TABLE_FILES]
LOADER_CASES += [(["plot", "levels", "--table", "{d}/" + name, "-o", "{d}/o.png"], 2)
                 for name in ("bigint.json", "deep.json", "meta5.npz", "huge.csv")]
LOADER_CASES += [(["plot", "levels", "--histogram", "{d}/" + name, "--table", "{d}/good.json",
                   "-o", "{d}/o.png"], 2)
                 for name in ("hdeep.json", "hbigint.json", "hlist.json", "nan.json")]

ANALYZE_CASES = [
    (["analyze", "{d}/crc.npz"], 2),
    (["analyze", "{d}/trunc.npz"], 2),
    (["analyze", "{d}/notzip.npz"], 2),
    (["analyze", "{d}/empty.onnx", "--inputs", "{d}/act.npz"], 2),
    (["analyze", "{d}/zeros.onnx", "--inputs", "{d}/act.npz"], 2),
    (["analyze", "{d}/garbage.onnx", "--inputs", "{d}/act.npz"], 2),
    (["analyze", "{d}/missing.npz"], 2),
    (["analyze", "{d}/notes.txt"], 2),
    (["analyze", "{d}/act.npz", "--inputs", "{d}/act.npz"], 2),
    (["analyze", "{d}/act.npz", "--tables-out", "{d}/afile"], 2),
    (["analyze", "{d}/act.npz", "--tables-out", "{d}/no/such/dir"], 2),
]

OUTPUT_CASES = [  # cause 4 (own inputs) and 5 (devices, non-regular targets)
    (["analyze", "{d}/act.npz", "-o", "{d}/act.npz"], 2),
    (["analyze", "{d}/act.npy", "-o", "{d}/act.npy"], 2),
    (["analyze", "{d}/act.npz", "-o", "{d}/subdir/../act.npz"], 2),
    (["analyze", "{d}/act.npz", "-o", "/dev/null"], 2),
    (["analyze", "{d}/act.npz", "-o", "{d}/subdir"], 2),
    (["solve", "--bits", "2", "-o", "/dev/null"], 2),
    (["solve", "--bits", "2", "-o", "/dev/full"], 2),
    (["solve", "--bits", "2", "-o", "{d}/subdir"], 2),
    (["table", "--bits", "1-2", "-o", "/dev/null"], 2),
    (["table", "--bits", "1-2", "-o", "/dev/zero"], 2),
    (["plot", "curves", "-o", "{d}/dir.png"], 2),
    (["plot", "levels", "--table", "{d}/good.json", "-o", "{d}/good.json"], 2),
    (["plot", "layers", "--report", "{d}/report.csv", "-o", "{d}/report.csv"], 2),
    (["solve", "--bits", "2", "-o", "{d}/no/such/t.json"], 2),
    (["export", "{d}/good.json", "--format", "c-header", "--name", "g", "-o",
      "{d}/good.json"], 2),
    (["export", "{d}/good.json", "--format", "c-header", "--name", "g", "-o", "/dev/null"], 2),
]

USAGE_CASES = [
    (["solve"], 2), (["frobnicate"], 2), (["solve", "--bits", "2", "--bogus"], 2),
    (["solve", "--bits", "2", "--dist", "nosuch"], 2),
    (["solve", "--levels", "1"], 2), (["solve", "--levels", "70000"], 2),
    (["check"], 2), (["check", "--step", "0.5"], 2),
]

CLI_CASES = (NUMERIC_CASES + BITS_CASES + PARAM_CASES + LOADER_CASES + ANALYZE_CASES
             + OUTPUT_CASES + USAGE_CASES)


@pytest.mark.parametrize("argv, status", CLI_CASES, ids=[" ".join(a)[:60] for a, _ in CLI_CASES])
def test_cli_bad_input_one_line(capsys, files, argv, status):
    before = {p.name: p.stat().st_size for p in files.iterdir() if p.is_file()}
    code, _out, err = run_cli(capsys, fill(argv, files))
    assert code == status, err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err and err.startswith("lloydmax:"), err
    after = {p.name: p.stat().st_size for p in files.iterdir() if p.is_file()}
    assert {k: after.get(k) for k in before} == before  # no input lost or changed
    assert Path("/dev/null").is_char_device()


def test_the_tables_out_directory_is_created_and_written_at_once(capsys, files, tmp_path):
    out = tmp_path / "tables"
    code, _, err = run_cli(capsys, ["analyze", str(files / "act.npz"), "--bits", "2",
                                    "--tables-out", str(out) + "/"])
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["conv1_b2.json", "conv2_b2.json"]
    assert all(lm.load_table(p).n_levels == 4 for p in out.iterdir())


def test_the_tables_out_check_comes_before_any_work(capsys, files, tmp_path):
    report = tmp_path / "r.csv"
    code, _, err = run_cli(capsys, ["analyze", str(files / "act.npz"), "-o", str(report),
                                    "--tables-out", str(files / "afile")])
    assert code == 2 and "not a directory" in err
    assert not report.exists()


# ----------------------------------------------------------------------- real processes

SCRIPT = [sys.executable, "-c", "from lloydmax.cli import console; console()"]


def _shell(command: str):
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHON=sys.executable))


def _cmd(args: str) -> str:
    return f'"$PYTHON" -c "from lloydmax.cli import console; console()" {args}'


@pytest.mark.parametrize("redirect", [">&-", ">/dev/full"])
@pytest.mark.parametrize("args", ["solve --bits 2", "table --bits 1-3",
                                  "check --step 0.5 --bits 2 --half-wave"])
def test_closed_or_full_stdout_is_one_line_exit_2(redirect, args):
    done = _shell(f"{_cmd(args)} {redirect}")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_a_closed_pipe_ends_quietly():
    done = _shell(f"{_cmd('table --bits 1-16')} | head -1; exit ${{PIPESTATUS[0]}}")
    assert done.returncode == 0 and done.stderr == "" and done.stdout == "{\n"


def test_main_from_python_does_not_exit_the_process(capsys):
    assert main(["solve", "--bits", "1"]) == 0  # console() alone pulls os._exit
    assert "levels" in capsys.readouterr().out


# ----------------------------------------------------------------------- API catalogue

T = lm.solve(bits=2)


def _in_dir(load, name, d):
    return load(d / name)


def _call(f, arg, d):
    return f(arg)


def _torch_read(path):
    pytest.importorskip("torch")
    from lloydmax.torch import read_table

    return read_table(path)


TINY = [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 2.42e-107]

API_CASES = [
    # cause 13: the input-conversion layer (lloydmax._inputs)
    ("quantize None", lambda: T.quantize(None), InvalidDataError),
    ("quantize text", lambda: T.quantize("a"), InvalidDataError),
    ("quantize text list", lambda: T.quantize(["a", "b"]), InvalidDataError),
    ("quantize complex", lambda: T.quantize([1j]), InvalidDataError),
    ("quantize bool", lambda: T.quantize([True, False]), InvalidDataError),
    ("quantize object", lambda: T.quantize([1.0, None]), InvalidDataError),
    ("quantize ragged", lambda: T.quantize([[1.0], [1.0, 2.0]]), InvalidDataError),
    ("quantize 10**400", lambda: T.quantize([10 ** 400]), InvalidDataError),
    ("quantize dict", lambda: T.quantize({"a": 1}), InvalidDataError),
    ("quantize dates", lambda: T.quantize(np.array(["2020-01-01"], dtype="M8[D]")),
     InvalidDataError),
    ("quantize longdouble", lambda: T.quantize(np.array([1e4000], dtype=np.longdouble))
     if np.finfo(np.longdouble).max > 1e4000 else T.quantize([10 ** 400]), InvalidDataError),
    ("lm.quantize path", lambda: lm.quantize([1.0], "/no/such.json"), InvalidTableError),
    ("solve_data None", lambda: lm.solve_data(None, bits=1), InvalidDataError),
    ("solve_data text", lambda: lm.solve_data(["a", "b"], bits=1), InvalidDataError),
    ("solve_data bool", lambda: lm.solve_data([True, False], bits=1), InvalidDataError),
    ("solve_data complex", lambda: lm.solve_data([1j, 2j], bits=1), InvalidDataError),
    ("solve_data empty", lambda: lm.solve_data([], bits=1), InvalidDataError),
    ("solve_data nan", lambda: lm.solve_data([1.0, math.nan], bits=1), InvalidDataError),
    ("solve_data constant", lambda: lm.solve_data([1.0, 1.0], bits=1), InvalidDataError),
    ("solve_data weights None list", lambda: lm.solve_data([1.0, 2.0], bits=1,
                                                           weights=[1.0, None]),
     InvalidDataError),
    ("solve_data weights text", lambda: lm.solve_data([1.0, 2.0], bits=1, weights="ab"),
     InvalidDataError),
    ("solve_data weights inf", lambda: lm.solve_data([1.0, 2.0], bits=1,
                                                     weights=[1.0, math.inf]),
     InvalidDataError),
    ("solve_dp None", lambda: lm.solve_dp(None, n_levels=2), InvalidDataError),
    ("solve_dp text", lambda: lm.solve_dp(["a", "b"], n_levels=2), InvalidDataError),
    ("solve_dp bool", lambda: lm.solve_dp([True, False], n_levels=2), InvalidDataError),
    ("solve_dp 1.7e308 mse", lambda: lm.solve_dp([1.7e308, 1.6e308, -1.7e308],
                                                 n_levels=2).save("/nonexistent/x.json"),
     InvalidTableError),
    ("weights binary None", lambda: lm.weights.binary(None), InvalidDataError),
    ("weights ternary text", lambda: lm.weights.ternary(["a"]), InvalidDataError),
    ("weights binary bool", lambda: lm.weights.binary(np.array([True, False])),
     InvalidDataError),
    ("weights binary complex", lambda: lm.weights.binary(np.array([1j])), InvalidDataError),
    # cause 7: scales and offsets (solved in standard units; refused where the table
    # cannot be represented)
    ("solve mean=1e17", lambda: lm.solve(bits=2, params={"mean": 1e17}), InvalidInputError),
    ("solve mean=1e308", lambda: lm.solve(bits=2, params={"mean": 1e308}),
     InvalidInputError),
    ("solve std=1e300 save", lambda: lm.solve(bits=2, params={"std": 1e300}).to_json(),
     InvalidTableError),
    ("scaled nan", lambda: T.scaled(math.nan), InvalidInputError),
    ("scaled 0", lambda: T.scaled(0.0), InvalidInputError),
    ("scaled inf", lambda: T.scaled(math.inf), InvalidInputError),
    ("scaled to overflow", lambda: T.scaled(1e308).scaled(10.0), InvalidInputError),
    ("scaled to underflow", lambda: T.scaled(5e-324), InvalidInputError),
    ("table_from_levels nan", lambda: lm.table_from_levels([math.nan, 1.0]),
     InvalidInputError),
    ("table_from_step nan", lambda: lm.table_from_step(math.nan, bits=2), InvalidInputError),
    ("table_from_step text", lambda: lm.table_from_step("a", bits=2), InvalidInputError),
    # cause 1: loaders
    *[(f"load_table {name}", functools.partial(_in_dir, lm.load_table, name),
       InvalidTableError) for name in TABLE_FILES if name not in ("subdir", "notes.txt")],
    ("load_table directory", lambda d: lm.load_table(d / "subdir", format="json"),
     InvalidTableError),
    ("load_table no suffix", lambda d: lm.load_table(d / "subdir"), InvalidInputError),
    ("load_table .txt", lambda d: lm.load_table(d / "notes.txt"), InvalidInputError),
    ("load_table device", lambda d: lm.load_table("/dev/zero", format="json"),
     InvalidTableError),
    ("load_tables huge npz meta", lambda d: lm.load_tables(d / "metabig.npz"),
     InvalidTableError),
    *[(f"{what} path {bad!r}", functools.partial(_call, f, bad), InvalidInputError)
      for what, f in (("load_table", lm.load_table), ("save", T.save),
                      ("Histogram.load", Histogram.load), ("Histogram.save", Histogram().save))
      for bad in (None, 5, b"t.json", "t\0.json")],
    ("check bigint", lambda d: lm.check(lm.load_table(d / "bigint.json")), InvalidTableError),
    *[(f"torch read_table {name}", functools.partial(_in_dir, _torch_read, name),
       LloydMaxError) for name in ("bigint.json", "deep.json", "huge.json", "meta5.npz",
                                   "metalist.npz", "metaobj.npz", "nan.json")],
    *[(f"Histogram.load {name}", functools.partial(_in_dir, Histogram.load, name),
       InvalidInputError) for name in ("hdeep.json", "hbigint.json", "hlist.json",
                                       "nan.json", "empty.json", "good.npz", "metafloat.npz",
                                       "notzip.npz", "missing.json", "binary.json")],
]


@pytest.mark.parametrize("name, call, error", API_CASES, ids=[c[0] for c in API_CASES])
def test_api_bad_input_typed_error(files, name, call, error):
    takes_dir = isinstance(call, functools.partial) or call.__code__.co_argcount
    with pytest.raises(error) as info:
        call(files) if takes_dir else call()
    assert isinstance(info.value, LloydMaxError)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------- the edges of float64


def test_catalogue_size():
    assert len(CLI_CASES) + len(API_CASES) >= 150


@pytest.mark.parametrize("fit", [lm.solve_data, lm.solve_dp])
def test_tiny_value_next_to_zero_regression(fit):
    """Hypothesis found it (issue 12, cause 9): centring by the mean 0.375 made 2.42e-107
    equal to 0; standardising by a power of two only keeps the four values apart."""
    t = fit(TINY, n_levels=4)
    assert list(t.levels) == [0.0, 2.42e-107, 1.0, 2.0]
    assert t.converged and np.all(np.diff(t.thresholds) > 0) and t.mse == 0.0
    assert lm.table_from_dict(json.loads(t.to_json())).levels.tolist() == list(t.levels)


@pytest.mark.parametrize("fit", [lm.solve_data, lm.solve_dp])
def test_huge_weights_and_near_max_data_do_not_overflow(fit):
    t = fit([0.0, 1.0, 2.0, 3.0], n_levels=2, weights=[1e308] * 4)
    assert list(t.levels) == list(fit([0.0, 1.0, 2.0, 3.0], n_levels=2).levels)
    assert t.converged and "weight" not in t.params  # the sum of the weights overflows
    assert fit([0.0, 1.0, 2.0, 3.0], n_levels=2, weights=[1e307] * 4).params["weight"] == 4e307
    big = fit([1.7e308, 1.6e308, 1.5e308, -1.7e308], n_levels=2)
    assert big.levels[0] == -1.7e308 and np.isfinite(big.levels[1])
    assert np.all(np.diff(big.levels) > 0)


def test_histogram_std_at_the_edges_of_the_float_range():
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 6e299, 20000)
    h = Histogram()
    h.update(x)
    want = float(np.std(x / 1e299)) * 1e299
    assert math.isfinite(h.std) and abs(h.std - want) <= 1e-12 * want
    sub = np.arange(1, 1001) * 5e-324 * 7
    hs = Histogram()
    hs.update(sub)
    want = float(np.std(sub * 2.0 ** 1000)) / 2.0 ** 1000
    assert hs.std > 0 and abs(hs.std - want) <= 1e-9 * want


def test_report_on_data_above_1e154_and_on_subnormals():
    report = pytest.importorskip("lloydmax.analysis.report").report
    rng = np.random.default_rng(2)
    for scale in (1e200, 1e300, 5e-320):
        h = Histogram()
        h.update(np.abs(rng.normal(0.0, 1.0, 3000)) * scale)
        df = report({"conv1": h}, bits=(2,))
        std = float(df["std"].iloc[0])
        assert math.isfinite(std) and std > 0, (scale, std)


def test_hypothesis_is_derandomized_by_default():
    from hypothesis import settings

    if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci":
        assert settings().derandomize and settings().database is None


def test_open_files_are_refused_for_every_non_regular_target(tmp_path):
    from lloydmax._files import atomic_write

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target in ("/dev/null", str(fifo), str(tmp_path)):
        with pytest.raises(InvalidInputError, match="not a regular file"):
            atomic_write(target, b"x")
    assert Path("/dev/null").is_char_device() and fifo.is_fifo()
    src = tmp_path / "in.npz"
    src.write_bytes(b"data")
    link = tmp_path / "link.npz"
    link.symlink_to(src)
    with pytest.raises(InvalidInputError, match="input of this command"):
        atomic_write(link, b"report", inputs=[str(src)])
    assert src.read_bytes() == b"data"


def test_bits_errors_are_typed():
    from lloydmax.cli._common import parse_bits_list

    for text in ("1-1000000000", "9" * 5000, "0-3"):
        with pytest.raises(InvalidBitsError):
            parse_bits_list(text)


def test_convergence_error_is_exit_1_and_documented():
    assert issubclass(ConvergenceError, LloydMaxError)
    assert "1 the solver did not converge" in Path(__file__).parents[1].joinpath(
        "lloydmax", "cli", "__init__.py").read_text()


def test_zip_of_npz_is_still_read_after_the_checks(files):
    with zipfile.ZipFile(files / "good.npz") as zf:
        assert "meta.npy" in zf.namelist()
    assert lm.load_table(files / "good.npz").n_levels == 4
