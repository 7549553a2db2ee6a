"""The on-disk table cache of ``lloydmax solve`` (lloydmax/_cache.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lloydmax import _cache

# runs the command in-process, then says on stderr whether numba was imported
_PROBE = ("import sys; from lloydmax.cli import main; status = main(sys.argv[1:]); "
          "sys.stdout.flush(); print('NUMBA', 'numba' in sys.modules, file=sys.stderr); "
          "sys.exit(status)")
SOLVE = ["solve", "--bits", "2", "--half-wave"]


def run(args, cache_dir, **env):
    full = {**os.environ, "LLOYDMAX_CACHE_DIR": str(cache_dir), "LLOYDMAX_CACHE_DEBUG": "1"}
    full.pop("LLOYDMAX_CACHE", None)
    full.update(env)
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True,
                          env=full, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout, done.stderr.decode()


def entries(cache_dir):
    return sorted(p for p in cache_dir.iterdir() if p.suffix == ".json") \
        if cache_dir.exists() else []


def test_second_run_hits_without_numba(tmp_path):
    first, err1 = run(SOLVE, tmp_path)
    assert "cache miss" in err1 and "NUMBA True" in err1
    assert len(entries(tmp_path)) == 1
    second, err2 = run(SOLVE, tmp_path)
    assert "cache hit" in err2 and "NUMBA False" in err2
    assert second == first


@pytest.mark.parametrize("fmt", ["text", "json", "csv", "npz"])
def test_hit_is_byte_identical_to_a_fresh_solve(tmp_path, fmt):
    cache = tmp_path / "cache"
    out = tmp_path / f"table.{fmt}"
    args = ["solve", "--bits", "3", "--dist", "laplace", "--format", fmt, "-o", str(out)]
    run([*args, "--no-cache"], cache)
    fresh = out.read_bytes()
    assert entries(cache) == []
    run(args, cache)
    _, err = run(args, cache)
    assert "cache hit" in err
    assert out.read_bytes() == fresh


def test_uniform_deadzone_hit_matches(tmp_path):
    args = ["solve", "--bits", "2", "--half-wave", "--uniform", "--zero-threshold", "0.32"]
    fresh, _ = run([*args, "--no-cache"], tmp_path)
    run(args, tmp_path)
    hit, err = run(args, tmp_path)
    assert "cache hit" in err and hit == fresh


def test_corrupt_truncated_or_foreign_entry_is_ignored_and_rewritten(tmp_path):
    good, _ = run(SOLVE, tmp_path)
    (path,) = entries(tmp_path)
    text = path.read_text()
    other = json.loads(text)
    other["key"] = "0" * 64
    bad_table = json.loads(text)
    bad_table["table"]["levels"] = bad_table["table"]["levels"][:-1]
    for damaged in ("{not json", text[: len(text) // 2], json.dumps(other),
                    json.dumps(bad_table)):
        path.write_text(damaged)
        out, err = run(SOLVE, tmp_path)
        assert "cache miss" in err and out == good
        assert path.read_text() == text  # rewritten


def test_no_cache_and_env_switch_write_nothing(tmp_path):
    run([*SOLVE, "--no-cache"], tmp_path)
    run(SOLVE, tmp_path, LLOYDMAX_CACHE="0")
    assert entries(tmp_path) == []


def test_key_depends_on_version_and_options():
    request = {"command": "solve", "bits": "2", "dist": "halfwave-gaussian"}
    key = _cache.request_key(request)
    assert key == _cache.request_key(dict(request))
    assert key != _cache.request_key(request, version="0.0.0-other")
    assert key != _cache.request_key({**request, "uniform": True})
    assert key != _cache.request_key({**request, "tol": "1e-10"})


def test_different_options_give_different_entries(tmp_path):
    run(SOLVE, tmp_path)
    run([*SOLVE, "--uniform"], tmp_path)
    run([*SOLVE, "--zero-threshold", "round"], tmp_path)
    assert len(entries(tmp_path)) == 3


def test_cache_directory_that_cannot_be_made_still_solves(tmp_path):
    fresh, _ = run([*SOLVE, "--no-cache"], tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out, err = run(SOLVE, blocker / "sub")  # a path under a regular file
    assert out == fresh and "error" not in err


def test_concurrent_writers_of_one_key_both_succeed(tmp_path, monkeypatch):
    env = {**os.environ, "LLOYDMAX_CACHE_DIR": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-m", "lloydmax", *SOLVE],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
             for _ in range(4)]
    outs = [p.communicate() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len({out for out, _ in outs}) == 1
    assert len(entries(tmp_path)) == 1
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]
    monkeypatch.setenv("LLOYDMAX_CACHE_DIR", str(tmp_path))
    assert _cache.load(entries(tmp_path)[0].stem) is not None


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LLOYDMAX_CACHE_DIR", str(tmp_path / "x"))
    assert _cache.cache_dir() == tmp_path / "x"
    monkeypatch.delenv("LLOYDMAX_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _cache.cache_dir() == tmp_path / "lloydmax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert _cache.cache_dir() == tmp_path / ".cache" / "lloydmax"


def test_a_changed_solver_source_changes_the_key(tmp_path):
    """An editable install keeps its version number while its code changes: the key
    includes the solver sources' size and modification time, so old answers are not
    served for new code."""
    request = {"bits": 2, "dist": "halfwave-gaussian"}
    assert _cache.request_key(request) == _cache.request_key(request)
    assert _cache.request_key(request, code="a") != _cache.request_key(request, code="b")
    (tmp_path / "_kernels").mkdir()
    source = tmp_path / "_kernels" / "cells.py"
    source.write_text("x = 1\n")
    (tmp_path / "_solver.py").write_text("y = 2\n")
    stamp = _cache.code_stamp(tmp_path)
    assert _cache.code_stamp(tmp_path) == stamp
    st = source.stat()
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert _cache.code_stamp(tmp_path) != stamp
    (tmp_path / "notes.txt").write_text("not a source")
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _cache.code_stamp(tmp_path) == stamp
