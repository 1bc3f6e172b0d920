"""Ghorbani et al.'s attribution attacks, batched over images (REFERENCE §7.1 - §7.3).

    preset = get_preset("art2020")
    res = attribution_attack(model, x, y, preset, kind="topk")   # x (B,3,H,W) in [0,1]
    res.x_adv, res.success, res.orig_maps, res.adv_maps           # (B,3,H,W), (B,), (B,H,W) x2
    report = evaluate_attribution_robustness(model, loader, preset)

One attack step for the whole batch is one forward/backward pass of the softplus surrogate
over all images x all IG path points (double backprop), plus one first-order pass of the
ReLU network for the selection measure and one forward for the label check. The reference
codes attack one image at a time; here every image keeps its own iterate, best measure and
success flag, so the batched result equals the per-image one (up to float rounding).

Saliency S (B,H,W): |a| reduced over channels (sum or mean) and normalised (S * H*W / sum S,
or to sum 1024), where a is the input gradient of the objective or IG (REFERENCE §7.1). When
a map is differentiated (``create_graph=True``), IG's (x - baseline) factor is a constant and
only the path points carry gradient: d/dx = sum_i t_i * d/dp_i, the sum_i ((i+1)/N) grad_i of
Ghorbani's, Chen's and ART's code.

The model is used as given (put it in eval mode: BN batch statistics or dropout would tie
the images of a batch together); :func:`evaluate_attribution_robustness` does that itself.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from wsol.attribution import integrated_gradients, reduce_channels
from wsol.attribution._common import as_target, check_images, model_gradient, num_classes_of
from wsol.attribution.path import _as_baseline, _path_gradients, _path_weights
from wsol.metrics.robustness import (
    AttributionRobustnessEvaluator,
    center_shift,
    kendall_tau_b,
    topk_intersection,
    topk_mask,
)
from wsol.models.activations import smooth_activations
from wsol.models.base import model_device

from .pgd import project
from .presets import ATTACK_KINDS, RobustnessPreset, SaliencySettings

__all__ = [
    "AttributionAttackResult",
    "attribution_attack",
    "evaluate_attribution_robustness",
    "saliency_map",
]

log = logging.getLogger(__name__)

_TINY = 1e-30  # guards S / sum(S) against an all-zero map


# ----------------------------------------------------------------------------- saliency

def _settings(preset_or_settings: RobustnessPreset | SaliencySettings, which: str) -> SaliencySettings:
    if isinstance(preset_or_settings, SaliencySettings):
        return preset_or_settings
    if not isinstance(preset_or_settings, RobustnessPreset):
        raise ValueError("preset_or_settings must be a RobustnessPreset or SaliencySettings, "
                         f"got {type(preset_or_settings).__name__}")
    if which not in ("attack", "metric"):
        raise ValueError(f"which must be 'attack' or 'metric', got {which!r}")
    return preset_or_settings.attack_saliency if which == "attack" else preset_or_settings.metric_saliency


def _ig_path_only(model: nn.Module, x: torch.Tensor, t: torch.Tensor, s: SaliencySettings) -> torch.Tensor:
    """IG (B,C,H,W) with the graph through the path points only ((x - b) held constant)."""
    base = _as_baseline(s.baseline, x)
    alphas, weights = _path_weights(s.steps, s.rule, x)
    diff = x - base
    points = base + alphas.view(-1, 1, 1, 1, 1) * diff
    grads = _path_gradients(model, points, t, s.objective, create_graph=True)
    return (weights.view(-1, 1, 1, 1, 1) * grads).sum(0) * diff.detach()


def _attribution(model: nn.Module, x: torch.Tensor, t: torch.Tensor, s: SaliencySettings,
                 create_graph: bool, max_rows: int | None) -> torch.Tensor:
    """Raw attribution a (B,C,H,W) of `s` (gradient or IG of the logit / CE of target t)."""
    if s.method == "grad":
        return model_gradient(model, x, t, s.objective, create_graph)
    if create_graph:
        return _ig_path_only(model, x, t, s)
    return integrated_gradients(model, x, t, baseline=s.baseline, steps=s.steps, rule=s.rule,
                                internal_batch_size=max_rows, objective=s.objective)


def _to_saliency(a: torch.Tensor, s: SaliencySettings) -> torch.Tensor:
    """(B,C,H,W) attribution -> normalised saliency (B,H,W) (differentiable)."""
    m = reduce_channels(a, s.reduction)
    if s.normalization == "none":
        return m
    total = m.shape[1] * m.shape[2] if s.normalization == "hw" else 1024
    return total * m / m.sum((1, 2), keepdim=True).clamp_min(_TINY)


def saliency_map(model: nn.Module, x: torch.Tensor, target: torch.Tensor,
                 preset_or_settings: RobustnessPreset | SaliencySettings, create_graph: bool = False,
                 which: str = "attack", max_rows: int | None = None) -> torch.Tensor:
    """Ghorbani-style saliency map S (B,H,W) of images x (B,C,H,W) in [0,1].

    S = norm(reduce_c |a|), a = d objective / dx or IG of it (logit or CE of `target` (B,)),
    as the settings say (see :class:`SaliencySettings`); a preset gives its
    ``attack_saliency`` (``which="attack"``) or ``metric_saliency`` (``which="metric"``).

    Args:
        create_graph: keep the graph so S can be differentiated w.r.t. x (wrap the call in
            ``smooth_activations`` for a non-zero second derivative); IG's (x - baseline)
            factor is then a constant (gradient through the path points only).
        max_rows: at most this many images x path points per forward pass (IG without
            create_graph only); None = all at once.

    Returns:
        (B,H,W), detached unless `create_graph`.
    """
    s = _settings(preset_or_settings, which)
    check_images(x)
    t = as_target(target, x.shape[0], num_classes_of(model), x.device)
    sal = _to_saliency(_attribution(model, x, t, s, create_graph, max_rows), s)
    return sal if create_graph else sal.detach()


# ----------------------------------------------------------------------------- attack pieces

@dataclass
class _Context:
    """Per-image constants of one attacked batch (all on x's device)."""

    x: torch.Tensor                  # (B,C,H,W) originals
    y: torch.Tensor                  # (B,) labels
    sel0: torch.Tensor               # (B,H,W) selection saliency of x (ReLU net)
    sel_mask: torch.Tensor           # (B,H*W) bool, top-attack_k of sel0 (masked tau)
    attack_mask: torch.Tensor        # (B,H*W) float, top-attack_k of the attack saliency of x
    center0: torch.Tensor            # (B,2) int(C(S(x))) of the attack saliency, [x, y]
    target: torch.Tensor | None      # (B,H,W) float target region (targeted attack)


def _centre(s: torch.Tensor) -> torch.Tensor:
    """Differentiable saliency centre [sum S*col, sum S*row] / sum S: (B,H,W) -> (B,2)."""
    _, h, w = s.shape
    rows = torch.arange(h, dtype=s.dtype, device=s.device).view(1, h, 1)
    cols = torch.arange(w, dtype=s.dtype, device=s.device).view(1, 1, w)
    mass = s.sum((1, 2)).clamp_min(_TINY)
    return torch.stack([(s * cols).sum((1, 2)) / mass, (s * rows).sum((1, 2)) / mass], dim=1)


def _attack_loss(sal: torch.Tensor, kind: str, ctx: _Context) -> torch.Tensor:
    """Per-image loss L (B,) on the surrogate saliency (B,H,W); the attack steps along -grad L."""
    if kind == "topk":
        return (sal.flatten(1) * ctx.attack_mask).sum(1)
    if kind == "mass_center":
        return -((_centre(sal) - ctx.center0) ** 2).sum(1)
    return -(sal * ctx.target).sum((1, 2))


def _loss_grad_single_pass(model, x, kind, ctx, s) -> torch.Tensor:
    """dL/dx (B,C,H,W) with one double-backprop pass over all path points."""
    x_leaf = x.detach().requires_grad_(True)
    with torch.enable_grad():
        sal = _to_saliency(_attribution(model, x_leaf, ctx.y, s, True, None), s)
        (g,) = torch.autograd.grad(_attack_loss(sal, kind, ctx).sum(), x_leaf)
    return g


def _loss_grad_chunked(model, x, kind, ctx, s, max_rows: int) -> torch.Tensor:
    """The same dL/dx as `_loss_grad_single_pass`, path points in chunks of <= max_rows rows.

    L depends on the path gradients g_i only through IG = (sum_i w_i g_i) * (x - b). Phase 1
    computes IG without a graph and u = dL/dIG; phase 2 adds, chunk by chunk, the
    Hessian-vector products d/dx sum_i w_i <g_i(p_i(x)), u * (x - b)>.
    """
    base = _as_baseline(s.baseline, x)
    alphas, weights = _path_weights(s.steps, s.rule, x)
    ig = integrated_gradients(model, x, ctx.y, baseline=s.baseline, steps=s.steps, rule=s.rule,
                              internal_batch_size=max_rows, objective=s.objective)
    ig = ig.requires_grad_(True)
    with torch.enable_grad():
        (u,) = torch.autograd.grad(_attack_loss(_to_saliency(ig, s), kind, ctx).sum(), ig)
    v = u * (x - base)
    per_pass = max(1, max_rows // x.shape[0])
    grad = torch.zeros_like(x)
    for start in range(0, len(alphas), per_pass):
        a = alphas[start:start + per_pass].view(-1, 1, 1, 1, 1)
        w = weights[start:start + per_pass].view(-1, 1, 1, 1, 1)
        x_leaf = x.detach().requires_grad_(True)
        with torch.enable_grad():
            g = _path_gradients(model, base + a * (x_leaf - base), ctx.y, s.objective, create_graph=True)
            (h,) = torch.autograd.grad((w * g * v).sum(), x_leaf)
        grad = grad + h
    return grad


def _step_direction(model, x_it, kind, ctx, preset, max_rows, gen) -> torch.Tensor:
    """sign of the step (B,C,H,W): -sign(dL/dx) on the surrogate, or sign of Gaussian noise."""
    if kind == "random":
        return torch.randn(x_it.shape, generator=gen, device=x_it.device, dtype=x_it.dtype).sign()
    s = preset.attack_saliency
    rows = x_it.shape[0] * s.num_points
    with smooth_activations(model, preset.surrogate_beta):
        if s.method == "grad" or max_rows is None or rows <= max_rows:
            g = _loss_grad_single_pass(model, x_it, kind, ctx, s)
        else:
            g = _loss_grad_chunked(model, x_it, kind, ctx, s, max_rows)
    return -g.sign()


def _to_grid(x_adv: torch.Tensor, x: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Round to the 0-255 integer grid, staying inside [0,1] and the eps ball around x.

    Chen et al. truncate (``astype(int)``) iterates of integer images, where every value is
    already an integer; rounding gives the same there and is robust to float error.
    """
    lo = torch.ceil(((x - epsilon) * 255).clamp(min=0) - 1e-4)
    hi = torch.floor(((x + epsilon) * 255).clamp(max=255) + 1e-4)
    return torch.minimum(torch.maximum(torch.round(x_adv * 255), lo), hi) / 255


def _step(x_it: torch.Tensor, direction: torch.Tensor, ctx: _Context, preset: RobustnessPreset) -> torch.Tensor:
    x_new = project(x_it + preset.step_size * direction, ctx.x, preset.epsilon, "linf")
    return _to_grid(x_new, ctx.x, preset.epsilon) if preset.round_pixels else x_new


def _start(ctx: _Context, preset: RobustnessPreset, gen) -> torch.Tensor:
    if not preset.random_start:
        return ctx.x.clone()
    noise = torch.rand(ctx.x.shape, generator=gen, device=ctx.x.device, dtype=ctx.x.dtype)
    x0 = (ctx.x + (2 * noise - 1) * preset.epsilon).clamp(0, 1)
    return _to_grid(x0, ctx.x, preset.epsilon) if preset.round_pixels else x0


def _selection_measure(sal: torch.Tensor, idx: torch.Tensor, kind: str, ctx: _Context,
                       preset: RobustnessPreset) -> torch.Tensor:
    """Measure (n,) float64 of iterates of images `idx` (lower is a better attack)."""
    if kind == "mass_center":
        return -center_shift(ctx.sel0[idx], sal, integer=True)
    if kind == "targeted":
        t = ctx.target[idx]
        return -((sal * t).sum((1, 2)) / sal.sum((1, 2)).clamp_min(_TINY)).double()
    mask = ctx.sel_mask[idx] if preset.selection == "kendall_masked" else None
    return kendall_tau_b(ctx.sel0[idx], sal, mask=mask)


def _measure(model, x_it, kind, ctx, preset, max_rows) -> torch.Tensor:
    """(B,) float64 measure of each iterate on the ReLU network; NaN where the label changed."""
    with torch.no_grad():
        keep = model(x_it).argmax(1) == ctx.y
    out = torch.full((x_it.shape[0],), math.nan, dtype=torch.float64, device=x_it.device)
    idx = keep.nonzero().flatten()
    if len(idx):
        sal = saliency_map(model, x_it[idx], ctx.y[idx], preset.selection_settings, max_rows=max_rows)
        out[idx] = _selection_measure(sal, idx, kind, ctx, preset).to(out.device)
    return out


def _run_once(model, ctx, preset, kind, max_rows, gen) -> tuple[torch.Tensor, torch.Tensor]:
    """One attack run: (best iterate (B,C,H,W), its measure (B,) float64, 1.0 where none)."""
    best_x, best_m = ctx.x.clone(), torch.ones(ctx.x.shape[0], dtype=torch.float64, device=ctx.x.device)

    def consider(x_it: torch.Tensor) -> None:
        m = _measure(model, x_it, kind, ctx, preset, max_rows)
        better = m < best_m                      # NaN (label changed) compares False
        best_m[better] = m[better]
        best_x[better] = x_it[better]

    x_it = _start(ctx, preset, gen)
    for i in range(preset.iterations):
        if preset.measure_iterate == "before_step":
            consider(x_it)
            if i == preset.iterations - 1:
                break                            # ART steps once more but never looks at it
        x_it = _step(x_it, _step_direction(model, x_it, kind, ctx, preset, max_rows, gen), ctx, preset)
        if preset.measure_iterate == "after_step":
            consider(x_it)
    return best_x, best_m


def _target_region(target_region, x: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(target_region, device=x.device).to(x.dtype)
    b, _, h, w = x.shape
    if t.shape not in ((h, w), (b, h, w)):
        raise ValueError(f"target_region must have shape ({h}, {w}) or ({b}, {h}, {w}), "
                         f"got {tuple(t.shape)}")
    return t.expand(b, h, w)


def _context(model, x, y, preset, kind, target_region, max_rows) -> _Context:
    att0 = saliency_map(model, x, y, preset.attack_saliency, max_rows=max_rows)
    same = preset.selection_settings == preset.attack_saliency
    sel0 = att0 if same else saliency_map(model, x, y, preset.selection_settings, max_rows=max_rows)
    target = _target_region(target_region, x) if kind == "targeted" else None
    return _Context(x=x, y=y, sel0=sel0, sel_mask=topk_mask(sel0, preset.attack_k).to(x.device),
                    attack_mask=topk_mask(att0, preset.attack_k).to(x.device, x.dtype),
                    center0=_centre(att0).trunc(), target=target)


# ----------------------------------------------------------------------------- public attack

@dataclass
class AttributionAttackResult:
    """Outcome of :func:`attribution_attack` for a batch of B images.

    Attributes:
        x_adv: (B,C,H,W) the kept iterate; x itself where nothing was kept.
        success: (B,) bool, a label-keeping iterate with a selection measure below 1 was
            found (Chen's rule: for Kendall tau a changed ranking; for mass-center and
            targeted attacks, whose measures are <= 0, any label-keeping iterate).
        orig_correct: (B,) bool, the ReLU network classified x correctly (only those are
            attacked).
        orig_maps, adv_maps: (B,H,W) METRIC saliency (``preset.metric_saliency``) of x and
            x_adv (adv_maps = orig_maps where not success).
        measures: (B,) float64 each: "selection" (the kept iterate's selection measure, NaN
            where not success), and between the metric maps "topk_intersection" (metric_k),
            "kendall" (full map) and "center_shift" (Ghorbani's integer centres).
        kind: the attack kind.
    """

    x_adv: torch.Tensor
    success: torch.Tensor
    orig_correct: torch.Tensor
    orig_maps: torch.Tensor
    adv_maps: torch.Tensor
    measures: dict[str, torch.Tensor] = field(default_factory=dict)
    kind: str = "topk"


def _attack_correct(model, x, y, preset, kind, target_region, max_rows, gen):
    """Attack images (all correctly classified): (x_adv, success (B,))."""
    ctx = _context(model, x, y, preset, kind, target_region, max_rows)
    runs = preset.restarts if (preset.random_start or kind == "random") else 1
    if runs < preset.restarts:
        log.debug("no random start: the %d restarts would be identical, running one", preset.restarts)
    best_x, best_m = x.clone(), torch.ones(x.shape[0], dtype=torch.float64, device=x.device)
    for _ in range(runs):
        run_x, run_m = _run_once(model, ctx, preset, kind, max_rows, gen)
        better = run_m < best_m
        best_x[better], best_m[better] = run_x[better], run_m[better]
    return best_x, best_m < 1.0, best_m


def _check_inputs(model, x, y, preset, kind) -> torch.Tensor:
    check_images(x)
    if not isinstance(preset, RobustnessPreset):
        raise ValueError(f"preset must be a RobustnessPreset (see get_preset), got {type(preset).__name__}")
    if kind not in ATTACK_KINDS:
        raise ValueError(f"unknown attack kind {kind!r}; valid: {', '.join(ATTACK_KINDS)}")
    y = torch.as_tensor(y, device=x.device).long().reshape(-1)
    if y.numel() != x.shape[0]:
        raise ValueError(f"y has {y.numel()} labels but x has batch size {x.shape[0]}")
    if model.training:
        log.warning("attribution_attack: the model is in train mode (BN batch statistics / dropout "
                    "tie the images of a batch together); call model.eval() first")
    return y


def _generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    if seed is None:
        return None
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


def _measures(orig, adv, sel, success, preset) -> dict[str, torch.Tensor]:
    return {"selection": torch.where(success, sel, torch.full_like(sel, math.nan)),
            "topk_intersection": topk_intersection(orig, adv, preset.metric_k),
            "kendall": kendall_tau_b(orig, adv),
            "center_shift": center_shift(orig, adv, integer=True)}


def attribution_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, preset: RobustnessPreset,
                       kind: str = "topk", target_region: torch.Tensor | None = None,
                       max_rows: int | None = None, seed: int | None = None) -> AttributionAttackResult:
    """Ghorbani et al.'s attack on a batch, per image as the reference codes (REFERENCE §7.1-7.2).

    For each correctly classified image: from x (or a random start), `preset.iterations`
    times x <- proj_{eps ball ∩ [0,1]}(x + step_size * d) (snapped to the 0-255 grid when
    ``round_pixels``), d = -sign(dL/dx) of the loss L on the softplus surrogate's
    ``attack_saliency`` (``create_graph`` double backprop), or sign(N(0,1)) for "random".
    Each iterate (after or before its step, ``measure_iterate``) is measured on the ReLU
    network; it counts only if the label is kept, and the one with the lowest measure
    (Kendall tau full / masked, minus the centre shift, minus the target share) is kept,
    over ``restarts`` runs.

    Args:
        model: ReLU (or leaky-ReLU) network in eval mode, images in [0,1] -> logits.
        x: (B,C,H,W) images in [0,1]; y: (B,) labels.
        preset: a :class:`RobustnessPreset` (``get_preset``).
        kind: "topk" (L = sum S~ * 1[original top-k]), "mass_center" (L = -|C(S~) - C1|^2),
            "targeted" (L = -sum S~ * T) or "random" (the noise baseline: same epsilon,
            projection, label check and selection, steps along sign of Gaussian noise).
        target_region: (H,W) or (B,H,W) region T for "targeted".
        max_rows: at most this many images x path points per forward pass (bounds memory;
            the surrogate step then takes a Hessian-vector-product route with one extra
            first-order pass); None = the whole batch at once.
        seed: seeds a private generator for the random start and the noise; None = global RNG.

    Returns:
        :class:`AttributionAttackResult`.
    """
    y = _check_inputs(model, x, y, preset, kind)
    if kind == "targeted" and target_region is None:
        raise ValueError("kind='targeted' needs target_region, an (H,W) or (B,H,W) mask")
    x = x.detach()
    gen = _generator(seed, x.device)
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    x_adv = x.clone()
    success = torch.zeros_like(correct)
    sel = torch.full((x.shape[0],), math.nan, dtype=torch.float64, device=x.device)
    idx = correct.nonzero().flatten()
    if len(idx):
        region = None if target_region is None else _target_region(target_region, x)[idx]
        xa, ok, m = _attack_correct(model, x[idx], y[idx], preset, kind, region, max_rows, gen)
        x_adv[idx], success[idx], sel[idx] = xa, ok, m
    orig = saliency_map(model, x, y, preset.metric_saliency, max_rows=max_rows)
    adv = orig.clone()
    if success.any():
        adv[success] = saliency_map(model, x_adv[success], y[success], preset.metric_saliency,
                                    max_rows=max_rows)
    return AttributionAttackResult(x_adv=x_adv, success=success, orig_correct=correct, orig_maps=orig,
                                   adv_maps=adv, measures=_measures(orig, adv, sel, success, preset),
                                   kind=kind)


# ----------------------------------------------------------------------------- evaluation

@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _unpack(batch) -> tuple[torch.Tensor, torch.Tensor]:
    """A loader batch -> (images (B,C,H,W), labels (B,)): {"image", "label"} or (x, y, ...)."""
    if isinstance(batch, dict):
        return batch["image"], torch.as_tensor(batch["label"])
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], torch.as_tensor(batch[1])
    raise ValueError("each batch must be a dict with 'image' and 'label' or a tuple (images, labels, ...), "
                     f"got {type(batch).__name__}")


def _correct_subset(model, x, y, limit: int | None) -> tuple[torch.Tensor, int]:
    """Indices of the first correctly classified images (at most `limit`), and how many were correct."""
    with torch.no_grad():
        idx = (model(x).argmax(1) == y).nonzero().flatten()
    return (idx if limit is None else idx[:limit]), len(idx)


def evaluate_attribution_robustness(model: nn.Module, loader_or_batches: Iterable, preset: RobustnessPreset,
                                    kind: str = "topk", max_images: int | None = None,
                                    target_region: torch.Tensor | None = None, max_rows: int | None = None,
                                    seed: int | None = None, progress: bool = False) -> dict:
    """Attack the correctly classified test images and score original vs attacked metric maps.

    Images are taken in loader order; misclassified ones are not attacked (nor counted).
    Scores go through :class:`AttributionRobustnessEvaluator` with ``k = preset.metric_k``,
    the preset's failure policy ("score_one": IN = K = 1; "skip": left out) and the masked
    tau when the preset selects on it. The model is put in eval mode for the call.

    Args:
        loader_or_batches: iterable of dict batches {"image", "label"} or (images, labels) tuples.
        kind: attack kind (see :func:`attribution_attack`).
        max_images: stop after attacking this many correctly classified images; None uses
            ``preset.num_images`` (art2020: 1001; chen2019: all).

    Returns:
        The evaluator's dict (IN, K, ... see ``AttributionRobustnessEvaluator.compute``; NaN
        metrics when no image was counted), plus "preset" (``preset.to_dict()``), "kind",
        "failure_policy", "num_seen", "num_correct", "clean_accuracy" (over the images seen),
        "num_attacked", "num_success", "attack_success_rate".
    """
    limit = preset.num_images if max_images is None else max_images
    evaluator = AttributionRobustnessEvaluator(k=preset.metric_k, failure_policy=preset.failure_policy,
                                               masked_tau=preset.selection == "kendall_masked")
    device = model_device(model)
    counts = dict(num_seen=0, num_correct=0, num_attacked=0, num_success=0)
    bar = _progress(limit, progress)
    with _eval_mode(model):
        for batch in loader_or_batches:
            if limit is not None and counts["num_attacked"] >= limit:
                break
            x, y = (t.to(device) for t in _unpack(batch))
            left = None if limit is None else limit - counts["num_attacked"]
            idx, n_correct = _correct_subset(model, x, y, left)
            counts["num_seen"] += len(x)
            counts["num_correct"] += n_correct
            if not len(idx):
                continue
            region = None if target_region is None else _target_region(target_region, x)[idx]
            res = attribution_attack(model, x[idx], y[idx], preset, kind, region, max_rows, seed)
            evaluator.accumulate(res.orig_maps, res.adv_maps, res.success)
            counts["num_attacked"] += len(idx)
            counts["num_success"] += int(res.success.sum())
            if bar is not None:
                bar.update(len(idx))
            log.info("attribution attack: %d images attacked, %d successful", counts["num_attacked"],
                     counts["num_success"])
    if bar is not None:
        bar.close()
    return _report(evaluator, counts, preset, kind)


def _progress(total: int | None, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc="attribution attack", unit="img")


def _report(evaluator: AttributionRobustnessEvaluator, counts: dict, preset: RobustnessPreset, kind: str) -> dict:
    if evaluator.num_images:
        out = evaluator.compute()
    else:
        log.warning("attribution robustness: no image counted (%d attacked, %d failed, policy %r)",
                    counts["num_attacked"], evaluator.num_failed, preset.failure_policy)
        out = {f"{m}_{s}": math.nan for m in evaluator.metric_names for s in ("mean", "std")}
        out.update(IN=math.nan, IN_std=math.nan, K=math.nan, K_std=math.nan, num_images=0,
                   num_skipped=evaluator.num_skipped, num_failed=evaluator.num_failed,
                   num_nan={m: 0 for m in evaluator.metric_names})
    out.update(counts)
    out["clean_accuracy"] = counts["num_correct"] / counts["num_seen"] if counts["num_seen"] else math.nan
    out["attack_success_rate"] = (counts["num_success"] / counts["num_attacked"]
                                  if counts["num_attacked"] else math.nan)
    out.update(kind=kind, failure_policy=preset.failure_policy, preset=preset.to_dict())
    return out
