#!/usr/bin/env python
"""Time the IG top-k attribution attack batched against one image at a time.

    python benchmarks/bench_attack.py                                   # wrn_16_2, 32 px, 32 images, CPU
    python benchmarks/bench_attack.py --device cuda --iters 10 --images 128 --record
    python benchmarks/bench_attack.py --max-rows auto all 800 400       # one batched row per bound
    python benchmarks/bench_attack.py --precision fp32 bf16              # + rows in bfloat16 autocast

Settings are art2020's (REFERENCE §7.2: top-k on logit IG, right Riemann, 100 points, random
start, softplus beta 50, selection on the masked Kendall tau, metric IG on the CE loss) with
`--iters` attack iterations instead of 50 (each costs the same, so images/s scale with 1/iters).
The model is randomly initialised and in eval mode; the labels are its own predictions, so
every image is attacked. The same images go through `attribution_attack`:
  - one at a time with PyTorch's own double backward (`wsol.models.second_order.plain_double_backward`;
    "reference computation": what the released ART / Chen et al. code runs, each image's IG path
    in one pass; `--no-reference` skips it),
  - one at a time with this toolkit's lean double backward (`wsol.models.input_second_order`),
  - in batches of `--batch`, once per `--max-rows` bound (images x path points per pass:
    "auto" = `resolve_max_rows`, resolved once before timing; "all" = the whole batch in one
    pass; or a number),
  - with `--precision bf16` also one at a time and batched (first bound) with the step direction
    under bfloat16 autocast (`attribution_attack(precision="bf16")`).
The table gives images per second, the speed-up over the reference computation and over one
image at a time, the largest difference of the attacked images from the first row's, and the
compute rate: floating-point operations of attacking image 0 (counted once per computation on
its own, from the ATen ops the attack dispatches; every image does the same passes, less the
selection measure of an iterate that lost its label) times images over seconds.
A second table is the roofline: the rate of the model's plain forward pass (no autograd) at
one image's path (the rows one-at-a-time passes have) and at `--batch` images' paths. Batching
can only buy what the larger pass gains in rate; if the attack's rate is already near the
forward's, the attack is compute-bound and batching cannot speed it up much.
With --record both tables are appended to benchmarks/RESULTS.md with the machine, date and command.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

from wsol.attacks import ATTACK_PRECISIONS, attribution_attack, get_preset, resolve_max_rows
from wsol.models import build_model
from wsol.models.second_order import plain_double_backward

try:
    from _flops import count_flops
    from _record import add_malloc_option, append_entry, set_malloc, torch_machine
except ImportError:  # imported as benchmarks.bench_attack or by path: benchmarks/ is not on sys.path
    from benchmarks._flops import count_flops
    from benchmarks._record import add_malloc_option, append_entry, set_malloc, torch_machine

RESULTS = Path(__file__).with_name("RESULTS.md")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(model, x, y, preset, batch: int, max_rows, device, precision: str = "fp32") -> tuple[float, torch.Tensor]:
    """(seconds to attack all of x in chunks of `batch` images, the attacked images).

    Image i's random start comes from seed i in every mode, so all modes attack the same problem.
    """
    sync(device)
    start = time.perf_counter()
    out = []
    for i in range(0, len(x), batch):
        seeds = list(range(i, min(i + batch, len(x))))
        res = attribution_attack(model, x[i:i + batch], y[i:i + batch], preset, max_rows=max_rows, seed=seeds,
                                 precision=precision)
        assert res.orig_correct.all()
        out.append(res.x_adv)
    sync(device)
    return time.perf_counter() - start, torch.cat(out)


def forward_rate(model, x: torch.Tensor, rows: int, device, repeats: int = 3) -> tuple[int, float]:
    """(FLOPs, best seconds of `repeats`) of one no-grad forward pass of `rows` copies of x's images."""
    batch = x[torch.arange(rows, device=x.device) % len(x)]
    with torch.no_grad():
        flops = count_flops(lambda: model(batch))
        model(batch)
        best = math.inf
        for _ in range(repeats):
            sync(device)
            start = time.perf_counter()
            model(batch)
            sync(device)
            best = min(best, time.perf_counter() - start)
    return flops, best


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
    ap.add_argument("--precision", nargs="+", default=["fp32"], choices=ATTACK_PRECISIONS,
                    help="fp32 rows always; bf16 adds one-at-a-time and batched (first --max-rows) rows "
                         "with the step direction in bfloat16 autocast")
    ap.add_argument("--no-reference", action="store_true",
                    help="skip the one-at-a-time run with PyTorch's standard conv double backward")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    add_malloc_option(ap)
    ap.add_argument("--record", action="store_true", help="append the table to RESULTS.md")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    args.precision = list(dict.fromkeys(["fp32", *args.precision]))   # fp32 rows always, first
    return args


