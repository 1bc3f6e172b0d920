"""Weakly supervised segmentation: pseudo masks from a classifier's heatmaps, scored or written.

Split mode (writes segment-<split>-<saliency>.json and an overlay PNG into the run folder or --out):

    python tools/segment.py --checkpoint RUN --data CUB_DIR --split test [--saliency grad]
        [--threshold fixed|otsu|val] [--tau 0.2] [--blur 0] [--refine none|grabcut] [--largest]

Image mode (writes <stem>.mask.png, <stem>.rle.json (COCO RLE) and <stem>.overlay.png into --out):

    python tools/segment.py image.jpg [more.jpg | a_folder ...] --checkpoint RUN [...the same options]
    python tools/segment.py image.jpg --segmenter SEG_RUN       # a network from tools/train_segmenter.py
    python tools/segment.py image.jpg --model torchvision:resnet50 --weights r50.pth   # an ImageNet classifier

Without --data, split mode uses the dataset the checkpoint was trained on. --threshold val picks
the tau with the best mean mask IoU on the validation split (never the test split); --tau
defaults to the ART paper's threshold of the saliency (Grad 0.2, others 0.1).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys


from segmentation.evaluate import SegmentOptions, choose_threshold, evaluate_pseudo_masks
from segmentation.maps import checkpoint_val_per_class
from segmentation.models import load_segmenter
from segmentation.predict import heatmap_mask, segment_files, segmenter_mask
from segmentation.pseudo import REFINEMENTS, THRESHOLD_MODES, PseudoMaskOptions
from wsol.data import CubFormatError, ImageLoadError
from wsol.engine.checkpoint import CheckpointError
from wsol.engine.distributed import resolve_device
from wsol.engine.evaluate import PROTOCOLS, SALIENCIES, default_threshold
from wsol.engine.sources import ClassifierSpec, load_model
from wsol.models import PretrainedWeightsMissing


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="*", help="image files or folders (image mode)")
    ap.add_argument("--checkpoint", help="WSOL classifier: run folder or checkpoint file")
    ap.add_argument("--model", help="an ImageNet classifier as it is instead: torchvision:<name>, timm:<name> or "
                    "an arch (needs --weights)")
    ap.add_argument("--weights", help="--model's state dict (.pth/.pt/.safetensors, its own key layout)")
    ap.add_argument("--segmenter", help="image mode: a trained segmenter run (tools/train_segmenter.py) instead")
    ap.add_argument("--data", help="dataset folder (CUB official layout or wsolevaluation metadata of CUB / "
                    "OpenImages); default: the checkpoint's training data")
    ap.add_argument("--image-root", help="the images, where they are not beside the metadata (default: the "
                    "checkpoint's when --data is its training data)")
    ap.add_argument("--mask-root", help="OpenImages: the folder its mask paths are relative to (default: the image root)")
    ap.add_argument("--split", default="test", choices=("train", "val", "test"))
    ap.add_argument("--saliency", default="grad", choices=SALIENCIES)
    ap.add_argument("--protocol", default="wsolevaluation", choices=PROTOCOLS)
    ap.add_argument("--threshold", default="fixed", choices=THRESHOLD_MODES)
    ap.add_argument("--tau", type=float, help="fixed threshold (default: Grad 0.2, others 0.1)")
    ap.add_argument("--blur", type=float, default=0.0, help="Gaussian blur sigma (pixels) of the map")
    ap.add_argument("--refine", default="none", choices=REFINEMENTS)
    ap.add_argument("--largest", action="store_true", help="keep the largest connected component")
    ap.add_argument("--image-size", type=int, help="network input size (default: the checkpoint's)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--num-overlays", type=int, default=12)
    ap.add_argument("--val-per-class", type=int, help="official layout: val images per class carved from "
                    "train (default: the checkpoint's)")
    ap.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    ap.add_argument("--out", help="output folder (split mode: default the run folder; image mode: segment_out)")
    args = ap.parse_args(argv)
    if args.model and args.checkpoint:
        ap.error("give --model/--weights or --checkpoint, not both")
    if bool(args.model) != bool(args.weights):
        ap.error("--model and --weights go together (weights are never downloaded)")
    return args


def classifier_source(args):
    """The checkpoint path, or a ClassifierSpec for --model/--weights."""
    return ClassifierSpec(args.model, args.weights) if args.model else args.checkpoint


def pseudo_options(args) -> PseudoMaskOptions:
    tau = args.tau if args.tau is not None else default_threshold(args.saliency)
    opts = PseudoMaskOptions(threshold=args.threshold, tau=tau, blur_sigma=args.blur, refine=args.refine,
                             largest=args.largest)
    opts.check()
    return opts


def image_mode(args) -> list[dict]:
    out = args.out or "segment_out"
    device = resolve_device(args.device)
    if args.segmenter:
        model, meta = load_segmenter(args.segmenter)
        model.to(device)
        return segment_files(args.images, out, lambda img: segmenter_mask(model, meta, img), str(args.segmenter))
    model, meta = load_model(classifier_source(args))
    model.to(device)
    if args.image_size:
        meta["image_size"] = args.image_size
    opts = pseudo_options(args)
    tau = None
    if opts.threshold == "val":
        data = args.data or meta.get("data")
        seg = SegmentOptions(saliency=args.saliency, protocol=args.protocol, batch_size=args.batch_size, pseudo=opts,
                             image_root=args.image_root, mask_root=args.mask_root)
        vpc = checkpoint_val_per_class(meta) if args.val_per_class is None else args.val_per_class
        tau = choose_threshold(model, data, seg, int(meta.get("image_size") or 224), vpc, meta)["tau"]
    return segment_files(args.images, out, lambda img: heatmap_mask(model, meta, img, args.saliency, opts, tau,
                                                                   args.protocol), str(classifier_source(args)))


def main(argv=None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    try:
        if not args.checkpoint and not args.model and not args.segmenter:
            raise ValueError("--checkpoint RUN (a WSOL classifier) or --model NAME --weights FILE is required "
                             "(or --segmenter SEG_RUN with images)")
        if args.images:
            for r in image_mode(args):
                what = f"class {r['class_name']} ({r['score']:.2f}), " if "class_name" in r else ""
                print(f"{r['image']}: {what}mask {r['area']} px of {r['width']}x{r['height']} -> {r['files']['mask']}, "
                      f"{r['files']['rle']}")
            return 0
        if args.segmenter:
            raise ValueError("--segmenter works in image mode; tools/train_segmenter.py scores it on the test split")
        meta = load_model(classifier_source(args))[1]
        data = args.data or meta.get("data")
        if not data:
            raise ValueError("--data CUB_DIR is required: the checkpoint does not record its dataset")
        opts = SegmentOptions(split=args.split, saliency=args.saliency, protocol=args.protocol,
                              image_size=args.image_size, batch_size=args.batch_size,
                              val_per_class=args.val_per_class, num_overlays=args.num_overlays,
                              pseudo=pseudo_options(args), device=args.device, image_root=args.image_root,
                              mask_root=args.mask_root)
        report = evaluate_pseudo_masks(classifier_source(args), data, opts, args.out)
    except (ValueError, CheckpointError, CubFormatError, ImageLoadError, FileNotFoundError, OSError,
            PretrainedWeightsMissing) as err:
        print(f"segment: error: {err}", file=sys.stderr)
        return 2
    s, m = report["scoremap"], report["pseudo_masks"]
    print(json.dumps({"num_images": report["num_images"], "PxAP": round(s["PxAP"], 2),
                      "best_mask_IoU": round(s["best_mask_IoU"], 2), "best_threshold": s["best_threshold"],
                      "pseudo_mIoU": round(m["mIoU"], 2), "fg_IoU": round(m["fg_IoU"], 2),
                      "bg_IoU": round(m["bg_IoU"], 2), "threshold": report["threshold"]}, indent=1))
    print(f"report: {report['files']['json']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
