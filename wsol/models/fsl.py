"""FSL, few-shot fully supervised localization (Choe et al., CVPR 2020): `architecture_type="fsl"`.

    model = build_model("resnet50", 200, architecture_type="fsl")
    logits, fg = model.fsl_outputs(x)          # (B,C) class logits, (B,h,w) foreground logits
    maps, logits = model.class_maps(x, y)      # maps = fg: the same map for every class

The plain CAM classifier of `arch` (any arch `build_model` builds with architecture_type "cam":
vgg_gap*, resnet*, inception_v3, timm:<name>, ...) plus a foreground head: a 1x1 Conv2d
(Cf -> 1) named `foreground` on the trunk's feature map F (B,Cf,h,w), weights N(0, 0.01^2),
bias 0. One trunk forward gives both the class logits (the model's own GAP + classifier head)
and the foreground logits.

The model's class becomes a cached subclass of its own class with `FSLMixin` in front, so the
state dict is the base model's keys plus `foreground.weight` / `foreground.bias`, and the base
class's `remap_pretrained` and `wsol.models.load_pretrained` keep working (the head is a new
layer: `new_layer_prefixes` gains "foreground", so pretrained files need not hold it and it
trains at the new-layer learning rate). `class_maps` makes the foreground map the model's "cam"
saliency (`wsol.attribution.cam`), so every evaluator scores it unchanged; `forward` is still
the class logits (`head(features(x)) == forward(x)`), so gradient maps and Grad-CAM act on the
classifier.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import WSOLModel
from .registry import build_model, register_architecture_type

__all__ = ["FSLMixin", "fsl", "add_foreground_head"]

FOREGROUND = "foreground"        # the head's module name (state-dict prefix)
_CLASSES: dict[type, type] = {}   # base model class -> its FSL subclass


class FSLMixin:
    """Put in front of a `WSOLModel` class: the foreground head's outputs and maps."""

    foreground: nn.Conv2d

    def fsl_outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B,3,H,W) in [0,1] -> (class logits (B,C), foreground logits (B,h,w)), one trunk forward."""
        feats = self.features(x)
        return self.head(feats), self.foreground(feats).squeeze(1)

    def class_maps(self, x: torch.Tensor, target: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(foreground logits (B,h,w), class logits (B,C)): the same foreground map whatever the class
        (`target` (B,) or None is not used). Not detached (the caller picks no_grad)."""
        logits, fg = self.fsl_outputs(x)
        return fg, logits


def _fsl_class(base: type) -> type:
    """The cached subclass ``FSL<Base>(FSLMixin, Base)``, reachable as this module's attribute (pickle)."""
    cls = _CLASSES.get(base)
    if cls is None:
        name = f"FSL{base.__name__}"
        while name in globals():          # two base classes of the same name from different modules
            name += "_"
        cls = type(name, (FSLMixin, base), {"__module__": __name__, "__qualname__": name,
                                             "__doc__": f"{base.__name__} with FSL's foreground head (wsol.models.fsl)."})
        globals()[name] = _CLASSES[base] = cls
    return cls


def add_foreground_head(model: WSOLModel) -> WSOLModel:
    """Turn a built CAM model into its FSL model in place: the class becomes FSL<its class>, a 1x1
    Conv2d(Cf -> 1) `foreground` (N(0, 0.01^2), bias 0, on the model's device and dtype) is added
    and "foreground" joins `new_layer_prefixes`. Returns the model."""
    if isinstance(model, FSLMixin):
        return model
    ref = next(model.parameters(), None)
    head = nn.Conv2d(model.feature_channels, 1, kernel_size=1)
    nn.init.normal_(head.weight, mean=0.0, std=0.01)
    nn.init.zeros_(head.bias)
    if ref is not None:
        head = head.to(device=ref.device, dtype=ref.dtype)
    prefixes = tuple(model.new_layer_prefixes)
    model.__class__ = _fsl_class(type(model))
    model.add_module(FOREGROUND, head)
    model.new_layer_prefixes = (*prefixes, FOREGROUND)
    return model


@register_architecture_type("fsl")
def fsl(arch: str, num_classes: int, **kwargs: Any) -> WSOLModel:
    """FSL's model on backbone `arch`: the plain CAM model of `build_model(arch, C, **kwargs)`
    (no pretrained weights here: `build_model` loads them after, by the base class's key names)
    with the foreground head (`add_foreground_head`)."""
    return add_foreground_head(build_model(arch, num_classes, architecture_type="cam", **kwargs))
