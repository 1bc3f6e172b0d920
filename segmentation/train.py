"""The second stage: a segmentation network trained on a classifier's pseudo masks.

    report = train_segmenter("runs/art", "CUB_200_2011", "runs/seg-art", SegTrainOptions(epochs=10))

1. pseudo masks for every training image (the image-level label picks the class to explain;
   no GT mask is read), written as PNGs under <out>/pseudo_masks/ (0 / 255);
2. the segmenter (segmentation.models) trained on them with per-pixel cross-entropy, SGD and
   the poly schedule; the head learns at ``head_lr_mult`` x when the trunk comes from the
   classifier;
3. scored on the test split against the GT masks: fg / bg IoU and their mean, per-image IoU,
   and PxAP of the foreground probability.
The run folder holds options.json, pseudo-train.json (pseudo-mask statistics; their quality on
train when the split has GT masks), metrics.jsonl, checkpoint-last.*, report.json and an
overlay PNG of test predictions.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from wsol.data import CubDataset, build_transform, collate_samples
from wsol.data.images import ImageLoadError, load_rgb
from wsol.engine import load_checkpoint
from wsol.engine.distributed import resolve_device
from wsol.metrics import MaskIoUEvaluator, PxAPEvaluator
from wsol.models import model_device
from wsol.viz import save_overlay_grid, to_uint8_image

from .evaluate import mask_overlay
from .maps import checkpoint_val_per_class, data_location, open_split, scoremap_batches
from .models import build_segmenter, save_segmenter
from .pseudo import PseudoMaskOptions, pseudo_masks

log = logging.getLogger(__name__)


@dataclass
class SegTrainOptions:
    arch: str = "deeplabv3_wsol"
    backbone: str | None = None            # deeplabv3_wsol: default the classifier's arch
    init_from_classifier: bool = True      # deeplabv3_wsol: start the trunk from the classifier
    atrous_rates: tuple = (2, 4, 6)
    saliency: str = "grad"
    protocol: str = "wsolevaluation"
    pseudo: PseudoMaskOptions = field(default_factory=PseudoMaskOptions)
    image_size: int | None = None          # default: the classifier's
    epochs: int = 10
    batch_size: int = 16
    lr: float = 0.01
    head_lr_mult: float = 10.0
    momentum: float = 0.9
    weight_decay: float = 1e-4
    seed: int = 0
    num_workers: int = 0
    num_overlays: int = 8
    device: str = "auto"                   # auto (CUDA when present) | cpu | cuda | cuda:N
    image_root: str | None = None          # images apart from the metadata; default: the classifier's
    mask_root: str | None = None           # OpenImages masks; default: the classifier's, else the image root

    def check(self) -> None:
        self.pseudo.check()
        if self.pseudo.threshold == "val":
            raise ValueError("pseudo masks for training use threshold 'fixed' or 'otsu' ('val' would need "
                             "GT masks, which weak supervision does not have)")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")


def write_pseudo_masks(classifier, split, opts: SegTrainOptions, size: int, out: Path) -> dict:
    """Pseudo masks of every image of `split` as <out>/<image_id>.png (0/255, size x size).

    Returns statistics: number written, mean foreground fraction, unreadable images, and the
    masks' fg/bg IoU against the split's GT masks when it has them (a diagnostic only).
    """
    ev = MaskIoUEvaluator() if split.has_masks else None
    written, fg, skipped = 0, 0.0, []
    for b in scoremap_batches(classifier, split, opts.saliency, size, 32, opts.pseudo.blur_sigma, opts.protocol,
                              target="label", num_workers=opts.num_workers, desc="pseudo masks (train)"):
        skipped += b["skipped"]
        if "scoremaps" not in b:
            continue
        masks = pseudo_masks(b["scoremaps"], opts.pseudo, b["images"])
        for image_id, m in zip(b["image_ids"], masks):
            path = out / Path(image_id).with_suffix(".png")
            path.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(path), m.astype(np.uint8) * 255):
                raise OSError(f"{path}: could not write the pseudo mask")
        if ev is not None and b["gt"] is not None:
            ev.accumulate(masks, b["gt"])
        written += len(masks)
        fg += float(masks.mean(axis=(1, 2)).sum())
    if written == 0:
        raise ValueError(f"no training image could be read ({len(skipped)} skipped)")
    stats = {"num_masks": written, "mean_fg_fraction": fg / written, "skipped": skipped}
    if ev is not None and ev.num_images:
        stats["vs_gt_masks"] = ev.compute()
    return stats


class PseudoMaskDataset(Dataset):
    """Training images with their pseudo masks: image resized to the masks' size, then the
    train transform (resize, random crop, flip) moves image and mask together."""

    def __init__(self, split, mask_root: Path, size: int, seed: int = 0) -> None:
        self.samples = [s for s in split.samples if (mask_root / Path(s.image_id).with_suffix(".png")).is_file()]
        self.split, self.mask_root, self.size = split, mask_root, size
        self.transform = build_transform("train", size)
        self.transform.set_seed(seed)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        s = self.samples[index]
        image = cv2.resize(load_rgb(self.split.image_path(s)), (self.size, self.size),
                           interpolation=cv2.INTER_AREA)
        mask_path = self.mask_root / Path(s.image_id).with_suffix(".png")
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        if mask is None or mask.shape != (self.size, self.size):
            raise ImageLoadError(f"{mask_path}: unreadable or not {self.size}x{self.size}")
        out = self.transform(image, np.zeros((0, 4)), mask)
        return {"image": out["image"], "mask": out["mask"].long()}


def _optimizer(model, opts: SegTrainOptions, from_classifier: bool):
    trunk = [p for n, p in model.named_parameters() if n.startswith("net.backbone.")]
    head = [p for n, p in model.named_parameters() if not n.startswith("net.backbone.")]
    mult = opts.head_lr_mult if from_classifier else 1.0
    return torch.optim.SGD([{"params": trunk, "lr": opts.lr}, {"params": head, "lr": opts.lr * mult}],
                           lr=opts.lr, momentum=opts.momentum, weight_decay=opts.weight_decay)


def evaluate_segmenter(model, split, size: int, batch_size: int = 32, num_overlays: int = 0,
                       desc: str = "segmenter test") -> tuple[dict, list, list]:
    """fg/bg IoU, mIoU, per-image IoU (argmax masks) and PxAP (fg probability) on `split`."""
    ds = CubDataset(split, build_transform("wsoleval", size))
    loader = DataLoader(ds, batch_size=batch_size, collate_fn=collate_samples)
    masks_ev, maps_ev = MaskIoUEvaluator(), PxAPEvaluator(cam_curve_interval=0.01)
    panels, titles, skipped = [], [], []
    model.eval()
    device = model_device(model)
    with torch.no_grad():
        for batch in tqdm(loader, desc=desc, unit="batch"):
            skipped += batch["skipped"]
            if not len(batch["label"]):
                continue
            prob = model(batch["image"].to(device)).softmax(1)[:, 1].double().cpu().numpy()
            gt = batch["mask"].numpy().astype(np.uint8)
            pred = prob >= 0.5
            masks_ev.accumulate(pred, gt)
            maps_ev.accumulate(prob, gt)
            for i in range(len(pred)):
                if len(panels) < num_overlays:
                    panels.append(mask_overlay(to_uint8_image(batch["image"][i]), pred[i], gt[i]))
                    titles.append(batch["image_id"][i].split("/")[-1][:24])
    if masks_ev.num_images == 0:
        raise ValueError(f"no image of the split could be read ({len(skipped)} skipped)")
    res = masks_ev.compute()
    maps = maps_ev.compute()
    res.update(PxAP=maps["PxAP"], best_mask_IoU=maps["mIoU"], skipped=skipped)
    return res, panels, titles


def train_segmenter(checkpoint: str | os.PathLike, data: str | os.PathLike, out_dir: str | os.PathLike,
                    opts: SegTrainOptions | None = None) -> dict:
    """Pseudo masks of the train split -> segmenter -> test-split scores; returns report.json's dict."""
    opts = opts or SegTrainOptions()
    opts.check()
    device = resolve_device(opts.device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "options.json").write_text(json.dumps({"checkpoint": str(checkpoint), "data": str(data), **asdict(opts)},
                                                 indent=2, default=str))
    classifier, meta = load_checkpoint(checkpoint)
    classifier.to(device)
    size = int(opts.image_size or meta.get("image_size") or 224)
    vpc = checkpoint_val_per_class(meta)
    where = data_location(meta, data, opts.image_root, opts.mask_root)
    train_split = open_split(data, "train", classifier.num_classes, vpc, **where)
    test_split = open_split(data, "test", classifier.num_classes, vpc, **where)
    if not test_split.has_masks:
        raise ValueError(f"{data}: the test split has no GT masks (segmentations/) to score the segmenter on")

    t0 = time.perf_counter()
    stats = write_pseudo_masks(classifier, train_split, opts, size, out / "pseudo_masks")
    stats["seconds"] = time.perf_counter() - t0
    (out / "pseudo-train.json").write_text(json.dumps(stats, indent=2))
    log.info("pseudo masks: %d written, mean fg fraction %.3f", stats["num_masks"], stats["mean_fg_fraction"])

    torch.manual_seed(opts.seed)
    from_classifier = opts.arch == "deeplabv3_wsol" and opts.init_from_classifier
    model = build_segmenter(opts.arch, 2, backbone=opts.backbone or meta["arch"], atrous_rates=opts.atrous_rates,
                            init=checkpoint if from_classifier else None).to(device)
    ds = PseudoMaskDataset(train_split, out / "pseudo_masks", size, opts.seed)
    loader = DataLoader(ds, batch_size=opts.batch_size, shuffle=True, drop_last=len(ds) > opts.batch_size,
                        num_workers=opts.num_workers, generator=torch.Generator().manual_seed(opts.seed))
    opt = _optimizer(model, opts, from_classifier)
    total = opts.epochs * len(loader)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: (1 - it / total) ** 0.9)
    metrics_path = out / "metrics.jsonl"
    metrics_path.write_text("")
    t0 = time.perf_counter()
    for epoch in range(1, opts.epochs + 1):
        model.train()
        loss_sum, correct, pixels = 0.0, 0, 0
        bar = tqdm(loader, desc=f"segmenter epoch {epoch}/{opts.epochs}", unit="batch")
        for batch in bar:
            image, target = batch["image"].to(device), batch["mask"].to(device)
            logits = model(image)
            loss = F.cross_entropy(logits, target)
            if not math.isfinite(loss.item()):
                raise RuntimeError(f"segmenter loss is {loss.item()} at epoch {epoch}; the last good checkpoint "
                                   f"is {out / 'checkpoint-last'} (lower --lr)")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(image)
            correct += int((logits.argmax(1) == target).sum())
            pixels += target.numel()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        record = {"epoch": epoch, "loss": loss_sum / len(ds), "pixel_acc_vs_pseudo": 100.0 * correct / pixels,
                  "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - t0}
        with open(metrics_path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        save_segmenter(out / "checkpoint-last", model, size, extra={"epoch": epoch, "classifier": str(checkpoint)})
        log.info("segmenter epoch %d/%d: loss %.4f, pixel acc vs pseudo masks %.1f", epoch, opts.epochs,
                 record["loss"], record["pixel_acc_vs_pseudo"])
    train_s = time.perf_counter() - t0
    test, panels, titles = evaluate_segmenter(model, test_split, size, num_overlays=opts.num_overlays)
    report = {"run": str(out), "classifier": str(checkpoint), "data": str(data), "image_size": size,
              "pseudo_train": {k: v for k, v in stats.items() if k != "skipped"}, "train_s": train_s,
              "test": test, "epochs": opts.epochs}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    if panels:
        save_overlay_grid(panels, titles, out / "test-overlays.png",
                          suptitle=f"segmenter on test: mIoU {test['mIoU']:.1f} (red: prediction, green: GT)")
    return report
