"""lloydmax.analysis.onnx_collect on hand-built ONNX graphs, checked against the same computation
written in numpy (MatMul -> BatchNormalization -> Relu -> MatMul)."""
import sys

import numpy as np
import onnx
import pytest
from lloydmax.analysis.onnx_collect import (
    collect_onnx,
    iter_onnx_activations,
    load_onnx_model,
    select_nodes,
)
from onnx import TensorProto, helper, numpy_helper

from lloydmax.errors import InvalidInputError, MissingDependencyError

RNG = np.random.default_rng(7)
W1 = RNG.standard_normal((4, 6)).astype(np.float32)
SCALE = RNG.uniform(0.5, 1.5, 6).astype(np.float32)
BIAS = RNG.uniform(-0.3, 0.3, 6).astype(np.float32)
MEAN = RNG.uniform(-0.5, 0.5, 6).astype(np.float32)
VAR = RNG.uniform(0.5, 2.0, 6).astype(np.float32)
W2 = RNG.standard_normal((6, 2)).astype(np.float32)
EPS = 1e-5


def make_model(batch="N", name_relu="relu1", second_input=False):
    """x (batch, 4) -> mm1 -> bn1 -> relu1 -> mm2 -> y; optionally y + z."""
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h"], name="mm1"),
        helper.make_node("BatchNormalization", ["h", "scale", "bias", "mean", "var"], ["b"],
                         name="bn1", epsilon=EPS),
        helper.make_node("Relu", ["b"], ["r"], name=name_relu),
        helper.make_node("MatMul", ["r", "W2"], ["y"], name="mm2"),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])]
    output = "y"
    if second_input:
        nodes.append(helper.make_node("Add", ["y", "z"], ["s"], name="add"))
        inputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [batch, 2]))
        output = "s"
    inits = [numpy_helper.from_array(a, n) for a, n in
             [(W1, "W1"), (SCALE, "scale"), (BIAS, "bias"), (MEAN, "mean"), (VAR, "var"),
              (W2, "W2")]]
    graph = helper.make_graph(nodes, "g", inputs,
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT,
                                                             [batch, 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def oracle(x):
    x = x.astype(np.float64)
    h = x @ W1
    b = (h - MEAN) / np.sqrt(VAR.astype(np.float64) + EPS) * SCALE + BIAS
    r = np.maximum(b, 0)
    return {"h": h, "b": b, "r": r, "y": r @ W2}


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(3).standard_normal((37, 4)).astype(np.float32)


def gather(stream):
    out = {}
    for name, array in stream:
        out.setdefault(name, []).append(array)
    return {name: np.concatenate(arrays) for name, arrays in out.items()}


def test_relu_bn_and_input_outputs_match_numpy(x):
    model = make_model()
    ref = oracle(x)
    relu = gather(iter_onnx_activations(model, x))
    bn = gather(iter_onnx_activations(model, x, layers="bn"))
    pre = gather(iter_onnx_activations(model, x, layers="relu", where="input"))
    assert list(relu) == ["relu1"] and list(bn) == ["bn1"] and list(pre) == ["relu1"]
    np.testing.assert_allclose(relu["relu1"], ref["r"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bn["bn1"], ref["b"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pre["relu1"], ref["b"], rtol=1e-5, atol=1e-5)
    assert relu["relu1"].dtype == np.float32
    # the ReLU output is exactly the positive part of the BatchNorm output ONNX computed
    np.testing.assert_array_equal(relu["relu1"], np.maximum(bn["bn1"], 0))


def test_caller_model_is_not_modified(x):
    model = make_model()
    before = model.SerializeToString()
    list(iter_onnx_activations(model, x, layers=["relu", "bn", "MatMul"]))
    assert model.SerializeToString() == before


def test_selection_by_op_type_pattern_callable():
    model = make_model()
    assert select_nodes(model, "MatMul") == [("mm1", "h"), ("mm2", "y")]
    assert select_nodes(model, "mm*") == [("mm1", "h"), ("mm2", "y")]
    assert select_nodes(model, ["relu", "bn"]) == [("bn1", "b"), ("relu1", "r")]
    assert select_nodes(model, "r") == [("relu1", "r")]  # glob on output names too
    assert select_nodes(model, lambda node: node.op_type == "Relu", where="input") == \
        [("relu1", "b")]


def test_unnamed_node_is_keyed_by_its_tensor(x):
    model = make_model(name_relu="")
    acts = gather(iter_onnx_activations(model, x))
    assert list(acts) == ["r"]


def test_existing_graph_output_can_be_selected(x):
    acts = gather(iter_onnx_activations(make_model(), x, layers="mm2"))
    np.testing.assert_allclose(acts["mm2"], oracle(x)["y"], rtol=1e-5, atol=1e-5)


def test_batching_and_input_forms(x, tmp_path):
    model = make_model()
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    expected = gather(iter_onnx_activations(model, x))["relu1"]
    np.savez(tmp_path / "named.npz", x=x)
    np.savez(tmp_path / "anon.npz", x)  # stored as arr_0
    forms = [
        (model, {"x": x}, None),
        (path, x, 5),
        (str(path), x.astype(np.float64), 37),
        (model.SerializeToString(), tmp_path / "named.npz", 8),
        (model, str(tmp_path / "anon.npz"), 1),
    ]
    for model_form, inputs, batch_size in forms:
        got = gather(iter_onnx_activations(model_form, inputs, batch_size=batch_size))
        np.testing.assert_allclose(got["relu1"], expected, rtol=1e-6, atol=1e-6)


def test_two_input_model(x):
    model = make_model(second_input=True)
    z = np.ones((len(x), 2), np.float32)
    acts = gather(iter_onnx_activations(model, {"x": x, "z": z}, layers="Add", batch_size=10))
    np.testing.assert_allclose(acts["add"], oracle(x)["y"] + 1, rtol=1e-5, atol=1e-5)
    with pytest.raises(InvalidInputError, match="pass a dict"):
        list(iter_onnx_activations(model, x))
    with pytest.raises(InvalidInputError, match="one leading size"):
        list(iter_onnx_activations(model, {"x": x, "z": z[:3]}, batch_size=4))


@pytest.mark.parametrize("model, inputs, kwargs, message", [
    ("missing.onnx", None, {}, "ONNX model file not found"),
    (b"not a model at all", None, {}, "not an ONNX model"),
    (42, None, {}, "path, bytes or onnx.ModelProto"),
    (None, {"image": 0}, {}, r"do not match the model inputs \['x'\]"),
    (None, "missing.npz", {}, "input file not found"),
    (None, [1, 2], {}, "dict of arrays"),
    (None, None, {"layers": "Softmax*"}, "selects no node"),
    (None, None, {"where": "both"}, "where"),
    (None, None, {"batch_size": 0}, "batch_size"),
    (None, {"x": np.zeros((2, 4), np.complex64)}, {}, "dtype complex64"),
])
def test_bad_arguments_raise_one_line_errors(tmp_path, x, model, inputs, kwargs, message):
    if model is None:
        model = make_model()
    elif isinstance(model, str):
        model = tmp_path / model
    if inputs is None:
        inputs = x
    elif isinstance(inputs, str):
        inputs = tmp_path / inputs
    with pytest.raises(InvalidInputError, match=message) as info:
        list(iter_onnx_activations(model, inputs, **kwargs))
    assert "\n" not in str(info.value)


def test_runtime_failure_is_a_typed_error(x):
    # a fixed batch dimension of 37 rejects batches of 10
    with pytest.raises(InvalidInputError, match="onnxruntime failed"):
        list(iter_onnx_activations(make_model(batch=37), x, batch_size=10))


def test_folded_batchnorm_hint():
    with pytest.raises(InvalidInputError, match="where='input'"):
        select_nodes(make_model(), "BatchNormalization*x")


def test_load_returns_a_copy():
    model = make_model()
    copy = load_onnx_model(model)
    copy.graph.output.pop()
    assert len(model.graph.output) == 1


def test_histograms_match_numpy(x):
    hists = collect_onnx(make_model(), x, layers=["bn", "relu"], batch_size=9, n_bins=512)
    acts = gather(iter_onnx_activations(make_model(), x, layers=["bn", "relu"]))
    assert list(hists) == ["bn1", "relu1"]
    for name, hist in hists.items():
        values = acts[name].astype(np.float64)
        assert hist.n_channels == 6
        np.testing.assert_array_equal(hist.count, [len(values)] * 6)
        np.testing.assert_array_equal(hist.zeros, (values == 0).sum(axis=0))
        np.testing.assert_allclose(hist.mean, values.mean(axis=0), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(hist.std, values.std(axis=0), rtol=1e-12)
        for c in range(6):
            nonzero = values[:, c][values[:, c] != 0]
            counts, _ = np.histogram(nonzero, bins=hist.edges(c))
            np.testing.assert_array_equal(hist.counts(c), counts)
    pooled = collect_onnx(make_model(), x, axis=None)["relu1"]
    assert pooled.count == acts["relu1"].size
    assert pooled.zeros == int((acts["relu1"] == 0).sum())


def test_progress_bar_draws_on_request(x, capsys):
    collect_onnx(make_model(), x, batch_size=10, progress=True)
    assert "collect onnx" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["onnxruntime", "onnx"])
def test_missing_runtime_names_the_extra(monkeypatch, x, module):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingDependencyError, match=r"lloydmax\[onnx\]"):
        collect_onnx(b"", x)
