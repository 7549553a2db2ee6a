"""lloydmax.analysis.torch_collect: hook selection, capture and clean-up on small random models,
checked against running the sub-networks directly, and histograms against numpy/scipy."""
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from lloydmax.analysis.histogram import Histogram
from lloydmax.analysis.torch_collect import (
    collect_torch,
    histograms_from,
    iter_activations,
    select_modules,
)
from scipy import stats

from lloydmax.errors import InvalidInputError, MissingDependencyError

nn = torch.nn


def block_net(inplace=False, seed=0):
    """Conv-BN-ReLU twice, then a linear head with BatchNorm1d + ReLU, random weights and
    non-trivial BatchNorm statistics (so BN is not the identity)."""
    torch.manual_seed(seed)
    net = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(2, 4, 3, padding=1)), ("bn1", nn.BatchNorm2d(4)),
        ("relu1", nn.ReLU(inplace=inplace)),
        ("conv2", nn.Conv2d(4, 3, 3, padding=1)), ("bn2", nn.BatchNorm2d(3)),
        ("relu2", nn.ReLU(inplace=inplace)),
        ("flatten", nn.Flatten()), ("fc", nn.Linear(3 * 5 * 5, 6)), ("bn3", nn.BatchNorm1d(6)),
        ("relu3", nn.ReLU(inplace=inplace)), ("out", nn.Linear(6, 2)),
    ]))
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)
    return net


class FunctionalNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3)
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x):
        return torch.nn.functional.relu(self.bn(self.conv(x)))


class SharedReluNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 4)
        self.fc2 = nn.Linear(4, 4)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.fc2(self.act(self.fc1(x))))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).standard_normal((23, 2, 5, 5)).astype(np.float32)


def gather(stream):
    out = {}
    for name, array in stream:
        out.setdefault(name, []).append(array)
    return {name: np.concatenate(arrays) for name, arrays in out.items()}


def direct(net, x, upto):
    """Output of the sub-network ending at module ``upto`` (independent of hooks)."""
    names = list(net._modules)
    sub = nn.Sequential(*[net._modules[n] for n in names[:names.index(upto) + 1]])
    with torch.no_grad():
        return sub(torch.from_numpy(x)).numpy()


def test_relu_outputs_equal_direct_forward(images):
    net = block_net().eval()
    acts = gather(iter_activations(net, images))
    assert list(acts) == ["relu1", "relu2", "relu3"]
    for name in acts:
        np.testing.assert_array_equal(acts[name], direct(net, images, name))
        assert acts[name].dtype == np.float32


def test_bn_outputs_survive_inplace_relu(images):
    # the in-place ReLU after each BatchNorm overwrites the tensor the hook saw;
    # the collector must have copied it
    net = block_net(inplace=True).eval()
    acts = gather(iter_activations(net, images, layers="bn"))
    assert list(acts) == ["bn1", "bn2", "bn3"]
    for name, array in acts.items():
        assert (array < 0).any()
        reference = block_net(inplace=False).eval()
        np.testing.assert_array_equal(array, direct(reference, images, name))


def test_where_input_sees_preactivation_of_inplace_relu(images):
    net = block_net(inplace=True).eval()
    pre = gather(iter_activations(net, images, layers="relu", where="input"))
    reference = block_net().eval()
    for relu, bn in [("relu1", "bn1"), ("relu2", "bn2"), ("relu3", "bn3")]:
        np.testing.assert_array_equal(pre[relu], direct(reference, images, bn))


def test_batching_gives_the_same_arrays(images):
    net = block_net().eval()
    whole = gather(iter_activations(net, images, layers=("relu", "bn")))
    parts = gather(iter_activations(net, images, layers=("relu", "bn"), batch_size=5))
    assert list(whole) == list(parts)
    for name in whole:
        np.testing.assert_allclose(parts[name], whole[name], rtol=1e-6, atol=1e-6)


def test_selection_by_type_pattern_and_callable():
    net = block_net()
    assert [n for n, _ in select_modules(net, nn.Conv2d)] == ["conv1", "conv2"]
    assert [n for n, _ in select_modules(net, (nn.Linear, nn.BatchNorm1d))] == ["fc", "bn3", "out"]
    assert [n for n, _ in select_modules(net, "bn*")] == ["bn1", "bn2", "bn3"]
    assert [n for n, _ in select_modules(net, "[r]elu?")] == ["relu1", "relu2", "relu3"]
    assert [n for n, _ in select_modules(net, ["relu", "conv1"])] == ["conv1", "relu1", "relu2",
                                                                      "relu3"]
    picked = select_modules(net, lambda name, module: name.endswith("2"))
    assert [n for n, _ in picked] == ["conv2", "bn2", "relu2"]


