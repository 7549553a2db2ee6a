"""The exact weight modes of lloydmax.torch (optimal ternary, uniform b-bit with the exact
optimal step) against naive oracles: enumeration of every ternary code vector, brute force
over every threshold, a per-segment search written with plain Python floats and
scipy.optimize; and their use by QuantConv2d / QuantLinear / convert."""
from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

torch = pytest.importorskip("torch")

from scipy import optimize  # noqa: E402

import lloydmax.torch as lt  # noqa: E402
from lloydmax import weights  # noqa: E402
from lloydmax.errors import InvalidInputError  # noqa: E402

# ---------------------------------------------------------------------- oracles


def ternary_by_enumeration(row) -> float:
    """min over every code vector t in {-1, 0, 1}^n and every alpha of ||w - alpha t||^2
    (for fixed t the best alpha is w.t / t.t)."""
    w = [float(v) for v in row]
    best = sum(v * v for v in w)
    for t in itertools.product((-1, 0, 1), repeat=len(w)):
        tt = sum(c * c for c in t)
        if tt:
            wt = sum(a * c for a, c in zip(w, t))
            best = min(best, sum(v * v for v in w) - wt * wt / tt)
    return best


def ternary_by_thresholds(row) -> float:
    """min over every threshold t in {0} U {|w_i|} of the error with support |w| > t and
    the least-squares scale."""
    a = np.abs(np.asarray(row, dtype=np.float64))
    best = float(np.sum(a * a))
    for t in [0.0, *a.tolist()]:
        s = a > t
        if s.any():
            alpha = a[s].mean()
            best = min(best, float(np.sum((a - alpha * s) ** 2)))
    return best


def nearest_level(w: float, step: float, n: int) -> float:
    """The mid-rise level nearest to w (a tie goes to the lower level), by scanning."""
    levels = [(j - (n - 1) / 2) * step for j in range(n)]
    dist = [abs(w - q) for q in levels]
    best = min(dist)
    return next(q for q, d in zip(levels, dist) if d == best)


def uniform_error(row, step: float, bits: int) -> float:
    n = 2 ** bits
    return sum((float(w) - nearest_level(float(w), step, n)) ** 2 for w in row)


