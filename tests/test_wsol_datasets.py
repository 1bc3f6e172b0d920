"""The dataset-agnostic data layer on the ILSVRC and OpenImages stand-ins (wsol.data.synthetic_wsoleval)
and on small metadata files written here: reading wsolevaluation's metadata as it ships (empty
image_sizes.txt / localization.txt), several boxes per image, masks with ignore regions, class names,
image roots apart from the metadata, training-time validation, evaluation (Top-5 Loc, another
classifier's predictions, PxAP with ignore regions) and check_dataset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from wsol.data import (WSOLDataset, WSOLFormatError, batch_gt_masks, build_transform, collate_samples,
                       detect_layout, load_split, read_wsoleval)
from wsol.data.synthetic_wsoleval import make_synthetic_ilsvrc, make_synthetic_openimages
from wsol.engine import save_checkpoint
from wsol.models import build_model

SIZE = 64


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wsoleval")
    kw = dict(num_classes=3, images_per_class=4, size=SIZE, seed=1, val_per_class=1, test_per_class=3, progress=False)
    make_synthetic_ilsvrc(root, **kw)
    make_synthetic_openimages(root, **kw)
    return root


# ------------------------------------------------------------------------------------- reading

def test_ilsvrc_metadata_as_wsolevaluation_ships_it(stand_ins):
    md = stand_ins / "metadata" / "ILSVRC"
    assert (md / "train" / "image_sizes.txt").stat().st_size == 0
    assert (md / "train" / "localization.txt").stat().st_size == 0
    assert detect_layout(stand_ins, "ilsvrc") == ("wsoleval", md)
    train, val, test = (load_split(stand_ins, s, dataset="ilsvrc") for s in ("train", "val", "test"))
    assert train.dataset == val.dataset == "ilsvrc" and train.image_root == stand_ins / "images" / "ILSVRC"
    assert all(s.size is None and not s.boxes for s in train.samples)
    assert not train.has_boxes and val.has_boxes and test.has_boxes and not test.has_masks
    assert max(len(s.boxes) for s in test.samples) > 1            # several boxes per image
    # the sorted WNIDs name the classes, with their lemma; test ids carry no class folder
    assert test.class_names == train.class_names == val.class_names
    assert train.class_names[0] == "n01440764 tench, Tinca tinca"
    assert all(s.image_id.startswith("val/ILSVRC2012_val_") for s in test.samples)
    # the folder name finds the dataset without being told
    assert read_wsoleval(md, "test", require_images=False).dataset == "ilsvrc"


def test_openimages_masks_read_with_image_sizes_empty_or_absent(stand_ins, tmp_path):
    test = load_split(stand_ins, "test", dataset="openimages")
    assert test.dataset == "openimages" and test.has_masks and test.has_ignore and not test.has_boxes
    assert all(s.size is None for s in test.samples)
    assert test.class_names == sorted(test.class_names)          # MIDs in Python sorted() order
    assert Path(test.samples[0].mask_paths[0]).is_file()         # relative to the image root
    # image_sizes.txt absent: read the same
    md = tmp_path / "metadata" / "OpenImages"
    shutil.copytree(stand_ins / "metadata" / "OpenImages", md)
    (md / "test" / "image_sizes.txt").unlink()
    again = read_wsoleval(md, "test", image_root=stand_ins / "images" / "OpenImages")
    assert [s.mask_paths for s in again.samples] == [s.mask_paths for s in test.samples]


def test_image_root_apart_from_the_metadata(stand_ins, tmp_path):
    md = tmp_path / "md"
    shutil.copytree(stand_ins / "metadata" / "ILSVRC", md)
    with pytest.raises(WSOLFormatError, match="image root not found"):
        load_split(md, "test", dataset="ilsvrc")
    split = load_split(md, "test", dataset="ilsvrc", image_root=stand_ins / "images" / "ILSVRC")
    assert (split.image_root / split.samples[0].image_id).is_file()


def test_openimages_ground_truth_equals_wsolevaluations(stand_ins):
    """The dataset's mask + ignore at 224 equal wsolevaluation's get_mask (fg = any instance pixel,
    ignore = ignore PNG minus fg, nearest resize; wsol.engine.scoremaps.gt_mask)."""
    from wsol.engine.scoremaps import gt_mask

    split = load_split(stand_ins, "test", dataset="openimages")
    ds = WSOLDataset(split, build_transform("wsoleval", 224))
    batch = collate_samples([ds[i] for i in range(len(ds))])
    gt = batch_gt_masks(batch)
    ref = np.stack([gt_mask(s, 224) for s in split.samples])
    assert (gt == 255).any() and (gt == 1).any()
    np.testing.assert_array_equal(gt, ref)


def test_imagenetv2_hashed_file_names_through_mapping_txt(stand_ins, tmp_path):
    """wsolevaluation #42 / PR 53: metadata ids val2/<k>/<n>.jpeg, files <k>/<sha1>.jpeg on disk."""
    images = tmp_path / "images"
    shutil.copytree(stand_ins / "images" / "ILSVRC", images)
    md = tmp_path / "md"
    shutil.copytree(stand_ins / "metadata" / "ILSVRC", md)
    ids = (md / "val" / "image_ids.txt").read_text().split("\n")
    lines = []
    for k, image_id in enumerate(ids):
        old = image_id.split("/", 1)[1]                       # "0/0.jpeg"
        new = f"{old.split('/')[0]}/{k:040x}.jpeg"
        (images / image_id).rename(images / "val2" / new)
        lines.append(f"{old}, {new}")
    (md / "val" / "mapping.txt").write_text("\n".join(lines))
    split = load_split(md, "val", dataset="ilsvrc", image_root=images)
    assert [s.image_id for s in split.samples] == ids          # the ids (score-map names) stay
    assert all(split.image_path(s).is_file() and s.file.endswith(f"{k:040x}.jpeg")
               for k, s in enumerate(split.samples))
    item = WSOLDataset(split, build_transform("wsoleval", SIZE))[0]
    assert item["image"].shape == (3, SIZE, SIZE) and item["image_id"] == ids[0]
    (md / "val" / "mapping.txt").write_text("0/0.jpeg 0/x.jpeg")
    with pytest.raises(WSOLFormatError, match=r"mapping.txt:1: expected 'old_name, new_name'"):
        load_split(md, "val", dataset="ilsvrc", image_root=images)


