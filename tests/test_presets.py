"""Trainer presets against published constants, scipy and plain numpy formulas."""
import numpy as np
import pytest
from scipy import integrate, stats

import lloydmax as lm
from lloydmax import weights
from lloydmax.errors import InvalidDataError, InvalidInputError
from lloydmax.presets import PRESETS, Preset, get_preset, list_presets

from . import naive

RNG = np.random.default_rng(7)


def _tol(value):
    text = repr(value)
    return 0.5 * 10.0 ** -(len(text.split(".")[1]) if "." in text else 0) + 1e-15


def test_registry():
    assert list_presets() == ["hwgq", "tsq", "syq", "dq"]
    for name in list_presets():
        p = get_preset(name)
        assert isinstance(p, Preset) and p.name == name and p.source and p.description
        assert p.activation_convention in ("hwgq", "round", "deadzone")
        assert get_preset(name.upper()) is p and PRESETS[name] is p
    with pytest.raises(InvalidInputError, match="valid: hwgq, tsq, syq, dq"):
        get_preset("dorefa")
    with pytest.raises(AttributeError):
        get_preset("hwgq").name = "x"


# --------------------------------------------------------------------------- HWGQ


@pytest.mark.parametrize("bits, step", [(1, 0.7979), (2, 0.5388), (3, 0.3217), (4, 0.1842)])
def test_hwgq_uniform_steps(bits, step):
    t = get_preset("hwgq").activation_table(bits)
    assert abs(t.step - step) <= _tol(step)
    assert t.convention == "hwgq" and t.kind == "uniform" and t.thresholds[0] == 0.0


# Max (1960) positive halves: HWGQ non-uniform with m positive levels = 2m-level Gaussian
MAX_HALVES = {2: [0.7979], 3: [0.4528, 1.510], 5: [0.2451, 0.7560, 1.344, 2.152],
              9: [0.1284, 0.3881, 0.6568, 0.9424, 1.256, 1.618, 2.069, 2.733]}


@pytest.mark.parametrize("n_levels", sorted(MAX_HALVES))
def test_hwgq_nonuniform_is_half_of_max_table(n_levels):
    t = get_preset("hwgq").activation_table(n_levels=n_levels, uniform=False)
    assert t.levels[0] == 0.0 and t.kind == "nonuniform"
    for got, want in zip(t.levels[1:], MAX_HALVES[n_levels]):
        assert abs(got - want) <= 2 * _tol(want)  # Max's table has last-digit slips


def test_hwgq_backward_constants_and_surrogates():
    h = get_preset("hwgq")
    t = h.activation_table(2)
    assert h.backward_clip(t) == pytest.approx(3 * 0.5388, abs=3 * _tol(0.5388))
    assert h.log_tail_tau(t) == pytest.approx(h.backward_clip(t) - 1.0)
    qm, tau = h.backward_clip(t), h.log_tail_tau(t)
    x = np.array([-2.0, -1e-9, 0.0, 0.3, qm, qm + 0.5, 6.0])
    van = h.backward_surrogate(x, t, "vanilla")
    np.testing.assert_array_equal(van.value, np.maximum(x, 0))
    np.testing.assert_array_equal(van.gradient, (x > 0).astype(float))
    cl = h.backward_surrogate(x, t, "clipped")
    np.testing.assert_array_equal(cl.value, np.clip(x, 0, qm))
    np.testing.assert_array_equal(cl.gradient, ((x > 0) & (x <= qm)).astype(float))
    lt = h.backward_surrogate(x, t, "log-tailed")
    above = x > qm
    np.testing.assert_allclose(lt.value[above], qm + np.log(x[above] - tau))
    np.testing.assert_allclose(lt.gradient[above], 1 / (x[above] - tau))
    # tau = q_m - 1 makes value and gradient continuous at q_m
    eps = 1e-7
    right = h.backward_surrogate([qm + eps], t, "log-tailed")
    assert right.value[0] == pytest.approx(qm, abs=2 * eps)
    assert right.gradient[0] == pytest.approx(1.0, abs=2 * eps)
    with pytest.raises(InvalidInputError, match="valid: vanilla, clipped, log-tailed"):
        h.backward_surrogate(x, t, "ste")


def test_hwgq_weights_are_binary():
    w = RNG.normal(size=(4, 3, 3, 3))
    cb = get_preset("hwgq").weight_codebook(w)
    np.testing.assert_allclose(cb.scales.reshape(-1), np.abs(w.reshape(4, -1)).mean(axis=1))
    np.testing.assert_array_equal(cb.codes, np.where(w >= 0, 1, -1))


# --------------------------------------------------------------------------- TSQ


def test_tsq_dead_zone():
    p = get_preset("tsq")
    t = p.activation_table()
    assert t.bits == 2 and t.convention == "deadzone" and t.zero_threshold == 0.32
    assert abs(t.step - 0.6488) <= _tol(0.6488)      # the rounding
    assert int(t.step * 1e4) / 1e4 == 0.6487          # TSQ's relu2b_layer.cpp truncation
    assert t.mse == pytest.approx(naive.halfwave().mse(t.levels, t.thresholds), rel=1e-9)
    s = p.activation_table(sparsity=0.8)
    assert s.zero_threshold == pytest.approx(stats.norm.ppf(0.8), rel=1e-12)
    two = p.activation_table(std=2.0)
    assert two.zero_threshold == pytest.approx(0.64) and two.step == pytest.approx(2 * t.step)
    nonu = p.activation_table(uniform=False)
    assert nonu.kind == "nonuniform" and nonu.mse < t.mse
    with pytest.raises(InvalidInputError, match="not both"):
        p.activation_table(zero_threshold=0.3, sparsity=0.8)
    with pytest.raises(InvalidInputError, match="std"):
        p.activation_table(std=0.0)


