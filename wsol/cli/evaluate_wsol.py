"""Score WSOL localization: a checkpoint on a split of CUB, ILSVRC or OpenImages, or saved score maps.

Checkpoint mode (writes eval-<split>-<saliency>.json, a BoxAcc-vs-threshold PNG and an
overlay grid into the run folder, or --out-dir):

    python tools/evaluate_wsol.py --checkpoint RUN --data CUB_DIR --split test \\
        --saliency grad|cam|gradcam|gradcampp|ig|smoothgrad|gradshap --protocol wsolevaluation|paper
    python tools/evaluate_wsol.py --checkpoint RUN --data metadata/ILSVRC --image-root dataset/ILSVRC \\
        --saliency cam [--class-predictions top5.csv]     # + top5_loc; classes from another classifier

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
from collections.abc import Sequence
from pathlib import Path

from wsol.data import CubFormatError, ImageLoadError

# Checkpoint mode needs torch and the models; score-map mode needs neither, so the heavy modules
# are imported inside the checkpoint branch (and by the lazy option choices below) only.

SUMMARY_KEYS = ("num_images", "top1_acc", "top5_acc", "gt_known_loc", "top1_loc", "top5_loc", "MaxBoxAcc", "MaxBoxAccV2",
                "best_threshold", "PxAP", "mIoU")


class _LazyChoices(Sequence):
    """An option's choices, read from ``wsol.engine.evaluate`` (torch) when argparse first checks
    a value against them or prints --help -- not when the option is left at its default."""

    def __init__(self, name: str):
        self.name, self._items = name, None

    def _get(self) -> tuple:
        if self._items is None:
            from wsol.engine import evaluate

            self._items = tuple(getattr(evaluate, self.name))
        return self._items

    def __getitem__(self, i):
        return self._get()[i]

    def __len__(self) -> int:
        return len(self._get())

    def __contains__(self, value) -> bool:
        return value in self._get()


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="run folder or checkpoint file (checkpoint mode)")
    ap.add_argument("--model", help="checkpoint mode with an ImageNet classifier as it is: torchvision:<name>, "
                    "timm:<name> or an arch (needs --weights, --out-dir and a dataset with ImageNet's classes)")
    ap.add_argument("--weights", help="--model's state dict (.pth/.pt/.safetensors, its own key layout)")
    ap.add_argument("--data", help="dataset folder: CUB (official layout) or wsolevaluation metadata of CUB, "
                    "ILSVRC or OpenImages (metadata/<Dataset> or the folder holding metadata/)")
    ap.add_argument("--dataset", choices=("cub", "ilsvrc", "openimages"),
                    help="checkpoint mode: which dataset --data holds (default: from the folder names)")
    ap.add_argument("--class-predictions", metavar="FILE",
                    help="checkpoint mode: CSV (image_id,c1,...,c5) or JSON ({image_id: [c1, ...]}) of another "
                         "classifier's ranked classes, best first: Top-1 / Top-5 Loc and accuracy take their classes "
                         "from it (as PSOL, GenPromp report); the JSON says so under classes_from")
    ap.add_argument("--split", default="test", choices=("train", "val", "test"))
    ap.add_argument("--saliency", default="grad", choices=_LazyChoices("SALIENCIES"), metavar="NAME",
                    help="heatmap method, one of: %(choices)s (default: %(default)s)")
    ap.add_argument("--protocol", default="wsolevaluation", choices=_LazyChoices("PROTOCOLS"), metavar="NAME",
                    help="one of: %(choices)s (default: %(default)s)")
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
    ap.add_argument("--image-root", help="image folder the ids are relative to, where it is not beside the metadata "
                    "(wsolevaluation: dataset/<Dataset>); score-map mode: needed only to find CUB segmentations "
                    "(sizes come from image_sizes.txt)")
    ap.add_argument("--mask-root", help="root the mask paths of OpenImages' localization.txt are relative to "
                    "(default: the image root)")
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
    checkpoint_mode = bool(args.checkpoint or args.model)
    try:
        result = _evaluate_checkpoint(args) if checkpoint_mode else _evaluate_scoremaps(args)
    except _user_errors(checkpoint_mode) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for key in SUMMARY_KEYS:
        if key in result and result[key] is not None:
            val = result[key]
            text = json.dumps(val) if isinstance(val, dict) else f"{val:.2f}" if isinstance(val, float) else val
            print(f"{key:14s} {text}")
    return 0


def _user_errors(checkpoint_mode: bool) -> tuple[type[BaseException], ...]:
    """The errors a user can cause, reported in one line (checkpoint mode adds torch-side ones)."""
    errors: tuple[type[BaseException], ...] = (CubFormatError, ImageLoadError, FileNotFoundError, ValueError)
    if checkpoint_mode:
        from wsol.engine.checkpoint import CheckpointError
        from wsol.models import PretrainedWeightsMissing

        errors += (CheckpointError, PretrainedWeightsMissing)
    return errors


def _evaluate_checkpoint(args) -> dict:
    """Checkpoint mode: imports torch, the models and the attribution methods."""
    from wsol.engine.evaluate import EvalOptions, evaluate_checkpoint
    from wsol.engine.sources import ClassifierSpec

    opts = EvalOptions(split=args.split, saliency=args.saliency, protocol=args.protocol,
                       image_size=args.image_size, batch_size=args.batch_size,
                       cam_curve_interval=args.cam_curve_interval, threshold=args.threshold,
                       val_per_class=args.val_per_class, num_overlays=args.num_overlays,
                       num_workers=args.workers, device=args.device,
                       bn_recalibrate=args.bn_recalibrate, dataset=args.dataset, image_root=args.image_root,
                       mask_root=args.mask_root, class_predictions=args.class_predictions)
    source = ClassifierSpec(args.model, args.weights) if args.model else args.checkpoint
    return evaluate_checkpoint(source, args.data, opts, args.out_dir)


def _evaluate_scoremaps(args) -> dict:
    """Score-map mode: numpy, cv2 and numba only (no torch); writes the JSON report."""
    from wsol.engine.scoremaps import evaluate_scoremaps

    out = Path(args.out) if args.out else Path(args.scoremaps) / "eval.json"
    result = evaluate_scoremaps(args.scoremaps, args.metadata, mask_root=args.mask_root,
                                image_root=args.image_root, cam_curve_interval=args.cam_curve_interval)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    sys.exit(main())
