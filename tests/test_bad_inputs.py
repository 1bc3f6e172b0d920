"""Bad input answered with one clear message, a non-zero exit and nothing lost (issue 22, item 6).

Checkpoints with NaN / Inf or a mismatched hash, score maps that are empty, not arrays or not
finite, out-of-range training options, an --out folder that already holds a run, a diverging run,
a run that fails before its first epoch, and datasets with no training images.
"""

from __future__ import annotations

import importlib
import json
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import write_tiny_cub
from wsol.config import ConfigError, _check_value, load_config
from wsol.data.synthetic import make_synthetic_cub
from wsol.engine.checkpoint import (CheckpointError, NonFiniteCheckpoint, _sha256, load_checkpoint,
                                    save_checkpoint)
from wsol.engine.train import TrainingError, train
from wsol.methods import StepOutput, TrainingMethod, register_method
from wsol.models import build_model



def tool(name: str):
    """The main of tools/<name>.py (a front door over wsol.cli.<name>)."""
    return importlib.import_module(f"wsol.cli.{name}").main


# -- checkpoints ----------------------------------------------------------------------------------------

def _poison(stem: Path, names: list[str], rehash: bool = True) -> None:
    """Write NaN into tensors `names` of a saved checkpoint (as an older version could save them)."""
    tensors = load_file(str(stem.with_suffix(".safetensors")))
    for n in names:
        tensors[n] = torch.full_like(tensors[n], float("nan"))
    save_file(tensors, str(stem.with_suffix(".safetensors")), metadata={"format": "1"})
    if rehash:
        meta = json.loads(stem.with_suffix(".json").read_text())
        meta["tensors_sha256"] = _sha256(stem.with_suffix(".safetensors"))
        stem.with_suffix(".json").write_text(json.dumps(meta))


def test_checkpoint_with_nan_tensors_is_refused_at_load(tmp_path):
    save_checkpoint(tmp_path / "c", build_model("vgg_gap_tiny", 3))
    names = sorted(n for n, t in load_file(str(tmp_path / "c.safetensors")).items() if t.is_floating_point())[:7]
    _poison(tmp_path / "c", names)
    with pytest.raises(NonFiniteCheckpoint) as err:
        load_checkpoint(tmp_path / "c")
    msg = str(err.value)
    assert str(tmp_path / "c.safetensors") in msg and "7 of" in msg and "hold NaN or Inf" in msg
    assert names[0] in msg and names[4] in msg and names[5] not in msg and ", ..." in msg


def test_checkpoint_with_nan_weights_is_never_written(tmp_path):
    model = build_model("vgg_gap_tiny", 3)
    save_checkpoint(tmp_path / "c", model, extra={"epoch": 1})
    before = (tmp_path / "c.safetensors").read_bytes()
    with torch.no_grad():
        next(model.parameters()).fill_(float("inf"))
    with pytest.raises(NonFiniteCheckpoint, match=r"c\.safetensors: not written: 1 of \d+ tensors hold NaN or Inf"):
        save_checkpoint(tmp_path / "c", model, extra={"epoch": 2})
    assert (tmp_path / "c.safetensors").read_bytes() == before
    _, meta = load_checkpoint(tmp_path / "c")
    assert meta["epoch"] == 1
    with pytest.raises(NonFiniteCheckpoint):
        save_checkpoint(tmp_path / "new" / "d", model)
    assert not (tmp_path / "new").exists()


def test_corrupt_tensor_file_says_corrupt_or_from_another_save(tmp_path):
    save_checkpoint(tmp_path / "c", build_model("vgg_gap_tiny", 3))
    data = bytearray((tmp_path / "c.safetensors").read_bytes())
    data[-5] ^= 0xFF  # one flipped byte in the last tensor's data
    (tmp_path / "c.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"c\.safetensors: tensor file does not match c\.json .*"
                                              r"corrupt or from another save"):
        load_checkpoint(tmp_path / "c")


def test_checkpoint_without_a_recorded_hash_still_loads(tmp_path):
    save_checkpoint(tmp_path / "c", build_model("vgg_gap_tiny", 3))
    meta = json.loads((tmp_path / "c.json").read_text())
    del meta["tensors_sha256"]
    (tmp_path / "c.json").write_text(json.dumps(meta))
    model, _ = load_checkpoint(tmp_path / "c")
    assert model.num_classes == 3
    _poison(tmp_path / "c", ["fc.weight"], rehash=False)  # no hash: the NaN check still runs
    with pytest.raises(NonFiniteCheckpoint, match="fc.weight"):
        load_checkpoint(tmp_path / "c")


