"""What the ``lloydmax`` commands share: the parser class, the shared options and their
parsing, output, and the error handling of :func:`run`.

Every command module (``solve``, ``table``, ``check``, ``analyze``, ``plot``) imports this
module and nothing else of the CLI.  Bad input raises :class:`UsageError` or a
:class:`~lloydmax.errors.LloydMaxError`; :func:`run` turns either into one line on stderr
and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import warnings

from .._files import FORMATS, atomic_write, atomic_write_many, check_target, encode_tables
from .._format import MAX_BITS, dumps_json
from ..errors import ConvergenceError, InvalidBitsError, InvalidInputError, LloydMaxError

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "FORMATS", "HALFWAVE",
           "Parser", "Renamed", "UsageError", "add_command", "add_distribution_options",
           "add_quantizer_options", "block_tables", "check_output_dir", "command_inputs",
           "dist_name",
           "dumps_json", "emit", "emit_many", "encode_tables", "integer", "number",
           "output_format", "parse_bits_list", "parse_params", "pin_values", "run", "solve_kwargs"]

EXIT_OK = 0
EXIT_FAILED = 1        # did not converge; check --strict above --tolerance
EXIT_USAGE = 2         # bad input
EXIT_INTERRUPTED = 130

HALFWAVE = "halfwave-gaussian"


class UsageError(Exception):
    """A command-line mistake; reported as ``lloydmax: error: MESSAGE``, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line and exits 2 (through :func:`run`)."""

    def error(self, message):
        raise UsageError(message)

    def parse_args(self, args=None, namespace=None):
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:  # say which (sub)command they were given to
            where = getattr(namespace, "command_prog", None)
            hint = f" (see '{where} --help')" if where else ""
            self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return namespace


class LazyHelp:
    """An argparse help text computed only when help is shown (the names it lists come
    from modules that load numba, which a cached ``solve`` never imports)."""

    def __init__(self, make):
        self._make = make

    def __str__(self):
        return self._make()

    def __bool__(self):
        return True

    def __mod__(self, params):
        return str(self) % params

    def __contains__(self, text):
        return text in str(self)

    def strip(self):
        return str(self).strip()


class Renamed(argparse.Action):
    """An option that was renamed: using it is a usage error naming the new spelling."""

    def __init__(self, option_strings, dest, *, command, use, note="", **kwargs):
        kwargs.setdefault("nargs", "?")
        kwargs["help"] = argparse.SUPPRESS
        super().__init__(option_strings, dest, **kwargs)
        self.command, self.use, self.note = command, use, note

    def __call__(self, parser, namespace, values, option_string=None):
        note = f" ({self.note})" if self.note else ""
        raise UsageError(f"{self.command} {option_string} was renamed in 0.2.0: "
                         f"use {self.use}{note}")


def add_command(subparsers, name: str, *, help: str, description: str, epilog: str):
    """A subcommand parser whose ``--help`` shows ``epilog`` (the examples) verbatim."""
    p = subparsers.add_parser(name, help=help, description=description, epilog=epilog,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(command_prog=p.prog)
    return p


def number(flag: str, lo: float = -math.inf, hi: float = math.inf, *,
           lo_open: bool = False, hi_open: bool = False):
    """argparse ``type`` for a float option: finite and in [lo, hi] (a bound is left out
    with ``lo_open``/``hi_open``), with a message that names the option."""
    left, right = "(" if lo_open else "[", ")" if hi_open else "]"

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} needs a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"needs a finite number, got {text!r}")
        if (value <= lo if lo_open else value < lo) or (value >= hi if hi_open else value > hi):
            raise argparse.ArgumentTypeError(
                f"must lie in {left}{lo:g}, {hi:g}{right}, got {text}")
        return value
    return parse


def integer(flag: str, lo: int, hi: int):
    """argparse ``type`` for a whole-number option in [lo, hi]."""
    def parse(text):
        try:
            value = int(str(text).strip(), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"needs a whole number, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be between {lo} and {hi}, got {value}")
        return value
    return parse


def add_distribution_options(p, default_dist: str = "gaussian", *, dist: bool = True) -> None:
    """``--half-wave``, and unless ``dist`` is false ``--dist`` and ``--param``."""
    g = p.add_argument_group("distribution")
    if not dist:
        g.add_argument("--half-wave", action="store_true",
                       help="ReLU of a unit Gaussian; always the distribution here, so it may "
                            "be left out")
        return
    g.add_argument("--half-wave", action="store_true",
                   help="ReLU of a unit Gaussian (BatchNorm + ReLU activations); "
                        "same as --dist halfwave-gaussian")
    def dist_help():
        from .. import list_distributions  # loads the solver: only when help is shown

        listed = ", ".join(f"{n} (default)" if n == default_dist else n
                           for n in list_distributions())
        return f"{listed}, or any continuous scipy.stats name (e.g. logistic, t, gamma)"

    g.add_argument("--dist", metavar="NAME", help=LazyHelp(dist_help))
    g.add_argument("--param", metavar="K=V", action="append", default=[],
                   help="distribution parameter, repeatable: std=2, mean=0, df=5, ...")


def add_quantizer_options(p, default_dist: str = "gaussian", *, tol: bool = True,
                          dist: bool = True) -> None:
    """The distribution options, then the kind and convention of the quantizer."""
    add_distribution_options(p, default_dist, dist=dist)
    q = p.add_argument_group("quantizer")
    kind = q.add_mutually_exclusive_group()
    kind.add_argument("--uniform", action="store_true", default=None,
                      help="optimal uniform step instead of free (Lloyd-Max) levels")
    kind.add_argument("--nonuniform", dest="uniform", action="store_false",
                      help="free (Lloyd-Max) levels; the default except for presets")
    q.add_argument("--zero-threshold", metavar="hwgq|round|EPS",
                   help="half-wave: where 0 hands over to the first level: hwgq (0, default), "
                        "round (midpoint), or a dead-zone threshold EPS > 0")
    # the range [0.5, 1) is checked by the API, whose message says why
    q.add_argument("--sparsity", metavar="P", type=number("--sparsity"),
                   help="half-wave: dead zone with P(x <= eps) = P, 0.5 <= P < 1")
    if tol:
        q.add_argument("--tol", metavar="TOL", type=number("--tol", 0.0, 1.0, lo_open=True),
                       default=1e-12,
                       help="tolerance on the relative residual (default 1e-12)")


def parse_params(items) -> dict:
    """``--param K=V`` items as a dict of floats."""
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"--param needs KEY=VALUE, got {item!r}")
        try:
            params[key.strip()] = float(value)
        except ValueError:
            raise InvalidInputError(
                f"--param {key.strip()} needs a number, got {value!r}") from None
    return params


def parse_bits_list(text: str) -> list[int]:
    """Bit-widths from ``1-8``, ``1,2,4``, ``8`` or a mix such as ``1-4,8``: sorted, unique."""
    out: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            if len(part) > 20:  # no bit-width has that many digits; int() of 5000 raises
                raise ValueError(part)
            bounds = (int(lo), int(hi)) if sep and lo else (int(part), int(part))
        except ValueError:
            raise InvalidBitsError(
                f"--bits needs whole numbers like 1-8 or 1,2,4; got {text!r}") from None
        if bounds[0] > bounds[1]:
            raise InvalidBitsError(f"bit range {part!r} runs backwards")
        for b in bounds:  # checked before the range is built (1-1000000000)
            if not 1 <= b <= MAX_BITS:
                raise InvalidBitsError(f"bits must be between 1 and {MAX_BITS}, got {b}")
        out.update(range(bounds[0], bounds[1] + 1))
    return sorted(set(out))


def dist_name(args, default="gaussian"):
    """The distribution named by ``--half-wave`` / ``--dist``, else ``default``."""
    dist = getattr(args, "dist", None)
    if getattr(args, "half_wave", False):
        if dist is not None and dist.lower().replace("_", "-") not in (HALFWAVE, "halfwave"):
            raise InvalidInputError("--half-wave and --dist name two different distributions")
        dist = HALFWAVE
    return dist or default


def solve_kwargs(args, default_dist: str = "gaussian") -> dict:
    """Keyword arguments of :func:`lloydmax.solve` from the shared quantizer options."""
    return {
        "dist": dist_name(args, default_dist),
        "params": parse_params(getattr(args, "param", [])),
        "uniform": bool(args.uniform),
        "zero_threshold": args.zero_threshold,
        "sparsity": args.sparsity,
        "tol": args.tol,
    }


def output_format(fmt, output, default: str) -> str:
    """The format to write: --format, else the -o suffix, else ``default``.  A table
    suffix that contradicts --format is an error, not a file that cannot be read back."""
    suffix = output.rsplit(".", 1)[-1].lower() if output and "." in output else ""
    if fmt is None:
        fmt = suffix if suffix in FORMATS else default
    elif suffix in FORMATS and suffix != fmt:
        raise InvalidInputError(f"--format {fmt} does not match the .{suffix} suffix of {output}")
    if fmt == "npz" and not output:
        raise InvalidInputError("npz output is binary: give -o FILE")
    return fmt


# the files the running command reads (set by _run from its arguments): -o may not name
# one of them, which would replace the input by the output
_INPUTS: list[str] = []


def command_inputs(args) -> list[str]:
    """Every existing file named by an argument other than the outputs: what the command
    reads (``analyze X.npz``, ``check FILE``, ``plot --table T``, ``--inputs``, ...)."""
    found = []
    for key, value in vars(args).items():
        if key in _OUTPUT_KEYS:
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, str) and item and "\0" not in item and os.path.isfile(item):
                found.append(item)
    return found


_OUTPUT_KEYS = frozenset({"output", "tables_out"})


def emit(data: bytes, output=None) -> None:
    """``data`` to the file ``output`` (atomically; never over one of the command's own
    inputs nor over a device), or to standard output."""
    if output:
        atomic_write(output, data, inputs=_INPUTS)
        return
    out = sys.stdout
    if out is None:  # started with stdout closed (>&-)
        raise InvalidInputError("standard output is closed; give -o FILE")
    try:
        out.buffer.write(data)
        out.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:  # a full device, an I/O error
        raise InvalidInputError(
            f"cannot write to standard output: {exc.strerror or exc}") from None


def emit_many(directory, files) -> None:
    """``files`` (name, bytes) into ``directory``, each atomically, with one directory
    fsync; the directory is created when missing (:func:`check_output_dir` was called
    before any work)."""
    directory = check_output_dir(directory)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"cannot create {directory}: {exc.strerror or exc}") from None
    atomic_write_many([(os.path.join(directory, name), data) for name, data in files],
                      inputs=_INPUTS)


def check_output_dir(directory) -> str:
    """An output directory that exists and is writable, or that can be created in an
    existing writable parent; checked before a command does its work."""
    directory = os.fspath(directory)
    if os.path.isdir(directory):
        if not os.access(directory, os.W_OK | os.X_OK):
            raise InvalidInputError(f"output directory {directory} is not writable")
        return directory
    if os.path.exists(directory):
        raise InvalidInputError(f"output directory {directory} exists and is not a directory")
    parent = os.path.dirname(os.path.normpath(directory)) or "."
    if not os.path.isdir(parent):
        raise InvalidInputError(f"cannot create output directory {directory}: "
                                f"{parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidInputError(f"cannot create output directory {directory}: "
                                f"{parent} is not writable")
    return directory


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"lloydmax: warning: {message}", file=sys.stderr)


def run(parser: argparse.ArgumentParser, argv=None) -> int:
    """Parse ``argv`` and run the chosen command's handler; returns the exit status.

    Warnings are shown as one line each.  ``--help`` and ``--version`` exit through
    argparse (``SystemExit(0)``), as usual.
    """
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning  # one line, no source excerpt
        return _run(parser, argv)


def _one_line(exc) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _run(parser, argv) -> int:
    try:
        args = parser.parse_args(argv)
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return EXIT_USAGE
        _INPUTS[:] = command_inputs(args)
        if getattr(args, "output", None):  # before any work: not an input, not a device
            check_target(args.output, _INPUTS)
        return handler(args)
    except UsageError as exc:
        _say(f"lloydmax: error: {_one_line(exc)}")
        return EXIT_USAGE
    except ConvergenceError as exc:
        _say(f"lloydmax: {_one_line(exc)}")
        return EXIT_FAILED
    except LloydMaxError as exc:
        _say(f"lloydmax: error: {_one_line(exc)}")
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. piped into head: the reader has what it wanted
        return EXIT_OK
    except OSError as exc:
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        _say(f"lloydmax: error: {exc.strerror or _one_line(exc)}{where}")
        return EXIT_USAGE
    except MemoryError:
        _say("lloydmax: error: out of memory (the options ask for more than this machine has)")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say("lloydmax: interrupted")
        return EXIT_INTERRUPTED
    finally:
        _INPUTS.clear()


def _say(line: str) -> None:
    """One line on stderr; a closed or broken stderr cannot make it a traceback."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        print(line, file=sys.stderr)
        sys.stderr.flush()


