"""The command line: output, files, and one-line errors with exit status 2."""
import argparse
import json
import subprocess
import sys

import numpy as np
import pytest

import lloydmax as lm
from lloydmax.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_solve_text_shows_levels_and_figures(capsys):
    code, out, err = run(capsys, "solve", "--bits", "2", "--half-wave", "--uniform")
    assert code == 0 and err == ""
    t = lm.solve(bits=2, dist="halfwave-gaussian", uniform=True)
    assert f"{t.step:.12g}" in out and "convention hwgq" in out and "converged" in out
    assert f"{t.levels[2]:.12g}" in out and "MSE" in out and "SQNR" in out


def test_solve_json_is_one_table_object(capsys):
    code, out, _ = run(capsys, "solve", "--levels", "3", "--half-wave", "--format", "json")
    assert code == 0
    t = lm.table_from_dict(json.loads(out))
    ref = lm.solve(n_levels=3, dist="halfwave-gaussian")
    assert np.array_equal(t.levels, ref.levels)


def test_solve_csv_and_output_file(capsys, tmp_path):
    path = tmp_path / "t.csv"
    code, out, _ = run(capsys, "solve", "--bits", "3", "--dist", "laplace", "--format", "csv",
                       "-o", str(path))
    assert code == 0 and out == ""
    assert np.array_equal(lm.load_table(path).levels, lm.solve(bits=3, dist="laplace").levels)


def test_solve_options(capsys):
    code, out, _ = run(capsys, "solve", "--bits", "2", "--half-wave", "--uniform",
                       "--zero-threshold", "0.32", "--format", "json")
    assert code == 0 and abs(json.loads(out)["step"] - 0.64877) < 1e-5
    code, out, _ = run(capsys, "solve", "--bits", "2", "--half-wave", "--sparsity", "0.8",
                       "--format", "json")
    d = json.loads(out)
    assert code == 0 and d["convention"] == "deadzone"
    from statistics import NormalDist
    assert abs(d["zero_threshold"] - NormalDist().inv_cdf(0.8)) < 1e-12
    code, out, _ = run(capsys, "solve", "--bits", "2", "--dist", "gaussian", "--param", "std=2",
                       "--format", "json")
    assert code == 0 and json.loads(out)["distribution"]["params"]["std"] == 2.0


def test_table_sweep_formats(capsys, tmp_path):
    for fmt in ("json", "csv", "npz"):
        path = tmp_path / f"sweep.{fmt}"
        code, _, _ = run(capsys, "table", "--bits", "1-4", "--half-wave", "--uniform",
                         "-o", str(path))
        assert code == 0
        tables = lm.load_tables(path)
        assert [t.bits for t in tables] == [1, 2, 3, 4]
    code, out, _ = run(capsys, "table", "--bits", "1,3", "--format", "json")
    assert code == 0 and [t["bits"] for t in json.loads(out)["tables"]] == [1, 3]


