"""ACoL (Zhang et al., CVPR 2018) as wsolevaluation implements it: `architecture_type="acol"`.

    model = build_model("vgg_gap", 200, architecture_type="acol", acol_threshold=0.7)
    out = model.acol_outputs(x, y)       # training: logits, logit_b, feat_map_a, feat_map_b
    maps, logits = model.class_maps(x, y)  # wsolevaluation's test CAM (the GT drives the erasing)

Two classifiers share the trunk feature F (REFERENCE §12.3.2; [W] method/acol.py:13-44,
vgg.py:79-119, resnet.py:123-193, inception.py:214-290):

1. ``feat_map_a = A(F)``, ``logits = GAP(feat_map_a)``; A = Conv3x3(Cin->H, p1), ReLU,
   Conv3x3(H->H, p1), ReLU, Conv1x1(H->C) with H = 1024 on the paper's backbones.
2. ``attention = minmax_hw(feat_map_a[label])`` on a detached copy; `label` is the given one
   (the GT in training and, as wsolevaluation, at evaluation) or argmax(logits) when None.
3. ``F' = F * 1[not attention >= acol_threshold]`` (the mask broadcast over channels);
   ``logit_b = GAP(B(F'))`` with B a second head of A's shape.
4. Test CAM of class c: ``max(minmax_hw(A(F))[c], minmax_hw(B(F'))[c])``.

`forward(x)` is branch A's logits (the `WSOLModel` contract; branch B does not change them);
`features(x)` is F and `head(F)` = GAP(A(F)), so Grad-CAM and gradient maps act on the trunk.
The heads keep wsolevaluation's names (`classifier_A`, `classifier_B`); ResNet and Inception
state dicts therefore have wsolevaluation's keys exactly, VGG's trunk has `wsol.models.vgg`'s
(`body.convX_Y`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import resnet as _resnet
from .base import WSOLModel
from .inception import wsoleval_initialize
from .registry import register_architecture_type
from .vgg import VGGGAP, _make_body, _scale

__all__ = ["ACoLModel", "ACoLVGG", "ACoLResNet", "ACoLInception", "ACOL_ARCHS", "acol", "acol_head",
           "erase_attention", "minmax_hw"]

# arch -> (width, batch_norm) of the VGG16 trunk (the widths of wsol.models.vgg's builders).
_VGG_ARCHS = {"vgg_gap": (1.0, False), "vgg_gap_small": (0.25, False), "vgg_gap_tiny": (0.0625, False),
              "vgg_gap_bn": (1.0, True), "vgg_gap_bn_small": (0.25, True)}
# arch -> the wsol.models.resnet builder whose trunk (conv1 .. layer4, stride-1 layer4) ACoL takes.
_RESNET_ARCHS = {"resnet50": _resnet.resnet50, "resnet18": _resnet.resnet18, "resnet_tiny": _resnet.resnet_tiny}
_INCEPTION_ARCHS = ("inception_v3",)
ACOL_ARCHS = (*_VGG_ARCHS, *_RESNET_ARCHS, *_INCEPTION_ARCHS)

# Parameter-name prefixes of the heads: pretrained files never fill them (see remap_pretrained).
_HEADS = ("classifier_A", "classifier_B")


def minmax_hw(x: torch.Tensor) -> torch.Tensor:
    """Per-channel min-max over the spatial dims, no epsilon: (B,K,h,w) -> (B,K,h,w).

    wsolevaluation's `normalize_tensor` ([W] method/util.py:27-33): a constant channel gives
    NaN (0/0), as there.
    """
    flat = x.flatten(2)
    lo = flat.min(dim=-1, keepdim=True).values
    hi = flat.max(dim=-1, keepdim=True).values
    return ((flat - lo) / (hi - lo)).view_as(x)


def erase_attention(feature: torch.Tensor, feat_map_a: torch.Tensor, labels: torch.Tensor,
                    threshold: float) -> torch.Tensor:
    """ACoL's erasing: F (B,K,h,w), branch-A maps (B,C,h,w), labels (B,) -> F' (B,K,h,w).

    attention = minmax_hw(feat_map_a[b, labels_b]) on a detached copy ([W] get_attention);
    positions with attention >= threshold are zeroed in every channel of F, all others kept
    ([W] method/acol.py:33-39: ``mask[torch.ge(attention, threshold)] = 0``). A constant class
    map (NaN attention) therefore erases nothing. No gradient flows through the mask.
    """
    rows = torch.arange(feat_map_a.shape[0], device=feat_map_a.device)
    attention = feat_map_a.detach()[rows, labels].unsqueeze(1)                   # (B,1,h,w)
    if attention.dtype in (torch.float16, torch.bfloat16):    # bf16 autocast: threshold in float32
        attention = attention.float()
    attention = minmax_hw(attention)
    keep = torch.logical_not(attention >= threshold)
    return feature * keep.to(feature.dtype)


def acol_head(in_channels: int, hidden: int, num_classes: int) -> nn.Sequential:
    """One ACoL classifier: Conv3x3(in->hidden, p1), ReLU, Conv3x3(hidden->hidden, p1), ReLU,
    Conv1x1(hidden->C). (B,in,h,w) -> class maps (B,C,h,w). Indices 0, 2, 4 as wsolevaluation's."""
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden, kernel_size=3, stride=1, padding=1),
        nn.ReLU(inplace=False),
        nn.Conv2d(hidden, hidden, kernel_size=3, stride=1, padding=1),
        nn.ReLU(inplace=False),
        nn.Conv2d(hidden, num_classes, kernel_size=1, stride=1, padding=0),
    )


