"""Small-image classifiers for attributional robustness: Wide ResNet and Chen et al.'s ResNet.

`WideResNet` is the pre-activation WRN-d-k of Zagoruyko & Komodakis (BMVC 2016), the
CIFAR-10 backbone of ART (REFERENCE §3): stem conv3x3(16), three stages of n = (d-4)/6
basic blocks at widths 16k/32k/64k and strides 1/2/2, final BN-ReLU, GAP, fc. Inputs
are normalized with the CIFAR-10 mean/std by default.

`ChenResNet` is the small ResNet of Chen et al. (NeurIPS 2019) for GTSRB (2 units per
stage) and Flower-17 (1 unit): per-image standardisation, conv3x3(16), stages of
16/32/64 channels, leaky-ReLU 0.1, GAP, fc (REFERENCE §2, IG-NORM).

Both use activation *modules* (nn.ReLU / nn.LeakyReLU), never functional calls, so
`smooth_activations` reaches every one. Neither supports ADL.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import WSOLModel
from .registry import register_model

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def _no_adl(arch: str, adl: bool) -> None:
    if adl:
        raise ValueError(f"arch {arch!r} does not support ADL (adl=True); ADL layers exist for "
                         "the vgg_gap*, resnet* and inception_v3 archs only")


# -------------------------------------------------------------------------- Wide ResNet

class WideBasic(nn.Module):
    """Pre-activation block BN-ReLU-conv3x3-BN-ReLU-dropout-conv3x3 (+ shortcut).

    (B,Cin,H,W) -> (B,Cout,H/s,W/s). When the shape changes, the shortcut is a 1x1 conv
    applied to the *activated* input (relu(bn1(x))), as in the official WRN code.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, drop_rate: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu2 = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(drop_rate)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1, bias=False)
        self.shortcut = (nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)
                         if stride != 1 or in_ch != out_ch else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self.relu1(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(o)
        o = self.conv1(o)
        o = self.conv2(self.dropout(self.relu2(self.bn2(o))))
        return o + skip


class WideResNet(WSOLModel):
    """WRN-depth-widen. Images (B,3,H,W) in [0,1] -> logits (B,C); features (B,64k,H/4,W/4)."""

    def __init__(self, num_classes: int, depth: int = 28, widen: int = 10, drop_rate: float = 0.1,
                 mean: Sequence[float] = CIFAR10_MEAN, std: Sequence[float] = CIFAR10_STD) -> None:
        super().__init__(num_classes, mean=mean, std=std)
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"WideResNet depth must be 6n + 4 with n >= 1, got {depth}")
        if widen < 1:
            raise ValueError(f"WideResNet widen must be >= 1, got {widen}")
        n = (depth - 4) // 6
        widths = (16 * widen, 32 * widen, 64 * widen)
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        in_ch = 16
        for i, (width, stride) in enumerate(zip(widths, (1, 2, 2)), start=1):
            blocks = [WideBasic(in_ch if j == 0 else width, width, stride if j == 0 else 1, drop_rate)
                      for j in range(n)]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
            in_ch = width
        self.bn = nn.BatchNorm2d(in_ch)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(in_ch, num_classes)
        _init_wrn(self)

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized images (B,3,H,W) -> relu(bn(layer3)) map (B,64k,H/4,W/4)."""
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        return self.relu(self.bn(x))


def _init_wrn(model: nn.Module) -> None:
    """Kaiming normal (fan_out, relu) convs; BN weight 1, bias 0; fc bias 0 (weight: PyTorch default)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)


@register_model
def wrn_28_10(num_classes: int, adl: bool = False, **kwargs: Any) -> WideResNet:
    """WRN-28-10 (ART's CIFAR-10 net, ~36.5M parameters at C=10); dropout 0.1."""
    _no_adl("wrn_28_10", adl)
    return WideResNet(num_classes, depth=28, widen=10, **kwargs)


@register_model
def wrn_16_2(num_classes: int, adl: bool = False, **kwargs: Any) -> WideResNet:
    """WRN-16-2 (CPU-sized, ~0.69M parameters at C=10)."""
    _no_adl("wrn_16_2", adl)
    return WideResNet(num_classes, depth=16, widen=2, **kwargs)


@register_model
def wrn_10_1(num_classes: int, adl: bool = False, **kwargs: Any) -> WideResNet:
    """WRN-10-1 (one block per stage, widths 16/32/64; for tests)."""
    _no_adl("wrn_10_1", adl)
    return WideResNet(num_classes, depth=10, widen=1, **kwargs)


# ------------------------------------------------------------------- Chen et al.'s ResNet

