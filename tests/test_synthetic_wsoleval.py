"""Tests of the synthetic ILSVRC / OpenImages30k generators (wsol/data/synthetic_wsoleval.py)
and their CLI.

The metadata files are parsed here directly, to wsolevaluation's conventions (REFERENCE
§12.1.2: comma separated, no header, no spaces, no trailing newline, empty files where
wsolevaluation ships them), so these tests pin the on-disk format itself, not a reader.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import wsol.data.synthetic_wsoleval as swe
from wsol.cli.make_synthetic_wsoleval import main as cli_main
from wsol.data.synthetic_wsoleval import (
    imagenet_lemmas,
    imagenet_synsets,
    make_synthetic_ilsvrc,
    make_synthetic_openimages,
    object_classes,
    openimages_mids,
    render_scene,
)

REPO = Path(__file__).resolve().parents[1]
N_CLASSES = 4
KW = dict(num_classes=N_CLASSES, images_per_class=3, val_per_class=2, test_per_class=4,
          size=(80, 64), seed=0, progress=False)
FILES = {"image_ids.txt", "class_labels.txt", "image_sizes.txt", "localization.txt"}


def _lines(path: Path, nfields: int | None = None) -> list[list[str]]:
    """Rows of a wsolevaluation text file, checking its conventions."""
    raw = path.read_bytes()
    if not raw:
        return []
    text = raw.decode("utf-8")
    assert not text.endswith("\n"), f"{path}: trailing newline"
    assert "\r" not in text and " " not in text and "\t" not in text, f"{path}: CR, space or tab"
    rows = [line.split(",") for line in text.split("\n")]
    for i, row in enumerate(rows, 1):
        assert row[0], f"{path}:{i}: empty line or empty id"
        if nfields is not None:
            assert len(row) == nfields, f"{path}:{i}: {row}"
    return rows


def _split(meta: Path, split: str) -> dict:
    d = meta / split
    ids = [r[0] for r in _lines(d / "image_ids.txt", 1)]
    labels = _lines(d / "class_labels.txt", 2)
    assert [r[0] for r in labels] == ids, "class_labels.txt must list image_ids.txt's ids in order"
    assert len(set(ids)) == len(ids)
    sizes = {r[0]: (int(r[1]), int(r[2])) for r in _lines(d / "image_sizes.txt", 3)}
    return {"ids": ids, "label": {r[0]: int(r[1]) for r in labels}, "sizes": sizes,
            "loc": d / "localization.txt"}


def _tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _gray(path: Path) -> np.ndarray:
    """As wsolevaluation loads a mask: cv2.imread(..., IMREAD_GRAYSCALE)."""
    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert m is not None, path
    return m


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """Both datasets in one data root, as wsolevaluation's dataset/ + metadata/."""
    out = tmp_path_factory.mktemp("wsoleval") / "data"
    info_i = make_synthetic_ilsvrc(out, **KW)
    info_o = make_synthetic_openimages(out, **KW)
    assert not info_i["reused"] and not info_o["reused"]
    return out


# ----------------------------------------------------------------------------- ILSVRC


def test_imagenet_class_ids_are_sorted_wnids():
    wnids = imagenet_synsets()
    assert len(wnids) == 1000 and list(wnids) == sorted(set(wnids))
    # REFERENCE §12.1.4: 0 = tench, spot checks of wsolevaluation's test labels
    assert wnids[0] == "n01440764" and wnids[1] == "n01443537"
    assert (wnids[65], wnids[278], wnids[355]) == ("n01751748", "n02119789", "n02437616")
    assert imagenet_lemmas()["n01440764"].startswith("tench")


