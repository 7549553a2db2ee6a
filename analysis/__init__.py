"""Data-facing side of lloydmax: activation histograms, collectors and reports.

Stands on :mod:`lloydmax`; lloydmax never imports it (the ``lloydmax analyze`` command
loads it lazily).
"""
from .collect import collect
from .distributed import all_reduce_histogram
from .histogram import Histogram, WeightedPoints
from .onnx_collect import collect_onnx, iter_onnx_activations
from .report import best_tables, report
from .torch_collect import collect_torch, histograms_from, iter_activations

__all__ = ["Histogram", "LloydMaxFakeQuantize", "LloydMaxObserver", "WeightedPoints",
           "all_reduce_histogram", "best_tables", "collect", "collect_onnx", "collect_torch",
           "histograms_from", "iter_activations", "iter_onnx_activations", "report"]

_LAZY = {"LloydMaxObserver": ".observer", "LloydMaxFakeQuantize": ".observer"}


def __getattr__(name):
    # the torch.ao-style modules need torch: loaded on first use only
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
