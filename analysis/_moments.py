"""Moments: per-channel exact $S_1, S_2$, and the third and fourth moments from the bins.

A histogram keeps, per channel, the exact power sums $S_1 = \\sum x$ and $S_2 = \\sum x^2$
in a superaccumulator whose layout is :mod:`lloydmax.analysis._exactsum` (the update kernel
adds into it directly).  ``mean`` is the correctly rounded mean, ``var`` the correctly
rounded population variance $m_2 = S_2/n - (S_1/n)^2$.

The third and fourth central moments come from the exact bin counts
(:func:`binned_shape`): every binned value $x$ is replaced by its bin centre $c$, the
zeros stay exact, and $\\hat m_j = \\frac1n \\sum (c - \\mu)^j$ about the exact mean.  With
$|x - c| \\le \\delta = w/2$ and $y = c - \\mu$, the binomial expansion bounds the error:

$$|m_3 - \\hat m_3| \\le \\tfrac1n \\sum (3 y^2 \\delta + 3 |y| \\delta^2 + \\delta^3),\\quad
|m_4 - \\hat m_4| \\le \\tfrac1n \\sum (4 |y|^3 \\delta + 6 y^2 \\delta^2 + 4 |y| \\delta^3 +
\\delta^4),$$

sums over the binned values.  ``skewness`` $\\hat m_3 / m_2^{3/2}$ and excess ``kurtosis``
$\\hat m_4 / m_2^2 - 3$ (scipy's default, biased definitions) use the exact $m_2$, so their
errors are these bounds over $m_2^{3/2}$ and $m_2^2$: about $1.5\\,w/\\sigma$ and
$2\\,w\\,E|y|^3/\\sigma^4$.  They are functions of the exact state, so they are as
split-independent as the bins.  To feed code that expects four power sums, the estimates
are also given as the $S_3$, $S_4$ that reproduce $\\hat m_3$, $\\hat m_4$ exactly with the
exact $S_1, S_2$.  The count $n$ includes the zeros and excludes NaN / Inf.

This module holds :class:`PowerSums` (the limbs of every channel, with exact merging),
:func:`binned_shape` and :func:`moments` (sums to moments).
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from . import _binkern as K
from ._exactsum import TOTAL_LIMBS, power_sums

__all__ = ["PowerSums", "binned_shape", "exact_moments", "exact_std", "moments", "sqrt_to_float",
           "to_float"]


def to_float(value: Fraction) -> float:
    """``float(value)``, with +/-inf instead of an OverflowError."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


_TINY = 2.0 ** -1022  # the smallest normal float64


