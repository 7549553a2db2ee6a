"""``lloydmax plot curves|levels|mse|layers ... -o FILE``: the figures of
:mod:`lloydmax.plot` from the shell, one subcommand per figure, each with its own options.

* ``curves``  HWGQ forward staircase and backward approximations (``--sign``: the
  sign / hard-tanh pair);
* ``levels``  a table's levels and thresholds over its density (or over a measured
  histogram with ``--histogram``);
* ``mse``     MSE or SQNR (``--sqnr``) against bit-width;
* ``layers``  per-layer SQNR bars from an analysis report CSV.

:mod:`lloydmax.plot` imports matplotlib only to draw; ``layers`` and ``--histogram`` draw
measured data with :mod:`lloydmax.analysis.plot`, imported only then.
"""
from __future__ import annotations

from pathlib import Path

from .. import _hwgq
from ..errors import InvalidInputError, MissingDependencyError
from . import _common as C


class _Figures:
    """:mod:`lloydmax.plot`, imported on first use (it loads the solver; matplotlib only
    when it draws), so that building the parser stays light."""

    def __getattr__(self, name):
        from .. import plot

        return getattr(plot, name)


figures = _Figures()

NAME = "plot"

_FORMATS_NOTE = "the output format follows the suffix of -o: .png, .svg or .pdf\n"

EPILOGS = {
    "curves": """\
examples:
  lloydmax plot curves -o hwgq_curves.png            HWGQ Fig. 1 (right), 2-bit uniform table
  lloydmax plot curves --sign -o sign.png            sign forward / hard tanh backward
  lloydmax plot curves --bits 3 --uniform --backward clipped log-tailed -o c3.svg
  lloydmax plot curves --table act2.json -o act2_curves.png
""",
    "levels": """\
examples:
  lloydmax plot levels --bits 2 --half-wave --uniform -o levels.png
  lloydmax plot levels --table act2.json -o levels.pdf
  lloydmax plot levels --histogram relu2.json --table act2.json -o hist.png
""",
    "mse": """\
examples:
  lloydmax plot mse --bits 1-8 --half-wave -o mse.png
  lloydmax plot mse --bits 1-8 --dist gaussian --sqnr -o sqnr.png
""",
    "layers": """\
examples:
  lloydmax plot layers --report report.csv --bits 2 -o layers.png
  lloydmax plot layers --report report.csv --columns dp hwgq_unit -o layers.svg
""",
}

HELP = {
    "curves": "HWGQ's Figure 1 for a table: Q(x), ReLU and the backward approximations",
    "levels": "a table's levels and thresholds over its density or a measured histogram",
    "mse": "MSE or SQNR against bit-width, three conventions, uniform and non-uniform",
    "layers": "per-layer SQNR bars from an analysis report CSV",
}


def register(subparsers):
    """Add ``plot`` and its four subcommands to the top-level subparsers."""
    examples = [line for text in EPILOGS.values() for line in text.splitlines()[1:]]
    epilog = "examples:\n" + "\n".join(examples) + "\n"
    p = C.add_command(subparsers, NAME,
                      help="draw a figure (curves, levels, mse, layers) to PNG, SVG or PDF",
                      description="Draw a figure of quantizer tables to a PNG, SVG or PDF file "
                                  "(needs matplotlib: pip install 'lloydmax[plot]'). Run "
                                  "'lloydmax plot KIND --help' for the options of each kind.",
                      epilog=epilog + "\n" + _FORMATS_NOTE)
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True,
                             parser_class=C.Parser)
    for kind, add_options in (("curves", _curves_options), ("levels", _levels_options),
                              ("mse", _mse_options), ("layers", _layers_options)):
        k = C.add_command(kinds, kind, help=HELP[kind],
                          description=f"lloydmax plot {kind}: {HELP[kind]}.",
                          epilog=EPILOGS[kind] + "\n" + _FORMATS_NOTE)
        add_options(k)
        k.add_argument("-o", "--output", metavar="FILE", required=True,
                       help="output file; .png, .svg or .pdf (written atomically)")
        k.add_argument("--dpi", type=C.number("--dpi", 10.0, 1200.0), default=100.0,
                       help="resolution of PNG output (100; 10 to 1200)")
        k.set_defaults(handler=run)
    return p


def _table_options(p, what: str) -> None:
    p.add_argument("--bits", metavar="B", help=f"bit-width of the table to solve for {what}")
    p.add_argument("--levels", metavar="N", help="level count instead of --bits")
    p.add_argument("--table", metavar="FILE", help="a table file (json, csv, npz) instead")
    p.add_argument("--index", metavar="K", type=C.integer("--index", 0, 1 << 20),
                   help="which table of a multi-table file (0-based)")


