"""FSL, few-shot fully supervised localization (Choe et al., "Evaluating WSOL Methods Right",
CVPR 2020): the baseline that trains on the few localization labels WSOL methods are tuned with.

The val split (wsolevaluation's train-fullsup: 10 / 5 / 5 images a class with boxes or masks on
ImageNet / CUB / OpenImages) is the training set; `holdout_fraction` of each class is held out to
validate on (the journal version's 20%; 0: train on all of val and validate on the same images,
the CVPR version). The image-level train split is not used.

Model: `architecture_type="fsl"` (`wsol.models.fsl`): the CAM classifier of the arch plus a 1x1
conv foreground head; its "cam" saliency is the foreground map, so every evaluator scores it as
it scores any WSOL map.

One step on a batch x (B,3,H,W), y (B,), foreground target fg (B,H,W) in {0,1} with pixel weights
w (B,H,W) (0 at ignored pixels; `targets`):

    logits, f = model.fsl_outputs(x)                       # (B,C), (B,h,w)
    u = bilinear(f, (H,W), align_corners=False)
    bce = sum(w * BCEWithLogits(u, fg; pos_weight)) / sum(w)
    loss = bce + ce_weight * CE(logits, y)

The CE term keeps the class logits (top-1 accuracy, Top-1 Loc) meaningful; ce_weight 0 trains a
pure localizer. The paper does not publish FSL's hyperparameters [not obtained]: the presets use
the natural presets' optimizer settings (our choice).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from wsol.settings import NONNEG, POSITIVE, Range, check_limits

from .base import StepOutput, TrainingMethod, register_method

__all__ = ["FSLConfig", "FSLMethod", "box_foreground", "fsl_loss"]

log = logging.getLogger(__name__)


@dataclass
class FSLConfig:
    """Method "fsl". Defaults: the journal version's 20% hold-out, BCE + CE with weight 1 (our choice)."""

    LIMITS: ClassVar[dict] = {"holdout_fraction": Range(0, 1, hi_open=True), "ce_weight": NONNEG,
                              "pos_weight": POSITIVE}

    holdout_fraction: float = 0.2     # share of each class of val held out for validation; 0: none (CVPR)
    holdout_seed: int = 0             # seed of the per-class hold-out draw
    ce_weight: float = 1.0            # weight of CE on the class logits; 0: a pure localizer
    pos_weight: float | None = None   # BCE weight of foreground pixels; None: 1

    def __post_init__(self) -> None:
        check_limits(type(self), vars(self), "fsl")


