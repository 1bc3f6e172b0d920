"""Per-epoch validation: accuracy, CE loss and WSOL localization of chosen saliency maps.

For each saliency s in `ValConfig.saliencies` the result holds
    <s>_loc          MaxBoxAccV2 (mean over IoU 30/50/70, all contours), the wsolevaluation
                     model-selection metric, in percent;
    <s>_maxboxacc    MaxBoxAcc (largest contour, IoU 50), percent;
    <s>_best_threshold  the threshold of the best MaxBoxAcc.
Maps use the wsolevaluation conventions (resize to S, min-max normalisation) unless
`ValConfig.protocol` is "paper" (the ART gradient pipeline for grad).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from wsol.localization import normalize_scoremap
from wsol.metrics import BoxEvaluator

__all__ = ["validate"]


def validate(model: torch.nn.Module, loader, cfg, image_size: int, device: torch.device | str = "cpu") -> dict:
    """Evaluate `model` on `loader` (val split, eval transform); `cfg` is a ValConfig.

    Returns a flat dict of numbers plus "skipped_images" {image_id: error} for unreadable images.
    """
    from wsol.engine.evaluate import raw_maps

    model.eval()
    evaluators = {s: BoxEvaluator(cam_curve_interval=cfg.cam_curve_interval, multi_contour="both")
                  for s in cfg.saliencies}
    loss_sum, correct, n, skipped = 0.0, 0, 0, {}
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
        gt = [b.numpy() for b in batch["boxes"]]
        for s, ev in evaluators.items():
            maps = raw_maps(model, x, y, s, cfg.protocol)
            ev.accumulate(np.stack([normalize_scoremap(m, (image_size, image_size)) for m in maps]), gt, ok)
    if n == 0:
        raise RuntimeError("validation: no image of the val split could be read")
    out = {"top1_acc": 100.0 * correct / n, "loss": loss_sum / n, "num_images": n, "skipped": len(skipped),
           "skipped_images": skipped}
    for s, ev in evaluators.items():
        res = ev.compute()
        out[f"{s}_loc"] = float(res["MaxBoxAccV2"]["mean"])
        out[f"{s}_maxboxacc"] = float(res["MaxBoxAcc"]["50"])
        out[f"{s}_best_threshold"] = float(res["best_threshold"]["MaxBoxAcc"]["50"])
    return out
