"""Masks for single image files: from a classifier's heatmap (pseudo mask) or a trained segmenter.

Each image gives ``<stem>.mask.png`` (0 / 255, the image's own size), ``<stem>.rle.json``
(COCO RLE of the mask, with class, score and settings) and ``<stem>.overlay.png``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import torch

from wsol.attribution import saliency_maps
from wsol.data.images import load_rgb
from wsol.engine.localize import encode_rle, expand_inputs, image_to_input
from wsol.models import model_device

from .evaluate import mask_overlay
from .pseudo import PseudoMaskOptions, pseudo_mask, smooth


def heatmap_mask(classifier, meta: dict, image: np.ndarray, saliency: str, opts: PseudoMaskOptions,
                 tau: float | None = None, protocol: str = "wsolevaluation") -> tuple[np.ndarray, dict]:
    """(bool mask at the image's size, info) from the classifier's map for its predicted class."""
    H, W = image.shape[:2]
    device = model_device(classifier)
    x = image_to_input(image, int(meta.get("image_size") or 224)).to(device)
    maps, logits = saliency_maps(classifier, x, None, saliency, size=(H, W), protocol=protocol)
    probs = logits.softmax(1)[0].cpu()
    cls = int(probs.argmax())
    scoremap = smooth(maps[0].numpy(), opts.blur_sigma)
    mask, used = pseudo_mask(scoremap, opts, image, tau)
    names = meta.get("class_names") or []
    return mask, {"class_index": cls, "class_name": names[cls] if cls < len(names) else f"class_{cls:03d}",
                  "score": float(probs[cls]), "saliency": saliency, "threshold": used,
                  "pseudo_mask_options": opts.to_dict()}


def segmenter_mask(segmenter, meta: dict, image: np.ndarray) -> tuple[np.ndarray, dict]:
    """(bool mask at the image's size, info) from a trained segmenter (foreground prob >= 0.5)."""
    H, W = image.shape[:2]
    x = image_to_input(image, int(meta.get("image_size") or 224)).to(model_device(segmenter))
    with torch.no_grad():
        prob = segmenter(x).softmax(1)[0, 1].cpu().numpy().astype(np.float32)
    prob = cv2.resize(prob, (W, H), interpolation=cv2.INTER_LINEAR)
    return prob >= 0.5, {"segmenter": segmenter.arch, "mean_fg_prob": float(prob.mean())}


def segment_files(images, out_dir: str | os.PathLike, mask_fn, source: str) -> list[dict]:
    """Run ``mask_fn(image uint8 (H,W,3)) -> (mask, info)`` on every image; write the three files."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for path in expand_inputs(images):
        image = load_rgb(path)
        mask, info = mask_fn(image)
        stem = out / Path(path).stem
        files = {"mask": f"{stem}.mask.png", "rle": f"{stem}.rle.json", "overlay": f"{stem}.overlay.png"}
        if not cv2.imwrite(files["mask"], mask.astype(np.uint8) * 255):
            raise OSError(f"{files['mask']}: could not write the mask")
        cv2.imwrite(files["overlay"], cv2.cvtColor(mask_overlay(image, mask), cv2.COLOR_RGB2BGR))
        record = {"image": str(path), "width": image.shape[1], "height": image.shape[0], "source": source,
                  "segmentation": encode_rle(mask), "area": int(mask.sum()), **info}
        Path(files["rle"]).write_text(json.dumps(record, indent=2))
        results.append({**record, "files": files})
    return results
