"""VGG16-GAP for WSOL: conv1_1..conv5_3 with pool5 removed, conv6 (1024) + ReLU, GAP, fc.

At 224x224 the feature map is 14x14 (stride 16). Layers are named after the
paper (`body.conv4_3`, `body.pool3`, ...); `TORCHVISION_FEATURE_NAMES` maps
torchvision's `vgg16.features.N` indices onto them for ImageNet weights.

`batch_norm=True` puts a BatchNorm after every body conv (`body.bnX_Y`, torchvision's
vgg16_bn layout, `TORCHVISION_BN_FEATURE_NAMES`). The paper's VGG-GAP has no BN; the BN
variants (`vgg_gap_bn`, `vgg_gap_bn_small`) exist because the plain net does not train from
scratch in CPU minutes (measured: loss at ln 10 after 3 epochs at lr 0.002-0.1), which the
CPU protocol of benchmarks/wsol_table.py needs.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from .adl import ADL, check_positions
from .base import WSOLModel
from .registry import register_model

# (block, number of convs, output channels) for VGG16's five conv blocks.
_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))

# torchvision vgg16.features index -> our layer name (pool5 = index 30 is dropped).
TORCHVISION_FEATURE_NAMES = {
    0: "conv1_1", 2: "conv1_2", 5: "conv2_1", 7: "conv2_2",
    10: "conv3_1", 12: "conv3_2", 14: "conv3_3", 17: "conv4_1", 19: "conv4_2",
    21: "conv4_3", 24: "conv5_1", 26: "conv5_2", 28: "conv5_3",
}


def _bn_feature_names() -> dict[int, str]:
    """torchvision vgg16_bn.features index -> our name (conv, bn, relu per conv; a pool per block)."""
    names, i = {}, 0
    for block, n_convs, _ in _BLOCKS:
        for j in range(1, n_convs + 1):
            names[i], names[i + 1] = f"conv{block}_{j}", f"bn{block}_{j}"
            i += 3
        i += 1
    return names


TORCHVISION_BN_FEATURE_NAMES = _bn_feature_names()

# Layer after which an ADL module is inserted (§2 of REFERENCE.md).
_ADL_AFTER = {
    "wsoleval": ("pool3", "relu4_3", "relu5_3"),   # conv4_3 ADL sits before pool4
    "tf": ("pool3", "pool4", "relu5_3"),
}


class VGGGAP(WSOLModel):
    """VGG16-GAP. Images (B,3,H,W) in [0,1] -> logits (B,C); features (B,1024*width,H/16,W/16)."""

    new_layer_prefixes = ("conv6", "fc")

    def __init__(self, num_classes: int, width: float = 1.0, adl: bool = False,
                 adl_drop_rate: float = 0.75, adl_gamma: float | None = None,
                 adl_positions: str = "wsoleval", batch_norm: bool = False, **norm: Any) -> None:
        super().__init__(num_classes, **norm)
        if width <= 0:
            raise ValueError(f"vgg_gap width must be > 0, got {width}")
        adl_after = _ADL_AFTER[check_positions(adl_positions)] if adl else ()
        gamma = 0.8 if adl_gamma is None else adl_gamma
        self.batch_norm = bool(batch_norm)
        self.body = nn.Sequential(_make_body(width, adl_after, adl_drop_rate, gamma, self.batch_norm))
        top = _scale(512, width)
        self.conv6 = nn.Conv2d(top, _scale(1024, width), kernel_size=3, padding=1)
        self.relu6 = nn.ReLU(inplace=True)
        self.fc = nn.Linear(_scale(1024, width), num_classes)
        _init_weights(self)

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized images (B,3,H,W) -> relu(conv6) map (B,1024*width,H/16,W/16)."""
        return self.relu6(self.conv6(self.body(x)))

    def remap_pretrained(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """torchvision vgg16(_bn) keys (`features.N.weight`) -> ours (`body.convX_Y.weight`)."""
        names = TORCHVISION_BN_FEATURE_NAMES if self.batch_norm else TORCHVISION_FEATURE_NAMES
        out = {}
        for key, value in state_dict.items():
            parts = key.split(".")
            if parts[0] == "features" and len(parts) == 3 and parts[1].isdigit():
                name = names.get(int(parts[1]))
                key = f"body.{name}.{parts[2]}" if name else key
            out[key] = value
        return out


def _scale(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


def _make_body(width: float, adl_after: tuple[str, ...], drop_rate: float,
               gamma: float, batch_norm: bool = False) -> OrderedDict[str, nn.Module]:
    """conv1_1 .. relu5_3 with pools 1-4, the requested ADL modules and BN if asked, in order."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    in_ch = 3

    def add(name: str, module: nn.Module) -> None:
        layers[name] = module
        if name in adl_after:
            layers[f"adl_{name.replace('relu', 'conv')}"] = ADL(drop_rate, gamma)

    for block, n_convs, channels in _BLOCKS:
        out_ch = _scale(channels, width)
        for i in range(1, n_convs + 1):
            add(f"conv{block}_{i}", nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1))
            if batch_norm:
                add(f"bn{block}_{i}", nn.BatchNorm2d(out_ch))
            add(f"relu{block}_{i}", nn.ReLU(inplace=True))
            in_ch = out_ch
        if block < 5:
            add(f"pool{block}", nn.MaxPool2d(kernel_size=2, stride=2))
    return layers


def _init_weights(model: nn.Module) -> None:
    """He (fan_out) for convs, N(0, 0.01) for linear layers, zero biases."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
            nn.init.zeros_(m.bias)


@register_model
def vgg_gap(num_classes: int, adl: bool = False, **kwargs: Any) -> VGGGAP:
    """VGG16-GAP (ImageNet weights: torchvision VGG16_Weights.IMAGENET1K_V1)."""
    return VGGGAP(num_classes, adl=adl, **kwargs)


@register_model
def vgg_gap_small(num_classes: int, adl: bool = False, **kwargs: Any) -> VGGGAP:
    """VGG16-GAP at width 0.25 (CPU-sized, no pretrained weights)."""
    return VGGGAP(num_classes, width=0.25, adl=adl, **kwargs)


@register_model
def vgg_gap_bn(num_classes: int, adl: bool = False, **kwargs: Any) -> VGGGAP:
    """VGG16-GAP with BN after every body conv (ImageNet weights: torchvision VGG16_BN_Weights)."""
    return VGGGAP(num_classes, adl=adl, batch_norm=True, **kwargs)


@register_model
def vgg_gap_bn_small(num_classes: int, adl: bool = False, **kwargs: Any) -> VGGGAP:
    """vgg_gap_bn at width 0.25 (CPU-sized: the VGG backbone of the CPU WSOL table)."""
    return VGGGAP(num_classes, width=0.25, adl=adl, batch_norm=True, **kwargs)


@register_model
def vgg_gap_tiny(num_classes: int, adl: bool = False, **kwargs: Any) -> VGGGAP:
    """VGG16-GAP at width 0.0625 (CPU tests, no pretrained weights)."""
    return VGGGAP(num_classes, width=0.0625, adl=adl, **kwargs)
