"""HaS and CutMix against wsolevaluation's own code (tests/wsolevaluation_ref, REFERENCE.md §12.3.1, §12.3.4).

Same inputs and random state (Python `random`, NumPy, torch seeded identically before ours and
before the reference): the hidden / mixed image (ours normalized vs theirs, which works on the
normalized batch), labels, lambda and the loss as main.py's `_wsol_training` computes it.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import wsolevaluation_ref.method as ref
from wsol.config import load_config
from wsol.methods import build_method
from wsol.methods.cutmix import CutMixConfig, CutMixMethod, cutmix
from wsol.methods.has import HaSConfig, HaSMethod, has_mask, hide_patches
from wsol.models import build_model
from wsol.settings import ConfigError

NUM_CLASSES = 5


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_states() -> tuple:
    """A fingerprint of the three generators' states (equal states -> equal next draws)."""
    return random.getstate(), np.random.get_state()[1].tobytes(), np.random.get_state()[2], torch.get_rng_state()


def same_states(a: tuple, b: tuple) -> bool:
    return a[:3] == b[:3] and torch.equal(a[3], b[3])


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("vgg_gap_tiny", NUM_CLASSES).train()


def images(b=3, h=32, w=32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=g), torch.randint(0, NUM_CLASSES, (b,), generator=g)


@pytest.fixture
def cpu_cuda(monkeypatch):
    """The reference's `torch.randperm(N).cuda()` on a CPU-only machine: `.cuda()` is the identity
    (the permutation is drawn from the CPU generator either way)."""
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)


# -- HaS ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("g", [0, 1, 3, 4, 5, 7, 16, 40])
@pytest.mark.parametrize("tiling", ["fixed", "wsoleval"])
def test_has_image_equals_reference_on_square_inputs(model, g, tiling):
    x, _ = images(b=3, h=20, w=20)
    seed_all(7)
    ours = model.normalize(hide_patches(x, g, 0.5, model.mean, tiling))
    after_ours = rng_states()
    seed_all(7)
    theirs = ref.has(model.normalize(x).clone(), g, 0.5)
    assert torch.equal(ours, theirs)
    assert same_states(after_ours, rng_states()), "the same number of draws from the same generators"
    if g:
        assert 0 < (ours == 0).all(1).float().mean() < 1


def test_has_fill_is_zero_after_normalization(model):
    x, _ = images(b=2, h=16, w=16)
    seed_all(0)
    hidden = has_mask(2, 16, 16, 4, 0.5)
    seed_all(0)
    out = model.normalize(hide_patches(x, 4, 0.5, model.mean))
    assert hidden.any() and not hidden.all()
    assert torch.equal(out[hidden[:, None].expand_as(out)], torch.zeros(int(hidden.sum()) * 3))
    assert torch.equal(out[~hidden[:, None].expand_as(out)], model.normalize(x)[~hidden[:, None].expand_as(out)])


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_has_drop_rate_extremes_and_draw_comparison(p):
    """`random.random() <= p`: p 0 hides nothing, p 1 hides everything (fixed tiling)."""
    seed_all(3)
    hidden = has_mask(2, 12, 12, 3, p)
    if p == 0.0:
        assert not hidden.any()
    elif p == 1.0:
        assert hidden.all()
    seed_all(3)
    expected = [random.random() <= p for _ in range(2 * 4 * 4)]
    assert hidden[:, ::3, ::3].flatten().tolist() == expected


def test_has_step_equals_main_py(model):
    """HaSMethod.step: the logits and loss of main.py (`has(images)` then `model(images)` + CE)."""
    x, y = images(b=4, h=32, w=32, seed=2)
    x0 = x.clone()
    method = build_method("has", load_config(None, ["method.name=has"]).method)
    seed_all(11)
    out = method.step(model, x, y)
    assert torch.equal(x, x0), "the caller's batch is not modified"
    seed_all(11)
    hidden = ref.has(model.normalize(x).clone(), 4, 0.5)
    logits = model.head(model.extract(hidden))
    assert torch.equal(out.logits, logits.detach())
    assert torch.equal(out.loss, F.cross_entropy(logits, y))
    assert out.stats["ce"] == out.loss.item()


