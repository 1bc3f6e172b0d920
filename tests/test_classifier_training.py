"""tools/train_classifier.py and tools/eval_robustness.py on a tiny synthetic CIFAR-10-format set.

The data is wsol.data.synthetic_cifar's stand-in (not CIFAR-10), written by the tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from wsol.config import ConfigError, load_config
from wsol.data.robustness import ClassificationDataset, ClassificationSplit, read_cifar10
from wsol.data.synthetic_cifar import make_synthetic_cifar
from wsol.engine.classification import carve_val
from wsol.engine.robustness_eval import robustness_markdown
from wsol.engine.train import train
from wsol.engine.validate import pgd_correct
from wsol.models import build_model

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cifar(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scifar")
    make_synthetic_cifar(root, train_per_class=8, test_per_class=3, progress=False)
    return root


def tiny(cifar: Path, method: str = "natural", epochs: int = 1) -> list[str]:
    return [f"data.root={cifar}", "data.dataset=cifar10", "data.image_size=32", "data.val_per_class=2",
            "data.color_jitter=0.25", "data.rotation=2", "model.arch=wrn_10_1", f"method.name={method}",
            "val.saliencies=[]", "val.select_metric=top1_acc", "val.pgd_every=1", "val.pgd_steps=2",
            "val.pgd_max_images=6", "train.batch_size=16", f"train.epochs={epochs}", "train.device=cpu",
            "optim.lr=0.05", "optim.new_layer_lr_mult=1", "method.art.epsilon=8/255", "method.art.steps=1",
            "method.art.step_size=5/255", "method.art.topk=300", "method.art.beta=50",
            "method.art.projection=signed", "method.pgd.epsilon=8/255", "method.pgd.steps=2",
            "method.pgd.step_size=4/255"]


def run_tool(tool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "tools" / tool), *args], capture_output=True, text=True,
                          timeout=600)


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# --------------------------------------------------------------------------- data


def test_synthetic_cifar_is_cifar_format_and_deterministic(cifar, tmp_path):
    train_split, test = read_cifar10(cifar, "train"), read_cifar10(cifar, "test")
    assert train_split.images.shape == (80, 32, 32, 3) and test.images.shape == (30, 32, 32, 3)
    assert np.bincount(train_split.labels).tolist() == [8] * 10 and len(set(train_split.class_names)) == 10
    again = make_synthetic_cifar(tmp_path / "again", train_per_class=8, test_per_class=3, progress=False)
    for name in ("data_batch_1", "data_batch_5", "test_batch", "batches.meta"):
        assert (again / name).read_bytes() == (cifar / "cifar-10-batches-py" / name).read_bytes(), name
    assert make_synthetic_cifar(tmp_path / "again", train_per_class=8, test_per_class=3, progress=False) == again
    with pytest.raises(FileExistsError, match="another synthetic CIFAR set"):
        make_synthetic_cifar(tmp_path / "again", train_per_class=9, test_per_class=3, progress=False)
    # train and test images differ (their own generators)
    assert not any((test.images[0] == im).all() for im in train_split.images)


def test_carve_val_is_deterministic_disjoint_and_per_class():
    labels = np.repeat(np.arange(3), [5, 5, 2])
    split = ClassificationSplit("toy/train", np.zeros((12, 4, 4, 3), np.uint8), labels, ["a", "b", "c"])
    tr, va = carve_val(split, 3)
    tr2, va2 = carve_val(split, 3)
    assert va.image_ids == va2.image_ids and tr.image_ids == tr2.image_ids
    assert not set(tr.image_ids) & set(va.image_ids)
    assert sorted(tr.image_ids + va.image_ids) == sorted(split.image_id(i) for i in range(12))
    assert np.bincount(va.labels).tolist() == [3, 3, 1]   # class c keeps one image for train
    with pytest.raises(ConfigError, match="never the test split"):
        carve_val(split, 0)


def test_train_augmentation_jitter_and_rotation_are_seeded(cifar):
    split = read_cifar10(cifar, "train")
    plain = ClassificationDataset(split, train=True)
    jit = ClassificationDataset(split, train=True, color_jitter=0.25, rotation=2)
    a = []
    for ds in (jit, jit, plain):
        ds.set_seed(7)
        a.append(ds[3]["image"])
    assert torch.equal(a[0], a[1]) and not torch.equal(a[0], a[2])
    assert a[0].shape == (3, 32, 32) and 0 <= a[0].min() and a[0].max() <= 1


# --------------------------------------------------------------------------- training


@pytest.mark.parametrize("method", ["natural", "art", "pgd"])
def test_engine_trains_classifiers_with_pgd_check(cifar, tmp_path, method):
    report = train(load_config(None, tiny(cifar, method)), tmp_path / method)
    m = read_metrics(tmp_path / method)[-1]
    assert report["selected_by"] == "top1_acc" and "val_grad_loc" not in m
    assert m["val_num_images"] == 20 and m["val_pgd_images"] == 6 and 0 <= m["val_pgd_acc"] <= 100
    cfg = load_config(tmp_path / method / "config.yaml")
    assert cfg.data.dataset == "cifar10" and cfg.data.color_jitter == 0.25
    if method == "art":
        assert "train_attr" in m


def test_classifier_resume_matches_an_uninterrupted_run(cifar, tmp_path):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(load_config(None, tiny(cifar, "natural", epochs=2)), straight)
    train(load_config(None, tiny(cifar, "natural", epochs=1)), stopped)
    train(None, stopped, resume=True, overrides=["train.epochs=2"])
    a = load_file(str(straight / "checkpoint-last.safetensors"))
    b = load_file(str(stopped / "checkpoint-last.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert read_metrics(straight)[-1]["val_pgd_acc"] == read_metrics(stopped)[-1]["val_pgd_acc"]


def test_selection_metric_must_exist_for_the_data(cifar, tmp_path):
    with pytest.raises(ConfigError, match="needs boxes"):
        train(load_config(None, tiny(cifar) + ["val.select_metric=grad_loc"]), tmp_path / "a")
    with pytest.raises(ConfigError, match="pgd_every"):
        train(load_config(None, tiny(cifar) + ["val.select_metric=pgd_acc", "val.pgd_every=0"]), tmp_path / "b")
    with pytest.raises(ConfigError, match="needs --data"):
        train(load_config(None, [a for a in tiny(cifar) if not a.startswith("data.root")]), tmp_path / "c")


def test_pgd_correct_without_budget_is_natural_correctness():
    torch.manual_seed(0)
    model = build_model("wrn_10_1", 10).eval()
    x, y = torch.rand(6, 3, 32, 32), torch.randint(0, 10, (6,))
    with torch.no_grad():
        natural = model(x).argmax(1) == y
    assert torch.equal(pgd_correct(model, x, y, 0.0, 3, 1 / 255), natural)


def test_presets_load_for_every_dataset_and_method():
    for folder in ("cifar10", "svhn", "gtsrb", "flowers17"):
        for path in sorted((REPO / "configs" / folder).glob("*.yaml")):
            cfg = load_config(path)
            assert cfg.data.dataset == folder and cfg.method.name == path.stem, path
            assert cfg.val.saliencies == [] and cfg.val.select_metric == "top1_acc", path
    art = load_config(REPO / "configs" / "cifar10" / "art.yaml")
    a = art.method.art
    assert (a.epsilon, a.steps, a.step_size, a.topk, a.beta, a.lam, a.projection) == \
        (8 / 255, 3, 5 / 255, 1000, 50.0, 0.5, "signed")
    assert art.optim.lr_milestones == [50, 80] and art.train.batch_size == 234 and art.optim.weight_decay == 2e-4
    assert art.model.arch == "wrn_28_10" and art.val.pgd_every == 10 and art.val.pgd_steps == 40
    pgd = load_config(REPO / "configs" / "cifar10" / "pgd.yaml").method.pgd
    assert (pgd.epsilon, pgd.steps, pgd.step_size) == (8 / 255, 10, 2 / 255)
    ig = load_config(REPO / "configs" / "gtsrb" / "ig_norm.yaml").method.ig_norm
    assert (ig.lam, ig.path_steps, ig.approx, ig.attack_steps) == (1.0, 50, 10, 7)
    assert load_config(REPO / "configs" / "flowers17" / "ig_sum_norm.yaml").method.ig_sum_norm.lam == 0.1


# --------------------------------------------------------------------------- the tools


def test_cli_train_then_eval_robustness(cifar, tmp_path):
    run = tmp_path / "run"
    sets = [a for o in tiny(cifar, "art") if not o.startswith(("data.root", "data.dataset", "model.arch"))
            for a in ("--set", o)]
    r = run_tool("train_classifier.py", "--dataset", "cifar10", "--method", "art", "--arch", "wrn_10_1",
                 "--data", str(cifar), "--out", str(run), "--quiet", *sets)
    assert r.returncode == 0, r.stderr
    assert "val pgd_acc" in r.stdout
    assert load_config(run / "config.yaml").method.art.projection == "signed"
    out = tmp_path / "eval"
    r = run_tool("eval_robustness.py", "--checkpoint", str(run), "--preset", "art2020", "--preset-set",
                 "iterations=2", "--attack-images", "3", "--pgd-steps", "2", "--max-images", "20",
                 "--attack-precision", "bf16", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "robustness-cifar10-art2020.json").read_text())
    assert rep["preset"] == "art2020" and rep["preset_settings"]["iterations"] == 2
    assert rep["num_images"] == 20 and rep["pgd"]["steps"] == 2 and rep["pgd"]["num_images"] == 20
    assert set(rep["attribution"]) == {"attack", "random"}
    assert rep["attribution"]["random"]["kind"] == "random"
    assert rep["attribution"]["attack"]["max_rows"] == 256   # --max-rows auto, CPU: 16 MiB / (16 ch x 32 x 32 x 4 B)
    md = (out / "robustness-cifar10-art2020.md").read_text()
    assert "| Dataset | Approach | IN | K | Natural | PGD-2 |" in md and "ART (paper) | 92.90" in md
    assert "Preset `art2020`" in md
    assert rep["attack_precision"] == rep["attribution"]["attack"]["attack_precision"] == "bf16"
    assert "bfloat16 autocast" in md


def test_cli_bad_input(cifar, tmp_path):
    r = run_tool("train_classifier.py", "--dataset", "mnist2", "--data", str(cifar))
    assert r.returncode == 2 and "--dataset 'mnist2' is unknown" in r.stderr and "cifar10" in r.stderr
    r = run_tool("train_classifier.py", "--dataset", "cifar10", "--method", "natural")
    assert r.returncode == 2 and "needs --data" in r.stderr
    r = run_tool("train_classifier.py", "--dataset", "cifar10", "--data", str(tmp_path / "nowhere"),
                 "--arch", "wrn_10_1", "--out", str(tmp_path / "r"))
    assert r.returncode == 1 and "missing CIFAR-10 batch file" in r.stderr
    # a checkpoint with another class count than the data
    model = build_model("wrn_10_1", 7)
    from wsol.engine.checkpoint import save_checkpoint
    save_checkpoint(tmp_path / "ck" / "checkpoint-best", model, class_names=[str(i) for i in range(7)], image_size=32)
    r = run_tool("eval_robustness.py", "--checkpoint", str(tmp_path / "ck"), "--dataset", "cifar10",
                 "--data", str(cifar))
    assert r.returncode == 2 and "trained for 7" in r.stderr
    r = run_tool("eval_robustness.py", "--checkpoint", str(tmp_path / "ck"), "--max-rows", "0")
    assert r.returncode == 2 and "--max-rows" in r.stderr and "expected a positive number of rows" in r.stderr
    r = run_tool("eval_robustness.py", "--checkpoint", str(tmp_path / "ck"), "--attack-precision", "fp16")
    assert r.returncode == 2 and "--attack-precision" in r.stderr and "'fp32', 'bf16'" in r.stderr


def test_markdown_row_and_random_baseline():
    rep = {"preset": "art2020", "preset_settings": {"epsilon": 8 / 255, "step_size": 1 / 255, "iterations": 50,
                                                    "attack_k": 100, "metric_k": 100, "failure_policy": "skip"},
           "split": "cifar10/test", "num_images": 100, "natural_accuracy": 91.5,
           "pgd": {"steps": 40, "epsilon": 8 / 255, "step_size": 2 / 255, "random_start": True,
                   "accuracy": 40.25, "num_images": 100},
           "attribution": {"attack": {"IN": 80.0, "K": 70.5, "kind": "topk", "num_images": 9},
                           "random": {"IN": 95.0, "K": 93.25, "kind": "random"}}}
    md = robustness_markdown(rep, "ART (ours)", "cifar10")
    assert "| cifar10 | ART (ours) | 80.00 | 70.50 | 91.50 | 40.25 |" in md
    assert "| cifar10 | ART (ours), random noise at the same ε | 95.00 | 93.25 | | |" in md
    assert "PGD-10 (paper) | 69.00 | 72.27 | 87.32 | 44.07" in md
    assert "PGD-10 (paper)" not in robustness_markdown(rep, "x", "cifar10", paper=False)
    assert "attack in float32" in md     # no attack_precision recorded: a float32 run
