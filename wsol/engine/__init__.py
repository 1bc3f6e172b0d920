"""Training and evaluation loops, checkpoints, logging."""

from .checkpoint import (
    CheckpointError,
    load_checkpoint,
    read_checkpoint_meta,
    resolve_checkpoint,
    save_checkpoint,
)

__all__ = ["CheckpointError", "load_checkpoint", "read_checkpoint_meta", "resolve_checkpoint", "save_checkpoint"]
