"""Shared checks and the one gradient helper every gradient-family method uses."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

TargetLike = int | Sequence[int] | torch.Tensor


def check_images(x: torch.Tensor) -> None:
    """Raise ValueError unless `x` is a floating tensor (B,C,H,W)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch.Tensor (B,3,H,W), got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"x must have shape (B,3,H,W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"x must be a floating tensor in [0,1], got dtype {x.dtype}")


def num_classes_of(model: nn.Module) -> int | None:
    """Number of logits of `model` if it says so (WSOLModel.num_classes), else None."""
    n = getattr(model, "num_classes", None)
    return int(n) if n is not None else None


def as_target(target: TargetLike, batch: int, num_classes: int | None,
              device: torch.device) -> torch.Tensor:
    """int / sequence / tensor -> LongTensor (B,) on `device`, range-checked."""
    t = torch.as_tensor(target, device=device)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"target must hold integer class indices, got dtype {t.dtype}")
    t = t.long().reshape(-1)
    if t.numel() == 1 and batch != 1:
        t = t.expand(batch)
    if t.numel() != batch:
        raise ValueError(f"target has {t.numel()} entries but x has batch size {batch}")
    if num_classes is not None and t.numel() and (t.min() < 0 or t.max() >= num_classes):
        bad = t[(t < 0) | (t >= num_classes)][0].item()
        raise ValueError(f"target class {bad} is out of range: the model has "
                         f"{num_classes} classes (valid 0..{num_classes - 1})")
    return t


def prepare(model: nn.Module, x: torch.Tensor, target: TargetLike) -> torch.Tensor:
    """Validate `x` and return the target as LongTensor (B,)."""
    check_images(x)
    return as_target(target, x.shape[0], num_classes_of(model), x.device)


def grad_input(x: torch.Tensor, create_graph: bool) -> torch.Tensor:
    """The tensor to differentiate with respect to.

    Without `create_graph` it is a fresh leaf (the result is detached). With it, `x`
    itself is kept when it already requires grad, so an outer loss reaches whatever
    produced `x` (e.g. an attack's perturbation) as well as the model parameters.
    """
    if create_graph and x.requires_grad:
        return x
    return x.detach().requires_grad_(True)


def objective(logits: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Scalar whose gradient gives every row its own per-sample gradient.

    kind: "logit" -> sum_b z[b, target_b]; "ce" -> sum_b CE(z_b, target_b)
    (the loss, not its negative); "ce_pred" -> sum_b CE(z_b, argmax z_b).
    """
    if kind == "logit":
        return logits.gather(1, target.view(-1, 1)).sum()
    if kind == "ce":
        return F.cross_entropy(logits, target, reduction="sum")
    if kind == "ce_pred":
        return F.cross_entropy(logits, logits.argmax(1).detach(), reduction="sum")
    raise ValueError(f"unknown objective {kind!r}; valid: 'logit', 'ce', 'ce_pred'")


def model_gradient(model: nn.Module, x: torch.Tensor, target: torch.Tensor,
                   kind: str = "logit", create_graph: bool = False) -> torch.Tensor:
    """d objective / d x, shape of `x`. Only `x` is differentiated (no .grad on parameters)."""
    inp = grad_input(x, create_graph)
    with torch.enable_grad():
        out = objective(model(inp), target, kind)
        (g,) = torch.autograd.grad(out, inp, create_graph=create_graph)
    return g if create_graph else g.detach()


def check_positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
