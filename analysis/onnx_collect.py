"""Collect real activations from an ONNX model with ONNX Runtime.

ONNX Runtime only returns graph outputs, so the collector copies the model, appends the
selected intermediate tensors to ``graph.output`` (their element types from
``onnx.shape_inference.infer_shapes``, float when unknown), and runs the copy with the
CPU execution provider.  As in :mod:`lloydmax.analysis.torch_collect`, :func:`iter_onnx_activations`
only yields ``(name, float32 array)`` pairs and :func:`collect_onnx` feeds them to histograms.

Exporters fold BatchNorm into the preceding convolution (``torch.onnx.export`` does so by
default), so a model often has no ``BatchNormalization`` node left.  The pre-activation
is then the *input* of each ``Relu``: use ``where="input"``.

Only nodes of the main graph are visible (not those inside ``If``/``Loop`` bodies).
onnx and onnxruntime are imported lazily.
"""
from __future__ import annotations

import ast
import fnmatch
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from lloydmax.errors import InvalidInputError, MissingDependencyError

from ._progress import phase
from .collect import histograms_from

__all__ = ["collect_onnx", "iter_onnx_activations", "load_onnx_model", "select_nodes"]

_KEYWORDS = {"relu": "Relu", "bn": "BatchNormalization", "activation": None}
# element-wise activation op types of the ONNX standard ("activation" selects them all)
_ACTIVATION_OPS = {"Relu", "Clip", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu",
                   "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Softplus", "Softsign",
                   "Mish", "ThresholdedRelu", "Swish"}


def _import_onnx():
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise MissingDependencyError(
            "collecting ONNX activations needs onnx and onnxruntime: "
            "pip install 'lloydmax[onnx]'") from None
    return onnx, onnxruntime


def _one_line(exc) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def load_onnx_model(model):
    """Return a private ``onnx.ModelProto`` copy of a path, bytes or ``ModelProto``.

    Raises
    ------
    InvalidInputError
        Missing file, or bytes that are not an ONNX model.
    """
    onnx, _ = _import_onnx()
    if isinstance(model, onnx.ModelProto):
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        return copy
    if isinstance(model, (bytes, bytearray, memoryview)):
        try:
            return _with_graph(onnx.load_from_string(bytes(model)), "bytes")
        except InvalidInputError:
            raise
        except Exception as exc:  # protobuf DecodeError and friends
            raise InvalidInputError(f"bytes are not an ONNX model ({_one_line(exc)})") from None
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        if not path.is_file():
            raise InvalidInputError(f"ONNX model file not found: {path}")
        try:
            return _with_graph(onnx.load(str(path)), str(path))
        except InvalidInputError:
            raise
        except Exception as exc:
            raise InvalidInputError(f"cannot read ONNX model {path} ({_one_line(exc)})") from None
    raise InvalidInputError(
        f"model must be a path, bytes or onnx.ModelProto, got {type(model).__name__}")


def _with_graph(proto, what: str):
    """An empty (or all-zero) file parses as an empty ModelProto: say so, rather than
    letting node selection report that the layer pattern selects nothing."""
    if not proto.graph.node:
        size = f" ({os.path.getsize(what)} bytes)" if os.path.isfile(what) else ""
        raise InvalidInputError(f"{what}{size} is not an ONNX model: it holds no graph nodes "
                                "(an empty or truncated file?)")
    return proto


# ------------------------------------------------------------------ node selection


