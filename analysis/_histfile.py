"""The ``lloydmax.histogram/2`` format: the exact state of a histogram as a dict, ``.json``
or ``.npz`` file.  The on-disk format is a contract: a saved file loads to the very same
histogram (``==``, and the same bytes when saved again).

Format ``/1`` also stored $S_3$ and $S_4$ (four ``sums`` per channel in JSON, 682 limbs per
channel in NPZ, $S_1$ and $S_2$ first in the same layout).  Skewness and kurtosis now come
from the bins, so ``/1`` files load with those two sums dropped: the same histogram as one
built from the same data today.

A histogram's state is five arrays with one row per channel (:class:`HistogramArrays`):
bin ``counts``, the ``grid`` $(e, k_0)$, the range ``lohi`` of the finite non-zero values,
the ``stats`` (NaN, Inf and zero counts) and the superaccumulator ``limbs``
(:mod:`lloydmax.analysis._exactsum`).

* dict / JSON (:func:`to_dict`): ``schema``, ``n_bins``, ``axis``, ``strict``,
  ``n_channels`` and per channel ``nan_count``, ``inf_count``, ``zeros``, ``lo``, ``hi``
  (null without a grid), ``exponent``, ``k0``, the non-zero stretch of the counts
  (``first_bin``, ``counts``) and the two ``sums`` ($S_1$, $S_2$), each
  ``{exponent, negative, limbs}`` with the magnitude in base-2^32 digits, least significant
  first -- all exact integers.
* NPZ (:func:`encode_npz`): ``meta`` (the JSON of the scalar fields) and the five arrays
  as int64 / float64 ``.npy`` members, stored uncompressed with fixed timestamps, so the
  same histogram always gives the same bytes.

Reading checks that the stored grid is the canonical grid of the stored range.
"""
from __future__ import annotations

import io
import json
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lloydmax._files import atomic_write
from lloydmax._format import MAX_FILE_BYTES, decode_json, dumps_json
from lloydmax._inputs import as_path
from lloydmax.errors import InvalidInputError, InvalidTableError

from ._exactsum import (
    BASE_EXP,
    LEGACY_TOTAL_LIMBS,
    LIMB_BITS,
    N_LIMBS,
    N_POWERS,
    OFFSETS,
    TOTAL_LIMBS,
    int_to_limbs,
    limbs_to_int,
)
from ._grid import canonical_grid
from ._kernels import COL_INF, COL_NAN, COL_ZERO

__all__ = ["SCHEMA", "HistogramArrays", "encode_npz", "from_dict", "load", "save", "to_dict"]

SCHEMA = "lloydmax.histogram/2"
LEGACY_SCHEMA = "lloydmax.histogram/1"  # with S3, S4: loads, the two dropped
_SCHEMAS = (SCHEMA, LEGACY_SCHEMA)


class HistogramArrays(NamedTuple):
    """The exact state of a histogram, one row per channel (field order: the NPZ's)."""

    counts: np.ndarray  #: (n_channels, n_bins) int64
    grid: np.ndarray  #: (n_channels, 2) int64 (e, k0); (0, 0) without a range
    lohi: np.ndarray  #: (n_channels, 2) float64; (+inf, -inf) without a range
    stats: np.ndarray  #: (n_channels, 3) int64: NaN, Inf, zero counts (_kernels.COL_*)
    limbs: np.ndarray  #: (n_channels, TOTAL_LIMBS) int64

    @classmethod
    def empty(cls, n_channels: int, n_bins: int) -> HistogramArrays:
        """The state of ``n_channels`` channels that have seen nothing."""
        lohi = np.empty((n_channels, 2), dtype=np.float64)
        lohi[:, 0] = np.inf
        lohi[:, 1] = -np.inf
        return cls(np.zeros((n_channels, n_bins), dtype=np.int64),
                   np.zeros((n_channels, 2), dtype=np.int64), lohi,
                   np.zeros((n_channels, 3), dtype=np.int64),
                   np.zeros((n_channels, TOTAL_LIMBS), dtype=np.int64))


def _meta(hist) -> dict:
    return {"schema": SCHEMA, "n_bins": hist.n_bins, "axis": hist.axis,
            "strict": hist.strict, "n_channels": hist.n_channels}


