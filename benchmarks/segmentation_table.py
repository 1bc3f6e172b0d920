#!/usr/bin/env python
"""Weakly supervised segmentation on the synthetic benchmark: pseudo masks of natural vs ART
classifiers, before and after the second stage, over seeds (mean ± sd, paired differences).

    python benchmarks/segmentation_table.py --runs-root runs/wsol_table --backbone resnet_tiny \\
        --methods natural art --seeds 0 1 2 --jobs 2

Takes the classifiers benchmarks/wsol_table.py trained (<runs-root>/<backbone>/seed<k>/<method>/,
their last checkpoints) and, per classifier:
  before  Grad and CAM score maps on the test split (blurred, sigma --blur): PxAP and the
          best-threshold mask IoU (threshold-free / oracle), and the pseudo masks' fg/bg mIoU
          with a per-image Otsu threshold, without and with GrabCut refinement;
  after   tools/train_segmenter.py on the training split's pseudo masks (--stage2-saliency,
          Otsu + GrabCut, the classifier's trunk + DeepLabV3 head, --seg-epochs), scored on the
          test split: mIoU, fg IoU, PxAP of the foreground probability.
No GT mask is used before scoring. Results are cached under --out (an interrupted table resumes);
the table is printed and appended to benchmarks/RESULTS.md with machine, date and command.
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

RESULTS = Path(__file__).with_name("RESULTS.md")
LABELS = {"art": "art (fast)", "art_faithful": "art (faithful)"}
COLUMNS = [  # (key, title)
    ("grad_PxAP", "Grad PxAP"), ("grad_best_IoU", "Grad best-τ IoU"), ("grad_otsu", "Grad pseudo mIoU (Otsu)"),
    ("grad_grabcut", "Grad pseudo mIoU (Otsu+GrabCut)"),
    ("cam_PxAP", "CAM PxAP"), ("cam_best_IoU", "CAM best-τ IoU"), ("cam_otsu", "CAM pseudo mIoU (Otsu)"),
    ("cam_grabcut", "CAM pseudo mIoU (Otsu+GrabCut)"),
    ("stage2_mIoU", "2nd stage mIoU"), ("stage2_fg", "2nd stage fg IoU"), ("stage2_PxAP", "2nd stage PxAP"),
]


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def _threads_env(threads: int) -> dict:
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))


def stage1(run: Path, out: Path, blur: float, threads: int) -> dict:
    """Pseudo-mask scores on the test split for Grad and CAM (cached in out/pseudo-test.json)."""
    cache = out / "pseudo-test.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    code = (
        "import json, sys, torch\n"
        f"torch.set_num_threads({threads})\n"
        "from segmentation.evaluate import score_pseudo_mask_variants\n"
        "from segmentation.maps import checkpoint_val_per_class, open_split\n"
        "from segmentation.pseudo import PseudoMaskOptions\n"
        "from wsol.engine import load_checkpoint\n"
        f"model, meta = load_checkpoint({str(run)!r})\n"
        "split = open_split(meta['data'], 'test', model.num_classes, checkpoint_val_per_class(meta))\n"
        "out = {}\n"
        "for sal in ('grad', 'cam'):\n"
        f"    v = {{'otsu': PseudoMaskOptions(threshold='otsu', blur_sigma={blur}),\n"
        f"         'grabcut': PseudoMaskOptions(threshold='otsu', blur_sigma={blur}, refine='grabcut')}}\n"
        f"    out[sal] = score_pseudo_mask_variants(model, split, sal, meta['image_size'], v, blur_sigma={blur})\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env=_threads_env(threads))
    if proc.returncode != 0:
        raise RuntimeError(f"pseudo masks of {run} failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    out.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(res))
    return res


def stage2(run: Path, out: Path, args, threads: int) -> dict:
    """tools/train_segmenter.py on the classifier's pseudo masks (cached: out/segmenter/report.json)."""
    seg = out / "segmenter"
    if (seg / "report.json").is_file():
        return json.loads((seg / "report.json").read_text())
    cmd = [sys.executable, str(REPO / "tools" / "train_segmenter.py"), "--checkpoint", str(run), "--out", str(seg),
           "--saliency", args.stage2_saliency, "--threshold", "otsu", "--blur", str(args.blur), "--refine", "grabcut",
           "--epochs", str(args.seg_epochs), "--seed", "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_threads_env(threads))
    if proc.returncode != 0:
        raise RuntimeError(f"train_segmenter on {run} failed:\n{proc.stderr[-3000:]}")
    return json.loads((seg / "report.json").read_text())


def one(method: str, seed: int, args, threads: int) -> dict:
    run = args.runs_root / args.backbone / f"seed{seed}" / method / "checkpoint-last"
    out = args.out / args.backbone / f"seed{seed}" / method
    t = time.perf_counter()
    s1 = stage1(run, out, args.blur, threads)
    s2 = stage2(run, out, args, threads)
    log(f"{method} seed {seed}: Grad PxAP {s1['grad']['scoremap']['PxAP']:.1f}, 2nd stage mIoU "
        f"{s2['test']['mIoU']:.1f} ({time.perf_counter() - t:.0f} s)")
    row = {"method": method, "seed": seed, "stage2_s": s2["train_s"],
           "stage2_mIoU": s2["test"]["mIoU"], "stage2_fg": s2["test"]["fg_IoU"], "stage2_PxAP": s2["test"]["PxAP"],
           "pseudo_train_mIoU": s2["pseudo_train"].get("vs_gt_masks", {}).get("mIoU")}
    for sal in ("grad", "cam"):
        r = s1[sal]
        row.update({f"{sal}_PxAP": r["scoremap"]["PxAP"], f"{sal}_best_IoU": r["scoremap"]["best_mask_IoU"],
                    f"{sal}_otsu": r["variants"]["otsu"]["mIoU"], f"{sal}_grabcut": r["variants"]["grabcut"]["mIoU"]})
    row["num_images"] = s1["grad"]["num_images"]
    return row


def _cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def tables(rows: list[dict], methods: list[str]) -> list[str]:
    head = "| method | seeds | " + " | ".join(t for _, t in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 2)]
    for m in methods:
        rs = [r for r in rows if r["method"] == m]
        lines.append(f"| {LABELS.get(m, m)} | {len(rs)} | " + " | ".join(_cell([r[k] for r in rs]) for k, _ in COLUMNS)
                     + " |")
    base = {r["seed"]: r for r in rows if r["method"] == "natural"}
    diffs = ["", "Paired with natural training of the same seed:", "",
             "| difference (same seed) | " + " | ".join(t for _, t in COLUMNS) + " |", "|" + "---|" * (len(COLUMNS) + 1)]
    for m in methods:
        if m == "natural":
            continue
        rs = [r for r in rows if r["method"] == m and r["seed"] in base]
        if rs:
            cells = [_cell([r[k] - base[r["seed"]][k] for r in rs]) for k, _ in COLUMNS]
            diffs.append(f"| {LABELS.get(m, m)} − natural | " + " | ".join(c if c.startswith("-") else "+" + c
                                                                          for c in cells) + " |")
    return lines + (diffs if len(diffs) > 5 else [])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs-root", type=Path, default=REPO / "runs" / "wsol_table")
    ap.add_argument("--backbone", default="resnet_tiny")
    ap.add_argument("--methods", nargs="+", default=["natural", "art"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--blur", type=float, default=3.0, help="Gaussian sigma (pixels) on the score maps")
    ap.add_argument("--stage2-saliency", default="grad")
    ap.add_argument("--seg-epochs", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "segmentation_table")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    args.runs_root, args.out = args.runs_root.resolve(), args.out.resolve()
    if "natural" not in args.methods:
        args.methods.insert(0, "natural")
    missing = [str(p) for m in args.methods for s in args.seeds
               if not (p := args.runs_root / args.backbone / f"seed{s}" / m / "checkpoint-last.json").is_file()]
    if missing:
        print("segmentation_table: error: no trained classifier at " + ", ".join(missing[:4]) +
              " (train them with benchmarks/wsol_table.py)", file=sys.stderr)
        return 2
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(lambda j: one(*j, args, threads), [(m, s) for m in args.methods for s in args.seeds]))
    table = tables(rows, args.methods)
    per_run = ["| method | seed | " + " | ".join(t for _, t in COLUMNS) + " | pseudo (train) vs GT mIoU | 2nd stage s |",
               "|" + "---|" * (len(COLUMNS) + 4)]
    per_run += [f"| {LABELS.get(r['method'], r['method'])} | {r['seed']} | " + " | ".join(f"{r[k]:.1f}" for k, _ in COLUMNS)
                + f" | {r['pseudo_train_mIoU']:.1f} | {r['stage2_s']:.0f} |" for r in rows]
    print("\n".join(table + ["", *per_run]))
    if not args.no_record:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=REPO).stdout.strip() or "unknown"
        cmd = "python benchmarks/segmentation_table.py " + " ".join(argv if argv is not None else sys.argv[1:])
        n = rows[0]["num_images"]
        text = [f"## segmentation_table: pseudo masks and the second stage, natural vs ART "
                f"({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
                f"- machine: {platform.platform()}, {os.cpu_count()} CPUs; commit {commit}; {args.jobs} at a time; "
                f"total {(time.perf_counter() - t0) / 60:.0f} min",
                f"- command: `{cmd}`",
                f"- classifiers: {args.runs_root}/{args.backbone}/seed*/<method>/checkpoint-last (benchmarks/wsol_table.py); "
                f"test split {n} images; score maps blurred sigma {args.blur}; pseudo masks with a per-image Otsu "
                f"threshold; 2nd stage: DeepLabV3 head on the classifier's trunk, {args.seg_epochs} epochs on the "
                f"training split's {args.stage2_saliency} Otsu+GrabCut pseudo masks; mIoU = mean of fg and bg IoU "
                "(pixels pooled over the split)", "", *table, "", "<details><summary>every run</summary>", "",
                *per_run, "", "</details>", "", ""]
        with open(args.results, "a") as fh:
            fh.write("\n".join(text))
        log(f"appended to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