def test_tsq_weights_are_least_squares_ternary():
    w = RNG.normal(size=(3, 40))
    cb = get_preset("tsq").weight_codebook(w)
    for row, s, c in zip(w, cb.scales[:, 0], cb.codes):
        sup = c != 0
        assert s == pytest.approx(np.abs(row[sup]).mean(), rel=1e-13)  # LS for the support
    assert cb.mse <= weights.ternary(w, method="twn").mse


# --------------------------------------------------------------------------- SYQ


def _syq_mse_oracle(bits, std=1.0):
    """E[(Q(x) - x)^2] over ReLU(N(0, std^2)) for SYQ's clip-[0,1]-and-round rule, by quad."""
    n = 2 ** bits - 1
    phi = stats.norm(0, std).pdf
    edges = [(j + 0.5) / n for j in range(n)]
    pieces = [0.0] + edges + [np.inf]
    total = 0.0
    for j in range(n + 1):
        level = j / n
        total += integrate.quad(lambda x, level=level: (x - level) ** 2 * phi(x), pieces[j],
                                pieces[j + 1], epsabs=1e-14, epsrel=1e-12)[0]
    return total  # the zeros of the ReLU map to level 0 exactly: no error


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_syq_activation_table(bits):
    p = get_preset("syq")
    t = p.activation_table(bits)
    n = 2 ** bits - 1
    np.testing.assert_allclose(t.levels, np.arange(n + 1) / n, rtol=1e-15)
    np.testing.assert_allclose(t.thresholds, (np.arange(n) + 0.5) / n, rtol=1e-15)
    assert t.convention == "round" and t.kind == "uniform" and t.step == pytest.approx(1 / n)
    assert t.mse == pytest.approx(_syq_mse_oracle(bits), rel=1e-8)
    opt = p.optimal_activation_table(bits)
    assert opt.convention == "round" and opt.mse < t.mse
    assert p.clip_of(opt) == pytest.approx(opt.step * n)
    # SYQ's clip is absolute: a wider input pays more
    assert p.activation_table(bits, std=2.0).mse == pytest.approx(_syq_mse_oracle(bits, 2.0),
                                                                  rel=1e-8)


def test_syq_optimal_round_step_at_2_bits():
    opt = get_preset("syq").optimal_activation_table(2)
    assert abs(opt.step - 0.6508) <= _tol(0.6508)
    assert abs(opt.mse - 0.0234) <= _tol(0.0234)


def test_syq_weights_and_bad_clip():
    p = get_preset("syq")
    w = RNG.normal(size=(8, 4, 3, 3))
    cb = p.weight_codebook(w)
    assert cb.scales.shape == (1, 1, 3, 3) and cb.method == "syq-pixel-ternary"
    assert cb.threshold.item() == pytest.approx(0.05 * np.abs(w).max())
    with pytest.raises(InvalidInputError, match="clip"):
        p.activation_table(2, clip=-1.0)


# --------------------------------------------------------------------------- DQ


def test_dq_per_channel_tables():
    p = get_preset("dq")
    sigmas = [0.5, 1.0, 3.0]
    tables = p.activation_tables(sigmas, 2)
    unit = lm.solve(2, dist="halfwave-gaussian")
    for s, t in zip(sigmas, tables):
        np.testing.assert_allclose(t.levels, s * unit.levels, rtol=1e-14)
        assert t.mse == pytest.approx(s * s * unit.mse, rel=1e-13)
        assert t.mse == pytest.approx(naive.halfwave(s).mse(t.levels, t.thresholds), rel=1e-8)
    dz = p.activation_tables([2.0], 2, zero_threshold=0.3, uniform=True)[0]
    assert dz.convention == "deadzone" and dz.zero_threshold == pytest.approx(0.6)
    for bad in ([], [1.0, 0.0], [np.nan], [["a"]]):
        with pytest.raises(InvalidInputError):
            p.activation_tables(bad, 2)


def test_dq_initial_weight_levels():
    p = get_preset("dq")
    w = RNG.laplace(size=(16, 64))
    emp = p.initial_weight_levels(w, 2)
    x = np.sort(w.reshape(-1))
    # Lloyd fixed point on the data: each level is the mean of its cell (numpy)
    cells = np.searchsorted(emp.thresholds, x, side="left")
    for i, level in enumerate(emp.levels):
        assert level == pytest.approx(x[cells == i].mean(), rel=1e-10)
    assert emp.mse == pytest.approx(np.mean((x - emp.levels[cells]) ** 2), rel=1e-10)
    gau = p.initial_weight_levels(w, 2, method="gaussian")
    mu, sd = w.mean(), w.std()
    for got, want in zip(gau.levels[2:], [0.4528, 1.510]):  # Max's 4-level table
        assert abs((got - mu) / sd - want) <= 2 * _tol(want)
    with pytest.raises(InvalidInputError, match="empirical, gaussian"):
        p.initial_weight_levels(w, 2, method="kmeans")
    with pytest.raises(InvalidDataError):
        p.initial_weight_levels(np.ones(10), 2, method="gaussian")
    with pytest.raises(InvalidDataError):
        p.initial_weight_levels(np.ones(10), 2)
