"""How many images x IG path points go through the network in one pass of the attribution attack
(``attribution_attack(max_rows=...)``); the bound never changes an attack's result.

    rows = resolve_max_rows("auto", model, x, y, preset)   # then attribution_attack(..., max_rows=rows)

This module holds the bound's checks and constants; `resolve_max_rows` itself lives beside the
attack in `wsol.attacks.attribution` (its CUDA probe runs one attack step), so neither module
imports the other's importer.
"""

from __future__ import annotations

import torch
from torch import nn

from .presets import RobustnessPreset

__all__ = ["CPU_PASS_BYTES", "CUDA_MEMORY_SHARE", "check_max_rows", "largest_activation_bytes", "longest_path"]

CPU_PASS_BYTES = 16 * 2**20   # "auto" on the CPU: the largest activation of a pass stays under this
CUDA_MEMORY_SHARE = 0.5       # "auto" on CUDA: rows that fill this share of the usable memory


def check_max_rows(max_rows) -> None:
    """ValueError unless `max_rows` is None, "auto" or a positive int."""
    ok = max_rows is None or max_rows == "auto" or (
        isinstance(max_rows, int) and not isinstance(max_rows, bool) and max_rows >= 1)
    if not ok:
        raise ValueError(f"max_rows must be a positive int, None (all at once) or 'auto', got {max_rows!r}")


def longest_path(preset: RobustnessPreset) -> int:
    return max(preset.attack_saliency.num_points, preset.selection_settings.num_points,
               preset.metric_saliency.num_points)


def largest_activation_bytes(model: nn.Module, x1: torch.Tensor) -> int:
    """Bytes of the largest tensor a leaf module outputs in a forward pass of one image x1 (1,C,H,W)."""
    sizes = [x1.numel() * x1.element_size()]

    def hook(_module, _inputs, out):
        if torch.is_tensor(out):
            sizes.append(out.numel() * out.element_size())

    handles = [m.register_forward_hook(hook) for m in model.modules() if not any(True for _ in m.children())]
    try:
        with torch.no_grad():
            model(x1)
    finally:
        for h in handles:
            h.remove()
    return max(sizes)
