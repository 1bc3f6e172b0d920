"""Evaluation presets of the attributional-robustness attack (REFERENCE §7.2, §7.4).

    preset = get_preset("art2020")                        # ART's CIFAR-10 evaluation
    preset = get_preset("chen2019", dataset="flower")     # Chen et al., Flower-17 settings
    preset = get_preset("art2020", iterations=5, attack_saliency={"steps": 20})
    report["preset"] = preset.to_dict()

Every row of REFERENCE's §7.2 table is a field of :class:`RobustnessPreset`; any field can be
overridden through :func:`get_preset`. Units: ``epsilon`` and ``step_size`` are always in
[0,1] pixel units, as everywhere in the toolkit (Chen et al.'s "8 on the 0-255 scale" is
``8/255``); ``round_pixels`` says whether iterates are snapped to the 0-255 integer grid.

The surrogate network is the model inside ``smooth_activations(model, surrogate_beta)``:
ReLU becomes Softplus(beta) and, automatically, ``nn.LeakyReLU(s)`` becomes
``s*x + (1-s)*softplus_beta(x)`` (Chen et al.'s 0.1x + 0.9 softplus for their leaky nets).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wsol.attribution.reduce import SUM_NORMALIZATIONS

__all__ = [
    "PRESETS",
    "PRESET_DATASETS",
    "RobustnessPreset",
    "SaliencySettings",
    "get_preset",
]

SALIENCY_METHODS = ("ig", "grad")
OBJECTIVES = ("logit", "ce")
IG_RULES = ("right", "trapezoid")
SALIENCY_REDUCTIONS = ("abs_sum", "abs_mean")
NORMALIZATIONS = SUM_NORMALIZATIONS
ATTACK_KINDS = ("topk", "mass_center", "targeted", "random")
SELECTIONS = ("kendall_full", "kendall_masked")
SELECTION_SALIENCIES = ("attack", "metric")
MEASURE_ITERATES = ("after_step", "before_step")
FAILURE_POLICIES = ("score_one", "skip")


def _choice(name: str, value: Any, valid: tuple) -> None:
    if value not in valid:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, valid))}, got {value!r}")


def _positive_int(name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class SaliencySettings:
    """How one saliency map S (B,H,W) is computed from a model (REFERENCE §7.1, §7.2).

    Attributes:
        method: "ig" (Integrated Gradients) or "grad" (input gradient of the objective).
        objective: "logit" (z[b, y_b]) or "ce" (CE(z_b, y_b), the loss; ART's metric IG).
        rule: IG quadrature, "right" (t = i/N, i = 1..N; Ghorbani, Chen, ART's attack) or
            "trapezoid" (t = i/N, i = 0..N, N + 1 points; ART's metric).
        steps: IG N.
        reduction: channel reduction, "abs_sum" (sum_c |a|) or "abs_mean" (mean_c |a|).
        normalization: "hw" (Ghorbani: S * H*W / sum S, so S sums to H*W), "sum_1024"
            (ART: S * 1024 / sum S; ART hard-codes 32*32, so on CIFAR it equals "hw") or
            "none".
        baseline: IG baseline, a constant in [0,1] pixel space (0 = black image, ART and Chen).
    """

    method: str = "ig"
    objective: str = "logit"
    rule: str = "right"
    steps: int = 100
    reduction: str = "abs_sum"
    normalization: str = "hw"
    baseline: float = 0.0

    def __post_init__(self) -> None:
        _choice("saliency method", self.method, SALIENCY_METHODS)
        _choice("saliency objective", self.objective, OBJECTIVES)
        _choice("saliency rule", self.rule, IG_RULES)
        _positive_int("saliency steps", self.steps)
        _choice("saliency reduction", self.reduction, SALIENCY_REDUCTIONS)
        _choice("saliency normalization", self.normalization, NORMALIZATIONS)

    @property
    def num_points(self) -> int:
        """Model evaluations per image: N (right), N + 1 (trapezoid) or 1 (grad)."""
        if self.method == "grad":
            return 1
        return self.steps + (1 if self.rule == "trapezoid" else 0)


@dataclass(frozen=True)
class RobustnessPreset:
    """Every setting of one attributional-robustness evaluation (REFERENCE §7.2 / §7.4).

    Attributes:
        name: "chen2019" or "art2020" (or a user's name after overrides).
        dataset: the dataset whose settings were picked ("gtsrb", "flower", "mnist", "cifar10").
        attack: default attack kind ("topk" for both presets).
        attack_saliency: saliency the attack differentiates (on the softplus surrogate) and,
            on the ReLU network, the one its top-k mask and iterate selection use.
        metric_saliency: saliency of the reported maps (ReLU network). In ``art2020`` it
            differs from ``attack_saliency`` (CE, trapezoid, mean_c): reproduced on purpose.
        epsilon, step_size: L-inf radius and step alpha in [0,1] units (8/255 = 8 grey levels).
        iterations: attack steps per run.
        attack_k: k of the attack's top-k mask (and of the masked-tau selection).
        metric_k: k of the reported top-k intersection.
        random_start: start at clip01(x + U(-eps, eps)) instead of x.
        surrogate_beta: Softplus beta of the surrogate (leaky ReLU: s*x + (1-s)*softplus).
        round_pixels: snap iterates to the 0-255 integer grid (Chen's ``astype(int)`` on
            integer images) or keep floats in [0,1].
        selection: per-image choice among label-keeping iterates: the lowest Kendall tau on
            the full map ("kendall_full", Chen) or on both maps masked by the original's
            top-``attack_k`` ("kendall_masked", ART). Mass-center attacks pick the largest
            centre shift instead, targeted attacks the largest saliency share in the target.
        selection_saliency: which saliency the selection measure uses, "attack" (both
            reference codes) or "metric".
        measure_iterate: "after_step" (Chen: iterates x_1..x_T are measured) or
            "before_step" (ART: x_0..x_{T-1}, the random start included, the last step's
            result never looked at).
        restarts: independent runs, the best kept per image (Chen: 3, identical without a
            random start, so they are run once then).
        failure_policy: an attacked image without a label-keeping changed iterate counts as
            IN = K = 1 ("score_one", Chen) or is left out ("skip", ART).
        num_images: how many correctly classified images an evaluation attacks (None = all;
            ART: 1001, the first ones in test order).
        pgd_epsilon, pgd_step_size, pgd_steps, pgd_random_start: adversarial accuracy
            (REFERENCE §7.4: PGD-40 and PGD-20, CE loss, ReLU network). Chen's own PGD
            settings are not in REFERENCE; ``chen2019`` carries §7.4's values.
    """

    name: str
    dataset: str
    attack: str = "topk"
    attack_saliency: SaliencySettings = field(default_factory=SaliencySettings)
    metric_saliency: SaliencySettings = field(default_factory=SaliencySettings)
    epsilon: float = 8 / 255
    step_size: float = 1 / 255
    iterations: int = 50
    attack_k: int = 100
    metric_k: int = 100
    random_start: bool = False
    surrogate_beta: float = 1.0
    round_pixels: bool = False
    selection: str = "kendall_full"
    selection_saliency: str = "attack"
    measure_iterate: str = "after_step"
    restarts: int = 1
    failure_policy: str = "score_one"
    num_images: int | None = None
    pgd_epsilon: float = 8 / 255
    pgd_step_size: float = 2 / 255
    pgd_steps: tuple[int, ...] = (40, 20)
    pgd_random_start: bool = True

    def __post_init__(self) -> None:
        for name in ("attack_saliency", "metric_saliency"):
            if not isinstance(getattr(self, name), SaliencySettings):
                raise ValueError(f"{name} must be a SaliencySettings, got {type(getattr(self, name)).__name__}")
        _choice("attack", self.attack, ATTACK_KINDS)
        for name in ("epsilon", "step_size", "pgd_epsilon", "pgd_step_size"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"{name} must be >= 0 (in [0,1] pixel units), got {getattr(self, name)!r}")
        if not float(self.surrogate_beta) > 0:
            raise ValueError(f"surrogate_beta must be > 0, got {self.surrogate_beta!r}")
        _positive_int("iterations", self.iterations, minimum=0)
        _positive_int("attack_k", self.attack_k)
        _positive_int("metric_k", self.metric_k)
        _positive_int("restarts", self.restarts)
        if self.num_images is not None:
            _positive_int("num_images", self.num_images)
        _choice("selection", self.selection, SELECTIONS)
        _choice("selection_saliency", self.selection_saliency, SELECTION_SALIENCIES)
        _choice("measure_iterate", self.measure_iterate, MEASURE_ITERATES)
        _choice("failure_policy", self.failure_policy, FAILURE_POLICIES)
        object.__setattr__(self, "pgd_steps", tuple(int(s) for s in self.pgd_steps))

    def to_dict(self) -> dict:
        """All settings as plain JSON-able values (epsilon also on the 0-255 scale)."""
        out = dataclasses.asdict(self)
        out["pgd_steps"] = list(self.pgd_steps)
        out["epsilon_255"] = self.epsilon * 255
        out["step_size_255"] = self.step_size * 255
        return out

    @property
    def selection_settings(self) -> SaliencySettings:
        """The saliency the iterate-selection measure uses (see ``selection_saliency``)."""
        return self.attack_saliency if self.selection_saliency == "attack" else self.metric_saliency


# Chen et al. (jfc43/robust-attribution-regularization), per dataset. GTSRB and Flower run on
# the 0-255 scale with integer images (epsilon 8, step 1 there); MNIST on [0,1] without rounding.
_CHEN_DATASETS: dict[str, dict[str, Any]] = {
    "gtsrb": dict(epsilon=8 / 255, step_size=1 / 255, iterations=50, attack_k=100, metric_k=100,
                  round_pixels=True),
    "flower": dict(epsilon=8 / 255, step_size=1 / 255, iterations=100, attack_k=1000, metric_k=1000,
                   round_pixels=True),
    "mnist": dict(epsilon=0.3, step_size=0.01, iterations=100, attack_k=200, metric_k=100,
                  round_pixels=False),
}


def _chen2019(dataset: str) -> RobustnessPreset:
    ig = SaliencySettings(method="ig", objective="logit", rule="right", steps=100,
                          reduction="abs_sum", normalization="hw")
    return RobustnessPreset(
        name="chen2019", dataset=dataset, attack="topk", attack_saliency=ig, metric_saliency=ig,
        random_start=False, surrogate_beta=1.0, selection="kendall_full", selection_saliency="attack",
        measure_iterate="after_step", restarts=3, failure_policy="score_one", num_images=None,
        **_CHEN_DATASETS[dataset])


def _art2020(dataset: str) -> RobustnessPreset:
    attack_ig = SaliencySettings(method="ig", objective="logit", rule="right", steps=100,
                                 reduction="abs_sum", normalization="sum_1024")
    metric_ig = SaliencySettings(method="ig", objective="ce", rule="trapezoid", steps=100,
                                 reduction="abs_mean", normalization="sum_1024")
    return RobustnessPreset(
        name="art2020", dataset=dataset, attack="topk", attack_saliency=attack_ig,
        metric_saliency=metric_ig, epsilon=8 / 255, step_size=1 / 255, iterations=50,
        attack_k=100, metric_k=100, random_start=True, surrogate_beta=50.0, round_pixels=False,
        selection="kendall_masked", selection_saliency="attack", measure_iterate="before_step",
        restarts=1, failure_policy="skip", num_images=1001)


_BUILDERS = {"chen2019": _chen2019, "art2020": _art2020}
PRESET_DATASETS: dict[str, tuple[str, ...]] = {"chen2019": tuple(_CHEN_DATASETS), "art2020": ("cifar10",)}
PRESETS: dict[str, RobustnessPreset] = {name: build(PRESET_DATASETS[name][0])
                                        for name, build in _BUILDERS.items()}


def _field_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _merge_saliency(name: str, base: SaliencySettings, value: Any) -> SaliencySettings:
    if isinstance(value, SaliencySettings):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} override must be a SaliencySettings or a dict, got {type(value).__name__}")
    unknown = sorted(set(value) - set(_field_names(SaliencySettings)))
    if unknown:
        raise ValueError(f"unknown {name} field(s) {', '.join(map(repr, unknown))}; valid: "
                         f"{', '.join(_field_names(SaliencySettings))}")
    return dataclasses.replace(base, **value)


def get_preset(name: str, dataset: str | None = None, **overrides: Any) -> RobustnessPreset:
    """The preset `name` for `dataset` (default: its first), with fields overridden.

    Args:
        name: "chen2019" or "art2020".
        dataset: chen2019: "gtsrb" (default), "flower", "mnist"; art2020: "cifar10".
        **overrides: any :class:`RobustnessPreset` field; ``attack_saliency`` /
            ``metric_saliency`` also take a dict of :class:`SaliencySettings` fields that is
            merged into the preset's settings. epsilon / step_size in [0,1] units.

    Raises:
        ValueError naming the valid presets, datasets or fields.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown robustness preset {name!r}; valid: {', '.join(_BUILDERS)}")
    datasets = PRESET_DATASETS[name]
    if dataset is None:
        dataset = datasets[0]
    if dataset not in datasets:
        raise ValueError(f"preset {name!r} has no dataset {dataset!r}; valid: {', '.join(datasets)}")
    base = _BUILDERS[name](dataset)
    unknown = sorted(set(overrides) - set(_field_names(RobustnessPreset)))
    if unknown:
        raise ValueError(f"unknown preset field(s) {', '.join(map(repr, unknown))}; valid fields: "
                         f"{', '.join(_field_names(RobustnessPreset))}")
    for key in ("attack_saliency", "metric_saliency"):
        if key in overrides:
            overrides[key] = _merge_saliency(key, getattr(base, key), overrides[key])
    return dataclasses.replace(base, **overrides)