def to_dict(hist) -> dict:
    """JSON-able exact state: counts and limbs as integers, min/max as floats."""
    a = hist.arrays()
    channels = []
    for c in range(a.counts.shape[0]):
        counts = a.counts[c]
        nz = np.flatnonzero(counts)
        first = int(nz[0]) if nz.size else 0
        last = int(nz[-1]) + 1 if nz.size else 0
        sums = []
        for k in range(N_POWERS):
            value = limbs_to_int(a.limbs[c, OFFSETS[k]:OFFSETS[k + 1]])
            sums.append({"exponent": BASE_EXP[k], "negative": value < 0,
                         "limbs": _magnitude_limbs(abs(value))})
        binned = bool(a.lohi[c, 0] <= a.lohi[c, 1])
        channels.append({
            "nan_count": int(a.stats[c, COL_NAN]), "inf_count": int(a.stats[c, COL_INF]),
            "zeros": int(a.stats[c, COL_ZERO]),
            "lo": float(a.lohi[c, 0]) if binned else None,
            "hi": float(a.lohi[c, 1]) if binned else None,
            "exponent": int(a.grid[c, 0]), "k0": int(a.grid[c, 1]),
            "first_bin": first, "counts": [int(v) for v in counts[first:last]],
            "sums": sums})
    return dict(_meta(hist), channels=channels)


def from_dict(cls, d: dict):
    """Inverse of :func:`to_dict` (exact): a new ``cls`` (a Histogram class)."""
    try:
        if d.get("schema") not in _SCHEMAS:
            raise InvalidInputError(f"not a {SCHEMA} (or /1) object")
        n_sums = N_POWERS if d["schema"] == SCHEMA else 4
        hist = cls(n_bins=d["n_bins"], axis=d["axis"], strict=bool(d.get("strict", False)))
        chans = d["channels"]
        if d["n_channels"] is None:
            if chans:
                raise InvalidInputError("channels given but n_channels is null")
            return hist
        if len(chans) != d["n_channels"]:
            raise InvalidInputError("n_channels does not match the channel list")
        n_bins = hist.n_bins
        a = HistogramArrays.empty(len(chans), n_bins)
        for c, ch in enumerate(chans):
            a.stats[c] = (int(ch["nan_count"]), int(ch["inf_count"]), int(ch["zeros"]))
            counts = [int(v) for v in ch["counts"]]
            first = int(ch["first_bin"])
            if first < 0 or first + len(counts) > n_bins or min(counts, default=0) < 0:
                raise InvalidInputError("bin counts out of range")
            a.counts[c, first:first + len(counts)] = counts
            if ch["lo"] is not None:
                lo, hi = float(ch["lo"]), float(ch["hi"])
                e, k0 = canonical_grid(lo, hi, n_bins)
                if (e, k0) != (int(ch["exponent"]), int(ch["k0"])):
                    raise InvalidInputError("bin grid does not match min/max")
                a.grid[c] = (e, k0)
                a.lohi[c] = (lo, hi)
            elif counts and any(counts):
                raise InvalidInputError("bin counts without a grid")
            if len(ch["sums"]) != n_sums:
                raise InvalidInputError(f"expected {n_sums} power sums per channel")
            for k, s in enumerate(ch["sums"][:N_POWERS]):
                if int(s["exponent"]) != BASE_EXP[k]:
                    raise InvalidInputError("unexpected superaccumulator exponent")
                value = 0
                for limb in reversed(s["limbs"]):
                    value = (value << LIMB_BITS) + int(limb)
                if s["negative"]:
                    value = -value
                a.limbs[c, OFFSETS[k]:OFFSETS[k + 1]] = int_to_limbs(value, N_LIMBS[k])
        hist.restore(a)
        return hist
    except InvalidInputError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
        raise InvalidInputError(f"malformed histogram dictionary ({type(exc).__name__}: "
                                f"{exc})") from None


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".json", ".npz"):
        raise InvalidInputError(f"unsupported histogram file {path.name!r}; use .json or .npz")
    return suffix


