"""Localize objects in image files: class, top-5, score, boxes and a mask that agrees with them.

The model is an art-wsol checkpoint or any ImageNet classifier as it is (`--model NAME --weights
FILE`: torchvision:<name>, timm:<name> or a project arch with its own head). The map comes from
`wsol.attribution.saliency_maps` (the one heatmap path); the region from
`wsol.localization.region_at_threshold` (the mask is the box's connected region).
"""

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

from wsol.attribution import default_threshold, saliency_maps, saliency_names
from wsol.attribution.maps import PHOTO_BLUR, PHOTO_FALLBACK, PHOTO_SALIENCY
from wsol.data.images import ImageLoadError, load_rgb
from wsol.localization import region_at_threshold
from wsol.viz import draw_boxes, overlay_heatmap

from .checkpoint import CheckpointError, load_checkpoint
from .sources import ClassifierSpec, load_classifier

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
RUNS_ENV = "ART_WSOL_RUNS"
WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")


def newest_run_checkpoint(runs_root: str | os.PathLike | None = None) -> Path:
    """The newest ``checkpoint-best`` under the runs folder (``$ART_WSOL_RUNS`` or ./runs)."""
    root = Path(runs_root or os.environ.get(RUNS_ENV, "runs"))
    found = sorted(root.glob("**/checkpoint-best.json"), key=lambda p: p.stat().st_mtime) if root.is_dir() else []
    if not found:
        raise CheckpointError(
            f"no --checkpoint given and no trained run (checkpoint-best.json) under {root.resolve()}; "
            "train one with tools/train_wsol.py, pass --checkpoint RUN_OR_FILE, or run an ImageNet "
            "classifier with --model NAME --weights FILE"
        )
    return found[-1].with_suffix("")


def check_checkpoint_path(path: str | os.PathLike) -> None:
    """Refuse a plain weights file given as an art-wsol checkpoint, naming `--weights`."""
    p = Path(path)
    if p.is_dir() or p.suffix == ".json":
        return
    if p.suffix in WEIGHT_SUFFIXES or (p.suffix == ".safetensors" and not p.with_suffix(".json").is_file()):
        raise CheckpointError(
            f"--checkpoint {p}: a plain weights file, not an art-wsol checkpoint (a .safetensors with its "
            f".json beside it, or a run folder); to run an ImageNet classifier from it use "
            f"--model NAME --weights {p} (e.g. --model torchvision:resnet50)")


