"""Attributional, adversarial and corruption robustness of a trained classifier.

    python tools/eval_robustness.py --checkpoint runs/cifar10-wrn_28_10-art --dataset cifar10 --preset art2020
    python tools/eval_robustness.py --checkpoint RUN --dataset gtsrb --preset chen2019 --data /data/GTSRB
    python tools/eval_robustness.py --checkpoint RUN --cifar10c /data/CIFAR-10-C       # + the CIFAR-10-C table

Writes robustness-<dataset>-<preset>.json and .md (default: into the run folder): the ART
table's row (IN, K, Natural, PGD-40; REFERENCE.md §10), a random-noise row at the same epsilon,
and the paper's rows for the dataset; with --cifar10c also top-1 accuracy per corruption and
severity (`art2020` columns by default). Every report names its preset and each setting.
Presets (REFERENCE.md §7.2): art2020 (CIFAR-10 settings: IG top-k attack, eps 8/255, 50
iterations, k 100, masked tau, skip failures, 1001 images) and chen2019 (gtsrb, flower, mnist
settings); --preset-set FIELD=VALUE changes one setting (e.g. iterations=10 for a quick run).
The JSON is rewritten after each stage, so a stopped run keeps what it finished.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import yaml


from wsol.attacks import ATTACK_PRECISIONS
from wsol.attacks.presets import PRESET_DATASETS, get_preset
from wsol.engine.checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint
from wsol.engine.classification import CLASSIFICATION_DATASETS, read_classification
from wsol.engine.robustness_eval import evaluate_robustness, robustness_markdown, write_report

# Which of a preset's dataset settings a data set takes (REFERENCE.md §7.2 has CIFAR-10, GTSRB, Flower, MNIST).
PRESET_DATASET = {"cifar10": "cifar10", "svhn": "cifar10", "gtsrb": "gtsrb", "flowers17": "flower",
                  "flowers102": "flower"}


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="run folder (checkpoint-best, else -last) or checkpoint file")
    ap.add_argument("--dataset", choices=CLASSIFICATION_DATASETS, help="default: the run's data.dataset")
    ap.add_argument("--data", help="dataset folder (default: the run's data.root)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--preset", default="art2020", choices=sorted(PRESET_DATASETS))
    ap.add_argument("--preset-dataset", help="whose settings the preset takes (default: by --dataset)")
    ap.add_argument("--preset-set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override one preset field (YAML value), e.g. iterations=10 (repeatable)")
    ap.add_argument("--name", help="row label (default: the run's method)")
    ap.add_argument("--max-images", type=int, help="natural accuracy (and the attacks) on this prefix of the split")
    ap.add_argument("--pgd-steps", type=int, help="default: the preset's first (40)")
    ap.add_argument("--pgd-images", type=int, help="PGD accuracy on this prefix (default: as natural)")
    ap.add_argument("--attack-images", type=int, help="attribution attack on this many correct images "
                                                      "(default: the preset's, art2020 1001)")
    ap.add_argument("--no-random-baseline", action="store_true", help="skip the random-noise row")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--attack-batch-size", type=int, default=32)
    ap.add_argument("--max-rows", type=_max_rows, default="auto", metavar="N|auto|all",
                    help="images x IG points per forward pass of the attack: auto (default; CPU: largest "
                         "activation under 16 MiB, at least one image's path; CUDA: what fits half the "
                         "free memory), all (a whole attack batch at once) or a number; never changes "
                         "the scores")
    ap.add_argument("--attack-precision", choices=ATTACK_PRECISIONS, default="fp32",
                    help="arithmetic of the attribution attack's step direction: fp32 (default) or bf16 "
                         "(bfloat16 autocast, faster on CPUs with AMX and on GPUs, emulated and several times "
                         "slower on CPUs without bf16 arithmetic; the label checks, the "
                         "iterate selection and the scores stay fp32; recorded in the report)")
    ap.add_argument("--cifar10c", help="CIFAR-10-C folder (released, or tools/make_cifar10c.py output)")
    ap.add_argument("--columns", default="art2020", choices=("art2020", "benchmark", "all"),
                    help="CIFAR-10-C corruptions evaluated and shown")
    ap.add_argument("--severities", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, help="output folder (default: the run folder)")
    ap.add_argument("--quiet", action="store_true")
    return ap.parse_args(argv)


def _max_rows(text: str) -> int | str | None:
    if text in ("auto", "all"):
        return None if text == "all" else text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of rows, 'auto' or 'all', got {text!r}")
    return value


def _overrides(items: list[str]) -> dict:
    out = {}
    for text in items:
        key, sep, raw = text.partition("=")
        if not sep or not key:
            raise ValueError(f"--preset-set {text!r}: expected FIELD=VALUE, e.g. iterations=10")
        out[key.strip()] = yaml.safe_load(raw)
    return out


def _run_config(stem: Path) -> dict:
    path = stem.parent / "config.yaml"
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def main(argv=None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        stem = resolve_checkpoint(args.checkpoint)
        model, meta = load_checkpoint(stem, map_location=args.device)
        cfg = _run_config(stem)
        dataset = args.dataset or cfg.get("data", {}).get("dataset")
        if dataset not in CLASSIFICATION_DATASETS:
            raise ValueError(f"--dataset: the run {stem.parent} does not name a classification dataset "
                             f"(found {dataset!r}); give one of {', '.join(CLASSIFICATION_DATASETS)}")
        data = args.data or cfg.get("data", {}).get("root")
        if not data:
            raise ValueError("--data: no dataset folder given and the run's config has none")
        split = read_classification(dataset, data, args.split, cfg.get("data", {}).get("fold", 1))
        if split.num_classes != meta["num_classes"]:
            raise ValueError(f"{data}: the {args.split} split has {split.num_classes} classes but the checkpoint "
                             f"{stem} was trained for {meta['num_classes']}")
        preset_dataset = args.preset_dataset or PRESET_DATASET[dataset]
        if preset_dataset not in PRESET_DATASETS[args.preset]:
            preset_dataset = PRESET_DATASETS[args.preset][0]
        preset = get_preset(args.preset, preset_dataset, **_overrides(args.preset_set))
        out_dir = args.out or stem.parent
        out_dir.mkdir(parents=True, exist_ok=True)
        base = out_dir / f"robustness-{dataset}-{preset.name}"
        image_size = meta.get("image_size")
        if split.in_memory and split.images.shape[1] == image_size:
            image_size = None
        report = evaluate_robustness(
            model, split, preset, image_size=image_size, batch_size=args.batch_size, max_images=args.max_images,
            pgd_steps=args.pgd_steps, pgd_images=args.pgd_images, attack_images=args.attack_images,
            attack_batch_size=args.attack_batch_size, max_rows=args.max_rows,
            random_baseline=not args.no_random_baseline, attack_precision=args.attack_precision,
            seed=args.seed, progress=not args.quiet, checkpoint_path=base.with_suffix(".json"))
        name = args.name or meta.get("method") or cfg.get("method", {}).get("name", "model")
        report.update(dataset=dataset, data=str(data), checkpoint=str(stem), name=name,
                      preset_dataset=preset_dataset)
        text = [f"## Robustness of {stem} on {dataset}/{args.split}", "", robustness_markdown(report, name, dataset)]
        if args.cifar10c:
            from wsol.engine.corruption_eval import COLUMN_SETS, cifar10c_markdown, evaluate_cifar10c

            report["cifar10c"] = evaluate_cifar10c(model, args.cifar10c, corruptions=COLUMN_SETS[args.columns],
                                                   severities=args.severities, batch_size=args.batch_size,
                                                   device=args.device, progress=not args.quiet,
                                                   image_size=image_size)
            text += ["", cifar10c_markdown(report["cifar10c"], args.columns, name)]
        write_report(report, base.with_suffix(".json"))
        base.with_suffix(".md").write_text("\n".join(text))
    except (CheckpointError, ValueError, OSError) as err:  # DatasetFormatError and ConfigError are ValueErrors
        print(f"eval_robustness: error: {err}", file=sys.stderr)
        return 2
    print("\n".join(text))
    print(f"report: {base.with_suffix('.md')} and {base.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
