"""The HWGQ forward/backward formulas (Cai et al., CVPR 2017, eqs. 7 and 11-14), once.

Backward approximations of the half-wave quantizer, with ``q_m`` the largest level:

* ``vanilla`` (eq. 11): ReLU, derivative ``[x > 0]``;
* ``clipped`` (eq. 12): ``x`` on ``(0, q_m]``, ``q_m`` above, 0 below; derivative 1 on
  ``(0, q_m]`` (the Caffe layer's ``clip_thr`` is ``q_m``);
* ``log-tailed`` (eqs. 13-14): ``q_m + log(x - tau)`` above ``q_m`` with
  ``tau = q_m - 1``, so that the function and its derivative ``1 / (x - tau)`` are
  continuous at ``q_m``.

The functions take an array namespace ``xp`` (numpy or torch), so that the presets and
plots (numpy) and :mod:`lloydmax.torch` share the same regions and constants.  Standard
library only.
"""
from __future__ import annotations

from .errors import InvalidInputError

__all__ = ["BACKWARDS", "check_backward", "log_tail_tau", "regions", "surrogate"]

BACKWARDS = ("vanilla", "clipped", "log-tailed")


def check_backward(kind) -> str:
    """The canonical backward name; :class:`InvalidInputError` lists the valid ones."""
    name = str(kind).lower()
    if name not in BACKWARDS:
        raise InvalidInputError(f"unknown backward approximation {kind!r}; valid: "
                                f"{', '.join(BACKWARDS)}")
    return name


def log_tail_tau(q_max: float) -> float:
    """``tau = q_m - 1``: the log tail's gradient ``1 / (x - tau)`` is 1 at ``q_m``."""
    return float(q_max) - 1.0


def regions(keys, q_max):
    """``(positive, inside, above)``: ``x > 0``, ``0 < x <= q_m`` and ``x > q_m``."""
    positive = keys > 0
    above = keys > q_max
    return positive, positive & ~above, above


def surrogate(x, q_max: float, kind: str, xp):
    """Value and derivative of a backward approximation at ``x`` (arrays of ``xp``).

    ``log`` is evaluated only where ``x > q_m``, i.e. ``x - tau > 1``.
    """
    kind = check_backward(kind)
    positive, inside, above = regions(x, q_max)
    relu = xp.where(positive, x, 0.0)
    if kind == "vanilla":
        return relu, positive * 1.0
    d_inside = inside * 1.0
    if kind == "clipped":
        return xp.where(above, float(q_max), relu), d_inside
    shifted = xp.where(above, x - log_tail_tau(q_max), 1.0)
    value = xp.where(above, q_max + xp.log(shifted), relu)
    return value, xp.where(above, 1.0 / shifted, d_inside)
