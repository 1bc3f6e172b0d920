"""Input-gradient maps: plain gradient and SmoothGrad.

All functions take images x (B,3,H,W) in [0,1] (the model normalizes them itself), so
gradients are in pixel space. They neither change the model's train/eval state nor
touch `requires_grad` or `.grad` of its parameters; put the model in eval mode first
(BN batch statistics, dropout and ADL otherwise make the maps stochastic).
"""

from __future__ import annotations

import torch
from torch import nn

from ._common import TargetLike, check_positive_int, model_gradient, prepare


def input_gradient(model: nn.Module, x: torch.Tensor, target: TargetLike,
                   create_graph: bool = False, variant: str = "logit") -> torch.Tensor:
    """Gradient of one logit per image with respect to the image.

    Args:
        model: images (B,3,H,W) in [0,1] -> logits (B,C).
        x: images (B,3,H,W).
        target: class per image, LongTensor (B,) or an int for all.
        create_graph: keep the graph so the map can be differentiated again (ART,
            attribution attacks); use `smooth_activations` for non-zero second order.
        variant: "logit" -> d z[b, target_b] / d x_b (Captum Saliency, abs=False);
            "ce" -> d CE(z_b, target_b) / d x_b (the loss; the attribution attacks' "ce"
            objective); "ce_pred" -> d CE(z_b, argmax z_b) / d x_b, the official ART code's
            map (the predicted class; `target` is only validated, not used).

    Returns:
        (B,3,H,W) gradient, same dtype as `x`; detached unless `create_graph`.
    """
    if variant not in ("logit", "ce", "ce_pred"):
        raise ValueError(f"unknown variant {variant!r}; valid: 'logit', 'ce', 'ce_pred'")
    t = prepare(model, x, target)
    return model_gradient(model, x, t, variant, create_graph)


def smoothgrad(model: nn.Module, x: torch.Tensor, target: TargetLike, n_samples: int = 25,
               sigma: float = 0.15, seed: int | None = None,
               create_graph: bool = False) -> torch.Tensor:
    """SmoothGrad: mean over noise draws of d z[b, target_b] / d (x_b + eps).

    eps ~ N(0, sigma^2) per pixel, with `sigma` relative to the input range [0,1],
    so the default sigma = 0.15 is an absolute 0.15 in pixel space (Captum's default
    is n=5, sigma=1.0 absolute; record sigma with any number). Noisy images are not
    clipped to [0,1]. sigma = 0 gives `input_gradient` exactly.

    Args:
        n_samples: noise draws; one forward/backward pass of the batch each.
        seed: seeds a private torch.Generator on x's device (deterministic);
            None uses the global RNG.

    Returns:
        (B,3,H,W) averaged gradient.
    """
    t = prepare(model, x, target)
    n_samples = check_positive_int("n_samples", n_samples)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    gen = None
    if seed is not None:
        gen = torch.Generator(device=x.device)
        gen.manual_seed(int(seed))
    total = torch.zeros_like(x)
    for _ in range(n_samples):
        noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        total = total + model_gradient(model, x + sigma * noise, t, "logit", create_graph)
    return total / n_samples
