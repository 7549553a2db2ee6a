"""Plain-text rendering of a quantizer table (``QuantizerTable.to_text()``, the default
output of ``lloydmax solve``).

The text is for people: 12 significant digits, and only the first and last 16 rows of a
table with more than 64 levels.  Files for programs are JSON, CSV or NPZ.
"""
from __future__ import annotations

__all__ = ["table_text"]

# tables up to this many levels are shown whole; larger ones show HEAD_ROWS at each end
MAX_ROWS = 64
HEAD_ROWS = 16


def _header(table) -> list[str]:
    if table.step is not None:
        kind = f"uniform, step {table.step:.12g}"
    else:
        kind = "non-uniform (Lloyd-Max)"
    params = ", ".join(f"{k}={v:g}" for k, v in table.params.items())
    conv = "" if table.convention == "none" else f", convention {table.convention}"
    lines = [f"{table.distribution}({params}): {table.n_levels} levels ({table.bits} bits), "
             f"{kind}{conv}"]
    if table.zero_threshold is not None and table.convention == "deadzone":
        lines.append(f"dead-zone threshold eps = {table.zero_threshold:.12g}")
    lines.append(f"MSE {table.mse:.10g}   SQNR {table.sqnr_db:.4f} dB   "
                 f"output entropy {table.entropy_bits:.4f} bits")
    state = "converged" if table.converged else "NOT CONVERGED"
    lines.append(f"residual {table.residual:.1e} after {table.iterations} iterations ({state})")
    return lines


def _rows(table) -> list[str]:
    n = table.n_levels
    lines = [f"{'index':>6}  {'level':>20}  {'upper threshold':>20}"]
    shown = list(range(n))
    if n > MAX_ROWS:
        shown = [*range(HEAD_ROWS), -1, *range(n - HEAD_ROWS, n)]
    for i in shown:
        if i < 0:
            lines.append(f"{'...':>6}")
            continue
        upper = f"{table.thresholds[i]:20.12g}" if i < n - 1 else f"{'inf':>20}"
        lines.append(f"{i:>6}  {table.levels[i]:20.12g}  {upper}")
    if n > MAX_ROWS:
        lines.append(f"({n - 2 * HEAD_ROWS} rows not shown; use --format json or csv)")
    return lines


def table_text(table) -> str:
    """The text of ``table``: a header (distribution, kind, convention, MSE, SQNR, output
    entropy, residual) and one row per level with its upper threshold.

    Parameters
    ----------
    table : QuantizerTable

    Returns
    -------
    str
        Lines ending in ``\\n``, the last one included.
    """
    return "\n".join([*_header(table), "", *_rows(table)]) + "\n"
