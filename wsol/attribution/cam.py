"""Feature-map methods: CAM, Grad-CAM, Grad-CAM++ at feature resolution (B,h,w).

They use the `WSOLModel` interface (`features`, `head`, `classifier_weight`): logits
are recomputed as `head(features)` (GAP + classifier for the project's archs; the
network's own head for ImageNet classifiers as they are), which is the model's own
forward, so no hooks are needed. CAM needs a GAP + linear head. The train/eval state of the model is left alone
(callers put it in eval mode); no parameter `.grad` is written.
"""

from __future__ import annotations

import torch
from torch import nn

from ._common import TargetLike, prepare


def cam(model: nn.Module, x: torch.Tensor, target: TargetLike,
        create_graph: bool = False) -> torch.Tensor:
    """Class activation map, wsolevaluation / art2020 form (REFERENCE §5.1).

    cam_b = mean_k w[target_b, k] * F_bk: a channel MEAN, no bias, no ReLU. Hence
    spatial_mean(cam_b) * Cf == z[b, target_b] - bias[target_b].

    Args:
        x: images (B,3,H,W) in [0,1]; target: (B,) or int.
        create_graph: keep the autograd graph (otherwise computed under no_grad).

    Returns:
        (B,h,w) at feature resolution.
    """
    t = prepare(model, x, target)
    with torch.set_grad_enabled(create_graph):
        if callable(getattr(model, "class_maps", None)):   # a method's own map (ACoL, SPG)
            return model.class_maps(x, t)[0]
        return cam_from_features(model, model.features(x), t)


def cam_and_logits(model: nn.Module, x: torch.Tensor, target: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(CAM (B,h,w), logits (B,C)) from one forward, under no_grad; `target` None: the predicted
    class. Uses the model's own `class_maps` where it has one (ACoL's, SPG's map)."""
    with torch.no_grad():
        if callable(getattr(model, "class_maps", None)):
            return model.class_maps(x, target)
        logits, feats = model.forward_with_features(x)
        t = logits.argmax(1) if target is None else target
        return cam_from_features(model, feats, t), logits


def cam_from_features(model: nn.Module, feats: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CAM (B,h,w) from features (B,Cf,h,w) already computed (e.g. by forward_with_features)."""
    w = model.classifier_weight[target]                      # (B,Cf)
    return torch.einsum("bk,bkhw->bhw", w, feats) / feats.shape[1]


def _head(model: nn.Module, feats: torch.Tensor) -> torch.Tensor:
    """Logits from the feature map: the model's own `head` (any head), else GAP + classifier."""
    head = getattr(model, "head", None)
    return head(feats) if callable(head) else model.classifier(feats.mean(dim=(2, 3)))


def _features_and_grad(model: nn.Module, x: torch.Tensor, t: torch.Tensor,
                       create_graph: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(features A (B,Cf,h,w), d sum_b z[b,t_b] / dA (B,Cf,h,w))."""
    with torch.set_grad_enabled(create_graph):
        feats = model.features(x)            # no backbone graph unless it is kept
    with torch.enable_grad():
        if not create_graph:
            feats = feats.detach()
        if not feats.requires_grad:
            feats.requires_grad_(True)       # a leaf: nothing upstream needs grad
        logits = _head(model, feats)
        score = logits.gather(1, t.view(-1, 1)).sum()
        (g,) = torch.autograd.grad(score, feats, create_graph=create_graph)
    if not create_graph:
        feats, g = feats.detach(), g.detach()
    return feats, g


def gradcam(model: nn.Module, x: torch.Tensor, target: TargetLike, relu: bool = True,
            create_graph: bool = False) -> torch.Tensor:
    """Grad-CAM on the final feature map (REFERENCE §5.3).

    alpha_bk = mean_ij dz[b,t_b]/dA_bkij; map = ReLU(sum_k alpha_bk A_bk). Equals
    Captum's LayerGradCam(relu_attributions=True) on the feature layer. With a GAP +
    linear head, `relu=False` gives cam * Cf / (h*w).

    Returns:
        (B,h,w) at feature resolution, not normalized.
    """
    t = prepare(model, x, target)
    feats, g = _features_and_grad(model, x, t, create_graph)
    out = (g.mean(dim=(2, 3), keepdim=True) * feats).sum(1)
    return out.clamp_min(0) if relu else out


def gradcampp(model: nn.Module, x: torch.Tensor, target: TargetLike,
              create_graph: bool = False) -> torch.Tensor:
    """Grad-CAM++, the pytorch-grad-cam (1.5.x) variant (REFERENCE §5.3).

    With g = dz_c/dA of the raw logit (no exp):
    a = g^2 / (2 g^2 + (sum_ij A_k) g^3 + 1e-6), a = 0 where g == 0;
    w_k = sum_ij ReLU(g) a; map = ReLU(sum_k w_k A_k). pytorch-grad-cam then
    min-max normalizes and resizes; this returns the map before that.

    Returns:
        (B,h,w) at feature resolution, not normalized.
    """
    t = prepare(model, x, target)
    feats, g = _features_and_grad(model, x, t, create_graph)
    g2 = g * g
    sum_a = feats.sum(dim=(2, 3), keepdim=True)
    a = g2 / (2 * g2 + sum_a * g2 * g + 1e-6)
    a = torch.where(g != 0, a, torch.zeros_like(a))
    w = (g.clamp_min(0) * a).sum(dim=(2, 3), keepdim=True)
    return (w * feats).sum(1).clamp_min(0)
