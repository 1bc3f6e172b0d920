"""Random hyperparameter search with a fixed trial budget, as Choe et al. (CVPR 2020) tune every
WSOL method: select on the validation split only, then retrain the chosen setting with several
seeds and score the test split.

    python tools/search.py --method art --arch resnet_tiny --trials 30 --seeds 3 --jobs 2 --out runs/search/art
    python tools/search.py --method natural --arch vgg_gap --data CUB_200_2011 --out runs/search/cam \\
        --set model.pretrained=true --space optim.lr=loguniform:1e-4:1e-1
    python tools/search.py --dataset ilsvrc --method cutmix --arch resnet50 --data metadata/ILSVRC \\
        --image-root dataset/ILSVRC --proxy --out runs/search/ilsvrc-cutmix     # trials on the proxy set

1. The space is the method's own (`TrainingMethod.search_space`, wsol.methods; every method: lr and
   batch size, plus its hyperparameters), edited with `--space KEY=SPEC` (wsol.space.parse_spec:
   loguniform:LO:HI, uniform:LO:HI, int:LO:HI, choice:A,B, relative:F,..., fixed:V; `KEY=none`
   drops a key). Keys given with `--set` are fixed, never searched.
2. Trial i draws its settings from a generator seeded by (--search-seed, i) and trains one run
   folder, `OUT/trials/trial-<i>`, with the preset (or --config) plus --set plus its settings, on
   train (or its proxy: `--proxy` = wsolevaluation's image_ids_proxy.txt, `--proxy 0.1` = a seeded
   10% of every class), validated once, after its last epoch. Its score is the validation metric
   (`--metric`; default MaxBoxAccV2 of the method's map, `<map>_loc`, or PxAP, `<map>_pxap`, on
   mask datasets) of that last epoch, as the paper scores the last checkpoint.
3. The best trial's settings are trained again with `--seeds` seeds (train.seed, +1, ...) on the
   whole train split (`OUT/final/trial-<i>/seed-<s>`) and their last checkpoints are scored on the test
   split (wsol.engine.table's row: both maps, both protocols): mean, sd and a 95% t interval.

`OUT/search.json` and `OUT/search.md` are rewritten after every trial. Everything finished is
reused and a stopped run resumes: run the same command again to continue (or with more --trials
to extend the budget); a different search in the same --out is refused. A trial that fails (a
diverging lr) is recorded as failed, counts against the budget, and is not retried unless
--retry-failed. `--compare DIR ...` adds other searches' test rows (e.g. the FSL baseline's) to
search.md.

4. `--fsl` also searches the few-shot fully supervised baseline (`--method fsl`, trained on the
   validation split's boxes or masks) with the same budget, seeds, backbone, data, --config and search
   seed, in OUT/fsl (or `--fsl DIR`, e.g. one FSL search shared by several methods' searches), and puts
   its test rows beside this search's in search.md and in `benchmarks/wsol_table.py --searches`. It gets
   this search's --set keys except `method.*` ones, then `--fsl-set KEY=VALUE` (e.g. more epochs: it
   trains on a few images a class), never --epochs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from wsol.cli.jobs import TrainingFailed, log, run_train, score_worker, scoring_pool, train_config
from wsol.config import ConfigError, config_to_dict
from wsol.data.datasets import WSOL_DATASETS
from wsol.engine.run_folder import RunConfigMismatch
from wsol.engine.table import COLUMNS, MASK_COLUMNS, mean_sd, t_interval
from wsol.methods import build_method, list_methods
from wsol.space import Distribution, format_short, format_value, parse_spec, sample, space_to_json

__all__ = ["main", "search_space_for", "test_key", "SEARCH_VERSION"]

SEARCH_VERSION = 1
SPEC_KEYS = ("method", "arch", "dataset", "data", "metric", "search_seed", "space", "fixed", "proxy", "base_config")


class SearchError(RuntimeError):
    pass


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", required=True, help=" | ".join(list_methods()))
    ap.add_argument("--arch", help="backbone (default: the config's)")
    ap.add_argument("--dataset", help=f"{' | '.join(WSOL_DATASETS)} (default: the config's, cub)")
    ap.add_argument("--data", help="dataset folder (default: the built-in synthetic data)")
    ap.add_argument("--image-root", help="images apart from the metadata")
    ap.add_argument("--config", help="base YAML config (default: the preset train_wsol.py would use)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="fixed setting for every run (never searched; repeatable)")
    ap.add_argument("--space", action="append", default=[], metavar="KEY=SPEC",
                    help="add or replace a key of the space (e.g. optim.lr=loguniform:1e-4:1e-1), or KEY=none")
    ap.add_argument("--trials", type=int, default=30, help="trial budget (default 30, the paper's)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds of the chosen setting scored on test (0: none)")
    ap.add_argument("--metric", help="validation metric to select on (default <map>_loc, or <map>_pxap for masks)")
    ap.add_argument("--search-seed", type=int, default=0, help="seed of the trials' draws")
    ap.add_argument("--proxy", nargs="?", const="file", metavar="FRACTION",
                    help="trials train on a proxy of train: wsolevaluation's image_ids_proxy.txt, or a seeded "
                         "FRACTION of every class; the chosen setting's seeds use all of train")
    ap.add_argument("--epochs", type=int, help="epochs of every run (default: the config's)")
    ap.add_argument("--jobs", type=int, default=1, help="trainings at a time (threads split between them)")
    ap.add_argument("--threads", type=int, help="torch threads per training (default: cores / jobs)")
    ap.add_argument("--devices", help="comma-separated devices the trainings take in turn (e.g. cuda:0,cuda:1; "
                                      "several --jobs share a card)")
    ap.add_argument("--eval-batch-size", type=int, default=64)
    ap.add_argument("--retry-failed", action="store_true", help="train failed trials again")
    ap.add_argument("--compare", nargs="+", type=Path, default=[], metavar="DIR",
                    help="other searches' --out folders whose test rows search.md shows too (e.g. FSL's)")
    ap.add_argument("--label", help="this search's row name in tables (default: '<method> (tuned, <metric>)')")
    ap.add_argument("--fsl", nargs="?", const="", type=str, metavar="DIR",
                    help="also search the FSL baseline with the same budget (in OUT/fsl, or DIR) and show its rows")
    ap.add_argument("--fsl-set", action="append", default=[], metavar="KEY=VALUE",
                    help="with --fsl: a fixed setting of the FSL search only (after this search's non-method --set)")
    ap.add_argument("--out", type=Path, required=True, help="the search folder")
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    for name in ("trials", "jobs"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.seeds < 0:
        ap.error(f"--seeds must be >= 0, got {args.seeds}")
    if args.threads is not None and args.threads < 1:
        ap.error(f"--threads must be >= 1, got {args.threads}")
    if args.fsl_set and args.fsl is None:
        ap.error("--fsl-set needs --fsl")
    if args.fsl is not None and args.method == "fsl":
        ap.error("--fsl: this search is the FSL baseline itself")
    if args.proxy not in (None, "file"):
        try:
            fraction = float(args.proxy)
        except ValueError:
            fraction = float("nan")
        if not 0 < fraction <= 1:
            ap.error(f"--proxy takes a fraction in (0, 1] (or nothing, for image_ids_proxy.txt); got {args.proxy!r}")
    return args


def base_cmd(args) -> list[str]:
    """The train_wsol.py arguments every run shares."""
    cmd = ["--method", args.method]
    for flag in ("arch", "dataset", "data", "image_root", "config", "epochs"):
        value = getattr(args, flag)
        if value is not None:
            cmd += [f"--{flag.replace('_', '-')}", str(value)]
    for kv in args.overrides:
        cmd += ["--set", kv]
    return cmd


def fsl_dir(args) -> Path | None:
    """Where --fsl's baseline search lives: OUT/fsl, or the DIR given."""
    if args.fsl is None:
        return None
    return Path(args.fsl) if args.fsl else args.out / "fsl"


