"""Write a synthetic ILSVRC or OpenImages30k in wsolevaluation's layout (see wsol/data/synthetic_wsoleval.py).

Example:
    python tools/make_synthetic_wsoleval.py --dataset ilsvrc --out data/synthetic_wsoleval \
        --classes 10 --images-per-class 20 --size 96 --seed 0
    python tools/make_synthetic_wsoleval.py --dataset openimages --out data/synthetic_wsoleval

Both datasets may share one --out: it becomes the data root (images/ILSVRC, images/OpenImages)
and holds metadata/ILSVRC and metadata/OpenImages. For OpenImages the mask root is the same
folder as the image root, <out>/images/OpenImages.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from wsol.data.synthetic_wsoleval import (
    MAX_CLASSES,
    MAX_OBJECTS,
    make_synthetic_ilsvrc,
    make_synthetic_openimages,
)

_MAKERS = {"ilsvrc": make_synthetic_ilsvrc, "openimages": make_synthetic_openimages}


def _size(text: str) -> int | tuple[int, int]:
    """``96`` or ``128x96`` (width x height)."""
    try:
        if "x" in text.lower():
            w, h = text.lower().split("x")
            return int(w), int(h)
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int or WxH, got {text!r}") from None


def _int_range(text: str) -> tuple[int, int]:
    """``2`` or ``1-3`` (inclusive)."""
    try:
        if "-" in text:
            lo, hi = text.split("-")
            return int(lo), int(hi)
        return int(text), int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int or LOW-HIGH, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, choices=sorted(_MAKERS), help="layout to write")
    p.add_argument("--out", required=True, type=Path,
                   help="data root: writes images/<Dataset>/ and metadata/<Dataset>/ there")
    p.add_argument("--classes", type=int, default=10, help=f"number of classes, 1..{MAX_CLASSES}")
    p.add_argument("--images-per-class", type=int, default=20, help="train images per class")
    p.add_argument("--val-per-class", type=int, default=None,
                   help="val images per class (default 2 for ilsvrc, 3 for openimages)")
    p.add_argument("--test-per-class", type=int, default=5, help="test images per class")
    p.add_argument("--size", type=_size, default=96, help="nominal image side, or WxH (default 96)")
    p.add_argument("--size-jitter", type=float, default=0.3,
                   help="scale each image's width and height by U(1-j, 1+j) (default 0.3)")
    p.add_argument("--objects", type=_int_range, default=(1, 3),
                   help=f"objects per image, N or LOW-HIGH within 1..{MAX_OBJECTS} (default 1-3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="worker processes (same output)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier synthetic dataset of this kind in --out")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    extra = {} if args.val_per_class is None else {"val_per_class": args.val_per_class}
    try:
        info = _MAKERS[args.dataset](
            args.out, num_classes=args.classes, images_per_class=args.images_per_class,
            size=args.size, seed=args.seed, test_per_class=args.test_per_class,
            size_jitter=args.size_jitter, objects_per_image=args.objects,
            num_workers=args.workers, overwrite=args.overwrite, progress=not args.no_progress, **extra)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{split} {c['images']}" for split, c in info["splits"].items())
    verb = "reused" if info["reused"] else "wrote"
    paths = info["paths"]
    print(f"{verb} synthetic {info['dataset']} ({args.classes} classes; images: {counts}) "
          f"images in {paths['image_root']}, metadata in {paths['metadata_root']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
