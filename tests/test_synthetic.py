"""Tests of the synthetic CUB-format generator (wsol/data/synthetic.py and its CLI).

The metadata files are parsed here directly (no reader module), so these tests pin the
on-disk format itself.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from wsol.data.synthetic import (
    MAX_CLASSES,
    SHAPES,
    TEXTURES,
    class_specs,
    image_rng,
    make_synthetic_cub,
    render_sample,
)

REPO = Path(__file__).resolve().parents[1]
N_CLASSES, PER_CLASS, SIZE = 10, 40, 128
VOTE_LEVELS = {0, 63, 127, 191, 255}


def _tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _read_table(path: Path, nfields: int) -> list[list[str]]:
    text = path.read_text()
    assert text.endswith("\n") and "\r" not in text, path
    rows = [line.split(" ") for line in text.splitlines()]
    for i, row in enumerate(rows, 1):
        assert len(row) == nfields, f"{path.name} line {i}: {row}"
    return rows


def _load(root: Path) -> dict:
    """Parse the five official files; check ids are 1..n and shared by every per-image file."""
    images = _read_table(root / "images.txt", 2)
    labels = _read_table(root / "image_class_labels.txt", 2)
    split = _read_table(root / "train_test_split.txt", 2)
    boxes = _read_table(root / "bounding_boxes.txt", 5)
    classes = _read_table(root / "classes.txt", 2)
    n = len(images)
    for table in (images, labels, split, boxes):
        assert [int(r[0]) for r in table] == list(range(1, n + 1))
    assert [int(r[0]) for r in classes] == list(range(1, len(classes) + 1))
    for row in boxes:
        for v in row[1:]:
            assert re.fullmatch(r"\d+\.0", v), f"box field {v!r} is not an integral float"
    return {
        "rel": [r[1] for r in images],
        "label": [int(r[1]) for r in labels],
        "train": [int(r[1]) for r in split],
        "box": [tuple(int(float(v)) for v in r[1:]) for r in boxes],
        "classes": [r[1] for r in classes],
    }


def _image(root: Path, rel: str) -> np.ndarray:
    img = cv2.imread(str(root / "images" / rel), cv2.IMREAD_UNCHANGED)
    assert img is not None and img.ndim == 3 and img.shape[2] == 3, rel
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _mask(root: Path, rel: str) -> np.ndarray:
    m = cv2.imread(str(root / "segmentations" / rel.replace(".jpg", ".png")), cv2.IMREAD_UNCHANGED)
    assert m is not None and m.ndim == 2 and m.dtype == np.uint8, rel
    return m


def _tight_box(binary: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(binary)
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, dict, list[np.ndarray], list[np.ndarray]]:
    root = make_synthetic_cub(tmp_path_factory.mktemp("syn") / "CUB", N_CLASSES, PER_CLASS,
                              SIZE, seed=0, progress=False)
    meta = _load(root)
    images = [_image(root, r) for r in meta["rel"]]
    masks = [_mask(root, r) for r in meta["rel"]]
    return root, meta, images, masks


# ----------------------------------------------------------------------------- determinism


def test_same_arguments_give_byte_identical_files(tmp_path):
    kw = dict(num_classes=4, images_per_class=5, size=64, seed=3, size_jitter=0.25, progress=False)
    a = _tree_hashes(make_synthetic_cub(tmp_path / "a", **kw))
    b = _tree_hashes(make_synthetic_cub(tmp_path / "b", **kw))
    assert len(a) == 4 * 5 * 2 + 7
    assert a == b
    c = _tree_hashes(make_synthetic_cub(tmp_path / "c", **{**kw, "seed": 4}))
    assert a.keys() == c.keys()
    differ = [k for k in a if k.endswith((".jpg", ".png")) and a[k] != c[k]]
    assert len(differ) == 4 * 5 * 2, "another seed must change every image and mask"


def test_worker_processes_give_the_same_bytes(tmp_path):
    kw = dict(num_classes=3, images_per_class=4, size=48, seed=1, progress=False)
    serial = _tree_hashes(make_synthetic_cub(tmp_path / "serial", **kw))
    parallel = _tree_hashes(make_synthetic_cub(tmp_path / "parallel", num_workers=2, **kw))
    assert serial == parallel


def test_image_stream_does_not_depend_on_dataset_size():
    spec = class_specs(3)[2]
    a = render_sample(spec, image_rng(7, 2, 5), 64, 64)
    b = render_sample(spec, image_rng(7, 2, 5), 64, 64)
    c = render_sample(spec, image_rng(7, 2, 6), 64, 64)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert not np.array_equal(a.image, c.image)


# ----------------------------------------------------------------------------- format


def test_official_layout_and_metadata(dataset):
    root, meta, _, _ = dataset
    n = N_CLASSES * PER_CLASS
    assert len(meta["rel"]) == n
    assert len(meta["classes"]) == N_CLASSES
    for name in meta["classes"]:
        assert re.fullmatch(r"\d{3}\.[A-Z][A-Za-z]*(_[A-Z][A-Za-z]*)+", name), name
    assert len(set(meta["classes"])) == N_CLASSES
    assert Counter(meta["label"]) == {c: PER_CLASS for c in range(1, N_CLASSES + 1)}
    for rel, label in zip(meta["rel"], meta["label"]):
        folder, fname = rel.split("/")
        assert folder == meta["classes"][label - 1]
        assert re.fullmatch(re.escape(folder.split(".", 1)[1]) + r"_\d{4}\.jpg", fname)
        assert (root / "images" / rel).is_file()
        assert (root / "segmentations" / folder / fname.replace(".jpg", ".png")).is_file()
    assert len(list((root / "images").rglob("*.jpg"))) == n
    assert len(list((root / "segmentations").rglob("*.png"))) == n
    info = json.loads((root / "synthetic_info.json").read_text())
    assert info["complete"] and info["parameters"]["seed"] == 0 and info["version"]
    assert "--seed 0" in (root / "README.txt").read_text()


@pytest.mark.parametrize("fraction,per_class", [(0.5, 40), (0.3, 7), (0.9, 3)])
def test_split_is_per_class_and_both_sides_nonempty(tmp_path, dataset, fraction, per_class):
    if (fraction, per_class) == (0.5, 40):
        meta = dataset[1]
    else:
        meta = _load(make_synthetic_cub(tmp_path, 3, per_class, 32, train_fraction=fraction,
                                        progress=False))
    assert set(meta["train"]) == {0, 1}
    expected = min(per_class - 1, max(1, int(fraction * per_class + 0.5)))
    per_class_train = defaultdict(int)
    for label, is_train in zip(meta["label"], meta["train"]):
        per_class_train[label] += is_train
    assert set(per_class_train.values()) == {expected}


def test_images_masks_and_boxes_agree(dataset):
    _, meta, images, masks = dataset
    levels_seen, near = set(), []
    for img, m, box in zip(images, masks, meta["box"]):
        assert img.shape == (SIZE, SIZE, 3) and m.shape == (SIZE, SIZE)
        levels_seen |= set(np.unique(m).tolist())
        assert box == _tight_box(m >= 128)
        x, y, w, h = box
        assert x >= 1 and y >= 1 and x + w <= SIZE - 1 and y + h <= SIZE - 1  # fully inside
        # Soft votes lie on a thin band along the object's outline (thin tips aside).
        hard = (m >= 128).astype(np.uint8)
        dist = np.maximum(cv2.distanceTransform(1 - hard, cv2.DIST_L2, 3),
                          cv2.distanceTransform(hard, cv2.DIST_L2, 3))
        soft = (m > 0) & (m < 255)
        assert soft.any() and dist[soft].max() <= 8
        near.append(np.mean(dist[soft] <= 3))
        assert (m == 255).sum() > 0.7 * hard.sum()
    assert np.mean(near) > 0.99 and min(near) > 0.8
    assert levels_seen <= VOTE_LEVELS
    assert {63, 127, 191} <= levels_seen


def test_non_square_images_with_size_jitter(tmp_path):
    root = make_synthetic_cub(tmp_path, 2, 6, (96, 64), seed=5, size_jitter=0.3, progress=False)
    meta = _load(root)
    shapes = set()
    for rel, box in zip(meta["rel"], meta["box"]):
        img, m = _image(root, rel), _mask(root, rel)
        assert img.shape[:2] == m.shape
        shapes.add(m.shape)
        hh, ww = m.shape
        assert 32 <= ww <= 96 * 1.3 + 1 and 32 <= hh <= 64 * 1.3 + 1
        assert box == _tight_box(m >= 128)
        x, y, w, h = box
        assert x + w <= ww - 1 and y + h <= hh - 1
    assert len(shapes) > 6
    assert any(h != w for h, w in shapes)


# ----------------------------------------------------------------------------- fairness


def test_objects_vary_in_scale_aspect_and_position(dataset):
    _, meta, _, _ = dataset
    boxes = np.array(meta["box"], float)
    frac = boxes[:, 2] * boxes[:, 3] / SIZE**2
    assert frac.min() >= 0.08 and frac.max() <= 0.65
    assert frac.min() < 0.13 and frac.max() > 0.55
    assert 0.25 < np.median(frac) < 0.45
    aspect = boxes[:, 2] / boxes[:, 3]
    assert aspect.min() < 0.7 and aspect.max() > 1.4
    cx, cy = boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2
    assert cx.std() > 0.1 * SIZE and cy.std() > 0.1 * SIZE
    near_border = (boxes[:, 0] <= 8) | (boxes[:, 1] <= 8) \
        | (boxes[:, 0] + boxes[:, 2] >= SIZE - 8) | (boxes[:, 1] + boxes[:, 3] >= SIZE - 8)
    assert 0.3 < near_border.mean() < 0.95
    # Scale carries no class: every class spans small and large objects.
    labels = np.array(meta["label"])
    for c in range(1, N_CLASSES + 1):
        assert frac[labels == c].min() < 0.25 and frac[labels == c].max() > 0.4


def _nearest_centroid_accuracy(feat: np.ndarray, labels: np.ndarray, train: np.ndarray) -> float:
    classes = np.unique(labels)
    cent = np.stack([feat[train & (labels == c)].mean(0) for c in classes])
    pred = classes[np.argmin(((feat[~train, None] - cent[None]) ** 2).sum(-1), 1)]
    return float((pred == labels[~train]).mean())


def test_colour_does_not_determine_the_class(dataset):
    _, meta, images, masks = dataset
    labels, train = np.array(meta["label"]), np.array(meta["train"]) == 1
    obj = np.stack([img[m == 255].mean(0) for img, m in zip(images, masks)])
    bg = np.stack([img[m == 0].mean(0) for img, m in zip(images, masks)])
    # Chance is 1/10; a colour shortcut would give far more.
    assert _nearest_centroid_accuracy(obj, labels, train) < 0.25
    assert _nearest_centroid_accuracy(bg, labels, train) < 0.25
    # Class means lie well inside each other's spread.
    means = np.stack([obj[labels == c].mean(0) for c in np.unique(labels)])
    assert np.all(means.std(0) < 0.35 * obj.std(0))


def _edge_density_outside(img: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Fraction of pixels outside the (padded) object box with a strong Sobel edge."""
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mag = np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))
    x, y, w, h = box
    outside = np.ones(g.shape, bool)
    outside[max(0, y - 3): y + h + 3, max(0, x - 3): x + w + 3] = False
    return float((mag[outside] > 120).mean()) if outside.any() else 0.0


