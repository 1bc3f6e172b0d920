"""Ghorbani et al.'s attribution attacks, batched over images (REFERENCE §7.1 - §7.3).

    preset = get_preset("art2020")
    res = attribution_attack(model, x, y, preset, kind="topk")   # x (B,3,H,W) in [0,1]
    res.x_adv, res.success, res.orig_maps, res.adv_maps           # (B,3,H,W), (B,), (B,H,W) x2
    rows = resolve_max_rows("auto", model, x, y, preset)           # images x path points per pass

One attack step for the whole batch is one forward/backward pass of the softplus surrogate
over all images x all IG path points (double backprop), plus one first-order pass of the
ReLU network for the selection measure and one forward for the label check. The reference
codes attack one image at a time; here every image keeps its own iterate, best measure and
success flag, so the batched result equals the per-image one (up to float rounding).
`max_rows` bounds the rows of one pass: the batch then goes through in groups of whole
images, and only an image whose path alone is longer takes a chunked Hessian-vector route.
"auto" picks the bound for the device (:func:`resolve_max_rows`).

The surrogate step runs inside :func:`wsol.models.input_second_order`: parameters frozen and
each convolution's input gradient formed by ``conv_transpose2d``, so the double backward skips
the weight-gradient convolution PyTorch's own conv double backward always computes (the
slowest op of the step on the CPU; same values). A sequence of per-image seeds makes each
image's random start and noise independent of the batch it is attacked in.
``precision="bf16"`` runs that step under bfloat16 autocast (opt-in; scores stay float32).

The saliency maps themselves are in :mod:`wsol.attacks.saliency`; scoring a loader is
:func:`wsol.attacks.evaluation.evaluate_attribution_robustness`.

The model is used as given (put it in eval mode: BN batch statistics or dropout would tie
the images of a batch together); :func:`evaluate_attribution_robustness` does that itself.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, fields

import torch
from torch import nn

from wsol.attribution import integrated_gradients
from wsol.attribution._common import check_images
from wsol.attribution.path import _as_baseline, _path_gradients, _path_weights
from wsol.attribution.reduce import TINY
from wsol.metrics.robustness import center_shift, kendall_tau_b, topk_intersection, topk_mask
from wsol.models.activations import smooth_activations
from wsol.models.second_order import input_second_order

from .pgd import project
from .precision import ATTACK_PRECISIONS, check_precision, precision_context, warn_if_emulated
from .presets import ATTACK_KINDS, RobustnessPreset
from .rows import CPU_PASS_BYTES, CUDA_MEMORY_SHARE, check_max_rows, largest_activation_bytes, longest_path
from .saliency import attribution, saliency_map, to_saliency

__all__ = [
    "AttributionAttackResult",
    "attribution_attack",
    "ATTACK_PRECISIONS",
    "check_max_rows",
    "check_precision",
    "resolve_max_rows",
]

log = logging.getLogger(__name__)


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

    def rows(self, sl: slice) -> _Context:
        """The constants of images `sl` of the batch."""
        return _Context(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[sl]
                           for f in fields(self)})


def _centre(s: torch.Tensor) -> torch.Tensor:
    """Differentiable saliency centre [sum S*col, sum S*row] / sum S: (B,H,W) -> (B,2)."""
    _, h, w = s.shape
    rows = torch.arange(h, dtype=s.dtype, device=s.device).view(1, h, 1)
    cols = torch.arange(w, dtype=s.dtype, device=s.device).view(1, 1, w)
    mass = s.sum((1, 2)).clamp_min(TINY)
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
        sal = to_saliency(attribution(model, x_leaf, ctx.y, s, True, None), s)
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
        (u,) = torch.autograd.grad(_attack_loss(to_saliency(ig, s), kind, ctx).sum(), ig)
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


def _surrogate_grad(model, x, kind, ctx, s, max_rows: int | None) -> torch.Tensor:
    """dL/dx (B,C,H,W) on the surrogate, at most `max_rows` images x path points per pass.

    Whole images go through together (one double-backprop pass per group); an image whose path
    alone is longer than `max_rows` takes the chunked Hessian-vector route on its own.
    """
    b, points = x.shape[0], s.num_points
    if max_rows is None or b * points <= max_rows:
        return _loss_grad_single_pass(model, x, kind, ctx, s)
    if points > max_rows:
        return torch.cat([_loss_grad_chunked(model, x[i:i + 1], kind, ctx.rows(slice(i, i + 1)), s, max_rows)
                          for i in range(b)])
    group = max_rows // points
    return torch.cat([_loss_grad_single_pass(model, x[i:i + group], kind, ctx.rows(slice(i, i + group)), s)
                      for i in range(0, b, group)])


def _step_direction(model, x_it, kind, ctx, preset, max_rows, gen, precision: str = "fp32") -> torch.Tensor:
    """sign of the step (B,C,H,W): -sign(dL/dx) on the surrogate, or sign of Gaussian noise."""
    if kind == "random":
        return _draw(torch.randn, x_it, gen).sign()
    with input_second_order(model), smooth_activations(model, preset.surrogate_beta), \
            precision_context(precision, x_it.device):
        g = _surrogate_grad(model, x_it, kind, ctx, preset.attack_saliency, max_rows)
    return -g.float().sign()


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
    noise = _draw(torch.rand, ctx.x, gen)
    x0 = (ctx.x + (2 * noise - 1) * preset.epsilon).clamp(0, 1)
    return _to_grid(x0, ctx.x, preset.epsilon) if preset.round_pixels else x0


def _selection_measure(sal: torch.Tensor, idx: torch.Tensor, kind: str, ctx: _Context,
                       preset: RobustnessPreset) -> torch.Tensor:
    """Measure (n,) float64 of iterates of images `idx` (lower is a better attack)."""
    if kind == "mass_center":
        return -center_shift(ctx.sel0[idx], sal, integer=True)
    if kind == "targeted":
        t = ctx.target[idx]
        return -((sal * t).sum((1, 2)) / sal.sum((1, 2)).clamp_min(TINY)).double()
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


def _run_once(model, ctx, preset, kind, max_rows, gen, precision) -> tuple[torch.Tensor, torch.Tensor]:
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
        x_it = _step(x_it, _step_direction(model, x_it, kind, ctx, preset, max_rows, gen, precision), ctx,
                     preset)
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


# ----------------------------------------------------------------------------- rows per pass

def _probe_rows(model, x1, y1, preset, kind, region) -> int:
    """Rows per pass that fit CUDA_MEMORY_SHARE of the usable memory, from one image's peak."""
    dev = x1.device
    torch.cuda.synchronize(dev)
    free, _ = torch.cuda.mem_get_info(dev)
    usable = free + torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
    ctx = _context(model, x1, y1, preset, kind, region, None)
    base = torch.cuda.memory_allocated(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    if kind == "random":         # no surrogate step: the first-order maps are the largest passes
        saliency_map(model, x1, y1, preset.metric_saliency)
        points = preset.metric_saliency.num_points
    else:
        _step_direction(model, x1, kind, ctx, preset, None, None)
        points = preset.attack_saliency.num_points
    torch.cuda.synchronize(dev)
    per_row = max(1, torch.cuda.max_memory_allocated(dev) - base) / points
    return max(points, int(CUDA_MEMORY_SHARE * usable / per_row))


def resolve_max_rows(max_rows: int | str | None, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                     preset: RobustnessPreset, kind: str = "topk",
                     target_region: torch.Tensor | None = None) -> int | None:
    """The images x path points per forward pass that `max_rows` stands for.

    None (a whole batch at once) and positive ints are returned as they are. "auto":
      - CPU: as many rows as keep the largest activation of a pass under CPU_PASS_BYTES
        (16 MiB), but at least one image's longest path (art2020: 101 rows). On a 2-core CPU
        an image's 100-point IG pass of WRN-16-2 at 32 px (12.5 MiB activations) is already
        compute-bound, and larger passes of the surrogate step were slower per image (1.26 s
        for one image, 1.46 s each for two, 2.3 s each for eight), the difference spent in
        page faults of the larger buffers (glibc maps each buffer over 32 MiB afresh). Small
        models and images still get many images per pass.
      - CUDA: one surrogate step on x[:1] measures the peak memory per row; the bound fills
        CUDA_MEMORY_SHARE of the free (plus cached) memory, at least one image's path. This
        keeps WRN-28-10 (about 40 MB a row in the double backward) from running out of memory
        at batch 32 while filling the GPU for small models.
    The bound never changes the attack's result, only how the rows are split into passes.
    """
    check_max_rows(max_rows)
    if max_rows != "auto":
        return max_rows
    if x.device.type != "cuda":
        return max(longest_path(preset), CPU_PASS_BYTES // largest_activation_bytes(model, x[:1].detach()))
    region = None if target_region is None else target_region[:1]
    rows = _probe_rows(model, x[:1].detach(), torch.as_tensor(y, device=x.device).long().reshape(-1)[:1],
                       preset, kind, region)
    log.info("attribution attack: max_rows auto -> %d (CUDA memory probe)", rows)
    return rows


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


def _attack_correct(model, x, y, preset, kind, target_region, max_rows, gen, precision):
    """Attack images (all correctly classified): (x_adv, success (B,))."""
    ctx = _context(model, x, y, preset, kind, target_region, max_rows)
    runs = preset.restarts if (preset.random_start or kind == "random") else 1
    if runs < preset.restarts:
        log.debug("no random start: the %d restarts would be identical, running one", preset.restarts)
    best_x, best_m = x.clone(), torch.ones(x.shape[0], dtype=torch.float64, device=x.device)
    for _ in range(runs):
        run_x, run_m = _run_once(model, ctx, preset, kind, max_rows, gen, precision)
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


def _generator(seed, device: torch.device, n: int) -> torch.Generator | list[torch.Generator] | None:
    """None, one generator (an int seed) or one per image (a sequence of n int seeds)."""
    if seed is None:
        return None
    if isinstance(seed, torch.Tensor):
        seed = seed.tolist()
    if isinstance(seed, (list, tuple)):
        if len(seed) != n or not all(isinstance(v, int) and not isinstance(v, bool) for v in seed):
            raise ValueError(f"seed must be an int or a sequence of {n} ints (one per image), got {seed!r}")
        return [torch.Generator(device=device).manual_seed(v) for v in seed]
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, a sequence of ints (one per image) or None, got {seed!r}")
    return torch.Generator(device=device).manual_seed(seed)


def _draw(fn, like: torch.Tensor, gen) -> torch.Tensor:
    """fn (torch.rand / torch.randn) of like's shape; with per-image generators, image i from gen[i]."""
    if isinstance(gen, list):
        return torch.cat([fn((1, *like.shape[1:]), generator=g, device=like.device, dtype=like.dtype) for g in gen])
    return fn(like.shape, generator=gen, device=like.device, dtype=like.dtype)


def _measures(orig, adv, sel, success, preset) -> dict[str, torch.Tensor]:
    return {"selection": torch.where(success, sel, torch.full_like(sel, math.nan)),
            "topk_intersection": topk_intersection(orig, adv, preset.metric_k),
            "kendall": kendall_tau_b(orig, adv),
            "center_shift": center_shift(orig, adv, integer=True)}


def attribution_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, preset: RobustnessPreset,
                       kind: str = "topk", target_region: torch.Tensor | None = None,
                       max_rows: int | str | None = None, seed: int | None = None,
                       precision: str = "fp32") -> AttributionAttackResult:
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
        max_rows: at most this many images x path points per forward pass (bounds memory):
            the surrogate step takes whole images in groups that fit (an image whose path
            alone does not fit takes a Hessian-vector-product route with one extra
            first-order pass); None = the whole batch at once; "auto" = chosen for the
            device by :func:`resolve_max_rows` (resolve it once and pass the number when
            attacking many batches). Does not change the result.
        seed: seeds a private generator for the random start and the noise; a sequence of B
            ints gives each image its own generator, so an image's attack does not depend on
            the batch it is in (one at a time with seed s_i = batched with seeds [.., s_i, ..]);
            None = global RNG.
        precision: "fp32" (default) or "bf16": the surrogate step direction under bfloat16
            autocast on x's device (the step ~2.2x, a whole attack ~1.5x faster on an AMX CPU,
            but ~6x SLOWER on a CPU without native bf16, which logs a warning once; see
            benchmarks/RESULTS.md; a few percent of the step signs differ from float32's,
            so the attack visits other iterates). The label checks, the selection measure and
            the metric maps stay float32 either way. Not a preset setting: reports that use it
            record it.

    Returns:
        :class:`AttributionAttackResult`.
    """
    y = _check_inputs(model, x, y, preset, kind)
    check_max_rows(max_rows)
    check_precision(precision)
    warn_if_emulated(precision, x.device)
    if kind == "targeted" and target_region is None:
        raise ValueError("kind='targeted' needs target_region, an (H,W) or (B,H,W) mask")
    x = x.detach()
    if isinstance(max_rows, str):
        region = None if target_region is None else _target_region(target_region, x)
        max_rows = resolve_max_rows(max_rows, model, x, y, preset, kind, region)
    gen = _generator(seed, x.device, x.shape[0])
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    x_adv = x.clone()
    success = torch.zeros_like(correct)
    sel = torch.full((x.shape[0],), math.nan, dtype=torch.float64, device=x.device)
    idx = correct.nonzero().flatten()
    if len(idx):
        region = None if target_region is None else _target_region(target_region, x)[idx]
        sub = [gen[i] for i in idx.tolist()] if isinstance(gen, list) else gen
        xa, ok, m = _attack_correct(model, x[idx], y[idx], preset, kind, region, max_rows, sub, precision)
        x_adv[idx], success[idx], sel[idx] = xa, ok, m
    orig = saliency_map(model, x, y, preset.metric_saliency, max_rows=max_rows)
    adv = orig.clone()
    if success.any():
        adv[success] = saliency_map(model, x_adv[success], y[success], preset.metric_saliency,
                                    max_rows=max_rows)
    return AttributionAttackResult(x_adv=x_adv, success=success, orig_correct=correct, orig_maps=orig,
                                   adv_maps=adv, measures=_measures(orig, adv, sel, success, preset),
                                   kind=kind)


