"""The README's demo command, end to end, on a small synthetic set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_and_writes_report(tmp_path):
    out = tmp_path / "demo"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "demo.py"), "--out", str(out), "--classes", "3",
                        "--images-per-class", "6", "--size", "64"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1] == f"Report: {(out / 'report.md').resolve()}"
    report = (out / "report.md").read_text()
    assert "masks found:     18 of 18" in report
    assert report.count("| True |") == 5  # every backbone: logits == fc(GAP(features))
    assert (out / "samples.png").stat().st_size > 10_000
    assert "identical logits = True" in r.stdout
    for saliency in ("grad", "cam"):
        res = json.loads((out / "run" / f"eval-test-{saliency}.json").read_text())
        assert res["num_images"] == 9 and "MaxBoxAccV2" in res and "PxAP" in res
    assert "| grad |" in report and "| cam |" in report and "untrained" in report
    assert len(list((out / "localize").glob("*.overlay.png"))) == 3
