"""Self-produced Guidance (SPG; Zhang et al., ECCV 2018) as wsolevaluation trains it (REFERENCE §12.3.3).

The model is built with ``architecture_type="spg"`` (`wsol.models.spg`: B1 / B2 / C heads on the
backbone). One step on (x, y), with `up` the bilinear upsampling (align_corners=False) to the loss
size and `mask(a, h, l)` the ignore-255 mask of `spg_mask` ([W] wsol/method/spg.py:13-87):

    attention = minmax_hw(up(feat_map)[y])                       detached, GT label
    fused     = (sigmoid(up(logits_b1)) + sigmoid(up(logits_b2))) / 2, detached
    L = CE(logits, y) + BCE(up(logits_b2), mask(attention, 1h, 1l))
                      + BCE(up(logits_b1), mask(sigmoid(up(logits_b2)), 2h, 2l))
                      + BCE(up(logits_c),  mask(fused, 3h, 3l))

each BCE the mean of BCE-with-logits over the batch's non-ignored pixels.

Deviations from wsolevaluation (both documented in `SPGConfig`):
- Loss size. wsolevaluation upsamples to a fixed 224x224 (`nn.Upsample(size=(224, 224))`), which
  breaks other input sizes; `spg_loss_size=None` (default) upsamples to the input's size, which is the
  same at 224. `spg_loss_size=224` reproduces the fixed size for any input.
- A BCE term with no non-ignored pixel is 0 here; wsolevaluation's mean over the empty set is NaN,
  which stops training. It happens only when `attention` is NaN for the whole batch: an exactly
  constant upsampled class map (e.g. all zero: dead ReLUs before SPG_A4 and a zero bias, as at init)
  gives 0/0 in the min-max.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from wsol.models.spg import SPG_ARCHS
from wsol.settings import ONE_UP, UNIT, check_limits

from wsol.space import Uniform
from .base import StepOutput, TrainingMethod, register_method

__all__ = ["IGNORE", "SPGConfig", "SPGMethod", "spg_attention", "spg_bce", "spg_fused_attention", "spg_loss",
           "spg_mask"]

IGNORE = 255.0          # mask value of the pixels a BCE term skips ([W] spg.py:62)
MIN_FOREGROUND = 30     # fewer pixels above the high threshold -> 0.7 * max instead ([W] spg.py:64-67)
FALLBACK_RATIO = 0.7


@dataclass
class SPGConfig:
    """Method "spg": wsolevaluation's thresholds (config names and defaults, [W] config.py:213-224).

    spg_threshold_1h/1l: B2 <- the class attention; _2h/_2l: B1 <- sigmoid(B2); _3h/_3l: C <- the
    fused B1/B2 attention. Pixels above h are foreground (1), below l background (0), the rest ignored.
    spg_loss_size: the side the maps are upsampled to for the loss; None (default) = the input's size
    (H, W); an integer N = N x N, and 224 is wsolevaluation's hard-wired size (identical at 224 input).
    """

    LIMITS: ClassVar[dict] = {"spg_threshold_1h": UNIT, "spg_threshold_1l": UNIT, "spg_threshold_2h": UNIT,
                              "spg_threshold_2l": UNIT, "spg_threshold_3h": UNIT, "spg_threshold_3l": UNIT,
                              "spg_loss_size": ONE_UP}

    spg_threshold_1h: float = 0.7
    spg_threshold_1l: float = 0.01
    spg_threshold_2h: float = 0.5
    spg_threshold_2l: float = 0.05
    spg_threshold_3h: float = 0.7
    spg_threshold_3l: float = 0.1
    spg_loss_size: int | None = None

    def __post_init__(self) -> None:
        check_limits(type(self), vars(self), "spg")

    @property
    def thresholds(self) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
        """((1h, 1l), (2h, 2l), (3h, 3l)): wsolevaluation's `spg_thresholds` ([W] config.py:249-251)."""
        return ((self.spg_threshold_1h, self.spg_threshold_1l), (self.spg_threshold_2h, self.spg_threshold_2l),
                (self.spg_threshold_3h, self.spg_threshold_3l))


def _wide(t: torch.Tensor) -> torch.Tensor:
    """float32 for a half-precision tensor (bf16 autocast), else as it is: the attention maps are
    compared against thresholds, which bf16's 8-bit mantissa would move pixels across."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def _up(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B,K,h,w) -> (B,K,*size), bilinear, align_corners=False (nn.Upsample's default)."""
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False)


