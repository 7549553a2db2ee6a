"""The peer codebooks of docs/codebooks.md, held against the optimum with lloydmax check
(free and pinned optimum, best scale), and the pin options of the CLI."""
from __future__ import annotations

import json
import re
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
    for name, book in {**BOOKS, **PEERS["rotation_codebooks"]}.items():
        # provenance: every source names the file and the commit it was read at
        assert re.search(r"commit [0-9a-f]{40}\b", book["source"]), name
        assert np.all(np.diff(book["levels"]) > 0) and len(book["levels"]) in (15, 16), name


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


ROTATION = PEERS["rotation_codebooks"]


def _sphere_mse_by_quad(levels, dim):
    """MSE of nearest-level quantization (midpoint cells) of one coordinate of a uniform
    unit vector in R^dim, by scipy.integrate.quad on scipy's beta density."""
    from scipy import integrate, stats

    a = (dim - 1) / 2
    pdf = stats.beta(a, a, loc=-1, scale=2).pdf
    levels = np.sort(np.asarray(levels, dtype=float))
    edges = np.concatenate([[-1.0], (levels[1:] + levels[:-1]) / 2, [1.0]])
    return sum(integrate.quad(lambda x, q=q: (x - q) ** 2 * pdf(x), lo, hi,
                              epsabs=0, epsrel=1e-12, limit=200)[0]
               for lo, hi, q in zip(edges[:-1], edges[1:], levels))


def test_turboquant_codebook_of_mlx_lm_pr1144():
    """The 4-bit codebook of mlx-lm's TurboQuantKVCache (PR 1144): the Gaussian
    Lloyd-Max table to 8e-4 (k-means on 1e7 samples), 1.3e-4 % above its MSE on
    N(0, 1); divided by sqrt(d), 0.44 % above the sphere-coordinate optimum at d = 64
    and 0.11 % at d = 128 (its MSE checked by quad on scipy's beta)."""
    levels = np.asarray(ROTATION["turboquant_mlx_lm_pr1144"]["levels"])
    assert np.abs(levels - lm.solve(4).levels).max() < 1e-3
    r = lm.check(levels=levels, dist="gaussian")
    assert 1.0e-4 < r.excess_percent < 1.5e-4
    for dim, excess in ((64, 0.438), (128, 0.110)):
        r = lm.check(levels=levels / np.sqrt(dim), dist="sphere-coordinate",
                     params={"dim": dim})
        assert r.excess_percent == pytest.approx(excess, abs=0.002)
        # the tabulated beta density's MSE is 8e-9 (d = 64) and 1.0e-8 (d = 128) above
        # quad's (and mpmath's, at 30 digits): the scipy path is certified to 1e-7
        assert r.mse == pytest.approx(_sphere_mse_by_quad(levels / np.sqrt(dim), dim),
                                      rel=5e-8)


def test_turboquant_codebook_of_mlx_lm_pr1440():
    """PR 1440's table, stated to be Lloyd-Max for d = 128: against the sphere-coordinate
    law at d = 128 it is 32.4 % above the optimum (outermost levels 0.2775 against the
    optimum's 0.2377)."""
    levels = np.asarray(ROTATION["turboquant_mlx_lm_pr1440"]["levels"])
    r = lm.check(levels=levels, dist="sphere-coordinate", params={"dim": 128})
    assert r.excess_percent == pytest.approx(32.39, abs=0.05)
    assert r.mse == pytest.approx(_sphere_mse_by_quad(levels, 128), rel=5e-8)
    assert r.optimal_levels[-1] == pytest.approx(0.2377, abs=1e-4)
