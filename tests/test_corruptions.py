"""CIFAR-10-C corruptions (constants of make_cifar_c.py), offline regeneration and evaluation.

REFERENCE.md §8. The CIFAR-10 trees are tiny random pickles written here; the constants are
checked against their closed forms on flat or random images.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from wsol.data.cifar10c_regen import REGENERATED_LABEL, is_regenerated, regenerate_cifar10c
from wsol.data.corruptions import APPROXIMATIONS, CORRUPTION_FUNCTIONS, corrupt, motion_blur_kernel
from wsol.data.robustness import (
    CIFAR10C_CORRUPTIONS,
    DatasetFormatError,
    read_cifar10,
    read_cifar10c,
)
from wsol.engine.corruption_eval import cifar10c_markdown, evaluate_cifar10c

REPO = Path(__file__).resolve().parents[1]
# Corruptions whose strength (mean abs difference to the clean image) grows with severity.
MONOTONE = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "defocus_blur", "gaussian_blur",
            "motion_blur", "zoom_blur", "contrast", "brightness", "pixelate", "jpeg_compression", "fog")


def _image(seed: int = 0, size: int = 32) -> np.ndarray:
    """A smooth random colour image with some texture, uint8 (size, size, 3)."""
    rng = np.random.default_rng(seed)
    x = cv2.GaussianBlur(rng.random((size, size, 3)) * 255, (0, 0), 1.5) * 2 - 127
    return np.clip(x + rng.normal(0, 8, x.shape), 0, 255).astype(np.uint8)


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int64) - b.astype(np.int64)).mean())


def _write_cifar_test(root: Path, n: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """cifar-10-batches-py/test_batch with n random images; returns (images HWC, labels)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    images = np.stack([_image(seed + i) for i in range(n)])
    labels = rng.integers(0, 10, n)
    data = images.transpose(0, 3, 1, 2).reshape(n, 3072)
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump({b"batch_label": b"test", b"data": data, b"labels": labels.tolist()}, fh, protocol=2)
    return images, labels


# --------------------------------------------------------------------------- every corruption


def test_registry_covers_the_19_names():
    assert tuple(CORRUPTION_FUNCTIONS) == CIFAR10C_CORRUPTIONS
    assert set(APPROXIMATIONS) == {"motion_blur", "snow", "frost"}


@pytest.mark.parametrize("name", CIFAR10C_CORRUPTIONS)
def test_corruption_shape_determinism_and_change(name):
    img = _image(1)
    outs = []
    for s in range(1, 6):
        out = corrupt(img, name, s, np.random.default_rng(7))
        assert out.dtype == np.uint8 and out.shape == img.shape
        assert np.array_equal(out, corrupt(img, name, s, np.random.default_rng(7)))
        outs.append(out)
    assert _mad(outs[0], img) > 0 and _mad(outs[-1], img) > 0.5
    if name in MONOTONE:
        mads = [_mad(o, img) for o in outs]
        assert all(b >= a for a, b in zip(mads, mads[1:])), mads


@pytest.mark.parametrize("name", ["gaussian_noise", "glass_blur", "motion_blur", "snow", "frost", "fog",
                                  "spatter", "elastic_transform"])
def test_random_corruptions_depend_on_the_generator(name):
    img = _image(2)
    a = corrupt(img, name, 5, np.random.default_rng(0))
    b = corrupt(img, name, 5, np.random.default_rng(1))
    assert not np.array_equal(a, b)


def test_bad_input():
    img = _image()
    with pytest.raises(ValueError, match="valid: gaussian_noise"):
        corrupt(img, "rain", 1, np.random.default_rng(0))
    for s in (0, 6, 2.5):
        with pytest.raises(ValueError, match="severity"):
            corrupt(img, "contrast", s, np.random.default_rng(0))
    with pytest.raises(ValueError, match="uint8"):
        corrupt(img.astype(np.float32), "contrast", 1, np.random.default_rng(0))


# --------------------------------------------------------------------------- constants


def test_gaussian_noise_sigma_is_cifar_constant():
    grey = np.full((64, 64, 3), 128, np.uint8)
    for s, sigma in ((1, 0.04), (5, 0.10)):
        out = corrupt(grey, "gaussian_noise", s, np.random.default_rng(0)).astype(np.float64)
        assert out.std() == pytest.approx(sigma * 255, rel=0.03)
        assert out.mean() == pytest.approx(127.5, abs=0.5)  # truncation to uint8 shifts by -0.5


