"""Channel reductions and the official ART gradient map (REFERENCE §5.2).

`reduce_channels` turns (B,C,H,W) attributions into (B,H,W) maps.
`art2020_gradient_map` reproduces the post-processing of the official ART WSOL
evaluation (`evaluate_loc_grad`), with the box and Gaussian filters in torch (no
scipy at run time; the tests check them against scipy.ndimage).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._common import check_images
from .gradient import input_gradient

REDUCTIONS = ("abs_mean", "abs_sum", "abs_max", "mean", "sum", "max", "l2")
SUM_NORMALIZATIONS = ("hw", "sum_1024", "none")
TINY = 1e-30  # guards S / sum(S) against an all-zero map


def reduce_channels(a: torch.Tensor, how: str = "abs_mean") -> torch.Tensor:
    """(B,C,H,W) -> (B,H,W) over the channel axis.

    how: "abs_mean" mean_c|a| (ART on CUB), "abs_sum" sum_c|a|, "abs_max" max_c|a|
    (Simonyan saliency), "mean", "sum", "max" (signed), "l2" sqrt(sum_c a^2).
    """
    if a.ndim != 4:
        raise ValueError(f"reduce_channels expects (B,C,H,W), got shape {tuple(a.shape)}")
    if how == "abs_mean":
        return a.abs().mean(1)
    if how == "abs_sum":
        return a.abs().sum(1)
    if how == "abs_max":
        return a.abs().amax(1)
    if how == "mean":
        return a.mean(1)
    if how == "sum":
        return a.sum(1)
    if how == "max":
        return a.amax(1)
    if how == "l2":
        return a.pow(2).sum(1).sqrt()
    raise ValueError(f"unknown reduction {how!r}; valid: {', '.join(REDUCTIONS)}")


def sum_normalize(m: torch.Tensor, how: str = "hw") -> torch.Tensor:
    """Ghorbani-style normalisation of maps (B,H,W) to a fixed total (differentiable).

    how: "hw" S * H*W / sum S (Ghorbani; S sums to H*W), "sum_1024" S * 1024 / sum S (ART's
    attack code, which hard-codes 32*32) or "none". The attribution attacks' maps use it.
    """
    if how == "none":
        return m
    if how not in SUM_NORMALIZATIONS:
        raise ValueError(f"unknown normalization {how!r}; valid: {', '.join(SUM_NORMALIZATIONS)}")
    total = m.shape[1] * m.shape[2] if how == "hw" else 1024
    return total * m / m.sum((1, 2), keepdim=True).clamp_min(TINY)


def box_filter3(m: torch.Tensor) -> torch.Tensor:
    """3x3 mean filter (weights 1/9) with zero padding: (B,H,W) -> (B,H,W)."""
    k = torch.full((1, 1, 3, 3), 1.0 / 9.0, dtype=m.dtype, device=m.device)
    return F.conv2d(m.unsqueeze(1), k, padding=1).squeeze(1)


def _symmetric_index(n: int, radius: int, device: torch.device) -> torch.Tensor:
    """Indices of a length-n axis padded by `radius` on both sides, scipy 'reflect' style
    (d c b a | a b c d | d c b a), repeating the reflection when radius > n."""
    idx = torch.arange(-radius, n + radius, device=device) % (2 * n)
    return torch.where(idx >= n, 2 * n - 1 - idx, idx)


def gaussian_blur(m: torch.Tensor, sigma: float = 3.0, truncate: float = 4.0) -> torch.Tensor:
    """Per-image Gaussian blur matching scipy.ndimage.gaussian_filter defaults.

    Separable kernel exp(-x^2 / (2 sigma^2)) normalized to sum 1, radius
    int(truncate * sigma + 0.5) (= 12 for sigma 3), boundary mode 'reflect'
    (half-sample symmetric, numpy 'symmetric'; not torch's whole-sample 'reflect').

    Args:
        m: (B,H,W) maps. Returns (B,H,W), same dtype.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    radius = int(truncate * sigma + 0.5)
    xs = torch.arange(-radius, radius + 1, dtype=torch.float64, device=m.device)
    k = torch.exp(-0.5 * xs * xs / (sigma * sigma))
    k = (k / k.sum()).to(m.dtype)
    out = m.unsqueeze(1)                                            # (B,1,H,W)
    out = out.index_select(2, _symmetric_index(m.shape[1], radius, m.device))
    out = F.conv2d(out, k.view(1, 1, -1, 1))
    out = out.index_select(3, _symmetric_index(m.shape[2], radius, m.device))
    out = F.conv2d(out, k.view(1, 1, 1, -1))
    return out.squeeze(1)


def _minmax(m: torch.Tensor, per_image: bool) -> torch.Tensor:
    """(m - min) / (max - min), batch-global or per image; a constant map -> zeros."""
    if per_image:
        lo = m.amin(dim=(1, 2), keepdim=True)
        hi = m.amax(dim=(1, 2), keepdim=True)
    else:
        lo, hi = m.min(), m.max()
    span = hi - lo
    return torch.where(span > 0, (m - lo) / torch.where(span > 0, span, 1), 0 * m)


def art2020_gradient_map(model: nn.Module, x: torch.Tensor, batch_global: bool = True,
                         sigma: float = 3.0) -> torch.Tensor:
    """The official ART gradient heatmap (REFERENCE §5.2, steps 1-8).

    1. g = d CE(z, argmax z) / d x (predicted class, x in [0,1] pixel space);
    2. mean_c |g|; 3. batch-global min-max; 4. per-image standardisation (unbiased
    std, as torch's `std`); 5. per-image clip to the [2nd, 98th] percentiles (linear
    interpolation, as np.percentile); 6. batch-global min-max; 7. 3x3 box filter,
    zero padding; 8. per-image Gaussian blur, sigma 3, scipy defaults.

    The model must be the ReLU network in eval mode (the caller sets it; this
    function does not change the train/eval state). With `batch_global=True`
    (`art2020`) the result depends on the other images of the batch through the
    zero-padded box filter (the official code used batch 12); `batch_global=False`
    (`default`) does steps 3 and 6 per image. A constant map becomes zeros instead
    of NaN.

    Returns:
        (B,H,W) float map (dtype of x), before the resize/colormap of box extraction.
    """
    check_images(x)
    g = input_gradient(model, x, 0, variant="ce_pred")
    m = _minmax(g.abs().mean(1), per_image=not batch_global)
    flat = m.flatten(1)
    std = flat.std(dim=1, keepdim=True)
    flat = (flat - flat.mean(dim=1, keepdim=True)) / torch.where(std > 0, std, 1)
    q = torch.quantile(flat.double(), torch.tensor([0.02, 0.98], dtype=torch.float64,
                                                   device=x.device), dim=1).to(flat.dtype)
    flat = torch.maximum(torch.minimum(flat, q[1].unsqueeze(1)), q[0].unsqueeze(1))
    m = _minmax(flat.view_as(m), per_image=not batch_global)
    return gaussian_blur(box_filter3(m), sigma)
