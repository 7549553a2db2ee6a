"""Trainer presets: the quantizers of HWGQ, TSQ, SYQ and Direct Quantization by name.

Each preset records where its convention comes from (the authors' code, see
REFERENCES.md) and builds its activation table with :func:`lloydmax.solve` and its
weight codebook with :mod:`lloydmax.weights`.  All activation tables are for
BatchNorm outputs without a Scale layer, i.e. ReLU of $N(0, \\sigma^2)$; ``std`` sets
$\\sigma$ (default 1).

>>> from lloydmax.presets import get_preset
>>> round(get_preset("hwgq").activation_table(2).step, 4)
0.5388
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _hwgq
from . import weights as _weights
from ._check import table_from_levels
from ._conventions import resolve_levels
from ._data import solve_data
from ._dists import HALFWAVE
from ._solver import solve
from ._table import QuantizerTable
from .constants import TSQ_EPS
from .errors import InvalidDataError, InvalidInputError

__all__ = ["Preset", "HWGQPreset", "TSQPreset", "SYQPreset", "DQPreset", "BackwardSurrogate",
           "PRESETS", "get_preset", "list_presets", "TSQ_EPS"]

BACKWARD_KINDS = _hwgq.BACKWARDS


def _std(std) -> float:
    try:
        s = float(std)
    except (TypeError, ValueError):
        raise InvalidInputError(f"std must be a positive finite number, got {std!r}") from None
    if not (s > 0.0 and math.isfinite(s)):
        raise InvalidInputError(f"std must be a positive finite number, got {std!r}")
    return s


@dataclass(frozen=True, eq=False)
class BackwardSurrogate:
    """Forward value and derivative of an HWGQ backward approximation at each input."""

    kind: str
    value: np.ndarray
    gradient: np.ndarray


@dataclass(frozen=True)
class Preset:
    """A trainer's quantization recipe.

    Attributes
    ----------
    name : str
        Registry name.
    description : str
        One line.
    source : str
        Where the convention comes from (repository / file, or paper).
    activation_convention : str
        Half-wave convention of its activation table: hwgq, round or deadzone.
    weight_method : str
        The :mod:`lloydmax.weights` function (and method) of its weights.
    """

    name: str
    description: str
    source: str
    activation_convention: str
    weight_method: str

    # ``lloydmax solve --preset NAME`` passes --bits and --param std=S to every preset's
    # activation_table; cli_options lists the other options it takes, as (argparse dest,
    # activation_table keyword) pairs ("uniform" covers --uniform and --nonuniform).  Any
    # other option is an error on the command line.  Not a dataclass field (no annotation).
    cli_options = ()

    def activation_table(self, bits, **options) -> QuantizerTable:  # pragma: no cover
        raise NotImplementedError


@dataclass(frozen=True)
class HWGQPreset(Preset):
    """Half-wave Gaussian quantization (Cai et al., CVPR 2017)."""

    cli_options = (("uniform", "uniform"),)

    def activation_table(self, bits=None, *, n_levels=None, uniform: bool = True,
                         std: float = 1.0) -> QuantizerTable:
        """HWGQ activations: ``solve(bits, dist="halfwave-gaussian", uniform=uniform,
        convention="hwgq")``.

        Uniform (default) gives the published steps 0.7979, 0.5388, 0.3217, 0.1842 for
        1..4 bits; ``uniform=False`` the non-uniform variant, whose $m$ positive levels
        are the positive half of the $2m$-level Gaussian Lloyd-Max quantizer (HWGQ's
        non-uniform example ``centers: 0.453 1.51`` is ``n_levels=3``: 0 and $m = 2$).
        """
        return solve(bits, n_levels=n_levels, dist=HALFWAVE, params={"std": _std(std)},
                     uniform=bool(uniform), convention="hwgq")

    def weight_codebook(self, w, axis=0) -> _weights.WeightCodebook:
        """Binary weights, one scale (mean |W|) per output filter: :func:`weights.binary`."""
        return _weights.binary(w, axis=axis)

    @staticmethod
    def backward_clip(table: QuantizerTable) -> float:
        """Clipped-ReLU limit $q_m$, the largest level (Caffe ``clip_thr``; eq. 12)."""
        return float(table.levels[-1])

    @staticmethod
    def log_tail_tau(table: QuantizerTable) -> float:
        """$\\tau = q_m - 1$: the log tail's gradient $1/(x - \\tau)$ is 1 at $x = q_m$
        (eqs. 13-14), so the gradient is continuous."""
        return _hwgq.log_tail_tau(table.levels[-1])

    def backward_surrogate(self, x, table: QuantizerTable, kind: str = "clipped"):
        """The backward approximation $\\tilde Q$ and its derivative (eqs. 11-14).

        * ``vanilla``: $\\tilde Q(x) = \\max(x, 0)$, derivative $[x > 0]$.
        * ``clipped``: $x$ on $(0, q_m]$, $q_m$ above, 0 below; derivative 1 on
          $(0, q_m]$, else 0.
        * ``log-tailed``: $x$ on $(0, q_m]$, $q_m + \\log(x - \\tau)$ above with
          $\\tau = q_m - 1$; derivative 1 on $(0, q_m]$, $1/(x - \\tau)$ above.

        Returns
        -------
        BackwardSurrogate
        """
        k = _hwgq.check_backward(kind)
        value, grad = _hwgq.surrogate(np.asarray(x, dtype=np.float64), self.backward_clip(table),
                                      k, np)
        return BackwardSurrogate(k, value, grad)


@dataclass(frozen=True)
class TSQPreset(Preset):
    """Two-Step Quantization (Wang et al., CVPR 2018)."""

    cli_options = (("uniform", "uniform"), ("zero_threshold", "zero_threshold"),
                   ("sparsity", "sparsity"))

    def activation_table(self, bits=2, *, zero_threshold=None, sparsity=None,
                         uniform: bool = True, std: float = 1.0) -> QuantizerTable:
        """TSQ's sparse activations: a dead zone $x \\le \\epsilon \\to 0$, then uniform
        levels with the MSE-optimal step for that $\\epsilon$.

        Parameters
        ----------
        bits : int
            TSQ uses 2 (``relu2b``); any bit-width works.
        zero_threshold : float, optional
            $\\epsilon$ in input units; default ``0.32 * std`` (TSQ's 0.32 at unit std,
            which gives the step 0.6487 at 2 bits).
        sparsity : float, optional
            Set $\\epsilon$ by the fraction of zeros instead, $P(x \\le \\epsilon)$.
        """
        s = _std(std)
        if sparsity is not None:
            if zero_threshold is not None:
                raise InvalidInputError("give a zero threshold or a sparsity, not both")
            return solve(bits, dist=HALFWAVE, params={"std": s}, uniform=bool(uniform),
                         sparsity=sparsity)
        eps = TSQ_EPS * s if zero_threshold is None else zero_threshold
        return solve(bits, dist=HALFWAVE, params={"std": s}, uniform=bool(uniform),
                     zero_threshold=eps)

    def weight_codebook(self, w, axis=0) -> _weights.WeightCodebook:
        """Ternary weights per output channel with the least-squares scale of the fixed
        support, at the exactly optimal support: :func:`weights.ternary` ``optimal``."""
        return _weights.ternary(w, axis=axis, method="optimal")


@dataclass(frozen=True)
class SYQPreset(Preset):
    """Symmetric quantization (Faraone et al., CVPR 2018)."""

    cli_options = ()  # a fixed grid on [0, 1]: only --bits and --param std=S

    def activation_table(self, bits, *, std: float = 1.0, clip: float = 1.0) -> QuantizerTable:
        """SYQ's activations: clip to $[0, c]$ ($c = 1$) and round to $2^k - 1$ steps.

        Levels $j\\,c/(2^k - 1)$, $j = 0..2^k-1$, thresholds at the midpoints (round
        convention; SYQ rounds ``floor(x n + 1/2) / n``, which sends a value on a midpoint
        up, a difference of measure zero).  The clip is in absolute units, so the MSE over
        ReLU($N(0, \\sigma^2)$), from :func:`lloydmax.evaluate`, depends on ``std``.
        """
        _b, n = resolve_levels(bits)
        c = float(clip)
        if not (c > 0 and math.isfinite(c)):
            raise InvalidInputError(f"clip must be a positive finite number, got {clip!r}")
        step = c / (n - 1)
        levels = step * np.arange(n, dtype=np.float64)
        return table_from_levels(levels, convention="round", dist=HALFWAVE,
                                 params={"std": _std(std)}, step=step, uniform=True)

    def optimal_activation_table(self, bits, *, std: float = 1.0) -> QuantizerTable:
        """The MSE-optimal clip for SYQ's rule: the round-convention optimal uniform table
        of ReLU($N(0, \\sigma^2)$); its clip is ``step * (2**bits - 1)``."""
        return solve(bits, dist=HALFWAVE, params={"std": _std(std)}, uniform=True,
                     convention="round")

    @staticmethod
    def clip_of(table: QuantizerTable) -> float:
        """The clip value (largest level) of a round-convention table."""
        return float(table.levels[-1])

    def weight_codebook(self, w, group: str = "pixel", ternary: bool = True,
                        eta: float = _weights.SYQ_ETA, layout: str = "oihw"):
        """SYQ weights with one scale per subgroup: :func:`weights.syq_scales`."""
        return _weights.syq_scales(w, group=group, ternary=ternary, eta=eta, layout=layout)


@dataclass(frozen=True)
class DQPreset(Preset):
    """Direct Quantization (Hoang et al., IJCAI 2020)."""

    cli_options = (("uniform", "uniform"),)

    def activation_table(self, bits, *, uniform: bool = False, convention=None,
                         zero_threshold=None, std: float = 1.0) -> QuantizerTable:
        """One channel's activation table: the optimum for ReLU($N(0, \\sigma^2)$) in the
        given convention (default hwgq, or deadzone when ``zero_threshold`` is a number);
        non-uniform by default, since DQ's levels are learnable."""
        return solve(bits, dist=HALFWAVE, params={"std": _std(std)}, uniform=bool(uniform),
                     convention=convention, zero_threshold=zero_threshold)

    def activation_tables(self, sigmas, bits, *, uniform: bool = False,
                          convention=None, zero_threshold=None) -> list:
        """One table per channel: the unit table scaled by each channel's $\\sigma_c$.

        A per-channel quantizer fitted to its own channel minimises the error of every
        channel, not of the few high-variance ones that dominate a shared quantizer (DQ's
        observation).  The unit table is solved once; ``zero_threshold`` is in unit-std
        units and scales with each channel.

        Returns
        -------
        list of QuantizerTable
        """
        try:
            sig = np.asarray(sigmas, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise InvalidInputError("sigmas must be a list of positive numbers") from None
        if sig.size == 0:
            raise InvalidInputError("sigmas is empty")
        if not np.all(np.isfinite(sig) & (sig > 0)):
            raise InvalidInputError("every sigma must be a positive finite number")
        unit = self.activation_table(bits, uniform=uniform, convention=convention,
                                     zero_threshold=zero_threshold)
        return [unit.scaled(float(s)) for s in sig]

    def initial_weight_levels(self, w, bits, *, method: str = "empirical") -> QuantizerTable:
        """Starting values of DQ's learnable weight levels.

        * ``empirical`` (default): Lloyd's algorithm on the weights themselves
          (:func:`lloydmax.solve_data`): a fixed point of the centroid and midpoint
          conditions for the actual, often heavier-than-Gaussian, weight distribution.
        * ``gaussian``: the Lloyd-Max table of $N(\\mu, s^2)$ with the weights' mean
          and standard deviation (maximum-likelihood fit); cheap, and exact for that model.
        """
        m = str(method).lower()
        arr = _weights._as_weights(w).reshape(-1)
        if m == "empirical":
            return solve_data(arr, bits)
        if m == "gaussian":
            s = float(np.std(arr))
            if not s > 0:
                raise InvalidDataError("weights are constant: nothing to quantize")
            return solve(bits, dist="gaussian", params={"mean": float(np.mean(arr)), "std": s})
        raise InvalidInputError(f"unknown method {method!r}; valid: empirical, gaussian")


PRESETS: dict[str, Preset] = {
    "hwgq": HWGQPreset(
        "hwgq",
        "HWGQ: half-wave Gaussian activations (x <= 0 -> 0), uniform by default; binary "
        "weights with mean |W| per filter; clipped / log-tailed ReLU backward",
        "zhaoweicai/hwgq, Caffe quant_layer.cpp (centers, clip_thr); Cai et al. CVPR 2017 "
        "eqs. 2, 7-14; EdMIPS quant_module.py hwgq_steps",
        "hwgq", "weights.binary"),
    "tsq": TSQPreset(
        "tsq",
        "TSQ: sparse activations with a dead zone eps = 0.32 (or a target sparsity), uniform "
        "levels; ternary weights per output channel, scale by least squares",
        "TSQ relu2b_layer.cpp (eps = 0.32, step 0.6487); Wang et al. CVPR 2018",
        "deadzone", "weights.ternary(method='optimal')"),
    "syq": SYQPreset(
        "syq",
        "SYQ: activations clipped to [0, 1] and rounded to 2^k - 1 steps; binary or ternary "
        "weights (threshold 0.05 max|W|) with one scale per pixel, row or layer",
        "julianfaraone/SYQ, examples/SYQ-AlexNet/quantize.py (fine_grained_quant, rows_quant, "
        "quantize); Faraone et al. CVPR 2018",
        "round", "weights.syq_scales"),
    "dq": DQPreset(
        "dq",
        "Direct Quantization: one activation table per channel (unit table times the "
        "channel's sigma); learnable weight levels started from Lloyd-Max",
        "Hoang, Do, Nguyen, Cheung, IJCAI 2020 (learnable levels, per-channel activation "
        "quantizers)",
        "hwgq", "DQPreset.initial_weight_levels"),
}


def list_presets() -> list[str]:
    """Names of the registered trainer presets."""
    return list(PRESETS)


def get_preset(name) -> Preset:
    """Look a trainer preset up by name (case-insensitive).

    Raises
    ------
    InvalidInputError
        For an unknown name; the message lists the valid names.
    """
    key = str(name).strip().lower()
    if key not in PRESETS:
        raise InvalidInputError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    return PRESETS[key]
