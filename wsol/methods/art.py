"""Attributional Robustness Training (ART; Singh et al., ECCV 2020), REFERENCE.md §1.

One step on a clean batch (x, y), `faithful` mode (the official algorithm):

1. x~ = attack(x, y): random start in the L-inf ball, a top-k mask of the ReLU net's
   gradient map at the start, then T sign-gradient ascent steps on the masked per-sample
   triplet loss, gradients from the Softplus(beta) net (§1.3).
2. u = normalize([x; x~]); logit gradients g1 = d mean z_y / du and g2 = d mean max_{i!=y} z_i / du
   with create_graph (double backprop), Softplus(beta) net.
3. Project (CUB: mean_c|.| over H*W; CIFAR: signed C*H*W), cosine-distance matrices D_p (u vs g1)
   and D_n (u vs g2), hard mining over each row's pair {r, twin(r)}:
   L_attr = mean_r softplus(max_P D_p - min_P D_n).
4. loss = CE(f_relu(x~), y) + lambda * L_attr.

`fast` mode (ours) keeps the same loss with a cheaper attack: see :class:`ARTMethod` and
benchmarks/RESULTS.md for its cost and quality.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from wsol.models import input_second_order, lean_double_backward, smooth_activations
from wsol.settings import FRACTION_OPEN, NONNEG, ONE_UP, POSITIVE, check_limits

from wsol.space import Choice, IntUniform, LogUniform, Uniform
from .base import StepOutput, TrainingMethod, eval_mode, frozen_bn_stats, register_method

__all__ = ["ARTConfig", "ARTMethod", "art_attack", "art_attr_loss", "art_attr_term", "attack_cosine_distance",
           "cosine_distance_matrix", "logit_gradients", "project", "topk_indices"]

log = logging.getLogger(__name__)
EPS = 1e-8  # added to each norm in the training loss, as the official code (loss_art.py)
ATTACK_COS_EPS = 1e-15  # the attack's cosine regulariser, as the official code (art_attack.py)


@dataclass
class ARTConfig:
    """Method "art" (REFERENCE.md §1). Defaults are the released CUB code's (`art2020`) values."""

    CHOICES: ClassVar[dict] = {"projection": ("abs_mean", "signed"), "attr_inputs": ("pair", "adv_only"),
                               "attack_bn_mode": ("train", "eval"), "attack_grad_wrt": ("raw", "normalized"),
                               "bn_stats": ("all", "ce"),
                               "mode": ("faithful", "fast")}
    LIMITS: ClassVar[dict] = {"epsilon": NONNEG, "step_size": NONNEG, "steps": NONNEG, "fast_steps": NONNEG,
                              "topk": ONE_UP, "beta": POSITIVE, "lam": NONNEG,
                              "fast_pair_fraction": FRACTION_OPEN, "topk_fraction": FRACTION_OPEN}

    epsilon: float = 2 / 255           # L-inf radius of the training attack, [0,1] units
    steps: int = 3                     # T attack iterations
    step_size: float = 1.5 / 255       # alpha
    topk: int = 15000                  # attacked entries of the projected map (of H*W or C*H*W)
    topk_fraction: float | None = None  # if set, k = round(fraction * size): 15000/50176 ~ 0.299 keeps
    beta: float = 1.0                  # Softplus beta for all input gradients (Q2: art2020 CUB = 1)
    lam: float = 0.5                   # lambda on L_attr
    projection: str = "abs_mean"       # "abs_mean" (CUB: mean_c|.|, H*W) or "signed" (CIFAR: C*H*W)
    attr_inputs: str = "pair"          # "pair" (art2020: clean + adversarial, hard mining) or "adv_only"
    attack_bn_mode: str = "train"      # Q1: "train" (art2020) or "eval" (default preset)
    attack_grad_wrt: str = "raw"       # Q3: attack gradients w.r.t. "raw" x (art2020) or "normalized"
    bn_stats: str = "all"              # which train-mode passes move BN running stats: "all" (art2020: the
                                       # Softplus L_attr and attack passes too) or "ce" (the ReLU CE pass alone)
    random_start: bool = True
    mode: str = "faithful"             # "faithful" (the official algorithm) or "fast" (see wsol.methods.art)
    fast_steps: int = 0                # fast mode: attack steps (0: random start only; mask from Softplus g1)
    fast_pair_fraction: float = 0.25   # fast mode: fraction of pairs L_attr is estimated on (unbiased)

    def __post_init__(self) -> None:
        check_limits(type(self), vars(self), "art")


# -- building blocks -----------------------------------------------------------------------

def logits_of(model: nn.Module, inp: torch.Tensor, normalized: bool) -> torch.Tensor:
    """Logits (B,C) of images (B,3,H,W) in [0,1] (normalized=False) or already normalized."""
    if not normalized:
        return model(inp)
    return model.head(model.extract(inp))


