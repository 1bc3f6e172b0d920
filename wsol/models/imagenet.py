"""ImageNet classifiers as they are: `torchvision:<name>` and `timm:<name>` with their own head.

    model = build_model("torchvision:resnet50", 1000, pretrained="resnet50.pth", keep_head=True)
    model = build_model("timm:tf_efficientnet_lite0", 1000, pretrained="lite0.pth", keep_head=True)

The network is split into a feature part (images -> feature map (B,Cf,h,w)) and a head (feature
map -> logits), so every map of `wsol.attribution` works on it:

* timm: `forward_features` / `forward_head` (timm's own split, any timm model);
* torchvision: the network is traced with torch.fx and cut after its last 4-D activation that is
  not a pooling layer (resnet50: after layer4; vgg16: the last ReLU of `features`, 14x14 at 224
  px). The two halves share the network's modules.

Grad-CAM, Grad-CAM++ and the gradient family work for every such model; CAM only where the head
is global average pooling followed by one linear layer (`has_cam_head`), checked numerically.
Weights come from a file only (never downloaded); a file that does not fit is refused with one
short message (`WeightsMismatch`). ImageNet-1k class names ship with torchvision's weight
metadata (`imagenet_class_names()`), so nothing is downloaded for them either.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .base import IMAGENET_MEAN, IMAGENET_STD, WSOLModel
from .pretrained import PretrainedWeightsMissing, nonfinite_tensors, read_state_dict
from .timm_models import head_is_gap_linear

logger = logging.getLogger(__name__)

TORCHVISION_PREFIX = "torchvision:"
_POOLS = (nn.AdaptiveAvgPool2d, nn.AvgPool2d, nn.MaxPool2d, nn.AdaptiveMaxPool2d)
_POOL_FUNCTIONS = ("adaptive_avg_pool2d", "avg_pool2d", "max_pool2d", "adaptive_max_pool2d")


class WeightsMismatch(ValueError):
    """A weights file whose tensors do not fit the model (missing, unexpected or other shapes)."""


def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet-1k class names in index order (from torchvision's weight metadata)."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


class ImageNetClassifier(WSOLModel):
    """A classifier split into `features` (B,3,H,W) in [0,1] -> (B,Cf,h,w) and `head` -> (B,C).

    Attributes:
        net: the wrapped network (its state dict keys are `net.<its own keys>`).
        has_cam_head: whether head(F) == classifier(mean_hw F) (CAM is defined).
        source: "torchvision" or "timm".
    """

    def __init__(self, net: nn.Module, num_classes: int, body: Callable, tail: Callable,
                 classifier: nn.Linear | None, source: str, **norm: Any) -> None:
        super().__init__(num_classes, **norm)
        self.net = net
        self.source = source
        # plain attributes (not submodules): they share net's modules, so the state dict and
        # .to() / .eval() stay those of `net`.
        self.__dict__["_body"], self.__dict__["_tail"] = body, tail
        self.__dict__["_linear"] = classifier
        self.has_cam_head = classifier is not None and head_is_gap_linear(tail, classifier)
        self.new_layer_prefixes = ()

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized images (B,3,H,W) -> feature map (B,Cf,h,w)."""
        return self._body(x)

    def head(self, feats: torch.Tensor) -> torch.Tensor:
        """Feature map (B,Cf,h,w) -> logits (B,C), the network's own head."""
        return self._tail(feats)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(x)
        return self.head(feats), feats

    @property
    def classifier(self) -> nn.Linear:
        if not self.has_cam_head:
            raise ValueError(f"{self.arch}: the head is not global average pooling + one linear layer, "
                             "so CAM is undefined; use gradcam, gradcampp or a gradient map")
        return self._linear


