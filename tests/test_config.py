"""wsol.config: YAML + --set loading, strict keys, types, inheritance, round trip."""

from __future__ import annotations

import pytest

from wsol.config import Config, ConfigError, load_config, save_config
from wsol.methods.pgd import PGDConfig


def write(path, text):
    path.write_text(text)
    return path


def test_defaults_and_overrides():
    cfg = load_config(None, ["train.epochs=3", "method.art.beta=50", "method.name=art", "val.saliencies=[cam]",
                             "data.root=/tmp/cub", "model.pretrained=false"])
    assert isinstance(cfg, Config)
    assert cfg.train.epochs == 3 and cfg.method.art.beta == 50.0 and isinstance(cfg.method.art.beta, float)
    assert cfg.val.saliencies == ["cam"] and cfg.data.root == "/tmp/cub" and cfg.model.pretrained is False
    assert isinstance(cfg.method.pgd, PGDConfig)


def test_fractions_as_papers_write_them(tmp_path):
    f = write(tmp_path / "c.yaml", "method:\n  art:\n    epsilon: 2/255\n    step_size: 1.5/255\n")
    cfg = load_config(f, ["method.pgd.epsilon=8/255"])
    assert cfg.method.art.epsilon == pytest.approx(2 / 255)
    assert cfg.method.art.step_size == pytest.approx(1.5 / 255)
    assert cfg.method.pgd.epsilon == pytest.approx(8 / 255)


def test_unknown_key_in_file_names_file_and_valid_keys(tmp_path):
    f = write(tmp_path / "bad.yaml", "train:\n  epoch: 3\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    msg = str(e.value)
    assert "bad.yaml" in msg and "'epoch'" in msg and "epochs" in msg and "batch_size" in msg


def test_unknown_key_in_override_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"--set method\.art\.betta=1: unknown key 'betta'.*beta"):
        load_config(None, ["method.art.betta=1"])
    with pytest.raises(ConfigError, match="unknown key 'trian'"):
        load_config(None, ["trian.epochs=1"])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(None, ["train.epochs"])


def test_wrong_types_and_choices():
    with pytest.raises(ConfigError, match=r"--set train\.epochs=many: train\.epochs: expected int, got 'many'"):
        load_config(None, ["train.epochs=many"])
    with pytest.raises(ConfigError, match=r"method\.art\.projection: 'flat' is not one of abs_mean, signed"):
        load_config(None, ["method.art.projection=flat"])
    with pytest.raises(ConfigError, match="attack_mode"):
        load_config(None, ["method.pgd.attack_mode=sometimes"])
    with pytest.raises(ConfigError, match="expected bool"):
        load_config(None, ["train.drop_last=3"])


def test_yaml_errors_name_the_line(tmp_path):
    f = write(tmp_path / "broken.yaml", "train:\n  epochs: 3\n  batch_size: [1,\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml:\d+: not valid YAML"):
        load_config(f)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml")


def test_base_inheritance_and_round_trip(tmp_path):
    write(tmp_path / "parent.yaml", "model:\n  arch: resnet50\noptim:\n  lr: 0.01\n  weight_decay: 1.0e-4\n")
    child = write(tmp_path / "child.yaml", "base: parent.yaml\noptim:\n  lr: 0.001\n")
    cfg = load_config(child)
    assert cfg.model.arch == "resnet50" and cfg.optim.lr == 0.001 and cfg.optim.weight_decay == 1e-4
    saved = save_config(cfg, tmp_path / "run" / "config.yaml")
    assert load_config(saved) == cfg


def test_shipped_configs_load():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "configs"
    files = sorted(root.rglob("*.yaml"))
    assert len(files) >= 10
    from wsol.methods import list_methods

    for f in files:
        cfg = load_config(f)
        assert cfg.method.name in list_methods()
    # every WSOL method x backbone has its preset on each WSOL dataset (issue 24: wsolevaluation's methods)
    for ds in ("cub", "ilsvrc", "openimages"):
        names = {f.stem for f in (root / ds).glob("*.yaml")}
        want = {f"{a}_{m}" for a in ("vgg_gap", "resnet50", "inception_v3")
                for m in ("natural", "adl", "art", "pgd", "has", "acol", "spg", "cutmix")}
        assert want <= names, sorted(want - names)
        for name in names:
            c = load_config(root / ds / f"{name}.yaml")
            assert name.startswith(c.model.arch + "_"), (ds, name, c.model.arch)
            assert c.method.name == name[len(c.model.arch) + 1:], (ds, name, c.method.name)
    art = load_config(root / "cub" / "resnet50_art.yaml")
    a = art.method.art
    assert (a.epsilon, a.steps, a.step_size, a.topk, a.beta, a.lam) == pytest.approx(
        (2 / 255, 3, 1.5 / 255, 15000, 1.0, 0.5))
    assert (art.optim.lr, art.optim.new_layer_lr_mult, art.optim.lr_step, art.train.epochs,
            art.train.batch_size) == (0.01, 10.0, 40, 200, 12)
    vgg = load_config(root / "cub" / "vgg_gap_art.yaml")
    assert vgg.model.arch == "vgg_gap" and vgg.method.art.topk == 15000 and vgg.optim.weight_decay == 5e-4
    # wsolevaluation's recipe on ILSVRC / OpenImages (REFERENCE §12.5): 10 epochs, decay every 3, batch 32
    for ds in ("ilsvrc", "openimages"):
        names = {f.stem for f in (root / ds).glob("*.yaml")}
        assert {f"{a}_{m}" for a in ("resnet50", "vgg_gap") for m in ("natural", "art", "pgd", "adl")} <= names
        for name in names:
            c = load_config(root / ds / f"{name}.yaml")
            assert c.data.dataset == ds and c.data.val_per_class == 0 and c.val.select_metric == "last"
            assert (c.train.epochs, c.optim.lr_step, c.train.batch_size) == (10, 3, 32)
            assert c.optim.weight_decay == (1e-4 if name.startswith("resnet50") else 5e-4)
            assert c.model.pretrained_classifier == (ds == "ilsvrc" and name in (
                "resnet50_natural", "resnet50_adl", "resnet50_has", "resnet50_cutmix"))
    oi = load_config(root / "openimages" / "vgg_gap_natural.yaml")
    assert oi.optim.lr == 0.00227913316 and "cam" in oi.val.saliencies   # the README's OpenImages command