def test_ilsvrc_layout_and_text_files(root):
    images, meta = root / "images" / "ILSVRC", root / "metadata" / "ILSVRC"
    assert sorted(p.name for p in meta.iterdir() if p.is_dir()) == ["test", "train", "val"]
    assert {p.name for p in (meta / "train").iterdir()} == FILES | {"image_ids_proxy.txt"}
    for split in ("val", "test"):
        assert {p.name for p in (meta / split).iterdir()} == FILES
    # train: labels only; image_sizes.txt and localization.txt are 0-byte files
    assert (meta / "train" / "image_sizes.txt").read_bytes() == b""
    assert (meta / "train" / "localization.txt").read_bytes() == b""
    wnids = imagenet_synsets()[:N_CLASSES]
    listed = set()
    for split, per in (("train", 3), ("val", 2), ("test", 4)):
        s = _split(meta, split)
        assert Counter(s["label"].values()) == {k: per for k in range(N_CLASSES)}
        listed |= set(s["ids"])
        for i in s["ids"]:
            assert (images / i).is_file(), i
        if split != "train":
            assert set(s["sizes"]) == set(s["ids"])
    train = _split(meta, "train")
    for i in train["ids"]:
        m = re.fullmatch(r"train/(n\d{8})/(n\d{8})_(\d+)\.JPEG", i)
        assert m and m[1] == m[2], i
        assert train["label"][i] == wnids.index(m[1])
    val = _split(meta, "val")
    for i in val["ids"]:
        m = re.fullmatch(r"val2/(\d+)/(\d+)\.jpeg", i)
        assert m and int(m[2]) < 2, i
        assert val["label"][i] == int(m[1]), "ImageNetV2 folder k holds class k"
    test = _split(meta, "test")
    numbers = [int(re.fullmatch(r"val/ILSVRC2012_val_(\d{8})\.JPEG", i)[1]) for i in test["ids"]]
    assert numbers == list(range(1, 4 * N_CLASSES + 1))
    assert [test["label"][i] for i in test["ids"]] != sorted(test["label"].values()), \
        "official-val numbering is in shuffled class order"
    on_disk = {str(p.relative_to(images)) for p in images.rglob("*") if p.is_file()}
    assert on_disk == listed | {"synthetic_info.json"}
    proxy = [r[0] for r in _lines(meta / "train" / "image_ids_proxy.txt", 1)]
    assert set(proxy) <= set(train["ids"])
    assert {train["label"][i] for i in proxy} == set(range(N_CLASSES))


def test_ilsvrc_images_sizes_and_boxes(root):
    images, meta = root / "images" / "ILSVRC", root / "metadata" / "ILSVRC"
    all_sizes = set()
    for split in ("val", "test"):
        s = _split(meta, split)
        for i in s["ids"]:
            with Image.open(images / i) as im:
                assert im.format == "JPEG" and im.mode == "RGB"
                assert im.size == s["sizes"][i], f"image_sizes.txt must hold the real W,H of {i}"
        all_sizes |= set(s["sizes"].values())
        boxes = defaultdict(list)
        for row in _lines(s["loc"], 5):
            assert all(re.fullmatch(r"\d+", v) for v in row[1:]), f"integer corners expected: {row}"
            boxes[row[0]].append(tuple(int(v) for v in row[1:]))
        assert set(boxes) == set(s["ids"]), "every val/test image has at least one box"
        counts = Counter(len(b) for b in boxes.values())
        assert set(counts) <= {1, 2, 3} and counts[1] and sum(counts[k] for k in (2, 3)) >= len(boxes) // 3
        for i, bs in boxes.items():
            w, h = s["sizes"][i]
            for x0, y0, x1, y1 in bs:
                assert 0 <= x0 < x1 <= w - 1 and 0 <= y0 < y1 <= h - 1, (i, (x0, y0, x1, y1), (w, h))
            for a in range(len(bs)):  # the objects sit in disjoint cells
                for b in range(a + 1, len(bs)):
                    p, q = bs[a], bs[b]
                    assert p[2] < q[0] or q[2] < p[0] or p[3] < q[1] or q[3] < p[1], (i, p, q)
    assert len(all_sizes) > 5 and any(w != h for w, h in all_sizes), "sizes must vary, not all square"


def test_ilsvrc_info_records_classes_and_counts(root):
    info = json.loads((root / "metadata" / "ILSVRC" / "synthetic_info.json").read_text())
    assert info == json.loads((root / "images" / "ILSVRC" / "synthetic_info.json").read_text())
    assert info["complete"] and info["version"] == swe.GENERATOR_VERSION
    assert [c["wnid"] for c in info["classes"]] == list(imagenet_synsets()[:N_CLASSES])
    assert info["classes"][0]["name"].startswith("tench")
    assert info["splits"]["test"]["images"] == 4 * N_CLASSES
    assert info["splits"]["test"]["boxes"] == len(_lines(root / "metadata/ILSVRC/test/localization.txt"))
    assert str(root) not in json.dumps(info), "no absolute paths: the file must not depend on out_root"


