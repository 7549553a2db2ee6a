"""Collect real activations from a PyTorch model with forward hooks.

Two layers, kept apart on purpose:

* :func:`iter_activations` runs the model and yields ``(layer_name, float32 array)`` pairs,
  one per hooked module call.  It knows nothing about histograms.
* :func:`lloydmax.analysis.collect.histograms_from` (re-exported here) feeds any such
  stream into one histogram per layer; the ONNX collector uses it too.
* :func:`collect_torch` runs the same forward passes but updates the histograms inside
  the hooks, from the activation tensors themselves: no copy, nothing held.

What can be hooked
------------------
Hooks attach to ``nn.Module`` instances.  With the ``"relu"`` and ``"activation"``
keywords, a ReLU written as ``F.relu(x)``, ``torch.relu(x)`` or ``x.relu()`` inside
``forward`` is captured too, by a ``TorchFunctionMode`` active during the forward
(:class:`_FunctionalCapture`).  Other functional activations are reached through the
BatchNorm before them (``layers="bn"``, the pre-activation) or with ``where="input"`` on
the module that consumes them.

A module instance called several times in one forward pass (a shared ``self.relu``) pools
all its calls under one name.

torch is imported lazily; without it the functions raise ``MissingDependencyError``.
"""
from __future__ import annotations

import contextlib
import fnmatch
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping

import numpy as np

from lloydmax.errors import InvalidInputError, MissingDependencyError

from ._progress import phase
from .collect import feed, histograms_from, layer_histogram

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
                hint = ("; the model has no activation module (collect_torch and "
                        "iter_activations also capture F.relu/torch.relu calls in forward; "
                        "or use layers='bn', the pre-activations)")
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


def _wants_functional(layers) -> bool:
    """Functional ReLUs are captured for the ``"relu"`` and ``"activation"`` keywords."""
    items = (layers,) if isinstance(layers, str) else layers
    return isinstance(items, (tuple, list)) and any(
        isinstance(item, str) and item in ("relu", "activation") for item in items)


def _functional_ops(torch) -> dict:
    """The ReLU-like functions a forward may call, by the name of their call sites."""
    F = torch.nn.functional
    return {F.relu: "relu", torch.relu: "relu", torch.relu_: "relu", F.relu_: "relu",
            torch.Tensor.relu: "relu", torch.Tensor.relu_: "relu", F.relu6: "relu6",
            F.hardtanh: "hardtanh", F.hardtanh_: "hardtanh"}


