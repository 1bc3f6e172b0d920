"""Per-epoch validation: accuracy, CE loss and WSOL localization of chosen saliency maps.

For each saliency s in `ValConfig.saliencies` the result holds
    <s>_loc          MaxBoxAccV2 (mean over IoU 30/50/70, all contours), the wsolevaluation
                     model-selection metric, in percent;
    <s>_maxboxacc    MaxBoxAcc (largest contour, IoU 50), percent;
    <s>_best_threshold  the threshold of the best MaxBoxAcc.
Maps use the wsolevaluation conventions (resize to S, min-max normalisation) unless
`ValConfig.protocol` is "paper" (the ART gradient pipeline for grad). Classification sets
(no boxes) get top1_acc and loss; every `ValConfig.pgd_every` epochs also pgd_acc (PGD-40).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wsol.data.dataset import batch_gt_masks
from wsol.metrics import BoxEvaluator, PxAPEvaluator

__all__ = ["validate", "pgd_correct"]


def pgd_correct(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float, steps: int,
                step_size: float, random_start: bool = True) -> torch.Tensor:
    """Whether each image is still classified correctly after L-inf PGD (random start by default), CE
    on the logits of `model` in its current mode (REFERENCE §7.4). x (B,3,H,W) in [0,1], y (B,) -> (B,) bool."""
    from wsol.attacks.pgd import pgd_linf

    x_adv = pgd_linf(model, x, y, epsilon=epsilon, steps=steps, step_size=step_size, random_start=random_start)
    with torch.no_grad():
        return model(x_adv).argmax(1) == y


def validate(model: torch.nn.Module, loader, cfg, image_size: int, device: torch.device | str = "cpu",
             pgd: bool = False) -> dict:
    """Evaluate `model` on `loader` (val split, eval transform); `cfg` is a ValConfig.

    Batches without "boxes" or "mask" (classification sets) get accuracy and loss only; box datasets
    add "<saliency>_loc" (MaxBoxAccV2), "<saliency>_maxboxacc" and "<saliency>_best_threshold"; mask
    datasets (OpenImages) "<saliency>_pxap" and "<saliency>_miou" (ignore regions left out). `pgd` adds
    "pgd_acc": accuracy under `cfg.pgd_steps`-step L-inf PGD at `cfg.pgd_epsilon` on the first
    `cfg.pgd_max_images` images. Returns a flat dict of numbers plus "skipped_images"
    {image_id: error} for unreadable images.
    """
    from wsol.attribution import saliency_maps

    model.eval()
    evaluators = mask_evaluators = None
    loss_sum, correct, n, skipped = 0.0, 0, 0, {}
    pgd_hits, pgd_n = 0, 0
    pgd_cap = cfg.pgd_max_images if cfg.pgd_max_images is not None else float("inf")
    for batch in loader:
        skipped.update({s["image_id"]: s["error"] for s in batch["skipped"]})
        if not len(batch["label"]):
            continue
        x, y = batch["image"].to(device), batch["label"].to(device)
        with torch.no_grad():
            logits = model(x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        ok = (logits.argmax(1) == y).cpu().numpy()
        correct += int(ok.sum())
        n += len(y)
        if pgd and pgd_n < pgd_cap:
            take = int(min(len(y), pgd_cap - pgd_n))
            pgd_hits += int(pgd_correct(model, x[:take], y[:take], cfg.pgd_epsilon, cfg.pgd_steps,
                                        cfg.pgd_step_size).sum())
            pgd_n += take
        if "mask" in batch:   # mask datasets (OpenImages): PxAP with the ignore regions left out
            if mask_evaluators is None:
                mask_evaluators = {s: PxAPEvaluator(cam_curve_interval=cfg.cam_curve_interval)
                                   for s in cfg.saliencies}
            gt_masks = batch_gt_masks(batch)
        if "boxes" in batch and batch["boxes"] and all(len(b) for b in batch["boxes"]):
            if evaluators is None:
                evaluators = {s: BoxEvaluator(cam_curve_interval=cfg.cam_curve_interval, multi_contour="both")
                              for s in cfg.saliencies}
        elif "mask" not in batch:
            continue
        gt = [b.numpy() for b in batch["boxes"]]
        for s in cfg.saliencies:
            maps, _ = saliency_maps(model, x, y, s, size=(image_size, image_size), protocol=cfg.protocol)
            if evaluators is not None:
                evaluators[s].accumulate(maps.numpy(), gt, ok)
            if "mask" in batch:
                mask_evaluators[s].accumulate(maps.numpy(), gt_masks)
    if n == 0:
        raise RuntimeError("validation: no image of the val split could be read")
    out = {"top1_acc": 100.0 * correct / n, "loss": loss_sum / n, "num_images": n, "skipped": len(skipped),
           "skipped_images": skipped}
    if pgd_n:
        out.update(pgd_acc=100.0 * pgd_hits / pgd_n, pgd_images=pgd_n)
    for s, ev in (evaluators or {}).items():
        res = ev.compute()
        out[f"{s}_loc"] = float(res["MaxBoxAccV2"]["mean"])
        out[f"{s}_maxboxacc"] = float(res["MaxBoxAcc"]["50"])
        out[f"{s}_best_threshold"] = float(res["best_threshold"]["MaxBoxAcc"]["50"])
    for s, ev in (mask_evaluators or {}).items():
        res = ev.compute()
        out[f"{s}_pxap"] = float(res["PxAP"])
        out[f"{s}_miou"] = float(res["mIoU"])
    return out
