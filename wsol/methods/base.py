"""The interface every training objective in `wsol.methods` shares, and its registry.

A method turns one clean batch into a scalar loss:

    method = build_method("art", config.method)        # config: wsol.config.MethodConfig
    out = method.step(model, x, y)                      # x (B,3,H,W) in [0,1], y (B,)
    out.loss.backward()

The model arrives in train mode. A method that needs eval mode for an inner attack switches
and restores it itself (`eval_mode`). Methods hold no parameters; all their state is config.

A method carries its own settings: ``@register_method("has", settings=HaSConfig)`` registers the
class with a settings dataclass (validated by `wsol.config`: ``CHOICES`` and ``LIMITS`` class
attributes, ``__post_init__`` for cross-field checks), which becomes the config section
``method.<name>``. A method whose model differs from the plain CAM classifier says how in
`model_options` (ADL layers; ACoL's and SPG's heads), which the trainer passes to `build_model`.

A method trained on more than class labels uses three more hooks, which the trainer calls for every
method (the defaults leave an image-level method as it is):

- `supervision`: "image" (class labels of the train split) or "localization" (the val split's boxes
  and masks, e.g. FSL; the trainer's loader then loads the GT masks too on mask datasets such as
  OpenImages, and the boxes otherwise);
- ``splits(train, val) -> (train, val)``: the WSOLSplits the trainer trains and validates on (FSL:
  part of val, and the held-out rest of it); ValueError where the data cannot serve the method;
- ``targets(batch) -> dict | None``: extra keyword arguments of `step`, built from the collated
  batch (FSL: the foreground target and its pixel weights, (B,H,W) tensors); the trainer moves
  their tensors to the device and calls ``step(model, x, y, **targets)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from wsol.models import running_bn_layers

__all__ = ["StepOutput", "TrainingMethod", "register_method", "build_method", "list_methods", "method_class",
           "method_runs", "method_settings", "eval_mode", "frozen_bn_stats"]


@dataclass
class StepOutput:
    """What one training step produced.

    loss: scalar tensor, differentiable w.r.t. the model parameters.
    logits: (B, C) logits of the input the CE term was computed on (for the train accuracy).
    stats: extra detached scalars to log, e.g. {"ce": ..., "attr": ...}.
    terms: optional, the loss's additive terms as tensors (they sum to `loss`), e.g. ART's
        {"L_attr": lam * l_attr, "CE": ce}, for cost accounting that backpropagates each apart
        (benchmarks/bench_train_step.py --phases); {} when not given.
    """

    loss: torch.Tensor
    logits: torch.Tensor
    stats: dict[str, float] = field(default_factory=dict)
    terms: dict[str, torch.Tensor] = field(default_factory=dict)


class TrainingMethod:
    """Base class: `step(model, x, y) -> StepOutput`. Subclasses set `name`."""

    name = ""
    #: the settings dataclass (None: the method has no settings); set by `register_method`
    settings: type | None = None
    #: the model must be built with ADL layers (build_model(..., adl=True))
    needs_adl = False

    def __init__(self, cfg=None) -> None:
        if cfg is None and self.settings is not None:
            cfg = self.settings()
        self.cfg = cfg

    def model_options(self) -> dict:
        """Keyword arguments for `wsol.models.build_model` that this method's model needs
        (e.g. ``{"architecture_type": "acol", "acol_threshold": 0.7}``); {} for a plain classifier."""
        return {"adl": True} if self.needs_adl else {}

    #: backbone (arch) names the method's model is defined for; None: every arch
    supported_archs: tuple[str, ...] | None = None
    #: named runs of this method for the demo and the table benchmark: label -> `--set` overrides
    #: on top of ``method.name=<name>`` (None: one run, labelled with the method's name)
    run_variants: dict[str, list[str]] | None = None

    #: the saliency whose localization the search selects on by default (validation's "<map>_loc" /
    #: "<map>_pxap"): CAM for the CAM-family methods, the input gradient for ART, PGD-AT, IG-NORM
    localization_map = "cam"

    def search_space(self) -> dict:
        """This method's hyperparameter search space, {config key: wsol.space distribution}, for
        tools/search.py. Every method: the learning rate, log-uniform on [1e-5, 1] (the range recalled
        from Choe et al.'s appendix, REFERENCE.md §12.6, unverified), and the batch size at half, once
        or twice the preset's (ours). Methods add their own keys (`super().search_space()` first)."""
        from wsol.space import LogUniform, Relative

        return {"optim.lr": LogUniform(1e-5, 1.0), "train.batch_size": Relative([0.5, 1.0, 2.0])}

    #: phase recorder for cost accounting: None, or a callable name -> context manager that a
    #: method enters around each phase of its step (benchmarks/bench_train_step.py --phases sets it)
    phase_hook = None

    def phase(self, name: str) -> contextlib.AbstractContextManager:
        """Context around one named phase of a step (e.g. "attack step 1"): `phase_hook(name)`
        when a recorder is set, else nothing. Phases do not nest."""
        return self.phase_hook(name) if self.phase_hook is not None else contextlib.nullcontext()

    #: what the method trains on: "image" (class labels of the train split) or "localization"
    #: (boxes / masks of the val split, e.g. FSL)
    supervision: str = "image"

    def splits(self, train, val) -> tuple:
        """The (train, val) `wsol.data.WSOLSplit`s the trainer should use, from the data's train and
        val splits; unchanged by default. ValueError (naming the split) where they cannot serve."""
        return train, val

    def targets(self, batch: dict) -> dict | None:
        """Extra keyword arguments for `step` from a collated batch (`wsol.data.collate_samples`),
        e.g. {"fg": (B,H,W) tensor}; None (the default): none."""
        return None

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, **targets) -> StepOutput:
        """One step on a clean batch: x (B,3,H,W) in [0,1], y (B,), `targets` from `self.targets(batch)`."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.cfg!r})"


_METHODS: dict[str, type[TrainingMethod]] = {}


def register_method(name: str, settings: type | None = None):
    """Class decorator: register a TrainingMethod subclass under `name`, with its settings
    dataclass `settings` (config section ``method.<name>``; None: no settings). `wsol.config`
    builds its MethodConfig from the methods registered when it is first imported: register a
    method (import its module) before that, as `wsol.methods` does for the built-in ones."""

    def wrap(cls):
        if name in _METHODS:
            raise ValueError(f"method {name!r} is already registered")
        cls.name = name
        cls.settings = settings
        _METHODS[name] = cls
        return cls

    return wrap


def list_methods() -> list[str]:
    """Registered method names, in registration order."""
    return list(_METHODS)


def method_class(name: str) -> type[TrainingMethod]:
    """The registered class of method `name` (ValueError naming the valid ones)."""
    if name not in _METHODS:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(list_methods())}")
    return _METHODS[name]


def method_settings() -> dict[str, type]:
    """Method name -> its settings dataclass, for every registered method that has settings."""
    return {name: cls.settings for name, cls in _METHODS.items() if cls.settings is not None}


def method_runs() -> dict[str, list[str]]:
    """Every registered method's runs for the demo and the table benchmark, in registration
    order: label -> config overrides (``method.name=...`` first), e.g. "art" (the fast mode) and
    "art_faithful" from ART's `run_variants`."""
    runs = {}
    for name, cls in _METHODS.items():
        for label, extra in (cls.run_variants or {name: []}).items():
            runs[label] = [f"method.name={name}", *extra]
    return runs