# ----------------------------------------------------------------------------- OpenImages


def test_fake_mids_sort_in_python_byte_order():
    mids = openimages_mids(30)
    assert mids == sorted(mids) and len(set(mids)) == 30
    assert openimages_mids(2) == ["0dq8mz", "0dq_7f"]  # '_' sorts after digits, before letters
    assert set(openimages_mids(5)) <= set(openimages_mids(6))
    assert all(re.fullmatch(r"0[0-9b-df-hj-np-tv-z_]{4,6}", m) for m in mids)


def test_openimages_layout_and_text_files(root):
    images, meta = root / "images" / "OpenImages", root / "metadata" / "OpenImages"
    mids = openimages_mids(N_CLASSES)
    assert any("_" in m for m in mids)
    for split, per in (("train", 3), ("val", 2), ("test", 4)):
        assert {p.name for p in (meta / split).iterdir()} == FILES
        assert (meta / split / "image_sizes.txt").read_bytes() == b"", "empty for every OpenImages split"
        s = _split(meta, split)
        assert Counter(s["label"].values()) == {k: per for k in range(N_CLASSES)}
        for i in s["ids"]:
            m = re.fullmatch(rf"{split}/([0-9a-z_]+)/[0-9a-f]{{16}}\.jpg", i)
            assert m, i
            assert s["label"][i] == sorted(mids).index(m[1]), "label = index of the MID in sorted() order"
            with Image.open(images / i) as im:
                assert im.format == "JPEG" and im.mode == "RGB"
    assert (meta / "train" / "localization.txt").read_bytes() == b""
    train_files = [p for p in (images / "train").rglob("*") if p.is_file()]
    assert len(train_files) == 3 * N_CLASSES and all(p.suffix == ".jpg" for p in train_files)


def test_openimages_masks_and_ignore(root):
    images, meta = root / "images" / "OpenImages", root / "metadata" / "OpenImages"
    empty_ignores = several = 0
    for split in ("val", "test"):
        s = _split(meta, split)
        rows = _lines(s["loc"], 3)
        by_image: dict[str, list[list[str]]] = defaultdict(list)
        for row in rows:
            by_image[row[0]].append(row)
        assert set(by_image) == set(s["ids"]), "every val/test image has at least one mask line"
        for i, lines in by_image.items():
            stem = i[: -len(".jpg")]
            mid = i.split("/")[1]
            # the ignore path on the image's first line only; later lines end with ','
            assert lines[0][2] == f"{stem}_ignore.png"
            assert all(r[2] == "" for r in lines[1:])
            assert len({r[1] for r in lines}) == len(lines)
            for r in lines:
                assert re.fullmatch(re.escape(f"{stem}_m{mid}_") + r"[0-9a-f]{8}\.png", r[1]), r[1]
            several += len(lines) > 1
            with Image.open(images / i) as im:
                w, h = im.size
            fg = np.zeros((h, w), bool)
            for r in lines:  # mask paths are relative to the mask root = image root
                with Image.open(images / r[1]) as pm:
                    assert pm.mode == "1" and pm.size == (w, h), r[1]
                m = _gray(images / r[1])
                assert set(np.unique(m)) <= {0, 255} and m.any(), r[1]
                assert not (fg & (m > 0)).any(), "instances do not overlap"
                fg |= m > 0
            with Image.open(images / lines[0][2]) as pi:
                assert pi.mode == "RGB" and pi.size == (w, h), "ignore masks are 8-bit RGB like the released ones"
            ign = _gray(images / lines[0][2])
            assert set(np.unique(ign)) <= {0, 255}
            assert not (ign[fg] > 0).any(), "ignore = region minus the ground-truth foreground"
            empty_ignores += not ign.any()
        on_disk = {str(p.relative_to(images)) for p in (images / split).rglob("*") if p.is_file()}
        expected = set(s["ids"]) | {r[1] for r in rows} | {f"{i[:-4]}_ignore.png" for i in s["ids"]}
        assert on_disk == expected, "exactly one _ignore.png per image, one PNG per instance"
    n = (2 + 4) * N_CLASSES
    assert several >= n // 3
    assert 1 <= empty_ignores <= n // 2, "mostly non-empty ignore masks, some empty"


