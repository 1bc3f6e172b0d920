#!/usr/bin/env python
"""Time the IG top-k attribution attack batched against one image at a time.

    python benchmarks/bench_attack.py                                   # wrn_16_2, 32 px, 32 images, CPU
    python benchmarks/bench_attack.py --device cuda --iters 10 --images 128 --record

Settings are art2020's (REFERENCE §7.2: top-k on logit IG, right Riemann, 100 points, random
start, softplus beta 50, selection on the masked Kendall tau, metric IG on the CE loss) with
`--iters` attack iterations instead of 50 (each costs the same, so images/s scale with 1/iters).
The model is randomly initialised and in eval mode; the labels are its own predictions, so
every image is attacked. The same images go through `attribution_attack` in batches of
`--batch` and one by one; the table gives images per second and the speed-up of batching.
With --record the table is appended to benchmarks/RESULTS.md with the machine, date and command.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _record import append_entry  # noqa: E402

from wsol.attacks import attribution_attack, get_preset  # noqa: E402
from wsol.models import build_model  # noqa: E402

RESULTS = Path(__file__).with_name("RESULTS.md")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(model, x, y, preset, batch: int, max_rows, device) -> float:
    """Seconds to attack all of x in chunks of `batch` images."""
    sync(device)
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        res = attribution_attack(model, x[i:i + batch], y[i:i + batch], preset, max_rows=max_rows, seed=i)
        assert res.orig_correct.all()
    sync(device)
    return time.perf_counter() - start


def machine(device: torch.device) -> str:
    text = f"{platform.platform()}, {platform.machine()}, {torch.get_num_threads()} torch threads"
    if device.type == "cuda":
        text += f", {torch.cuda.get_device_name(device)}"
    return text + f"; torch {torch.__version__}"


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="wrn_16_2")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--images", type=int, default=32, help="images attacked in each mode")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=3, help="attack iterations (art2020: 50)")
    ap.add_argument("--ig-steps", type=int, default=100, help="IG points of attack and metric (art2020: 100)")
    ap.add_argument("--max-rows", type=int, default=None,
                    help="images x IG points per pass; default 800 on CPU (memory), unlimited on CUDA; 0 = unlimited")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--record", action="store_true", help="append the table to RESULTS.md")
    ap.add_argument("--results", type=Path, default=RESULTS)
    return ap.parse_args(argv)


def main(argv=None) -> None:
    args = parse(argv)
    device = torch.device(args.device)
    max_rows = args.max_rows if args.max_rows is not None else (None if device.type == "cuda" else 800)
    max_rows = max_rows or None
    torch.manual_seed(args.seed)
    model = build_model(args.arch, args.classes).to(device).eval()
    x = torch.rand(args.images, 3, args.size, args.size, device=device)
    with torch.no_grad():
        y = model(x).argmax(1)
    steps = {"steps": args.ig_steps}
    preset = get_preset("art2020", iterations=args.iters, attack_saliency=steps, metric_saliency=steps)
    run(model, x[:1], y[:1], get_preset("art2020", iterations=1, attack_saliency=steps), 1, max_rows, device)  # warm-up
    batched = run(model, x, y, preset, args.batch, max_rows, device)
    print(f"batched {batched:.2f}s", flush=True)
    single = run(model, x, y, preset, 1, max_rows, device)
    print(f"one-at-a-time {single:.2f}s", flush=True)
    table = ["| mode | batch | images | seconds | images/s | speed-up |", "|---|---|---|---|---|---|",
             f"| one at a time | 1 | {args.images} | {single:.2f} | {args.images / single:.2f} | 1.00x |",
             f"| batched | {args.batch} | {args.images} | {batched:.2f} | {args.images / batched:.2f} | "
             f"{single / batched:.2f}x |"]
    print("\n".join(table))
    if args.record:
        record(table, args, device, max_rows)


def record(table: list[str], args, device: torch.device, max_rows) -> None:
    command = "python benchmarks/bench_attack.py " + " ".join(sys.argv[1:])
    append_entry(args.results, "bench_attack: IG top-k attribution attack, batched vs one image at a time", [
        f"machine: {machine(device)}",
        f"command: `{command.strip()}`",
        f"model: {args.arch} (random init, eval mode), {args.classes} classes, {args.size} px, "
        f"{args.images} random images labelled with the model's predictions; art2020 settings with "
        f"{args.iters} iterations and {args.ig_steps}-point IG, max rows per pass {max_rows or 'unlimited'}, "
        f"device {device}"], table)


if __name__ == "__main__":
    main()
