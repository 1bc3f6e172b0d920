"""Training objectives, one file each with its settings, one registry (REFERENCE.md §1-2, §12.3).

    method = build_method("art", cfg.method)      # any name of list_methods(): natural | adl | pgd | ig_norm |
                                                   # ig_sum_norm | art | has | acol | spg | cutmix | fsl
    out = method.step(model, x, y, **(method.targets(batch) or {}))   # StepOutput(loss, logits, stats)
"""

from . import natural, pgd, ig_norm, art, has, acol, spg, cutmix, fsl  # noqa: F401  (register the methods, in this order)
from .base import (StepOutput, TrainingMethod, build_method, eval_mode, list_methods, method_class, method_runs,
                   method_settings, register_method)

__all__ = ["StepOutput", "TrainingMethod", "build_method", "eval_mode", "list_methods", "method_class",
           "method_runs", "method_settings", "register_method"]
