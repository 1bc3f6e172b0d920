"""Batched score maps of a trained classifier over a WSOL split (CUB, OpenImages, ...), with images and GT masks."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch
from tqdm import tqdm

from wsol.data import WSOLDataset, WSOLSplit, batch_gt_masks, build_transform, collate_samples, load_split
from wsol.data.datasets import WSOL_DATASETS
from wsol.attribution import saliency_maps
from wsol.engine.evaluate import SALIENCIES
from wsol.models import model_device
from wsol.viz import to_uint8_image

from .pseudo import smooth

TARGETS = ("label", "pred")


def checkpoint_val_per_class(meta: dict) -> int:
    """The val carve-out the checkpoint was trained with (official layout), else 0."""
    return int(((meta.get("config") or {}).get("data") or {}).get("val_per_class") or 0)


def data_location(meta: dict, data: str | os.PathLike | None = None, image_root: str | None = None,
                  mask_root: str | None = None) -> dict:
    """`load_split`'s image_root / mask_root / dataset: the given roots, else (when `data` is the
    checkpoint's own training data or not given) the checkpoint config's."""
    d = (meta.get("config") or {}).get("data") or {}
    own = data is None or str(data) == str(meta.get("data"))
    dataset = d.get("dataset") if d.get("dataset") in WSOL_DATASETS else None
    return {"image_root": image_root or (d.get("image_root") if own else None),
            "mask_root": mask_root or (d.get("mask_root") if own else None), "dataset": dataset if own else None}


def open_split(data: str | os.PathLike, split: str, num_classes: int, val_per_class: int = 0,
               **where) -> WSOLSplit:
    """`load_split` (`where`: image_root, mask_root, dataset) plus the class-count check against the model."""
    s = load_split(data, split, val_per_class=val_per_class, **where)
    if s.num_classes != num_classes:
        raise ValueError(f"{data}: the {split} split has {s.num_classes} classes but the model was trained "
                         f"for {num_classes}")
    return s


def scoremap_batches(model: torch.nn.Module, split: WSOLSplit, saliency: str = "grad", image_size: int = 224,
                     batch_size: int = 32, blur_sigma: float = 0.0, protocol: str = "wsolevaluation",
                     target: str = "label", num_workers: int = 0, desc: str = "maps") -> Iterator[dict]:
    """Yield, per batch of `split` (resized to image_size, the wsolevaluation eval transform):

    images uint8 (B,S,S,3); scoremaps float64 (B,S,S) in [0,1] (min-max, then `smooth`);
    gt uint8 (B,S,S) {0,1, 255 ignore (OpenImages)} or None without masks; labels, preds int64 (B,); image_ids;
    skipped: the unreadable images of this batch (reported, not fatal).
    target "label" explains the ground-truth class (evaluation, pseudo labels of the training
    split: image-level labels are known there); "pred" the predicted one.
    """
    if saliency not in SALIENCIES:
        raise ValueError(f"saliency must be one of {', '.join(SALIENCIES)}, got {saliency!r}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    ds = WSOLDataset(split, build_transform("wsoleval", image_size))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, num_workers=num_workers,
                                         collate_fn=collate_samples)
    model.eval()
    device = model_device(model)  # the model's device; maps and labels come back to the host
    for batch in tqdm(loader, desc=desc, unit="batch"):
        if not len(batch["label"]):
            yield {"skipped": batch["skipped"], "images": np.zeros((0, image_size, image_size, 3), np.uint8)}
            continue
        x = batch["image"].to(device)
        y = None if target == "pred" else batch["label"].to(device)  # None: the predicted class, same pass
        norm, logits = saliency_maps(model, x, y, saliency, size=(image_size, image_size), protocol=protocol)
        maps = np.stack([smooth(m, blur_sigma) for m in norm.numpy()])
        yield {
            "images": np.stack([to_uint8_image(img) for img in batch["image"]]),
            "scoremaps": maps,
            "gt": batch_gt_masks(batch) if "mask" in batch else None,
            "labels": batch["label"].numpy(), "preds": logits.argmax(1).cpu().numpy(),
            "image_ids": list(batch["image_id"]), "skipped": batch["skipped"],
        }
