"""The faithful trainer rules of HalfWaveQuantizer, each held against a transcription of
the trainer's own code (cited per test)."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lloydmax as lm  # noqa: E402
import lloydmax.torch as lt  # noqa: E402
from lloydmax.errors import InvalidInputError, InvalidTableError  # noqa: E402

FLT_MAX = np.float32(np.finfo(np.float32).max)


def edge_inputs(values) -> np.ndarray:
    """Each value in float32 and three float32 steps either side, with the specials."""
    out = [0.0, -0.0, 1e-45, -1e-45, 1e-40, np.inf, -np.inf, np.nan, FLT_MAX, -FLT_MAX]
    for v in values:
        up = down = np.float32(v)
        out.append(up)
        for _ in range(3):
            up, down = np.nextafter(up, np.float32(np.inf)), np.nextafter(down,
                                                                         np.float32(-np.inf))
            out += [up, down]
    out += list(np.random.default_rng(1).normal(0.5, 1.5, 3000))
    return np.array(out, dtype=np.float32)


def caffe_forward(x: np.ndarray, centers_prototxt) -> np.ndarray:
    """hwgq src/caffe/layers/quant_layer.cpp, LayerSetUp lines 19-28 and Forward_cpu
    lines 38 and 49-62 (Dtype = float, negative_slope = 0), transcribed."""
    centers = [np.float32(c) for c in centers_prototxt]
    thrs = [np.float32(0.5 * float(np.float32(centers[i] + centers[i + 1])))
            for i in range(len(centers) - 1)] + [FLT_MAX]
    negative_slope = np.float32(0.0)
    top = np.zeros_like(x)  # caffe_set(count, Dtype(0), top_data)
    for i, v in enumerate(x):
        if v <= 0:
            top[i] = -negative_slope
        else:
            for j, thr in enumerate(thrs):
                if v <= thr:
                    top[i] = centers[j]
                    break
    return top


def caffe_backward(x: np.ndarray, top_diff: np.ndarray, clip_thr: float) -> np.ndarray:
    """quant_layer.cpp Backward_cpu lines 78-79 and 93-98 (backward_func 'relu')."""
    clip = np.float32(clip_thr) if clip_thr > 0 else FLT_MAX
    out = np.empty_like(x)
    for i, v in enumerate(x):
        out[i] = top_diff[i] * np.float32((v > 0) + 0.0 * (v <= 0))
        out[i] = out[i] * np.float32(v <= clip)
    return out


@pytest.mark.parametrize("uniform", [True, False])
def test_caffe_rule_equals_the_caffe_layer(uniform):
    table = lm.solve(bits=2, dist="halfwave-gaussian", uniform=uniform)
    q = lt.HalfWaveQuantizer(table, rule="caffe")
    centers = list(table.levels[1:])
    c32 = np.float32(centers)
    x = edge_inputs([*table.thresholds, *table.levels, *((c32[:-1] + c32[1:]) * 0.5)])
    got = q(torch.from_numpy(x)).numpy()
    expected = caffe_forward(x, centers)
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))  # -0.0 included
    assert got[np.isposinf(x)].tolist() == [0.0] and got[np.isnan(x)].tolist() == [0.0]
    # the exact rule differs only within float32 rounding of the thresholds and at the edges
    exact = lt.HalfWaveQuantizer(table)(torch.from_numpy(x)).numpy()
    differ = ~((exact == got) | (np.isnan(exact) & np.isnan(got)))
    assert np.all(np.isposinf(x[differ]) | np.isnan(x[differ]) |
                  (np.abs(x[differ][:, None] - np.float32(table.thresholds[1:])).min(1) < 1e-6))

    xt = torch.from_numpy(x).requires_grad_(True)
    grad_out = torch.from_numpy(np.random.default_rng(2).normal(size=x.size).astype(np.float32))
    q(xt).backward(grad_out)
    expected_grad = caffe_backward(x, grad_out.numpy(), float(c32[-1]))
    assert np.array_equal(xt.grad.numpy(), expected_grad)
    at_top = x == c32[-1]
    assert at_top.any() and np.all(xt.grad.numpy()[at_top] == grad_out.numpy()[at_top])


def test_caffe_vanilla_backward_and_export():
    table = lm.solve(bits=2, dist="halfwave-gaussian", uniform=True)
    q = lt.HalfWaveQuantizer(table, backward="vanilla", rule="caffe")
    x = torch.tensor([-1.0, 0.0, 0.5, 3.0, 1e38, math.inf], requires_grad=True)
    q(x).backward(torch.ones(6))
    assert x.grad.tolist() == caffe_backward(x.detach().numpy(), np.ones(6, np.float32),
                                             0.0).tolist()
    traced = torch.fx.symbolic_trace(torch.nn.Sequential(q))
    assert torch.equal(traced(x.detach()), q(x.detach()))


def edmips_forward(x: torch.Tensor, step: float, bit: int) -> torch.Tensor:
    """EdMIPS models/quant_module.py, HWGQ.forward lines 64-70 and _hwgq.forward line 47."""
    lvls = float(2 ** bit - 1)
    clip_thr = step * lvls
    y = x.clamp(min=0.0, max=clip_thr)
    return torch.round(y / step) * step


def test_edmips_rule_rounds_half_to_even_like_edmips():
    step = 0.538  # EdMIPS hwgq_steps[2]
    table = {"levels": [k * step for k in range(4)],
             "thresholds": [(k + 0.5) * step for k in range(3)], "convention": "round"}
    q = lt.HalfWaveQuantizer(table, rule="edmips")
    mids = [np.float32(np.float32(k + 0.5) * np.float32(step)) for k in range(3)]
    x = torch.from_numpy(edge_inputs([*mids, *table["levels"], *table["thresholds"]]))
    got, expected = q(x), edmips_forward(x, step, 2)
    assert torch.equal(torch.isnan(got), torch.isnan(expected))
    keep = ~torch.isnan(got)
    assert torch.equal(got[keep].view(torch.int32), expected[keep].view(torch.int32))
    # ties go to even: 0.5 * step in float32 rounds down to 0, 1.5 * step up to 2 * step
    half = torch.tensor([0.5 * step, 2.5 * step], dtype=torch.float32)
    assert torch.equal(q(half), edmips_forward(half, step, 2))
    xt = torch.tensor([-1.0, 0.0, 0.7, 3 * step, 5.0], requires_grad=True)
    q(xt).sum().backward()
    xe = xt.detach().clone().requires_grad_(True)
    y = xe.clamp(min=0.0, max=step * 3.0)
    y.sum().backward()  # EdMIPS's backward: clamp's gradient, identity through round
    assert torch.equal(xt.grad, xe.grad)


def test_rules_are_validated():
    table = lm.solve(bits=2, dist="halfwave-gaussian")
    with pytest.raises(InvalidInputError, match="unknown rule"):
        lt.HalfWaveQuantizer(table, rule="tf")
    with pytest.raises(InvalidTableError, match="uniform table"):
        lt.HalfWaveQuantizer(table, rule="edmips")
    with pytest.raises(InvalidInputError, match="vanilla and clipped"):
        lt.HalfWaveQuantizer(table, backward="log-tailed", rule="caffe")
    deadzone = lm.solve(bits=2, dist="halfwave-gaussian", uniform=True, convention="deadzone",
                        zero_threshold=0.3)
    with pytest.raises(InvalidTableError, match="hwgq-convention"):
        lt.HalfWaveQuantizer(deadzone, rule="caffe")
    assert "rule=caffe" in repr(lt.HalfWaveQuantizer(table, rule="caffe"))


def syq_transcription(x_tf: np.ndarray, w_s: np.ndarray, eta: float, binary: bool):
    """SYQ tensorpack/examples/SYQ-AlexNet/quantize.py, fine_grained_quant lines 13-47
    ('conv' branch), in numpy on a TF-layout weight (kh, kw, in, out)."""
    shape = x_tf.shape
    eta_x = np.max(np.abs(x_tf)) * np.float32(eta)
    list_of_masks = []
    for i in range(shape[0]):
        for j in range(shape[1]):
            ws = w_s[(shape[1] * i) + j, 0]
            mask = np.ones(shape, np.float32)
            mask_p = np.where(x_tf[i, j] > eta_x, mask[i, j] * ws, mask[i, j])
            mask_np = np.where(x_tf[i, j] < -eta_x, mask[i, j] * ws, mask_p)
            list_of_masks.append(mask_np)
    masker = np.stack(list_of_masks).reshape(shape)
    if binary:
        mask_z = np.ones(shape, np.float32)
    else:
        mask_z = np.where((x_tf < eta_x) & (x_tf > -eta_x), np.zeros(shape, np.float32),
                          np.ones(shape, np.float32))
    return (np.sign(x_tf) * mask_z * masker).astype(np.float32)


@pytest.mark.parametrize("binary", [True, False])
def test_syq_weight_equals_syq_code(binary):
    rng = np.random.default_rng(3)
    w = torch.from_numpy(rng.normal(0, 0.1, (6, 5, 3, 3)).astype(np.float32))
    eta_x = np.float32(w.abs().max().numpy()) * np.float32(0.05)
    w[0, 0, 0, 0] = float(eta_x)  # exactly at the threshold
    w[1, 0, 0, 0] = 0.0
    scales = lt.syq_initial_scales(w).clone().requires_grad_(True)
    got = lt.syq_weight(w, scales, binary=binary)
    x_tf = w.permute(2, 3, 1, 0).numpy()  # torch (out, in, kh, kw) -> TF (kh, kw, in, out)
    w_s = scales.detach().reshape(-1, 1).numpy()
    expected = syq_transcription(x_tf, w_s, 0.05, binary)
    assert np.array_equal(got.detach().permute(2, 3, 1, 0).numpy(), expected)
    small = w.abs() <= eta_x
    if binary:  # SYQ's binary mode: the small weights are +-1, unscaled
        assert small.float().mean() > 0.01
        nonzero = small & (w != 0)
        assert torch.equal(got[nonzero].abs(), torch.ones_like(w[nonzero]))
    assert got[0, 0, 0, 0] == 1.0 and got[1, 0, 0, 0] == 0.0
    got.sum().backward()
    assert scales.grad is not None and scales.grad.shape == (1, 1, 3, 3)
    # the scale gradient: the sum of sign(w) over its pixel's scaled weights
    expected_grad = torch.where(~small, torch.sign(w), torch.zeros_like(w)).sum(dim=(0, 1))
    assert torch.allclose(scales.grad[0, 0], expected_grad)


# ---------------------------------------------------------------------- TSQ


def tsq_forward(x: np.ndarray, thresh: float, delta: float) -> np.ndarray:
    """TSQ relu2b_layer.cpp, ReLU2BLayer::Forward_cpu lines 15-26 (Dtype = float),
    transcribed: `th`, `d` are float; `1.5*d` and `2.5*d` are double (a double literal
    times a float); `Dtype(2*d)` and `Dtype(3*d)` are float products."""
    th, d = np.float32(thresh), np.float32(delta)
    top = np.empty_like(x)
    for i, v in enumerate(x):
        if v <= th:
            top[i] = np.float32(0)
        elif np.float64(v) <= 1.5 * np.float64(d):
            top[i] = d
        elif np.float64(v) <= 2.5 * np.float64(d):
            top[i] = np.float32(2) * d
        else:
            top[i] = np.float32(3) * d
    return top


def tsq_backward(x: np.ndarray, top_diff: np.ndarray, delta: float) -> np.ndarray:
    """relu2b_layer.cpp, Backward_cpu lines 36 and 43: top_diff * ((x > 0) * (x < 3*d))."""
    d = np.float32(delta)
    return np.array([g * np.float32((v > 0) * (v < np.float32(3) * d))
                     for v, g in zip(x, top_diff)], dtype=np.float32)


@pytest.mark.parametrize("thresh, delta", [(0.32, 0.6487), (0.3254, 0.6508)])
def test_tsq_relu2b_equals_the_tsq_layer(thresh, delta):
    q = lt.TSQReLU2B(thresh, delta)
    d = np.float32(delta)
    x = edge_inputs([thresh, 1.5 * float(d), 2.5 * float(d), float(d), float(2 * d),
                     float(np.float32(3) * d), 0.0])
    xt = torch.from_numpy(x).requires_grad_(True)
    got = q(xt)
    expected = tsq_forward(x, thresh, delta)
    assert np.array_equal(got.detach().numpy().view(np.uint32), expected.view(np.uint32))
    top = np.float32(3) * d
    assert got[torch.isnan(xt)].tolist() == [float(top)]  # NaN falls through to 3*d
    grad_out = torch.from_numpy(np.random.default_rng(4).normal(size=x.size).astype(np.float32))
    got.backward(grad_out)
    assert np.array_equal(xt.grad.numpy(), tsq_backward(x, grad_out.numpy(), delta))
    at_top = x == top
    assert at_top.any() and np.all(xt.grad.numpy()[at_top] == 0)  # strict at the top
    dead = (x > 0) & (x <= np.float32(thresh))
    assert np.all(xt.grad.numpy()[dead] == grad_out.numpy()[dead])  # open over the dead zone


def test_tsq_relu2b_against_the_exact_deadzone_quantizer():
    from lloydmax.presets import get_preset

    table = get_preset("tsq").activation_table(2)
    q = lt.TSQReLU2B.from_table(table)
    assert q.thresh == 0.32 and q.delta == table.step and q.bits == 2
    exact = lt.HalfWaveQuantizer(table)
    x = edge_inputs([*table.thresholds, *table.levels])
    a, b = q(torch.from_numpy(x)).numpy(), exact(torch.from_numpy(x)).numpy()
    differ = ~((a == b) | np.isnan(b))
    # the forwards differ only within float32 rounding of the thresholds
    near = np.abs(x[differ][:, None] - np.float32(table.thresholds)).min(axis=1)
    assert np.all(near < 1e-6)
    # the backwards differ exactly at the top level: clipped passes at q_m, TSQ does not
    top = torch.tensor([float(np.float32(table.levels[-1])), 0.1], requires_grad=True)
    q(top).sum().backward()
    g_tsq = top.grad.clone()
    top.grad = None
    exact(top).sum().backward()
    assert g_tsq.tolist() == [0.0, 1.0] and top.grad.tolist() == [1.0, 1.0]
    # float64 input is decided in double, as the Dtype = double layer
    x64 = torch.tensor([0.32, 0.3200000001, 1.5 * 0.6487, math.nan], dtype=torch.float64)
    assert lt.TSQReLU2B()(x64).tolist() == [0.0, 0.6487, 0.6487, 3 * 0.6487]
    traced = torch.fx.symbolic_trace(torch.nn.Sequential(q))
    assert torch.equal(traced(torch.from_numpy(x)), q(torch.from_numpy(x)))
    assert "thresh=0.32" in repr(q)
    with pytest.raises(InvalidTableError, match="uniform table"):
        lt.TSQReLU2B.from_table(lm.solve(bits=2, dist="halfwave-gaussian"))
    with pytest.raises(InvalidInputError, match="positive delta"):
        lt.TSQReLU2B(0.3, -1.0)
    with pytest.raises(InvalidInputError, match="TSQReLU2B"):
        lt.HalfWaveQuantizer(table, rule="tsq")


# ---------------------------------------------------------------------- EdMIPS weights

EDMIPS_GAUSSIAN_STEPS = {1: 1.596, 2: 0.996, 3: 0.586, 4: 0.336}  # quant_module.py line 7


def edmips_gauss_quantize(x: torch.Tensor, step: float, bit: int) -> torch.Tensor:
    """EdMIPS models/quant_module.py, _gauss_quantize.forward lines 14-21, transcribed."""
    lvls = 2 ** bit / 2
    alpha = x.std().item()
    step *= alpha
    y = (torch.round(x / step + 0.5) - 0.5) * step
    thr = (lvls - 0.5) * step
    return y.clamp(min=-thr, max=thr)


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_edmips_weight_equals_edmips_code(bits):
    rng = np.random.default_rng(bits)
    for trial in range(20):
        w = torch.from_numpy(rng.normal(0, 0.05, (16, 8, 3, 3)).astype(np.float32))
        w[trial % 16] *= 10.0  # one loud filter: the whole tensor's std sets every step
        step = EDMIPS_GAUSSIAN_STEPS[bits] * w.std().item()
        # inputs on the rounding ties and the float32 values either side
        ties = torch.tensor([k * step for k in range(-3, 4)], dtype=torch.float32)
        w.view(-1)[:7] = ties
        w.view(-1)[7:14] = torch.nextafter(ties, torch.full_like(ties, math.inf))
        wt = w.clone().requires_grad_(True)
        got = lt.edmips_weight(wt, bits)
        expected = edmips_gauss_quantize(w, EDMIPS_GAUSSIAN_STEPS[bits], bits)
        assert torch.equal(got.detach().view(torch.int32), expected.view(torch.int32))
    # one step for the whole tensor, not per channel: every value is a half-odd multiple
    # of it.  (EdMIPS's clamp bound (lvls - 1/2) * step, rounded to float32, may differ by
    # one ulp from the top grid level: a layer can hold 2^b + 2 distinct float32 values.)
    step = EDMIPS_GAUSSIAN_STEPS[bits] * w.std().item()
    units = got.detach().double() / step
    assert torch.allclose(units, torch.round(units + 0.5) - 0.5, atol=1e-5)
    assert units.abs().max() <= 2 ** bits / 2 - 0.5 + 1e-5
    assert got.detach().unique().numel() in (2 ** bits, 2 ** bits + 1, 2 ** bits + 2)
    grad = torch.randn_like(w)
    got.backward(grad)
    assert torch.equal(wt.grad, grad)  # straight through (lines 24-25)


def test_edmips_weight_mode_in_layers():
    conv = lt.QuantConv2d(4, 6, 3, weight="edmips", bits=2, bias=False)
    assert torch.equal(conv.quantized_weight(),
                       edmips_gauss_quantize(conv.weight.detach(), 0.996, 2))
    assert "weight=edmips, bits=2" in repr(conv)
    with pytest.raises(InvalidInputError, match="gaussian_steps"):
        lt.QuantLinear(3, 2, weight="edmips", bits=5)
    with pytest.raises(InvalidInputError, match="pass step="):
        lt.edmips_weight(torch.ones(3), 6)
    custom = lt.edmips_weight(conv.weight.detach(), 5, step=0.1881)
    assert torch.equal(custom, edmips_gauss_quantize(conv.weight.detach(), 0.1881, 5))
