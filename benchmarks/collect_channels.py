"""Per-channel activation collection against ``torch.ao.quantization.HistogramObserver``,
time and memory, in one run.

Run ``python benchmarks/collect_channels.py`` (``--help`` for options).  One core:
``NUMBA_NUM_THREADS=1`` before numba is imported, ``torch.set_num_threads(1)``.

The model is MobileNetV2 at its real widths (17 inverted residual blocks, 35 ReLU6,
1280 channels at the end; random weights with non-trivial BatchNorm statistics), fed
``--batches`` batches of ``--batch x 3 x --size x --size`` images, in ``--layout``
(``contiguous`` NCHW or ``channels_last``).  Timed, best of ``--repeat`` after a warm-up:

* ``forward``: the forward passes alone, under ``torch.no_grad()``;
* ``HistogramObserver``: the same with a forward hook on every ReLU6 feeding its output
  to one ``HistogramObserver`` per layer (per tensor: torch.ao has no per-channel
  histogram observer);
* ``collect_torch(axis=1)``: ``lloydmax.analysis.collect_torch(model, batches, axis=1)``,
  one exact histogram per channel of every ReLU6;
* ``collect_torch(axis=None)``: the same per tensor.

The ratio is ours / observer, end to end and for the collection alone (forward time
subtracted from both).  ``--memory`` also runs each collector once in a fresh subprocess
and reports its peak RSS (``VmHWM``) above a forward-only run, in MiB and in
batches of activations (the ReLU6 outputs of one batch).  Nothing asserts; it reports.
"""
from __future__ import annotations

import os

os.environ["NUMBA_NUM_THREADS"] = "1"  # before numba is imported

import argparse
import json
import subprocess
import sys
import time

import numpy as np

# this folder has a script named like the `analysis` package: keep it off sys.path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.modules.pop("analysis", None)

import torch  # noqa: E402
from torch import nn  # noqa: E402

torch.set_num_threads(1)

# (expansion, channels, repeats, stride): MobileNetV2, Sandler et al. 2018, table 2
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1)]


def _conv_bn(cin, cout, kernel, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU6(inplace=True)) if act else nn.Sequential(*layers)


class _Block(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = [_conv_bn(cin, hidden, 1)] if expand != 1 else []
        layers += [_conv_bn(hidden, hidden, 3, stride, groups=hidden),
                   _conv_bn(hidden, cout, 1, act=False)]
        self.conv = nn.Sequential(*layers)
        self.use_res = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


def mobilenet_v2(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    blocks, cin = [_conv_bn(3, 32, 3, 2)], 32
    for expand, cout, repeat, stride in SETTINGS:
        for i in range(repeat):
            blocks.append(_Block(cin, cout, stride if i == 0 else 1, expand))
            cin = cout
    blocks.append(_conv_bn(cin, 1280, 1))
    model = nn.Sequential(nn.Sequential(*blocks), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(1280, 1000))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def make_inputs(args):
    gen = torch.Generator().manual_seed(args.seed)
    fmt = torch.channels_last if args.layout == "channels_last" else torch.contiguous_format
    return [torch.randn(args.batch, 3, args.size, args.size, generator=gen)
            .contiguous(memory_format=fmt) for _ in range(args.batches)]


def prepare(args):
    model = mobilenet_v2(args.seed)
    if args.layout == "channels_last":
        model = model.to(memory_format=torch.channels_last)
    return model, make_inputs(args)


def run_forward(model, batches):
    with torch.no_grad():
        for x in batches:
            model(x)


def run_observer(model, batches):
    from torch.ao.quantization import HistogramObserver

    observers, handles = {}, []
    for name, m in model.named_modules():
        if isinstance(m, nn.ReLU6):
            obs = observers[name] = HistogramObserver()
            handles.append(m.register_forward_hook(lambda mod, a, out, obs=obs: obs(out)))
    try:
        run_forward(model, batches)
    finally:
        for h in handles:
            h.remove()
    return observers


def run_ours(model, batches, axis):
    from lloydmax.analysis import collect_torch

    return collect_torch(model, batches, layers="relu", axis=axis, progress=False)


COLLECTORS = {
    "forward": lambda m, b: run_forward(m, b),
    "HistogramObserver": run_observer,
    "collect_torch(axis=1)": lambda m, b: run_ours(m, b, 1),
    "collect_torch(axis=None)": lambda m, b: run_ours(m, b, None),
}


def activation_bytes(model, batch) -> tuple[int, int]:
    """Bytes of one batch's ReLU6 outputs (float32) and the ReLU6 channel count."""
    sizes, channels = [], []

    def hook(mod, args, out):
        sizes.append(out.numel() * 4)
        channels.append(out.shape[1])

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU6)]
    run_forward(model, [batch])
    for h in hooks:
        h.remove()
    return sum(sizes), sum(channels)


