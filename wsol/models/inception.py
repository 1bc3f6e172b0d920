"""InceptionV3 as wsolevaluation modifies it (`--arch inception_v3`, REFERENCE §12.4).

wsolevaluation runs InceptionV3 at 224 (not 299) with a 14x14 map (28x28 with
`large_feature_map`): torchvision's layers up to Mixed_6e with a padded first conv, ceil-mode
pools, an extra pool after Mixed_5d, a stride-1 Mixed_6a and no Mixed_7* / AuxLogits / fc
([W] inception.py:134-211). Module names equal torchvision's, so `Inception_V3_Weights`
(the port of Google's checkpoint) loads by name.

Reusable trunk (ACoL's and SPG's Inception models build on it)::

    trunk = make_inception_trunk(large_feature_map)   # OrderedDict[str, nn.Module], keys TRUNK_NAMES
    # "Conv2d_1a_3x3" .. "Mixed_5d"   stem + Mixed_5b-5d: (B,288,28,28) at 224 (SPG's B1 input
    #                                 comes after the extra pool)
    # "maxpool_5d"                    the extra MaxPool(3, s2, p0, ceil); nn.Identity if large
    # "Mixed_6a" .. "Mixed_6d"        (B,768,14,14) (SPG's B2 branch taps the Mixed_6d output)
    # "Mixed_6e"                      (B,768,14,14): ACoL's F, SPG's classifier-trunk input

Register the modules on the model under these same names (``for n, m in trunk.items():
self.add_module(n, m)``) before the new heads, and run them in order: state_dict keys then equal
torchvision's and wsolevaluation's (`Mixed_6e.branch7x7_1.conv.weight`), so
`remap_inception_pretrained` (as the model's `remap_pretrained`) and `is_inception_pretrained_name`
(wsolevaluation's lr rule) apply unchanged, and `wsoleval_initialize(model)` then reproduces the
reference's `initialize_weights(self.modules(), 'xavier')` (bit-equal under one torch seed when
the modules are created in the reference's order). The pools are parameter-free modules named
`maxpool1`, `maxpool2` (torchvision's names) and `maxpool_5d`.

The CAM model (`inception_v3`) = trunk -> dropout 0.5 -> `SPG_A3_1b` Conv3x3(768->1024, p1) + ReLU
-> dropout -> `SPG_A3_2b` Conv3x3(1024->1024, p1) + ReLU -> dropout -> `SPG_A4` Conv1x1(1024->C)
-> GAP ([W] InceptionCam). A 1x1 conv commutes with GAP, so `SPG_A4` is held as
``fc = nn.Linear(1024, C)`` on the GAP of the last (dropped-out) ReLU map: logits are the same,
and the CAM ``mean_k w[c,k] F_k`` is wsolevaluation's ``SPG_A4(F)[c]`` up to the affine map
``x -> 1024 x + b_c``, which min-max normalisation removes.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import inception as tv_inception

from .adl import ADL, check_positions
from .base import WSOLModel
from .registry import register_model

# Substrings of the parameters wsolevaluation trains at lr x 1 (pretrained) for inception_v3:
# every other parameter trains at lr x lr_classifier_ratio ([W] main.py:72-77, 130-162).
INCEPTION_PRETRAINED_KEYWORDS = ("Mixed", "Conv2d_1", "Conv2d_2", "Conv2d_3", "Conv2d_4")
# Keys of torchvision's InceptionV3 checkpoint that the WSOL models do not have ([W] inception.py:490-503;
# its `fc.*` is skipped by `load_pretrained` as every arch's classifier).
_DROPPED_PRETRAINED = ("Mixed_7", "AuxLogits")


def is_inception_pretrained_name(name: str) -> bool:
    """wsolevaluation's rule: a parameter whose name contains `Mixed` or `Conv2d_1`..`Conv2d_4`
    is pretrained (lr x 1); any other is new (lr x 10)."""
    return any(keyword in name for keyword in INCEPTION_PRETRAINED_KEYWORDS)


class InceptionBStride1(tv_inception.InceptionB):
    """torchvision's InceptionB (`Mixed_6a`) with stride 1: `branch3x3` and `branch3x3dbl_3` are
    Conv3x3 stride 1 padding 1 and the pool branch is MaxPool(3, s1, p1), so the spatial size is
    kept ([W] inception.py:69-92 with `InceptionB(288, kernel_size=3, stride=1, padding=1)`).
    (B,Cin,h,w) -> (B,384+96+Cin,h,w). Parameter names and shapes are torchvision's; the convs
    are changed in place so construction draws the same random numbers as wsolevaluation's."""

    def __init__(self, in_channels: int) -> None:
        super().__init__(in_channels)
        for block in (self.branch3x3, self.branch3x3dbl_3):
            block.conv.stride = (1, 1)
            block.conv.padding = (1, 1)

    def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        branch3x3 = self.branch3x3(x)
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return [branch3x3, branch3x3dbl, branch_pool]


