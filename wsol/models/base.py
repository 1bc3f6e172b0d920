"""`WSOLModel`: the interface every architecture in `wsol.models` shares.

A model takes images in [0, 1] and normalizes them itself, so attacks and
attributions work in pixel space. Its head is always global average pooling
followed by one `nn.Linear`, so `logits == classifier(features.mean((2, 3)))`
holds exactly and CAM needs no hooks.

A model whose evaluated map is not that CAM (ACoL's two branches, wsolevaluation's
"return_cam" of a method's own heads) defines ``class_maps(x, target) -> (maps (B,h,w),
logits (B,C))``; `wsol.attribution`'s "cam" then uses it, so every caller gets the method's
map from the one heatmap function. `head(features(x)) == forward(x)` must still hold, for the
gradient maps and Grad-CAM.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WSOLModel(nn.Module):
    """Backbone + GAP + linear classifier, with input normalization built in.

    Subclasses implement `extract(x)` (normalized image -> feature map) and
    expose the final `nn.Linear` as `self.fc` (or override `classifier`).

    Attributes:
        arch: registry name the model was built with (set by `build_model`).
        num_classes: number of output logits C.
        build_args: keyword arguments that rebuild this architecture with
            `build_model(**build_args)` (everything except `pretrained`).
        new_layer_prefixes: parameter-name prefixes of freshly initialised
            layers, which get the larger learning rate.
    """

    new_layer_prefixes: tuple[str, ...] = ("fc",)

    def __init__(self, num_classes: int, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__()
        if len(mean) != len(std):
            raise ValueError(f"mean has {len(mean)} entries but std has {len(std)}")
        self.arch = ""
        self.num_classes = int(num_classes)
        self.build_args: dict[str, Any] = {}
        self.register_buffer("mean", _as_buffer(mean), persistent=False)
        self.register_buffer("std", _as_buffer(std), persistent=False)

    # -- to implement in subclasses ------------------------------------------------
    def extract(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized images (B,3,H,W) -> feature map (B,Cf,h,w) after its final activation."""
        raise NotImplementedError

    # -- shared interface --------------------------------------------------------------
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B,3,H,W) in [0,1] -> (x - mean) / std, same shape."""
        return (x - self.mean) / self.std

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B,3,H,W) in [0,1] -> feature map (B,Cf,h,w) before pooling."""
        return self.extract(self.normalize(x))

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B,3,H,W) in [0,1] -> (logits (B,C), features (B,Cf,h,w)) in one pass."""
        feats = self.features(x)
        return self.head(feats), feats

    def head(self, feats: torch.Tensor) -> torch.Tensor:
        """Feature map (B,Cf,h,w) -> logits (B,C): global average pooling + the classifier."""
        return self.classifier(feats.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B,3,H,W) in [0,1] -> logits (B,C)."""
        return self.forward_with_features(x)[0]

    @property
    def classifier(self) -> nn.Linear:
        """The final linear layer, Cf -> C."""
        return self.fc

    @property
    def feature_channels(self) -> int:
        """Cf, the channels of `features(x)` (what a segmentation head on the trunk takes)."""
        return self.classifier_weight.shape[1]

    @property
    def classifier_weight(self) -> torch.Tensor:
        """Classifier weight (C, Cf): CAM for class c is sum_k w[c,k] * F_k / (h*w)."""
        return self.classifier.weight

    def is_new_parameter(self, name: str) -> bool:
        """Whether parameter `name` (from `named_parameters()`) belongs to a fresh layer."""
        return any(name == p or name.startswith(p + ".") for p in self.new_layer_prefixes)

    def split_parameters(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(pretrained-backbone parameters, freshly initialised parameters)."""
        old, new = [], []
        for name, param in self.named_parameters():
            (new if self.is_new_parameter(name) else old).append(param)
        return old, new

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, num_classes={self.num_classes}"


def _as_buffer(values: Sequence[float]) -> torch.Tensor:
    """Per-channel statistics -> tensor (1,K,1,1) for broadcasting."""
    return torch.as_tensor([float(v) for v in values], dtype=torch.float32).view(1, -1, 1, 1)


def model_device(model: nn.Module) -> torch.device:
    """The device of `model`'s parameters (the CPU for a model without any)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def running_bn_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer of `model` that keeps running statistics."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
