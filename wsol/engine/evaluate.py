"""Batch WSOL evaluation of a checkpoint on a CUB split, and of saved score maps.

Two protocols (REFERENCE.md §6):

- ``wsolevaluation``: resize to S x S, boxes by int(v * S / W); maps are resized with cv2
  bicubic and min-max normalised; MaxBoxAcc (largest contour, IoU 50) and MaxBoxAccV2 (all
  contours, IoU 30/50/70) over the threshold curve. MaxBoxAcc["50"] is GT-known Loc at the
  best threshold and ``top1_loc_at_best`` Top-1 Loc there; ``gt_known_loc`` / ``top1_loc``
  are at the fixed threshold (largest-contour wsolevaluation box).
- ``paper`` (ADL / ART): resize 256 + centre crop, GT-known / Top-1 Loc at a fixed threshold
  (Grad 0.2, CAM 0.1) with the official code's box extraction; the gradient map is the
  official ART pipeline (art2020_gradient_map). MaxBoxAcc(V2) are reported on the same maps.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from wsol.attribution import (ATTRIBUTION_METHODS, default_threshold, raw_maps,  # noqa: F401  (re-exported)
                              raw_maps_and_logits, saliency_maps)
from wsol.data import CubDataset, build_transform, collate_samples, load_split
from wsol.metrics import BoxEvaluator, LocEvaluator, PxAPEvaluator
from wsol.models import running_bn_layers
from wsol.viz import draw_boxes, overlay_heatmap, plot_boxacc_curves, save_overlay_grid, to_uint8_image

from .distributed import resolve_device
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
    split = load_split(data, "train", val_per_class=opts.val_per_class)
    ds = CubDataset(split, build_transform(kind, size))
    loader = torch.utils.data.DataLoader(ds, batch_size=opts.batch_size, num_workers=opts.num_workers,
                                         collate_fn=collate_samples)
    for i, batch in enumerate(loader):
        if i >= opts.bn_recalibrate:
            break
        if len(batch["label"]):
            yield batch["image"]


class _Overlays:
    """Keeps the first n (image, map, predicted boxes, GT boxes, title) panels."""

    def __init__(self, n: int) -> None:
        self.n, self.panels, self.titles = n, [], []

    def add(self, image, scoremap, pred_boxes, gt_boxes, title: str) -> None:
        if len(self.panels) >= self.n:
            return
        panel = overlay_heatmap(to_uint8_image(image), scoremap)
        panel = draw_boxes(draw_boxes(panel, gt_boxes, (64, 255, 64)), pred_boxes, (255, 64, 64))
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
    split = load_split(data, opts.split, val_per_class=opts.val_per_class)
    if split.num_classes != model.num_classes:
        what = (f"the model {checkpoint} has {model.num_classes} (an ImageNet classifier needs a dataset with "
                "ImageNet's classes)" if isinstance(checkpoint, ClassifierSpec) else
                f"the checkpoint {checkpoint} was trained for {model.num_classes}")
        raise ValueError(f"{data}: the {opts.split} split has {split.num_classes} classes but {what}")
    kind = "wsoleval" if opts.protocol == "wsolevaluation" else "paper"
    if opts.bn_recalibrate:
        n_bn = recalibrate_bn(model, _recalibration_batches(data, opts, size, kind), device)
        log.info("BN running statistics re-estimated on %d train batches (%d BN layers)", opts.bn_recalibrate, n_bn)
    ds = CubDataset(split, build_transform(kind, size))
    loader = torch.utils.data.DataLoader(ds, batch_size=opts.batch_size, num_workers=opts.num_workers,
                                         collate_fn=collate_samples)
    boxes = BoxEvaluator(cam_curve_interval=opts.cam_curve_interval,
                         multi_contour="both" if opts.box_metrics == "both" else True)
    loc = LocEvaluator(threshold=opts.fixed_threshold, protocol="art2020" if kind == "paper" else "wsoleval")
    pxap = PxAPEvaluator(cam_curve_interval=opts.cam_curve_interval) if split.has_masks else None
    overlays, skipped, n_correct, n = _Overlays(opts.num_overlays), [], 0, 0
    for batch in tqdm(loader, desc=f"eval {opts.split} {opts.saliency}", unit="batch"):
        skipped += batch["skipped"]
        if not len(batch["label"]):
            continue
        x, y = batch["image"].to(device), batch["label"].to(device)
        maps, logits = saliency_maps(model, x, y, opts.saliency, size=(size, size), protocol=opts.protocol)
        correct = (logits.argmax(1) == y).cpu().numpy()
        norm = maps.numpy()
        gt = [b.numpy() for b in batch["boxes"]]
        boxes.accumulate(norm, gt, correct)
        pred = loc.accumulate(norm, gt, correct)
        if pxap is not None:
            pxap.accumulate(norm, batch["mask"].numpy())
        n_correct += int(correct.sum())
        n += len(y)
        for i in range(len(y)):
            overlays.add(batch["image"][i], norm[i], pred[i], gt[i], f"{batch['image_id'][i].split('/')[-1]}"
                         f" {'ok' if correct[i] else 'wrong'}")
    if n == 0:
        raise ValueError(f"{data}: no image of the {opts.split} split could be read ({len(skipped)} skipped)")
    result = _result(boxes.compute(), loc.compute(), pxap.compute() if pxap else None, n_correct, n, opts)
    result.update(checkpoint=str(checkpoint), data=str(data), image_size=size, skipped=skipped)
    out = Path(out_dir)
    _write(result, boxes, overlays, out, opts)
    return result


def _result(box: dict, loc: dict, mask: dict | None, n_correct: int, n: int, opts: EvalOptions) -> dict:
    res = {
        "top1_acc": 100.0 * n_correct / n,
        "gt_known_loc": loc["gt_known_loc"],
        "top1_loc": loc["top1_loc"],
        "MaxBoxAcc": {"50": box["MaxBoxAcc"]["50"]} if "MaxBoxAcc" in box else None,
        "MaxBoxAccV2": box["MaxBoxAccV2"],
        "best_threshold": box["best_threshold"],
        # Top-1 Loc gated at the per-delta best threshold (REFERENCE.md §6.3), largest contour
        "top1_loc_at_best": (box.get("top1_loc_at_best", {}).get("MaxBoxAcc") or {}).get("50"),
        "fixed_threshold": opts.fixed_threshold,
        "num_images": n,
        "curve": box["curve"],  # BoxAcc (%) per threshold, per metric and IoU
        "options": asdict(opts),
    }
    if mask is not None:
        res.update(PxAP=mask["PxAP"], mIoU=mask["mIoU"], mIoU_threshold=mask.get("mIoU_threshold"))
    return res


def _write(result: dict, boxes, overlays: _Overlays, out: Path, opts: EvalOptions) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"eval-{opts.split}-{opts.saliency}"
    curves = boxes.curves()
    plot_boxacc_curves(curves["thresholds"], {k: v for k, v in curves.items() if k != "thresholds"},
                       f"{stem}-boxacc.png", title=f"{opts.saliency} on {opts.split} ({opts.protocol})")
    if overlays.panels:
        save_overlay_grid(overlays.panels, overlays.titles, f"{stem}-overlays.png",
                          suptitle=f"{opts.saliency}: heatmap, predicted (red) and true (green) boxes")
    Path(f"{stem}.json").write_text(json.dumps(result, indent=2))
    log.info("wrote %s.json, %s-boxacc.png, %s-overlays.png", stem, stem, stem)
