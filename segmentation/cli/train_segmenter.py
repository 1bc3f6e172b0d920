"""Second stage of weakly supervised segmentation: train a segmentation network on a WSOL
classifier's pseudo masks of the training split, then score it on the test split (mIoU).

    python tools/train_segmenter.py --checkpoint RUN [--data CUB_DIR] --out SEG_RUN
        [--arch deeplabv3_wsol|deeplabv3_resnet50|fcn_resnet50|deeplabv3_mobilenet_v3_large]
        [--saliency grad] [--threshold fixed|otsu] [--tau 0.2] [--blur 0] [--refine none|grabcut]
        [--largest] [--epochs 10] [--batch-size 16] [--lr 0.01]

deeplabv3_wsol (the CPU-sized one) is torchvision's DeepLabV3 head on the classifier's own trunk,
initialised from the checkpoint; the torchvision archs start from scratch, or from ImageNet
backbone weights in the local torch hub cache with --backbone-weights (never downloaded).
Writes SEG_RUN/report.json (test fg/bg IoU, mIoU, PxAP), metrics.jsonl, checkpoint-last.*,
pseudo_masks/, pseudo-train.json and test-overlays.png. Use the result on images with
`tools/segment.py image.jpg --segmenter SEG_RUN`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


from segmentation.models import SEGMENTERS
from segmentation.pseudo import REFINEMENTS, PseudoMaskOptions
from segmentation.train import SegTrainOptions, train_segmenter
from wsol.data import CubFormatError, ImageLoadError
from wsol.engine.checkpoint import CheckpointError, read_checkpoint_meta
from wsol.engine.evaluate import PROTOCOLS, SALIENCIES, default_threshold


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="WSOL classifier: run folder or checkpoint file")
    ap.add_argument("--data", help="dataset folder (CUB, or wsolevaluation metadata); default: the checkpoint's "
                    "training data")
    ap.add_argument("--image-root", help="the images, where they are not beside the metadata (default: the "
                    "checkpoint's when --data is its training data)")
    ap.add_argument("--mask-root", help="OpenImages: the folder its mask paths are relative to (default: the image root)")
    ap.add_argument("--out", required=True, help="run folder for the segmenter")
    ap.add_argument("--arch", default="deeplabv3_wsol", choices=SEGMENTERS)
    ap.add_argument("--scratch", action="store_true", help="deeplabv3_wsol: do not start from the classifier")
    ap.add_argument("--saliency", default="grad", choices=SALIENCIES)
    ap.add_argument("--protocol", default="wsolevaluation", choices=PROTOCOLS)
    ap.add_argument("--threshold", default="fixed", choices=("fixed", "otsu"))
    ap.add_argument("--tau", type=float, help="fixed threshold (default: Grad 0.2, others 0.1)")
    ap.add_argument("--blur", type=float, default=0.0)
    ap.add_argument("--refine", default="none", choices=REFINEMENTS)
    ap.add_argument("--largest", action="store_true")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--image-size", type=int)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    tau = args.tau if args.tau is not None else default_threshold(args.saliency)
    opts = SegTrainOptions(arch=args.arch, init_from_classifier=not args.scratch, saliency=args.saliency,
                           protocol=args.protocol, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                           seed=args.seed, image_size=args.image_size, num_workers=args.workers, device=args.device,
                           image_root=args.image_root, mask_root=args.mask_root,
                           pseudo=PseudoMaskOptions(threshold=args.threshold, tau=tau, blur_sigma=args.blur,
                                                    refine=args.refine, largest=args.largest))
    try:
        data = args.data or read_checkpoint_meta(args.checkpoint).get("data")
        if not data:
            raise ValueError("--data CUB_DIR is required: the checkpoint does not record its dataset")
        report = train_segmenter(args.checkpoint, data, args.out, opts)
    except (ValueError, RuntimeError, CheckpointError, CubFormatError, ImageLoadError, OSError) as err:
        print(f"train_segmenter: error: {err}", file=sys.stderr)
        return 2
    t, p = report["test"], report["pseudo_train"]
    print(json.dumps({"test_mIoU": round(t["mIoU"], 2), "test_fg_IoU": round(t["fg_IoU"], 2),
                      "test_PxAP": round(t["PxAP"], 2), "pseudo_masks": p["num_masks"],
                      "pseudo_vs_gt_mIoU": round(p["vs_gt_masks"]["mIoU"], 2) if "vs_gt_masks" in p else None,
                      "train_s": round(report["train_s"], 1)}, indent=1))
    print(f"report: {Path(args.out) / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
