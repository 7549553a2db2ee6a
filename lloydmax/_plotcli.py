"""``lloydmax plot KIND ... -o FILE``: the figures of :mod:`lloydmax.plot` from the shell.

Kinds:

* ``curves``  HWGQ forward staircase and backward approximations (``--sign``: the
  sign / hard-tanh pair);
* ``levels``  a table's levels and thresholds over its density (or over a measured
  histogram with ``--histogram``);
* ``mse``     MSE or SQNR (``--sqnr``) against bit-width;
* ``layers``  per-layer SQNR bars from an analysis report CSV.

The ``layers`` kind and ``--histogram`` draw measured data with :mod:`lloydmax.analysis.plot`,
imported only then (the solver side never needs it).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .errors import InvalidInputError, MissingDependencyError

__all__ = ["add_plot_parser", "run_plot", "KINDS"]

KINDS = ("curves", "levels", "mse", "layers")

_EPILOG = """\
examples:
  lloydmax plot curves -o hwgq_curves.png            HWGQ Fig. 1 (right), 2-bit uniform table
  lloydmax plot curves --sign -o sign.png            sign forward / hard tanh backward
  lloydmax plot curves --bits 3 --uniform --backward clipped log-tailed -o c3.svg
  lloydmax plot levels --bits 2 --half-wave --uniform -o levels.png
  lloydmax plot levels --table act2.json -o levels.pdf
  lloydmax plot levels --histogram relu2.json --table act2.json -o hist.png
  lloydmax plot mse --bits 1-8 --half-wave -o mse.png
  lloydmax plot mse --bits 1-8 --dist gaussian --sqnr -o sqnr.png
  lloydmax plot layers --report report.csv --bits 2 -o layers.png

