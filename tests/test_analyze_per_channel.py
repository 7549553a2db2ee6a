"""lloydmax analyze --per-channel: one summary line per layer on stdout, every channel row
in the CSV."""
from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from lloydmax.cli import main  # noqa: E402


def test_per_channel_prints_a_layer_summary_and_writes_channel_rows(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "acts.npz"
    np.savez(path, a=np.maximum(rng.normal(size=(500, 6)), 0),
             b=np.maximum(rng.normal(size=(400, 3)) * 2, 0))
    csv = tmp_path / "report.csv"
    assert main(["analyze", str(path), "--bits", "2", "--per-channel", "-o", str(csv)]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["layer", "channels", "std_min"]
    assert [line.split()[:2] for line in lines[1:3]] == [["a", "6"], ["b", "3"]]
    assert "the 9 channel rows" in lines[3] and len(lines) == 4
    df = pd.read_csv(csv)
    assert len(df) == 9 and df["channel"].tolist() == [0, 1, 2, 3, 4, 5, 0, 1, 2]
    worst = df.groupby("layer")["sqnr_b2_dp"].min()
    assert f"{worst['a']:.4g}" in lines[1]