def build_imagenet(arch: str, num_classes: int = 1000, pretrained: bool | str | os.PathLike = False,
                   **kwargs: Any) -> ImageNetClassifier:
    """`torchvision:<name>` or `timm:<name>` with its own head, weights from `pretrained` (a file).

    Args:
        arch: "torchvision:<name>" (e.g. resnet50, vgg16) or "timm:<name>".
        num_classes: the head's size (1000 for ImageNet weights).
        pretrained: False (random init) or the path of a .pth / .pt / .safetensors state dict in
            the model's own key layout (lukemelas EfficientNet files are renamed for timm's
            tf_efficientnet_*). True is refused: nothing is downloaded.
        **kwargs: `mean`, `std` (default: the model's own), other keys to the model builder.
    """
    if pretrained is True:
        raise PretrainedWeightsMissing(
            f"{arch}: ImageNet weights are never downloaded; pass the weights file (--weights FILE)")
    mean, std = kwargs.pop("mean", None), kwargs.pop("std", None)
    source, name = arch.split(":", 1)
    if source == "timm":
        net, default_norm = _create_timm(name, num_classes, kwargs)
    elif source == "torchvision":
        net, default_norm = _create_torchvision(name, num_classes, kwargs), (IMAGENET_MEAN, IMAGENET_STD)
    else:
        raise ValueError(f"unknown model source {source!r} in {arch!r}: use 'torchvision:<name>' or 'timm:<name>'")
    if pretrained:
        load_state_dict_strict(net, Path(pretrained), arch)
    net.eval()
    if source == "timm":
        body, tail = net.forward_features, net.forward_head
    else:
        body, tail = split_at_last_feature_map(net, arch)
    model = ImageNetClassifier(net, num_classes, body, tail, _last_linear(net), source,
                               mean=mean or default_norm[0], std=std or default_norm[1])
    model.eval()
    return model


def _create_timm(name: str, num_classes: int, kwargs: dict) -> tuple[nn.Module, tuple]:
    import timm

    if not timm.is_model(name):
        raise ValueError(f"unknown timm model {name!r} (see timm.list_models())")
    net = timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)
    cfg = getattr(net, "pretrained_cfg", None) or {}
    return net, (cfg.get("mean", IMAGENET_MEAN), cfg.get("std", IMAGENET_STD))


def _create_torchvision(name: str, num_classes: int, kwargs: dict) -> nn.Module:
    import torchvision.models as tvm

    try:
        builder = tvm.get_model_builder(name)
    except ValueError:
        raise ValueError(f"unknown torchvision model {name!r}; classification models: "
                         f"{', '.join(tvm.list_models(module=tvm)[:12])}, ...") from None
    if name.startswith(("inception", "googlenet")):
        kwargs.setdefault("aux_logits", False)
        kwargs.setdefault("init_weights", False)
    return builder(weights=None, num_classes=num_classes, **kwargs)


def _last_linear(net: nn.Module) -> nn.Linear | None:
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def split_at_last_feature_map(net: nn.Module, arch: str = "", size: int = 224) -> tuple[nn.Module, nn.Module]:
    """(body, tail) fx graph modules: body(x) is the last non-pooling 4-D activation of `net`
    (at a `size` x `size` input), tail(feats) the rest of the network (logits)."""
    from torch.fx import Graph, GraphModule, symbolic_trace
    from torch.fx.passes.shape_prop import ShapeProp

    try:
        gm = symbolic_trace(net)
        ShapeProp(gm).propagate(torch.zeros(1, 3, size, size))
    except Exception as err:  # noqa: BLE001 - fx raises many kinds; the message says what failed
        raise ValueError(f"{arch}: cannot split the network into features and head ({err})") from err
    nodes = list(gm.graph.nodes)
    cut = None
    for node in nodes:
        meta = node.meta.get("tensor_meta")
        shape = getattr(meta, "shape", None)
        if shape is not None and len(shape) == 4 and min(shape[2:]) > 1 and not _is_pool(gm, node):
            cut = node
    if cut is None:
        raise ValueError(f"{arch}: no 4-D feature map found to cut the network at")
    body_graph = Graph()
    env: dict = {}
    for node in nodes[: nodes.index(cut) + 1]:
        env[node] = body_graph.node_copy(node, lambda n: env[n])
    body_graph.output(env[cut])
    tail_graph = Graph()
    env = {cut: tail_graph.placeholder("feats")}
    for node in nodes[nodes.index(cut) + 1:]:
        missing = [a for a in node.all_input_nodes if a not in env]
        if missing:
            raise ValueError(f"{arch}: the head uses {missing[0].name} from before the feature map; "
                             "cannot split the network")
        env[node] = tail_graph.node_copy(node, lambda n: env[n])
    return GraphModule(gm, body_graph), GraphModule(gm, tail_graph)