def test_nested_names_are_qualified():
    net = nn.Sequential(nn.Sequential(nn.Linear(3, 3), nn.ReLU()), nn.ReLU())
    assert [n for n, _ in select_modules(net, "relu")] == ["0.1", "1"]
    assert [n for n, _ in select_modules(net, "0.*")] == ["0.0", "0.1"]


def test_functional_relu_is_captured_and_bn_can_be_hooked(images):
    net = FunctionalNet().eval()
    with pytest.raises(InvalidInputError, match=r"F\.relu"):
        select_modules(net, "relu")  # no module: the hint names the functional capture
    with torch.no_grad():
        out = net(torch.from_numpy(images)).numpy()
    acts = gather(iter_activations(net, images))
    assert list(acts) == ["relu#0"]  # called in the top-level forward
    np.testing.assert_array_equal(acts["relu#0"], out)
    acts = gather(iter_activations(net, images, layers="bn"))
    with torch.no_grad():
        out = net(torch.from_numpy(images)).numpy()
    # the ReLU output is the positive part of the hooked BatchNorm output
    np.testing.assert_array_equal(np.maximum(acts["bn"], 0), out)


def test_shared_module_pools_its_calls():
    torch.manual_seed(0)
    net = SharedReluNet().eval()
    x = np.random.default_rng(0).standard_normal((7, 4)).astype(np.float32)
    pairs = list(iter_activations(net, x))
    assert [name for name, _ in pairs] == ["act", "act"]
    with torch.no_grad():
        first = torch.relu(net.fc1(torch.from_numpy(x)))
        np.testing.assert_array_equal(pairs[0][1], first.numpy())
        np.testing.assert_array_equal(pairs[1][1], torch.relu(net.fc2(first)).numpy())
    hist = collect_torch(net, x, axis=None)["act"]
    assert hist.count == 2 * x.size


def test_hooks_removed_and_modes_restored(images):
    net = block_net().train()
    stream = iter_activations(net, images, batch_size=10)
    next(stream)
    # the consumer's code runs with gradients on while the generator is suspended
    assert torch.is_grad_enabled()
    assert all(net.get_submodule(name)._forward_hooks for name in ("relu1", "relu2", "relu3"))
    stream.close()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    assert net.training

    def exploding():
        yield images[:4]
        raise RuntimeError("loader failed")

    with pytest.raises(RuntimeError, match="loader failed"):
        list(iter_activations(net, exploding()))
    assert all(not m._forward_hooks for m in net.modules())
    assert net.training


def test_eval_mode_uses_running_statistics(images):
    # in training mode BatchNorm would normalise by the batch; the collector must not
    net = block_net().train()
    acts = gather(iter_activations(net, images, layers="bn1"))
    reference = block_net().eval()
    np.testing.assert_array_equal(acts["bn1"], direct(reference, images, "bn1"))


def test_input_kinds(images):
    net = block_net().eval()
    expected = gather(iter_activations(net, images))
    as_float64 = gather(iter_activations(net, images.astype(np.float64)))
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(images), torch.zeros(len(images)))
    loader = torch.utils.data.DataLoader(dataset, batch_size=6, shuffle=False)
    from_loader = gather(iter_activations(net, loader))
    from_generator = gather(iter_activations(net, (images[i:i + 9] for i in range(0, 23, 9))))
    for got in (as_float64, from_loader, from_generator):
        for name in expected:
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-6, atol=1e-6)