def fsl_argv(args) -> list[str]:
    """tools/search.py arguments of --fsl's baseline search: this search's budget, seeds, search seed,
    backbone, data, --config and resources; its --set keys except method.* ones, then --fsl-set."""
    argv = ["--method", "fsl", "--out", str(fsl_dir(args)), "--trials", str(args.trials), "--seeds", str(args.seeds),
            "--search-seed", str(args.search_seed), "--jobs", str(args.jobs),
            "--eval-batch-size", str(args.eval_batch_size)]
    for flag in ("arch", "dataset", "data", "image_root", "config", "threads", "devices"):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    for kv in [kv for kv in args.overrides if not kv.strip().startswith("method.")] + list(args.fsl_set):
        argv += ["--set", kv]
    return argv + (["--retry-failed"] if args.retry_failed else [])


def _fixed_keys(overrides: list[str]) -> set[str]:
    return {kv.partition("=")[0].strip() for kv in overrides}


def search_space_for(cfg, edits: list[str], fixed: set[str]) -> tuple[dict[str, Distribution], list[str]]:
    """(space, notes): the method's declared space with the --space edits, less the keys fixed by --set."""
    space = dict(build_method(cfg.method.name, cfg.method).search_space())
    notes = []
    for edit in edits:
        key, sep, spec = edit.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--space {edit!r}: expected KEY=SPEC")
        if spec.strip().lower() == "none":
            if key not in space:
                raise ConfigError(f"--space {edit!r}: {key} is not in the space ({', '.join(space)})")
            del space[key]
            continue
        try:
            space[key] = parse_spec(spec)
        except ValueError as err:
            raise ConfigError(f"--space {edit!r}: {err}") from None
    for key in sorted(fixed & set(space)):
        del space[key]
        notes.append(f"{key} is fixed by --set, not searched")
    return space, notes


