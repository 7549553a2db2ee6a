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

__all__ = ["Histogram", "WeightedPoints", "all_reduce_histogram", "best_tables", "collect",
           "collect_onnx", "collect_torch", "histograms_from", "iter_activations",
           "iter_onnx_activations", "report"]