# -- score maps -----------------------------------------------------------------------------------------

@pytest.fixture
def boxes_meta(tmp_path) -> Path:
    """wsolevaluation metadata for two 50 x 40 images with one box each (no image files needed)."""
    d = tmp_path / "meta" / "test"
    d.mkdir(parents=True)
    ids = ["a/img0.jpg", "a/img1.jpg"]
    (d / "image_ids.txt").write_text("\n".join(ids) + "\n")
    (d / "class_labels.txt").write_text("\n".join(f"{i},0" for i in ids) + "\n")
    (d / "image_sizes.txt").write_text("\n".join(f"{i},50,40" for i in ids) + "\n")
    (d / "localization.txt").write_text("a/img0.jpg,10,5,30,20\na/img1.jpg,5,5,25,30\n")
    return d


def _maps(folder: Path, first: np.ndarray) -> Path:
    (folder / "a").mkdir(parents=True, exist_ok=True)
    np.save(folder / "a" / "img0.jpg.npy", first)
    good = np.zeros((40, 50), np.float32)
    good[5:30, 5:25] = 1
    np.save(folder / "a" / "img1.jpg.npy", good)
    return folder


def _score(maps: Path, meta: Path, out: Path) -> int:
    return tool("evaluate_wsol")(["--scoremaps", str(maps), "--metadata", str(meta), "--out", str(out)])


def test_empty_score_map_names_the_file_and_shape(boxes_meta, tmp_path, capsys):
    maps = _maps(tmp_path / "maps", np.zeros((0, 0), np.float32))
    assert _score(maps, boxes_meta, tmp_path / "r.json") == 1
    err = capsys.readouterr().err
    assert "img0.jpg.npy: empty score map (shape (0, 0)); expected at least 1 x 1" in err
    assert "Traceback" not in err and not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("kind", ["pickled object", "text file", "pickle", "truncated", "npz archive",
                                  "strings"])
def test_score_map_that_is_not_an_array_names_the_file(boxes_meta, tmp_path, capsys, kind):
    maps = _maps(tmp_path / "maps", np.zeros((4, 4), np.float32))
    path = maps / "a" / "img0.jpg.npy"
    if kind == "pickled object":
        np.save(path, np.array([{"map": 1}], dtype=object), allow_pickle=True)
    elif kind == "text file":
        path.write_text("0.1 0.2\n0.3 0.4\n")
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"map": [[0.1, 0.2]]}))
    elif kind == "truncated":
        path.write_bytes(path.read_bytes()[:70])
    elif kind == "npz archive":
        with open(path, "wb") as fh:
            np.savez(fh, m=np.zeros((4, 4)))
    else:
        np.save(path, np.array([["a", "b"], ["c", "d"]]))
    assert _score(maps, boxes_meta, tmp_path / "r.json") == 1
    err = capsys.readouterr().err
    assert f"error: {path}: " in err and "Traceback" not in err
    expected = {"pickled object": "holds Python objects (dtype object); expected one 2-D float array saved",
                "text file": "not a .npy file (no numpy header: a pickle, text or another format)",
                "pickle": "not a .npy file (no numpy header: a pickle, text or another format)",
                "truncated": "EOF: reading array header",
                "npz archive": "an .npz archive; expected one 2-D float array saved with np.save",
                "strings": "expected real numbers, got dtype <U1"}[kind]
    assert expected in err


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nonfinite_maps_are_counted_and_scored_as_wsolevaluation(boxes_meta, tmp_path, caplog, value):
    bad = np.zeros((40, 50), np.float32)
    bad[5:20, 10:30] = 1
    bad[0, 0] = value
    with caplog.at_level(logging.WARNING):
        assert _score(_maps(tmp_path / "nan", bad), boxes_meta, tmp_path / "nan.json") == 0
    assert "1 score map(s) hold NaN or Inf (a/img0.jpg)" in caplog.text
    # wsolevaluation's normalize_scoremap turns a NaN map (an Inf one: NaN after the bicubic resize) into
    # zeros: the same numbers as an all-zero map
    assert _score(_maps(tmp_path / "zero", np.zeros((40, 50), np.float32)), boxes_meta, tmp_path / "z.json") == 0
    nan, zero = json.loads((tmp_path / "nan.json").read_text()), json.loads((tmp_path / "z.json").read_text())
    assert nan["nonfinite_maps"] == 1 and zero["nonfinite_maps"] == 0
    for key in ("MaxBoxAcc", "MaxBoxAccV2", "best_threshold"):
        assert nan[key] == zero[key], key
    assert nan["MaxBoxAcc"]["50"] == 50.0  # the finite map still hits


