"""Collection memory: collect_torch hands the histograms the activation tensors themselves
(no copy, channels-last read in memory order), iter_activations holds at most one batch
of copies, and strided numpy arrays are histogrammed without a copy, with the same
result as their C-order copy."""
import gc
import importlib
import weakref
from collections import OrderedDict

import numpy as np
import torch
from lloydmax.analysis import collect
from lloydmax.analysis.collect import memory_order
from lloydmax.analysis.histogram import Histogram
from lloydmax.analysis.torch_collect import collect_torch, histograms_from, iter_activations

collect_module = importlib.import_module("lloydmax.analysis.collect")

nn = torch.nn


def conv_net(inplace=False):
    torch.manual_seed(0)
    net = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 5, 3, padding=1)), ("bn1", nn.BatchNorm2d(5)),
        ("relu1", nn.ReLU(inplace=inplace)),
        ("conv2", nn.Conv2d(5, 4, 3, padding=1)), ("bn2", nn.BatchNorm2d(4)),
        ("relu2", nn.ReLU6(inplace=inplace))]))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.0)  # every channel lives
                m.running_var.uniform_(0.5, 2.0)
                m.bias.uniform_(0.1, 0.3)
    return net.eval()


def images(n=6, seed=0):
    return torch.from_numpy(
        np.random.default_rng(seed).standard_normal((n, 3, 7, 7)).astype(np.float32))


def record_updates(monkeypatch):
    """The arrays handed to Histogram.update / update_along, in call order."""
    seen = []
    for method in ("update", "update_along"):
        original = getattr(Histogram, method)

        def spy(self, data, *rest, original=original, method=method):
            seen.append((method, data, rest))
            return original(self, data, *rest)

        monkeypatch.setattr(Histogram, method, spy)
    return seen


def outputs_of(net, x, names):
    """The modules' output tensors, kept by hooks of our own."""
    out = {}
    hooks = [net.get_submodule(n).register_forward_hook(
        lambda m, a, o, n=n: out.__setitem__(n, o)) for n in names]
    return out, hooks


def test_collect_torch_reads_contiguous_activations_in_place(monkeypatch):
    net = conv_net()
    x = images()
    out, hooks = outputs_of(net, x, ["relu1", "relu2"])
    seen = record_updates(monkeypatch)
    hists = collect_torch(net, x)
    for h in hooks:
        h.remove()
    assert [method for method, _, _ in seen] == ["update", "update"]
    for (_, array, _), name in zip(seen, ["relu1", "relu2"]):
        # the very memory of the module's output, C-contiguous: the histogram copies nothing
        assert np.shares_memory(array, out[name].numpy())
        assert array.flags.c_contiguous and array.dtype == np.float32
        assert array.shape == tuple(out[name].shape)
    check_against_reference(hists, out)


def test_channels_last_goes_through_one_bounded_buffer(monkeypatch):
    net = conv_net().to(memory_format=torch.channels_last)
    x = images().contiguous(memory_format=torch.channels_last)
    out, hooks = outputs_of(net, x, ["relu1", "relu2"])
    monkeypatch.setattr(collect_module, "SCRATCH", 2 * 5 * 49)  # two images of relu1
    seen = record_updates(monkeypatch)
    hists = collect_torch(net, x)
    for h in hooks:
        h.remove()
    assert all(out[n].is_contiguous(memory_format=torch.channels_last) for n in out)
    slabs = {"relu1": [a for _, a, _ in seen[:3]], "relu2": [a for _, a, _ in seen[3:]]}
    assert [a.shape[0] for a in slabs["relu1"]] == [2, 2, 2]
    assert [a.shape[0] for a in slabs["relu2"]] == [2, 2, 2]
    for name, arrays in slabs.items():
        assert [m for m, _, _ in seen] == ["update"] * 6
        for a in arrays:  # channel-major slabs of one reused buffer, never the whole tensor
            assert a.flags.c_contiguous and a.size <= 2 * 5 * 49
            assert not np.shares_memory(a, out[name].numpy())
            assert np.shares_memory(a, arrays[0])
    check_against_reference(hists, out)


