"""Data-facing side of lloydmax: activation collectors, histograms and reports.

Stands on :mod:`lloydmax`; lloydmax never imports it (the ``lloydmax analyze`` command
loads it lazily).  Built out by the analysis issue.
"""
__all__: list[str] = []