@pytest.mark.parametrize("argv,needle", [
    (["solve", "--bits", "0"], "between 1 and 16"),
    (["solve", "--bits", "-1"], "between 1 and 16"),
    (["solve", "--bits", "2.5"], "whole number"),
    (["solve", "--bits", "x"], "whole number"),
    (["solve", "--bits", "17"], "between 1 and 16"),
    (["solve", "--levels", "1"], "at least 2"),
    (["solve", "--levels", "70000"], "65536"),
    (["solve"], "--bits"),
    (["solve", "--bits", "2", "--dist", "nosuch"], "valid names"),
    (["solve", "--bits", "2", "--zero-threshold", "0.3"], "half-wave"),
    (["solve", "--bits", "2", "--sparsity", "0.7"], "half-wave"),
    (["solve", "--bits", "2", "--half-wave", "--sparsity", "1.2"], "sparsity"),
    (["solve", "--bits", "2", "--half-wave", "--sparsity", "abc"], "number"),
    (["solve", "--bits", "2", "--half-wave", "--zero-threshold", "-1"], "positive"),
    (["solve", "--bits", "2", "--half-wave", "--zero-threshold", "hwgq", "--sparsity", "0.7"],
     "not both"),
    (["solve", "--bits", "2", "--param", "std"], "KEY=VALUE"),
    (["solve", "--bits", "2", "--param", "std=-1"], "positive"),
    (["solve", "--bits", "2", "--param", "df=3"], "unknown"),
    (["solve", "--bits", "2", "--dist", "cauchy"], "variance"),
    (["solve", "--bits", "2", "--half-wave", "--dist", "laplace"], "two different"),
    (["solve", "--bits", "2", "-o", "/nonexistent/dir/t.json"], "does not exist"),
    (["table", "--bits", "3-1"], "backwards"),
    (["table", "--bits", "1-20"], "between 1 and 16"),
    (["table", "--bits", "1-2", "--format", "npz"], "-o FILE"),
    (["table", "--bits", "1-2", "--format", "json", "-o", "x.csv"], "does not match"),
    (["solve", "--bits", "2", "--format", "text", "-o", "x.npz"], "does not match"),
    (["solve", "--bits", "2", "--format", "npz"], "-o FILE"),
    (["frobnicate"], "invalid choice"),
    (["solve", "--bits", "2", "--bogus"], "unrecognized"),
])
def test_bad_input_one_line_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2, err
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert out == ""


def test_convergence_failure_exits_1(capsys, monkeypatch):
    # a table that the solver cannot stand behind: here a certificate no table can pass
    # (a tolerance of 1e-30 is no longer a failure: Newton now reaches residual 0 exactly
    # at 3 to 12 bits).  The solver says why in one line, exit 1
    from lloydmax import _certificate

    monkeypatch.setattr(_certificate, "CENTROID_TOL", 0.0)
    code, out, err = run(capsys, "solve", "--bits", "3", "--dist", "logistic", "--no-cache")
    assert code == 1 and "certificate" in err and err.count("\n") == 1, err
    assert "Traceback" not in err and out == ""


