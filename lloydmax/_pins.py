"""Pinned levels: tables in which some levels keep given values (NF4 keeps 0 and +-1).

With pins ``p_0 < ... < p_{k-1}`` among ``L`` levels, the ``F = L - k`` free levels
satisfy the centroid conditions and every threshold is the midpoint of its neighbours;
the pinned levels are not optimised.  Because a pin is a level, a value between two pins
is always reconstructed by a level between them (inclusive), so the MSE splits into a
sum over the ``k + 1`` gaps the pins cut the line into::

    D = sum_g D_g(m_g),     sum_g m_g = F,

``m_g`` the number of free levels in gap ``g``.

* Densities (:func:`lloydmax.solve`): for one allocation ``(m_g)`` the Newton kernel
  solves the centroid conditions of the free levels with the pins held (its
  ``level_pinned`` mask); the allocation starts from the Panter-Dite compander levels
  (each pin takes the place of its nearest compander level) and moves one free level
  between two gaps while that lowers the MSE.  When every ``D_g`` is convex in ``m_g``
  (diminishing returns, as for every density we ship) no single move lowering the MSE
  means the allocation is optimal.
* Data (:func:`lloydmax.solve_dp`, in :mod:`lloydmax._dp_pins`): ``D_g(m)`` is
  computed exactly for every ``m`` by the dynamic programme run on the points of each
  gap, with the run next to a pin reconstructed by the pin, and the allocation is then
  exact too (a small knapsack over the gaps): the global optimum.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from . import _kernels as K
from ._table import QuantizerTable
from .errors import ConventionError, InvalidInputError

__all__ = ["allocation_moves", "exact_pins", "parse_pins", "pinned_layout_levels",
           "pinned_start", "pinned_values", "search_allocations", "support_of"]


def support_of(d) -> tuple[float, float]:
    """Closed support of a registry distribution, in its standardised units."""
    if d.kind in (K.GAUSS, K.LAPLACE):
        lo, hi = -math.inf, math.inf
    elif d.kind == K.HALFNORM:
        lo, hi = 0.0, math.inf
    elif d.kind == K.UNIFORM:
        lo, hi = 0.0, 1.0
    else:
        lo, hi = float(d.tab_x[0]), float(d.tab_x[-1])
    if d.pm_w > 0.0:
        lo, hi = min(lo, d.pm_loc), max(hi, d.pm_loc)
    return lo, hi


def parse_pins(pin_levels) -> np.ndarray:
    """The pins as a sorted float64 array of distinct finite numbers."""
    try:
        pins = np.asarray(pin_levels, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidInputError(f"pin_levels must be a list of numbers, got {pin_levels!r}") \
            from None
    if pins.size == 0:
        raise InvalidInputError("pin_levels is empty: give at least one level value")
    if not np.all(np.isfinite(pins)):
        raise InvalidInputError("pinned levels must be finite numbers")
    pins = np.sort(pins)
    if np.any(np.diff(pins) == 0.0):
        raise InvalidInputError("pinned levels must be distinct")
    return pins


def pinned_values(pin_levels, n: int, *, loc: float, scale: float, support, where: str,
                  halfwave: bool = False) -> np.ndarray:
    """The pins, sorted, in standardised units ``(p - loc) / scale``, after checking that
    they are distinct finite numbers inside the (closed) support and leave a free level.

    Raises
    ------
    InvalidInputError
        A pin outside the support (``where`` names it), duplicates, or no free level.
    ConventionError
        Pins with a half-wave convention (which pins level 0 itself).
    """
    if halfwave:
        raise ConventionError("pin_levels does not combine with the half-wave conventions, "
                              "which pin level 0 themselves")
    pins = parse_pins(pin_levels)
    if pins.size >= n:
        raise InvalidInputError(f"{pins.size} pinned levels leave no free level among {n}; "
                                "pin fewer levels or use more bits")
    z = (pins - loc) / scale
    lo, hi = support
    outside = [float(p) for p, v in zip(pins, z) if not (lo <= v <= hi)]
    if outside:
        span = f"[{loc + scale * lo:g}, {loc + scale * hi:g}]"
        raise InvalidInputError(f"pinned level {outside[0]:g} lies outside the support {span} "
                                f"of {where}")
    return z


def exact_pins(table: QuantizerTable, level_pinned, pin_levels) -> QuantizerTable:
    """``table`` with its pinned levels set to the exact values asked (the map from
    standardised units and back can move them by an ulp)."""
    levels = np.array(table.levels)
    levels[np.asarray(level_pinned, dtype=bool)] = parse_pins(pin_levels)
    return replace(table, levels=levels)


def pinned_start(compander: np.ndarray, pins: np.ndarray) -> np.ndarray:
    """Free-level counts per gap from the compander levels: each pin takes the place of
    the nearest compander level not yet taken."""
    free = list(range(compander.size))
    for p in pins:
        k = min(free, key=lambda i: abs(compander[i] - p))
        free.remove(k)
    counts = np.zeros(pins.size + 1, dtype=np.int64)
    for i in free:
        counts[np.searchsorted(pins, compander[i], side="left")] += 1
    return counts


def allocation_moves(counts: np.ndarray):
    """Every allocation one free level away from ``counts`` (move gap a -> gap b)."""
    for a in range(counts.size):
        if counts[a] == 0:
            continue
        for b in range(counts.size):
            if b != a:
                moved = counts.copy()
                moved[a] -= 1
                moved[b] += 1
                yield moved


def pinned_layout_levels(counts, pins, compander):
    """Initial levels and the pinned mask for one allocation: pins at their values, the
    ``counts[g]`` free levels of gap ``g`` evenly spaced inside it; an open outer gap
    reaches as far as the compander levels (``compander``, sorted) or one mean spacing
    past its pin."""
    spacing = (compander[-1] - compander[0]) / max(compander.size - 1, 1)
    low = min(compander[0], pins[0] - spacing)
    high = max(compander[-1], pins[-1] + spacing)
    parts, mask = [], []
    for g in range(counts.size):
        m = int(counts[g])
        if m:
            if g == 0:
                free = np.linspace(low, pins[0], m + 1)[:-1]
            elif g == pins.size:
                free = np.linspace(pins[-1], high, m + 1)[1:]
            else:
                free = np.linspace(pins[g - 1], pins[g], m + 2)[1:-1]
            parts.append(free)
            mask += [False] * m
        if g < pins.size:
            parts.append(np.array([pins[g]]))
            mask.append(True)
    return np.concatenate(parts), np.array(mask, dtype=np.bool_)


# ------------------------------------------------------------------ densities


def search_allocations(run, counts):
    """Local search over free-level allocations: ``run(counts)`` returns ``(mse, result)``
    (mse +inf for an allocation that fails); a move of one free level between two gaps
    is taken while it lowers the MSE.  Returns the best ``(mse, result, counts)``.

    Ties (the MSE equal to 1e-12, as for mirror-image allocations of a symmetric
    density: 13 free levels between -1, 0 and 1) go to the allocation with more levels
    in the upper gaps, NF4's choice, whatever the start: each move taken is better in
    (MSE, then that order), so the search ends and the answer does not flip."""
    best_mse, best = run(counts)
    improved = True
    while improved:
        improved = False
        for moved in allocation_moves(counts):
            mse, result = run(moved)
            tie = (math.isfinite(mse) and abs(mse - best_mse) <= 1e-12 * best_mse
                   and tuple(moved[::-1]) > tuple(counts[::-1]))
            if (mse < best_mse * (1.0 - 1e-12) or tie
                    or (not math.isfinite(best_mse) and math.isfinite(mse))):
                best_mse, best, counts, improved = mse, result, moved, True
                break
    return best_mse, best, counts
