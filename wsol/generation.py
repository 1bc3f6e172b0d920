"""Class-conditional image generation with a robust classifier (Santurkar et al., REFERENCE §9),
and the qualitative gradient-map / CAM comparison figure of several checkpoints.

    dists = fit_seed_distributions(train_split, classes=[0, 3], image_size=64, grain=1)
    seeds, labels = sample_seeds(dists, [0, 3], per_class=8, seed=0)              # (16,3,64,64)
    images, prob, history = targeted_l2_pgd(model, seeds, labels, epsilon=30, step_size=0.5, steps=60)

Seeds: the training images of class y, resized to the model's input side S (the wsolevaluation
transform) and average-pooled in GRAIN x GRAIN blocks, give a Gaussian N(mu, Sigma + 1e-4 I)
over the flattened pooled pixels (Sigma = X_c^T X_c / n, the reference's biased covariance).
A sample is clamped to [0,1] and upsampled by block copy back to S x S. The Gaussian is
sampled through its low-rank factor, x = mu + X_c^T a / sqrt(n) + 1e-2 b with a ~ N(0, I_n),
b ~ N(0, I_D): exactly N(mu, Sigma + 1e-4 I) (as torch's LowRankMultivariateNormal), in
O(n D) instead of a D x D Cholesky, so any grain is tractable.

Optimisation: targeted L2 PGD that descends CE(f(x), y): x <- x - s g / |g|_2, projected onto
the L2 ball of radius epsilon around the seed and clamped to [0,1]; the lowest-loss iterate
(the seed included) is kept per image. Units are [0,1] pixels over all 3 x S x S entries.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from tqdm import tqdm  # noqa: E402

from wsol.attacks.pgd import _ascent_direction, project  # noqa: E402
from wsol.attribution import saliency_maps  # noqa: E402
from wsol.data import CubDataset, CubSplit, build_transform, collate_samples, load_split  # noqa: E402
from wsol.engine.checkpoint import load_checkpoint, resolve_checkpoint  # noqa: E402
from wsol.methods.base import eval_mode  # noqa: E402
from wsol.viz import overlay_heatmap, to_uint8_image  # noqa: E402

__all__ = [
    "RECIPES", "COVARIANCE_RIDGE", "MIN_SEED_IMAGES", "SeedDistribution", "GenerationResult",
    "reference_recipe", "default_grain", "resolve_settings", "check_classes", "training_split",
    "downsample", "upsample", "fit_seed_distribution", "fit_seed_distributions", "sample_seeds",
    "targeted_l2_pgd", "generate", "save_generation", "save_sample_grid", "class_summary_lines",
    "evenly_spaced", "run_names", "check_same_class_count", "comparison_panels",
]

log = logging.getLogger(__name__)

# REFERENCE §9: epsilon (L2, [0,1] pixels), step size, iterations, grain
RECIPES = {
    "cifar": {"epsilon": 30.0, "step_size": 0.5, "steps": 60, "grain": 1, "side": 32},
    "imagenet": {"epsilon": 40.0, "step_size": 1.0, "steps": 60, "grain": 4, "side": 224},
}
COVARIANCE_RIDGE = 1e-4
MIN_SEED_IMAGES = 2  # a covariance needs two images; one would give the mean plus 1e-2 noise
_MAX_NAMES_IN_ERROR = 50


# --------------------------------------------------------------------------- settings


def reference_recipe(image_size: int) -> str:
    """'imagenet' for inputs larger than 64 px, else 'cifar' (REFERENCE §9)."""
    return "imagenet" if int(image_size) > 64 else "cifar"


def default_grain(image_size: int) -> int:
    """Pooling block side: the reference's S / GRAIN ratio scaled to this input size.

    CIFAR pools 32 px by 1 and ImageNet 224 px by 4 (a 32 or 56 px fit grid), so this is
    ``max(1, round(S / 56))``: 1 up to 84 px, 2 for 96-140, 4 for 224. The low-rank sampler
    makes the fit cost O(n D), so the grain shapes the seeds (blockiness), not the cost.
    """
    return max(1, int(round(int(image_size) / 56)))


def resolve_settings(image_size: int, epsilon: float | None = None, step_size: float | None = None,
                     steps: int | None = None, grain: int | None = None) -> dict:
    """Fill unset options from the recipe for ``image_size``; validate them.

    Returns {"recipe", "epsilon", "step_size", "steps", "grain"}. ValueError names a bad option.
    """
    recipe = reference_recipe(image_size)
    r = RECIPES[recipe]
    out = {"recipe": recipe,
           "epsilon": float(r["epsilon"] if epsilon is None else epsilon),
           "step_size": float(r["step_size"] if step_size is None else step_size),
           "steps": int(r["steps"] if steps is None else steps),
           "grain": int(default_grain(image_size) if grain is None else grain)}
    if out["epsilon"] < 0 or out["step_size"] < 0:
        raise ValueError(f"--epsilon and --step-size must be >= 0, got {out['epsilon']}, {out['step_size']}")
    if out["steps"] < 0 or (steps is not None and int(steps) != steps):
        raise ValueError(f"--iterations must be an integer >= 0, got {steps}")
    if not 1 <= out["grain"] <= int(image_size):
        raise ValueError(f"--grain must be in 1..{image_size} (the input side), got {out['grain']}")
    return out


def _names_text(class_names: Sequence[str]) -> str:
    shown = ", ".join(f"{i}: {n}" for i, n in enumerate(class_names[:_MAX_NAMES_IN_ERROR]))
    more = len(class_names) - _MAX_NAMES_IN_ERROR
    return shown + (f", ... ({more} more)" if more > 0 else "")


def check_classes(classes: Sequence[int], class_names: Sequence[str]) -> list[int]:
    """The class indices as ints, duplicates dropped (first kept); ValueError listing the valid
    range and the names when one is out of range."""
    n = len(class_names)
    bad = [c for c in classes if not 0 <= int(c) < n]
    if bad:
        raise ValueError(f"class index {', '.join(map(str, bad))} out of range: valid class indices are "
                         f"0..{n - 1} ({_names_text(class_names)})")
    if not classes:
        raise ValueError("no class given")
    return list(dict.fromkeys(int(c) for c in classes))


def training_split(meta: dict, data: str | os.PathLike | None = None) -> CubSplit:
    """The training split a checkpoint was trained on (``data`` overrides ``meta["data"]``).

    For the official CUB layout the validation images carved by training
    (``meta["config"]["data"]["val_per_class"]``) are left out the same way.
    """
    root = data or meta.get("data")
    if not root:
        raise ValueError("--data CUB_DIR is required: the checkpoint does not record its dataset")
    per_class = ((meta.get("config") or {}).get("data") or {}).get("val_per_class") or 0
    return load_split(root, "train", val_per_class=int(per_class))


# --------------------------------------------------------------------------- seed distribution


def downsample(x: torch.Tensor, grain: int) -> torch.Tensor:
    """Mean over GRAIN x GRAIN blocks: (B,C,H,W) -> (B,C,ceil(H/g),ceil(W/g)); a partial edge
    block averages the pixels it has."""
    return x if grain == 1 else F.avg_pool2d(x, grain, ceil_mode=True)


def upsample(x: torch.Tensor, grain: int, size: tuple[int, int]) -> torch.Tensor:
    """Block copy (each pixel repeated GRAIN x GRAIN) cropped to ``size`` (H, W):
    (B,C,h,w) -> (B,C,H,W)."""
    up = x.repeat_interleave(grain, dim=2).repeat_interleave(grain, dim=3)
    return up[..., : size[0], : size[1]].contiguous()


@dataclass
class SeedDistribution:
    """N(mean, factor factor^T + ridge I) over pooled pixels of shape (C,h,w), D = C*h*w.

    mean: (D,) float64; factor: (D,n) float64, the centred images / sqrt(n); count: n images;
    grain and size (H, W): how samples are block-copied back to the model's input.
    """

    mean: torch.Tensor
    factor: torch.Tensor
    shape: tuple[int, int, int]
    grain: int
    size: tuple[int, int]
    count: int
    ridge: float = COVARIANCE_RIDGE

    @property
    def covariance(self) -> torch.Tensor:
        """(D,D) float64, for checks on small D; sampling never builds it."""
        return self.factor @ self.factor.T + self.ridge * torch.eye(self.mean.numel(), dtype=torch.float64)

    def sample(self, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """k seeds (k,C,H,W) float32 in [0,1]: Gaussian sample, clamp, block-copy upsample."""
        a = torch.randn(k, self.factor.shape[1], generator=generator, dtype=torch.float64)
        b = torch.randn(k, self.mean.numel(), generator=generator, dtype=torch.float64)
        flat = self.mean + a @ self.factor.T + math.sqrt(self.ridge) * b
        pooled = flat.clamp(0.0, 1.0).float().view(k, *self.shape)
        return upsample(pooled, self.grain, self.size)


def fit_seed_distribution(pooled: torch.Tensor, grain: int, size: tuple[int, int],
                          ridge: float = COVARIANCE_RIDGE) -> SeedDistribution:
    """Fit the Gaussian to already pooled images (n,C,h,w) of one class (n >= 2)."""
    n = pooled.shape[0]
    if n < MIN_SEED_IMAGES:
        raise ValueError(f"fitting a seed Gaussian needs at least {MIN_SEED_IMAGES} images, got {n}")
    flat = pooled.reshape(n, -1).double()
    mean = flat.mean(0)
    factor = (flat - mean).T / math.sqrt(n)
    return SeedDistribution(mean, factor, tuple(pooled.shape[1:]), int(grain), tuple(size), n, ridge)


def _pooled_class_images(split: CubSplit, classes: Sequence[int], image_size: int, grain: int,
                         batch_size: int, progress: bool) -> dict[int, torch.Tensor]:
    """Training images of ``classes``, resized to S x S and pooled: {class: (n,3,h,w)}."""
    wanted = set(classes)
    idx = [i for i, s in enumerate(split.samples) if s.label in wanted]
    ds = CubDataset(split, build_transform("wsoleval", image_size), load_masks=False)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, idx), batch_size=batch_size,
                                         collate_fn=collate_samples)
    parts: dict[int, list] = {c: [] for c in classes}
    for batch in tqdm(loader, desc="fit seeds", unit="batch", disable=not progress):
        if len(batch["label"]):
            pooled = downsample(batch["image"], grain)
            for c in wanted:
                parts[c].append(pooled[batch["label"] == c])
    return {c: torch.cat(p) if p else torch.empty(0) for c, p in parts.items()}


def fit_seed_distributions(split: CubSplit, classes: Sequence[int], image_size: int, grain: int,
                           batch_size: int = 32, progress: bool = False) -> dict[int, SeedDistribution]:
    """One :class:`SeedDistribution` per class from the split's images of that class.

    ValueError names the class (and the dataset) when it has fewer than 2 readable images.
    """
    pooled = _pooled_class_images(split, classes, image_size, grain, batch_size, progress)
    out = {}
    for c in classes:
        n = len(pooled[c])
        if n < MIN_SEED_IMAGES:
            raise ValueError(f"class {c} ({split.class_names[c]}) has {n} readable {split.name} image(s) in "
                             f"{split.image_root}; fitting its seed Gaussian needs at least {MIN_SEED_IMAGES}")
        out[c] = fit_seed_distribution(pooled[c], grain, (image_size, image_size))
    return out


def sample_seeds(dists: dict[int, SeedDistribution], classes: Sequence[int], per_class: int,
                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` seeds per class, class by class in the given order, from one generator
    seeded with ``seed``: (seeds (N,3,H,W) in [0,1], labels (N,) long), N = len(classes) * per_class."""
    if per_class < 1:
        raise ValueError(f"--per-class must be >= 1, got {per_class}")
    gen = torch.Generator().manual_seed(int(seed))
    seeds = torch.cat([dists[c].sample(per_class, gen) for c in classes])
    labels = torch.tensor([c for c in classes for _ in range(per_class)], dtype=torch.long)
    return seeds, labels


