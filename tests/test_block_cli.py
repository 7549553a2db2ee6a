"""``lloydmax analyze WEIGHTS --block B``: weights normalised by the absmax of blocks of B
consecutive values (bitsandbytes' convention), then the exact DP optimum; against
``solve_dp(..., block=B)``, a numpy normalisation by hand and brute force."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

import lloydmax as lm
from lloydmax.cli import main


def _by_hand(x, block):
    """bitsandbytes' blockwise normalisation, written out: the flattened tensor in
    blocks of ``block`` values, a last short block divided by its own absmax."""
    flat = np.asarray(x, dtype=np.float64).ravel()
    out = []
    for lo in range(0, flat.size, block):
        chunk = flat[lo:lo + block]
        peak = np.abs(chunk).max()
        out.append(chunk / peak if peak > 0 else chunk)
    return np.concatenate(out)


def _brute_force(values, n_levels, pins=()):
    """Least MSE over every cut of the sorted distinct values into n_levels runs (runs
    may be empty) and every placement of the pins among the runs: a free run is
    reconstructed by its mean, a pinned run by its pin."""
    z, w = np.unique(values, return_counts=True)
    pins = sorted(pins)
    best = np.inf
    for cuts in itertools.combinations_with_replacement(range(z.size + 1), n_levels - 1):
        edges = (0, *cuts, z.size)
        runs = [(edges[i], edges[i + 1]) for i in range(n_levels)]
        for slots in itertools.combinations(range(n_levels), len(pins)):
            cost, ok = 0.0, True
            for r, (a, b) in enumerate(runs):
                zz, ww = z[a:b], w[a:b]
                if r in slots:
                    cost += float(np.sum(ww * (zz - pins[slots.index(r)]) ** 2))
                elif b == a:
                    ok = False
                    break
                else:
                    mean = np.sum(ww * zz) / np.sum(ww)
                    cost += float(np.sum(ww * (zz - mean) ** 2))
            if ok:
                best = min(best, cost)
    return best / w.sum()


def _cli_tables(tmp_path, capsys, x, *args):
    np.save(tmp_path / "w.npy", x)
    out = tmp_path / "t.json"
    assert main(["analyze", str(tmp_path / "w.npy"), *args, "-o", str(out)]) == 0
    text = capsys.readouterr().out
    data = json.loads(out.read_text())
    tables = data.get("tables", [data])
    return [lm.table_from_dict(t) for t in tables], text


def test_cli_equals_solve_dp_and_the_normalisation_by_hand(tmp_path, capsys):
    # 100 columns: blocks of 64 straddle the rows, and the last block is short (6400 % 64
    # == 0 here, so add a ragged tail by taking 6410 values)
    x = np.random.default_rng(7).standard_normal(6410).reshape(641, 10)
    tables, text = _cli_tables(tmp_path, capsys, x, "--block", "64", "--bits", "3-4")
    assert "6410 values in 101 blocks of 64" in text
    for t, bits in zip(tables, (3, 4)):
        api = lm.solve_dp(x, bits, block=64)
        hand = lm.solve_dp(_by_hand(x, 64), bits)
        np.testing.assert_array_equal(t.levels, api.levels)
        np.testing.assert_array_equal(t.levels, hand.levels)
        np.testing.assert_allclose(t.thresholds, hand.thresholds, rtol=0, atol=1e-15)
        assert t.mse == pytest.approx(hand.mse, rel=1e-12)
        # the MSE is that of the normalised values under the table, by numpy
        y = _by_hand(x, 64)
        q = np.asarray(t.levels)[np.searchsorted(t.thresholds, y, side="left")]
        assert t.mse == pytest.approx(np.mean((y - q) ** 2), rel=1e-9)
    pinned, _ = _cli_tables(tmp_path, capsys, x, "--block", "64", "--bits", "4",
                            "--pin-levels=-1,0,1")
    hand = lm.solve_dp(_by_hand(x, 64), 4, pin_levels=[-1, 0, 1])
    np.testing.assert_array_equal(pinned[0].levels, hand.levels)
    assert {-1.0, 0.0, 1.0} <= set(pinned[0].levels.tolist())


@pytest.mark.parametrize("n_levels,pins", [(3, ()), (4, ()), (4, (-1.0, 0.0, 1.0)),
                                           (5, (-1.0, 1.0))])
def test_cli_equals_brute_force_on_small_blocks(tmp_path, capsys, n_levels, pins):
    # blocks of 4 and a short last block of 2; extremes of both signs, so +-1 both occur
    x = np.array([0.3, -2.0, 0.9, 1.1, 0.2, 0.5, -0.1, 1.6, -3.0, 0.6, 2.2, -0.7, 0.05, -0.4])
    args = ["--block", "4", "--bits", str(n_levels.bit_length() - 1)]
    if n_levels & (n_levels - 1):  # not a power of two: solve_dp's n_levels via the API
        t = lm.solve_dp(x, n_levels=n_levels, block=4, pin_levels=list(pins) or None)
    else:
        if pins:
            args.append("--pin-levels=" + ",".join(map(str, pins)))
        (t,), _ = _cli_tables(tmp_path, capsys, x, *args)
    y = _by_hand(x, 4)
    assert np.count_nonzero(np.abs(y) == 1.0) == 4
    assert t.mse == pytest.approx(_brute_force(y, n_levels, pins), rel=1e-12, abs=1e-15)
    for p in pins:
        assert p in t.levels.tolist()


def test_cli_npz_gives_a_table_per_array(tmp_path, capsys):
    rng = np.random.default_rng(3)
    arrays = {"fc1": rng.standard_normal((32, 16)), "fc2": rng.laplace(size=(8, 40))}
    np.savez(tmp_path / "w.npz", **arrays)
    assert main(["analyze", str(tmp_path / "w.npz"), "--block", "32", "--bits", "2",
                 "-o", str(tmp_path / "t.json")]) == 0
    text = capsys.readouterr().out
    assert "w.npz:fc1: 512 values in 16 blocks of 32" in text
    assert "w.npz:fc2: 320 values in 10 blocks of 32" in text
    tables = [lm.table_from_dict(t)
              for t in json.loads((tmp_path / "t.json").read_text())["tables"]]
    for t, arr in zip(tables, arrays.values()):
        np.testing.assert_array_equal(t.levels, lm.solve_dp(_by_hand(arr, 32), 2).levels)


@pytest.mark.parametrize("args,message", [
    (["--block", "0"], "--block: must be between 2"),
    (["--block", "-4"], "--block: must be between 2"),
    (["--block", "1"], "--block: must be between 2"),
    (["--block", "2.5"], "--block: needs a whole number"),
    (["--block", "sixty"], "--block: needs a whole number"),
    (["--block", "101"], "--block 101 is larger than w.npy, which holds 100 values"),
    (["--pin-levels=-1,0,1"], "--pin-levels goes with --block"),
    (["--block", "10", "--per-channel"], "drop --per-channel"),
    (["--block", "10", "--convention", "hwgq"], "drop --convention"),
    (["--block", "10", "--bits", "1", "--pin-levels=-1,0,1"], "no free level"),
])
def test_bad_block_options_are_one_line_errors(tmp_path, capsys, args, message):
    np.save(tmp_path / "w.npy", np.random.default_rng(0).standard_normal(100))
    assert main(["analyze", str(tmp_path / "w.npy"), *args]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert captured.out == "" and "\n" not in err and "Traceback" not in err
    assert err.startswith("lloydmax: error:") and message in err, err


def test_bad_weight_files_are_one_line_errors(tmp_path, capsys):
    np.save(tmp_path / "nan.npy", np.array([1.0, np.nan, 2.0, 3.0]))
    np.save(tmp_path / "text.npy", np.array(["a", "b", "c"]))
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    for name, message in (("nan.npy", "finite"), ("text.npy", "not numbers"),
                          ("junk.npy", "not a readable .npy/.npz array file")):
        assert main(["analyze", str(tmp_path / name), "--block", "2"]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and message in err, err
