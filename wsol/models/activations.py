"""Swap ReLU for Softplus(beta) for second-order work (ART, attribution attacks).

ReLU has a zero second derivative almost everywhere, so gradients of input-gradient
maps vanish. Inside `smooth_activations(model, beta)` every `nn.ReLU` module of
`model` is replaced by `SmoothReLU` (= nn.Softplus(beta, threshold=20)), and the
functional forms (`F.relu`, `F.relu_`, `torch.relu`, `torch.relu_`, `Tensor.relu`,
`Tensor.relu_`) compute softplus too. Everything is restored on exit, also after an
exception. The functional patch is process-wide while the context is open; names
bound before (`from torch.nn.functional import relu`) are not reached.

Each `nn.LeakyReLU(negative_slope=s)` module becomes `SmoothLeakyReLU` = s*x + (1-s) *
softplus_beta(x), the surrogate of Chen et al.'s leaky-ReLU nets (0.1x + 0.9 softplus);
functional `F.leaky_relu` calls are not patched.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .second_order import lean_softplus

logger = logging.getLogger(__name__)

_MISSING = object()
# Piecewise-linear activations that stay non-smooth (not swapped; a warning names them).
_NON_SMOOTH = (nn.Hardtanh, nn.PReLU, nn.RReLU, nn.Hardswish, nn.Hardsigmoid)
_warned: set[str] = set()  # warn once per activation type, not on every training step


class SmoothReLU(nn.Softplus):
    """nn.Softplus(beta) standing in for an nn.ReLU: (B,*) -> (B,*). Computed by
    `wsol.models.second_order.lean_softplus`: the same values and derivatives, a cheaper double backward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lean_softplus(x, self.beta, self.threshold)


class SmoothLeakyReLU(nn.Module):
    """s*x + (1-s)*softplus_beta(x) standing in for nn.LeakyReLU(s): (B,*) -> (B,*).

    Softplus is linear above beta*x > `threshold` (20), as nn.Softplus.
    """

    def __init__(self, negative_slope: float = 0.01, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.negative_slope, self.beta, self.threshold = float(negative_slope), float(beta), float(threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.negative_slope
        return s * x + (1.0 - s) * lean_softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}, beta={self.beta}, threshold={self.threshold}"


@contextlib.contextmanager
def smooth_activations(model: nn.Module, beta: float) -> Iterator[nn.Module]:
    """Context manager: ReLU -> Softplus(beta) in `model` and in functional relu calls,
    nn.LeakyReLU(s) -> SmoothLeakyReLU(s, beta) in `model`.

    Nesting-safe: an inner context applies its own beta and restores the outer
    state on exit. Yields `model`.
    """
    if beta <= 0:
        raise ValueError(f"softplus beta must be > 0, got {beta}")
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    patched: list[tuple[Any, str, Any]] = []
    try:
        _swap_modules(model, beta, swapped)
        _patch_functional(beta, patched)
        yield model
    finally:
        for owner, attr, original in reversed(patched):
            if original is _MISSING:
                delattr(owner, attr)
            else:
                setattr(owner, attr, original)
        for parent, name, original in reversed(swapped):
            parent._modules[name] = original


def _swap_modules(model: nn.Module, beta: float,
                  swapped: list[tuple[nn.Module, str, nn.Module]]) -> None:
    """Replace each nn.ReLU / nn.LeakyReLU child slot by its smooth stand-in, recording
    (parent, name, original)."""
    left = set()
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if isinstance(child, (nn.ReLU, SmoothReLU, nn.LeakyReLU, SmoothLeakyReLU)):
                smooth = (SmoothReLU(beta=beta) if isinstance(child, (nn.ReLU, SmoothReLU))
                          else SmoothLeakyReLU(child.negative_slope, beta=beta))
                smooth.train(child.training)
                swapped.append((parent, name, child))
                parent._modules[name] = smooth
            elif isinstance(child, _NON_SMOOTH):
                left.add(type(child).__name__)
    if left - _warned:
        logger.warning("smooth_activations leaves non-smooth activations in place: %s",
                       ", ".join(sorted(left)))
        _warned.update(left)


def _patch_functional(beta: float, patched: list[tuple[Any, str, Any]]) -> None:
    """Point the functional relu entry points at softplus(beta), recording the originals."""
    for owner, attr, fn in _functional_replacements(beta):
        # Tensor.relu is inherited from the C base class: record its absence, delete on exit.
        is_class = owner is torch.Tensor
        original = vars(owner).get(attr, _MISSING) if is_class else getattr(owner, attr)
        patched.append((owner, attr, original))
        setattr(owner, attr, fn)


def _functional_replacements(beta: float) -> list[tuple[Any, str, Callable[..., torch.Tensor]]]:
    def relu_(input: torch.Tensor) -> torch.Tensor:
        # softplus saves a clone for backward, so overwriting `input` keeps autograd valid.
        return input.copy_(lean_softplus(input.clone(), beta))

    def relu(input: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        return relu_(input) if inplace else lean_softplus(input, beta)

    def tensor_relu(self: torch.Tensor) -> torch.Tensor:
        return lean_softplus(self, beta)

    return [(F, "relu", relu), (F, "relu_", relu_), (torch, "relu", relu),
            (torch, "relu_", relu_), (torch.Tensor, "relu", tensor_relu),
            (torch.Tensor, "relu_", relu_)]
