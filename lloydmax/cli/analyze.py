"""``lloydmax analyze``: histogram real activations and report what each table costs.

The one command that loads :mod:`lloydmax.analysis` (and pandas), lazily in :func:`run`.
"""
from __future__ import annotations

import argparse
import os
import sys

from ..errors import InvalidInputError, MissingDependencyError
from . import _common as C

NAME = "analyze"

EPILOG = """\
examples:
  lloydmax analyze activations.npz                     per-layer report, 1-4 bits
  lloydmax analyze activations.npz --per-channel --bits 2 -o report.csv
  lloydmax analyze model.onnx --inputs batch.npz --tables-out tables/
  lloydmax analyze weights.npy --block 64 --bits 4 --pin-levels=-1,0,1   NF4's setting
"""

CONVENTIONS = ("hwgq", "round", "deadzone")


def register(subparsers):
    """Add ``analyze`` to the top-level subparsers; returns its parser."""
    p = C.add_command(subparsers, NAME,
                      help="histogram real activations and report quantization MSE",
                      description="Collect activation histograms (per layer, optionally per "
                                  "channel) and report how each quantizer table fits them: the "
                                  "unit HWGQ tables times the layer's sigma in each convention, "
                                  "the exact optimum for the data (DP), uniform steps, clipping.",
                      epilog=EPILOG)
    p.add_argument("source", metavar="ACTIVATIONS.npz|.npy|MODEL.onnx",
                   help="saved activations (one array per layer in an .npz) or an ONNX model")
    p.add_argument("--inputs", metavar="X.npz", help="model inputs for an .onnx source")
    p.add_argument("--layers", default="relu",
                   help="ONNX: which outputs to histogram: relu (default), bn, or a name pattern")
    p.add_argument("--bits", metavar="RANGE", default="1-4", help="bit-widths (default 1-4)")
    p.add_argument("--per-channel", action="store_true",
                   help="one row per channel (channels along --axis) instead of per layer")
    p.add_argument("--axis", type=C.integer("--axis", -32, 31), default=1,
                   help="channel axis of the arrays (default 1)")
    p.add_argument("--convention", action="append", choices=CONVENTIONS,
                   help="half-wave conventions to compare (repeatable; default all three)")
    p.add_argument("--bins", type=C.integer("--bins", 2, 1 << 20), default=2048,
                   help="histogram bins (default 2048)")
    p.add_argument("--strict", action="store_true",
                   help="NaN or Inf in the activations is an error (default: counted, "
                        "skipped and warned about)")
    p.add_argument("-o", "--output", metavar="report.csv", help="write the full report as CSV")
    p.add_argument("--tables-out", metavar="DIR",
                   help="write the best table per layer (and channel) as JSON files into DIR")
    p.add_argument("--block", metavar="B", type=C.integer("--block", 2, 1 << 20),
                   help="weights: divide each block of B consecutive values of the flattened "
                        "array (as bitsandbytes does) by its absmax and print the exact "
                        "optimum (DP) of the normalised values; -o writes the tables")
    p.add_argument("--pin-levels", metavar="P0,P1,...", type=C.pin_values,
                   help="with --block: hold these level values (e.g. --pin-levels=-1,0,1)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="one progress bar on stderr over collection and report (default: "
                        "only when stderr is a terminal)")
    p.set_defaults(handler=run)
    return p


def _analysis():
    """The analysis functions this command uses; pandas is what may be missing."""
    try:  # the one place the command line reaches into the analysis package
        from lloydmax.analysis._progress import Progress
        from lloydmax.analysis.collect import collect, planned_units
        from lloydmax.analysis.report import best_tables, report
    except ImportError as exc:
        raise MissingDependencyError(f"lloydmax analyze needs {exc.name}: "
                                     "pip install 'lloydmax[analysis]'") from None
    return collect, report, best_tables, Progress, planned_units


def _collect(args, collect, bar):
    """Histograms of ``args.source``: {layer: Histogram}."""
    axis = args.axis if args.per_channel else None
    if args.source.lower().endswith(".onnx"):
        if not args.inputs:
            raise InvalidInputError("an .onnx model needs --inputs X.npz")
        from lloydmax.analysis.onnx_collect import collect_onnx

        return collect_onnx(args.source, args.inputs, layers=args.layers, n_bins=args.bins,
                            axis=axis, strict=args.strict, progress=bar)
    if args.inputs:
        raise InvalidInputError("--inputs goes with an .onnx model only")
    hists = collect(args.source, axis=axis, n_bins=args.bins, strict=args.strict, progress=bar)
    if not isinstance(hists, dict):
        hists = {os.path.splitext(os.path.basename(args.source))[0]: hists}
    return hists


def _warn_constant(df) -> None:
    import pandas as pd

    for _, row in df[df["std"] == 0].iterrows():
        where = (row["layer"] if pd.isna(row["channel"])
                 else f"{row['layer']} channel {row['channel']}")
        print(f"lloydmax: warning: {where} is constant ({row['min']:g}): no table can be fitted "
              "to it", file=sys.stderr)


def _write_tables(df, bits, directory, best_tables) -> None:
    files = {}  # one atomic write of them all, one directory fsync
    for b in bits:
        for key, table in best_tables(df, b).items():
            name = key if isinstance(key, str) else f"{key[0]}_ch{key[1]}"
            safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name))
            files[f"{safe}_b{b}.json"] = C.encode_tables([table], "json")
    C.emit_many(directory, files.items())
    print(f"wrote {len(files)} tables to {directory}", file=sys.stderr)