def test_scoremaps_on_wsolevaluations_own_openimages_and_ilsvrc_metadata(stand_ins, tmp_path):
    """evaluate_wsol --scoremaps reads OpenImages metadata with its empty image_sizes.txt (masks take
    the image's size) and ILSVRC test metadata with several boxes per image."""
    from wsol.engine.scoremaps import evaluate_scoremaps, gt_mask
    from wsol.metrics import PxAPEvaluator

    rng = np.random.default_rng(0)
    for ds, folder in (("openimages", "OpenImages"), ("ilsvrc", "ILSVRC")):
        split = load_split(stand_ins, "test", dataset=ds)
        maps = tmp_path / ds
        for s in split.samples:
            (maps / s.image_id).parent.mkdir(parents=True, exist_ok=True)
            np.save(maps / f"{s.image_id}.npy", rng.random((14, 14)).astype(np.float32))
        res = evaluate_scoremaps(maps, stand_ins / "metadata" / folder / "test", cam_curve_interval=0.01)
        assert res["num_images"] == len(split)
        if ds == "openimages":
            ref = PxAPEvaluator(0.01)
            from wsol.localization import normalize_scoremap
            for s in split.samples:
                ref.accumulate(normalize_scoremap(np.load(maps / f"{s.image_id}.npy"), (224, 224))[None],
                               gt_mask(s)[None])
            assert res["PxAP"] == pytest.approx(ref.compute()["PxAP"]) and "MaxBoxAccV2" not in res
        else:
            assert set(res["MaxBoxAccV2"]) == {"30", "50", "70", "mean"} and "PxAP" not in res


def _write_split(d: Path, ids, labels, sizes, loc) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "image_ids.txt").write_text("\n".join(ids))
    (d / "class_labels.txt").write_text("\n".join(f"{i},{c}" for i, c in zip(ids, labels)))
    (d / "image_sizes.txt").write_text("\n".join(sizes))
    (d / "localization.txt").write_text("\n".join(loc))


