"""Where a classifier comes from: an art-wsol checkpoint, or an ImageNet classifier as it is.

    model, meta = load_model("runs/art")                                         # a checkpoint
    model, meta = load_model(ClassifierSpec("torchvision:resnet50", "r50.pth"))   # as it is

Evaluation, localization and segmentation take either; `meta` holds at least `class_names`
and `image_size` (and, for a checkpoint, everything its JSON records).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from .checkpoint import CheckpointError, load_checkpoint


class ClassifierSpec(NamedTuple):
    """An ImageNet classifier as it is: `build_model(name, num_classes, pretrained=weights, keep_head=True)`."""

    name: str
    weights: str | os.PathLike | None
    num_classes: int = 1000

    def __str__(self) -> str:
        return f"{self.name} ({self.weights})"


def load_classifier(spec: ClassifierSpec):
    """(model in eval mode, meta with ImageNet class names and the model's input size)."""
    from wsol.models import build_model
    from wsol.models.imagenet import imagenet_class_names

    if spec.weights is None:
        raise CheckpointError(f"--model {spec.name} needs --weights FILE (a .pth/.pt/.safetensors state dict in "
                              "that model's own key layout); weights are never downloaded")
    model = build_model(spec.name, spec.num_classes, pretrained=spec.weights, keep_head=True).eval()
    cfg = getattr(getattr(model, "net", None), "pretrained_cfg", None) or {}
    size = int((cfg.get("input_size") or (3, 224, 224))[-1])
    names = imagenet_class_names() if spec.num_classes == 1000 else []
    return model, {"class_names": names, "image_size": size, "weights": str(spec.weights), "model": spec.name,
                   "arch": spec.name, "num_classes": spec.num_classes}


def load_model(source: str | os.PathLike | ClassifierSpec):
    """(model in eval mode, meta) from a checkpoint path or a ClassifierSpec."""
    if isinstance(source, ClassifierSpec):
        return load_classifier(source)
    return load_checkpoint(source)


def default_out_dir(source: str | os.PathLike | ClassifierSpec, what: str) -> Path:
    """A checkpoint's run folder; for a ClassifierSpec none exists, so the caller must choose one."""
    if isinstance(source, ClassifierSpec):
        raise ValueError(f"{what}: give an output folder (--out-dir / --out) for --model {source.name}")
    p = Path(source)
    return p if p.is_dir() else p.parent
