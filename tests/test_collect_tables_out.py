"""lloydmax analyze --tables-out: the directory is checked before any collection, and the
tables are written atomically (temporary file, rename) with one data sync and one
directory fsync for all of them, not one fsync per file."""
from __future__ import annotations

import importlib
import os

import numpy as np
import pytest

pytest.importorskip("pandas")

from lloydmax.analysis.report import best_tables, report

import lloydmax as lm
from lloydmax._files import atomic_write, atomic_write_many
from lloydmax.cli import main
from lloydmax.errors import InvalidInputError

# the module, not the function lloydmax.analysis.collect that shadows it
collect_module = importlib.import_module("lloydmax.analysis.collect")


@pytest.fixture
def acts(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "acts.npz"
    np.savez(path, a=np.maximum(rng.normal(size=(400, 6)), 0),
             b=np.maximum(rng.normal(size=(300, 3)) * 2, 0))
    return path


def no_collection(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the activations were read before the output check")

    monkeypatch.setattr(collect_module, "collect", refuse)
    monkeypatch.setattr(collect_module, "planned_units", refuse)


@pytest.mark.parametrize("target, message", [
    ("missing/parent/tables", "does not exist"),
    ("afile", "not a directory"),
    ("afile/tables", "does not exist"),
    ("locked", "not writable"),
    ("locked/tables", "not writable"),
])
def test_a_bad_tables_out_fails_before_collection(tmp_path, acts, monkeypatch, capsys,
                                                  target, message):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "locked").mkdir()
    real_access = os.access
    locked = str(tmp_path / "locked")
    # permissions do not bind root: deny write access the way a read-only directory does
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if os.fspath(path)
                        .rstrip("/") == locked and mode & os.W_OK else real_access(path, mode))
    no_collection(monkeypatch)
    report_csv = tmp_path / "report.csv"
    code = main(["analyze", str(acts), "--per-channel", "-o", str(report_csv),
                 "--tables-out", str(tmp_path / target)])
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not report_csv.exists() and not (tmp_path / "locked" / "tables").exists()


def test_every_table_is_written_and_valid(tmp_path, acts, capsys):
    out = tmp_path / "tables"
    code = main(["analyze", str(acts), "--per-channel", "--bits", "1-2",
                 "--tables-out", str(out)])
    assert code == 0, capsys.readouterr().err
    df = report(collect_module.collect(acts, axis=1), bits=(1, 2), per_channel=True)
    expected = {f"{layer}_ch{ch}_b{b}.json": table for b in (1, 2)
                for (layer, ch), table in best_tables(df, b).items()}
    assert len(expected) == 18
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)  # no temporary left
    for name, table in expected.items():
        got = lm.load_table(out / name)
        np.testing.assert_array_equal(got.levels, table.levels)
        assert got.levels[0] == 0.0 and np.all(np.diff(got.levels) > 0)


def count_syncs(monkeypatch):
    calls = {"fsync": 0, "sync": 0}
    real_fsync = os.fsync

    def fsync(fd):
        calls["fsync"] += 1
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "sync", lambda: calls.__setitem__("sync", calls["sync"] + 1))
    return calls


def test_many_files_take_one_sync_and_one_directory_fsync(tmp_path, monkeypatch):
    calls = count_syncs(monkeypatch)
    items = [(tmp_path / f"t{k}.json", f"{k}\n".encode()) for k in range(50)]
    (tmp_path / "t3.json").write_text("old")
    atomic_write_many(items)
    assert calls == {"fsync": 1, "sync": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p, _ in items)
    assert all(p.read_bytes() == data for p, data in items)
    calls.update(fsync=0, sync=0)
    atomic_write(tmp_path / "one.json", b"1")  # one file: its own fsync, then the directory's
    assert calls == {"fsync": 2, "sync": 0}


def test_the_same_file_twice_is_refused_before_writing(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "real" / "x.json").write_text("keep")
    for other in ("link/x.json", "real/./x.json"):
        with pytest.raises(InvalidInputError, match="twice"):
            atomic_write_many([(tmp_path / "real" / "x.json", b"a"),
                               (tmp_path / "new.json", b"b"), (tmp_path / other, b"c")])
    with pytest.raises(InvalidInputError, match="twice"):  # a new file, by two names
        atomic_write_many([(tmp_path / "real" / "y.json", b"a"),
                           (tmp_path / "link" / "y.json", b"b")])
    assert (tmp_path / "real" / "x.json").read_text() == "keep"
    assert not (tmp_path / "new.json").exists() and not (tmp_path / "real" / "y.json").exists()
