"""Batch WSOL evaluation of a checkpoint on a split of any WSOL dataset (CUB, ILSVRC, OpenImages).

Two protocols (REFERENCE.md §6):

- ``wsolevaluation``: resize to S x S, boxes by int(v * S / W); maps are resized with cv2
  bicubic and min-max normalised; MaxBoxAcc (largest contour, IoU 50) and MaxBoxAccV2 (all
  contours, IoU 30/50/70) over the threshold curve. MaxBoxAcc["50"] is GT-known Loc at the
  best threshold and ``top1_loc_at_best`` Top-1 Loc there; ``gt_known_loc`` / ``top1_loc``
  are at the fixed threshold (largest-contour wsolevaluation box).
- ``paper`` (ADL / ART): resize 256 + centre crop, GT-known / Top-1 Loc at a fixed threshold
  (Grad 0.2, CAM 0.1) with the official code's box extraction; the gradient map is the
  official ART pipeline (art2020_gradient_map). MaxBoxAcc(V2) are reported on the same maps.

Several GT boxes per image (ILSVRC) score as wsolevaluation does: the best IoU over them. Top-1 /
Top-5 Loc (``top1_loc`` / ``top5_loc``) count an image when the GT-class box hits (IoU >= 0.5) and the
GT class is the first / among the first five predicted (with one GT class per image, the GT class's
box is the only one of ILSVRC's five that can count, REFERENCE §12.2); the predicted classes are the
model's or another classifier's (``class_predictions``, wsol.engine.predictions). Mask datasets
(OpenImages) get PxAP and mIoU with the ignore regions left out.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from wsol.attribution import (ATTRIBUTION_METHODS, default_threshold, raw_maps,  # noqa: F401  (re-exported)
                              raw_maps_and_logits, saliency_maps)
from wsol.data import WSOLDataset, batch_gt_masks, build_transform, collate_samples, load_split
from wsol.metrics import BoxEvaluator, LocEvaluator, PxAPEvaluator
from wsol.models import running_bn_layers
from wsol.viz import draw_boxes, overlay_heatmap, plot_boxacc_curves, save_overlay_grid, to_uint8_image

from .distributed import resolve_device
from .predictions import read_class_predictions
from .sources import ClassifierSpec, default_out_dir, load_model

log = logging.getLogger(__name__)

PROTOCOLS = ("wsolevaluation", "paper")
SALIENCIES = tuple(ATTRIBUTION_METHODS)
maps_and_logits = raw_maps_and_logits  # the name the callers and tests use


@dataclass
class EvalOptions:
    split: str = "test"
    saliency: str = "grad"
    protocol: str = "wsolevaluation"
    image_size: int | None = None  # default: the checkpoint's
    batch_size: int = 32
    cam_curve_interval: float = 0.01
    threshold: float | None = None  # fixed threshold; default Grad 0.2, others 0.1
    val_per_class: int = 0
    num_overlays: int = 16
    num_workers: int = 0
    box_metrics: str = "both"  # "both": MaxBoxAcc + MaxBoxAccV2; "v2": MaxBoxAccV2 alone (its fast path)
    device: str = "auto"  # where the model runs: auto (CUDA when available) | cpu | cuda | cuda:N
    bn_recalibrate: int = 0  # >0: re-estimate BN running stats on this many train-split batches first
    dataset: str | None = None  # wsol.data.datasets name (cub, ilsvrc, openimages); None: from the folder
    image_root: str | None = None  # images apart from the metadata (wsolevaluation: dataset/<Dataset>)
    mask_root: str | None = None  # OpenImages mask paths are relative to it (default: the image root)
    class_predictions: str | None = None  # CSV / JSON: image id -> ranked class ids of another classifier

    def check(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"--protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.saliency not in SALIENCIES:
            raise ValueError(f"--saliency must be one of {SALIENCIES}, got {self.saliency!r}")
        if self.box_metrics not in ("both", "v2"):
            raise ValueError(f"box_metrics must be 'both' or 'v2', got {self.box_metrics!r}")
        if not 0 < self.cam_curve_interval < 1:
            raise ValueError(f"--cam-curve-interval must be in (0, 1), got {self.cam_curve_interval}")
        if self.bn_recalibrate < 0:
            raise ValueError(f"--bn-recalibrate must be >= 0 (batches), got {self.bn_recalibrate}")

    @property
    def fixed_threshold(self) -> float:
        if self.threshold is not None:
            return self.threshold
        return default_threshold(self.saliency)


def recalibrate_bn(model: torch.nn.Module, batches, device: torch.device | str = "cpu") -> int:
    """Re-estimate every BatchNorm layer's running statistics from `batches` (an iterable of
    (B,3,H,W) images in [0,1]) with the plain (ReLU) network: statistics reset, then a cumulative
    average over the batches with only the BN layers in train mode (dropout, ADL stay in eval);
    no gradients. Returns the number of BN layers (0: nothing to do; the model is unchanged).
    The model is left in eval mode.

    What it is for: ART's Softplus passes run in train mode and write their statistics into the
    running ones (Q1); scoring a checkpoint after this shows what its weights do with the ReLU
    network's own statistics."""
    bns = running_bn_layers(model)
    model.eval()
    if not bns:
        return 0
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
        m.train()
    seen = 0
    try:
        with torch.no_grad():
            for x in batches:
                model(x.to(device))
                seen += 1
    finally:
        for m, momentum in zip(bns, saved):
            m.momentum = momentum
        model.eval()
    if seen == 0:
        raise ValueError("BN recalibration got no batch")
    return len(bns)


