"""Collect real activations from a PyTorch model with forward hooks.

Two layers, kept apart on purpose:

* :func:`iter_activations` runs the model and yields ``(layer_name, float32 array)`` pairs,
  one per hooked module call.  It knows nothing about histograms.
* :func:`histograms_from` feeds any such stream into one
  :class:`lloydmax.analysis.histogram.Histogram` per layer.  :func:`collect_torch` is the
  two glued together; the ONNX collector reuses :func:`histograms_from`.

What can be hooked
------------------
Hooks attach to ``nn.Module`` instances.  A ReLU written as ``F.relu(x)`` or ``torch.relu(x)``
inside ``forward`` is not a module and cannot be hooked.  For such models select the
BatchNorm modules (``layers="bn"``): their output is the pre-activation, and the ReLU output
is its positive part, so the histogram of ``max(bn, 0)`` is the ReLU histogram.  Another way
is ``where="input"`` on the module that consumes the ReLU output.

A module instance called several times in one forward pass (a shared ``self.relu``) pools
all its calls under one name.

torch is imported lazily; without it the functions raise ``MissingDependencyError``.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Iterator, Mapping

import numpy as np

from lloydmax.errors import InvalidInputError, MissingDependencyError

from ._progress import phase
from .histogram import Histogram

__all__ = ["collect_torch", "histograms_from", "iter_activations", "select_modules"]

_KEYWORDS = ("relu", "bn", "activation")


def _import_torch():
    try:
        import torch
    except ImportError:
        raise MissingDependencyError(
            "collecting PyTorch activations needs torch: pip install 'lloydmax[torch]'") from None
    return torch


# ------------------------------------------------------------------ layer selection


def _keyword_predicate(keyword):
    # one definition of "relu" for the collectors and lloydmax.torch.convert
    from lloydmax._torch_layers import keyword_predicate
    return keyword_predicate(keyword)


def _matcher(torch, layers) -> Callable[[str, object], bool]:
    if isinstance(layers, str):
        layers = (layers,)
    if isinstance(layers, type):
        layers = (layers,)
    if callable(layers):
        return lambda name, module: bool(layers(name, module))
    if isinstance(layers, (tuple, list)) and layers:
        types: list[type] = []
        predicates = []
        patterns: list[str] = []
        for item in layers:
            if isinstance(item, type):
                types.append(item)
            elif isinstance(item, str) and item in _KEYWORDS:
                predicates.append(_keyword_predicate(item))
            elif isinstance(item, str):
                patterns.append(item)
            else:
                raise InvalidInputError(
                    "layers entries must be 'relu', 'bn', 'activation', a module type or a "
                    f"name pattern, got {item!r}")
        types_t = tuple(types)

        def match(name, module):
            if types_t and isinstance(module, types_t):
                return True
            if any(pred(module) for pred in predicates):
                return True
            return any(fnmatch.fnmatchcase(name, p) for p in patterns)

        return match
    raise InvalidInputError(
        "layers must be 'relu', 'bn', 'activation', a module type, a tuple of them, a name "
        f"glob pattern or a callable(name, module), got {layers!r}")


def select_modules(model, layers="relu") -> list[tuple[str, object]]:
    """The ``(name, module)`` pairs of ``model.named_modules()`` that ``layers`` selects.

    Parameters
    ----------
    model : torch.nn.Module
    layers : str, type, tuple or callable
        * ``"relu"``: every ``nn.ReLU``, ``nn.ReLU6`` and ``nn.Hardtanh(min_val=0)``
          module (MobileNetV2's ReLU6 included);
        * ``"bn"``: every ``nn.BatchNorm1d/2d/3d`` and ``nn.SyncBatchNorm`` (the
          pre-activation, before the ReLU that follows it);
        * ``"activation"``: every element-wise activation module of ``torch.nn``
          (ReLU-like, GELU, SiLU, Hardswish, Sigmoid, Tanh, ...);
        * a module type or a tuple of types: ``isinstance`` test;
        * any other string: a :mod:`fnmatch` glob on the qualified module name
          (``"features.*.relu"``); ``"relu"``, ``"bn"`` and ``"activation"`` are keywords,
          so select a module literally named ``relu`` with ``"[r]elu"``;
        * a tuple or list mixing the above: their union;
        * a callable ``f(name, module) -> bool``.

    Raises
    ------
    InvalidInputError
        When nothing is selected (the message says why functional ReLUs are invisible).
    """
    torch = _import_torch()
    if not isinstance(model, torch.nn.Module):
        raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    match = _matcher(torch, layers)
    chosen = [(name or type(module).__name__, module)
              for name, module in model.named_modules() if match(name, module)]
    if not chosen:
        names = [n for n, _ in model.named_modules() if n]
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        hint = ""
        if layers in ("relu", "activation"):
            from lloydmax._torch_layers import activation_types_in
            found = activation_types_in(model)
            if found:
                hint = (f"; the model's activation modules are {', '.join(found)}: select "
                        "them with layers='activation' or their type")
            else:
                hint = ("; the model has no activation module: a ReLU called as "
                        "F.relu/torch.relu in forward cannot be hooked, so use layers='bn' "
                        "(the pre-activations) instead")
        raise InvalidInputError(f"layers={layers!r} selects no module (modules: {shown}){hint}")
    return chosen


# ------------------------------------------------------------------ inputs


def _n_batches(torch, inputs, batch_size):
    if isinstance(inputs, (torch.Tensor, np.ndarray)):
        return 1 if batch_size is None or inputs.ndim == 0 else -(-inputs.shape[0] // batch_size)
    try:
        return len(inputs)
    except TypeError:  # a generator: unknown length, the bar shows a running count
        return None


def _batches(torch, inputs, batch_size) -> Iterator:
    if isinstance(inputs, (torch.Tensor, np.ndarray)):
        if inputs.ndim == 0:
            raise InvalidInputError("inputs must have a batch dimension, got a scalar")
        if batch_size is None:
            yield inputs
            return
        for start in range(0, inputs.shape[0], batch_size):
            yield inputs[start:start + batch_size]
        return
    if isinstance(inputs, (str, bytes)) or not isinstance(inputs, Iterable):
        raise InvalidInputError(
            "inputs must be a tensor, a numpy array or an iterable of batches, "
            f"got {type(inputs).__name__}")
    if batch_size is not None:
        raise InvalidInputError(
            "batch_size applies to a tensor or array; an iterable of batches is already batched")
    yield from inputs


def _to_tensor(torch, value, dtype, device):
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() and dtype is not None:
            value = value.to(dtype)
        return value.to(device) if device is not None else value
    return value


def _call(torch, model, batch, dtype, device):
    """Run one batch: a tuple/list batch is ``(inputs, labels, ...)``; a mapping is kwargs."""
    if isinstance(batch, Mapping):
        return model(**{k: _to_tensor(torch, v, dtype, device) for k, v in batch.items()})
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise InvalidInputError("an input batch is an empty tuple")
        batch = batch[0]
    if not isinstance(batch, (torch.Tensor, np.ndarray)):
        raise InvalidInputError(
            f"a batch must be a tensor, an array, a (inputs, labels) pair or a mapping, "
            f"got {type(batch).__name__}")
    return model(_to_tensor(torch, batch, dtype, device))


# ------------------------------------------------------------------ activations


def _first_tensor(torch, value):
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            if isinstance(item, torch.Tensor):
                return item
    return None


def iter_activations(model, inputs, *, layers="relu", where: str = "output",
                     batch_size: int | None = None, progress: bool | None = None
                     ) -> Iterator[tuple[str, np.ndarray]]:
    """Run ``model`` over ``inputs`` and yield every hooked activation as float32 numpy.

    The model runs in eval mode under ``torch.no_grad()``; its previous training flag is
    restored and every hook removed when the generator finishes or is closed.  Each
    activation is copied when captured, so a later in-place op (``nn.ReLU(inplace=True)``
    after a BatchNorm) cannot alter it.

    Parameters
    ----------
    model : torch.nn.Module
    inputs : tensor, numpy array or iterable of batches
        A tensor or array is one batch, or is split along its first axis into
        ``batch_size`` chunks.  An iterable (e.g. a ``DataLoader``) yields batches: a
        tensor/array, a tuple/list whose first item is the model input (labels are
        ignored), or a mapping passed as keyword arguments.  Floating arrays are cast to the
        dtype and device of the model's first parameter.
    layers : see :func:`select_modules`
    where : {"output", "input"}
        Hook the module's output, or its first positional input (captured before the
        module runs, so in-place modules are seen unmodified).
    batch_size : int, optional
    progress : bool or None
        Progress bar over batches on stderr (:class:`lloydmax.analysis._progress.Progress`);
        None draws it only when stderr is a terminal; an existing one is advanced instead.

    Yields
    ------
    (str, numpy.ndarray)
        Layer name (from ``named_modules``) and its activation for one module call,
        float32, same shape as the tensor, batch by batch, in call order.
    """
    torch = _import_torch()
    if where not in ("output", "input"):
        raise InvalidInputError(f"where must be 'output' or 'input', got {where!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) < 1):
        raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    batch_size = None if batch_size is None else int(batch_size)
    chosen = select_modules(model, layers)
    first = next(model.parameters(), None)
    dtype = first.dtype if first is not None and first.is_floating_point() else None
    device = first.device if first is not None else None

    captured: list[tuple[str, np.ndarray]] = []

    def grab(name, value):
        tensor = _first_tensor(torch, value)
        if tensor is None:
            raise InvalidInputError(
                f"module {name} has no tensor {where} (got {type(value).__name__})")
        # copy=True: the numpy view of a CPU float32 tensor would share memory with it
        captured.append((name, tensor.detach().to("cpu", torch.float32, copy=True).numpy()))

    def make_hook(name):
        if where == "output":
            return lambda module, args, output: grab(name, output)
        return lambda module, args: grab(name, args)

    bar = phase(progress, _n_batches(torch, inputs, batch_size), "collect torch")
    handles = []
    was_training = model.training
    try:
        for name, module in chosen:
            hook = make_hook(name)
            handles.append(module.register_forward_hook(hook) if where == "output"
                           else module.register_forward_pre_hook(hook))
        model.eval()
        n_run = 0
        for batch in _batches(torch, inputs, batch_size):
            # no_grad only around the forward: grad mode is thread-global, and the
            # consumer's code runs while this generator is suspended at its yield
            with torch.no_grad():
                _call(torch, model, batch, dtype, device)
            n_run += 1
            bar.advance()
            pending, captured[:] = list(captured), []
            yield from pending
        if n_run == 0:
            raise InvalidInputError("inputs hold no batches")
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
        bar.close()


# ------------------------------------------------------------------ histograms


def histograms_from(activations: Iterable[tuple[str, np.ndarray]], *, n_bins: int = 2048,
                    axis: int | None = 1, strict: bool = False) -> dict:
    """Feed a stream of ``(layer_name, array)`` pairs into one histogram per layer.

    Parameters
    ----------
    activations : iterable of (str, numpy.ndarray)
        For example :func:`iter_activations` or
        :func:`lloydmax.analysis.onnx_collect.iter_onnx_activations`.
    n_bins, axis, strict
        Passed to :class:`lloydmax.analysis.histogram.Histogram`; ``axis`` is the channel
        axis for per-channel statistics (``None`` pools the whole tensor).  Arrays with
        fewer than ``axis + 1`` dimensions are pooled whole.

    Returns
    -------
    dict[str, Histogram]
        In the order the layers first produced an activation.

    Raises
    ------
    InvalidInputError
        When the stream is empty (no selected layer ran).
    """
    histograms: dict = {}
    for name, array in activations:
        hist = histograms.get(name)
        if hist is None:
            layer_axis = axis if axis is None or array.ndim > axis else None
            hist = histograms[name] = Histogram(n_bins=n_bins, axis=layer_axis, strict=strict)
        hist.update(array)
    if not histograms:
        raise InvalidInputError("no activation was collected: the selected layers never ran")
    return histograms


def collect_torch(model, inputs, *, layers="relu", where: str = "output", axis: int | None = 1,
                  n_bins: int = 2048, batch_size: int | None = None,
                  progress: bool | None = None, strict: bool = False) -> dict:
    """Histogram the activations of selected modules of a PyTorch model over real inputs.

    ``collect_torch(model, x)`` hooks every ``nn.ReLU``, runs the model in eval mode over
    ``x`` and returns one streaming histogram per ReLU, per channel along ``axis``.  This is
    ``histograms_from(iter_activations(...))``; see those two for the details.

    Parameters
    ----------
    model : torch.nn.Module
    inputs : tensor, numpy array or iterable of batches
    layers : "relu", "bn", type, tuple, glob pattern or callable
        See :func:`select_modules`.  For the HWGQ check (Cai et al. 2017) the ReLU output
        should look like $\\max(0, z)$ with $z \\sim \\mathcal{N}(0, \\sigma^2)$ per channel:
        half its mass at zero, a half-normal above.
    where : {"output", "input"}
    axis : int or None
        Channel axis for per-channel histograms (1 for NCHW and (N, C)).
    n_bins : int
    batch_size : int, optional
    progress : bool or None
        Progress bar over batches; None shows it only when stderr is a terminal.
    strict : bool
        Passed to the histograms.

    Returns
    -------
    dict[str, Histogram]
        Keyed by module name (``"features.2"``, ``"relu1"``).
    """
    return histograms_from(
        iter_activations(model, inputs, layers=layers, where=where, batch_size=batch_size,
                         progress=progress),
        n_bins=n_bins, axis=axis, strict=strict)
