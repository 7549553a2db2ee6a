"""Tables in the forms hardware flows read: a C header and integer thresholds.

Both keep the table's rule exactly (REFERENCES.md): ``x`` maps to ``levels[i]`` where
``thresholds[i-1] < x <= thresholds[i]``, so the index is ``count(x > t_i)``.

* :func:`c_header` writes float32 levels and float32 thresholds *rounded down*: for a
  float32 ``x`` and a float64 threshold ``t``, ``x > t`` holds exactly when ``x > T``
  with ``T`` the largest float32 not above ``t`` (every float32 above ``T`` is above
  ``t``).  A float32 comparison therefore decides as the float64 table does.
* :func:`int_thresholds` maps the table onto a fixed-point input ``x = S * x_int``:
  integer thresholds ``T_i``, the smallest integer with ``S * T_i > t_i`` (the product
  taken in float64, as :meth:`QuantizerTable.quantize` would see it), so that
  ``index = count(x_int >= T_i)`` -- the rule of FINN's MultiThreshold node.
"""
from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

import numpy as np

from ._format import dumps_json
from .errors import InvalidInputError

if TYPE_CHECKING:  # pragma: no cover - annotations only; _table loads numba
    from ._table import QuantizerTable

__all__ = ["EXPORT_FORMATS", "INT_RULE", "c_header", "float32_round_down",
           "int_input_range", "int_thresholds", "int_thresholds_json"]

EXPORT_FORMATS = ("c-header", "int-thresholds")
INT_RULE = "index = count(x_int >= T_i)"
_FLT_MAX = float(np.finfo(np.float32).max)