def _curves_options(p) -> None:
    _table_options(p, "the curves (default: 2-bit uniform HWGQ)")
    p.add_argument("--sign", action="store_true",
                   help="the binary baseline: sign forward, hard tanh backward")
    p.add_argument("--backward", nargs="+", metavar="NAME",
                   help=f"backward approximations to draw: {' '.join(_hwgq.BACKWARDS)} "
                        "(default all)")
    p.add_argument("--x-range", nargs=2, type=C.number("--x-range", -1e6, 1e6),
                   metavar=("LO", "HI"),
                   help="horizontal extent of the curves")
    C.add_quantizer_options(p, dist=False)


def _levels_options(p) -> None:
    _table_options(p, "the figure")
    C.add_quantizer_options(p)
    d = p.add_argument_group("measured data (needs the analysis package)")
    d.add_argument("--histogram", metavar="FILE", help="draw over this histogram file")
    d.add_argument("--channel", metavar="C", type=C.integer("--channel", 0, 1 << 24),
                   help="channel of the histogram")
    d.add_argument("--log", action="store_true", help="logarithmic density axis")


def _mse_options(p) -> None:
    p.add_argument("--bits", metavar="RANGE", help="bit-widths, such as 1-8 (the default)")
    C.add_distribution_options(p, default_dist=C.HALFWAVE)
    p.add_argument("--sqnr", action="store_true", help="plot SQNR in dB instead of MSE")


def _layers_options(p) -> None:
    p.add_argument("--report", metavar="FILE", help="analysis report CSV (lloydmax analyze -o)")
    p.add_argument("--bits", metavar="B", help="which sqnr_b{B}_* columns (default 2)")
    p.add_argument("--columns", nargs="+", metavar="COL",
                   help="methods to draw (dp hwgq_unit ... or full column names); "
                        "default every sqnr_b{B}_* column")


def _check_output(path: str) -> None:
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in figures.SAVE_FORMATS:
        raise InvalidInputError(
            f"unsupported output extension {Path(path).suffix or '(none)'!r} for {path}; "
            f"use one of {', '.join('.' + f for f in figures.SAVE_FORMATS)}")


def _table_or_solve(args, *, default_dist: str, required: bool):
    from .. import load_table, solve  # loads the solver: imported when the command runs

    if args.table is not None:
        if args.bits is not None or args.levels is not None:
            raise InvalidInputError("give --table FILE or --bits/--levels, not both")
        return load_table(args.table, index=args.index)
    if args.bits is None and args.levels is None:
        if required:
            raise InvalidInputError("give --table FILE or --bits B / --levels N")
        return None
    return solve(args.bits, n_levels=args.levels, **C.solve_kwargs(args, default_dist))


def _curves(args):
    if args.sign:
        if args.table or args.bits or args.levels or args.backward:
            raise InvalidInputError("--sign draws the fixed sign / hard-tanh pair; it takes "
                                    "no table, --bits or --backward")
        return figures.plot_curves(kind="sign", x_range=args.x_range)
    table = _table_or_solve(args, default_dist=C.HALFWAVE, required=False)
    return figures.plot_curves(table, backward=args.backward or figures.BACKWARDS,
                               x_range=args.x_range)


def _levels(args):
    if args.histogram is not None:
        hist = _load_histogram(args.histogram)
        table = _table_or_solve(args, default_dist="gaussian", required=False)
        from lloydmax.analysis.plot import plot_histogram

        return plot_histogram(hist, table, channel=args.channel, log=args.log)
    if args.channel is not None or args.log:
        raise InvalidInputError("--channel and --log apply to --histogram only")
    return figures.plot_levels(_table_or_solve(args, default_dist="gaussian", required=True))


def _mse(args):
    from .. import get_distribution  # loads the solver: imported when the command runs

    bits = C.parse_bits_list(args.bits or "1-8")
    dist = get_distribution(C.dist_name(args, C.HALFWAVE), **C.parse_params(args.param))
    return figures.plot_mse(bits, dist, quantity="sqnr" if args.sqnr else "mse")


def _layers(args):
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


_FIGURES = {"curves": _curves, "levels": _levels, "mse": _mse, "layers": _layers}


def run(args) -> int:
    """Draw ``args.kind`` to ``args.output``; returns the exit status (0).

    Raises
    ------
    InvalidInputError, InvalidTableError
        For a missing or bad input file, a bad combination of options or an unsupported
        output extension (one-line messages).
    """
    _check_output(args.output)
    if not (args.dpi > 0):
        raise InvalidInputError(f"--dpi must be positive, got {args.dpi!r}")
    figures.save_figure(_FIGURES[args.kind](args), args.output, dpi=args.dpi)
    return C.EXIT_OK
