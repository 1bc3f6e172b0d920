"""Training and evaluation loops, checkpoints, logging.

Importing this package is light (no torch): the checkpoint functions load on first use, so the
score-map path (`wsol.engine.scoremaps`) starts in a second or two.
"""

import importlib

__all__ = ["CheckpointError", "load_checkpoint", "read_checkpoint_meta", "resolve_checkpoint", "save_checkpoint"]


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module 'wsol.engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(".checkpoint", __name__), name)
    globals()[name] = value
    return value