def test_bad_metadata_is_named_by_file_and_line(tmp_path):
    md = tmp_path / "metadata" / "ILSVRC"
    _write_split(md / "test", ["a.jpg", "b.jpg"], [0, 1], [], ["a.jpg,1,1,5,5", "b.jpg,2,2,6,6"])
    with pytest.raises(WSOLFormatError, match=r"image_sizes.txt: empty, but localization.txt has boxes"):
        read_wsoleval(md, "test", require_images=False)
    o = tmp_path / "metadata" / "OpenImages"
    _write_split(o / "test", ["a.jpg"], [0], [], ["a.jpg,a_m1.png,a_ignore.png", "a.jpg,a_m2.png,other.png"])
    with pytest.raises(WSOLFormatError, match=r"localization.txt:2: a.jpg has a second ignore mask"):
        read_wsoleval(o, "test", require_images=False)
    _write_split(o / "val", ["a.jpg", "b.jpg"], [0, 1], [], ["a.jpg,a_m1.png,a_ignore.png", "b.jpg,1,1,5,5"])
    with pytest.raises(WSOLFormatError, match="mixes box lines"):
        read_wsoleval(o, "val", require_images=False)
    (o / "class_names.txt").write_text("cat\n\ndog\n")
    _write_split(o / "train", ["a.jpg", "b.jpg"], [0, 1], [], [])
    with pytest.raises(WSOLFormatError, match=r"class_names.txt:2: empty class name"):
        read_wsoleval(o, "train", require_images=False)
    (o / "class_names.txt").write_text("cat\ndog\n")
    assert read_wsoleval(o, "train", require_images=False).class_names == ["cat", "dog"]
    # a labels-only train split without localization.txt at all
    (o / "train" / "localization.txt").unlink()
    assert not read_wsoleval(o, "train", require_images=False).has_boxes


# ------------------------------------------------------------------------------ evaluation, tools

