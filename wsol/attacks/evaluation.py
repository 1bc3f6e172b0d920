"""Attack a loader's correctly classified images and score the maps (REFERENCE §7.2 - §7.3).

    report = evaluate_attribution_robustness(model, loader, get_preset("art2020"))
    report["IN"], report["K"], report["attack_success_rate"]
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from wsol.metrics.robustness import AttributionRobustnessEvaluator
from wsol.models.base import model_device

from .attribution import _target_region, attribution_attack, resolve_max_rows
from .precision import check_precision
from .presets import RobustnessPreset
from .rows import check_max_rows

__all__ = ["evaluate_attribution_robustness"]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _unpack(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """A loader batch -> (images (B,C,H,W), labels (B,)): {"image", "label"} or (x, y, ...)."""
    if isinstance(batch, dict):
        return batch["image"], torch.as_tensor(batch["label"])
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], torch.as_tensor(batch[1])
    raise ValueError("each batch must be a dict with 'image' and 'label' or a tuple (images, labels, ...), "
                     f"got {type(batch).__name__}")


def _correct_subset(model, x, y, limit: int | None) -> tuple[torch.Tensor, int]:
    """Indices of the first correctly classified images (at most `limit`), and how many were correct."""
    with torch.no_grad():
        idx = (model(x).argmax(1) == y).nonzero().flatten()
    return (idx if limit is None else idx[:limit]), len(idx)


def evaluate_attribution_robustness(model: nn.Module, loader_or_batches: Iterable, preset: RobustnessPreset,
                                    kind: str = "topk", max_images: int | None = None,
                                    target_region: torch.Tensor | None = None, max_rows: int | str | None = "auto",
                                    seed: int | None = None, progress: bool = False,
                                    precision: str = "fp32") -> dict:
    """Attack the correctly classified test images and score original vs attacked metric maps.

    Images are taken in loader order; misclassified ones are not attacked (nor counted).
    Scores go through :class:`AttributionRobustnessEvaluator` with ``k = preset.metric_k``,
    the preset's failure policy ("score_one": IN = K = 1; "skip": left out) and the masked
    tau when the preset selects on it. The model is put in eval mode for the call.

    Args:
        loader_or_batches: iterable of dict batches {"image", "label"} or (images, labels) tuples.
        kind: attack kind (see :func:`attribution_attack`).
        max_images: stop after attacking this many correctly classified images; None uses
            ``preset.num_images`` (art2020: 1001; chen2019: all).
        seed: image j of the loader (0-based, in order) is attacked with seed + j (random start,
            noise), so the scores do not depend on how the loader batches the images; None =
            the global RNG.
        max_rows: images x path points per forward pass (see :func:`resolve_max_rows`):
            "auto" (default) is resolved once, on the first attacked batch; None = a whole
            batch at once. Does not change the scores.
        precision: "fp32" or "bf16", the attack step's arithmetic (see :func:`attribution_attack`).

    Returns:
        The evaluator's dict (IN, K, ... see ``AttributionRobustnessEvaluator.compute``; NaN
        metrics when no image was counted), plus "preset" (``preset.to_dict()``), "kind",
        "failure_policy", "num_seen", "num_correct", "clean_accuracy" (over the images seen),
        "num_attacked", "num_success", "attack_success_rate", "max_rows" (the bound used),
        "attack_precision".
    """
    check_max_rows(max_rows)
    check_precision(precision)
    limit = preset.num_images if max_images is None else max_images
    evaluator = AttributionRobustnessEvaluator(k=preset.metric_k, failure_policy=preset.failure_policy,
                                               masked_tau=preset.selection == "kendall_masked")
    device = model_device(model)
    counts = dict(num_seen=0, num_correct=0, num_attacked=0, num_success=0)
    bar = _progress(limit, progress)
    with _eval_mode(model):
        for batch in loader_or_batches:
            if limit is not None and counts["num_attacked"] >= limit:
                break
            x, y = (t.to(device) for t in _unpack(batch))
            left = None if limit is None else limit - counts["num_attacked"]
            idx, n_correct = _correct_subset(model, x, y, left)
            first = counts["num_seen"]                   # loader index of x[0]
            counts["num_seen"] += len(x)
            counts["num_correct"] += n_correct
            if not len(idx):
                continue
            region = None if target_region is None else _target_region(target_region, x)[idx]
            if isinstance(max_rows, str):
                max_rows = resolve_max_rows(max_rows, model, x[idx], y[idx], preset, kind, region)
            seeds = None if seed is None else [seed + first + i for i in idx.tolist()]
            res = attribution_attack(model, x[idx], y[idx], preset, kind, region, max_rows, seeds, precision)
            evaluator.accumulate(res.orig_maps, res.adv_maps, res.success)
            counts["num_attacked"] += len(idx)
            counts["num_success"] += int(res.success.sum())
            if bar is not None:
                bar.update(len(idx))
            log.info("attribution attack: %d images attacked, %d successful", counts["num_attacked"],
                     counts["num_success"])
    if bar is not None:
        bar.close()
    out = _report(evaluator, counts, preset, kind)
    out["max_rows"] = max_rows
    out["attack_precision"] = precision
    return out


def _progress(total: int | None, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc="attribution attack", unit="img")


def _report(evaluator: AttributionRobustnessEvaluator, counts: dict, preset: RobustnessPreset, kind: str) -> dict:
    if evaluator.num_images:
        out = evaluator.compute()
    else:
        log.warning("attribution robustness: no image counted (%d attacked, %d failed, policy %r)",
                    counts["num_attacked"], evaluator.num_failed, preset.failure_policy)
        out = {f"{m}_{s}": math.nan for m in evaluator.metric_names for s in ("mean", "std")}
        out.update(IN=math.nan, IN_std=math.nan, K=math.nan, K_std=math.nan, num_images=0,
                   num_skipped=evaluator.num_skipped, num_failed=evaluator.num_failed,
                   num_nan={m: 0 for m in evaluator.metric_names})
    out.update(counts)
    out["clean_accuracy"] = counts["num_correct"] / counts["num_seen"] if counts["num_seen"] else math.nan
    out["attack_success_rate"] = (counts["num_success"] / counts["num_attacked"]
                                  if counts["num_attacked"] else math.nan)
    out.update(kind=kind, failure_policy=preset.failure_policy, preset=preset.to_dict())
    return out