# ----------------------------------------------------------------------------- wsolevaluation's parsers


def _wsoleval_read(meta_split: Path, kind: str):
    """Transcription of clovaai/wsolevaluation data_loaders.py get_image_ids / get_class_labels /
    get_image_sizes / get_bounding_boxes / get_mask_paths (readlines + strip('\\n') + split(','))."""
    def rows(name):
        with open(meta_split / name) as f:
            return [line.strip("\n").split(",") for line in f.readlines()]
    ids = [r[0] for r in rows("image_ids.txt")]
    labels = {i: int(c) for i, c in rows("class_labels.txt")}
    sizes = {i: (int(w), int(h)) for i, w, h in rows("image_sizes.txt")}
    if kind == "boxes":
        loc: dict = {}
        for image_id, x0s, x1s, y0s, y1s in rows("localization.txt"):  # their names, our order
            loc.setdefault(image_id, []).append((int(x0s), int(x1s), int(y0s), int(y1s)))
        return ids, labels, sizes, loc
    mask_paths, ignore_paths = {}, {}
    for image_id, mask_path, ignore_path in rows("localization.txt"):
        if image_id in mask_paths:
            mask_paths[image_id].append(mask_path)
            assert len(ignore_path) == 0
        else:
            mask_paths[image_id] = [mask_path]
            ignore_paths[image_id] = ignore_path
    return ids, labels, sizes, (mask_paths, ignore_paths)


def test_wsolevaluation_parsers_read_both_datasets(root):
    data_root, mask_root = root / "images", root / "images"  # --data_root, --mask_root
    for split in ("train", "val", "test"):
        ids, labels, sizes, boxes = _wsoleval_read(root / "metadata" / "ILSVRC" / split, "boxes")
        assert set(labels) == set(ids) and len(ids) == len(_split(root / "metadata" / "ILSVRC", split)["ids"])
        assert (split == "train") == (not sizes) == (not boxes)
        for i in ids:
            assert Path(data_root, "ILSVRC", i).is_file()
        ids, labels, sizes, (masks, ignores) = _wsoleval_read(root / "metadata" / "OpenImages" / split, "masks")
        assert set(labels) == set(ids) and sizes == {}
        assert (split == "train") == (not masks)
        for i in ids:
            assert Path(data_root, "OpenImages", i).is_file()
            if split != "train":
                assert ignores[i] and all(Path(mask_root, "OpenImages", m).is_file() for m in masks[i])
                assert Path(mask_root, "OpenImages", ignores[i]).is_file()


# ----------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("maker", [make_synthetic_ilsvrc, make_synthetic_openimages])
def test_same_arguments_give_byte_identical_files(maker, tmp_path):
    kw = dict(num_classes=2, images_per_class=2, val_per_class=1, test_per_class=2, size=56,
              seed=3, progress=False)
    a = _tree_hashes(Path(maker(tmp_path / "a", **kw)["paths"]["out_root"]))
    b = _tree_hashes(Path(maker(tmp_path / "b", **kw)["paths"]["out_root"]))
    assert a == b and len(a) > 20
    c = _tree_hashes(Path(maker(tmp_path / "c", **{**kw, "seed": 4})["paths"]["out_root"]))
    jpgs = [k for k in a if k.lower().endswith((".jpg", ".jpeg"))]
    assert jpgs and all(k not in c or a[k] != c[k] for k in jpgs), "another seed changes every image"


def test_worker_processes_give_the_same_bytes(tmp_path):
    kw = dict(num_classes=2, images_per_class=2, val_per_class=1, test_per_class=1, size=48,
              seed=1, progress=False)
    serial = _tree_hashes(Path(make_synthetic_ilsvrc(tmp_path / "s", **kw)["paths"]["out_root"]))
    parallel = _tree_hashes(Path(make_synthetic_ilsvrc(tmp_path / "p", num_workers=2, **kw)
                                 ["paths"]["out_root"]))
    assert serial == parallel


