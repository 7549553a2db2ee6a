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


_BUILTIN: dict[str, Callable[..., Distribution]] = {
    "gaussian": _gaussian,
    HALFWAVE: _halfwave,
    "half-normal": _half_normal,
    "laplace": _laplace,
    "uniform": _uniform,
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
    ``laplace(loc, scale)`` and ``uniform(low, high)``.  Any other name is looked up in
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
    tab_x, tab_p = _tabulate(frozen, mean, std, symmetric=symmetric)
    return Distribution(key, values, K.TAB, loc=mean, scale=std, tab_x=tab_x, tab_p=tab_p,
                        symmetric=symmetric, reach=(float(tab_x[0]), float(tab_x[-1])))


def _tabulate(frozen, mean: float, std: float, n_central: int = 1 << 18, n_tail: int = 8000,
              symmetric: bool = False):
    """Piecewise-linear density in standardised units: a fine uniform grid over the
    central [1e-7, 1 - 1e-7] quantile range and quantile-spaced nodes in each tail out to
    1e-15, so that heavy tails keep their mass.  Normalised to total mass 1.

    A symmetric density is tabulated on its upper half and mirrored, so that the table is
    exactly symmetric (separate ppf/isf calls differ in the last bits, which would leave
    the solver's symmetric projection chasing an asymmetry of 1e-11)."""
    if symmetric:
        upper = frozen.isf(np.geomspace(0.5, 1e-15, n_tail))
        upper = np.concatenate([np.linspace(mean, frozen.isf(1e-7), n_central // 2), upper])
        z = np.unique((upper[np.isfinite(upper)] - mean) / std)
        z = z[z > 0.0]
        p = frozen.pdf(mean + std * z) * std
        keep = np.isfinite(p)
        z, p = z[keep], p[keep]
        p0 = float(frozen.pdf(mean)) * std
        z = np.concatenate([-z[::-1], [0.0], z])
        p = np.concatenate([p[::-1], [p0], p])
        mass = float(np.sum(0.5 * (p[1:] + p[:-1]) * np.diff(z)))
        if not (mass > 0.0 and math.isfinite(mass) and math.isfinite(p0)):
            raise InvalidInputError("could not tabulate the density of this distribution")
        return (np.ascontiguousarray(z, dtype=np.float64),
                np.ascontiguousarray(p / mass, dtype=np.float64))
    lo_s, hi_s = (float(v) for v in frozen.support())
    central = np.linspace(frozen.ppf(1e-7), frozen.isf(1e-7), n_central)
    tail_p = np.geomspace(1e-7, 1e-15, n_tail)[1:]
    left = frozen.ppf(tail_p)[::-1]
    right = frozen.isf(tail_p)
    nodes = np.concatenate([left, central, right])
    if math.isfinite(lo_s):
        nodes = np.concatenate([[lo_s], nodes])
    if math.isfinite(hi_s):
        nodes = np.concatenate([nodes, [hi_s]])
    nodes = np.unique(nodes[np.isfinite(nodes)])
    dens = frozen.pdf(nodes)
    if not np.all(np.isfinite(dens)):
        # an unbounded density at the edge of the support: step just inside it
        bad = ~np.isfinite(dens)
        nodes = nodes[~bad]
        dens = dens[~bad]
    z = (nodes - mean) / std
    p = dens * std
    mass = float(np.sum(0.5 * (p[1:] + p[:-1]) * np.diff(z)))
    if not (mass > 0.0 and math.isfinite(mass)):
        raise InvalidInputError("could not tabulate the density of this distribution")
    return (np.ascontiguousarray(z, dtype=np.float64),
            np.ascontiguousarray(p / mass, dtype=np.float64))
