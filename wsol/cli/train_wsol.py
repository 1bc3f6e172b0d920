"""Train a WSOL classifier with any registered method (`--method`, wsol.methods.list_methods()): natural
(CAM), ART, PGD-AT, ADL, IG-NORM, IG-SUM-NORM, HaS, ACoL, SPG, CutMix, and the few-shot
fully supervised baseline FSL (trained on the val split's boxes or masks).

    python tools/train_wsol.py --arch vgg_gap --method art --data CUB_200_2011
    python tools/train_wsol.py --dataset ilsvrc --arch resnet50 --method natural --data metadata/ILSVRC \
        --image-root dataset/ILSVRC
    python tools/train_wsol.py --config configs/demo/base.yaml --method art --epochs 5
    python tools/train_wsol.py --resume runs/vgg_gap-art-20261124-2100 [--epochs 30]
    torchrun --nproc_per_node 4 tools/train_wsol.py --config configs/cub/resnet50_art.yaml --data CUB

Without --config the preset configs/<dataset>/<arch>_<method>.yaml (--dataset cub, ilsvrc or
openimages; default cub; paper / wsolevaluation values) is used when it exists; CPU-sized archs (resnet_tiny, vgg_gap_bn_small, ...) get configs/demo/base.yaml.
Without --data the built-in synthetic CUB-format dataset is generated once into a cache folder
($ART_WSOL_CACHE, default ~/.cache/art-wsol) and used. Precedence: defaults < config file <
--dataset/--arch/--method/--data/--image-root/--mask-root/--epochs/--batch-size/--image-size/--seed
< --set key=value. ILSVRC and OpenImages need --data (wsolevaluation metadata) and, where the images
are not beside it, --image-root (wsolevaluation: dataset/ILSVRC, dataset/OpenImages).
The run folder (--out, default runs/<arch>-<method>-<time>) gets config.yaml, checkpoints,
metrics.jsonl and report.json; tools/evaluate_wsol.py and tools/localize.py take it as is.
An --out folder that already holds a run is refused: --resume it, or --overwrite to replace it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path


from wsol.cli import REPO
from wsol.config import Config, ConfigError, load_config
from wsol.data import CubFormatError, ImageLoadError
from wsol.data.datasets import WSOL_DATASETS
from wsol.data.robustness import DatasetFormatError
from wsol.engine.checkpoint import CheckpointError
from wsol.engine.train import TrainingError, train
from wsol.methods import list_methods
from wsol.models import list_models
from wsol.models.registry import TIMM_PREFIX

log = logging.getLogger("train_wsol")
PAPER_ARCHS = ("vgg_gap", "resnet50", "vgg_gap_bn", "inception_v3")
PRESET_ARCH = {"vgg_gap_bn": "vgg_gap"}   # archs that take another arch's configs/cub presets


def build_parser(description: str = __doc__,
                 data_help: str = "CUB folder (official layout or wsolevaluation metadata); default: synthetic"):
    """The options shared by tools/train_wsol.py and tools/train_classifier.py."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", help=f"{' | '.join(list_models())} | {TIMM_PREFIX}<name>")
    ap.add_argument("--method", help=" | ".join(list_methods()))
    ap.add_argument("--data", help=data_help)
    ap.add_argument("--config", help="YAML config (see configs/)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override any config field, e.g. --set method.art.beta=50 (repeatable)")
    ap.add_argument("--out", help="run folder (default runs/<arch>-<method>-<time>)")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--image-size", type=int)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    ap.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    ap.add_argument("--overwrite", action="store_true",
                    help="--out holds a run: delete its checkpoints, config, metrics and reports, train anew")
    ap.add_argument("--quiet", action="store_true", help="warnings only")
    return ap


def parse(argv):
    ap = build_parser()
    ap.add_argument("--dataset", help=f"{' | '.join(WSOL_DATASETS)} (default: the config's, cub)")
    ap.add_argument("--image-root", help="the images, where they are not beside the metadata "
                    "(wsolevaluation: dataset/ILSVRC, dataset/OpenImages)")
    ap.add_argument("--mask-root", help="OpenImages: the folder its mask paths are relative to (default: the image root)")
    return ap.parse_args(argv)


def check_choice(value: str | None, valid: list[str], option: str, allow_timm: bool = False) -> None:
    if value is None or value in valid or (allow_timm and value.startswith(TIMM_PREFIX)):
        return
    extra = f", or {TIMM_PREFIX}<name>" if allow_timm else ""
    raise ConfigError(f"{option} {value!r} is unknown; valid values: {', '.join(valid)}{extra}")