def spg_attention(feat_map: torch.Tensor, labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """minmax_hw(up(feat_map)[b, labels_b]), detached: (B,C,h,w), (B,) -> (B,1,*size).

    An exactly constant map gives NaN (0/0), as wsolevaluation's `normalize_tensor` ([W] method/util.py:27-42)."""
    a = _up(_wide(feat_map.detach()), size)[torch.arange(len(labels), device=feat_map.device), labels].unsqueeze(1)
    flat = a.flatten(1)   # float32 under bf16 autocast too: the thresholds compare against it
    lo, hi = flat.amin(1).view(-1, 1, 1, 1), flat.amax(1).view(-1, 1, 1, 1)
    return (a - lo) / (hi - lo)


def spg_fused_attention(logits_b1: torch.Tensor, logits_b2: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(sigmoid(up(b1)) + sigmoid(up(b2))) / 2, detached: (B,1,h,w) x 2 -> (B,1,*size) ([W] spg.py:20-25)."""
    return (torch.sigmoid(_up(_wide(logits_b1.detach()), size)) + torch.sigmoid(_up(_wide(logits_b2.detach()), size))) / 2


def spg_mask(attention: torch.Tensor, high: float, low: float) -> torch.Tensor:
    """wsolevaluation's `get_mask` ([W] spg.py:61-81): (B,1,H,W) -> (B,1,H,W) in {0, 1, 255}.

    255 (ignore) everywhere; 1 where attention > high, or, for an image with fewer than 30 such pixels,
    where attention > 0.7 * its max; then 0 where attention < low (overriding the foreground).
    NaN attention compares False everywhere, so it stays ignored.
    """
    a = attention.detach()
    above = a > high
    few = (above.flatten(1).sum(1) < MIN_FOREGROUND).view(-1, 1, 1, 1)
    fallback = a > (a.flatten(1).amax(1) * FALLBACK_RATIO).view(-1, 1, 1, 1)
    mask = torch.full_like(a, IGNORE)
    mask[torch.where(few, fallback, above)] = 1.0
    mask[a < low] = 0.0
    return mask


def spg_bce(logits: torch.Tensor, mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Mean BCE-with-logits of up(logits) (B,1,h,w) against `mask` (B,1,*size) over its non-255 pixels
    (the whole batch pooled, [W] spg.py:28-33, 84-87); 0 when every pixel is ignored."""
    keep = (mask < IGNORE).to(logits.dtype)
    target = torch.where(keep.bool(), mask, torch.zeros_like(mask))
    total = F.binary_cross_entropy_with_logits(_up(logits, size), target, weight=keep, reduction="sum")
    return total / keep.sum(dtype=torch.float64).to(total.dtype).clamp_min(1.0)   # an exact count under bf16 too


def spg_loss(outputs: dict[str, torch.Tensor], y: torch.Tensor,
             thresholds: tuple[tuple[float, float], tuple[float, float], tuple[float, float]],
             size: tuple[int, int]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """wsolevaluation's `spg.get_loss` ([W] spg.py:36-58) at upsampling size `size` (224: the reference).

    Args:
        outputs: `SPGModel.spg_outputs` (logits (B,C), feat_map (B,C,h,w), logits_b1/_b2/_c (B,1,h,w)).
        y: labels (B,); they pick the attention's class.
        thresholds: ((1h, 1l), (2h, 2l), (3h, 3l)).
        size: (H, W) the maps are upsampled to.

    Returns:
        (scalar loss, {"ce", "bce_b2", "bce_b1", "bce_c"} terms as detached tensors).
    """
    (h1, l1), (h2, l2), (h3, l3) = thresholds
    attention = spg_attention(outputs["feat_map"], y, size)
    fused = spg_fused_attention(outputs["logits_b1"], outputs["logits_b2"], size)
    b2i = torch.sigmoid(_up(outputs["logits_b2"].detach(), size))
    terms = {
        "ce": F.cross_entropy(outputs["logits"], y.long()),
        "bce_b2": spg_bce(outputs["logits_b2"], spg_mask(attention, h1, l1), size),
        "bce_b1": spg_bce(outputs["logits_b1"], spg_mask(b2i, h2, l2), size),
        "bce_c": spg_bce(outputs["logits_c"], spg_mask(fused, h3, l3), size),
    }
    return sum(terms.values()), {k: v.detach() for k, v in terms.items()}


@register_method("spg", settings=SPGConfig)
class SPGMethod(TrainingMethod):
    """SPG: CE + the three self-produced-guidance BCE terms (module docstring), on a model built
    with ``architecture_type="spg"`` (`model_options`)."""

    supported_archs = SPG_ARCHS

    def search_space(self) -> dict:
        """lr, batch size, and each block's thresholds: delta_l uniform on [0, 1], delta_h on [delta_l, 1]
        (the paper's)."""
        space = super().search_space()
        for b in (1, 2, 3):
            low = f"method.spg.spg_threshold_{b}l"
            space[low] = Uniform(0.0, 1.0)
            space[f"method.spg.spg_threshold_{b}h"] = Uniform(low, 1.0)
        return space

    def model_options(self) -> dict:
        return {"architecture_type": "spg"}

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        if not callable(getattr(model, "spg_outputs", None)):
            raise ValueError("method 'spg' needs a model built with architecture_type='spg' "
                             f"(build_model(arch, C, architecture_type='spg'), arch one of {', '.join(SPG_ARCHS)})")
        out = model.spg_outputs(x)
        n = self.cfg.spg_loss_size
        size = tuple(x.shape[-2:]) if n is None else (n, n)
        loss, terms = spg_loss(out, y, self.cfg.thresholds, size)
        return StepOutput(loss, out["logits"].detach(), {k: v.item() for k, v in terms.items()})