def test_mapping_batches_are_keyword_arguments():
    class Keyword(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.ReLU()

        def forward(self, a, b):
            return self.act(a - b)

    a = np.array([[1.0, -2.0, 3.0]], dtype=np.float32)
    b = np.array([[0.5, 0.5, 0.5]], dtype=np.float32)
    (_name, array), = list(iter_activations(Keyword(), [{"a": a, "b": b}]))
    np.testing.assert_array_equal(array, np.maximum(a - b, 0))


@pytest.mark.parametrize("kwargs, message", [
    (dict(inputs=42), "iterable of batches"),
    (dict(inputs=[]), "no batches"),
    (dict(inputs=[np.zeros((1, 2, 5, 5), np.float32)], batch_size=2), "already batched"),
    (dict(batch_size=0), "batch_size"),
    (dict(where="middle"), "where"),
    (dict(layers="nothing*"), "selects no module"),
    (dict(layers=3.5), "layers"),
    (dict(layers=[nn.ReLU, 7]), "layers entries"),
])
def test_bad_arguments_raise_one_line_errors(images, kwargs, message):
    net = block_net()
    kwargs.setdefault("inputs", images)
    inputs = kwargs.pop("inputs")
    with pytest.raises(InvalidInputError, match=message) as info:
        list(iter_activations(net, inputs, **kwargs))
    assert "\n" not in str(info.value)


def test_not_a_module_is_rejected(images):
    with pytest.raises(InvalidInputError, match=r"torch\.nn\.Module"):
        collect_torch(lambda x: x, images)


def test_histograms_match_numpy_and_scipy(images):
    net = block_net().eval()
    acts = gather(iter_activations(net, images, layers=("relu", "bn")))
    per_channel = collect_torch(net, images, layers=("relu", "bn"), batch_size=4)
    pooled = collect_torch(net, images, layers=("relu", "bn"), axis=None, n_bins=256)
    assert list(per_channel) == list(acts) == list(pooled)
    for name, array in acts.items():
        hist = per_channel[name]
        assert hist.n_channels == array.shape[1]
        for c in range(array.shape[1]):
            values = np.moveaxis(array, 1, 0)[c].ravel().astype(np.float64)
            assert hist.count[c] == values.size
            assert hist.zeros[c] == np.count_nonzero(values == 0)
            np.testing.assert_allclose(hist.mean[c], values.mean(), rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(hist.std[c], values.std(), rtol=1e-12)
            nonzero = values[values != 0]
            if nonzero.size == 0:  # a dead ReLU channel: everything is an exact zero
                assert not hist.counts(c).any()
                continue
            counts, _ = np.histogram(nonzero, bins=hist.edges(c))
            np.testing.assert_array_equal(hist.counts(c), counts)
        values = array.ravel().astype(np.float64)
        whole = pooled[name]
        assert whole.count == values.size
        assert whole.zeros == np.count_nonzero(values == 0)
        assert whole.min == values.min() and whole.max == values.max()
        # skewness and kurtosis come from the bins: within the histogram's stated bound
        b_skew, b_kurt = whole.shape_error_bounds()
        assert abs(whole.skewness - stats.skew(values)) <= b_skew * (1 + 1e-9) + 1e-12
        assert abs(whole.kurtosis - stats.kurtosis(values)) <= b_kurt * (1 + 1e-9) + 1e-12


def test_low_rank_outputs_are_pooled():
    # a (N,) output has no channel axis 1: its histogram pools the tensor
    net = nn.Sequential(nn.Linear(3, 1), nn.Flatten(0), nn.ReLU())
    x = np.random.default_rng(2).standard_normal((11, 3)).astype(np.float32)
    hist = collect_torch(net, x)["2"]
    assert hist.axis is None and hist.count == 11


def test_histograms_from_rejects_an_empty_stream():
    with pytest.raises(InvalidInputError, match="no activation"):
        histograms_from(iter(()))


@settings(deadline=None, max_examples=12)
@given(batch_size=st.integers(1, 23))
def test_histograms_do_not_depend_on_batching(images, batch_size):
    net = block_net().eval()
    whole = collect_torch(net, images)
    split = collect_torch(net, images, batch_size=batch_size)
    assert list(whole) == list(split)
    for name in whole:
        assert isinstance(split[name], Histogram)
        # forward results can differ in the last bit between batch sizes (different
        # kernels), so compare statistics, not bits
        np.testing.assert_array_equal(split[name].count, whole[name].count)
        np.testing.assert_allclose(split[name].mean, whole[name].mean, rtol=1e-5, atol=1e-6)


def test_progress_bar_draws_on_request(images, capsys):
    collect_torch(block_net(), images, batch_size=8, progress=True)
    assert "collect torch" in capsys.readouterr().err
    collect_torch(block_net(), images, batch_size=8, progress=False)
    assert capsys.readouterr().err == ""


def test_missing_torch_names_the_extra(monkeypatch, images):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes "import torch" fail
    with pytest.raises(MissingDependencyError, match=r"lloydmax\[torch\]"):
        collect_torch(object(), images)
