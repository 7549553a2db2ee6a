"""The ``lloydmax`` command: a thin layer over the public API.

Bad input prints one line on stderr and exits with status 2; no traceback.
"""
from __future__ import annotations

import argparse
import sys

from . import _io
from ._solver import MAX_BITS, solve
from ._version import __version__
from .errors import ConvergenceError, InvalidBitsError, InvalidInputError, LloydMaxError

__all__ = ["main"]

EXIT_USAGE = 2
EXIT_FAILED = 1

_SOLVE_EPILOG = """\
examples:
  lloydmax solve --bits 2 --half-wave                 HWGQ 2-bit activations, non-uniform
  lloydmax solve --bits 2 --half-wave --uniform       the published HWGQ step 0.5388
  lloydmax solve --levels 3 --half-wave               HWGQ's non-uniform 0.4528 / 1.510
  lloydmax solve --bits 2 --half-wave --uniform --zero-threshold round
  lloydmax solve --bits 2 --half-wave --uniform --zero-threshold 0.32    TSQ dead zone
  lloydmax solve --bits 2 --half-wave --sparsity 0.8  dead zone set by 80% zeros
  lloydmax solve --bits 4 --dist gaussian             Max (1960) 16-level table
  lloydmax solve --levels 3 --dist laplace            ternary weights, Laplace prior
  lloydmax solve --bits 3 --dist t --param df=5       any scipy.stats distribution
  lloydmax solve --bits 8 --half-wave --format json -o act8.json
  lloydmax solve --preset hwgq --bits 2               HWGQ's own table (uniform, hwgq rule)
  lloydmax solve --preset tsq --bits 2 --param std=1.5   TSQ dead zone for a layer with std 1.5

conventions (half-wave only; see docs/theory.md):
  hwgq      x <= 0 -> 0; first threshold pinned at 0 (HWGQ Caffe layer; the default)
  round     0 is an ordinary level; first threshold is the midpoint (EdMIPS rounding)
  deadzone  x <= eps -> 0 (TSQ); eps from --zero-threshold VALUE or --sparsity P
"""

_TABLE_EPILOG = """\
examples:
  lloydmax table --bits 1-8 --half-wave --uniform --format json -o hwgq_steps.json
  lloydmax table --bits 1,2,4,8 --dist gaussian --format csv -o gauss.csv
  lloydmax table --bits 1-16 --half-wave --format npz -o halfwave.npz
"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line and exits 2."""

    def error(self, message):  # pragma: no cover - exercised through main()
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def _add_quantizer_options(p: argparse.ArgumentParser, default_dist: str = "gaussian",
                           tol: bool = True) -> None:
    g = p.add_argument_group("distribution")
    g.add_argument("--half-wave", action="store_true",
                   help="ReLU of a unit Gaussian (BatchNorm + ReLU activations); "
                        "same as --dist halfwave-gaussian")
    names = ["gaussian", "halfwave-gaussian", "half-normal", "laplace", "uniform"]
    listed = ", ".join(f"{n} (default)" if n == default_dist else n for n in names)
    g.add_argument("--dist", metavar="NAME",
                   help=f"{listed}, or any continuous scipy.stats name (e.g. logistic, t, gamma)")
    g.add_argument("--param", metavar="K=V", action="append", default=[],
                   help="distribution parameter, repeatable: std=2, mean=0, df=5, ...")
    q = p.add_argument_group("quantizer")
    kind = q.add_mutually_exclusive_group()
    kind.add_argument("--uniform", action="store_true", default=None,
                      help="optimal uniform step instead of free (Lloyd-Max) levels")
    kind.add_argument("--nonuniform", dest="uniform", action="store_false",
                      help="free (Lloyd-Max) levels; the default except for presets")
    q.add_argument("--zero-threshold", metavar="hwgq|round|EPS",
                   help="half-wave: where 0 hands over to the first level: hwgq (0, default), "
                        "round (midpoint), or a dead-zone threshold EPS > 0")
    q.add_argument("--sparsity", metavar="P", type=_float("--sparsity"),
                   help="half-wave: dead zone with P(x <= eps) = P, 0.5 <= P < 1")
    if tol:
        q.add_argument("--tol", metavar="TOL", type=_float("--tol"), default=1e-12,
                       help="tolerance on the relative residual (default 1e-12)")