def save(hist, path) -> None:
    """Write atomically to ``.json`` (exact integers) or ``.npz`` (int64 arrays)."""
    path = as_path(path, "histogram file path")
    if _suffix(path) == ".json":
        atomic_write(path, dumps_json(to_dict(hist)).encode("ascii"))
    else:
        atomic_write(path, encode_npz(hist))


def encode_npz(hist) -> bytes:
    """The ``.npz`` bytes of ``hist`` (deterministic: stored members, fixed timestamps)."""
    arrays = {"meta": np.array(json.dumps(_meta(hist))), **hist.arrays()._asdict()}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            body = io.BytesIO()
            np.lib.format.write_array(body, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, body.getvalue())
    return buf.getvalue()


def load(cls, path):
    """Read a histogram written by :func:`save` into a new ``cls`` (a Histogram class)."""
    path = as_path(path, "histogram file path")
    suffix = _suffix(path)
    if not path.is_file():
        raise InvalidInputError(f"histogram file not found: {path}")
    if path.stat().st_size > MAX_FILE_BYTES << 4:  # 1 GiB: counts of many channels
        raise InvalidInputError(f"{path} is larger than {MAX_FILE_BYTES >> 16} GiB: "
                                "not a histogram file")
    if suffix == ".json":
        try:  # the table format's JSON limits: depth, number size, no NaN literals
            return from_dict(cls, decode_json(path.read_bytes()))
        except InvalidTableError as exc:
            raise InvalidInputError(f"{path}: not a histogram file ({exc})") from None
        except OSError as exc:
            raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = decode_json(str(z["meta"].reshape(-1)[0]))
            stored = {k: z[k] for k in HistogramArrays._fields}
    except (OSError, KeyError, ValueError, IndexError, EOFError, zipfile.BadZipFile,
            zlib.error) as exc:
        raise InvalidInputError(f"{path}: not a histogram archive "
                                f"({' '.join(str(exc).split())})") from None
    if not isinstance(meta, dict) or meta.get("schema") not in _SCHEMAS:
        raise InvalidInputError(f"{path}: not a {SCHEMA} (or /1) archive")
    try:
        return _from_arrays(cls, path, meta, stored)
    except InvalidInputError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError,
            OverflowError) as exc:
        raise InvalidInputError(f"{path}: malformed histogram archive "
                                f"({type(exc).__name__}: {exc})") from None


def _from_arrays(cls, path, meta: dict, stored: dict):
    hist = cls(n_bins=meta["n_bins"], axis=meta["axis"], strict=meta.get("strict", False))
    if meta["n_channels"] is None:
        return hist
    n_ch, n_bins = int(meta["n_channels"]), hist.n_bins
    n_limbs = TOTAL_LIMBS if meta["schema"] == SCHEMA else LEGACY_TOTAL_LIMBS
    shapes = {"counts": (n_ch, n_bins), "grid": (n_ch, 2), "lohi": (n_ch, 2),
              "stats": (n_ch, 3), "limbs": (n_ch, n_limbs)}
    for name, shape in shapes.items():
        if stored[name].shape != shape:
            raise InvalidInputError(f"{path}: array {name} has shape {stored[name].shape}, "
                                    f"expected {shape}")
    a = HistogramArrays.empty(n_ch, n_bins)
    for name in ("counts", "stats", "limbs", "lohi"):  # cast into int64 / float64 in place
        getattr(a, name)[:] = stored[name][:, :TOTAL_LIMBS] if name == "limbs" else stored[name]
    for c in range(n_ch):
        if a.lohi[c, 0] <= a.lohi[c, 1]:
            e, k0 = canonical_grid(float(a.lohi[c, 0]), float(a.lohi[c, 1]), n_bins)
            if (e, k0) != tuple(int(v) for v in stored["grid"][c]):
                raise InvalidInputError(f"{path}: bin grid of channel {c} does not match")
            a.grid[c] = (e, k0)
    hist.restore(a)
    return hist


def _magnitude_limbs(value: int) -> list[int]:
    """Base-2^32 digits of a non-negative integer, least significant first, trimmed."""
    mask = (1 << LIMB_BITS) - 1
    out = []
    while value:
        out.append(value & mask)
        value >>= LIMB_BITS
    return out
