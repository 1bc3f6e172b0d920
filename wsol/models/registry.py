"""Model registry in timm style: `@register_model` builders and `build_model`.

A builder is `fn(num_classes, adl=False, **kwargs) -> WSOLModel`. Any timm model with
a GAP + single-Linear head is reachable as `timm:<name>`; with `keep_head=True` any timm
model and any torchvision classifier (`torchvision:<name>`) is used as it is.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .base import WSOLModel

_MODELS: dict[str, Callable[..., WSOLModel]] = {}
# architecture type -> builder fn(arch, num_classes, **kwargs) (wsolevaluation's `architecture_type`)
_ARCH_TYPES: dict[str, Callable[..., WSOLModel]] = {}
TIMM_PREFIX = "timm:"
TORCHVISION_PREFIX = "torchvision:"


def register_model(fn: Callable[..., WSOLModel]) -> Callable[..., WSOLModel]:
    """Decorator: register a builder under its function name."""
    if fn.__name__ in _MODELS:
        raise ValueError(f"model {fn.__name__!r} is already registered")
    _MODELS[fn.__name__] = fn
    return fn


def register_architecture_type(name: str):
    """Decorator: register a builder ``fn(arch, num_classes, **kwargs) -> WSOLModel`` for the
    architecture type `name` (a method's own heads on a backbone, e.g. "acol", "spg"); the
    builder raises ValueError naming the archs it supports."""

    def wrap(fn: Callable[..., WSOLModel]) -> Callable[..., WSOLModel]:
        if name == "cam" or name in _ARCH_TYPES:
            raise ValueError(f"architecture type {name!r} is already registered")
        _ARCH_TYPES[name] = fn
        return fn

    return wrap


def list_architecture_types() -> list[str]:
    """"cam" (the plain GAP classifier, ADL included) and every registered architecture type."""
    return ["cam", *_ARCH_TYPES]


def list_models() -> list[str]:
    """Registered architecture names, sorted (timm models are used as `timm:<name>`)."""
    return sorted(_MODELS)


def build_model(arch: str, num_classes: int, pretrained: bool | str | os.PathLike = False,
                adl: bool = False, keep_head: bool = False, pretrained_classifier: bool = False,
                architecture_type: str = "cam", **kwargs: Any) -> WSOLModel:
    """Build a WSOL model.

    Args:
        arch: a name from `list_models()` or `timm:<timm model name>`.
        num_classes: number of classes C.
        pretrained: False (random init), True (ImageNet weights from the local cache
            only, never downloaded) or the path of a .pth / .safetensors file.
        adl: insert ADL layers (vgg_gap*, resnet* and inception_v3).
        keep_head: use the classifier as it is, head included (no fine-tuning): `pretrained`
            must be a weights file that fits the whole model. `torchvision:<name>` and
            `timm:<name>` then keep their own head (any head; see `wsol.models.imagenet`);
            the project's archs load their `fc` too.
        pretrained_classifier: with `pretrained`, also load the pretrained classifier (its shape
            must fit: ImageNet's 1000 classes), as wsolevaluation does for ResNet50 on ILSVRC; it is
            still trained (fine-tuned), unlike `keep_head`.
        architecture_type: "cam" (the GAP classifier) or a registered type
            (`list_architecture_types()`: a method's heads on the backbone `arch`, e.g. "acol",
            "spg"); their options (e.g. `acol_threshold`) come in `kwargs`.
        **kwargs: architecture options, e.g. `width`, `large_feature_map`, `mean`, `std`,
            `adl_drop_rate`, `adl_gamma`, `adl_positions`; timm models pass the rest to
            `timm.create_model`.

    Returns:
        The model, with `arch`, `num_classes` and `build_args` set.
    """
    from .pretrained import load_pretrained

    for key in ("mean", "std"):
        if key in kwargs:
            kwargs[key] = tuple(float(v) for v in kwargs[key])
    if arch.startswith(TORCHVISION_PREFIX) or (keep_head and arch.startswith(TIMM_PREFIX)):
        if adl:
            raise ValueError(f"{arch}: ADL insertion points are defined only for vgg_gap*, resnet* and inception_v3")
        from .imagenet import build_imagenet
        model = build_imagenet(arch, num_classes, pretrained, **kwargs)
        pretrained = False  # loaded with the head
    elif architecture_type != "cam":
        if architecture_type not in _ARCH_TYPES:
            raise ValueError(f"unknown architecture_type {architecture_type!r}; valid: "
                             f"{', '.join(list_architecture_types())}")
        if adl:
            raise ValueError(f"architecture_type {architecture_type!r} has no ADL layers (adl=True is 'cam' only)")
        model = _ARCH_TYPES[architecture_type](arch, num_classes, **kwargs)
    elif arch.startswith(TIMM_PREFIX):
        from .timm_models import build_timm
        model = build_timm(arch[len(TIMM_PREFIX):], num_classes, pretrained, adl, **kwargs)
    elif arch in _MODELS:
        model = _MODELS[arch](num_classes, adl=adl, **kwargs)
    else:
        raise ValueError(f"unknown arch {arch!r}; valid archs: {', '.join(list_models())}, "
                         f"'{TIMM_PREFIX}<name>' for a timm model or '{TORCHVISION_PREFIX}<name>' for a "
                         "torchvision classifier")
    model.arch = arch
    model.build_args = dict(arch=arch, num_classes=num_classes, adl=adl, **kwargs)
    if architecture_type != "cam":
        model.build_args["architecture_type"] = architecture_type
    if keep_head and model.build_args["arch"] in _MODELS and architecture_type == "cam":
        if not pretrained or pretrained is True:
            raise ValueError(f"keep_head=True needs a weights file that holds {arch}'s whole network, "
                             f"head included (got pretrained={pretrained!r})")
        from .imagenet import load_state_dict_strict
        load_state_dict_strict(model, Path(pretrained), arch)
    elif pretrained and not arch.startswith(TIMM_PREFIX):
        load_pretrained(model, pretrained, keep_classifier=pretrained_classifier)
    elif pretrained_classifier:
        raise ValueError(f"pretrained_classifier=True needs pretrained weights of the project's archs "
                         f"(got arch {arch!r}, pretrained={pretrained!r})")
    return model
