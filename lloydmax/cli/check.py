"""``lloydmax check``: hold a table someone already has against the exact optimum."""
from __future__ import annotations

from ..errors import InvalidBitsError, InvalidInputError
from . import _common as C

NAME = "check"

EPILOG = """\
examples:
  lloydmax check --step 0.104 --bits 5 --half-wave    a circulating 5-bit HWGQ step
  lloydmax check --step 0.538 --bits 2 --half-wave --zero-threshold round   EdMIPS's rule
  lloydmax check --level-values 0,0.453,1.51 --half-wave   HWGQ's non-uniform example
  lloydmax check act2.json --strict --tolerance 0.1   exit 1 if more than 0.1 % above optimal
  lloydmax check --step 0.336 --bits 4 --dist gaussian --format json
  lloydmax check --level-values=-1,-0.5,0,0.5,1 --dist gaussian --best-scale
  lloydmax check --level-values=-1,-0.4,0,0.4,1 --dist uniform --param low=-1 --pin-levels=-1,0,1

exit status: 0 checked (and within tolerance), 1 above --tolerance with --strict, 2 bad input
"""

_SOURCES = "give a table FILE, --level-values Q0,Q1,... or --step S --bits B"


def register(subparsers):
    """Add ``check`` to the top-level subparsers; returns its parser."""
    p = C.add_command(subparsers, NAME, help="hold an existing table against the exact optimum",
                      description="Measure how far a table someone already has is from the "
                                  "optimum of the same kind, convention and level count.",
                      epilog=EPILOG)
    p.add_argument("table", nargs="?", metavar="FILE",
                   help="a lloydmax table file (.json/.csv/.npz)")
    src = p.add_argument_group("or give the table on the command line")
    src.add_argument("--level-values", metavar="Q0,Q1,...",
                     help="every level, comma-separated")
    src.add_argument("--levels", action=C.Renamed, command="check",
                     use="--level-values Q0,Q1,...",
                     note="--levels N is a level count, as in solve and plot")
    src.add_argument("--step", metavar="S", type=C.number("--step", 0.0, lo_open=True),
                     help="a uniform step (with --bits): levels k*S for the half-wave Gaussian")
    src.add_argument("--bits", metavar="B", help="bit-width of a --step table")
    C.add_quantizer_options(p, default_dist="halfwave-gaussian", tol=False)
    p.add_argument("--pin-levels", metavar="P0,P1,...", type=C.pin_values,
                   help="compare with the optimum that keeps these level values "
                        "(e.g. --pin-levels=-1,0,1, as NF4 does)")
    p.add_argument("--best-scale", action="store_true",
                   help="first scale the given levels by the factor with the least MSE "
                        "(a codebook used as s * levels)")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when the excess MSE is above --tolerance")
    p.add_argument("--tolerance", metavar="PCT", type=C.number("--tolerance", 0.0, 1e6),
                   default=0.0,
                   help="allowed excess MSE in percent with --strict (default 0)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(handler=run)
    return p


def _level_values(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InvalidInputError(
            f"--level-values needs comma-separated numbers, got {text!r}") from None


def run(args) -> int:
    from .. import check, load_table  # loads the solver: imported when the command runs

    sources = [args.table is not None, args.level_values is not None, args.step is not None]
    if sum(sources) != 1:
        raise InvalidInputError(_SOURCES)
    params = C.parse_params(args.param) if args.param else None
    common = {"zero_threshold": args.zero_threshold, "sparsity": args.sparsity,
              "uniform": args.uniform, "pin_levels": args.pin_levels,
              "best_scale": args.best_scale}
    if args.table is not None:
        dist = C.dist_name(args, default=None) if (args.dist or args.half_wave) else None
        result = check(load_table(args.table), dist=dist, params=params, **common)
    elif args.level_values is not None:
        result = check(levels=_level_values(args.level_values), bits=args.bits,
                       dist=C.dist_name(args, C.HALFWAVE), params=params, **common)
    else:
        if args.bits is None:
            raise InvalidBitsError("--step needs --bits B")
        result = check(step=args.step, bits=args.bits, dist=C.dist_name(args, C.HALFWAVE),
                       params=params, **common)
    if args.format == "json":
        C.emit(C.dumps_json(result.to_dict()).encode("ascii"))
    else:
        C.emit(result.to_text().encode("utf-8"))
    if args.strict and not result.within(args.tolerance):
        return C.EXIT_FAILED
    return C.EXIT_OK
