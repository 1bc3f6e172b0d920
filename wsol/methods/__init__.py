"""Training objectives, one file each, one registry (REFERENCE.md §1-2).

    method = build_method("art", cfg.method)      # natural | art | pgd | adl | ig_norm | ig_sum_norm
    out = method.step(model, x, y)                 # StepOutput(loss, logits, stats)
"""

from . import natural, pgd, ig_norm, art, has, acol, spg, cutmix  # noqa: F401  (register the methods, in this order)
from .base import (StepOutput, TrainingMethod, build_method, eval_mode, list_methods, method_class, method_runs,
                   method_settings, register_method)

__all__ = ["StepOutput", "TrainingMethod", "build_method", "eval_mode", "list_methods", "method_class",
           "method_runs", "method_settings", "register_method"]
