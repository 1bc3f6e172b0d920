"""Validate a dataset folder: CUB-200-2011 (official layout) or wsolevaluation metadata of CUB,
ILSVRC, OpenImages30k (or another dataset in that layout).

    python tools/check_dataset.py DIR [--dataset cub|ilsvrc|openimages] [--image-root IMAGES]
        [--mask-root MASKS] [--no-decode] [--val-per-class N]

Prints a summary (images, classes, split sizes, boxes per image, masks found) and every
problem found, each naming its file and line; when the metadata files themselves are broken,
the problems alone (the counts would mislead). A split with no images is a problem.
Exit status 1 when there are problems.
"""

from __future__ import annotations

import argparse
import sys


from wsol.data.check import check_dataset
from wsol.data.datasets import wsol_dataset_names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="CUB_200_2011 folder, its parent, a wsolevaluation metadata folder "
                    "(metadata/<CUB|ILSVRC|OpenImages>) or the folder holding metadata/")
    ap.add_argument("--dataset", choices=wsol_dataset_names(), help="default: from the folder names")
    ap.add_argument("--image-root", help="image folder for wsolevaluation metadata (default: found beside it; "
                    "wsolevaluation keeps them in dataset/<Dataset>)")
    ap.add_argument("--mask-root", help="OpenImages: the folder its mask paths are relative to (default: the image root)")
    ap.add_argument("--no-decode", action="store_true", help="skip decoding every image and mask (faster)")
    ap.add_argument("--val-per-class", type=int, default=0,
                    help="official layout: also show the val split carved from train")
    args = ap.parse_args(argv)
    report = check_dataset(args.dir, decode=not args.no_decode, image_root=args.image_root,
                           val_per_class=args.val_per_class, dataset=args.dataset, mask_root=args.mask_root)
    summary = report.summary_lines()
    for line in summary:
        print(line)
    gap = "\n" if summary else ""
    if report.problems:
        print(f"{gap}{len(report.problems)} problem(s):")
        for p in report.problems:
            print(f"  {p}")
        return 1
    print(f"{gap}OK: no problems found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
