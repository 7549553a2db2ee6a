"""The peer codebooks of docs/codebooks.md, held against the optimum with lloydmax check
(free and pinned optimum, best scale), and the pin options of the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import lloydmax as lm
from lloydmax.cli import main

PEERS = json.loads((Path(__file__).parent / "data" / "peer_codebooks.json").read_text())
BOOKS = PEERS["codebooks"]


def test_peer_codebooks_are_well_formed():
    for name, book in BOOKS.items():
        levels = np.asarray(book["levels"])
        assert book["source"] and book["setting"], name
        assert np.all(np.diff(levels) > 0) and levels[0] == -1.0, name
        assert levels.size == (15 if name == "fp4" else 16), name
        if "raw" in book:
            raw = np.asarray(book["raw"], dtype=float)
            np.testing.assert_array_equal(np.unique(raw / np.abs(raw).max()), levels)


@pytest.mark.parametrize("name,free,pinned", [("nf4", 14.45, 8.60), ("af4", 23.60, 17.29)])
def test_docs_table_row_block_64(name, free, pinned):
    prm = {"block": 64}
    r = lm.check(levels=BOOKS[name]["levels"], dist="absmax-gaussian", params=prm)
    rp = lm.check(levels=BOOKS[name]["levels"], dist="absmax-gaussian", params=prm,
                  pin_levels=[-1, 0, 1])
    assert r.excess_percent == pytest.approx(free, abs=0.05)
    assert rp.excess_percent == pytest.approx(pinned, abs=0.05)
    assert rp.pin_levels == (-1.0, 0.0, 1.0) and -1.0 in rp.optimal_levels.tolist()
    assert rp.to_dict()["pin_levels"] == [-1.0, 0.0, 1.0]


def test_best_scale_on_the_gaussian():
    r = lm.check(levels=BOOKS["nf4"]["levels"], dist="gaussian", best_scale=True)
    assert r.input_scale == pytest.approx(2.863, abs=2e-3)
    assert r.excess_percent == pytest.approx(4.19, abs=0.02)
    # the best scale is a minimum: 0.1 % either way costs more
    for f in (0.999, 1.001):
        t = lm.table_from_levels(np.asarray(BOOKS["nf4"]["levels"]) * r.input_scale * f,
                                 dist="gaussian")
        assert t.mse > r.mse


def test_cli_pin_levels(capsys):
    assert main(["solve", "--bits", "3", "--pin-levels=-1,0,1", "--format", "json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert {-1.0, 0.0, 1.0} <= set(table["levels"])
    assert main(["solve", "--bits", "1", "--pin-levels=-1,1"]) == 2
    assert "no free level" in capsys.readouterr().err
    assert main(["solve", "--bits", "2", "--dist", "uniform", "--pin-levels=3"]) == 2
    assert "outside the support" in capsys.readouterr().err
    assert main(["check", "--level-values=" + ",".join(map(str, BOOKS["nf4"]["levels"])),
                 "--dist", "absmax-gaussian", "--param", "block=64", "--pin-levels=-1,0,1",
                 "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["excess_percent"] == pytest.approx(8.60, abs=0.05)


@pytest.mark.parametrize("dim,excess", [(64, 0.434), (128, 0.108)])
def test_gaussian_table_after_a_random_rotation(dim, excess):
    levels = lm.solve(4).levels / np.sqrt(dim)
    r = lm.check(levels=levels, dist="sphere-coordinate", params={"dim": dim})
    assert r.excess_percent == pytest.approx(excess, abs=0.005)
