"""Write wsolevaluation metadata (train/[val/]test) for an official CUB-200-2011 folder.

    python tools/convert_cub.py CUB_200_2011 --out metadata/CUB [--val-per-class N]

Boxes follow wsolevaluation's rule x1 = min(x + w, W - 1); ids are paths relative to images/.
"""

from __future__ import annotations

import argparse
import sys


from wsol.data import CubFormatError, convert_official_to_wsoleval


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", help="official CUB_200_2011 folder (holds images.txt)")
    ap.add_argument("--out", required=True, help="output metadata folder")
    ap.add_argument("--val-per-class", type=int, default=0,
                    help="carve a deterministic val split of N images per class out of train")
    args = ap.parse_args(argv)
    try:
        counts = convert_official_to_wsoleval(args.root, args.out, args.val_per_class)
    except (CubFormatError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
