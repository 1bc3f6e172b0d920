"""Top-1 accuracy of a classifier on CIFAR-10-C, and the ART-style results table.

REFERENCE.md §8 (CIFAR-10-C files, the ``art2020`` column set, mean over the 5 severities
plus each severity) and §10 (ART's CIFAR-10-C table: columns GN SN IN DB Gl-B MB ZB S F B C
E P J Sp-N, where F is fog and Sp-N speckle noise; :func:`cifar10c_markdown` prints the paper's rows
under the model's). A folder written by
:func:`wsol.data.cifar10c_regen.regenerate_cifar10c` is reported as
"CIFAR-10-C-regenerated (not bit-identical)", the release as "CIFAR-10-C".
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from wsol.data.cifar10c_regen import REGENERATED_LABEL, is_regenerated
from wsol.data.robustness import (
    CIFAR10C_ART2020,
    CIFAR10C_BENCHMARK,
    CIFAR10C_CORRUPTIONS,
    CIFAR10C_SEVERITIES,
    ClassificationDataset,
    DatasetFormatError,
    available_cifar10c,
    collate_classification,
    read_cifar10c,
)

__all__ = ["evaluate_cifar10c", "cifar10c_markdown", "SHORT_NAMES", "COLUMN_SETS"]

log = logging.getLogger(__name__)

RELEASED_LABEL = "CIFAR-10-C"
# ART's short headers (REFERENCE.md §10) for its 15 columns; Fr, Ga-B, Spa, Sat for the rest.
SHORT_NAMES = {
    "gaussian_noise": "GN", "shot_noise": "SN", "impulse_noise": "IN", "defocus_blur": "DB",
    "glass_blur": "Gl-B", "motion_blur": "MB", "zoom_blur": "ZB", "snow": "S", "frost": "Fr",
    "fog": "F", "brightness": "B", "contrast": "C", "elastic_transform": "E", "pixelate": "P",
    "jpeg_compression": "J", "speckle_noise": "Sp-N", "gaussian_blur": "Ga-B", "spatter": "Spa",
    "saturate": "Sat",
}
COLUMN_SETS = {"art2020": CIFAR10C_ART2020, "benchmark": CIFAR10C_BENCHMARK, "all": CIFAR10C_CORRUPTIONS}


def _requested(root: Path, corruptions: Sequence[str] | None, severities: Sequence[int]) -> list[str]:
    """Check names, severities and files up front, so a bad request fails before any evaluation."""
    for s in severities:
        if isinstance(s, bool) or int(s) != s or not 1 <= s <= CIFAR10C_SEVERITIES:
            raise ValueError(f"CIFAR-10-C severities must be integers 1..{CIFAR10C_SEVERITIES}, got {s!r}")
    if corruptions is None:
        names = available_cifar10c(root)
        if not names:
            raise DatasetFormatError(f"{root}: no CIFAR-10-C corruption files (<corruption>.npy) found")
        return names
    names = list(corruptions)
    unknown = [c for c in names if c not in CIFAR10C_CORRUPTIONS]
    if unknown:
        raise ValueError(f"unknown CIFAR-10-C corruption(s) {unknown}; valid: {', '.join(CIFAR10C_CORRUPTIONS)}")
    missing = [str(root / f"{c}.npy") for c in names if not (root / f"{c}.npy").is_file()]
    if missing:
        raise DatasetFormatError([f"{p}: file not found" for p in missing], f"CIFAR-10-C ({root})")
    return names


@torch.no_grad()
def _accuracy(model: torch.nn.Module, dataset: ClassificationDataset, batch_size: int, device) -> float:
    """Top-1 accuracy (percent) of ``model`` over ``dataset``."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_classification)
    correct = total = 0
    for batch in loader:
        logits = model(batch["image"].to(device))
        correct += int((logits.argmax(1).cpu() == batch["label"]).sum())
        total += len(batch["label"])
    return 100.0 * correct / max(total, 1)


