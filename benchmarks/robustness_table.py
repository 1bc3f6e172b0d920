#!/usr/bin/env python
"""A reduced CIFAR-10 row of the ART paper's robustness tables, on data available offline.

    python benchmarks/robustness_table.py --methods natural art --seeds 0 1 --epochs 15

CIFAR-10 cannot be downloaded here, so the data is the synthetic CIFAR-10-format set
(wsol/data/synthetic_cifar.py: 10 shape x texture classes at 32 px, --train-per-class /
--test-per-class images) and CIFAR-10-C is regenerated from its test split with the CIFAR-10-C
constants (tools/make_cifar10c.py; labelled "CIFAR-10-C-regenerated (not bit-identical)").
Models: configs/cifar10/<method>.yaml (ART's CIFAR-10 recipe: eps 8/255, 3 steps of 5/255,
k 1000, beta 50, lambda 0.5, signed projection) on a CPU-sized WRN (--arch) with a shorter
schedule (--epochs, lr decay at 50% and 80%). Scored with the `art2020` preset, reduced as the
printed protocol line says (--iterations, --ig-steps, --attack-images), PGD-40 at 8/255 on
--pgd-images test images, natural accuracy on the whole test split, and the regenerated
CIFAR-10-C (15 art2020 columns, mean over the 5 severities). Mean ± sd over seeds.

Finished runs and reports under --out are reused, so an interrupted table resumes. Prints the
tables and appends them to benchmarks/RESULTS.md with machine, date and command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from wsol.attacks.presets import get_preset
from wsol.config import load_config
from wsol.data.cifar10c_regen import regenerate_cifar10c
from wsol.data.robustness import CIFAR10C_ART2020, read_cifar10
from wsol.data.synthetic_cifar import make_synthetic_cifar
from wsol.engine.checkpoint import load_checkpoint
from wsol.engine.corruption_eval import PAPER_CIFAR10C, SHORT_NAMES, evaluate_cifar10c
from wsol.engine.robustness_eval import PAPER_ROBUSTNESS, evaluate_robustness
from wsol.engine.train import finished_run, resumable_run, train

try:
    from _record import append_entry, git_commit
except ImportError:  # imported as benchmarks.robustness_table or by path: benchmarks/ is not on sys.path
    from benchmarks._record import append_entry, git_commit

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("RESULTS.md")


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def run_config(method: str, seed: int, args, data: Path):
    e = args.epochs
    overrides = [f"data.root={str(data)!r}", f"model.arch={args.arch}", f"train.epochs={e}", f"train.seed={seed}",
                 f"train.batch_size={args.batch_size}", "train.device=cpu", f"optim.lr={args.lr}",
                 f"optim.lr_milestones=[{round(0.5 * e)}, {round(0.8 * e)}]", f"val.pgd_every={e}",
                 f"val.pgd_max_images={args.pgd_images}", f"data.val_per_class={args.val_per_class}",
                 "model.kwargs.drop_rate=0.0", *args.set]
    return load_config(REPO / "configs" / "cifar10" / f"{method}.yaml", overrides)


def train_once(method: str, seed: int, args, data: Path) -> Path:
    out = args.out / f"{method}-seed{seed}"
    cfg = run_config(method, seed, args, data)
    if finished_run(out, cfg) is not None:
        log(f"{method} seed {seed}: reusing {out}")
        return out
    resume = resumable_run(out, cfg)
    log(f"{method} seed {seed}: {'resuming' if resume else 'training'} -> {out}")
    t = time.perf_counter()
    train(None if resume else cfg, out, resume=resume)
    prev = json.loads((out / "timing.json").read_text())["train_s"] if resume and (out / "timing.json").is_file() else 0
    (out / "timing.json").write_text(json.dumps({"train_s": prev + time.perf_counter() - t}))
    return out


def score(run: Path, args, data: Path, c10c: Path) -> dict:
    cache = run / "robustness-table.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    model, _ = load_checkpoint(run / "checkpoint-last")
    torch.manual_seed(0)
    preset = get_preset("art2020", "cifar10", iterations=args.iterations,
                        attack_saliency={"steps": args.ig_steps}, metric_saliency={"steps": args.ig_steps})
    rep = evaluate_robustness(model, read_cifar10(data, "test"), preset, pgd_images=args.pgd_images,
                              attack_images=args.attack_images, attack_batch_size=args.attack_batch_size,
                              progress=False, checkpoint_path=run / "robustness-table.partial.json")
    rep["cifar10c"] = evaluate_cifar10c(model, c10c, corruptions=CIFAR10C_ART2020, progress=False)
    rep["train_s"] = json.loads((run / "timing.json").read_text())["train_s"] if (run / "timing.json").is_file() \
        else float("nan")
    cache.write_text(json.dumps(rep, default=float))
    a = rep["attribution"]["attack"]
    log(f"scored {run.name}: natural {rep['natural_accuracy']:.1f}, PGD-40 {rep['pgd']['accuracy']:.1f}, "
        f"IN {a['IN']:.1f}, K {a['K']:.1f}, CIFAR-10-C mean {rep['cifar10c']['mean']:.1f}")
    return rep


def ms(values: list[float]) -> str:
    v = np.asarray(values, float)
    return f"{v.mean():.2f}" if len(v) == 1 else f"{v.mean():.2f} ± {v.std(ddof=1):.2f}"


def tables(reports: dict[str, list[dict]]) -> list[str]:
    lines = ["| Dataset | Approach | seeds | IN | K | Natural | PGD-40 | IN, random noise | K, random noise | train min |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for method, reps in reports.items():
        att = [r["attribution"]["attack"] for r in reps]
        rnd = [r["attribution"]["random"] for r in reps]
        lines.append(f"| synthetic CIFAR-10-format | {method} | {len(reps)} | {ms([a['IN'] for a in att])} | "
                     f"{ms([a['K'] for a in att])} | {ms([r['natural_accuracy'] for r in reps])} | "
                     f"{ms([r['pgd']['accuracy'] for r in reps])} | {ms([a['IN'] for a in rnd])} | "
                     f"{ms([a['K'] for a in rnd])} | {np.mean([r['train_s'] for r in reps]) / 60:.1f} |")
    for approach, i, k, nat, adv in PAPER_ROBUSTNESS["cifar10"]:
        lines.append(f"| CIFAR-10 (paper, WRN-28-10) | {approach} | | {i:.2f} | {k:.2f} | {nat:.2f} | {adv:.2f} | | | |")
    heads = [SHORT_NAMES[c] for c in CIFAR10C_ART2020]
    lines += ["", "Top-1 accuracy (%) on CIFAR-10-C-regenerated (not bit-identical) of the synthetic test split, "
              "mean over severities 1-5 (and over seeds):", "",
              "| Model | " + " | ".join(heads) + " | Mean |", "|" + "---|" * (len(heads) + 2)]
    for method, reps in reports.items():
        vals = [np.mean([r["cifar10c"]["results"][c]["mean"] for r in reps]) for c in CIFAR10C_ART2020]
        lines.append(f"| {method} | " + " | ".join(f"{v:.2f}" for v in vals) + f" | {np.mean(vals):.2f} |")
    for name, vals in PAPER_CIFAR10C.items():
        lines.append(f"| {name} (paper, CIFAR-10-C) | " + " | ".join(f"{v:.2f}" for v in vals)
                     + f" | {np.mean(vals):.2f} |")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="+", default=["natural", "art"],
                    choices=("natural", "art", "pgd", "ig_norm", "ig_sum_norm"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--arch", default="wrn_10_1")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--train-per-class", type=int, default=300)
    ap.add_argument("--test-per-class", type=int, default=100)
    ap.add_argument("--val-per-class", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=10, help="attribution attack iterations (art2020: 50)")
    ap.add_argument("--ig-steps", type=int, default=20, help="IG points of attack and metric maps (art2020: 100)")
    ap.add_argument("--attack-images", type=int, default=100, help="attacked correct images (art2020: 1001)")
    ap.add_argument("--attack-batch-size", type=int, default=50)
    ap.add_argument("--pgd-images", type=int, default=1000)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every run")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "robustness_table")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    data = args.out / "data"
    make_synthetic_cifar(data, args.train_per_class, args.test_per_class, progress=False)
    c10c = regenerate_cifar10c(data, args.out / "cifar10c-regenerated", corruptions=CIFAR10C_ART2020, progress=False)
    log(f"data: {data} and {c10c}")
    reports = {m: [score(train_once(m, s, args, data), args, data, c10c) for s in args.seeds] for m in args.methods}
    lines = tables(reports)
    print("\n".join(lines))
    if not args.no_record:
        n = reports[args.methods[0]][0]
        protocol = (f"data: synthetic CIFAR-10-format set ({args.train_per_class} train / {args.test_per_class} test "
                    f"images per class, not CIFAR-10); models: configs/cifar10/<method>.yaml with arch {args.arch}, "
                    f"{args.epochs} epochs, batch {args.batch_size}, lr {args.lr} (x0.1 at 50% and 80%), dropout 0; "
                    f"scores: `art2020` preset reduced to {args.iterations} attack iterations (50), {args.ig_steps} IG "
                    f"points for attack and metric maps (100), {args.attack_images} attacked images (1001); PGD-40 at "
                    f"8/255, step 2/255, random start on {n['pgd']['num_images']} test images; natural accuracy on "
                    f"{n['num_images']}; last checkpoint")
        append_entry(args.results, "robustness_table: a reduced CIFAR-10 row, natural vs ART, offline data", [
            f"machine: {platform.platform()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads; "
            f"commit {git_commit()}; total {(time.perf_counter() - t0) / 60:.0f} min",
            f"command: `python benchmarks/robustness_table.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
            f"protocol: {protocol}"], lines)
        log(f"appended to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