def _float(flag):
    def parse(text):
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} needs a number, got {text!r}") from None
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lloydmax",
        description="Exact Lloyd-Max and optimal-uniform quantizer tables for low-precision "
                    "networks (HWGQ, SYQ, TSQ, Direct Quantization).",
        epilog="run 'lloydmax solve --help' for examples; docs/cli.md has the full reference",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"lloydmax {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser("solve", help="solve one table and print it",
                       description="Solve one MSE-optimal quantizer table.",
                       epilog=_SOLVE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--bits", metavar="B", help=f"bit-width 1..{MAX_BITS} (2**B levels)")
    s.add_argument("--levels", metavar="N",
                   help="level count instead of --bits, any N >= 2 (3 = ternary)")
    s.add_argument("--preset", metavar="NAME",
                   help="a trainer's activation table: hwgq, tsq, syq, dq (docs/trainers.md)")
    _add_quantizer_options(s)
    s.add_argument("--format", choices=("text",) + _io.FORMATS, default=None,
                   help="output format (default: from the -o suffix .json/.csv/.npz, else text)")
    s.add_argument("-o", "--output", metavar="FILE", help="write to FILE (atomically) instead of stdout")

    t = sub.add_parser("table", help="sweep bit-widths into one table file",
                       description="Solve a table for each bit-width and write them to one file.",
                       epilog=_TABLE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--bits", metavar="RANGE", required=True,
                   help="bit-widths: a range 1-8, a list 1,2,4, or one value")
    _add_quantizer_options(t)
    t.add_argument("--format", choices=_io.FORMATS, default=None,
                   help="json, csv or npz (default: from the -o suffix, else json)")
    t.add_argument("-o", "--output", metavar="FILE", help="output file (required for npz)")
    c = sub.add_parser("check", help="hold an existing table against the exact optimum",
                       description="Measure how far a table someone already has is from the "
                                   "optimum of the same kind, convention and level count.",
                       epilog=_CHECK_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("table", nargs="?", metavar="FILE", help="a lloydmax table file (.json/.csv/.npz)")
    src = c.add_argument_group("or give the table on the command line")
    src.add_argument("--levels", metavar="Q0,Q1,...", help="every level, comma-separated")
    src.add_argument("--step", metavar="S", type=_float("--step"),
                     help="a uniform step (with --bits): levels k*S for the half-wave Gaussian")
    src.add_argument("--bits", metavar="B", help="bit-width of a --step table")
    _add_quantizer_options(c, default_dist="halfwave-gaussian", tol=False)
    c.add_argument("--strict", action="store_true",
                   help="exit 1 when the excess MSE is above --tolerance")
    c.add_argument("--tolerance", metavar="PCT", type=_float("--tolerance"), default=0.0,
                   help="allowed excess MSE in percent with --strict (default 0)")
    c.add_argument("--format", choices=("text", "json"), default="text")
    a = sub.add_parser("analyze", help="histogram real activations and report quantization MSE",
                       description="Collect activation histograms (per layer, optionally per "
                                   "channel) and report how each quantizer table fits them: the "
                                   "unit HWGQ tables times the layer's sigma in each convention, "
                                   "the exact optimum for the data (DP), uniform steps, clipping.",
                       epilog=_ANALYZE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("source", metavar="ACTIVATIONS.npz|.npy|MODEL.onnx",
                   help="saved activations (one array per layer in an .npz) or an ONNX model")
    a.add_argument("--inputs", metavar="X.npz", help="model inputs for an .onnx source")
    a.add_argument("--layers", default="relu",
                   help="ONNX: which outputs to histogram: relu (default), bn, or a name pattern")
    a.add_argument("--bits", metavar="RANGE", default="1-4", help="bit-widths (default 1-4)")
    a.add_argument("--per-channel", action="store_true",
                   help="one row per channel (channels along --axis) instead of per layer")
    a.add_argument("--axis", type=int, default=1, help="channel axis of the arrays (default 1)")
    a.add_argument("--convention", action="append", choices=("hwgq", "round", "deadzone"),
                   help="half-wave conventions to compare (repeatable; default all three)")
    a.add_argument("--bins", type=int, default=2048, help="histogram bins (default 2048)")
    a.add_argument("--strict", action="store_true",
                   help="NaN or Inf in the activations is an error (default: counted, "
                        "skipped and warned about)")
    a.add_argument("-o", "--output", metavar="report.csv", help="write the full report as CSV")
    a.add_argument("--tables-out", metavar="DIR",
                   help="write the best table per layer (and channel) as JSON files into DIR")
    from ._plotcli import add_plot_parser  # matplotlib itself is imported only to draw

    add_plot_parser(sub)
    return parser


_ANALYZE_EPILOG = """\
examples:
  lloydmax analyze activations.npz                     per-layer report, 1-4 bits
  lloydmax analyze activations.npz --per-channel --bits 2 -o report.csv
  lloydmax analyze model.onnx --inputs batch.npz --tables-out tables/
"""

_CHECK_EPILOG = """\
examples:
  lloydmax check --step 0.104 --bits 5 --half-wave    a circulating 5-bit HWGQ step
  lloydmax check --step 0.538 --bits 2 --half-wave --zero-threshold round   EdMIPS's rule
  lloydmax check --levels 0,0.453,1.51 --half-wave    HWGQ's non-uniform example
  lloydmax check act2.json --strict --tolerance 0.1   exit 1 if more than 0.1 % above optimal
  lloydmax check --step 0.336 --bits 4 --dist gaussian --format json

exit status: 0 checked (and within tolerance), 1 above --tolerance with --strict, 2 bad input
"""


def _parse_params(items) -> dict:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"--param needs KEY=VALUE, got {item!r}")
        try:
            params[key.strip()] = float(value)
        except ValueError:
            raise InvalidInputError(f"--param {key.strip()} needs a number, got {value!r}") from None
    return params


def _parse_bits_list(text: str) -> list[int]:
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            bounds = (int(lo), int(hi)) if sep and lo else (int(part), int(part))
        except ValueError:
            raise InvalidBitsError(
                f"--bits needs whole numbers like 1-8 or 1,2,4; got {text!r}") from None
        if bounds[0] > bounds[1]:
            raise InvalidBitsError(f"bit range {part!r} runs backwards")
        out.extend(range(bounds[0], bounds[1] + 1))
    for b in out:
        if not 1 <= b <= MAX_BITS:
            raise InvalidBitsError(f"bits must be between 1 and {MAX_BITS}, got {b}")
    return sorted(set(out))


def _dist_name(args, default="gaussian"):
    dist = args.dist
    if args.half_wave:
        if dist is not None and dist.lower().replace("_", "-") not in ("halfwave-gaussian", "halfwave"):
            raise InvalidInputError("--half-wave and --dist name two different distributions")
        dist = "halfwave-gaussian"
    return dist or default


def _solve_kwargs(args) -> dict:
    return {
        "dist": _dist_name(args),
        "params": _parse_params(args.param),
        "uniform": bool(args.uniform),
        "zero_threshold": args.zero_threshold,
        "sparsity": args.sparsity,
        "tol": args.tol,
    }


def _preset_table(args):
    from .presets import get_preset

    if args.dist or args.half_wave:
        raise InvalidInputError("--preset fixes the distribution: drop --dist / --half-wave")
    preset = get_preset(args.preset)
    params = _parse_params(args.param)
    unknown = sorted(set(params) - {"std"})
    if unknown:
        raise InvalidInputError(f"--preset takes only --param std=S; unknown: {', '.join(unknown)}")
    options = {"std": params.get("std", 1.0)}
    if args.uniform is not None and preset.name in ("hwgq", "tsq", "dq"):
        options["uniform"] = args.uniform
    elif args.uniform is not None:
        raise InvalidInputError(f"preset {preset.name} has a fixed kind: drop --uniform/--nonuniform")
    if args.zero_threshold is not None or args.sparsity is not None:
        if preset.name != "tsq":
            raise InvalidInputError("--zero-threshold / --sparsity go with --preset tsq only")
        options.update(zero_threshold=args.zero_threshold, sparsity=args.sparsity)
    if args.levels is not None:
        raise InvalidInputError("--preset takes --bits, not --levels")
    from ._solver import resolve_levels

    b, _ = resolve_levels(args.bits)
    return preset.activation_table(b, **options)


def _text(table) -> str:
    lines = []
    kind = f"uniform, step {table.step:.12g}" if table.step is not None else "non-uniform (Lloyd-Max)"
    params = ", ".join(f"{k}={v:g}" for k, v in table.params.items())
    conv = "" if table.convention == "none" else f", convention {table.convention}"
    lines.append(f"{table.distribution}({params}): {table.n_levels} levels ({table.bits} bits), "
                 f"{kind}{conv}")
    if table.zero_threshold is not None and table.convention == "deadzone":
        lines.append(f"dead-zone threshold eps = {table.zero_threshold:.12g}")
    lines.append(f"MSE {table.mse:.10g}   SQNR {table.sqnr_db:.4f} dB   "
                 f"output entropy {table.entropy_bits:.4f} bits")
    state = "converged" if table.converged else "NOT CONVERGED"
    lines.append(f"residual {table.residual:.1e} after {table.iterations} iterations ({state})")
    lines.append("")
    lines.append(f"{'index':>6}  {'level':>20}  {'upper threshold':>20}")
    shown = range(table.n_levels)
    if table.n_levels > 64:
        shown = list(range(16)) + [-1] + list(range(table.n_levels - 16, table.n_levels))
    for i in shown:
        if i < 0:
            lines.append(f"{'...':>6}")
            continue
        thr = f"{table.thresholds[i]:20.12g}" if i < table.n_levels - 1 else f"{'inf':>20}"
        lines.append(f"{i:>6}  {table.levels[i]:20.12g}  {thr}")
    if table.n_levels > 64:
        lines.append(f"({table.n_levels - 32} rows not shown; use --format json or csv)")
    return "\n".join(lines) + "\n"


def _output_format(fmt, output, default: str) -> str:
    """The format to write: --format, else the -o suffix, else ``default``.  A table
    suffix that contradicts --format is an error, not a file that cannot be read back."""
    suffix = output.rsplit(".", 1)[-1].lower() if output and "." in output else ""
    if fmt is None:
        fmt = suffix if suffix in _io.FORMATS else default
    elif suffix in _io.FORMATS and suffix != fmt:
        raise InvalidInputError(f"--format {fmt} does not match the .{suffix} suffix of {output}")
    if fmt == "npz" and not output:
        raise InvalidInputError("npz output is binary: give -o FILE")
    return fmt


def _emit(data: bytes, output) -> None:
    if output:
        _io.atomic_write(output, data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def _cmd_solve(args) -> int:
    if args.bits is None and args.levels is None:
        raise InvalidBitsError("give --bits B or --levels N")
    if args.preset:
        table = _preset_table(args)
    else:
        table = solve(args.bits, n_levels=args.levels, **_solve_kwargs(args))
    fmt = _output_format(args.format, args.output, "text")
    if fmt == "text":
        data = _text(table).encode("utf-8")
    else:
        data = _io.encode_tables([table], fmt)
    _emit(data, args.output)
    return 0


def _cmd_table(args) -> int:
    bits = _parse_bits_list(args.bits)
    fmt = _output_format(args.format, args.output, "json")
    kwargs = _solve_kwargs(args)
    tables = []
    show = sys.stderr.isatty() and len(bits) > 1
    for k, b in enumerate(bits, start=1):
        if show:
            print(f"\rsolving {b} bits ({k}/{len(bits)})...", end="", file=sys.stderr, flush=True)
        tables.append(solve(b, **kwargs))
    if show:
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr, flush=True)
    _emit(_io.encode_tables(tables, fmt), args.output)
    return 0


def _cmd_check(args) -> int:
    from ._check import check

    sources = [args.table is not None, args.levels is not None, args.step is not None]
    if sum(sources) != 1:
        raise InvalidInputError("give a table FILE, --levels Q0,Q1,... or --step S --bits B")
    params = _parse_params(args.param) if args.param else None
    common = {"zero_threshold": args.zero_threshold, "sparsity": args.sparsity,
              "uniform": args.uniform}
    if args.table is not None:
        dist = _dist_name(args, default=None) if (args.dist or args.half_wave) else None
        result = check(_io.load_table(args.table), dist=dist, params=params, **common)
    elif args.levels is not None:
        try:
            levels = [float(v) for v in args.levels.split(",") if v.strip()]
        except ValueError:
            raise InvalidInputError(f"--levels needs comma-separated numbers, got {args.levels!r}") from None
        result = check(levels=levels, bits=args.bits, dist=_dist_name(args, "halfwave-gaussian"),
                       params=params, **common)
    else:
        if args.bits is None:
            raise InvalidBitsError("--step needs --bits B")
        result = check(step=args.step, bits=args.bits, dist=_dist_name(args, "halfwave-gaussian"),
                       params=params, **common)
    if args.format == "json":
        _emit(_io.dumps_json(result.to_dict()).encode("ascii"), None)
    else:
        _emit(result.to_text().encode("utf-8"), None)
    if args.strict and not result.within(args.tolerance):
        return EXIT_FAILED
    return 0


def _cmd_analyze(args) -> int:
    import os

    bits = tuple(_parse_bits_list(args.bits))
    if not os.path.exists(args.source):
        raise InvalidInputError(f"file not found: {args.source}")
    try:  # the one place the command line reaches into the analysis package
        from lloydmax.analysis.collect import collect
        from lloydmax.analysis.report import best_tables, report
    except ImportError as exc:  # pandas missing
        from .errors import MissingDependencyError

        raise MissingDependencyError(f"lloydmax analyze needs {exc.name}: "
                                     "pip install 'lloydmax[analysis]'") from None
    axis = args.axis if args.per_channel else None
    if args.source.lower().endswith(".onnx"):
        if not args.inputs:
            raise InvalidInputError("an .onnx model needs --inputs X.npz")
        from lloydmax.analysis.onnx_collect import collect_onnx

        hists = collect_onnx(args.source, args.inputs, layers=args.layers, n_bins=args.bins,
                             axis=axis, strict=args.strict)
    else:
        if args.inputs:
            raise InvalidInputError("--inputs goes with an .onnx model only")
        hists = collect(args.source, axis=axis, n_bins=args.bins, strict=args.strict)
        if not isinstance(hists, dict):
            hists = {os.path.splitext(os.path.basename(args.source))[0]: hists}
    conventions = tuple(args.convention) if args.convention else ("hwgq", "round", "deadzone")
    df = report(hists, bits=bits, per_channel=args.per_channel, conventions=conventions)
    import pandas as pd

    for _, row in df[df["std"] == 0].iterrows():
        where = row["layer"] if pd.isna(row["channel"]) else f"{row['layer']} channel {row['channel']}"
        print(f"lloydmax: warning: {where} is constant ({row['min']:g}): no table can be fitted "
              "to it", file=sys.stderr)
    if args.output:
        _io.atomic_write(args.output, df.to_csv(index=False).encode("utf-8"))
    _emit(_analyze_summary(df, bits).encode("utf-8"), None)
    if args.tables_out:
        if not os.path.isdir(args.tables_out):
            raise InvalidInputError(f"--tables-out directory does not exist: {args.tables_out}")
        written = 0
        for b in bits:
            for key, table in best_tables(df, b).items():
                name = key if isinstance(key, str) else f"{key[0]}_ch{key[1]}"
                safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name))
                _io.save_tables([table], os.path.join(args.tables_out, f"{safe}_b{b}.json"))
                written += 1
        print(f"wrote {written} tables to {args.tables_out}", file=sys.stderr)
    return 0


