"""Data-facing side of lloydmax: activation histograms, collectors and reports.

Stands on :mod:`lloydmax`; lloydmax never imports it (the ``lloydmax analyze`` command
loads it lazily).
"""
from .collect import collect
from .distributed import all_reduce_histogram
from .histogram import Histogram, WeightedPoints
from .report import best_tables, report

__all__ = ["Histogram", "WeightedPoints", "collect", "all_reduce_histogram", "report",
           "best_tables"]
