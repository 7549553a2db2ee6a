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
