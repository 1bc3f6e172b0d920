"""The training loop and tools/train_wsol.py on a tiny synthetic CUB: every method, resume, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from wsol.config import ConfigError, load_config
from wsol.data.synthetic import make_synthetic_cub
from wsol.engine import load_checkpoint
from wsol.engine.train import TrainingError, build_optimizer, train
from wsol.methods import StepOutput, TrainingMethod, list_methods, method_class, register_method
from wsol.models import build_model

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "train_wsol.py"


@pytest.fixture(scope="module")
def cub(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train") / "CUB"
    make_synthetic_cub(root, num_classes=3, images_per_class=12, size=40, seed=0, progress=False)
    return root


def tiny_overrides(cub: Path, method: str = "natural", epochs: int = 2) -> list[str]:
    return [f"data.root={cub}", "data.image_size=32", "data.resize_size=36", "data.val_per_class=1",
            "model.arch=resnet_tiny", f"method.name={method}", f"train.epochs={epochs}", "train.batch_size=5",
            "optim.lr=0.01", "optim.new_layer_lr_mult=1", "optim.lr_milestones=[2]",
            "method.art.topk_fraction=0.3", "method.art.steps=1", "method.pgd.steps=2",
            "method.ig_norm.path_steps=4", "method.ig_norm.approx=2", "method.ig_norm.attack_steps=1",
            "method.ig_sum_norm.path_steps=4", "method.ig_sum_norm.approx=2", "method.ig_sum_norm.attack_steps=1",
            "val.saliencies=[grad,cam]", "val.select_metric=grad_loc", "val.cam_curve_interval=0.05"]


def read_metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("method", [m for m in list_methods() if method_class(m).__module__.startswith("wsol.")])
def test_every_method_trains_and_writes_a_run(cub, tmp_path, method):
    run = tmp_path / "run"
    report = train(load_config(None, tiny_overrides(cub, method)), run)
    assert report["epochs"] == 2 and report["method"] == method
    names = {p.name for p in run.iterdir()}
    assert {"config.yaml", "checkpoint-last.json", "checkpoint-last.safetensors", "checkpoint-best.json",
            "metrics.jsonl", "report.json", "train-state-0002.pt"} <= names
    assert load_config(run / "config.yaml").method.name == method
    lines = read_metrics(run)
    assert [m["epoch"] for m in lines] == [1, 2]
    for key in ("train_loss", "train_top1_acc", "images_per_s", "val_top1_acc", "val_grad_loc", "val_cam_loc"):
        assert isinstance(lines[-1][key], float), key
    model, meta = load_checkpoint(run)
    assert meta["epoch"] >= 1 and meta["method"] == method and model.num_classes == 3
    if method == "adl":
        assert any(type(m).__name__ == "ADL" for m in model.modules())
    if method == "art":
        assert "train_attr" in lines[-1] and "train_ce" in lines[-1]
    if method in ("acol", "spg"):   # the method's own heads, rebuilt from the checkpoint
        assert meta["build_args"]["architecture_type"] == method
        assert type(model).__name__.lower().startswith(method)
        assert {"acol": "train_ce_b", "spg": "train_bce_c"}[method] in lines[-1]


@pytest.mark.parametrize("method", ["art", "has", "cutmix", "natural"])   # torch; Python's random; NumPy's RNG
def test_resume_matches_an_uninterrupted_run(cub, tmp_path, method):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(load_config(None, tiny_overrides(cub, method, epochs=3)), straight)
    train(load_config(None, tiny_overrides(cub, method, epochs=2)), stopped)
    # a crash after epoch 2's metrics line but before a later checkpoint leaves a stray line: it is dropped
    with open(stopped / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"epoch": 3, "stray": True}) + "\n")
    train(None, stopped, resume=True, overrides=["train.epochs=3"])
    a = load_file(str(straight / "checkpoint-last.safetensors"))
    b = load_file(str(stopped / "checkpoint-last.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ma, mb = read_metrics(straight), read_metrics(stopped)
    assert [m["epoch"] for m in mb] == [1, 2, 3]
    terms = {"art": "train_attr", "cutmix": "train_lam"}.get(method, "train_ce")
    for key in ("train_loss", "train_top1_acc", terms, "val_top1_acc", "val_grad_loc", "val_cam_loc", "lr"):
        assert ma[-1][key] == mb[-1][key], key
    assert len(list(stopped.glob("train-state-*.pt"))) == 1


def test_optimizer_groups_new_layers_at_ten_times(cub):
    cfg = load_config(None, ["optim.lr=0.01", "optim.new_layer_lr_mult=10", "optim.weight_decay=5e-4"])
    model = build_model("vgg_gap_tiny", 3)
    opt, sched = build_optimizer(model, cfg)
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs == {"backbone": 0.01, "new_layers": pytest.approx(0.1)}
    new_ids = {id(p) for g in opt.param_groups if g["name"] == "new_layers" for p in g["params"]}
    assert new_ids == {id(p) for n, p in model.named_parameters() if n.startswith(("conv6.", "fc."))}
    assert all(g["nesterov"] and g["momentum"] == 0.9 and g["weight_decay"] == 5e-4 for g in opt.param_groups)
    for _ in range(40):
        opt.step()  # no grads: a no-op, keeps the optimizer-then-scheduler order
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.001)


def test_class_count_must_match_the_data(cub, tmp_path):
    with pytest.raises(ConfigError, match="model.num_classes is 5 but the data .* has 3 classes"):
        train(load_config(None, tiny_overrides(cub) + ["model.num_classes=5"]), tmp_path / "r")


@register_method("_test_nan_in_epoch_2")
class _NanInEpoch2(TrainingMethod):
    calls = 0

    def step(self, model, x, y):
        type(self).calls += 1
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        if type(self).calls > 3:  # 15 train images / batch 5 = 3 steps per epoch
            loss = loss * float("nan")
        return StepOutput(loss, logits.detach(), {})


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(cub, tmp_path):
    run = tmp_path / "r"
    _NanInEpoch2.calls = 0
    cfg = load_config(None, tiny_overrides(cub, epochs=3) + ["val.saliencies=[cam]", "val.select_metric=top1_acc"])
    cfg.method.name = "_test_nan_in_epoch_2"
    with pytest.raises(TrainingError, match=r"non-finite loss .* at epoch 2, step 1.*checkpoint-last\.json \(epoch 1\)"):
        train(cfg, run)
    model, meta = load_checkpoint(run / "checkpoint-last")
    assert meta["epoch"] == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_failed_checkpoint_write_keeps_the_previous_one(cub, tmp_path, monkeypatch):
    import wsol.engine.train as tr
    from wsol.engine.checkpoint import CheckpointError

    real = tr.save_checkpoint
    calls = {"n": 0}

    def flaky(path, model, **kw):
        if kw["extra"]["epoch"] == 2:
            raise CheckpointError(f"{path}: could not write checkpoint (disk full); the previous one is kept")
        calls["n"] += 1
        return real(path, model, **kw)

    monkeypatch.setattr(tr, "save_checkpoint", flaky)
    run = tmp_path / "r"
    with pytest.raises(TrainingError, match="disk full.*stopped at epoch 2"):
        train(load_config(None, tiny_overrides(cub, epochs=3)), run)
    _, meta = load_checkpoint(run / "checkpoint-last")
    assert meta["epoch"] == 1 and (run / meta["train_state"]).is_file()
    assert not (run / "train-state-0002.pt").exists()
    # and the run resumes from there
    monkeypatch.setattr(tr, "save_checkpoint", real)
    report = train(None, run, resume=True)
    assert report["epochs"] == 3


def test_unreadable_images_are_skipped_and_reported(cub, tmp_path):
    import shutil

    data = tmp_path / "CUB"
    shutil.copytree(cub, data)
    images = sorted((data / "images").rglob("*.jpg"))
    garbage, truncated = images[0], images[2]  # both train images of class 1 (6 train of 12, 1 carved to val)
    garbage.write_bytes(b"not a jpeg")  # found while parsing (no header)
    truncated.write_bytes(truncated.read_bytes()[:300])  # header reads, decoding fails in the loader
    report = train(load_config(None, tiny_overrides(data, epochs=1)), tmp_path / "r")
    listed = {s["image_id"] for s in report["skipped_images"]}
    rel = {p.relative_to(data / "images").as_posix() for p in (garbage, truncated)}
    assert rel <= listed, (rel, listed)
    saved = json.loads((tmp_path / "r" / "report.json").read_text())
    assert saved["skipped_images"] == report["skipped_images"]


def run_tool(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_cli_bad_arch_method_and_key(tmp_path):
    r = run_tool("--arch", "vgg99", "--method", "art", "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and "--arch 'vgg99' is unknown; valid values:" in r.stderr and "resnet50" in r.stderr
    r = run_tool("--arch", "vgg_gap", "--method", "art2", "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and "ig_sum_norm" in r.stderr and "natural" in r.stderr
    r = run_tool("--method", "natural", "--set", "train.epoch=3", "--out", str(tmp_path / "r"))
    assert r.returncode == 2 and "unknown key 'epoch'" in r.stderr and "epochs" in r.stderr
    assert not (tmp_path / "r").exists()


def test_cli_trains_resumes_and_feeds_evaluate(cub, tmp_path):
    run = tmp_path / "run"
    sets = [a for o in tiny_overrides(cub, "art", epochs=1) for a in ("--set", o)]
    r = run_tool("--data", str(cub), "--out", str(run), "--epochs", "1", "--batch-size", "5", "--seed", "3",
                 "--quiet", *sets)
    assert r.returncode == 0, r.stderr
    assert "best grad_loc" in r.stdout
    cfg = load_config(run / "config.yaml")
    assert cfg.train.seed == 3 and cfg.data.root == str(cub) and cfg.method.name == "art"
    r = run_tool("--resume", str(run), "--epochs", "2", "--quiet")
    assert r.returncode == 0, r.stderr
    assert [m["epoch"] for m in read_metrics(run)] == [1, 2]
    r = run_tool("--resume", str(run), "--method", "pgd")
    assert r.returncode == 2 and "--resume takes the run's own config.yaml" in r.stderr
    ev = subprocess.run([sys.executable, str(REPO / "tools" / "evaluate_wsol.py"), "--checkpoint", str(run),
                         "--data", str(cub), "--split", "test", "--saliency", "cam"],
                        capture_output=True, text=True, timeout=300)
    assert ev.returncode == 0, ev.stderr
    assert json.loads((run / "eval-test-cam.json").read_text())["num_images"] == 18


def test_cli_without_data_uses_the_cached_synthetic_set(tmp_path):
    sets = ["--set", "data.synthetic.num_classes=2", "--set", "data.synthetic.images_per_class=8",
            "--set", "data.synthetic.size=40", "--set", "data.image_size=32", "--set", "data.val_per_class=1",
            "--set", "val.saliencies=[cam]", "--set", "val.select_metric=top1_acc"]
    env = {"ART_WSOL_CACHE": str(tmp_path / "cache")}
    r = run_tool("--arch", "resnet_tiny", "--method", "natural", "--epochs", "1", "--batch-size", "4",
                 "--out", str(tmp_path / "run"), *sets, env=env)
    assert r.returncode == 0, r.stderr
    assert "no --data given: training on the built-in synthetic CUB-format dataset" in r.stderr
    assert list((tmp_path / "cache").glob("synthetic-c2-n8-s40-*/CUB_200_2011/images.txt"))


def test_torchrun_two_cpu_processes(cub, tmp_path):
    run = tmp_path / "ddp"
    sets = [a for o in tiny_overrides(cub, "art", epochs=2) for a in ("--set", o)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(TOOL), "--out", str(run), "--quiet", "--device", "cpu", *sets]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((run / "report.json").read_text())
    assert report["world_size"] == 2 and report["epochs"] == 2 and report["ranks_in_sync"] is True
    assert [m["epoch"] for m in read_metrics(run)] == [1, 2]
    _, meta = load_checkpoint(run)
    assert meta["world_size"] == 2


def test_runs_started_together_share_one_synthetic_generation(tmp_path):
    """Two trainings without --data started at once: one generates the cached set, the other waits for it."""
    env = {"ART_WSOL_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    sets = ["--set", "data.synthetic.num_classes=2", "--set", "data.synthetic.images_per_class=30",
            "--set", "data.synthetic.size=40", "--set", "data.image_size=32", "--set", "data.val_per_class=1",
            "--set", "val.saliencies=[cam]", "--set", "val.select_metric=top1_acc", "--set", "train.max_steps_per_epoch=1"]
    procs = [subprocess.Popen([sys.executable, str(TOOL), "--arch", "resnet_tiny", "--method", "natural", "--epochs",
                               "1", "--batch-size", "4", "--out", str(tmp_path / f"run{i}"), "--quiet", *sets],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, **env}) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-1500:] for o in outs]


def test_preset_config_choice():
    from wsol.cli import train_wsol

    assert train_wsol.preset_config("resnet50", "art") == REPO / "configs" / "cub" / "resnet50_art.yaml"
    assert train_wsol.preset_config("vgg_gap", "natural") == REPO / "configs" / "cub" / "vgg_gap_natural.yaml"
    assert train_wsol.preset_config("resnet_tiny", "art") == REPO / "configs" / "demo" / "base.yaml"
    assert train_wsol.preset_config("vgg_gap_bn", "art") == REPO / "configs" / "cub" / "vgg_gap_art.yaml"
    assert train_wsol.preset_config("vgg_gap_bn_small", "pgd") == REPO / "configs" / "demo" / "base.yaml"
    assert train_wsol.preset_config(None, None) is None


def test_an_interrupted_synthetic_generation_is_redone(tmp_path, caplog):
    from wsol.engine.train import prepare_data, synthetic_root

    cfg = load_config(None, [f"data.cache_dir={tmp_path}", "data.synthetic.num_classes=2",
                             "data.synthetic.images_per_class=6", "data.synthetic.size=40", "data.val_per_class=1"])
    prepare_data(cfg)
    info_path = synthetic_root(cfg) / "synthetic_info.json"
    info = json.loads(info_path.read_text())
    info_path.write_text(json.dumps(info | {"complete": False}))  # as a run killed mid-generation leaves it
    (synthetic_root(cfg) / "images.txt").unlink()
    with caplog.at_level("WARNING"):
        root, train_split, val_split, bad = prepare_data(cfg)
    assert "generating it again" in caplog.text
    assert json.loads(info_path.read_text())["complete"] is True
    assert len(train_split) == 4 and len(val_split) == 2 and not bad


def test_finished_run_reuses_only_the_same_config(tmp_path):
    from wsol.config import save_config
    from wsol.engine.train import RunConfigMismatch, finished_run, resumable_run

    cfg = load_config(REPO / "configs" / "demo" / "base.yaml", ["train.epochs=3"])
    run = tmp_path / "run"
    assert finished_run(run, cfg) is None and not resumable_run(run, cfg)   # nothing there
    save_config(cfg, run / "config.yaml")
    assert finished_run(run, cfg) is None and not resumable_run(run, cfg)   # started, no epoch finished
    (run / "checkpoint-last.json").write_text("{}")
    assert resumable_run(run, cfg)                                           # stopped after an epoch
    with pytest.raises(RunConfigMismatch, match="holds a stopped run with another config"):
        resumable_run(run, load_config(REPO / "configs" / "demo" / "base.yaml", ["train.epochs=4"]))
    (run / "report.json").write_text(json.dumps({"epochs": 3}))
    assert finished_run(run, load_config(run / "config.yaml")) == {"epochs": 3}
    assert not resumable_run(run, cfg)                                       # finished: nothing to resume
    other = load_config(REPO / "configs" / "demo" / "base.yaml", ["train.epochs=4", "method.art.lam=2"])
    with pytest.raises(RunConfigMismatch) as err:
        finished_run(run, other)
    # a natural run: the settings of methods it does not use are not part of its identity
    assert "train.epochs: 3 there, 4 asked" in str(err.value) and "method.art" not in str(err.value)
    assert finished_run(run, load_config(REPO / "configs" / "demo" / "base.yaml",
                                         ["train.epochs=3", "method.art.lam=2"])) == {"epochs": 3}
    # a run saved before a method was registered has no section for it: still the same config
    import yaml

    saved = yaml.safe_load((run / "config.yaml").read_text())
    del saved["method"]["spg"], saved["method"]["has"]
    (run / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    assert finished_run(run, cfg) == {"epochs": 3}
    # the run's own method's settings do count
    art = run.parent / "art"
    art_cfg = load_config(REPO / "configs" / "demo" / "base.yaml", ["train.epochs=3", "method.name=art"])
    save_config(art_cfg, art / "config.yaml")
    (art / "report.json").write_text(json.dumps({"epochs": 3}))
    with pytest.raises(RunConfigMismatch, match="method.art.lam: 0.5 there, 2.0 asked"):
        finished_run(art, load_config(REPO / "configs" / "demo" / "base.yaml",
                                      ["train.epochs=3", "method.name=art", "method.art.lam=2"]))
    assert str(run) in str(err.value)


def test_device_names():
    from wsol.engine.distributed import DistInfo, resolve_device
    from wsol.engine.train import _device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto", 1) == (torch.device("cuda:1") if torch.cuda.is_available() else torch.device("cpu"))
    with pytest.raises(ValueError, match="auto, cpu, cuda or cuda:N, got 'gpu'"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="train.device: device 'cuda' was asked for but CUDA is not available"):
            _device("cuda", DistInfo())
