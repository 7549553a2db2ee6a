"""The torch.ao-style LloydMaxObserver and LloydMaxFakeQuantize, in a QConfig with eager
prepare_qat."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from lloydmax.analysis import Histogram, LloydMaxFakeQuantize, LloydMaxObserver  # noqa: E402
from torch import nn  # noqa: E402

from lloydmax._dp import solve_dp  # noqa: E402


def test_observer_returns_input_and_gives_the_data_dp_table():
    obs = LloydMaxObserver()
    x = torch.relu(torch.randn(4000, generator=torch.Generator().manual_seed(0)))
    for part in x.split(1000):
        assert obs(part) is part
    hist = Histogram().update(x.numpy())
    v, w = hist.to_weighted_points()
    expected = solve_dp(v, bits=2, weights=w, convention="hwgq")
    got = obs.table(2, convention="hwgq")
    assert got.levels.tolist() == expected.levels.tolist() and got.levels[0] == 0.0
    per_channel = LloydMaxObserver(ch_axis=1)
    y = torch.randn(500, 3) * torch.tensor([0.5, 1.0, 2.0])
    per_channel(y)
    tables = per_channel.table(1)
    assert len(tables) == 3 and tables[0].levels[-1] < tables[2].levels[-1]
    with pytest.raises(NotImplementedError, match="onnx"):
        obs.calculate_qparams()


def test_fake_quantize_in_a_qconfig_with_eager_prepare_qat():
    from torch.ao.quantization import QConfig, disable_observer, prepare_qat

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 6 * 6, 2)).train()
    model.qconfig = QConfig(activation=LloydMaxFakeQuantize.with_args(bits=2),
                            weight=LloydMaxFakeQuantize.with_args(bits=1, ch_axis=0))
    prepare_qat(model, inplace=True)
    assert isinstance(model[0].weight_fake_quant, LloydMaxFakeQuantize)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 2, (16,))
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    assert model[0].weight.grad is not None and model[0].weight.grad.abs().sum() > 0
    fq = model[0].weight_fake_quant
    q = fq(model[0].weight)
    for c in range(4):  # each output channel of the weight on its own 2 levels
        assert len(torch.unique(q[c])) <= 2
        assert set(torch.unique(q[c]).tolist()) <= set(np.float32(fq.tables[c].levels).tolist())
    relu_fq = model[1].activation_post_process  # torch.ao observes BN, not ReLU, outputs
    model.apply(disable_observer)
    frozen = relu_fq.tables
    model(x)
    assert relu_fq.tables is frozen and int(relu_fq.observer_enabled[0]) == 0
    with pytest.raises(NotImplementedError):
        relu_fq.calculate_qparams()
