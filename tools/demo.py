#!/usr/bin/env python
"""The art-wsol demo on the built-in synthetic CUB-format data (CPU, a few minutes).

    python tools/demo.py [--out demo_out] [--classes 10] [--images-per-class 40] [--size 128]

Steps: generate the synthetic CUB-200-2011-format dataset, validate it with the CUB reader,
write its wsolevaluation metadata, build every CPU-sized WSOL backbone and run it on a batch
(logits, feature map, CAM), round-trip a checkpoint, run the WSOL evaluation (Grad and CAM,
wsolevaluation protocol) and tools/localize.py on that checkpoint, and write a report with
figures. The checkpoint is UNTRAINED (random init) until the demo trains (issue 5), so its
scores are chance level: the demo shows the pipeline, not the method.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from wsol.data import (  # noqa: E402
    CubDataset,
    build_transform,
    collate_samples,
    convert_official_to_wsoleval,
    load_split,
)
from wsol.data.check import check_dataset  # noqa: E402
from wsol.data.synthetic import make_synthetic_cub  # noqa: E402
from wsol.engine import load_checkpoint, save_checkpoint  # noqa: E402
from wsol.engine.evaluate import EvalOptions, evaluate_checkpoint  # noqa: E402
from wsol.engine.localize import Localizer, localize_files  # noqa: E402
from wsol.models import build_model  # noqa: E402

log = logging.getLogger("demo")
ARCHS = ("vgg_gap_tiny", "vgg_gap_small", "resnet_tiny", "resnet18", "timm:efficientnet_lite0")


def step(i: int, n: int, text: str) -> None:
    log.info("[%d/%d] %s", i, n, text)


def generate(out: Path, args) -> Path:
    root = out / "data" / "CUB_200_2011"
    params = dict(num_classes=args.classes, images_per_class=args.images_per_class, size=args.size, seed=args.seed)
    stamp = out / "data" / "params.json"
    if root.is_dir() and stamp.is_file() and json.loads(stamp.read_text()) == params:
        log.info("    reusing %s (same parameters)", root)
        return root
    if root.exists():
        import shutil

        shutil.rmtree(root)
    t = time.perf_counter()
    make_synthetic_cub(root, **params)
    stamp.write_text(json.dumps(params))
    log.info("    wrote %s in %.1f s", root, time.perf_counter() - t)
    return root


def run_backbones(batch: dict, class_names: list[str], out: Path) -> list[dict]:
    num_classes = len(class_names)
    rows = []
    x = batch["image"]
    for arch in ARCHS:
        torch.manual_seed(0)
        model = build_model(arch, num_classes=num_classes).eval()
        t = time.perf_counter()
        with torch.no_grad():
            logits, feats = model.forward_with_features(x)
        ms = 1000 * (time.perf_counter() - t)
        cam = torch.einsum("ck,bkhw->bchw", model.classifier_weight, feats)
        gap_check = torch.allclose(model.classifier(feats.mean((2, 3))), logits, atol=1e-4)
        rows.append(dict(arch=arch, params=sum(p.numel() for p in model.parameters()),
                         feature_map=tuple(feats.shape[1:]), cam=tuple(cam.shape[1:]), ms=ms, gap_ok=gap_check))
        log.info("    %-26s %6.2fM params  features %-16s CAM %-14s %7.1f ms/batch of %d  logits==fc(GAP)=%s",
                 arch, rows[-1]["params"] / 1e6, str(rows[-1]["feature_map"]), str(rows[-1]["cam"]), ms, len(x),
                 gap_check)
    model = build_model(ARCHS[0], num_classes=num_classes).eval()
    save_checkpoint(out / "run" / "checkpoint-best", model, image_size=x.shape[-1], class_names=class_names)
    loaded, meta = load_checkpoint(out / "run", arch=ARCHS[0], num_classes=num_classes)
    with torch.no_grad():
        same = torch.equal(model(x), loaded(x))
    log.info("    checkpoint round trip (%s): identical logits = %s", meta["arch"], same)
    return rows


def figure(ds: CubDataset, path: Path, n: int = 12) -> None:
    n = min(n, len(ds))
    cols = min(6, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(2 * rows, cols, figsize=(2.2 * cols, 4.4 * rows), squeeze=False)
    step_ = max(1, len(ds) // n)
    for k in range(n):
        item = ds[k * step_]
        r, c = divmod(k, cols)
        ax, axm = axes[2 * r, c], axes[2 * r + 1, c]
        ax.imshow(item["image"].permute(1, 2, 0).numpy())
        for x0, y0, x1, y1 in item["boxes"].tolist():
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="lime", lw=1.5))
        ax.set_title(ds.class_names[item["label"]].split(".", 1)[-1], fontsize=7)
        axm.imshow(item["mask"].numpy(), cmap="gray")
    for a in axes.flat:
        a.axis("off")
    fig.suptitle("synthetic CUB test images: ground-truth box (green) and mask", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out: Path, report, rows: list[dict], fig: Path, args, evals: dict) -> Path:
    lines = [
        "# art-wsol demo report", "",
        f"Synthetic CUB-format dataset: {args.classes} classes x {args.images_per_class} images, "
        f"{args.size} px, seed {args.seed}.", "",
        "## Dataset check", "", "```", *report.summary_lines(), "```", "",
        "## Backbones (random init, one batch of test images)", "",
        "| arch | params (M) | feature map | CAM | ms / batch | logits == fc(GAP(features)) |",
        "|---|---|---|---|---|---|",
        *[f"| {r['arch']} | {r['params'] / 1e6:.2f} | {r['feature_map']} | {r['cam']} | {r['ms']:.1f} | "
          f"{r['gap_ok']} |" for r in rows], "",
        "## WSOL evaluation of the untrained checkpoint (wsolevaluation protocol, test split)", "",
        "Random init: these numbers are the chance level of the pipeline, not a result. Trained models",
        "(tools/train_wsol.py) and the paper's table (issue 5) replace this section.", "",
        "| map | top-1 acc | MaxBoxAcc (IoU 50) | MaxBoxAccV2 (mean) | PxAP | mIoU |", "|---|---|---|---|---|---|",
        *[f"| {k} | {r['top1_acc']:.1f} | {r['MaxBoxAcc']['50']:.1f} | {r['MaxBoxAccV2']['mean']:.1f} | "
          f"{r['PxAP']:.1f} | {r['mIoU']:.1f} |" for k, r in evals.items()], "",
        *[f"![{k} overlays](run/eval-test-{k}-overlays.png)" for k in evals], "",
        "## Data", "", f"![samples]({fig.name})", "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--images-per-class", type=int, default=40)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n = 6
    step(1, n, "generating the synthetic CUB-format dataset")
    root = generate(out, args)
    step(2, n, "validating it with the CUB reader (tools/check_dataset.py)")
    report = check_dataset(root)
    for line in report.summary_lines():
        log.info("    %s", line)
    if not report.ok:
        log.error("dataset problems:\n  %s", "\n  ".join(report.problems))
        return 1
    step(3, n, "writing wsolevaluation metadata (tools/convert_cub.py)")
    counts = convert_official_to_wsoleval(root, root / "metadata", val_per_class=2)
    log.info("    %s", ", ".join(f"{k} {v}" for k, v in counts.items()))
    step(4, n, "building every CPU-sized backbone and running a batch")
    ds = CubDataset(load_split(root / "metadata", "test"), build_transform("wsoleval", args.size))
    batch = collate_samples([ds[i] for i in range(min(8, len(ds)))])
    rows = run_backbones(batch, ds.class_names, out)
    step(5, n, "evaluating and localizing with the (untrained) checkpoint")
    evals = {}
    for saliency in ("grad", "cam"):
        opts = EvalOptions(split="test", saliency=saliency, batch_size=32, num_overlays=8)
        evals[saliency] = evaluate_checkpoint(out / "run", root / "metadata", opts)
        r = evals[saliency]
        log.info("    %-4s MaxBoxAccV2 %.1f  MaxBoxAcc %.1f  PxAP %.1f  (top-1 acc %.1f)", saliency,
                 r["MaxBoxAccV2"]["mean"], r["MaxBoxAcc"]["50"], r["PxAP"], r["top1_acc"])
    images = [root / "images" / s.image_id for s in ds.split.samples[:3]]
    for det in localize_files(Localizer(out / "run", "grad"), images, out / "localize"):
        log.info("    localize %s -> %s %.2f %s", Path(det["image"]).name, det["class_name"], det["score"], det["boxes"])
    step(6, n, "writing the report")
    fig = out / "samples.png"
    figure(ds, fig)
    path = write_report(out, report, rows, fig, args, evals)
    log.info("")
    log.info("Figure: %s", fig.resolve())
    log.info("Report: %s", path.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