def uniform_by_segments(row, bits: int) -> float:
    """Plain-Python exact search: inside each interval between consecutive breakpoints
    |w| / k the codes are fixed (read off by quantizing at the interval's midpoint); the
    least-squares step for those codes, clipped to the interval, is evaluated by
    quantizing again."""
    n = 2 ** bits
    mags = [abs(float(w)) for w in row]
    points = sorted({a / k for a in mags for k in range(1, n // 2)} | {0.0})
    top = 4.0 * max(mags) + 1.0
    edges = [*points, top]
    best = uniform_error(row, 2.0 * sum(mags) / len(mags), bits)  # the open top segment
    for lo, hi in zip(edges[:-1], edges[1:]):
        mid = 0.5 * (lo + hi)
        codes = [nearest_level(float(w), mid, n) / mid for w in row]
        denom = sum(c * c for c in codes)
        step = sum(float(w) * c for w, c in zip(row, codes)) / denom
        step = min(max(step, lo), hi)
        if step > 0:
            best = min(best, uniform_error(row, step, bits))
    return best


def uniform_by_scipy(row, bits: int) -> float:
    """A grid over the step, then scipy's bounded scalar search around the best points."""
    top = 3.0 * float(np.max(np.abs(row))) + 1e-12
    grid = np.linspace(top / 4000, top, 4000)
    errs = np.array([uniform_error(row, s, bits) for s in grid])
    best = float(errs.min())
    for i in np.argsort(errs)[:5]:
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
        res = optimize.minimize_scalar(lambda s: uniform_error(row, s, bits),
                                       bounds=(lo, hi), method="bounded",
                                       options={"xatol": 1e-12})
        best = min(best, float(res.fun))
    return best


def row_errors(w: torch.Tensor, q: torch.Tensor) -> np.ndarray:
    return ((w.double() - q.double()) ** 2).reshape(w.shape[0], -1).sum(1).numpy()


# ---------------------------------------------------------------------- ternary


@settings(deadline=None, max_examples=60)
@given(hnp.arrays(np.float64, (3, 6), elements=st.one_of(
    st.integers(-3, 3).map(float), st.floats(-4, 4, allow_nan=False, width=32))))
def test_optimal_ternary_equals_enumeration_of_every_code_vector(w):
    q = lt.ternary_weight(torch.from_numpy(w), "optimal")
    got = row_errors(torch.from_numpy(w), q)
    for r in range(3):
        assert got[r] == pytest.approx(ternary_by_enumeration(w[r]), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_optimal_ternary_is_the_best_threshold_per_channel(seed):
    rng = np.random.default_rng(seed)
    w = torch.from_numpy(rng.laplace(size=(6, 4, 3, 3)).astype(np.float32))
    w[0] = 0.0                     # a pruned filter
    w[1, :2] = w[1, 2:4].clone()   # ties
    q = lt.ternary_weight(w, "optimal")
    got = row_errors(w, q)
    for r in range(6):
        assert got[r] == pytest.approx(ternary_by_thresholds(w[r].double().numpy().ravel()),
                                       rel=1e-6, abs=1e-12)
    assert torch.equal(q[0], torch.zeros_like(q[0]))
    # per channel: one magnitude per row, and it beats TWN's threshold on every row
    for r in range(1, 6):
        assert q[r].abs().unique().numel() <= 2
    twn = row_errors(w, lt.ternary_weight(w, "twn"))
    assert np.all(got <= twn + 1e-9)
    # the same codebook as the numpy reference (float64)
    w64 = w.double()
    ref = weights.ternary(w64.numpy(), method="optimal").dequantize()
    assert np.array_equal(lt.ternary_weight(w64, "optimal").numpy(), ref)


def test_optimal_ternary_per_syq_subgroup_and_layer():
    rng = np.random.default_rng(7)
    w = torch.from_numpy(rng.normal(size=(5, 3, 2, 2)))
    q = lt.ternary_weight(w, "optimal", group="pixel")
    for i, j in itertools.product(range(2), range(2)):
        cell = w[:, :, i, j].numpy().ravel()
        err = float(((w[:, :, i, j] - q[:, :, i, j]) ** 2).sum())
        assert err == pytest.approx(ternary_by_thresholds(cell), rel=1e-12)
    layer = lt.ternary_weight(w, "optimal", per_channel=False)
    err = float(((w - layer) ** 2).sum())
    assert err == pytest.approx(ternary_by_thresholds(w.numpy().ravel()), rel=1e-12)
    assert torch.equal(layer, lt.ternary_weight(w, "optimal", group="layer"))
    lin = torch.from_numpy(rng.normal(size=(4, 6)))  # a Linear: SYQ's one group per layer
    assert torch.equal(lt.ternary_weight(lin, "optimal", group="pixel"),
                       lt.ternary_weight(lin, "optimal", group="layer"))


def test_optimal_ternary_straight_through():
    w = torch.randn(4, 10, requires_grad=True)
    g = torch.randn(4, 10)
    lt.ternary_weight(w, "optimal").backward(g)
    assert torch.equal(w.grad, g)


# ---------------------------------------------------------------------- uniform


@pytest.mark.parametrize("bits", [1, 2, 3])
@pytest.mark.parametrize("seed", range(3))
def test_uniform_step_equals_the_segment_search_and_scipy(bits, seed):
    rng = np.random.default_rng(10 * bits + seed)
    w = torch.from_numpy(np.concatenate([rng.laplace(size=(3, 9)),
                                         np.round(rng.normal(size=(1, 9)), 1)]))
    q = lt.uniform_weight(w, bits)
    got = row_errors(w, q)
    step = lt.optimal_uniform_step(w, bits).numpy().ravel()
    for r in range(4):
        row = w[r].numpy()
        naive = uniform_by_segments(row, bits)
        assert got[r] == pytest.approx(naive, rel=1e-9, abs=1e-12)
        assert got[r] <= uniform_by_scipy(row, bits) * (1 + 1e-9) + 1e-12
        assert uniform_error(row, float(step[r]), bits) == pytest.approx(got[r], rel=1e-9)
        # every output is a level of the channel's codebook
        levels = {round((j - (2 ** bits - 1) / 2) * step[r], 9) for j in range(2 ** bits)}
        assert {round(v, 9) for v in q[r].tolist()} <= levels


@settings(deadline=None, max_examples=40)
@given(hnp.arrays(np.float64, (2, 12), elements=st.floats(-10, 10, allow_nan=False,
                                                         width=32)),
       st.integers(1, 4))
def test_uniform_never_worse_than_the_gaussian_step(w, bits):
    """The exact step beats (or equals) lloydmax.weights.uniform's sigma * Delta*_b."""
    got = row_errors(torch.from_numpy(w), lt.uniform_weight(torch.from_numpy(w), bits))
    ref = weights.uniform(w, bits)
    gauss = ((w - ref.dequantize()) ** 2).sum(axis=1)
    assert np.all(got <= gauss * (1 + 1e-12) + 1e-12)


def test_uniform_edges_groups_and_gradient():
    # 1 bit is XNOR's binary weights
    w = torch.randn(6, 3, 3, 3, dtype=torch.float64)
    assert torch.allclose(lt.uniform_weight(w, 1), lt.binary_weight(w), rtol=1e-15)
    # a value on a threshold goes to the lower level; an all-zero channel stays 0
    w2 = torch.tensor([[0.0, 1.0, -1.0, 2.0, -2.0, 3.0], [0.0] * 6], dtype=torch.float64)
    q = lt.uniform_weight(w2, 2)
    step = float(lt.optimal_uniform_step(w2, 2)[0, 0])
    for v, out in zip(w2[0].tolist(), q[0].tolist()):
        assert out == pytest.approx(nearest_level(v, step, 4))
    assert q[1].tolist() == [0.0] * 6
    # SYQ subgroups and one group per layer
    qp = lt.uniform_weight(w, 2, "pixel")
    for i, j in itertools.product(range(3), range(3)):
        cell = w[:, :, i, j]
        err = float(((cell - qp[:, :, i, j]) ** 2).sum())
        assert err == pytest.approx(uniform_by_segments(cell.numpy().ravel(), 2), rel=1e-9)
    ql = lt.uniform_weight(w, 2, "layer")
    assert ql.abs().unique().numel() == 2
    wt = torch.randn(3, 5, requires_grad=True)
    g = torch.randn(3, 5)
    lt.uniform_weight(wt, 3).backward(g)
    assert torch.equal(wt.grad, g)
    assert lt.uniform_weight(wt.detach().half(), 2).dtype == torch.float16
    with pytest.raises(InvalidInputError, match="bits"):
        lt.uniform_weight(wt, 9)
    with pytest.raises(InvalidInputError, match="group"):
        lt.uniform_weight(wt, 2, "row")


# ---------------------------------------------------------------------- layers, convert


def small_net():
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU6(),
        torch.nn.Flatten(), torch.nn.Linear(8 * 16, 16), torch.nn.ReLU(),
        torch.nn.Linear(16, 4))


UNIT = {"levels": [0.0, 0.5, 1.0, 1.5], "thresholds": [0.0, 0.75, 1.25]}


@pytest.mark.parametrize("spec, expect", [
    ("uniform4", lambda w: lt.uniform_weight(w, 4)),
    ({"mode": "uniform", "bits": 2, "group": "pixel"}, lambda w: lt.uniform_weight(w, 2,
                                                                                     "pixel")),
    ({"mode": "ternary", "threshold": "optimal"}, lambda w: lt.ternary_weight(w, "optimal")),
    ({"mode": "binary", "group": "layer"}, lambda w: lt.binary_weight(w, per_channel=False)),
    ("edmips2", lambda w: lt.edmips_weight(w, 2)),
    ("syq2", lambda w: lt.syq_weight(w, lt.syq_initial_scales(w), binary=False)),
    ({"mode": "syq", "bits": 1}, lambda w: lt.syq_weight(w, lt.syq_initial_scales(w))),
])
def test_convert_weight_modes(spec, expect):
    net = small_net()
    qnet, summary = lt.convert(net, UNIT, weights=spec)
    conv, lin = qnet[3], qnet[7]
    assert isinstance(conv, lt.QuantConv2d) and isinstance(lin, lt.QuantLinear)
    assert conv.weight is qnet[3].weight and torch.equal(conv.weight, net[3].weight)
    assert torch.equal(conv.quantized_weight(), expect(conv.weight))
    x = torch.randn(2, 3, 4, 4)
    want = torch.nn.functional.conv2d(qnet[2](qnet[1](qnet[0](x))), expect(conv.weight),
                                      conv.bias, padding=1)
    assert torch.equal(conv(qnet[2](qnet[1](qnet[0](x)))), want)
    notes = [row.note for row in summary if row.name in ("3", "7")]
    assert len(notes) == 2 and all("weights" in n for n in notes)
    qnet(x).sum().backward()
    assert conv.weight.grad is not None


def test_convert_syq_learns_its_scales():
    qnet, _ = lt.convert(small_net(), UNIT, weights="syq2")
    conv, lin = qnet[3], qnet[7]
    assert conv.syq_scales.shape == (1, 1, 3, 3) and lin.syq_scales.shape == ()
    # started at SYQ's initial scales of the converted (not the random) weights
    assert torch.equal(conv.syq_scales.detach(), lt.syq_initial_scales(conv.weight))
    names = {n for n, _ in qnet.named_parameters()}
    assert {"3.syq_scales", "7.syq_scales"} <= names
    qnet(torch.randn(2, 3, 4, 4)).sum().backward()
    assert conv.syq_scales.grad is not None and conv.syq_scales.grad.abs().sum() > 0
    assert "weight=syq, bits=2" in repr(conv)
    with pytest.raises(InvalidInputError, match="bits=1"):
        lt.QuantConv2d(3, 4, 3, weight="syq", bits=3)


def test_convert_weight_spec_errors():
    with pytest.raises(InvalidInputError, match="needs bits"):
        lt.convert(small_net(), UNIT, weights="uniform")
    with pytest.raises(InvalidInputError, match="bits"):
        lt.convert(small_net(), UNIT, weights="uniform12")
    with pytest.raises(InvalidInputError, match="edmips"):
        lt.convert(small_net(), UNIT, weights="edmips6")
    with pytest.raises(InvalidInputError, match="group"):
        lt.convert(small_net(), UNIT, weights={"mode": "binary", "group": "row"})
    with pytest.raises(InvalidInputError, match="unknown weight quantizer"):
        lt.convert(small_net(), UNIT, weights="quaternary")
    assert "bits=4" in repr(lt.QuantLinear(3, 2, weight="uniform", bits=4))


def test_syq_threshold_is_deprecated_and_points_to_syq_weight():
    w = torch.randn(4, 3, 3, 3)
    with pytest.warns(FutureWarning, match="syq_weight"):
        old = lt.ternary_weight(w, "syq")
    # the rule itself is unchanged: 0.05 * max|w| per channel, support-mean scale
    delta = 0.05 * w.abs().reshape(4, -1).amax(1).reshape(4, 1, 1, 1)
    support = w.abs() > delta
    alpha = (w.abs() * support).reshape(4, -1).sum(1) / support.reshape(4, -1).sum(1)
    assert torch.allclose(old, torch.sign(w) * support * alpha.reshape(4, 1, 1, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lt.ternary_weight(w, "optimal")  # no warning for the other rules


@pytest.mark.parametrize("spec", ["uniform4", {"mode": "ternary", "threshold": "optimal"},
                                  "edmips2", {"mode": "uniform", "bits": 2, "group": "pixel"}])
def test_weight_modes_trace_compile_and_export(spec, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    net = small_net().eval()
    qnet, _ = lt.convert(net, UNIT, weights=spec, layers=["2", "5", "8"])
    qnet.eval()
    x = torch.randn(2, 3, 4, 4)
    ref = qnet(x).detach()
    assert torch.equal(torch.fx.symbolic_trace(qnet)(x), ref)
    if spec == "uniform4":  # the sort-based exact step compiles whole (one case: slow)
        compiled = torch.compile(qnet, fullgraph=True)
        assert torch.allclose(compiled(x), ref, rtol=1e-6, atol=1e-6)
    path = tmp_path / "m.onnx"
    torch.onnx.export(qnet, (x,), str(path), dynamo=False)
    session = ort.InferenceSession(str(path))
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert np.allclose(out, ref.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dynamo", [False, True])
def test_tsq_layer_exports_bit_for_bit(dynamo, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    q = torch.nn.Sequential(lt.TSQReLU2B())
    d = np.float32(0.6487)
    x = torch.tensor([-1.0, 0.0, np.float32(0.32), np.nextafter(np.float32(0.32), 1),
                      1.5 * float(d), np.nextafter(np.float32(1.5 * float(d)), 9),
                      float(np.float32(3) * d), math.nan, math.inf, -math.inf,
                      *np.random.default_rng(5).normal(0.5, 1, 200).tolist()],
                     dtype=torch.float32)
    path = tmp_path / "tsq.onnx"
    torch.onnx.export(q, (x,), str(path), dynamo=dynamo)
    session = ort.InferenceSession(str(path))
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert np.array_equal(out.view(np.uint32), q(x).numpy().view(np.uint32))