def make_inception_trunk(large_feature_map: bool = False) -> OrderedDict[str, nn.Module]:
    """wsolevaluation's InceptionV3 trunk, Conv2d_1a_3x3 .. Mixed_6e, as named modules in order.

    Images (B,3,224,224), normalized -> Mixed_6e output (B,768,14,14); (B,768,28,28) with
    `large_feature_map` (the extra pool after Mixed_5d becomes an Identity). Sizes at 224:
    Conv2d_1a 112, Conv2d_2a/2b 110, maxpool1 56, Conv2d_3b 56, Conv2d_4a 54, maxpool2 28,
    Mixed_5b/5c/5d 28 (256/288/288 ch), maxpool_5d 14, Mixed_6a..6e 14 (768 ch).
    Differences from torchvision (REFERENCE §12.4): Conv2d_1a padding 1; maxpool1/2 are
    MaxPool(3, s2, p1, ceil_mode=True); `maxpool_5d` = MaxPool(3, s2, p0, ceil_mode=True);
    Mixed_6a has stride 1 (`InceptionBStride1`). Blocks are torchvision's `BasicConv2d`,
    `InceptionA`, `InceptionC` with its default init (the models re-initialise).
    """
    conv = tv_inception.BasicConv2d
    return OrderedDict([
        ("Conv2d_1a_3x3", conv(3, 32, kernel_size=3, stride=2, padding=1)),
        ("Conv2d_2a_3x3", conv(32, 32, kernel_size=3, stride=1, padding=0)),
        ("Conv2d_2b_3x3", conv(32, 64, kernel_size=3, stride=1, padding=1)),
        ("maxpool1", nn.MaxPool2d(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
        ("Conv2d_3b_1x1", conv(64, 80, kernel_size=1, stride=1, padding=0)),
        ("Conv2d_4a_3x3", conv(80, 192, kernel_size=3, stride=1, padding=0)),
        ("maxpool2", nn.MaxPool2d(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
        ("Mixed_5b", tv_inception.InceptionA(192, pool_features=32)),
        ("Mixed_5c", tv_inception.InceptionA(256, pool_features=64)),
        ("Mixed_5d", tv_inception.InceptionA(288, pool_features=64)),
        ("maxpool_5d", nn.Identity() if large_feature_map
         else nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)),
        ("Mixed_6a", InceptionBStride1(288)),
        ("Mixed_6b", tv_inception.InceptionC(768, channels_7x7=128)),
        ("Mixed_6c", tv_inception.InceptionC(768, channels_7x7=160)),
        ("Mixed_6d", tv_inception.InceptionC(768, channels_7x7=160)),
        ("Mixed_6e", tv_inception.InceptionC(768, channels_7x7=192)),
    ])


# The keys of `make_inception_trunk()`, in order.
TRUNK_NAMES = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
               "Conv2d_4a_3x3", "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "maxpool_5d",
               "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e")


def remap_inception_pretrained(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision InceptionV3 checkpoint -> the trunk's keys: names are already equal, so this only
    drops `Mixed_7*` and `AuxLogits*` as wsolevaluation does (`remove_layer`, substring match,
    [W] inception.py:497-499), which keeps `load_pretrained`'s log free of unused keys. The file's
    `fc.*` (1000x2048) stays: `load_pretrained` skips it as every classifier (wsolevaluation drops
    it too), and `pretrained_classifier=True` then reports its shape against ours (Cx1024)."""
    return {k: v for k, v in state_dict.items() if not any(d in k for d in _DROPPED_PRETRAINED)}


def wsoleval_initialize(model: nn.Module, conv: str = "xavier", linear: str | None = None) -> None:
    """wsolevaluation's `initialize_weights(modules, init_mode)` ([W] util.py:44-61) over `model`:
    conv weights Xavier-uniform (`conv="xavier"`) or He-normal fan_out (`"he"`), biases 0; BN
    weight 1 / bias 0; `Linear` N(0, 0.01) (the reference's rule), or with `linear="xavier"` the
    conv's Xavier-uniform, for a `Linear` that stands for a 1x1 conv (`fc` = SPG_A4); bias 0.
    The *Acol classes apply it to the whole model, trunk included; InceptionV3 and SPG too."""
    if conv not in ("xavier", "he"):
        raise ValueError(f"conv init must be 'xavier' or 'he', got {conv!r}")
    linear = linear or ("xavier" if conv == "xavier" else "normal")
    for m in model.modules():
        if isinstance(m, nn.Conv2d) or (isinstance(m, nn.Linear) and linear == "xavier"):
            if conv == "he" and isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class WSOLInceptionV3(WSOLModel):
    """wsolevaluation's InceptionCam / InceptionAdl. Images (B,3,H,W) in [0,1] -> logits (B,C);
    features (B,1024,h,w) with h = 14 at 224 (28 with `large_feature_map`).

    `extract` runs the trunk, then dropout -> SPG_A3_1b -> dropout -> SPG_A3_2b -> dropout (train
    mode only; the same three `F.dropout(x, 0.5)` draws in the same order as [W] inception.py:
    186-191, so train-mode outputs match under one torch seed). `fc` is wsolevaluation's 1x1
    `SPG_A4` applied after GAP. With `adl=True` (InceptionAdl, [W] inception.py:406-485) there
    is no dropout and ADL sits after Mixed_5d (before the extra pool), after Mixed_6e and after
    SPG_A3_2b. Parameter names are wsolevaluation's except `fc` (its `SPG_A4`, weight reshaped
    (C,1024,1,1) -> (C,1024)). All convs and `fc` start Xavier-uniform, BN at 1 / 0, as the
    reference's `initialize_weights(self.modules(), 'xavier')`; pretrained weights then
    overwrite the trunk.

    Args:
        num_classes: C.
        large_feature_map: drop the extra pool after Mixed_5d (28x28 map at 224).
        adl: InceptionAdl instead of InceptionCam.
        adl_drop_rate, adl_gamma: ADL's drop rate and threshold; `adl_gamma` None is 0.9,
            the value wsolevaluation passes (config `adl_threshold`, [W] config.py:225-229).
        adl_positions: "wsoleval" only (the TensorFlow ADL code has no InceptionV3).
        mean, std: input normalization (ImageNet's by default, as wsolevaluation).
    """

    # wsolevaluation's x10 group: every parameter whose name has none of INCEPTION_PRETRAINED_KEYWORDS.
    new_layer_prefixes = ("SPG_A3_1b", "SPG_A3_2b", "fc")

    def __init__(self, num_classes: int, large_feature_map: bool = False, adl: bool = False,
                 adl_drop_rate: float = 0.75, adl_gamma: float | None = None,
                 adl_positions: str = "wsoleval", **norm: Any) -> None:
        super().__init__(num_classes, **norm)
        self.large_feature_map = bool(large_feature_map)
        self.adl = bool(adl)
        steps = list(TRUNK_NAMES)
        for name, module in make_inception_trunk(self.large_feature_map).items():
            self.add_module(name, module)
        self.SPG_A3_1b = nn.Sequential(nn.Conv2d(768, 1024, kernel_size=3, padding=1), nn.ReLU(inplace=True))
        self.SPG_A3_2b = nn.Sequential(nn.Conv2d(1024, 1024, kernel_size=3, padding=1), nn.ReLU(inplace=True))
        self.fc = nn.Linear(1024, num_classes)
        if self.adl:
            if check_positions(adl_positions) != "wsoleval":
                raise ValueError(f"adl_positions for inception_v3 must be 'wsoleval' (ADL after Mixed_5d, "
                                 f"Mixed_6e and SPG_A3_2b, as wsolevaluation); got {adl_positions!r}")
            gamma = 0.9 if adl_gamma is None else adl_gamma
            self.ADL_5d = ADL(adl_drop_rate, gamma)
            self.ADL_6e = ADL(adl_drop_rate, gamma)
            self.ADL_A3_2b = ADL(adl_drop_rate, gamma)
            steps.insert(steps.index("Mixed_5d") + 1, "ADL_5d")
            steps += ["ADL_6e", "SPG_A3_1b", "SPG_A3_2b", "ADL_A3_2b"]
        else:
            self.dropout = nn.Dropout(0.5)
            steps += ["dropout", "SPG_A3_1b", "dropout", "SPG_A3_2b", "dropout"]
        self._steps = tuple(steps)
        wsoleval_initialize(self)

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized images (B,3,H,W) -> the (dropped-out / ADL'd) relu(SPG_A3_2b) map (B,1024,h,w)."""
        for name in self._steps:
            x = getattr(self, name)(x)
        return x

    def remap_pretrained(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """torchvision InceptionV3 keys -> ours: same names; Mixed_7* and AuxLogits* dropped."""
        return remap_inception_pretrained(state_dict)


@register_model
def inception_v3(num_classes: int, adl: bool = False, **kwargs: Any) -> WSOLInceptionV3:
    """wsolevaluation's InceptionV3 at 224 (14x14x1024 map; ImageNet weights:
    torchvision Inception_V3_Weights.IMAGENET1K_V1, no transform_input)."""
    return WSOLInceptionV3(num_classes, adl=adl, **kwargs)
