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


def _add_quantizer_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("distribution")
    g.add_argument("--half-wave", action="store_true",
                   help="ReLU of a unit Gaussian (BatchNorm + ReLU activations); "
                        "same as --dist halfwave-gaussian")
    g.add_argument("--dist", metavar="NAME",
                   help="gaussian (default), halfwave-gaussian, half-normal, laplace, uniform, "
                        "or any continuous scipy.stats name (e.g. logistic, t, gamma)")
    g.add_argument("--param", metavar="K=V", action="append", default=[],
                   help="distribution parameter, repeatable: std=2, mean=0, df=5, ...")
    q = p.add_argument_group("quantizer")
    q.add_argument("--uniform", action="store_true",
                   help="optimal uniform step instead of free (Lloyd-Max) levels")
    q.add_argument("--zero-threshold", metavar="hwgq|round|EPS",
                   help="half-wave: where 0 hands over to the first level: hwgq (0, default), "
                        "round (midpoint), or a dead-zone threshold EPS > 0")
    q.add_argument("--sparsity", metavar="P", type=_float("--sparsity"),
                   help="half-wave: dead zone with P(x <= eps) = P, 0.5 <= P < 1")
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
    _add_quantizer_options(s)
    s.add_argument("--format", choices=("text", "json", "csv"), default="text",
                   help="output format (default text)")
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
    return parser


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


def _solve_kwargs(args) -> dict:
    dist = args.dist
    if args.half_wave:
        if dist is not None and dist.lower().replace("_", "-") not in ("halfwave-gaussian", "halfwave"):
            raise InvalidInputError("--half-wave and --dist name two different distributions")
        dist = "halfwave-gaussian"
    return {
        "dist": dist or "gaussian",
        "params": _parse_params(args.param),
        "uniform": args.uniform,
        "zero_threshold": args.zero_threshold,
        "sparsity": args.sparsity,
        "tol": args.tol,
    }


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


def _emit(data: bytes, output) -> None:
    if output:
        _io.atomic_write(output, data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def _cmd_solve(args) -> int:
    if args.bits is None and args.levels is None:
        raise InvalidBitsError("give --bits B or --levels N")
    table = solve(args.bits, n_levels=args.levels, **_solve_kwargs(args))
    if args.format == "text":
        data = _text(table).encode("utf-8")
    else:
        data = _io.encode_tables([table], args.format)
    _emit(data, args.output)
    return 0


def _cmd_table(args) -> int:
    bits = _parse_bits_list(args.bits)
    fmt = args.format or (_io.format_from_path(args.output) if args.output else "json")
    if fmt == "npz" and not args.output:
        raise InvalidInputError("npz output is binary: give -o FILE")
    if args.output:
        _io.format_from_path(args.output, fmt)
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


def main(argv=None) -> int:
    """Entry point of the ``lloydmax`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        if args.command == "solve":
            return _cmd_solve(args)
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