def _config_value(cfg, key: str):
    node = config_to_dict(cfg)
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"search space key {key!r} is not a config key")
        node = node[part]
    return node


def default_metric(cfg) -> str:
    method = build_method(cfg.method.name, cfg.method)
    spec = WSOL_DATASETS.get(cfg.data.dataset)
    suffix = "pxap" if spec is not None and spec.localization == "masks" else "loc"
    return f"{method.localization_map}_{suffix}"


def test_key(metric: str) -> str:
    """The table row's key for a validation metric: <s>_loc -> <s>_v2 (MaxBoxAccV2), <s>_pxap and
    top1_acc as they are."""
    if metric.endswith("_loc"):
        return metric[:-4] + "_v2"
    return metric


def _saliency(metric: str) -> str | None:
    for suffix in ("_loc", "_pxap"):
        if metric.endswith(suffix):
            return metric[:-len(suffix)]
    return None


def _error_text(err: TrainingFailed) -> str:
    """The training's own error message (from its last "error:" line on), on one line."""
    lines = [line.strip() for line in err.stderr.strip().splitlines() if line.strip()]
    at = max((i for i, line in enumerate(lines) if "error:" in line.lower()), default=max(len(lines) - 1, 0))
    return (" ".join(lines[at:]) or str(err))[-500:]


def _better(metric: str, a: float, b: float | None) -> bool:
    return b is None or (a < b if metric == "loss" else a > b)