def select_nodes(model, layers="relu", where: str = "output") -> list[tuple[str, str]]:
    """The ``(key, tensor_name)`` pairs that ``layers`` selects in the main graph.

    Parameters
    ----------
    model : onnx.ModelProto
    layers : str, sequence of str, or callable
        * ``"relu"``: ``Relu`` nodes and ``Clip`` nodes whose min is the constant 0
          (a ``ReLU6`` exports as ``Clip(x, 0, 6)``); ``"bn"``: ``BatchNormalization``
          nodes; ``"activation"``: every element-wise activation op (``Relu``, ``Clip``,
          ``Sigmoid``, ``HardSwish``, ...);
        * a string equal to an op type present in the graph (``"Conv"``, ``"Clip"``);
        * any other string: a :mod:`fnmatch` glob on node names and node output names;
        * a sequence mixing these (their union), or a callable ``f(node) -> bool``.
    where : {"output", "input"}
        Take the node's first output, or its first input (the pre-activation of a ``Relu``).

    Returns
    -------
    list of (str, str)
        In graph (topological) order.  The key is the PyTorch module path the node came
        from when the exporter recorded it (``pkg.torch.onnx.name_scopes`` metadata, or a
        TorchScript-exporter node name ``/features/features.3/Relu``) and it is unique
        among the selected nodes, so ONNX and torch collections share their keys; else
        the node name when it is non-empty and unique, otherwise the tensor name.
    """
    if where not in ("output", "input"):
        raise InvalidInputError(f"where must be 'output' or 'input', got {where!r}")
    nodes = list(model.graph.node)
    op_types = {node.op_type for node in nodes}
    constants = _constant_values(model)
    if callable(layers) and not isinstance(layers, str):
        match = lambda node: bool(layers(node))  # noqa: E731
    else:
        items = (layers,) if isinstance(layers, str) else layers
        if not isinstance(items, (list, tuple)) or not items or not all(
                isinstance(item, str) for item in items):
            raise InvalidInputError(
                "layers must be 'relu', 'bn', 'activation', an op type, a name glob "
                f"pattern, a list of them or a callable(node), got {layers!r}")
        wanted_ops = {_KEYWORDS.get(item, item) for item in items
                      if item in _KEYWORDS or item in op_types} - {None}
        if "activation" in items:
            wanted_ops |= _ACTIVATION_OPS
        relu_clips = "relu" in items
        patterns = [item for item in items if item not in _KEYWORDS and item not in op_types]

        def match(node):
            if node.op_type in wanted_ops:
                return True
            if relu_clips and node.op_type == "Clip" and _clip_min(node, constants) == 0.0:
                return True
            names = [node.name, *node.output]
            return any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names if n)

    chosen = []
    for node in nodes:
        if not match(node):
            continue
        tensors = node.output if where == "output" else node.input
        if tensors and tensors[0]:
            chosen.append((node, tensors[0]))
    if not chosen:
        shown = ", ".join(sorted(op_types))
        raise InvalidInputError(
            f"layers={layers!r} selects no node (op types in the graph: {shown}); exporters "
            "often fold BatchNormalization into Conv: try layers='relu', where='input'")
    readable = [_module_path(node) for node, _ in chosen]
    names = [node.name for node, _ in chosen]
    out = []
    for (node, tensor), path in zip(chosen, readable):
        if path and readable.count(path) == 1:
            out.append((path, tensor))
        elif node.name and names.count(node.name) == 1:
            out.append((node.name, tensor))
        else:
            out.append((tensor, tensor))
    return out


def _constant_values(model) -> dict:
    """Scalar values of the initializers and ``Constant`` nodes (for ``Clip``'s min)."""
    from onnx import numpy_helper

    values = {}
    for init in model.graph.initializer:
        if len(init.dims) == 0 or (len(init.dims) == 1 and init.dims[0] == 1):
            values[init.name] = numpy_helper.to_array(init)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value" and attr.t is not None:
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _clip_min(node, constants):
    """The lower bound of a ``Clip`` node as a float (None when absent or not constant)."""
    for attr in node.attribute:  # opset < 11
        if attr.name == "min":
            return float(attr.f)
    if len(node.input) > 1 and node.input[1] in constants:
        value = np.asarray(constants[node.input[1]]).reshape(-1)
        if value.size == 1:
            return float(value[0])
    return None