def naive_has(image: torch.Tensor, g: int, p: float) -> torch.Tensor:
    """HaS with the right tiling, written as the reference's loops: rows over H, columns over W."""
    if g == 0:
        return image
    _, _, H, W = image.shape
    for b in range(image.shape[0]):
        for r in range(0, H, g):
            for c in range(0, W, g):
                if random.random() <= p:
                    image[b, :, r:min(H, r + g), c:min(W, c + g)] = 0.
    return image


@pytest.mark.parametrize("hw", [(12, 20), (20, 12), (9, 14)])
@pytest.mark.parametrize("g", [3, 4, 25])
def test_has_non_square_tilings(model, hw, g):
    """"wsoleval" = the reference's H-clipped grid (its bug included); "fixed" = rows over H, columns over W."""
    H, W = hw
    x, _ = images(b=2, h=H, w=W)
    seed_all(5)
    wsoleval = model.normalize(hide_patches(x, g, 0.5, model.mean, "wsoleval"))
    after = rng_states()
    seed_all(5)
    assert torch.equal(wsoleval, ref.has(model.normalize(x).clone(), g, 0.5))
    assert same_states(after, rng_states())

    seed_all(5)
    fixed = model.normalize(hide_patches(x, g, 0.5, model.mean, "fixed"))
    after = rng_states()
    seed_all(5)
    assert torch.equal(fixed, naive_has(model.normalize(x).clone(), g, 0.5))
    assert same_states(after, rng_states())

    # p = 1: the fixed grid hides the whole image; the reference's only rows < min(H, ceil(W/g) g)
    # (its row blocks run over W, clipped to H) and columns < min(H, W) (column ends clipped to H)
    full = has_mask(1, H, W, g, 1.0, "fixed")[0]
    bug = has_mask(1, H, W, g, 1.0, "wsoleval")[0]
    assert full.all()
    rows, cols = min(H, -(-W // g) * g), min(H, W)
    assert bug[:rows, :cols].all() and int(bug.sum()) == rows * cols


def test_has_grid_size_zero_draws_nothing(model):
    x, y = images()
    method = HaSMethod(HaSConfig(has_grid_size=0))
    seed_all(1)
    before = rng_states()
    assert hide_patches(x, 0, 0.5, model.mean) is x
    out = method.step(model, x, y)
    assert same_states(before, rng_states())
    assert torch.equal(out.logits, model(x).detach())


def test_has_needs_a_normalizing_model():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    with pytest.raises(ValueError, match="normalizes its input"):
        HaSMethod().step(net, *images(b=2, h=8, w=8))


def test_has_mask_bad_arguments():
    with pytest.raises(ValueError, match="has_tiling.*fixed, wsoleval"):
        has_mask(1, 8, 8, 2, 0.5, "rows")
    with pytest.raises(ValueError, match="has_grid_size must be an integer >= 0"):
        has_mask(1, 8, 8, -1, 0.5)


# -- CutMix -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("hw", [(16, 16), (12, 20), (21, 9)])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_cutmix_equals_reference(model, cpu_cuda, hw, seed, beta):
    x, y = images(b=5, h=hw[0], w=hw[1], seed=seed + 10)
    x0 = x.clone()
    seed_all(seed)
    mixed, y_a, y_b, lam = cutmix(x, y, beta)
    after = rng_states()
    assert torch.equal(x, x0), "ours works on a copy"
    seed_all(seed)
    r_mixed, r_a, r_b, r_lam = ref.cutmix(model.normalize(x), y, beta)
    assert same_states(after, rng_states()), "same draws in the same order (np beta, torch randperm, np randint x2)"
    assert torch.equal(model.normalize(mixed), r_mixed)
    assert torch.equal(y_a, r_a) and torch.equal(y_b, r_b)
    assert isinstance(lam, float) and lam == r_lam
    assert 0.0 <= lam <= 1.0


def reference_wsol_training(model, images_, target, prob, beta):
    """wsolevaluation main.py `_wsol_training` for cutmix, on a CAM model (normalized input)."""
    if prob > np.random.rand(1) and beta > 0:
        images_, target_a, target_b, lam = ref.cutmix(images_, target, beta)
        logits = model.head(model.extract(images_))
        loss = F.cross_entropy(logits, target_a) * lam + F.cross_entropy(logits, target_b) * (1. - lam)
        return logits, loss
    logits = model.head(model.extract(images_))
    return logits, F.cross_entropy(logits, target)


@pytest.mark.parametrize("prob,beta", [(1.0, 1.0), (0.5, 1.0), (0.5, 2.0), (1.0, 0.0), (0.0, 1.0)])
def test_cutmix_step_equals_main_py(model, cpu_cuda, prob, beta):
    method = build_method("cutmix", CutMixConfig(cutmix_beta=beta, cutmix_prob=prob))
    mixed_steps = 0
    for seed in range(6):
        x, y = images(b=4, h=32, w=32, seed=seed)
        x0 = x.clone()
        seed_all(seed)
        out = method.step(model, x, y)
        after = rng_states()
        assert torch.equal(x, x0)
        seed_all(seed)
        logits, loss = reference_wsol_training(model, model.normalize(x), y, prob, beta)
        assert same_states(after, rng_states())
        assert torch.equal(out.logits, logits.detach())
        assert torch.equal(out.loss, loss)
        assert out.loss.requires_grad
        mixed_steps += out.stats["lam"] != 1.0
    if prob == 0.5 and beta > 0:
        assert 0 < mixed_steps < 6, "both branches were exercised"
    if beta == 0 or prob == 0:
        assert mixed_steps == 0


def test_cutmix_on_the_device_of_x(model, cpu_cuda):
    """The permutation comes from the CPU generator and moves to x's device (here: also CPU)."""
    x, y = images(b=6, h=8, w=8)
    seed_all(4)
    _, _, y_b, _ = cutmix(x, y, 1.0)
    seed_all(4)
    np.random.beta(1.0, 1.0)
    assert torch.equal(y_b, y[torch.randperm(6)])


# -- settings -----------------------------------------------------------------------------------------

def test_defaults_are_wsolevaluations():
    cfg = load_config(None, ["method.name=has"]).method
    assert (cfg.has.has_grid_size, cfg.has.has_drop_rate, cfg.has.has_tiling) == (4, 0.5, "fixed")
    assert (cfg.cutmix.cutmix_beta, cfg.cutmix.cutmix_prob) == (1.0, 1.0)
    assert isinstance(build_method("has", cfg), HaSMethod)
    assert isinstance(build_method("cutmix", cfg), CutMixMethod)
    assert build_method("has", cfg).model_options() == {} == build_method("cutmix", cfg).model_options()


@pytest.mark.parametrize("override,message", [
    ("method.has.has_drop_rate=2", "method.has.has_drop_rate must be a finite number in [0, 1], got 2.0"),
    ("method.has.has_drop_rate=-0.1", "method.has.has_drop_rate must be a finite number in [0, 1]"),
    ("method.has.has_grid_size=-1", "method.has.has_grid_size must be an integer >= 0, got -1"),
    ("method.has.has_grid_size=2.5", "method.has.has_grid_size: expected int, got 2.5"),
    ("method.has.has_tiling=rows", "method.has.has_tiling: 'rows' is not one of fixed, wsoleval"),
    ("method.cutmix.cutmix_beta=-1", "method.cutmix.cutmix_beta must be a finite number >= 0, got -1.0"),
    ("method.cutmix.cutmix_beta=.inf", "method.cutmix.cutmix_beta must be a finite number >= 0"),
    ("method.cutmix.cutmix_prob=1.5", "method.cutmix.cutmix_prob must be a finite number in [0, 1], got 1.5"),
])
def test_bad_settings_name_the_key(override, message):
    method = override.split(".")[1]
    with pytest.raises(ConfigError) as err:
        load_config(None, [f"method.name={method}", override])
    assert message in str(err.value)
    assert err.value.key == override.partition("=")[0]


def test_settings_checked_when_built_directly():
    with pytest.raises(ConfigError, match=r"has.has_drop_rate must be a finite number in \[0, 1\]"):
        HaSConfig(has_drop_rate=2.0)
    with pytest.raises(ConfigError, match="has.has_tiling: 'x' is not one of fixed, wsoleval"):
        HaSConfig(has_tiling="x")
    with pytest.raises(ConfigError, match="has.has_grid_size must be an integer >= 0, got 2.5"):
        HaSConfig(has_grid_size=2.5)
    with pytest.raises(ConfigError, match="cutmix.cutmix_prob"):
        CutMixConfig(cutmix_prob=-1)