def test_render_scene_several_objects_of_one_class():
    cls = object_classes(3)[2]
    a = render_scene(cls, np.random.default_rng(5), 72, 56, 3, 1)
    b = render_scene(cls, np.random.default_rng(5), 72, 56, 3, 1)
    assert np.array_equal(a.image, b.image) and a.boxes == b.boxes
    assert a.image.shape == (56, 72, 3) and len(a.masks) == len(a.boxes) == 3 and len(a.unlabelled) == 1
    for m, (x0, y0, x1, y1) in zip(a.masks, a.boxes):
        ys, xs = np.nonzero(m)
        assert (xs.min(), ys.min(), xs.max(), ys.max()) == (x0, y0, x1, y1)
    assert a.label == 2


def test_render_scene_fits_objects_into_tight_cells():
    # big boxes in narrow cells force the pose's shrink path (a rounding error there used to
    # make numpy's uniform(low, high) fail with high < low)
    classes = object_classes(100)
    for k in range(40):
        w, h = (96, 40) if k % 2 else (40, 96)
        scene = render_scene(classes[k], np.random.default_rng(k), w, h, 1 + k % 3, k % 2,
                             box_fraction=(0.7, 0.8))
        for x0, y0, x1, y1 in scene.boxes:
            assert 0 <= x0 < x1 <= w - 1 and 0 <= y0 < y1 <= h - 1


def test_classes_past_256_stay_distinct():
    oc = object_classes(1000)
    assert len({c.name for c in oc}) == 1000
    assert oc[300].rim and not oc[300].hole and oc[600].hole and oc[900].rim and oc[900].hole
    scene = render_scene(oc[999], np.random.default_rng(0), 96, 96, 1)
    assert scene.masks[0].any()


# ----------------------------------------------------------------------------- reuse, overwrite, atomic


def test_reuse_overwrite_and_refusals(tmp_path):
    kw = dict(num_classes=2, images_per_class=1, val_per_class=1, test_per_class=1, size=48,
              progress=False)
    out = tmp_path / "d"
    first = make_synthetic_ilsvrc(out, **kw)
    before = _tree_hashes(out)
    again = make_synthetic_ilsvrc(out, **kw)
    assert again["reused"] and not first["reused"] and _tree_hashes(out) == before
    assert again["parameters"] == first["parameters"]
    with pytest.raises(FileExistsError, match="overwrite"):
        make_synthetic_ilsvrc(out, **{**kw, "seed": 1})
    replaced = make_synthetic_ilsvrc(out, **{**kw, "seed": 1}, overwrite=True)
    assert not replaced["reused"] and replaced["parameters"]["seed"] == 1
    assert _tree_hashes(out) != before
    assert [p.name for p in out.iterdir()] and not list(out.glob(".synthetic-*")), "no temp folder left"
    # another dataset in the same root is left alone
    make_synthetic_openimages(out, **kw)
    make_synthetic_ilsvrc(out, **kw, overwrite=True)
    assert json.loads((out / "metadata/OpenImages/synthetic_info.json").read_text())["complete"]
    # folders this generator did not write are never deleted
    foreign = tmp_path / "f"
    (foreign / "images" / "ILSVRC").mkdir(parents=True)
    (foreign / "images" / "ILSVRC" / "mine.JPEG").write_bytes(b"x")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError):
            make_synthetic_ilsvrc(foreign, **kw, overwrite=overwrite)
    assert (foreign / "images" / "ILSVRC" / "mine.JPEG").is_file()
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(NotADirectoryError):
        make_synthetic_openimages(afile, **kw)


