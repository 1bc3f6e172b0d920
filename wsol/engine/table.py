"""The paper's WSOL table: score a run on one split and aggregate rows over seeds.

Columns (REFERENCE.md §10, "WSOL on CUB"): Grad and CAM GT-known Loc and Top-1 Loc under the
ART paper's fixed-threshold protocol (§6.5: resize 256 + centre crop, Grad tau 0.2, CAM 0.1,
the official ART gradient map), top-1 accuracy, plus MaxBoxAccV2 of each map under the
wsolevaluation protocol (§6.1-6.2), which does not depend on a hand-picked threshold.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from wsol.data import load_split
from wsol.data.transforms import resize_boxes_wsoleval
from wsol.metrics import BoxEvaluator, PxAPEvaluator

from .evaluate import EvalOptions, evaluate_checkpoint
from .sources import default_out_dir

# (row key, column title) in the table's order.
COLUMNS = (
    ("grad_gt_known", "Grad GT-known Loc"),
    ("grad_top1_loc", "Grad Top-1 Loc"),
    ("cam_gt_known", "CAM GT-known Loc"),
    ("cam_top1_loc", "CAM Top-1 Loc"),
    ("top1_acc", "Top-1 Acc"),
    ("grad_v2", "Grad MaxBoxAccV2"),
    ("cam_v2", "CAM MaxBoxAccV2"),
)

# The ART paper's WSOL table on CUB (REFERENCE.md §10, §6.5 protocol): (backbone, method) ->
# (Grad GT-known, Grad Top-1 Loc, CAM GT-known, CAM Top-1 Loc, Top-1 Acc). ADL rows: the ART
# authors' run of the released ADL code. VGG-GAP has no PGD row in the paper.
PAPER_WSOL = {
    ("resnet50", "adl"): (52.93, 43.78, 56.85, 47.53, 80.0),
    ("resnet50", "natural"): (50.2, 42.0, 60.37, 50.0, 81.12),
    ("resnet50", "pgd"): (66.73, 47.48, 55.24, 39.45, 70.3),
    ("resnet50", "art"): (82.65, 65.22, 58.87, 46.02, 77.51),
    ("vgg_gap", "adl"): (63.18, 43.59, 69.36, 50.88, 70.31),
    ("vgg_gap", "natural"): (72.54, 53.81, 48.75, 35.03, 72.94),
    ("vgg_gap", "art"): (76.50, 57.74, 52.88, 40.75, 74.51),
}


def with_paper_rows(groups: Sequence[dict]) -> list[dict]:
    """`aggregate` groups with the paper's row (method "<method> (paper)", n "paper") after each
    (backbone, method) that has one; the paper reports no spread and no MaxBoxAccV2."""
    out = []
    for g in groups:
        out.append(g)
        ref = PAPER_WSOL.get((g.get("backbone"), g.get("method")))
        if ref:
            out.append({"backbone": g["backbone"], "method": f"{g['method']} (paper)", "n": "paper",
                        **{c: (v, 0.0) for (c, _), v in zip(COLUMNS, ref)}})
    return out


# the mask datasets' row (OpenImages): wsolevaluation's PxAP and the best-threshold mIoU
MASK_COLUMNS = (
    ("grad_pxap", "Grad PxAP"),
    ("cam_pxap", "CAM PxAP"),
    ("grad_miou", "Grad mIoU"),
    ("cam_miou", "CAM mIoU"),
    ("top1_acc", "Top-1 Acc"),
)


def score_mask_run(checkpoint: str | os.PathLike, data: str | os.PathLike, split: str = "test",
                   batch_size: int = 64, num_overlays: int = 0, out_dir: str | os.PathLike | None = None,
                   saliencies: Sequence[str] = ("grad", "cam"), dataset: str | None = None,
                   image_root: str | os.PathLike | None = None) -> dict:
    """One row of a mask dataset (OpenImages): every MASK_COLUMNS key for `saliencies`, plus
    ``<saliency>_best_threshold`` (mIoU's), ``num_images``. wsolevaluation's protocol (ignore regions
    left out); writes eval-<split>-<saliency>.json into `out_dir` (default: the run)."""
    row: dict = {}
    for saliency in saliencies:
        res = evaluate_checkpoint(checkpoint, data, EvalOptions(
            split=split, saliency=saliency, protocol="wsolevaluation", batch_size=batch_size,
            num_overlays=num_overlays, dataset=dataset, image_root=_str(image_root)), out_dir=out_dir)
        row[f"{saliency}_pxap"], row[f"{saliency}_miou"] = res["PxAP"], res["mIoU"]
        row[f"{saliency}_best_threshold"] = res["mIoU_threshold"]
        row["top1_acc"], row["num_images"] = res["top1_acc"], res["num_images"]
    return row


def score_run(checkpoint: str | os.PathLike, data: str | os.PathLike, split: str = "test",
              batch_size: int = 64, num_overlays: int = 0, out_dir: str | os.PathLike | None = None,
              saliencies: Sequence[str] = ("grad", "cam"), box_metrics: str = "both",
              dataset: str | None = None, image_root: str | os.PathLike | None = None) -> dict:
    """One table row for a checkpoint: every COLUMNS key for `saliencies`, plus the
    wsolevaluation BoxAcc curves (``curves[saliency]``) and ``num_images``.

    ``box_metrics="v2"`` skips MaxBoxAcc (largest contour);
    ``<saliency>_best_threshold`` is then MaxBoxAccV2's at IoU 50 instead of MaxBoxAcc's.

    Writes eval-<split>-<saliency>[-paper].json and PNGs into `out_dir` (default: the run).
    """
    row: dict = {"curves": {}}
    out = Path(out_dir) if out_dir is not None else None
    for saliency in saliencies:
        paper = evaluate_checkpoint(checkpoint, data, EvalOptions(
            split=split, saliency=saliency, protocol="paper", batch_size=batch_size, num_overlays=0,
            box_metrics="v2", dataset=dataset, image_root=_str(image_root)),
            out_dir=(out if out is not None else default_out_dir(checkpoint, "the paper-protocol table")) / "paper")
        v2 = evaluate_checkpoint(checkpoint, data, EvalOptions(
            split=split, saliency=saliency, protocol="wsolevaluation", batch_size=batch_size,
            num_overlays=num_overlays, box_metrics=box_metrics, dataset=dataset, image_root=_str(image_root)),
            out_dir=out)
        row[f"{saliency}_gt_known"] = paper["gt_known_loc"]
        row[f"{saliency}_top1_loc"] = paper["top1_loc"]
        row[f"{saliency}_v2"] = v2["MaxBoxAccV2"]["mean"]
        key = "MaxBoxAcc" if v2["MaxBoxAcc"] is not None else "MaxBoxAccV2"
        row[f"{saliency}_maxboxacc"] = v2["MaxBoxAcc"]["50"] if v2["MaxBoxAcc"] else None
        row[f"{saliency}_best_threshold"] = v2["best_threshold"][key]["50"]
        row["curves"][saliency] = v2["curve"]
        row["top1_acc"] = v2["top1_acc"]
        row["num_images"] = v2["num_images"]
    return row


def _str(path) -> str | None:
    return None if path is None else str(path)


def _centre_gaussian(image_size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:image_size, 0:image_size]
    c = (image_size - 1) / 2
    return np.exp(-((xx - c) ** 2 + (yy - c) ** 2) / (2 * (0.25 * image_size) ** 2))


def centre_baseline(data: str | os.PathLike, image_size: int, split: str = "test", dataset: str | None = None,
                    image_root: str | os.PathLike | None = None) -> dict:
    """wsolevaluation's centre-Gaussian baseline, one centred Gaussian map for every image: what a
    map that ignores the image scores on this split. Box splits: {"v2": MaxBoxAccV2 %, "v1":
    MaxBoxAcc %, "n": images}; mask splits (OpenImages): {"pxap": %, "miou": %, "n": images}."""
    sp = load_split(data, split, dataset=dataset, image_root=image_root)
    g = _centre_gaussian(image_size)
    if not sp.has_boxes:
        return _centre_masks(sp, g, image_size)
    gts = [resize_boxes_wsoleval(np.asarray(s.boxes), s.size, (image_size, image_size))
           for s in sp.samples]  # the wsoleval transform's boxes, no image decoded
    ev = BoxEvaluator(cam_curve_interval=0.01)
    for i in range(0, len(gts), 128):
        chunk = gts[i:i + 128]
        ev.accumulate(np.repeat(g[None], len(chunk), 0), chunk)
    res = ev.compute()
    return {"v2": res["MaxBoxAccV2"]["mean"], "v1": res["MaxBoxAcc"]["50"], "n": res["num_images"]}


def _centre_masks(split, g: np.ndarray, image_size: int) -> dict:
    import torch

    from wsol.data import WSOLDataset, batch_gt_masks, build_transform, collate_samples

    ds = WSOLDataset(split, build_transform("wsoleval", image_size))
    loader = torch.utils.data.DataLoader(ds, batch_size=64, collate_fn=collate_samples)
    ev = PxAPEvaluator(cam_curve_interval=0.01)
    for batch in loader:
        if len(batch["label"]):
            ev.accumulate(np.repeat(g[None], len(batch["label"]), 0), batch_gt_masks(batch))
    res = ev.compute()
    return {"pxap": res["PxAP"], "miou": res["mIoU"], "n": res["num_images"]}


def mean_sd(values: Iterable[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("mean_sd of no values")
    return statistics.mean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def t_interval(values: Iterable[float], level: float = 0.95) -> tuple[float, float]:
    """The `level` confidence interval of the mean of `values` (Student's t, n - 1 degrees of
    freedom); one value gives (v, v)."""
    from scipy import stats

    vals = [float(v) for v in values]
    m, s = mean_sd(vals)
    if len(vals) < 2:
        return m, m
    half = float(stats.t.ppf(0.5 + level / 2, len(vals) - 1)) * s / len(vals) ** 0.5
    return m - half, m + half


def aggregate(rows: Sequence[dict], keys: Sequence[str] = ("backbone", "method")) -> list[dict]:
    """Group rows by `keys` (in first-seen order); each group -> {keys..., "n": seeds,
    "<col>": (mean, sd) for every COLUMNS key present, "train_s": (mean, sd) if present}."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for key, members in groups.items():
        agg = dict(zip(keys, key), n=len(members))
        for col in [c for c, _ in COLUMNS] + ["train_s"]:
            vals = [m[col] for m in members if m.get(col) is not None]
            if vals:
                agg[col] = mean_sd(vals)
        out.append(agg)
    return out


def markdown_table(groups: Sequence[dict], keys: Sequence[str] = ("backbone", "method"),
                   bold_best: bool = True) -> list[str]:
    """Markdown lines: one row per group, `mean ± sd` per column, the best mean per backbone
    and column in bold (``train_s`` shown as minutes per run when present)."""
    cols = [c for c in COLUMNS if any(c[0] in g for g in groups)]
    timed = any("train_s" in g for g in groups)
    head = [*(k.replace("_", " ") for k in keys), "seeds", *(t for _, t in cols)] + (["train min/run"] if timed else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    best: dict[tuple, float] = {}
    for g in groups:
        for c, _ in cols:
            if c in g and g["n"] != "paper":
                k = (g.get(keys[0]), c)
                best[k] = max(best.get(k, float("-inf")), g[c][0])
    for g in groups:
        cells = [str(g.get(k, "")) for k in keys] + [str(g["n"])]
        for c, _ in cols:
            if c not in g:
                cells.append("–")
                continue
            m, s = g[c]
            text = f"{m:.1f} ± {s:.1f}" if isinstance(g["n"], int) and g["n"] > 1 else f"{m:.2f}" \
                if g["n"] == "paper" else f"{m:.1f}"
            multi = sum(1 for h in groups if h.get(keys[0]) == g.get(keys[0]) and c in h and h["n"] != "paper") > 1
            cells.append(f"**{text}**" if bold_best and multi and g["n"] != "paper"
                         and m == best[(g.get(keys[0]), c)] else text)
        if timed:
            cells.append(f"{g['train_s'][0] / 60:.1f}" if "train_s" in g else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return lines