class ACoLModel(WSOLModel):
    """Trunk + ACoL's two heads. Subclasses build the trunk and implement `extract` (normalized
    images -> F (B,Cin,h,w)).

    Args:
        num_classes: C.
        in_channels: Cin, the channels of F.
        hidden: the heads' width H (1024 in wsolevaluation).
        acol_threshold: the erasing threshold delta in [0, 1] (wsolevaluation's
            `acol_drop_threshold`, config `acol_threshold`, default 0.7).
        mean, std: input normalization.
    """

    def __init__(self, num_classes: int, in_channels: int, hidden: int, acol_threshold: float = 0.7,
                 **norm: Any) -> None:
        super().__init__(num_classes, **norm)
        if isinstance(acol_threshold, bool) or not 0.0 <= float(acol_threshold) <= 1.0:
            raise ValueError(f"acol_threshold must be a number in [0, 1], got {acol_threshold!r}")
        self.acol_threshold = float(acol_threshold)
        self.classifier_A = acol_head(in_channels, hidden, num_classes)
        self.classifier_B = acol_head(in_channels, hidden, num_classes)

    # -- the WSOLModel interface ---------------------------------------------------------------
    def head(self, feats: torch.Tensor) -> torch.Tensor:
        """F (B,Cin,h,w) -> branch-A logits GAP(A(F)) (B,C); so head(features(x)) == forward(x)."""
        return _gap(self.classifier_A(feats))

    @property
    def classifier(self) -> nn.Module:
        """Classifier A (a conv head, not a Linear): `load_pretrained` skips it by this name."""
        return self.classifier_A

    @property
    def feature_channels(self) -> int:
        """Cin, the channels of F = features(x)."""
        return self.classifier_A[0].in_channels

    @property
    def classifier_weight(self) -> torch.Tensor:
        raise AttributeError(f"{type(self).__name__} has no linear classifier: ACoL's CAM is its own "
                             "(class_maps), not mean_k w[c,k] F_k")

    def remap_pretrained(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Pretrained files fill the trunk only: keys of the heads (`classifier_A.*`, `classifier_B.*`,
        e.g. from an ACoL checkpoint) are dropped, so both heads stay freshly initialised."""
        return {k: v for k, v in state_dict.items() if k.split(".", 1)[0] not in _HEADS}

    # -- ACoL -----------------------------------------------------------------------------------
    def acol_logits(self, feature: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """wsolevaluation's `AcolBase._acol_logits` on F (B,Cin,h,w): {"logits" (B,C) (branch A),
        "logit_b" (B,C), "feat_map_a", "feat_map_b" (B,C,h,w)}. `labels` (B,) drive the erasing;
        None: argmax of branch A's logits."""
        feat_map_a = self.classifier_A(feature)
        logits = _gap(feat_map_a)
        labels = logits.argmax(dim=1) if labels is None else labels.long()
        erased = erase_attention(feature, feat_map_a, labels, self.acol_threshold)
        feat_map_b = self.classifier_B(erased)
        return {"logits": logits, "logit_b": _gap(feat_map_b),
                "feat_map_a": feat_map_a, "feat_map_b": feat_map_b}

    def acol_outputs(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Images (B,3,H,W) in [0,1], labels (B,) or None -> `acol_logits`' dict (the training
        forward ``model(images, target)`` of wsolevaluation)."""
        return self.acol_logits(self.features(x), labels)

    def class_maps(self, x: torch.Tensor, target: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """wsolevaluation's test CAM ``model(images, target, return_cam=True)``.

        Images (B,3,H,W) in [0,1], target (B,) or None -> (maps (B,h,w), branch-A logits (B,C)).
        maps_b = max(minmax_hw(feat_map_a)[b, t_b], minmax_hw(feat_map_b)[b, t_b]) where `target`
        also drives the erasing (the GT at evaluation, as wsolevaluation); None: the predicted
        class for both. Not detached (the caller picks no_grad); the mask has no gradient.
        """
        out = self.acol_outputs(x, target)
        t = out["logits"].argmax(dim=1) if target is None else target.long()
        rows = torch.arange(x.shape[0], device=t.device)
        a = minmax_hw(out["feat_map_a"][rows, t].unsqueeze(1))
        b = minmax_hw(out["feat_map_b"][rows, t].unsqueeze(1))
        return torch.max(a, b).squeeze(1), out["logits"]


def _gap(feat_map: torch.Tensor) -> torch.Tensor:
    """(B,C,h,w) -> (B,C), as wsolevaluation's AdaptiveAvgPool2d(1) + view."""
    return F.adaptive_avg_pool2d(feat_map, 1).flatten(1)


