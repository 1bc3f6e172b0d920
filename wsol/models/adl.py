"""Attention-based Dropout Layer (Choe & Shim, CVPR 2019), as in wsolevaluation.

In training, ADL multiplies the feature map by either a sigmoid importance map
or a hard drop mask that hides the most discriminative region. One Bernoulli
draw per forward call (from the torch RNG, so `torch.manual_seed` fixes it)
picks which, for the whole batch. In eval mode ADL is the identity.
"""

from __future__ import annotations

import torch
from torch import nn

ADL_POSITIONS = ("wsoleval", "tf")


class ADL(nn.Module):
    """Attention-based dropout on a feature map (B,K,h,w) -> (B,K,h,w).

    Args:
        drop_rate: probability of using the drop mask instead of the importance
            map (TensorFlow's keep_prob is 1 - drop_rate).
        gamma: drop threshold as a fraction of each sample's maximum attention.
    """

    def __init__(self, drop_rate: float = 0.75, gamma: float = 0.9) -> None:
        super().__init__()
        if not 0.0 <= drop_rate <= 1.0:
            raise ValueError(f"ADL drop_rate must be in [0, 1], got {drop_rate}")
        self.drop_rate = float(drop_rate)
        self.gamma = float(gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        attention = x.mean(dim=1, keepdim=True)                      # (B,1,h,w)
        # r = floor(U + drop_rate): one draw shared by the batch, as wsolevaluation.
        use_drop_mask = bool(torch.floor(torch.rand(()) + self.drop_rate).item())
        if use_drop_mask:
            return x * drop_mask(attention, self.gamma)
        return x * torch.sigmoid(attention)

    def extra_repr(self) -> str:
        return f"drop_rate={self.drop_rate}, gamma={self.gamma}"


def drop_mask(attention: torch.Tensor, gamma: float) -> torch.Tensor:
    """Attention (B,1,h,w) -> float mask (B,1,h,w): 1 where A < gamma * max_hw A (per sample)."""
    peak = attention.flatten(1).amax(dim=1).view(-1, 1, 1, 1)
    return (attention < gamma * peak).to(attention.dtype)


def check_positions(positions: str) -> str:
    """Validate an `adl_positions` option; returns it."""
    if positions not in ADL_POSITIONS:
        raise ValueError(f"adl_positions must be one of {ADL_POSITIONS}, got {positions!r}")
    return positions
