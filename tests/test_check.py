"""``check``: hand-copied tables against the optimum, with published numbers and a quad oracle."""
import json
import math

import numpy as np
import pytest
from scipy import stats

import lloydmax as lm
from lloydmax._check import check, table_from_levels, table_from_step
from lloydmax.errors import ConventionError, InvalidInputError, InvalidTableError

from . import naive


def _tol(value):
    """Half a unit in the last printed place."""
    text = repr(value)
    return 0.5 * 10.0 ** -(len(text.split(".")[1]) if "." in text else 0) + 1e-15


CIRCULATING = {5: 0.104, 6: 0.058, 7: 0.033, 8: 0.019}  # hand-extended HWGQ step copies


@pytest.mark.parametrize("bits", sorted(CIRCULATING))
def test_circulating_hwgq_steps_are_not_optimal(bits):
    r = check(step=CIRCULATING[bits], bits=bits)
    assert r.kind == "uniform" and r.convention == "hwgq" and r.n_levels == 2 ** bits
    assert r.excess_percent > 0.1
    # the excess is what the definition says, from an independent MSE
    oracle = naive.halfwave().mse(r.table.levels, r.table.thresholds)
    assert r.mse == pytest.approx(oracle, rel=1e-9)
    assert r.excess_percent == pytest.approx(100 * (r.mse / r.optimal_mse - 1), rel=1e-12)
    assert r.optimal_mse < r.mse and r.nonuniform_mse < r.optimal_mse


@pytest.mark.parametrize("bits", range(1, 9))
def test_exact_table_has_no_excess(bits, tmp_path):
    exact = lm.solve(bits, dist="halfwave-gaussian", uniform=True)
    path = tmp_path / "t.json"
    exact.save(path)
    r = check(lm.load_table(path))
    assert abs(r.excess_percent) < 1e-6
    assert abs(check(step=exact.step, bits=bits).excess_percent) < 1e-6
    assert r.within(1e-6) and not check(step=1.01 * exact.step, bits=bits).within(1e-6)


@pytest.mark.parametrize("bits, want", [(1, 0.7979), (2, 0.5388), (3, 0.3217), (4, 0.1842)])
def test_hwgq_uniform_steps_reproduced(bits, want):
    r = check(step=want, bits=bits)
    assert abs(r.optimal_step - want) <= _tol(want)
    assert r.optimal.convention == "hwgq" and r.optimal.thresholds[0] == 0.0


def test_round_and_tsq_steps_reproduced():
    r = check(step=0.651, bits=2, convention="round")
    assert abs(r.optimal_step - 0.6508) <= _tol(0.6508)
    assert abs(r.optimal_mse - 0.0234) <= _tol(0.0234)
    assert r.table.thresholds[0] == pytest.approx(0.3255)  # midpoint, not 0
    t = check(step=0.6487, bits=2, zero_threshold=0.32)
    assert t.convention == "deadzone" and t.table.thresholds[0] == 0.32
    assert abs(t.optimal_step - 0.6488) <= _tol(0.6488)
    # TSQ's own 0.6487 is the optimum truncated, so its excess is tiny but positive
    assert 0 < t.excess_percent < 1e-4
    h = check(step=0.538, bits=2)
    assert abs(h.optimal_mse - 0.0432) <= _tol(0.0432)


@pytest.mark.parametrize("bits, want", [(1, 1.596), (2, 0.9957), (3, 0.5860), (4, 0.3352)])
def test_gaussian_weight_steps_reproduced(bits, want):
    r = check(step=want, bits=bits, dist="gaussian")
    assert abs(r.optimal_step - want) <= _tol(want)
    assert r.convention == "none"
    np.testing.assert_allclose(r.table.levels, (np.arange(2 ** bits) - (2 ** bits - 1) / 2) * want)
    oracle = naive.gaussian().mse(r.table.levels, r.table.thresholds)
    assert r.mse == pytest.approx(oracle, rel=1e-9)


def test_edmips_gaussian_4_bit_step_gives_something_away():
    r = check(step=0.336, bits=4, dist="gaussian")
    assert r.excess_percent > 0 and round(r.optimal_step, 4) == 0.3352


def test_levels_input_and_kind_detection():
    # HWGQ Caffe uniform example centers: detected as uniform with step 0.538
    u = check(levels=[0, 0.538, 1.076, 1.614])
    assert u.kind == "uniform" and u.table.step == pytest.approx(0.538)
    assert u.mse == pytest.approx(check(step=0.538, bits=2).mse, rel=1e-12)
    # HWGQ non-uniform example (m = 2): the positive half of Max's 4-level table
    n = check(levels=[0, 0.453, 1.51])
    assert n.kind == "nonuniform" and n.n_levels == 3
    for got, want in zip(n.optimal_levels[1:], [0.4528, 1.510]):
        assert abs(got - want) <= _tol(want)
    assert 0 < n.excess_percent < 1e-3
    assert n.centroid_violation > 0 and n.midpoint_violation == 0.0
    assert n.nonuniform_mse == n.optimal_mse
    forced = check(levels=[0, 0.538, 1.076, 1.614], uniform=False)
    assert forced.kind == "nonuniform" and forced.excess_percent > 10


def test_convention_changes_the_verdict():
    # the same levels are far from optimal once 0 is an ordinary (rounded) level
    hw = check(levels=[0, 0.453, 1.51])
    rd = check(levels=[0, 0.453, 1.51], convention="round")
    assert rd.excess_percent > 20 > hw.excess_percent
    assert rd.table.thresholds[0] == pytest.approx(0.2265)


