"""Adversarial attacks in pixel space (images in [0,1]); see REFERENCE.md §2 and §7.

    x_adv = pgd_linf(model, x, y, epsilon=8/255, steps=40, step_size=2/255)   # PGD-40
"""

from .pgd import NORMS, pgd_l2, pgd_linf, pgd_maximize, project

__all__ = ["NORMS", "pgd_l2", "pgd_linf", "pgd_maximize", "project"]
