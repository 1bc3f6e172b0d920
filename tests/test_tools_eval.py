"""tools/evaluate_wsol.py (both modes) and tools/localize.py on a small synthetic dataset."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wsol.data import convert_official_to_wsoleval, load_split
from wsol.data.synthetic import make_synthetic_cub
from wsol.engine import save_checkpoint
from wsol.models import build_model

ROOT = Path(__file__).resolve().parents[1]
JSON_KEYS = {"top1_acc", "gt_known_loc", "top1_loc", "MaxBoxAcc", "MaxBoxAccV2", "best_threshold", "PxAP", "mIoU",
             "num_images"}


def tool(name: str):
    spec = importlib.util.spec_from_file_location(f"tool_{name}", ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("eval")
    data = make_synthetic_cub(base / "CUB_200_2011", num_classes=3, images_per_class=6, size=64, seed=2,
                              progress=False)
    names = load_split(data, "train").class_names
    run = base / "runs" / "r1"
    save_checkpoint(run / "checkpoint-best", build_model("vgg_gap_tiny", 3), class_names=names, image_size=64)
    return base, data, run


@pytest.mark.parametrize("saliency,protocol", [("grad", "wsolevaluation"), ("cam", "paper"),
                                               ("gradcam", "wsolevaluation")])
def test_evaluate_checkpoint_writes_json_and_figures(setup, saliency, protocol, tmp_path, capsys):
    _, data, run = setup
    rc = tool("evaluate_wsol")(["--checkpoint", str(run), "--data", str(data), "--split", "test",
                                "--saliency", saliency, "--protocol", protocol, "--batch-size", "4",
                                "--out-dir", str(tmp_path)])
    assert rc == 0
    res = json.loads((tmp_path / f"eval-test-{saliency}.json").read_text())
    assert JSON_KEYS <= set(res) and res["num_images"] == 9
    assert set(res["MaxBoxAccV2"]) == {"30", "50", "70", "mean"} and set(res["MaxBoxAcc"]) == {"50"}
    assert 0 <= res["gt_known_loc"] <= 100 and 0 <= res["PxAP"] <= 100
    assert res["options"]["protocol"] == protocol
    assert (tmp_path / f"eval-test-{saliency}-boxacc.png").stat().st_size > 5000
    assert (tmp_path / f"eval-test-{saliency}-overlays.png").stat().st_size > 5000
    assert "MaxBoxAccV2" in capsys.readouterr().out


def test_evaluate_checkpoint_rejects_wrong_class_count(setup, tmp_path, capsys):
    base, data, _ = setup
    save_checkpoint(tmp_path / "c", build_model("vgg_gap_tiny", 5), image_size=64)
    rc = tool("evaluate_wsol")(["--checkpoint", str(tmp_path / "c"), "--data", str(data)])
    assert rc == 1
    assert "has 3 classes but the checkpoint" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error of a machine without CUDA")
def test_evaluate_checkpoint_device_option(setup, tmp_path, capsys):
    _, data, run = setup
    rc = tool("evaluate_wsol")(["--checkpoint", str(run), "--data", str(data), "--device", "cuda"])
    assert rc == 1
    assert "device 'cuda' was asked for but CUDA is not available" in capsys.readouterr().err
    rc = tool("evaluate_wsol")(["--checkpoint", str(run), "--data", str(data), "--device", "tpu"])
    assert rc == 1
    assert "device must be auto, cpu, cuda or cuda:N, got 'tpu'" in capsys.readouterr().err
    rc = tool("evaluate_wsol")(["--checkpoint", str(run), "--data", str(data), "--device", "cpu",
                                "--num-overlays", "0", "--out-dir", str(tmp_path)])
    assert rc == 0
    assert json.loads((tmp_path / "eval-test-grad.json").read_text())["options"]["device"] == "cpu"


def _perfect_maps(split, folder: Path, shift: int = 0) -> None:
    for s in split.samples:
        W, H = s.size
        m = np.zeros((H, W), np.float32)
        x0, y0, x1, y1 = (int(v) for v in s.boxes[0])
        m[y0 + shift : y1, x0 + shift : x1] = 1.0
        path = folder / f"{s.image_id}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, m)


def test_evaluate_scoremaps_perfect_maps(setup, tmp_path):
    _, data, _ = setup
    convert_official_to_wsoleval(data, tmp_path / "meta")
    split = load_split(tmp_path / "meta", "test", image_root=data / "images")
    _perfect_maps(split, tmp_path / "maps")
    out = tmp_path / "res.json"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "evaluate_wsol.py"), "--scoremaps", str(tmp_path / "maps"),
                        "--metadata", str(tmp_path / "meta" / "test"), "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["MaxBoxAcc"]["50"] == 100.0 and res["MaxBoxAccV2"]["30"] == 100.0
    assert res["num_images"] == 9 and "PxAP" not in res  # no masks without the image root


def test_evaluate_scoremaps_openimages_masks_and_missing(setup, tmp_path, capsys):
    # OpenImages-style metadata written by hand: id,mask_path,ignore_path
    d = tmp_path / "meta" / "test"
    d.mkdir(parents=True)
    (tmp_path / "masks").mkdir()
    ids = ["a/img0.jpg", "a/img1.jpg"]
    for k, i in enumerate(ids):
        m = np.zeros((40, 50), np.uint8)
        m[5 + k : 20, 10:30] = 255
        Image.fromarray(m).save(tmp_path / "masks" / f"m{k}.png")
        np.save(tmp_path / f"{k}.npy", m.astype(np.float32) / 255)
    (d / "image_ids.txt").write_text("\n".join(ids))
    (d / "class_labels.txt").write_text("\n".join(f"{i},0" for i in ids))
    (d / "image_sizes.txt").write_text("\n".join(f"{i},50,40" for i in ids))
    (d / "localization.txt").write_text("\n".join(f"{i},masks/m{k}.png," for k, i in enumerate(ids)))
    maps = tmp_path / "maps"
    (maps / "a").mkdir(parents=True)
    np.save(maps / "a" / "img0.jpg.npy", np.load(tmp_path / "0.npy"))
    main = tool("evaluate_wsol")
    assert main(["--scoremaps", str(maps), "--metadata", str(d), "--mask-root", str(tmp_path)]) == 1
    assert "1 score map(s) missing, e.g. a/img1.jpg.npy" in capsys.readouterr().err
    np.save(maps / "a" / "img1.npy", np.load(tmp_path / "1.npy"))  # id without suffix also accepted
    assert main(["--scoremaps", str(maps), "--metadata", str(d), "--mask-root", str(tmp_path)]) == 0
    res = json.loads((maps / "eval.json").read_text())
    # bicubic resize of the map vs nearest resize of the mask: a few boundary pixels differ
    assert res["PxAP"] > 99.9 and res["mIoU"] > 98.5


def test_localize_images_folder_and_coco(setup, tmp_path, capsys):
    _, data, run = setup
    img = sorted((data / "images").rglob("*.jpg"))[0]
    rc = tool("localize")([str(img), str(img.parent), "--checkpoint", str(run), "--out", str(tmp_path / "o"),
                           "--coco", str(tmp_path / "coco.json"), "--saliency", "cam", "--threshold", "0.3"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "boxes [" in out and f"wrote {tmp_path / 'coco.json'}" in out
    det = json.loads((tmp_path / "o" / f"{img.stem}.json").read_text())
    assert det["threshold"] == 0.3 and det["saliency"] == "cam" and det["class_name"].startswith("00")
    assert det["mask"]["size"] == [64, 64] and isinstance(det["mask"]["counts"], str)
    assert (tmp_path / "o" / f"{img.stem}.overlay.png").is_file()
    coco = json.loads((tmp_path / "coco.json").read_text())
    n_images = len(list(img.parent.glob("*.jpg")))  # the file named twice is done once
    assert len({c["image_id"] for c in coco}) == n_images
    assert {"image_id", "category_id", "bbox", "score", "segmentation"} <= set(coco[0])
    x0, y0, x1, y1 = det["boxes"][0]
    assert coco[0]["bbox"] == [x0, y0, x1 - x0 + 1, y1 - y0 + 1]


def test_localize_uses_newest_run_or_says_none(setup, tmp_path, monkeypatch, capsys):
    base, data, _ = setup
    img = sorted((data / "images").rglob("*.jpg"))[0]
    main = tool("localize")
    monkeypatch.setenv("ART_WSOL_RUNS", str(base / "runs"))
    assert main([str(img), "--out", str(tmp_path / "o")]) == 0
    assert "using the newest run's checkpoint" in capsys.readouterr().out
    monkeypatch.setenv("ART_WSOL_RUNS", str(tmp_path / "none"))
    assert main([str(img)]) == 1
    assert "no trained run (checkpoint-best.json)" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.jpg"), "--checkpoint", str(base / "runs" / "r1")]) == 1
    assert "no such image file or folder" in capsys.readouterr().err


def test_recalibrate_bn_re_estimates_running_stats_with_the_plain_network():
    from wsol.engine.evaluate import recalibrate_bn

    torch.manual_seed(0)
    model = build_model("resnet_tiny", 3)
    batches = [torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32)]
    seen = []
    hook = model.layer1[0].bn1.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach()))
    for m in model.modules():  # garbage statistics, as a Softplus pass might leave them
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(3.0)
            m.running_var.fill_(9.0)
    assert recalibrate_bn(model, batches) > 0
    hook.remove()
    bn = model.layer1[0].bn1
    assert not model.training and not bn.training and bn.momentum == 0.1
    feats = torch.cat(seen)  # the two batches have the same size: their cumulative mean is the mean
    assert torch.allclose(bn.running_mean, feats.mean((0, 2, 3)), atol=1e-5)
    # batches' unbiased variances averaged, as BN's cumulative mode does
    var = torch.stack([f.var((0, 2, 3), unbiased=True) for f in seen]).mean(0)
    assert torch.allclose(bn.running_var, var, atol=1e-5)
    # the result does not depend on what the statistics were before
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(-1.0)
    recalibrate_bn(model, batches)
    assert all(torch.allclose(v, before[k]) for k, v in model.state_dict().items() if v.dtype.is_floating_point)
    assert recalibrate_bn(build_model("vgg_gap_tiny", 3), batches) == 0  # no BN: unchanged
    with pytest.raises(ValueError, match="no batch"):
        recalibrate_bn(model, [])


def test_evaluate_checkpoint_bn_recalibrate_option(setup, tmp_path, capsys):
    _, data, _ = setup
    model = build_model("resnet_tiny", 3)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(3.0)
    save_checkpoint(tmp_path / "bn" / "checkpoint-best", model, class_names=load_split(data, "train").class_names,
                    image_size=64)
    args = ["--checkpoint", str(tmp_path / "bn"), "--data", str(data), "--num-overlays", "0", "--batch-size", "4",
            "--device", "cpu"]
    assert tool("evaluate_wsol")([*args, "--out-dir", str(tmp_path / "plain")]) == 0
    assert tool("evaluate_wsol")([*args, "--bn-recalibrate", "2", "--out-dir", str(tmp_path / "recal")]) == 0
    plain = json.loads((tmp_path / "plain" / "eval-test-grad.json").read_text())
    recal = json.loads((tmp_path / "recal" / "eval-test-grad.json").read_text())
    assert recal["options"]["bn_recalibrate"] == 2 and plain["options"]["bn_recalibrate"] == 0
    assert recal["curve"] != plain["curve"]  # the statistics changed the maps
    assert tool("evaluate_wsol")([*args, "--bn-recalibrate", "-1"]) == 1
    assert "--bn-recalibrate must be >= 0" in capsys.readouterr().err
