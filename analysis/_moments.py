"""Exact moments: per-channel superaccumulated power sums and the moments evaluated from them.

A histogram keeps, per channel, the exact power sums $S_1 = \\sum x$ and
$S_2 = \\sum x^2$, and $S_3$, $S_4$ as exact sums of the float64 powers ``(x*x)*x`` and
``(x*x)*(x*x)`` (rounded once per value, exponent unbounded), in a superaccumulator whose
layout is :mod:`lloydmax.analysis._exactsum` (the update kernel adds into it directly).

The moments are evaluated from them in exact rational arithmetic and rounded once:
``mean`` is the correctly rounded mean, ``var`` the correctly rounded population variance
$m_2 = S_2/n - (S_1/n)^2$; ``skewness`` $m_3 / m_2^{3/2}$ and excess ``kurtosis``
$m_4 / m_2^2 - 3$ (scipy's default, biased definitions).  The count $n$ includes the zeros
and excludes NaN / Inf; the histogram supplies it.

This module holds :class:`PowerSums` (the limbs of every channel, with exact merging) and
:func:`moments` (sums to moments).
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from . import _kernels as K
from ._exactsum import TOTAL_LIMBS, power_sums

__all__ = ["PowerSums", "moments", "to_float"]


def to_float(value: Fraction) -> float:
    """``float(value)``, with +/-inf instead of an OverflowError."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def moments(n: int, sums: list[Fraction]) -> tuple[float, float, float, float]:
    """``(mean, var, skewness, kurtosis)`` of ``n`` values with exact power sums ``sums``.

    ``mean`` of no values and the others of fewer than 2 values are NaN; ``skewness`` and
    ``kurtosis`` of constant data (``var`` 0) are NaN too.
    """
    nan = math.nan
    if n == 0:
        return nan, nan, nan, nan
    s1, s2, s3, s4 = sums
    mean = s1 / n
    if n < 2:
        return to_float(mean), nan, nan, nan
    m2 = s2 / n - mean * mean
    if m2 == 0:
        return to_float(mean), 0.0, nan, nan
    m3 = s3 / n - 3 * mean * s2 / n + 2 * mean ** 3
    m4 = s4 / n - 4 * mean * s3 / n + 6 * mean * mean * s2 / n - 3 * mean ** 4
    skew = math.sqrt(to_float(m3 * m3 / m2 ** 3)) * (1 if m3 > 0 else -1) if m3 else 0.0
    return to_float(mean), to_float(m2), skew, to_float(m4 / (m2 * m2) - 3)


class PowerSums:
    """Exact $S_1 \\dots S_4$ of ``n_channels`` channels as superaccumulator limbs.

    Parameters
    ----------
    n_channels : int
    limbs : numpy.ndarray, optional
        ``(n_channels, TOTAL_LIMBS)`` int64 limbs to adopt (default: all sums zero).

    Attributes
    ----------
    limbs : numpy.ndarray
        ``(n_channels, TOTAL_LIMBS)`` int64, one flat limb row per channel; the update
        kernel adds into it and leaves it normalised.  Normalised limbs are unique, so
        equal sums have equal limbs.
    """

    def __init__(self, n_channels: int, limbs: np.ndarray | None = None):
        self.limbs = (np.zeros((n_channels, TOTAL_LIMBS), dtype=np.int64) if limbs is None
                      else limbs)

    def copy(self) -> PowerSums:
        """An independent copy."""
        return PowerSums(self.limbs.shape[0], self.limbs.copy())

    def __eq__(self, other):
        if not isinstance(other, PowerSums):
            return NotImplemented
        return np.array_equal(self.limbs, other.limbs)

    __hash__ = None

    def power_sums(self, ch: int) -> list[Fraction]:
        """Exact $[S_1, S_2, S_3, S_4]$ of channel ``ch``."""
        return power_sums(self.limbs[ch])

    def normalize(self) -> None:
        """Carry every channel's limbs back to the normalised form."""
        for ch in range(self.limbs.shape[0]):
            K.normalize_limbs(self.limbs, ch)

    def add(self, other: PowerSums) -> None:
        """Add the sums of ``other`` (same channel count) exactly."""
        self.limbs += other.limbs
        self.normalize()
