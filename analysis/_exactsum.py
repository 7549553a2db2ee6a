"""Layout of the exact power-sum superaccumulator and its conversion to exact numbers.

A histogram keeps, per channel, the exact sums $S_1 = \\sum_i x_i$ and
$S_2 = \\sum_i x_i^2$ of the exact values, each as a fixed-point integer
$S_k = 2^{B_k} \\sum_j \\ell_{k,j}\\, 2^{32 j}$ held in int64 *limbs* $\\ell_{k,j}$ (a
superaccumulator in the sense of Kulisch; Neal, "Fast exact summation using small and large
superaccumulators", 2015).  Bit 0 sits at $2^{B_k}$ with $B_k = -1074 k - 104$, below the
last bit of any $k$-th power of a float64 (subnormals included), and the top limb leaves 64
bits of headroom above the largest one, so no sum of fewer than $2^{63}$ values can overflow.
(Format ``lloydmax.histogram/1`` also stored $S_3$ and $S_4$, in the same layout after
these; skewness and kurtosis now come from the bins, see :mod:`lloydmax.analysis._moments`.)

After normalisation every limb but the top one of each power lies in $[0, 2^{32})$ and the
top limb carries the sign, so equal sums have equal limbs: merges (limb-wise addition, then
normalisation) are exact and independent of the order in which values arrived.

This module is the layout alone, with no dependency: the numba kernels
(:mod:`lloydmax.analysis._binkern`) add into the limbs by it, and
:mod:`lloydmax.analysis._moments` holds the limbs of every channel and turns the sums into
moments.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

__all__ = ["BASE_EXP", "LEGACY_TOTAL_LIMBS", "LIMB_BITS", "N_LIMBS", "N_POWERS", "OFFSETS",
           "TOTAL_LIMBS", "int_to_limbs", "limbs_to_int", "power_sums"]

LIMB_BITS = 32
N_POWERS = 2
#: exponent of bit 0 of the fixed-point integer of power k (index k - 1)
BASE_EXP = tuple(-1074 * k - 104 for k in range(1, N_POWERS + 1))
#: limbs per power: value bits 2097 k + 108, 64 bits headroom, one limb for the sign
N_LIMBS = tuple(-(-(2097 * k + 172) // LIMB_BITS) + 1 for k in range(1, N_POWERS + 1))
#: start of power k's limbs in the flat per-channel limb row (length N_POWERS + 1)
OFFSETS = tuple(int(v) for v in np.concatenate([[0], np.cumsum(N_LIMBS)]))
TOTAL_LIMBS = OFFSETS[-1]
#: limbs per channel of format /1, which kept S1..S4 (S1, S2 first, in the same layout)
LEGACY_TOTAL_LIMBS = sum(-(-(2097 * k + 172) // LIMB_BITS) + 1 for k in range(1, 5))


def limbs_to_int(limbs) -> int:
    """The integer $\\sum_j \\ell_j 2^{32 j}$ of a limb vector (exact, any normalisation)."""
    value = 0
    for limb in reversed([int(v) for v in limbs]):
        value = (value << LIMB_BITS) + limb
    return value


def int_to_limbs(value: int, n_limbs: int) -> np.ndarray:
    """Normalised limbs of ``value``: limbs 0..n-2 in [0, 2^32), the top limb signed."""
    out = np.zeros(n_limbs, dtype=np.int64)
    mask = (1 << LIMB_BITS) - 1
    for j in range(n_limbs - 1):
        out[j] = value & mask
        value >>= LIMB_BITS
    if not -(1 << 62) <= value < (1 << 62):
        raise OverflowError("value does not fit the superaccumulator")
    out[n_limbs - 1] = value
    return out


def power_sums(row) -> list[Fraction]:
    """Exact $[S_1, S_2]$ of one channel's flat limb row."""
    sums = []
    for k in range(N_POWERS):
        integer = limbs_to_int(row[OFFSETS[k]:OFFSETS[k + 1]])
        base = BASE_EXP[k]
        sums.append(Fraction(integer, 1 << -base) if base < 0 else Fraction(integer << base))
    return sums
