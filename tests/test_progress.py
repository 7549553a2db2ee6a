"""One progress bar over a whole analyze job: collection and report, with rate and ETA,
the final state drawn once."""
from __future__ import annotations

import io
import re

import numpy as np
import pytest

pytest.importorskip("pandas")

from lloydmax.analysis._progress import Progress, phase
from lloydmax.analysis.collect import collect, planned_units
from lloydmax.analysis.report import report

from lloydmax.cli import main

FRAME = re.compile(r"(\d+)/(\d+) +([\d.]+)% (\S+)/s ETA (\d\d:\d\d|--:--)")


def frames(text: str) -> list[tuple[int, int]]:
    """(done, total) of every drawn frame, checking each shows rate and ETA."""
    out = []
    for frame in filter(None, text.replace("\n", "").split("\r")):
        m = FRAME.search(frame)
        assert m, frame
        out.append((int(m.group(1)), int(m.group(2))))
    return out


@pytest.fixture
def acts(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "acts.npz"
    np.savez(path, a=np.maximum(rng.normal(size=(200, 4)), 0),
             b=np.maximum(rng.normal(size=(100, 3)), 0), c=np.abs(rng.normal(size=(50, 2))))
    return path


def test_final_state_is_drawn_once_with_rate_and_eta():
    stream = io.StringIO()
    with Progress(4, "x", enabled=True, stream=stream) as bar:
        for _ in range(4):
            bar.advance()
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert text.count("4/4") == 1 and "100.0%" in text  # advance drew it; close did not
    assert frames(text)[-1] == (4, 4)


def test_off_by_default_and_when_not_a_terminal(acts, capsys):
    report(collect(acts, progress=False), bits=2)  # report's default: no bar
    quiet = io.StringIO()  # auto mode on a stream that is not a TTY
    with Progress(3, "x", stream=quiet) as bar:
        bar.advance(3)
    assert capsys.readouterr().err == "" and quiet.getvalue() == ""


@pytest.mark.parametrize("per_channel", [False, True])
def test_one_bar_over_collection_and_report(acts, per_channel):
    axis = 1 if per_channel else None
    total = planned_units(acts, axis, per_channel)
    assert total == 3 + (4 + 3 + 2 if per_channel else 3)
    stream = io.StringIO()
    with Progress(total, "analyze", enabled=True, stream=stream) as bar:
        hists = collect(acts, axis=axis, n_bins=64, progress=bar)
        assert bar.done == 3  # one unit per array, the bar still open
        df = report(hists, bits=2, per_channel=per_channel, progress=bar)
        assert bar.done == total == 3 + len(df)  # the report's rows counted too
    text = stream.getvalue()
    assert text.count("\n") == 1  # one bar, not one per array
    seen = frames(text)
    assert {t for _, t in seen} == {total}
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == total and done.count(total) == 1


def test_an_open_bar_grows_by_each_phase(acts):
    stream = io.StringIO()
    with Progress(None, "job", enabled=True, stream=stream) as bar:
        hists = collect({"x": np.ones((5, 2)), "y": np.arange(7.0)}, progress=bar)
        assert (bar.done, bar.total) == (2, 2)
        report(hists, bits=1, progress=bar)
        assert (bar.done, bar.total) == (4, 4)
        with phase(bar, 3, "batches") as view:  # a view: closing it keeps the bar open
            view.advance(3)
        assert (bar.done, bar.total, bar.enabled) == (7, 7, True)
    assert frames(stream.getvalue())[-1] == (7, 7)


@pytest.mark.parametrize("extra, total", [([], 6), (["--per-channel"], 12)])
def test_cli_prints_one_final_bar_line(acts, capsys, extra, total):
    assert main(["analyze", str(acts), "--bits", "2", "--progress", *extra]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("layer")
    err = captured.err
    assert err.count("\n") == 1 and err.endswith("\n")
    last = err.rstrip("\n").split("\r")[-1]
    assert last.startswith("analyze [") and f" {total}/{total} 100.0% " in last
    assert "/s ETA " in last and err.count(f"{total}/{total}") == 1
    done = [d for d, _ in frames(err)]
    assert done == sorted(done)
    assert main(["analyze", str(acts), "--bits", "2"]) == 0  # stderr not a TTY: no bar
    assert capsys.readouterr().err == ""
    assert main(["analyze", str(acts), "--bits", "2", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
