#!/usr/bin/env python
"""The paper's WSOL table on the built-in synthetic benchmark, over seeds (mean ± sd).

    python benchmarks/wsol_table.py --backbones resnet_tiny --methods natural pgd adl art \\
        --seeds 0 1 2 --jobs 2

Protocol (the CPU stand-in for the paper's ImageNet-initialised runs; configs/demo/):
  stage 1  for every backbone and seed, a natural model is trained from scratch
           (configs/demo/base.yaml, --pretrain-epochs);
  stage 2  every method is fine-tuned from that checkpoint for the same epochs with a fresh
           classifier (configs/demo/finetune.yaml, --epochs), so methods differ only in their
           objective. --scratch trains every method from scratch instead (stage 1 skipped).
Each stage-2 run's LAST checkpoint is scored, as soon as it finishes and while the other runs
still train (--score-jobs worker processes), on the test split (never seen in training or
selection): Grad and CAM GT-known / Top-1 Loc under the ART paper's fixed-threshold protocol
(REFERENCE.md §6.5), top-1 accuracy, and Grad / CAM MaxBoxAccV2 (wsolevaluation protocol).

Methods: natural, pgd (PGD-AT, CUB preset: eps 2/255, 7 steps), adl (ADL layers on), art (the
fast mode), art_faithful (the official attack, ~10x the cost of fast), ig_norm, ig_sum_norm;
add `--set key=value` for every run, or `--method-set METHOD key=value` for one method.
Finished runs and scores are kept under --out and reused, and a run stopped part-way continues
from its last finished epoch (train_wsol.py --resume), so an interrupted table resumes.

Scoring finished runs instead (e.g. the paper presets trained on the real CUB-200-2011 on a GPU):

    python benchmarks/wsol_table.py --runs runs/cub/resnet50-* runs/cub/vgg_gap-* --data CUB_200_2011

reads backbone, method and seed from each run's config.yaml, scores its checkpoint-best (or
--checkpoint last) on the test split, and prints the paper's numbers (REFERENCE.md §10) under
each row it has.
Tuned methods instead, from finished searches (tools/search.py; their reports are reused, nothing
is trained or scored again):

    python benchmarks/wsol_table.py --searches runs/search/natural-cam runs/search/art-fast ...

adds a search's --fsl baseline rows, the paired differences (--paired-with LABEL) and a table of
the settings every search chose on validation.

Prints the table, the per-seed paired differences to natural training, and the centre-Gaussian
baseline, and appends them to benchmarks/RESULTS.md with the machine, date and command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from wsol.cli.jobs import log, run_train, score_worker, scoring_pool, train_config
from wsol.cli.train_wsol import config_from_args  # noqa: F401  (importable from here as before)
from wsol.config import ConfigError, load_config
from wsol.engine.table import (
    COLUMNS,
    aggregate,
    centre_baseline,
    markdown_table,
    mean_sd,
    score_run,
    with_paper_rows,
)
from wsol.engine.train import finished_run, resumable_run
from wsol.methods import method_runs
from wsol.space import format_short

try:
    from _record import append_entry, git_commit, machine
except ImportError:  # imported as benchmarks.wsol_table or by path: benchmarks/ is not on sys.path
    from benchmarks._record import append_entry, git_commit, machine

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("RESULTS.md")
# run label -> train_wsol.py arguments, from the method registry (wsol.methods.method_runs: every
# registered method, plus ART's "art" = fast mode and "art_faithful")
METHOD_ARGS = {label: ["--method", sets[0].partition("=")[2], *(a for kv in sets[1:] for a in ("--set", kv))]
               for label, sets in method_runs().items()}
LABELS = {"art": "art (fast)", "art_faithful": "art (faithful)"}  # row names in the printed tables
CONFIGS = REPO / "configs" / "demo"


def extra_sets(args, method: str | None = None) -> list[str]:
    sets = list(args.set) + [kv for m, kv in args.method_set if m == method]
    return [a for s in sets for a in ("--set", s)]


def pretrain_cmd(backbone: str, seed: int, args) -> tuple[list[str], Path]:
    out = args.out / backbone / f"seed{seed}" / "pretrain"
    cmd = ["--config", str(CONFIGS / "base.yaml"), "--arch", backbone, "--method", "natural", "--seed", str(seed),
           "--epochs", str(args.pretrain_epochs), "--set", f"val.every={args.pretrain_epochs}", *extra_sets(args)]
    return cmd, out


def finetune_cmd(backbone: str, seed: int, method: str, args) -> tuple[list[str], Path]:
    out = args.out / backbone / f"seed{seed}" / method
    if args.scratch:
        cmd = ["--config", str(CONFIGS / "base.yaml"), "--epochs", str(args.epochs)]
    else:
        weights = args.out / backbone / f"seed{seed}" / "pretrain" / "checkpoint-last.safetensors"
        cmd = ["--config", str(CONFIGS / "finetune.yaml"), "--epochs", str(args.epochs),
               "--set", f"model.pretrained={str(weights)!r}"]
    cmd += ["--arch", backbone, *METHOD_ARGS[method], "--seed", str(seed),
            "--set", f"val.every={args.epochs}", *extra_sets(args, method)]
    return cmd, out


def check_reuse(args) -> None:
    """Before anything trains: a finished or stopped run under --out with another config is an
    error (never silently reused or overwritten); raises RunConfigMismatch naming run and keys."""
    cmds = [] if args.scratch else [pretrain_cmd(b, s, args) for b in args.backbones for s in args.seeds]
    cmds += [finetune_cmd(b, s, m, args) for b in args.backbones for s in args.seeds for m in args.methods]
    for cmd, out in cmds:
        cfg = train_config(cmd, out)
        finished_run(out, cfg)
        resumable_run(out, cfg)


def pretrain(backbone: str, seed: int, args, threads: int) -> Path:
    cmd, out = pretrain_cmd(backbone, seed, args)
    run_train(cmd, out, threads, f"pretrain {backbone} seed {seed}")
    return out


def finetune(backbone: str, seed: int, method: str, args, threads: int) -> dict:
    cmd, out = finetune_cmd(backbone, seed, method, args)
    train_s = run_train(cmd, out, threads, f"{method} {backbone} seed {seed}")
    return {"backbone": backbone, "method": method, "seed": seed, "run": out, "train_s": train_s}


def _cached_row(run: dict, checkpoint: str) -> dict | None:
    cache = run["run"] / f"table-row-{checkpoint}.json"
    return {**run, **json.loads(cache.read_text())} if cache.is_file() else None


def _log_scored(run: dict, row: dict, seconds: float) -> None:
    log(f"scored {run['method']} {run['backbone']} seed {run['seed']} in {seconds:.0f} s: "
        + ", ".join(f"{k} {row[k]:.1f}" for k, _ in COLUMNS if row.get(k) is not None))


def train_and_score(args, threads: int) -> list[dict]:
    """Stage 1, then stage 2 with each finished run scored while the others still train (scoring
    runs in --score-jobs worker processes). A failed run is reported after every other run has
    finished and been scored; all of them stay on disk for the next call to reuse."""
    rows, failures = [], []
    scorer = scoring_pool(args.score_jobs or args.jobs, threads)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool, scorer:
        if not args.scratch:
            list(pool.map(lambda job: pretrain(*job, args, threads), [(b, s) for b in args.backbones for s in args.seeds]))
        jobs = [(b, s, m) for b in args.backbones for s in args.seeds for m in args.methods]
        # the slow methods first, so the pool's last minutes are not one long run alone
        jobs.sort(key=lambda j: j[2] not in ("art_faithful", "pgd", "art", "ig_norm", "ig_sum_norm"))
        trainings = {pool.submit(finetune, *job, args, threads): job for job in jobs}
        scorings = {}
        data = None
        for fut in as_completed(trainings):
            try:
                run = fut.result()
            except Exception as err:  # noqa: BLE001 - reported below, after the other runs
                failures.append(str(err))
                log(f"FAILED: {str(err).splitlines()[0]}")
                continue
            cached = _cached_row(run, "last")
            if cached is not None:
                rows.append(cached)
                continue
            data = data or json.loads((run["run"] / "checkpoint-last.json").read_text())["data"]
            scorings[scorer.submit(score_worker, str(run["run"]), data, args.eval_batch_size, "last", threads)] = run
        for fut in as_completed(scorings):
            run = scorings[fut]
            try:
                row, seconds = fut.result()
            except Exception as err:  # noqa: BLE001
                failures.append(f"scoring {run['run']} failed: {err}")
                log(f"FAILED: scoring {run['run']}: {err}")
                continue
            _log_scored(run, row, seconds)
            rows.append({**run, **row})
    if failures:
        raise SystemExit("wsol_table: error: " + "\n".join(failures)
                         + "\n(every finished run and score is kept under --out; run the same command again to "
                           "continue)")
    return rows


def paired(rows: list[dict], base: str = "natural") -> list[str]:
    """Per backbone and method: mean ± sd over seeds of (method - natural, same seed) per column."""
    lines = []
    keys = ("grad_gt_known", "grad_v2", "cam_gt_known", "cam_v2", "top1_acc")
    for backbone in dict.fromkeys(r["backbone"] for r in rows):
        ref = {r["seed"]: r for r in rows if r["backbone"] == backbone and r["method"] == base}
        for method in dict.fromkeys(r["method"] for r in rows if r["backbone"] == backbone):
            if method == base:
                continue
            cells = []
            for k in keys:
                diffs = [r[k] - ref[r["seed"]][k] for r in rows if r["backbone"] == backbone and r["method"] == method
                         and r["seed"] in ref and r.get(k) is not None]
                if diffs:
                    m, s = mean_sd(diffs)
                    cells.append(f"{m:+.1f} ± {s:.1f}")
                else:
                    cells.append("–")
            lines.append(f"| {backbone} | {method} − {base} | " + " | ".join(cells) + " |")
    if not lines:
        return []
    return ["| backbone | difference (same seed) | Grad GT-known Loc | Grad MaxBoxAccV2 | CAM GT-known Loc | "
            "CAM MaxBoxAccV2 | Top-1 Acc |", "|---|---|---|---|---|---|---|", *lines]


def score_runs(args, argv) -> int:
    """--runs: score finished run folders (no training) and print the table with the paper's rows."""
    checkpoint = args.checkpoint or "best"
    jobs = []
    for run in args.runs:
        if not (run / "config.yaml").is_file():
            raise SystemExit(f"wsol_table: error: {run} is not a run folder (no config.yaml)")
        cfg = load_config(run / "config.yaml")
        data = args.data or json.loads((run / "checkpoint-last.json").read_text())["data"]
        method = cfg.method.name + (" (fast)" if cfg.method.name == "art" and cfg.method.art.mode == "fast" else "")
        jobs.append(({"backbone": cfg.model.arch, "method": method, "seed": cfg.train.seed, "run": run}, data))
    # every run scored in its own worker process, --score-jobs (default --jobs) at a time
    workers = args.score_jobs or args.jobs
    threads = args.threads or max(1, (os.cpu_count() or 1) // workers)
    rows = [None] * len(jobs)
    with scoring_pool(workers, threads) as scorer:
        futures = {}
        for i, (base, data) in enumerate(jobs):
            cached = _cached_row(base, checkpoint)
            if cached is not None:
                rows[i] = cached
            else:
                futures[scorer.submit(score_worker, str(base["run"]), data, args.eval_batch_size, checkpoint,
                                      threads)] = i
        for fut in as_completed(futures):
            base = jobs[futures[fut]][0]
            row, seconds = fut.result()
            _log_scored(base, row, seconds)
            rows[futures[fut]] = {**base, **row}
    table = markdown_table(with_paper_rows(aggregate(rows)))
    print("\n".join(table))
    if not args.no_record:
        append_entry(args.results, f"wsol_table --runs: finished runs scored on {args.data or 'their own data'}", [
            f"machine: {machine()}",
            f"command: `python benchmarks/wsol_table.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
            f"checkpoint-{args.checkpoint or 'best'} of each run, test split ({rows[0]['num_images']} images); "
            "'(paper)' rows: the ART paper's numbers (REFERENCE.md §10)"], table)
    return 0


def search_docs(dirs: list[Path]) -> list[tuple[Path, dict]]:
    """(folder, search.json) of each finished search (tools/search.py --out folders), in order; a
    search run with --fsl brings its FSL baseline's too (once, however many searches share it)."""
    docs, seen = [], set()
    queue = list(dirs)
    while queue:
        d = Path(queue.pop(0))
        if d.resolve() in seen:
            continue
        seen.add(d.resolve())
        path = d / "search.json"
        if not path.is_file():
            raise SystemExit(f"wsol_table: error: {d} is not a search folder (no search.json)")
        doc = json.loads(path.read_text())
        if not (doc.get("test") or {}).get("rows"):
            raise SystemExit(f"wsol_table: error: {path}: the search has no test scores yet (run it to the end)")
        docs.append((d, doc))
        if doc.get("fsl"):
            queue.append(d / doc["fsl"])  # an absolute path stays as it is
    return docs


def _label(doc: dict) -> str:
    return doc.get("label") or f"{doc['method']} (tuned, {doc['metric']})"


def search_rows(docs: list[tuple[Path, dict]]) -> list[dict]:
    """Table rows of the searches (search_docs): the test rows of each search's chosen setting, one
    per seed, labelled "<method> (tuned<, metric>)"."""
    return [{**r, "backbone": doc["arch"], "method": _label(doc), "run": d / r["run"]}
            for d, doc in docs for r in doc["test"]["rows"]]


def chosen_settings(docs: list[tuple[Path, dict]]) -> list[str]:
    """Markdown: per search, its budget, how many trials finished, the chosen trial's validation
    score and settings (the searched keys only)."""
    lines = ["| method | trials done / budget | chosen trial | val metric | chosen settings |",
             "|---|---|---|---|---|"]
    for _, doc in docs:
        best = doc.get("best") or {}
        done = sum(t.get("status") == "done" for t in doc.get("trials", []))
        settings = ", ".join(f"{k.rsplit('.', 1)[-1]} {format_short(v)}"
                             for k, v in (best.get("settings") or {}).items())
        val = "–" if best.get("val") is None else f"{doc['metric']} {best['val']:.1f}"
        lines.append(f"| {_label(doc)} | {done} / {doc.get('budget')} | {best.get('trial', '–')} | {val} | "
                     f"{settings or '(the preset)'} |")
    return lines


def score_searches(args, argv) -> int:
    """--searches: the table of tuned methods from the searches' own test scores (no training)."""
    docs = search_docs(args.searches)
    rows = search_rows(docs)
    table = markdown_table(with_paper_rows(aggregate(rows)))
    diffs = paired(rows, base=args.paired_with) if args.paired_with else []
    chosen = ["Chosen on validation (every search's best trial):", "", *chosen_settings(docs)]
    print("\n".join(table), "", "\n".join(diffs), "", "\n".join(chosen), sep="\n")
    if not args.no_record:
        append_entry(args.results, "wsol_table --searches: tuned methods (tools/search.py) on the test split", [
            f"machine: {machine()}; commit {git_commit()}",
            f"command: `python benchmarks/wsol_table.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
            "each row: the setting its search chose on validation, retrained with the search's seeds, last "
            f"checkpoint scored on the test split ({rows[0].get('num_images')} images); searches: "
            + ", ".join(str(d) for d in args.searches)], [*table, "", *diffs, "", *chosen])
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbones", nargs="+", default=["resnet_tiny"])
    ap.add_argument("--methods", nargs="+", default=["natural", "pgd", "adl", "art"], choices=sorted(METHOD_ARGS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--pretrain-epochs", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=6, help="stage-2 (or --scratch) epochs per method")
    ap.add_argument("--scratch", action="store_true", help="train every method from scratch (no stage 1)")
    ap.add_argument("--jobs", type=int, default=2, help="trainings at a time (torch threads split between them)")
    ap.add_argument("--score-jobs", type=int,
                    help="runs scored at a time, each in its own worker process (while others train; with --runs "
                         "too); default: --jobs")
    ap.add_argument("--threads", type=int,
                    help="torch threads per training (default: the cores split between --jobs); set it to "
                         "leave cores free for other work")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every run")
    ap.add_argument("--method-set", nargs=2, action="append", default=[], metavar=("METHOD", "KEY=VALUE"),
                    help="override for one method's runs, e.g. --method-set art method.art.lam=2")
    ap.add_argument("--eval-batch-size", type=int, default=64)
    ap.add_argument("--runs", nargs="+", type=Path, help="score these finished run folders; no training")
    ap.add_argument("--data", help="with --runs: dataset to score on (default: the one each run trained on)")
    ap.add_argument("--checkpoint", choices=("best", "last"), help="with --runs (default best; training: last)")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "wsol_table")
    ap.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--searches", nargs="+", type=Path,
                    help="tabulate these finished searches (tools/search.py --out folders); no training")
    ap.add_argument("--paired-with", metavar="LABEL",
                    help="with --searches: per-seed differences to this row label, e.g. 'natural (tuned, cam_loc)'")
    args = ap.parse_args(argv)
    if args.searches:
        return score_searches(args, argv)
    if args.runs:
        return score_runs(args, argv)
    if "natural" not in args.methods:
        args.methods.insert(0, "natural")  # every comparison is paired with natural training
    try:
        check_reuse(args)
    except ConfigError as err:
        print(f"wsol_table: error: {err}", file=sys.stderr)
        return 2
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
    t0 = time.perf_counter()
    rows = train_and_score(args, threads)
    meta = json.loads((rows[0]["run"] / "checkpoint-last.json").read_text())
    data, image_size = meta["data"], meta["image_size"]
    order = {m: i for i, m in enumerate(args.methods)}
    rows.sort(key=lambda r: (args.backbones.index(r["backbone"]), order[r["method"]], r["seed"]))
    for r in rows:
        r["method"] = LABELS.get(r["method"], r["method"])
    table = markdown_table(with_paper_rows(aggregate(rows)))
    diffs = paired(rows)
    centre = centre_baseline(data, image_size)
    centre_line = (f"Centre-Gaussian baseline on the same {centre['n']} test images (a map that ignores the image): "
                   f"MaxBoxAccV2 {centre['v2']:.1f}, MaxBoxAcc {centre['v1']:.1f}.")
    per_run = ["| backbone | method | seed | " + " | ".join(t for _, t in COLUMNS) + " | train s |",
               "|" + "---|" * (len(COLUMNS) + 4),
               *[f"| {r['backbone']} | {r['method']} | {r['seed']} | "
                 + " | ".join("–" if r.get(k) is None else f"{r[k]:.1f}" for k, _ in COLUMNS)
                 + f" | {r['train_s']:.0f} |" for r in rows]]
    print("\n".join(table), "", "\n".join(diffs), "", centre_line, sep="\n")
    if not args.no_record:
        protocol = (f"every method from scratch, {args.epochs} epochs (configs/demo/base.yaml)" if args.scratch else
                    f"natural pre-training {args.pretrain_epochs} epochs (configs/demo/base.yaml), then every method "
                    f"fine-tuned {args.epochs} epochs from it (configs/demo/finetune.yaml)")
        append_entry(args.results, "wsol_table: the WSOL table on the synthetic benchmark", [
            f"machine: {machine()}; commit {git_commit()}; "
            f"{args.jobs} trainings at a time; total {(time.perf_counter() - t0) / 60:.0f} min",
            f"command: `python benchmarks/wsol_table.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
            f"protocol: {protocol}; seeds {args.seeds}; last checkpoint scored on the test split "
            f"({rows[0]['num_images']} images, {image_size} px). GT-known / Top-1 Loc: ART paper protocol "
            "(fixed tau: Grad 0.2, CAM 0.1); MaxBoxAccV2: wsolevaluation (mean of IoU 30/50/70, interval 0.01).",
            centre_line], [*table, "", "Paired with natural training of the same seed (same pre-trained backbone):",
                           "", *diffs, "", "<details><summary>every run</summary>", "", *per_run, "", "</details>"])
        log(f"appended to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
