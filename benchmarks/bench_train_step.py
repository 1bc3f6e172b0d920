#!/usr/bin/env python
"""Time one training step (forward, backward, SGD update) of the registered training methods on one model.

    python benchmarks/bench_train_step.py                       # resnet_tiny, 64 px, batch 32, CPU
    python benchmarks/bench_train_step.py --arch resnet50 --size 224 --batch 32 --device cuda --amp none bf16
    python benchmarks/bench_train_step.py --methods natural has cutmix acol spg   # the wsolevaluation methods

Prints one line per method, `<method> <ms per step> <ratio to natural>`, then a table that is
appended to benchmarks/RESULTS.md with the machine, date and command. The methods take turns,
one step each (after `--warmup` rounds), so a slow spell of a shared machine slows every row
alike and the ratios stay fair. The table also gives each method's peak memory over one step
run on its own (CPU: the process's peak resident set, reset before it through
/proc/self/clear_refs, so it includes the process's baseline and every row's model; CUDA: max
allocated).

    python benchmarks/bench_train_step.py --methods natural art art_plain art_fast --phases

`--phases` adds, per method, the cost of each phase of its step: the phases the method names
(ART: the top-k mask pass, each attack step, the L_attr forward with its input gradients, the CE
forward), then the backward of each loss term apart (ART: L_attr, CE; the others: the whole loss)
and the optimizer step, each with its median time, its FLOPs (convolutions, their backward and
matmuls, counted from the ATen ops dispatched in one more step) and those FLOPs in units of one
forward pass of the batch, so the cost is explained against the passes the algorithm needs.
Backpropagating the terms apart does the same work as the one backward of the plain step.
`art_plain` is faithful ART as this toolkit computed it before issue 25 (the attack steps and the
L_attr pass through PyTorch's own double backward: `wsol.models.second_order.plain_double_backward`),
and `ig_norm_plain` IG-NORM likewise, for side-by-side speed-ups in one run. Every registered method
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
import contextlib
import statistics
import sys
import time
from pathlib import Path

import torch

from wsol.config import load_config
from wsol.engine.train import build_training_model
from wsol.methods import build_method, list_methods, method_class
from wsol.models.second_order import plain_double_backward

try:
    from _flops import FlopCount, count_flops
    from _record import add_malloc_option, append_entry, set_malloc, torch_machine
except ImportError:  # imported as benchmarks.bench_train_step or by path: benchmarks/ is not on sys.path
    from benchmarks._flops import FlopCount, count_flops
    from benchmarks._record import add_malloc_option, append_entry, set_malloc, torch_machine

RESULTS = Path(__file__).with_name("RESULTS.md")
# method -> config overrides on top of its defaults (the cost the paper's setting implies)
OVERRIDES = {"art": ["method.art.topk_fraction=0.299"]}
# extra rows: label -> (registered method, overrides on top of its OVERRIDES)
VARIANTS = {
    "art_fast": ("art", ["method.art.mode=fast"]),
    "art_adv_only": ("art", ["method.art.attr_inputs=adv_only"]),
    "art_plain": ("art", []),
    "ig_norm_plain": ("ig_norm", []),
}


# row label -> context its steps run in (the computation a row stands for)
CONTEXTS = {"art_plain": plain_double_backward, "ig_norm_plain": plain_double_backward}


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


def step_kwargs(method, x: torch.Tensor) -> dict:
    """The extra `step` arguments of a method trained on localization labels (FSL): its targets for
    one centred box per image (the middle half of each side); {} for the others."""
    if method.supervision == "image":
        return {}
    h, w = x.shape[-2:]
    box = torch.tensor([[w // 4, h // 4, 3 * w // 4 - 1, 3 * h // 4 - 1]], dtype=torch.float32)
    targets = method.targets({"image": x, "boxes": [box] * len(x), "image_id": [f"#{i}" for i in range(len(x))]})
    return {k: v.to(x.device) if torch.is_tensor(v) else v for k, v in (targets or {}).items()}


def amp_context(device: torch.device, amp: str):
    return torch.autocast(device.type, dtype=torch.bfloat16) if amp == "bf16" else \
        torch.autocast(device.type, enabled=False)


@contextlib.contextmanager
def _row(label: str, failed: dict, device: torch.device):
    """Run one method's work; an error (out of memory on a GPU, say) is recorded in `failed` under
    its label, reported, and the other rows go on (a lent GPU's minutes are not lost to one row)."""
    try:
        yield
    except (RuntimeError, ValueError, NotImplementedError) as exc:
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        failed.setdefault(label, message)
        print(f"{label}: FAILED: {message}", file=sys.stderr, flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()


def timed_step(method, model, opt, x, y, device, amp: str) -> float:
    """Seconds of one training step: the method's step, backward, SGD update."""
    sync(device)
    t = time.perf_counter()
    with amp_context(device, amp):
        out = method.step(model, x, y, **step_kwargs(method, x))
    opt.zero_grad(set_to_none=True)
    out.loss.backward()
    opt.step()
    sync(device)
    return time.perf_counter() - t


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, nesterov=True)


# -- memory ------------------------------------------------------------------------------------

def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak: CUDA's max-allocated counter, or the process's peak RSS (VmHWM)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_memory_gb(device: torch.device) -> float:
    """Peak since `reset_peak_memory`: CUDA max allocated, or the process's peak RSS; nan if unknown."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


# -- per-phase accounting ----------------------------------------------------------------------

class PhaseRecorder:
    """`TrainingMethod.phase_hook`: times each named phase (device-synchronised) and, with a
    FlopCount `counter` active, counts its FLOPs. One dict per step in `steps`."""

    def __init__(self, device: torch.device, counter: FlopCount | None = None) -> None:
        self.device, self.counter = device, counter
        self.steps: list[dict[str, float]] = []
        self.flops: dict[str, int] = {}

    def new_step(self) -> None:
        self.steps.append({})

    @contextlib.contextmanager
    def __call__(self, name: str):
        sync(self.device)
        f0 = self.counter.flops if self.counter is not None else 0
        t0 = time.perf_counter()
        try:
            yield
        finally:
            sync(self.device)
            self.steps[-1][name] = self.steps[-1].get(name, 0.0) + time.perf_counter() - t0
            if self.counter is not None:
                self.flops[name] = self.flops.get(name, 0) + self.counter.flops - f0


OTHER = "rest of the step (outside its named phases)"


def phased_step(method, model, opt, x, y, device, amp: str, rec: PhaseRecorder) -> None:
    """One training step with every phase recorded: the method's own phases, the rest of its
    step, the backward of each loss term apart (or of the whole loss), the optimizer step."""
    rec.new_step()
    method.phase_hook = rec
    try:
        f0 = rec.counter.flops if rec.counter is not None else 0
        sync(device)
        t0 = time.perf_counter()
        with amp_context(device, amp):
            out = method.step(model, x, y, **step_kwargs(method, x))
        sync(device)
        inner = sum(rec.steps[-1].values())
        rec.steps[-1][OTHER] = time.perf_counter() - t0 - inner
        if rec.counter is not None:
            rec.flops[OTHER] = rec.counter.flops - f0 - sum(rec.flops.get(n, 0) for n in rec.steps[-1] if n != OTHER)
    finally:
        method.phase_hook = None
    opt.zero_grad(set_to_none=True)
    terms = list(out.terms.items()) or [("loss", out.loss)]
    for i, (name, term) in enumerate(terms):
        with rec(f"backward: {name}"):
            term.backward(retain_graph=i < len(terms) - 1)
    with rec("optimizer step"):
        opt.step()


def phase_table(method, model, x, y, device, amp: str, warmup: int, iters: int,
                forward_flops: int) -> list[str]:
    """Markdown rows: phase | ms (median over `iters` steps) | share | GFLOP | forward passes | GFLOP/s."""
    opt = sgd(model)
    timing = PhaseRecorder(device)
    for _ in range(warmup):
        phased_step(method, model, opt, x, y, device, amp, timing)
    timing.steps.clear()
    for _ in range(iters):
        phased_step(method, model, opt, x, y, device, amp, timing)
    counting = PhaseRecorder(device)
    with FlopCount() as counter:
        counting.counter = counter
        phased_step(method, model, opt, x, y, device, amp, counting)
    names = list(timing.steps[0])
    ms = {n: 1000 * statistics.median(step.get(n, 0.0) for step in timing.steps) for n in names}
    total_ms = sum(ms.values())
    total_flops = sum(counting.flops.values())
    rows = []
    for n in [*[n for n in names if n != OTHER and not n.startswith(("backward", "optimizer"))], OTHER,
              *[n for n in names if n.startswith(("backward", "optimizer"))]]:
        f = counting.flops.get(n, 0)
        rate = f / 1e9 / (ms[n] / 1000) if ms[n] > 0 and f else float("nan")
        rows.append(f"| {n} | {ms[n]:.1f} | {100 * ms[n] / total_ms:.0f}% | {f / 1e9:.2f} | "
                    f"{f / forward_flops:.2f} | {rate:.1f} |")
    rows.append(f"| **total** | **{total_ms:.1f}** | 100% | **{total_flops / 1e9:.2f}** | "
                f"**{total_flops / forward_flops:.2f}** | {total_flops / 1e9 / (total_ms / 1000):.1f} |")
    return rows


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
    ap.add_argument("--channels-last", action="store_true", help="model and images in channels_last memory format")
    ap.add_argument("--tf32", action="store_true", help="CUDA: TF32 matmuls and convolutions")
    ap.add_argument("--cudnn-benchmark", action="store_true", help="CUDA: torch.backends.cudnn.benchmark = True")
    ap.add_argument("--phases", action="store_true",
                    help="also time and count the FLOPs of each phase of every method's step")
    add_malloc_option(ap)
    ap.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    malloc = set_malloc(args.malloc, device)
    if args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    torch.manual_seed(args.seed)
    x = torch.rand(args.batch, 3, args.size, args.size, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, args.classes, (args.batch,), device=device)
    rows, phases = [], []
    failed = {}   # label -> error, rows that raised (reported in the table; the exit status is 1)
    forward_flops = None
    for amp in args.amp:
        runs = []   # (label, name, method, model, optimizer)
        for name in args.methods:
            built = build(name, args.arch, args.classes, args.seed, device)
            if built is None:
                print(f"{name}: skipped (does not support arch {args.arch})", flush=True)
                continue
            method, model = built
            model = model.to(memory_format=fmt)
            if forward_flops is None:
                with torch.no_grad():
                    forward_flops = count_flops(lambda: model(x))
            runs.append((name if amp == "none" else f"{name}[{amp}]", name, method, model, sgd(model)))
        # peak memory: one step of each method on its own (also its first warm-up step)
        peaks = {}
        for label, name, method, model, opt in runs:
            with _row(label, failed, device), CONTEXTS.get(name, contextlib.nullcontext)():
                reset_peak_memory(device)
                timed_step(method, model, opt, x, y, device, amp)
                peaks[label] = peak_memory_gb(device)
        # timing: the methods take turns, one step each, so a slow spell of the machine hits every row alike
        times = {label: [] for label, *_ in runs}
        for i in range(args.warmup + args.iters):
            for label, name, method, model, opt in runs:
                if label in failed:
                    continue
                with _row(label, failed, device), CONTEXTS.get(name, contextlib.nullcontext)():
                    seconds = timed_step(method, model, opt, x, y, device, amp)
                    if i >= args.warmup:
                        times[label].append(seconds)
        base = None
        for label, name, method, model, opt in runs:
            if label in failed:
                rows.append((label, failed[label]))
                continue
            ms = 1000 * statistics.median(times[label])
            base = ms if name == "natural" else base
            ratio = ms / base if base else float("nan")
            print(f"{label} {ms:.1f} {ratio:.2f}", flush=True)
            rows.append((label, ms, ratio, args.batch * 1000 / ms, peaks[label]))
        if args.phases:
            for label, name, method, model, opt in runs:
                if label in failed:
                    continue
                with _row(label, failed, device), CONTEXTS.get(name, contextlib.nullcontext)():
                    phases.append((label, phase_table(method, model, x, y, device, amp, 0, max(1, args.iters // 2),
                                                      forward_flops)))
    mem = "peak GPU memory allocated (GiB)" if device.type == "cuda" else "peak RSS of the process (GiB)"
    table = [f"| method | ms per step (median) | ratio to natural | images/s | {mem} |", "|---|---|---|---|---|"]
    table += [f"| {r[0]} | {r[1]:.1f} | {r[2]:.2f}x | {r[3]:.1f} | {r[4]:.2f} |" if len(r) == 5
              else f"| {r[0]} | failed: {r[1]} | | | |" for r in rows]
    for label, phase_rows in phases:
        table += ["", f"Phases of `{label}` (one forward pass of the batch = {forward_flops / 1e9:.2f} GFLOP):", "",
                  "| phase | ms (median) | share | GFLOP | forward passes | GFLOP/s |", "|---|---|---|---|---|---|",
                  *phase_rows]
    print("\n".join(table))
    if not args.no_record:
        record(table, args, device, malloc)
    if failed:
        sys.exit(f"bench_train_step: {len(failed)} row(s) failed: {', '.join(failed)}")


def record(table: list[str], args, device: torch.device, malloc: str) -> None:
    command = "python benchmarks/bench_train_step.py " + " ".join(sys.argv[1:])
    append_entry(args.results, "bench_train_step: one training step per method", [
        f"machine: {torch_machine(device)}",
        f"command: `{command.strip()}`",
        f"model: {args.arch}, {args.classes} classes, batch {args.batch} at {args.size} px, random images, "
        f"median of {args.iters} steps after {args.warmup} warm-up steps, device {device}"
        + (f", {malloc}" if malloc else "")
        + "".join(f", {flag}" for flag, on in (("channels_last", args.channels_last), ("TF32", args.tf32),
                                               ("cudnn.benchmark", args.cudnn_benchmark)) if on)], table)


if __name__ == "__main__":
    main()
