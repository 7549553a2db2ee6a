"""Numba kernel of the strict NaN / Inf check, and the per-channel counter columns.

The streaming update itself (scan, grid moves, binning and the exact sums, in one call) is
:mod:`lloydmax.analysis._binkern`.  Nothing here validates.
"""
from __future__ import annotations

import numpy as np

from lloydmax._jit import jit

#: columns of the per-channel counters ``stats``: NaN, Inf and exact zeros
COL_NAN, COL_INF, COL_ZERO = 0, 1, 2


@jit
def scan(x3, stats, lohi, absrange):
    """Counts of NaN, Inf and exact zeros (added into ``stats[c, 0:3]``), min / max of the
    finite non-zero values (folded into ``lohi[c]``) and the smallest / largest non-zero
    magnitude over all channels (folded into ``absrange``).
    Used by the strict NaN / Inf check; updates scan inside
    :func:`lloydmax.analysis._binkern.update`."""
    outer, n_ch, inner = x3.shape
    amin = absrange[0]
    amax = absrange[1]
    for c in range(n_ch):
        lo = lohi[c, 0]
        hi = lohi[c, 1]
        n_nan = 0
        n_inf = 0
        n_zero = 0
        for o in range(outer):
            for i in range(inner):
                x = np.float64(x3[o, c, i])
                if x == 0.0:
                    n_zero += 1
                elif x - x != 0.0:
                    if x != x:
                        n_nan += 1
                    else:
                        n_inf += 1
                else:
                    if x < lo:
                        lo = x
                    if x > hi:
                        hi = x
                    a = abs(x)
                    if a < amin:
                        amin = a
                    if a > amax:
                        amax = a
        stats[c, 0] += n_nan
        stats[c, 1] += n_inf
        stats[c, 2] += n_zero
        lohi[c, 0] = lo
        lohi[c, 1] = hi
    absrange[0] = amin
    absrange[1] = amax
