"""Experiment configuration: nested dataclasses loaded from YAML, overridable by `--set`.

    cfg = load_config("configs/cub/vgg_gap_art.yaml", overrides=["train.epochs=3", "method.art.beta=50"])
    save_config(cfg, run_dir / "config.yaml")

Unknown keys, values of the wrong type and numbers out of range are errors that name the key,
where it came from (the file, or the `--set key=value` / flag that set it) and what is valid, so
a typo never runs silently with a default. Each section's ``LIMITS`` gives its numbers' ranges;
every float must be finite.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from wsol.methods import list_methods, method_settings
from wsol.methods.art import ARTConfig
from wsol.settings import (FRACTION_OPEN, NONNEG, ONE_UP, POSITIVE, UNIT, ConfigError, Range, _join,
                           check_limits)

__all__ = [
    "ARTConfig", "Config", "ConfigError", "Range", "DataConfig", "MethodConfig", "ModelConfig", "OptimConfig",
    "SyntheticConfig", "TrainConfig", "ValConfig", "config_to_dict", "from_dict", "load_config",
    "save_config", "apply_overrides", "check_limits",
]


_FRACTION = re.compile(r"^\s*[-+]?\d+(\.\d*)?\s*/\s*\d+(\.\d*)?\s*$")


@dataclass
class SyntheticConfig:
    """The built-in synthetic CUB-format dataset used when `data.root` is not set."""

    LIMITS: ClassVar[dict] = {"num_classes": Range(1, 256), "images_per_class": Range(2), "size": Range(32),
                              "seed": NONNEG, "train_fraction": Range(0, 1, lo_open=True, hi_open=True)}

    num_classes: int = 10
    images_per_class: int = 60
    size: int = 96
    seed: int = 0
    train_fraction: float = 0.5


@dataclass
class DataConfig:
    CHOICES: ClassVar[dict] = {"dataset": ("cub", "ilsvrc", "openimages", "cifar10", "svhn", "gtsrb", "flowers17",
                                           "flowers102")}
    LIMITS: ClassVar[dict] = {"image_size": ONE_UP, "resize_size": ONE_UP, "val_per_class": NONNEG,
                              "fold": Range(1, 3), "pad": NONNEG, "hflip": UNIT, "color_jitter": NONNEG,
                              "rotation": Range(0, 180), "num_workers": NONNEG,
                              "proxy_fraction": Range(0, 1, lo_open=True), "proxy_seed": NONNEG}

    dataset: str = "cub"               # WSOL: cub, ilsvrc (boxes), openimages (masks), wsol.data.datasets;
                                       # or a classification set (tools/train_classifier.py)
    root: str | None = None            # dataset folder: CUB (official layout) or wsolevaluation metadata
                                       # (metadata/<CUB|ILSVRC|OpenImages> or its parent); None: synthetic CUB
    image_root: str | None = None      # images, apart from the metadata (wsolevaluation: dataset/<Dataset>);
                                       # None: found beside the metadata (wsol.data.wsoleval)
    mask_root: str | None = None       # OpenImages mask paths are relative to it (None: the image root)
    cache_dir: str | None = None       # where the synthetic data is generated once (default ~/.cache/art-wsol)
    image_size: int = 224              # crop side S
    resize_size: int | None = None     # train resize R before the random crop (default: 256 for 224)
    train_transform: str = "train"     # wsol.data.build_transform kind
    eval_transform: str = "wsoleval"
    val_per_class: int = 5             # images per class carved from train for val (official CUB layout, and
                                       # classification sets without an official val split)
    fold: int = 1                      # flowers17: which of the 3 official datasplits.mat folds
    pad: int = 4                       # classification train augmentation: reflect pad, random crop, h-flip
    hflip: float = 0.5                 # ... probability of the horizontal flip (0 for digits and traffic signs)
    color_jitter: float = 0.0          # ... + ColorJitter(b, c, s) of this strength (ART CIFAR: 0.25)
    rotation: float = 0.0              # ... + random rotation within +-degrees (ART CIFAR: 2)
    num_workers: int = 0
    skip_bad_images: bool = True
    proxy: bool = False                # train on a proxy of the train split (hyperparameter search, e.g. on
                                       # ILSVRC): wsolevaluation's train/image_ids_proxy.txt, or with
                                       # proxy_fraction a seeded share of every class (wsol.data.subset)
    proxy_fraction: float | None = None
    proxy_seed: int = 0
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)

    def __post_init__(self) -> None:
        if self.proxy_fraction is not None and not self.proxy:
            raise ConfigError("data.proxy_fraction is set but data.proxy is false; set data.proxy=true to train "
                              "on that share of every class", key="data.proxy_fraction")


@dataclass
class ModelConfig:
    LIMITS: ClassVar[dict] = {"num_classes": ONE_UP, "adl_drop_rate": UNIT, "adl_gamma": UNIT}

    arch: str = "vgg_gap"
    num_classes: int | None = None     # None: from the data; set, it must match the data
    pretrained: bool | str = False     # True: ImageNet weights from the local cache; or a file path
    allow_random_init: bool = False    # pretrained weights missing: continue from random init (warn)
    pretrained_classifier: bool = False  # also load the pretrained classifier (1000 classes: ILSVRC), as
                                         # wsolevaluation does for ResNet50 CAM/HaS/CutMix/ADL on ILSVRC
    adl: bool = False                  # forced on by method "adl"
    adl_drop_rate: float = 0.75
    adl_gamma: float | None = None     # None: the architecture's paper value (VGG 0.8, ResNet 0.9, InceptionV3 0.9)
    adl_positions: str = "wsoleval"
    kwargs: dict = field(default_factory=dict)  # more build_model options (width, large_feature_map, ...)


def _method_config_class() -> type:
    """MethodConfig: ``name`` plus one section per registered method with settings (its own
    dataclass, defined beside the method), so adding a method adds its section here."""
    fields_ = [("name", str, field(default="natural"))]
    fields_ += [(name, cls, field(default_factory=cls)) for name, cls in method_settings().items()]
    cls = dataclasses.make_dataclass("MethodConfig", fields_, namespace={"__post_init__": _check_method_name})
    cls.__module__ = __name__
    return cls


def _check_method_name(self) -> None:
    if self.name not in list_methods():
        raise ConfigError(f"method.name: {self.name!r} is not one of {', '.join(list_methods())}", key="method.name")


MethodConfig = _method_config_class()
MethodConfig.__doc__ = ("The training method (`method.name`, one of wsol.methods.list_methods()) and every "
                        "registered method's settings (`method.<name>.<key>`).")


@dataclass
class OptimConfig:
    """SGD with Nesterov momentum, new layers at lr * new_layer_lr_mult, step decay (REFERENCE §1.4)."""

    LIMITS: ClassVar[dict] = {"lr": Range(0, 10, lo_open=True), "new_layer_lr_mult": Range(0, 1000),
                              "momentum": Range(0, 1, hi_open=True), "weight_decay": Range(0, 1, hi_open=True),
                              "lr_step": ONE_UP, "lr_gamma": FRACTION_OPEN, "grad_clip": POSITIVE}

    lr: float = 0.01
    new_layer_lr_mult: float = 10.0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    lr_step: int = 40                  # epochs between decays (ignored when milestones are given)
    lr_milestones: list = field(default_factory=list)  # e.g. [50, 80]
    lr_gamma: float = 0.1
    grad_clip: float | None = None     # max global grad norm, None: off


@dataclass
class ValConfig:
    """Validation after each epoch on the held-out split (never test)."""

    CHOICES: ClassVar[dict] = {"select_metric": ("top1_acc", "loss", "grad_loc", "cam_loc", "gradcam_loc",
                                                 "gradcampp_loc", "ig_loc", "smoothgrad_loc", "gradshap_loc",
                                                 "grad_pxap", "cam_pxap", "gradcam_pxap", "gradcampp_pxap",
                                                 "ig_pxap", "smoothgrad_pxap", "gradshap_pxap",
                                                 "pgd_acc", "last"),
                               "protocol": ("wsolevaluation", "paper")}
    LIMITS: ClassVar[dict] = {"every": ONE_UP, "cam_curve_interval": Range(0, 0.5, lo_open=True),
                              "batch_size": ONE_UP, "max_images": ONE_UP, "pgd_every": NONNEG,
                              "pgd_steps": NONNEG, "pgd_epsilon": NONNEG, "pgd_step_size": NONNEG,
                              "pgd_max_images": ONE_UP}

    every: int = 1                     # epochs
    saliencies: list = field(default_factory=lambda: ["grad", "cam"])
    cam_curve_interval: float = 0.01
    batch_size: int = 32
    select_metric: str = "top1_acc"    # top1_acc | loss | <saliency>_loc (boxes: MaxBoxAccV2) |
                                       # <saliency>_pxap (masks: PxAP) | pgd_acc | last
    protocol: str = "wsolevaluation"   # map conventions: wsolevaluation | paper (REFERENCE §6)
    max_images: int | None = None      # cap for quick runs (deterministic prefix of val)
    pgd_every: int = 0                 # epochs between PGD accuracy checks on val (0: never; ART CIFAR: 10)
    pgd_steps: int = 40                # L-inf PGD with random start (REFERENCE §7.4: PGD-40)
    pgd_epsilon: float = 8 / 255
    pgd_step_size: float = 2 / 255
    pgd_max_images: int | None = 1000  # PGD check on this prefix of val


@dataclass
class TrainConfig:
    CHOICES: ClassVar[dict] = {"amp": ("none", "bf16")}
    LIMITS: ClassVar[dict] = {"epochs": ONE_UP, "batch_size": ONE_UP, "seed": NONNEG, "log_every": ONE_UP,
                              "max_steps_per_epoch": ONE_UP, "nan_tolerance": NONNEG}

    epochs: int = 200
    batch_size: int = 12
    seed: int = 0
    device: str = "auto"               # auto | cpu | cuda | cuda:N
    amp: str = "none"                  # none | bf16 (CUDA autocast for the forward passes)
    log_every: int = 20                # steps between progress-bar metric refreshes
    max_steps_per_epoch: int | None = None  # cap for smoke tests
    drop_last: bool = True             # drop the last incomplete batch (when train has more than one)
    nan_tolerance: int = 0             # non-finite losses tolerated (skipped) before stopping


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    val: ValConfig = field(default_factory=ValConfig)
    preset: str = "art2020"            # the preset whose quirks the numbers follow (REFERENCE.md)
    notes: str = ""


# -- dict <-> dataclass ------------------------------------------------------------------

def _field_types(cls) -> dict[str, Any]:
    """Field name -> resolved annotation, in declaration order (ClassVars excluded)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _check_value(value: Any, tp: Any, where: str) -> Any:
    """Coerce/check a YAML value against an annotation (scalars, unions, list, dict)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_value(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else
                          f"{where}: expected {_type_name(tp)}, got {value!r}", key=where)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FRACTION.match(value):  # "2/255", as the papers write epsilons
            num, den = (float(v) for v in value.split("/"))
            if den != 0:
                return num / den
        if isinstance(value, str):  # PyYAML (YAML 1.1) reads 5e-4 as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is list or origin is list:
        if isinstance(value, (list, tuple)):
            return list(value)
    elif tp is dict or origin is dict:
        if isinstance(value, dict):
            return dict(value)
    elif dataclasses.is_dataclass(tp):
        if isinstance(value, dict):
            return from_dict(tp, value, where)
        if isinstance(value, tp):
            return value
    else:
        return value
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}", key=where)


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def from_dict(cls, data: dict, where: str = "config"):
    """Build dataclass `cls` from a (nested) dict at dotted key `where` ("" for the top level).

    Unknown keys raise ConfigError listing the valid ones; wrong types, choices and numbers
    outside ``cls.LIMITS`` raise ConfigError naming the key and what is valid.
    """
    name = where or "config"
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: expected a mapping, got {data!r}", key=where)
    types_ = _field_types(cls)
    unknown = sorted(set(data) - set(types_))
    if unknown:
        raise ConfigError(f"{name}: unknown key{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(repr(k) for k in unknown)}; valid keys: {', '.join(types_)}", key=where)
    kwargs = {k: _check_value(v, types_[k], _join(where, k)) for k, v in data.items()}
    for key, valid in getattr(cls, "CHOICES", {}).items():
        if key in kwargs and kwargs[key] not in valid:
            raise ConfigError(f"{_join(where, key)}: {kwargs[key]!r} is not one of {', '.join(map(str, valid))}",
                              key=_join(where, key))
    check_limits(cls, kwargs, where)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:  # a section's own validation (e.g. PGDConfig.__post_init__)
        raise ConfigError(f"{name}: {err}", key=getattr(err, "key", None) or where) from err


def config_to_dict(cfg) -> dict:
    """Dataclass tree -> plain dict (YAML-safe)."""
    return dataclasses.asdict(cfg)


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# -- files and overrides -----------------------------------------------------------------

def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config file ({err.strerror or err})") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(err, 'problem', err)})") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    base = data.pop("base", None)  # `base: other.yaml` inherits another file, relative to this one
    if base is not None:
        data = _merge(_read_yaml((path.parent / base).resolve()), data)
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """'a.b.c=value' -> (['a','b','c'], YAML-parsed value)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected key=value, e.g. train.epochs=3")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {text!r}: value is not valid YAML ({err})") from err
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: list[str], cls=None) -> dict:
    """Apply `key.path=value` strings to a nested dict (keys checked against `cls`, default Config)."""
    cls = cls or Config
    out = _merge({}, data)
    for text in overrides:
        path, value = parse_override(text)
        node, node_cls = out, cls
        for i, key in enumerate(path):
            types_ = _field_types(node_cls) if node_cls is not None else None
            if types_ is not None and key not in types_:
                where = ".".join(path[:i]) or "config"
                raise ConfigError(f"--set {text}: unknown key {key!r} in {where}; valid keys: {', '.join(types_)}")
            if i == len(path) - 1:
                node[key] = value
                break
            sub = types_.get(key) if types_ else None
            node_cls = sub if dataclasses.is_dataclass(sub) else None
            if not isinstance(node.get(key), dict):
                if node_cls is None and key in (types_ or {}):
                    raise ConfigError(f"--set {text}: {'.'.join(path[:i + 1])} is not a section")
                node[key] = {}
            node = node[key]
    return out


