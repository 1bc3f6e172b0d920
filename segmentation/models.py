"""Segmentation networks for the second stage: torchvision DeepLabV3 / FCN, and a CPU-sized
DeepLabV3 whose backbone is any wsol classifier trunk (optionally the WSOL checkpoint's own).

Every segmenter takes images in [0, 1] (normalization is its first step, as for the wsol
models) and returns logits (B, K, H, W) at the input size. Nothing is downloaded: ImageNet
backbone weights load from a file or the local torch hub cache (``backbone_weights``).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn
from torchvision.models import segmentation as tvseg
from torchvision.models.segmentation.deeplabv3 import DeepLabHead

from wsol.engine.checkpoint import load_checkpoint, save_checkpoint
from wsol.models import build_model
from wsol.models.pretrained import read_state_dict, resolve_source

SEGMENTERS = ("deeplabv3_wsol", "deeplabv3_resnet50", "fcn_resnet50", "deeplabv3_mobilenet_v3_large")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision segmentation arch -> the torchvision classifier whose ImageNet weights its backbone takes
_TV_BACKBONE = {"deeplabv3_resnet50": "resnet50", "fcn_resnet50": "resnet50"}


class _TrunkBackbone(nn.Module):
    """A wsol model's trunk as a torchvision segmentation backbone: normalized x -> {"out": features}."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.trunk = model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.trunk.extract(x)}


class Segmenter(nn.Module):
    """Images (B,3,H,W) in [0,1] -> logits (B,K,H,W); a torchvision segmentation model inside."""

    def __init__(self, net: nn.Module, build_args: dict[str, Any]) -> None:
        super().__init__()
        self.net = net
        self.build_args = build_args
        self.arch, self.num_classes = build_args["arch"], build_args["num_classes"]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)["out"]


def build_segmenter(arch: str = "deeplabv3_wsol", num_classes: int = 2, backbone: str = "resnet_tiny",
                    atrous_rates: tuple[int, ...] = (2, 4, 6), init: str | os.PathLike | None = None,
                    backbone_weights: bool | str | os.PathLike = False, trunk_classes: int = 1,
                    trunk_options: dict[str, Any] | None = None) -> Segmenter:
    """Build a segmenter.

    Args:
        arch: one of SEGMENTERS. "deeplabv3_wsol" = torchvision's DeepLabHead (ASPP with
            ``atrous_rates``, sized for stride-16 maps of small images) on the trunk of the wsol
            arch ``backbone``; the others are torchvision's, built with no weights.
        num_classes: 2 for foreground / background.
        init: deeplabv3_wsol only: a WSOL classifier checkpoint (run folder or file) whose trunk
            starts the backbone (its arch must be ``backbone``).
        backbone_weights: torchvision archs: True (ImageNet weights from the local hub cache) or
            a file for the backbone; deeplabv3_wsol: the same for ``build_model(backbone, ...)``.
        trunk_classes: deeplabv3_wsol: the class count of the trunk's (unused) classifier, kept so
            a saved segmenter rebuilds with the same tensors.
        trunk_options: deeplabv3_wsol: the trunk's other `build_model` options (taken from the
            ``init`` checkpoint: e.g. ``architecture_type="acol"`` with its heads, a width), so a
            saved segmenter rebuilds the same trunk.
    """
    if arch not in SEGMENTERS:
        raise ValueError(f"unknown segmenter {arch!r}; valid: {', '.join(SEGMENTERS)}")
    if num_classes < 2:
        raise ValueError(f"a segmenter needs num_classes >= 2, got {num_classes}")
    args: dict[str, Any] = {"arch": arch, "num_classes": num_classes}
    if arch == "deeplabv3_wsol":
        if init is not None:
            trunk, meta = load_checkpoint(init)
            if meta["arch"] != backbone:
                raise ValueError(f"--init {init} is a {meta['arch']} checkpoint, but the backbone is {backbone!r}")
            trunk_options = {k: v for k, v in meta["build_args"].items() if k not in ("arch", "num_classes")}
        else:
            trunk = build_model(backbone, trunk_classes, pretrained=backbone_weights, **(trunk_options or {}))
        channels = trunk.feature_channels
        net = tvseg.DeepLabV3(_TrunkBackbone(trunk), DeepLabHead(channels, num_classes, tuple(atrous_rates)))
        args.update(backbone=backbone, atrous_rates=[int(r) for r in atrous_rates], trunk_classes=trunk.num_classes)
        if trunk_options:
            args["trunk_options"] = dict(trunk_options)
    else:
        net = getattr(tvseg, arch)(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False)
        if backbone_weights:
            _load_backbone(net.backbone, arch, backbone_weights)
    return Segmenter(net, args)


def _load_backbone(body: nn.Module, arch: str, source: bool | str | os.PathLike) -> None:
    """ImageNet classifier weights (hub cache or file) into a torchvision segmentation backbone."""
    if arch not in _TV_BACKBONE:
        raise ValueError(f"backbone_weights are supported for {', '.join(_TV_BACKBONE)}, not {arch!r}")
    path = resolve_source(_TV_BACKBONE[arch], source)
    own = body.state_dict()
    state = {k: v for k, v in read_state_dict(path).items() if k in own and own[k].shape == v.shape}
    if not state:
        raise ValueError(f"no tensor in {path} fits the {arch} backbone")
    body.load_state_dict(state, strict=False)


def save_segmenter(path: str | os.PathLike, model: Segmenter, image_size: int, extra: dict | None = None):
    return save_checkpoint(path, model, image_size=image_size, extra={"kind": "segmenter", **(extra or {})})


def load_segmenter(path: str | os.PathLike) -> tuple[Segmenter, dict]:
    """(segmenter in eval mode, metadata) from a run folder or checkpoint file."""
    return load_checkpoint(path, builder=build_segmenter, kind="segmenter")
