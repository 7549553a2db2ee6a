"""The trainers' own quantizer constants held against the exact optimum.

Run ``python benchmarks/check_circulating.py``.  It prints four markdown tables
(pasted into docs/trainers.md):

1. Activations over ReLU(N(0, 1)) at 1-4 bits: the MSE of each trainer's own constants
   (HWGQ / EdMIPS ``hwgq_steps`` with the hwgq rule, EdMIPS's rounding rule with the same
   steps, TSQ's dead zone, SYQ's [0, 1] clip), the optimum in the trainer's own convention,
   and the best uniform quantizer over all conventions.  For fixed levels the best
   thresholds are the midpoints, so the round convention's optimal uniform table is
   the best uniform table whatever the convention (a dead zone or the hwgq boundary only
   moves the first threshold away from its midpoint).
2. EdMIPS ``gaussian_steps`` for weights against the optimal Gaussian uniform steps.
3. SYQ's optimal clip, and the std for which its fixed clip at 1 is optimal.
4. Hand-extended 5-8-bit copies of the HWGQ step table against the exact hwgq steps.

Every number comes from :func:`lloydmax._check.check` (MSE by ``lloydmax.evaluate``,
optimum by ``lloydmax.solve``).
"""
from __future__ import annotations

import argparse
import sys

from lloydmax._check import check
from lloydmax.presets import get_preset

HWGQ_STEPS = {1: 0.799, 2: 0.538, 3: 0.3217, 4: 0.185}        # EdMIPS hwgq_steps
GAUSSIAN_STEPS = {1: 1.596, 2: 0.996, 3: 0.586, 4: 0.336}     # EdMIPS gaussian_steps
TSQ = {"bits": 2, "eps": 0.32, "step": 0.6487}                 # TSQ relu2b_layer.cpp
CIRCULATING = {5: 0.104, 6: 0.058, 7: 0.033, 8: 0.019}        # hand-extended HWGQ copies


def _row(cells):
    return "| " + " | ".join(cells) + " |"


def activation_rows():
    rows = []
    syq = get_preset("syq")
    for bits in range(1, 5):
        best = check(step=HWGQ_STEPS[bits], bits=bits, convention="round").optimal
        cases = [
            ("HWGQ / EdMIPS", "hwgq", check(step=HWGQ_STEPS[bits], bits=bits, convention="hwgq")),
            ("EdMIPS", "round", check(step=HWGQ_STEPS[bits], bits=bits, convention="round")),
        ]
        if bits == TSQ["bits"]:
            cases.append(("TSQ", f"deadzone {TSQ['eps']}",
                          check(step=TSQ["step"], bits=bits, zero_threshold=TSQ["eps"])))
        cases.append(("SYQ", "round, clip [0, 1]", check(syq.activation_table(bits))))
        for trainer, rule, r in cases:
            rows.append(_row([
                trainer, rule, str(bits), f"{r.table.step:.4g}", f"{r.mse:.5f}",
                f"{r.optimal_step:.4f}", f"{r.optimal_mse:.5f}", f"{r.excess_percent:.3g}",
                f"{best.mse:.5f}", f"{100 * (r.mse / best.mse - 1):.3g}",
                f"{100 * (r.optimal_mse / best.mse - 1):.3g}",
                f"{r.nonuniform_mse:.5f}"]))
    return rows


def weight_rows():
    rows = []
    for bits, step in GAUSSIAN_STEPS.items():
        r = check(step=step, bits=bits, dist="gaussian")
        rows.append(_row([str(bits), f"{step}", f"{r.mse:.6f}", f"{r.optimal_step:.4f}",
                          f"{r.optimal_mse:.6f}", f"{r.excess_percent:.2g}",
                          f"{r.nonuniform_mse:.6f}"]))
    return rows


def syq_clip_rows():
    rows = []
    syq = get_preset("syq")
    for bits in range(1, 5):
        opt = syq.optimal_activation_table(bits)
        clip = syq.clip_of(opt)
        rows.append(_row([str(bits), f"{clip:.4f}", f"{1 / clip:.4f}"]))
    return rows


def circulating_rows():
    rows = []
    for bits, step in CIRCULATING.items():
        r = check(step=step, bits=bits)
        rows.append(_row([str(bits), f"{step}", f"{r.optimal_step:.4f}", f"{r.mse:.4e}",
                          f"{r.optimal_mse:.4e}", f"{r.excess_percent:.3g}"]))
    return rows


def main(argv=None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    out = []
    out.append("Activations, MSE over ReLU(N(0, 1)). 'own optimum': same rule, optimal step; "
               "'best uniform': optimal step in the round convention.")
    out.append("")
    out.append(_row(["trainer", "rule", "bits", "step", "MSE", "own opt. step", "own opt. MSE",
                     "excess vs own %", "best uniform MSE", "excess vs best %",
                     "own rule at its optimum vs best %", "non-uniform (own rule) MSE"]))
    out.append(_row(["---"] * 12))
    out.extend(activation_rows())
    out.append("")
    out.append("Weights, MSE over N(0, 1) (EdMIPS gaussian_steps, symmetric uniform).")
    out.append("")
    out.append(_row(["bits", "step", "MSE", "optimal step", "optimal MSE", "excess %",
                     "non-uniform MSE"]))
    out.append(_row(["---"] * 7))
    out.extend(weight_rows())
    out.append("")
    out.append("SYQ's rule: the MSE-optimal clip for ReLU(N(0, 1)) with 2^k - 1 rounding "
               "steps, and the std at which SYQ's fixed [0, 1] clip is the optimum.")
    out.append("")
    out.append(_row(["bits", "optimal clip (unit std)", "std where [0, 1] is optimal"]))
    out.append(_row(["---"] * 3))
    out.extend(syq_clip_rows())
    out.append("")
    out.append("Hand-extended HWGQ step copies (hwgq rule) against the exact steps.")
    out.append("")
    out.append(_row(["bits", "copied step", "exact step", "MSE", "optimal MSE", "excess %"]))
    out.append(_row(["---"] * 6))
    out.extend(circulating_rows())
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
