#!/usr/bin/env python
"""Why does ART help (or not) on a dataset? Three measurements on a trained model and its data.

    python benchmarks/art_diagnostics.py --checkpoint runs/wsol_table/resnet_tiny/seed0/natural

1. Signal: on one batch of training images, the value of L_attr (pair mode, random start) and
   the norm of its parameter gradient for several beta, against the CE gradient's norm; and the
   mean cosine distances d(x, g^y) and d(x, g^{i*}) whose soft-margin L_attr is.
2. Attack strength: L_attr after the official top-k sign attack (T steps) against the random
   start alone (the fast mode), for several epsilons.
3. Target quality: ART aligns the gradient map with the image's own projection
   Phi(x) = mean_c |normalize(x)|. If that map does not localize the object, aligning with it
   cannot make the gradient a localizer. Scored like a saliency map on the test split
   (MaxBoxAccV2, PxAP), next to the centre-Gaussian floor.

The ART settings are the checkpoint run's config (method.art), so a natural run trained with
configs/demo/*.yaml gets the demo's ART values. Prints a table and appends it to RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from wsol.config import load_config
from wsol.data import CubDataset, build_transform, collate_samples, load_split
from wsol.engine import load_checkpoint
from wsol.engine.table import centre_baseline
from wsol.localization import normalize_scoremap
from wsol.methods.art import art_attack, art_attr_term, cosine_distance, logit_gradients, project
from wsol.metrics import BoxEvaluator, PxAPEvaluator
from wsol.models.activations import smooth_activations

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("RESULTS.md")


def grad_norm(loss: torch.Tensor, params: list) -> float:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return float(torch.sqrt(sum((g ** 2).sum() for g in grads if g is not None)))


def signal(model, x, y, art, betas) -> list[str]:
    params = [p for p in model.parameters() if p.requires_grad]
    ce = torch.nn.functional.cross_entropy(model(x), y)
    lines = [f"| CE | {ce.item():.4f} | {grad_norm(ce, params):.3f} | – | – |"]
    for beta in betas:
        cfg = dataclasses.replace(art, beta=beta)
        torch.manual_seed(1)
        x_adv = (x + torch.empty_like(x).uniform_(-art.epsilon, art.epsilon)).clamp(0, 1)
        loss = art_attr_term(model, x, x_adv, y, cfg)
        u = model.normalize(x).requires_grad_(True)
        with smooth_activations(model, beta):
            g1, g2 = logit_gradients(model, u, y, normalized=True)
        img = project(u, cfg.projection)
        d_p, d_n = cosine_distance(img, project(g1, cfg.projection)), cosine_distance(img, project(g2, cfg.projection))
        lines.append(f"| L_attr, beta {beta:g} | {loss.item():.4f} | {grad_norm(loss, params):.3f} | "
                     f"{d_p.mean().item():.4f} | {d_n.mean().item():.4f} |")
    return ["| term | value | parameter-gradient norm | mean d(x, g^y) | mean d(x, g^i*) |",
            "|---|---|---|---|---|", *lines]


def attack_strength(model, x, y, art, epsilons) -> list[str]:
    lines = ["| epsilon | attack steps | L_attr (pair) | L_attr (adv_only) |", "|---|---|---|---|"]
    for eps in epsilons:
        for steps in (0, art.steps):
            cfg = dataclasses.replace(art, epsilon=eps, step_size=art.step_size * eps / art.epsilon)
            torch.manual_seed(1)
            x_adv = art_attack(model, x, y, cfg, steps=steps)
            pair = art_attr_term(model, x, x_adv, y, cfg).item()
            adv = art_attr_term(model, x, x_adv, y, dataclasses.replace(cfg, attr_inputs="adv_only")).item()
            lines.append(f"| {eps * 255:.0f}/255 | {steps} | {pair:.4f} | {adv:.4f} |")
    return lines


def target_quality(model, data, size: int, projection: str) -> dict:
    ds = CubDataset(load_split(data, "test"), build_transform("wsoleval", size))
    boxes, pxap = BoxEvaluator(cam_curve_interval=0.01, multi_contour=True), PxAPEvaluator(cam_curve_interval=0.01)
    has_masks = ds.load_masks
    for batch in torch.utils.data.DataLoader(ds, batch_size=100, collate_fn=collate_samples):
        u = model.normalize(batch["image"])
        phi = (u.abs().mean(1) if projection == "abs_mean" else u.mean(1).abs()).numpy()
        maps = np.stack([normalize_scoremap(m, (size, size)) for m in phi])
        boxes.accumulate(maps, [b.numpy() for b in batch["boxes"]])
        if has_masks:
            pxap.accumulate(maps, batch["mask"].numpy())
    out = {"v2": boxes.compute()["MaxBoxAccV2"]["mean"], "n": boxes.num_images}
    if has_masks:
        out["pxap"] = pxap.compute()["PxAP"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, required=True, help="run folder (its config gives method.art)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--betas", type=float, nargs="+", default=[1, 10, 50, 100])
    ap.add_argument("--epsilons", type=str, nargs="+", default=["2/255", "8/255"])
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    model, meta = load_checkpoint(args.checkpoint / "checkpoint-last" if args.checkpoint.is_dir() else args.checkpoint)
    run = args.checkpoint if args.checkpoint.is_dir() else args.checkpoint.parent
    art = load_config(run / "config.yaml").method.art
    data, size = meta["data"], int(meta["image_size"])
    model.train()  # the training step's mode (BN batch statistics)
    ds = CubDataset(load_split(data, "train"), build_transform("wsoleval", size), load_masks=False)
    step = max(1, len(ds) // args.batch)
    batch = collate_samples([ds[i * step] for i in range(args.batch)])
    x, y = batch["image"], batch["label"]
    epsilons = [float(Fraction(e)) for e in args.epsilons]  # "2/255"
    lines = ["### 1. Signal (one batch of training images, random start)", "", *signal(model, x, y, art, args.betas), "",
             f"### 2. Attack strength (official top-k sign attack, {art.steps} steps, step/eps = "
             f"{art.step_size / art.epsilon:.2f})", "", *attack_strength(model, x, y, art, epsilons), ""]
    model.eval()
    target = target_quality(model, data, size, art.projection)
    centre = centre_baseline(data, size)
    lines += ["### 3. The alignment target as a localizer (test split)", "",
              "| map | MaxBoxAccV2 | PxAP |", "|---|---|---|",
              f"| Phi(x) = mean_c abs(normalize(x)) | {target['v2']:.1f} | {target.get('pxap', float('nan')):.1f} |",
              f"| centre Gaussian (ignores the image) | {centre['v2']:.1f} | – |", ""]
    print("\n".join(lines))
    if not args.no_record:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        head = [f"\n## art_diagnostics: {run} ({now})\n", f"- machine: {platform.platform()}, {os.cpu_count()} CPUs",
                f"- command: `python benchmarks/art_diagnostics.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
                f"- ART settings from the run's config: {json.dumps(dataclasses.asdict(art))}", ""]
        with open(RESULTS, "a", encoding="utf-8") as fh:
            fh.write("\n".join(head + lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
