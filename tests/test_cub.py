"""CUB reader: both layouts, the conversion rule, the dataset, and every bad-input case."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wsol.data import (
    CubDataset,
    CubFormatError,
    ImageLoadError,
    build_transform,
    collate_samples,
    convert_official_to_wsoleval,
    detect_layout,
    load_rgb,
    load_split,
    official_split,
    read_official,
    read_wsoleval,
)
from wsol.data.cub.official import _parse_official


def test_read_official_counts_and_box_rule(tiny_cub):
    data = read_official(tiny_cub)
    assert data.ids == [1, 2, 3, 4, 5, 6]
    assert data.class_names == ["001.Red_Square", "002.Blue_Square"]
    assert [data.labels[i] for i in data.ids] == [0, 0, 0, 1, 1, 1]
    train, test = official_split(data, "train"), official_split(data, "test")
    assert len(train) == 4 and len(test) == 2
    s = train.samples[0]
    assert s.size == (40, 30)
    # hand-made box x0=2,y0=3,x1=12,y1=11 written as w=11,h=9 -> x1 = min(x+w, W-1) = 13
    assert s.boxes == ((2.0, 3.0, 13.0, 12.0),)
    assert s.mask_paths and Path(s.mask_paths[0]).is_file()
    assert train.has_masks


def test_box_rule_clips_at_image_border(tmp_path):
    from wsol.data.cub import xywh_to_wsoleval

    assert xywh_to_wsoleval((5, 6, 35, 24), (40, 30)) == (5.0, 6.0, 39.0, 29.0)
    assert xywh_to_wsoleval((5, 6, 10, 4), (40, 30)) == (5.0, 6.0, 15.0, 10.0)


def test_convert_then_read_wsoleval_roundtrip(tiny_cub, tmp_path):
    out = tmp_path / "metadata"
    counts = convert_official_to_wsoleval(tiny_cub, out, val_per_class=1)
    assert counts == {"train": 2, "val": 2, "test": 2}
    text = (out / "test" / "localization.txt").read_text()
    assert not text.endswith("\n") and "," in text and " " not in text
    official = read_official(tiny_cub)
    for split in ("train", "val", "test"):
        a = official_split(official, split, val_per_class=1)
        b = read_wsoleval(out, split, image_root=tiny_cub / "images")
        assert [(x.image_id, x.label, x.size, x.boxes) for x in a.samples] == \
               [(x.image_id, x.label, x.size, x.boxes) for x in b.samples]
        assert b.has_masks  # segmentations/ found beside the image root
    assert read_wsoleval(out, "test", image_root=tiny_cub / "images").class_names == official.class_names


def test_val_carving_is_deterministic_and_disjoint(tiny_cub):
    data = read_official(tiny_cub)
    val = {s.image_id for s in official_split(data, "val", val_per_class=1).samples}
    train = {s.image_id for s in official_split(data, "train", val_per_class=1).samples}
    test = {s.image_id for s in official_split(data, "test", val_per_class=1).samples}
    assert len(val) == 2 and not (val & train) and not (val & test)
    assert val == {s.image_id for s in official_split(read_official(tiny_cub), "val", val_per_class=1).samples}
    with pytest.raises(ValueError, match="no val split"):
        official_split(data, "val")


def test_detect_layout_and_load_split(tiny_cub, tmp_path):
    assert detect_layout(tiny_cub) == ("official", tiny_cub)
    assert detect_layout(tiny_cub.parent) == ("official", tiny_cub)
    convert_official_to_wsoleval(tiny_cub, tiny_cub / "metadata")
    assert detect_layout(tiny_cub / "metadata")[0] == "wsoleval"
    split = load_split(tiny_cub / "metadata", "train")  # image root found beside the metadata
    assert len(split) == 4
    with pytest.raises(CubFormatError, match="neither"):
        detect_layout((tmp_path / "empty").mkdir() or tmp_path / "empty")


# --------------------------------------------------------------------------- bad input


def _error(root) -> str:
    with pytest.raises(CubFormatError) as info:
        read_official(root)
    return str(info.value)


def _edit(path: Path, lineno: int, new: str | None) -> None:
    lines = path.read_text().splitlines()
    if new is None:
        del lines[lineno - 1]
    else:
        lines[lineno - 1] = new
    path.write_text("\n".join(lines) + "\n")


def test_missing_file(tiny_cub):
    (tiny_cub / "bounding_boxes.txt").unlink()
    msg = _error(tiny_cub)
    assert "bounding_boxes.txt: file not found" in msg


def test_wrong_field_count(tiny_cub):
    _edit(tiny_cub / "bounding_boxes.txt", 2, "2 1.0 2.0 3.0")
    msg = _error(tiny_cub)
    assert "bounding_boxes.txt:2: expected 5 fields" in msg


def test_non_numeric_field(tiny_cub):
    _edit(tiny_cub / "image_class_labels.txt", 3, "3 one")
    msg = _error(tiny_cub)
    assert "image_class_labels.txt:3: field 'class' is not an integer: 'one'" in msg


def test_id_missing_in_other_file(tiny_cub):
    _edit(tiny_cub / "train_test_split.txt", 4, None)
    msg = _error(tiny_cub)
    assert "train_test_split.txt: id 4 (from images.txt line 4) is missing" in msg


def test_id_not_in_images(tiny_cub):
    with open(tiny_cub / "image_class_labels.txt", "a") as fh:
        fh.write("99 1\n")
    msg = _error(tiny_cub)
    assert "image_class_labels.txt:7: id 99 is not in images.txt" in msg


def test_duplicate_id_and_bad_class(tiny_cub):
    _edit(tiny_cub / "image_class_labels.txt", 2, "1 1")
    _edit(tiny_cub / "image_class_labels.txt", 5, "5 7")
    msg = _error(tiny_cub)
    assert "image_class_labels.txt:2: duplicate id 1 (first on line 1)" in msg
    assert "image_class_labels.txt:5: class 7 is not in classes.txt (1..2)" in msg


def test_box_outside_image_and_zero_area(tiny_cub):
    _edit(tiny_cub / "bounding_boxes.txt", 1, "1 30.0 3.0 20.0 5.0")
    _edit(tiny_cub / "bounding_boxes.txt", 2, "2 3.0 3.0 0.0 5.0")
    msg = _error(tiny_cub)
    assert "bounding_boxes.txt:1: box (x=30, y=3, w=20, h=5) lies outside the 40x30 image" in msg
    assert "bounding_boxes.txt:2: box has zero or negative area" in msg


def test_every_problem_is_collected(tiny_cub):
    _edit(tiny_cub / "bounding_boxes.txt", 1, "1 a 3.0 20.0 5.0")
    _edit(tiny_cub / "train_test_split.txt", 2, "2 5")
    _, problems = _parse_official(tiny_cub)
    assert len(problems) == 2


def test_format_errors_share_one_base_and_keep_their_message_forms():
    from wsol.data import DataFormatError, DatasetFormatError

    many = [f"f.txt:{i}: bad" for i in range(1, 26)]
    cub, one = CubFormatError(many, "CUB folder x"), CubFormatError(["f.txt:1: bad"])
    other, single = DatasetFormatError(many, "cifar"), DatasetFormatError("f.txt: bad", "cifar")
    assert all(isinstance(e, DataFormatError) and isinstance(e, ValueError) for e in (cub, one, other, single))
    # CUB: always counted, the tail points at the checker; robustness readers: one problem inline
    assert str(cub).startswith("CUB folder x: 25 problem(s):\n  f.txt:1: bad")
    assert str(cub).endswith("f.txt:20: bad\n  ... and 5 more (run tools/check_dataset.py for all)")
    assert str(one) == "1 problem(s):\n  f.txt:1: bad"
    assert str(other).endswith("f.txt:20: bad\n  ... and 5 more") and "check_dataset" not in str(other)
    assert str(single) == "cifar: f.txt: bad" and single.problems == ["f.txt: bad"]
    assert cub.problems == many


def test_corrupt_and_missing_image(tiny_cub):
    (tiny_cub / "images" / "001.Red_Square" / "Red_Square_0001.jpg").write_bytes(b"not a jpeg at all")
    (tiny_cub / "images" / "002.Blue_Square" / "Blue_Square_0000.jpg").unlink()
    msg = _error(tiny_cub)
    assert "images.txt:2:" in msg and "Red_Square_0001.jpg: unreadable or corrupt image" in msg
    assert "images.txt:4:" in msg and "Blue_Square_0000.jpg: image file not found" in msg
    # a long run skips them with a warning and lists them
    data = read_official(tiny_cub, skip_bad_images=True)
    assert len(data.ids) == 4 and len(data.bad_images) == 2
    assert data.bad_images[0][0] == "001.Red_Square/Red_Square_0001.jpg"


def test_wsoleval_bad_input(tiny_cub, tmp_path):
    out = tmp_path / "meta"
    convert_official_to_wsoleval(tiny_cub, out)
    loc = out / "test" / "localization.txt"
    lines = loc.read_text().split("\n")
    first_id = lines[0].split(",")[0]
    lines[0] = f"{first_id},1,2,3"
    lines[1] = lines[1].rsplit(",", 1)[0] + ",500"
    loc.write_text("\n".join(lines))
    (out / "test" / "class_labels.txt").write_text(
        (out / "test" / "class_labels.txt").read_text().replace(",1", ",x", 1))
    with pytest.raises(CubFormatError) as info:
        read_wsoleval(out, "test", image_root=tiny_cub / "images")
    msg = str(info.value)
    assert "localization.txt:1: expected 5 fields" in msg
    assert "localization.txt:2: box" in msg and "outside the 40x30 image" in msg
    assert "class_labels.txt:2: field 'label' is not an integer" in msg
    with pytest.raises(CubFormatError, match="split folder not found"):
        read_wsoleval(out, "val", image_root=tiny_cub / "images")


# --------------------------------------------------------------------------- image modes


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16", "RGB16", "1"])
def test_image_modes_load_as_rgb(tmp_path, mode):
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[:, :4] = (200, 100, 50)
    path = tmp_path / f"img_{mode.replace(';', '')}.png"
    if mode == "I;16":
        import cv2

        cv2.imwrite(str(path), (np.full((6, 8), 300, np.uint16) * 100))  # 30000 of 65535
        out = load_rgb(path)
        assert out.shape == (6, 8, 3) and out.dtype == np.uint8
        assert np.all(out == round(30000 / 257))
        return
    if mode == "RGB16":
        import cv2

        cv2.imwrite(str(path), (rgb[..., ::-1].astype(np.uint16) * 257))
        out = load_rgb(path)
        assert np.array_equal(out, rgb)
        return
    if mode == "CMYK":
        path = path.with_suffix(".jpg")
        Image.fromarray(rgb).convert("CMYK").save(path, quality=100)
    else:
        Image.fromarray(rgb).convert(mode).save(path)
    out = load_rgb(path)
    assert out.shape == (6, 8, 3) and out.dtype == np.uint8
    if mode in ("RGBA", "P", "CMYK"):
        assert np.abs(out.astype(int) - rgb).max() <= 6
    elif mode in ("L", "LA"):
        assert np.all(out[..., 0] == out[..., 1]) and out[0, 0, 0] > out[0, 7, 0]


def test_truncated_image_raises(tmp_path):
    path = tmp_path / "t.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(ImageLoadError, match="t.jpg: unreadable or corrupt"):
        load_rgb(path)


# --------------------------------------------------------------------------- dataset


def test_dataset_items_without_transform(tiny_cub):
    ds = CubDataset(official_split(read_official(tiny_cub), "train"))
    item = ds[0]
    assert item["image"].shape == (3, 30, 40) and item["image"].dtype == torch.float32
    assert 0 <= item["image"].min() and item["image"].max() <= 1
    assert item["label"] == 0 and item["image_id"].startswith("001.Red_Square/")
    assert item["boxes"].tolist() == [[2.0, 3.0, 13.0, 12.0]]
    m = item["mask"]
    assert m.dtype == torch.bool and m.shape == (30, 40)
    ys, xs = torch.nonzero(m, as_tuple=True)
    # the 127-vote boundary row is background at the >= 128 threshold
    assert (xs.min(), ys.min(), xs.max(), ys.max()) == (2, 4, 12, 11)


@pytest.mark.parametrize("kind", ["wsoleval", "paper", "art2020", "train"])
def test_dataset_with_transform_keeps_box_and_mask_aligned(tiny_cub, kind):
    ds = CubDataset(official_split(read_official(tiny_cub), "train"), build_transform(kind, image_size=64))
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape == (3, 64, 64)
        assert item["mask"].shape == (64, 64)
        ys, xs = torch.nonzero(item["mask"], as_tuple=True)
        box = item["boxes"][0]
        # the mask covers the filled rectangle; the box is one pixel wider by the box rule
        tol = 4.0 if kind == "art2020" else 3.0
        assert abs(box[0] - xs.min()) <= tol and abs(box[2] - xs.max()) <= tol
        assert abs(box[1] - ys.min()) <= tol + 2 and abs(box[3] - ys.max()) <= tol


def test_corrupt_image_is_skipped_in_a_batch(tiny_cub, caplog):
    split = official_split(read_official(tiny_cub), "train")
    bad = split.image_root / split.samples[1].image_id
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 3])  # truncated mid-scan
    ds = CubDataset(split, build_transform("wsoleval", image_size=32))
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=collate_samples)
    with caplog.at_level(logging.WARNING):
        batches = list(loader)
    assert len(batches) == 1
    b = batches[0]
    assert b["image"].shape == (3, 3, 32, 32) and b["label"].tolist() == [0, 1, 1]
    assert [s["image_id"] for s in b["skipped"]] == [split.samples[1].image_id]
    assert "skipping" in caplog.text
    strict = CubDataset(split, skip_bad_images=False)
    with pytest.raises(ImageLoadError):
        strict[1]


def test_all_skipped_batch_is_empty(tiny_cub):
    split = official_split(read_official(tiny_cub), "test")
    for s in split.samples:
        (split.image_root / s.image_id).write_bytes(b"")
    b = collate_samples([CubDataset(split)[i] for i in range(len(split))])
    assert b["image"].numel() == 0 and len(b["skipped"]) == 2


# --------------------------------------------------------------------------- on the synthetic CUB-format set


def test_reader_on_synthetic_cub(tmp_path):
    from wsol.data.check import check_dataset
    from wsol.data.synthetic import make_synthetic_cub

    root = make_synthetic_cub(tmp_path / "syn", num_classes=3, images_per_class=6, size=72, seed=1,
                              size_jitter=0.25, progress=False)
    report = check_dataset(root, progress=False)
    assert report.ok, report.problems
    assert report.num_images == 18 and report.num_classes == 3 and report.masks_found == 18
    data = read_official(root)
    assert len({data.sizes[i] for i in data.ids}) > 1  # non-square, varied sizes
    convert_official_to_wsoleval(root, root / "metadata", val_per_class=1)
    for split in ("train", "val", "test"):
        ds = CubDataset(load_split(root / "metadata", split), build_transform("paper", image_size=64))
        assert ds.split.has_masks and ds.class_names[0].startswith("001.")
        for i in range(len(ds)):
            item = ds[i]
            ys, xs = torch.nonzero(item["mask"], as_tuple=True)
            x0, y0, x1, y1 = item["boxes"][0].tolist()
            # synthetic boxes are the tight box of mask >= 128, one pixel wider by the box rule
            assert abs(xs.min().item() - x0) <= 2 and abs(ys.min().item() - y0) <= 2
            assert abs(xs.max().item() - x1) <= 2.5 and abs(ys.max().item() - y1) <= 2.5


def test_seeded_loader_repeats_augmentations(tiny_cub):
    from wsol.data import seed_worker

    ds = CubDataset(official_split(read_official(tiny_cub), "train"), build_transform("train", image_size=24))

    def run(seed):
        g = torch.Generator().manual_seed(seed)
        loader = torch.utils.data.DataLoader(ds, batch_size=2, shuffle=True, num_workers=2, generator=g,
                                             worker_init_fn=seed_worker, collate_fn=collate_samples)
        return [(b["image_id"], b["image"], b["boxes"]) for b in loader]

    a, b, c = run(0), run(0), run(1)
    assert all(x[0] == y[0] and torch.equal(x[1], y[1]) for x, y in zip(a, b))
    assert any(not torch.equal(x[1], y[1]) for x, y in zip(a, c))
