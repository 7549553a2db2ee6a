"""HWGQ end to end: binary weights and 2-bit half-wave Gaussian activations on digits.

Trains a small CNN on scikit-learn's digits (8x8 images, 10 classes; ships with
scikit-learn, nothing is downloaded) on the CPU, in the style of Table 3 of Cai et al.,
"Deep Learning with Low Precision by Half-wave Gaussian Quantization" (CVPR 2017):

* ``full``: full-precision weights and ReLU;
* ``BW``: binary weights (alpha = mean|W| per filter), full-precision ReLU;
* ``BW + HWGQ``: binary weights and the 2-bit HWGQ activation quantizer, read from a
  table file written by ``lloydmax table``, trained with each backward approximation
  (vanilla ReLU, clipped ReLU, log-tailed ReLU; eqs. 11-14).

The first convolution and the classifier stay in full precision, as in the paper.

    python examples/hwgq_digits.py                 # full run, a few minutes on 2 cores
    python examples/hwgq_digits.py --epochs 1 --max-steps 5   # smoke test
    python examples/hwgq_digits.py --table my_table.json --bits 2
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", help="table file from `lloydmax table` (default: write one now)")
    p.add_argument("--bits", type=int, default=2, help="activation bit-width (default 2)")
    p.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    p.add_argument("--max-steps", type=int, default=None, help="stop each run after N steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=32, help="channels of the hidden convolutions")
    p.add_argument("--runs", default="full,bw,vanilla,clipped,log-tailed",
                   help="comma-separated subset of: full, bw, vanilla, clipped, log-tailed")
    return p


def export_table(bits: int, directory: str) -> str:
    """Write the uniform hwgq table with the command line, as a user would."""
    path = os.path.join(directory, f"hwgq_a{bits}.json")
    subprocess.run([sys.executable, "-m", "lloydmax", "table", "--bits", str(bits), "--half-wave",
                    "--uniform", "--format", "json", "-o", path], check=True)
    return path


def load_digits_split(seed: int):
    import numpy as np
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    test, train = order[:450], order[450:]
    return x[train], y[train], x[test], y[test]


def make_model(kind: str, table_path: str | None, bits: int, width: int):
    import torch.nn as nn

    from lloydmax.torch import HalfWaveQuantizer, QuantConv2d

    def act():
        if kind in ("full", "bw"):
            return nn.ReLU()
        return HalfWaveQuantizer(table_path, backward=kind, bits=bits)

    def conv(cin, cout):
        if kind == "full":
            return nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        return QuantConv2d(cin, cout, 3, weight="binary", padding=1, bias=False)

    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), act(),
        conv(width, width), nn.BatchNorm2d(width), act(),
        nn.MaxPool2d(2),
        conv(width, 2 * width), nn.BatchNorm2d(2 * width), act(),
        conv(2 * width, 2 * width), nn.BatchNorm2d(2 * width), act(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 10),
    )


def train_and_test(kind, data, args, table_path):
    import numpy as np
    import torch

    torch.manual_seed(args.seed)
    xtr, ytr, xte, yte = (torch.from_numpy(a) for a in data)
    model = make_model(kind, table_path, args.bits, args.width)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, args.epochs))
    gen = torch.Generator().manual_seed(args.seed)
    steps = 0
    for _ in range(args.epochs):
        model.train()
        for idx in torch.randperm(len(ytr), generator=gen).split(64):
            loss = torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            if args.max_steps is not None and steps >= args.max_steps:
                break
        sched.step()
        if args.max_steps is not None and steps >= args.max_steps:
            break
    model.eval()
    with torch.no_grad():
        logits = model(xte)
    top1 = float((logits.argmax(1) == yte).float().mean())
    top3 = float((logits.topk(3, dim=1).indices == yte[:, None]).any(1).float().mean())
    last = loss.item()
    return {"top1": 100 * top1, "top3": 100 * top3, "loss": last, "steps": steps,
            "finite": bool(np.isfinite(last))}


LABELS = {"full": "full", "bw": "BW", "vanilla": "BW+Q vanilla", "clipped": "BW+Q clipped",
          "log-tailed": "BW+Q log-tailed"}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    bad = [r for r in runs if r not in LABELS]
    if bad:
        print(f"hwgq_digits: unknown run(s) {', '.join(bad)}; valid: {', '.join(LABELS)}",
              file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    data = load_digits_split(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        table_path = args.table or export_table(args.bits, tmp)
        from lloydmax.torch import read_table

        table = read_table(table_path, bits=args.bits)
        print(f"activation table: {table_path} ({args.bits} bits, convention "
              f"{table['convention']}, step {table['step']})")
        print(f"machine: {platform.platform()}, torch {torch.__version__}, seed {args.seed}, "
              f"{args.epochs} epochs")
        results = {}
        for kind in runs:
            t0 = time.perf_counter()
            results[kind] = train_and_test(kind, data, args, table_path)
            results[kind]["seconds"] = time.perf_counter() - t0
    print()
    print(f"{'model':<18} {'top-1 %':>8} {'top-3 %':>8} {'steps':>6} {'time s':>7}")
    for kind in runs:
        r = results[kind]
        print(f"{LABELS[kind]:<18} {r['top1']:8.1f} {r['top3']:8.1f} {r['steps']:6d} "
              f"{r['seconds']:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
