"""segmentation/: pseudo masks, mask metrics, tools/segment.py (both modes) and the second stage."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torchvision
from pycocotools import mask as mask_utils
from safetensors.torch import save_file

from segmentation.models import build_segmenter, load_segmenter, save_segmenter
from segmentation.pseudo import PseudoMaskOptions, grabcut_refine, otsu_threshold, pseudo_mask, smooth
from wsol.data import load_split
from wsol.data.synthetic import make_synthetic_cub
from wsol.engine import CheckpointError, load_checkpoint, save_checkpoint
from wsol.metrics import MaskIoUEvaluator, mask_iou
from wsol.models import build_model

ROOT = Path(__file__).resolve().parents[1]


def tool(name: str):
    spec = importlib.util.spec_from_file_location(f"tool_{name}", ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def _disc(size=64, r=16, centre=(32, 32)) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (yy - centre[1]) ** 2 + (xx - centre[0]) ** 2 <= r * r


# ---------------------------------------------------------------- metrics and pseudo masks

def test_mask_iou_evaluator_pools_pixels_and_skips_ignore():
    gt = np.array([[1, 1, 0, 0], [1, 1, 0, 255]], np.uint8)
    pred = np.array([[1, 0, 0, 0], [1, 1, 1, 1]], bool)
    ev = MaskIoUEvaluator()
    ev.accumulate(pred, gt)
    r = ev.compute()
    # kept pixels: 7; fg: tp 3, fn 1, fp 1 -> 3/5; bg: tp 2, fn 1 (gt 0 pred 1), fp 1 -> 2/4
    assert r["fg_IoU"] == pytest.approx(60.0) and r["bg_IoU"] == pytest.approx(50.0)
    assert r["mIoU"] == pytest.approx(55.0) and r["pixel_acc"] == pytest.approx(100 * 5 / 7)
    assert r["image_fg_IoU"] == pytest.approx(100 * mask_iou(pred, gt))
    ev.accumulate(np.zeros((1, 2, 4), bool), np.zeros((1, 2, 4), np.uint8))   # an empty image: both empty
    assert ev.compute()["num_images"] == 2 and ev.compute()["image_fg_IoU"] == pytest.approx((60 + 100) / 2)
    with pytest.raises(ValueError, match="differ in shape"):
        ev.accumulate(pred, gt[:, :3])


def test_thresholds_fixed_otsu_and_largest_component():
    s = np.zeros((20, 20))
    s[2:6, 2:6] = 0.9            # small blob
    s[10:18, 10:18] = 0.8        # large blob
    t = otsu_threshold(s)
    assert 0 < t < 0.8
    mask, used = pseudo_mask(s, PseudoMaskOptions(threshold="otsu"))
    assert used == t and mask.sum() == 16 + 64
    mask, _ = pseudo_mask(s, PseudoMaskOptions(threshold="otsu", largest=True))
    assert mask.sum() == 64 and mask[12, 12]
    mask, used = pseudo_mask(s, PseudoMaskOptions(tau=0.85))
    assert used == 0.85 and mask.sum() == 16
    assert pseudo_mask(s, PseudoMaskOptions(), tau=0.95)[0].sum() == 0       # tau from val overrides
    empty, used = pseudo_mask(np.zeros((8, 8)), PseudoMaskOptions(threshold="otsu"))
    assert used is None and not empty.any()
    blurred = smooth(s, 2.0)
    assert blurred.min() == 0 and blurred.max() == pytest.approx(1) and smooth(s, 0) is not None


def test_grabcut_pulls_a_loose_heatmap_onto_the_object():
    rng = np.random.default_rng(0)
    obj = _disc()
    image = (rng.normal(0, 8, (64, 64, 3)) + np.where(obj[..., None], (200, 60, 40), (40, 120, 200))).clip(0, 255)
    image = image.astype(np.uint8)
    # a blurry heatmap that peaks inside the object but spills over its edges, as a classifier's map does
    heat = cv2.GaussianBlur(_disc(r=16, centre=(34, 31)).astype(np.float64), (0, 0), 6)
    heat = (heat - heat.min()) / (heat.max() - heat.min())
    loose = heat >= 0.2
    refined = grabcut_refine(image, heat, 0.2)
    gt = obj.astype(np.uint8)
    assert mask_iou(loose, gt) < 0.7 and mask_iou(refined, gt) > 0.95
    mask, _ = pseudo_mask(heat, PseudoMaskOptions(refine="grabcut"), image)
    assert np.array_equal(mask, refined)
    assert not grabcut_refine(image, np.zeros((64, 64)), 0.2).any()          # nothing to seed: stays empty
    with pytest.raises(ValueError, match="needs the image"):
        pseudo_mask(heat, PseudoMaskOptions(refine="grabcut"))
    with pytest.raises(ValueError, match="uint8"):
        grabcut_refine(image[:32], heat, 0.2)


@pytest.mark.parametrize("kwargs,match", [({"threshold": "mean"}, "threshold mode"),
                                          ({"refine": "crf"}, "refine must be"),
                                          ({"tau": 1.5}, "tau in"), ({"blur_sigma": -1}, "blur_sigma"),
                                          ({"fg_sure": 0.1, "bg_sure": 0.5}, "bg_sure")])
def test_pseudo_mask_options_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PseudoMaskOptions(**kwargs).check()


# ---------------------------------------------------------------- the tools

@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("seg")
    data = make_synthetic_cub(base / "CUB_200_2011", num_classes=3, images_per_class=6, size=64, seed=3,
                              progress=False)
    names = load_split(data, "train").class_names
    run = base / "runs" / "cls"
    torch.manual_seed(0)
    save_checkpoint(run / "checkpoint-last", build_model("vgg_gap_tiny", 3), class_names=names, image_size=48,
                    config={"data": {"val_per_class": 1}}, extra={"data": str(data)})
    return base, data, run


@pytest.mark.parametrize("extra", [[], ["--threshold", "val", "--largest"],
                                   ["--saliency", "cam", "--threshold", "otsu", "--refine", "grabcut", "--blur", "2"]])
def test_segment_split_mode_writes_report_and_overlays(setup, tmp_path, capsys, extra):
    base, data, run = setup
    assert tool("segment")(["--checkpoint", str(run), "--data", str(data), "--split", "test", "--out",
                            str(tmp_path), "--num-overlays", "2", *extra]) == 0
    saliency = "cam" if "cam" in extra else "grad"
    report = json.loads((tmp_path / f"segment-test-{saliency}.json").read_text())
    assert report["num_images"] == 9 and (tmp_path / f"segment-test-{saliency}-overlays.png").is_file()
    for key in ("PxAP", "best_mask_IoU", "best_threshold", "pIoU"):
        assert 0 <= report["scoremap"][key] <= 100
    m = report["pseudo_masks"]
    assert m["mIoU"] == pytest.approx((m["fg_IoU"] + m["bg_IoU"]) / 2)
    if "val" in extra:
        t = report["threshold"]
        assert t["mode"] == "val" and t["val_images"] == 3 and 0 <= t["tau"] < 1   # 1 per class carved from train
    out = capsys.readouterr().out
    assert "pseudo_mIoU" in out and "report:" in out


def test_segment_split_mode_bad_input(setup, tmp_path, capsys):
    base, data, run = setup
    assert tool("segment")(["--data", str(data)]) == 2
    assert "--checkpoint" in capsys.readouterr().err
    other = make_synthetic_cub(tmp_path / "two", num_classes=2, images_per_class=4, size=48, seed=1, progress=False)
    assert tool("segment")(["--checkpoint", str(run), "--data", str(other), "--out", str(tmp_path)]) == 2
    assert "has 2 classes but the model was trained for 3" in capsys.readouterr().err
    assert tool("segment")(["--checkpoint", str(run), "--tau", "2", "--out", str(tmp_path)]) == 2
    assert "tau in [0, 1]" in capsys.readouterr().err


def test_segment_image_mode_writes_mask_png_and_rle(setup, tmp_path, capsys):
    base, data, run = setup
    images = sorted((data / "images").rglob("*.jpg"))[:2]
    assert tool("segment")([*map(str, images), "--checkpoint", str(run), "--out", str(tmp_path),
                            "--refine", "grabcut"]) == 0
    for img in images:
        mask = cv2.imread(str(tmp_path / f"{img.stem}.mask.png"), cv2.IMREAD_GRAYSCALE)
        rec = json.loads((tmp_path / f"{img.stem}.rle.json").read_text())
        assert mask.shape == (64, 64) and set(np.unique(mask)) <= {0, 255}
        decoded = mask_utils.decode({**rec["segmentation"], "counts": rec["segmentation"]["counts"].encode()})
        assert np.array_equal(decoded.astype(bool), mask > 0) and rec["area"] == int((mask > 0).sum())
        assert rec["class_name"] and 0 <= rec["score"] <= 1 and (tmp_path / f"{img.stem}.overlay.png").is_file()
    assert str(tmp_path / f"{images[0].stem}.mask.png") in capsys.readouterr().out


def test_second_stage_trains_scores_and_segments_images(setup, tmp_path, capsys):
    base, data, run = setup
    seg = tmp_path / "seg"
    assert tool("train_segmenter")(["--checkpoint", str(run), "--out", str(seg), "--epochs", "2",
                                    "--batch-size", "4", "--blur", "2"]) == 0
    report = json.loads((seg / "report.json").read_text())
    assert report["test"]["num_images"] == 9 and report["pseudo_train"]["num_masks"] == 6   # 9 train - 3 val
    assert 0 <= report["test"]["mIoU"] <= 100 and "vs_gt_masks" in report["pseudo_train"]
    assert len((seg / "metrics.jsonl").read_text().splitlines()) == 2
    assert len(list((seg / "pseudo_masks").rglob("*.png"))) == 6 and (seg / "test-overlays.png").is_file()
    model, meta = load_segmenter(seg)
    assert meta["kind"] == "segmenter" and meta["build_args"]["backbone"] == "vgg_gap_tiny"
    assert model(torch.rand(1, 3, 48, 48)).shape == (1, 2, 48, 48)
    with pytest.raises(CheckpointError, match="a segmenter checkpoint, expected a classifier"):
        load_checkpoint(seg)
    with pytest.raises(CheckpointError, match="a classifier checkpoint, expected a segmenter"):
        load_segmenter(run)
    capsys.readouterr()
    image = sorted((data / "images").rglob("*.jpg"))[0]
    assert tool("segment")([str(image), "--segmenter", str(seg), "--out", str(tmp_path / "img")]) == 0
    assert cv2.imread(str(tmp_path / "img" / f"{image.stem}.mask.png"), cv2.IMREAD_GRAYSCALE).shape == (64, 64)


def test_segmenter_trunk_starts_from_the_classifier(setup):
    base, data, run = setup
    classifier, _ = load_checkpoint(run)
    seg = build_segmenter("deeplabv3_wsol", 2, backbone="vgg_gap_tiny", init=run)
    assert torch.equal(seg.net.backbone.trunk.body.conv1_1.weight, classifier.body.conv1_1.weight)
    with pytest.raises(ValueError, match="is a vgg_gap_tiny checkpoint"):
        build_segmenter("deeplabv3_wsol", 2, backbone="resnet_tiny", init=run)
    with pytest.raises(ValueError, match="unknown segmenter"):
        build_segmenter("unet", 2)


def test_torchvision_segmenters_build_offline_and_take_backbone_files(tmp_path):
    seg = build_segmenter("deeplabv3_mobilenet_v3_large", 2).eval()
    with torch.no_grad():
        assert seg(torch.rand(1, 3, 64, 64)).shape == (1, 2, 64, 64)
    source = torchvision.models.resnet50(weights=None).state_dict()
    path = tmp_path / "r50.safetensors"
    save_file(source, str(path))
    fcn = build_segmenter("fcn_resnet50", 2, backbone_weights=path)
    assert torch.equal(fcn.net.backbone.layer3[0].conv1.weight, source["layer3.0.conv1.weight"])
    with pytest.raises(ValueError, match="backbone_weights are supported"):
        build_segmenter("deeplabv3_mobilenet_v3_large", 2, backbone_weights=path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without CUDA")
def test_segmentation_tools_device_option(setup, tmp_path, capsys):
    base, data, run = setup
    image = str(sorted((data / "images").rglob("*.jpg"))[0])
    for cmd in (["train_segmenter", "--checkpoint", str(run), "--out", str(tmp_path / "seg"), "--device", "cuda"],
                ["segment", "--checkpoint", str(run), "--out", str(tmp_path / "split"), "--device", "cuda"],
                ["segment", image, "--checkpoint", str(run), "--out", str(tmp_path / "img"), "--device", "cuda:1"]):
        assert tool(cmd[0])(cmd[1:]) == 2
        err = capsys.readouterr().err
        assert "was asked for but CUDA is not available" in err and "Traceback" not in err
    assert not (tmp_path / "seg").exists()  # refused before anything was written
    assert tool("segment")([image, "--checkpoint", str(run), "--out", str(tmp_path / "img"), "--device", "tpu"]) == 2
    assert "device must be auto, cpu, cuda or cuda:N, got 'tpu'" in capsys.readouterr().err
    assert tool("segment")([image, "--checkpoint", str(run), "--out", str(tmp_path / "img"), "--device", "cpu"]) == 0
    assert (tmp_path / "img" / f"{Path(image).stem}.mask.png").is_file()


@pytest.mark.parametrize("kind", ["acol", "spg"])
def test_segmenter_from_an_acol_or_spg_checkpoint_saves_and_rebuilds(tmp_path, kind):
    """A method's own heads (ACoL, SPG) on the trunk: the segmenter starts from the checkpoint's
    trunk (its features, not the heads) and a saved segmenter rebuilds the same trunk."""
    from wsol.engine import save_checkpoint
    from wsol.models import build_model

    torch.manual_seed(0)
    classifier = build_model("resnet_tiny", 3, architecture_type=kind)
    save_checkpoint(tmp_path / "clf.safetensors", classifier, image_size=48)
    seg = build_segmenter("deeplabv3_wsol", 2, backbone="resnet_tiny", init=tmp_path / "clf.safetensors")
    assert seg.build_args["trunk_options"]["architecture_type"] == kind
    assert torch.equal(seg.net.backbone.trunk.layer1[0].conv1.weight, classifier.layer1[0].conv1.weight)
    seg.eval()
    x = torch.rand(2, 3, 48, 48)
    save_segmenter(tmp_path / "seg.safetensors", seg, image_size=48)
    again, _ = load_segmenter(tmp_path / "seg.safetensors")
    with torch.no_grad():
        assert torch.equal(again(x), seg(x)) and seg(x).shape == (2, 2, 48, 48)
