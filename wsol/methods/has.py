"""Hide-and-Seek (HaS; Singh & Lee, ICCV 2017) as wsolevaluation trains it (REFERENCE.md §12.3.1).

One step on a clean batch (x, y): hide square patches of every image, then plain CE:

1. Tile each image into patches of ``has_grid_size`` x ``has_grid_size`` **pixels** (the default
   4 gives 56 x 56 = 3,136 patches at 224 px; the last row/column of patches is cut at the border).
2. Per image, per patch, one ``random.random()`` (Python's generator): the patch is hidden when
   the draw is <= ``has_drop_rate``. Draws run row-block by row-block, column blocks inner, image
   by image -- the order of wsolevaluation's ``wsol/method/has.py:24-30``.
3. A hidden patch is set to 0 in normalized space, i.e. the per-channel ImageNet mean in pixel
   space. Our images are in [0, 1] and the model normalizes them, so we fill with ``model.mean``,
   which `normalize` maps to exactly 0.
4. loss = CE(f(x_hidden), y); the logits are those of x_hidden. Test time is unchanged.

``has_grid_size`` 0 hides nothing (as the reference). The reference writes each patch with an
in-place slice (3,136 writes per image at 224 px); we draw the same numbers, build one (B,H,W)
mask and apply it at once, without touching the caller's tensor.

Non-square inputs (``has_tiling``): the reference loops ``x in range(0, W, g)`` over dim 2 (rows)
and ``y in range(0, H, g)`` over dim 3 (columns) and clips **both** ends with H (``x_end =
min(H, x+g)``, ``y_end = min(H, y+g)``). On an H x W image with H != W it therefore draws
ceil(W/g) x ceil(H/g) numbers and can hide only rows < min(H, ceil(W/g) g) and columns
< min(H, W): with H < W the right W - H columns are never hidden, with H > W the rows below
ceil(W/g) g are never hidden and every column block past W draws a number for nothing. ``"fixed"`` (the default) tiles rows over H and columns over W;
``"wsoleval"`` reproduces the reference's tiling. Both are identical -- same draws, same mask --
on every square input, which is all wsolevaluation ever trains on (224 x 224 crops).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from wsol.settings import NONNEG, UNIT, ConfigError, check_limits

from wsol.space import Choice, Uniform
from .base import StepOutput, TrainingMethod, register_method

__all__ = ["HAS_TILINGS", "HaSConfig", "HaSMethod", "has_mask", "hide_patches"]

#: "fixed": rows over H, columns over W; "wsoleval": the reference's tiling (see the module docstring)
HAS_TILINGS = ("fixed", "wsoleval")


@dataclass
class HaSConfig:
    """Method "has" (REFERENCE §12.3.1). Defaults: wsolevaluation's config.py:210-211."""

    CHOICES: ClassVar[dict] = {"has_tiling": HAS_TILINGS}
    LIMITS: ClassVar[dict] = {"has_grid_size": NONNEG, "has_drop_rate": UNIT}

    has_grid_size: int = 4             # patch side in PIXELS (not a cell count); 0: hide nothing
    has_drop_rate: float = 0.5         # probability that a patch is hidden
    has_tiling: str = "fixed"          # "fixed" or "wsoleval" (differ on non-square inputs only)

    def __post_init__(self) -> None:
        if self.has_tiling not in HAS_TILINGS:
            raise ConfigError(f"has.has_tiling: {self.has_tiling!r} is not one of {', '.join(HAS_TILINGS)}",
                              key="has.has_tiling")
        check_limits(type(self), vars(self), "has")
        if isinstance(self.has_grid_size, bool) or int(self.has_grid_size) != self.has_grid_size:
            raise ConfigError(f"has.has_grid_size must be an integer >= 0, got {self.has_grid_size!r}",
                              key="has.has_grid_size")


def has_mask(batch: int, height: int, width: int, grid_size: int, drop_rate: float,
             tiling: str = "fixed", device: torch.device | str | None = None) -> torch.Tensor:
    """Which pixels HaS hides: bool (B,H,W), True = hidden.

    Draws ``random.random()`` once per patch (row blocks outer, column blocks inner, image by
    image) exactly as wsolevaluation's ``has`` does; `tiling` picks the patch grid ("fixed":
    ceil(H/g) x ceil(W/g) patches covering the image; "wsoleval": the reference's
    ceil(W/g) x ceil(H/g) grid with both ends clipped to H). grid_size 0: nothing hidden,
    no draws.
    """
    if tiling not in HAS_TILINGS:
        raise ValueError(f"unknown has_tiling {tiling!r}; valid values: {', '.join(HAS_TILINGS)}")
    if grid_size < 0 or int(grid_size) != grid_size:
        raise ValueError(f"has_grid_size must be an integer >= 0, got {grid_size!r}")
    hidden = torch.zeros(batch, height, width, dtype=torch.bool, device=device)
    if grid_size == 0:
        return hidden
    g = int(grid_size)
    if tiling == "fixed":
        rows, cols = math.ceil(height / g), math.ceil(width / g)
        row_end, col_end = height, width
    else:  # reference: x over range(0, W, g) on dim 2, y over range(0, H, g) on dim 3, both ends min(H, .)
        rows, cols = math.ceil(width / g), math.ceil(height / g)
        row_end, col_end = min(height, rows * g), min(width, height)
    draws = torch.tensor([random.random() for _ in range(batch * rows * cols)], dtype=torch.float64)
    blocks = (draws <= drop_rate).view(batch, rows, cols)
    full = blocks.repeat_interleave(g, dim=1).repeat_interleave(g, dim=2)   # (B, rows*g, cols*g)
    hidden[:, :row_end, :col_end] = full[:, :row_end, :col_end].to(hidden.device)
    return hidden


def hide_patches(x: torch.Tensor, grid_size: int, drop_rate: float, fill: torch.Tensor,
                 tiling: str = "fixed") -> torch.Tensor:
    """x (B,C,H,W) with the patches of :func:`has_mask` set to `fill` ((1,C,1,1) or broadcastable).

    A new tensor; x is left as it is. grid_size 0 returns x itself (the reference's early return).
    """
    if grid_size == 0:
        return x
    B, _, H, W = x.shape
    hidden = has_mask(B, H, W, grid_size, drop_rate, tiling, device=x.device)
    return torch.where(hidden[:, None], fill.to(device=x.device), x)


@register_method("has", settings=HaSConfig)
class HaSMethod(TrainingMethod):
    """CE(f(x_hidden), y) with x_hidden = :func:`hide_patches` (fill: the model's normalization
    mean, i.e. 0 after normalization); logits of x_hidden; stats {"ce"}."""

    def search_space(self) -> dict:
        """lr, batch size, the drop rate (uniform on [0, 1], the paper's) and the patch side in pixels
        (ours: the paper's grid parameter and its pixel mapping are not known here)."""
        return {**super().search_space(), "method.has.has_drop_rate": Uniform(0.0, 1.0),
                "method.has.has_grid_size": Choice([4, 8, 16, 32, 56])}

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        c = self.cfg
        fill = getattr(model, "mean", None)
        if not isinstance(fill, torch.Tensor):
            raise ValueError("method 'has' needs a model that normalizes its input itself (a WSOLModel with a "
                             "`mean` buffer): hidden patches are filled with that mean")
        x_hidden = hide_patches(x, c.has_grid_size, c.has_drop_rate, fill, c.has_tiling)
        logits = model(x_hidden)
        ce = F.cross_entropy(logits, y)
        return StepOutput(ce, logits.detach(), {"ce": ce.item()})
