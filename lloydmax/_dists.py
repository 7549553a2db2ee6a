"""Registry of distributions, looked up by name.

Each entry builds a :class:`Distribution`: a standardised shape that the kernels
understand (see :mod:`lloydmax._kernels`) plus the affine map ``x = loc + scale * z``
back to the user's units.  Any continuous ``scipy.stats`` distribution with a finite
variance is served through a tabulated piecewise-linear density (scipy is imported only
then).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import _kernels as K
from .errors import InvalidInputError, UnknownDistributionError

__all__ = ["Distribution", "get_distribution", "list_distributions", "HALFWAVE"]

from ._conventions import HALFWAVE

_EMPTY = np.empty(0, dtype=np.float64)
_GAUSS_REACH = 17.0  # p(z)^(1/3) at 17 sigma is e^-48: far past any level of 16 bits
_LAPLACE_REACH = 120.0


@dataclass(frozen=True, eq=False)
class Distribution:
    """A distribution as the solver sees it.

    Attributes
    ----------
    name, params
        The registry name and the user's parameters (recorded in tables).
    kind, kparams, tab_x, tab_p, pm_loc, pm_w
        The standardised shape passed to the kernels.
    loc, scale
        ``x = loc + scale * z`` maps standardised values z to the user's units.
    symmetric
        Symmetric about ``loc`` (the uniform quantizer then keeps its centre there).
    reach
        Standardised interval that holds every level of any supported bit-width.
    """

    name: str
    params: dict
    kind: int
    loc: float = 0.0
    scale: float = 1.0
    kparams: np.ndarray = field(default_factory=lambda: np.zeros(1))
    tab_x: np.ndarray = field(default_factory=lambda: _EMPTY)
    tab_p: np.ndarray = field(default_factory=lambda: _EMPTY)
    pm_loc: float = 0.0
    pm_w: float = 0.0
    symmetric: bool = False
    reach: tuple = (-_GAUSS_REACH, _GAUSS_REACH)
    # a tabulated density keeps its scipy.stats distribution for the certificate
    # (lloydmax._certificate) and its singular points [s0, alpha0, s1, alpha1] in kparams
    frozen: object = field(default=None, repr=False)

    def __post_init__(self):
        # a tabulated model density gets its whole pieces' moments integrated once, after
        # its 8 header entries (lloydmax._kernels.tabulated.piece_moments): every later
        # pass over the cells adds them up instead of integrating each piece again
        kp = self.kparams
        if self.kind == K.TAB and kp.size == K.PIECE_BASE and self.tab_x.size > 1:
            moments = np.empty(3 * (self.tab_x.size - 1))
            K.piece_moments(kp, self.tab_x, self.tab_p, moments)
            object.__setattr__(self, "kparams", np.concatenate([kp, moments]))

    @property
    def halfwave(self) -> bool:
        return self.name == HALFWAVE

    def kernel_args(self):
        return (self.kind, self.kparams, self.tab_x, self.tab_p, self.pm_loc, self.pm_w)

    def describe(self) -> str:
        inner = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{self.name}({inner})"


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not (value > 0.0 and math.isfinite(value)):
        raise InvalidInputError(f"parameter {name} must be a positive finite number, got {value!r}")
    return value


def _finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise InvalidInputError(f"parameter {name} must be finite, got {value!r}")
    return value


def _gaussian(mean=0.0, std=1.0):
    mean, std = _finite("mean", mean), _positive("std", std)
    return Distribution("gaussian", {"mean": mean, "std": std}, K.GAUSS, loc=mean, scale=std,
                        symmetric=True)


def _halfwave(std=1.0):
    std = _positive("std", std)
    return Distribution(HALFWAVE, {"std": std}, K.HALFNORM, scale=std,
                        kparams=np.array([1.0]), pm_loc=0.0, pm_w=0.5,
                        reach=(0.0, _GAUSS_REACH))


def _half_normal(std=1.0):
    std = _positive("std", std)
    return Distribution("half-normal", {"std": std}, K.HALFNORM, scale=std,
                        kparams=np.array([2.0]), reach=(0.0, _GAUSS_REACH))


def _laplace(loc=0.0, scale=1.0):
    loc, scale = _finite("loc", loc), _positive("scale", scale)
    return Distribution("laplace", {"loc": loc, "scale": scale}, K.LAPLACE, loc=loc,
                        scale=scale, symmetric=True, reach=(-_LAPLACE_REACH, _LAPLACE_REACH))


def _uniform(low=0.0, high=1.0):
    low, high = _finite("low", low), _finite("high", high)
    if not high > low:
        raise InvalidInputError(f"uniform needs low < high, got low={low:g}, high={high:g}")
    return Distribution("uniform", {"low": low, "high": high}, K.UNIFORM, loc=low,
                        scale=high - low, symmetric=True, reach=(0.0, 1.0))


def _absmax_gaussian(block=64):
    """x / max|x| over blocks of ``block`` iid N(0, 1) values (:mod:`._dists_blocks`)."""
    from ._dists_blocks import absmax_gaussian_table

    block, tab_x, tab_p = absmax_gaussian_table(block)
    return Distribution("absmax-gaussian", {"block": block}, K.TAB, tab_x=tab_x, tab_p=tab_p,
                        symmetric=True, reach=(-1.0, 1.0))


def _sphere_coordinate(dim=128):
    """One coordinate of a uniform point on the sphere of R^dim (:mod:`._dists_blocks`)."""
    from dataclasses import replace

    from ._dists_blocks import sphere_dim, sphere_shape

    dim = sphere_dim(dim)
    a = sphere_shape(dim)
    if dim < 3.0:  # infinite at both ends: tabulated as w g directly (_dists_blocks)
        from scipy import stats

        from ._dists_blocks import sphere_edge_table

        tab_x, tab_g, kparams = sphere_edge_table(dim)
        mass = K.cell_moments(K.TAB, kparams, tab_x, tab_g, 0.0, 0.0, -np.inf, np.inf)[0]
        return Distribution("sphere-coordinate", {"dim": dim}, K.TAB, tab_x=tab_x,
                            tab_p=tab_g / mass, kparams=kparams, symmetric=True,
                            frozen=stats.beta(a, a, loc=-1.0, scale=2.0), reach=(-1.0, 1.0))
    d = _scipy_distribution("beta", "beta", {"a": a, "b": a, "loc": -1.0, "scale": 2.0})
    return replace(d, name="sphere-coordinate", params={"dim": dim})


_BUILTIN: dict[str, Callable[..., Distribution]] = {
    "gaussian": _gaussian,
    HALFWAVE: _halfwave,
    "half-normal": _half_normal,
    "laplace": _laplace,
    "uniform": _uniform,
    "absmax-gaussian": _absmax_gaussian,
    "sphere-coordinate": _sphere_coordinate,
}
_ALIASES = {
    "normal": "gaussian",
    "norm": "gaussian",
    "halfwave": HALFWAVE,
    "relu-gaussian": HALFWAVE,
    "halfnorm": "half-normal",
    "halfnormal": "half-normal",
}
_BUILTIN_PARAMS = {
    "gaussian": ("mean", "std"),
    HALFWAVE: ("std",),
    "half-normal": ("std",),
    "laplace": ("loc", "scale"),
    "uniform": ("low", "high"),
    "absmax-gaussian": ("block",),
    "sphere-coordinate": ("dim",),
}


def list_distributions() -> list[str]:
    """Names of the built-in distributions (any continuous scipy.stats name also works)."""
    return list(_BUILTIN)


def _canonical(name: str) -> str:
    key = str(name).strip().lower().replace("_", "-")
    return _ALIASES.get(key, key)


def get_distribution(name: str, **params) -> Distribution:
    """Look a distribution up by name.

    Built-ins: ``gaussian(mean, std)``, ``halfwave-gaussian(std)`` (ReLU of N(0, std^2):
    mass 1/2 at 0 plus the half-normal density), ``half-normal(std)``,
    ``laplace(loc, scale)``, ``uniform(low, high)``, ``absmax-gaussian(block)`` (x / max|x|
    in blocks of ``block`` iid N(0, 1) values) and ``sphere-coordinate(dim)`` (one
    coordinate of a uniform point on the sphere of R^dim); see
    :mod:`lloydmax._dists_blocks`.  Any other name is looked up in
    ``scipy.stats`` (shape parameters plus ``loc`` and ``scale``) and tabulated.

    Raises
    ------
    UnknownDistributionError
        For a name that is neither built in nor a continuous scipy.stats distribution.
    InvalidInputError
        For a parameter that is unknown or out of range.
    """
    if isinstance(name, Distribution):
        return name
    key = _canonical(name)
    if key in _BUILTIN:
        allowed = _BUILTIN_PARAMS[key]
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise InvalidInputError(
                f"{key} takes parameters {', '.join(allowed)}; unknown: {', '.join(unknown)}")
        return _BUILTIN[key](**params)
    return _scipy_distribution(key.replace("-", "_"), str(name), params)


def _unknown(name: str) -> UnknownDistributionError:
    return UnknownDistributionError(
        f"unknown distribution {name!r}; valid names: {', '.join(list_distributions())}, "
        "or any continuous scipy.stats distribution with finite variance (e.g. logistic, t, gamma)")


def _scipy_distribution(key: str, shown: str, params: dict) -> Distribution:
    """The tabulated scipy.stats distribution, from a per-process cache: tabulating
    takes 0.1-0.3 s (half a million nodes of scipy's pdf, ppf and isf), and a user who
    solves several bit-widths of one density should pay it once."""
    try:
        items = tuple(sorted((str(k), float(v)) for k, v in params.items()))
    except (TypeError, ValueError):
        items = None  # not numbers: let the full path raise its clear error
    if items is None:
        return _scipy_distribution_uncached(key, shown, params)
    dist = _scipy_cached(key, items)
    if dist is None:
        dist = _scipy_distribution_uncached(key, shown, params)
        _SCIPY_CACHE[(key, items)] = dist
        while len(_SCIPY_CACHE) > _SCIPY_CACHE_SIZE:
            _SCIPY_CACHE.pop(next(iter(_SCIPY_CACHE)))
    return dist


_SCIPY_CACHE: dict = {}
_SCIPY_CACHE_SIZE = 8  # tables of ~0.5 M nodes: about 22 MB each with their moments


def _scipy_cached(key: str, items: tuple):
    dist = _SCIPY_CACHE.pop((key, items), None)
    if dist is not None:
        _SCIPY_CACHE[(key, items)] = dist  # most recently used last
    return dist


def _scipy_distribution_uncached(key: str, shown: str, params: dict) -> Distribution:
    try:
        from scipy import stats
    except ImportError:  # pragma: no cover - scipy is a core dependency
        raise _unknown(shown) from None
    gen = getattr(stats, key, None)
    if not isinstance(gen, stats.rv_continuous):
        raise _unknown(shown)
    shapes = [s.strip() for s in (gen.shapes or "").split(",") if s.strip()]
    allowed = shapes + ["loc", "scale"]
    unknown = sorted(set(params) - set(allowed))
    missing = [s for s in shapes if s not in params]
    if unknown or missing:
        need = ", ".join(allowed)
        raise InvalidInputError(
            f"{key} takes parameters {need}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            + (f"; missing: {', '.join(missing)}" if missing else ""))
    values = {k: float(params[k]) for k in allowed if k in params}
    try:
        frozen = gen(**values)
        mean, var = (float(v) for v in frozen.stats(moments="mv"))
    except Exception as exc:  # scipy's own argument checks
        raise InvalidInputError(f"invalid parameters for {key}: {exc}") from None
    if not (math.isfinite(mean) and math.isfinite(var) and var > 0.0):
        raise InvalidInputError(
            f"{key} with these parameters has no finite variance, so no quantizer has finite MSE")
    std = math.sqrt(var)
    probe = std * np.array([0.1, 0.5, 1.0, 2.0, 3.5])
    symmetric = bool(np.allclose(frozen.pdf(mean + probe), frozen.pdf(mean - probe),
                                 rtol=1e-12, atol=0.0))
    singular = _singular_points(frozen, mean, std, symmetric)
    # standardise about a singular point itself (a symmetric density: about its centre),
    # so that nodes 1e-40 std from it stay representable in z
    loc = singular[0][0] if singular and not symmetric else mean
    tab_x, tab_p, kparams = _tabulate(frozen, loc, std, singular, symmetric)
    return Distribution(key, values, K.TAB, loc=loc, scale=std, tab_x=tab_x, tab_p=tab_p,
                        kparams=kparams, symmetric=symmetric, frozen=frozen,
                        reach=(float(tab_x[0]), float(tab_x[-1])))


_SING_NEAR = 1e-40   # innermost geometric node, in std units from the singular point
_SING_RATIO = 1.01   # ratio of successive geometric nodes around a singular point


def _singular_points(frozen, mean: float, std: float, symmetric: bool) -> list:
    """Integrable singular points of the density, [(x, alpha)] in the user's units,
    where p(x) ~ |x - s|^alpha with -1 < alpha < 0: the finite edges of the support,
    and the centre of a symmetric density (dgamma, dweibull).  The exponent is read off
    the log-log slope between 1e-30 and 1e-20 std from the point."""
    lo_s, hi_s = (float(v) for v in frozen.support())
    probes = []
    if math.isfinite(lo_s):
        probes.append((lo_s, 1.0))
    if math.isfinite(hi_s):
        probes.append((hi_s, -1.0))
    if symmetric:
        probes.append((mean, 1.0))
    out = []
    with np.errstate(all="ignore"):
        for s, direction in probes:
            near, far = (float(frozen.pdf(s + direction * d * std)) for d in (1e-30, 1e-20))
            if not (math.isfinite(near) and math.isfinite(far)) or near <= 0.0 or far <= 0.0:
                if near == math.inf or far == math.inf:
                    raise InvalidInputError(
                        "could not tabulate the density of this distribution: it is "
                        "infinite next to a singular point")
                continue
            alpha = math.log(near / far) / math.log(1e-10)
            if alpha < -1e-6:
                if alpha <= -1.0 + 1e-9:
                    raise InvalidInputError(
                        "the density of this distribution is not integrable at a singular point")
                out.append((s, alpha))
    if len(out) > 2:
        raise InvalidInputError(
            "the density of this distribution has more than two singular points; "
            "lloydmax handles up to two")
    return out


_CENTRAL_Q = 1e-4  # the uniform grid spans the [1e-4, 1 - 1e-4] quantile range


def _tabulate(frozen, loc: float, std: float, singular: list, symmetric: bool,
              n_central: int = 1 << 18):
    """Tabulate p = w g in standardised units z = (x - loc) / std, for the kernels'
    tabulated densities (:mod:`lloydmax._kernels.tabulated`): w(z) = prod |z - s_k|^alpha_k
    over the singular points, g = p / w at the nodes.

    Nodes: a uniform grid of ``n_central`` over the central [1e-4, 1 - 1e-4] quantile
    range (g linear there); quantile-spaced nodes in each tail, 1000 per decade of tail
    probability down to 1e-20 and 50 per decade on to 1e-300 (where scipy's ppf/isf
    reach), so that a heavy tail keeps its mass and its first moments out to where the
    outermost level of 16 bits lies; and geometric nodes (ratio 1.01) from 1e-40 std out
    around each singular point.  In each tail g is read as exponential or power-law
    pieces, whichever reproduces the density best at the midpoints of the nodes.

    A symmetric density is tabulated on its upper half and mirrored, so that the table is
    exactly symmetric (separate ppf/isf calls differ in the last bits, which would leave
    the solver's symmetric projection chasing an asymmetry of 1e-11).  Normalised to
    total mass 1 by the kernel's own cell moments."""
    mean = loc
    lo_s, hi_s = ((float(v) - mean) / std for v in frozen.support())
    with np.errstate(all="ignore"):
        edges = (frozen.ppf(_CENTRAL_Q), frozen.isf(_CENTRAL_Q))
        central = (np.linspace(*edges, n_central) - mean) / std
        tail_p = np.concatenate([np.geomspace(_CENTRAL_Q, 1e-20, 16000),
                                 np.geomspace(1e-20, 1e-300, 14000)[1:]])
        tails = (np.concatenate([frozen.ppf(tail_p), frozen.isf(tail_p)]) - mean) / std
    xl, xr = ((float(v) - mean) / std for v in edges)
    if symmetric:
        xr = max(abs(xl), abs(xr))
        xl = -xr
    h = float(np.max(np.diff(central)))
    count = math.ceil(math.log(max(100.0 * h, 1e-30) / _SING_NEAR) / math.log(_SING_RATIO))
    geo = _SING_NEAR * _SING_RATIO ** np.arange(max(count, 1) + 1)
    parts = [central, tails]
    singular = [((x - mean) / std, alpha) for x, alpha in singular]
    for s, _ in singular:
        parts += [np.array([s]), s + geo, s - geo]
    nodes = np.concatenate(parts)
    if symmetric:
        nodes = np.concatenate([np.abs(nodes), [0.0]])
    nodes = nodes[np.isfinite(nodes) & (nodes >= lo_s) & (nodes <= hi_s)]
    if math.isfinite(lo_s):
        nodes = np.concatenate([nodes, [lo_s]])
    if math.isfinite(hi_s):
        nodes = np.concatenate([nodes, [hi_s]])
    z = np.unique(nodes)
    if symmetric:
        z = z[z >= 0.0]
        z = np.unique(np.concatenate([-z, z]))
    kparams = np.zeros(8)
    kparams[4], kparams[5] = xl, xr
    for k, (s, alpha) in enumerate(singular):
        kparams[2 * k] = s
        kparams[2 * k + 1] = alpha
    is_sing = np.zeros(z.size, dtype=bool)
    for s, _ in singular:
        is_sing |= z == s
        # ppf of a tail probability near 1e-300 lands within denormals of the point,
        # where neither |z - s|^alpha nor g is accurate: the closed-form first piece
        # covers that stretch instead
        near = (np.abs(z - s) < 0.5 * _SING_NEAR) & (z != s)
        z, is_sing = z[~near], is_sing[~near]
    with np.errstate(all="ignore"):
        p = frozen.pdf(mean + std * z) * std
        w = np.ones_like(z)
        for s, alpha in singular:
            w *= np.abs(z - s) ** alpha
        g = p / w
    g[is_sing] = np.nan
    keep = np.isfinite(g) | is_sing
    z, g, is_sing = z[keep], g[keep], is_sing[keep]
    for idx in np.flatnonzero(is_sing):  # g at the point itself: its neighbour's value
        nbr = [j for j in (idx - 1, idx + 1) if 0 <= j < z.size and not is_sing[j]]
        g[idx] = g[nbr[0]] if len(nbr) == 1 else 0.5 * (g[nbr[0]] + g[nbr[1]])
    if symmetric:
        g = 0.5 * (g + g[::-1])  # exactly symmetric
    z = np.ascontiguousarray(z, dtype=np.float64)
    g = np.ascontiguousarray(g, dtype=np.float64)
    # a bounded side has no tail: g stays linear up to its edge (and its singular point)
    if not math.isfinite(hi_s):
        kparams[7] = _tail_mode(frozen, mean, std, z, g, singular, z >= xr)
    if symmetric:
        kparams[6] = kparams[7]
    elif not math.isfinite(lo_s):
        kparams[6] = _tail_mode(frozen, mean, std, z, g, singular, z <= xl)
    mass = K.cell_moments(K.TAB, kparams, z, g, 0.0, 0.0, -np.inf, np.inf)[0]
    if not (mass > 0.0 and math.isfinite(mass) and np.all(np.isfinite(g))):
        raise InvalidInputError("could not tabulate the density of this distribution")
    return z, np.ascontiguousarray(g / mass), kparams


def _tail_mode(frozen, loc, std, z, g, singular, in_tail) -> float:
    """The interpolation of g in one tail (0 linear, 1 exponential, 2 power law) that is
    closest to the density at the midpoints of a sample of its pieces."""
    idx = np.flatnonzero(in_tail[:-1] & in_tail[1:])
    idx = idx[(g[idx] > 0.0) & (g[idx + 1] > 0.0) & (z[idx] * z[idx + 1] > 0.0)]
    if idx.size < 2:
        return 0.0
    idx = idx[np.linspace(0, idx.size - 1, min(idx.size, 400)).astype(int)]
    x0, x1, g0, g1 = z[idx], z[idx + 1], g[idx], g[idx + 1]
    xm = 0.5 * (x0 + x1)
    with np.errstate(all="ignore"):
        w = np.ones_like(xm)
        for s, alpha in singular:
            w *= np.abs(xm - s) ** alpha
        truth = frozen.pdf(loc + std * xm) * std / w
        r = np.log(g1 / g0)
        guesses = (0.5 * (g0 + g1), g0 * np.exp(0.5 * r),
                   g0 * np.exp(r * np.log(xm / x0) / np.log(x1 / x0)))
        ok = np.isfinite(truth) & (truth > 0.0)
        if not np.any(ok):
            return 0.0
        errors = [float(np.median(np.abs(v[ok] / truth[ok] - 1.0))) for v in guesses]
    return float(int(np.argmin(errors)))
