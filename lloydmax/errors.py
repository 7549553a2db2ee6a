"""Every exception lloydmax raises on purpose.

All derive from :class:`LloydMaxError`, so ``except LloydMaxError`` catches the
library's own errors and nothing else.  Input errors also derive from ``ValueError``.
"""
from __future__ import annotations

__all__ = [
    "LloydMaxError",
    "InvalidInputError",
    "InvalidBitsError",
    "UnknownDistributionError",
    "ConventionError",
    "InvalidDataError",
    "InvalidTableError",
    "ConvergenceError",
    "MissingDependencyError",
]


class LloydMaxError(Exception):
    """Base class of every error raised by lloydmax."""


class InvalidInputError(LloydMaxError, ValueError):
    """An argument is out of range or of the wrong kind."""


class InvalidBitsError(InvalidInputError):
    """A bit-width or level count outside the supported range."""


class UnknownDistributionError(InvalidInputError):
    """A distribution name that is not registered (the message lists the valid names)."""


class ConventionError(InvalidInputError):
    """A half-wave convention option that does not fit the distribution or is out of range."""


class InvalidDataError(InvalidInputError):
    """Empirical data that cannot be quantized: empty, constant, NaN or Inf."""


class InvalidTableError(InvalidInputError):
    """A table file or object that does not follow the ``lloydmax.table/1`` format."""


class ConvergenceError(LloydMaxError, ArithmeticError):
    """The solver did not meet its tolerance.  ``.result`` holds the unconverged table."""

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class MissingDependencyError(LloydMaxError, ImportError):
    """An optional dependency is not installed (the message names the extra)."""
