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
For d >= 3 it is served as that scipy.stats beta distribution (the registry's
tabulated path).  For 2 <= d < 3 the density is infinite at both ends (d = 2 is the
arcsine law ``1 / (pi sqrt(1 - x^2))``), and the registry's probe of a singular point
cannot be used: it looks 1e-30 std from the point, which rounds onto -1 or 1.  The law
is exactly ``w(x) g`` with the kernels' singular factor ``w = |x + 1|^alpha |x - 1|^alpha``,
``alpha = (d - 3) / 2``, and a constant ``g``, so :func:`sphere_edge_table` tabulates
it directly: a constant g on a uniform grid plus geometric nodes (ratio 1.01) from
1e-9 out of each end; the kernels integrate the end pieces in closed form.

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
           "sphere_dim", "sphere_edge_table", "sphere_shape"]

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
    """``dim`` as a number >= 2 (the dimension of the sphere's ambient space; below 2
    the density is not integrable at +-1)."""
    try:
        d = float(dim)
    except (TypeError, ValueError):
        raise InvalidInputError(f"parameter dim must be a number, got {dim!r}") from None
    if not (d >= 2.0 and math.isfinite(d)):
        raise InvalidInputError(f"parameter dim must be at least 2 (below 2 the density "
                                f"is not integrable at +-1), got {dim!r}")
    return d


_EDGE_GRID = 1 << 12    # uniform pieces of [-1, 1] for the singular sphere coordinate
_EDGE_RATIO = 1.01      # geometric nodes next to +-1, as the registry's tabulation
# the innermost node next to +-1 (in x, where +-1 are): floats there are 1.1e-16 apart,
# so a grid that went closer would round its nodes, and the kernels would evaluate w at
# distances off by up to 1.1e-16 (at 1e-13 that is 1e-3 relative; starting at 2^-53 the
# mass came out 1.9e-10 too large); from 1e-9 the rounding is 1e-7 of the distance, and
# the end piece (1 - 1e-9, 1] is integrated in closed form (total mass within 5e-15)
_EDGE_NEAR = 1e-9


def sphere_edge_table(dim: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(tab_x, tab_g, kparams)`` of a sphere coordinate for 2 <= d < 3 (module
    docstring): in the kernels' singular form p = w g, w = |x + 1|^alpha |x - 1|^alpha,
    alpha = (d - 3) / 2, with g the constant 1 / (2^(d - 2) B((d-1)/2, (d-1)/2))
    (1 / pi for d = 2), in the user's units (loc 0, scale 1)."""
    from scipy.special import beta

    alpha = 0.5 * (dim - 3.0)
    a = 0.5 * (dim - 1.0)
    step = 2.0 / _EDGE_GRID
    count = math.ceil(math.log(100.0 * step / _EDGE_NEAR) / math.log(_EDGE_RATIO))
    geo = _EDGE_NEAR * _EDGE_RATIO ** np.arange(count + 1)
    half = np.concatenate([np.linspace(0.0, 1.0, _EDGE_GRID // 2 + 1), 1.0 - geo])
    half = np.unique(half[(half >= 0.0) & (half <= 1.0)])
    z = np.unique(np.concatenate([-half, half]))
    g = np.full(z.size, 1.0 / (2.0 ** (2.0 * a - 1.0) * beta(a, a)))
    kparams = np.array([-1.0, alpha, 1.0, alpha, -1.0, 1.0, 0.0, 0.0])
    return z, g, kparams


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
