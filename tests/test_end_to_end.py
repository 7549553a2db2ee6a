"""End to end on a MobileNetV2-shaped network (ReLU6, inverted residuals, BatchNorm):
the recipe of docs/recipe.md (collect, report, best_tables, convert with binary weights,
a few QAT steps, ONNX export), then ONNX Runtime against torch at every quantizer and on
the top-1 for both exporters, torch.compile(fullgraph=True) and FX tracing."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("pandas")

from torch import nn  # noqa: E402

import lloydmax.torch as lt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def conv_bn(cin, cout, kernel, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU6(inplace=True)) if act else nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expansion + ReLU6, 3x3 depthwise + ReLU6, linear 1x1
    projection, identity shortcut when the shape is kept."""

    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = [conv_bn(cin, hidden, 1)] if expand != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden),
                   conv_bn(hidden, cout, 1, act=False)]
        self.conv = nn.Sequential(*layers)
        self.use_res = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


def mobilenet_v2_like(classes=10):
    blocks = [conv_bn(3, 8, 3, 2)]
    cin = 8
    for expand, cout, repeat, stride in [(1, 8, 1, 1), (4, 12, 2, 2), (4, 16, 2, 2)]:
        for i in range(repeat):
            blocks.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
            cin = cout
    blocks.append(conv_bn(cin, 32, 1))
    return nn.Sequential(nn.Sequential(*blocks), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(32, classes))


def recipe_code() -> str:
    text = (ROOT / "docs" / "recipe.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


class Taps(nn.Module):
    """The model's logits plus the input and output of every quantizer as outputs, so an
    exported graph exposes them."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.names = [n for n, m in model.named_modules() if isinstance(m, lt.HalfWaveQuantizer)]
        self._seen = []
        for name in self.names:
            model.get_submodule(name).register_forward_hook(
                lambda mod, args, out: self._seen.append((args[0], out)))

    def forward(self, x):
        self._seen = []
        logits = self.model(x)
        seen, self._seen = self._seen, []
        return (logits, *[t for pair in seen for t in pair])


def test_recipe_on_a_mobilenet_v2_shaped_network(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = mobilenet_v2_like()
    images = torch.randn(48, 3, 16, 16)
    labels = torch.randint(0, 10, (48,))
    loader = [(images[i:i + 16], labels[i:i + 16]) for i in range(0, 48, 16)]
    monkeypatch.chdir(tmp_path)
    scope = {"model": model, "images": images, "loader": loader}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(recipe_code(), "docs/recipe.md", "exec"), scope)
    qmodel, summary, tables = scope["qmodel"], scope["summary"], scope["tables"]

    relu6 = [n for n, m in model.named_modules() if isinstance(m, nn.ReLU6)]
    assert len(relu6) == 11 and set(tables) == set(relu6)  # every ReLU6 found and fitted
    assert all(t.levels[0] == 0.0 for t in tables.values())  # exact zero kept
    assert sorted(summary.replaced) == sorted(
        relu6 + [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))
                 ][1:-1])
    assert sum(isinstance(m, lt.QuantConv2d) for m in qmodel.modules()) == 15
    assert all(isinstance(m, nn.Conv2d) for m in model.modules() if isinstance(m, nn.Conv2d))
    assert (tmp_path / "qmodel.onnx").is_file()

    # the QAT steps changed the weights through the straight-through estimators
    assert not torch.equal(qmodel[0][1].conv[0][0].weight, model[0][1].conv[0][0].weight)

    qmodel.eval()
    x = torch.randn(8, 3, 16, 16)
    taps = Taps(qmodel).eval()
    with torch.no_grad():
        expected = taps(x)
    for dynamo in (False, True):
        path = tmp_path / f"taps_{dynamo}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(taps, (x,), str(path), dynamo=dynamo)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        assert len(got) == 1 + 2 * len(taps.names)
        np.testing.assert_array_equal(got[0].argmax(1), expected[0].numpy().argmax(1))
        np.testing.assert_allclose(got[0], expected[0].numpy(), rtol=1e-3, atol=1e-3)
        for k, name in enumerate(taps.names):
            ort_in, ort_out = got[1 + 2 * k], got[2 + 2 * k]
            quantizer = qmodel.get_submodule(name)
            # ORT's quantizer output is torch's quantizer applied to ORT's input, bit for bit
            np.testing.assert_array_equal(
                ort_out, quantizer(torch.from_numpy(ort_in)).detach().numpy(), err_msg=name)

    # the whole ONNX file the recipe wrote gives the same top-1
    session = ort.InferenceSession(str(tmp_path / "qmodel.onnx"),
                                   providers=["CPUExecutionProvider"])
    single = session.run(None, {session.get_inputs()[0].name: x[:1].numpy()})[0]
    assert single.argmax() == expected[0][0].argmax()

    with torch.no_grad():
        traced = torch.fx.symbolic_trace(qmodel)
        np.testing.assert_array_equal(traced(x).numpy(), qmodel(x).numpy())
        block = qmodel[0][2]  # one small compile: an inverted residual with quantizers
        compiled = torch.compile(block, fullgraph=True)
        h = qmodel[0][:2](x)
        # inductor's fused convolutions round differently: float tolerance on the block,
        np.testing.assert_allclose(compiled(h).numpy(), block(h).numpy(), rtol=1e-4,
                                   atol=1e-5)
        # bit for bit on the quantizer itself, thresholds and specials included
        quantizer = qmodel.get_submodule(taps.names[0])
        edges = torch.tensor([*quantizer.bounds32.tolist(), 0.0, -0.0, 1e-45, float("inf"),
                              -float("inf"), float("nan")], dtype=torch.float32)
        probe = torch.cat([edges, torch.nextafter(edges, edges + 1), torch.randn(64)])
        compiled_q = torch.compile(quantizer, fullgraph=True)
        np.testing.assert_array_equal(compiled_q(probe).numpy(), quantizer(probe).numpy())
