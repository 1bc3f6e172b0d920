"""Train an image classifier for the robustness tables: natural, PGD-AT, ART, IG-NORM, IG-SUM-NORM.

    python tools/train_classifier.py --dataset cifar10 --method art --data /data/cifar10
    python tools/train_classifier.py --dataset gtsrb --method ig_norm --data /data/GTSRB
    python tools/train_classifier.py --dataset cifar10 --method natural --arch wrn_16_2 --epochs 30 \\
        --data data/synthetic_cifar --out runs/c10-natural
    python tools/train_classifier.py --resume runs/c10-natural --epochs 40

Datasets: cifar10 (python pickle batches), svhn (.mat), gtsrb (official folders and CSVs),
flowers17 and flowers102 (official layouts); --data is the dataset folder (required: these sets
are not downloaded). Without --config the preset configs/<dataset>/<method>.yaml is used
(REFERENCE.md values; e.g. configs/cifar10/art.yaml is ART's WRN-28-10 recipe). Validation is
never the test split: the official val split (Flowers) or `data.val_per_class` images per class
carved from train. Same engine, options and run folder as tools/train_wsol.py (--set, --resume,
torchrun, metrics.jsonl, checkpoints); `val.pgd_every` adds a PGD-40 accuracy check.
Evaluate with tools/eval_robustness.py --checkpoint RUN --dataset cifar10 --preset art2020.
"""

from __future__ import annotations

import sys
from pathlib import Path


from wsol.cli import REPO
from wsol.cli.train_wsol import build_parser, check_choice, config_from_args, run

from wsol.config import ConfigError
from wsol.data.datasets import WSOL_DATASETS
from wsol.engine.classification import CLASSIFICATION_DATASETS


def parse(argv):
    ap = build_parser(__doc__, data_help="the dataset folder (e.g. the one holding cifar-10-batches-py/)")
    ap.add_argument("--dataset", help=" | ".join(CLASSIFICATION_DATASETS))
    return ap.parse_args(argv)


def preset(args) -> Path | None:
    """configs/<dataset>/<method>.yaml (natural when --method is not given)."""
    if not args.dataset:
        return None
    path = REPO / "configs" / args.dataset / f"{args.method or 'natural'}.yaml"
    return path if path.is_file() else None


def make_config(args):
    check_choice(args.dataset, list(CLASSIFICATION_DATASETS), "--dataset")
    if not args.dataset and not args.config:
        raise ConfigError("give --dataset (" + " | ".join(CLASSIFICATION_DATASETS) + ") or --config")
    if args.dataset:
        args.overrides = [f"data.dataset={args.dataset}", *args.overrides]
    cfg = config_from_args(args, preset)
    if cfg.data.dataset in WSOL_DATASETS:
        raise ConfigError(f"data.dataset is {cfg.data.dataset!r}: train WSOL models with tools/train_wsol.py; "
                          f"this tool takes {', '.join(CLASSIFICATION_DATASETS)}")
    return cfg


def main(argv=None) -> int:
    return run(parse(argv), make_config, "train_classifier")


if __name__ == "__main__":
    sys.exit(main())
