"""The training loader's speed changes keep its output: `load_rgb` and `SampleTransform` give the same
pixels, boxes and masks, in the same random order, as the code before them (kept below as references:
`np.asarray` of the PIL image; the albumentations Compose called with boxes, always).

Real JPEG (and PNG) files: 1/f colour noise like photos, in the encodings ImageNet holds (4:2:0, 4:2:2,
4:4:4, progressive, grayscale, CMYK), odd sizes, and one image too large for Pillow's single memory
block (the fallback path).
"""

from __future__ import annotations

import os
import random

import albumentations as A
import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from wsol.data.images import ImageLoadError, load_rgb
from wsol.data.synthetic_render import pink_noise_image
from wsol.data.transforms import KINDS, build_transform

# --------------------------------------------------------------------------- references (before)


def reference_load_rgb(path) -> np.ndarray:
    """`load_rgb` before the speed change (8-bit modes; the wide ones did not change)."""
    img = Image.open(path)
    img.load()
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def reference_transform(t, image, boxes, mask=None) -> dict:
    """`SampleTransform.__call__` before the speed change, run on `t`'s pipeline."""
    from wsol.data.transforms import (IGNORE, _foreground, _to_tensor, crop_boxes_art2020, crop_boxes_exact,
                                      resize_boxes_wsoleval)

    H, W = image.shape[:2]
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    args = {"image": image}
    if mask is not None:
        args["mask"] = mask
    if t.kind == "train":
        cont = np.clip(boxes + [0, 0, 1, 1], 0, [W, H, W, H])
        args.update(bboxes=cont, box_ids=np.arange(len(boxes)))
    out = t.pipeline(**args)
    if t.kind == "train":
        new = np.asarray(out["bboxes"], dtype=np.float64).reshape(-1, 4) - [0, 0, 1, 1]
        new = np.clip(new, 0, t.image_size - 1)
        new[:, 2:] = np.maximum(new[:, 2:], new[:, :2])
    elif t.kind == "wsoleval":
        new = resize_boxes_wsoleval(boxes, (W, H), (t.image_size, t.image_size))
    elif t.kind == "paper":
        new = crop_boxes_exact(boxes, (W, H), t.resize_size, t.image_size)
    else:
        new = crop_boxes_art2020(boxes, (W, H), t.resize_size, t.image_size)
    m = out.get("mask")
    return {
        "image": _to_tensor(out["image"]),
        "boxes": torch.from_numpy(np.ascontiguousarray(new)).float(),
        "mask": None if m is None else torch.from_numpy(_foreground(m)),
        "ignore": None if m is None else torch.from_numpy(np.asarray(m) == IGNORE),
    }


# --------------------------------------------------------------------------- files


ENCODINGS = {  # name -> (size, mode, save options)
    "420": ((500, 375), "RGB", dict(quality=90)),
    "422": ((333, 500), "RGB", dict(quality=90, subsampling=1)),
    "444": ((257, 193), "RGB", dict(quality=95, subsampling=0)),
    "progressive": ((500, 334), "RGB", dict(quality=85, progressive=True)),
    "restart": ((401, 299), "RGB", dict(quality=90, restart_marker_blocks=4)),
    "gray": ((375, 500), "L", dict(quality=90)),
    "cmyk": ((300, 200), "CMYK", dict(quality=95)),
    "tiny": ((1, 1), "RGB", dict(quality=90)),
}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    paths = {}
    for name, ((w, h), mode, opts) in ENCODINGS.items():
        path = root / f"{name}.JPEG"
        Image.fromarray(pink_noise_image(rng, max(w, 2), max(h, 2))[:h, :w]).convert(mode).save(path, "JPEG", **opts)
        paths[name] = str(path)
    rgba = np.dstack([pink_noise_image(rng, 320, 240), rng.integers(0, 256, (240, 320), dtype=np.uint8)])
    Image.fromarray(rgba, "RGBA").save(root / "rgba.png")
    Image.fromarray(pink_noise_image(rng, 320, 240)).convert("P").save(root / "palette.png")
    paths.update(rgba=str(root / "rgba.png"), palette=str(root / "palette.png"))
    return paths


@pytest.mark.parametrize("name", [*ENCODINGS, "rgba", "palette"])
def test_load_rgb_identical(photos, name):
    got, want = load_rgb(photos[name]), reference_load_rgb(photos[name])
    assert got.dtype == np.uint8 and got.shape == want.shape and got.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(got, want)


