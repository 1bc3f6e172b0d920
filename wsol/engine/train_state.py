"""A training run's resumable state: RNG states of every library, counters, and the state file.

`rng_state()` / `set_rng_state()` capture and restore torch, numpy, python (and CUDA) RNGs as
plain lists, so they pickle across ranks and load with `torch.load(weights_only=True)`. The state
file (optimizer, scheduler, RNG states, RunState) is written to a temporary name and renamed.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .checkpoint import CheckpointError

__all__ = ["RunState", "rng_state", "set_rng_state", "seed_everything", "select_better", "save_train_state",
           "load_train_state"]


def rng_state() -> dict:
    """torch / numpy / python (/ CUDA) RNG states as plain lists (picklable across ranks, weights_only-safe)."""
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state().tolist(),
             "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    n = state["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), *n[2:]))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class RunState:
    epoch: int = 0                     # epochs completed
    global_step: int = 0
    best_value: float | None = None
    best_epoch: int | None = None
    nonfinite: int = 0
    skipped: dict = field(default_factory=dict)   # image_id -> error


def select_better(metric: str, value: float, best: float | None) -> bool:
    if metric == "last" or best is None:
        return True
    return value < best if metric == "loss" else value > best


def save_train_state(path: Path, state: dict) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"{path}: could not write the training state ({err})") from err


def load_train_state(run: Path, meta: dict) -> dict:
    name = meta.get("train_state")
    if not name:
        raise CheckpointError(f"{run}/checkpoint-last.json names no train_state; the run cannot be resumed")
    path = run / name
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as err:
        raise CheckpointError(f"{path}: unreadable training state ({err})") from err