the output format follows the suffix of -o: .png, .svg or .pdf
"""

# which options each kind reads; any other option given is an error, not silently ignored
_OPTIONS = {
    "curves": {"sign", "bits", "levels", "table", "index", "backward", "uniform",
               "zero_threshold", "sparsity", "tol", "half_wave", "x_range"},
    "levels": {"bits", "levels", "table", "index", "half_wave", "dist", "param", "uniform",
               "zero_threshold", "sparsity", "tol", "histogram", "channel", "log"},
    "mse": {"bits", "half_wave", "dist", "param", "sqnr"},
    "layers": {"report", "bits", "columns"},
}
_CHECKED = ("sign", "bits", "levels", "table", "index", "backward", "uniform", "zero_threshold",
            "sparsity", "tol", "half_wave", "dist", "param", "sqnr", "report", "columns",
            "histogram", "channel", "log", "x_range")


def add_plot_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``plot`` command to an argparse subparsers object; returns its parser."""
    from .cli import _add_quantizer_options

    p = subparsers.add_parser(
        "plot", help="draw a figure (curves, levels, mse, layers) to PNG, SVG or PDF",
        description="Draw a figure of quantizer tables to a PNG, SVG or PDF file "
                    "(needs matplotlib: pip install 'lloydmax[plot]').",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", metavar="KIND", help="curves, levels, mse or layers")
    p.add_argument("-o", "--output", metavar="FILE", required=True,
                   help="output file; .png, .svg or .pdf (written atomically)")
    p.add_argument("--bits", metavar="B",
                   help="curves/levels: bit-width of the table to solve; mse: a range such "
                        "as 1-8 (default); layers: which sqnr_b{B}_* columns (default 2)")
    p.add_argument("--levels", metavar="N", help="curves/levels: level count instead of --bits")
    p.add_argument("--table", metavar="FILE", help="curves/levels: a table file (json, csv, npz)")
    p.add_argument("--index", metavar="K", type=int,
                   help="which table of a multi-table file (0-based)")
    c = p.add_argument_group("curves")
    c.add_argument("--sign", action="store_true",
                   help="the binary baseline: sign forward, hard tanh backward")
    c.add_argument("--backward", nargs="+", metavar="NAME",
                   help="backward approximations to draw: vanilla clipped log-tailed (default all)")
    c.add_argument("--x-range", nargs=2, type=float, metavar=("LO", "HI"),
                   help="horizontal extent of the curves")
    _add_quantizer_options(p)
    m = p.add_argument_group("mse")
    m.add_argument("--sqnr", action="store_true", help="plot SQNR in dB instead of MSE")
    d = p.add_argument_group("measured data (needs the analysis package)")
    d.add_argument("--histogram", metavar="FILE", help="levels: draw over this histogram file")
    d.add_argument("--channel", metavar="C", type=int, help="levels: channel of the histogram")
    d.add_argument("--log", action="store_true", help="levels: logarithmic density axis")
    d.add_argument("--report", metavar="FILE", help="layers: analysis report CSV")
    d.add_argument("--columns", nargs="+", metavar="COL",
                   help="layers: methods to draw (dp hwgq_unit ... or full column names); "
                        "default every sqnr_b{B}_* column")
    p.add_argument("--dpi", type=float, default=100.0, help="resolution of PNG output (100)")
    # what a bare command parses to tells which options the user set (the shared quantizer
    # options live in cli.py and may change their defaults; get_default() is unreliable
    # for a dest shared by two flags, such as --uniform / --nonuniform)
    bare = vars(p.parse_args(["curves", "-o", "x.png"]))
    p.set_defaults(_plot_defaults={k: bare.get(k) for k in _CHECKED})
    return p


def _given(args) -> list[str]:
    """Options the user actually set (differing from the parser's defaults)."""
    defaults = getattr(args, "_plot_defaults", {})
    return [k for k in _CHECKED if k in defaults and getattr(args, k, None) != defaults[k]]


def _check_output(path: str) -> None:
    from .plot import SAVE_FORMATS

    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in SAVE_FORMATS:
        raise InvalidInputError(
            f"unsupported output extension {Path(path).suffix or '(none)'!r} for {path}; "
            f"use one of {', '.join('.' + f for f in SAVE_FORMATS)}")


def _load_table(args):
    from ._io import load_table

    return load_table(args.table, index=args.index)


def _solved_table(args, halfwave: bool):
    from .cli import _solve_kwargs
    from ._solver import solve

    if halfwave:
        args.half_wave = True
    return solve(args.bits, n_levels=args.levels, **_solve_kwargs(args))


def _table_or_solve(args, *, halfwave: bool, required: bool):
    if args.table is not None:
        if args.bits is not None or args.levels is not None:
            raise InvalidInputError("give --table FILE or --bits/--levels, not both")
        return _load_table(args)
    if args.bits is None and args.levels is None:
        if required:
            raise InvalidInputError("give --table FILE or --bits B / --levels N")
        return None
    return _solved_table(args, halfwave)


def _figure(args):
    from . import plot

    kind = args.kind
    if kind == "curves":
        if args.sign:
            if args.table or args.bits or args.levels or args.backward:
                raise InvalidInputError("--sign draws the fixed sign / hard-tanh pair; it takes "
                                        "no table, --bits or --backward")
            return plot.plot_curves(kind="sign", x_range=args.x_range)
        table = _table_or_solve(args, halfwave=True, required=False)
        return plot.plot_curves(table, backward=args.backward or plot.BACKWARDS,
                                x_range=args.x_range)
    if kind == "levels":
        if args.histogram is not None:
            hist = _load_histogram(args.histogram)
            table = _table_or_solve(args, halfwave=False, required=False)
            from lloydmax.analysis.plot import plot_histogram

            return plot_histogram(hist, table, channel=args.channel, log=args.log)
        if args.channel is not None or args.log:
            raise InvalidInputError("--channel and --log apply to --histogram only")
        return plot.plot_levels(_table_or_solve(args, halfwave=False, required=True))
    if kind == "mse":
        from .cli import _parse_bits_list, _parse_params

        bits = _parse_bits_list(args.bits or "1-8")
        dist = "halfwave-gaussian" if args.half_wave or args.dist is None else args.dist
        if args.half_wave and args.dist is not None and \
                args.dist.lower().replace("_", "-") not in ("halfwave-gaussian", "halfwave"):
            raise InvalidInputError("--half-wave and --dist name two different distributions")
        from ._dists import get_distribution

        d = get_distribution(dist, **_parse_params(args.param))
        return plot.plot_mse(bits, d, quantity="sqnr" if args.sqnr else "mse")
    # layers
    if args.report is None:
        raise InvalidInputError("plot layers needs --report FILE (an analysis report CSV)")
    report = _read_report(args.report)
    bits = 2
    if args.bits is not None:
        try:
            bits = int(args.bits)
        except ValueError:
            raise InvalidInputError(f"--bits for layers needs one whole number, got "
                                    f"{args.bits!r}") from None
    from lloydmax.analysis.plot import plot_layers

    return plot_layers(report, bits=bits, columns=args.columns)


def _read_report(path):
    try:
        import pandas as pd
    except ImportError:
        raise MissingDependencyError(
            "plot layers reads the report with pandas: pip install 'lloydmax[analysis]'") from None
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"report file not found: {p}")
    try:
        return pd.read_csv(p, comment="#")
    except Exception as exc:  # pandas raises many parser error types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInputError(f"cannot read report {p}: {first}") from None


def _load_histogram(path):
    try:
        from lloydmax.analysis.histogram import Histogram
    except ImportError:
        raise MissingDependencyError(
            "--histogram needs the analysis package: pip install 'lloydmax[analysis]'") from None
    return Histogram.load(path)


def run_plot(args) -> int:
    """Run ``lloydmax plot`` from parsed arguments; returns the exit status (0).

    Raises
    ------
    InvalidInputError, InvalidTableError
        For an unknown kind, an option the kind does not use, a missing or bad input
        file, or an unsupported output extension (one-line messages).
    """
    kind = str(args.kind).lower()
    if kind not in KINDS:
        raise InvalidInputError(f"unknown plot kind {args.kind!r}; valid: {', '.join(KINDS)}")
    args.kind = kind
    unused = [k for k in _given(args) if k not in _OPTIONS[kind]]
    if unused:
        names = {"uniform": "--uniform/--nonuniform", "x_range": "--x-range"}
        flags = ", ".join(names.get(k, "--" + k.replace("_", "-")) for k in unused)
        raise InvalidInputError(f"plot {kind} does not take {flags}")
    _check_output(args.output)
    if not (args.dpi > 0):
        raise InvalidInputError(f"--dpi must be positive, got {args.dpi!r}")
    from .plot import save_figure

    save_figure(_figure(args), args.output, dpi=args.dpi)
    return 0

