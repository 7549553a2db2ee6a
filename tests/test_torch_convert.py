"""lloydmax.torch.convert and the ReLU-like layer selection shared with the collectors
(torch modules and ONNX Clip nodes, readable ONNX names)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import lloydmax as lm  # noqa: E402
import lloydmax.torch as lt  # noqa: E402
from lloydmax.errors import InvalidInputError  # noqa: E402


def small_net(tail=None):
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU6(),
        nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Hardtanh(0.0, 1.0),
        nn.Conv2d(4, 4, 1), nn.ReLU(), tail or nn.Hardtanh(-1.0, 1.0),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


@pytest.fixture(scope="module")
def unit():
    return lm.solve(bits=2, dist="halfwave-gaussian", uniform=True)


def test_relu_selects_relu_relu6_and_clipped_hardtanh(unit):
    net = small_net()
    qnet, summary = lt.convert(net, unit)
    assert summary.replaced == ["2", "5", "7"]  # Hardtanh(-1, 1) is not a ReLU
    assert all(isinstance(qnet[i], lt.HalfWaveQuantizer) for i in (2, 5, 7))
    assert isinstance(qnet[8], nn.Hardtanh) and isinstance(net[2], nn.ReLU6)  # copy
    # the Hardtanh(0, 1) clip is below the unit table's top level 1.616: flagged
    assert [w.split(":")[0] for w in summary.warnings] == ["5"]
    assert "exceeds the Hardtanh clip 1" in summary.warnings[0]
    assert "HalfWaveQuantizer" in str(summary)


def test_one_table_scaled_per_layer_by_sigma(unit):
    net = small_net()
    qnet, summary = lt.convert(net, unit, scale={"2": 2.0, "5": 0.5, "7": 1.0})
    assert qnet[2].levels.tolist() == [v * 2.0 for v in unit.levels]
    assert qnet[5].thresholds.tolist() == [v * 0.5 for v in unit.thresholds]
    assert [row.scale for row in summary] == [2.0, 0.5, 1.0]
    assert summary.warnings == []  # 0.5 * 1.616 fits under the clip 1
    with pytest.raises(InvalidInputError, match="no sigma for 7"):
        lt.convert(net, unit, scale={"2": 2.0, "5": 0.5})


def test_scale_from_a_report_dataframe_and_a_preset(unit):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"layer": ["2", "5", "7", "7"], "channel": pd.array(
        [None, None, None, 0], dtype="Int64"), "sigma": [1.5, 0.25, 3.0, 9.0]})
    qnet, _ = lt.convert(small_net(), ("hwgq", 2), scale=df, inplace=False)
    preset = lm.presets.get_preset("hwgq").activation_table(2)
    assert qnet[7].levels.tolist() == [v * 3.0 for v in preset.levels]
    assert qnet[5].q_max == pytest.approx(0.25 * preset.levels[-1], rel=1e-15)


def test_mapping_of_tables_and_inplace(unit):
    net = small_net()
    tables = {"2": unit.scaled(2.0), "7": unit}
    same, summary = lt.convert(net, tables, inplace=True, backward="vanilla")
    assert same is net and isinstance(net[2], lt.HalfWaveQuantizer)
    assert net[2].backward == "vanilla" and isinstance(net[5], nn.Hardtanh)
    assert [row.note for row in summary if row.name == "5"] == ["no table: kept"]
    with pytest.raises(InvalidInputError, match="does not select: 'nope'"):
        lt.convert(small_net(), {"nope": unit})
    with pytest.raises(InvalidInputError, match=r"not 0\.\.1"):
        lt.convert(small_net(), {("2", 0): unit, ("2", 2): unit})
    per_channel = {("2", c): unit.scaled(1.0 + c) for c in range(4)}
    qnet, summary = lt.convert(small_net(), per_channel)
    assert isinstance(qnet[2], lt.ChannelQuantizer) and qnet[2].n_channels == 4
    assert summary.replaced == ["2"]


def test_weights_binary_skip_first_and_last_and_share_parameters(unit):
    net = small_net()
    qnet, _ = lt.convert(net, unit, weights="binary", inplace=True)
    assert type(qnet[0]) is nn.Conv2d and type(qnet[11]) is nn.Linear
    assert isinstance(qnet[3], lt.QuantConv2d) and isinstance(qnet[6], lt.QuantConv2d)
    assert qnet[3].padding == (1, 1) and qnet[3].weight_quant == "binary"
    w = qnet[3].weight
    assert torch.equal(qnet[3].quantized_weight(), lt.binary_weight(w))
    qnet2, _ = lt.convert(small_net(), unit, weights={"mode": "ternary", "threshold": "syq",
                                                      "layers": ["0", "11"]})
    assert isinstance(qnet2[0], lt.QuantConv2d) and isinstance(qnet2[11], lt.QuantLinear)
    assert qnet2[0].ternary_threshold == "syq"
    x = torch.randn(2, 3, 6, 6)
    qnet2(x).sum().backward()
    assert qnet2[0].weight.grad is not None
    with pytest.raises(InvalidInputError, match="unknown weight quantizer"):
        lt.convert(small_net(), unit, weights="quaternary")


def test_errors_point_the_right_way(unit):
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, x):
            return torch.relu(self.conv(x))

    with pytest.raises(InvalidInputError, match=r"F\.relu"):
        lt.convert(Functional(), unit)
    gelu = nn.Sequential(nn.Linear(2, 2), nn.GELU())
    with pytest.raises(InvalidInputError, match="activation modules are GELU"):
        lt.convert(gelu, unit)
    with pytest.raises(InvalidInputError, match="unknown backward"):
        lt.convert(small_net(), unit, backward="straight")
    with pytest.raises(InvalidInputError, match="no module named 'x'"):
        lt.convert(small_net(), unit, layers=["x"])


def test_collect_torch_finds_relu6_and_keywords():
    pytest.importorskip("pandas")
    from lloydmax.analysis.torch_collect import select_modules

    net = small_net()
    assert [n for n, _ in select_modules(net, "relu")] == ["2", "5", "7"]
    assert [n for n, _ in select_modules(net, "activation")] == ["2", "5", "7", "8"]
    gelu = nn.Sequential(nn.Linear(2, 2), nn.GELU())
    with pytest.raises(InvalidInputError, match="layers='activation'"):
        select_modules(gelu, "relu")


def test_onnx_relu_covers_clip_min_zero_and_keys_are_module_paths(tmp_path):
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from lloydmax.analysis.onnx_collect import collect_onnx, select_nodes
    from lloydmax.analysis.torch_collect import collect_torch

    net = small_net(nn.Tanh()).eval()  # an exporter fuses Relu + Clip(-1, 1) into one Clip
    x = torch.randn(16, 3, 6, 6)
    torch_hists = collect_torch(net, x)
    for dynamo in (False, True):
        path = tmp_path / f"net_{dynamo}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (x,), str(path), dynamo=dynamo)
        model = onnx.load(str(path))
        keys = [k for k, _ in select_nodes(model, "relu")]
        assert keys == ["2", "5", "7"], keys  # ReLU6 / Hardtanh(0, 1) are Clip(x, 0, c)
        assert "8" in [k for k, _ in select_nodes(model, "activation")]
        hists = collect_onnx(str(path), x.numpy())
        assert list(hists) == list(torch_hists)
        for name in hists:
            a, b = hists[name], torch_hists[name]
            assert np.array_equal(np.asarray(a.count), np.asarray(b.count))
            np.testing.assert_allclose(np.asarray(a.mean, dtype=float),
                                       np.asarray(b.mean, dtype=float), rtol=1e-4, atol=1e-6)
