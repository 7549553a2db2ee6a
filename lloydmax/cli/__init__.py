"""The ``lloydmax`` command: a thin layer over the public API.

One module per command (:mod:`.solve`, :mod:`.table`, :mod:`.check`, :mod:`.analyze`,
:mod:`.plot`), each with ``register(subparsers)`` and ``run(args)``; what they share
(parser class, options, output, error handling) is in :mod:`._common`.  Bad input prints
one line on stderr and exits with status 2; no traceback.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys

from .._version import __version__
from . import _common, analyze, check, export, plot, solve, table

__all__ = ["build_parser", "console", "main"]

COMMANDS = (solve, table, check, analyze, plot, export)

EPILOG = """\
examples:
  lloydmax solve --bits 2 --half-wave                 HWGQ 2-bit activations, non-uniform
  lloydmax solve --preset tsq --bits 2                TSQ's dead-zone table
  lloydmax table --bits 1-8 --half-wave --uniform -o hwgq_steps.json
  lloydmax check --step 0.104 --bits 5 --half-wave    a circulating 5-bit HWGQ step
  lloydmax analyze activations.npz --bits 2 -o report.csv
  lloydmax plot curves -o hwgq_curves.png             HWGQ Fig. 1 (right)

exit status: 0 success, 1 the solver did not converge (or check --strict above
--tolerance), 2 bad input (one line on stderr)

run 'lloydmax COMMAND --help' for the options and examples of each command;
docs/cli/index.md has the full reference
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (no command module is run)."""
    parser = _common.Parser(
        prog="lloydmax",
        description="Exact Lloyd-Max and optimal-uniform quantizer tables for low-precision "
                    "networks (HWGQ, SYQ, TSQ, Direct Quantization).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"lloydmax {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_common.Parser)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``lloydmax`` command; returns the exit status."""
    return _common.run(build_parser(), argv)


def console() -> None:
    """The console script (``lloydmax``, ``python -m lloydmax``): :func:`main`, then exit.

    Start-up and shut-down levers that only a whole process may pull, so :func:`main`
    called from Python stays side-effect free: ``gc.freeze()`` moves the objects of the
    imports out of the collector's way, and the end flushes stdout and stderr itself and
    leaves with ``os._exit`` (no interpreter teardown).  A flush that fails there is
    still reported: a broken pipe quietly, a full device or a closed stream as one line
    and exit status 2.
    """
    gc.freeze()
    status = main()
    for stream in (sys.stdout, sys.stderr):
        if stream is None:
            continue
        try:
            stream.flush()
        except BrokenPipeError:
            pass
        except (OSError, ValueError) as exc:
            if stream is sys.stdout:
                _common._say(f"lloydmax: error: cannot write to standard output: "
                             f"{getattr(exc, 'strerror', None) or exc}")
                status = _common.EXIT_USAGE
    os._exit(status)

