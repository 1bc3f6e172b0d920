"""Side-by-side gradient maps and CAMs of several checkpoints on the same test images.

    python tools/compare_maps.py --checkpoints RUN_A RUN_B [...] [--data CUB_DIR] [--n 8]
        [--split test] [--protocol wsolevaluation|paper] [--out compare.png]

One row per image (--n images evenly spaced through the split of --data, default the first
checkpoint's dataset): the image with its ground-truth class, then for each checkpoint its
Grad map and its CAM as heatmap overlays, titled with the run name, the map, the predicted
class and whether it is correct. Maps are for the ground-truth class, min-max normalised per
image (with --protocol paper the Grad map is the official ART map, which uses the predicted
class). Every checkpoint must have the same number of classes.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


from wsol.data import CubFormatError, ImageLoadError
from wsol.engine.checkpoint import CheckpointError
from wsol.engine.evaluate import PROTOCOLS
from wsol.generation import comparison_panels
from wsol.viz import save_overlay_grid

PROG = "compare_maps.py"


def parse(argv):
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", nargs="+", required=True, help="run folders or checkpoint files")
    ap.add_argument("--data", help="CUB folder (default: the first checkpoint's dataset)")
    ap.add_argument("--n", type=int, default=8, help="number of images (default 8)")
    ap.add_argument("--split", default="test", choices=("train", "val", "test"))
    ap.add_argument("--val-per-class", type=int, default=0,
                    help="official layout: images per class carved from train as val (for --split train/val)")
    ap.add_argument("--protocol", default="wsolevaluation", choices=PROTOCOLS,
                    help="image geometry and Grad map (default wsolevaluation: resize, plain gradient)")
    ap.add_argument("--out", default="compare.png", help="output PNG (default compare.png)")
    args = ap.parse_args(argv)
    if args.n < 1:
        ap.error(f"--n must be >= 1, got {args.n}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        panels, titles, cols = comparison_panels(args.checkpoints, args.data, args.n, args.split, args.protocol,
                                                 args.val_per_class)
        if not panels:
            raise ValueError(f"the {args.split} split has no readable image")
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        out = save_overlay_grid(panels, titles, args.out, cols=cols,
                                suptitle=f"Grad and CAM ({args.split}, {args.protocol})")
    except (CheckpointError, CubFormatError, ImageLoadError, FileNotFoundError, OSError, ValueError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({len(panels) // cols} images x {cols} panels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
