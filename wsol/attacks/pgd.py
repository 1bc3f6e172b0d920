"""Projected gradient ascent (Madry et al.) in pixel space, L-inf and L2 balls (REFERENCE §2, §7.4).

    x_adv = pgd_linf(model, x, y, epsilon=8/255, steps=40, step_size=2/255)   # PGD-40 (ART)
    x_adv = pgd_maximize(lambda xa: my_objective(xa), x, 2/255, 7, 0.5/255)    # any objective

Images x (B,C,H,W) (any (B,...) works) live in [0,1]; epsilon and step_size are in the same
units. Every attack returns a detached tensor of x's shape inside both the ball around x and
[0,1]. Gradients are taken with `torch.autograd.grad` w.r.t. the iterate only, so no `.grad`
lands on model parameters, and the model's train/eval mode is left as the caller set it
(wrap the call in `wsol.methods.base.eval_mode` to attack in eval mode).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NORMS", "pgd_linf", "pgd_l2", "pgd_maximize", "project"]

NORMS = ("linf", "l2")
_TINY = 1e-12  # guards the L2 normalisations against a zero gradient / zero perturbation

Objective = Callable[[torch.Tensor], torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check(norm: str, epsilon: float, steps: int, step_size: float) -> None:
    if norm not in NORMS:
        raise ValueError(f"unknown PGD norm {norm!r}; valid: {', '.join(NORMS)}")
    if epsilon < 0 or step_size < 0:
        raise ValueError(f"PGD epsilon and step_size must be >= 0, got {epsilon}, {step_size}")
    if int(steps) != steps or steps < 0:
        raise ValueError(f"PGD steps must be an integer >= 0, got {steps}")


def _per_sample_norm(t: torch.Tensor) -> torch.Tensor:
    """L2 norm of each sample: (B,...) -> (B,1,...,1) for broadcasting."""
    return t.flatten(1).norm(dim=1).view(-1, *([1] * (t.ndim - 1)))


def project(x_adv: torch.Tensor, x: torch.Tensor, epsilon: float, norm: str) -> torch.Tensor:
    """Project x_adv (B,...) onto {|x_adv - x|_norm <= epsilon} and then clip to [0,1].

    For L-inf the clip keeps the point in the ball (a box intersected with a box); for L2
    clipping can only shrink each coordinate's distance to x (x is in [0,1]), so it does too.
    """
    delta = x_adv - x
    if norm == "linf":
        delta = delta.clamp(-epsilon, epsilon)
    else:
        delta = delta * (epsilon / (_per_sample_norm(delta) + _TINY)).clamp(max=1.0)
    return (x + delta).clamp(0.0, 1.0)


def _random_start(x: torch.Tensor, epsilon: float, norm: str) -> torch.Tensor:
    """x + U(-eps, eps) (L-inf, Madry) or x + a uniform point of the L2 ball, clipped to [0,1]."""
    if norm == "linf":
        delta = torch.empty_like(x).uniform_(-epsilon, epsilon)
    else:
        direction = torch.randn_like(x)
        direction = direction / (_per_sample_norm(direction) + _TINY)
        dims = x[0].numel()
        radius = epsilon * torch.rand(x.shape[0], device=x.device, dtype=x.dtype) ** (1.0 / dims)
        delta = direction * radius.view(-1, *([1] * (x.ndim - 1)))
    return (x + delta).clamp(0.0, 1.0)


def _ascent_direction(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """sign(g) (L-inf) or g / |g|_2 per sample (L2): (B,...) -> (B,...)."""
    if norm == "linf":
        return grad.sign()
    return grad / (_per_sample_norm(grad) + _TINY)


def pgd_maximize(objective: Objective, x: torch.Tensor, epsilon: float, steps: int,
                 step_size: float, norm: str = "linf", random_start: bool = True) -> torch.Tensor:
    """Maximise `objective` over the `norm` ball of radius `epsilon` around x, inside [0,1].

    x' <- clip01(proj_ball(x' + step_size * d)), d = sign(grad) (linf) or grad/|grad|_2 per
    sample (l2), `steps` times, from a random start in the ball (or x itself); the last iterate
    is returned (no early stop, no best-iterate selection, as Madry's code).

    Args:
        objective: x_adv (B,...) -> scalar tensor to maximise. Make it a sum of per-sample
            terms so each sample's ascent direction is its own (sign and L2 directions are
            invariant to a positive global scale, so sum and mean give the same attack).
        x: clean inputs (B,...) in [0,1]; not modified.
        epsilon, step_size: ball radius and step length in [0,1] pixel units.
        steps: K >= 0; 0 returns the start point (x itself when random_start is False).

    Returns:
        x_adv (B,...), detached, same dtype and device as x.
    """
    _check(norm, epsilon, steps, step_size)
    x = x.detach()
    x_adv = _random_start(x, epsilon, norm) if random_start else x.clone()
    for _ in range(int(steps)):
        x_adv = x_adv.detach().requires_grad_(True)
        with torch.enable_grad():
            value = objective(x_adv)
            if value.ndim != 0:
                raise ValueError(f"PGD objective must return a scalar, got shape {tuple(value.shape)}")
            (grad,) = torch.autograd.grad(value, x_adv)
        x_adv = project(x_adv.detach() + step_size * _ascent_direction(grad, norm), x, epsilon, norm)
    return x_adv.detach()


def _ce_sum(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sum over the batch of CE(z_b, y_b): (B,C), (B,) -> scalar."""
    return F.cross_entropy(logits, y, reduction="sum")


def _model_objective(model: nn.Module, y: torch.Tensor, loss_fn: LossFn | None) -> Objective:
    loss_fn = _ce_sum if loss_fn is None else loss_fn
    return lambda x_adv: loss_fn(model(x_adv), y)


def pgd_linf(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float, steps: int,
             step_size: float, random_start: bool = True, loss_fn: LossFn | None = None) -> torch.Tensor:
    """L-inf PGD (Madry): maximise loss_fn(model(x'), y) over |x' - x|_inf <= epsilon, x' in [0,1].

    Args:
        model: any nn.Module mapping images (B,C,H,W) in [0,1] to logits (B,classes).
        x: clean images (B,C,H,W) in [0,1]; y: labels (B,) (long), passed to loss_fn.
        epsilon, step_size: radius and step alpha in [0,1] units (8/255 = 8 grey levels).
        steps: K; random_start: start at clip01(x + U(-eps, eps)) rather than x.
        loss_fn: (logits (B,C), y (B,)) -> scalar to maximise; default summed CE.

    Returns:
        x_adv (B,C,H,W), detached, in [0,1] and within epsilon of x in every entry.
    """
    return pgd_maximize(_model_objective(model, y, loss_fn), x, epsilon, steps, step_size,
                        "linf", random_start)


def pgd_l2(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float, steps: int,
           step_size: float, random_start: bool = True, loss_fn: LossFn | None = None) -> torch.Tensor:
    """L2 PGD: steps x' + alpha * g/|g|_2, projection onto |x' - x|_2 <= epsilon, clip to [0,1].

    Same arguments as :func:`pgd_linf`; epsilon is the per-image L2 radius over all C*H*W
    entries in [0,1] units. The random start is uniform in the L2 ball.

    Returns:
        x_adv (B,C,H,W), detached, in [0,1] with |x_adv_b - x_b|_2 <= epsilon for each b.
    """
    return pgd_maximize(_model_objective(model, y, loss_fn), x, epsilon, steps, step_size,
                        "l2", random_start)
