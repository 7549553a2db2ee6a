"""Quantizing values by a table's thresholds (numba kernels)."""
from __future__ import annotations

import numpy as np

from .._jit import jit


@jit
def quantize_index(x, thresholds, out):
    """Index i with thresholds[i-1] < x <= thresholds[i]; NaN gives -1."""
    for k in range(x.shape[0]):
        v = x[k]
        if v != v:
            out[k] = -1
        else:
            out[k] = np.searchsorted(thresholds, v, side="left")


@jit
def quantize_values(x, thresholds, levels, out):
    """Quantized values; NaN stays NaN."""
    for k in range(x.shape[0]):
        v = x[k]
        if v != v:
            out[k] = v
        else:
            out[k] = levels[np.searchsorted(thresholds, v, side="left")]
