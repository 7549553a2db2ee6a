"""Export of the torch quantizers: ONNX (TorchScript and dynamo exporters) run by ONNX
Runtime bit for bit equal to torch on adversarial inputs, torch.export, torch.compile and
FX tracing; the precomputed float32 boundaries survive load_state_dict."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

import lloydmax as lm  # noqa: E402
import lloydmax.torch as lt  # noqa: E402


@pytest.fixture(scope="module")
def table():
    return lm.solve(bits=3, dist="halfwave-gaussian")


def adversarial(table, dtype=np.float32) -> np.ndarray:
    """Every threshold and level in float32, one and two ulps either side, the float32
    rounding of the float64 threshold, +-0, subnormals, +-inf, NaN and random values."""
    values = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-40, -1e-40,
              np.finfo(np.float32).tiny, -np.finfo(np.float32).tiny, 3e38, -3e38]
    for t in [*table.thresholds, *table.levels]:
        for point in (np.float32(t), lt.round_down_float32(
                torch.tensor([t], dtype=torch.float64)).numpy()[0]):
            up = down = np.float32(point)
            values.append(up)
            for _ in range(2):
                up = np.nextafter(up, np.float32(np.inf))
                down = np.nextafter(down, np.float32(-np.inf))
                values += [up, down]
    rng = np.random.default_rng(0)
    values += list(rng.normal(0.0, 2.0, 2000))
    return np.array(values, dtype=dtype)


def run_onnx(module, x, dynamo, path):
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), str(path), dynamo=dynamo,
                          input_names=["x"], output_names=["y"],
                          **({} if dynamo else {"dynamic_axes": {"x": {0: "n"}}}))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session, session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit for bit, NaN equal to NaN (any payload), -0 different from +0."""
    a, b = np.asarray(a), np.asarray(b)
    nan = np.isnan(a)
    return bool(np.array_equal(nan, np.isnan(b)) and a.dtype == b.dtype and np.array_equal(
        a[~nan].view(np.uint8), b[~nan].view(np.uint8)))


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_onnx_runtime_bit_equal_on_adversarial_inputs(table, dynamo, tmp_path):
    x = torch.from_numpy(adversarial(table))
    quantizer = lt.HalfWaveQuantizer(table)
    _, got = run_onnx(quantizer, x, dynamo, tmp_path / "q.onnx")
    expected = quantizer(x).detach().numpy()
    assert same_bits(got, expected), int(np.sum(got != expected))
    # and both equal the numpy reference (the float64 decision)
    assert same_bits(expected, table.quantize(x.numpy().astype(np.float64)).astype(np.float32))


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_onnx_integer_codes(table, dynamo, tmp_path):
    x = torch.from_numpy(adversarial(table))
    codes = lt.HalfWaveQuantizer(table, return_index=True)
    _, got = run_onnx(codes, x, dynamo, tmp_path / "codes.onnx")
    expected = codes(x).numpy()
    assert expected.dtype == np.int64 and np.array_equal(got, expected)
    finite = ~np.isnan(x.numpy())
    levels = np.asarray(table.levels, dtype=np.float32)
    assert same_bits(levels[expected[finite]], lt.HalfWaveQuantizer(table)(x)[finite].numpy())


def test_levels_readable_from_the_onnx_graph(table, tmp_path):
    """A deployment reads the float32 levels and boundaries from the graph's initializers
    (docs/consumers.md, 'Reading the levels from an ONNX graph')."""
    import onnx
    from onnx import numpy_helper

    x = torch.from_numpy(adversarial(table))
    run_onnx(lt.HalfWaveQuantizer(table), x, True, tmp_path / "q.onnx")
    model = onnx.load(str(tmp_path / "q.onnx"))
    found = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:  # constants folded into Constant nodes by some passes
        if node.op_type == "Constant":
            found[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    levels32 = np.asarray(table.levels, dtype=np.float32)
    bounds32 = lt.round_down_float32(torch.tensor(table.thresholds, dtype=torch.float64))
    assert any(v.dtype == np.float32 and np.array_equal(v, levels32) for v in found.values())
    assert any(v.dtype == np.float32 and np.array_equal(v, bounds32.numpy())
               for v in found.values())


def test_metadata_carries_the_tables(table, tmp_path):
    import json

    import onnx

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), lt.HalfWaveQuantizer(table))
    x = torch.randn(2, 3, 8, 8)
    run_onnx(net, x, True, tmp_path / "m.onnx")
    proto = onnx.load(str(tmp_path / "m.onnx"))
    onnx.helper.set_model_props(proto, lt.onnx_metadata(net))
    onnx.save(proto, str(tmp_path / "m.onnx"))
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    layer = json.loads(props["lloydmax.tables"])["1"]
    assert layer["levels"] == list(table.levels) and layer["convention"] == "hwgq"
    assert np.array_equal(np.float32(layer["bounds32"]), net[1].bounds32.numpy())


def test_float64_and_half_precision_exports(table, tmp_path):
    quantizer = lt.HalfWaveQuantizer(table).double()
    x = torch.from_numpy(adversarial(table, np.float64))
    _, got = run_onnx(quantizer, x, False, tmp_path / "q64.onnx")
    assert same_bits(got, table.quantize(x.numpy()))


def test_export_compile_and_fx(table):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                              lt.HalfWaveQuantizer(table)).eval()
    x = torch.randn(2, 3, 8, 8)
    expected = net(x)
    exported = torch.export.export(net, (x,))
    assert torch.equal(exported.module()(x), expected)
    traced = torch.fx.symbolic_trace(net)
    assert torch.equal(traced(x), expected)
    assert any(node.target is lt.halfwave_quantize for node in traced.graph.nodes)


def test_derived_boundaries_follow_load_state_dict_and_dtype(table):
    other = lm.solve(bits=3, dist="halfwave-gaussian", uniform=True)
    target = lt.HalfWaveQuantizer(other)
    target.load_state_dict(lt.HalfWaveQuantizer(table).state_dict())
    assert "bounds32" not in target.state_dict()
    assert target.q_max == table.levels[-1]
    x = torch.from_numpy(adversarial(table))
    assert same_bits(target(x).numpy(), lt.HalfWaveQuantizer(table)(x).numpy())
    target.half()
    assert target.bounds32.dtype == torch.float32 and target.levels16.dtype == torch.float16
    assert target.levels.dtype == torch.float64


def test_training_gradient_unchanged(table):
    x = torch.linspace(-1, 4, 101, requires_grad=True)
    lt.HalfWaveQuantizer(table)(x).sum().backward()
    q_max = np.float32(table.levels[-1])
    expected = ((x.detach() > 0) & (x.detach() <= torch.tensor(q_max))).float()
    assert torch.equal(x.grad, expected)