def main(argv=None) -> None:
    args = parse(argv)
    device = torch.device(args.device)
    malloc = set_malloc(args.malloc, device)
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
    warm_up = get_preset("art2020", iterations=1, attack_saliency=steps)
    modes = []                                   # (mode, batch, rows label, seconds, x_adv)
    flops = {}                                   # computation -> FLOPs of attacking image 0
    for precision in args.precision:             # fp32 first: the reference row leads the table
        run(model, x[:1], y[:1], warm_up, 1, None, device, precision)
        flops[precision] = count_flops(lambda: run(model, x[:1], y[:1], preset, 1, None, device, precision))
        suffix = "" if precision == "fp32" else f", {precision}"
        if precision == "fp32" and not args.no_reference:
            with plain_double_backward():
                flops["reference"] = count_flops(lambda: run(model, x[:1], y[:1], preset, 1, None, device))
                seconds, adv = run(model, x, y, preset, 1, None, device)
            modes.append(("one at a time, reference computation", 1, "one image's path", seconds, adv))
            print(f"reference computation, one at a time {seconds:.2f}s", flush=True)
        seconds, adv = run(model, x, y, preset, 1, None, device, precision)
        modes.append((f"one at a time{suffix}", 1, "one image's path", seconds, adv))
        print(f"one at a time{suffix}: {seconds:.2f}s", flush=True)
        batched = list(bounds.items()) if precision == "fp32" else list(bounds.items())[:1]  # bf16: first bound
        for text, rows in batched:
            seconds, adv = run(model, x, y, preset, args.batch, rows, device, precision)
            label = "all" if rows is None else f"{rows} ({text})" if text == "auto" else str(rows)
            modes.append((f"batched{suffix}", args.batch, label, seconds, adv))
            print(f"batched{suffix}, max rows {label}: {seconds:.2f}s", flush=True)
    table = table_rows(modes, args.images, flops)
    paths = preset.attack_saliency.num_points
    passes = (("one image's path", paths), (f"{args.batch} images' paths", args.batch * paths))
    roofline = roofline_rows([(label, n, *forward_rate(model, x, n, device)) for label, n in passes])
    print("\n".join(table + [""] + roofline))
    if args.record:
        record(table + [""] + roofline, args, device, malloc)


def table_rows(modes, images: int, flops: dict[str, int]) -> list[str]:
    """Markdown rows: speed-ups over the reference computation (when run) and over one image at a
    time in the same precision (the batching gain alone), and GFLOP/s from image 0's FLOPs."""
    ref = modes[0][3] if modes[0][0].endswith("reference computation") else None
    single = {_precision(m[0]): m[3] for m in modes if m[0].startswith("one at a time") and "reference" not in m[0]}
    first = modes[0][4]
    head = "| mode | batch | max rows per pass | images | seconds | images/s |"
    head += ((" vs reference |" if ref else "") + " vs one at a time (same precision) |"
             " max abs diff of x_adv from row 1 | GFLOP per image | GFLOP/s |")
    out = [head, "|---" * (head.count("|") - 1) + "|"]
    for mode, batch, label, seconds, adv in modes:
        row = f"| {mode} | {batch} | {label} | {images} | {seconds:.2f} | {images / seconds:.3f} |"
        row += (f" {ref / seconds:.2f}x |" if ref else "") + f" {single[_precision(mode)] / seconds:.2f}x |"
        work = flops["reference" if mode.endswith("reference computation") else _precision(mode)] / 1e9
        out.append(row + f" {(adv - first).abs().max().item():.2g} | {work:.1f} | {work * images / seconds:.1f} |")
    return out


def roofline_rows(passes: list[tuple[str, int, int, float]]) -> list[str]:
    """Markdown rows of (label, rows, FLOPs, seconds) plain forward passes."""
    out = ["| plain forward pass (no autograd) | rows | GFLOP | seconds (best of 3) | GFLOP/s |",
           "|---|---|---|---|---|"]
    for label, rows, flops, seconds in passes:
        out.append(f"| {label} | {rows} | {flops / 1e9:.1f} | {seconds:.3f} | {flops / 1e9 / seconds:.1f} |")
    return out


def _precision(mode: str) -> str:
    return "bf16" if mode.endswith(", bf16") else "fp32"


def record(table: list[str], args, device: torch.device, malloc: str) -> None:
    command = "python benchmarks/bench_attack.py " + " ".join(sys.argv[1:])
    append_entry(args.results, "bench_attack: IG top-k attribution attack, batched vs one image at a time", [
        f"machine: {torch_machine(device)}",
        f"command: `{command.strip()}`",
        f"model: {args.arch} (random init, eval mode), {args.classes} classes, {args.size} px, "
        f"{args.images} random images labelled with the model's predictions; art2020 settings with "
        f"{args.iters} iterations and {args.ig_steps}-point IG, device {device}; precisions "
        f"{', '.join(args.precision)}"
        + (f"; {malloc}" if malloc else "")], table)


if __name__ == "__main__":
    main()
