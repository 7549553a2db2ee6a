"""Conventions: the rules that say which levels and thresholds a quantizer pins.

One home for the rules that the solver, the data fits (Lloyd and DP), ``check`` and the
evaluation share:

* level counts: ``bits = ceil(log2(n_levels))``, 1..16 bits, 2..65536 levels;
* the half-wave conventions (REFERENCES.md): level 0 is pinned at 0 in all three;
  ``hwgq`` pins the first threshold at 0, ``deadzone`` at eps, ``round`` pins nothing
  else;
* the dead zone from a sparsity: ``P(ReLU(X) <= eps) = Phi(eps / std)``;
* the centre of a symmetric density in standard units (0, or 1/2 for the unit uniform).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._format import HALFWAVE_CONVENTIONS, MAX_BITS, MAX_LEVELS, bits_for_levels
from .errors import ConventionError, InvalidBitsError

__all__ = ["MAX_BITS", "MAX_LEVELS", "HALFWAVE", "Layout", "layout", "resolve_levels",
           "zero_threshold_for_sparsity", "centre", "evaluation_pins", "resolve_zero"]

HALFWAVE = "halfwave-gaussian"
# a dead zone past 30 sigma leaves no activation non-zero
_MAX_EPS_SIGMA = 30.0


def _as_int(name: str, value) -> int:
    if isinstance(value, bool):
        raise InvalidBitsError(f"{name} must be a whole number, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise InvalidBitsError(f"{name} must be a whole number, got {value!r}")


def resolve_levels(bits=None, n_levels=None) -> tuple[int, int]:
    """(bits, n_levels) from either; ``bits = ceil(log2(n_levels))``.

    Raises
    ------
    InvalidBitsError
        For a bit-width outside 1..16, a level count outside 2..65536, or both given
        inconsistently.
    """
    if bits is None and n_levels is None:
        raise InvalidBitsError("give a bit-width (bits) or a level count (n_levels)")
    if bits is not None:
        b = _as_int("bits", bits)
        if not 1 <= b <= MAX_BITS:
            raise InvalidBitsError(f"bits must be between 1 and {MAX_BITS}, got {b}")
    if n_levels is not None:
        n = _as_int("levels", n_levels)
        if n < 2:
            raise InvalidBitsError(f"a quantizer needs at least 2 levels, got {n}")
        if n > MAX_LEVELS:
            raise InvalidBitsError(f"at most {MAX_LEVELS} levels ({MAX_BITS} bits) are supported, "
                                   f"got {n}")
        nb = bits_for_levels(n)
        if bits is not None and b != nb:
            raise InvalidBitsError(f"{n} levels need {nb} bits, not {b}")
        return nb, n
    return b, 1 << b


def zero_threshold_for_sparsity(sparsity: float, std: float = 1.0) -> float:
    """The dead-zone threshold eps with P(ReLU(X) <= eps) = sparsity for X ~ N(0, std^2).

    P(ReLU(X) <= eps) = Phi(eps / std), so eps = std * Phi^-1(sparsity); sparsity must lie
    in [0.5, 1) because half the mass is already at 0.
    """
    p = float(sparsity)
    if not (0.5 <= p < 1.0):
        raise ConventionError(
            f"sparsity must be in [0.5, 1): ReLU(N(0,1)) is already 50% zeros; got {sparsity!r}")
    from statistics import NormalDist

    return std * NormalDist().inv_cdf(p)


@dataclass(frozen=True)
class Layout:
    """Which levels and thresholds a convention pins (in standardised units)."""

    convention: str
    level_pinned: np.ndarray
    thr_pinned: np.ndarray
    thr_value: np.ndarray
    zero_threshold: float | None  # standardised


def layout(halfwave: bool, std: float, n: int, convention, zero_threshold, sparsity) -> Layout:
    """Pins of a convention; ``std`` converts a dead-zone threshold to standard units."""
    # np.full, not np.zeros: pages of a calloc'd array that are only ever read map the
    # kernel's zero page, and on some virtual machines every pass over them faults
    # again (measured here: 26 ns per element, 100x a written array)
    level_pinned = np.full(n, False)
    thr_pinned = np.full(n - 1, False)
    thr_value = np.full(n - 1, 0.0)
    if not halfwave:
        if convention not in (None, "none"):
            raise ConventionError(
                f"convention {convention!r} applies to the half-wave Gaussian only "
                f"(use dist='{HALFWAVE}' / --half-wave)")
        if zero_threshold is not None or sparsity is not None:
            raise ConventionError("a zero threshold or sparsity needs the half-wave Gaussian "
                                  "(--half-wave)")
        return Layout("none", level_pinned, thr_pinned, thr_value, None)
    conv, eps = halfwave_convention(convention, zero_threshold, sparsity, std)
    level_pinned[0] = True  # ReLU zeros map to exactly 0 in every convention
    zt = None
    if conv == "hwgq":
        thr_pinned[0] = True
        zt = 0.0
    elif conv == "deadzone":
        thr_pinned[0] = True
        thr_value[0] = eps
        zt = eps
    return Layout(conv, level_pinned, thr_pinned, thr_value, zt)


def halfwave_convention(convention, zero_threshold, sparsity, std):
    """(convention, standardised epsilon) from the three ways of saying it."""
    conv = None if convention is None else str(convention).lower()
    if conv not in (None, *HALFWAVE_CONVENTIONS):
        raise ConventionError(f"unknown convention {convention!r}; valid: hwgq, round, deadzone")
    if zero_threshold is not None and sparsity is not None:
        raise ConventionError("give a zero threshold or a sparsity, not both")
    eps = None
    if isinstance(zero_threshold, str) and zero_threshold.strip().lower() in ("hwgq", "round"):
        named = zero_threshold.strip().lower()
        if conv not in (None, named):
            raise ConventionError(f"zero threshold {named!r} contradicts convention {conv!r}")
        conv = named
    elif zero_threshold is not None:
        try:
            eps = float(zero_threshold)
        except (TypeError, ValueError):
            raise ConventionError(
                f"zero threshold must be hwgq, round or a number, got {zero_threshold!r}") from None
        if not (eps > 0.0 and math.isfinite(eps)):
            raise ConventionError(
                f"a dead-zone threshold must be a positive finite number, got {zero_threshold!r} "
                "(0 is the hwgq convention)")
        eps /= std
    elif sparsity is not None:
        eps = zero_threshold_for_sparsity(sparsity)
        if eps == 0.0:
            if conv == "deadzone":
                raise ConventionError("sparsity 0.5 puts the dead-zone threshold at 0: that is "
                                      "the hwgq convention")
            conv = conv or "hwgq"
    if eps is not None and eps > 0.0:
        if conv not in (None, "deadzone"):
            raise ConventionError(f"a dead-zone threshold contradicts convention {conv!r}")
        conv = "deadzone"
    if conv == "deadzone" and eps is None:
        raise ConventionError("the deadzone convention needs a zero threshold or a sparsity")
    if eps is not None and eps > _MAX_EPS_SIGMA:
        raise ConventionError("the dead-zone threshold is beyond 30 standard deviations: "
                              "no activation would ever be non-zero")
    return conv or "hwgq", (eps if eps is not None else 0.0)




def centre(symmetric_uniform: bool) -> float:
    """Centre of symmetry in standardised units: 1/2 for the unit uniform on [0, 1]
    (its standard form), 0 for every other symmetric density."""
    return 0.5 if symmetric_uniform else 0.0


def evaluation_pins(halfwave: bool, first_level: float, convention: str, n: int):
    """(level_pinned, thr_pinned) masks of an existing table, for its optimality residuals:
    a half-wave table's level 0 is pinned when it is 0, and its first threshold under
    hwgq and deadzone."""
    level_pinned = np.full(n, False)  # np.full: see layout()
    thr_pinned = np.full(n - 1, False)
    if halfwave and first_level == 0.0:
        level_pinned[0] = True
    if halfwave and convention in ("hwgq", "deadzone"):
        thr_pinned[0] = True
    return level_pinned, thr_pinned


def resolve_zero(halfwave: bool, scale: float, convention, zero_threshold, sparsity):
    """(convention, dead-zone threshold in input units or None), by :func:`layout`'s rules."""
    lay = layout(halfwave, scale, 2, convention, zero_threshold, sparsity)
    eps = lay.zero_threshold * scale if lay.convention == "deadzone" else None
    return lay.convention, eps
