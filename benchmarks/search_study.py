#!/usr/bin/env python
"""The fair-comparison study on the built-in benchmark: every method tuned with the same random-search
budget on the validation split (tools/search.py), its winner retrained with several seeds and scored
on the test split, plus the few-shot fully supervised baseline (FSL) trained on that validation split.

    python benchmarks/search_study.py --trials 4 --seeds 3 --jobs 2            # every entry (the kept reports: table only)
    python benchmarks/search_study.py --entries natural_cam natural_grad art_all art_ce fsl

Protocol (the CPU stand-in of Choe et al.'s, configs/demo/): one natural model is trained from
scratch (configs/demo/base.yaml, --pretrain-epochs, seed 0) as every method's initialisation (the
paper's ImageNet weights); each entry then runs one search from it (configs/demo/finetune.yaml,
--epochs), selecting on its own map's validation MaxBoxAccV2, with the same --trials budget and the
same search seed. The learning rate is searched log-uniformly over --lr-range (declared here for a
fine-tune on 2 cores: one decade either side of the preset's 0.003, not the paper's 1e-5..1); every
other key is the method's declared space (wsol.methods, `search_space`). Entries:

    natural_cam, natural_grad   natural training, selected on CAM / on gradient maps
    art_all, art_ce             fast ART with method.art.bn_stats fixed to all (art2020) / ce (the BN
                                side effect removed), fast_steps fixed at its preset 0 (cost);
                                selected on gradient maps
    art_faithful_ce             faithful ART, bn_stats ce (10x the cost of fast; not in the default list)
    pgd, ig_norm, adl, has, acol, spg, cutmix   each on its own map; PGD-AT at 3 attack steps (cost);
                                ig_norm is not in the default list (a step costs ~126 natural ones)
    fsl                         the few-shot baseline on the validation split's boxes (100 epochs of
                                its 40 images: about the SGD steps of the others' 6 epochs of train)

Everything is resumable (run the same command again). Each finished search's search.json and
search.md are kept in benchmarks/search_study/<entry>/ (--reports), in the repository: an entry
kept there with the same --trials and --seeds is not run again, so the study can be finished over
several sessions and the table is built from the kept reports. At the end the table of the tuned methods is
printed from the searches' own reports (benchmarks/wsol_table.py --searches) with per-seed differences
to natural_grad, and appended to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from wsol.cli.jobs import log, run_train
from wsol.cli.search import search_markdown

try:
    import wsol_table
except ImportError:  # imported as benchmarks.search_study or by path
    from benchmarks import wsol_table

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs" / "demo"
# entry -> (method, extra --set, metric)
ENTRIES = {
    "natural_cam": ("natural", [], "cam_loc"),
    "natural_grad": ("natural", [], "grad_loc"),
    # fast ART at its preset fast_steps 0 (the random start alone): a trial with one attack step took
    # 420 s an epoch against 110-150 s at 0 (same machine, same load), more than this budget affords
    "art_all": ("art", ["method.art.mode=fast", "method.art.bn_stats=all", "method.art.fast_steps=0"], "grad_loc"),
    "art_ce": ("art", ["method.art.mode=fast", "method.art.bn_stats=ce", "method.art.fast_steps=0"], "grad_loc"),
    "art_faithful_ce": ("art", ["method.art.mode=faithful", "method.art.bn_stats=ce"], "grad_loc"),
    # PGD-AT at 3 attack steps (its preset: 7): 8 passes a step would make this entry ~2 h on 2 cores
    "pgd": ("pgd", ["method.pgd.steps=3"], "grad_loc"),
    "ig_norm": ("ig_norm", [], "grad_loc"),
    "adl": ("adl", [], "cam_loc"),
    "has": ("has", [], "cam_loc"),
    "acol": ("acol", [], "cam_loc"),
    "spg": ("spg", [], "cam_loc"),
    "cutmix": ("cutmix", [], "cam_loc"),
    # FSL trains on the val split (50 images here, 40 after its hold-out): as many SGD steps as a
    # 6-epoch fine-tune on train takes 100 epochs of it, the lr decayed at 80 as the others at 5 of 6
    "fsl": ("fsl", ["train.epochs=100", "optim.lr_milestones=[80]"], "cam_loc"),
}
DEFAULT = ["natural_cam", "natural_grad", "art_all", "art_ce", "fsl", "pgd", "adl", "has", "acol", "spg", "cutmix"]


def _kept(folder: Path, args) -> bool:
    """Whether `folder` holds a finished search report with this study's budget and seeds."""
    path = folder / "search.json"
    if not path.is_file():
        return False
    doc = json.loads(path.read_text())
    test = doc.get("test") or {}
    return doc.get("budget") == args.trials and len(test.get("seeds", [])) == args.seeds and bool(test.get("rows"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", nargs="+", default=DEFAULT, choices=sorted(ENTRIES))
    ap.add_argument("--arch", default="resnet_tiny")
    ap.add_argument("--trials", type=int, default=4, help="the same budget for every entry (4: the kept reports)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--pretrain-epochs", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--lr-range", nargs=2, type=float, default=[3e-4, 3e-2], metavar=("LO", "HI"))
    ap.add_argument("--search-seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="for every run")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "search_study")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    ap.add_argument("--reports", type=Path, default=Path(__file__).with_name("search_study"),
                    help="where each finished search's search.json / search.md are kept (in the repository, so a "
                         "later session tabulates them without the run folders); an entry whose kept report has "
                         "this --trials and --seeds is not run again")
    ap.add_argument("--rerun", action="store_true", help="run every entry, kept reports or not")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    sets = [a for kv in args.set for a in ("--set", kv)]
    kept = {e for e in args.entries if not args.rerun and _kept(args.reports / e, args)}
    for e in sorted(kept):
        log(f"study: {e} from its kept report {args.reports / e}/search.json")
    todo = [e for e in args.entries if e not in kept]
    weights = args.out / "pretrain" / "checkpoint-last.safetensors"
    if todo:
        run_train(["--config", str(CONFIGS / "base.yaml"), "--arch", args.arch, "--method", "natural", "--seed", "0",
                   "--epochs", str(args.pretrain_epochs), "--set", f"val.every={args.pretrain_epochs}", *sets],
                  args.out / "pretrain", threads=os.cpu_count() or 1, label="pretrain")
    done, failed = [e for e in args.entries if e in kept], []
    for entry in todo:
        method, extra, metric = ENTRIES[entry]
        cmd = [sys.executable, str(REPO / "tools" / "search.py"), "--method", method, "--arch", args.arch,
               "--config", str(CONFIGS / "finetune.yaml"), "--epochs", str(args.epochs),
               "--set", f"model.pretrained={str(weights)!r}", *sets, *(a for kv in extra for a in ("--set", kv)),
               "--metric", metric, "--trials", str(args.trials), "--seeds", str(args.seeds), "--jobs",
               str(args.jobs), "--search-seed", str(args.search_seed), "--label", entry,
               "--space", f"optim.lr=loguniform:{args.lr_range[0]:g}:{args.lr_range[1]:g}",
               "--out", str(args.out / entry)]
        log(f"study: {entry} ({method}, {metric})")
        proc = subprocess.run(cmd)
        if proc.returncode != 0:
            failed.append(entry)
            log(f"study: {entry} failed (exit {proc.returncode}); the others go on")
            continue
        done.append(entry)
        (args.reports / entry).mkdir(parents=True, exist_ok=True)
        for name in ("search.json", "search.md"):
            shutil.copyfile(args.out / entry / name, args.reports / entry / name)
    log(f"study: {len(done)} searches finished in {(time.perf_counter() - t0) / 60:.0f} min"
        + (f"; failed: {', '.join(failed)}" if failed else ""))
    if not done:
        return 1
    if "fsl" in done:   # FSL's row in every search's table
        for entry in done:
            doc = json.loads((args.reports / entry / "search.json").read_text())
            compare = [] if entry == "fsl" else [args.reports / "fsl"]
            (args.reports / entry / "search.md").write_text("\n".join(search_markdown(doc, compare)) + "\n")
    order = [e for e in args.entries if e in done]
    table = ["--searches", *(str(args.reports / e) for e in order)]
    if "natural_grad" in done:
        table += ["--paired-with", "natural_grad"]
    if args.no_record:
        table.append("--no-record")
    table += ["--results", str(args.results)]
    rc = wsol_table.main(table)
    return rc or (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
