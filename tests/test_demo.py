"""The README's demo command and benchmarks/wsol_table.py, end to end, on tiny synthetic sets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--classes", "3", "--images-per-class", "12", "--size", "64", "--image-size", "56",
        "--set", "data.val_per_class=1"]


def run(args: list[str], tmp_path: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, ART_WSOL_CACHE=str(tmp_path / "cache"))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_demo_trains_scores_localizes_and_reports(tmp_path):
    out = tmp_path / "demo"
    cmd = [str(ROOT / "tools" / "demo.py"), "--out", str(out), "--pretrain-epochs", "1", "--epochs", "1", *TINY]
    r = run(cmd, tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1] == f"Report: {(out / 'report.md').resolve()}"
    for step in range(1, 7):
        assert f"[{step}/6]" in r.stdout
    report = (out / "report.md").read_text()
    # the table: one row per trained model, every column filled with a number
    sizes = set()
    for method in ("natural", "art", "adl"):
        row = next(line for line in report.splitlines() if line.startswith(f"| {method} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 9 and all(c.replace(".", "").isdigit() for c in cells[1:8]), row
        assert (out / method / "checkpoint-last.safetensors").is_file()
        cfg = (out / method / "config.yaml").read_text()
        assert "pretrained: " + str(out / "pretrain" / "checkpoint-last.safetensors") in cfg
        evaluated = json.loads((out / method / "eval" / "eval-test-grad.json").read_text())
        sizes.add(evaluated["num_images"])
        assert evaluated["MaxBoxAccV2"]["mean"] >= 0
    assert len(sizes) == 1 and sizes.pop() >= 3  # every model scored on the same test split
    assert "mode: fast" in (out / "art" / "config.yaml").read_text()
    assert "lr_milestones:\n  - 2" in (out / "art" / "config.yaml").read_text()  # the quick profile's schedule
    assert "## Real photos with an ImageNet classifier" in report
    assert "art − natural:" in report and "Centre-Gaussian baseline" in report
    for fig in ("boxacc-curves.png", "natural-vs-art-overlays.png", "training-curves.png"):
        assert f"]({fig})" in report and (out / fig).stat().st_size > 10_000
    assert len(list((out / "localize").glob("*.overlay.png"))) == 3
    # a second run with the same settings reuses every finished stage
    r2 = run(cmd, tmp_path)
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert r2.stdout.count("reusing the finished run") == 4


@pytest.mark.parametrize("dataset", ["openimages", pytest.param("ilsvrc", marks=pytest.mark.slow)])
def test_demo_on_the_wsolevaluation_stand_ins(tmp_path, dataset):
    """tools/demo.py --dataset ilsvrc|openimages: the same pipeline on a stand-in, with the dataset's metrics."""
    out = tmp_path / "demo"
    r = run([str(ROOT / "tools" / "demo.py"), "--dataset", dataset, "--out", str(out), "--pretrain-epochs", "1",
             "--epochs", "1", "--methods", "natural", *TINY], tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = (out / "report.md").read_text()
    assert ("OpenImages layout" if dataset == "openimages" else "ILSVRC layout") in report
    head = "| model | Grad PxAP | CAM PxAP |" if dataset == "openimages" else "| model | Grad GT-known Loc |"
    assert head in report
    row = next(line for line in report.splitlines() if line.startswith("| natural |"))
    assert all(c.strip().replace(".", "").isdigit() for c in row.strip("|").split("|")[1:-1]), row
    evaluated = json.loads((out / "natural" / "eval" / "eval-test-cam.json").read_text())
    assert evaluated["dataset"] == dataset
    assert ("PxAP" in evaluated) == (dataset == "openimages") and ("top5_loc" in evaluated) == (dataset == "ilsvrc")
    assert (out / "natural-vs-art-overlays.png").stat().st_size > 5000


def test_demo_on_given_data_with_images_apart(tmp_path):
    """--data (wsolevaluation metadata) with --image-root: the demo on the user's dataset."""
    import shutil

    from wsol.data.synthetic_wsoleval import make_synthetic_openimages

    make_synthetic_openimages(tmp_path / "oi", num_classes=2, images_per_class=6, size=48, val_per_class=1,
                              test_per_class=2, progress=False)
    shutil.copytree(tmp_path / "oi" / "metadata", tmp_path / "md" / "metadata")
    out = tmp_path / "demo"
    r = run([str(ROOT / "tools" / "demo.py"), "--dataset", "openimages", "--data", str(tmp_path / "md"),
             "--image-root", str(tmp_path / "oi" / "images" / "OpenImages"), "--out", str(out),
             "--pretrain-epochs", "1", "--epochs", "1", "--methods", "natural", "--image-size", "48"], tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = (out / "report.md").read_text()
    assert f"on `{tmp_path / 'md'}` (openimages)" in report and "| natural |" in report
    assert not (tmp_path / "cache").exists()          # nothing generated: the given data was used


def test_demo_bad_option_is_one_clear_error(tmp_path):
    r = run([str(ROOT / "tools" / "demo.py"), "--out", str(tmp_path / "d"), "--set", "train.epoch=3"], tmp_path)
    assert r.returncode == 1
    assert "unknown key 'epoch'" in r.stdout and "Traceback" not in r.stdout + r.stderr


def test_wsol_table_runs_pairs_and_records(tmp_path):
    results = tmp_path / "RESULTS.md"
    cmd = [str(ROOT / "benchmarks" / "wsol_table.py"), "--methods", "art", "--seeds", "0", "1",
           "--pretrain-epochs", "1", "--epochs", "1", "--jobs", "2", "--out", str(tmp_path / "runs"),
           "--results", str(results), "--eval-batch-size", "16",
           *[a for kv in ("data.synthetic.num_classes=3", "data.synthetic.images_per_class=12",
                          "data.synthetic.size=64", "data.image_size=56", "data.resize_size=64",
                          "data.val_per_class=1") for a in ("--set", kv)]]
    r = run(cmd, tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    text = results.read_text()
    assert "## wsol_table" in text and "benchmarks/wsol_table.py --methods art" in text
    # natural is added for the paired comparison; 2 seeds -> mean ± sd cells
    assert "| resnet_tiny | natural | 2 |" in text and "| resnet_tiny | art (fast) | 2 |" in text
    assert "| resnet_tiny | art (fast) − natural |" in text and "Centre-Gaussian baseline" in text
    assert text.count("| resnet_tiny | art (fast) | ") == 3  # aggregate row + one per seed
    for seed in (0, 1):
        art = tmp_path / "runs" / "resnet_tiny" / f"seed{seed}" / "art"
        assert json.loads((art / "table-row-last.json").read_text())["num_images"] == 18
        assert f"seed{seed}/pretrain/checkpoint-last.safetensors" in (art / "config.yaml").read_text()
    # rerun: every run and score is reused, nothing retrained
    r2 = run(cmd + ["--no-record"], tmp_path)
    assert r2.returncode == 0 and r2.stdout.count("reusing finished run") == 6 and "training ->" not in r2.stdout
    # a run stopped part-way (no report.json yet) is continued with --resume, not started again
    stopped = tmp_path / "runs" / "resnet_tiny" / "seed1" / "art"
    (stopped / "report.json").unlink()
    r_resume = run(cmd + ["--no-record"], tmp_path)
    assert r_resume.returncode == 0, r_resume.stderr[-3000:]
    assert "art resnet_tiny seed 1: resuming" in r_resume.stdout and (stopped / "report.json").is_file()
    # other settings under the same --out: refused before anything trains, naming run and key
    r_other = run([*cmd[:cmd.index("--epochs") + 1], "2", *cmd[cmd.index("--epochs") + 2:], "--no-record"], tmp_path)
    assert r_other.returncode == 2 and "training ->" not in r_other.stdout
    assert "holds a finished run with another config" in r_other.stderr and "train.epochs: 1 there, 2 asked" in r_other.stderr
    # --runs: score finished run folders (backbone, method, seed from their config.yaml), no training
    runs = [str(tmp_path / "runs" / "resnet_tiny" / f"seed{s}" / m) for s in (0, 1) for m in ("natural", "art")]
    r3 = run([str(ROOT / "benchmarks" / "wsol_table.py"), "--runs", *runs, "--checkpoint", "last",
              "--results", str(results)], tmp_path)
    assert r3.returncode == 0, r3.stderr[-3000:]
    assert "| resnet_tiny | art (fast) | 2 |" in r3.stdout and "training ->" not in r3.stdout
    assert "## wsol_table --runs" in results.read_text()
    bad = run([str(ROOT / "benchmarks" / "wsol_table.py"), "--runs", str(tmp_path)], tmp_path)
    assert bad.returncode != 0 and "is not a run folder" in bad.stderr
    # the ART diagnostics run on a finished natural run of the table
    diag = run([str(ROOT / "benchmarks" / "art_diagnostics.py"), "--checkpoint",
                str(tmp_path / "runs" / "resnet_tiny" / "seed0" / "natural"), "--batch", "4", "--betas", "1", "50",
                "--epsilons", "2/255", "--no-record"], tmp_path)
    assert diag.returncode == 0, diag.stderr[-3000:]
    assert "| L_attr, beta 50 |" in diag.stdout and "| 2/255 | 3 |" in diag.stdout
    assert "| centre Gaussian (ignores the image) |" in diag.stdout
    # segmentation on the same classifiers: pseudo masks (both maps) and the second stage, paired by seed
    seg = run([str(ROOT / "benchmarks" / "segmentation_table.py"), "--runs-root", str(tmp_path / "runs"),
               "--methods", "art", "--seeds", "0", "1", "--seg-epochs", "1", "--out", str(tmp_path / "seg"),
               "--results", str(results)], tmp_path)
    assert seg.returncode == 0, seg.stderr[-3000:]
    assert "| art (fast) − natural |" in seg.stdout and "| natural | 2 |" in seg.stdout
    assert "## segmentation_table" in results.read_text()
    report = json.loads((tmp_path / "seg" / "resnet_tiny" / "seed1" / "art" / "segmenter" / "report.json").read_text())
    assert report["test"]["num_images"] == 18 and report["epochs"] == 1
    missing = run([str(ROOT / "benchmarks" / "segmentation_table.py"), "--runs-root", str(tmp_path / "runs"),
                   "--methods", "pgd", "--seeds", "0", "--no-record"], tmp_path)
    assert missing.returncode == 2 and "no trained classifier" in missing.stderr
