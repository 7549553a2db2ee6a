"""Distributions of block-normalised and rotated weights (the NF4 and TurboQuant settings).

``absmax-gaussian`` (parameter ``block`` = B): ``x / max|x|`` within a block of B iid
N(0, 1) values.  The largest value of each block becomes exactly +-1 (mass 1/(2B) at
each end); the other B - 1, given the block maximum ``M = m``, are iid N(0, 1) truncated
to (-m, m), so ``y = x / m`` has density ``m phi(m y) / G(m)`` with ``G(m) = P(|X| < m)
= erf(m / sqrt 2)``.  With the law of M, ``d/dm G(m)^B = 2 B G(m)^(B-1) phi(m)``, the
continuous part of the law of one value of the block is (docs/theory.md)::

    g(y) = 2 (B - 1) int_0^inf G(m)^(B-2) m phi(m) phi(m y) dm,    -1 < y < 1,

of total mass (B - 1) / B (B = 2 gives 1 / (pi (1 + y^2))).  It is computed by
composite Gauss-Legendre quadrature in m (about 1e-14 relative) on a grid of 2^18 + 1
points of [-1, 1] and tabulated piecewise-linearly; each atom is a spike of width 1e-13
at the end of the table (the kernels hold one point mass, at one place), which moves its
mean by less than 1e-13.

``sphere-coordinate`` (parameter ``dim`` = d): one coordinate of a uniform point on the
unit sphere of R^d, the law of a coordinate after a random rotation; density
proportional to ``(1 - x^2)^((d - 3) / 2)`` on [-1, 1], i.e. ``2 Beta((d-1)/2, (d-1)/2)
- 1``, whose cell moments are differences of regularised incomplete beta functions.
It is served as that scipy.stats beta distribution (the registry's tabulated path,
which handles the singular edges of d = 2).

The registry (:mod:`lloydmax._dists`) builds the :class:`~lloydmax._dists.Distribution`
objects from what this module returns; this module imports nothing of the registry.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .errors import InvalidInputError

__all__ = ["SPIKE_WIDTH", "absmax_density", "absmax_gaussian_table", "absmax_normalize",
           "block_size",
           "sphere_dim", "sphere_shape"]

SPIKE_WIDTH = 1e-13
_N_GRID = 1 << 18
_M_MAX = 14.0           # phi(14) ~ 1e-43: nothing of the integrand is left beyond
_PANELS = 56
_NODES = 12
_MAX_BLOCK = 1 << 20


def block_size(block) -> int:
    """``block`` as a whole number >= 2."""
    try:
        b = float(block)
    except (TypeError, ValueError):
        raise InvalidInputError(f"parameter block must be a whole number, got {block!r}") \
            from None
    if not (b.is_integer() and 2 <= b <= _MAX_BLOCK):
        raise InvalidInputError(f"parameter block must be a whole number from 2 to "
                                f"{_MAX_BLOCK}, got {block!r}")
    return int(b)


def _m_nodes():
    x, w = np.polynomial.legendre.leggauss(_NODES)
    edges = np.linspace(0.0, _M_MAX, _PANELS + 1)
    half = 0.5 * np.diff(edges)
    mid = 0.5 * (edges[1:] + edges[:-1])
    m = (mid[:, None] + half[:, None] * x[None, :]).ravel()
    wm = (half[:, None] * w[None, :]).ravel()
    return m, wm


def absmax_density(y, block: int) -> np.ndarray:
    """The continuous part g(y) of the absmax-normalised Gaussian (module docstring), by
    composite Gauss-Legendre quadrature in m; zero outside [-1, 1]."""
    y = np.abs(np.asarray(y, dtype=np.float64))
    m, wm = _m_nodes()
    from scipy.special import erf

    with np.errstate(divide="ignore"):
        log_g = (block - 2) * np.log(erf(m / math.sqrt(2.0)))
    base = np.log(2.0 * (block - 1) * m * wm / (2.0 * math.pi)) + log_g - 0.5 * m * m
    out = np.empty(y.shape)
    flat, res = y.reshape(-1), out.reshape(-1)
    step = 4096
    for start in range(0, flat.size, step):
        yy = flat[start:start + step]
        res[start:start + step] = np.exp(base[None, :] - 0.5 * (m * m)[None, :]
                                         * (yy * yy)[:, None]).sum(axis=1)
    out[y > 1.0] = 0.0
    return out


@functools.lru_cache(maxsize=16)
def _table(block: int):
    half = np.linspace(0.0, 1.0, _N_GRID // 2 + 1)
    g = absmax_density(half, block)
    # the spike holding the atom 1/(2B): nodes 1 - 2 delta, 1 - delta, 1 (see docstring)
    delta = SPIKE_WIDTH
    g_end = float(g[-1])
    z_up = np.concatenate([half[:-1], [1.0 - 2.0 * delta, 1.0 - delta, 1.0]])
    # the spike's mass from the nodes as stored (1 - delta is rounded to a float): the
    # ramp (1 - 2 delta, 1 - delta] and the flat top (1 - delta, 1] hold the atom plus
    # the continuous density g_end over them
    ramp, top = z_up[-2] - z_up[-3], z_up[-1] - z_up[-2]
    target = 1.0 / (2.0 * block) + g_end * (ramp + top)
    height = (target - 0.5 * g_end * ramp) / (0.5 * ramp + top)
    p_up = np.concatenate([g[:-1], [g_end, height, height]])
    z = np.concatenate([-z_up[:0:-1], z_up])
    p = np.concatenate([p_up[:0:-1], p_up])
    # trapezoid mass is the kernel's exact mass of the piecewise-linear table
    mass = float(np.sum(0.5 * (p[1:] + p[:-1]) * np.diff(z)))
    z.setflags(write=False)
    p = p / mass
    p.setflags(write=False)
    return z, p


def absmax_gaussian_table(block) -> tuple[int, np.ndarray, np.ndarray]:
    """``(block, tab_x, tab_p)``: the tabulated law of an absmax-normalised Gaussian
    block value on [-1, 1], atoms included as end spikes, normalised to mass 1."""
    b = block_size(block)
    z, p = _table(b)
    return b, np.array(z), np.array(p)


def sphere_dim(dim) -> float:
    """``dim`` as a number >= 3 (the dimension of the sphere's ambient space; below 3
    the density is infinite at +-1, which the tabulation does not take yet)."""
    try:
        d = float(dim)
    except (TypeError, ValueError):
        raise InvalidInputError(f"parameter dim must be a number, got {dim!r}") from None
    if not (d >= 3.0 and math.isfinite(d)):
        raise InvalidInputError(f"parameter dim must be at least 3 (a density finite at "
                                f"+-1), got {dim!r}")
    return d


def sphere_shape(dim: float) -> float:
    """The beta shape a = b = (d - 1) / 2 of ``(x + 1) / 2`` for a sphere coordinate."""
    return 0.5 * (dim - 1.0)


def absmax_normalize(x, block) -> np.ndarray:
    """Values of ``x`` (flattened in C order) divided by the largest magnitude of their
    block of ``block`` consecutive values, as NF4-style block quantizers do; a last short
    block is normalised by its own maximum, and an all-zero block stays 0.

    The normalised values follow ``absmax-gaussian`` when ``x`` is iid Gaussian.
    """
    b = block_size(block)
    flat = np.asarray(x, dtype=np.float64).reshape(-1)
    if flat.size == 0:
        raise InvalidInputError("no values to normalise")
    if not np.all(np.isfinite(flat)):
        raise InvalidInputError("values must be finite to be normalised by blocks")
    out = np.empty_like(flat)
    full = flat.size - flat.size % b
    for lo, hi in ((0, full), (full, flat.size)):
        if hi == lo:
            continue
        chunk = flat[lo:hi].reshape(-1, min(b, hi - lo))
        peak = np.abs(chunk).max(axis=1, keepdims=True)
        safe = np.where(peak > 0, peak, 1.0)
        out[lo:hi] = (chunk / safe).reshape(-1)
    return out
