"""`inception_v3` against wsolevaluation's InceptionCam / InceptionAdl (tests/wsolevaluation_ref).

Both models get identical weights (ours <- the reference's state dict, `SPG_A4` (C,1024,1,1) ->
`fc` (C,1024)), the same inputs (the reference takes the normalized batch) and the same torch seed.
Inputs are 48 px (a 3x3 map) except the 224 shape checks; the comparisons run in float64.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
import torchvision
import wsolevaluation_ref as W

from wsol.attribution.cam import cam_and_logits
from wsol.attribution.maps import saliency_maps
from wsol.localization import normalize_scoremap
from wsol.models import build_model
from wsol.models.inception import (TRUNK_NAMES, InceptionBStride1, is_inception_pretrained_name,
                                   make_inception_trunk)
from wsol.models.pretrained import torchvision_weights_url

C = 5
SIZE = 48


def ref_to_ours(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The reference's state dict -> ours: `SPG_A4` (1x1 conv) becomes `fc` (Linear)."""
    out = dict(state)
    out["fc.weight"] = out.pop("SPG_A4.weight").flatten(1)
    out["fc.bias"] = out.pop("SPG_A4.bias")
    return out


def _randomize(ref: torch.nn.Module, seed: int) -> None:
    """Non-trivial BN affine / running statistics and conv biases (xavier init leaves them 1 / 0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(1 + 0.5 * torch.rand(m.running_var.shape, generator=g))
            elif isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))


def _pair(seed: int, **kw):
    """(ours, reference) with identical float64 weights."""
    adl = kw.pop("adl", False)
    ref_kw = dict(adl_drop_rate=kw["adl_drop_rate"], adl_drop_threshold=kw["adl_gamma"]) if adl else {}
    ref = W.inception_v3(architecture_type="adl" if adl else "cam", pretrained=False, num_classes=C,
                         large_feature_map=kw.get("large_feature_map", False), **ref_kw)
    _randomize(ref, seed)
    ours = build_model("inception_v3", C, adl=adl, **kw)
    ours.load_state_dict(ref_to_ours(ref.state_dict()), strict=True)
    return ours.double().eval(), ref.double().eval()


@pytest.fixture(scope="module")
def cam_pair():
    return _pair(0)


@pytest.fixture(scope="module")
def adl_pair():
    return _pair(1, adl=True, adl_drop_rate=0.5, adl_gamma=0.7)


def _images(n: int = 2, size: int = SIZE, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-9) -> None:
    scale = b.abs().max().item()
    assert scale > 0
    torch.testing.assert_close(a, b, atol=tol * scale, rtol=tol)


# ---------------------------------------------------------------- layout

def test_trunk_layout_and_torchvision_names():
    trunk = make_inception_trunk()
    assert tuple(trunk) == TRUNK_NAMES
    assert isinstance(trunk["Mixed_6a"], InceptionBStride1)
    assert isinstance(make_inception_trunk(large_feature_map=True)["maxpool_5d"], torch.nn.Identity)
    tv = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict()
    ours = torch.nn.Sequential(trunk).state_dict()
    # every trunk tensor exists in torchvision's checkpoint with the same shape
    assert all(k in tv and tv[k].shape == v.shape for k, v in ours.items())
    assert {k.split(".")[0] for k in tv} - {k.split(".")[0] for k in ours} == {
        "Mixed_7a", "Mixed_7b", "Mixed_7c", "AuxLogits", "fc"}


def test_same_seed_gives_the_reference_initialisation():
    """Construction + xavier init draw the same random numbers as InceptionCam's."""
    torch.manual_seed(3)
    ref = W.inception_v3(architecture_type="cam", pretrained=False, num_classes=C, large_feature_map=False)
    torch.manual_seed(3)
    ours = build_model("inception_v3", C)
    expected = ref_to_ours(ref.state_dict())
    got = ours.state_dict()
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in got)


@pytest.mark.parametrize("large,side", [(False, 14), (True, 28)])
def test_feature_map_size_at_224(large, side):
    """Shape arithmetic on the meta device (no compute): 1024 x 14 x 14 (28 with large_feature_map);
    the Mixed_6e map is 768 x side x side; the reference's class map has the same size."""
    ours = build_model("inception_v3", C, large_feature_map=large).to("meta")
    x = torch.empty(1, 3, 224, 224, device="meta")
    assert ours.features(x).shape == (1, 1024, side, side)
    h = x
    for name in TRUNK_NAMES:
        h = getattr(ours, name)(h)
    assert h.shape == (1, 768, side, side)
    ref = W.inception_v3(architecture_type="cam", pretrained=False, num_classes=C,
                         large_feature_map=large).to("meta")
    cams = ref(x, torch.zeros(1, dtype=torch.long, device="meta"), return_cam=True)
    assert cams.shape == (1, side, side)


