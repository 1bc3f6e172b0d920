"""Image generation (wsol/generation.py, tools/generate.py) and tools/compare_maps.py on a tiny
synthetic dataset and tiny models."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wsol.data import load_split
from wsol.data.synthetic import make_synthetic_cub
from wsol.engine import load_checkpoint, save_checkpoint
from wsol.generation import (comparison_panels, default_grain, downsample, fit_seed_distribution, generate,
                             resolve_settings, targeted_l2_pgd, upsample)
from wsol.models import build_model

ROOT = Path(__file__).resolve().parents[1]
SIZE = 48
FAST = dict(image_size=SIZE, epsilon=2.0, step_size=0.5, steps=8, progress=False)


def tool(name: str):
    spec = importlib.util.spec_from_file_location(f"tool_{name}", ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models, one thread


@pytest.fixture(scope="module")
def setup(one_thread, tmp_path_factory):
    base = tmp_path_factory.mktemp("gen")
    data = make_synthetic_cub(base / "CUB_200_2011", num_classes=3, images_per_class=6, size=64, seed=0,
                              progress=False)
    names = load_split(data, "train").class_names
    torch.manual_seed(0)
    runs = []
    for k in range(2):
        run = base / "runs" / f"r{k}"
        save_checkpoint(run / "checkpoint-best", build_model("resnet_tiny", 3), class_names=names,
                        image_size=SIZE, extra={"data": str(data)})
        runs.append(run)
    model, _ = load_checkpoint(runs[0])
    split = load_split(data, "train")
    result = generate(model, split, [0, 1, 2], 2, seed=0, **FAST)
    return base, data, runs, model, split, result


def test_defaults_follow_the_reference_recipes():
    assert resolve_settings(32) == {"recipe": "cifar", "epsilon": 30.0, "step_size": 0.5, "steps": 60, "grain": 1}
    assert resolve_settings(224) == {"recipe": "imagenet", "epsilon": 40.0, "step_size": 1.0, "steps": 60,
                                     "grain": 4}
    assert resolve_settings(64)["recipe"] == "cifar" and resolve_settings(96)["recipe"] == "imagenet"
    assert default_grain(64) == 1 and default_grain(96) == 2
    with pytest.raises(ValueError, match="--grain"):
        resolve_settings(48, grain=0)


def test_block_pooling_and_copy():
    x = torch.rand(2, 3, 7, 7)
    down = downsample(x, 3)
    assert down.shape == (2, 3, 3, 3)
    assert torch.allclose(down[:, :, 0, 0], x[:, :, :3, :3].mean((2, 3)))
    assert torch.allclose(down[:, :, 2, 2], x[:, :, 6:, 6:].mean((2, 3)))  # partial edge block
    up = upsample(down, 3, (7, 7))
    assert up.shape == x.shape and torch.equal(up[:, :, 3:6, 0:3], down[:, :, 1:2, 0:1].expand(-1, -1, 3, 3))


def test_seed_gaussian_has_the_reference_covariance():
    gen = torch.Generator().manual_seed(1)
    pooled = 0.5 + 0.05 * torch.randn(5, 3, 2, 2, generator=gen)  # far from the clamp
    dist = fit_seed_distribution(pooled, grain=2, size=(4, 4))
    flat = pooled.reshape(5, -1).double()
    centred = flat - flat.mean(0)
    reference = centred.T @ centred / 5 + 1e-4 * torch.eye(12, dtype=torch.float64)  # the notebook's formula
    assert torch.allclose(dist.covariance, reference)
    s = dist.sample(40000, torch.Generator().manual_seed(0))
    assert s.shape == (40000, 3, 4, 4) and torch.equal(s[:, :, ::2, ::2], s[:, :, 1::2, 1::2])
    pooled_s = s[:, :, ::2, ::2].reshape(40000, -1).double()
    assert torch.allclose(pooled_s.mean(0), flat.mean(0), atol=2e-3)
    assert torch.allclose(torch.cov(pooled_s.T), reference, atol=2e-4)
    with pytest.raises(ValueError, match="at least 2"):
        fit_seed_distribution(pooled[:1], grain=2, size=(4, 4))


def test_target_score_rises_and_images_stay_in_box_and_ball(setup):
    *_, result = setup
    h = result.prob_history
    assert h.shape == (9, 6)
    assert h[-1].mean() > h[0].mean() + 0.05
    for c in range(3):  # every class, not only on average
        assert h[-1, result.labels == c].mean() > h[0, result.labels == c].mean()
    assert (result.target_prob >= h[0] - 1e-6).all()  # the kept iterate is never worse than the seed
    assert result.images.shape == result.seeds.shape == (6, 3, SIZE, SIZE)
    assert result.images.min() >= 0 and result.images.max() <= 1
    assert result.seeds.min() >= 0 and result.seeds.max() <= 1
    dist = (result.images - result.seeds).flatten(1).norm(dim=1)
    assert (dist <= 2.0 + 1e-5).all() and (dist > 1.0).all()  # the projection was active
    assert result.labels.tolist() == [0, 0, 1, 1, 2, 2]


def test_same_seed_same_images_other_seed_other_images(setup):
    _, _, _, model, split, result = setup
    again = generate(model, split, [0, 1, 2], 2, seed=0, **FAST)
    assert torch.equal(again.images, result.images) and torch.equal(again.seeds, result.seeds)
    other = generate(model, split, [0, 1, 2], 2, seed=1, **FAST)
    assert not torch.equal(other.seeds, result.seeds) and not torch.equal(other.images, result.images)

    chunked = targeted_l2_pgd(model, result.seeds, result.labels, 2.0, 0.5, 8, batch_size=4, progress=False)
    assert torch.allclose(chunked[0], result.images, atol=1e-5) and torch.allclose(chunked[2], result.prob_history)


def test_generate_tool_writes_grid_and_tensors(setup, tmp_path, capsys):
    _, _, runs, *_ = setup
    out = tmp_path / "grid.png"
    rc = tool("generate")(["--checkpoint", str(runs[0]), "--classes", "0", "2", "--per-class", "3",
                           "--iterations", "3", "--epsilon", "1", "--out", str(out), "--show-seeds",
                           "--device", "cpu"])
    assert rc == 0
    assert Image.open(out).size[0] > 200
    saved = torch.load(tmp_path / "grid.pt", weights_only=True)
    assert saved["images"].shape == saved["seeds"].shape == (6, 3, SIZE, SIZE)
    assert saved["labels"].tolist() == [0, 0, 0, 2, 2, 2]
    assert saved["target_prob"].shape == (6,) and saved["prob_history"].shape == (4, 6)
    s = saved["settings"]
    assert (s["epsilon"], s["step_size"], s["steps"], s["grain"], s["seed"]) == (1.0, 0.5, 3, 1, 0)
    assert s["classes"] == [0, 2] and s["checkpoint"] == str(runs[0])
    text = capsys.readouterr().out
    assert "cifar recipe" in text and text.count("p(target)") == 2


def test_generate_tool_rejects_out_of_range_class(setup, tmp_path, capsys):
    _, _, runs, _, split, _ = setup
    rc = tool("generate")(["--checkpoint", str(runs[0]), "--classes", "0", "7", "--out", str(tmp_path / "g.png")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("generate.py: error:") and "0..2" in err and "7" in err
    assert all(name in err for name in split.class_names)
    assert not (tmp_path / "g.png").exists()


def test_compare_panels_and_tool(setup, tmp_path, capsys):
    _, data, runs, *_ = setup
    panels, titles, cols = comparison_panels(runs, data, n=2)
    assert cols == 5 and len(panels) == len(titles) == 2 * 5
    assert all(p.shape == (SIZE, SIZE, 3) and p.dtype == np.uint8 for p in panels)
    assert titles[1].startswith("r0 grad") and titles[4].startswith("r1 CAM")
    assert all(("ok" in t or "wrong" in t) for i, t in enumerate(titles) if i % cols)
    out = tmp_path / "compare.png"
    assert tool("compare_maps")(["--checkpoints", str(runs[0]), str(runs[1]), "--n", "2", "--out", str(out)]) == 0
    assert Image.open(out).size[0] > 300


def test_compare_rejects_different_class_counts(setup, tmp_path, capsys):
    _, data, runs, *_ = setup
    save_checkpoint(tmp_path / "five" / "checkpoint-best", build_model("resnet_tiny", 5), image_size=SIZE)
    rc = tool("compare_maps")(["--checkpoints", str(runs[0]), str(tmp_path / "five"), "--data", str(data),
                               "--out", str(tmp_path / "c.png")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "same number of classes" in err and "has 3" in err and "has 5" in err
