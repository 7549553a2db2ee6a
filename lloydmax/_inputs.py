"""The one conversion layer for what the public API is given: arrays, scalars and paths.

Rules (also in ``docs/inputs.md``):

* **Arrays** become C-contiguous float64.  Floating input (float16/32/64, longdouble) and
  integer input are accepted; integers beyond 2**53 are rounded to the nearest float64.
  Refused with a typed error: ``None``; boolean arrays (``True`` is not a measurement;
  convert with ``.astype(float)`` if meant); complex numbers (the imaginary part would be
  dropped); strings, bytes, dates and any other ``object`` array; numbers that do not fit
  in float64 (a Python ``10**400`` or a longdouble ``1e5000``).
* **Scalars** follow the same dtype rules and are checked against a stated range.
* **Paths** are ``str`` or :class:`os.PathLike`, non-empty, without a NUL byte.

Data (what is quantized or fitted) raises :class:`InvalidDataError`; anything else
:class:`InvalidInputError`.  Whether NaN/Inf are allowed is the caller's rule: a table
quantizes NaN to NaN, a fit refuses it.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .errors import InvalidDataError, InvalidInputError

__all__ = ["as_float_array", "as_float", "as_path"]


def _kind_problem(arr: np.ndarray) -> str | None:
    kind = arr.dtype.kind
    if kind in "fiu":
        return None
    if kind == "b":
        return "is boolean; convert it with .astype(float) if numbers were meant"
    if kind == "c":
        return "is complex; only real numbers can be quantized"
    if kind in "USa":
        return "holds text, not real numbers"
    if kind in "mM":
        return "holds dates or times, not real numbers"
    return f"has dtype {arr.dtype}, not real numbers"


def as_float_array(x, name: str = "x", *, data: bool = True, finite: bool = False,
                   ndim: int | None = None) -> np.ndarray:
    """``x`` as a C-contiguous float64 array, by the rules in the module docstring.

    Parameters
    ----------
    name : str
        How the message names the input.
    data : bool
        Raise :class:`InvalidDataError` (the default) rather than :class:`InvalidInputError`.
    finite : bool
        Also refuse NaN and Inf.
    ndim : int, optional
        Required number of dimensions.
    """
    if (type(x) is np.ndarray and x.dtype == np.float64 and x.flags.c_contiguous
            and ndim is None and not finite):
        return x  # what the general path returns for it (np.asarray is the identity)
    error = InvalidDataError if data else InvalidInputError
    if x is None:
        raise error(f"{name} is None, not an array of real numbers")
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError, OverflowError):  # ragged lists, odd objects
        raise error(f"{name} is not a rectangular array of real numbers") from None
    if arr.dtype.kind == "O":  # Python ints beyond int64, or numbers mixed with others
        for v in arr.reshape(-1):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
                raise error(f"{name} holds {type(v).__name__} values, not real numbers")
        try:
            arr = np.asarray(arr, dtype=np.float64)
        except OverflowError:
            raise error(f"{name} holds a number beyond the float64 range") from None
        except (ValueError, TypeError):
            raise error(f"{name} holds values that are not numbers") from None
    problem = _kind_problem(arr)
    if problem is not None:
        raise error(f"{name} {problem}")
    if ndim is not None and arr.ndim != ndim:
        raise error(f"{name} must have {ndim} dimension(s), got {arr.ndim}")
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.asarray(arr, dtype=np.float64, order="C")  # keeps 0-d as 0-d
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8 and np.any(
            np.isinf(out) & np.isfinite(arr)):
        raise error(f"{name} holds a number beyond the float64 range")
    if finite and out.size and not np.all(np.isfinite(out)):
        raise error(f"{name} holds {int(np.isnan(out).sum())} NaN and "
                    f"{int(np.isinf(out).sum())} Inf values; remove them first")
    return out


def as_float(value, name: str, *, lo: float = -math.inf, hi: float = math.inf,
             lo_open: bool = False, hi_open: bool = False, allow_none: bool = False):
    """``value`` as a finite Python float in the stated range, else InvalidInputError."""
    if value is None:
        if allow_none:
            return None
        raise InvalidInputError(f"{name} must be a number, got None")
    if isinstance(value, (bool, np.bool_, str, bytes, complex)):
        raise InvalidInputError(f"{name} must be a real number, got {value!r}")
    try:
        out = float(value)
    except OverflowError:
        raise InvalidInputError(f"{name} is beyond the float64 range") from None
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise InvalidInputError(f"{name} must be finite, got {out!r}")
    below = out <= lo if lo_open else out < lo
    above = out >= hi if hi_open else out > hi
    if below or above:
        left, right = "(" if lo_open else "[", ")" if hi_open else "]"
        raise InvalidInputError(f"{name} must lie in {left}{lo:g}, {hi:g}{right}, got {out!r}")
    return out


def as_path(path, name: str = "path") -> Path:
    """``path`` (str or os.PathLike) as a :class:`~pathlib.Path`, else InvalidInputError."""
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise InvalidInputError(f"{name} must be a file path (str or os.PathLike), "
                                f"got {type(path).__name__}")
    text = os.fspath(path)
    if not isinstance(text, str) or not text:
        raise InvalidInputError(f"{name} must be a non-empty file path")
    if "\0" in text:
        raise InvalidInputError(f"{name} contains a NUL byte")
    return Path(text)