# -- training options -----------------------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["--batch-size", "0"], "--batch-size 0: train.batch_size must be an integer >= 1, got 0"),
    (["--image-size", "0"], "--image-size 0: data.image_size must be an integer >= 1, got 0"),
    (["--epochs", "-1"], "--epochs -1: train.epochs must be an integer >= 1, got -1"),
    (["--seed", "-3"], "--seed -3: train.seed must be an integer >= 0, got -3"),
    (["--set", "optim.lr=nan"], "--set optim.lr=nan: optim.lr must be a finite number in (0, 10], got nan"),
    (["--set", "optim.lr=inf"], "--set optim.lr=inf: optim.lr must be a finite number in (0, 10], got inf"),
    (["--set", "optim.lr=1e300"], "--set optim.lr=1e300: optim.lr must be a finite number in (0, 10], got 1e+300"),
    (["--set", "method.art.epsilon=-2/255"], "--set method.art.epsilon=-2/255: method.art.epsilon must be a "
                                             "finite number >= 0, got -0.00784"),
    (["--set", "method.pgd.step_size=.nan"], "--set method.pgd.step_size=.nan: method.pgd.step_size must be a "
                                             "finite number, got nan"),
])
def test_out_of_range_options_name_the_option_and_the_range(tmp_path, capsys, args, message):
    rc = tool("train_wsol")(["--arch", "resnet_tiny", "--method", "natural", "--out", str(tmp_path / "r"), *args])
    err = capsys.readouterr().err
    assert rc == 2 and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_a_bad_set_value_is_blamed_on_set_not_the_preset(tmp_path, capsys):
    rc = tool("train_wsol")(["--arch", "resnet_tiny", "--method", "art", "--set", "train.epochs=many",
                             "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and "train_wsol: error: --set train.epochs=many: train.epochs: expected int, got 'many'" in err
    assert "base.yaml" not in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  batch_size: 0\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: train\.batch_size must be an integer >= 1, got 0"):
        load_config(bad, ["train.epochs=3"])


def test_negative_fractions_parse_like_positive_ones():
    assert _check_value("2/255", float, "x") == pytest.approx(2 / 255)
    assert _check_value("-2/255", float, "x") == pytest.approx(-2 / 255)
    assert _check_value(" -1.5 / 255 ", float, "x") == pytest.approx(-1.5 / 255)
    with pytest.raises(ConfigError, match="method.art.step_size must be a finite number >= 0"):  # range, not type
        load_config(None, ["method.art.step_size=-1.5/255"])


# -- run folders: nothing lost ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cub(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad_inputs") / "CUB"
    make_synthetic_cub(root, num_classes=3, images_per_class=12, size=40, seed=0, progress=False)
    return root


def tiny(cub: Path, epochs: int = 1) -> list[str]:
    return [f"data.root={cub}", "data.image_size=32", "data.resize_size=36", "data.val_per_class=1",
            "model.arch=resnet_tiny", "method.name=natural", f"train.epochs={epochs}", "train.batch_size=5",
            "train.max_steps_per_epoch=1", "optim.new_layer_lr_mult=1", "val.saliencies=[cam]",
            "val.select_metric=top1_acc", "val.max_images=3", "val.cam_curve_interval=0.1"]


def cli_sets(cub: Path, epochs: int = 1) -> list[str]:
    return [a for o in tiny(cub, epochs) for a in ("--set", o)]


def read_epochs(run: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_out_naming_an_existing_run_is_refused_then_resume_or_overwrite(cub, tmp_path, capsys, one_thread):
    run = tmp_path / "run"
    main = tool("train_wsol")
    assert main(["--out", str(run), "--quiet", *cli_sets(cub)]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    assert main(["--out", str(run), "--quiet", *cli_sets(cub)]) == 2
    err = capsys.readouterr().err
    assert f"{run}: this folder already holds a training run" in err
    assert f"pass --resume {run} to continue it, or --overwrite to replace it" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # nothing touched
    # --resume goes on where it stopped
    assert main(["--resume", str(run), "--epochs", "2", "--quiet"]) == 0
    assert read_epochs(run) == [1, 2]
    assert main(["--resume", str(run), "--overwrite"]) == 2
    assert "give one of them" in capsys.readouterr().err
    # --overwrite starts afresh: the old run's files are gone, the user's own are kept
    (run / "eval-test-cam.json").write_text("{}")
    (run / "notes.txt").write_text("mine")
    assert main(["--out", str(run), "--quiet", "--overwrite", *cli_sets(cub)]) == 0
    assert read_epochs(run) == [1]
    assert not (run / "eval-test-cam.json").exists() and (run / "notes.txt").read_text() == "mine"
    assert not (run / "train-state-0002.pt").exists()
    assert json.loads((run / "checkpoint-last.json").read_text())["epoch"] == 1


@register_method("_test_nan_weights_in_epoch_2")
class _NanWeightsInEpoch2(TrainingMethod):
    """A finite loss whose gradient is NaN at the second step (epoch 2 with one step per epoch)."""
    calls = 0

    def step(self, model, x, y):
        type(self).calls += 1
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        if type(self).calls == 2:  # 0 * sqrt(0): value 0, gradient NaN
            loss = loss + 0.0 * torch.sqrt((logits * 0).sum())
        return StepOutput(loss, logits.detach(), {})


def test_weights_gone_nan_are_not_saved_and_the_named_checkpoint_is_finite(cub, tmp_path, one_thread):
    run = tmp_path / "r"
    _NanWeightsInEpoch2.calls = 0
    cfg = load_config(None, tiny(cub, epochs=3))
    cfg.method.name = "_test_nan_weights_in_epoch_2"
    with pytest.raises(TrainingError) as err:
        train(cfg, run)
    msg = str(err.value)
    assert "the weights went non-finite in epoch 2" in msg and "hold NaN or Inf" in msg
    named = f"the last good checkpoint is {run / 'checkpoint-last.json'} (epoch 1)"
    assert named in msg
    model, meta = load_checkpoint(run / "checkpoint-last")  # loads: every tensor finite
    assert meta["epoch"] == 1 and all(torch.isfinite(t).all() for t in model.state_dict().values()
                                      if t.is_floating_point())
    assert not (run / "train-state-0002.pt").exists() and (run / "train-state-0001.pt").is_file()


@register_method("_test_nan_loss_at_once")
class _NanLossAtOnce(TrainingMethod):
    def step(self, model, x, y):
        logits = model(x)
        return StepOutput(torch.nn.functional.cross_entropy(logits, y) * float("nan"), logits.detach(), {})


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_folder(cub, tmp_path, one_thread):
    run = tmp_path / "r"
    with pytest.raises(ConfigError, match="model.num_classes is 5"):
        train(load_config(None, tiny(cub) + ["model.num_classes=5"]), run)
    assert not run.exists()
    cfg = load_config(None, tiny(cub))
    cfg.method.name = "_test_nan_loss_at_once"
    with pytest.raises(TrainingError, match="no checkpoint was written yet"):
        train(cfg, run)
    assert not run.exists()
    # a folder that was there before stays, without the failed run's files
    run.mkdir()
    (run / "keep.txt").write_text("x")
    with pytest.raises(TrainingError):
        train(cfg, run)
    assert sorted(p.name for p in run.iterdir()) == ["keep.txt"]


# -- datasets ---------------------------------------------------------------------------------------------

def test_check_dataset_reports_a_split_without_training_images(tmp_path, capsys):
    root = write_tiny_cub(tmp_path / "CUB_200_2011")
    (root / "train_test_split.txt").write_text("".join(f"{i} 0\n" for i in range(1, 7)))
    assert tool("check_dataset")([str(root), "--no-decode"]) == 1
    out = capsys.readouterr().out
    assert "train_test_split.txt: the train split has no images; training needs at least one training image" in out
    assert "OK" not in out


def test_check_dataset_prints_problems_once_and_no_summary_for_broken_metadata(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert tool("check_dataset")([str(tmp_path / "empty")]) == 1
    out = capsys.readouterr().out
    assert out.count("problem(s):") == 1 and out.startswith("1 problem(s):\n  ")
    assert "neither an official CUB folder" in out and "classes:" not in out
    root = write_tiny_cub(tmp_path / "CUB_200_2011")
    (root / "image_class_labels.txt").unlink()
    assert tool("check_dataset")([str(root), "--no-decode"]) == 1
    out = capsys.readouterr().out
    assert "image_class_labels.txt: file not found" in out
    assert "classes:" not in out and "images:" not in out and out.count("problem(s):") == 1
