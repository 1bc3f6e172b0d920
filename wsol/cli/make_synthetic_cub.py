"""Write the synthetic CUB-format dataset (see wsol/data/synthetic.py and docs/synthetic.md).

Example:
    python tools/make_synthetic_cub.py --out data/synthetic_cub --classes 10 \
        --images-per-class 40 --size 128 --seed 0
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from wsol.data.synthetic import MAX_CLASSES, make_synthetic_cub


def _size(text: str) -> int | tuple[int, int]:
    """``128`` or ``160x120`` (width x height)."""
    try:
        if "x" in text.lower():
            w, h = text.lower().split("x")
            return int(w), int(h)
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int or WxH, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path, help="CUB root folder to write")
    p.add_argument("--classes", type=int, default=10, help=f"number of classes, 1..{MAX_CLASSES}")
    p.add_argument("--images-per-class", type=int, default=40)
    p.add_argument("--size", type=_size, default=128, help="image side, or WxH (default 128)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-fraction", type=float, default=0.5)
    p.add_argument("--size-jitter", type=float, default=0.0,
                   help="scale each image's width and height by U(1-j, 1+j) (default 0)")
    p.add_argument("--workers", type=int, default=0, help="worker processes (same output)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier synthetic dataset in --out")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out: Path = args.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
        print(f"error: {out} is not an empty directory; pass --overwrite to replace an earlier "
              "synthetic dataset there", file=sys.stderr)
        return 2
    try:
        root = make_synthetic_cub(
            out, num_classes=args.classes, images_per_class=args.images_per_class,
            size=args.size, seed=args.seed, train_fraction=args.train_fraction,
            size_jitter=args.size_jitter, num_workers=args.workers, overwrite=args.overwrite,
            progress=not args.no_progress)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    n = args.classes * args.images_per_class
    print(f"wrote {n} images in {args.classes} classes ({args.size} px, seed {args.seed}) to {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
