"""all_reduce_histogram over 2 real gloo processes equals the single-process histogram."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from lloydmax.analysis.distributed import all_reduce_histogram
from lloydmax.analysis.histogram import Histogram

from lloydmax.errors import InvalidInputError

ROOT = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent("""
    import sys
    import numpy as np
    import torch.distributed as dist
    from lloydmax.analysis.histogram import Histogram
    from lloydmax.analysis.distributed import all_reduce_histogram

    rank, tmp = int(sys.argv[1]), sys.argv[2]
    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank,
                            world_size=2)
    x = np.load(f"{tmp}/part{rank}.npy")
    per_tensor = Histogram(n_bins=256).update(x)
    per_channel = Histogram(n_bins=256, axis=1).update(x)
    untouched = Histogram(n_bins=256, axis=1)
    if rank == 0:
        untouched.update(x[:0])  # rank 0 knows the channel count, rank 1 has seen nothing
    all_reduce_histogram(per_tensor).save(f"{tmp}/tensor{rank}.npz")
    all_reduce_histogram(per_channel).save(f"{tmp}/channel{rank}.json")
    all_reduce_histogram(untouched).save(f"{tmp}/empty{rank}.npz")
    dist.barrier()
    dist.destroy_process_group()
""")


def test_two_gloo_workers_match_single_process(tmp_path):
    rng = np.random.default_rng(21)
    spread = np.array([1e-2, 1, 30, 0])[None, :, None]
    x = rng.standard_normal((300, 4, 3)).astype(np.float32) * spread
    x[::5] = np.maximum(x[::5], 0)
    # the halves have different ranges, so each worker's own grid differs from the global one
    parts = [x[:100] * 0.1, x[100:]]
    for rank, part in enumerate(parts):
        np.save(tmp_path / f"part{rank}.npy", part)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, str(script), str(rank), str(tmp_path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for rank in range(2)]
    for p in procs:
        try:
            _out, err = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        assert p.returncode == 0, err[-2000:]
    everything = np.concatenate(parts)
    want_tensor = Histogram(n_bins=256).update(everything)
    want_channel = Histogram(n_bins=256, axis=1).update(everything)
    for rank in range(2):
        got_t = Histogram.load(tmp_path / f"tensor{rank}.npz")
        got_c = Histogram.load(tmp_path / f"channel{rank}.json")
        assert got_t == want_tensor
        assert got_c == want_channel
        assert got_t.power_sums() == want_tensor.power_sums()
        assert got_t.mean == want_tensor.mean and got_t.kurtosis == want_tensor.kurtosis
        empty = Histogram.load(tmp_path / f"empty{rank}.npz")
        assert empty.n_channels == 4 and empty.count.sum() == 0


def test_requires_initialised_process_group():
    with pytest.raises(InvalidInputError, match="not initialised"):
        all_reduce_histogram(Histogram())
