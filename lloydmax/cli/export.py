"""``lloydmax export``: a table as a C header or as integer thresholds for hardware."""
from __future__ import annotations

from .._export import EXPORT_FORMATS, c_header, int_thresholds_json
from ..errors import InvalidInputError
from . import _common as C

NAME = "export"

EPILOG = """\
examples:
  lloydmax export gauss4.json --format c-header --name gauss4 -o gauss4.h
  lloydmax export act2.json --format int-thresholds --input-scale 0.0625 --input-bits 8
  lloydmax export w4.json --format int-thresholds --input-scale 0.01 --input-bits 8 --signed
"""


def register(subparsers):
    """Add ``export`` to the top-level subparsers; returns its parser."""
    p = C.add_command(subparsers, NAME, help="write a table as a C header or integer thresholds",
                      description="Write a table file in a form hardware flows read: a C "
                                  "header (float32 thresholds that decide as the float64 "
                                  "table) or integer thresholds for a fixed-point input "
                                  "(FINN MultiThreshold style).",
                      epilog=EPILOG)
    p.add_argument("table", metavar="TABLE", help="a lloydmax table file (.json/.csv/.npz)")
    p.add_argument("--index", metavar="K", type=int, default=None,
                   help="which table of a file that holds several (0-based)")
    p.add_argument("--format", choices=EXPORT_FORMATS, required=True,
                   help="c-header or int-thresholds")
    p.add_argument("--name", metavar="ID", default="lloydmax",
                   help="c-header: prefix of the C identifiers (default lloydmax)")
    p.add_argument("--input-scale", metavar="S", type=C.number("--input-scale"),
                   help="int-thresholds: the real value of one input step, x = S * x_int")
    p.add_argument("--input-bits", metavar="B", type=int,
                   help="int-thresholds: bits of the integer input")
    p.add_argument("--signed", action="store_true",
                   help="int-thresholds: signed (two's complement) input; default unsigned")
    p.add_argument("-o", "--output", metavar="FILE", help="output file (default: standard output)")
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    from .. import load_table  # loads the solver: imported when the command runs

    table = load_table(args.table, index=args.index)
    if args.format == "c-header":
        if args.input_scale is not None or args.input_bits is not None or args.signed:
            raise InvalidInputError("--input-scale, --input-bits and --signed are for "
                                    "--format int-thresholds")
        text = c_header(table, args.name)
    else:
        if args.input_scale is None or args.input_bits is None:
            raise InvalidInputError("--format int-thresholds needs --input-scale S and "
                                    "--input-bits B")
        text = int_thresholds_json(table, args.input_scale, args.input_bits, args.signed)
    C.emit(text.encode("ascii"), args.output)
    return C.EXIT_OK