def evaluate_cifar10c(model: torch.nn.Module, root: str | os.PathLike, corruptions: Sequence[str] | None = None,
                      severities: Sequence[int] = (1, 2, 3, 4, 5), batch_size: int = 256,
                      device: str | torch.device = "cpu", progress: bool = True,
                      image_size: int | None = None) -> dict:
    """Top-1 accuracy (%) per corruption and severity on the CIFAR-10-C folder ``root``.

    ``corruptions=None`` evaluates every corruption with a file under ``root``; a requested one
    without its file raises :class:`DatasetFormatError` naming the file. The model is moved to
    ``device`` and run in eval mode (its mode is restored afterwards). Images enter the model
    in [0, 1], (B, 3, S, S), resized to ``image_size`` when given. Returns ``{"dataset",
    "approximations", "root", "severities", "columns", "results": {corruption: {"severities":
    {"1": acc, ...}, "mean": acc}}, "mean", "num_images"}``: ``mean`` per corruption is over the
    severities evaluated, the overall ``mean`` over the corruptions; ``approximations`` comes from
    REGENERATED.json (empty for the release).
    """
    root = Path(root)
    sevs = [int(s) for s in severities]
    names = _requested(root, corruptions, sevs)
    record = is_regenerated(root)
    was_training = model.training
    model.to(device).eval()
    results: dict[str, dict] = {}
    num_images = 0
    pairs = [(c, s) for c in names for s in sevs]
    try:
        for c, s in tqdm(pairs, desc="CIFAR-10-C", unit="set", disable=not progress):
            split = read_cifar10c(root, c, s)
            num_images = len(split)
            acc = _accuracy(model, ClassificationDataset(split, image_size=image_size), batch_size, device)
            results.setdefault(c, {"severities": {}})["severities"][str(s)] = acc
            log.info("CIFAR-10-C %s severity %d: top-1 %.2f%%", c, s, acc)
    finally:
        model.train(was_training)
    for r in results.values():
        r["mean"] = float(np.mean(list(r["severities"].values())))
    return {
        "dataset": record.get("label", REGENERATED_LABEL) if record is not None else RELEASED_LABEL,
        "approximations": record.get("approximations", {}) if record is not None else {},
        "root": str(root), "severities": sevs, "columns": names, "results": results,
        "mean": float(np.mean([r["mean"] for r in results.values()])), "num_images": num_images,
    }


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _table(header: str, rows: list[tuple[str, list[float | None]]], columns: Sequence[str]) -> list[str]:
    heads = [SHORT_NAMES[c] for c in columns] + ["Mean"]
    lines = [f"| {header} | " + " | ".join(heads) + " |", "|" + "---|" * (len(heads) + 1)]
    for label, values in rows:
        present = [v for v in values if v is not None]
        mean = float(np.mean(present)) if present else None
        lines.append(f"| {label} | " + " | ".join(_cell(v) for v in values + [mean]) + " |")
    return lines


# REFERENCE.md §10: ART's CIFAR-10-C table (its 15 columns, CIFAR10C_ART2020 order).
PAPER_CIFAR10C = {
    "Natural": (49.16, 61.42, 59.22, 83.55, 53.84, 79.16, 79.18, 84.53, 91.6, 94.37, 87.63, 84.44, 74.12, 79.76, 65.04),
    "PGD-10": (83.32, 84.33, 73.73, 83.09, 81.27, 79.60, 82.07, 82.68, 68.81, 85.97, 57.86, 81.68, 85.56, 85.56, 83.64),
    "ART": (85.44, 86.41, 77.07, 86.07, 81.70, 83.14, 85.54, 84.99, 71.04, 89.42, 56.69, 84.72, 87.64, 87.89, 86.02),
}


def cifar10c_markdown(report: dict, columns: str = "art2020", name: str = "model", paper: bool = True) -> str:
    """Markdown tables of an :func:`evaluate_cifar10c` report.

    First table: one row (``name``), the mean over severities per corruption, in the column
    set's order with ART's short headers (``art2020``: GN SN IN DB Gl-B MB ZB S F B C E P J Sp-N;
    also ``benchmark`` and ``all``), plus the mean of the shown cells; with ``paper`` and the
    ``art2020`` columns, the paper's Natural / PGD-10 / ART rows under it. Second table: one row
    per severity. Corruptions missing from the report show "–". The title names the dataset.
    """
    if columns not in COLUMN_SETS:
        raise ValueError(f"columns must be one of {sorted(COLUMN_SETS)}, got {columns!r}")
    cols = COLUMN_SETS[columns]
    results = report["results"]

    def value(c: str, key: str | None) -> float | None:
        r = results.get(c)
        return None if r is None else (r["mean"] if key is None else r["severities"].get(key))

    sevs = ", ".join(str(s) for s in report["severities"])
    lines = [f"### {report['dataset']}: top-1 accuracy (%), columns `{columns}`", "",
             f"Mean over severities {sevs}:", ""]
    rows = [(name, [value(c, None) for c in cols])]
    if paper and columns == "art2020":  # severity aggregation of the paper is unstated (REFERENCE.md §8)
        rows += [(f"{k} (paper, CIFAR-10-C)", list(v)) for k, v in PAPER_CIFAR10C.items()]
    lines += _table("Model", rows, cols)
    lines += ["", f"Per severity ({name}):", ""]
    lines += _table("Severity", [(str(s), [value(c, str(s)) for c in cols]) for s in report["severities"]], cols)
    return "\n".join(lines) + "\n"
