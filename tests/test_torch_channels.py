"""Direct Quantization's modules: per-channel tables and learnable levels."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lloydmax as lm  # noqa: E402
import lloydmax.torch as lt  # noqa: E402
from lloydmax.errors import InvalidInputError, InvalidTableError  # noqa: E402


@pytest.fixture(scope="module")
def channel_tables():
    dq = lm.presets.get_preset("dq")
    return dq.activation_tables([0.5, 1.0, 2.0], 2)


def channel_inputs(tables) -> np.ndarray:
    """(n, C, 1) float32: per channel its thresholds and levels, one ulp either side,
    specials and random values."""
    columns = []
    for t in tables:
        values = [0.0, -0.0, 1e-45, np.inf, -np.inf, np.nan]
        for v in [*t.thresholds, *t.levels]:
            f = np.float32(v)
            values += [f, np.nextafter(f, np.float32(np.inf)), np.nextafter(f, np.float32(-1))]
        columns.append(values)
    n = min(len(c) for c in columns)
    rng = np.random.default_rng(0)
    block = np.array([c[:n] for c in columns], dtype=np.float32).T
    noise = rng.normal(0.5, 1.5, (200, len(tables))).astype(np.float32)
    return np.concatenate([block, noise])[:, :, None]


def test_channel_quantizer_bit_exact_per_channel(channel_tables):
    q = lt.ChannelQuantizer(channel_tables)
    x = channel_inputs(channel_tables)
    got = q(torch.from_numpy(x)).numpy()
    for c, t in enumerate(channel_tables):
        expected = t.quantize(x[:, c, 0].astype(np.float64)).astype(np.float32)
        np.testing.assert_array_equal(got[:, c, 0], expected)
    x64 = torch.from_numpy(x.astype(np.float64))
    for c, t in enumerate(channel_tables):
        np.testing.assert_array_equal(q(x64).numpy()[:, c, 0], t.quantize(x64.numpy()[:, c, 0]))


def test_channel_quantizer_backward_export_and_state(channel_tables, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    q = lt.ChannelQuantizer(channel_tables)
    x = torch.tensor([[[0.5], [1.9], [3.7]], [[-1.0], [0.0], [4.0]]], requires_grad=True)
    q(x).sum().backward()
    q_max = [t.levels[-1] for t in channel_tables]
    expected = [[float(0 < v <= q_max[c]) for c, v in enumerate(row)] for row in
                [[0.5, 1.9, 3.7], [-1.0, 0.0, 4.0]]]
    assert x.grad[..., 0].tolist() == expected
    inputs = torch.from_numpy(channel_inputs(channel_tables))
    for dynamo in (False, True):
        path = tmp_path / f"c{dynamo}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(q, (inputs,), str(path), dynamo=dynamo)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})[0]
        np.testing.assert_array_equal(got, q(inputs).numpy())
    other = lt.ChannelQuantizer([channel_tables[0]] * 3)
    other.load_state_dict(q.state_dict())
    assert torch.equal(other.bounds32, q.bounds32)
    torch.save(q, tmp_path / "q.pt")
    back = torch.load(tmp_path / "q.pt", weights_only=False)
    np.testing.assert_array_equal(back(inputs).numpy(), q(inputs).numpy())
    traced = torch.fx.symbolic_trace(torch.nn.Sequential(q))
    np.testing.assert_array_equal(traced(inputs).numpy(), q(inputs).numpy())
    with pytest.raises(InvalidInputError, match="channels"):
        q(torch.zeros(2, 4, 1))
    with pytest.raises(InvalidTableError, match="different level counts"):
        lt.ChannelQuantizer([channel_tables[0], lm.solve(bits=3, dist="halfwave-gaussian")])


def test_learnable_levels_get_gradients_and_stay_sorted():
    table = lm.solve(bits=2, dist="gaussian")  # thresholds at the midpoints
    q = lt.LearnableLevelsQuantizer(table)
    x = torch.tensor([-3.0, -1.0, -0.2, 0.1, 0.5, 1.2, 5.0, float("nan")], requires_grad=True)
    y = q(x)
    expected = table.quantize(x.detach().numpy().astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(y.detach().numpy(), expected)
    y[~torch.isnan(y)].sum().backward()
    # each level's gradient counts the outputs of its cell
    cells = np.searchsorted(table.thresholds, x.detach().numpy()[:-1], side="left")
    assert q.levels.grad.tolist() == np.bincount(cells, minlength=4).astype(float).tolist()
    assert x.grad.tolist()[:7] == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    opt = torch.optim.SGD(q.parameters(), lr=1.0)
    with torch.no_grad():
        q.levels[1] = 3.0  # an optimizer step that crosses levels
    q.train()
    q(x.detach())
    assert torch.all(q.levels[1:] > q.levels[:-1])
    opt.zero_grad()
    q(torch.rand(100) * 3).sum().backward()
    opt.step()
    q(torch.rand(10))
    assert torch.all(q.levels[1:] >= q.levels[:-1])