def test_shot_and_impulse_noise_constants():
    grey = np.full((64, 64, 3), 128, np.uint8)
    shot = corrupt(grey, "shot_noise", 1, np.random.default_rng(0)).astype(np.float64)
    assert shot.std() == pytest.approx(np.sqrt(128 / 255 / 500) * 255, rel=0.05)  # Poisson(x * 500) / 500
    imp = corrupt(grey, "impulse_noise", 5, np.random.default_rng(0))
    assert np.mean((imp == 0) | (imp == 255)) == pytest.approx(0.07, abs=0.01)
    assert np.mean(imp == 255) == pytest.approx(0.035, abs=0.008)


def test_contrast_scales_deviations_from_the_mean():
    img = _image(3)
    x = img / 255.0
    mean = x.mean(axis=(0, 1), keepdims=True)
    for s, c in ((1, 0.75), (5, 0.15)):
        expected = np.clip((x - mean) * c + mean, 0, 1) * 255
        out = corrupt(img, "contrast", s, np.random.default_rng(0))
        assert np.abs(out - expected).max() < 1.0


def test_jpeg_and_pixelate_match_their_codecs():
    img = _image(4)
    ok, buf = cv2.imencode(".jpg", img[..., ::-1].copy(), [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert np.array_equal(corrupt(img, "jpeg_compression", 1, None), cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
    pil = BytesIO()
    Image.fromarray(img).save(pil, "JPEG", quality=40)  # the original saves with PIL
    assert np.array_equal(corrupt(img, "jpeg_compression", 5, None), np.asarray(Image.open(pil)))
    small = Image.fromarray(img).resize((30, 30), Image.BOX).resize((32, 32), Image.BOX)  # int(32 * .95)
    assert np.array_equal(corrupt(img, "pixelate", 1, None), np.asarray(small))


def test_brightness_adds_to_hsv_value():
    grey = np.full((8, 8, 3), 100, np.uint8)
    out = corrupt(grey, "brightness", 5, None)  # value 100/255 + .3
    assert np.all(out == int((100 / 255 + 0.3) * 255))


def test_motion_blur_kernel_is_imagemagicks():
    k = motion_blur_kernel(6, 1, 0)  # 13 taps to the right of the anchor, half-Gaussian sigma 1
    w = np.exp(-np.arange(13) ** 2 / 2.0)
    assert k.shape == (27, 27) and k.sum() == pytest.approx(1, abs=1e-6)
    assert np.allclose(k[13, 13:26], w / w.sum(), atol=1e-7) and np.count_nonzero(k) == 13
    # Against a shift-and-add of edge-replicated copies (ImageMagick's offsets ceil(i*cos - .5), ...).
    img = _image(5)[..., 0].astype(np.float32)
    for angle in (30.0, -40.0, -100.0):
        k = motion_blur_kernel(9, 2.5, angle)
        got = cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REPLICATE)
        pad = np.pad(img, 19, mode="edge")
        a, ref, weights = np.deg2rad(angle), np.zeros_like(img), np.exp(-np.arange(19) ** 2 / 12.5)
        for i, wi in enumerate(weights / weights.sum()):
            ox, oy = int(np.ceil(i * np.cos(a) - 0.5)), int(np.ceil(i * np.sin(a) - 0.5))
            ref += wi * pad[19 + oy:19 + oy + 32, 19 + ox:19 + ox + 32]
        assert np.abs(got - ref).max() < 1e-3


# --------------------------------------------------------------------------- regeneration


def test_regenerate_writes_the_released_layout(tmp_path):
    images, labels = _write_cifar_test(tmp_path / "cifar")
    out = tmp_path / "c10c"
    names = ["gaussian_noise", "contrast", "frost"]
    regenerate_cifar10c(tmp_path / "cifar", out, corruptions=names, seed=3, progress=False, limit=8)
    assert np.load(out / "labels.npy").dtype == np.int64
    for name in names:
        assert np.load(out / f"{name}.npy").shape == (40, 32, 32, 3)
    for s in (1, 3, 5):
        split = read_cifar10c(out, "contrast", s)
        assert np.array_equal(split.labels, labels[:8])
        assert np.array_equal(split.images[2], corrupt(images[2], "contrast", s, None))
    record = is_regenerated(out)
    assert record["label"] == REGENERATED_LABEL and record["seed"] == 3 and record["num_images"] == 8
    assert record["corruptions"] == ["gaussian_noise", "frost", "contrast"] and record["constants"].startswith("CIFAR-10-C")
    assert set(record["approximations"]) == {"frost"} and record["source"] == str(tmp_path / "cifar")
    assert json.loads((out / "REGENERATED.json").read_text()) == record
    assert is_regenerated(tmp_path) is None


def test_regenerate_is_seeded_per_image_skips_and_overwrites(tmp_path):
    _write_cifar_test(tmp_path / "cifar")
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    regenerate_cifar10c(tmp_path / "cifar", a, ["gaussian_noise"], seed=0, progress=False, limit=6)
    regenerate_cifar10c(tmp_path / "cifar", b, ["gaussian_noise"], seed=0, progress=False, limit=3)
    regenerate_cifar10c(tmp_path / "cifar", c, ["gaussian_noise"], seed=1, progress=False, limit=3)
    for s in range(1, 6):  # the first 3 images do not depend on limit, and do depend on the seed
        assert np.array_equal(read_cifar10c(a, "gaussian_noise", s).images[:3], read_cifar10c(b, "gaussian_noise", s).images)
        assert not np.array_equal(read_cifar10c(b, "gaussian_noise", s).images, read_cifar10c(c, "gaussian_noise", s).images)
    marker = np.zeros((15, 32, 32, 3), np.uint8)
    np.save(b / "gaussian_noise.npy", marker)
    regenerate_cifar10c(tmp_path / "cifar", b, ["gaussian_noise", "fog"], seed=0, progress=False, limit=3)
    assert np.array_equal(np.load(b / "gaussian_noise.npy"), marker)  # present: skipped
    assert is_regenerated(b)["corruptions"] == ["gaussian_noise", "fog"]
    regenerate_cifar10c(tmp_path / "cifar", b, ["gaussian_noise"], seed=0, progress=False, limit=3, overwrite=True)
    assert np.array_equal(read_cifar10c(b, "gaussian_noise", 2).images, read_cifar10c(a, "gaussian_noise", 2).images[:3])
    assert not list(b.glob(".*partial"))


def test_regenerate_bad_input(tmp_path):
    _write_cifar_test(tmp_path / "cifar", n=2)
    cifar = tmp_path / "cifar"
    with pytest.raises(ValueError, match="valid: gaussian_noise"):
        regenerate_cifar10c(cifar, tmp_path / "o", ["rain"], progress=False)
    with pytest.raises(ValueError, match="severity"):
        regenerate_cifar10c(cifar, tmp_path / "o", ["fog"], severities=(0, 1, 2, 3, 4), progress=False)
    with pytest.raises(ValueError, match="5 severity blocks"):
        regenerate_cifar10c(cifar, tmp_path / "o", ["fog"], severities=(1, 2), progress=False)
    with pytest.raises(DatasetFormatError, match="test_batch"):
        regenerate_cifar10c(tmp_path / "nowhere", tmp_path / "o", ["fog"], progress=False)
    released = tmp_path / "released"
    released.mkdir()
    np.save(released / "fog.npy", np.zeros((10, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="released set"):
        regenerate_cifar10c(cifar, released, ["contrast"], progress=False)
    regenerate_cifar10c(cifar, tmp_path / "o", ["contrast"], seed=0, progress=False)
    with pytest.raises(ValueError, match="seed 0"):
        regenerate_cifar10c(cifar, tmp_path / "o", ["fog"], seed=1, progress=False)
    with pytest.raises(ValueError, match="holds 10 images"):
        regenerate_cifar10c(cifar, tmp_path / "o", ["fog"], seed=0, progress=False, limit=1)


# --------------------------------------------------------------------------- evaluation


def _tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(4, 10))


@torch.no_grad()
def _direct_accuracy(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    return 100.0 * float((model(x).argmax(1).numpy() == labels).mean())


def test_evaluate_cifar10c_report_and_markdown(tmp_path):
    _write_cifar_test(tmp_path / "cifar", n=12)
    root = tmp_path / "c10c"
    regenerate_cifar10c(tmp_path / "cifar", root, ["gaussian_noise", "fog", "contrast"], progress=False)
    model = _tiny_model().train()
    report = evaluate_cifar10c(model, root, batch_size=5, progress=False)
    assert model.training  # mode restored
    assert report["dataset"] == REGENERATED_LABEL and report["severities"] == [1, 2, 3, 4, 5]
    assert report["columns"] == ["gaussian_noise", "fog", "contrast"] and report["num_images"] == 12
    model.eval()
    for c in report["columns"]:
        splits = [read_cifar10c(root, c, s) for s in range(1, 6)]
        accs = [_direct_accuracy(model, sp.images, sp.labels) for sp in splits]
        assert [report["results"][c]["severities"][str(s)] for s in range(1, 6)] == pytest.approx(accs)
        assert report["results"][c]["mean"] == pytest.approx(np.mean(accs))
    assert report["mean"] == pytest.approx(np.mean([r["mean"] for r in report["results"].values()]))
    json.dumps(report)
    part = evaluate_cifar10c(model, root, corruptions=["fog"], severities=(2, 4), progress=False)
    assert list(part["results"]["fog"]["severities"]) == ["2", "4"]
    md = cifar10c_markdown(report, "art2020", name="natural")
    assert REGENERATED_LABEL in md.splitlines()[0]
    assert "| Model | GN | SN | IN | DB | Gl-B | MB | ZB | S | F | B | C | E | P | J | Sp-N | Mean |" in md
    row = next(line for line in md.splitlines() if line.startswith("| natural |")).split(" | ")
    assert row[1] == f"{report['results']['gaussian_noise']['mean']:.2f}" and row[2] == "–"
    assert row[9] == f"{report['results']['fog']['mean']:.2f}"
    assert sum(line.startswith("| 5 |") for line in md.splitlines()) == 1
    assert "| Fr |" in cifar10c_markdown(report, "benchmark")
    with pytest.raises(ValueError, match="columns"):
        cifar10c_markdown(report, "imagenet")


def test_evaluate_cifar10c_released_label_and_missing_file(tmp_path):
    root = tmp_path / "CIFAR-10-C"
    root.mkdir()
    rng = np.random.default_rng(0)
    np.save(root / "snow.npy", rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8))
    np.save(root / "labels.npy", rng.integers(0, 10, 10).astype(np.uint8))
    report = evaluate_cifar10c(_tiny_model(), root, progress=False, image_size=16)
    assert report["dataset"] == "CIFAR-10-C" and report["columns"] == ["snow"] and report["approximations"] == {}
    with pytest.raises(DatasetFormatError, match="fog.npy"):
        evaluate_cifar10c(_tiny_model(), root, corruptions=["snow", "fog"], progress=False)
    with pytest.raises(DatasetFormatError, match="no CIFAR-10-C"):
        evaluate_cifar10c(_tiny_model(), tmp_path / "empty", progress=False)


# --------------------------------------------------------------------------- CLI


def test_cli_missing_folder_exits_2(tmp_path):
    cmd = [sys.executable, str(REPO / "tools" / "make_cifar10c.py"), "--cifar", str(tmp_path / "nowhere"),
           "--out", str(tmp_path / "out")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "nowhere" in proc.stderr and "not found" in proc.stderr


def test_cli_main_in_process(tmp_path, capsys):
    from wsol.cli import make_cifar10c

    _write_cifar_test(tmp_path / "cifar", n=3)
    out = tmp_path / "out"
    assert make_cifar10c.main(["--cifar", str(tmp_path / "cifar"), "--out", str(out), "--corruptions", "rain"]) == 2
    assert "unknown corruption(s) rain" in capsys.readouterr().err
    argv = ["--cifar", str(tmp_path / "cifar"), "--out", str(out), "--corruptions", "snow", "brightness",
            "--limit", "2", "--no-progress"]
    assert make_cifar10c.main(argv) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and REGENERATED_LABEL in printed and "approximations: snow" in printed
    assert read_cifar10c(out, "snow", 5).images.shape == (2, 32, 32, 3)
    assert len(read_cifar10(tmp_path / "cifar", "test")) == 3
