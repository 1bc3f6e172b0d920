"""Training and scoring jobs for the tools that run many trainings (tools/search.py,
benchmarks/wsol_table.py): each training is a `tools/train_wsol.py` process with its own thread
limit, reused when its run folder holds a finished run of the same config and resumed when it
holds a stopped one; each scoring is a spawned worker process.

    cfg = train_config(["--config", "configs/demo/base.yaml", "--method", "art"], out)
    seconds = run_train(cmd, out, threads=1, label="art trial 3")
    row, seconds = score_worker(str(out), data, 64, "last", threads=1)
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from wsol.cli import REPO
from wsol.cli.train_wsol import parse as parse_train_args
from wsol.cli.train_wsol import wsol_config
from wsol.engine.train import finished_run, resumable_run

__all__ = ["TrainingFailed", "train_config", "run_train", "epoch_seconds", "score_worker", "scoring_pool", "log"]


class TrainingFailed(RuntimeError):
    """A training process exited non-zero; `returncode` and the end of its stderr are kept."""

    def __init__(self, message: str, returncode: int, stderr: str) -> None:
        super().__init__(message)
        self.returncode, self.stderr = returncode, stderr


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)


def train_config(cmd: list[str], out: Path):
    """The effective config tools/train_wsol.py builds from `cmd` (ConfigError for a bad one)."""
    return wsol_config(parse_train_args([*cmd, "--out", str(out)]))


def run_train(cmd: list[str], out: Path, threads: int, label: str, device: str | None = None) -> float:
    """Run tools/train_wsol.py unless `out` holds a run that finished with the same effective
    config (one with another config is refused: RunConfigMismatch); a stopped run is resumed.
    `device` is part of that config (`--device`). Returns the training seconds (timing.json);
    raises TrainingFailed."""
    if device:
        cmd = [*cmd, "--device", device]
    cfg = train_config(cmd, out)
    if finished_run(out, cfg) is not None:
        log(f"{label}: reusing finished run {out}")
        timing = out / "timing.json"
        return float(json.loads(timing.read_text())["train_s"]) if timing.is_file() else float("nan")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    resume = resumable_run(out, cfg)
    before = epoch_seconds(out) if resume else 0.0
    log(f"{label}: {'resuming' if resume else 'training'} -> {out}")
    t = time.perf_counter()
    args = ["--resume", str(out)] if resume else [*cmd, "--out", str(out)]
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "train_wsol.py"), *args, "--quiet"],
                          capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t + before
    if proc.returncode != 0:
        raise TrainingFailed(f"{label} failed (exit {proc.returncode}); command: train_wsol.py {' '.join(cmd)}\n"
                             f"{proc.stderr[-3000:]}", proc.returncode, proc.stderr[-3000:])
    (out / "timing.json").write_text(json.dumps({"train_s": elapsed}))
    log(f"{label}: done in {elapsed:.0f} s")
    return elapsed


def epoch_seconds(run: Path) -> float:
    """Training seconds of the epochs a stopped run already finished (metrics.jsonl)."""
    path = run / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return sum(float(json.loads(line).get("epoch_time_s", 0.0)) for line in lines if line.strip())


def score_worker(run_dir: str, data: str, batch_size: int, checkpoint: str, threads: int,
                 saliencies: tuple[str, ...] = ("grad", "cam"), masks: bool = False,
                 cache_name: str | None = None) -> tuple[dict, float]:
    """Score one run's checkpoint on the test split in a worker process (torch, OpenCV and numba
    held to `threads`): the table's row (wsol.engine.table.score_run; `masks`: score_mask_run).
    Writes the row to `run_dir/<cache_name>` (default table-row-<checkpoint>.json) and returns it
    with the seconds it took. A process each: the figure writers use pyplot, which is not thread-safe."""
    import cv2
    import numba
    import torch

    from wsol.engine.table import score_mask_run, score_run

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    t = time.perf_counter()
    run = Path(run_dir)
    meta = json.loads((run / f"checkpoint-{checkpoint}.json").read_text())
    d = meta.get("config", {}).get("data", {})
    opts = dict(split="test", batch_size=batch_size, out_dir=run / f"eval-{checkpoint}", saliencies=saliencies,
                dataset=d.get("dataset"), image_root=d.get("image_root"))
    row = (score_mask_run if masks else score_run)(run / f"checkpoint-{checkpoint}", data, **opts)
    row.pop("curves", None)
    (run / (cache_name or f"table-row-{checkpoint}.json")).write_text(json.dumps(row))
    return row, time.perf_counter() - t


def scoring_pool(workers: int, threads: int) -> ProcessPoolExecutor:
    """`workers` spawned scoring processes (for score_worker). They inherit the thread limits set
    here before they import torch and numba; trainings set their own."""
    os.environ.update({k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")})
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
