"""Path and sampling methods: Integrated Gradients and GradientSHAP (REFERENCE §5.4).

Images x (B,3,H,W) in [0,1]; baselines live in the same pixel space (0 = black).
The model's train/eval state is left alone (use eval mode); parameters get no `.grad`.
"""

from __future__ import annotations

import torch
from torch import nn

from ._common import TargetLike, check_positive_int, prepare
from ._common import objective as _objective

_IG_RULES = ("right", "trapezoid")


def _path_weights(steps: int, rule: str, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(alphas (P,), weights (P,)) of the quadrature rule on [0,1]."""
    if rule == "right":                 # t = i/N, i = 1..N, each weight 1/N
        alphas = torch.arange(1, steps + 1, dtype=torch.float64) / steps
        weights = torch.full((steps,), 1.0 / steps, dtype=torch.float64)
    elif rule == "trapezoid":           # t = i/N, i = 0..N, mean of (g_i + g_{i+1}) / 2
        alphas = torch.arange(0, steps + 1, dtype=torch.float64) / steps
        weights = torch.full((steps + 1,), 1.0 / steps, dtype=torch.float64)
        weights[0] = weights[-1] = 0.5 / steps
    else:
        raise ValueError(f"unknown IG rule {rule!r}; valid: {', '.join(_IG_RULES)}")
    return alphas.to(like), weights.to(like)


def _as_baseline(baseline: torch.Tensor | float | None, x: torch.Tensor) -> torch.Tensor:
    """None -> zeros; scalar, (3,H,W), (1,3,H,W) or (B,3,H,W) -> broadcast to x.shape."""
    if baseline is None:
        return torch.zeros_like(x)
    b = torch.as_tensor(baseline, dtype=x.dtype, device=x.device)
    try:
        if b.ndim > 4:
            raise RuntimeError
        return b.expand_as(x)
    except RuntimeError:
        raise ValueError(f"baseline of shape {tuple(b.shape)} does not broadcast to "
                         f"x of shape {tuple(x.shape)}") from None


def _path_gradients(model: nn.Module, points: torch.Tensor, target: torch.Tensor,
                    kind: str, create_graph: bool) -> torch.Tensor:
    """Gradient of the objective at path points (k,B,3,H,W) -> (k,B,3,H,W)."""
    k, b = points.shape[:2]
    flat = points.reshape(k * b, *points.shape[2:])
    if not create_graph:
        flat = flat.detach()
    if not flat.requires_grad:
        flat.requires_grad_(True)
    with torch.enable_grad():
        out = _objective(model(flat), target.repeat(k), kind)
        (g,) = torch.autograd.grad(out, flat, create_graph=create_graph)
    g = g if create_graph else g.detach()
    return g.view_as(points)


def integrated_gradients(model: nn.Module, x: torch.Tensor, target: TargetLike,
                         baseline: torch.Tensor | float | None = None, steps: int = 50,
                         rule: str = "right", internal_batch_size: int | None = None,
                         create_graph: bool = False, objective: str = "logit") -> torch.Tensor:
    """IG_j = (x_j - b_j) * int_0^1 df(b + t (x - b)) / dx_j dt, by quadrature.

    Args:
        x: images (B,3,H,W) in [0,1]; target: (B,) or int.
        baseline: None (black image, ART), a scalar or a tensor broadcastable to x.
        steps: N. rule "right": t = i/N, i = 1..N (Captum `riemann_right`, Ghorbani,
            Chen, the ART attack); "trapezoid": t = i/N, i = 0..N, averaging
            (g_i + g_{i+1}) / 2 (the ART metric; N + 1 gradient evaluations).
        internal_batch_size: at most this many rows (images x path points) per forward
            pass, but always at least one path point of the whole batch; None = all
            points at once. Does not change the result.
        create_graph: keep the graph (training, attacks). Memory then grows with
            `steps` whatever `internal_batch_size` is.
        objective: "logit" (f = z[b, target_b]) or "ce" (f = CE(z_b, target_b), the
            loss itself, as in the ART robustness metric).

    Returns:
        (B,3,H,W) attributions; sum_j IG_j ~= f(x) - f(baseline) (completeness).
    """
    t = prepare(model, x, target)
    steps = check_positive_int("steps", steps)
    if objective not in ("logit", "ce"):
        raise ValueError(f"unknown IG objective {objective!r}; valid: 'logit', 'ce'")
    base = _as_baseline(baseline, x)
    alphas, weights = _path_weights(steps, rule, x)
    per_pass = len(alphas)
    if internal_batch_size is not None:
        per_pass = max(1, check_positive_int("internal_batch_size", internal_batch_size)
                       // x.shape[0])
    diff = x - base
    total = torch.zeros_like(x)
    for start in range(0, len(alphas), per_pass):
        a = alphas[start:start + per_pass].view(-1, 1, 1, 1, 1)
        w = weights[start:start + per_pass].view(-1, 1, 1, 1, 1)
        grads = _path_gradients(model, base + a * diff, t, objective, create_graph)
        total = total + (w * grads).sum(0)
    out = total * diff
    return out if create_graph else out.detach()


def gradient_shap(model: nn.Module, x: torch.Tensor, target: TargetLike,
                  baselines: torch.Tensor | None = None, n_samples: int = 5,
                  stdevs: float = 0.0, seed: int | None = None,
                  create_graph: bool = False) -> torch.Tensor:
    """GradientSHAP (Captum's estimator): the mean over `n_samples` draws of
    (x + eps - b) * d z[target] / d x' at x' = b + alpha (x + eps - b), with
    b drawn uniformly from `baselines`, alpha ~ U(0,1), eps ~ N(0, stdevs^2), each
    drawn independently per image and per sample. Its expectation for a linear model
    f = w.x is (x - mean(baselines)) * w.

    Args:
        baselines: (K,3,H,W) or (3,H,W) reference images in [0,1]; None = one black
            image (then GradientSHAP is IG with a random path point).
        n_samples: draws per image, one forward/backward pass of the batch each
            (Captum default 5).
        stdevs: std of the input noise, absolute pixel units (Captum default 0).
        seed: seeds a private torch.Generator on x's device; None uses the global RNG.

    Returns:
        (B,3,H,W) attributions.
    """
    t = prepare(model, x, target)
    n_samples = check_positive_int("n_samples", n_samples)
    if stdevs < 0:
        raise ValueError(f"stdevs must be >= 0, got {stdevs}")
    refs = torch.zeros_like(x[:1]) if baselines is None else torch.as_tensor(
        baselines, dtype=x.dtype, device=x.device)
    if refs.ndim == 3:
        refs = refs.unsqueeze(0)
    if refs.ndim != 4 or refs.shape[1:] != x.shape[1:] or refs.shape[0] == 0:
        raise ValueError(f"baselines must have shape (K,{', '.join(map(str, x.shape[1:]))})"
                         f", got {tuple(refs.shape)}")
    gen = None
    if seed is not None:
        gen = torch.Generator(device=x.device)
        gen.manual_seed(int(seed))
    B = x.shape[0]
    total = torch.zeros_like(x)
    for _ in range(n_samples):
        idx = torch.randint(refs.shape[0], (B,), generator=gen, device=x.device)
        alpha = torch.rand((B, 1, 1, 1), generator=gen, device=x.device, dtype=x.dtype)
        eps = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        xn = x + stdevs * eps
        b = refs[idx]
        g = _path_gradients(model, (b + alpha * (xn - b)).unsqueeze(0), t, "logit",
                            create_graph)[0]
        total = total + (xn - b) * g
    out = total / n_samples
    return out if create_graph else out.detach()
