"""``lloydmax table``: a table for each of several bit-widths, in one file."""
from __future__ import annotations

import sys

from . import _common as C

NAME = "table"

EPILOG = """\
examples:
  lloydmax table --bits 1-8 --half-wave --uniform --format json -o hwgq_steps.json
  lloydmax table --bits 1,2,4,8 --dist gaussian --format csv -o gauss.csv
  lloydmax table --bits 1-16 --half-wave --format npz -o halfwave.npz
"""


def register(subparsers):
    """Add ``table`` to the top-level subparsers; returns its parser."""
    p = C.add_command(subparsers, NAME, help="sweep bit-widths into one table file",
                      description="Solve a table for each bit-width and write them to one file.",
                      epilog=EPILOG)
    p.add_argument("--bits", metavar="RANGE", required=True,
                   help="bit-widths: a range 1-8, a list 1,2,4, or one value")
    C.add_quantizer_options(p)
    p.add_argument("--format", choices=C.FORMATS, default=None,
                   help="json, csv or npz (default: from the -o suffix, else json)")
    p.add_argument("-o", "--output", metavar="FILE", help="output file (required for npz)")
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    from .. import solve  # loads the solver: imported when the command runs

    bits = C.parse_bits_list(args.bits)
    fmt = C.output_format(args.format, args.output, "json")
    kwargs = C.solve_kwargs(args)
    tables = []
    show = sys.stderr.isatty() and len(bits) > 1  # a progress line, on a terminal only
    for k, b in enumerate(bits, start=1):
        if show:
            print(f"\rsolving {b} bits ({k}/{len(bits)})...", end="", file=sys.stderr, flush=True)
        tables.append(solve(b, **kwargs))
    if show:
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr, flush=True)
    C.emit(C.encode_tables(tables, fmt), args.output)
    return C.EXIT_OK
