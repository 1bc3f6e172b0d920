"""How many images x IG path points go through the network in one pass of the attribution attack
(``attribution_attack(max_rows=...)``); the bound never changes an attack's result.

    rows = resolve_max_rows("auto", model, x, y, preset)   # then attribution_attack(..., max_rows=rows)
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from .presets import RobustnessPreset
from .saliency import saliency_map

__all__ = ["CPU_PASS_BYTES", "CUDA_MEMORY_SHARE", "check_max_rows", "largest_activation_bytes", "resolve_max_rows"]

log = logging.getLogger(__name__)

CPU_PASS_BYTES = 16 * 2**20   # "auto" on the CPU: the largest activation of a pass stays under this
CUDA_MEMORY_SHARE = 0.5       # "auto" on CUDA: rows that fill this share of the usable memory


def check_max_rows(max_rows) -> None:
    """ValueError unless `max_rows` is None, "auto" or a positive int."""
    ok = max_rows is None or max_rows == "auto" or (
        isinstance(max_rows, int) and not isinstance(max_rows, bool) and max_rows >= 1)
    if not ok:
        raise ValueError(f"max_rows must be a positive int, None (all at once) or 'auto', got {max_rows!r}")


def _longest_path(preset: RobustnessPreset) -> int:
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


def _probe_rows(model, x1, y1, preset, kind, region) -> int:
    """Rows per pass that fit CUDA_MEMORY_SHARE of the usable memory, from one image's peak."""
    from .attribution import _context, _step_direction   # the attack imports this module

    dev = x1.device
    torch.cuda.synchronize(dev)
    free, _ = torch.cuda.mem_get_info(dev)
    usable = free + torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
    ctx = _context(model, x1, y1, preset, kind, region, None)
    base = torch.cuda.memory_allocated(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    if kind == "random":         # no surrogate step: the first-order maps are the largest passes
        saliency_map(model, x1, y1, preset.metric_saliency)
        points = preset.metric_saliency.num_points
    else:
        _step_direction(model, x1, kind, ctx, preset, None, None)
        points = preset.attack_saliency.num_points
    torch.cuda.synchronize(dev)
    per_row = max(1, torch.cuda.max_memory_allocated(dev) - base) / points
    return max(points, int(CUDA_MEMORY_SHARE * usable / per_row))


def resolve_max_rows(max_rows: int | str | None, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     preset: RobustnessPreset, kind: str = "topk",
                     target_region: torch.Tensor | None = None) -> int | None:
    """The images x path points per forward pass that `max_rows` stands for.

    None (a whole batch at once) and positive ints are returned as they are. "auto":
      - CPU: as many rows as keep the largest activation of a pass under CPU_PASS_BYTES
        (16 MiB), but at least one image's longest path (art2020: 101 rows). On a 2-core CPU
        an image's 100-point IG pass of WRN-16-2 at 32 px (12.5 MiB activations) is already
        compute-bound, and larger passes of the surrogate step were slower per image (1.26 s
        for one image, 1.46 s each for two, 2.3 s each for eight), the difference spent in
        page faults of the larger buffers (glibc maps each buffer over 32 MiB afresh). Small
        models and images still get many images per pass.
      - CUDA: one surrogate step on x[:1] measures the peak memory per row; the bound fills
        CUDA_MEMORY_SHARE of the free (plus cached) memory, at least one image's path. This
        keeps WRN-28-10 (about 40 MB a row in the double backward) from running out of memory
        at batch 32 while filling the GPU for small models.
    The bound never changes the attack's result, only how the rows are split into passes.
    """
    check_max_rows(max_rows)
    if max_rows != "auto":
        return max_rows
    if x.device.type != "cuda":
        return max(_longest_path(preset), CPU_PASS_BYTES // largest_activation_bytes(model, x[:1].detach()))
    region = None if target_region is None else target_region[:1]
    rows = _probe_rows(model, x[:1].detach(), torch.as_tensor(y, device=x.device).long().reshape(-1)[:1],
                       preset, kind, region)
    log.info("attribution attack: max_rows auto -> %d (CUDA memory probe)", rows)
    return rows
