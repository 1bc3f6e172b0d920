"""Ghorbani-style saliency maps of the attribution attacks and their scores (REFERENCE §7.1 - §7.3).

    S = saliency_map(model, x, y, get_preset("art2020"), which="metric")   # (B,H,W)

Saliency S (B,H,W): |a| reduced over channels (sum or mean) and normalised (S * H*W / sum S,
or to sum 1024), where a is the input gradient of the objective or IG (REFERENCE §7.1). When
a map is differentiated (``create_graph=True``), IG's (x - baseline) factor is a constant and
only the path points carry gradient: d/dx = sum_i t_i * d/dp_i, the sum_i ((i+1)/N) grad_i of
Ghorbani's, Chen's and ART's code.

Without ``create_graph`` (the attacks' scoring) the map comes from the one heatmap path,
`wsol.attribution.saliency_maps` (``normalize="hw"`` etc.); the attack's differentiable step
builds its own here, as `saliency_maps` gives detached maps only.
"""

from __future__ import annotations

import torch
from torch import nn

from wsol.attribution import integrated_gradients, reduce_channels, saliency_maps
from wsol.attribution._common import as_target, check_images, model_gradient, num_classes_of
from wsol.attribution.path import _as_baseline, _path_gradients, _path_weights
from wsol.attribution.reduce import sum_normalize

from .presets import RobustnessPreset, SaliencySettings

__all__ = ["saliency_map"]


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


def attribution(model: nn.Module, x: torch.Tensor, t: torch.Tensor, s: SaliencySettings,
                 create_graph: bool, max_rows: int | None) -> torch.Tensor:
    """Raw attribution a (B,C,H,W) of `s` (gradient or IG of the logit / CE of target t)."""
    if s.method == "grad":
        return model_gradient(model, x, t, s.objective, create_graph)
    if create_graph:
        return _ig_path_only(model, x, t, s)
    return integrated_gradients(model, x, t, baseline=s.baseline, steps=s.steps, rule=s.rule,
                                internal_batch_size=max_rows, objective=s.objective)


def to_saliency(a: torch.Tensor, s: SaliencySettings) -> torch.Tensor:
    """(B,C,H,W) attribution -> normalised saliency (B,H,W) (differentiable)."""
    return sum_normalize(reduce_channels(a, s.reduction), s.normalization)


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
    if not create_graph:   # scoring: the one heatmap path, wsol.attribution.saliency_maps
        if s.method == "grad":
            options = {"variant": s.objective}
        else:
            options = {"baseline": s.baseline, "steps": s.steps, "rule": s.rule,
                       "internal_batch_size": max_rows, "objective": s.objective}
        return saliency_maps(model, x, target, s.method, reduction=s.reduction,
                             normalize=s.normalization, **options)[0]
    check_images(x)
    t = as_target(target, x.shape[0], num_classes_of(model), x.device)
    return to_saliency(attribution(model, x, t, s, create_graph, max_rows), s)