def test_real_forward_at_224():
    model = build_model("inception_v3", C).eval()
    with torch.no_grad():
        logits, feats = model.forward_with_features(torch.rand(1, 3, 224, 224))
    assert feats.shape == (1, 1024, 14, 14) and logits.shape == (1, C)
    assert torch.isfinite(logits).all()


def test_parameter_count():
    model = build_model("inception_v3", 200)
    trunk = sum(p.numel() for n, p in model.named_parameters() if is_inception_pretrained_name(n))
    assert trunk == 8_965_856
    assert sum(p.numel() for p in model.parameters()) == trunk + (768 * 9 + 1) * 1024 + (1024 * 9 + 1) * 1024 \
        + 1025 * 200 == 25_687_976


# ---------------------------------------------------------------- equivalence, CAM model

def test_eval_logits_and_features_equal(cam_pair):
    ours, ref = cam_pair
    x = _images()
    with torch.no_grad():
        logits, feats = ours.forward_with_features(x)
        expected = ref(ours.normalize(x))["logits"]
    _close(logits, expected)
    assert feats.shape == (2, 1024, 3, 3)
    _close(ours.head(feats), logits)


def test_cam_equals_reference_spg_a4_map(cam_pair):
    """Ours: mean_k w[c,k] F_k; the reference: SPG_A4(F)[c] = sum_k w[c,k] F_k + b_c."""
    ours, ref = cam_pair
    x, y = _images(seed=1), torch.tensor([1, 3])
    with torch.no_grad():
        cams, logits = cam_and_logits(ours, x, y)
        ref_cams = ref(ours.normalize(x), y, return_cam=True)
    _close(1024 * cams + ours.fc.bias[y].view(-1, 1, 1), ref_cams)
    _close(1024 * cams.mean(dim=(1, 2)) + ours.fc.bias[y], logits[range(2), y])   # GAP(SPG_A4(F))[c]
    maps, _ = saliency_maps(ours, x, y, "cam")
    expected = np.stack([normalize_scoremap(m, (SIZE, SIZE)) for m in ref_cams.numpy()])
    assert maps.shape == (2, SIZE, SIZE)
    np.testing.assert_allclose(maps.numpy(), expected, atol=1e-8)


def test_train_mode_logits_and_grads_equal_under_one_seed(cam_pair):
    """The three dropouts draw in the reference's order (BN uses batch statistics in both)."""
    ours, ref = cam_pair
    ours.train(), ref.train()
    try:
        x, y = _images(2, seed=2), torch.tensor([0, 4])
        torch.manual_seed(0)
        logits = ours(x)
        torch.nn.functional.cross_entropy(logits, y).backward()
        torch.manual_seed(0)
        expected = ref(ours.normalize(x), y)["logits"]
        torch.nn.functional.cross_entropy(expected, y).backward()
        _close(logits, expected)
        _close(ours.fc.weight.grad, ref.SPG_A4.weight.grad.flatten(1), tol=1e-8)
        _close(ours.SPG_A3_1b[0].weight.grad, ref.SPG_A3_1b[0].weight.grad, tol=1e-8)
        _close(ours.Conv2d_1a_3x3.conv.weight.grad, ref.Conv2d_1a_3x3.conv.weight.grad, tol=1e-8)
        with torch.no_grad():
            torch.manual_seed(1)
            other = ours(x)
            torch.manual_seed(1)
            _close(other, ref(ours.normalize(x))["logits"])
        assert not torch.allclose(other, logits)   # dropout is live in train mode
    finally:
        ours.zero_grad(), ref.zero_grad()
        ours.eval(), ref.eval()


def test_saliency_maps_shapes(cam_pair):
    ours, _ = cam_pair
    x = _images(seed=3)
    for saliency in ("cam", "grad"):
        maps, logits = saliency_maps(ours, x, None, saliency)
        assert maps.shape == (2, SIZE, SIZE) and logits.shape == (2, C)
        assert float(maps.min()) >= 0 and float(maps.max()) <= 1 and float(maps.max()) > 0


# ---------------------------------------------------------------- ADL