def test_load_rgb_identical_beyond_one_memory_block(tmp_path):
    # 2100 x 2100 RGB is 17.6 MB as Pillow's RGBX, over its 16 MB block: the np.asarray path
    path = tmp_path / "big.jpg"
    rng = np.random.default_rng(1)
    big = cv2.resize(pink_noise_image(rng, 525, 525), (2100, 2100), interpolation=cv2.INTER_LINEAR)
    Image.fromarray(big).save(path, quality=90)
    with Image.open(path) as img:
        img.load()
        if hasattr(img.im, "__arrow_c_array__"):  # Pillow >= 11.2: the in-place read refuses this one
            with pytest.raises(ValueError):
                img.im.__arrow_c_array__()
    np.testing.assert_array_equal(load_rgb(path), reference_load_rgb(path))


def test_load_rgb_errors_name_the_path(tmp_path):
    for missing in (tmp_path / "nope.jpg", str(tmp_path / "nope.jpg"), tmp_path):  # a folder is no file
        with pytest.raises(ImageLoadError, match=r"image file not found"):
            load_rgb(missing)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageLoadError, match=rf"{os.sep}bad\.jpg: unreadable or corrupt image"):
        load_rgb(bad)


# --------------------------------------------------------------------------- transforms


def _same(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for key in a:
        if a[key] is None or b[key] is None:
            assert a[key] is None and b[key] is None, key
        else:
            assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("with_boxes", [False, True])
@pytest.mark.parametrize("with_mask", [False, True])
def test_transform_identical_with_fixed_seed(photos, kind, with_boxes, with_mask):
    ours, ref = build_transform(kind, 224, 256), build_transform(kind, 224, 256)
    rng = np.random.default_rng(3)
    for seed in (0, 12345):
        ours.set_seed(seed)
        ref.set_seed(seed)
        for name in ("420", "444", "gray", "rgba"):
            image = load_rgb(photos[name])
            H, W = image.shape[:2]
            boxes = np.zeros((0, 4))
            if with_boxes:
                x0, y0 = rng.integers(0, W // 2, 3), rng.integers(0, H // 2, 3)
                boxes = np.stack([x0, y0, np.minimum(x0 + rng.integers(1, W // 2, 3), W - 1),
                                  np.minimum(y0 + rng.integers(1, H // 2, 3), H - 1)], 1).astype(float)
            mask = None
            if with_mask:
                mask = (rng.random((H, W)) < 0.4).astype(np.uint8)
                mask[rng.random((H, W)) < 0.05] = 255
            _same(ours(image, boxes, mask), reference_transform(ref, image, boxes, mask))


def test_train_transform_stream_matches_over_many_calls(photos):
    """A training epoch's view: the same seed gives the same sequence of crops and flips."""
    ours, ref = build_transform("train", 224, 256), build_transform("train", 224, 256)
    ours.set_seed(7)
    ref.set_seed(7)
    image = load_rgb(photos["420"])
    for _ in range(20):
        _same(ours(image, np.zeros((0, 4))), reference_transform(ref, image, np.zeros((0, 4))))
    assert isinstance(ours.pipeline, A.Compose)


@pytest.mark.parametrize("seeding", ["set_seed", "one_shared_generator"])
def test_train_transform_paths_share_one_random_stream(photos, seeding):
    """Images without boxes and masks take a shorter path than the others; mixed in one stream (any
    split, any size: up- and down-scaling) they draw the same random numbers as the pipeline did,
    whether each albumentations transform has its own generator (`set_seed`) or all share one."""
    ours, ref = build_transform("train", 96, 110), build_transform("train", 96, 110)
    for t in (ours, ref):
        if seeding == "set_seed":
            t.set_seed(11)
        else:
            t.pipeline.set_random_state(np.random.default_rng(11), random.Random(11))
    rng = np.random.default_rng(0)
    names = ["420", "tiny", "gray", "444", "progressive", "cmyk", "palette"]
    for k in range(30):
        image = load_rgb(photos[names[k % len(names)]])
        H, W = image.shape[:2]
        boxes = np.array([[0, 0, W - 1, H - 1]], float) if k % 3 == 1 else np.zeros((0, 4))
        mask = (rng.random((H, W)) < 0.5).astype(np.uint8) if k % 4 == 2 else None
        _same(ours(image, boxes, mask), reference_transform(ref, image, boxes, mask))


def test_train_transform_identical_whatever_opencv_threads(photos):
    """OpenCV's thread count (DataLoader workers vs the main process) does not change the pixels."""
    image = load_rgb(photos["420"])
    before = cv2.getNumThreads()
    try:
        outs = []
        for threads in (1, max(2, before)):
            cv2.setNumThreads(threads)
            t = build_transform("train", 224, 256)
            t.set_seed(0)
            outs.append(t(image, np.zeros((0, 4)))["image"])
        assert torch.equal(outs[0], outs[1])
    finally:
        cv2.setNumThreads(before)
