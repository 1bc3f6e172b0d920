"""Write the synthetic CIFAR-10-format dataset (10 shape x texture classes at 32 px).

    python tools/make_synthetic_cifar.py --out data/synthetic_cifar --train-per-class 500 --test-per-class 100

The output is cifar-10-batches-py/ in CIFAR-10's python layout, so tools/train_classifier.py
--dataset cifar10, tools/make_cifar10c.py and tools/eval_robustness.py read it as they read the
real CIFAR-10. It is a stand-in for running the pipeline offline, not CIFAR-10: numbers on it
say so (wsol/data/synthetic_cifar.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wsol.data.synthetic_cifar import make_synthetic_cifar


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--train-per-class", type=int, default=500)
    ap.add_argument("--test-per-class", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--render-size", type=int, default=64, help="render side before the area resize to 32")
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    try:
        folder = make_synthetic_cifar(args.out, args.train_per_class, args.test_per_class, args.seed,
                                      args.render_size, args.overwrite, not args.no_progress)
    except (ValueError, OSError) as err:
        print(f"make_synthetic_cifar: error: {err}", file=sys.stderr)
        return 2
    print(f"synthetic CIFAR-10-format set ready in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
