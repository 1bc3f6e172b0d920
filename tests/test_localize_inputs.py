"""tools/localize.py on bad inputs, with a random torchvision:resnet18 as the ImageNet classifier.

The weights file is a random state dict written here; the images are small random ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from wsol.models import build_model
from wsol.cli.localize import main as localize_main  # tools/localize.py runs this main

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