# --------------------------------------------------------------------------- optimisation


def _ce_prob_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor, need_grad: bool):
    """Per-image CE (B,), target probability (B,) and d sum(CE) / dx (B,3,H,W) or None."""
    with torch.set_grad_enabled(need_grad):
        x = x.detach().requires_grad_(need_grad)
        logits = model(x)
        loss = F.cross_entropy(logits, y, reduction="none")
        grad = torch.autograd.grad(loss.sum(), x)[0] if need_grad else None
    prob = logits.detach().softmax(1).gather(1, y.view(-1, 1)).squeeze(1)
    return loss.detach(), prob, grad


def targeted_l2_pgd(model: nn.Module, seeds: torch.Tensor, labels: torch.Tensor, epsilon: float,
                    step_size: float, steps: int, batch_size: int | None = None,
                    progress: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Descend CE(model(x), label) from the seeds over the L2 ball of radius epsilon, in [0,1].

    x <- clip01(proj_ball(x - step_size * g / |g|_2)), ``steps`` times, in eval mode (the
    model's mode is restored after); the loss is evaluated at the seed and after every step,
    and each image keeps its lowest-loss iterate. All images advance together, in chunks of
    ``batch_size`` (None: one chunk) for the forward/backward.

    Args:
        seeds: (N,3,H,W) in [0,1], on the model's device. labels: (N,) long target classes.
    Returns:
        (best iterates (N,3,H,W), their target-class probability (N,),
         target-class probability of the current iterate per iteration (steps+1, N); row 0 is the seed).
    """
    if epsilon < 0 or step_size < 0 or steps < 0:
        raise ValueError(f"epsilon, step_size and steps must be >= 0, got {epsilon}, {step_size}, {steps}")
    n = seeds.shape[0]
    step = batch_size or max(n, 1)
    chunks = [slice(i, i + step) for i in range(0, n, step)]
    x, best = seeds.detach().clone(), seeds.detach().clone()
    best_loss = torch.full((n,), math.inf, device=seeds.device)
    best_prob = torch.zeros(n, device=seeds.device)
    history = torch.zeros(steps + 1, n)
    bar = tqdm(range(steps + 1), desc="generate", unit="it", disable=not progress)
    with eval_mode(model):
        for t in bar:
            for sl in chunks:
                loss, prob, grad = _ce_prob_grad(model, x[sl], labels[sl], need_grad=t < steps)
                history[t, sl] = prob.cpu()
                better = loss < best_loss[sl]  # basic slices are views: these writes land in best*
                best[sl][better] = x[sl][better]
                best_loss[sl][better] = loss[better]
                best_prob[sl][better] = prob[better]
                if grad is not None:
                    x[sl] = project(x[sl] - step_size * _ascent_direction(grad, "l2"), seeds[sl], epsilon, "l2")
            bar.set_postfix(p_target=f"{history[t].mean():.3f}")
    return best, best_prob.cpu(), history


@dataclass
class GenerationResult:
    """images, seeds: (N,3,H,W) in [0,1] (CPU); labels: (N,) target classes; target_prob: (N,)
    the target-class probability of each kept image; prob_history: (steps+1, N) per iteration;
    settings: the options and where the seeds came from (JSON-able)."""

    images: torch.Tensor
    seeds: torch.Tensor
    labels: torch.Tensor
    target_prob: torch.Tensor
    prob_history: torch.Tensor
    settings: dict = field(default_factory=dict)

    def tensors(self) -> dict:
        return {"images": self.images, "seeds": self.seeds, "labels": self.labels,
                "target_prob": self.target_prob, "prob_history": self.prob_history, "settings": self.settings}


def generate(model: nn.Module, split: CubSplit, classes: Sequence[int], per_class: int = 8, *,
             image_size: int, epsilon: float | None = None, step_size: float | None = None,
             steps: int | None = None, grain: int | None = None, seed: int = 0,
             device: str | torch.device = "cpu", batch_size: int | None = None,
             progress: bool = True) -> GenerationResult:
    """Fit seeds on ``split`` (the training split), sample them and run :func:`targeted_l2_pgd`.

    Unset epsilon / step_size / steps / grain come from :func:`resolve_settings`. The same
    arguments give the same images (seeds come from a CPU generator seeded with ``seed``).
    """
    if split.num_classes != model.num_classes:
        raise ValueError(f"{split.image_root}: the dataset has {split.num_classes} classes but the model "
                         f"{model.num_classes}")
    classes = check_classes(classes, split.class_names)
    opts = resolve_settings(image_size, epsilon, step_size, steps, grain)
    dists = fit_seed_distributions(split, classes, image_size, opts["grain"], progress=progress)
    seeds, labels = sample_seeds(dists, classes, per_class, seed)
    model = model.to(device)
    images, prob, history = targeted_l2_pgd(model, seeds.to(device), labels.to(device), opts["epsilon"],
                                            opts["step_size"], opts["steps"], batch_size, progress)
    settings = {**opts, "norm": "l2", "seed": int(seed), "per_class": int(per_class), "classes": classes,
                "class_names": [split.class_names[c] for c in classes], "image_size": int(image_size),
                "covariance_ridge": COVARIANCE_RIDGE, "seed_images": {str(c): dists[c].count for c in classes},
                "seed_split": split.name}
    return GenerationResult(images.cpu(), seeds, labels, prob, history, settings)


# --------------------------------------------------------------------------- outputs


def class_summary_lines(result: GenerationResult, class_names: Sequence[str]) -> list[str]:
    """One line per class: mean target probability at the seed, the last iterate and the kept one."""
    lines, h = [], result.prob_history
    for c in dict.fromkeys(result.labels.tolist()):
        m = result.labels == c
        lines.append(f"class {c} {class_names[c]}: p(target) {h[0, m].mean():.3f} at the seeds -> "
                     f"{h[-1, m].mean():.3f} after {h.shape[0] - 1} iterations; "
                     f"kept {result.target_prob[m].mean():.3f}")
    return lines


def _label_row(ax, text: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_ylabel(text, fontsize=7, rotation=0, ha="right", va="center")


def save_sample_grid(images: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str],
                     path: str | os.PathLike, probs: torch.Tensor | None = None,
                     seeds: torch.Tensor | None = None, title: str | None = None) -> Path:
    """PNG grid, one row per class (labelled with its name), one column per sample.

    images, seeds: (N,3,H,W) in [0,1]; labels: (N,); probs: (N,) shown over each image.
    With ``seeds`` each class gets a seed row above its image row.
    """
    order = list(dict.fromkeys(labels.tolist()))
    rows_idx = [torch.nonzero(labels == c).flatten().tolist() for c in order]
    cols = max(len(r) for r in rows_idx)
    kinds = [("seed", seeds), ("", images)] if seeds is not None else [("", images)]
    fig, axes = plt.subplots(len(order) * len(kinds), cols, squeeze=False,
                             figsize=(1.3 * cols + 1.6, 1.45 * len(order) * len(kinds) + 0.4))
    for ax in axes.flat:
        ax.axis("off")
    for r, (c, idx) in enumerate(zip(order, rows_idx)):
        for k, (kind, tensor) in enumerate(kinds):
            row = axes[r * len(kinds) + k]
            for j, i in enumerate(idx):
                row[j].axis("on")
                row[j].imshow(to_uint8_image(tensor[i]))
                _label_row(row[j], f"{class_names[c]}{' (' + kind + ')' if kind else ''}" if j == 0 else "")
                if probs is not None and not kind:
                    row[j].set_title(f"p={float(probs[i]):.2f}", fontsize=6)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def save_generation(result: GenerationResult, path: str | os.PathLike, class_names: Sequence[str],
                    show_seeds: bool = False) -> tuple[Path, Path]:
    """Write the grid PNG at ``path`` and the raw tensors (``GenerationResult.tensors()``) at
    ``<stem>.pt`` beside it (``torch.load(..., weights_only=True)`` reads it). Returns both paths."""
    path = Path(path)
    s = result.settings
    title = f"eps {s.get('epsilon')}, step {s.get('step_size')}, {s.get('steps')} its, grain {s.get('grain')}, " \
            f"seed {s.get('seed')}"
    png = save_sample_grid(result.images, result.labels, class_names, path, result.target_prob,
                           result.seeds if show_seeds else None, title)
    tensors = path.with_suffix(".pt")
    torch.save(result.tensors(), tensors)
    return png, tensors


# --------------------------------------------------------------------------- map comparison


def evenly_spaced(total: int, n: int) -> list[int]:
    """``min(n, total)`` distinct indices spread evenly over range(total), first and last included."""
    if total <= 0 or n <= 0:
        return []
    return sorted({int(round(v)) for v in np.linspace(0, total - 1, min(n, total))})


def run_names(checkpoints: Sequence[str | os.PathLike]) -> list[str]:
    """Short names: the run folder's name (a checkpoint file's parent), made unique with #k."""
    names = [resolve_checkpoint(c).parent.name or str(c) for c in checkpoints]
    return [f"{n}#{i + 1}" if names.count(n) > 1 else n for i, n in enumerate(names)]


def check_same_class_count(metas: Sequence[dict], checkpoints: Sequence[str | os.PathLike]) -> int:
    """The shared class count; ValueError listing each checkpoint's count when they differ."""
    counts = [int(m["num_classes"]) for m in metas]
    if len(set(counts)) > 1:
        listing = ", ".join(f"{c} has {k}" for c, k in zip(checkpoints, counts))
        raise ValueError(f"the checkpoints must have the same number of classes: {listing}")
    return counts[0]


def _model_maps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, protocol: str, display: int):
    """Normalised grad and CAM maps (B,S,S) at the display side, and predictions (B,)."""
    grad, logits = saliency_maps(model, x, y, "grad", size=(display, display), protocol=protocol)
    cam = saliency_maps(model, x, y, "cam", size=(display, display), protocol=protocol)[0]
    return grad.numpy(), cam.numpy(), logits.argmax(1)


