#!/usr/bin/env python
"""Localize the object in images with a trained WSOL checkpoint.

    python tools/localize.py image.jpg [more.jpg | a_folder ...] [--checkpoint RUN_OR_FILE]
        [--saliency grad] [--threshold t] [--multi-contour] [--out DIR] [--coco out.json]

Prints the predicted class, its score and the box(es) per image; writes <stem>.overlay.png
(heatmap and box) and <stem>.json (class, score, boxes, threshold, mask as COCO RLE) into
--out (default: localize_out). Without --checkpoint the newest run's best checkpoint under
./runs (or $ART_WSOL_RUNS) is used.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wsol.attribution import ATTRIBUTION_METHODS  # noqa: E402
from wsol.data import ImageLoadError  # noqa: E402
from wsol.engine.checkpoint import CheckpointError  # noqa: E402
from wsol.engine.localize import Localizer, localize_files, newest_run_checkpoint, to_coco_results  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="+", help="image files or folders of images")
    ap.add_argument("--checkpoint", help="run folder or checkpoint file (default: newest run's best)")
    ap.add_argument("--saliency", default="grad", choices=tuple(ATTRIBUTION_METHODS))
    ap.add_argument("--threshold", type=float, help="box/mask threshold on the normalised map "
                    "(default: 0.2 for grad, 0.1 otherwise)")
    ap.add_argument("--multi-contour", action="store_true", help="one box per contour instead of the largest")
    ap.add_argument("--image-size", type=int, help="network input size (default: the checkpoint's)")
    ap.add_argument("--out", default="localize_out", help="folder for overlays and JSON")
    ap.add_argument("--coco", help="also write all detections in COCO results format to this file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.threshold is not None and not 0 <= args.threshold < 1:
        ap.error(f"--threshold must be in [0, 1), got {args.threshold}")
    try:
        ckpt = args.checkpoint or newest_run_checkpoint()
        if not args.checkpoint:
            print(f"using the newest run's checkpoint: {ckpt}")
        loc = Localizer(ckpt, args.saliency, args.threshold, args.multi_contour, args.image_size)
        dets = localize_files(loc, args.images, args.out)
    except (CheckpointError, ImageLoadError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for d in dets:
        boxes = " ".join(f"[{x0},{y0},{x1},{y1}]" for x0, y0, x1, y1 in d["boxes"])
        print(f"{d['image']}: {d['class_name']} ({d['score']:.3f})  boxes {boxes}  -> {d['overlay']}")
    if args.coco:
        Path(args.coco).write_text(json.dumps(to_coco_results(dets)))
        print(f"wrote {args.coco} ({sum(len(d['boxes']) for d in dets)} detections)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