def preset_config(arch: str | None, method: str | None, dataset: str | None = None) -> Path | None:
    """configs/<dataset>/<arch>_<method>.yaml (dataset default cub) for the paper archs,
    configs/demo/base.yaml for the CPU ones."""
    if arch and method:
        name = PRESET_ARCH.get(arch, arch).replace(":", "_")
        path = REPO / "configs" / (dataset or "cub") / f"{name}_{method}.yaml"
        if path.is_file():
            return path
    if arch and arch not in PAPER_ARCHS:
        return REPO / "configs" / "demo" / "base.yaml"
    return None


def flag_overrides(args) -> list[tuple[str, str]]:
    """The explicit flags as (flag, `--set` string) pairs (applied after the config file, before --set);
    a bad value is reported under its flag, e.g. "--epochs -1: train.epochs must be an integer >= 1"."""
    out = []
    for flag, key in (("dataset", "data.dataset"), ("arch", "model.arch"), ("method", "method.name"),
                      ("data", "data.root"), ("image_root", "data.image_root"), ("mask_root", "data.mask_root"),
                      ("epochs", "train.epochs"), ("batch_size", "train.batch_size"),
                      ("image_size", "data.image_size"), ("seed", "train.seed"), ("device", "train.device")):
        value = getattr(args, flag, None)
        if value is not None:
            text = f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}"
            out.append((f"--{flag.replace('_', '-')} {value}", text))
    return out


def config_from_args(args, preset=None) -> Config:
    """The effective config of a new run: preset or --config, then the flags, then --set.

    `preset(args) -> Path | None` picks the preset file when --config is not given
    (default: configs/cub/<arch>_<method>.yaml, see preset_config)."""
    check_choice(args.arch, list_models(), "--arch", allow_timm=True)
    check_choice(args.method, list_methods(), "--method")
    config = args.config or (preset(args) if preset else preset_config(args.arch, args.method,
                                                                        getattr(args, "dataset", None)))
    if config and not args.config:
        log.info("using preset config %s", config)
    cfg = load_config(config, flag_overrides(args) + args.overrides)
    check_choice(cfg.method.name, list_methods(), "method.name")
    check_choice(cfg.model.arch, list_models(), "model.arch", allow_timm=True)
    return cfg


def wsol_config(args) -> Config:
    """config_from_args for a WSOL dataset (--dataset one of wsol.data.datasets)."""
    check_choice(args.dataset, list(WSOL_DATASETS), "--dataset")
    cfg = config_from_args(args)
    if cfg.data.dataset not in WSOL_DATASETS:
        raise ConfigError(f"data.dataset is {cfg.data.dataset!r}: tools/train_wsol.py trains on the WSOL datasets "
                          f"({', '.join(WSOL_DATASETS)}); classification sets go to tools/train_classifier.py")
    return cfg


def main(argv=None) -> int:
    return run(parse(argv), wsol_config, "train_wsol")


def run(args, make_config, prog: str) -> int:
    """Train (or --resume) per `args`; `make_config(args) -> Config` builds a new run's config."""
    rank = int(os.environ.get("RANK", "0"))
    level = logging.WARNING if args.quiet or rank != 0 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        if args.resume:
            if args.overwrite:
                raise ConfigError("--resume continues a run and --overwrite replaces it; give one of them")
            ignored = [f for f in ("config", "arch", "method", "data") if getattr(args, f)]
            if ignored:
                raise ConfigError(f"--resume takes the run's own config.yaml; drop --{', --'.join(ignored)} "
                                  "(use --epochs or --set to change settings)")
            summary = train(None, args.resume, resume=True, overrides=flag_overrides(args) + args.overrides)
        else:
            cfg = make_config(args)
            prefix = "" if cfg.data.dataset == "cub" else f"{cfg.data.dataset}-"  # e.g. runs/ilsvrc-resnet50-cam-...
            out = args.out or REPO / "runs" / f"{prefix}{cfg.model.arch.replace(':', '_')}-{cfg.method.name}-" \
                                             f"{time.strftime('%Y%m%d-%H%M%S')}"
            summary = train(cfg, out, overrides=None, overwrite=args.overwrite)
    except (ConfigError, TrainingError, CubFormatError, DatasetFormatError, CheckpointError, ImageLoadError,
            OSError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2 if isinstance(err, ConfigError) else 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; the last finished epoch's checkpoint is kept; continue with "
              "--resume RUN_DIR", file=sys.stderr)
        return 130
    if rank == 0:
        best = summary["best_value"]
        print(f"run: {summary['run']}")
        print(f"epochs: {summary['epochs']}  best {summary['selected_by']}: "
              f"{'n/a' if best is None else f'{best:.2f}'} (epoch {summary['best_epoch']})")
        for k in ("top1_acc", "pgd_acc", "grad_loc", "cam_loc"):
            if k in summary["final_val"]:
                print(f"val {k}: {summary['final_val'][k]:.2f}")
        if summary["skipped_images"]:
            print(f"skipped {len(summary['skipped_images'])} unreadable image(s); see report.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
