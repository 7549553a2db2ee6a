"""Collectors: arrays, batches, .npy (memory-mapped, chunked) and .npz (streamed per layer)."""
import importlib
import io

import numpy as np
import pytest
from lloydmax.analysis._progress import Progress
from lloydmax.analysis.collect import collect
from lloydmax.analysis.histogram import Histogram

from lloydmax.errors import InvalidDataError, InvalidInputError

collect_mod = importlib.import_module("lloydmax.analysis.collect")  # the module, not the function


@pytest.fixture()
def acts():
    rng = np.random.default_rng(11)
    a = np.maximum(rng.standard_normal((40, 6, 4, 4)), 0).astype(np.float32)
    b = (rng.standard_normal((40, 10)) * 50).astype(np.float64)
    return a, b


def test_npy_memmap_chunked_equals_in_memory(tmp_path, acts, monkeypatch):
    a, _ = acts
    np.save(tmp_path / "a.npy", a)
    monkeypatch.setattr(collect_mod, "SLAB", 100)  # many slabs
    for axis in (None, 1, 0, -1):
        got = collect(tmp_path / "a.npy", axis=axis, n_bins=64, progress=False)
        want = Histogram(n_bins=64, axis=axis).update(a)
        assert got == want
    # Fortran order on disk
    np.save(tmp_path / "f.npy", np.asfortranarray(a))
    assert collect(tmp_path / "f.npy", axis=1, n_bins=64) == Histogram(64, axis=1).update(a)


def test_npz_per_layer_streamed(tmp_path, acts, monkeypatch):
    a, b = acts
    monkeypatch.setattr(collect_mod, "SLAB", 64)
    for saver in (np.savez, np.savez_compressed):
        saver(tmp_path / "layers.npz", conv=a, fc=b)
        got = collect(str(tmp_path / "layers.npz"), axis=1, n_bins=128)
        assert set(got) == {"conv", "fc"}
        assert got["conv"] == Histogram(128, axis=1).update(a)
        assert got["fc"] == Histogram(128, axis=1).update(b)
        assert got["fc"].n_channels == 10
    axis0 = collect(tmp_path / "layers.npz", axis=0, n_bins=128)
    assert axis0["fc"] == Histogram(128, axis=0).update(b)


def test_iterable_of_batches_and_mapping(acts):
    a, b = acts
    batches = (a[i:i + 7] for i in range(0, len(a), 7))
    assert collect(batches, axis=1, n_bins=64) == Histogram(64, axis=1).update(a)
    assert collect([a[:3], a[3:]], n_bins=64) == Histogram(64).update(a)
    got = collect({"x": a, "y": b}, n_bins=64)
    assert got["y"] == Histogram(64).update(b)
    # counts against numpy on the histogram's own edges
    h = collect(b, n_bins=64)
    assert np.array_equal(h.counts(), np.histogram(b[b != 0], bins=h.edges())[0])


def test_errors(tmp_path, acts):
    a, _ = acts
    with pytest.raises(InvalidInputError, match="not found"):
        collect(tmp_path / "missing.npy")
    with pytest.raises(InvalidInputError, match=r"\.npy or \.npz"):
        collect(tmp_path / "x.csv")
    with pytest.raises(InvalidInputError, match="axis 4"):
        collect(a, axis=4)
    np.save(tmp_path / "a.npy", a)
    with pytest.raises(InvalidInputError, match="out of range"):
        collect(tmp_path / "a.npy", axis=-5)
    with pytest.raises(InvalidDataError):
        collect(np.array(["x", "y"]))
    np.save(tmp_path / "s.npy", np.array(["x", "y"]))
    with pytest.raises(InvalidDataError):
        collect(tmp_path / "s.npy")
    np.savez(tmp_path / "s.npz", s=np.array(["x", "y"]))
    with pytest.raises(InvalidDataError):
        collect(tmp_path / "s.npz")
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(InvalidInputError):
        collect(tmp_path / "bad.npy")
    with pytest.raises(InvalidInputError, match="channels"):
        collect([a, a[:, :3]], axis=1)
    with pytest.raises(InvalidInputError):
        collect(42)


def test_progress_bar_draws_only_when_enabled():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    quiet = io.StringIO()
    with Progress(10, "x", stream=quiet) as bar:  # auto: not a TTY
        bar.advance(10)
    assert quiet.getvalue() == ""
    tty = Tty()
    with Progress(4, "load", stream=tty) as bar:
        for _ in range(4):
            bar.advance()
    assert "load" in tty.getvalue() and "100.0%" in tty.getvalue()
