"""Figures: heatmap overlays with boxes, overlay grids, and BoxAcc-vs-threshold curves."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["to_uint8_image", "overlay_heatmap", "draw_boxes", "save_overlay_grid", "plot_boxacc_curves",
           "plot_method_curves", "plot_training_curves"]

PRED_COLOUR = (255, 64, 64)  # RGB
GT_COLOUR = (64, 255, 64)


def to_uint8_image(image) -> np.ndarray:
    """(3,H,W) or (H,W,3) float in [0,1] / uint8 (numpy or torch) -> uint8 (H,W,3) RGB."""
    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[-1] != 3:
        arr = arr.transpose(1, 2, 0)
    if arr.dtype != np.uint8:
        arr = np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def overlay_heatmap(image, heatmap: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a heatmap (h,w) in [0,1] (resized to the image) over an image -> uint8 (H,W,3)."""
    img = to_uint8_image(image)
    hm = np.nan_to_num(np.asarray(heatmap, dtype=np.float32))
    if hm.shape != img.shape[:2]:
        hm = cv2.resize(hm, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_CUBIC)
    colour = cv2.applyColorMap(np.clip(hm * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(img, 1 - alpha, colour, alpha, 0)


def draw_boxes(image: np.ndarray, boxes, colour=PRED_COLOUR, thickness: int = 1) -> np.ndarray:
    """Draw inclusive (x0,y0,x1,y1) boxes on a copy of a uint8 (H,W,3) image."""
    out = image.copy()
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        cv2.rectangle(out, (int(round(x0)), int(round(y0))), (int(round(x1)), int(round(y1))), colour, thickness)
    return out


def _save(fig, path: str | os.PathLike) -> Path:
    fig.tight_layout(rect=(0, 0, 1, 0.97) if fig._suptitle is not None else None)
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def save_overlay_grid(panels: Sequence[np.ndarray], titles: Sequence[str], path: str | os.PathLike,
                      cols: int = 4, suptitle: str | None = None) -> Path:
    """Save uint8 (H,W,3) panels as a titled grid PNG; returns the path."""
    n = len(panels)
    cols = max(1, min(cols, n))
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, panel, title in zip(axes.flat, panels, titles):
        ax.imshow(panel)
        ax.set_title(title, fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    return _save(fig, path)


def plot_boxacc_curves(thresholds: np.ndarray, curves: Mapping[str, np.ndarray], path: str | os.PathLike,
                       title: str = "BoxAcc vs threshold") -> Path:
    """Plot accuracy (%) per threshold for each named curve (e.g. IoU 30/50/70) to a PNG."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, acc in curves.items():
        acc = np.asarray(acc, dtype=np.float64)
        k = int(np.argmax(acc))
        ax.plot(thresholds, acc, label=f"{name} (max {acc[k]:.1f} at {thresholds[k]:.3f})")
    ax.set_xlabel("CAM threshold")
    ax.set_ylabel("BoxAcc (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def plot_method_curves(curves: Mapping[str, Mapping[str, Mapping]], path: str | os.PathLike,
                       metric: str = "MaxBoxAccV2", iou: str = "50") -> Path:
    """BoxAcc-vs-threshold of several models side by side, one panel per saliency.

    Args:
        curves: {saliency: {model name: BoxEvaluator "curve" dict ({"thresholds": [...],
            metric: {iou: [% per threshold]}})}}.
    """
    fig, axes = plt.subplots(1, len(curves), figsize=(4.6 * len(curves), 3.6), squeeze=False)
    for ax, (saliency, by_model) in zip(axes[0], curves.items()):
        for name, curve in by_model.items():
            th = np.asarray(curve["thresholds"])
            acc = np.asarray(curve[metric][iou], dtype=np.float64)
            k = int(np.argmax(acc))
            ax.plot(th, acc, label=f"{name} (max {acc[k]:.1f} at {th[k]:.2f})")
        ax.set_xlabel(f"{saliency} map threshold")
        ax.set_ylabel(f"BoxAcc at IoU {int(iou) / 100:.1f} (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title(f"{saliency}: {metric} curve, IoU {iou}", fontsize=9)
    return _save(fig, path)


def plot_training_curves(histories: Mapping[str, Sequence[Mapping]], path: str | os.PathLike,
                         keys: Sequence[str] = ("train_loss", "train_top1_acc", "val_grad_loc", "val_cam_loc")) -> Path:
    """Per-epoch metrics.jsonl rows of several runs, one panel per key (missing keys skipped)."""
    keys = [k for k in keys if any(k in row for rows in histories.values() for row in rows)]
    fig, axes = plt.subplots(1, max(1, len(keys)), figsize=(3.6 * max(1, len(keys)), 3.0), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for name, rows in histories.items():
            pts = [(r["epoch"], r[key]) for r in rows if key in r]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_title(key.replace("_", " "), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)