def expand_inputs(paths) -> list[Path]:
    """Image files from files and folders (folders: their images, sorted); a file named twice is
    taken once."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such image file or folder")
    if not out:
        raise FileNotFoundError(f"no images found in {', '.join(map(str, paths))}")
    seen: set[Path] = set()
    return [p for p in out if not (p.resolve() in seen or seen.add(p.resolve()))]


def output_stems(images: list[Path]) -> list[str]:
    """A distinct output name per input: its stem; where stems collide, the file name (img.jpg,
    img.png); where those collide too (same name in two folders), <folder>_<file name>."""
    names = [p.stem for p in images]
    for make in (lambda p: p.name, lambda p: f"{p.parent.name}_{p.name}"):
        counts = {n: names.count(n) for n in names}
        names = [make(p) if counts[n] > 1 else n for p, n in zip(images, names)]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n]}")
    return out


def image_to_input(image: np.ndarray, size: int) -> torch.Tensor:
    """uint8 RGB (H,W,3) -> model input (1,3,size,size) in [0,1] (area resize when shrinking)."""
    if size < 1:
        raise ValueError(f"image size must be a positive number of pixels, got {size}")
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
    """A model plus the settings to turn one image into class, top-5, score, boxes and mask.

    Give `checkpoint` (an art-wsol run or checkpoint) or `model` + `weights` (an ImageNet
    classifier as it is). Defaults: with a checkpoint, the ART paper's Grad map at 0.2; with an
    ImageNet classifier, the settings measured on real photos (CAM where the head allows it,
    else Grad-CAM; `wsol.attribution.THRESHOLDS["photo"]`).
    """

    checkpoint: str | os.PathLike | None = None
    saliency: str | None = None
    threshold: float | None = None
    multi_contour: bool = False
    image_size: int | None = None
    blur: float | None = None
    model_name: str | None = None
    weights: str | os.PathLike | None = None
    device: str = "cpu"
    model: torch.nn.Module = field(init=False)
    meta: dict = field(init=False)

    def __post_init__(self) -> None:
        if self.model_name:
            self.model, self.meta = load_classifier(ClassifierSpec(self.model_name, self.weights))
            protocol = "photo"
            default_saliency = PHOTO_SALIENCY if getattr(self.model, "has_cam_head", True) else PHOTO_FALLBACK
        else:
            if self.checkpoint is None:
                raise CheckpointError("give an art-wsol checkpoint, or model_name and weights")
            check_checkpoint_path(self.checkpoint)
            self.model, self.meta = load_checkpoint(self.checkpoint)
            protocol, default_saliency = "paper", "grad"
        self.model.to(self.device)
        self.saliency = self.saliency or default_saliency
        if self.blur is None:
            self.blur = PHOTO_BLUR.get(self.saliency, 0.0) if protocol == "photo" else 0.0
        if self.saliency not in saliency_names():
            raise ValueError(f"--saliency {self.saliency!r}: expected one of {', '.join(saliency_names())}")
        if self.threshold is None:
            self.threshold = default_threshold(self.saliency, protocol)
        self.size = int(self.image_size or self.meta.get("image_size") or 224)
        names = self.meta.get("class_names") or []
        self.class_names = names if len(names) == self.model.num_classes else \
            [f"class_{k:03d}" for k in range(self.model.num_classes)]

    @property
    def source(self) -> str:
        return f"{self.model_name} ({self.weights})" if self.model_name else str(self.checkpoint)

    def __call__(self, path: str | os.PathLike) -> tuple[dict, np.ndarray]:
        """(detection dict in original-image pixels, overlay uint8 (H,W,3)) for one image."""
        image = load_rgb(path)
        H, W = image.shape[:2]
        x = image_to_input(image, self.size).to(self.device)
        maps, logits = saliency_maps(self.model, x, None, self.saliency, size=(H, W), blur=self.blur)
        probs = logits.softmax(1)[0].cpu()
        cls = int(probs.argmax())
        scoremap = maps[0].numpy()
        mask, boxes = region_at_threshold(scoremap, self.threshold, multi_contour=self.multi_contour)
        top = probs.topk(min(5, len(probs)))
        det = {
            "image": str(path), "width": W, "height": H, "class_index": cls,
            "class_name": self.class_names[cls], "score": float(probs[cls]),
            "top5": [{"class_index": int(k), "class_name": self.class_names[int(k)], "score": float(p)}
                     for p, k in zip(top.values, top.indices)],
            "boxes": boxes.tolist() if mask.any() else [],
            "threshold": self.threshold, "saliency": self.saliency, "blur": self.blur,
            "model": self.source, "mask": encode_rle(mask),
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


def planned_outputs(images: list[Path], out_dir: Path) -> list[tuple[Path, Path]]:
    """(overlay path, json path) per image, names made distinct by `output_stems`."""
    return [(out_dir / f"{s}.overlay.png", out_dir / f"{s}.json") for s in output_stems(images)]


def check_outputs(planned: list[tuple[Path, Path]], out: Path, overwrite: bool = False) -> None:
    """Refuse an --out that is a file, or `planned` outputs that would overwrite earlier ones (unless asked)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: is a file; expected a folder for the overlays and JSON files")
    if overwrite:
        return
    existing = [p for pair in planned for p in pair if p.exists()]
    if existing:
        raise ValueError(f"--out {out}: {len(existing)} output file(s) from an earlier run would be overwritten "
                         f"(e.g. {existing[0].name}); pass --overwrite or choose another --out")


def localize_files(localizer: Localizer, images, out_dir: str | os.PathLike,
                   overwrite: bool = False) -> tuple[list[dict], list[tuple[str, str]]]:
    """Run on every image; writes ``<name>.overlay.png`` and ``<name>.json`` per image.

    An image that cannot be read is skipped with a warning (the others are still done).
    Returns (detections, skipped as (path, reason)).
    """
    files = expand_inputs(images)
    out = Path(out_dir)
    planned = planned_outputs(files, out)
    check_outputs(planned, out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    dets, skipped = [], []
    for path, (overlay_path, json_path) in zip(files, planned):
        try:
            det, overlay = localizer(path)
        except ImageLoadError as err:
            log.warning("skipped %s: %s", path, err)
            skipped.append((str(path), str(err)))
            continue
        cv2.imwrite(str(overlay_path), cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
        json_path.write_text(json.dumps(det, indent=2))
        det["overlay"], det["json"] = str(overlay_path), str(json_path)
        dets.append(det)
    return dets, skipped
