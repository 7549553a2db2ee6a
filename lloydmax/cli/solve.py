"""``lloydmax solve``: one table, printed as text or written as JSON, CSV or NPZ."""
from __future__ import annotations

import os
import sys
import warnings

from .. import _cache
from .._conventions import resolve_levels
from .._format import MAX_BITS
from ..errors import InvalidBitsError, InvalidInputError
from . import _common as C

NAME = "solve"

EPILOG = """\
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

# The options a preset may declare in Preset.cli_options, in the order they are checked,
# with the error for a preset that does not take them ({name}: the preset, {takers}: the
# presets that do).
_PRESET_OPTIONS = (
    ("uniform", "preset {name} has a fixed kind: drop --uniform/--nonuniform"),
    ("zero_threshold", "--zero-threshold / --sparsity go with --preset {takers} only"),
    ("sparsity", "--zero-threshold / --sparsity go with --preset {takers} only"),
)


def register(subparsers):
    """Add ``solve`` to the top-level subparsers; returns its parser."""
    p = C.add_command(subparsers, NAME, help="solve one table and print it",
                      description="Solve one MSE-optimal quantizer table.", epilog=EPILOG)
    p.add_argument("--bits", metavar="B", help=f"bit-width 1..{MAX_BITS} (2**B levels)")
    p.add_argument("--levels", metavar="N",
                   help="level count instead of --bits, any N >= 2 (3 = ternary)")
    p.add_argument("--preset", metavar="NAME",
                   help=C.LazyHelp(_preset_help))
    C.add_quantizer_options(p)
    p.add_argument("--pin-levels", metavar="P0,P1,...", type=C.pin_values,
                   help="hold these level values (e.g. --pin-levels=-1,0,1); the other levels "
                        "are optimised")
    p.add_argument("--format", choices=("text", *C.FORMATS), default=None,
                   help="output format (default: from the -o suffix .json/.csv/.npz, else text)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write to FILE (atomically) instead of stdout")
    p.add_argument("--no-cache", action="store_true",
                   help="solve afresh: neither read nor write the table cache "
                        "(also off with LLOYDMAX_CACHE=0; docs/cli/solve.md)")
    p.set_defaults(handler=run)
    return p


def _preset_help() -> str:
    from .. import presets  # loads the solver: only when help is shown

    return f"a trainer's activation table: {', '.join(presets.list_presets())} (docs/trainers.md)"


def preset_table(args):
    """The activation table of ``--preset``, with the options the preset declares
    (:attr:`lloydmax.presets.Preset.cli_options`) passed on as keywords."""
    if args.dist or args.half_wave:
        raise InvalidInputError("--preset fixes the distribution: drop --dist / --half-wave")
    from .. import presets

    preset = presets.get_preset(args.preset)
    params = C.parse_params(args.param)
    unknown = sorted(set(params) - {"std"})
    if unknown:
        raise InvalidInputError(f"--preset takes only --param std=S; unknown: {', '.join(unknown)}")
    options = {"std": params.get("std", 1.0)}
    declared = dict(preset.cli_options)
    for dest, message in _PRESET_OPTIONS:
        value = getattr(args, dest)
        if value is None:
            continue
        if dest not in declared:
            takers = " / ".join(n for n in presets.list_presets()
                                if dest in dict(presets.get_preset(n).cli_options))
            raise InvalidInputError(message.format(name=preset.name, takers=takers))
        options[declared[dest]] = value
    if args.levels is not None:
        raise InvalidInputError("--preset takes --bits, not --levels")
    bits, _ = resolve_levels(args.bits)
    return preset.activation_table(bits, **options)


def _request(args) -> dict:
    """Every option that shapes the table, as the cache key's request."""
    return {"command": NAME, "bits": args.bits, "levels": args.levels, "preset": args.preset,
            "dist": C.dist_name(args) if not args.preset else args.dist,
            "half_wave": bool(args.half_wave), "params": C.parse_params(args.param),
            "uniform": args.uniform, "zero_threshold": args.zero_threshold,
            "sparsity": args.sparsity, "tol": args.tol,
            "pin_levels": None if args.pin_levels is None else list(args.pin_levels)}


def _encode(table, fmt: str) -> bytes:
    if fmt == "text":
        return table.to_text().encode("utf-8")
    return C.encode_tables([table], fmt)


def _cacheable(table, fmt: str) -> bool:
    """Only a converged table whose cached copy gives the same bytes is stored."""
    try:
        copy = _cache.CachedTable(table.to_dict())
        return bool(table.converged) and all(
            _encode(copy, f) == _encode(table, f) for f in {"text", "json", fmt})
    except Exception:  # then it is just not cached
        return False


def _solve(args):
    if args.preset:
        if args.pin_levels is not None:
            raise InvalidInputError("--preset fixes the table: drop --pin-levels")
        return preset_table(args)
    from .. import solve

    return solve(args.bits, n_levels=args.levels, pin_levels=args.pin_levels,
                 **C.solve_kwargs(args))


def run(args) -> int:
    if args.bits is None and args.levels is None:
        raise InvalidBitsError("give --bits B or --levels N")
    fmt = C.output_format(args.format, args.output, "text")
    key = None
    if _cache.enabled(args.no_cache):
        key = _cache.request_key(_request(args))
        cached = _cache.load(key)
        if os.environ.get("LLOYDMAX_CACHE_DEBUG"):
            print(f"lloydmax: cache {'hit' if cached else 'miss'} {key}", file=sys.stderr)
        if cached is not None:
            C.emit(_encode(cached, fmt), args.output)
            return C.EXIT_OK
    with warnings.catch_warnings(record=True) as said:  # shown below, after the solve
        table = _solve(args)
    for w in said:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    data = _encode(table, fmt)
    if key is not None and not said and _cacheable(table, fmt):
        _cache.store(key, table.to_dict())
    C.emit(data, args.output)
    return C.EXIT_OK
