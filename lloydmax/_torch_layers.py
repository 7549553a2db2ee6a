"""Which ``nn.Module`` is a ReLU, a BatchNorm or an activation: the one definition shared
by :func:`lloydmax.torch.convert` and :func:`lloydmax.analysis.collect_torch`.

``relu`` means every module whose output is ``max(x, 0)`` or its clipped form
``min(max(x, 0), c)``: ``nn.ReLU``, ``nn.ReLU6`` (MobileNetV2) and ``nn.Hardtanh`` with
``min_val == 0``.  A ReLU called as ``F.relu`` in ``forward`` is no module, so no
module swap can replace it (:func:`lloydmax.torch.convert` says so); collection sees it
through a ``TorchFunctionMode`` instead (:func:`lloydmax.analysis.collect_torch`, names
such as ``layer1.0:relu#0``).
"""
from __future__ import annotations

import math

from torch import nn

KEYWORDS = ("relu", "bn", "activation")

BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)

# the element-wise activation modules of torch.nn (softmax-like ones mix a dimension)
ACTIVATIONS = tuple(getattr(nn, name) for name in (
    "ReLU", "ReLU6", "Hardtanh", "LeakyReLU", "PReLU", "RReLU", "ELU", "SELU", "CELU",
    "GELU", "SiLU", "Mish", "Hardswish", "Hardsigmoid", "Sigmoid", "LogSigmoid", "Tanh",
    "Tanhshrink", "Softplus", "Softsign", "Softshrink", "Hardshrink", "Threshold")
    if hasattr(nn, name))


def is_relu(module) -> bool:
    """``nn.ReLU``, ``nn.ReLU6`` or ``nn.Hardtanh(min_val=0)``."""
    if isinstance(module, (nn.ReLU, nn.ReLU6)):
        return True
    return isinstance(module, nn.Hardtanh) and float(module.min_val) == 0.0


def relu_clip(module) -> float:
    """The upper clip of a ReLU-like module: 6 for ``ReLU6``, ``max_val`` for a
    ``Hardtanh(0, m)``, ``inf`` for a plain ReLU."""
    if isinstance(module, nn.Hardtanh):  # ReLU6 is a Hardtanh(0, 6)
        return float(module.max_val)
    return math.inf


def keyword_predicate(keyword: str):
    """``f(module) -> bool`` for one of :data:`KEYWORDS`."""
    if keyword == "relu":
        return is_relu
    if keyword == "bn":
        return lambda module: isinstance(module, BATCHNORMS)
    if keyword == "activation":
        return lambda module: isinstance(module, ACTIVATIONS)
    raise KeyError(keyword)


def activation_types_in(model) -> list[str]:
    """Names of the activation module types a model holds (for error hints)."""
    seen = []
    for module in model.modules():
        name = type(module).__name__
        if isinstance(module, ACTIVATIONS) and name not in seen:
            seen.append(name)
    return seen