class _FunctionalCapture:
    """Capture the outputs (or inputs) of functional ReLUs called inside ``forward``.

    A :class:`torch.overrides.TorchFunctionMode`, active during each forward pass, sees
    every torch function call; hooks on every submodule keep the stack of the modules
    whose ``forward`` is running.  A ReLU-like call (``F.relu``, ``torch.relu``,
    ``x.relu()``, their in-place forms, ``F.relu6``, ``F.hardtanh`` with ``min_val=0``) is
    named after its innermost module and its rank among that module's calls of the same
    function in one ``forward``: ``"layer1.0:relu#0"`` (``"relu#0"`` in the top-level
    ``forward``).  Calls inside an activation module (``nn.ReLU`` calls ``F.relu``
    itself) or a hooked leaf module are left to the module hook.
    """

    def __init__(self, torch, model, sink, where, skip_ids):
        from lloydmax._torch_layers import ACTIVATIONS

        self.torch, self.sink, self.where = torch, sink, where
        self.stack, self.calls, self.handles = [], 0, []

        def leave(module, args, out):  # returns None: the output is left alone
            if self.stack:
                self.stack.pop()

        for name, module in model.named_modules():
            # a hooked leaf module (a custom activation) implements its own output
            skip = isinstance(module, ACTIVATIONS) or (
                id(module) in skip_ids and next(module.children(), None) is None)
            self.handles.append(module.register_forward_pre_hook(
                lambda mod, args, name=name, skip=skip: self._enter(name, skip)))
            self.handles.append(module.register_forward_hook(leave, always_call=True))
        capture, ops = self._capture, _functional_ops(torch)

        class Mode(torch.overrides.TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                op = ops.get(func)
                if op is None:
                    return func(*args, **kwargs)
                return capture(op, func, args, kwargs)

        self.mode = Mode

    def _enter(self, name, skip) -> None:
        self.stack.append((name, skip, {}))

    def _capture(self, op, func, args, kwargs):
        if not self.stack or self.stack[-1][1] or not isinstance(args[0], self.torch.Tensor):
            return func(*args, **kwargs)
        if op == "hardtanh":
            low = args[1] if len(args) > 1 else kwargs.get("min_val", -1.0)
            if float(low) != 0.0:
                return func(*args, **kwargs)
        name, _, counters = self.stack[-1]
        rank = counters.get(op, 0)
        counters[op] = rank + 1
        site = f"{name}:{op}#{rank}" if name else f"{op}#{rank}"
        self.calls += 1
        if self.where == "input":
            self.sink(site, args[0])
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        self.sink(site, out)
        return out

    def forward(self):  # a fresh mode and module stack for each forward pass
        self.stack.clear()
        return self.mode()

    def remove(self):
        for handle in self.handles:
            handle.remove()


def _check_arguments(where, batch_size):  # -> batch_size as an int or None
    if where not in ("output", "input"):
        raise InvalidInputError(f"where must be 'output' or 'input', got {where!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) < 1):
        raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    return None if batch_size is None else int(batch_size)


def _selection(torch, model, layers):
    """The hooked modules and whether functional ReLUs are captured too."""
    functional = _wants_functional(layers)
    if not functional:
        return select_modules(model, layers), False
    if not isinstance(model, torch.nn.Module):
        raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    match = _matcher(torch, layers)
    return [(n or type(m).__name__, m) for n, m in model.named_modules() if match(n, m)], True


def _run(torch, model, inputs, sink, *, layers, where, batch_size, progress) -> Iterator[None]:
    """Run ``model`` over the batches with ``sink(name, tensor)`` called on every selected
    activation inside the forward pass (the live tensor: read it there, or copy it).
    Yields once after each batch, outside ``no_grad``; hooks and modes are undone at the
    end, when the generator is closed or on an error."""
    batch_size = _check_arguments(where, batch_size)
    chosen, functional = _selection(torch, model, layers)
    first = next(model.parameters(), None)
    dtype = first.dtype if first is not None and first.is_floating_point() else None
    device = first.device if first is not None else None

    def grab(name, value):
        tensor = _first_tensor(torch, value)
        if tensor is None:
            raise InvalidInputError(
                f"module {name} has no tensor {where} (got {type(value).__name__})")
        sink(name, tensor)

    bar = phase(progress, _n_batches(torch, inputs, batch_size), "collect torch")
    handles, capture = [], None
    was_training = model.training
    try:
        for name, module in chosen:
            if where == "output":
                handles.append(module.register_forward_hook(
                    lambda mod, args, out, name=name: grab(name, out)))
            else:
                handles.append(module.register_forward_pre_hook(
                    lambda mod, args, name=name: grab(name, args)))
        if functional:
            capture = _FunctionalCapture(torch, model, sink, where,
                                         {id(m) for _, m in chosen})
        model.eval()
        n_run = 0
        for batch in _batches(torch, inputs, batch_size):
            # no_grad only around the forward: grad mode is thread-global, and the
            # consumer's code runs while a generator is suspended at its yield
            with torch.no_grad(), (capture.forward() if capture else contextlib.nullcontext()):
                _call(torch, model, batch, dtype, device)
            n_run += 1
            if n_run == 1 and not chosen and not capture.calls:
                raise InvalidInputError(
                    f"layers={layers!r} selects no module and the forward called no "
                    "F.relu/torch.relu: use layers='bn' (the pre-activations), a module type "
                    "or a name pattern")
            bar.advance()
            yield
        if n_run == 0:
            raise InvalidInputError("inputs hold no batches")
    finally:
        for handle in handles:
            handle.remove()
        if capture is not None:  # its hooks on every submodule
            capture.remove()
        model.train(was_training)
        bar.close()


def iter_activations(model, inputs, *, layers="relu", where: str = "output",
                     batch_size: int | None = None, progress: bool | None = None
                     ) -> Iterator[tuple[str, np.ndarray]]:
    """Run ``model`` over ``inputs`` and yield every hooked activation as float32 numpy.

    The model runs in eval mode under ``torch.no_grad()``; its previous training flag is
    restored and every hook removed when the generator finishes or is closed.  Each
    activation is copied once when captured (keeping its memory layout: a channels-last
    tensor gives a channels-last strided array), so a later in-place op
    (``nn.ReLU(inplace=True)`` after a BatchNorm) cannot alter it.  One batch of copies
    at most is held: the generator lets go of each array as it yields it, and runs the
    next batch only when the previous one is consumed.

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
        With the ``"relu"`` or ``"activation"`` keyword, ReLUs called as functions inside
        ``forward`` are captured too, named ``"<module>:relu#<k>"`` (the module whose
        ``forward`` made the call, and the call's rank in it).
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
    captured: deque = deque()

    def keep(name, tensor):
        # copy=True: the numpy view of a CPU float32 tensor would share memory with it
        captured.append((name, tensor.detach().to("cpu", torch.float32, copy=True).numpy()))

    runner = _run(torch, model, inputs, keep, layers=layers, where=where, batch_size=batch_size,
                  progress=progress)
    try:
        for _ in runner:
            while captured:
                yield captured.popleft()
    finally:
        runner.close()  # hooks off at once when the consumer stops early


# ------------------------------------------------------------------ histograms


def collect_torch(model, inputs, *, layers="relu", where: str = "output", axis: int | None = 1,
                  n_bins: int = 2048, batch_size: int | None = None,
                  progress: bool | None = None, strict: bool = False) -> dict:
    """Histogram the activations of selected modules of a PyTorch model over real inputs.

    ``collect_torch(model, x)`` hooks every ReLU-like module (and captures every
    functional ReLU), runs the model in eval mode over ``x`` and returns one streaming
    histogram per ReLU, per channel along ``axis``.  The histograms are updated inside
    the forward hooks, from the activation tensor itself: a CPU float32 or float64
    activation is read in place in its memory order (channels-last included), with no
    copy; another dtype or device is converted to float32 on the CPU once.  So no
    activation outlives its hook, and the selection, batching and naming are those of
    :func:`iter_activations`.

    Parameters
    ----------
    model : torch.nn.Module
    inputs : tensor, numpy array or iterable of batches
    layers : "relu", "bn", type, tuple, glob pattern or callable
        See :func:`select_modules` and :func:`iter_activations`.  For the HWGQ check (Cai
        et al. 2017) the ReLU output should look like $\\max(0, z)$ with
        $z \\sim \\mathcal{N}(0, \\sigma^2)$ per channel: half its mass at zero, a
        half-normal above.
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
        Keyed by module name (``"features.2"``, ``"relu1"``) or functional call site
        (``"layer1.0:relu#0"``).
    """
    torch = _import_torch()
    histograms: dict = {}
    native = (torch.float32, torch.float64)

    def update(name, tensor):
        tensor = tensor.detach()
        if tensor.device.type != "cpu" or tensor.dtype not in native:
            tensor = tensor.to("cpu", torch.float32)
        array = tensor.numpy()  # a view, read now: before any in-place op can change it
        feed(layer_histogram(histograms, name, array.ndim, n_bins, axis, strict), array)

    for _ in _run(torch, model, inputs, update, layers=layers, where=where,
                  batch_size=batch_size, progress=progress):
        pass  # the histograms are fed inside the forward passes
    if not histograms:
        raise InvalidInputError("no activation was collected: the selected layers never ran")
    return histograms
