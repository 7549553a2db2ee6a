"""Real activations: a small Conv-BN-ReLU CNN trained on scikit-learn's digits (once per
session, about 1-2 s of training), collected through torch hooks and through ONNX Runtime
after ``torch.onnx.export``; histograms checked against numpy/scipy on the same arrays."""
import io
import warnings

import numpy as np
import pytest
import torch
from lloydmax.analysis.onnx_collect import collect_onnx, iter_onnx_activations
from lloydmax.analysis.torch_collect import collect_torch, iter_activations
from scipy import stats

from tests.digits_net import accuracy, load_digits_split, train_digits_net

RELUS = ["relu1", "relu2", "relu3", "relu4"]
BNS = ["bn1", "bn2", "bn3", "bn4"]


@pytest.fixture(scope="module")
def trained():
    return train_digits_net(seed=0)


@pytest.fixture(scope="module")
def images(trained):
    return trained.data.x_test


def gather(stream):
    out = {}
    for name, array in stream:
        out.setdefault(name, []).append(array)
    return {name: np.concatenate(arrays) for name, arrays in out.items()}


@pytest.fixture(scope="module")
def torch_acts(trained, images):
    return gather(iter_activations(trained.model, images, layers=("relu", "bn"),
                                   batch_size=128))


def export(model, example, optimize):
    # the default (dynamo) exporter of torch 2.13; with optimize=True it folds each
    # BatchNorm into the convolution before it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (torch.from_numpy(example),), dynamo=True,
                                    input_names=["x"], verbose=False, optimize=optimize,
                                    dynamic_shapes=({0: torch.export.Dim("batch")},))
    return program.model_proto.SerializeToString()


@pytest.fixture(scope="module")
def onnx_folded(trained, images):
    return export(trained.model, images[:2], optimize=True)


@pytest.fixture(scope="module")
def onnx_plain(trained, images):
    return export(trained.model, images[:2], optimize=False)


def test_held_out_accuracy(trained):
    assert trained.test_accuracy > 0.9
    assert len(trained.data.y_test) == 450  # 25 % of 1797, stratified
    # an independent evaluation of the same model on the held-out images
    with torch.no_grad():
        logits = trained.model(torch.from_numpy(trained.data.x_test)).numpy()
    assert (logits.argmax(axis=1) == trained.data.y_test).mean() == trained.test_accuracy