def test_console_entry_point_version_and_help():
    out = subprocess.run([sys.executable, "-m", "lloydmax", "--version"], capture_output=True,
                         text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"lloydmax {lm.__version__}"
    out = subprocess.run([sys.executable, "-m", "lloydmax", "solve", "--help"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "examples:" in out.stdout and "--zero-threshold" in out.stdout
    out = subprocess.run([sys.executable, "-m", "lloydmax", "solve", "--bits", "2.5"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_solve_output_suffix_picks_the_format(capsys, tmp_path):
    path = tmp_path / "t.json"
    code, _, _ = run(capsys, "solve", "--bits", "2", "--half-wave", "-o", str(path))
    assert code == 0 and lm.load_table(path).n_levels == 4
    txt = tmp_path / "t.txt"
    code, _, _ = run(capsys, "solve", "--bits", "2", "-o", str(txt))
    assert code == 0 and txt.read_text().startswith("gaussian(")


def test_check_command(capsys, tmp_path):
    code, out, _ = run(capsys, "check", "--step", "0.104", "--bits", "5", "--half-wave",
                       "--format", "json")
    d = json.loads(out)
    assert code == 0 and d["excess_percent"] > 0.1
    opt = lm.solve(bits=5, dist="halfwave-gaussian", uniform=True)
    assert abs(d["optimal_mse"] - opt.mse) <= 1e-15
    path = tmp_path / "opt.json"
    opt.save(path)
    code, out, _ = run(capsys, "check", str(path), "--strict", "--tolerance", "1e-6",
                       "--format", "json")
    assert code == 0 and abs(json.loads(out)["excess_percent"]) < 1e-6
    # a circulating copy fails --strict with exit 1
    code, _, _ = run(capsys, "check", "--step", "0.019", "--bits", "8", "--half-wave", "--strict",
                     "--tolerance", "0.1")
    assert code == 1


def test_solve_preset(capsys):
    code, out, _ = run(capsys, "solve", "--preset", "hwgq", "--bits", "2", "--format", "json")
    assert code == 0 and abs(json.loads(out)["step"] - 0.5388) < 5e-5
    code, out, _ = run(capsys, "solve", "--preset", "tsq", "--bits", "2", "--format", "json")
    assert code == 0 and json.loads(out)["zero_threshold"] == 0.32


@pytest.mark.parametrize("argv,needle", [
    (["solve", "--preset", "nope", "--bits", "2"], "valid"),
    (["solve", "--preset", "hwgq", "--bits", "2", "--dist", "laplace"], "--preset"),
    (["solve", "--preset", "syq", "--bits", "2", "--uniform"], "fixed kind"),
    (["check"], "give a table"),
    (["check", "/nonexistent/t.json"], "not found"),
    (["check", "--step", "0.5"], "--bits"),
    (["check", "--level-values", "0,a,1", "--half-wave"], "numbers"),
    (["check", "--step", "0.5", "--bits", "2", "--level-values", "0,0.5,1,1.5"], "give a table"),
])
def test_check_and_preset_bad_input(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2 and needle in err and err.count("\n") == 1 and out == ""


def test_malformed_table_file_exit_2(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "lloydmax.table/1"}')
    code, _, err = run(capsys, "check", str(bad))
    assert code == 2 and "missing required" in err and err.count("\n") == 1


def test_solve_npz_from_suffix_and_table_default_json(capsys, tmp_path):
    path = tmp_path / "one.npz"
    code, _, _ = run(capsys, "solve", "--bits", "3", "--half-wave", "-o", str(path))
    assert code == 0 and lm.load_table(path).bits == 3
    txt = tmp_path / "sweep.txt"
    code, _, _ = run(capsys, "table", "--bits", "1-2", "-o", str(txt))
    assert code == 0 and len(lm.load_tables(txt, format="json")) == 2


def test_analyze_npz_report_tables_and_errors(capsys, tmp_path):
    import pandas as pd

    rng = np.random.default_rng(1)
    acts = {"relu1": np.maximum(rng.standard_normal((32, 4, 5, 5)), 0).astype(np.float32),
            "relu2": np.maximum(2 * rng.standard_normal((32, 6, 3, 3)) + 0.5, 0).astype(np.float32)}
    src = tmp_path / "acts.npz"
    np.savez(src, **acts)
    out_csv, tables = tmp_path / "r.csv", tmp_path / "tables"
    tables.mkdir()
    code, out, _ = run(capsys, "analyze", str(src), "--bits", "2", "-o", str(out_csv),
                       "--tables-out", str(tables))
    assert code == 0 and "relu1" in out and "sqnr_b2_dp" in out
    df = pd.read_csv(out_csv)
    assert list(df["layer"]) == ["relu1", "relu2"]
    for _, row in df.iterrows():  # statistics equal numpy on the raw activations
        x = acts[row["layer"]].astype(np.float64)
        assert row["count"] == x.size
        assert row["sparsity"] == pytest.approx(np.mean(x == 0), abs=1e-12)
        assert row["std"] == pytest.approx(x.std(), rel=1e-9)
    best = lm.load_table(tables / "relu1_b2.json")
    assert best.n_levels == 4 and best.distribution == "empirical"
    code, out, _ = run(capsys, "analyze", str(src), "--bits", "1", "--per-channel")
    # per channel: one summary line per layer on the terminal (issue 10), rows in -o CSV
    assert code == 0 and out.count("relu1") == 1 and out.count("relu2") == 1
    assert "the 10 channel rows" in out


@pytest.mark.parametrize("argv,needle", [
    (["analyze", "/nonexistent/a.npz"], "not found"),
    (["analyze", "ACTS", "--inputs", "x.npz"], ".onnx"),
    (["analyze", "ACTS", "--bits", "0"], "between 1 and 16"),
    (["analyze", "ACTS", "--tables-out", "/nonexistent/dir"], "does not exist"),
])
def test_analyze_bad_input(capsys, tmp_path, argv, needle):
    src = tmp_path / "acts.npz"
    np.savez(src, a=np.maximum(np.random.default_rng(0).standard_normal(500), 0))
    argv = [str(src) if a == "ACTS" else a for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 2 and needle in err and err.count("\n") == 1


def test_analyze_nan_warns_in_one_line_strict_fails_constant_warns(capsys, tmp_path):
    x = np.maximum(np.random.default_rng(0).standard_normal((50, 4, 3, 3)), 0)
    x[0, 0, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", relu=x)
    code, out, err = run(capsys, "analyze", str(tmp_path / "nan.npz"), "--bits", "2")
    assert code == 0 and err.startswith("lloydmax: warning:") and err.count("\n") == 1
    assert "count" in out
    code, out, err = run(capsys, "analyze", str(tmp_path / "nan.npz"), "--bits", "2", "--strict")
    assert code == 2 and "NaN" in err and err.count("\n") == 1
    np.savez(tmp_path / "const.npz", relu=np.full((10, 4), 2.0))
    code, out, err = run(capsys, "analyze", str(tmp_path / "const.npz"), "--bits", "2")
    assert code == 0 and "is constant" in err and err.count("\n") == 1
    np.savez(tmp_path / "empty.npz", relu=np.zeros((0, 4)))
    code, out, err = run(capsys, "analyze", str(tmp_path / "empty.npz"), "--bits", "2")
    assert code == 2 and "empty" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv", [
    ["check", "--levels", "0,0.453,1.51", "--half-wave"],
    ["check", "--levels", "0,a,1"],
    ["check", "--step", "0.5", "--bits", "2", "--levels", "0,0.5,1,1.5"],
    ["check", "--half-wave", "--levels"],
])
def test_check_old_levels_spelling_names_the_new_one(capsys, argv):
    """``check --levels Q0,Q1,...`` was renamed ``--level-values`` (0.2.0): one line, exit 2."""
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("lloydmax: error: check --levels was renamed")
    assert "use --level-values Q0,Q1,..." in err and err.count("\n") == 1


def test_check_level_values(capsys):
    code, out, err = run(capsys, "check", "--level-values", "0,0.453,1.51", "--half-wave",
                         "--format", "json")
    assert code == 0 and err == ""
    d = json.loads(out)
    assert d["levels"] == [0.0, 0.453, 1.51] and d["kind"] == "nonuniform"
    ref = lm.check(levels=[0.0, 0.453, 1.51], dist="halfwave-gaussian")
    assert d["excess_percent"] == ref.excess_percent


@pytest.mark.parametrize("argv", [
    ["solve", "--bits", "2", "--half-wave"],
    ["solve", "--bits", "2", "--half-wave", "--uniform", "--zero-threshold", "0.32"],
    ["solve", "--levels", "3", "--dist", "laplace"],
    ["solve", "--bits", "16"],
    ["solve", "--preset", "tsq", "--bits", "2", "--param", "std=1.5"],
])
def test_solve_text_is_the_tables_own_text(capsys, argv):
    code, out, _ = run(capsys, *argv)
    assert code == 0
    main([*argv, "--format", "json"])
    table = lm.table_from_dict(json.loads(capsys.readouterr().out))
    assert out == table.to_text()


def test_check_text_is_the_results_own_text(capsys):
    code, out, _ = run(capsys, "check", "--step", "0.104", "--bits", "5", "--half-wave")
    assert code == 0
    assert out == lm.check(step=0.104, bits=5, dist="halfwave-gaussian").to_text()


def test_presets_declare_their_command_line_options(capsys):
    """No hand-kept preset list in the CLI: every registered preset is a --preset choice,
    and an option a preset does not declare is refused in one line."""
    from lloydmax import presets

    for name in presets.list_presets():
        preset = presets.get_preset(name)
        code, out, err = run(capsys, "solve", "--preset", name, "--bits", "2", "--format", "json")
        assert code == 0 and err == ""
        want = preset.activation_table(2)
        assert json.loads(out)["levels"] == [float(v) for v in want.levels]
        declared = dict(preset.cli_options)
        for dest, flags in (("uniform", ["--nonuniform"]), ("zero_threshold",
                            ["--zero-threshold", "0.3"]), ("sparsity", ["--sparsity", "0.7"])):
            code, out, err = run(capsys, "solve", "--preset", name, "--bits", "2", *flags,
                                 "--format", "json")
            if dest in declared:
                assert code == 0, err
                value = False if dest == "uniform" else float(flags[1])
                want = preset.activation_table(2, **{declared[dest]: value})
                assert json.loads(out)["levels"] == [float(v) for v in want.levels]
            else:
                assert code == 2 and err.count("\n") == 1 and flags[0].lstrip("-")[:4] in err
    code, _, err = run(capsys, "solve", "--preset", "nosuch", "--bits", "2")
    assert code == 2 and f"valid: {', '.join(presets.list_presets())}" in err


def _subparser(parser, name):
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


COMMAND_PATHS = [[], ["solve"], ["table"], ["check"], ["analyze"], ["plot"], ["plot", "curves"],
                 ["plot", "levels"], ["plot", "mse"], ["plot", "layers"]]


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda p: " ".join(p) or "lloydmax")
def test_every_help_has_a_description_and_examples_that_parse(path):
    """``--help`` teaches: a description, and examples (before two spaces and their
    explanation) that are valid command lines, so a renamed option cannot linger there."""
    import re

    from lloydmax.cli import build_parser

    parser = p = build_parser()
    for name in path:
        p = _subparser(p, name)
    text = p.format_help()
    assert p.description and "\nexamples:\n" in text
    examples = [re.split(r"\s{2,}", line.strip())[0]
                for line in text.split("\nexamples:\n", 1)[1].splitlines()
                if line.startswith("  lloydmax ")]
    assert len(examples) >= 2
    for example in examples:
        argv = example.split()[1:]
        assert argv[:len(path)] == path or not path, example
        parser.parse_args(argv)  # raises UsageError (not SystemExit) when it does not parse


def test_help_and_solve_do_not_import_analysis_or_matplotlib():
    code = ("import sys, io, contextlib\n"
            "from lloydmax.cli import main\n"
            "with contextlib.redirect_stdout(io.TextIOWrapper(io.BytesIO())):\n"
            "    main(['solve', '--bits', '2', '--half-wave'])\n"
            "    try:\n"
            "        main(['--help'])\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'pandas')\n"
            "             or m.startswith('lloydmax.analysis')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_command_modules_import_only_common():
    """No import cycles in the CLI package, function-level imports included: a command
    module imports lloydmax.cli._common and nothing else of lloydmax.cli."""
    import ast
    from pathlib import Path

    import lloydmax.cli

    folder = Path(lloydmax.cli.__file__).parent
    modules = sorted(p for p in folder.glob("*.py") if p.name != "__init__.py")
    assert {p.stem for p in modules} == {"_common", "solve", "table", "check", "analyze", "plot",
                                        "export"}
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    names = [node.module] if node.module else [a.name for a in node.names]
                    allowed = set() if path.stem == "_common" else {"_common"}
                    assert set(names) <= allowed, (path.name, names)
                target = node.module or ""
                assert not target.startswith("lloydmax.cli"), (path.name, target)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("lloydmax.cli") for a in node.names), path.name
    assert not (folder.parent / "cli.py").exists() and not (folder.parent / "_plotcli.py").exists()