def _weight_arrays(path: str) -> dict:
    """{name: array} of a weight file: the one array of an ``.npy``, each of an ``.npz``."""
    import zipfile

    import numpy as np

    base = os.path.basename(path)
    if path.lower().endswith(".onnx"):
        raise InvalidInputError("--block takes a weight array (.npy or .npz), not an ONNX model")
    try:
        if path.lower().endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                arrays = {f"{base}:{k}": np.asarray(z[k]) for k in z.files}
        else:
            arrays = {base: np.load(path, allow_pickle=False)}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InvalidInputError(f"{path}: not a readable .npy/.npz array file "
                                f"({_one_line(exc)})") from None
    for name, arr in arrays.items():
        if arr.dtype.kind not in "fiu":
            raise InvalidInputError(f"{name} holds {arr.dtype} values, not numbers")
    return arrays


def block_tables(args, bits) -> int:
    """``lloydmax analyze WEIGHTS --block B``: each array flattened (C order) and divided
    by the absmax of each block of B consecutive values, as bitsandbytes' blockwise
    quantizers do (a last short block by its own absmax), then the exact optimum
    (:func:`lloydmax.solve_dp` with ``block=B``) per bit-width, printed; ``-o`` writes
    the tables (format from the suffix)."""
    if args.block is None:
        raise InvalidInputError("--pin-levels goes with --block B (weights normalised by "
                                "blocks)")
    for flag, given in (("--per-channel", args.per_channel), ("--convention", args.convention),
                        ("--inputs", args.inputs), ("--tables-out", args.tables_out)):
        if given:
            raise InvalidInputError(f"--block normalises a weight array: drop {flag}")
    from .. import solve_dp  # loads the solver: imported when the command runs

    fmt = output_format(None, args.output, "json") if args.output else None
    tables, text = [], []
    for name, arr in _weight_arrays(args.source).items():
        if args.block > arr.size:
            raise InvalidInputError(f"--block {args.block} is larger than {name}, which "
                                    f"holds {arr.size} values")
        blocks = -(-arr.size // args.block)
        for b in bits:
            table = solve_dp(arr, b, block=args.block, pin_levels=args.pin_levels)
            tables.append(table)
            text.append(f"{name}: {arr.size} values in {blocks} blocks of {args.block}, "
                        f"each divided by its absmax\n{table.to_text()}")
    if fmt is not None:
        emit(encode_tables(tables, fmt), args.output)
    emit("\n".join(text).encode("utf-8"))
    return EXIT_OK


def pin_values(text: str) -> list[float]:
    """argparse ``type`` of ``--pin-levels``: comma-separated numbers."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--pin-levels needs comma-separated numbers (write --pin-levels=-1,0,1), "
            f"got {text!r}") from None
