"""Adversarial attacks in pixel space (images in [0,1]); see REFERENCE.md §2 and §7.

    x_adv = pgd_linf(model, x, y, epsilon=8/255, steps=40, step_size=2/255)   # PGD-40
    res = attribution_attack(model, x, y, get_preset("art2020"), kind="topk")  # Ghorbani top-k
"""

from .attribution import AttributionAttackResult, attribution_attack
from .evaluation import evaluate_attribution_robustness
from .pgd import NORMS, pgd_l2, pgd_linf, pgd_maximize, project
from .precision import ATTACK_PRECISIONS
from .presets import PRESET_DATASETS, PRESETS, RobustnessPreset, SaliencySettings, get_preset
from .attribution import resolve_max_rows
from .saliency import saliency_map

__all__ = [
    "ATTACK_PRECISIONS",
    "NORMS",
    "PRESETS",
    "PRESET_DATASETS",
    "AttributionAttackResult",
    "RobustnessPreset",
    "SaliencySettings",
    "attribution_attack",
    "evaluate_attribution_robustness",
    "get_preset",
    "pgd_l2",
    "pgd_linf",
    "pgd_maximize",
    "project",
    "resolve_max_rows",
    "saliency_map",
]