def _recalibration_batches(data, opts: EvalOptions, size: int, kind: str):
    """The first opts.bn_recalibrate batches of the train split under the evaluation transform
    (fixed order: the same statistics every time)."""
    split = load_split(data, "train", val_per_class=opts.val_per_class, **_where(opts))
    ds = WSOLDataset(split, build_transform(kind, size))
    loader = torch.utils.data.DataLoader(ds, batch_size=opts.batch_size, num_workers=opts.num_workers,
                                         collate_fn=collate_samples)
    for i, batch in enumerate(loader):
        if i >= opts.bn_recalibrate:
            break
        if len(batch["label"]):
            yield batch["image"]


def _where(opts: EvalOptions) -> dict:
    return dict(image_root=opts.image_root, mask_root=opts.mask_root, dataset=opts.dataset)


class _Overlays:
    """Keeps the first n (image, map, predicted boxes, GT boxes, title) panels."""

    def __init__(self, n: int) -> None:
        self.n, self.panels, self.titles = n, [], []

    def add(self, image, scoremap, pred_boxes, gt_boxes, title: str) -> None:
        if len(self.panels) >= self.n:
            return
        panel = overlay_heatmap(to_uint8_image(image), scoremap)
        panel = draw_boxes(panel, gt_boxes, (64, 255, 64))
        if pred_boxes is not None:
            panel = draw_boxes(panel, pred_boxes, (255, 64, 64))
        self.panels.append(panel)
        self.titles.append(title)


def evaluate_checkpoint(checkpoint: str | os.PathLike | ClassifierSpec, data: str | os.PathLike,
                        options: EvalOptions | None = None, out_dir: str | os.PathLike | None = None) -> dict:
    """Evaluate a checkpoint's (or an ImageNet classifier's, `ClassifierSpec`) localization on a
    split; writes JSON and PNGs into ``out_dir``.

    ``out_dir`` defaults to the checkpoint's run folder (a ClassifierSpec needs one). Returns the
    result dict.
    """
    opts = options or EvalOptions()
    opts.check()
    device = resolve_device(opts.device)
    if out_dir is None:
        out_dir = default_out_dir(checkpoint, "evaluation")
    model, meta = load_model(checkpoint)
    model.to(device)
    size = opts.image_size or meta.get("image_size") or 224
    split = load_split(data, opts.split, val_per_class=opts.val_per_class, **_where(opts))
    if not split.has_boxes and not split.has_masks:
        raise ValueError(f"{data}: the {opts.split} split has neither boxes nor masks for every image "
                         "(ILSVRC and OpenImages train are labels only); evaluate val or test")
    if split.num_classes != model.num_classes:
        what = (f"the model {checkpoint} has {model.num_classes} (an ImageNet classifier needs a dataset with "
                "ImageNet's classes)" if isinstance(checkpoint, ClassifierSpec) else
                f"the checkpoint {checkpoint} was trained for {model.num_classes}")
        raise ValueError(f"{data}: the {opts.split} split has {split.num_classes} classes but {what}")
    kind = "wsoleval" if opts.protocol == "wsolevaluation" else "paper"
    if opts.bn_recalibrate:
        n_bn = recalibrate_bn(model, _recalibration_batches(data, opts, size, kind), device)
        log.info("BN running statistics re-estimated on %d train batches (%d BN layers)", opts.bn_recalibrate, n_bn)
    ranked = (read_class_predictions(opts.class_predictions, [s.image_id for s in split.samples], model.num_classes)
              if opts.class_predictions else None)
    ds = WSOLDataset(split, build_transform(kind, size))
    loader = torch.utils.data.DataLoader(ds, batch_size=opts.batch_size, num_workers=opts.num_workers,
                                         collate_fn=collate_samples)
    boxes = loc = loc5 = None
    if split.has_boxes:
        boxes = BoxEvaluator(cam_curve_interval=opts.cam_curve_interval,
                             multi_contour="both" if opts.box_metrics == "both" else True)
        loc_protocol = "art2020" if kind == "paper" else "wsoleval"
        loc = LocEvaluator(threshold=opts.fixed_threshold, protocol=loc_protocol)
        loc5 = LocEvaluator(threshold=opts.fixed_threshold, protocol=loc_protocol)  # gated by the top 5
    pxap = PxAPEvaluator(cam_curve_interval=opts.cam_curve_interval) if split.has_masks else None
    overlays, skipped, n_correct, n_correct5, n = _Overlays(opts.num_overlays), [], 0, 0, 0
    for batch in tqdm(loader, desc=f"eval {opts.split} {opts.saliency}", unit="batch"):
        skipped += batch["skipped"]
        if not len(batch["label"]):
            continue
        x, y = batch["image"].to(device), batch["label"].to(device)
        maps, logits = saliency_maps(model, x, y, opts.saliency, size=(size, size), protocol=opts.protocol)
        correct, correct5 = _top_k_correct(logits, batch, ranked)
        norm = maps.numpy()
        gt = [b.numpy() for b in batch["boxes"]]
        pred = [None] * len(y)
        if boxes is not None:
            boxes.accumulate(norm, gt, correct)
            pred = loc.accumulate(norm, gt, correct)
            loc5.accumulate(norm, gt, correct5)
        if pxap is not None:
            pxap.accumulate(norm, batch_gt_masks(batch))
        n_correct += int(correct.sum())
        n_correct5 += int(correct5.sum())
        n += len(y)
        for i in range(len(y)):
            overlays.add(batch["image"][i], norm[i], pred[i], gt[i], f"{batch['image_id'][i].split('/')[-1]}"
                         f" {'ok' if correct[i] else 'wrong'}")
    if n == 0:
        raise ValueError(f"{data}: no image of the {opts.split} split could be read ({len(skipped)} skipped)")
    result = _result(boxes.compute() if boxes else None, loc.compute() if loc else None,
                     loc5.compute() if loc5 else None, pxap.compute() if pxap else None, n_correct, n_correct5, n,
                     opts)
    result.update(checkpoint=str(checkpoint), data=str(data), dataset=split.dataset, image_size=size,
                  skipped=skipped,
                  classes_from=(f"class predictions {opts.class_predictions} (another classifier)"
                                if ranked is not None else "the evaluated model"))
    out = Path(out_dir)
    _write(result, boxes, overlays, out, opts)
    return result


