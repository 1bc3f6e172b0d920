#!/usr/bin/env python
"""Time one training step (forward, backward, SGD update) of the registered training methods on one model.

    python benchmarks/bench_train_step.py                       # resnet_tiny, 64 px, batch 32, CPU
    python benchmarks/bench_train_step.py --arch resnet50 --size 224 --batch 32 --device cuda --amp none bf16
    python benchmarks/bench_train_step.py --methods natural has cutmix acol spg   # the wsolevaluation methods

Prints one line per method, `<method> <ms per step> <ratio to natural>`, then a table that is
appended to benchmarks/RESULTS.md with the machine, date and command. Every registered method
(`wsol.methods.list_methods()`) has a row under its own name, at its default settings (the
paper's CUB settings: PGD 7 steps; HaS, ACoL, SPG, CutMix: wsolevaluation's defaults) plus the
per-method overrides in `OVERRIDES` (ART: top-k 29.9% of pixels; eps 2/255, T 3, alpha 1.5/255,
pair + hard mining); `VARIANTS` adds rows such as `art_fast`, ART's fast mode (random start,
no attack steps). Each method's model is built as the trainer builds it (`build_training_model`
with the method's `model_options()`: ADL layers, ACoL's and SPG's heads), from the same seed;
a method whose `supported_archs` excludes --arch is skipped with a note. Images are random.
With several --amp values each method is timed under each (CUDA bf16 autocast: images/s matter
most there).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from wsol.config import load_config
from wsol.engine.train import build_training_model
from wsol.methods import build_method, list_methods, method_class

try:
    from _record import append_entry
except ImportError:  # imported as benchmarks.bench_train_step or by path: benchmarks/ is not on sys.path
    from benchmarks._record import append_entry

RESULTS = Path(__file__).with_name("RESULTS.md")
# method -> config overrides on top of its defaults (the cost the paper's setting implies)
OVERRIDES = {"art": ["method.art.topk_fraction=0.299"]}
# extra rows: label -> (registered method, overrides on top of its OVERRIDES)
VARIANTS = {
    "art_fast": ("art", ["method.art.mode=fast"]),
    "art_adv_only": ("art", ["method.art.attr_inputs=adv_only"]),
}


def method_table() -> dict[str, list[str]]:
    """Row label -> config overrides: one row per registered method, then the VARIANTS."""
    table = {name: [f"method.name={name}", *OVERRIDES.get(name, [])] for name in list_methods()}
    for label, (name, extra) in VARIANTS.items():
        if name in table:
            table[label] = [*table[name], *extra]
    return table


METHODS = method_table()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(name: str, arch: str, classes: int, seed: int, device: torch.device):
    """(method, model in train mode) for row `name`, the model built as the trainer builds it;
    None when the method does not support `arch`."""
    cfg = load_config(None, [*METHODS[name], f"model.arch={arch}"])
    supported = method_class(cfg.method.name).supported_archs
    if supported is not None and arch not in supported:
        return None
    method = build_method(cfg.method.name, cfg.method)
    torch.manual_seed(seed)
    model = build_training_model(cfg, classes, method.model_options()).to(device).train()
    return method, model


def time_method(method, model, x, y, device, amp: str, warmup: int, iters: int) -> list[float]:
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, nesterov=True)
    ctx = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if amp == "bf16" else \
        (lambda: torch.autocast(device.type, enabled=False))
    times = []
    for i in range(warmup + iters):
        sync(device)
        t = time.perf_counter()
        with ctx():
            out = method.step(model, x, y)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return times


def machine(device: torch.device) -> str:
    text = f"{platform.platform()}, {platform.machine()}, {torch.get_num_threads()} torch threads"
    if device.type == "cuda":
        text += f", {torch.cuda.get_device_name(device)}"
    return text + f"; torch {torch.__version__}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="resnet_tiny")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--methods", nargs="+", default=["natural", "pgd", "art", "art_fast"], choices=list(METHODS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", nargs="+", default=["none"], choices=["none", "bf16"])
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    x = torch.rand(args.batch, 3, args.size, args.size, device=device)
    y = torch.randint(0, args.classes, (args.batch,), device=device)
    rows = []
    for amp in args.amp:
        base = None
        for name in args.methods:
            built = build(name, args.arch, args.classes, args.seed, device)
            if built is None:
                print(f"{name}: skipped (does not support arch {args.arch})", flush=True)
                continue
            times = time_method(*built, x, y, device, amp, args.warmup, args.iters)
            ms = 1000 * statistics.median(times)
            base = ms if name == "natural" else base
            ratio = ms / base if base else float("nan")
            label = name if amp == "none" else f"{name}[{amp}]"
            print(f"{label} {ms:.1f} {ratio:.2f}", flush=True)
            rows.append((label, ms, ratio, args.batch * 1000 / ms))
    table = ["| method | ms per step (median) | ratio to natural | images/s |", "|---|---|---|---|"]
    table += [f"| {n} | {ms:.1f} | {r:.2f}x | {ips:.1f} |" for n, ms, r, ips in rows]
    print("\n".join(table))
    if not args.no_record:
        record(table, args, device)


def record(table: list[str], args, device: torch.device) -> None:
    command = "python benchmarks/bench_train_step.py " + " ".join(sys.argv[1:])
    append_entry(args.results, "bench_train_step: one training step per method", [
        f"machine: {machine(device)}",
        f"command: `{command.strip()}`",
        f"model: {args.arch}, {args.classes} classes, batch {args.batch} at {args.size} px, random images, "
        f"median of {args.iters} steps after {args.warmup} warm-up steps, device {device}"], table)


if __name__ == "__main__":
    main()