def test_training_is_reproducible_and_leaves_global_state_alone():
    data = load_digits_split(seed=1)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    first = train_digits_net(seed=1, epochs=1, data=data)
    assert torch.get_num_threads() == threads
    # the caller's random stream, determinism flag and thread count are untouched
    assert torch.equal(torch.rand(3), expected_next)
    assert not torch.are_deterministic_algorithms_enabled()
    second = train_digits_net(seed=1, epochs=1, data=data)
    for (k1, v1), (k2, v2) in zip(first.model.state_dict().items(),
                                  second.model.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    assert accuracy(first.model, data.x_test, data.y_test) == first.test_accuracy


def test_state_dict_is_small(trained):
    buffer = io.BytesIO()
    torch.save(trained.model.state_dict(), buffer)
    assert len(buffer.getvalue()) < 200_000


def test_relu_zeros_are_exactly_the_nonpositive_bn_outputs(torch_acts):
    for relu, bn in zip(RELUS, BNS):
        np.testing.assert_array_equal(torch_acts[relu], np.maximum(torch_acts[bn], 0))


def test_sparsity_of_bn_relu_layers(torch_acts):
    # HWGQ's premise: after BatchNorm about half of the ReLU outputs are zero
    for name in RELUS:
        sparsity = np.mean(torch_acts[name] == 0)
        assert 0.2 < sparsity < 0.9, (name, sparsity)


def test_onnx_relu_outputs_equal_torch(torch_acts, onnx_folded, images):
    acts = gather(iter_onnx_activations(onnx_folded, images, batch_size=100))
    assert len(acts) == 4
    for (key, array), name in zip(acts.items(), RELUS):
        assert array.shape == torch_acts[name].shape, key
        np.testing.assert_allclose(array, torch_acts[name], rtol=1e-5, atol=2e-5)


def test_onnx_relu_inputs_equal_torch_bn_outputs_after_folding(torch_acts, onnx_folded, images):
    acts = gather(iter_onnx_activations(onnx_folded, {"x": images}, where="input"))
    for (_key, array), name in zip(acts.items(), BNS):
        np.testing.assert_allclose(array, torch_acts[name], rtol=1e-5, atol=2e-5)


def test_onnx_batchnorm_outputs_equal_torch(torch_acts, onnx_plain, images):
    acts = gather(iter_onnx_activations(onnx_plain, images, layers="bn"))
    assert len(acts) == 4
    for (_key, array), name in zip(acts.items(), BNS):
        np.testing.assert_allclose(array, torch_acts[name], rtol=1e-5, atol=2e-5)


def check_against_numpy(hist, array, per_channel):
    """Every number of ``hist`` against numpy/scipy on the captured activations."""
    if per_channel:
        columns = [np.moveaxis(array, 1, 0)[c].ravel() for c in range(array.shape[1])]
    else:
        columns = [array.ravel()]
    for c, values in enumerate(columns):
        values = values.astype(np.float64)
        pick = (lambda v, c=c: v[c]) if per_channel else (lambda v: v)
        assert pick(hist.count) == values.size
        assert pick(hist.zeros) == np.count_nonzero(values == 0)
        assert pick(hist.min) == values.min() and pick(hist.max) == values.max()
        np.testing.assert_allclose(pick(hist.mean), values.mean(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(pick(hist.std), values.std(), rtol=1e-12)
        nonzero = values[values != 0]
        channel = c if per_channel else None
        if nonzero.size == 0:  # a dead channel
            assert not hist.counts(channel).any()
            continue
        if np.ptp(values) > 0:
            # from the exact bin counts, within the histogram's proven bound
            skew_bound, kurt_bound = hist.shape_error_bounds(channel)
            assert abs(pick(hist.skewness) - stats.skew(values)) <= skew_bound
            assert abs(pick(hist.kurtosis) - stats.kurtosis(values)) <= kurt_bound
        w = hist.bin_width(channel)
        # the canonical grid: the narrowest power-of-two width that spans the data
        lo, hi = nonzero.min(), nonzero.max()
        assert np.floor(hi / w) - np.floor(lo / w) < hist.n_bins
        assert np.floor(hi / (w / 2)) - np.floor(lo / (w / 2)) >= hist.n_bins
        edges = hist.edges(channel)
        assert edges[0] == np.floor(lo / w) * w
        counts, _ = np.histogram(nonzero, bins=edges)
        np.testing.assert_array_equal(hist.counts(channel), counts)


def test_torch_histograms_equal_numpy_on_the_same_activations(trained, images, torch_acts):
    per_channel = collect_torch(trained.model, images, layers=("relu", "bn"), batch_size=128)
    pooled = collect_torch(trained.model, images, layers=("relu", "bn"), axis=None,
                           batch_size=128)
    assert list(per_channel) == list(torch_acts) == list(pooled)
    for name, array in torch_acts.items():
        check_against_numpy(per_channel[name], array, per_channel=True)
        check_against_numpy(pooled[name], array, per_channel=False)


def test_onnx_histograms_equal_numpy_and_agree_with_torch(onnx_folded, images, torch_acts):
    hists = collect_onnx(onnx_folded, images, axis=None, batch_size=150)
    acts = gather(iter_onnx_activations(onnx_folded, images, batch_size=150))
    assert list(hists) == list(acts)
    for (key, hist), name in zip(hists.items(), RELUS):
        check_against_numpy(hist, acts[key], per_channel=False)
        reference = torch_acts[name]
        assert hist.count == reference.size
        # the runtimes round differently; a value within 1 ulp of 0 may flip sides
        assert abs(hist.zeros - np.count_nonzero(reference == 0)) <= 1e-4 * reference.size
        np.testing.assert_allclose(hist.mean, reference.astype(np.float64).mean(), rtol=1e-5)
        np.testing.assert_allclose(hist.std, reference.astype(np.float64).std(), rtol=1e-5)


def test_cli_analyze_onnx_model_equals_torch_report(tmp_path, trained, onnx_folded, capsys):
    """`lloydmax analyze model.onnx --inputs x.npz` on the real network: its CSV equals the
    report of the same activations collected through the torch hooks."""
    import pandas as pd
    from lloydmax.analysis import collect_torch, report

    from lloydmax.cli import main

    model_path, inputs = tmp_path / "digits.onnx", tmp_path / "x.npz"
    model_path.write_bytes(onnx_folded)
    x = trained.data.x_test
    np.savez(inputs, x=x)
    out_csv = tmp_path / "report.csv"
    assert main(["analyze", str(model_path), "--inputs", str(inputs), "--bits", "2",
                 "-o", str(out_csv)]) == 0
    capsys.readouterr()
    got = pd.read_csv(out_csv)
    want = report(collect_torch(trained.model, x, layers="relu", axis=None), bits=(2,))
    assert len(got) == len(want) == 4
    for col in ("count", "sparsity"):
        np.testing.assert_array_equal(got[col].to_numpy(float), want[col].to_numpy(float))
    for col in ("mean", "std", "sqnr_b2_dp", "sqnr_b2_hwgq_unit"):
        np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float), rtol=1e-3)