def test_failure_midway_leaves_no_partial_dataset(tmp_path, monkeypatch):
    kw = dict(num_classes=2, images_per_class=2, val_per_class=1, test_per_class=1, size=48,
              progress=False)
    out = tmp_path / "d"
    make_synthetic_openimages(out, **kw)
    before = _tree_hashes(out)
    calls = []

    def failing(job):
        calls.append(job)
        if len(calls) == 5:
            raise OSError("disk full (simulated)")
        return real(job)

    real = swe._openimages_job
    monkeypatch.setattr(swe, "_openimages_job", failing)
    with pytest.raises(OSError, match="simulated"):
        make_synthetic_openimages(out, **{**kw, "seed": 9}, overwrite=True)
    assert _tree_hashes(out) == before, "the complete dataset survives a failed overwrite"
    assert not list(out.glob(".synthetic-*"))
    calls.clear()
    with pytest.raises(OSError, match="simulated"):
        make_synthetic_openimages(tmp_path / "new", **kw)
    assert not (tmp_path / "new" / "images" / "OpenImages").exists()
    assert not (tmp_path / "new" / "metadata" / "OpenImages").exists()
    assert not list((tmp_path / "new").glob(".synthetic-*"))


# ----------------------------------------------------------------------------- argument errors


@pytest.mark.parametrize("kwargs, message", [
    ({"num_classes": 1001}, r"num_classes must be 1\.\.1000, got 1001"),
    ({"num_classes": 0}, r"num_classes must be 1\.\.1000"),
    ({"num_classes": 2.0}, r"num_classes must be an integer"),
    ({"images_per_class": 0}, r"images_per_class must be >= 1, got 0"),
    ({"val_per_class": 0}, r"val_per_class must be >= 1"),
    ({"test_per_class": -1}, r"test_per_class must be >= 1"),
    ({"seed": -1}, r"seed must be >= 0"),
    ({"size": 40}, r"size must be >= 48, got 40"),
    ({"size": (64,)}, r"size must be an int or a \(width, height\) pair"),
    ({"size": "64"}, r"size must be an int or a \(width, height\) pair"),
    ({"size_jitter": 0.6}, r"size_jitter must be a number in \[0, 0\.5\]"),
    ({"objects_per_image": (1, 4)}, r"objects_per_image must be 1\.\.3, got 4"),
    ({"objects_per_image": (0, 2)}, r"objects_per_image must be 1\.\.3, got 0"),
    ({"objects_per_image": (3, 1)}, r"objects_per_image must have low <= high"),
    ({"objects_per_image": 2}, r"objects_per_image must be a pair"),
    ({"box_fraction": (0.5, 0.9)}, r"box_fraction must satisfy"),
    ({"num_classes": 100, "size": 64, "size_jitter": 0.3}, r"texture frequency bands.*>= 64"),
    ({"num_workers": -1}, r"num_workers must be >= 0"),
])
@pytest.mark.parametrize("maker", [make_synthetic_ilsvrc, make_synthetic_openimages])
def test_bad_arguments_name_the_argument_and_range(maker, kwargs, message, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(ValueError, match=message):
        maker(out, **{"progress": False, **kwargs})
    assert not out.exists(), "arguments are checked before anything is written"


# ----------------------------------------------------------------------------- CLI


def test_cli_writes_reuses_and_reports_errors(tmp_path, capsys):
    args = ["--out", str(tmp_path / "d"), "--classes", "2", "--images-per-class", "1",
            "--val-per-class", "1", "--test-per-class", "1", "--size", "56x48", "--objects", "2-3",
            "--seed", "2", "--no-progress"]
    assert cli_main(["--dataset", "openimages", *args]) == 0
    assert "wrote synthetic OpenImages" in capsys.readouterr().out
    info = json.loads((tmp_path / "d/metadata/OpenImages/synthetic_info.json").read_text())
    assert info["parameters"]["size"] == [56, 48] and info["parameters"]["objects_per_image"] == [2, 3]
    assert cli_main(["--dataset", "openimages", *args]) == 0
    assert "reused" in capsys.readouterr().out
    assert cli_main(["--dataset", "openimages", *args, "--seed", "5"]) == 2
    assert "overwrite" in capsys.readouterr().err
    assert cli_main(["--dataset", "ilsvrc", *args, "--classes", "1001"]) == 2
    assert "num_classes must be 1..1000" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["--dataset", "coco", "--out", str(tmp_path)])


def test_tools_front_door_only_calls_the_cli():
    text = (REPO / "tools" / "make_synthetic_wsoleval.py").read_text()
    assert "from wsol.cli.make_synthetic_wsoleval import main" in text
    assert "sys.exit(main())" in text
