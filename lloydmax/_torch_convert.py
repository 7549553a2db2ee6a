"""``lloydmax.torch.convert``: swap a network's ReLUs for table quantizers (and optionally
its Conv2d / Linear for binary or ternary weight layers) in one call.  Part of
:mod:`lloydmax.torch`, which re-exports :func:`convert` and :class:`ConversionSummary`."""
from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from torch import nn

from ._torch_channels import ChannelQuantizer
from ._torch_layers import activation_types_in, is_relu, keyword_predicate, relu_clip
from ._torch_lookup import BACKWARDS, HalfWaveQuantizer
from ._torch_tables import read_table
from ._torch_weights import QuantConv2d, QuantLinear, _check_weight_mode
from .errors import InvalidInputError, InvalidTableError

__all__ = ["ConversionSummary", "ReplacedLayer", "convert", "onnx_metadata"]


@dataclass(frozen=True)
class ReplacedLayer:
    """One module :func:`convert` replaced (or kept, with the reason in ``note``)."""

    name: str
    original: str
    replacement: str
    scale: float | None = None
    q_max: float | None = None
    clip: float | None = None
    note: str = ""


@dataclass(frozen=True)
class ConversionSummary:
    """What :func:`convert` did, one row per module it looked at."""

    layers: tuple[ReplacedLayer, ...]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    @property
    def replaced(self) -> list[str]:
        """Names of the modules that were replaced."""
        return [row.name for row in self.layers if row.replacement != row.original]

    @property
    def warnings(self) -> list[str]:
        """``"name: note"`` for every row with a note (e.g. a top level above a clip)."""
        return [f"{row.name}: {row.note}" for row in self.layers if row.note]

    def __str__(self) -> str:
        lines = [f"{'layer':<24} {'was':<12} {'now':<18} {'scale':>9} {'q_max':>9}  note"]
        for row in self.layers:
            scale = "" if row.scale is None else f"{row.scale:.4g}"
            q_max = "" if row.q_max is None else f"{row.q_max:.4g}"
            lines.append(f"{row.name:<24} {row.original:<12} {row.replacement:<18} "
                         f"{scale:>9} {q_max:>9}  {row.note}".rstrip())
        return "\n".join(lines)


# ---------------------------------------------------------------------- selection


def _select(model, layers):
    if isinstance(layers, str) and layers in ("relu", "activation"):
        predicate = keyword_predicate(layers)
        chosen = [(n, m) for n, m in model.named_modules() if n and predicate(m)]
    elif isinstance(layers, type):
        chosen = [(n, m) for n, m in model.named_modules() if n and isinstance(m, layers)]
    elif callable(layers):
        chosen = [(n, m) for n, m in model.named_modules() if n and layers(n, m)]
    elif isinstance(layers, (list, tuple, set)) and all(isinstance(x, str) for x in layers):
        modules = dict(model.named_modules())
        unknown = [n for n in layers if n not in modules]
        if unknown:
            raise InvalidInputError(f"no module named {', '.join(map(repr, unknown))} in "
                                    "the model")
        chosen = [(n, modules[n]) for n in layers]
    else:
        raise InvalidInputError("layers must be 'relu', 'activation', a module type, a list "
                                f"of module names or a callable(name, module), got {layers!r}")
    if not chosen:
        found = activation_types_in(model)
        hint = (f"; its activation modules are {', '.join(found)}" if found else
                "; a ReLU called as F.relu in forward is no module and cannot be swapped: "
                "use nn.ReLU modules")
        raise InvalidInputError(f"layers={layers!r} selects no module of the model{hint}")
    return chosen


def _set_module(model, name, new):
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


# ---------------------------------------------------------------------- tables


def _is_single_table(tables) -> bool:
    if hasattr(tables, "to_dict") and callable(tables.to_dict):
        return True
    if isinstance(tables, Mapping):
        return "levels" in tables or "schema" in tables
    return isinstance(tables, (str, os.PathLike))