def _runner_up(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """max_{i != y_r} z_{r,i} per row: (B,C), (B,) -> (B,)."""
    return z.masked_fill(F.one_hot(y, z.shape[1]).bool(), float("-inf")).amax(dim=1)


def logit_gradients(model: nn.Module, inp: torch.Tensor, y: torch.Tensor, normalized: bool,
                    create_graph: bool = True, rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(g1, g2) = (d mean_r z_{r,y_r} / d inp, d mean_r max_{i!=y_r} z_{r,i} / d inp), each (B,3,H,W).

    `rows` is the count the mean divides by (default B; a subset of a batch passes the batch's,
    so each row's gradient is the one the whole batch would give). `inp` must require grad.
    Call inside `smooth_activations` for a non-zero second derivative.
    """
    z = logits_of(model, inp, normalized)
    n = rows or len(y)
    g1, = torch.autograd.grad(z.gather(1, y[:, None]).sum() / n, inp, create_graph=create_graph,
                              retain_graph=True)
    g2, = torch.autograd.grad(_runner_up(z, y).sum() / n, inp, create_graph=create_graph)
    return g1, g2


def project(t: torch.Tensor, kind: str) -> torch.Tensor:
    """Phi: (B,C,H,W) -> (B,H*W) mean_c|t| ("abs_mean", CUB) or (B,C*H*W) signed ("signed", CIFAR)."""
    if kind == "abs_mean":
        return t.abs().mean(dim=1).flatten(1)
    if kind == "signed":
        return t.flatten(1)
    raise ValueError(f"projection must be 'abs_mean' or 'signed', got {kind!r}")


def cosine_distance_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 - <a_r, b_k> / ((|a_r| + 1e-8)(|b_k| + 1e-8)): (R,D), (K,D) -> (R,K)."""
    an = a / (a.norm(dim=1, keepdim=True) + EPS)
    bn = b / (b.norm(dim=1, keepdim=True) + EPS)
    return 1 - an @ bn.T


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise version of :func:`cosine_distance_matrix`: (B,D), (B,D) -> (B,)."""
    return 1 - (a * b).sum(1) / ((a.norm(dim=1) + EPS) * (b.norm(dim=1) + EPS))


def attack_cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The attack's distance, 1 - cos(a_r, b_r): (B,D), (B,D) -> (B,), by the authors' own regulariser
    (WSOL_CUB/art_attack.py: ``nn.CosineSimilarity(dim=1, eps=1e-15)``), not the training loss's +1e-8
    on each norm (:func:`cosine_distance`): that one flips the sign of near-zero entries of the attack
    direction at trained checkpoints. The CIFAR script (cifar/saliency_pgd.py) uses eps 1e-6; both
    only matter for an all-zero row.
    """
    return 1 - F.cosine_similarity(a, b, dim=1, eps=ATTACK_COS_EPS)


def topk_indices(g: torch.Tensor, k: int, kind: str) -> torch.Tensor:
    """Indices (B,k) of the k largest entries of |Phi(g)| (abs_mean: pixels; signed: C*H*W entries)."""
    score = project(g, kind).abs()
    return score.topk(min(k, score.shape[1]), dim=1).indices


def art_attr_loss(img: torch.Tensor, g1: torch.Tensor, g2: torch.Tensor, pair_ids: torch.Tensor,
                  kind: str) -> torch.Tensor:
    """L_attr with hard mining over pairs (REFERENCE §1.2 steps 4-7).

    img, g1, g2: (R,C,H,W) (the image term is the normalized image); pair_ids: (R,) — rows with
    equal ids form a pair. Returns mean_r softplus(max_{k in P(r)} D_p[r,k] - min_{k in P(r)} D_n[r,k]).
    """
    pu, p1, p2 = project(img, kind), project(g1, kind), project(g2, kind)
    same = pair_ids[:, None] == pair_ids[None, :]
    d_ap = cosine_distance_matrix(pu, p1).masked_fill(~same, float("-inf")).amax(dim=1)
    d_an = cosine_distance_matrix(pu, p2).masked_fill(~same, float("inf")).amin(dim=1)
    return F.softplus(d_ap - d_an).mean()


def _masked_triplet(img: torch.Tensor, g1: torch.Tensor, g2: torch.Tensor, idx: torch.Tensor | None,
                    kind: str) -> torch.Tensor:
    """Per-sample attack objective mean_r softplus(d(img,g1) - d(img,g2)) on the top-k entries,
    d = :func:`attack_cosine_distance` (= the authors' SoftMarginLoss(d_n - d_p, 1))."""
    pu, p1, p2 = project(img, kind), project(g1, kind), project(g2, kind)
    if idx is not None:
        pu, p1, p2 = pu.gather(1, idx), p1.gather(1, idx), p2.gather(1, idx)
    return F.softplus(attack_cosine_distance(pu, p1) - attack_cosine_distance(pu, p2)).mean()


# -- the training-time attack (§1.3) ---------------------------------------------------------

@dataclass
class _AttackSettings:
    epsilon: float
    steps: int
    step_size: float
    k: int
    beta: float
    kind: str
    normalized: bool
    random_start: bool


def _settings(cfg, x: torch.Tensor) -> _AttackSettings:
    size = x[0, 0].numel() if cfg.projection == "abs_mean" else x[0].numel()
    k = round(cfg.topk_fraction * size) if cfg.topk_fraction is not None else cfg.topk
    return _AttackSettings(cfg.epsilon, cfg.steps, cfg.step_size, max(1, min(k, size)), cfg.beta,
                           cfg.projection, cfg.attack_grad_wrt == "normalized", cfg.random_start)


def _grad_input(model: nn.Module, x_adv: torch.Tensor, normalized: bool) -> torch.Tensor:
    """The tensor the attack differentiates w.r.t.: raw x~ (art2020) or normalize(x~) (Q3 fix)."""
    return model.normalize(x_adv) if normalized else x_adv


def _topk_mask(model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor, s: _AttackSettings) -> torch.Tensor:
    """Top-k indices (B,k) of the ReLU net's map d mean z_y / d x~ at the random start."""
    leaf = x_adv.detach().requires_grad_(True)
    inp = _grad_input(model, leaf, s.normalized)
    z = logits_of(model, inp, s.normalized)
    g, = torch.autograd.grad(z.gather(1, y[:, None]).mean(), inp)
    return topk_indices(g, s.k, s.kind)


def art_attack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg, steps: int | None = None,
               relu_mask: bool = True, phase=None) -> torch.Tensor:
    """The ART training attack: x (B,3,H,W) in [0,1] -> x~ (detached), |x~ - x|_inf <= epsilon.

    `cfg` is an ARTConfig; `steps` overrides cfg.steps. relu_mask=True takes the top-k mask from
    a ReLU pass at the random start (official); False takes it from the first step's Softplus
    g1 (no extra pass). The model's mode is used as it is (the caller picks train or eval, Q1);
    no parameter .grad is written. `phase`: optional name -> context manager entered around the
    mask pass and each step (cost accounting, `TrainingMethod.phase`).

    The mask pass and the steps need input gradients only, so they run inside
    `wsol.models.input_second_order` (parameters frozen; the convolutions', BatchNorm's, Softplus's
    and max pooling's lean paths): the same values as PyTorch's own double backward without its
    weight-term convolutions (a quarter of a step's FLOPs) or its element-wise BN and Softplus
    double-backward work; tests/test_art.py checks x~ against the plain computation in float64.
    """
    phase = phase or (lambda name: contextlib.nullcontext())
    s = _settings(cfg, x)
    if steps is not None:
        s.steps = steps
    x = x.detach()
    x_adv = x + torch.empty_like(x).uniform_(-s.epsilon, s.epsilon) if s.random_start else x.clone()
    x_adv = x_adv.clamp(0, 1)
    if s.steps == 0:
        return x_adv
    idx = None
    if relu_mask:
        with phase("top-k mask (ReLU pass)"), input_second_order(model):
            idx = _topk_mask(model, x_adv, y, s)
    with input_second_order(model), smooth_activations(model, s.beta):
        for i in range(s.steps):
            with phase(f"attack step {i + 1}"):
                leaf = x_adv.detach().requires_grad_(True)
                inp = _grad_input(model, leaf, s.normalized)
                g1, g2 = logit_gradients(model, inp, y, s.normalized)
                if idx is None:
                    idx = topk_indices(g1.detach(), s.k, s.kind)
                img = inp if s.normalized else model.normalize(leaf)
                objective = _masked_triplet(img, g1, g2, idx, s.kind)
                step, = torch.autograd.grad(objective, leaf)
                x_adv = x_adv + s.step_size * step.sign()
                x_adv = torch.min(torch.max(x_adv, x - s.epsilon), x + s.epsilon).clamp(0, 1).detach()
    return x_adv


# -- the method --------------------------------------------------------------------------------

def art_attr_term(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor, cfg,
                  batch_size: int | None = None) -> torch.Tensor:
    """L_attr of the training step (§1.2 steps 2-7), differentiable w.r.t. the parameters.

    x, x_adv: (N,3,H,W) in [0,1]; y: (N,). attr_inputs="pair": rows [x; x~] with pair ids
    [0..N-1, 0..N-1] (art2020); "adv_only": x~ alone, each row its own pair (the paper's formula).
    Gradients are taken w.r.t. the normalized input, with the Softplus(beta) net. `batch_size`:
    the full batch's N when (x, x_adv) is a subset of its pairs (fast mode). The convolutions run
    through `wsol.models.lean_double_backward`: the same parameter gradients as PyTorch's own conv
    double backward, with its weight term from the ordinary weight-gradient kernel.
    """
    if cfg.attr_inputs == "pair":
        rows, yy = torch.cat([x, x_adv]), torch.cat([y, y])
        pair = torch.arange(len(y), device=y.device).repeat(2)
    else:
        rows, yy, pair = x_adv, y, torch.arange(len(y), device=y.device)
    u = model.normalize(rows.detach()).requires_grad_(True)
    full_rows = len(rows) * (batch_size or len(y)) // len(y)
    with lean_double_backward(model), smooth_activations(model, cfg.beta):
        g1, g2 = logit_gradients(model, u, yy, normalized=True, rows=full_rows)
    return art_attr_loss(u, g1, g2, pair, cfg.projection)


@register_method("art", settings=ARTConfig)
class ARTMethod(TrainingMethod):
    """ART: CE(x~) + lambda * L_attr (REFERENCE §1.2), configured by an ARTConfig.

    `faithful`: the official attack (ReLU top-k mask, T masked sign steps) before every update.
    `fast`: the same loss and pairing, but (a) the attack takes `fast_steps` steps (default 0:
    the random start alone) and, when it takes any, its top-k mask comes from the first step's
    own Softplus gradient instead of a separate ReLU pass; (b) L_attr is estimated on a random
    `fast_pair_fraction` of the (clean, adversarial) pairs of the batch. L_attr is a mean over
    rows and mining stays within a pair, so (b) is an unbiased estimate of the full term, at a
    fraction of the double-backward cost; CE still uses the whole batch. Cost and Grad
    localization against the faithful mode: benchmarks/RESULTS.md.
    """

    # the demo and the table benchmark run the fast mode as "art" (CPU minutes), the official one on request
    run_variants = {"art": ["method.art.mode=fast"], "art_faithful": ["method.art.mode=faithful"]}
    localization_map = "grad"   # the ART paper's map

    def search_space(self) -> dict:
        """lr, batch size, and ART's own: lambda, Softplus beta, epsilon, the attack steps of the
        configured mode (faithful: steps; fast: fast_steps), bn_stats, attack_bn_mode. Ranges: ours
        (the paper searched none); step_size and top-k stay as configured."""
        steps = {"method.art.fast_steps": IntUniform(0, 2)} if self.cfg.mode == "fast" else \
            {"method.art.steps": IntUniform(1, 5)}
        return {**super().search_space(), "method.art.lam": LogUniform(0.05, 5.0),
                "method.art.beta": LogUniform(0.5, 50.0), "method.art.epsilon": Uniform(0.5 / 255, 8 / 255),
                **steps, "method.art.bn_stats": Choice(["all", "ce"]),
                "method.art.attack_bn_mode": Choice(["train", "eval"])}

    def attack(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x~ for this step, in the configured BN mode (Q1)."""
        cfg = self.cfg
        fast = cfg.mode == "fast"
        with eval_mode(model, enabled=cfg.attack_bn_mode == "eval"):
            return art_attack(model, x, y, cfg, steps=cfg.fast_steps if fast else None, relu_mask=not fast,
                              phase=self.phase)

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> StepOutput:
        cfg = self.cfg
        # bn_stats "ce": the attack and the Softplus L_attr passes leave the BN running statistics
        # to the ReLU CE pass (art2020, "all": every train-mode pass moves them)
        with frozen_bn_stats(model, enabled=cfg.bn_stats == "ce"):
            x_adv = self.attack(model, x, y)
            with self.phase("L_attr forward (Softplus pass, g^y and g^i* with their graphs)"):
                if cfg.mode == "fast" and cfg.fast_pair_fraction < 1:
                    keep = torch.randperm(len(y), device=y.device)[:max(1, round(cfg.fast_pair_fraction * len(y)))]
                    l_attr = art_attr_term(model, x[keep], x_adv[keep], y[keep], cfg, batch_size=len(y))
                else:
                    l_attr = art_attr_term(model, x, x_adv, y, cfg)
        with self.phase("CE forward (ReLU pass on x~)"):
            logits = model(x_adv)
            ce = F.cross_entropy(logits, y)
        attr = cfg.lam * l_attr
        loss = ce + attr
        return StepOutput(loss, logits.detach(), {"ce": ce.item(), "attr": l_attr.item()},
                          terms={"L_attr": attr, "CE": ce})
