"""Regenerate CIFAR-10-C offline from the CIFAR-10 test batches (CIFAR-10-C constants).

The output follows the released layout (``<corruption>.npy`` uint8 (5*N, 32, 32, 3),
severities 1..5 in order, ``labels.npy``) and is labelled "CIFAR-10-C-regenerated (not
bit-identical)" in ``REGENERATED.json``: motion blur and snow use an OpenCV stand-in for
ImageMagick, frost a procedural texture (see wsol/data/corruptions.py and cifar10c_regen.py, REFERENCE.md §8).

Example:
    python tools/make_cifar10c.py --cifar data/cifar10 --out data/CIFAR-10-C-regen --set art2020
    python tools/make_cifar10c.py --cifar data/cifar10 --out /tmp/c10c --corruptions fog contrast --limit 100
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from wsol.data.cifar10c_regen import REGENERATED_FILE, REGENERATED_LABEL, regenerate_cifar10c
from wsol.data.corruptions import APPROXIMATIONS
from wsol.data.robustness import CIFAR10C_ART2020, CIFAR10C_BENCHMARK, CIFAR10C_CORRUPTIONS

SETS = {"all": CIFAR10C_CORRUPTIONS, "benchmark": CIFAR10C_BENCHMARK, "art2020": CIFAR10C_ART2020}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cifar", required=True, type=Path,
                   help="CIFAR-10 python version: cifar-10-batches-py/ or its parent")
    p.add_argument("--out", required=True, type=Path, help="folder to write the .npy files into")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--corruptions", nargs="+", metavar="NAME", help="corruption names (default: all 19)")
    which.add_argument("--set", choices=sorted(SETS), help="a named set: all (19), benchmark (15), art2020 (15)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="use only the first N test images (quick runs)")
    p.add_argument("--overwrite", action="store_true", help="regenerate corruptions already in --out")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def _check_args(args: argparse.Namespace) -> str | None:
    """An error line for a bad path or name, else None."""
    if not args.cifar.is_dir():
        return f"--cifar {args.cifar}: folder not found (expected cifar-10-batches-py/ or its parent)"
    if args.out.exists() and not args.out.is_dir():
        return f"--out {args.out}: exists and is not a folder"
    unknown = [c for c in args.corruptions or [] if c not in CIFAR10C_CORRUPTIONS]
    if unknown:
        return f"unknown corruption(s) {', '.join(unknown)}; valid: {', '.join(CIFAR10C_CORRUPTIONS)}"
    if args.limit is not None and args.limit < 1:
        return f"--limit must be a positive number of images, got {args.limit}"
    if args.seed < 0:
        return f"--seed must be non-negative, got {args.seed}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    problem = _check_args(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    names = list(args.corruptions or SETS[args.set or "all"])
    try:
        out = regenerate_cifar10c(args.cifar, args.out, corruptions=names, seed=args.seed,
                                  progress=not args.no_progress, limit=args.limit, overwrite=args.overwrite)
    except (ValueError, OSError) as err:  # DatasetFormatError (a bad CIFAR-10 folder) is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    approx = [c for c in names if c in APPROXIMATIONS]
    print(f"{len(names)} corruption(s) ready in {out} (seed {args.seed}): <corruption>.npy + labels.npy")
    print(f'labelled "{REGENERATED_LABEL}" in {out / REGENERATED_FILE}'
          + (f"; approximations: {', '.join(approx)}" if approx else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