def test_backgrounds_are_cluttered_with_distractors(dataset, tmp_path):
    _, meta, images, masks = dataset
    bg_std = [img[m == 0].astype(np.float32).std(0).mean() for img, m in zip(images, masks)]
    assert np.median(bg_std) > 25 and np.mean(np.array(bg_std) > 12) > 0.95
    with_d = np.array([_edge_density_outside(i, b) for i, b in zip(images, meta["box"])])
    small = [b[2] * b[3] < 0.4 * SIZE**2 for b in meta["box"]]
    assert np.mean(with_d[small] > 0.01) > 0.9  # strong edges away from the object
    # The same measure without distractors is clearly lower: the edges come from them.
    root = make_synthetic_cub(tmp_path, N_CLASSES, 6, SIZE, seed=0, num_distractors=(0, 0),
                              progress=False)
    plain = _load(root)
    without = [_edge_density_outside(_image(root, r), b) for r, b in zip(plain["rel"], plain["box"])]
    same = [with_d[c * PER_CLASS + j] for c in range(N_CLASSES) for j in range(6)]
    assert np.mean(same) > 1.5 * np.mean(without)


def test_object_is_textured(dataset):
    """The object interior carries a high-contrast pattern, not a flat colour."""
    _, _, images, masks = dataset
    stds = []
    for img, m in zip(images, masks):
        inner = cv2.erode((m == 255).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        if inner.sum() > 50:
            stds.append(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[inner].std())
    assert np.median(stds) > 15


# ----------------------------------------------------------------------------- classes


@pytest.mark.parametrize("n", [1, 2, 3, 10, 16, 64, 65, 128, 129, 200, MAX_CLASSES])
def test_classes_are_distinct_combinations(n):
    specs = class_specs(n)
    assert [s.index for s in specs] == list(range(n))
    assert len({s.name for s in specs}) == n
    assert len({(s.shape, s.texture, s.band, s.tail) for s in specs}) == n
    assert all(s.shape in SHAPES and s.texture in TEXTURES for s in specs)
    assert [s.folder for s in specs][:1] == [f"001.{specs[0].name}"]
    if n >= 4:  # neither the shape nor the texture alone names a class
        for attr, other in (("shape", "texture"), ("texture", "shape")):
            partners = defaultdict(set)
            for s in specs[: min(n, 64)]:
                partners[getattr(s, attr)].add(getattr(s, other))
            assert min(len(v) for v in partners.values()) >= 2, (attr, partners)


def test_large_class_counts_render():
    specs = class_specs(200)
    for k in (0, 70, 150, 199):
        s = render_sample(specs[k], image_rng(0, k, 0), 72, 64)
        assert s.image.shape == (64, 72, 3) and s.label == k
        assert s.box == _tight_box(s.mask >= 128)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("kwargs,word", [
    ({"num_classes": 0}, "num_classes"),
    ({"num_classes": MAX_CLASSES + 1}, "num_classes"),
    ({"num_classes": 2.5}, "num_classes"),
    ({"num_classes": 100, "size": 48}, "size"),
    ({"images_per_class": 1}, "images_per_class"),
    ({"size": 31}, "size"),
    ({"size": (64, 16)}, "size"),
    ({"seed": -1}, "seed"),
    ({"train_fraction": 0.0}, "train_fraction"),
    ({"train_fraction": 1.0}, "train_fraction"),
    ({"size_jitter": 0.8}, "size_jitter"),
    ({"num_distractors": (3, 1)}, "num_distractors"),
    ({"box_fraction": (0.1, 0.95)}, "box_fraction"),
])
def test_bad_arguments_raise_clear_errors(tmp_path, kwargs, word):
    out = tmp_path / "never"
    with pytest.raises(ValueError, match=word):
        make_synthetic_cub(out, **{"progress": False, **kwargs})
    assert not out.exists()


def test_existing_directories(tmp_path):
    kw = dict(num_classes=2, images_per_class=2, size=32, progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        make_synthetic_cub(foreign, **kw)
    with pytest.raises(FileExistsError, match="refusing"):
        make_synthetic_cub(foreign, overwrite=True, **kw)
    assert sorted(p.name for p in foreign.iterdir()) == ["keep.txt"]

    root = make_synthetic_cub(tmp_path / "syn", **kw)
    before = _tree_hashes(root)
    assert make_synthetic_cub(root, **kw) == root  # identical parameters: reused as is
    assert _tree_hashes(root) == before
    with pytest.raises(FileExistsError):
        make_synthetic_cub(root, **{**kw, "seed": 1})
    make_synthetic_cub(root, **{**kw, "num_classes": 1}, overwrite=True)
    assert len(list((root / "images").iterdir())) == 1  # stale class folder removed
    assert len(_load(root)["rel"]) == 2


# ----------------------------------------------------------------------------- CLI


def _cli():
    path = REPO / "tools" / "make_synthetic_cub.py"
    spec = importlib.util.spec_from_file_location("make_synthetic_cub_cli", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_writes_refuses_and_overwrites(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["--out", str(out), "--classes", "2", "--images-per-class", "3", "--size", "40",
            "--seed", "2", "--no-progress"]
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "make_synthetic_cub.py"), *args],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().count("\n") == 0 and "wrote 6 images" in proc.stdout
    assert len(_load(out)["rel"]) == 6
    before = _tree_hashes(out)

    cli = _cli()
    assert cli.main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert _tree_hashes(out) == before
    assert cli.main([*args, "--overwrite", "--seed", "3"]) == 0
    assert _tree_hashes(out) != before
    assert cli.main(["--out", str(tmp_path / "bad"), "--classes", "0", "--no-progress"]) == 2
    assert "num_classes" in capsys.readouterr().err
    assert cli.main(["--out", str(tmp_path / "wh"), "--classes", "1", "--images-per-class", "2",
                     "--size", "48x40", "--no-progress"]) == 0
    assert _image(tmp_path / "wh", _load(tmp_path / "wh")["rel"][0]).shape == (40, 48, 3)
