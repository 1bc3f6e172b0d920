"""Overlay and curve figures."""

from __future__ import annotations

import numpy as np
import torch

from wsol.viz import draw_boxes, overlay_heatmap, plot_boxacc_curves, save_overlay_grid, to_uint8_image


def test_to_uint8_and_overlay():
    img = torch.zeros(3, 20, 30)
    img[0] = 1.0
    u8 = to_uint8_image(img)
    assert u8.shape == (20, 30, 3) and u8.dtype == np.uint8 and (u8[..., 0] == 255).all()
    hm = np.zeros((5, 6), np.float32)
    hm[2:4, 2:4] = 1.0
    out = overlay_heatmap(u8, hm, alpha=0.5)
    assert out.shape == (20, 30, 3)
    # the hot region turns redder-warmer than the cold corner under the JET colormap
    assert out[12, 15, 2] < out[0, 0, 2]


def test_draw_boxes_marks_only_the_outline():
    img = np.zeros((10, 10, 3), np.uint8)
    out = draw_boxes(img, [[2, 3, 6, 7]], colour=(255, 0, 0))
    assert out[3, 2, 0] == 255 and out[7, 6, 0] == 255 and out[5, 4, 0] == 0
    assert img.max() == 0  # input untouched


def test_figures_are_written(tmp_path):
    panels = [np.full((16, 16, 3), v, np.uint8) for v in (0, 128, 255)]
    p = save_overlay_grid(panels, ["a", "b", "c"], tmp_path / "grid.png", cols=2, suptitle="t")
    assert p.stat().st_size > 1000
    th = np.arange(0, 1, 0.01)
    p = plot_boxacc_curves(th, {"IoU 50": 100 * np.exp(-((th - 0.3) ** 2) / 0.02)}, tmp_path / "curve.png")
    assert p.stat().st_size > 1000