def _module_path(node) -> str | None:
    """The PyTorch module path a node came from, so ONNX keys equal the torch ones:
    ``pkg.torch.onnx.name_scopes`` (torch.onnx dynamo exporter; its last entry is the
    op), else a TorchScript-exporter name ``/features/features.3/Relu``."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                return None
            if isinstance(scopes, list) and len(scopes) >= 2 and scopes[-2]:
                return str(scopes[-2])
            return None
    parts = node.name.split("/")
    if node.name.startswith("/") and len(parts) >= 3 and parts[-2]:
        return parts[-2]
    return None


def _expose(onnx, model, tensors) -> None:
    """Append ``tensors`` to the graph outputs, typed from shape inference when possible."""
    graph = model.graph
    present = {out.name for out in graph.output}
    missing = [t for t in dict.fromkeys(tensors) if t not in present]
    if not missing:
        return
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
        known = {vi.name: vi.type.tensor_type.elem_type
                 for vi in [*inferred.graph.value_info, *inferred.graph.input,
                            *inferred.graph.output]
                 if vi.type.HasField("tensor_type")}
    except Exception:  # inference fails on some custom ops; fall back to float
        known = {}
    for tensor in missing:
        elem_type = known.get(tensor) or onnx.TensorProto.FLOAT
        # no shape: a wrong inferred shape would make the runtime reject the output
        graph.output.append(onnx.helper.make_tensor_value_info(tensor, elem_type, None))


# ------------------------------------------------------------------ inputs


def _graph_inputs(onnx, model) -> dict[str, np.dtype | None]:
    initializers = {init.name for init in model.graph.initializer}
    result = {}
    for vi in model.graph.input:
        if vi.name in initializers:
            continue
        elem = vi.type.tensor_type.elem_type if vi.type.HasField("tensor_type") else 0
        try:
            result[vi.name] = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem)) if elem else None
        except Exception:
            result[vi.name] = None
    return result


def _input_arrays(inputs, expected: dict) -> dict[str, np.ndarray]:
    names = list(expected)
    if isinstance(inputs, (str, os.PathLike)):
        path = Path(inputs)
        if not path.is_file():
            raise InvalidInputError(f"input file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as archive:
                inputs = {key: archive[key] for key in archive.files}
        except Exception as exc:
            raise InvalidInputError(f"cannot read {path} as .npz ({_one_line(exc)})") from None
        if set(inputs) != set(names) and len(inputs) == 1 and len(names) == 1:
            # np.savez(path, x) stores "arr_0": one array for a one-input model is unambiguous
            inputs = {names[0]: next(iter(inputs.values()))}
    if isinstance(inputs, np.ndarray):
        if len(names) != 1:
            raise InvalidInputError(
                f"the model has {len(names)} inputs ({', '.join(names)}); pass a dict")
        inputs = {names[0]: inputs}
    if not isinstance(inputs, Mapping):
        raise InvalidInputError(
            "inputs must be a dict of arrays, an array or a path to an .npz file, "
            f"got {type(inputs).__name__}")
    unknown = sorted(set(inputs) - set(names))
    absent = [n for n in names if n not in inputs]
    if unknown or absent:
        raise InvalidInputError(
            f"input names {unknown or absent} do not match the model inputs {names}")
    arrays = {}
    for name in names:
        array = np.asarray(inputs[name])
        declared = expected[name]
        if declared is not None and array.dtype != declared:
            floaty = declared.kind == "f" and array.dtype.kind in "fiub"
            if not (floaty or np.can_cast(array.dtype, declared, "same_kind")):
                raise InvalidInputError(
                    f"input {name} has dtype {array.dtype}, the model expects {declared}")
            array = array.astype(declared)
        if array.ndim == 0:
            raise InvalidInputError(f"input {name} must have a batch dimension")
        arrays[name] = array
    return arrays


def _feeds(arrays: dict, batch_size):
    if batch_size is None:
        yield arrays
        return
    lengths = {a.shape[0] for a in arrays.values()}
    if len(lengths) != 1:
        raise InvalidInputError(
            f"batching needs inputs with one leading size, got {sorted(lengths)}")
    n = lengths.pop()
    for start in range(0, n, batch_size):
        yield {k: a[start:start + batch_size] for k, a in arrays.items()}


# ------------------------------------------------------------------ activations


def iter_onnx_activations(model, inputs, *, layers="relu", where: str = "output",
                          batch_size: int | None = None, progress: bool | None = None
                          ) -> Iterator[tuple[str, np.ndarray]]:
    """Run an ONNX model and yield the selected intermediate tensors as float32 arrays.

    Parameters
    ----------
    model : path, bytes or onnx.ModelProto
        Not modified; a copy gets the extra outputs.
    inputs : dict[str, numpy.ndarray], numpy.ndarray or path to an ``.npz`` file
        A lone array (or a one-array ``.npz``) feeds a one-input model.  Arrays are cast to
        the declared input type (float64 -> float32, integers -> float).
    layers, where
        See :func:`select_nodes`.
    batch_size : int, optional
        Split every input along its first axis (the model needs a dynamic batch axis).
    progress : bool or None
        Progress bar over batches on stderr; None shows it only when stderr is a terminal.
        An existing :class:`~lloydmax.analysis._progress.Progress` is advanced instead.

    Yields
    ------
    (str, numpy.ndarray)
        Key from :func:`select_nodes` and the tensor for one batch.

    Raises
    ------
    InvalidInputError
        Missing file, unreadable model, wrong input names or dtypes, or a runtime failure
        (one-line message).
    """
    onnx, ort = _import_onnx()
    if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) < 1):
        raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    batch_size = None if batch_size is None else int(batch_size)
    proto = load_onnx_model(model)
    chosen = select_nodes(proto, layers, where)
    arrays = _input_arrays(inputs, _graph_inputs(onnx, proto))
    fetch = list(dict.fromkeys(tensor for _, tensor in chosen))
    _expose(onnx, proto, fetch)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: warnings would clutter a report
    try:
        session = ort.InferenceSession(proto.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise InvalidInputError(f"onnxruntime cannot load the model: {_one_line(exc)}") from None

    n_batches = 1
    if batch_size is not None:
        n_batches = -(-next(iter(arrays.values())).shape[0] // batch_size)
    bar = phase(progress, n_batches, "collect onnx")
    try:
        for feed in _feeds(arrays, batch_size):
            try:
                values = session.run(fetch, feed)
            except Exception as exc:
                if not type(exc).__module__.startswith("onnxruntime"):
                    raise
                raise InvalidInputError(f"onnxruntime failed: {_one_line(exc)}") from None
            by_tensor = dict(zip(fetch, values))
            bar.advance()
            for key, tensor in chosen:
                yield key, np.asarray(by_tensor[tensor], dtype=np.float32)
    finally:
        bar.close()


def collect_onnx(model, inputs, *, layers="relu", where: str = "output", n_bins: int = 2048,
                 axis: int | None = 1, batch_size: int | None = None,
                 progress: bool | None = None,
                 strict: bool = False) -> dict:
    """Histogram the selected intermediate tensors of an ONNX model over real inputs.

    ``histograms_from(iter_onnx_activations(...))``: one histogram per selected node,
    per channel along ``axis`` (1 for NCHW and (N, C) tensors).

    Parameters
    ----------
    model : path, bytes or onnx.ModelProto
    inputs : dict[str, numpy.ndarray], numpy.ndarray or path to an ``.npz`` file
    layers : "relu", "bn", op types, name glob patterns or callable
        See :func:`select_nodes`.
    where : {"output", "input"}
        ``"input"`` of the ``Relu`` nodes is the BatchNorm output even when the exporter
        folded BatchNorm into the convolution.
    n_bins, axis, strict
        Passed to :class:`lloydmax.analysis.histogram.Histogram`.
    batch_size : int, optional
    progress : bool or None

    Returns
    -------
    dict[str, Histogram]
        Keyed by node name (tensor name when the node has none).
    """
    return histograms_from(
        iter_onnx_activations(model, inputs, layers=layers, where=where,
                              batch_size=batch_size, progress=progress),
        n_bins=n_bins, axis=axis, strict=strict)