def child(args) -> int:
    """One collector in a fresh process: print its peak RSS (KiB) as JSON."""
    from lloydmax.analysis import Histogram

    model, batches = prepare(args)
    # the same warm state for every collector: one forward, numba and the kernels loaded
    run_forward(model, batches[:1])
    Histogram(axis=1).update(np.ones((2, 3, 4), np.float32))
    COLLECTORS[args.child](model, batches)
    print(json.dumps({"maxrss_kib": peak_rss_kib()}))
    return 0


def peak_rss_kib() -> int:
    """This process's peak RSS: VmHWM on Linux (ru_maxrss keeps the parent's peak across
    fork and exec, so it would report the timing run's peak in every child)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory(args, argv) -> dict:
    out = {}
    for name in COLLECTORS:
        cmd = [sys.executable, os.path.abspath(__file__), *argv, "--child", name]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[name] = json.loads(done.stdout.strip().splitlines()[-1])["maxrss_kib"] / 1024
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--layout", choices=("contiguous", "channels_last"), default="contiguous")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--memory", action="store_true", help="also peak RSS per collector")
    p.add_argument("--only", choices=list(COLLECTORS), action="append",
                   help="time only these (repeatable; forward is always timed)")
    p.add_argument("--child", choices=list(COLLECTORS), help=argparse.SUPPRESS)
    raw = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(raw)
    if args.child:
        return child(args)

    model, batches = prepare(args)
    per_batch, channels = activation_bytes(model, batches[0])
    n_values = per_batch // 4 * args.batches
    print(f"# per-channel collection, MobileNetV2 widths, {args.batches} x "
          f"{args.batch}x3x{args.size}x{args.size} ({args.layout}), one core\n")
    print(f"- torch {torch.__version__}, numpy {np.__version__}, "
          f"ReLU6 activations: {n_values:,} values, {per_batch / 2**20:.0f} MiB per batch")
    print(f"- {channels:,} ReLU6 channels: per-channel bin counts alone take "
          f"{channels * 2048 * 8 / 2**20:.0f} MiB (2048 int64 bins each)\n")
    names = list(COLLECTORS) if not args.only else ["forward", *args.only]
    for name in names:
        COLLECTORS[name](model, batches[:1])  # warm-up: JIT cache load, allocator
    times = dict.fromkeys(names, float("inf"))
    for _ in range(args.repeat):  # interleaved rounds: a change of load hits every collector
        for name in names:
            t0 = time.perf_counter()
            COLLECTORS[name](model, batches)
            times[name] = min(times[name], time.perf_counter() - t0)
    fwd = times["forward"]
    print("| collector | total | collection (minus forward) | ns / value |")
    print("|---|---:|---:|---:|")
    for name, t in times.items():
        extra = t - fwd
        print(f"| {name} | {t:.3f} s | {extra:.3f} s | "
              f"{extra / n_values * 1e9:.1f} |" if name != "forward" else
              f"| forward | {t:.3f} s | - | - |")
    if "HistogramObserver" in times:
        obs = times["HistogramObserver"]
        for name in names:
            if name.startswith("collect_torch"):
                t = times[name]
                print(f"\n- {name} / HistogramObserver: {t / obs:.2f}x end to end, "
                      f"{(t - fwd) / max(obs - fwd, 1e-9):.2f}x collection only "
                      f"(target <= 1.2x)")
    if args.memory:
        rss = memory(args, [a for a in raw if a != "--memory"])
        base = rss["forward"]
        print("\n| collector | peak RSS | above forward | in batches of activations |")
        print("|---|---:|---:|---:|")
        for name, mib in rss.items():
            print(f"| {name} | {mib:.0f} MiB | {mib - base:+.0f} MiB | "
                  f"{(mib - base) * 2**20 / per_batch:+.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
