"""Score WSOL localization: a checkpoint on a CUB split, or saved score maps.

Checkpoint mode (writes eval-<split>-<saliency>.json, a BoxAcc-vs-threshold PNG and an
overlay grid into the run folder, or --out-dir):

    python tools/evaluate_wsol.py --checkpoint RUN --data CUB_DIR --split test \\
        --saliency grad|cam|gradcam|gradcampp|ig|smoothgrad|gradshap --protocol wsolevaluation|paper

An ImageNet classifier as it is (on a dataset whose classes are ImageNet's):

    python tools/evaluate_wsol.py --model torchvision:resnet50 --weights r50.pth --data DIR --out-dir OUT

Score-map mode (one <image_id>.npy per image, any size, resized as wsolevaluation does):

    python tools/evaluate_wsol.py --scoremaps DIR --metadata METADATA_SPLIT_DIR [--mask-root DIR]
        [--cam-curve-interval 0.01] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


from wsol.data import CubFormatError, ImageLoadError
from wsol.engine.checkpoint import CheckpointError
from wsol.engine.evaluate import PROTOCOLS, SALIENCIES, EvalOptions, evaluate_checkpoint
from wsol.engine.scoremaps import evaluate_scoremaps
from wsol.engine.sources import ClassifierSpec
from wsol.models import PretrainedWeightsMissing

SUMMARY_KEYS = ("num_images", "top1_acc", "gt_known_loc", "top1_loc", "MaxBoxAcc", "MaxBoxAccV2",
                "best_threshold", "PxAP", "mIoU")


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="run folder or checkpoint file (checkpoint mode)")
    ap.add_argument("--model", help="checkpoint mode with an ImageNet classifier as it is: torchvision:<name>, "
                    "timm:<name> or an arch (needs --weights, --out-dir and a dataset with ImageNet's classes)")
    ap.add_argument("--weights", help="--model's state dict (.pth/.pt/.safetensors, its own key layout)")
    ap.add_argument("--data", help="CUB folder (official layout or wsolevaluation metadata)")
    ap.add_argument("--split", default="test", choices=("train", "val", "test"))
    ap.add_argument("--saliency", default="grad", choices=SALIENCIES)
    ap.add_argument("--protocol", default="wsolevaluation", choices=PROTOCOLS)
    ap.add_argument("--image-size", type=int, help="default: the checkpoint's image size")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threshold", type=float, help="fixed threshold for GT-known/Top-1 Loc "
                    "(default: Grad 0.2, CAM-like 0.1, as the ART paper)")
    ap.add_argument("--val-per-class", type=int, default=0, help="official layout: carve val from train")
    ap.add_argument("--num-overlays", type=int, default=16)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    ap.add_argument("--bn-recalibrate", type=int, default=0, metavar="BATCHES",
                    help="checkpoint mode: first re-estimate the BN running statistics with the plain network on "
                         "this many train-split batches (e.g. an ART checkpoint whose Softplus passes moved them)")
    ap.add_argument("--out-dir", help="checkpoint mode: where to write (default: the run folder)")
    ap.add_argument("--scoremaps", help="folder of <image_id>.npy maps (score-map mode)")
    ap.add_argument("--metadata", help="wsolevaluation metadata split folder (score-map mode)")
    ap.add_argument("--image-root", help="score-map mode: image folder the ids are relative to (for sizes "
                    "image_sizes.txt is used; needed only to find CUB segmentations)")
    ap.add_argument("--mask-root", help="score-map mode: root the mask paths of localization.txt are relative to")
    ap.add_argument("--cam-curve-interval", type=float, default=0.01)
    ap.add_argument("--out", help="score-map mode: output JSON (default: <scoremaps>/eval.json)")
    args = ap.parse_args(argv)
    if args.model and args.checkpoint:
        ap.error("give --model/--weights or --checkpoint, not both")
    if args.weights and not args.model:
        ap.error("--weights needs --model NAME")
    if args.model and not args.weights:
        ap.error(f"--model {args.model} needs --weights FILE (weights are never downloaded)")
    if args.model and not args.out_dir:
        ap.error("--model needs --out-dir DIR (there is no run folder to write into)")
    model = args.checkpoint or args.model
    if bool(model) == bool(args.scoremaps):
        ap.error("give either --checkpoint or --model/--weights (with --data), or --scoremaps (with --metadata)")
    if model and not args.data:
        ap.error("--checkpoint / --model need --data DATA_DIR")
    if args.scoremaps and not args.metadata:
        ap.error("--scoremaps needs --metadata DIR")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.checkpoint or args.model:
            opts = EvalOptions(split=args.split, saliency=args.saliency, protocol=args.protocol,
                               image_size=args.image_size, batch_size=args.batch_size,
                               cam_curve_interval=args.cam_curve_interval, threshold=args.threshold,
                               val_per_class=args.val_per_class, num_overlays=args.num_overlays,
                               num_workers=args.workers, device=args.device,
                               bn_recalibrate=args.bn_recalibrate)
            source = ClassifierSpec(args.model, args.weights) if args.model else args.checkpoint
            result = evaluate_checkpoint(source, args.data, opts, args.out_dir)
        else:
            out = Path(args.out) if args.out else Path(args.scoremaps) / "eval.json"
            result = evaluate_scoremaps(args.scoremaps, args.metadata, mask_root=args.mask_root,
                                        image_root=args.image_root, cam_curve_interval=args.cam_curve_interval)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(result, indent=2))
            print(f"wrote {out}")
    except (CheckpointError, CubFormatError, ImageLoadError, FileNotFoundError, ValueError,
            PretrainedWeightsMissing) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for key in SUMMARY_KEYS:
        if key in result and result[key] is not None:
            val = result[key]
            text = json.dumps(val) if isinstance(val, dict) else f"{val:.2f}" if isinstance(val, float) else val
            print(f"{key:14s} {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
