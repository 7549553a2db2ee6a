"""Merge histograms across workers with ``torch.distributed`` -- exactly.

Each worker collects a :class:`~lloydmax.analysis.histogram.Histogram` of its share of the data;
:func:`all_reduce_histogram` gives every worker the histogram of all the data, equal bit for
bit to the one a single process would build:

1. all-reduce MIN of the per-channel smallest and MAX of the largest non-zero value: every
   worker then computes the same canonical grid;
2. each worker re-bins its counts onto that grid (exact integer shifts);
3. all-reduce SUM of the int64 counts, zero / NaN / Inf counters and the normalised
   superaccumulator limbs (each below 2^32, so fewer than 2^31 workers cannot overflow),
   then carry-normalise the limbs again.
"""
from __future__ import annotations

import numpy as np

from lloydmax.errors import InvalidInputError, MissingDependencyError

from .histogram import Histogram

__all__ = ["all_reduce_histogram"]


def _torch():
    try:
        import torch
        import torch.distributed as dist
    except ImportError:
        raise MissingDependencyError(
            "merging across workers needs torch: pip install 'lloydmax[torch]'") from None
    return torch, dist


def all_reduce_histogram(hist: Histogram, group=None) -> Histogram:
    """The histogram of every worker's data, returned on every worker.

    Parameters
    ----------
    hist : Histogram
        This worker's histogram; left unchanged.
    group : torch.distributed.ProcessGroup, optional
        Process group (default: the world).  The reductions run on CPU int64 / float64
        tensors, so the group's backend must take CPU tensors (gloo; with NCCL jobs pass
        a gloo group made by ``torch.distributed.new_group(backend="gloo")``).

    Returns
    -------
    Histogram
        Equal (``==``) to a single-process histogram of the union of the data.

    Raises
    ------
    InvalidInputError
        torch.distributed is not initialised, or the workers' histograms differ in
        ``n_bins``, ``axis`` or channel count.
    """
    torch, dist = _torch()
    if not isinstance(hist, Histogram):
        raise InvalidInputError(f"expected a Histogram, got {type(hist).__name__}")
    if not (dist.is_available() and dist.is_initialized()):
        raise InvalidInputError("torch.distributed is not initialised (call init_process_group)")
    red = dist.ReduceOp

    # shape agreement: n_bins, axis and channel count must match (unknown count = adopt)
    n_ch = hist.n_channels
    axis_code = -(1 << 40) if hist.axis is None else hist.axis
    shape = torch.tensor([hist.n_bins, axis_code, -1 if n_ch is None else n_ch],
                         dtype=torch.int64)
    lo_shape, hi_shape = shape.clone(), shape.clone()
    lo_shape[2] = (1 << 62) if n_ch is None else n_ch
    dist.all_reduce(lo_shape, op=red.MIN, group=group)
    dist.all_reduce(hi_shape, op=red.MAX, group=group)
    if not torch.equal(lo_shape[:2], hi_shape[:2]):
        raise InvalidInputError("workers hold histograms with different n_bins or axis")
    known_max = int(hi_shape[2])
    if known_max >= 0 and int(lo_shape[2]) != known_max:
        raise InvalidInputError("workers hold histograms with different channel counts")

    out = hist.copy()
    if known_max < 0:
        return out  # per-channel, and no worker has seen data
    out.ensure_channels(known_max)

    # 1. common canonical grid
    lo, hi = (torch.from_numpy(v) for v in out.channel_ranges())
    dist.all_reduce(lo, op=red.MIN, group=group)
    dist.all_reduce(hi, op=red.MAX, group=group)
    # 2. local re-binning onto it
    out.widen_ranges(lo.numpy(), hi.numpy())
    # 3. sums of the integer state (normalised limbs, so the sums cannot overflow)
    summed = []
    for part in out.integer_state():
        tensor = torch.from_numpy(np.ascontiguousarray(part))
        dist.all_reduce(tensor, op=red.SUM, group=group)
        summed.append(tensor.numpy().copy())
    out.set_integer_state(*summed)
    return out