def sqrt_to_float(value: Fraction) -> float:
    """``sqrt(value)`` as a float for an exact ``value >= 0``, also where ``value`` itself
    is not a float: 1e300-scale data have a variance near 1e600 (overflow) and an std near
    1e300; 1000 distinct subnormals a variance near 1e-626 (underflow to 0) and a positive
    std.  Where ``float(value)`` is a normal number this is ``math.sqrt(float(value))``,
    bit for bit; elsewhere the integer square root of the value scaled by 4**k, within one
    ulp."""
    if value <= 0:
        return 0.0 if value == 0 else math.nan
    as_float = to_float(value)
    if _TINY <= as_float < math.inf:
        return math.sqrt(as_float)
    num, den = value.numerator, value.denominator
    k = max(0, -(-(128 + den.bit_length() - num.bit_length()) // 2))
    root = math.isqrt((num << (2 * k)) // den)
    return to_float(Fraction(root, 1 << k))


def exact_std(n: int, sums: list[Fraction]) -> float:
    """Population standard deviation of ``n`` values with exact power sums ``sums``:
    the square root of the exact variance, rounded once (:func:`sqrt_to_float`)."""
    if n < 2:
        return math.nan
    mean = sums[0] / n
    return sqrt_to_float(sums[1] / n - mean * mean)


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
    """Exact $S_1, S_2$ of ``n_channels`` channels as superaccumulator limbs.

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
        """Exact $[S_1, S_2]$ of channel ``ch``."""
        return power_sums(self.limbs[ch])

    def total_power_sums(self, channels) -> list[Fraction]:
        r"""Exact $[S_1, S_2]$ over several channels together: their normalised
        limbs (each below $2^{32}$) are added in int64, which is exact for fewer than
        $2^{31}$ channels, and converted once, instead of once per channel."""
        rows = self.limbs[np.asarray(channels, dtype=np.int64)]
        if rows.shape[0] >= 1 << 31:  # pragma: no cover - far beyond any layer
            raise OverflowError("too many channels to add in int64")
        return power_sums(rows.sum(axis=0))

    def normalize(self) -> None:
        """Carry every channel's limbs back to the normalised form."""
        K.normalize_all(self.limbs)

    def add(self, other: PowerSums) -> None:
        """Add the sums of ``other`` (same channel count) exactly."""
        self.limbs += other.limbs
        self.normalize()


def binned_shape(n: int, s1: Fraction, s2: Fraction, counts: np.ndarray, grid: np.ndarray,
                 zeros: int) -> tuple[Fraction, Fraction, Fraction, Fraction]:
    """``(S3, S4, bound3, bound4)`` from the bins: the $S_3$, $S_4$ for which the central
    moments of :func:`moments` are the binned $\\hat m_3$, $\\hat m_4$ about the exact mean
    $S_1 / n$, and the bounds on $|m_3 - \\hat m_3|$, $|m_4 - \\hat m_4|$ (module docstring).

    ``counts`` / ``grid`` are the ``(m, n_bins)`` counts and ``(m, 2)`` grids $(e, k_0)$ of
    the channels pooled (each on its own grid), ``zeros`` their exact zeros.  Sums are taken
    in float64 in units of $2^E$, $E$ the coarsest grid exponent, so no power overflows.
    """
    if n == 0:
        return Fraction(0), Fraction(0), Fraction(0), Fraction(0)
    rows, cols = np.nonzero(counts)
    big = int(grid[rows, 0].max()) if rows.size else 0
    unit = Fraction(2) ** big
    mean = s1 / n
    mu = to_float(mean / unit)
    shift = (grid[rows, 0] - big).astype(np.int32)
    y = np.ldexp((grid[rows, 1] + cols).astype(np.float64) + 0.5, shift) - mu
    weights = counts[rows, cols].astype(np.float64)
    delta = np.ldexp(0.5, shift)
    y2 = y * y
    t3 = float(weights @ (y2 * y)) + zeros * -mu ** 3
    t4 = float(weights @ (y2 * y2)) + zeros * mu ** 4
    ay = np.abs(y)
    e3 = float(weights @ (3 * y2 * delta + (3 * ay + delta) * delta * delta))
    e4 = float(weights @ (4 * ay * y2 * delta + (6 * y2 + (4 * ay + delta) * delta) * delta
                          * delta))
    m3 = Fraction(t3) / n * unit ** 3
    m4 = Fraction(t4) / n * unit ** 4
    s3 = n * m3 + 3 * mean * s2 - 2 * n * mean ** 3
    s4 = n * m4 + 4 * mean * s3 - 6 * mean * mean * s2 + 3 * n * mean ** 4
    return s3, s4, Fraction(e3) / n * unit ** 3, Fraction(e4) / n * unit ** 4


def exact_moments(n: int, sums) -> dict:
    """mean, std, skewness, excess kurtosis and E[x^2] from exact power sums, rounded
    once (population / biased definitions, as scipy.stats.skew and kurtosis)."""
    s1, s2, s3, s4 = (Fraction(s) for s in sums)
    mean = s1 / n
    m2 = s2 / n - mean * mean
    # the square roots are taken of the exact values, so 1e300-scale data (m2 near 1e600)
    # and subnormal data (m2 near 1e-626) keep a finite, non-zero std and sigma (the
    # half-wave sigma sqrt(2 E[x^2]); the same bits as math.sqrt(2 * power) elsewhere)
    out = {"mean": to_float(mean), "std": sqrt_to_float(m2), "sigma": sqrt_to_float(2 * s2 / n),
           "power": to_float(s2 / n), "skewness": math.nan, "kurtosis": math.nan}
    if m2 > 0:
        m3 = s3 / n - 3 * mean * s2 / n + 2 * mean ** 3
        m4 = s4 / n - 4 * mean * s3 / n + 6 * mean * mean * s2 / n - 3 * mean ** 4
        root = math.sqrt(to_float(m3 * m3 / m2 ** 3))
        out["skewness"] = (root if m3 > 0 else -root) if m3 else 0.0
        out["kurtosis"] = to_float(m4 / (m2 * m2) - 3)
    return out
