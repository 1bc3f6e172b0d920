"""Shared fixtures: tiny hand-made CUB trees written by the tests themselves.

The boxes and masks of :func:`write_tiny_cub` are hand-made (a filled rectangle drawn into
each image), not real CUB annotations.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

# Two CPU cores: keep each test process on few threads so pytest-xdist workers do not fight.
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 2) // max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", 1))))))

CLASSES = ["001.Red_Square", "002.Blue_Square"]


def write_tiny_cub(root: Path, per_class: int = 3, size=(40, 30), with_segs: bool = True) -> Path:
    """Write an official-layout CUB folder with ``2 * per_class`` images.

    Image k of class c is ``size`` (W, H) with a filled rectangle; its box is written as
    x y w h with w = x1 - x0 + 1 (hand-made). Ids are 1-based; even positions are train.
    """
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, labels, split, boxes = [], [], [], []
    W, H = size
    i = 0
    for c, cname in enumerate(CLASSES, start=1):
        (root / "images" / cname).mkdir(exist_ok=True)
        if with_segs:
            (root / "segmentations" / cname).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            i += 1
            x0, y0 = 2 + k, 3 + k
            x1, y1 = x0 + 10 + 2 * k, y0 + 8 + k
            img = np.full((H, W, 3), 40, np.uint8)
            img[y0 : y1 + 1, x0 : x1 + 1] = (200, 30, 30) if c == 1 else (30, 30, 200)
            rel = f"{cname}/{cname.split('.')[1]}_{k:04d}.jpg"
            Image.fromarray(img).save(root / "images" / rel, quality=95)
            if with_segs:
                seg = np.zeros((H, W), np.uint8)
                seg[y0 : y1 + 1, x0 : x1 + 1] = 255
                seg[y0, x0 : x1 + 1] = 127  # a boundary row with half the annotator votes
                Image.fromarray(seg).save(root / "segmentations" / rel.replace(".jpg", ".png"))
            images.append(f"{i} {rel}")
            labels.append(f"{i} {c}")
            split.append(f"{i} {1 if k % 2 == 0 else 0}")
            boxes.append(f"{i} {x0:.1f} {y0:.1f} {x1 - x0 + 1:.1f} {y1 - y0 + 1:.1f}")
    (root / "images.txt").write_text("\n".join(images) + "\n")
    (root / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (root / "train_test_split.txt").write_text("\n".join(split) + "\n")
    (root / "bounding_boxes.txt").write_text("\n".join(boxes) + "\n")
    (root / "classes.txt").write_text("\n".join(f"{c} {n}" for c, n in enumerate(CLASSES, start=1)) + "\n")
    return root


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of tiny models: intra-op threads gain nothing on tensors
    this small, and on two busy cores they cost several times the run time."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_cub(tmp_path) -> Path:
    return write_tiny_cub(tmp_path / "CUB_200_2011")


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test: nothing may be downloaded."""
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted in a test")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def seeded():
    """torch's global RNG seeded with 0 before the test."""
    torch.manual_seed(0)