def test_adl_layout(adl_pair):
    ours, _ = adl_pair
    steps = ours._steps
    assert "dropout" not in steps and not hasattr(ours, "dropout")
    assert steps.index("ADL_5d") == steps.index("Mixed_5d") + 1 and steps.index("maxpool_5d") == steps.index("ADL_5d") + 1
    assert steps[-5:] == ("Mixed_6e", "ADL_6e", "SPG_A3_1b", "SPG_A3_2b", "ADL_A3_2b")
    assert (ours.ADL_5d.drop_rate, ours.ADL_5d.gamma) == (0.5, 0.7)
    assert build_model("inception_v3", C, adl=True).ADL_6e.gamma == 0.9   # wsolevaluation's adl_threshold
    with pytest.raises(ValueError, match="adl_positions"):
        build_model("inception_v3", C, adl=True, adl_positions="tf")


def test_adl_train_mode_equal_under_one_seed(adl_pair):
    ours, ref = adl_pair
    seeds = (0, 2)
    draws = []
    for seed in seeds:   # ADL's three per-call draws (nothing else draws in this model)
        torch.manual_seed(seed)
        draws.append([math.floor(float(torch.rand(())) + 0.5) for _ in range(3)])
    assert all(set(at) == {0, 1} for at in zip(*draws))   # each ADL: importance map once, drop mask once
    ours.train(), ref.train()
    try:
        x = _images(2, seed=4)
        with torch.no_grad():
            for seed in seeds:
                torch.manual_seed(seed)
                logits = ours(x)
                torch.manual_seed(seed)
                _close(logits, ref(ours.normalize(x))["logits"])
    finally:
        ours.eval(), ref.eval()
    with torch.no_grad():
        y = torch.tensor([2, 0])
        cams, logits = cam_and_logits(ours, x, y)    # eval: ADL is the identity
        _close(1024 * cams.mean(dim=(1, 2)) + ours.fc.bias[y], logits[range(2), y])
        _close(1024 * cams + ours.fc.bias[y].view(-1, 1, 1), ref(ours.normalize(x), y, return_cam=True))


# ---------------------------------------------------------------- large map, lr groups, weights

def test_large_feature_map_equal():
    ours, ref = _pair(2, large_feature_map=True)
    x = _images(1)
    with torch.no_grad():
        logits, feats = ours.forward_with_features(x)
        _close(logits, ref(ours.normalize(x))["logits"])
    assert feats.shape == (1, 1024, 6, 6)     # 3x3 without large_feature_map
    assert build_model(**ours.build_args).large_feature_map


def test_lr_groups_follow_wsolevaluation_rule(cam_pair):
    ours, ref = cam_pair
    new = {n for n, _ in ours.named_parameters() if ours.is_new_parameter(n)}
    assert new == {n for n, _ in ours.named_parameters() if not is_inception_pretrained_name(n)}
    ref_new = {n.replace("SPG_A4", "fc") for n, _ in ref.named_parameters() if not is_inception_pretrained_name(n)}
    assert new == ref_new == {"SPG_A3_1b.0.weight", "SPG_A3_1b.0.bias", "SPG_A3_2b.0.weight", "SPG_A3_2b.0.bias",
                              "fc.weight", "fc.bias"}
    old, fresh = ours.split_parameters()
    assert len(fresh) == 6 and len(old) + 6 == len(list(ours.parameters()))


def test_pretrained_from_torchvision_file(tmp_path, caplog):
    torch.manual_seed(0)
    tv = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    with torch.no_grad():
        for name, buf in tv.named_buffers():   # non-default running statistics
            if buf.is_floating_point():
                buf.add_(torch.rand_like(buf))
    state = tv.state_dict()
    path = tmp_path / "inception_v3.pth"
    torch.save(state, path)
    with caplog.at_level(logging.INFO, logger="wsol.models.pretrained"):
        model = build_model("inception_v3", C, pretrained=path)
    assert "unused keys" not in caplog.text and "shape mismatch" not in caplog.text
    got = model.state_dict()
    trunk = [k for k in got if k.split(".")[0] in TRUNK_NAMES]
    assert len(trunk) == sum(1 for k in state if k.split(".")[0] in TRUNK_NAMES) > 0
    assert all(torch.equal(got[k], state[k]) for k in trunk)
    # wsolevaluation's own loader gives the same trunk
    ref = W.inception_v3(architecture_type="cam", pretrained=False, num_classes=C, large_feature_map=False)
    W.inception.load_pretrained_model(ref, str(tmp_path))
    assert all(torch.equal(got[k], v) for k, v in ref.state_dict().items() if k in trunk)
    with pytest.raises(ValueError, match=r"\(1000, 2048\) in the file"):   # torchvision's fc does not fit
        build_model("inception_v3", 1000, pretrained=path, pretrained_classifier=True)
    assert torchvision_weights_url("inception_v3").endswith("inception_v3_google-0cc3c7bd.pth")
    assert torch.count_nonzero(model.fc.bias) == 0   # fresh head: xavier weight, zero bias
