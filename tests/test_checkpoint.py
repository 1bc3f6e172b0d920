"""Checkpoints: safetensors + JSON, atomic writes, and mismatch errors."""

from __future__ import annotations

import json
import os

import pytest
import torch

from wsol.engine import CheckpointError, load_checkpoint, read_checkpoint_meta, save_checkpoint
from wsol.models import build_model


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model("vgg_gap_tiny", num_classes=3)


def test_roundtrip_rebuilds_identical_model(tmp_path, model):
    js = save_checkpoint(tmp_path / "run" / "checkpoint-best", model, class_names=["a", "b", "c"],
                         image_size=64, config={"train": {"epochs": 2}}, extra={"epoch": 5})
    assert js.name == "checkpoint-best.json" and js.with_suffix(".safetensors").is_file()
    loaded, meta = load_checkpoint(tmp_path / "run")  # a run folder resolves to checkpoint-best
    assert meta["arch"] == "vgg_gap_tiny" and meta["num_classes"] == 3 and meta["epoch"] == 5
    assert meta["class_names"] == ["a", "b", "c"] and meta["image_size"] == 64
    x = torch.rand(2, 3, 32, 32)
    model.eval()
    assert torch.equal(model(x), loaded(x))
    assert not loaded.training
    assert read_checkpoint_meta(js)["config"] == {"train": {"epochs": 2}}
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".tmp-")]


def test_adl_and_kwargs_survive(tmp_path):
    m = build_model("resnet_tiny", num_classes=4, adl=True, adl_drop_rate=0.5)
    save_checkpoint(tmp_path / "c", m)
    loaded, meta = load_checkpoint(tmp_path / "c.safetensors")
    assert meta["build_args"]["adl"] is True and meta["build_args"]["adl_drop_rate"] == 0.5
    assert sorted(loaded.state_dict()) == sorted(m.state_dict())


def test_expected_arch_and_classes_are_checked(tmp_path, model):
    save_checkpoint(tmp_path / "c", model)
    with pytest.raises(CheckpointError, match="arch is 'vgg_gap_tiny', expected 'resnet50'"):
        load_checkpoint(tmp_path / "c", arch="resnet50")
    with pytest.raises(CheckpointError, match="it has 3 classes, expected 200"):
        load_checkpoint(tmp_path / "c", num_classes=200)


def test_mismatched_pair_and_missing_files(tmp_path, model):
    save_checkpoint(tmp_path / "a", model)
    save_checkpoint(tmp_path / "b", build_model("vgg_gap_tiny", num_classes=3))
    os.replace(tmp_path / "b.safetensors", tmp_path / "a.safetensors")
    with pytest.raises(CheckpointError, match="does not match a.json"):
        load_checkpoint(tmp_path / "a")
    with pytest.raises(CheckpointError, match="checkpoint metadata not found"):
        load_checkpoint(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="no checkpoint-best.json or checkpoint-last.json"):
        load_checkpoint(tmp_path)


def test_tensors_that_do_not_fit_the_arch(tmp_path, model):
    save_checkpoint(tmp_path / "c", model)
    meta = json.loads((tmp_path / "c.json").read_text())
    meta["build_args"]["num_classes"] = 5
    meta["num_classes"] = 5
    (tmp_path / "c.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not fit arch 'vgg_gap_tiny'"):
        load_checkpoint(tmp_path / "c")


def test_failed_write_keeps_previous_checkpoint(tmp_path, model, monkeypatch):
    save_checkpoint(tmp_path / "c", model, extra={"epoch": 1})
    before = (tmp_path / "c.safetensors").read_bytes()

    def boom(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr("wsol.engine.checkpoint.save_file", boom)
    with pytest.raises(CheckpointError, match="could not write checkpoint.*No space left"):
        save_checkpoint(tmp_path / "c", build_model("vgg_gap_tiny", num_classes=3), extra={"epoch": 2})
    assert (tmp_path / "c.safetensors").read_bytes() == before
    assert read_checkpoint_meta(tmp_path / "c")["epoch"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    load_checkpoint(tmp_path / "c")


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "x.json").write_text('{"hello": 1}')
    (tmp_path / "x.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="not an art-wsol checkpoint"):
        load_checkpoint(tmp_path / "x")
    with pytest.raises(CheckpointError, match="no build_args"):
        save_checkpoint(tmp_path / "y", torch.nn.Linear(2, 2))
