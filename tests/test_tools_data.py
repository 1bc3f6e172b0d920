"""tools/check_dataset.py and tools/convert_cub.py as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(tool: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "tools" / tool), *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_check_dataset_summary_official_and_wsoleval(tiny_cub, tmp_path):
    r = run("check_dataset.py", tiny_cub)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "layout:          official" in r.stdout
    assert "images:          6" in r.stdout and "classes:         2" in r.stdout
    assert "splits:          train 4, test 2" in r.stdout
    assert "boxes per image: min 1, mean 1.00, max 1" in r.stdout
    assert "masks found:     6 of 6" in r.stdout
    r = run("convert_cub.py", tiny_cub, "--out", tmp_path / "meta", "--val-per-class", "1")
    assert r.returncode == 0 and "train 2, val 2, test 2" in r.stdout
    r = run("check_dataset.py", tmp_path / "meta", "--image-root", tiny_cub / "images")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "layout:          wsoleval" in r.stdout and "splits:          train 2, val 2, test 2" in r.stdout
    assert "masks found:     6 of 6" in r.stdout


def test_check_dataset_lists_every_problem(tiny_cub):
    lines = (tiny_cub / "bounding_boxes.txt").read_text().splitlines()
    lines[0] = "1 2.0 3.0 x 9.0"
    lines[3] = "4 2.0 3.0 0.0 9.0"
    (tiny_cub / "bounding_boxes.txt").write_text("\n".join(lines) + "\n")
    img = tiny_cub / "images" / "002.Blue_Square" / "Blue_Square_0002.jpg"
    img.write_bytes(img.read_bytes()[:200])
    (tiny_cub / "segmentations" / "001.Red_Square" / "Red_Square_0001.png").unlink()
    r = run("check_dataset.py", tiny_cub)
    assert r.returncode == 1
    assert "bounding_boxes.txt:1: field 'w' is not a number: 'x'" in r.stdout
    assert "bounding_boxes.txt:4: box has zero or negative area" in r.stdout
    r2 = run("check_dataset.py", tiny_cub.parent / "missing")
    assert r2.returncode == 1 and "dataset folder not found" in r2.stdout


def test_check_dataset_decodes_images_and_masks(tiny_cub):
    img = tiny_cub / "images" / "002.Blue_Square" / "Blue_Square_0002.jpg"
    img.write_bytes(img.read_bytes()[:300])
    (tiny_cub / "segmentations" / "001.Red_Square" / "Red_Square_0001.png").unlink()
    r = run("check_dataset.py", tiny_cub)
    assert r.returncode == 1
    assert "Blue_Square_0002.jpg: unreadable or corrupt image" in r.stdout
    assert "no mask for 001.Red_Square/Red_Square_0001.jpg" in r.stdout
