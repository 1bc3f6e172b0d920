"""tools/localize.py on bad inputs, and --model/--weights in segment.py and evaluate_wsol.py, with a
random torchvision:resnet18 as the ImageNet classifier.

The weights file is a random state dict written here; the images are small random ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from wsol.cli.localize import main as localize_main  # tools/localize.py runs this main
from wsol.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")


def write_image(path: Path, seed: int, size=(40, 32)) -> Path:
    W, H = size
    img = np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), img)
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("localize_inputs")
    torch.manual_seed(0)
    weights = base / "resnet18.pth"
    torch.save(build_model("torchvision:resnet18", 1000).net.state_dict(), weights)
    good = base / "good"
    good.mkdir()
    write_image(good / "a.png", 1)
    write_image(good / "b.jpg", 2)
    return base, weights, good


@pytest.fixture(scope="module")
def main():
    return localize_main


def model_args(weights: Path) -> list[str]:
    # a small input keeps each run fast
    return ["--model", "torchvision:resnet18", "--weights", str(weights), "--image-size", "64"]


@pytest.mark.parametrize("size", ["0", "-3"])
def test_image_size_must_be_positive(setup, main, tmp_path, capsys, size):
    _, weights, good = setup
    argv = [str(good), "--model", "torchvision:resnet18", "--weights", str(weights), "--image-size", size,
            "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "positive" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_out_that_is_a_file(setup, main, tmp_path, capsys):
    _, weights, good = setup
    out = tmp_path / "out.txt"
    out.write_text("keep me")
    assert main([str(good), *model_args(weights), "--out", str(out)]) == 1
    assert "is a file" in capsys.readouterr().err
    assert out.read_text() == "keep me"


def test_coco_into_a_missing_folder_stops_before_any_output(setup, main, tmp_path, capsys):
    _, weights, good = setup
    with pytest.raises(SystemExit) as info:
        main([str(good), *model_args(weights), "--out", str(tmp_path / "o"),
              "--coco", str(tmp_path / "missing" / "coco.json")])
    assert info.value.code == 2
    assert "--coco" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "missing").exists()


def test_same_stem_two_suffixes_get_two_outputs(setup, main, tmp_path, capsys):
    _, weights, _ = setup
    src = tmp_path / "src"
    src.mkdir()
    write_image(src / "img.jpg", 3)
    write_image(src / "img.png", 4, size=(36, 30))
    out = tmp_path / "o"
    assert main([str(src), *model_args(weights), "--out", str(out)]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["img.jpg.json", "img.jpg.overlay.png",
                                                      "img.png.json", "img.png.overlay.png"]
    jpg, png = (json.loads((out / f"img.{s}.json").read_text()) for s in ("jpg", "png"))
    assert Path(jpg["image"]).name == "img.jpg" and (jpg["width"], jpg["height"]) == (40, 32)
    assert Path(png["image"]).name == "img.png" and (png["width"], png["height"]) == (36, 30)
    assert cv2.imread(str(out / "img.png.overlay.png")).shape == (30, 36, 3)


def test_unreadable_image_is_skipped_the_others_done(setup, main, tmp_path, capsys):
    _, weights, _ = setup
    src = tmp_path / "src"
    src.mkdir()
    write_image(src / "a.png", 5)
    write_image(src / "c.jpg", 6)
    (src / "bad.jpg").write_bytes(b"\x00garbage, not a JPEG\xff" * 10)
    out, coco = tmp_path / "o", tmp_path / "coco.json"
    assert main([str(src), *model_args(weights), "--out", str(out), "--coco", str(coco)]) == 1
    captured = capsys.readouterr()
    assert "bad.jpg" in captured.err and "1 image(s) could not be read" in captured.err
    assert sorted(p.name for p in out.glob("*.json")) == ["a.json", "c.json"]
    assert not list(out.glob("bad*"))
    entries = json.loads(coco.read_text())
    assert sorted((e["image_id"], Path(e["file_name"]).name) for e in entries) == [(1, "a.png"), (2, "c.jpg")]


def test_checkpoint_given_a_plain_weights_file(setup, main, tmp_path, capsys):
    _, weights, good = setup
    plain = tmp_path / "some.pth"
    plain.write_bytes(weights.read_bytes())
    assert main([str(good), "--checkpoint", str(plain), "--out", str(tmp_path / "o")]) == 1
    assert "--weights" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_second_run_needs_overwrite(setup, main, tmp_path, capsys):
    _, weights, good = setup
    out = tmp_path / "o"
    argv = [str(good), *model_args(weights), "--out", str(out)]
    assert main(argv) == 0
    first = (out / "a.json").read_text()
    capsys.readouterr()
    assert main(argv) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "a.json").read_text() == first
    (out / "a.json").write_text("stale")
    assert main([*argv, "--overwrite"]) == 0
    assert json.loads((out / "a.json").read_text())["image"].endswith("a.png")


def test_weights_without_model(setup, main, tmp_path, capsys):
    _, weights, good = setup
    with pytest.raises(SystemExit) as info:
        main([str(good), "--weights", str(weights), "--out", str(tmp_path / "o")])
    assert info.value.code == 2
    assert "--weights needs --model" in capsys.readouterr().err


def test_model_without_weights(setup, main, tmp_path, capsys):
    _, _, good = setup
    assert main([str(good), "--model", "torchvision:resnet18", "--out", str(tmp_path / "o")]) == 1
    assert "needs --weights" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_segment_image_mode_takes_an_imagenet_classifier(setup, tmp_path, capsys):
    from segmentation.cli.segment import main as segment_main

    _, weights, good = setup
    out = tmp_path / "seg"
    rc = segment_main([str(good / "a.png"), "--model", "torchvision:resnet18", "--weights", str(weights),
                       "--saliency", "gradcam", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert (out / "a.mask.png").is_file() and (out / "a.rle.json").is_file()
    mask = cv2.imread(str(out / "a.mask.png"), cv2.IMREAD_GRAYSCALE)
    assert mask.shape == (32, 40)
    with pytest.raises(SystemExit) as info:        # the two go together
        segment_main([str(good / "a.png"), "--model", "torchvision:resnet18", "--out", str(out)])
    assert info.value.code == 2 and "--model and --weights go together" in capsys.readouterr().err


def test_evaluate_wsol_model_needs_out_dir_and_imagenet_classes(setup, tmp_path, capsys):
    from wsol.cli.evaluate_wsol import main as evaluate_main
    from wsol.data.synthetic import make_synthetic_cub

    _, weights, _ = setup
    args = ["--model", "torchvision:resnet18", "--weights", str(weights), "--data", str(tmp_path)]
    with pytest.raises(SystemExit) as info:
        evaluate_main(args)
    assert info.value.code == 2 and "--model needs --out-dir" in capsys.readouterr().err
    root = make_synthetic_cub(tmp_path / "cub", num_classes=2, images_per_class=4, size=48, seed=0)
    args = ["--model", "torchvision:resnet18", "--weights", str(weights), "--data", str(root),
            "--out-dir", str(tmp_path / "eval"), "--image-size", "48"]
    assert evaluate_main(args) == 1
    err = capsys.readouterr().err
    assert "has 2 classes but the model torchvision:resnet18" in err and "ImageNet's classes" in err


def test_evaluation_runs_a_classifier_as_it_is_end_to_end(tmp_path):
    """The --model path of evaluate_wsol (ClassifierSpec) through the whole evaluation, on a 2-class
    synthetic split with a 2-class torchvision:resnet18 (ImageNet's 1000 classes need ImageNet data)."""
    from wsol.data.synthetic import make_synthetic_cub
    from wsol.engine.evaluate import EvalOptions, evaluate_checkpoint
    from wsol.engine.sources import ClassifierSpec

    torch.manual_seed(0)
    weights = tmp_path / "r18-2.pth"
    torch.save(build_model("torchvision:resnet18", 2).net.state_dict(), weights)
    root = make_synthetic_cub(tmp_path / "cub", num_classes=2, images_per_class=4, size=48, seed=0, progress=False)
    spec = ClassifierSpec("torchvision:resnet18", weights, num_classes=2)
    res = evaluate_checkpoint(spec, root, EvalOptions(saliency="gradcam", image_size=48, num_overlays=2,
                                                     device="cpu"), out_dir=tmp_path / "eval")
    assert res["num_images"] == 4 and 0 <= res["MaxBoxAccV2"]["mean"] <= 100
    assert res["checkpoint"] == str(spec) and (tmp_path / "eval" / "eval-test-gradcam.json").is_file()
    with pytest.raises(ValueError, match="give an output folder"):
        evaluate_checkpoint(spec, root, EvalOptions(saliency="gradcam", image_size=48))
