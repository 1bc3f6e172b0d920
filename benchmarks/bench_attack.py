#!/usr/bin/env python
"""Time the IG top-k attribution attack batched against one image at a time.

    python benchmarks/bench_attack.py                                   # wrn_16_2, 32 px, 32 images, CPU
    python benchmarks/bench_attack.py --device cuda --iters 10 --images 128 --record
    python benchmarks/bench_attack.py --max-rows auto all 800 400       # one batched row per bound

Settings are art2020's (REFERENCE §7.2: top-k on logit IG, right Riemann, 100 points, random
start, softplus beta 50, selection on the masked Kendall tau, metric IG on the CE loss) with
`--iters` attack iterations instead of 50 (each costs the same, so images/s scale with 1/iters).
The model is randomly initialised and in eval mode; the labels are its own predictions, so
every image is attacked. The same images go through `attribution_attack` one by one (each
image's IG path in one pass, as the reference code does) and in batches of `--batch`, once
per `--max-rows` bound (images x path points per pass: "auto" = `resolve_max_rows`, resolved
once before timing; "all" = the whole batch in one pass; or a number); the table gives images
per second and the speed-up over one image at a time.
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

from wsol.attacks import attribution_attack, get_preset, resolve_max_rows  # noqa: E402
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


def _bound(text: str) -> str:
    if text not in ("auto", "all") and not (text.isdigit() and int(text) >= 1):
        raise argparse.ArgumentTypeError(f"expected a positive number of rows, 'auto' or 'all', got {text!r}")
    return text


def parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="wrn_16_2")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--images", type=int, default=32, help="images attacked in each mode")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=3, help="attack iterations (art2020: 50)")
    ap.add_argument("--ig-steps", type=int, default=100, help="IG points of attack and metric (art2020: 100)")
    ap.add_argument("--max-rows", nargs="+", default=["auto", "all"], type=_bound, metavar="N|auto|all",
                    help="row bounds of the batched runs, one table row each (default: auto all)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--record", action="store_true", help="append the table to RESULTS.md")
    ap.add_argument("--results", type=Path, default=RESULTS)
    return ap.parse_args(argv)


def main(argv=None) -> None:
    args = parse(argv)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    model = build_model(args.arch, args.classes).to(device).eval()
    x = torch.rand(args.images, 3, args.size, args.size, device=device)
    with torch.no_grad():
        y = model(x).argmax(1)
    steps = {"steps": args.ig_steps}
    preset = get_preset("art2020", iterations=args.iters, attack_saliency=steps, metric_saliency=steps)
    bounds = {}
    for text in args.max_rows:
        rows = None if text == "all" else int(text) if text.isdigit() else text
        bounds[text] = resolve_max_rows(rows, model, x[:args.batch], y[:args.batch], preset)
    run(model, x[:1], y[:1], get_preset("art2020", iterations=1, attack_saliency=steps), 1, None, device)  # warm-up
    single = run(model, x, y, preset, 1, None, device)
    print(f"one at a time {single:.2f}s", flush=True)
    table = ["| mode | batch | max rows per pass | images | seconds | images/s | speed-up |",
             "|---|---|---|---|---|---|---|",
             f"| one at a time | 1 | one image's path | {args.images} | {single:.2f} | {args.images / single:.2f} | "
             f"1.00x |"]
    for text, rows in bounds.items():
        seconds = run(model, x, y, preset, args.batch, rows, device)
        label = "all" if rows is None else f"{rows} ({text})" if text == "auto" else str(rows)
        print(f"batched, max rows {label}: {seconds:.2f}s", flush=True)
        table.append(f"| batched | {args.batch} | {label} | {args.images} | {seconds:.2f} | "
                     f"{args.images / seconds:.2f} | {single / seconds:.2f}x |")
    print("\n".join(table))
    if args.record:
        record(table, args, device)


def record(table: list[str], args, device: torch.device) -> None:
    command = "python benchmarks/bench_attack.py " + " ".join(sys.argv[1:])
    append_entry(args.results, "bench_attack: IG top-k attribution attack, batched vs one image at a time", [
        f"machine: {machine(device)}",
        f"command: `{command.strip()}`",
        f"model: {args.arch} (random init, eval mode), {args.classes} classes, {args.size} px, "
        f"{args.images} random images labelled with the model's predictions; art2020 settings with "
        f"{args.iters} iterations and {args.ig_steps}-point IG, device {device}"], table)


if __name__ == "__main__":
    main()
