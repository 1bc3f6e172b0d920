"""The robustness table of one classifier: IN, K under an attribution attack, natural and PGD accuracy.

REFERENCE.md §7 and §10 (the ART paper's first table, columns IN, K, Natural, PGD-40):

    report = evaluate_robustness(model, test_split, get_preset("art2020"), pgd_steps=40)
    print(robustness_markdown(report, name="ART"))

- Natural: top-1 accuracy (%) on the test split (or its first ``max_images`` images).
- PGD-k: top-1 accuracy (%) under L-inf PGD with random start, CE, ReLU network, at the preset's
  ``pgd_epsilon`` / ``pgd_step_size`` (§7.4: 8/255, 2/255), on the first ``pgd_images`` images.
- IN, K: top-k intersection and Kendall's tau (x100) between the metric saliency of each
  correctly classified image and of its attacked copy, attack and scoring as the preset says
  (``chen2019`` or ``art2020``, §7.2); on the first ``attack_images`` correctly classified images.
- A second attribution row attacks with random sign noise at the same epsilon (``kind="random"``),
  so a reader sees how much of a drop the attack itself causes.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from wsol.attacks.precision import check_precision
from wsol.attacks.evaluation import evaluate_attribution_robustness
from wsol.attacks.presets import RobustnessPreset
from wsol.data.robustness import ClassificationDataset, ClassificationSplit, collate_classification
from wsol.models import model_device

from .cpu_malloc import tune_cpu_malloc
from .validate import pgd_correct

__all__ = ["evaluate_robustness", "robustness_markdown", "PAPER_ROBUSTNESS", "write_report"]

log = logging.getLogger(__name__)

# REFERENCE.md §10, ART slides: dataset -> [(approach, IN, K, Natural, PGD-40)].
PAPER_ROBUSTNESS = {
    "cifar10": [("Natural", 40.25, 49.17, 95.26, 0.0), ("PGD-10", 69.00, 72.27, 87.32, 44.07),
                ("ART", 92.90, 91.76, 89.84, 37.58)],
    "svhn": [("Natural", 60.43, 56.50, 95.66, 0.0), ("PGD-7", 39.67, 55.56, 92.84, 50.12),
             ("ART", 61.37, 72.60, 95.47, 43.56)],
    "gtsrb": [("Natural", 68.74, 76.48, 99.43, 19.9), ("IG Norm", 74.81, 75.55, 97.02, 75.24),
              ("IG-SUM Norm", 74.04, 76.84, 95.68, 77.12), ("PGD-7", 86.13, 88.42, 98.36, 87.49),
              ("ART", 91.96, 89.34, 98.47, 84.66)],
    "flowers17": [("Natural", 38.22, 56.43, 93.91, 0.0), ("IG Norm", 64.68, 75.91, 85.29, 24.26),
                  ("IG-SUM Norm", 66.33, 79.74, 82.35, 47.06), ("PGD-7", 80.84, 84.14, 92.64, 69.85),
                  ("ART", 79.84, 84.87, 93.21, 33.08)],
}


def _loader(split: ClassificationSplit, image_size: int | None, batch_size: int, limit: int | None) -> DataLoader:
    ds = ClassificationDataset(split, image_size)
    if limit is not None and limit < len(ds):
        ds = torch.utils.data.Subset(ds, range(limit))
    return DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=collate_classification)


def accuracies(model: torch.nn.Module, loader: DataLoader, pgd_steps: int, epsilon: float, step_size: float,
               pgd_images: int | None, progress: bool = True, random_start: bool = True) -> dict:
    """Natural accuracy over `loader`, and PGD accuracy over its first `pgd_images` images (%)."""
    device = model_device(model)
    hits = n = pgd_hits = pgd_n = 0
    cap = math.inf if pgd_images is None else pgd_images
    for batch in tqdm(loader, desc=f"natural + PGD-{pgd_steps}", unit="batch", disable=not progress):
        x, y = batch["image"].to(device), batch["label"].to(device)
        with torch.no_grad():
            hits += int((model(x).argmax(1) == y).sum())
        n += len(y)
        if pgd_steps > 0 and pgd_n < cap:
            take = int(min(len(y), cap - pgd_n))
            pgd_hits += int(pgd_correct(model, x[:take], y[:take], epsilon, pgd_steps, step_size,
                                        random_start).sum())
            pgd_n += take
    return {"natural_accuracy": 100.0 * hits / max(n, 1), "num_images": n,
            "pgd": {"steps": pgd_steps, "epsilon": epsilon, "step_size": step_size, "random_start": random_start,
                    "accuracy": 100.0 * pgd_hits / pgd_n if pgd_n else math.nan, "num_images": pgd_n}}


def evaluate_robustness(model: torch.nn.Module, split: ClassificationSplit, preset: RobustnessPreset, *,
                        image_size: int | None = None, batch_size: int = 128, max_images: int | None = None,
                        pgd_steps: int | None = None, pgd_images: int | None = None,
                        attack_images: int | None = None, attack_batch_size: int = 32,
                        max_rows: int | str | None = "auto", random_baseline: bool = True, seed: int = 0,
                        progress: bool = True, checkpoint_path: Path | None = None,
                        attack_precision: str = "fp32") -> dict:
    """Natural, PGD and attributional robustness of `model` (eval mode) on `split`.

    Args:
        preset: attack / metric settings (``preset.num_images`` attacked images unless
            ``attack_images`` is given; PGD epsilon, step and steps from the preset unless
            ``pgd_steps`` is given).
        max_images: natural accuracy on this prefix of the split (None: all of it).
        pgd_images: PGD accuracy on this prefix (None: the same images as natural accuracy).
        max_rows: images x IG points per pass of the attribution attack ("auto": chosen for the
            device, see ``wsol.attacks.resolve_max_rows``; None: a whole attack batch at once).
        attack_precision: "fp32" or "bf16" (the attribution attack's step direction under
            bfloat16 autocast; ``wsol.attacks.attribution_attack``); recorded in the report.
        checkpoint_path: when given, the partial report is written there after each stage, so a
            long run that stops keeps what it finished.
    Returns:
        {"preset", "dataset", "split", "natural_accuracy", "num_images", "pgd": {...},
         "attribution": {"attack": {IN, K, ...}, "random": {...}}, "seconds": {...}}.
    """
    model.eval()
    if model_device(model).type == "cpu":
        tune_cpu_malloc()
    steps = preset.pgd_steps[0] if pgd_steps is None else pgd_steps
    check_precision(attack_precision)
    report: dict = {"preset": preset.name, "preset_settings": preset.to_dict(), "split": split.name,
                    "attack_precision": attack_precision, "seconds": {}}
    t = time.perf_counter()
    loader = _loader(split, image_size, batch_size, max_images)
    report.update(accuracies(model, loader, steps, preset.pgd_epsilon, preset.pgd_step_size,
                             pgd_images, progress, preset.pgd_random_start))
    report["seconds"]["accuracy"] = time.perf_counter() - t
    write_report(report, checkpoint_path)
    report["attribution"] = {}
    kinds = [preset.attack] + (["random"] if random_baseline else [])
    for kind in kinds:
        t = time.perf_counter()
        res = evaluate_attribution_robustness(model, _loader(split, image_size, attack_batch_size, max_images),
                                              preset, kind=kind, max_images=attack_images, max_rows=max_rows,
                                              seed=seed, progress=progress, precision=attack_precision)
        report["attribution"]["attack" if kind == preset.attack else kind] = res
        report["seconds"][f"attribution_{kind}"] = time.perf_counter() - t
        write_report(report, checkpoint_path)
    return report


def write_report(report: dict, path: str | os.PathLike | None) -> None:
    """JSON, written to a temporary file then renamed (a stop mid-write keeps the previous one)."""
    if path is None:
        return
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=float))
    tmp.replace(path)


def _f(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"


def _precision_note(precision: str) -> str:
    if precision == "bf16":
        return "attack step directions in bfloat16 autocast (scores in float32)."
    return "attack in float32."


def robustness_markdown(report: dict, name: str = "model", dataset: str | None = None, paper: bool = True) -> str:
    """The ART table's layout: | Dataset | Approach | IN | K | Natural | PGD-k |, one row for the
    model, one for the random-noise baseline (IN / K only), then the paper's rows for `dataset`."""
    pgd = report["pgd"]
    att = report.get("attribution", {})
    ds = dataset or report.get("dataset", "")
    lines = [f"| Dataset | Approach | IN | K | Natural | PGD-{pgd['steps']} |", "|---|---|---|---|---|---|"]
    a = att.get("attack", {})
    lines.append(f"| {ds} | {name} | {_f(a.get('IN'))} | {_f(a.get('K'))} | {_f(report['natural_accuracy'])} "
                 f"| {_f(pgd['accuracy'])} |")
    if "random" in att:
        r = att["random"]
        lines.append(f"| {ds} | {name}, random noise at the same ε | {_f(r.get('IN'))} | {_f(r.get('K'))} | | |")
    if paper:
        for approach, i, k, nat, adv in PAPER_ROBUSTNESS.get(ds, []):
            lines.append(f"| {ds} | {approach} (paper) | {i:.2f} | {k:.2f} | {nat:.2f} | {adv:.2f} |")
    s = report.get("preset_settings", {})
    notes = [f"Preset `{report['preset']}`: attack {a.get('kind', s.get('attack', '?'))}, "
             f"ε {s.get('epsilon', math.nan) * 255:.3g}/255, step {s.get('step_size', math.nan) * 255:.3g}/255, "
             f"{s.get('iterations')} iterations, attack k {s.get('attack_k')}, metric k {s.get('metric_k')}, "
             f"failure policy {s.get('failure_policy')}; " + _precision_note(report.get("attack_precision", "fp32")),
             f"Natural on {report['num_images']} images of {report['split']}; PGD-{pgd['steps']} "
             f"(ε {pgd['epsilon'] * 255:.3g}/255, step {pgd['step_size'] * 255:.3g}/255, "
             f"{'random start' if pgd['random_start'] else 'no random start'}) on "
             f"{pgd['num_images']}; IN / K on {a.get('num_images', 0)} attacked images "
             f"({a.get('num_attacked', 0)} attacked, {a.get('num_success', 0)} with a label-keeping changed iterate).",
             "IN = top-k intersection, K = Kendall's tau, both x100."]
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"
