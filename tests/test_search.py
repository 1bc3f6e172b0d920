"""tools/search.py: search spaces, seeded draws, the proxy train split, and a whole search on tiny data."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wsol.config import ConfigError, load_config
from wsol.data.subset import per_class_fraction, per_class_holdout, proxy_split
from wsol.data.synthetic_wsoleval import make_synthetic_ilsvrc
from wsol.data.wsoleval import read_wsoleval
from wsol.engine.table import t_interval
from wsol.methods import build_method, list_methods
from wsol.space import (Choice, IntUniform, InverseUniform, LogUniform, Relative, Uniform, format_value, parse_spec,
                        sample)

ROOT = Path(__file__).resolve().parents[1]
TINY = [a for kv in ("data.synthetic.num_classes=3", "data.synthetic.images_per_class=12", "data.synthetic.size=64",
                     "data.image_size=56", "data.resize_size=64", "data.val_per_class=2", "train.batch_size=8")
        for a in ("--set", kv)]


# -- spaces -------------------------------------------------------------------------------------------

def test_draws_are_seeded_per_trial_and_respect_bounds():
    space = {"optim.lr": LogUniform(1e-4, 1e-1), "a": Uniform(0.2, 0.4), "b": Uniform("a", 1.0),
             "n": IntUniform(1, 3), "c": Choice(["all", "ce"]), "beta": InverseUniform(0, 2),
             "train.batch_size": Relative([0.5, 1, 2])}
    base = {"train.batch_size": 12}
    draws = [sample(space, 7, i, base) for i in range(200)]
    assert draws[5] == sample(space, 7, 5, base)          # same (seed, trial): same settings
    assert draws[5] != sample(space, 8, 5, base)
    for d in draws:
        assert 1e-4 <= d["optim.lr"] <= 1e-1 and 0.2 <= d["a"] <= 0.4 and d["a"] <= d["b"] <= 1.0
        assert d["n"] in (1, 2, 3) and d["c"] in ("all", "ce") and d["beta"] >= 0.5
        assert d["train.batch_size"] in (6, 12, 24) and isinstance(d["train.batch_size"], int)
    # log-uniform: about a third of the draws in each decade
    decades = np.histogram(np.log10([d["optim.lr"] for d in draws]), bins=[-4, -3, -2, -1])[0]
    assert decades.min() > 40
    assert {d["n"] for d in draws} == {1, 2, 3}


@pytest.mark.parametrize("spec, expected", [
    ("loguniform:1e-4:0.1", LogUniform(1e-4, 0.1)), ("uniform:0:1", Uniform(0.0, 1.0)),
    ("uniform:method.spg.spg_threshold_1l:1", Uniform("method.spg.spg_threshold_1l", 1.0)),
    ("int:1:5", IntUniform(1, 5)), ("choice:all,ce", Choice(["all", "ce"])), ("choice:8,16", Choice([8, 16])),
    ("relative:0.5,2", Relative([0.5, 2])), ("fixed:true", Choice([True])), ("inverse:0:2", InverseUniform(0, 2)),
])
def test_specs_parse(spec, expected):
    assert parse_spec(spec) == expected
    assert parse_spec(expected.spec()) == expected


@pytest.mark.parametrize("spec", ["gauss:0:1", "loguniform:0:1", "int:1", "int:3:1", "uniform:a", "choice:", "lr"])
def test_bad_specs_are_refused(spec):
    with pytest.raises(ValueError):
        parse_spec(spec)


@pytest.mark.parametrize("method", list_methods())
def test_every_method_space_gives_valid_configs(method):
    """Each method declares lr, batch size and its own keys; every draw is a config that loads."""
    base = load_config(ROOT / "configs" / "demo" / "base.yaml", [f"method.name={method}"])
    space = build_method(method, base.method).search_space()
    assert "optim.lr" in space and "train.batch_size" in space
    own = {"natural": 0, "fsl": 0, "adl": 2, "has": 2, "acol": 1, "spg": 6, "cutmix": 2, "pgd": 2, "ig_norm": 2,
           "ig_sum_norm": 2, "art": 6}
    if method in own:
        assert len(space) == 2 + own[method], sorted(space)
    for trial in range(8):
        settings = sample(space, 0, trial, {"train.batch_size": base.train.batch_size})
        cfg = load_config(ROOT / "configs" / "demo" / "base.yaml",
                          [f"method.name={method}", *(f"{k}={format_value(v)}" for k, v in settings.items())])
        assert cfg.method.name == method


def test_art_space_follows_the_mode():
    from wsol.methods.art import ARTConfig

    fast = build_method("art", ARTConfig(mode="fast")).search_space()
    faithful = build_method("art", ARTConfig(mode="faithful")).search_space()
    assert "method.art.fast_steps" in fast and "method.art.steps" not in fast
    assert "method.art.steps" in faithful
    for key in ("method.art.lam", "method.art.beta", "method.art.epsilon", "method.art.bn_stats",
                "method.art.attack_bn_mode"):
        assert key in fast and key in faithful


def test_t_interval_matches_the_t_table():
    lo, hi = t_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)        # t_{0.975, 2} * sd / sqrt(n), sd = 1
    assert lo == pytest.approx(2 - half) and hi == pytest.approx(2 + half)
    assert t_interval([5.0]) == (5.0, 5.0)


# -- proxy / subsets ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ilsvrc(tmp_path_factory):
    root = tmp_path_factory.mktemp("ilsvrc")
    make_synthetic_ilsvrc(root, num_classes=4, images_per_class=10, size=48, progress=False)
    return root / "metadata" / "ILSVRC"


def test_proxy_file_and_fractions(ilsvrc):
    train = read_wsoleval(ilsvrc, "train", dataset="ilsvrc")
    proxy = proxy_split(train, ilsvrc)
    listed = [x for x in (ilsvrc / "train" / "image_ids_proxy.txt").read_text().split() if x]
    assert [s.image_id for s in proxy.samples] == listed and 0 < len(proxy) < len(train)
    assert proxy.class_names == train.class_names
    half = per_class_fraction(train, 0.5, seed=3)
    assert half.samples == per_class_fraction(train, 0.5, seed=3).samples
    assert half.samples != per_class_fraction(train, 0.5, seed=4).samples
    counts = np.bincount([s.label for s in half.samples], minlength=4)
    assert counts.tolist() == [5, 5, 5, 5]
    assert len(per_class_fraction(train, 0.01).samples) == 4      # at least one image a class
    rest, held = per_class_holdout(train, 0.2, seed=0)
    assert len(held) == 8 and len(rest) == 32
    assert not {s.image_id for s in rest.samples} & {s.image_id for s in held.samples}


def test_a_missing_proxy_file_is_named(ilsvrc, tmp_path):
    from wsol.data import WSOLFormatError

    test = read_wsoleval(ilsvrc, "test", dataset="ilsvrc")
    with pytest.raises(WSOLFormatError, match=r"test/image_ids_proxy.txt: no proxy training list"):
        proxy_split(test, ilsvrc)


def test_train_on_the_proxy(ilsvrc):
    from wsol.engine.train import prepare_data

    data = str(ilsvrc.parents[1])
    for sets, n in ((["data.proxy=true"], None), (["data.proxy=true", "data.proxy_fraction=0.3"], 12)):
        cfg = load_config(None, ["data.dataset=ilsvrc", f"data.root={data!r}", *sets])
        _, train, val, _ = prepare_data(cfg)
        listed = len([x for x in (ilsvrc / "train" / "image_ids_proxy.txt").read_text().split() if x])
        assert len(train) == (listed if n is None else n)
    with pytest.raises(ConfigError, match="data.proxy_fraction is set but data.proxy is false"):
        load_config(None, ["data.proxy_fraction=0.3"])


# -- the tool --------------------------------------------------------------------------------------------

def _search(tmp_path, *extra):
    env = dict(os.environ, ART_WSOL_CACHE=str(tmp_path / "cache"))
    cmd = [sys.executable, str(ROOT / "tools" / "search.py"), "--arch", "resnet_tiny", "--config",
           str(ROOT / "configs" / "demo" / "base.yaml"), "--epochs", "1", *TINY, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)


def test_search_selects_on_val_retrains_seeds_and_resumes(tmp_path):
    out = tmp_path / "s"
    args = ["--method", "cutmix", "--trials", "3", "--seeds", "2", "--jobs", "2", "--out", str(out),
            "--space", "optim.lr=loguniform:1e-3:1e-1"]
    r = _search(tmp_path, *args)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    doc = json.loads((out / "search.json").read_text())
    assert doc["metric"] == "cam_loc" and doc["search_seed"] == 0 and doc["budget"] == 3
    assert [t["trial"] for t in doc["trials"]] == [0, 1, 2] and all(t["status"] == "done" for t in doc["trials"])
    assert "train.batch_size" not in doc["space"]          # fixed by --set
    vals = [t["val"] for t in doc["trials"]]
    assert doc["best"]["val"] == max(vals) and doc["best"]["trial"] == vals.index(max(vals))
    for t in doc["trials"]:
        report = json.loads((out / t["run"] / "report.json").read_text())
        assert report["final_val"]["cam_loc"] == t["val"]
        cfg = load_config(out / t["run"] / "config.yaml")
        assert cfg.optim.lr == t["settings"]["optim.lr"]
        assert cfg.method.cutmix.cutmix_prob == t["settings"]["method.cutmix.cutmix_prob"]
    test = doc["test"]
    assert test["metric"] == "cam_v2" and test["seeds"] == [0, 1] and len(test["values"]) == 2
    assert test["mean"] == pytest.approx(np.mean(test["values"]))
    assert test["ci95"][0] <= test["mean"] <= test["ci95"][1]
    best_cfg = load_config(out / test["rows"][1]["run"] / "config.yaml")
    assert best_cfg.train.seed == 1 and best_cfg.optim.lr == doc["best"]["settings"]["optim.lr"]
    md = (out / "search.md").read_text()
    assert "| 0" in md and "**best**" in md and "95% CI" in md
    # the same command again reuses everything; a larger budget trains only the new trial
    r2 = _search(tmp_path, *args[:3], "4", *args[4:])
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert r2.stdout.count("training ->") in (1, 3)         # trial 3 (and new seeds if it won)
    assert "trial 0: reusing" in r2.stdout
    assert len(json.loads((out / "search.json").read_text())["trials"]) == 4
    # the table benchmark takes the search's own test rows (nothing trained or scored again)
    results = tmp_path / "RESULTS.md"
    t = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "wsol_table.py"), "--searches", str(out),
                        "--results", str(results)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert t.returncode == 0, t.stderr[-2000:]
    assert "| resnet_tiny | cutmix (tuned, cam_loc) | 2 |" in t.stdout and "wsol_table --searches" in results.read_text()
    # another search in the same folder is refused, naming what differs
    r3 = _search(tmp_path, *args[:-2], "--space", "optim.lr=loguniform:1e-4:1e-1")
    assert r3.returncode == 1 and "holds another search (different space" in r3.stderr


def test_failed_trials_are_recorded_and_a_bad_space_is_named(tmp_path):
    out = tmp_path / "f"
    r = _search(tmp_path, "--method", "natural", "--trials", "2", "--seeds", "1", "--out", str(out),
                "--set", f"model.pretrained={str(tmp_path / 'missing.safetensors')!r}")
    assert r.returncode == 1 and "no trial finished with a finite cam_loc" in r.stderr
    doc = json.loads((out / "search.json").read_text())
    assert [t["status"] for t in doc["trials"]] == ["failed", "failed"]
    assert all("missing.safetensors" in t["error"] for t in doc["trials"])
    r = _search(tmp_path, "--method", "acol", "--trials", "2", "--out", str(tmp_path / "g"),
                "--space", "method.acol.acol_threshold=uniform:0.5:3")
    assert r.returncode == 2 and "acol_threshold" in r.stderr and "trial " in r.stderr
    r = _search(tmp_path, "--method", "acol", "--out", str(tmp_path / "h"), "--space", "optim.lr=normal:0:1")
    assert r.returncode == 2 and "--space 'optim.lr=normal:0:1'" in r.stderr


def test_proxy_is_for_trials_only_and_the_metric_follows_the_method(tmp_path):
    from wsol.cli.search import Search, parse

    s = Search(parse(["--method", "art", "--arch", "resnet_tiny", "--out", str(tmp_path / "p"), "--proxy", "0.25",
                      "--set", "method.art.bn_stats=ce"]))
    assert s.metric == "grad_loc" and "method.art.bn_stats" not in s.space and "method.art.lam" in s.space
    trial = s.trial_cmd(s.trial_settings(0))
    final = s.trial_cmd(s.trial_settings(0), proxy=False)
    assert "data.proxy=true" in trial and "data.proxy_fraction=0.25" in trial
    assert not any(a.startswith("data.proxy") for a in final)
    assert "val.select_metric=grad_loc" in trial
    s = Search(parse(["--method", "natural", "--dataset", "openimages", "--arch", "resnet_tiny", "--out",
                      str(tmp_path / "q")]))
    assert s.metric == "cam_pxap" and s.masks
    with pytest.raises(SystemExit):
        parse(["--method", "natural", "--out", str(tmp_path / "r"), "--proxy", "1.5"])


def test_fsl_baseline_search_gets_the_same_budget_and_not_the_method_keys(tmp_path, capsys):
    from wsol.cli.search import fsl_argv, fsl_dir, parse

    args = parse(["--method", "art", "--arch", "resnet_tiny", "--trials", "5", "--seeds", "2", "--jobs", "2",
                  "--search-seed", "3", "--epochs", "4", "--out", str(tmp_path / "a"), "--fsl",
                  "--set", "method.art.bn_stats=ce", "--set", "model.pretrained=false", "--fsl-set", "train.epochs=50"])
    assert fsl_dir(args) == tmp_path / "a" / "fsl"
    fsl = parse(fsl_argv(args))
    assert (fsl.method, fsl.trials, fsl.seeds, fsl.jobs, fsl.search_seed, fsl.arch) == ("fsl", 5, 2, 2, 3, "resnet_tiny")
    assert fsl.overrides == ["model.pretrained=false", "train.epochs=50"] and fsl.epochs is None
    assert fsl.out == tmp_path / "a" / "fsl" and fsl.fsl is None
    assert fsl_dir(parse(["--method", "art", "--out", "x", "--fsl", str(tmp_path / "shared")])) == tmp_path / "shared"
    # a bad FSL-only setting stops both searches before anything trains, naming the FSL search
    from wsol.cli.search import main
    assert main(["--method", "natural", "--arch", "resnet_tiny", "--out", str(tmp_path / "b"), "--fsl",
                 "--fsl-set", "method.fsl.holdout_fraction=2"]) == 2
    err = capsys.readouterr().err
    assert "the --fsl baseline search" in err and "holdout_fraction" in err, err
    assert not (tmp_path / "b" / "search.json").exists() and not (tmp_path / "b" / "fsl" / "search.json").exists()
    for bad in (["--method", "art", "--out", "x", "--fsl-set", "train.epochs=5"],
                ["--method", "fsl", "--out", "x", "--fsl"]):
        with pytest.raises(SystemExit):
            parse(bad)


def test_search_with_the_fsl_baseline_end_to_end(tmp_path):
    out = tmp_path / "c"
    r = _search(tmp_path, "--method", "cutmix", "--trials", "1", "--seeds", "1", "--out", str(out),
                "--set", "method.cutmix.cutmix_prob=0.5", "--fsl", "--fsl-set", "train.epochs=2")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.index("the FSL baseline first") < r.stdout.index("search: cutmix")
    doc = json.loads((out / "search.json").read_text())
    fsl = json.loads((out / "fsl" / "search.json").read_text())
    assert doc["fsl"] == "fsl" and fsl["method"] == "fsl" and fsl["budget"] == 1 and fsl["test"]["seeds"] == [0]
    assert fsl["metric"] == "cam_loc" and "method.cutmix.cutmix_prob=0.5" not in fsl["spec"]["fixed"]
    assert load_config(out / "fsl" / fsl["trials"][0]["run"] / "config.yaml").train.epochs == 2
    assert load_config(out / doc["trials"][0]["run"] / "config.yaml").train.epochs == 1
    md = (out / "search.md").read_text()
    assert "| cutmix (tuned, cam_loc) | 0 |" in md and "| fsl (tuned, cam_loc) | 0 |" in md
    # the table brings the FSL rows along, once, even when its folder is given too
    t = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "wsol_table.py"), "--searches", str(out),
                        str(out / "fsl"), "--no-record"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert t.returncode == 0, t.stderr[-2000:]
    assert t.stdout.count("| resnet_tiny | fsl (tuned, cam_loc) | 1 |") == 1
    assert "| resnet_tiny | cutmix (tuned, cam_loc) | 1 |" in t.stdout
    # and which setting each search chose
    assert "| fsl (tuned, cam_loc) | 1 / 1 | 0 | cam_loc " in t.stdout
    assert t.stdout.count("cutmix_prob 0.5") == 0 and "| cutmix (tuned, cam_loc) | 1 / 1 | 0 |" in t.stdout


def test_search_study_end_to_end(tmp_path):
    """benchmarks/search_study.py on tiny data: natural (Grad) and FSL searched with one trial each,
    the table from their reports, FSL's row in natural's search.md."""
    env = dict(os.environ, ART_WSOL_CACHE=str(tmp_path / "cache"))
    results = tmp_path / "RESULTS.md"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "search_study.py"), "--entries", "natural_grad", "fsl",
           "--trials", "1", "--seeds", "1", "--jobs", "2", "--pretrain-epochs", "1", "--epochs", "1",
           "--out", str(tmp_path / "study"), "--reports", str(tmp_path / "kept"), "--results", str(results),
           "--set", "train.epochs=1",
           *[a for kv in TINY[1::2] for a in ("--set", kv)]]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "| resnet_tiny | natural_grad | 1 |" in r.stdout and "| resnet_tiny | fsl | 1 |" in r.stdout
    assert "fsl − natural_grad" in r.stdout
    kept = tmp_path / "kept"
    assert "| fsl | 0 |" in (kept / "natural_grad" / "search.md").read_text()
    fsl = json.loads((kept / "fsl" / "search.json").read_text())
    assert fsl["metric"] == "cam_loc" and fsl["test"]["rows"][0]["seed"] == 0
    assert "wsol_table --searches" in results.read_text()
    # the kept reports alone make the table again: nothing trains, not even the pre-training
    import shutil

    shutil.rmtree(tmp_path / "study")
    r2 = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert "from its kept report" in r2.stdout and "training ->" not in r2.stdout
    assert "| resnet_tiny | fsl | 1 |" in r2.stdout and not (tmp_path / "study").exists()
