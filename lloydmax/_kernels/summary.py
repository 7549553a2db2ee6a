"""Summaries of a table on a density: MSE, signal power, entropy, cell tables."""
from __future__ import annotations

import math

import numpy as np

from .._jit import jit
from .cells import fill_cells


@jit
def summarize_cells(levels, mass, mean, var, out):
    """out = [mse, second moment E[X^2], entropy (bits) of the output index] from the
    cells' mass, mean and variance (no pass over the density)."""
    mse = 0.0
    power = 0.0
    ent = 0.0
    for i in range(levels.shape[0]):
        m0 = mass[i]
        c = mean[i]
        d = c - levels[i]
        mse += m0 * (var[i] + d * d)
        power += m0 * (var[i] + c * c)
        if m0 > 0.0:
            ent -= m0 * math.log2(m0)
    out[0] = mse
    out[1] = power
    out[2] = ent


@jit
def summarize(kind, params, tab_x, tab_p, pm_loc, pm_w, levels, thresholds, out):
    """out = [mse, second moment E[X^2], entropy (bits) of the output index]."""
    n = levels.shape[0]
    mass = np.empty(n)
    mean = np.empty(n)
    var = np.empty(n)
    fill_cells(kind, params, tab_x, tab_p, pm_loc, pm_w, thresholds, mass, mean, var)
    summarize_cells(levels, mass, mean, var, out)


@jit
def cell_table(kind, params, tab_x, tab_p, pm_loc, pm_w, thresholds, mass, mean):
    var = np.empty(mass.shape[0])
    fill_cells(kind, params, tab_x, tab_p, pm_loc, pm_w, thresholds, mass, mean, var)
