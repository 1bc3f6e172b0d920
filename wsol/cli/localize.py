"""Localize the object in images with an ImageNet classifier or a trained WSOL checkpoint.

    python tools/localize.py IMAGE... --model NAME --weights FILE      # any ImageNet classifier as it is
    python tools/localize.py IMAGE... [--checkpoint RUN_OR_FILE]        # an art-wsol checkpoint
        [--saliency S] [--threshold t] [--blur SIGMA] [--multi-contour] [--out DIR] [--coco out.json]

NAME is torchvision:<name> (e.g. torchvision:resnet50, torchvision:vgg16), timm:<name> or a
project arch; FILE a .pth/.pt/.safetensors state dict in that model's own key layout (nothing is
downloaded). Prints the top-5 classes with scores and the box(es) per image; writes
<name>.overlay.png (heatmap and box) and <name>.json (top-5, class, score, boxes, threshold,
saliency, mask as COCO RLE) into --out (default: localize_out). The mask is the region the box
bounds. Without --checkpoint or --model the newest run's best checkpoint under ./runs (or
$ART_WSOL_RUNS) is used. An unreadable image is skipped with a warning; the others are done and
the exit status is 1 naming it. Earlier outputs are never overwritten without --overwrite.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from wsol.attribution import saliency_names
from wsol.data import ImageLoadError
from wsol.engine.checkpoint import CheckpointError
from wsol.engine.localize import Localizer, localize_files, newest_run_checkpoint, to_coco_results
from wsol.models import PretrainedWeightsMissing


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of pixels, got {text}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="+", help="image files or folders of images")
    src = ap.add_argument_group("model (one of)")
    src.add_argument("--model", help="an ImageNet classifier as it is: torchvision:<name>, timm:<name> or an arch")
    src.add_argument("--weights", help="its state dict (.pth/.pt/.safetensors, the model's own key layout)")
    src.add_argument("--checkpoint", help="art-wsol run folder or checkpoint (default: newest run's best)")
    ap.add_argument("--saliency", choices=saliency_names(), help="map (default: cam where the head is "
                    "GAP + linear, else gradcam, for --model; grad for a checkpoint)")
    ap.add_argument("--threshold", type=float, help="box/mask threshold on the [0,1] map (default: measured "
                    "on real photos for --model; the ART paper's 0.2 (grad) / 0.1 for a checkpoint)")
    ap.add_argument("--blur", type=float, help="Gaussian sigma in network-input pixels on the map before "
                    "thresholding (default 0)")
    ap.add_argument("--multi-contour", action="store_true", help="one box per region instead of the largest")
    ap.add_argument("--image-size", type=positive_int, help="network input size (default: the model's)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    ap.add_argument("--out", default="localize_out", help="folder for overlays and JSON")
    ap.add_argument("--coco", help="also write all detections in COCO results format to this file")
    ap.add_argument("--overwrite", action="store_true", help="replace outputs of an earlier run in --out")
    args = ap.parse_args(argv)
    if args.threshold is not None and not 0 <= args.threshold < 1:
        ap.error(f"--threshold must be in [0, 1), got {args.threshold}")
    if args.blur is not None and not args.blur >= 0:
        ap.error(f"--blur must be >= 0 (pixels), got {args.blur}")
    if args.model and args.checkpoint:
        ap.error("give --model/--weights or --checkpoint, not both")
    if args.weights and not args.model:
        ap.error("--weights needs --model NAME (e.g. --model torchvision:resnet50)")
    if args.coco:
        coco = Path(args.coco)
        if coco.is_dir() or not coco.parent.is_dir():
            ap.error(f"--coco {coco}: expected a file in an existing folder")
        if coco.exists() and not args.overwrite:
            ap.error(f"--coco {coco}: exists; pass --overwrite to replace it")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        ckpt = args.checkpoint
        if not args.model and not ckpt:
            ckpt = newest_run_checkpoint()
            print(f"using the newest run's checkpoint: {ckpt}")
        loc = Localizer(ckpt, args.saliency, args.threshold, args.multi_contour, args.image_size, args.blur,
                        model_name=args.model, weights=args.weights, device=args.device)
        dets, skipped = localize_files(loc, args.images, args.out, overwrite=args.overwrite)
    except (CheckpointError, ImageLoadError, FileNotFoundError, ValueError, PretrainedWeightsMissing) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for d in dets:
        boxes = " ".join(f"[{x0},{y0},{x1},{y1}]" for x0, y0, x1, y1 in d["boxes"]) or "none"
        top5 = ", ".join(f"{t['class_name']} {t['score']:.3f}" for t in d["top5"])
        print(f"{d['image']}: {d['class_name']} ({d['score']:.3f})  boxes {boxes}  -> {d['overlay']}\n"
              f"    top-5: {top5}")
    if args.coco:
        Path(args.coco).write_text(json.dumps(to_coco_results(dets)))
        print(f"wrote {args.coco} ({sum(len(d['boxes']) for d in dets)} detections)")
    if skipped:
        print(f"error: {len(skipped)} image(s) could not be read and were skipped: "
              + "; ".join(why for _, why in skipped), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