def build_method(name: str, cfg=None) -> TrainingMethod:
    """The method `name`, configured from `cfg`: the run config's method section (its
    attribute `name`, e.g. ``cfg.method.art``), the settings object itself, or None (defaults)."""
    cls = method_class(name)
    sub = cfg
    if cfg is not None and (cls.settings is None or not isinstance(cfg, cls.settings)):
        sub = getattr(cfg, name, None)
    return cls(sub)


@contextlib.contextmanager
def frozen_bn_stats(model: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """Inside the block (when `enabled`), train-mode BatchNorm layers still normalise with the
    batch's statistics but leave their running statistics as they are (momentum 0 and the batch
    counter restored), so passes made inside it do not move what eval mode later uses. Safe
    for autograd: the running buffers are not written in place after the forward."""
    if not enabled:
        yield model
        return
    saved = []
    for m in running_bn_layers(model):
        count = None if m.num_batches_tracked is None else m.num_batches_tracked.clone()
        saved.append((m, m.momentum, count))
        m.momentum = 0.0
    try:
        yield model
    finally:
        for m, momentum, count in saved:
            m.momentum = momentum
            if count is not None:
                m.num_batches_tracked.copy_(count)


@contextlib.contextmanager
def eval_mode(model: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """Put `model` in eval mode inside the block (when `enabled`), restoring its mode after."""
    was_training = model.training
    if enabled:
        model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