def _analyze_summary(df, bits) -> str:
    """A terminal-sized view: statistics and, per bit-width, SQNR of the main methods."""
    cols = ["layer"] + (["channel"] if df["channel"].notna().any() else [])
    cols += ["count", "sparsity", "std", "skewness", "kurtosis", "ks_halfwave"]
    for b in bits:
        for m in ("hwgq_unit", "round_unit", "dp"):
            c = f"sqnr_b{b}_{m}"
            if c in df.columns:
                cols.append(c)
    view = df[cols].copy()
    return (view.to_string(index=False, float_format=lambda v: f"{v:.4g}") + "\n"
            "(SQNR in dB; full columns with -o report.csv)\n")


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"lloydmax: warning: {message}", file=sys.stderr)


def main(argv=None) -> int:
    """Entry point of the ``lloydmax`` command; returns the exit status."""
    import warnings

    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning  # one line, no source excerpt
        return _main(argv)


def _main(argv) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        if args.command == "solve":
            return _cmd_solve(args)
        if args.command == "check":
            return _cmd_check(args)
        if args.command == "analyze":
            return _cmd_analyze(args)
        if args.command == "plot":
            from ._plotcli import run_plot

            return run_plot(args)
        return _cmd_table(args)
    except _UsageError as exc:
        print(f"lloydmax: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConvergenceError as exc:
        print(f"lloydmax: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (InvalidInputError, LloydMaxError) as exc:
        print(f"lloydmax: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. piped into head
        return 0
    except KeyboardInterrupt:
        print("lloydmax: interrupted", file=sys.stderr)
        return 130