def _top_k_correct(logits: torch.Tensor, batch: dict, ranked: dict | None):
    """(top-1 correct, top-5 correct) bool arrays (B,), from the model's logits or from `ranked`
    (image id -> class ids, best first, another classifier's)."""
    y = batch["label"].numpy()
    if ranked is None:
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices.cpu().numpy()
        return top[:, 0] == y, (top == y[:, None]).any(1)
    lists = [ranked[i] for i in batch["image_id"]]
    return (np.array([r[0] == t for r, t in zip(lists, y)], bool),
            np.array([t in r[:5] for r, t in zip(lists, y)], bool))


def _result(box: dict | None, loc: dict | None, loc5: dict | None, mask: dict | None, n_correct: int,
            n_correct5: int, n: int, opts: EvalOptions) -> dict:
    res = {
        "top1_acc": 100.0 * n_correct / n,
        "top5_acc": 100.0 * n_correct5 / n,
        "fixed_threshold": opts.fixed_threshold,
        "num_images": n,
        "options": asdict(opts),
    }
    if box is not None:
        res.update({
            "gt_known_loc": loc["gt_known_loc"],
            "top1_loc": loc["top1_loc"],
            "top5_loc": loc5["top1_loc"],   # gated by "GT class among the first five"
            "MaxBoxAcc": {"50": box["MaxBoxAcc"]["50"]} if "MaxBoxAcc" in box else None,
            "MaxBoxAccV2": box["MaxBoxAccV2"],
            "best_threshold": box["best_threshold"],
            # Top-1 Loc gated at the per-delta best threshold (REFERENCE.md §6.3), largest contour
            "top1_loc_at_best": (box.get("top1_loc_at_best", {}).get("MaxBoxAcc") or {}).get("50"),
            "curve": box["curve"],  # BoxAcc (%) per threshold, per metric and IoU
        })
    if mask is not None:
        res.update(PxAP=mask["PxAP"], mIoU=mask["mIoU"], mIoU_threshold=mask.get("mIoU_threshold"))
    return res


def _write(result: dict, boxes, overlays: _Overlays, out: Path, opts: EvalOptions) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"eval-{opts.split}-{opts.saliency}"
    if boxes is not None:
        curves = boxes.curves()
        plot_boxacc_curves(curves["thresholds"], {k: v for k, v in curves.items() if k != "thresholds"},
                           f"{stem}-boxacc.png", title=f"{opts.saliency} on {opts.split} ({opts.protocol})")
    if overlays.panels:
        save_overlay_grid(overlays.panels, overlays.titles, f"{stem}-overlays.png",
                          suptitle=f"{opts.saliency}: heatmap, predicted (red) and true (green) boxes")
    Path(f"{stem}.json").write_text(json.dumps(result, indent=2))
    log.info("wrote %s.json, %s-boxacc.png, %s-overlays.png", stem, stem, stem)