def float32_round_down(values) -> np.ndarray:
    """The largest float32 not above each float64 value (-inf below -FLT_MAX)."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore"):
        near = values.astype(np.float32)  # round to nearest (inf beyond the range)
    above = near.astype(np.float64) > values
    out = np.where(above, np.nextafter(near, np.float32(-np.inf)), near).astype(np.float32)
    return out


def _c_float(value: np.float32) -> str:
    """An exact C literal for a float32 (hexadecimal, so no decimal rounding)."""
    value = float(value)
    if math.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    if value == 0.0:
        return "-0.0f" if math.copysign(1.0, value) < 0 else "0.0f"
    mantissa, _, exponent = value.hex().partition("p")
    mantissa = mantissa.rstrip("0")
    if mantissa.endswith("."):
        mantissa += "0"
    return f"{mantissa}p{exponent}f"


def _identifier(name: str) -> str:
    ident = re.sub(r"[^0-9A-Za-z_]", "_", name)
    if not ident or ident[0].isdigit():
        ident = "lm_" + ident
    return ident


def c_header(table: QuantizerTable, name: str = "lloydmax") -> str:
    """The table as a C99 header: ``static const float`` levels and thresholds and
    ``static inline`` functions ``NAME_index`` and ``NAME_quantize``.

    Thresholds are rounded down to float32 (module docstring), so ``NAME_index(x)``
    equals ``table.quantize(x, return_index=True)`` for every float32 ``x`` except NaN
    (which the float64 table maps to index -1 and the header to 0).  Levels are rounded
    to the nearest float32.  Compiles with ``cc -std=c99 -Wall -Wextra -Werror``.

    Parameters
    ----------
    table : QuantizerTable
    name : str
        Prefix of every C identifier (made a valid identifier).
    """
    ident = _identifier(name)
    guard = f"{ident.upper()}_QUANTIZER_H"
    levels32 = np.asarray(table.levels, dtype=np.float64).astype(np.float32)
    thr32 = float32_round_down(table.thresholds)
    n_thr = len(thr32)
    lines = [
        f"/* {table.distribution} {table.kind} quantizer, {table.n_levels} levels "
        f"({table.bits} bits), convention {table.convention}; written by lloydmax "
        f"{table.version}.",
        f" * mse {table.mse:.6g}; rule: x -> {ident}_levels[i] with",
        f" * {ident}_thresholds[i-1] < x <= {ident}_thresholds[i].  The thresholds are the",
        " * float64 table's rounded down to float32, so float32 comparisons decide exactly",
        " * as the float64 table does; NaN maps to index 0. */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <math.h>",
        "",
        f"#define {ident.upper()}_N_LEVELS {table.n_levels}",
        "",
        f"static const float {ident}_levels[{table.n_levels}] = {{",
    ]
    lines += [f"    {_c_float(v)},  /* {float(v)!r} */" for v in levels32]
    lines.append("};")
    if n_thr:
        lines.append(f"static const float {ident}_thresholds[{n_thr}] = {{")
        lines += [f"    {_c_float(v)},  /* {float(t)!r} */"
                  for v, t in zip(thr32, table.thresholds)]
        lines.append("};")
    lines += [
        "",
        f"static inline int {ident}_index(float x)",
        "{",
        "    int index = 0;",
    ]
    if n_thr:
        lines += [f"    for (int k = 0; k < {n_thr}; ++k)",
                  f"        index += x > {ident}_thresholds[k];"]
    else:
        lines.append("    (void)x;")
    lines += [
        "    return index;",
        "}",
        "",
        f"static inline float {ident}_quantize(float x)",
        "{",
        f"    return {ident}_levels[{ident}_index(x)];",
        "}",
        "",
        f"#endif /* {guard} */",
        "",
    ]
    return "\n".join(lines)


def int_input_range(bits: int, signed: bool) -> tuple[int, int]:
    """The integers of a ``bits``-bit input format: [-2^(B-1), 2^(B-1)-1] or [0, 2^B-1]."""
    bits = int(bits)
    if not 1 <= bits <= 32:
        raise InvalidInputError(f"--input-bits must be between 1 and 32, got {bits}")
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _smallest_above(t: float, scale: float) -> int:
    """The smallest integer n with ``scale * n > t`` in float64."""
    n = math.floor(t / scale) + 1
    while scale * (n - 1) > t:
        n -= 1
    while not scale * n > t:
        n += 1
    return n


def int_thresholds(table: QuantizerTable, input_scale: float, input_bits: int,
                   signed: bool = False) -> dict:
    """Integer thresholds of ``table`` for the input ``x = input_scale * x_int``.

    ``T_i`` is the smallest integer with ``input_scale * T_i > t_i`` (float64), clipped
    to ``[lo, hi + 1]`` of the input format; then ``count(x_int >= T_i)`` equals the
    table's index for every integer input.  Two thresholds on the same integer would
    leave a level that no input reaches: that raises :class:`InvalidInputError`, naming
    the input step (or range) that would separate them.

    Returns
    -------
    dict
        ``rule``, ``input`` (scale, bits, signed, min, max), integer ``thresholds``,
        ``levels``, ``out_scale`` / ``out_bias`` (uniform tables; ``None`` otherwise),
        and where the table came from.
    """
    scale = float(input_scale)
    if not (scale > 0.0 and math.isfinite(scale)):
        raise InvalidInputError(f"--input-scale must be a positive finite number, got "
                                f"{input_scale!r}")
    lo, hi = int_input_range(input_bits, signed)
    thresholds = [float(t) for t in table.thresholds]
    ints = [min(max(_smallest_above(t, scale), lo), hi + 1) for t in thresholds]
    for k in range(1, len(ints)):
        if ints[k] == ints[k - 1]:
            _collapse_error(thresholds, k, scale, input_bits, signed, lo, hi)
    levels = [float(v) for v in table.levels]
    out_scale = out_bias = None
    if table.kind == "uniform" and table.step is not None:
        affine = levels[0] + table.step * np.arange(len(levels))
        if np.allclose(affine, levels, rtol=1e-12, atol=1e-12 * abs(table.step)):
            out_scale, out_bias = float(table.step), levels[0]
    return {
        "schema": "lloydmax.int-thresholds/1",
        "rule": INT_RULE,
        "input": {"scale": scale, "bits": int(input_bits), "signed": bool(signed),
                  "min": lo, "max": hi},
        "n_levels": int(table.n_levels),
        "thresholds": ints,
        "levels": levels,
        "out_scale": out_scale,
        "out_bias": out_bias,
        "source": {"distribution": table.distribution, "params": dict(table.params),
                   "kind": table.kind, "convention": table.convention,
                   "thresholds": thresholds, "mse": float(table.mse),
                   "version": table.version},
    }


def _collapse_error(thresholds, k, scale, bits, signed, lo, hi):
    a, b = thresholds[k - 1], thresholds[k]
    if b <= scale * lo or a >= scale * hi:
        side = "below" if b <= scale * lo else "above"
        span = max(abs(thresholds[0]), abs(thresholds[-1]))
        need = math.ceil(math.log2(span / scale + 1)) + (1 if signed else 0)
        raise InvalidInputError(
            f"thresholds {a:.6g} and {b:.6g} are both {side} the input range "
            f"[{scale * lo:.6g}, {scale * hi:.6g}] of {bits}-bit input at step {scale:.6g}: "
            f"a level would never be produced; at least {need} bits are needed to cover "
            "every threshold")
    gaps = np.diff(np.asarray(thresholds))
    step = float(gaps.min())
    span = max(abs(thresholds[0]), abs(thresholds[-1]))
    need = math.ceil(math.log2(span / step + 1)) + (1 if signed else 0)
    raise InvalidInputError(
        f"thresholds {a:.6g} and {b:.6g} fall on the same integer at input step {scale:.6g}: "
        f"the input resolution must be finer, an input step of at most {step:.6g} (the "
        f"smallest threshold gap), about {need} bits to cover the thresholds at that step")


def int_thresholds_json(table: QuantizerTable, input_scale: float, input_bits: int,
                        signed: bool = False) -> str:
    """:func:`int_thresholds` as JSON text."""
    return dumps_json(int_thresholds(table, input_scale, input_bits, signed), indent=2)
