"""torchvision ResNets for WSOL: layer4 stride 1 (14x14 map at 224), GAP, fresh fc.

Module names equal torchvision's (`conv1`, `layer1`..`layer4`, `fc`), so ImageNet
weights load without renaming. ADL modules have no parameters; each sits inside its
stage right after the block it follows, named `adl<block>` (e.g. `layer3.adl0`), so
the stages stay plain nn.Sequential and state_dict keys do not change.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision.models import resnet as tv_resnet

from .adl import ADL, check_positions
from .base import WSOLModel
from .registry import register_model


class WSOLResNet(WSOLModel):
    """ResNet with stride-1 layer4. Images (B,3,H,W) -> logits (B,C); features (B,Cf,H/16,W/16).

    With `large_feature_map=True` layer3 has stride 1 too (features at H/8, as wsolevaluation).
    """

    new_layer_prefixes = ("layer4", "fc")

    def __init__(self, net: tv_resnet.ResNet, num_classes: int, large_feature_map: bool = False,
                 adl: bool = False, adl_drop_rate: float = 0.75, adl_gamma: float | None = None,
                 adl_positions: str = "wsoleval", **norm: Any) -> None:
        super().__init__(num_classes, **norm)
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(net, name))
        self.fc = nn.Linear(net.fc.in_features, num_classes)
        _set_stride_one(self.layer4[0])
        if large_feature_map:
            _set_stride_one(self.layer3[0])
        if adl:
            check_positions(adl_positions)  # both conventions give the same points on ResNets
            gamma = 0.9 if adl_gamma is None else adl_gamma
            for stage, index in _adl_points(len(self.layer4)):
                _insert_after(getattr(self, stage), index, ADL(adl_drop_rate, gamma))

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized images (B,3,H,W) -> layer4 map after its final ReLU (B,Cf,H/16,W/16)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def _adl_points(layer4_blocks: int) -> list[tuple[str, int]]:
    """(stage, block index) followed by ADL: layer3[0], layer4[0] and the last block of
    layer4 (= layer4[2] on ResNet50); duplicates collapse on 1-block stages."""
    points = [("layer3", 0), ("layer4", 0), ("layer4", layer4_blocks - 1)]
    return list(dict.fromkeys(points))


def _insert_after(stage: nn.Sequential, index: int, module: nn.Module) -> None:
    """Insert `module` as `adl<index>` right after block `str(index)` of `stage`."""
    names = list(stage._modules)
    tail = [(name, stage._modules.pop(name)) for name in names[names.index(str(index)) + 1:]]
    stage.add_module(f"adl{index}", module)
    for name, block in tail:
        stage.add_module(name, block)


def _set_stride_one(block: nn.Module) -> None:
    """Make a torchvision BasicBlock/Bottleneck stride 1 (strided conv and downsample conv)."""
    for conv in (block.conv1, block.conv2):
        conv.stride = (1, 1)
    if block.downsample is not None:
        block.downsample[0].stride = (1, 1)
    block.stride = 1


@register_model
def resnet50(num_classes: int, adl: bool = False, **kwargs: Any) -> WSOLResNet:
    """ResNet50 (Bottleneck, ImageNet weights: ResNet50_Weights.IMAGENET1K_V1)."""
    return WSOLResNet(tv_resnet.resnet50(weights=None), num_classes, adl=adl, **kwargs)


@register_model
def resnet18(num_classes: int, adl: bool = False, **kwargs: Any) -> WSOLResNet:
    """ResNet18 (BasicBlock, ImageNet weights: ResNet18_Weights.IMAGENET1K_V1)."""
    return WSOLResNet(tv_resnet.resnet18(weights=None), num_classes, adl=adl, **kwargs)


@register_model
def resnet_tiny(num_classes: int, adl: bool = False, **kwargs: Any) -> WSOLResNet:
    """ResNet(BasicBlock, [1, 1, 1, 1]) for CPU tests; no pretrained weights."""
    net = tv_resnet.ResNet(tv_resnet.BasicBlock, [1, 1, 1, 1])
    return WSOLResNet(net, num_classes, adl=adl, **kwargs)