def test_a_strict_histogram_reads_channels_last_in_place(monkeypatch):
    net = conv_net().to(memory_format=torch.channels_last)
    x = images().contiguous(memory_format=torch.channels_last)
    out, hooks = outputs_of(net, x, ["relu1"])
    seen = record_updates(monkeypatch)
    hists = collect_torch(net, x, layers="relu1", strict=True)
    hooks[0].remove()
    (method, array, rest), = seen  # NHWC in memory: channels on the last axis
    assert method == "update_along" and rest == (3,) and array.flags.c_contiguous
    assert np.shares_memory(array, out["relu1"].numpy())
    expected = collect_torch(conv_net(), images(), layers="relu1")["relu1"]
    np.testing.assert_array_equal(hists["relu1"].count, expected.count)


def check_against_reference(hists, out):
    """Each channel's counts against numpy on the module outputs themselves."""
    assert list(hists) == ["relu1", "relu2"]
    for name, hist in hists.items():
        values = out[name].numpy()
        for c in range(values.shape[1]):
            row = values[:, c].ravel().astype(np.float64)
            assert hist.count[c] == row.size and hist.zeros[c] == np.count_nonzero(row == 0)
            nonzero = row[row != 0]
            assert np.unique(nonzero).size > 100  # a live channel: a well-defined grid
            counts, _ = np.histogram(nonzero, bins=hist.edges(c))
            np.testing.assert_array_equal(hist.counts(c), counts)


def test_collect_torch_sees_bn_before_an_inplace_relu():
    # read inside the hook, before the in-place ReLU overwrites the BatchNorm output
    hists = collect_torch(conv_net(inplace=True), images(), layers="bn", axis=None)
    with torch.no_grad():
        bn1 = conv_net()[:2](images()).numpy().astype(np.float64)
    assert hists["bn1"].min == bn1.min() < 0
    assert hists["bn1"].zeros == np.count_nonzero(bn1 == 0)
    np.testing.assert_allclose(hists["bn1"].mean, bn1.mean(), rtol=1e-9)


def test_float64_models_are_read_as_float64(monkeypatch):
    net = conv_net().double()
    seen = record_updates(monkeypatch)
    collect_torch(net, images().double(), axis=None)
    assert [a.dtype for _, a, _ in seen] == [np.float64, np.float64]


def test_iter_activations_holds_one_batch_at_most():
    net = conv_net()
    alive = []  # weak references to the arrays the consumer has let go of
    starts = []

    def check(module, args):  # at the start of each forward: no earlier batch is alive
        gc.collect()
        starts.append(sum(ref() is not None for ref in alive))

    hook = net.register_forward_pre_hook(check)
    batches = [images(3, seed) for seed in range(4)]
    for _name, array in iter_activations(net, batches):
        alive.append(weakref.ref(array))
        del array
    hook.remove()
    assert len(alive) == 8 and starts == [0, 0, 0, 0]


def test_strided_numpy_arrays_are_read_without_a_copy():
    rng = np.random.default_rng(0)
    nhwc = rng.standard_normal((4, 5, 6, 3)).astype(np.float32)
    nchw = nhwc.transpose(0, 3, 1, 2)  # channels-last memory, NCHW shape
    view, axis = memory_order(nchw, 1)
    assert np.shares_memory(view, nhwc) and view.flags.c_contiguous and axis == 3
    assert memory_order(np.asfortranarray(nhwc), 1)[1] == 2
    strided = nhwc[:, ::2]
    assert memory_order(strided, 1)[0] is strided  # no contiguous permutation: unchanged
    plain = np.ascontiguousarray(nchw)
    for source in (nchw, [nchw[:2], nchw[2:]], np.asfortranarray(plain)):
        assert collect(source, axis=1) == collect(plain, axis=1)
        assert collect(source) == collect(plain)


def test_channel_major_memory_is_read_in_place(monkeypatch):
    # an F-order (N, C) array: each channel is one contiguous run already
    arr = np.asfortranarray(np.random.default_rng(1).standard_normal((50, 4)))
    seen = record_updates(monkeypatch)
    hists = histograms_from([("a", arr)])
    (method, array, rest), = seen
    assert method == "update_along" and rest == (0,) and np.shares_memory(array, arr)
    assert hists["a"] == collect(np.ascontiguousarray(arr), axis=1)