def test_table_from_levels_thresholds_and_mse_oracle():
    lv = [0.0, 0.6, 1.3, 2.1]
    hw = table_from_levels(lv)
    np.testing.assert_allclose(hw.thresholds, [0.0, 0.95, 1.7])
    rd = table_from_levels(lv, convention="round")
    np.testing.assert_allclose(rd.thresholds, [0.3, 0.95, 1.7])
    dz = table_from_levels(lv, zero_threshold=0.25)
    np.testing.assert_allclose(dz.thresholds, [0.25, 0.95, 1.7])
    assert dz.convention == "deadzone" and dz.zero_threshold == 0.25
    for t in (hw, rd, dz):
        assert t.kind == "nonuniform" and t.iterations == 0
        assert t.mse == pytest.approx(naive.halfwave().mse(t.levels, t.thresholds), rel=1e-9)
    # std = 2: eps and MSE in input units
    s2 = table_from_levels(np.array(lv) * 2, zero_threshold=0.5, params={"std": 2.0})
    assert s2.mse == pytest.approx(4 * dz.mse, rel=1e-12)
    # sparsity sets eps = Phi^-1(p)
    sp = table_from_levels(lv, sparsity=0.6)
    assert sp.thresholds[0] == pytest.approx(stats.norm.ppf(0.6), rel=1e-12)
    # any distribution: plain midpoints
    lp = table_from_levels([-1.5, -0.4, 0.4, 1.5], dist="laplace")
    np.testing.assert_allclose(lp.thresholds, [-0.95, 0.0, 0.95])
    assert lp.convention == "none"
    # round trip through the table format
    again = lm.table_from_dict(json.loads(dz.to_json()))
    np.testing.assert_array_equal(again.thresholds, dz.thresholds)


def test_table_from_step_symmetric_and_uniform_distribution():
    t = table_from_step(0.25, 2, dist="uniform")
    np.testing.assert_allclose(t.levels, [0.125, 0.375, 0.625, 0.875])
    assert check(t).excess_percent == pytest.approx(0.0, abs=1e-9)
    g = table_from_step(1.0, 1, dist="gaussian", params={"mean": 3.0})
    np.testing.assert_allclose(g.levels, [2.5, 3.5])


def test_table_argument_uses_its_own_distribution_and_dead_zone():
    t = lm.solve(3, dist="halfwave-gaussian", uniform=True, zero_threshold=0.8,
                 params={"std": 2.0})
    assert t.levels[1] < 0.8  # a wide dead zone: eps lies above the first positive level
    r = check(t)
    assert r.convention == "deadzone" and r.params == {"std": 2.0}
    assert abs(r.excess_percent) < 1e-9
    assert r.optimal.zero_threshold == pytest.approx(0.8)
    # the same table judged as hwgq pins the first threshold at 0 instead
    other = check(t, convention="hwgq")
    assert other.table.thresholds[0] == 0.0 and other.excess_percent > 0
    # a different distribution for the same table
    wider = check(t, params={"std": 3.0})
    assert wider.params == {"std": 3.0} and wider.excess_percent > 0


def test_to_dict_and_text():
    r = check(step=0.104, bits=5)
    d = r.to_dict()
    for key in ("mse", "optimal_mse", "excess_percent", "optimal_step", "nonuniform_mse",
                "centroid_violation", "midpoint_violation", "optimal_levels"):
        assert key in d
    assert d["excess_percent"] == r.excess_percent and d["optimal_mse"] == r.optimal_mse
    json.dumps(d, allow_nan=False)
    text = r.to_text()
    assert "excess" in text and "0.104" in text and text.endswith("\n")
    assert "levels" in check(levels=[0, 0.453, 1.51]).to_text()


def test_bad_input():
    with pytest.raises(InvalidInputError, match="exactly one"):
        check()
    with pytest.raises(InvalidInputError, match="exactly one"):
        check(levels=[0, 1], step=1.0, bits=1)
    with pytest.raises(InvalidInputError, match="bit-width"):
        check(step=0.5)
    with pytest.raises(InvalidInputError, match="positive"):
        check(step=-0.5, bits=2)
    with pytest.raises(InvalidTableError, match="strictly increasing"):
        check(levels=[0, 1, 1])
    with pytest.raises(InvalidTableError, match="start at level 0"):
        check(levels=[0.1, 1.0])
    with pytest.raises(InvalidTableError, match="not below the next threshold"):
        check(levels=[0, 0.5, 1.0], zero_threshold=0.8)
    with pytest.raises(InvalidInputError, match="expected"):
        check(levels=[0, 0.5, 1.0], bits=2)
    with pytest.raises(InvalidInputError, match="not symmetric"):
        check(step=0.5, bits=2, dist="gamma", params={"a": 2.0})
    with pytest.raises(ConventionError):
        check(step=0.5, bits=2, dist="gaussian", convention="hwgq")
    with pytest.raises(ConventionError):
        check(step=0.5, bits=2, convention="floor")
    fitted = lm.solve_data(np.linspace(0, 1, 50), 1)
    with pytest.raises(InvalidInputError, match="fitted to data"):
        check(fitted)
    with pytest.raises(InvalidInputError, match="QuantizerTable"):
        check({"levels": [0, 1]})
    assert math.isfinite(check(fitted, dist="uniform").excess_percent)