class ACoLVGG(ACoLModel):
    """wsolevaluation's VggAcol on `wsol.models.vgg`'s trunk (names `body.convX_Y`, `body.bnX_Y`).

    Pools 1-4 are MaxPool(3, s2, p1) ('M1'); pool5 after conv5_3 is MaxPool(3, s1, p1) ('M2');
    with `large_feature_map` pool4 is 'M2' too. F = avg_pool2d(body(x), 3, s1, p1): (B,512*width,
    H/16,W/16) (H/8 when large) ([W] vgg.py:32-37, 104-108). Heads: H = 1024*width (1024, 256
    for the 0.25 archs, 64 for vgg_gap_tiny). Everything (trunk too) starts Xavier-uniform with
    zero biases as VggAcol; BN (the `_bn` archs, not in wsolevaluation) at 1 / 0.
    LR groups (REFERENCE §12.4): every parameter outside the trunk -- both heads -- is new (x10).
    """

    new_layer_prefixes = _HEADS

    def __init__(self, num_classes: int, width: float = 1.0, batch_norm: bool = False,
                 large_feature_map: bool = False, acol_threshold: float = 0.7, **norm: Any) -> None:
        super().__init__(num_classes, _scale(512, width), _scale(1024, width), acol_threshold, **norm)
        self.batch_norm = bool(batch_norm)
        self.large_feature_map = bool(large_feature_map)
        layers = _make_body(width, (), 0.0, 0.0, self.batch_norm)
        for i in (1, 2, 3, 4):
            stride = 1 if (i == 4 and self.large_feature_map) else 2
            layers[f"pool{i}"] = nn.MaxPool2d(kernel_size=3, stride=stride, padding=1)
        layers["pool5"] = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.body = nn.Sequential(layers)
        wsoleval_initialize(self, "xavier", linear="normal")

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized images (B,3,H,W) -> F = avg_pool(3, s1, p1) of pool5 (B,512*width,h,w)."""
        return F.avg_pool2d(self.body(x), kernel_size=3, stride=1, padding=1)

    def remap_pretrained(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """torchvision vgg16(_bn) `features.N.*` -> `body.convX_Y.*` (VGGGAP's mapping; the
        torchvision indices equal VggAcol's), heads dropped; our VGG-GAP checkpoints pass by name."""
        return super().remap_pretrained(VGGGAP.remap_pretrained(self, state_dict))


class ACoLResNet(ACoLModel):
    """wsolevaluation's ResNetAcol on `wsol.models.resnet`'s trunk (torchvision names `conv1` ..
    `layer4`; layer4 stride 1; layer3 stride 1 with `large_feature_map`): F = layer4 output
    (B,Cin,H/16,W/16), Cin = 2048 (resnet50) or 512 (resnet18, resnet_tiny).

    Head width H = 1024 * Cin / 2048, scaled with the backbone as the VGG heads are: 1024 on
    ResNet50 (wsolevaluation's), 256 on resnet18 / resnet_tiny (full-width heads there would hold
    28 M parameters on a 5 M-parameter CPU backbone); `head_width` sets it. Everything starts He-normal (fan_out), biases 0, BN 1 / 0, as ResNetAcol.
    LR groups: wsolevaluation's ResNet rule puts only names with `layer4.` / `fc.` at x10, so
    the pretrained layer4 trains at x10 while ACoL's new heads train at x1 (a quirk of the
    reference, REFERENCE §12.8 item 2, kept).
    """

    new_layer_prefixes = ("layer4",)

    def __init__(self, arch: str, num_classes: int, large_feature_map: bool = False,
                 acol_threshold: float = 0.7, head_width: int | None = None, **norm: Any) -> None:
        base = _RESNET_ARCHS[arch](num_classes, large_feature_map=large_feature_map)
        in_channels = base.fc.in_features
        hidden = max(1, 1024 * in_channels // 2048) if head_width is None else int(head_width)
        if hidden < 1:
            raise ValueError(f"acol head_width must be >= 1, got {head_width!r}")
        super().__init__(num_classes, in_channels, hidden, acol_threshold, **norm)
        self.large_feature_map = bool(large_feature_map)
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(base, name))
        wsoleval_initialize(self, "he", linear="normal")

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized images (B,3,H,W) -> layer4 output F (B,Cin,H/16,W/16)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def remap_pretrained(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """torchvision keys equal ours; `fc.*` (any key with 'fc', as [W] resnet.py:466) and the
        heads are dropped."""
        return super().remap_pretrained({k: v for k, v in state_dict.items() if "fc" not in k})


class ACoLInception(ACoLModel):
    """wsolevaluation's InceptionAcol on `wsol.models.inception`'s trunk (torchvision names,
    Conv2d_1a_3x3 .. Mixed_6e, at 224): F = Mixed_6e output (B,768,14,14) at 224 (28x28 with
    `large_feature_map`). Heads H = 1024. Everything starts Xavier-uniform, BN 1 / 0, biases 0.
    LR groups: wsolevaluation's Inception rule (names with none of Mixed, Conv2d_1..4 at x10)
    gives both heads x10.
    """

    new_layer_prefixes = _HEADS

    def __init__(self, num_classes: int, large_feature_map: bool = False, acol_threshold: float = 0.7,
                 **norm: Any) -> None:
        from .inception import TRUNK_NAMES, make_inception_trunk

        super().__init__(num_classes, 768, 1024, acol_threshold, **norm)
        self.large_feature_map = bool(large_feature_map)
        for name, module in make_inception_trunk(self.large_feature_map).items():
            self.add_module(name, module)
        self._trunk = tuple(TRUNK_NAMES)
        wsoleval_initialize(self, "xavier", linear="normal")

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized images (B,3,H,W) -> Mixed_6e output F (B,768,h,w)."""
        for name in self._trunk:
            x = getattr(self, name)(x)
        return x

    def remap_pretrained(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """torchvision InceptionV3 keys equal ours; Mixed_7*, AuxLogits*, fc.* and the heads dropped."""
        from .inception import remap_inception_pretrained

        return super().remap_pretrained(remap_inception_pretrained(state_dict))


@register_architecture_type("acol")
def acol(arch: str, num_classes: int, acol_threshold: float = 0.7, large_feature_map: bool = False,
         **kwargs: Any) -> ACoLModel:
    """ACoL's model on backbone `arch` (`ACOL_ARCHS`): `build_model(arch, C, architecture_type="acol",
    acol_threshold=..., large_feature_map=...)`. `kwargs`: mean, std; for ResNets `head_width`
    (the heads' width H; default 1024 * Cin / 2048)."""
    if arch in _VGG_ARCHS:
        width, batch_norm = _VGG_ARCHS[arch]
        return ACoLVGG(num_classes, width=width, batch_norm=batch_norm, large_feature_map=large_feature_map,
                       acol_threshold=acol_threshold, **kwargs)
    if arch in _RESNET_ARCHS:
        return ACoLResNet(arch, num_classes, large_feature_map=large_feature_map,
                          acol_threshold=acol_threshold, **kwargs)
    if arch in _INCEPTION_ARCHS:
        return ACoLInception(num_classes, large_feature_map=large_feature_map,
                             acol_threshold=acol_threshold, **kwargs)
    raise ValueError(f"architecture_type 'acol' supports archs {', '.join(ACOL_ARCHS)}; got arch {arch!r}")