def per_image_standardization(x: torch.Tensor) -> torch.Tensor:
    """tf.image.per_image_standardization: (B,C,H,W) -> (x - mean) / max(std, 1/sqrt(C*H*W)).

    Mean and (biased) std are taken per image over all C*H*W values.
    """
    n = x[0].numel()
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    var = (x - mean).pow(2).mean(dim=(1, 2, 3), keepdim=True)
    # max(sqrt(var), 1/sqrt(n)) == sqrt(max(var, 1/n)), with a finite gradient at var = 0
    return (x - mean) / var.clamp(min=1.0 / n).sqrt()


class ChenUnit(nn.Module):
    """Chen et al.'s residual unit (no BN): (B,Cin,H,W) -> (B,Cout,H/s,W/s).

    act-conv3x3(s)-act-conv3x3 plus shortcut; the shortcut takes the activated input
    when `activate_before_residual` (first stage) and the raw input otherwise. When
    the channels change it is avg_pool(s) then zero channel padding (no parameters).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, activate_before_residual: bool,
                 slope: float) -> None:
        super().__init__()
        self.activate_before_residual = activate_before_residual
        self.in_ch, self.out_ch, self.stride = in_ch, out_ch, stride
        self.act1 = nn.LeakyReLU(slope)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.act2 = nn.LeakyReLU(slope)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self.act1(x)
        skip = o if self.activate_before_residual else x
        o = self.conv2(self.act2(self.conv1(o)))
        if self.in_ch != self.out_ch:
            skip = F.avg_pool2d(skip, self.stride, self.stride)
            pad = (self.out_ch - self.in_ch) // 2
            skip = F.pad(skip, (0, 0, 0, 0, pad, self.out_ch - self.in_ch - pad))
        return o + skip


class ChenResNet(WSOLModel):
    """Chen et al.'s ResNet. Images (B,3,H,W) in [0,1] -> logits (B,C); features (B,64,H/4,W/4).

    From Chen's code (jfc43/robust-attribution-regularization, GTSRB/ and Flower/model.py):
    filters 16 (stem) / 16 / 32 / 64, strides 1/2/2, `units` per stage, leaky-ReLU 0.1,
    **no batch norm**, activation shared with the shortcut in the first unit only,
    parameter-free shortcut (avg-pool + zero channel padding), final leaky-ReLU, GAP,
    fc; per-image standardisation of the input (this model's `normalize`).

    Inferred / differing from the TensorFlow code:
    - Chen's images are on the 0-255 scale; ours are in [0,1] and `normalize` multiplies
      by `input_scale` (255) first. Standardisation is scale-invariant except for its
      1/sqrt(N) floor, which this keeps on the 0-255 scale as in Chen's code.
    - Convs use symmetric padding 1; TF 'SAME' pads stride-2 convs bottom/right only.
    - Init follows the TF code: conv N(0, 2/(9*Cout)) (Kaiming fan_out), fc weight
      U(+-sqrt(3/Cin)) (uniform_unit_scaling), fc bias 0.
    The `mean`/`std` buffers of WSOLModel are unused (set to 0/1).
    """

    def __init__(self, num_classes: int, units: int = 2, slope: float = 0.1,
                 input_scale: float = 255.0) -> None:
        super().__init__(num_classes, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
        if units < 1:
            raise ValueError(f"ChenResNet units must be >= 1, got {units}")
        self.input_scale = float(input_scale)
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        in_ch = 16
        for i, (width, stride) in enumerate(zip((16, 32, 64), (1, 2, 2)), start=1):
            blocks = [ChenUnit(in_ch if j == 0 else width, width, stride if j == 0 else 1,
                               activate_before_residual=(i == 1 and j == 0), slope=slope)
                      for j in range(units)]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
            in_ch = width
        self.act = nn.LeakyReLU(slope)
        self.fc = nn.Linear(in_ch, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        bound = math.sqrt(3.0 / in_ch)
        nn.init.uniform_(self.fc.weight, -bound, bound)
        nn.init.zeros_(self.fc.bias)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B,3,H,W) in [0,1] -> per-image standardised (x * input_scale), same shape."""
        return per_image_standardization(x * self.input_scale)

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised images (B,3,H,W) -> leaky_relu(layer3) map (B,64,H/4,W/4)."""
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        return self.act(x)


@register_model
def chen_resnet_gtsrb(num_classes: int, adl: bool = False, **kwargs: Any) -> ChenResNet:
    """Chen et al.'s GTSRB ResNet: 2 units per stage (32x32 inputs, 43 classes in the paper)."""
    _no_adl("chen_resnet_gtsrb", adl)
    return ChenResNet(num_classes, units=2, **kwargs)


@register_model
def chen_resnet_flower(num_classes: int, adl: bool = False, **kwargs: Any) -> ChenResNet:
    """Chen et al.'s Flower-17 ResNet: 1 unit per stage (128x128 inputs, 17 classes)."""
    _no_adl("chen_resnet_flower", adl)
    return ChenResNet(num_classes, units=1, **kwargs)
