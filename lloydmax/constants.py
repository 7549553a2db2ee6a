"""The trainers' numbers, named once (standard library only).

Each constant says where it comes from; the presets, weight codebooks, torch consumers,
plots and reports use these names instead of repeating the literals.
"""
from __future__ import annotations

import math

__all__ = ["TSQ_EPS", "TWN_FACTOR", "SYQ_ETA", "PANTER_DITE_GAUSS"]

#: TSQ ``relu2b_layer.cpp`` (Wang et al., CVPR 2018): activations at or below 0.32 (in
#: units of the BatchNorm output's std) are zero.
TSQ_EPS = 0.32
#: Ternary Weight Networks (Li & Liu 2016): threshold Delta = 0.7 E|W|.
TWN_FACTOR = 0.7
#: SYQ ``quantize.py`` (julianfaraone/SYQ): ternary threshold eta * max|W|, eta = 0.05.
SYQ_ETA = 0.05
#: Panter-Dite high-resolution limit of N^2 * MSE for the unit Gaussian, sqrt(3) pi / 2.
PANTER_DITE_GAUSS = math.sqrt(3.0) * math.pi / 2.0
