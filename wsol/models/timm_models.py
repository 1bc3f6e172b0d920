"""`timm:<name>`: wrap a timm model whose head is GAP followed by one nn.Linear.

Only such heads make CAM an exact decomposition of the logits. Heads with layers
after the pooling (mobilenetv3's conv_head, convnext's norm) or other poolings
(ViT's token) are rejected. Pretrained weights come from timm's local caches only.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .base import IMAGENET_MEAN, IMAGENET_STD, WSOLModel
from .pretrained import PretrainedWeightsMissing

logger = logging.getLogger(__name__)
_AVG_POOLS = ("avg", "fast", "fastavg")


class TimmWSOL(WSOLModel):
    """A timm backbone under `self.net`. Images (B,3,H,W) -> logits (B,C);
    features = `net.forward_features` (B,num_features,h,w)."""

    def __init__(self, net: nn.Module, num_classes: int, **norm: Any) -> None:
        super().__init__(num_classes, **norm)
        self.net = net
        head = next(n for n, m in self.named_modules() if m is net.get_classifier())
        self.new_layer_prefixes = (head,)

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized images (B,3,H,W) -> timm feature map (B,Cf,h,w)."""
        return self.net.forward_features(x)

    @property
    def classifier(self) -> nn.Linear:
        return self.net.get_classifier()

    def remap_pretrained(self, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """timm keys -> ours (prefix `net.`)."""
        return {k if k.startswith("net.") else f"net.{k}": v for k, v in state_dict.items()}


def build_timm(name: str, num_classes: int, pretrained: bool | str | os.PathLike = False,
               adl: bool = False, mean: tuple[float, ...] | None = None,
               std: tuple[float, ...] | None = None, **timm_kwargs: Any) -> TimmWSOL:
    """Build `timm.create_model(name, ...)`, check its head, wrap it.

    mean/std default to the model's `pretrained_cfg`; other kwargs go to timm.
    """
    if adl:
        raise ValueError(f"timm:{name}: ADL insertion points are defined only for "
                         "vgg_gap*, resnet* and inception_v3")
    for key in ("adl_drop_rate", "adl_gamma", "adl_positions"):  # ignored without ADL,
        timm_kwargs.pop(key, None)                                 # as for the other archs
    net = _create(name, num_classes, pretrained, timm_kwargs)
    if pretrained:
        net.reset_classifier(num_classes)  # the head is always fresh, as for torchvision archs
    check_cam_head(net, name)
    if getattr(net, "drop_rate", 0.0):
        logger.warning("timm:%s: head dropout (drop_rate) is not applied by WSOLModel", name)
    cfg = getattr(net, "pretrained_cfg", None) or {}
    return TimmWSOL(net, num_classes, mean=mean or cfg.get("mean", IMAGENET_MEAN),
                    std=std or cfg.get("std", IMAGENET_STD))


def _create(name: str, num_classes: int, pretrained: bool | str | os.PathLike,
            kwargs: dict[str, Any]) -> nn.Module:
    import timm

    if not timm.is_model(name):
        raise ValueError(f"unknown timm model {name!r} (see timm.list_models())")
    if not pretrained:
        return timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)
    if pretrained is not True:
        path = Path(pretrained)
        if not path.is_file():
            raise PretrainedWeightsMissing(f"pretrained weights file {path} does not exist")
        return timm.create_model(name, pretrained=True, num_classes=num_classes,
                                 pretrained_cfg_overlay=dict(file=str(path)), **kwargs)
    with _offline():
        try:
            return timm.create_model(name, pretrained=True, num_classes=num_classes, **kwargs)
        except PretrainedWeightsMissing:
            raise
        except (OSError, ValueError, RuntimeError) as err:
            raise PretrainedWeightsMissing(
                f"timm weights for {name} are not in the local caches ({_hf_cache()} or "
                f"{Path(torch.hub.get_dir()) / 'checkpoints'}) and are never downloaded: run "
                f"timm.create_model({name!r}, pretrained=True) on a machine with internet and copy "
                f"the cache here, or pass pretrained='/path/to/file' ({err})") from err


def _hf_cache() -> str:
    try:
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError:
        return "the Hugging Face hub cache"
    return str(HF_HUB_CACHE)


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """Forbid network access by huggingface_hub and torch.hub for the duration."""
    import timm.models._hub as timm_hub

    def refuse(url: str, dst: str, *args: Any, **kwargs: Any) -> None:
        raise PretrainedWeightsMissing(f"weights are never downloaded: put {url} at {dst}")

    saved_env = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    patches = [(torch.hub, "download_url_to_file"), (timm_hub, "download_url_to_file")]
    try:
        import huggingface_hub.constants as hf_constants
        patches.append((hf_constants, "HF_HUB_OFFLINE"))
    except ImportError:
        hf_constants = None
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr in patches]
    for obj, attr, _ in saved:
        setattr(obj, attr, True if obj is hf_constants else refuse)
    try:
        yield
    finally:
        for obj, attr, value in saved:
            setattr(obj, attr, value)
        if saved_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved_env


def check_cam_head(net: nn.Module, name: str) -> None:
    """Raise ValueError unless logits == classifier(mean_hw(forward_features(x)))."""
    clf = net.get_classifier()
    if not isinstance(clf, nn.Linear):
        raise ValueError(f"timm:{name}: classifier is {type(clf).__name__}; CAM needs global "
                         "average pooling followed by a single nn.Linear")
    pool = _pool_type(net)
    if pool not in _AVG_POOLS:
        raise ValueError(f"timm:{name}: pooling is {pool!r}; CAM needs global average pooling")
    width = getattr(net, "num_features", clf.in_features)
    if width != clf.in_features:
        raise ValueError(f"timm:{name}: the head maps the {width} pooled features to "
                         f"{clf.in_features} with extra layers before the classifier (e.g. "
                         "conv_head + activation), so CAM would not decompose the logits")
    if not _head_is_gap_linear(net, clf):
        raise ValueError(f"timm:{name}: forward_head is not GAP + Linear (it applies other "
                         "layers), so CAM would not decompose the logits")


def _pool_type(net: nn.Module) -> str | None:
    pool = getattr(net, "global_pool", None)
    if pool is None and isinstance(getattr(net, "head", None), nn.Module):
        pool = getattr(net.head, "global_pool", None)
    return pool if isinstance(pool, str) or pool is None else getattr(pool, "pool_type", None)


def _head_is_gap_linear(net: nn.Module, clf: nn.Linear) -> bool:
    """`head_is_gap_linear` of timm's forward_head, in eval mode."""
    was_training = net.training
    net.eval()
    try:
        return head_is_gap_linear(net.forward_head, clf)
    finally:
        net.train(was_training)


def head_is_gap_linear(head: Callable[[torch.Tensor], torch.Tensor], clf: nn.Linear) -> bool:
    """Whether head(F) == clf(mean_hw F): a numerical check on a random feature map (2,Cf,3,3).
    The caller sets eval mode (dropout)."""
    try:
        with torch.no_grad():
            gen = torch.Generator().manual_seed(0)
            feats = torch.randn(2, clf.in_features, 3, 3, generator=gen)
            expected = clf(feats.mean(dim=(2, 3)))
            got = head(feats)
        return got.shape == expected.shape and torch.allclose(got, expected, rtol=1e-4, atol=1e-5)
    except (RuntimeError, ValueError, TypeError, AssertionError):
        return False