@pytest.fixture(scope="module")
def ilsvrc_run(stand_ins, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "r"
    names = load_split(stand_ins, "train", dataset="ilsvrc").class_names
    torch.manual_seed(0)
    save_checkpoint(run / "checkpoint-best", build_model("vgg_gap_tiny", 3), class_names=names, image_size=SIZE)
    return run


def test_evaluate_ilsvrc_top5_and_another_classifiers_predictions(stand_ins, ilsvrc_run, tmp_path):
    from wsol.engine.evaluate import EvalOptions, evaluate_checkpoint

    opts = EvalOptions(split="test", saliency="cam", batch_size=4, dataset="ilsvrc", num_overlays=2)
    res = evaluate_checkpoint(ilsvrc_run, stand_ins, opts, tmp_path / "a")
    assert res["dataset"] == "ilsvrc" and res["num_images"] == 9
    # 3 classes: the GT class is always among the first five, so Top-5 Loc is GT-known Loc
    assert res["top5_acc"] == 100.0 and res["top5_loc"] == res["gt_known_loc"]
    assert res["top1_loc"] <= res["top5_loc"] and res["classes_from"] == "the evaluated model"
    # another classifier: always right -> Top-1 Loc = GT-known Loc; always wrong at rank 1 -> 0
    split = load_split(stand_ins, "test", dataset="ilsvrc")
    right, wrong = tmp_path / "right.csv", tmp_path / "wrong.json"
    right.write_text("image_id,top1,top2\n" + "\n".join(f"{s.image_id},{s.label},{(s.label + 1) % 3}"
                                                         for s in split.samples))
    wrong.write_text(json.dumps({s.image_id: [(s.label + 1) % 3, s.label] for s in split.samples}))
    opts.class_predictions = str(right)
    a = evaluate_checkpoint(ilsvrc_run, stand_ins, opts, tmp_path / "b")
    assert a["top1_acc"] == 100.0 and a["top1_loc"] == a["gt_known_loc"] == res["gt_known_loc"]
    assert "another classifier" in a["classes_from"]
    opts.class_predictions = str(wrong)
    b = evaluate_checkpoint(ilsvrc_run, stand_ins, opts, tmp_path / "c")
    assert b["top1_acc"] == 0.0 and b["top1_loc"] == 0.0 and b["top5_loc"] == res["gt_known_loc"]
    wrong.write_text(json.dumps({split.samples[0].image_id: [0]}))
    from wsol.engine.predictions import ClassPredictionsError

    with pytest.raises(ClassPredictionsError, match=r"no prediction for 8 of 9 images"):
        evaluate_checkpoint(ilsvrc_run, stand_ins, opts, tmp_path / "d")


def test_evaluate_wsol_cli_image_root_and_class_predictions(stand_ins, ilsvrc_run, tmp_path, capsys):
    from wsol.cli.evaluate_wsol import main

    md = tmp_path / "md"
    shutil.copytree(stand_ins / "metadata" / "ILSVRC", md)   # metadata apart from the images
    split = load_split(stand_ins, "test", dataset="ilsvrc")
    preds = tmp_path / "p.csv"
    preds.write_text("\n".join(f"{s.image_id},{s.label}" for s in split.samples))
    common = ["--checkpoint", str(ilsvrc_run), "--data", str(md), "--dataset", "ilsvrc", "--saliency", "cam",
              "--batch-size", "4", "--num-overlays", "0"]
    assert main(common + ["--out-dir", str(tmp_path / "o")]) == 1
    assert "image root not found" in capsys.readouterr().err
    assert main(common + ["--image-root", str(stand_ins / "images" / "ILSVRC"), "--class-predictions", str(preds),
                          "--out-dir", str(tmp_path / "o")]) == 0
    res = json.loads((tmp_path / "o" / "eval-test-cam.json").read_text())
    assert res["top1_acc"] == 100.0 and res["top1_loc"] == res["gt_known_loc"] and "top5_loc" in res
    assert "top5_loc" in capsys.readouterr().out
    preds.write_text("nope,0")
    assert main(common + ["--image-root", str(stand_ins / "images" / "ILSVRC"), "--class-predictions", str(preds),
                          "--out-dir", str(tmp_path / "o2")]) == 1
    assert "no prediction for 9 of 9 images" in capsys.readouterr().err


def test_evaluate_openimages_pxap_leaves_ignore_pixels_out(stand_ins, tmp_path):
    from wsol.engine.evaluate import EvalOptions, evaluate_checkpoint
    from wsol.metrics import PxAPEvaluator

    names = load_split(stand_ins, "train", dataset="openimages").class_names
    run = tmp_path / "run"
    torch.manual_seed(1)
    save_checkpoint(run / "checkpoint-best", build_model("vgg_gap_tiny", 3), class_names=names, image_size=SIZE)
    opts = EvalOptions(split="test", saliency="cam", batch_size=4, num_overlays=2)
    res = evaluate_checkpoint(run, stand_ins / "metadata" / "OpenImages", opts, tmp_path / "out")
    assert res["dataset"] == "openimages" and "MaxBoxAccV2" not in res and 0 <= res["PxAP"] <= 100
    # the same maps scored with the ignore pixels counted as background give another PxAP
    split = load_split(stand_ins, "test", dataset="openimages")
    from wsol.attribution import saliency_maps
    from wsol.engine.sources import load_model

    model, _ = load_model(run)
    ds = WSOLDataset(split, build_transform("wsoleval", SIZE))
    batch = collate_samples([ds[i] for i in range(len(ds))])
    maps = saliency_maps(model, batch["image"], batch["label"], "cam")[0].numpy()
    with_ignore, as_background = PxAPEvaluator(0.01), PxAPEvaluator(0.01)
    with_ignore.accumulate(maps, batch_gt_masks(batch))
    as_background.accumulate(maps, batch["mask"].numpy().astype(np.uint8))
    assert with_ignore.compute()["PxAP"] == pytest.approx(res["PxAP"])
    assert as_background.compute()["PxAP"] != pytest.approx(res["PxAP"])


def test_train_wsol_on_the_stand_ins_validates_with_their_metric(tmp_path, monkeypatch):
    """No --data: the stand-in is generated into the cache; ILSVRC validates MaxBoxAccV2, OpenImages PxAP."""
    from wsol.cli.train_wsol import main

    monkeypatch.setenv("ART_WSOL_CACHE", str(tmp_path / "cache"))
    common = ["--arch", "vgg_gap_tiny", "--method", "natural", "--epochs", "1", "--image-size", "48",
              "--batch-size", "8", "--quiet", "--set", "data.synthetic.num_classes=2",
              "--set", "data.synthetic.images_per_class=8", "--set", "data.synthetic.size=48"]
    for ds, metric in (("ilsvrc", "cam_loc"), ("openimages", "cam_pxap")):
        out = tmp_path / ds
        assert main(common + ["--dataset", ds, "--out", str(out), "--set", f"val.select_metric={metric}"]) == 0
        last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
        assert f"val_{metric}" in last and "val_top1_acc" in last
    assert (tmp_path / "cache").is_dir() and any(p.name.startswith("ilsvrc-") for p in (tmp_path / "cache").iterdir())
    assert main(common + ["--dataset", "openimages", "--out", str(tmp_path / "x"), "--set",
                          "val.select_metric=cam_loc"]) != 0   # boxes metric on a mask dataset


def test_check_dataset_on_the_stand_ins(stand_ins, capsys):
    from wsol.cli.check_dataset import main

    assert main([str(stand_ins), "--dataset", "openimages"]) == 0
    out = capsys.readouterr().out
    assert "dataset openimages" in out and "OK" in out
    assert main([str(stand_ins / "metadata" / "ILSVRC"), "--no-decode"]) == 0
    assert "dataset ilsvrc" in capsys.readouterr().out