def box_foreground(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Union of boxes (K,4) x0,y0,x1,y1 (inclusive pixel coordinates) -> bool mask (H,W).

    Pixel (i, j) is inside a box when its centre (j + 0.5, i + 0.5) lies in the box's continuous
    extent [x0, x1 + 1) x [y0, y1 + 1): for integer boxes exactly columns x0..x1 and rows y0..y1;
    fractional boxes (the train transform's resize) round to the nearest pixel edge. K = 0: all False.
    """
    boxes = boxes.detach().to("cpu", torch.float64).reshape(-1, 4)
    cols = torch.arange(width, dtype=torch.float64) + 0.5
    rows = torch.arange(height, dtype=torch.float64) + 0.5
    in_x = (cols >= boxes[:, 0:1]) & (cols < boxes[:, 2:3] + 1)      # (K,W)
    in_y = (rows >= boxes[:, 1:2]) & (rows < boxes[:, 3:4] + 1)      # (K,H)
    return (in_y[:, :, None] & in_x[:, None, :]).any(dim=0)


def fsl_loss(fg_logits: torch.Tensor, logits: torch.Tensor, y: torch.Tensor, fg: torch.Tensor,
             weight: torch.Tensor, ce_weight: float = 1.0,
             pos_weight: float | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, bce, ce) of one step: foreground logits (B,h,w) upsampled bilinearly to the target's
    (H,W); BCE-with-logits against fg (B,H,W) in {0,1}, weighted per pixel by `weight` (B,H,W) and
    averaged over sum(weight) (the non-ignored pixels); ce = CE(logits (B,C), y (B,))."""
    up = F.interpolate(fg_logits.unsqueeze(1), size=fg.shape[-2:], mode="bilinear", align_corners=False)
    up = up.squeeze(1).float()
    pw = None if pos_weight is None else torch.tensor(float(pos_weight), device=up.device)
    per_pixel = F.binary_cross_entropy_with_logits(up, fg.float(), weight=weight.float(), pos_weight=pw,
                                                   reduction="none")
    bce = per_pixel.sum() / weight.float().sum().clamp_min(1.0)
    ce = F.cross_entropy(logits.float(), y)
    return bce + ce_weight * ce, bce, ce


@register_method("fsl", settings=FSLConfig)
class FSLMethod(TrainingMethod):
    """BCE on the foreground map + ce_weight * CE on the class logits, trained on the val split's
    localization labels; stats {"bce", "ce"}; the logits returned are the class logits."""

    supervision = "localization"

    def __init__(self, cfg=None) -> None:
        super().__init__(cfg)
        self._annotated: set[str] = set()   # ids of the training images, every one with boxes or a mask

    def model_options(self) -> dict:
        return {"architecture_type": "fsl"}

    # -- data ---------------------------------------------------------------------------------
    def splits(self, train, val) -> tuple:
        """(rest, held) of `val` (`wsol.data.subset.per_class_holdout`); holdout_fraction 0: (val, val).
        A hold-out that leaves nothing to validate on (every class has one image) validates on the
        training images, with a warning. ValueError where val lacks boxes and masks."""
        from wsol.data.subset import per_class_holdout

        if not (val.has_boxes or val.has_masks):
            n_box = sum(1 for s in val.samples if s.boxes)
            n_mask = sum(1 for s in val.samples if s.mask_paths)
            raise ValueError(
                f"method 'fsl' trains on the localization labels of the {val.name!r} split at {val.image_root}, "
                f"but of its {len(val)} images {n_box} have boxes and {n_mask} masks: every image needs a box "
                "or every image a mask (wsolevaluation's train-fullsup metadata)")
        c = self.cfg
        if c.holdout_fraction == 0:
            rest, held = val, val
        else:
            rest, held = per_class_holdout(val, c.holdout_fraction, c.holdout_seed)
            if not len(held):
                log.warning("fsl: holdout_fraction %g holds out no image of the %d in %r (no class has two or "
                            "more); validating on the training images", c.holdout_fraction, len(val), val.name)
                held = rest
        self._annotated = {s.image_id for s in rest.samples}
        return rest, held

    def targets(self, batch: dict) -> dict:
        """{"fg": (B,H,W) float in {0,1}, "weight": (B,H,W) float} from a collated batch.

        With "mask" (bool foreground, or uint8 with 1 foreground / 0 background / 255 ignore) the
        mask, its ignored pixels (and "ignore" where given) at weight 0; otherwise the union of each
        image's "boxes" (inclusive pixel coordinates), every pixel at weight 1. An image the train
        crop has cut all boxes off (a training image known to have boxes, see `splits`) is all
        background; any other image without a box or a mask is a ValueError naming it.
        """
        image = batch["image"]
        b, (h, w) = image.shape[0], image.shape[-2:]
        ids = list(batch.get("image_id") or [f"#{i}" for i in range(b)])
        if batch.get("mask") is not None:
            mask = batch["mask"]
            if mask.dtype == torch.bool:
                fg, ignore = mask, torch.zeros_like(mask)
            else:
                ignore = mask == 255
                fg = (mask > 0) & ~ignore
            if batch.get("ignore") is not None:
                ignore = ignore | (batch["ignore"].bool() & ~fg)
            return {"fg": fg.float(), "weight": (~ignore).float()}
        boxes = batch.get("boxes")
        if boxes is None or len(boxes) != b:
            raise ValueError(f"fsl: the batch of images {', '.join(map(str, ids[:5]))} holds neither masks nor "
                             "boxes; FSL trains on localization labels")
        fg = torch.zeros(b, h, w, dtype=torch.bool)
        for i, k in enumerate(boxes):
            if k is None or not len(k):
                if ids[i] in self._annotated:    # the random crop cut the object off: all background
                    continue
                raise ValueError(f"fsl: image {ids[i]!r} has no box and no mask; FSL trains on localization labels "
                                 "(every training image needs a box or a mask)")
            fg[i] = box_foreground(k, h, w)
        return {"fg": fg.float(), "weight": torch.ones(b, h, w)}

    # -- the step ---------------------------------------------------------------------------------
    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, fg: torch.Tensor | None = None,
             weight: torch.Tensor | None = None) -> StepOutput:
        if fg is None:
            raise ValueError("fsl: step needs the foreground target fg (B,H,W) (and its weight): pass "
                             "**method.targets(batch)")
        if not callable(getattr(model, "fsl_outputs", None)):
            raise ValueError(f"fsl: the model ({type(model).__name__}) has no foreground head; build it with "
                             "build_model(..., architecture_type='fsl') (the method's model_options())")
        if weight is None:
            weight = torch.ones_like(fg, dtype=torch.float32)
        logits, fg_logits = model.fsl_outputs(x)
        c = self.cfg
        loss, bce, ce = fsl_loss(fg_logits, logits, y, fg, weight, c.ce_weight, c.pos_weight)
        return StepOutput(loss, logits.detach(), {"bce": bce.item(), "ce": ce.item()})
