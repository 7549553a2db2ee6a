"""Train the reference digits CNN reproducibly and write its state dict.

    python scripts/train_digits.py --out digits_net.pt [--seed 0] [--epochs 8] \
        [--onnx digits_net.onnx]

Seeds are fixed and ``torch.use_deterministic_algorithms(True)`` is on, so the same torch
build on the same machine gives the same weights bit for bit (different CPUs or thread
counts may change the last bits of float sums).  The test suite does not ship the weights:
it trains the network in a session fixture (about 1-2 s of training after torch has
warmed up), which this script reproduces for people who want a file.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lloydmax._files import atomic_write
from tests.digits_net import train_digits_net


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("digits_net.pt"),
                        help="where to write the state dict (torch.save)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--onnx", type=Path, default=None,
                        help="also export the trained model to this ONNX file")
    args = parser.parse_args(argv)

    import torch

    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    result = train_digits_net(seed=args.seed, epochs=args.epochs, width=args.width)
    buffer = io.BytesIO()
    torch.save(result.model.state_dict(), buffer)
    atomic_write(args.out, buffer.getvalue())
    print(f"train accuracy {result.train_accuracy:.4f}  "
          f"test accuracy {result.test_accuracy:.4f}  "
          f"({len(result.data.y_train)} / {len(result.data.y_test)} images, "
          f"seed {args.seed}, {args.epochs} epochs)")
    print(f"wrote {args.out} ({len(buffer.getvalue())} bytes)")
    if args.onnx is not None:
        example = torch.from_numpy(result.data.x_test[:2])
        program = torch.onnx.export(result.model, (example,), dynamo=True, input_names=["x"],
                                    dynamic_shapes=({0: torch.export.Dim("batch")},),
                                    verbose=False)
        atomic_write(args.onnx, program.model_proto.SerializeToString())
        print(f"wrote {args.onnx}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