def _is_pool(gm: nn.Module, node) -> bool:
    if node.op == "call_module":
        return isinstance(gm.get_submodule(node.target), _POOLS)
    return node.op == "call_function" and getattr(node.target, "__name__", "") in _POOL_FUNCTIONS


# -- weights ---------------------------------------------------------------------------------

def load_state_dict_strict(net: nn.Module, path: Path, arch: str) -> None:
    """Load every tensor of `path` into `net`; WeightsMismatch (short) unless they fit exactly."""
    if not path.is_file():
        raise PretrainedWeightsMissing(f"weights file {path} does not exist")
    try:
        state = read_state_dict(path)
    except Exception as err:  # noqa: BLE001 - unreadable file: pickle, zip, safetensors errors
        raise WeightsMismatch(f"{path}: not a readable .pth/.pt/.safetensors state dict ({_why(err)})") from err
    own = net.state_dict()
    if hasattr(net, "remap_pretrained"):
        state = net.remap_pretrained(state)
    state = remap_lukemelas_efficientnet(state, own)
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in state if k in own and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise WeightsMismatch(mismatch_message(path, arch, missing, unexpected, shapes, state, own))
    nonfinite = nonfinite_tensors(state)
    if nonfinite:
        raise WeightsMismatch(f"{path}: {len(nonfinite)} tensor(s) hold NaN or Inf, e.g. {', '.join(nonfinite[:3])}")
    net.load_state_dict(state, strict=False)
    logger.info("loaded %d tensors from %s into %s", len(state), path, arch)


def _why(err: Exception) -> str:
    """One short line for an unreadable weights file (torch.load's own messages run to a kilobyte)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
    if "does not hold a state dict" in text:
        return text.split(": ", 1)[-1]
    return f"not a torch tensor file or a safetensors file, or it holds Python objects other than tensors: " \
           f"{type(err).__name__}"


def mismatch_message(path, arch: str, missing: list, unexpected: list, shapes: list,
                     state: dict, own: dict, few: int = 3) -> str:
    """One short paragraph: counts and the first few keys of each kind."""
    def first(keys):
        more = f", ... (+{len(keys) - few})" if len(keys) > few else ""
        return ", ".join(keys[:few]) + more

    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({first(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({first(unexpected)})")
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} of another shape (e.g. {k}: file {tuple(state[k].shape)}, "
                     f"model {tuple(own[k].shape)})")
    return (f"{path} does not fit {arch}: " + "; ".join(parts) +
            ". Is it a state dict of this model, in its own key layout?")


def remap_lukemelas_efficientnet(state: dict[str, torch.Tensor], own: dict[str, torch.Tensor]) -> dict:
    """lukemelas `EfficientNet-PyTorch` keys (`_conv_stem`, `_blocks.N`, `_fc`) -> the model's own
    (timm's tf_efficientnet_*), matched in order, every shape checked; other state dicts unchanged."""
    if "_conv_stem.weight" not in state or "_conv_stem.weight" in own or len(state) != len(own):
        return state
    pairs = list(zip(own, state))
    if any(own[a].shape != state[b].shape for a, b in pairs):
        return state
    return {a: state[b] for a, b in pairs}
