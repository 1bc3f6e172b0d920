"""SPG's models (Zhang et al., ECCV 2018) as wsolevaluation builds them (`architecture_type="spg"`).

    model = build_model("vgg_gap", 200, architecture_type="spg", pretrained=True)
    out = model.spg_outputs(x)        # x (B,3,H,W) in [0,1]
    # out: logits (B,C), feat_map (B,C,h,w), logits_b1 / logits_b2 / logits_c (B,1,h,w), features

A backbone trunk is tapped twice (REFERENCE §12.3.3; [W] vgg.py:124-213, resnet.py:213-330,
inception.py:295-403):

| arch | B1 tap | B2 tap | classifier trunk (`features`) |
|---|---|---|---|
| vgg_gap* | conv4 block (wsolevaluation's `SPG_A_1`) -> MaxPool(3, s2, p1), no pool if large | conv5 block (`SPG_A_2`) | `SPG_A_3`: 2 x (Conv3x3 + ReLU), new |
| resnet* | layer3[0] (`SPG_A1`) | layer3[1:] (`SPG_A2`) | layer4 (stride 1) |
| inception_v3 | Mixed_5d -> the extra pool (none if large) | Mixed_6d | Mixed_6e -> dropout -> SPG_A3_1b -> dropout -> SPG_A3_2b -> dropout |

Heads, with wsolevaluation's names: `SPG_B_1a` / `SPG_B_2a` (Conv3x3 + ReLU on the B1 / B2 tap)
-> `SPG_B_shared` (Conv3x3 + ReLU, Conv1x1 -> 1; one set of weights for both branches) give
`logits_b1`, `logits_b2`; `SPG_C` (Conv3x3 + ReLU, Conv1x1 -> 1) on the classifier-trunk output gives
`logits_c`. The class map `feat_map = SPG_A4(features)` is a 1x1 conv, held as the WSOLModel
classifier ``fc = nn.Linear(Cf, C)`` (weight = SPG_A4's (C,Cf,1,1) weight reshaped): since a 1x1 conv
commutes with global average pooling, ``logits = GAP(feat_map) = fc(GAP(features))`` and
`forward`, `head(features(x))`, Grad-CAM etc. work unchanged.

The test-time CAM of wsolevaluation is the raw `SPG_A4` map of the class (with its bias) --
`class_maps` returns exactly that. The base CAM ``mean_k w[c,k] F_k`` equals ``(raw - b_c) / Cf``, a
positive affine map of it that min-max normalisation removes, but the sum normalisations of
`wsol.attribution.saliency_maps` (normalize="hw" ...) do not; hence `class_maps`.

Layer names reuse the project's backbones, so torchvision weights (`remap_pretrained`) and natural
checkpoints of the same arch load into the pretrained parts: VGG keeps `body.conv1_1` .. `body.conv5_3`
(wsolevaluation's features.* / SPG_A_1 / SPG_A_2), ResNets keep torchvision's `layer3.0` (SPG_A1) and
`layer3.1..` (SPG_A2), Inception keeps torchvision's names.

Head widths. The reference's widths are for the full backbones. On narrower backbones each width is
scaled with the backbone: VGG heads and `SPG_A_3` use the conv5 channel count (512 x width: 512 for
vgg_gap(_bn), 128 for *_small, 32 for vgg_gap_tiny); ResNet B heads use layer3's channels (1024 for
resnet50, 256 for resnet18 / resnet_tiny) and `SPG_C`'s hidden conv layer4's / 4 (512; 128);
InceptionV3 has the reference's (B 512, C 512). BatchNorm is in the body only where the arch has it
(vgg_gap_bn*), never in the SPG heads (the reference has none; vgg_gap_bn's conv6 has none either).

Initialisation: every new SPG layer (heads, `SPG_A_3`, `fc`) is Xavier-uniform with zero bias, as
wsolevaluation's `initialize_weights(..., 'xavier')`; the backbone keeps the init the project's CAM
model of the same arch gives it (VGG: He fan_out; ResNet: torchvision's; InceptionV3: Xavier, as
wsolevaluation), which pretrained weights overwrite.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import WSOLModel
from .registry import build_model, register_architecture_type
from .vgg import VGGGAP

__all__ = ["SPG_ARCHS", "SPGInceptionV3", "SPGModel", "SPGResNet", "SPGVGG", "build_spg"]

VGG_ARCHS = ("vgg_gap", "vgg_gap_small", "vgg_gap_tiny", "vgg_gap_bn", "vgg_gap_bn_small")
RESNET_ARCHS = ("resnet50", "resnet18", "resnet_tiny")
#: the backbones SPG's model is defined for
SPG_ARCHS = VGG_ARCHS + RESNET_ARCHS + ("inception_v3",)
#: the SPG head modules every SPG model has (wsolevaluation's names)
SPG_HEADS = ("SPG_B_1a", "SPG_B_2a", "SPG_B_shared", "SPG_C")


def _conv_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel_size=3, padding=1), nn.ReLU(inplace=True)]


def xavier_(modules) -> None:
    """wsolevaluation's Xavier init on `modules`: Xavier-uniform conv / linear weights (a Linear
    standing for a 1x1 conv has the same fan-in and fan-out), zero biases."""
    for m in modules:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class SPGModel(WSOLModel):
    """Shared part of the SPG models: the heads, `spg_outputs` and `class_maps`.

    Subclasses build the trunk, call `_add_heads`, and implement `_taps(normalized) -> (B1 tap,
    B2 tap, classifier-trunk output)`; `extract` is the last of these.
    """

    def _add_heads(self, num_classes: int, c_b1: int, c_b2: int, c_b: int, c_feat: int, c_c: int) -> None:
        """SPG_B_1a (c_b1 -> c_b), SPG_B_2a (c_b2 -> c_b), SPG_B_shared (c_b -> c_b -> 1),
        SPG_C (c_feat -> c_c -> 1) and fc = SPG_A4 (c_feat -> num_classes), Xavier-initialised."""
        self.SPG_B_1a = nn.Sequential(*_conv_relu(c_b1, c_b))
        self.SPG_B_2a = nn.Sequential(*_conv_relu(c_b2, c_b))
        self.SPG_B_shared = nn.Sequential(*_conv_relu(c_b, c_b), nn.Conv2d(c_b, 1, kernel_size=1))
        self.SPG_C = nn.Sequential(*_conv_relu(c_feat, c_c), nn.Conv2d(c_c, 1, kernel_size=1))
        self.fc = nn.Linear(c_feat, num_classes)
        xavier_([m for name in (*SPG_HEADS, "fc") for m in getattr(self, name).modules()])

    def _taps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized images (B,3,H,W) -> the classifier-trunk output (B,Cf,h,w)."""
        return self._taps(x)[2]

    def class_map_all(self, feats: torch.Tensor) -> torch.Tensor:
        """wsolevaluation's `feat_map = SPG_A4(features)`: (B,Cf,h,w) -> (B,C,h,w), bias included."""
        w = self.fc.weight
        return F.conv2d(feats, w.view(*w.shape, 1, 1), self.fc.bias)

    def spg_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One training forward with every branch ([W] the *Spg models' `forward`, without the
        attention maps, which the loss computes at its own size: `wsol.methods.spg`).

        Args:
            x: images (B,3,H,W) in [0,1].

        Returns:
            dict with `logits` (B,C) = fc(GAP(features)) (== forward(x)), `feat_map` (B,C,h,w) (SPG_A4's
            map), `logits_b1`, `logits_b2`, `logits_c` (B,1,h,w) and `features` (B,Cf,h,w).
        """
        tap1, tap2, feats = self._taps(self.normalize(x))
        return {
            "logits": self.head(feats),
            "feat_map": self.class_map_all(feats),
            "logits_b1": self.SPG_B_shared(self.SPG_B_1a(tap1)),
            "logits_b2": self.SPG_B_shared(self.SPG_B_2a(tap2)),
            "logits_c": self.SPG_C(feats),
            "features": feats,
        }

    def class_maps(self, x: torch.Tensor, target: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """wsolevaluation's test-time CAM ([W] vgg.py:206-209, resnet.py:324-327, inception.py:396-399):
        the raw `SPG_A4` map of class target_b, ``sum_k w[t,k] F_k + b[t]`` (B,h,w), and the logits
        (B,C). `target` None: the predicted class. Branches B and C are not used."""
        feats = self.features(x)
        logits = self.head(feats)
        if target is None:
            t = logits.argmax(1)
        else:
            t = torch.as_tensor(target, device=logits.device).view(-1).expand(len(logits))
        maps = torch.einsum("bk,bkhw->bhw", self.fc.weight[t], feats) + self.fc.bias[t].view(-1, 1, 1)
        return maps, logits


class SPGVGG(SPGModel):
    """VggSpg on a project VGG16-GAP body (any width, with or without BN).

    Images (B,3,H,W) in [0,1] -> logits (B,C); features = relu(SPG_A_3) (B,512w,H/16,W/16),
    (B,512w,H/8,W/8) with `large_feature_map` (no pool after conv4). The body is the VGGGAP body of
    `cam` (conv1_1 .. relu5_3 with 2x2 pools 1-3) with pool4 replaced by wsolevaluation's
    MaxPool(3, s2, p1) (an Identity when large); the B1 tap is pool4's output, the B2 tap relu5_3's.

    new_layer_prefixes (lr x10): wsolevaluation trains every parameter outside `features.` at x10,
    which for SPG includes the pretrained conv4 and conv5 blocks (its SPG_A_1 / SPG_A_2): here
    `body.conv4_*`, `body.conv5_*` (and `body.bn4_*`, `body.bn5_*` on BN archs), SPG_A_3, the heads and fc.
    """

    def __init__(self, cam: VGGGAP, num_classes: int, large_feature_map: bool = False, **norm: Any) -> None:
        super().__init__(num_classes, **norm)
        self.large_feature_map = bool(large_feature_map)
        self.batch_norm = cam.batch_norm
        self.body = cam.body
        self.body.pool4 = nn.Identity() if self.large_feature_map else nn.MaxPool2d(3, stride=2, padding=1)
        c4, c5 = self.body.conv4_3.out_channels, self.body.conv5_3.out_channels
        self.SPG_A_3 = nn.Sequential(*_conv_relu(c5, c5), *_conv_relu(c5, c5))
        xavier_(self.SPG_A_3.modules())
        self._add_heads(num_classes, c_b1=c4, c_b2=c5, c_b=c5, c_feat=c5, c_c=c5)
        blocks = tuple(f"body.{kind}{b}_{i}" for b in (4, 5) for i in (1, 2, 3)
                       for kind in (("conv", "bn") if self.batch_norm else ("conv",)))
        self.new_layer_prefixes = (*blocks, "SPG_A_3", *SPG_HEADS, "fc")

    # torchvision vgg16 / vgg16_bn keys -> body.convX_Y (wsolevaluation renames features.17.. to SPG_A_1/2)
    remap_pretrained = VGGGAP.remap_pretrained

    def _taps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tap1 = None
        for name, layer in self.body.named_children():
            x = layer(x)
            if name == "pool4":
                tap1 = x
        return tap1, x, self.SPG_A_3(x)


class SPGResNet(SPGModel):
    """ResNetSpg on a project ResNet (`WSOLResNet`'s modules and names, layer4 stride 1).

    Images (B,3,H,W) in [0,1] -> logits (B,C); features = layer4 output (B,Cf,H/16,W/16), H/8 with
    `large_feature_map` (layer3 stride 1). The B1 tap is layer3[0]'s output (wsolevaluation's SPG_A1),
    the B2 tap layer3[1:]'s (SPG_A2). With a 1-block layer3 (resnet_tiny) layer3[1:] is empty and the
    B2 tap is the same tensor as the B1 tap (the two branches differ only in SPG_B_1a / SPG_B_2a).

    new_layer_prefixes (lr x10) = ("layer4",): wsolevaluation's rule for resnet50 is "the name contains
    `layer4.` or `fc.`", and ResNetSpg has no `fc` (its classifier is `SPG_A4`), so SPG_A4 (our fc) and
    every SPG head train at lr x1 ([W] main.py:72-77, 130-162).
    """

    new_layer_prefixes = ("layer4",)

    def __init__(self, cam: WSOLModel, num_classes: int, **norm: Any) -> None:
        super().__init__(num_classes, **norm)
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(cam, name))
        c4 = cam.fc.in_features
        c3 = c4 // 2   # torchvision ResNets: layer3 has half layer4's channels
        self._add_heads(num_classes, c_b1=c3, c_b2=c3, c_b=c3, c_feat=c4, c_c=c4 // 4)

    def _taps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.layer2(self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x))))))
        blocks = list(self.layer3)
        tap1 = tap2 = blocks[0](x)
        for block in blocks[1:]:
            tap2 = block(tap2)
        return tap1, tap2, self.layer4(tap2)


class SPGInceptionV3(SPGModel):
    """InceptionSpg on `wsol.models.inception`'s trunk (torchvision names, wsolevaluation's changes).

    Images (B,3,H,W) in [0,1] -> logits (B,C); features (B,1024,h,w), h = 14 at 224 (28 with
    `large_feature_map`): Mixed_6e -> dropout 0.5 -> SPG_A3_1b -> dropout -> SPG_A3_2b -> dropout (train
    mode only: the same three `F.dropout` draws in the same order as [W] inception.py:379-383, so
    train-mode outputs match under one torch seed). B1 taps the extra pool after Mixed_5d (288 ch), B2
    Mixed_6d (768 ch). All convs and fc start Xavier-uniform, BN at 1 / 0 (wsolevaluation's init).

    new_layer_prefixes (lr x10): every parameter whose name has none of Mixed / Conv2d_1..4.
    """

    new_layer_prefixes = ("SPG_A3_1b", "SPG_A3_2b", *SPG_HEADS, "fc")

    def __init__(self, num_classes: int, large_feature_map: bool = False, **norm: Any) -> None:
        from .inception import make_inception_trunk, wsoleval_initialize

        super().__init__(num_classes, **norm)
        self.large_feature_map = bool(large_feature_map)
        trunk = make_inception_trunk(self.large_feature_map)
        for name, module in trunk.items():
            self.add_module(name, module)
        self._trunk_names = tuple(trunk)
        self.SPG_A3_1b = nn.Sequential(*_conv_relu(768, 1024))
        self.SPG_A3_2b = nn.Sequential(*_conv_relu(1024, 1024))
        self._add_heads(num_classes, c_b1=288, c_b2=768, c_b=512, c_feat=1024, c_c=512)
        wsoleval_initialize(self)

    def remap_pretrained(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """torchvision InceptionV3 keys -> ours: same names; Mixed_7*, AuxLogits*, fc.* dropped."""
        from .inception import remap_inception_pretrained

        return remap_inception_pretrained(state_dict)

    def _taps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tap1 = tap2 = None
        for name in self._trunk_names:
            x = getattr(self, name)(x)
            if name == "maxpool_5d":
                tap1 = x
            elif name == "Mixed_6d":
                tap2 = x
        x = F.dropout(x, 0.5, self.training)
        x = F.dropout(self.SPG_A3_1b(x), 0.5, self.training)
        x = F.dropout(self.SPG_A3_2b(x), 0.5, self.training)
        return tap1, tap2, x


@register_architecture_type("spg")
def build_spg(arch: str, num_classes: int, large_feature_map: bool = False, **kwargs: Any) -> SPGModel:
    """SPG's model on backbone `arch` (one of `SPG_ARCHS`).

    Args:
        arch: vgg_gap, vgg_gap_small, vgg_gap_tiny, vgg_gap_bn, vgg_gap_bn_small, resnet50, resnet18,
            resnet_tiny or inception_v3.
        num_classes: C.
        large_feature_map: wsolevaluation's 28x28 map at 224 (VGG: no pool after conv4; ResNet: layer3
            stride 1; Inception: no pool after Mixed_5d).
        **kwargs: `mean`, `std` (input normalization); for vgg_gap / vgg_gap_bn also `width`.
    """
    norm = {k: kwargs.pop(k) for k in ("mean", "std") if k in kwargs}
    if arch in VGG_ARCHS:
        return SPGVGG(build_model(arch, num_classes, **kwargs), num_classes, large_feature_map, **norm)
    if arch in RESNET_ARCHS:
        if kwargs:
            raise TypeError(f"spg {arch}: unexpected options {sorted(kwargs)}")
        return SPGResNet(build_model(arch, num_classes, large_feature_map=large_feature_map), num_classes, **norm)
    if arch == "inception_v3":
        if kwargs:
            raise TypeError(f"spg {arch}: unexpected options {sorted(kwargs)}")
        return SPGInceptionV3(num_classes, large_feature_map, **norm)
    raise ValueError(f"architecture_type 'spg' supports archs {', '.join(SPG_ARCHS)}; got {arch!r}")