def _batch(split: CubSplit, kind: str, size: int, indices: Sequence[int]) -> dict:
    ds = CubDataset(split, build_transform(kind, size), load_masks=False)
    return collate_samples([ds[i] for i in indices])


def comparison_panels(checkpoints: Sequence[str | os.PathLike], data: str | os.PathLike | None = None,
                      n: int = 8, split: str = "test", protocol: str = "wsolevaluation",
                      val_per_class: int = 0) -> tuple[list[np.ndarray], list[str], int]:
    """Panels for a figure with one row per image: the image, then per checkpoint its Grad
    map and its CAM (ground-truth class, min-max normalised per image) as heatmap overlays.

    ``n`` images evenly spaced through ``split`` of ``data`` (default: the first checkpoint's
    dataset); each model sees them at its own input size, maps are shown at the first's.
    With ``protocol="paper"`` the Grad map is the official ART map (predicted class).
    Returns (panels: uint8 (S,S,3) each, row-major, titles, columns = 1 + 2 * len(checkpoints)).
    """
    loaded = [load_checkpoint(c) for c in checkpoints]
    num_classes = check_same_class_count([m for _, m in loaded], checkpoints)
    root = data or loaded[0][1].get("data")
    if not root:
        raise ValueError("--data CUB_DIR is required: the first checkpoint does not record its dataset")
    sp = load_split(root, split, val_per_class=val_per_class)
    if sp.num_classes != num_classes:
        raise ValueError(f"{root}: the {split} split has {sp.num_classes} classes but the checkpoints {num_classes}")
    kind = "wsoleval" if protocol == "wsolevaluation" else "paper"
    sizes = [int(m.get("image_size") or 224) for _, m in loaded]
    first = _batch(sp, kind, sizes[0], evenly_spaced(len(sp), n))
    idx, y = first["index"].tolist(), first["label"]
    rows: list[list[tuple[np.ndarray, str]]] = [
        [(to_uint8_image(first["image"][i]), f"{first['image_id'][i].split('/')[-1]}\nGT {sp.class_names[int(y[i])]}")]
        for i in range(len(idx))]
    for name, (model, _), size in zip(run_names(checkpoints), loaded, sizes):
        x = first["image"] if size == sizes[0] else _batch(sp, kind, size, idx)["image"]
        grad, cam, pred = _model_maps(model, x, y, protocol, sizes[0])
        for i, row in enumerate(rows):
            p = int(pred[i])
            verdict = f"pred {sp.class_names[p]} {'ok' if p == int(y[i]) else 'wrong'}"
            for label, maps in (("grad", grad), ("CAM", cam)):
                row.append((overlay_heatmap(row[0][0], maps[i]), f"{name} {label}\n{verdict}"))
    panels = [p for row in rows for p, _ in row]
    titles = [t for row in rows for _, t in row]
    return panels, titles, 1 + 2 * len(checkpoints)
