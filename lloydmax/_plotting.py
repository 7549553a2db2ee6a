"""Plumbing shared by the table figures: lazy matplotlib, axes, colours, saving."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from . import _hwgq
from ._files import atomic_write
from ._table import QuantizerTable
from .constants import TSQ_EPS
from .errors import InvalidInputError, MissingDependencyError

__all__ = ["FIGSIZE", "SAVE_FORMATS", "save_figure"]

FIGSIZE = (8.0, 4.5)
SAVE_FORMATS = ("png", "svg", "pdf")
BACKWARDS = _hwgq.BACKWARDS
# Panter-Dite constant of the unit Gaussian: (1/12) (int phi^(1/3))^3 = sqrt(3) pi / 2
_DEADZONE_EPS = TSQ_EPS

# one colour per role, used the same way in every figure
_C_FORWARD = "#1f4e9e"
_C_REF = "0.55"
_C_BACK = {"vanilla": "#d62728", "clipped": "#2ca02c", "log-tailed": "#ff7f0e"}
_C_DENSITY = "#4c72b0"
_C_LEVEL = "#c44e52"
_C_THRESH = "0.25"
_C_CONV = {"hwgq": "#1f77b4", "round": "#ff7f0e", "deadzone": "#2ca02c"}


# ----------------------------------------------------------------------- plumbing


def _matplotlib():
    """Import matplotlib lazily; a missing install names the extra to add."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError(
            "plotting needs matplotlib: pip install 'lloydmax[plot]'") from None
    return Figure


def _new_axes(ax, ncols: int = 1, figsize=FIGSIZE):
    """``(figure, [axes...])``: the caller's axes, or a fresh figure with ``ncols`` panels."""
    Figure = _matplotlib()
    if ax is not None:
        axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
        if len(axes) != ncols:
            raise InvalidInputError(f"this plot draws {ncols} panel(s); ax= gave {len(axes)}")
        return axes[0].figure, axes
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def save_figure(fig, path, dpi=None) -> None:
    """Write ``fig`` to ``path`` atomically; the format comes from the suffix.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or Path
        Ends in ``.png``, ``.svg`` or ``.pdf``.
    dpi : float, optional
        Resolution of raster output (default: the figure's, 100).

    Raises
    ------
    InvalidInputError
        For any other suffix, or a directory that does not exist.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in SAVE_FORMATS:
        raise InvalidInputError(
            f"unsupported output extension {path.suffix or '(none)'!r} for {path}; "
            f"use one of {', '.join('.' + f for f in SAVE_FORMATS)}")
    _matplotlib()
    buf = io.BytesIO()
    # fixed metadata so the same figure gives the same bytes (no creation date in SVG/PDF)
    metadata = {"png": {"Software": None}, "svg": {"Date": None},
                "pdf": {"CreationDate": None, "ModDate": None}}[fmt]
    fig.savefig(buf, format=fmt, metadata=metadata, dpi=dpi if dpi is not None else "figure")
    atomic_write(path, buf.getvalue())


def _as_table(table) -> QuantizerTable:
    if isinstance(table, QuantizerTable):
        return table
    if isinstance(table, (str, Path)):
        from ._io import load_table

        return load_table(table)
    raise InvalidInputError(
        f"table must be a QuantizerTable or a table file path, got {type(table).__name__}")