def _missing(value) -> bool:
    """None, NaN or pandas.NA (whose truth value raises)."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:
        return True


def _scales(scale) -> dict | None:
    """name -> sigma from a mapping or from a report DataFrame's ``layer`` / ``sigma``
    columns (per-layer rows: ``channel`` missing)."""
    if scale is None:
        return None
    if hasattr(scale, "columns"):
        if "layer" not in scale.columns or "sigma" not in scale.columns:
            raise InvalidInputError("scale= as a DataFrame needs the report's 'layer' and "
                                    "'sigma' columns")
        channels = scale["channel"] if "channel" in scale.columns else [None] * len(scale)
        out = {}
        for layer, sigma, ch in zip(scale["layer"], scale["sigma"], channels):
            if _missing(ch):
                out[str(layer)] = float(sigma)
        if not out:
            raise InvalidInputError("scale= report has no per-layer rows (report it without "
                                    "per_channel)")
        return out
    if isinstance(scale, Mapping):
        return {str(k): float(v) for k, v in scale.items()}
    raise InvalidInputError(f"scale must be a mapping name -> sigma or a report DataFrame, "
                            f"got {type(scale).__name__}")


def _scaled(table: dict, sigma: float) -> dict:
    if not (math.isfinite(sigma) and sigma > 0.0):
        raise InvalidInputError(f"a layer's sigma must be positive and finite, got {sigma!r}")
    return {"levels": [v * sigma for v in table["levels"]],
            "thresholds": [v * sigma for v in table["thresholds"]],
            "convention": table.get("convention", "none")}


def _group_channels(tables) -> dict:
    """``{(layer, channel): table}`` (a per-channel ``best_tables``) -> ``{layer: [table
    per channel]}``, every channel 0..C-1 present."""
    grouped: dict = {}
    for key, table in tables.items():
        if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[1], int)):
            raise InvalidInputError(f"per-channel table keys are (layer, channel), got "
                                    f"{key!r}")
        grouped.setdefault(key[0], {})[key[1]] = table
    out = {}
    for layer, channels in grouped.items():
        if sorted(channels) != list(range(len(channels))):
            raise InvalidInputError(f"layer {layer!r}: per-channel tables for channels "
                                    f"{sorted(channels)}, not 0..{len(channels) - 1}")
        out[layer] = [channels[c] for c in range(len(channels))]
    return out


def _resolver(tables, names, scale):
    """``f(name) -> (table dict or None, sigma or None)`` for the selected names."""
    sigmas = _scales(scale)
    if isinstance(tables, tuple) and len(tables) == 2 and isinstance(tables[0], str):
        from .presets import get_preset  # the solver only for this form

        preset_name, bits = tables
        tables = get_preset(preset_name).activation_table(bits)
    if _is_single_table(tables):
        unit = read_table(tables)
        if sigmas is not None:
            missing = [n for n in names if n not in sigmas]
            if missing:
                raise InvalidInputError(
                    f"scale= has no sigma for {', '.join(missing[:5])}"
                    f"{', ...' if len(missing) > 5 else ''} (it has: "
                    f"{', '.join(list(sigmas)[:8])})")
        return lambda name: ((unit, None) if sigmas is None else
                             (_scaled(unit, sigmas[name]), sigmas[name]))
    if isinstance(tables, Mapping):
        if sigmas is not None:
            raise InvalidInputError("scale= goes with one unit-variance table; a mapping of "
                                    "tables is used as it is")
        if any(isinstance(k, tuple) for k in tables):
            tables = _group_channels(tables)
        unknown = [k for k in tables if k not in names]
        if unknown:
            raise InvalidInputError(
                f"tables name layers that layers= does not select: "
                f"{', '.join(map(repr, unknown[:5]))} (selected: {', '.join(names[:8])})")
        return lambda name: ((None, None) if name not in tables else
                             (tables[name], None) if isinstance(tables[name], list) else
                             (read_table(tables[name]), None))
    raise InvalidTableError("tables must be a table (path, mapping or QuantizerTable), a "
                            "mapping name -> table, or a (preset, bits) pair, got "
                            f"{type(tables).__name__}")


# ---------------------------------------------------------------------- weights


_WEIGHT_OPTIONS = {"mode", "threshold", "bits", "group", "layers"}


def _weight_spec(weights):
    """``(mode, threshold, bits, group, layers)`` from ``weights=``: a name (``"binary"``,
    ``"ternary"``, ``"uniform4"``, ``"edmips2"``: the digits are the bits) or a mapping
    with ``mode`` and optional ``threshold``, ``bits``, ``group`` and ``layers``."""
    if isinstance(weights, str):
        stem = weights.rstrip("0123456789")
        weights = ({"mode": stem, "bits": int(weights[len(stem):])}
                   if stem != weights and stem in ("uniform", "edmips", "syq") else
                   {"mode": weights})
    if not isinstance(weights, Mapping) or "mode" not in weights:
        raise InvalidInputError("weights must be 'binary', 'ternary', 'uniform<bits>', "
                                "'edmips<bits>' or a mapping with 'mode' (and 'threshold', "
                                f"'bits', 'group', 'layers'), got {weights!r}")
    unknown = set(weights) - _WEIGHT_OPTIONS
    if unknown:
        raise InvalidInputError(f"unknown weights option(s) {', '.join(sorted(unknown))}")
    mode, threshold = weights["mode"], weights.get("threshold", "twn")
    bits, group = weights.get("bits"), weights.get("group", "channel")
    if mode in ("uniform", "edmips", "syq") and bits is None:
        raise InvalidInputError(f"weights mode {mode!r} needs bits, e.g. '{mode}4' or "
                                f"{{'mode': '{mode}', 'bits': 4}}")
    _check_weight_mode(mode, threshold, bits, group)
    return mode, threshold, bits, group, weights.get("layers")


def _weight_layers(model, chosen_names):
    candidates = [(n, m) for n, m in model.named_modules()
                  if type(m) in (nn.Conv2d, nn.Linear)]
    if chosen_names is not None:
        modules = dict(candidates)
        unknown = [n for n in chosen_names if n not in modules]
        if unknown:
            raise InvalidInputError(f"weights layers {', '.join(map(repr, unknown))} are not "
                                    "Conv2d / Linear modules of the model")
        return [(n, modules[n]) for n in chosen_names]
    convs = [n for n, m in candidates if isinstance(m, nn.Conv2d)]
    linears = [n for n, m in candidates if isinstance(m, nn.Linear)]
    # the first convolution and the last classifier stay full precision (XNOR-Net, HWGQ)
    keep = set(convs[:1]) | set(linears[-1:])
    return [(n, m) for n, m in candidates if n not in keep]


def _quant_weight_module(module, mode, threshold, bits=None, group="channel"):
    weight = module.weight
    factory = {"device": weight.device, "dtype": weight.dtype, "bits": bits, "group": group}
    if isinstance(module, nn.Conv2d):
        new = QuantConv2d(module.in_channels, module.out_channels, module.kernel_size,
                          weight=mode, threshold=threshold, stride=module.stride,
                          padding=module.padding, dilation=module.dilation,
                          groups=module.groups, bias=module.bias is not None,
                          padding_mode=module.padding_mode, **factory)
    else:
        new = QuantLinear(module.in_features, module.out_features, weight=mode,
                          threshold=threshold, bias=module.bias is not None, **factory)
    new.weight = module.weight  # the same Parameter: an optimizer keeps working
    new.bias = module.bias
    if mode == "syq":
        new.reset_syq_scales()
    new.train(module.training)
    return new


# ---------------------------------------------------------------------- convert


def convert(model, tables, *, layers="relu", weights=None, backward: str = "clipped",
            inplace: bool = False, scale=None):
    """Replace a network's ReLUs with :class:`~lloydmax.torch.HalfWaveQuantizer` modules.

    Parameters
    ----------
    model : torch.nn.Module
    tables : table, mapping name -> table, or (preset, bits)
        * one table (path, mapping or :class:`lloydmax.QuantizerTable`) for unit-variance
          input, used for every layer; with ``scale`` it is scaled per layer by that
          layer's sigma (levels and thresholds times sigma);
        * a mapping module name -> table in the layer's own units, e.g.
          ``lloydmax.analysis.best_tables(report, bits)``; selected layers without a
          table are kept (and listed in the summary);
        * ``(preset, bits)``, e.g. ``("hwgq", 2)``: the trainer preset's activation table
          (:func:`lloydmax.presets.get_preset`), scaled like one table.
    layers : "relu", "activation", type, list of names or callable(name, module)
        Modules to replace.  ``"relu"``: ``nn.ReLU``, ``nn.ReLU6`` and
        ``nn.Hardtanh(min_val=0)``.
    weights : None, "binary", "ternary", "uniform<b>", "edmips<b>" or mapping
        Also replace ``nn.Conv2d`` / ``nn.Linear`` with :class:`QuantConv2d` /
        :class:`QuantLinear` (straight-through gradient): ``"binary"`` (XNOR alpha),
        ``"ternary"`` (TWN threshold), ``"uniform4"`` (4-bit symmetric uniform with the
        exact MSE-optimal step), ``"edmips2"`` (EdMIPS's rule, whole-tensor std),
        ``"syq2"`` / ``"syq1"`` (SYQ's code, ternary / binary mode, with learned
        per-pixel scales: create the optimizer after converting); or a
        mapping ``{"mode": ..., "threshold": "twn"|"optimal"|float, "bits": b,
        "group": "channel"|"pixel"|"layer", "layers": [names]}``.  Scales are per output
        channel unless ``group`` says otherwise (``"pixel"``: SYQ's subgroups).
        By default every Conv2d and Linear except the first convolution and the last
        Linear (kept full precision as in XNOR-Net and HWGQ).
    backward : {"clipped", "vanilla", "log-tailed"}
        The quantizers' backward (HWGQ eqs. 11-14).
    inplace : bool
        Modify ``model`` itself; by default a deep copy is converted.
    scale : mapping name -> sigma or report DataFrame, optional
        The per-layer sigma for one table: a :func:`lloydmax.analysis.report` result (its
        ``layer`` and ``sigma`` columns) or a plain mapping.

    Returns
    -------
    (torch.nn.Module, ConversionSummary)
        The converted model and one row per module looked at.  A ReLU6 (or
        ``Hardtanh(0, c)``) keeps its clip when the table's top level is at most ``c``
        (no output exceeds ``q_max``); a table whose top level exceeds the clip is used
        as it is and the row's ``note`` says so.
    """
    if not isinstance(model, nn.Module):
        raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if backward not in BACKWARDS:
        raise InvalidInputError(
            f"unknown backward {backward!r}; valid names: {', '.join(BACKWARDS)}")
    spec = None if weights is None else _weight_spec(weights)
    chosen = _select(model, layers)
    resolve = _resolver(tables, [n for n, _ in chosen], scale)
    if not inplace:
        model = copy.deepcopy(model)
        chosen = [(n, model.get_submodule(n)) for n, _ in chosen]
    rows = []
    for name, module in chosen:
        table, sigma = resolve(name)
        kind = type(module).__name__
        if table is None:
            rows.append(ReplacedLayer(name, kind, kind, note="no table: kept"))
            continue
        if isinstance(table, list):
            quantizer = ChannelQuantizer(table, "vanilla" if backward == "vanilla" else
                                         "clipped")
        else:
            quantizer = HalfWaveQuantizer(table, backward)
        quantizer.to(device=next(iter(model.buffers()), next(iter(model.parameters()),
                                                              quantizer.levels)).device)
        q_max = float(quantizer.levels[..., -1].max())
        clip = relu_clip(module) if is_relu(module) else None
        note = ""
        if clip is not None and math.isfinite(clip) and q_max > clip:
            note = (f"top level {q_max:.4g} exceeds the {kind} clip {clip:g}: "
                    "the table's levels are used")
        _set_module(model, name, quantizer)
        rows.append(ReplacedLayer(name, kind, type(quantizer).__name__, sigma, q_max,
                                  clip, note))
    if spec is not None:
        mode, threshold, bits, group, names = spec
        label = f"{mode}{bits} weights" if bits is not None else f"{mode} weights"
        for name, module in _weight_layers(model, names):
            new = _quant_weight_module(module, mode, threshold, bits, group)
            _set_module(model, name, new)
            rows.append(ReplacedLayer(name, type(module).__name__, type(new).__name__,
                                      note=label))
    return model, ConversionSummary(tuple(rows))


def onnx_metadata(model) -> dict[str, str]:
    """The tables of a model's quantizers as ONNX model metadata.

    Returns ``{"lloydmax.tables": json}`` where the JSON maps each
    :class:`HalfWaveQuantizer`'s module name to its float64 ``levels`` and
    ``thresholds``, the float32 boundaries ``bounds32`` (``RD32(thresholds)``, what the
    exported graph compares against) and the ``convention``.  Attach it to an exported
    file with ``onnx.helper.set_model_props(proto, lt.onnx_metadata(qmodel))``; a runtime
    then reads the codebook of every layer without parsing the graph.
    """
    tables = {}
    for name, module in model.named_modules():
        if isinstance(module, HalfWaveQuantizer):
            tables[name] = {"levels": module.levels.tolist(),
                            "thresholds": module.thresholds.tolist(),
                            "bounds32": module.bounds32.tolist(),
                            "convention": module.convention}
    return {"lloydmax.tables": json.dumps(tables)}
