"""The ImageNet class table and the official-layout -> wsolevaluation ILSVRC converter
(wsol.data.ilsvrc, tools/prepare_ilsvrc.py), on tiny hand-made official layouts.

The layouts are written here: real WNIDs, tiny JPEGs of stated sizes, PASCAL VOC XMLs, a Kaggle
LOC_val_solution.csv, and an ImageNetV2 folder with both file-name schemes; boxes and sizes are
hand-made, not real annotations. Expected files are spelled out byte for byte.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from wsol.cli.prepare_ilsvrc import main as prepare_main
from wsol.data.errors import DataFormatError
from wsol.data.ilsvrc import (IlsvrcFormatError, convert_imagenet_to_wsoleval, ilsvrc_class_names, ilsvrc_wnids,
                              wnid_to_index)

REPO = Path(__file__).resolve().parents[1]
SHA = "a31041fd31109279f69ba5827fe508eee00abd75"  # a hashed ImageNetV2 name (the form of PR 53's mapping)

TRAIN = {  # wnid -> {file: (W, H)}
    "n01440764": {"n01440764_10026.JPEG": (20, 16), "n01440764_2.JPEG": (18, 12)},
    "n01751748": {"n01751748_1.JPEG": (16, 16)},
    "n02437616": {"n02437616_7.JPEG": (12, 20)},
}
VAL = {  # stem -> ((W, H), wnid, boxes as in the XML / CSV)
    "ILSVRC2012_val_00000001": ((50, 40), "n01751748", [(11, 8, 44, 19)]),
    "ILSVRC2012_val_00008726": ((60, 45), "n02119789", [(25, 14, 45, 32), (4, 2, 32, 29)]),
    "ILSVRC2012_val_00050000": ((40, 30), "n02437616", [(23, 10, 39, 29), (17, 8, 40, 30), (0, 0, 5, 5)]),
}
V2_IMAGES = {"0/0.jpeg": (30, 20), "0/1.jpeg": (25, 25), f"278/{SHA}.jpeg": (33, 21)}  # as on disk
V2_BOXES = "image_id,x0,y0,x1,y1\n0/0.jpeg,1,2,30,20\n0/0.jpeg,0,0,5,5\n278/3.jpeg,3,4,33,10\n0/1.jpeg,2,2,24,25\n"
V2_MAPPING = (f"0/0.jpeg, 0/{'f' * 40}.jpeg\n"  # 0/0.jpeg is on disk under its old name: the old name wins
              f"278/3.jpeg, 278/{SHA}.jpeg\n")

EXPECTED = {
    "train/image_ids.txt": "train/n01440764/n01440764_10026.JPEG\ntrain/n01440764/n01440764_2.JPEG\n"
                           "train/n01751748/n01751748_1.JPEG\ntrain/n02437616/n02437616_7.JPEG",
    "train/class_labels.txt": "train/n01440764/n01440764_10026.JPEG,0\ntrain/n01440764/n01440764_2.JPEG,0\n"
                              "train/n01751748/n01751748_1.JPEG,65\ntrain/n02437616/n02437616_7.JPEG,355",
    "train/image_sizes.txt": "",
    "train/localization.txt": "",
    "test/image_ids.txt": "val/ILSVRC2012_val_00000001.JPEG\nval/ILSVRC2012_val_00008726.JPEG\n"
                          "val/ILSVRC2012_val_00050000.JPEG",
    "test/class_labels.txt": "val/ILSVRC2012_val_00000001.JPEG,65\nval/ILSVRC2012_val_00008726.JPEG,278\n"
                             "val/ILSVRC2012_val_00050000.JPEG,355",
    "test/image_sizes.txt": "val/ILSVRC2012_val_00000001.JPEG,50,40\nval/ILSVRC2012_val_00008726.JPEG,60,45\n"
                            "val/ILSVRC2012_val_00050000.JPEG,40,30",
    "test/localization.txt": "val/ILSVRC2012_val_00000001.JPEG,11,8,44,19\n"
                             "val/ILSVRC2012_val_00008726.JPEG,25,14,45,32\n"
                             "val/ILSVRC2012_val_00008726.JPEG,4,2,32,29\n"
                             "val/ILSVRC2012_val_00050000.JPEG,23,10,39,29\n"
                             "val/ILSVRC2012_val_00050000.JPEG,17,8,39,29\n"  # 40,30 on a 40x30 image: clipped
                             "val/ILSVRC2012_val_00050000.JPEG,0,0,5,5",
    "val/image_ids.txt": f"val2/0/0.jpeg\nval2/278/{SHA}.jpeg\nval2/0/1.jpeg",  # first appearance in the boxes
    "val/class_labels.txt": f"val2/0/0.jpeg,0\nval2/278/{SHA}.jpeg,278\nval2/0/1.jpeg,0",
    "val/image_sizes.txt": f"val2/0/0.jpeg,30,20\nval2/278/{SHA}.jpeg,33,21\nval2/0/1.jpeg,25,25",
    "val/localization.txt": f"val2/0/0.jpeg,1,2,29,19\nval2/0/0.jpeg,0,0,5,5\nval2/278/{SHA}.jpeg,3,4,32,10\n"
                            "val2/0/1.jpeg,2,2,24,24",
}


# --------------------------------------------------------------------------- the fake official layout


def _jpeg(path: Path, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 140, 200)).save(path, "JPEG")


def voc_xml(stem: str, size, objects, depth: int = 3) -> str:
    """An official-style val XML, one element per line: <width> is on line 8; object k (0-based)
    has <object> on line 13 + 12 k, <name> on 14 + 12 k, <xmin> on 19 + 12 k, <ymin> on 20 + 12 k."""
    W, H = size
    lines = ["<annotation>", "\t<folder>val</folder>", f"\t<filename>{stem}</filename>", "\t<source>",
             "\t\t<database>ILSVRC_2012</database>", "\t</source>", "\t<size>", f"\t\t<width>{W}</width>",
             f"\t\t<height>{H}</height>", f"\t\t<depth>{depth}</depth>", "\t</size>", "\t<segmented>0</segmented>"]
    for wnid, (x0, y0, x1, y1) in objects:
        lines += ["\t<object>", f"\t\t<name>{wnid}</name>", "\t\t<pose>Unspecified</pose>",
                  "\t\t<truncated>0</truncated>", "\t\t<difficult>0</difficult>", "\t\t<bndbox>",
                  f"\t\t\t<xmin>{x0}</xmin>", f"\t\t\t<ymin>{y0}</ymin>", f"\t\t\t<xmax>{x1}</xmax>",
                  f"\t\t\t<ymax>{y1}</ymax>", "\t\t</bndbox>", "\t</object>"]
    return "\n".join(lines + ["</annotation>"]) + "\n"


def write_official(root: Path) -> dict[str, Path]:
    """Write the official layout under ``root``; returns the converter's keyword arguments."""
    for wnid, files in TRAIN.items():
        for name, size in files.items():
            _jpeg(root / "train" / wnid / name, size)
    (root / "train" / "n01440764.tar").write_bytes(b"left over from extraction")  # skipped, not an image
    (root / "val_xml").mkdir(parents=True)
    csv_rows = []
    for stem, (size, wnid, boxes) in VAL.items():
        _jpeg(root / "val" / f"{stem}.JPEG", size)
        (root / "val_xml" / f"{stem}.xml").write_text(voc_xml(stem, size, [(wnid, b) for b in boxes]))
        csv_rows.append(f"{stem}," + " ".join(f"{wnid} {x0} {y0} {x1} {y1}" for x0, y0, x1, y1 in boxes) + " ")
    (root / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n" + "\n".join(csv_rows[::-1]) + "\n")
    (root / "LOC_synset_mapping.txt").write_text(
        "".join(f"{w} {n}\n" for w, n in zip(ilsvrc_wnids(), ilsvrc_class_names())))
    for rel, size in V2_IMAGES.items():
        _jpeg(root / "val2" / rel, size)
    (root / "ImageNetV2_boxes.txt").write_text(V2_BOXES)
    (root / "mapping.txt").write_text(V2_MAPPING)
    return {"train_dir": root / "train", "val_dir": root / "val", "val_xml_dir": root / "val_xml",
            "synset_mapping": root / "LOC_synset_mapping.txt", "imagenetv2_dir": root / "val2",
            "imagenetv2_boxes": root / "ImageNetV2_boxes.txt", "imagenetv2_mapping": root / "mapping.txt"}


def with_csv(inputs: dict) -> dict:
    out = {k: v for k, v in inputs.items() if k != "val_xml_dir"}
    out["val_solution_csv"] = inputs["train_dir"].parent / "LOC_val_solution.csv"
    return out


def read_all(out: Path) -> dict[str, str]:
    return {f"{p.parent.name}/{p.name}": p.read_bytes().decode() for p in sorted(out.glob("*/*.txt"))}


def line_of(path: Path, needle: str, nth: int = 1) -> int:
    hits = [i for i, line in enumerate(path.read_text().splitlines(), start=1) if needle in line]
    return hits[nth - 1]


@pytest.fixture
def official(tmp_path):
    return write_official(tmp_path / "imagenet")


# --------------------------------------------------------------------------- class table


def test_class_table_is_the_1000_sorted_wnids_with_names():
    wnids = ilsvrc_wnids()
    assert len(wnids) == 1000 and list(wnids) == sorted(wnids) and len(set(wnids)) == 1000
    index = wnid_to_index()
    # REFERENCE §12.1.4 spot checks
    assert (index["n01440764"], index["n01751748"], index["n02119789"], index["n02437616"]) == (0, 65, 278, 355)
    names = ilsvrc_class_names()
    assert len(names) == 1000 and names[0] == "tench, Tinca tinca" and names[1] == "goldfish, Carassius auratus"
    with pytest.raises(TypeError):
        index["n00000000"] = 3  # read-only


# --------------------------------------------------------------------------- conversion


@pytest.mark.parametrize("workers", [1, 8])
def test_converts_every_split_byte_for_byte(official, tmp_path, workers):
    counts = convert_imagenet_to_wsoleval(tmp_path / "meta", **official, progress=False, workers=workers)
    assert read_all(tmp_path / "meta") == EXPECTED
    assert counts == {"train": {"images": 4, "boxes": 0, "classes": 3},
                      "val": {"images": 3, "boxes": 4, "classes": 2},
                      "test": {"images": 3, "boxes": 6, "classes": 3}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imagenet", "meta"]  # no temp folder left


def test_solution_csv_gives_the_same_test_split_as_the_xmls(official, tmp_path):
    convert_imagenet_to_wsoleval(tmp_path / "meta", **with_csv(official), progress=False)
    assert read_all(tmp_path / "meta") == EXPECTED


def test_without_image_checks_sizes_come_from_the_xml_and_train_images_are_not_opened(official, tmp_path):
    bad = official["train_dir"] / "n01751748" / "n01751748_1.JPEG"
    bad.write_bytes(b"not a jpeg")
    convert_imagenet_to_wsoleval(tmp_path / "meta", train_dir=official["train_dir"], val_dir=official["val_dir"],
                                 val_xml_dir=official["val_xml_dir"], check_images=False, progress=False)
    got = read_all(tmp_path / "meta")
    assert got == {k: v for k, v in EXPECTED.items() if not k.startswith("val/")}


def test_hashed_names_in_the_boxes_file_need_no_mapping(official, tmp_path):
    official["imagenetv2_boxes"].write_text(V2_BOXES.replace("278/3.jpeg", f"278/{SHA}.jpeg"))
    del official["imagenetv2_mapping"]
    convert_imagenet_to_wsoleval(tmp_path / "meta", **official, progress=False)
    assert read_all(tmp_path / "meta") == EXPECTED


def test_one_split_alone_and_existing_splits_need_overwrite(official, tmp_path):
    out = tmp_path / "meta"
    convert_imagenet_to_wsoleval(out, train_dir=official["train_dir"], progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["train"]
    with pytest.raises(FileExistsError, match="overwrite"):
        convert_imagenet_to_wsoleval(out, train_dir=official["train_dir"], progress=False)
    (out / "train" / "image_ids.txt").write_text("stale")
    convert_imagenet_to_wsoleval(out, **official, overwrite=True, progress=False)
    assert read_all(out) == EXPECTED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imagenet", "meta"]


def test_a_failed_conversion_leaves_existing_metadata_untouched(official, tmp_path):
    out = tmp_path / "meta"
    convert_imagenet_to_wsoleval(out, **official, progress=False)
    (official["val_dir"] / "ILSVRC2012_val_00000001.JPEG").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(IlsvrcFormatError):
        convert_imagenet_to_wsoleval(out, **official, overwrite=True, progress=False)
    assert read_all(out) == EXPECTED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imagenet", "meta"]


@pytest.mark.parametrize("kwargs, message", [
    ({}, "nothing to convert"),
    ({"val_dir": "v"}, "exactly one of"),
    ({"val_dir": "v", "val_xml_dir": "x", "val_solution_csv": "c"}, "exactly one of"),
    ({"val_xml_dir": "x"}, "need val_dir"),
    ({"imagenetv2_dir": "d"}, "go together"),
])
def test_incomplete_inputs_are_refused_before_any_work(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        convert_imagenet_to_wsoleval(tmp_path / "meta", **kwargs)
    assert not (tmp_path / "meta").exists()


def test_missing_input_folders_are_named(tmp_path):
    with pytest.raises(IlsvrcFormatError) as err:
        convert_imagenet_to_wsoleval(tmp_path / "meta", train_dir=tmp_path / "nope", val_dir=tmp_path / "val",
                                     val_solution_csv=tmp_path / "LOC_val_solution.csv")
    assert err.value.problems == [f"{tmp_path / 'nope'}: train_dir folder not found",
                                  f"{tmp_path / 'val'}: val_dir folder not found",
                                  f"{tmp_path / 'LOC_val_solution.csv'}: val_solution_csv file not found"]
    assert not (tmp_path / "meta").exists()


# --------------------------------------------------------------------------- every bad input: one problem, its file:line

V1, V8, V5 = "ILSVRC2012_val_00000001", "ILSVRC2012_val_00008726", "ILSVRC2012_val_00050000"


def _xml(r: Path, stem: str) -> Path:
    return r / "val_xml" / f"{stem}.xml"


def _edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, count))


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def _move_v2(r: Path, old: str, new: str) -> None:
    """Move an ImageNetV2 image and rename it in the boxes file."""
    (r / "val2" / new).parent.mkdir(parents=True, exist_ok=True)
    (r / "val2" / old).rename(r / "val2" / new)
    _edit(r / "ImageNetV2_boxes.txt", old, new)


def _csv(r: Path) -> Path:
    return r / "LOC_val_solution.csv"


def _csv_line(r: Path, stem: str) -> int:
    return line_of(_csv(r), stem)


# (name, uses the CSV, mutate(root), expected problem(root)) -- each mutation breaks exactly one thing
BAD_CASES = [
    ("xml missing", False, lambda r: _xml(r, V8).unlink(),
     lambda r: f"{_xml(r, V8)}: annotation not found (for {r / 'val' / (V8 + '.JPEG')})"),
    ("xml malformed", False, lambda r: _edit(_xml(r, V8), "</pose>", "</pos>"),
     lambda r: f"{_xml(r, V8)}:15: malformed XML (mismatched tag, column 22)"),
    ("xml unknown wnid", False, lambda r: _edit(_xml(r, V5), "n02437616", "n99999999"),
     lambda r: f"{_xml(r, V5)}:14: 'n99999999' is not one of the 1000 ImageNet-1k WNIDs"),
    ("xml two classes", False, lambda r: _edit(_xml(r, V8), "n02119789", "n01440764"),
     lambda r: f"{_xml(r, V8)}: boxes of several classes in one image (n01440764, n02119789)"),
    ("xml box outside", False, lambda r: _edit(_xml(r, V5), "<xmax>40<", "<xmax>41<"),
     lambda r: f"{_xml(r, V5)}:31: box (17,8,41,30) lies outside the 40x30 image"),
    ("xml box reversed", False, lambda r: _edit(_xml(r, V1), "<xmin>11<", "<xmin>45<"),
     lambda r: f"{_xml(r, V1)}:19: box (45,8,44,19) has x1 < x0 or y1 < y0"),
    ("xml no objects", False, lambda r: _xml(r, V1).write_text(voc_xml(V1, (50, 40), [])),
     lambda r: f"{_xml(r, V1)}: no <object> (an image without boxes)"),
    ("xml size mismatch", False, lambda r: _edit(_xml(r, V1), "<width>50<", "<width>51<"),
     lambda r: f"{_xml(r, V1)}:8: <size> 51x40 differs from the image's own 50x40 ({r / 'val' / (V1 + '.JPEG')})"),
    ("xml non-integer", False, lambda r: _edit(_xml(r, V8), "<ymin>2<", "<ymin>2.5<"),
     lambda r: f"{_xml(r, V8)}:32: <ymin> is not an integer: '2.5'"),
    ("xml lacks a field", False, lambda r: _edit(_xml(r, V8), "\t\t\t<ymax>32</ymax>\n", ""),
     lambda r: f"{_xml(r, V8)}:13: <object> lacks <ymax>"),
    ("xml root element", False, lambda r: _xml(r, V1).write_text("<?xml version='1.0'?>\n<voc><x/></voc>\n"),
     lambda r: f"{_xml(r, V1)}:2: root element <voc>, expected PASCAL VOC <annotation>"),
    ("xml without image", False, lambda r: (r / "val" / f"{V1}.JPEG").unlink(),
     lambda r: f"{_xml(r, V1)}: no image {V1}.JPEG in {r / 'val'}"),
    ("val image unreadable", False, lambda r: (r / "val" / f"{V8}.JPEG").write_bytes(b"garbage"),
     lambda r: f"{r / 'val' / (V8 + '.JPEG')}: unreadable or corrupt image"),
    ("val sorted into class folders", False, lambda r: _jpeg(r / "val" / "n01751748" / "x.JPEG", (8, 8)),
     lambda r: f"{r / 'val' / 'n01751748'}: unexpected folder (1 in {r / 'val'}); images must sit directly in it "
               "(wsolevaluation's test ids are val/<file>.JPEG: undo any per-class sorting)"),
    ("csv header", True, lambda r: _edit(_csv(r), "ImageId,PredictionString", "ImageId,Prediction"),
     lambda r: f"{_csv(r)}:1: expected the header 'ImageId,PredictionString', got 'ImageId,Prediction'"),
    ("csv empty file", True, lambda r: _csv(r).write_text(""),
     lambda r: f"{_csv(r)}: empty file (expected the header 'ImageId,PredictionString', then one row per image)"),
    ("csv header only", True, lambda r: _csv(r).write_text("ImageId,PredictionString\n"),
     lambda r: f"{_csv(r)}: no rows after the header"),
    ("csv 4-token group", True, lambda r: _edit(_csv(r), "n02119789 4 2 32 29", "n02119789 4 2 32"),
     lambda r: f"{_csv(r)}:{_csv_line(r, V8)}: PredictionString has 9 tokens; expected groups of 5 "
               "(<wnid> x_min y_min x_max y_max)"),
    ("csv unknown wnid", True, lambda r: _edit(_csv(r), "n02437616 17", "n9999 17"),
     lambda r: f"{_csv(r)}:{_csv_line(r, V5)}: box 2: 'n9999' is not one of the 1000 ImageNet-1k WNIDs"),
    ("csv non-integer", True, lambda r: _edit(_csv(r), "n01751748 11 8", "n01751748 11 eight"),
     lambda r: f"{_csv(r)}:{_csv_line(r, V1)}: box 1: y_min is not an integer: 'eight'"),
    ("csv box outside", True, lambda r: _edit(_csv(r), "44 19", "44 41"),
     lambda r: f"{_csv(r)}:{_csv_line(r, V1)}: box 1: box (11,8,44,41) lies outside the 50x40 image"),
    ("csv three fields", True, lambda r: _edit(_csv(r), f"{V1},", f"{V1},x,"),
     lambda r: f"{_csv(r)}:{_csv_line(r, V1)}: expected 2 fields (ImageId,PredictionString), got "
               f"'{V1},x,n01751748 11 8 44 19 '"),
    ("csv duplicate row", True, lambda r: _csv(r).write_text(_csv(r).read_text() + f"{V1},n01751748 1 1 2 2\n"),
     lambda r: f"{_csv(r)}:5: duplicate ImageId {V1} (first on line {_csv_line(r, V1)})"),
    ("csv empty prediction", True, lambda r: _edit(_csv(r), f"{V1},n01751748 11 8 44 19 ", f"{V1},"),
     lambda r: f"{_csv(r)}:{_csv_line(r, V1)}: empty PredictionString (an image without boxes)"),
    ("csv row without image", True, lambda r: (r / "val" / f"{V5}.JPEG").unlink(),
     lambda r: f"{_csv(r)}:{_csv_line(r, V5)}: image {V5}.JPEG not found in {r / 'val'}"),
    ("image without csv row", True, lambda r: _jpeg(r / "val" / "ILSVRC2012_val_00000002.JPEG", (9, 9)),
     lambda r: f"{r / 'val' / 'ILSVRC2012_val_00000002.JPEG'}: no row in {_csv(r)} (an image without boxes)"),
    ("train unknown wnid", False, lambda r: _jpeg(r / "train" / "n99999999" / "a.JPEG", (8, 8)),
     lambda r: f"{r / 'train' / 'n99999999'}: folder name is not one of the 1000 ImageNet-1k WNIDs"),
    ("train without classes", False, lambda r: [p.unlink() for p in (r / "train").glob("*/*")]
     and [p.rmdir() for p in (r / "train").glob("*/")],
     lambda r: f"{r / 'train'}: no class folders (expected <wnid>/<file>.JPEG)"),
    ("train empty class", False, lambda r: (r / "train" / "n01443537").mkdir(),
     lambda r: f"{r / 'train' / 'n01443537'}: class folder holds no images"),
    ("train image unreadable", False, lambda r: (r / "train" / "n01440764" / "n01440764_2.JPEG").write_bytes(b""),
     lambda r: f"{r / 'train' / 'n01440764' / 'n01440764_2.JPEG'}: unreadable or corrupt image"),
    ("v2 boxes header", False, lambda r: _edit(r / "ImageNetV2_boxes.txt", "image_id,", "id,"),
     lambda r: f"{r / 'ImageNetV2_boxes.txt'}:1: expected the header 'image_id,x0,y0,x1,y1', got 'id,x0,y0,x1,y1'"),
    ("v2 boxes header only", False, lambda r: (r / "ImageNetV2_boxes.txt").write_text("image_id,x0,y0,x1,y1\n"),
     lambda r: f"{r / 'ImageNetV2_boxes.txt'}: no rows after the header"),
    ("v2 only row of an image bad", False, lambda r: _edit(r / "ImageNetV2_boxes.txt", "2,2,24,25", "2,2,24"),
     lambda r: f"{r / 'ImageNetV2_boxes.txt'}:5: expected 5 fields (image_id,x0,y0,x1,y1), got '0/1.jpeg,2,2,24'"),
    ("v2 boxes row", False, lambda r: _edit(r / "ImageNetV2_boxes.txt", "0/0.jpeg,0,0,5,5", "0/0.jpeg,0,0,5"),
     lambda r: f"{r / 'ImageNetV2_boxes.txt'}:3: expected 5 fields (image_id,x0,y0,x1,y1), got '0/0.jpeg,0,0,5'"),
    ("v2 boxes non-integer", False, lambda r: _edit(r / "ImageNetV2_boxes.txt", "0/0.jpeg,0,0,5,5", "0/0.jpeg,0,0,5,x"),
     lambda r: f"{r / 'ImageNetV2_boxes.txt'}:3: y1 is not an integer: 'x'"),
    ("v2 box outside", False, lambda r: _edit(r / "ImageNetV2_boxes.txt", "2,2,24,25", "2,2,24,26"),
     lambda r: f"{r / 'ImageNetV2_boxes.txt'}:5: box (2,2,24,26) lies outside the 25x25 image"),
    ("v2 hashed image missing", False, lambda r: (r / "val2" / "278" / f"{SHA}.jpeg").unlink(),
     lambda r: f"{r / 'ImageNetV2_boxes.txt'}:4: image not found: {r / 'val2' / '278' / '3.jpeg'}, nor its new "
               f"name {r / 'val2' / '278' / (SHA + '.jpeg')} (from {r / 'mapping.txt'})"),
    ("v2 mapping malformed", False, lambda r: _append(r / "mapping.txt", "0/5.jpeg 0/x.jpeg\n"),
     lambda r: f"{r / 'mapping.txt'}:3: expected 'k/n.jpeg, k/<new name>.jpeg', got '0/5.jpeg 0/x.jpeg'"),
    ("v2 mapping across classes", False, lambda r: _append(r / "mapping.txt", "1/0.jpeg, 2/x.jpeg\n"),
     lambda r: f"{r / 'mapping.txt'}:3: 1/0.jpeg and 2/x.jpeg are in different class folders"),
    ("v2 mapping duplicate", False, lambda r: _append(r / "mapping.txt", "278/3.jpeg, 278/x.jpeg\n"),
     lambda r: f"{r / 'mapping.txt'}:3: duplicate id 278/3.jpeg (first on line 2)"),
    ("v2 class folder out of range", False, lambda r: _move_v2(r, "0/1.jpeg", "1000/1.jpeg"),
     lambda r: f"{r / 'ImageNetV2_boxes.txt'}:5: image id '1000/1.jpeg' is not k/<file> with a class folder k "
               "in 0..999"),
    ("v2 image without boxes", False, lambda r: _jpeg(r / "val2" / "5" / "0.jpeg", (8, 8)),
     lambda r: f"{r / 'val2' / '5' / '0.jpeg'}: image without boxes (not in {r / 'ImageNetV2_boxes.txt'})"),
    ("v2 image unreadable", False, lambda r: (r / "val2" / "0" / "1.jpeg").write_bytes(b"x"),
     lambda r: f"{r / 'ImageNetV2_boxes.txt'}:5: {r / 'val2' / '0' / '1.jpeg'}: unreadable or corrupt image"),
    ("synset mapping order", False,
     lambda r: _edit(r / "LOC_synset_mapping.txt", "n01443537", "n01440764", 1),
     lambda r: f"{r / 'LOC_synset_mapping.txt'}:2: class 1 is n01440764, expected n01443537 (sorted-WNID order)"),
]


@pytest.mark.parametrize("name, use_csv, mutate, expected", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_each_bad_input_is_one_problem_naming_its_file_and_line(name, use_csv, mutate, expected, official, tmp_path):
    root = official["train_dir"].parent
    mutate(root)
    inputs = with_csv(official) if use_csv else official
    with pytest.raises(IlsvrcFormatError) as err:
        convert_imagenet_to_wsoleval(tmp_path / "meta", **inputs, progress=False)
    assert isinstance(err.value, DataFormatError)
    assert len(err.value.problems) == 1, err.value.problems
    assert err.value.problems[0].startswith(expected(root)), (err.value.problems[0], expected(root))
    assert str(err.value).startswith(f"ImageNet conversion: {expected(root)}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imagenet"]  # nothing written, no temp folder


def test_hashed_images_without_the_mapping_say_to_pass_it(official, tmp_path):
    root = official["train_dir"].parent
    del official["imagenetv2_mapping"]
    with pytest.raises(IlsvrcFormatError) as err:
        convert_imagenet_to_wsoleval(tmp_path / "meta", **official, progress=False)
    assert err.value.problems == [
        f"{root / 'ImageNetV2_boxes.txt'}:4: image not found: {root / 'val2' / '278' / '3.jpeg'}; for the hashed "
        "file names of the current tarball pass mapping.txt (--imagenetv2-mapping)",
        f"{root / 'val2' / '278' / (SHA + '.jpeg')}: image without boxes (not in {root / 'ImageNetV2_boxes.txt'})"]


def test_problems_past_the_cap_are_counted(official, tmp_path, monkeypatch):
    monkeypatch.setattr("wsol.data.ilsvrc.MAX_PROBLEMS_KEPT", 2)
    root = official["train_dir"].parent
    for k in range(4):
        (root / "train" / f"n0144{k}000").mkdir()  # not WNIDs of ImageNet-1k
    with pytest.raises(IlsvrcFormatError) as err:
        convert_imagenet_to_wsoleval(tmp_path / "meta", train_dir=root / "train", progress=False)
    assert len(err.value.problems) == 3 and err.value.problems[2] == "(and 2 more problem(s), not kept)"


def test_many_problems_are_all_listed_in_one_error(official, tmp_path):
    root = official["train_dir"].parent
    _xml(root, V8).unlink()
    _edit(root / "ImageNetV2_boxes.txt", "2,2,24,25", "2,2,24,26")
    (root / "train" / "n01443537").mkdir()
    with pytest.raises(IlsvrcFormatError) as err:
        convert_imagenet_to_wsoleval(tmp_path / "meta", **official, progress=False)
    assert len(err.value.problems) == 3
    assert str(err.value).startswith("ImageNet conversion: 3 problem(s):\n  ")


# --------------------------------------------------------------------------- command line


def _cli_args(inputs: dict, out: Path) -> list[str]:
    args = ["--out", str(out), "--no-progress"]
    for key, value in inputs.items():
        args += ["--" + key.replace("_", "-"), str(value)]
    return args


def test_cli_writes_the_metadata(official, tmp_path, capsys):
    assert prepare_main(_cli_args(with_csv(official), tmp_path / "meta")) == 0
    assert read_all(tmp_path / "meta") == EXPECTED
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'meta'}/test: 3 images, 6 boxes, 3 classes" in out
    assert prepare_main(_cli_args(official, tmp_path / "meta")) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert prepare_main(_cli_args(official, tmp_path / "meta") + ["--overwrite", "--no-check-images"]) == 0


def test_cli_bad_input_is_one_message_with_file_and_line(official, tmp_path, capsys):
    root = official["train_dir"].parent
    _append(root / "mapping.txt", "0/5.jpeg\n")
    assert prepare_main(_cli_args(official, tmp_path / "meta")) == 1
    err = capsys.readouterr().err
    assert f"error: ImageNet conversion: {root / 'mapping.txt'}:3: expected 'k/n.jpeg, k/<new name>.jpeg'" in err
    assert "Traceback" not in err and not (tmp_path / "meta").exists()


@pytest.mark.parametrize("args, message", [
    (["--val-dir", "v"], "--val-dir needs its boxes"),
    (["--val-xml-dir", "x", "--val-solution-csv", "c", "--val-dir", "v"], "not allowed with argument"),
    (["--imagenetv2-boxes", "b"], "--imagenetv2-dir and --imagenetv2-boxes go together"),
    (["--train-dir", "t", "--workers", "0"], "--workers must be >= 1"),
    ([], "nothing to convert"),
])
def test_cli_flag_misuse_exits_2_with_usage(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        prepare_main(["--out", str(tmp_path / "meta")] + args)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_front_door_script_runs_end_to_end_without_importing_timm(official, tmp_path):
    # tools/prepare_ilsvrc.py run as __main__ in a fresh interpreter; the class table is read from
    # timm's files without importing timm (and so torch's model zoo)
    code = ("import runpy, sys\n"
            f"sys.argv = [{str(REPO / 'tools' / 'prepare_ilsvrc.py')!r}] + sys.argv[1:]\n"
            "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
            "except SystemExit as exc:\n    code = exc.code\n"
            "assert 'timm' not in sys.modules, 'timm was imported'\n"
            "sys.exit(code)\n")
    proc = subprocess.run([sys.executable, "-c", code] + _cli_args(official, tmp_path / "meta"),
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert read_all(tmp_path / "meta") == EXPECTED
    assert "wrote" in proc.stdout and "Traceback" not in proc.stderr
