"""Checking a given quantizer table against the exact optimum.

Trainers ship hand-copied constants (HWGQ steps extended to 5-8 bits, EdMIPS Gaussian
steps, TSQ's dead zone).  :func:`check` rebuilds such a table, measures its MSE under
the distribution it is meant for with :func:`lloydmax.evaluate`, solves the optimum of
the *same* kind (uniform or non-uniform), convention and level count with
:func:`lloydmax.solve`, and reports how much MSE the copy gives away.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from ._conventions import centre, resolve_levels, resolve_zero
from ._dists import get_distribution
from ._solver import evaluate, solve
from ._table import QuantizerTable, build_table
from .errors import InvalidInputError, InvalidTableError

__all__ = ["CheckResult", "check", "table_from_levels", "table_from_step"]


class _Cells(NamedTuple):
    """The part of a table that :func:`evaluate` reads when given a distribution."""

    levels: np.ndarray
    thresholds: np.ndarray
    convention: str

_UNIFORM_RTOL = 1e-6  # equal spacings up to this relative error make a table "uniform"


def table_from_levels(levels, *, convention=None, dist="halfwave-gaussian", params=None,
                      zero_threshold=None, sparsity=None, step=None,
                      uniform=None) -> QuantizerTable:
    """A :class:`QuantizerTable` from given levels, evaluated under a distribution.

    Thresholds follow the convention: midpoints of neighbouring levels
    $t_i = (q_{i-1} + q_i)/2$, except the first threshold of a half-wave table, which is
    pinned at 0 (``hwgq``) or at the dead-zone threshold $\\epsilon$ (``deadzone``).
    The MSE, SQNR, entropy and the Lloyd-Max violations come from
    :func:`lloydmax.evaluate`.

    Parameters
    ----------
    levels : array_like
        All reconstruction levels, strictly increasing; a half-wave table starts at 0.
    convention : {"hwgq", "round", "deadzone"}, optional
        Half-wave only (default hwgq, or deadzone when a threshold is given).
    dist : str
        Distribution the table is meant for (registry name).
    params : dict, optional
        Its parameters (e.g. ``{"std": 2.0}``).
    zero_threshold : float or {"hwgq", "round"}, optional
        Dead-zone threshold $\\epsilon$ in input units.
    sparsity : float, optional
        Dead zone with $P(x \\le \\epsilon)$ equal to this.
    step : float, optional
        The table's step; marks it uniform.
    uniform : bool, optional
        Force the kind; by default a table is uniform when ``step`` is given or its
        spacings agree to a relative 1e-6 (and, half-wave, its levels are ``k * step``).

    Returns
    -------
    QuantizerTable
        ``iterations`` 0; ``residual`` the largest relative violation of the conditions
        the kind should meet (non-uniform: centroid and midpoint; uniform: midpoint);
        ``converged`` is ``residual <= 1e-9``.

    Raises
    ------
    InvalidTableError
        Levels that are not finite and strictly increasing, a half-wave table that does
        not start at 0, or a dead zone at or beyond the second threshold.
    """
    try:
        lv = np.asarray(levels, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidTableError("levels must be a list of numbers") from None
    if lv.size < 2:
        raise InvalidTableError(f"a quantizer needs at least 2 levels, got {lv.size}")
    if not np.all(np.isfinite(lv)):
        raise InvalidTableError("levels must be finite")
    if not np.all(np.diff(lv) > 0):
        raise InvalidTableError("levels must be strictly increasing")
    bits, n = resolve_levels(n_levels=lv.size)
    d = get_distribution(dist, **(params or {}))
    conv, eps = resolve_zero(d.halfwave, d.scale, convention, zero_threshold, sparsity)
    thr = 0.5 * (lv[:-1] + lv[1:])
    if d.halfwave:
        if lv[0] != 0.0:
            raise InvalidTableError(f"a half-wave table must start at level 0, got {lv[0]:g}")
        if conv == "hwgq":
            thr[0] = 0.0
        elif conv == "deadzone":
            # eps may exceed the first positive level (an optimal uniform grid with a wide
            # dead zone does that); the thresholds only have to stay increasing
            if lv.size > 2 and not eps < thr[1]:
                raise InvalidTableError(f"dead-zone threshold {eps:g} is not below the next "
                                        f"threshold {thr[1]:g}")
            thr[0] = eps
    if step is not None:
        step = float(step)
        if not (step > 0 and math.isfinite(step)):
            raise InvalidInputError(f"step must be a positive finite number, got {step!r}")
    spacing = np.diff(lv)
    looks_uniform = bool(np.all(np.abs(spacing - spacing.mean()) <= _UNIFORM_RTOL * spacing.mean()))
    kind_uniform = (step is not None or looks_uniform) if uniform is None else bool(uniform)
    if kind_uniform and step is None:
        step = float(spacing.mean())
    if not kind_uniform:
        step = None
    ev = evaluate(_Cells(lv, thr, conv), dist=d)
    residual = (ev["midpoint_residual"] if kind_uniform
                else max(ev["midpoint_residual"], ev["centroid_residual"]))
    table = build_table(
        lv, thr, step_z=step, bits=bits, n_levels=n, distribution=d.name, params=d.params,
        convention=conv, kind="uniform" if kind_uniform else "nonuniform", mse_z=ev["mse"],
        power_z=math.nan, entropy_bits=ev["entropy_bits"], residual=residual, iterations=0,
        converged=bool(residual <= 1e-9), zero_threshold_z=0.0 if conv == "hwgq" else eps)
    return replace(table, sqnr_db=ev["sqnr_db"])  # evaluate's, from the density's E[X^2]


def table_from_step(step, bits=None, *, n_levels=None, dist="halfwave-gaussian", params=None,
                    convention=None, zero_threshold=None, sparsity=None) -> QuantizerTable:
    """A uniform table from its step: levels $k\\Delta$ (half-wave, $k = 0..L-1$) or
    $(k - (L-1)/2)\\Delta$ about the centre of a symmetric distribution.

    Raises
    ------
    InvalidInputError
        For a distribution that is neither half-wave nor symmetric (its uniform grid has a
        free offset: give the levels instead).
    """
    try:
        s = float(step)
    except (TypeError, ValueError):
        raise InvalidInputError(f"step must be a number, got {step!r}") from None
    if not (s > 0 and math.isfinite(s)):
        raise InvalidInputError(f"step must be a positive finite number, got {step!r}")
    _, n = resolve_levels(bits, n_levels)
    d = get_distribution(dist, **(params or {}))
    k = np.arange(n, dtype=np.float64)
    if d.halfwave:
        levels = k * s
    elif d.symmetric:
        middle = d.loc + d.scale * centre(d.name == "uniform")
        levels = middle + (k - 0.5 * (n - 1)) * s
    else:
        raise InvalidInputError(f"{d.name} is not symmetric, so a step alone does not fix the "
                                "levels; give the levels instead")
    return table_from_levels(levels, convention=convention, dist=d, params=None,
                             zero_threshold=zero_threshold, sparsity=sparsity, step=s,
                             uniform=True)


@dataclass(frozen=True, eq=False)
class CheckResult:
    """A table held against the optimum of its own kind, convention and level count.

    Attributes
    ----------
    table : QuantizerTable
        The checked table, with its MSE under ``distribution``.
    optimal : QuantizerTable
        The optimum of the same kind (uniform / non-uniform), convention, dead zone and
        level count, from :func:`lloydmax.solve`.
    mse, optimal_mse : float
        $E[(Q(X) - X)^2]$ of the two tables.
    excess_percent : float
        $100\\,(\\mathrm{mse}/\\mathrm{optimal\\_mse} - 1)$.
    centroid_violation, midpoint_violation : float
        Largest relative violations of the Lloyd-Max conditions by the checked table
        (:func:`lloydmax.evaluate`; a uniform table is not expected to meet the centroid
        condition).
    optimal_step : float or None
        Step of the optimum (uniform tables).
    optimal_levels : ndarray
        Levels of the optimum.
    nonuniform_mse : float
        MSE of the non-uniform optimum in the same convention (a lower bound for both).
    kind, convention, distribution, params, bits, n_levels
        What was compared.
    pin_levels : tuple
        Levels the optimum was held at (empty: a free optimum).
    input_scale : float or None
        With ``best_scale``: the factor the given levels were multiplied by (the one that
        minimises their MSE under the distribution); None otherwise.
    """

    table: QuantizerTable
    optimal: QuantizerTable
    mse: float
    optimal_mse: float
    excess_percent: float
    centroid_violation: float
    midpoint_violation: float
    optimal_step: float | None
    optimal_levels: np.ndarray
    nonuniform_mse: float
    kind: str
    convention: str
    distribution: str
    params: dict
    bits: int
    n_levels: int
    pin_levels: tuple = ()
    input_scale: float | None = None

    def within(self, tolerance_percent: float) -> bool:
        """True when the excess MSE is at most ``tolerance_percent`` (for ``--strict``)."""
        return self.excess_percent <= float(tolerance_percent)

    def to_dict(self) -> dict:
        """JSON-ready summary; keys include ``mse``, ``optimal_mse``, ``excess_percent``."""
        def num(v):
            return None if v is None else float(v)

        return {
            "distribution": {"name": self.distribution, "params": dict(self.params)},
            "kind": self.kind,
            "convention": self.convention,
            "bits": int(self.bits),
            "n_levels": int(self.n_levels),
            "zero_threshold": num(self.table.zero_threshold),
            "step": num(self.table.step),
            "levels": [float(v) for v in self.table.levels],
            "mse": float(self.mse),
            "optimal_mse": float(self.optimal_mse),
            "excess_percent": float(self.excess_percent),
            "sqnr_db": float(self.table.sqnr_db),
            "optimal_sqnr_db": float(self.optimal.sqnr_db),
            "centroid_violation": float(self.centroid_violation),
            "midpoint_violation": float(self.midpoint_violation),
            "optimal_step": num(self.optimal_step),
            "optimal_levels": [float(v) for v in self.optimal_levels],
            "nonuniform_mse": float(self.nonuniform_mse),
            "pin_levels": [float(v) for v in self.pin_levels],
            "input_scale": num(self.input_scale),
        }

    def to_text(self) -> str:
        """A few lines for a terminal."""
        t, o = self.table, self.optimal
        conv = "" if self.convention == "none" else f", convention {self.convention}"
        pars = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        lines = [f"{self.distribution}({pars}): {self.n_levels} levels ({self.bits} bits), "
                 f"{self.kind}{conv}"]
        if t.convention == "deadzone":
            lines.append(f"dead-zone threshold eps = {t.zero_threshold:.6g}")
        if self.input_scale is not None:
            lines.append(f"given levels scaled by {self.input_scale:.6g} (the best scale)")
        if self.pin_levels:
            lines.append("optimum with pinned levels " + " ".join(f"{v:g}"
                                                               for v in self.pin_levels))
        if t.step is not None:
            lines.append(f"step          given {t.step:.6g}   optimal {o.step:.6g}")
        else:
            lines.append("levels        given " + " ".join(f"{v:.6g}" for v in t.levels))
            lines.append("              optimal " + " ".join(f"{v:.6g}" for v in o.levels))
        lines.append(f"MSE           given {self.mse:.6g}   optimal {self.optimal_mse:.6g}   "
                     f"excess {self.excess_percent:.4g} %")
        lines.append(f"SQNR          given {t.sqnr_db:.4f} dB   optimal {o.sqnr_db:.4f} dB")
        if self.kind == "uniform":
            lines.append(f"non-uniform optimum MSE {self.nonuniform_mse:.6g}")
        else:
            lines.append(f"centroid violation {self.centroid_violation:.3g}   "
                         f"midpoint violation {self.midpoint_violation:.3g}")
        return "\n".join(lines) + "\n"


def check(table=None, *, levels=None, step=None, bits=None, n_levels=None, dist=None,
          params=None, convention=None, zero_threshold=None, sparsity=None,
          uniform=None, pin_levels=None, best_scale: bool = False) -> CheckResult:
    """Hold a quantizer table against the exact optimum of the same kind and convention.

    Give exactly one of

    * ``table``: a :class:`QuantizerTable` (e.g. from :func:`lloydmax.load_table`);
      its distribution, convention and dead zone are used unless ``dist``/``params``
      override the distribution;
    * ``levels``: the full list of levels (a half-wave table starts at 0);
    * ``step`` with ``bits`` (or ``n_levels``): a uniform table, levels $k\\Delta$
      for the half-wave Gaussian (in the hwgq, round or deadzone convention) or
      symmetric about the centre for a symmetric distribution.

    The checked table's MSE is $D = E[(Q(X) - X)^2]$ from :func:`lloydmax.evaluate`;
    the reference is :func:`lloydmax.solve` with the same level count, the same
    ``uniform`` flag, convention and dead-zone threshold, and
    ``excess_percent`` $= 100 (D / D^* - 1)$.

    Parameters
    ----------
    dist : str, optional
        Distribution (default: the table's own; ``halfwave-gaussian`` for levels/step).
    params : dict, optional
        Distribution parameters, e.g. ``{"std": 2.0}``.
    convention, zero_threshold, sparsity
        Half-wave convention, as in :func:`lloydmax.solve`.
    uniform : bool, optional
        Kind of the given levels (default: detected from their spacing).
    pin_levels : sequence of float, optional
        Compare with the optimum whose levels include these values
        (:func:`lloydmax.solve` with ``pin_levels``; non-uniform only), e.g. NF4's
        ``[-1, 0, 1]``.
    best_scale : bool
        First multiply the given levels by the factor ``s`` that minimises their MSE
        under the distribution (a codebook used as ``s * levels``, such as NF4 on
        N(0, 1)); reported as ``input_scale``.

    Returns
    -------
    CheckResult

    Raises
    ------
    InvalidInputError
        None or more than one of table / levels / step given, or step without bits.
    InvalidTableError
        Levels that do not form a table.
    """
    given = [x is not None for x in (table, levels, step)]
    if sum(given) != 1:
        raise InvalidInputError("give exactly one of a table, levels= or step= (with bits=)")
    if table is not None:
        if not isinstance(table, QuantizerTable):
            raise InvalidInputError(f"table must be a QuantizerTable, got {type(table).__name__}")
        if dist is None and table.distribution == "empirical":
            raise InvalidInputError("this table was fitted to data: name the distribution to "
                                    "check it against (dist=...)")
        use_dist = dist or table.distribution
        use_params = params if params is not None else (table.params if dist is None else None)
        d = get_distribution(use_dist, **(use_params or {}))
        conv = convention
        zt = zero_threshold
        if conv is None and zt is None and sparsity is None and d.halfwave:
            conv = table.convention if table.convention != "none" else None
            if conv == "deadzone":
                zt = table.zero_threshold
        given_table = table_from_levels(
            table.levels, convention=conv, dist=d, zero_threshold=zt, sparsity=sparsity,
            step=table.step, uniform=(table.kind == "uniform") if uniform is None else uniform)
    elif levels is not None:
        d = get_distribution(dist or "halfwave-gaussian", **(params or {}))
        given_table = table_from_levels(levels, convention=convention, dist=d,
                                        zero_threshold=zero_threshold, sparsity=sparsity,
                                        uniform=uniform)
        if bits is not None or n_levels is not None:
            _, n = resolve_levels(bits, n_levels)
            if n != given_table.n_levels:
                raise InvalidInputError(f"{given_table.n_levels} levels given but {n} expected")
    else:
        if bits is None and n_levels is None:
            raise InvalidInputError("a step needs a bit-width (bits=) or level count (n_levels=)")
        d = get_distribution(dist or "halfwave-gaussian", **(params or {}))
        given_table = table_from_step(step, bits, n_levels=n_levels, dist=d,
                                      convention=convention, zero_threshold=zero_threshold,
                                      sparsity=sparsity)
    scale = None
    if best_scale:
        given_table, scale = _best_scaled(given_table, d, convention, zero_threshold,
                                          sparsity, uniform)
    return _compare(given_table, d, pin_levels, scale)


def _best_scaled(t: QuantizerTable, d, convention, zero_threshold, sparsity, uniform):
    """The table ``s * levels`` with the least MSE under ``d`` (golden-section search on
    log s, bracketed around the scale that matches the spread of the levels to the
    distribution's), and ``s``."""
    from scipy.optimize import minimize_scalar

    levels = np.asarray(t.levels)
    centre_x = d.loc if not d.halfwave else 0.0

    def build(log_s):
        s = math.exp(log_s)
        return table_from_levels(centre_x + s * (levels - centre_x), convention=convention,
                                 dist=d, zero_threshold=zero_threshold, sparsity=sparsity,
                                 uniform=uniform)

    res = minimize_scalar(lambda u: build(u).mse, bounds=(-6.0, 6.0), method="bounded",
                          options={"xatol": 1e-10})
    return build(float(res.x)), math.exp(float(res.x))


def _compare(t: QuantizerTable, d, pin_levels=None, scale=None) -> CheckResult:
    kw = {"n_levels": t.n_levels, "dist": d}
    if d.halfwave:
        kw["convention"] = t.convention
        if t.convention == "deadzone":
            kw["zero_threshold"] = t.zero_threshold
    uniform = t.kind == "uniform"
    if pin_levels is not None:
        if uniform:
            raise InvalidInputError("pinned levels need a non-uniform table (uniform=False)")
        kw["pin_levels"] = pin_levels
    opt = solve(uniform=uniform, **kw)
    nonuni = opt if not uniform else solve(uniform=False, **kw)
    ev = evaluate(t)
    excess = 100.0 * (t.mse / opt.mse - 1.0) if opt.mse > 0 else math.inf
    return CheckResult(
        table=t, optimal=opt, mse=t.mse, optimal_mse=opt.mse, excess_percent=excess,
        centroid_violation=ev["centroid_residual"], midpoint_violation=ev["midpoint_residual"],
        optimal_step=opt.step, optimal_levels=opt.levels, nonuniform_mse=nonuni.mse,
        kind=t.kind, convention=t.convention, distribution=d.name, params=dict(d.params),
        bits=t.bits, n_levels=t.n_levels,
        pin_levels=tuple(float(v) for v in np.sort(np.asarray(pin_levels, dtype=float)))
        if pin_levels is not None else (), input_scale=scale)
