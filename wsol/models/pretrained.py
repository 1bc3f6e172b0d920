"""ImageNet initialisation from local files only: nothing here downloads.

`pretrained=True` reads torchvision's ImageNet checkpoint from the torch hub cache
(`torch.hub.get_dir()/checkpoints/<file>`); a path reads that .pth / .safetensors
file. The classifier is always skipped (the head is fresh); other keys load with
strict=False, and missing/unexpected keys are logged.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlparse

import torch
from torch import nn

from .base import WSOLModel

logger = logging.getLogger(__name__)

# arch -> (torchvision weights enum name, member); resolved lazily.
TORCHVISION_WEIGHTS = {
    "resnet50": ("ResNet50_Weights", "IMAGENET1K_V1"),
    "resnet18": ("ResNet18_Weights", "IMAGENET1K_V1"),
    "vgg_gap": ("VGG16_Weights", "IMAGENET1K_V1"),
    "vgg_gap_bn": ("VGG16_BN_Weights", "IMAGENET1K_V1"),
    "inception_v3": ("Inception_V3_Weights", "IMAGENET1K_V1"),
}
_HEAD_PREFIXES = ("fc.", "classifier.")


class PretrainedWeightsMissing(FileNotFoundError):
    """The requested weights file is not on disk (and will not be downloaded)."""


class LoadReport(NamedTuple):
    """What `load_pretrained` did; key lists use the model's parameter names."""

    path: Path
    loaded: list[str]
    missing: list[str]
    unexpected: list[str]
    mismatched: list[str]


def torchvision_weights_url(arch: str) -> str:
    """URL of the torchvision ImageNet checkpoint used for `arch`."""
    import torchvision.models as tvm

    if arch not in TORCHVISION_WEIGHTS:
        raise ValueError(f"no ImageNet weights are defined for arch {arch!r} (only for "
                         f"{', '.join(TORCHVISION_WEIGHTS)}); pass pretrained='/path/to/file'")
    enum_name, member = TORCHVISION_WEIGHTS[arch]
    return getattr(tvm, enum_name)[member].url


def hub_cache_path(url: str) -> Path:
    """Where torch.hub keeps the file for `url`: <hub dir>/checkpoints/<basename>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def resolve_source(arch: str, source: bool | str | os.PathLike) -> Path:
    """True -> the cached torchvision file for `arch`; a path -> itself. Must exist."""
    if source is True:
        url = torchvision_weights_url(arch)
        path = hub_cache_path(url)
        if not path.is_file():
            raise PretrainedWeightsMissing(
                f"ImageNet weights for {arch} are not in the local torch hub cache and are "
                f"never downloaded: put {url} at {path} (or pass pretrained='/path/to/file')")
        return path
    path = Path(source)
    if not path.is_file():
        raise PretrainedWeightsMissing(f"pretrained weights file {path} does not exist")
    return path


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors from a .safetensors or torch .pth/.pt file (unwraps 'state_dict'/'model',
    strips a DDP 'module.' prefix)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
    return {k.removeprefix("module."): v for k, v in state.items() if torch.is_tensor(v)}


def nonfinite_tensors(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors in `tensors` that hold a NaN or Inf, in order."""
    return [name for name, t in tensors.items()
            if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all())]


def load_pretrained(model: WSOLModel, source: bool | str | os.PathLike = True,
                    keep_classifier: bool = False) -> LoadReport:
    """Load backbone weights into `model` in place, skipping the classifier.

    Args:
        model: a model from `build_model` (its `arch` picks the torchvision file).
        source: True for the cached torchvision ImageNet file, or a file path.
        keep_classifier: load the file's classifier too (wsolevaluation on ILSVRC: ResNet50 with
            CAM / HaS / CutMix / ADL keeps the pretrained 1000-way fc, REFERENCE §12.4); its
            shape must fit the model's (ValueError otherwise).

    Raises:
        PretrainedWeightsMissing: the file is absent (the message says where to put it).
        ValueError: no tensor in the file matches the model.
    """
    if source is True and model.arch.startswith("timm:"):
        raise ValueError("timm ImageNet weights are loaded by build_model(..., pretrained=True)")
    path = resolve_source(model.arch, source)
    state = read_state_dict(path)
    if hasattr(model, "remap_pretrained"):
        state = model.remap_pretrained(state)
    report = _load_matching(model, state, path, keep_classifier)
    _log_report(model, report)
    return report


def _load_matching(model: WSOLModel, state: dict[str, torch.Tensor], path: Path,
                   keep_classifier: bool = False) -> LoadReport:
    """Copy tensors whose name and shape match; the classifier only with `keep_classifier`."""
    own = model.state_dict()
    head = _module_name(model, model.classifier) + "."
    if keep_classifier:
        wanted = [k for k in own if k.startswith(head)]
        bad = [k for k in wanted if k not in state or state[k].shape != own[k].shape]
        if bad:
            got = tuple(state[bad[0]].shape) if bad[0] in state else "absent"
            raise ValueError(f"{path}: model.pretrained_classifier needs the file's classifier to fit the model's: "
                             f"{bad[0]} is {got} in the file, {tuple(own[bad[0]].shape)} in the model "
                             f"({model.num_classes} classes)")
    else:
        state = {k: v for k, v in state.items()
                 if not k.startswith(head) and not k.startswith(_HEAD_PREFIXES)}
    mismatched = [k for k in state if k in own and own[k].shape != state[k].shape]
    usable = {k: v for k, v in state.items() if k in own and k not in mismatched}
    if not usable:
        raise ValueError(f"no tensor in {path} matches {model.arch or type(model).__name__} "
                         f"(file keys e.g. {sorted(state)[:3]}, model keys e.g. {sorted(own)[:3]})")
    model.load_state_dict(usable, strict=False)
    missing = [k for k in own if k not in usable]
    unexpected = [k for k in state if k not in own]
    return LoadReport(path, sorted(usable), missing, unexpected, mismatched)


def _log_report(model: WSOLModel, report: LoadReport) -> None:
    logger.info("loaded %d tensors from %s", len(report.loaded), report.path)
    head = _module_name(model, model.classifier) + "."
    fresh = [k for k in report.missing if k.startswith(head)]
    other = [k for k in report.missing
             if k not in fresh and not k.endswith("num_batches_tracked")]
    if fresh:
        logger.info("classifier left freshly initialised: %s", _short(fresh))
    if other:
        logger.warning("missing from %s: %s", report.path, _short(other))
    if report.unexpected:
        logger.warning("unused keys in %s: %s", report.path, _short(report.unexpected))
    if report.mismatched:
        logger.warning("shape mismatch, not loaded: %s", _short(report.mismatched))


def _module_name(root: nn.Module, target: nn.Module) -> str:
    return next(name for name, m in root.named_modules() if m is target)


def _short(keys: list[str], limit: int = 12) -> str:
    more = f" ... (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more
