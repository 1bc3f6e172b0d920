"""What every benchmark entry in benchmarks/RESULTS.md starts with: title with UTC time, bullets, body."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def git_commit() -> str:
    """The short hash of the checked-out commit, or "unknown"."""
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def machine() -> str:
    """Platform, CPU count and, where CUDA is present (the trainings' `train.device: auto` use it),
    the GPU's name."""
    text = f"{platform.platform()}, {os.cpu_count()} CPUs"
    import torch

    if torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name(0)} (torch {torch.__version__})"
    return text


def torch_machine(device) -> str:
    """Platform, architecture, torch's thread count, the GPU's name on CUDA, and torch's version: the
    machine line of the per-step benchmarks (bench_train_step, bench_attack)."""
    import torch

    text = f"{platform.platform()}, {platform.machine()}, {torch.get_num_threads()} torch threads"
    if device.type == "cuda":
        text += f", {torch.cuda.get_device_name(device)}"
    return text + f"; torch {torch.__version__}"


def add_malloc_option(ap) -> None:
    """--malloc tuned|default: glibc's allocator as the toolkit's commands set it on the CPU
    (wsol.engine.cpu_malloc) or as it is."""
    ap.add_argument("--malloc", choices=["tuned", "default"], default="tuned",
                    help="CPU: glibc's allocator as the toolkit's commands set it (wsol.engine.cpu_malloc; "
                         "default) or as it is")


def set_malloc(choice: str, device) -> str:
    """Apply --malloc for a run on `device`; the words a record gives it ("" off the CPU)."""
    if device.type != "cpu":
        return ""
    if choice == "default":
        return "glibc malloc as it is (--malloc default)"
    from wsol.engine.cpu_malloc import malloc_setting, tune_cpu_malloc

    tune_cpu_malloc()
    return f"glibc malloc {malloc_setting()}"


def append_entry(results: Path, title: str, bullets: list[str], body: list[str]) -> None:
    """Append "## <title> (<time>)", one "- " line per bullet, then the body lines."""
    text = [f"\n## {title} ({utc_now()})\n", *[f"- {b}" for b in bullets], "", *body, ""]
    with open(results, "a", encoding="utf-8") as fh:
        fh.write("\n".join(text) + "\n")
