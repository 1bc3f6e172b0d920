"""The contract every registered training method keeps, on every tiny backbone it supports
(timm's tests/test_models.py pattern, over `wsol.methods.list_methods()`).

For each (method, arch): the model built as the trainer builds it (`build_training_model` with the
method's `model_options()`), one `method.step` in train mode on a batch of 4 (with the extra targets
`method.targets(batch)` builds from a batch holding one GT box an image, as the trainer passes them), then
- a finite scalar loss, detached (B,C) logits, the model still in train mode, numeric stats;
- after `loss.backward()`, a non-zero gradient on every trainable parameter;
- a checkpoint round trip (`save_checkpoint` / `load_checkpoint`, what the trainer and the
  evaluate tools use) that gives the same eval-mode logits and CAMs, bit for bit;
- evaluation maps from the one heatmap function (`saliency_maps`, "cam" and "grad"): (B,H,W),
  finite, in [0,1].

Methods and archs are read from the registries at collection time, so a newly registered method
is tested without editing this file; a combination is skipped only where the method's
`supported_archs` excludes the arch (or the arch is not registered). Each method runs at its
cheapest settings (`CHEAP`): the point is the contract, not the method's strength.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from wsol.attribution import saliency_maps
from wsol.config import load_config
from wsol.engine.checkpoint import load_checkpoint, save_checkpoint
from wsol.engine.train import build_training_model
from wsol.engine.train_state import seed_everything
from wsol.methods import build_method, list_methods, method_class
from wsol.models import list_models

NUM_CLASSES = 3
BATCH = 4
# backbones -> (input side in px each needs, marks). inception_v3 (wsolevaluation's, full width:
# 25M parameters, 42M with ACoL's heads) has no tiny variant; at 48 px (a 3x3 map, about the
# smallest that still has a centre) a case costs 1.5-6 CPU-seconds (ART's double backward the
# most), so its cases run with -m slow.
ARCHS = {"vgg_gap_tiny": (32, ()), "resnet_tiny": (32, ()), "inception_v3": (48, (pytest.mark.slow,))}
# per-method overrides at minimum cost (one attack step, two path points, a small top-k)
CHEAP = {
    "pgd": ["method.pgd.steps=1"],
    "art": ["method.art.steps=1", "method.art.topk=64"],
    "ig_norm": ["method.ig_norm.path_steps=2", "method.ig_norm.approx=2", "method.ig_norm.attack_steps=1"],
    "ig_sum_norm": ["method.ig_sum_norm.path_steps=2", "method.ig_sum_norm.approx=2",
                    "method.ig_sum_norm.attack_steps=1"],
}
SALIENCIES = ("cam", "grad")


def package_methods() -> list[str]:
    """The methods the package registers (tests register their own, e.g. `_test_nan_loss_at_once`
    in test_bad_inputs.py, at import time: which of those exist at collection depends on the
    order the modules were imported in)."""
    return [name for name in list_methods() if method_class(name).__module__.startswith("wsol.")]


def _cases():
    for name, arch in itertools.product(package_methods(), ARCHS):
        supported = method_class(name).supported_archs
        marks = list(ARCHS[arch][1])
        if arch not in list_models():
            marks.append(pytest.mark.skip(reason=f"arch {arch!r} is not registered"))
        elif supported is not None and arch not in supported:
            marks.append(pytest.mark.skip(reason=f"method {name!r} supports only {', '.join(supported)}"))
        yield pytest.param(name, arch, id=f"{name}-{arch}", marks=marks)


def _build(name: str, arch: str):
    cfg = load_config(None, [f"method.name={name}", f"model.arch={arch}", *CHEAP.get(name, [])])
    method = build_method(name, cfg.method)
    seed_everything(0)
    model = build_training_model(cfg, NUM_CLASSES, method.model_options()).train()
    return method, model


def _batch(size: int):
    """(x, y, the collated batch they come in: one GT box an image, for methods trained on boxes)."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(BATCH, 3, size, size, generator=g), torch.arange(BATCH) % NUM_CLASSES
    box = torch.tensor([[size // 4, size // 4, size - 1 - size // 4, size - 1 - size // 4]], dtype=torch.float32)
    return x, y, {"image": x, "label": y, "boxes": [box.clone() for _ in range(BATCH)],
                  "image_id": [f"img{i}.jpg" for i in range(BATCH)]}


@pytest.mark.parametrize("name,arch", list(_cases()))
def test_method_contract(name, arch, tmp_path):
    method, model = _build(name, arch)
    x, y, batch = _batch(ARCHS[arch][0])
    x0 = x.clone()

    # one training step
    seed_everything(2)   # ADL's drop draws, dropout, attacks' random starts, HaS / CutMix draws
    out = method.step(model, x, y, **(method.targets(batch) or {}))
    assert model.training, f"{name}: the model must come back in train mode"
    assert torch.equal(x, x0), f"{name}: the caller's batch was modified"
    assert out.loss.ndim == 0 and torch.isfinite(out.loss), f"{name}: loss {out.loss}"
    assert out.logits.shape == (BATCH, NUM_CLASSES) and not out.logits.requires_grad
    assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in out.stats.values()), out.stats
    out.loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    no_grad = [n for n, p in trainable if p.grad is None]
    zero_grad = [n for n, p in trainable if p.grad is not None and not p.grad.abs().sum() > 0]
    assert not no_grad, f"{name} on {arch}: no gradient reaches {no_grad}"
    assert not zero_grad, f"{name} on {arch}: all-zero gradient on {zero_grad}"
    assert all(torch.isfinite(p.grad).all() for _, p in trainable)

    # checkpoint round trip: same eval-mode logits and maps
    model.eval()
    with torch.no_grad():
        logits = model(x)
    save_checkpoint(tmp_path / "checkpoint", model, class_names=[f"c{i}" for i in range(NUM_CLASSES)],
                    image_size=ARCHS[arch][0], extra={"method": name})
    loaded, meta = load_checkpoint(tmp_path / "checkpoint", arch=arch, num_classes=NUM_CLASSES)
    assert not loaded.training and meta["method"] == name
    with torch.no_grad():
        assert torch.equal(loaded(x), logits), f"{name} on {arch}: logits differ after the round trip"

    # evaluation maps
    for saliency in SALIENCIES:
        maps, map_logits = saliency_maps(model, x, y, saliency)
        assert maps.shape == (BATCH, *x.shape[-2:]), (saliency, maps.shape)
        assert torch.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1, saliency
        assert map_logits.shape == (BATCH, NUM_CLASSES)
        if saliency == "cam":   # the method's own test-time map (`class_maps`, e.g. ACoL's) survives the trip
            again, _ = saliency_maps(loaded, x, y, saliency)
            assert torch.equal(again, maps), f"{name} on {arch}: CAMs differ after the round trip"


def test_every_method_is_covered():
    """The table above names only registered methods (a renamed method must not silently lose its
    cheap settings), and every registered method is exercised on at least one arch."""
    assert set(CHEAP) <= set(package_methods()), set(CHEAP) - set(package_methods())
    for name in package_methods():
        supported = method_class(name).supported_archs
        assert supported is None or set(supported) & {a for a in ARCHS if a in list_models()}, (
            f"method {name!r} supports none of the contract's archs {list(ARCHS)}: add a tiny arch it supports")
