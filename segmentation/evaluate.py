"""Pseudo masks of a trained classifier scored against the split's GT masks.

    report = evaluate_pseudo_masks("runs/x", "CUB_200_2011", SegmentOptions(split="test"))

Score-map metrics (threshold-free or best-threshold): PxAP and the best-threshold mask IoU
(mean per-image IoU of ``map >= tau`` at the best tau; pooled pIoU too), REFERENCE.md §6.4.
Pseudo-mask metrics (after thresholding / refinement / largest component): foreground and
background IoU pooled over the split's pixels and their mean (mIoU), the mean per-image
foreground IoU, pixel accuracy.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from wsol.engine.sources import default_out_dir, load_model
from wsol.engine.distributed import resolve_device
from wsol.metrics import MaskIoUEvaluator, PxAPEvaluator
from wsol.viz import overlay_heatmap, save_overlay_grid

from .maps import checkpoint_val_per_class, data_location, open_split, scoremap_batches
from .pseudo import PseudoMaskOptions, pseudo_masks

log = logging.getLogger(__name__)

MASK_COLOUR = (255, 64, 64)
GT_COLOUR = (64, 255, 64)


@dataclass
class SegmentOptions:
    split: str = "test"
    saliency: str = "grad"
    protocol: str = "wsolevaluation"
    image_size: int | None = None          # default: the checkpoint's
    batch_size: int = 32
    cam_curve_interval: float = 0.01
    val_per_class: int | None = None       # official layout's val carve-out; default: the checkpoint's
    num_overlays: int = 12
    num_workers: int = 0
    pseudo: PseudoMaskOptions = field(default_factory=PseudoMaskOptions)
    device: str = "auto"                   # where the classifier runs: auto (CUDA when present) | cpu | cuda[:N]
    image_root: str | None = None          # images apart from the metadata; default: the checkpoint's
    mask_root: str | None = None           # OpenImages masks; default: the checkpoint's, else the image root


def mask_overlay(image: np.ndarray, mask: np.ndarray, gt: np.ndarray | None = None) -> np.ndarray:
    """uint8 (H,W,3): the image with the mask tinted red, its outline, and the GT outline in green."""
    out = image.copy()
    out[mask] = (0.5 * out[mask] + 0.5 * np.array(MASK_COLOUR)).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, MASK_COLOUR, 1)
    if gt is not None:
        contours, _ = cv2.findContours((gt == 1).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, GT_COLOUR, 1)
    return out


def choose_threshold(model, data, opts: SegmentOptions, size: int, val_per_class: int, meta: dict | None = None) -> dict:
    """The tau with the best mean per-image mask IoU on the validation split (never test)."""
    where = data_location(meta or {}, data, opts.image_root, opts.mask_root)
    split = open_split(data, "val", model.num_classes, val_per_class, **where)
    if not split.has_masks:
        raise ValueError(f"{data}: threshold mode 'val' needs GT masks on the val split; it has none")
    ev = PxAPEvaluator(cam_curve_interval=opts.cam_curve_interval)
    for b in scoremap_batches(model, split, opts.saliency, size, opts.batch_size, opts.pseudo.blur_sigma,
                              opts.protocol, num_workers=opts.num_workers, desc="choose tau on val"):
        if "scoremaps" in b:
            ev.accumulate(b["scoremaps"], b["gt"])
    res = ev.compute()
    return {"tau": res["mIoU_threshold"], "val_mask_IoU": res["mIoU"], "val_images": res["num_images"]}


def evaluate_pseudo_masks(checkpoint: str | os.PathLike, data: str | os.PathLike,
                          opts: SegmentOptions | None = None, out_dir: str | os.PathLike | None = None) -> dict:
    """Score the checkpoint's pseudo masks on `opts.split`; writes
    ``segment-<split>-<saliency>.json`` and ``...-overlays.png`` into `out_dir` (default: the run)."""
    opts = opts or SegmentOptions()
    opts.pseudo.check()
    device = resolve_device(opts.device)
    if out_dir is None:
        out_dir = default_out_dir(checkpoint, "segmentation")
    model, meta = load_model(checkpoint)
    model.to(device)
    size = int(opts.image_size or meta.get("image_size") or 224)
    vpc = checkpoint_val_per_class(meta) if opts.val_per_class is None else opts.val_per_class
    threshold = {"mode": opts.pseudo.threshold, "tau": None if opts.pseudo.threshold == "otsu" else opts.pseudo.tau}
    tau = None
    if opts.pseudo.threshold == "val":
        threshold.update(choose_threshold(model, data, opts, size, vpc, meta))
        tau = threshold["tau"]
    split = open_split(data, opts.split, model.num_classes, vpc,
                       **data_location(meta, data, opts.image_root, opts.mask_root))
    if not split.has_masks:
        raise ValueError(f"{data}: the {opts.split} split has no GT masks (segmentations/) to score against")
    maps_ev = PxAPEvaluator(cam_curve_interval=opts.cam_curve_interval)
    masks_ev = MaskIoUEvaluator()
    panels, titles, skipped, correct = [], [], [], 0
    for b in scoremap_batches(model, split, opts.saliency, size, opts.batch_size, opts.pseudo.blur_sigma,
                              opts.protocol, num_workers=opts.num_workers, desc=f"segment {opts.split}"):
        skipped += b["skipped"]
        if "scoremaps" not in b:
            continue
        masks = pseudo_masks(b["scoremaps"], opts.pseudo, b["images"], tau)
        maps_ev.accumulate(b["scoremaps"], b["gt"])
        masks_ev.accumulate(masks, b["gt"])
        correct += int((b["preds"] == b["labels"]).sum())
        for i in range(len(masks)):
            if len(panels) < 2 * opts.num_overlays:
                panels += [overlay_heatmap(b["images"][i], b["scoremaps"][i]),
                           mask_overlay(b["images"][i], masks[i], b["gt"][i])]
                titles += [f"{b['image_ids'][i].split('/')[-1][:24]} {opts.saliency}", "pseudo mask (red), GT (green)"]
    if masks_ev.num_images == 0:
        raise ValueError(f"{data}: no image of the {opts.split} split could be read ({len(skipped)} skipped)")
    maps = maps_ev.compute()
    report = {
        "checkpoint": str(checkpoint), "data": str(data), "split": opts.split, "saliency": opts.saliency,
        "image_size": size, "num_images": masks_ev.num_images,
        "top1_acc": 100.0 * correct / masks_ev.num_images,
        "scoremap": {"PxAP": maps["PxAP"], "best_mask_IoU": maps["mIoU"], "best_threshold": maps["mIoU_threshold"],
                     "pIoU": maps["pIoU"], "pIoU_threshold": maps["pIoU_threshold"],
                     "curve": {k: maps["curve"][k] for k in ("thresholds", "mIoU", "pIoU")}},
        "pseudo_masks": masks_ev.compute(),
        "threshold": threshold,
        "options": {**asdict(opts)},
        "skipped": skipped,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"segment-{opts.split}-{opts.saliency}"
    Path(f"{stem}.json").write_text(json.dumps(report, indent=2))
    if panels:
        save_overlay_grid(panels, titles, f"{stem}-overlays.png", cols=4,
                          suptitle=f"{opts.saliency} pseudo masks on {opts.split}: mIoU "
                                   f"{report['pseudo_masks']['mIoU']:.1f}, PxAP {maps['PxAP']:.1f}")
    report["files"] = {"json": f"{stem}.json", "overlays": f"{stem}-overlays.png" if panels else None}
    log.info("wrote %s.json and %s-overlays.png", stem, stem)
    return report


def score_pseudo_mask_variants(model, split, saliency: str, size: int, variants: dict[str, PseudoMaskOptions],
                               blur_sigma: float = 0.0, batch_size: int = 32, protocol: str = "wsolevaluation",
                               cam_curve_interval: float = 0.01) -> dict:
    """One pass of score maps over `split`, several pseudo-mask settings scored on it.

    The maps are computed once (blurred by ``blur_sigma``; each variant's own blur_sigma must
    equal it). Returns {"scoremap": {PxAP, best_mask_IoU, best_threshold}, "variants": {name:
    MaskIoUEvaluator results}, "top1_acc", "num_images", "skipped"}.
    """
    for name, v in variants.items():
        v.check()
        if v.blur_sigma != blur_sigma or v.threshold == "val":
            raise ValueError(f"variant {name!r}: blur_sigma must be {blur_sigma} and threshold fixed or otsu")
    maps_ev = PxAPEvaluator(cam_curve_interval=cam_curve_interval)
    evs = {name: MaskIoUEvaluator() for name in variants}
    skipped, correct = [], 0
    for b in scoremap_batches(model, split, saliency, size, batch_size, blur_sigma, protocol,
                              desc=f"{saliency} pseudo masks"):
        skipped += b["skipped"]
        if "scoremaps" not in b:
            continue
        maps_ev.accumulate(b["scoremaps"], b["gt"])
        for name, v in variants.items():
            evs[name].accumulate(pseudo_masks(b["scoremaps"], v, b["images"]), b["gt"])
        correct += int((b["preds"] == b["labels"]).sum())
    maps = maps_ev.compute()
    n = maps["num_images"]
    return {"scoremap": {"PxAP": maps["PxAP"], "best_mask_IoU": maps["mIoU"], "best_threshold": maps["mIoU_threshold"]},
            "variants": {name: ev.compute() for name, ev in evs.items()}, "top1_acc": 100.0 * correct / n,
            "num_images": n, "skipped": skipped}