def channel_summary(df, bits) -> str:
    """One line per layer for a per-channel report: the channel count, the spread of the
    channels' std, and per bit-width the worst / median / best channel's SQNR of the
    exact optimum (the per-channel rows go to ``-o report.csv``)."""
    rows = []
    for layer, group in df.groupby("layer", sort=False):
        row = {"layer": layer, "channels": len(group), "std_min": group["std"].min(),
               "std_max": group["std"].max(), "sparsity": group["sparsity"].mean()}
        for b in bits:
            c = f"sqnr_b{b}_dp"
            if c in group.columns:
                row[f"b{b}_dp_min"] = group[c].min()
                row[f"b{b}_dp_median"] = group[c].median()
                row[f"b{b}_dp_max"] = group[c].max()
        rows.append(row)
    import pandas as pd

    view = pd.DataFrame(rows)
    return (view.to_string(index=False, float_format=lambda v: f"{v:.4g}") + "\n"
            f"(SQNR in dB of the exact per-channel optimum: worst, median, best channel; "
            f"the {len(df)} channel rows with -o report.csv)\n")


def summary(df, bits) -> str:
    """A terminal-sized view: statistics and, per bit-width, SQNR of the main methods."""
    if df["channel"].notna().any():
        return channel_summary(df, bits)
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


def run(args) -> int:
    bits = tuple(C.parse_bits_list(args.bits))
    if not os.path.exists(args.source):
        raise InvalidInputError(f"file not found: {args.source}")
    if args.block is not None or args.pin_levels is not None:  # weights, not activations
        return C.block_tables(args, bits)
    if args.tables_out:  # before any work: created at the end if it does not exist
        C.check_output_dir(args.tables_out)
    collect, report, best_tables, Progress, planned_units = _analysis()
    # one bar for the job: its arrays (or ONNX batches), then the report's layers or channels
    total = None
    if not args.source.lower().endswith(".onnx"):
        total = planned_units(args.source, args.axis if args.per_channel else None,
                              args.per_channel)
    with Progress(total, "analyze", enabled=args.progress) as bar:
        hists = _collect(args, collect, bar)
        conventions = tuple(args.convention) if args.convention else CONVENTIONS
        df = report(hists, bits=bits, per_channel=args.per_channel, conventions=conventions,
                    progress=bar)
    _warn_constant(df)
    if args.output:
        C.emit(df.to_csv(index=False).encode("utf-8"), args.output)
    C.emit(summary(df, bits).encode("utf-8"))
    if args.tables_out:
        _write_tables(df, bits, args.tables_out, best_tables)
    return C.EXIT_OK
