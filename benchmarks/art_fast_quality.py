#!/usr/bin/env python
"""Does ART's fast mode localize as well as the faithful one? Train both, score Grad maps on test.

    python benchmarks/art_fast_quality.py --seeds 0 1 --epochs 15 --jobs 2

Trains `art` (faithful) and `art` with `method.art.mode=fast` (and, with --with-natural, natural
training) on the built-in synthetic benchmark (configs/demo/base.yaml unless --config), one run
per seed, `--jobs` runs at a time (one torch thread each when > 1). Each run's last checkpoint is
scored on the test split with the wsolevaluation protocol: Grad and CAM MaxBoxAccV2 (mean over
IoU 30/50/70) and MaxBoxAcc (IoU 50), plus top-1 accuracy. Prints a table (per run, then mean
and spread per mode) and appends it to benchmarks/RESULTS.md with the machine, date and command.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from wsol.engine.evaluate import EvalOptions, evaluate_checkpoint  # noqa: E402

RESULTS = Path(__file__).with_name("RESULTS.md")
MODES = {"natural": ["--method", "natural"], "art": ["--method", "art"],
         "art_fast": ["--method", "art", "--set", "method.art.mode=fast"]}


def train_run(mode: str, seed: int, args) -> dict:
    out = args.out / f"{mode}-seed{seed}"
    cmd = [sys.executable, str(REPO / "tools" / "train_wsol.py"), "--config", str(args.config), *MODES[mode],
           "--seed", str(seed), "--epochs", str(args.epochs), "--out", str(out), "--quiet",
           "--set", "val.every=5", *[a for s in args.set for a in ("--set", s)]]
    env = dict(os.environ)
    if args.jobs > 1:
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} seed {seed} failed:\n{proc.stderr[-2000:]}")
    return {"mode": mode, "seed": seed, "run": out, "train_s": elapsed}


def score(run: dict, data: str) -> dict:
    row = dict(run)
    for saliency in ("grad", "cam"):
        res = evaluate_checkpoint(run["run"] / "checkpoint-last", data,
                                  EvalOptions(split="test", saliency=saliency, num_overlays=0),
                                  out_dir=run["run"])
        row[f"{saliency}_v2"] = res["MaxBoxAccV2"]["mean"]
        row[f"{saliency}_v1"] = res["MaxBoxAcc"]["50"]
        row["top1"] = res["top1_acc"]
        row["num_test"] = res["num_images"]
    return row


def table(rows: list[dict]) -> list[str]:
    cols = ("top1", "grad_v2", "grad_v1", "cam_v2", "cam_v1")
    head = ["| mode | seed | train time (s) | top-1 acc | Grad MaxBoxAccV2 | Grad MaxBoxAcc | CAM MaxBoxAccV2 | "
            "CAM MaxBoxAcc |", "|---|---|---|---|---|---|---|---|"]
    body = [f"| {r['mode']} | {r['seed']} | {r['train_s']:.0f} | " + " | ".join(f"{r[c]:.1f}" for c in cols) + " |"
            for r in rows]
    for mode in dict.fromkeys(r["mode"] for r in rows):
        sub = [r for r in rows if r["mode"] == mode]
        cells = []
        for c in cols:
            vals = [r[c] for r in sub]
            spread = statistics.stdev(vals) if len(vals) > 1 else 0.0
            cells.append(f"**{statistics.mean(vals):.1f}** ± {spread:.1f}")
        body.append(f"| **{mode}** (mean ± sd) | {len(sub)} seeds | {statistics.mean(r['train_s'] for r in sub):.0f} | "
                    + " | ".join(cells) + " |")
    return head + body


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "demo" / "base.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--with-natural", action="store_true")
    ap.add_argument("--set", action="append", default=[], help="extra config overrides for every run")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "art_fast_quality")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)
    modes = (["natural"] if args.with_natural else []) + ["art", "art_fast"]
    jobs = [(m, s) for m in modes for s in args.seeds]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        runs = list(pool.map(lambda job: train_run(*job, args), jobs))
    data = json.loads((runs[0]["run"] / "checkpoint-last.json").read_text())["data"]
    rows = [score(r, data) for r in runs]
    lines = table(rows)
    print("\n".join(lines))
    if not args.no_record:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        text = [f"\n## art_fast_quality: faithful vs fast ART on the synthetic benchmark ({now})\n",
                f"- machine: {platform.platform()}, {os.cpu_count()} CPUs",
                f"- command: `python benchmarks/art_fast_quality.py {' '.join(sys.argv[1:])}`",
                f"- config: {args.config.relative_to(REPO)}, {args.epochs} epochs, last checkpoint scored on the "
                f"test split ({rows[0]['num_test']} images), wsolevaluation protocol, interval 0.01; "
                f"{args.jobs} runs at a time\n", *lines, ""]
        with open(RESULTS, "a", encoding="utf-8") as fh:
            fh.write("\n".join(text) + "\n")


if __name__ == "__main__":
    main()
