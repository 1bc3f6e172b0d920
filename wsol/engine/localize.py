"""Localize objects in image files with a trained checkpoint: class, score, boxes, mask."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_utils

from wsol.attribution import attribute, reduce_channels
from wsol.data.images import load_rgb
from wsol.localization import boxes_at_threshold, normalize_scoremap
from wsol.viz import draw_boxes, overlay_heatmap

from .checkpoint import CheckpointError, load_checkpoint

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
DEFAULT_THRESHOLDS = {"grad": 0.2}  # the ART paper's Grad threshold; CAM-like maps use 0.1
RUNS_ENV = "ART_WSOL_RUNS"


def newest_run_checkpoint(runs_root: str | os.PathLike | None = None) -> Path:
    """The newest ``checkpoint-best`` under the runs folder (``$ART_WSOL_RUNS`` or ./runs)."""
    root = Path(runs_root or os.environ.get(RUNS_ENV, "runs"))
    found = sorted(root.glob("**/checkpoint-best.json"), key=lambda p: p.stat().st_mtime) if root.is_dir() else []
    if not found:
        raise CheckpointError(
            f"no --checkpoint given and no trained run (checkpoint-best.json) under {root.resolve()}; "
            "train one with tools/train_wsol.py or pass --checkpoint RUN_OR_FILE"
        )
    return found[-1].with_suffix("")


def expand_inputs(paths) -> list[Path]:
    """Image files from files and folders (folders: their images, sorted)."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such image file or folder")
    if not out:
        raise FileNotFoundError(f"no images found in {', '.join(map(str, paths))}")
    return out


def image_to_input(image: np.ndarray, size: int) -> torch.Tensor:
    """uint8 RGB (H,W,3) -> model input (1,3,size,size) in [0,1] (area resize when shrinking)."""
    W = image.shape[1]
    resized = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if W > size else cv2.INTER_LINEAR)
    return torch.from_numpy(resized).permute(2, 0, 1).float().div(255).unsqueeze(0)


def encode_rle(mask: np.ndarray) -> dict:
    """Bool (H,W) -> COCO RLE with a JSON-safe ``counts`` string."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


@dataclass
class Localizer:
    """A checkpoint plus the settings to turn one image into class, score, boxes and mask."""

    checkpoint: str | os.PathLike
    saliency: str = "grad"
    threshold: float | None = None
    multi_contour: bool = False
    image_size: int | None = None
    model: torch.nn.Module = field(init=False)
    meta: dict = field(init=False)

    def __post_init__(self) -> None:
        self.model, self.meta = load_checkpoint(self.checkpoint)
        self.size = int(self.image_size or self.meta.get("image_size") or 224)
        if self.threshold is None:
            self.threshold = DEFAULT_THRESHOLDS.get(self.saliency, 0.1)
        names = self.meta.get("class_names") or []
        self.class_names = names if len(names) == self.model.num_classes else \
            [f"class_{k:03d}" for k in range(self.model.num_classes)]

    def __call__(self, path: str | os.PathLike) -> tuple[dict, np.ndarray]:
        """(detection dict in original-image pixels, overlay uint8 (H,W,3)) for one image."""
        image = load_rgb(path)
        H, W = image.shape[:2]
        x = image_to_input(image, self.size)
        with torch.no_grad():
            probs = self.model(x).softmax(1)[0]
        cls = int(probs.argmax())
        raw = attribute(self.saliency, self.model, x, torch.tensor([cls]))
        raw = reduce_channels(raw, "abs_mean") if raw.ndim == 4 else raw
        scoremap = normalize_scoremap(raw[0].detach().double().numpy(), (W, H))
        boxes = boxes_at_threshold(scoremap, self.threshold, multi_contour=self.multi_contour)
        mask = scoremap >= self.threshold
        det = {
            "image": str(path), "width": W, "height": H, "class_index": cls,
            "class_name": self.class_names[cls], "score": float(probs[cls]),
            "boxes": np.asarray(boxes).reshape(-1, 4).astype(int).tolist(),
            "threshold": self.threshold, "saliency": self.saliency,
            "checkpoint": str(self.checkpoint), "mask": encode_rle(mask),
        }
        overlay = draw_boxes(overlay_heatmap(image, scoremap), det["boxes"], thickness=max(1, W // 200))
        return det, overlay


def to_coco_results(detections: list[dict]) -> list[dict]:
    """COCO results format: one entry per box (image_id = 1-based input order)."""
    out = []
    for k, det in enumerate(detections, start=1):
        for x0, y0, x1, y1 in det["boxes"]:
            out.append({"image_id": k, "file_name": det["image"], "category_id": det["class_index"] + 1,
                        "bbox": [x0, y0, x1 - x0 + 1, y1 - y0 + 1], "score": det["score"],
                        "segmentation": det["mask"]})
    return out


def localize_files(localizer: Localizer, images, out_dir: str | os.PathLike) -> list[dict]:
    """Run on every image; writes ``<stem>.overlay.png`` and ``<stem>.json`` per image."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dets = []
    for path in expand_inputs(images):
        det, overlay = localizer(path)
        stem = out / Path(path).stem
        cv2.imwrite(f"{stem}.overlay.png", cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
        Path(f"{stem}.json").write_text(json.dumps(det, indent=2))
        det["overlay"], det["json"] = f"{stem}.overlay.png", f"{stem}.json"
        dets.append(det)
    return dets