class Search:
    def __init__(self, args) -> None:
        self.args = args
        self.out: Path = args.out
        self.cmd = base_cmd(args)
        probe = train_config(self.cmd, self.out / "trials" / "probe")
        self.cfg = probe
        self.masks = WSOL_DATASETS[probe.data.dataset].localization == "masks"
        self.metric = args.metric or default_metric(probe)
        sal = _saliency(self.metric)
        if self.metric not in ("top1_acc", "loss") and sal is None:
            raise ConfigError(f"--metric {self.metric!r}: expected <saliency>_loc, <saliency>_pxap, top1_acc or loss")
        saliencies = list(probe.val.saliencies)
        if sal is not None and sal not in saliencies:
            saliencies.append(sal)
        epochs = probe.train.epochs
        # every run validates once, after its last epoch, on the maps the metric needs
        self.cmd += ["--set", f"val.saliencies={json.dumps(saliencies)}", "--set", f"val.every={epochs}",
                     "--set", f"val.select_metric={self.metric}"]
        self.space, self.notes = search_space_for(probe, args.space, _fixed_keys(args.overrides))
        base = {k: _config_value(probe, k) for k in self.space if k.count(".")}
        self.base_values = base
        self.proxy = [] if args.proxy is None else ["--set", "data.proxy=true"] + (
            [] if args.proxy == "file" else ["--set", f"data.proxy_fraction={args.proxy}"])
        self.threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
        self.devices = [d.strip() for d in args.devices.split(",")] if args.devices else []
        self.test_saliencies = tuple(dict.fromkeys(["grad", "cam"] + ([sal] if sal else [])))
        self.spec = {"method": probe.method.name, "arch": probe.model.arch, "dataset": probe.data.dataset,
                     "data": probe.data.root, "metric": self.metric, "search_seed": args.search_seed,
                     "space": space_to_json(self.space), "fixed": list(args.overrides), "proxy": args.proxy,
                     "base_config": args.config}
        self.trials: list[dict] = []
        self.started = time.time()

    # -- bookkeeping
    def check_previous(self) -> None:
        path = self.out / "search.json"
        if not path.is_file():
            return
        old = json.loads(path.read_text())
        diff = [k for k in SPEC_KEYS if old.get("spec", {}).get(k) != self.spec.get(k)]
        if diff:
            raise SearchError(f"{path} holds another search (different {', '.join(diff)}: "
                              + "; ".join(f"{k} {old.get('spec', {}).get(k)!r} -> {self.spec.get(k)!r}" for k in diff)
                              + "); give another --out, or delete that folder to start over")

    def trial_settings(self, i: int) -> dict:
        return sample(self.space, self.args.search_seed, i, self.base_values)

    def trial_cmd(self, settings: dict, proxy: bool = True) -> list[str]:
        sets = [a for k, v in settings.items() for a in ("--set", f"{k}={format_value(v)}")]
        return [*self.cmd, *sets, *(self.proxy if proxy else [])]

    def device(self, i: int) -> str | None:
        return self.devices[i % len(self.devices)] if self.devices else None

    # -- phases
    def validate_configs(self) -> None:
        """Every trial's config is built before anything trains: a bad key or value stops the search
        at once, naming the trial and the key; a finished run under OUT with another config too."""
        for i in range(self.args.trials):
            settings = self.trial_settings(i)
            out = self.out / "trials" / f"trial-{i:03d}"
            try:
                train_config(self.trial_cmd(settings), out)
            except ConfigError as err:
                raise ConfigError(f"trial {i} ({', '.join(f'{k}={format_value(v)}' for k, v in settings.items())}): "
                                  f"{err}") from None

    def run_trial(self, i: int) -> dict:
        settings = self.trial_settings(i)
        out = self.out / "trials" / f"trial-{i:03d}"
        record = {"trial": i, "run": str(out.relative_to(self.out)), "settings": settings}
        failed = out / "search-failed.json"
        if failed.is_file() and not self.args.retry_failed:
            return {**record, **json.loads(failed.read_text())}
        try:
            seconds = run_train(self.trial_cmd(settings), out, self.threads, f"trial {i}", self.device(i))
        except TrainingFailed as err:
            res = {"status": "failed", "error": _error_text(err), "val": None}
            out.mkdir(parents=True, exist_ok=True)
            failed.write_text(json.dumps(res))
            log(f"trial {i} failed: {res['error']}")
            return {**record, **res}
        failed.unlink(missing_ok=True)
        report = json.loads((out / "report.json").read_text())
        value = report["final_val"].get(self.metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return {**record, "status": "failed", "error": f"no finite {self.metric} in report.json", "val": None,
                    "train_s": seconds}
        extra = {k: report["final_val"][k] for k in ("top1_acc", "grad_loc", "cam_loc", "grad_pxap", "cam_pxap")
                 if k in report["final_val"]}
        return {**record, "status": "done", "val": float(value), "val_metrics": extra, "train_s": seconds}

    def best(self) -> dict | None:
        best = None
        for t in sorted(self.trials, key=lambda t: t["trial"]):
            if t["status"] == "done" and _better(self.metric, t["val"], None if best is None else best["val"]):
                best = t
        return best

    def run_final(self, best: dict) -> dict:
        """The chosen settings with --seeds seeds on all of train, scored on test."""
        seed0 = self.cfg.train.seed
        seeds = [seed0 + k for k in range(self.args.seeds)]
        runs = {}
        with ThreadPoolExecutor(max_workers=self.args.jobs) as pool:
            futs = {}
            for k, seed in enumerate(seeds):
                out = self.out / "final" / f"trial-{best['trial']:03d}" / f"seed-{seed}"
                cmd = [*self.trial_cmd(best["settings"], proxy=False), "--seed", str(seed)]
                futs[pool.submit(run_train, cmd, out, self.threads, f"final seed {seed}", self.device(k))] = (seed, out)
            for fut in as_completed(futs):
                seed, out = futs[fut]
                runs[seed] = (out, fut.result())
        rows = []
        cache = f"search-test-row-{'-'.join(self.test_saliencies)}.json"
        with scoring_pool(min(self.args.jobs, len(seeds)) or 1, self.threads) as scorer:
            futs = {}
            for seed in seeds:
                out, train_s = runs[seed]
                cached = out / cache
                if cached.is_file():
                    rows.append({"seed": seed, "run": str(out.relative_to(self.out)), "train_s": train_s,
                                 **json.loads(cached.read_text())})
                    continue
                data = json.loads((out / "checkpoint-last.json").read_text())["data"]
                futs[scorer.submit(score_worker, str(out), data, self.args.eval_batch_size, "last", self.threads,
                                   self.test_saliencies, self.masks, cache)] = (seed, out, train_s)
            for fut in as_completed(futs):
                seed, out, train_s = futs[fut]
                row, seconds = fut.result()
                log(f"final seed {seed} scored on test in {seconds:.0f} s: {test_key(self.metric)} "
                    f"{row.get(test_key(self.metric))}")
                rows.append({"seed": seed, "run": str(out.relative_to(self.out)), "train_s": train_s, **row})
        rows.sort(key=lambda r: r["seed"])
        key = test_key(self.metric)
        values = [r[key] for r in rows if r.get(key) is not None]
        test = {"metric": key, "seeds": seeds, "values": values, "rows": rows}
        if values:
            m, s = mean_sd(values)
            test.update(mean=m, sd=s, ci95=list(t_interval(values)))
        return test

    # -- reports
    def write(self, best: dict | None, test: dict | None) -> None:
        doc = {"version": SEARCH_VERSION, "spec": self.spec, "method": self.spec["method"],
               "label": self.args.label or f"{self.spec['method']} (tuned, {self.metric})",
               "arch": self.spec["arch"], "dataset": self.spec["dataset"], "metric": self.metric,
               "search_seed": self.args.search_seed, "budget": self.args.trials, "space": self.spec["space"],
               "notes": self.notes, "command": "python tools/search.py " + " ".join(self.args.argv),
               "trials": sorted(self.trials, key=lambda t: t["trial"]), "best": best, "test": test,
               "fsl": self._fsl_link(),
               "updated": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.out / "search.json.tmp"
        tmp.write_text(json.dumps(doc, indent=2, default=str))
        tmp.replace(self.out / "search.json")
        (self.out / "search.md").write_text("\n".join(search_markdown(doc, self.args.compare)) + "\n")

    def _fsl_link(self) -> str | None:
        """--fsl's folder as search.json names it: relative to OUT when inside it, else absolute."""
        path = fsl_dir(self.args)
        if path is None:
            return None
        try:
            return str(path.resolve().relative_to(self.out.resolve()))
        except ValueError:
            return str(path.resolve())

    def check(self) -> None:
        """Everything that can be refused before anything trains."""
        self.check_previous()
        self.validate_configs()

    def run(self) -> dict:
        self.check()
        self.out.mkdir(parents=True, exist_ok=True)
        log(f"search: {self.spec['method']} on {self.spec['arch']}, {self.args.trials} trials, metric {self.metric}, "
            f"space {', '.join(self.space) or '(empty)'}; {self.args.jobs} at a time, {self.threads} threads each")
        for note in self.notes:
            log(f"search: {note}")
        self.write(None, None)
        failures = []
        with ThreadPoolExecutor(max_workers=self.args.jobs) as pool:
            futs = {pool.submit(self.run_trial, i): i for i in range(self.args.trials)}
            for fut in as_completed(futs):
                try:
                    self.trials.append(fut.result())
                except RunConfigMismatch:
                    raise
                except Exception as err:  # noqa: BLE001 - kept, reported after the other trials
                    failures.append(f"trial {futs[fut]}: {err}")
                    log(f"trial {futs[fut]}: {err}")
                self.write(self.best(), None)
        if failures:
            raise SearchError("; ".join(failures) + " (finished trials are kept; run the same command to continue)")
        best = self.best()
        if best is None:
            self.write(None, None)
            raise SearchError(f"no trial finished with a finite {self.metric}; see {self.out}/search.md")
        log(f"search: best trial {best['trial']} ({self.metric} {best['val']:.2f}): "
            + ", ".join(f"{k}={format_value(v)}" for k, v in best["settings"].items()))
        test = self.run_final(best) if self.args.seeds else None
        self.write(best, test)
        return {"best": best, "test": test}


def search_markdown(doc: dict, compare: list[Path] = ()) -> list[str]:
    """search.md: the spec, every trial, the chosen one and its test scores (plus --compare rows)."""
    spec, metric = doc["spec"], doc["metric"]
    lines = [f"# Search: {spec['method']} on {spec['arch']} ({spec['dataset']})", "",
             f"- command: `{doc['command']}`", f"- updated: {doc['updated']}",
             f"- budget: {doc['budget']} trials, search seed {doc['search_seed']}; selected on validation "
             f"`{metric}` at the last epoch" + (f"; trials on the proxy train set ({spec['proxy']})" if spec["proxy"]
                                                else ""),
             "- fixed: " + (", ".join(f"`{s}`" for s in spec["fixed"]) or "(preset)"),
             *(f"- {n}" for n in doc["notes"]), "", "| key | distribution |", "|---|---|",
             *(f"| {k} | `{v}` |" for k, v in doc["space"].items()), ""]
    keys = list(doc["space"])
    lines += ["| trial | " + " | ".join(keys) + f" | val {metric} | status |", "|" + "---|" * (len(keys) + 3)]
    best = doc.get("best") or {}
    for t in doc["trials"]:
        mark = " **best**" if t["trial"] == best.get("trial") else ""
        val = "–" if t.get("val") is None else f"{t['val']:.2f}"
        lines.append(f"| {t['trial']}{mark} | " + " | ".join(format_short(t["settings"].get(k)) for k in keys)
                     + f" | {val} | {t['status']}{': ' + t['error'] if t.get('error') else ''} |")
    test = doc.get("test")
    if test:
        cols = MASK_COLUMNS if any("_pxap" in k for r in test["rows"] for k in r) else COLUMNS
        lines += ["", f"Test split, the best setting retrained with {len(test['seeds'])} seed(s): "
                  f"{test['metric']} {test.get('mean', float('nan')):.2f} ± {test.get('sd', float('nan')):.2f} (sd), "
                  f"95% CI [{test['ci95'][0]:.2f}, {test['ci95'][1]:.2f}]" if test.get("ci95") else "", "",
                  "| run | seed | " + " | ".join(t for _, t in cols) + " |", "|" + "---|" * (len(cols) + 2)]
        rows = [(doc["label"], r) for r in test["rows"]]
        for path in compare:
            other = Path(path) / "search.json"
            if other.is_file():
                o = json.loads(other.read_text())
                rows += [(o.get("label", o["method"]), r) for r in (o.get("test") or {}).get("rows", [])]
        for name, r in rows:
            lines.append(f"| {name} | {r['seed']} | "
                         + " | ".join("–" if r.get(k) is None else f"{r[k]:.1f}" for k, _ in cols) + " |")
    return lines


def main(argv=None) -> int:
    args = parse(argv)
    where = ""  # which search an error belongs to, when --fsl runs two
    try:
        fsl = None
        if args.fsl is not None:
            # the baseline first (it trains on the validation images only: minutes), so this search's
            # search.md shows its rows from the start; both are checked before either trains
            where = f"the --fsl baseline search ({fsl_dir(args)}): "
            fsl = Search(parse(fsl_argv(args)))
            fsl.check()
            args.compare = [*args.compare, fsl_dir(args)]
        where = ""
        search = Search(args)
        search.check()
        if fsl is not None:
            log(f"search: the FSL baseline first, in {fsl.out}")
            where = f"the --fsl baseline search ({fsl_dir(args)}): "
            fsl.run()
            where = ""
        result = search.run()
    except (ConfigError, SearchError, RunConfigMismatch, TrainingFailed, OSError) as err:
        print(f"search: error: {where}{err}", file=sys.stderr)
        return 2 if isinstance(err, ConfigError) else 1
    except KeyboardInterrupt:
        print("search: interrupted; finished trials and runs are kept; run the same command to continue",
              file=sys.stderr)
        return 130
    test = result["test"]
    print(f"search: {args.out}/search.json, {args.out}/search.md")
    if test and test.get("ci95"):
        print(f"test {test['metric']}: {test['mean']:.2f} ± {test['sd']:.2f} (sd over {len(test['values'])} seeds), "
              f"95% CI [{test['ci95'][0]:.2f}, {test['ci95'][1]:.2f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
