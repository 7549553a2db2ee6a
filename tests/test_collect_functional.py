"""collect_torch / iter_activations capture ReLUs called as functions inside ``forward``
(``F.relu``, ``torch.relu``, ``x.relu()``, ``F.relu6``, ``F.hardtanh(min_val=0)``), named by
the enclosing module and the call's rank, checked against the same activations computed
directly and histogrammed with numpy."""
import numpy as np
import pytest
import torch
from lloydmax.analysis.torch_collect import collect_torch, iter_activations

F = torch.nn.functional
nn = torch.nn


class Inner(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)

    def pre(self, x):
        return self.bn(self.conv(x))

    def forward(self, x):
        y = F.relu(self.pre(x))
        return torch.relu(y - 0.25), y


class Net(nn.Module):
    """Functional ReLUs in a nested module and at the top, next to an ``nn.ReLU`` module
    (which calls ``F.relu`` itself: that call belongs to the module hook)."""

    def __init__(self):
        super().__init__()
        self.block = Inner()
        self.act = nn.ReLU()
        self.clip = nn.Hardtanh(-1.0, 1.0)  # not ReLU-like: never captured

    def forward(self, x):
        z, y = self.block(x)
        a = self.act(z - 0.1)
        b = (a - 0.3).relu()
        c = F.relu6(4 * y - 1)
        d = F.hardtanh(y - 0.5, min_val=0.0, max_val=2.0)
        e = F.hardtanh(y - 0.5, -1.0, 1.0)  # min -1: not a ReLU
        return self.clip(b + c + d + e)


def reference(net, x):
    """Every ReLU-like activation, computed without hooks (numpy for the ReLUs)."""
    with torch.no_grad():
        pre = net.block.pre(torch.from_numpy(x)).numpy().astype(np.float32)
    y = np.maximum(pre, np.float32(0))
    z = np.maximum(y - np.float32(0.25), np.float32(0))
    a = np.maximum(z - np.float32(0.1), np.float32(0))
    b = np.maximum(a - np.float32(0.3), np.float32(0))
    c = np.clip(np.float32(4) * y - np.float32(1), np.float32(0), np.float32(6))
    d = np.clip(y - np.float32(0.5), np.float32(0), np.float32(2))
    return {"block:relu#0": y, "block:relu#1": z, "act": a, "relu#0": b, "relu6#0": c,
            "hardtanh#0": d}


@pytest.fixture(scope="module")
def net_and_x():
    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():
        net.block.bn.running_mean.uniform_(-0.5, 0.5)
        net.block.bn.running_var.uniform_(0.5, 2.0)
    x = np.random.default_rng(3).standard_normal((9, 2, 6, 6)).astype(np.float32)
    return net, x


def test_functional_relus_are_named_by_module_and_rank(net_and_x):
    net, x = net_and_x
    pairs = list(iter_activations(net, x))
    expected = reference(net, x)
    assert [name for name, _ in pairs] == list(expected)
    for name, array in pairs:
        np.testing.assert_allclose(array, expected[name], rtol=1e-6, atol=1e-6)


def test_functional_histograms_match_numpy(net_and_x):
    net, x = net_and_x
    hists = collect_torch(net, x, batch_size=4)
    acts = dict(iter_activations(net, x))  # one batch: the very values collect_torch saw
    assert list(hists) == list(reference(net, x))
    for name, hist in hists.items():
        values = np.moveaxis(acts[name], 1, 0).reshape(acts[name].shape[1], -1)
        assert hist.n_channels == values.shape[0]
        for c, row in enumerate(values.astype(np.float64)):
            assert hist.count[c] == row.size
            assert hist.zeros[c] == np.count_nonzero(row == 0)
            np.testing.assert_allclose(hist.mean[c], row.mean(), rtol=1e-6, atol=1e-9)
            nonzero = row[row != 0]
            if nonzero.size:
                counts, _ = np.histogram(nonzero, bins=hist.edges(c))
                np.testing.assert_array_equal(hist.counts(c), counts)


def test_where_input_gives_the_functional_relus_argument(net_and_x):
    net, x = net_and_x
    pre = dict(iter_activations(net, x, where="input"))
    with torch.no_grad():
        bn = net.block.pre(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(pre["block:relu#0"], bn)
    np.testing.assert_allclose(pre["block:relu#1"], np.maximum(bn, 0) - np.float32(0.25),
                               rtol=1e-6, atol=1e-7)


def test_a_module_called_twice_pools_its_call_sites():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Inner()

        def forward(self, x):
            z, _ = self.block(x)
            z2, _ = self.block(z[:, :2])
            return z2

    torch.manual_seed(1)
    net = Twice().eval()
    x = np.random.default_rng(4).standard_normal((5, 2, 4, 4)).astype(np.float32)
    names = [name for name, _ in iter_activations(net, x)]
    assert names == ["block:relu#0", "block:relu#1"] * 2
    hists = collect_torch(net, x, axis=None)
    assert list(hists) == ["block:relu#0", "block:relu#1"]
    assert hists["block:relu#0"].count == 2 * 5 * 3 * 4 * 4


def test_relu_modules_are_not_counted_twice():
    # nn.ReLU and nn.ReLU6 call F.relu / F.hardtanh(0, 6) inside: one entry per module
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU6(),
                        nn.Hardtanh(0.0, 3.0))
    x = np.random.default_rng(5).standard_normal((6, 3)).astype(np.float32)
    assert [name for name, _ in iter_activations(net, x)] == ["1", "3", "4"]
    assert [name for name, _ in iter_activations(net, x, layers="activation")] == ["1", "3", "4"]


def test_other_selections_do_not_capture_functions(net_and_x):
    net, x = net_and_x
    assert list(collect_torch(net, x, layers="bn")) == ["block.bn"]
    assert list(collect_torch(net, x, layers=nn.ReLU)) == ["act"]
    assert list(collect_torch(net, x, layers="[a]ct")) == ["act"]


def test_hooks_and_mode_are_gone_afterwards(net_and_x):
    net, x = net_and_x
    stream = iter_activations(net, x)
    next(stream)
    assert torch.relu(torch.tensor([-1.0])).item() == 0  # no capture outside the forward
    stream.close()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    assert list(iter_activations(net, x))  # and a second run works the same
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())


def test_a_hooked_block_keeps_its_functional_relus(net_and_x):
    # selecting a block by name hooks its output; the F.relu calls inside it are separate
    # activations and are still captured (only a leaf module's own call is its output)
    net, x = net_and_x
    names = [name for name, _ in iter_activations(net, x, layers=("relu", "block"))]
    assert names == ["block:relu#0", "block:relu#1", "block", "act", "relu#0", "relu6#0",
                     "hardtanh#0"]

    class MyReLU(nn.Module):  # a custom activation: its own F.relu is its output
        def forward(self, x):
            return F.relu(x)

    custom = nn.Sequential(nn.Linear(3, 3), MyReLU())
    x2 = np.ones((2, 3), np.float32)
    assert [n for n, _ in iter_activations(custom, x2, layers=("relu", MyReLU))] == ["1"]
    assert [n for n, _ in iter_activations(custom, x2)] == ["1:relu#0"]