Override = str | tuple[str, str]   # "key=value", or (label, "key=value"), e.g. ("--epochs -1", "train.epochs=-1")


def load_config(path: str | os.PathLike | None = None, overrides: list[Override] | None = None,
                base: dict | None = None) -> Config:
    """Config from defaults <- `base` dict <- YAML file <- `--set` overrides.

    An error names where the bad value came from: the override that set the key (``--set
    key=value``, or the label of a (label, "key=value") pair: a command-line flag), else the file
    (or "config" without one).
    """
    data: dict = dict(base or {})
    source = "config"
    if path is not None:
        path = Path(path)
        data = _merge(data, _read_yaml(path))
        source = str(path)
    applied = []  # (label, dotted key)
    for item in overrides or []:
        label, text = item if isinstance(item, tuple) else (f"--set {item}", item)
        try:
            data = apply_overrides(data, [text])
        except ConfigError as err:
            raise ConfigError(str(err).replace(f"--set {text}", label, 1)) from err
        applied.append((label, text.partition("=")[0].strip()))
    try:
        return from_dict(Config, data, "")
    except ConfigError as err:
        raise ConfigError(f"{_blame(err.key, applied) or source}: {err}", key=err.key) from err


def _blame(key: str | None, applied: list[tuple[str, str]]) -> str | None:
    """The override(s) behind a problem at dotted `key`: the last one that set it (or a section
    above it), else every one inside it (a section's cross-field check); None: none did."""
    if key is None:
        return None
    above = [label for label, k in applied if key == k or key.startswith(k + ".")]
    if above:
        return above[-1]
    inside = [label for label, k in applied if not key or k.startswith(key + ".")]
    return ", ".join(dict.fromkeys(inside)) or None


def save_config(cfg: Config, path: str | os.PathLike) -> Path:
    """Write the effective config as YAML (the same file `load_config` reads back)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), encoding="utf-8")
    return path
