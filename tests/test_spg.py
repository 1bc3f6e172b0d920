"""SPG (`--method spg`) against wsolevaluation's own code (tests/wsolevaluation_ref, REFERENCE §12.3.3).

The reference models (VggSpg, ResNetSpg, InceptionSpg, full width) get random weights, which are copied
into ours through a name map; both run in float64 on the same images. Inputs are 32 px (2x2 maps,
4x4 with large_feature_map) to keep the full-width nets fast on the CPU. wsolevaluation's loss
upsamples to a fixed 224x224 whatever the input size, so the end-to-end loss comparisons use
`spg_loss_size=224` (our switch for that size); the default (the input's size) is the same thing at
224 px input, checked on synthetic outputs and with a tiny model.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import wsolevaluation_ref as ref
from wsolevaluation_ref.method import spg as ref_spg
from wsol.attribution.cam import cam_and_logits, cam_from_features
from wsol.config import ConfigError, load_config
from wsol.engine import load_checkpoint, save_checkpoint
from wsol.localization import normalize_scoremap
from wsol.methods import build_method
from wsol.methods.spg import (SPGConfig, SPGMethod, spg_attention, spg_fused_attention, spg_loss, spg_mask)
from wsol.models import build_model
from wsol.models.spg import SPG_ARCHS, SPGModel

THRESHOLDS = SPGConfig().thresholds
REF_BUILDERS = {"vgg_gap": ref.vgg16, "resnet50": ref.resnet50, "inception_v3": ref.inception_v3}
# wsolevaluation's lr x1 substrings per arch ([W] main.py:72-77); for resnet they mark the x10 group
REF_LR_PATTERNS = {"vgg_gap": ("features.",), "resnet50": ("layer4.", "fc."),
                   "inception_v3": ("Mixed", "Conv2d_1", "Conv2d_2", "Conv2d_3", "Conv2d_4")}
VGG_FEATURES = {0: "conv1_1", 2: "conv1_2", 5: "conv2_1", 7: "conv2_2", 10: "conv3_1", 12: "conv3_2", 14: "conv3_3"}
NUM_CLASSES = 5
SIZE = 32


def ours_name(arch: str, name: str) -> str:
    """wsolevaluation's parameter / buffer name -> ours."""
    m = re.fullmatch(r"SPG_A_?4\.(weight|bias)", name)
    if m:
        return f"fc.{m[1]}"
    if arch == "vgg_gap":
        m = re.fullmatch(r"features\.(\d+)\.(.*)", name)
        if m:
            return f"body.{VGG_FEATURES[int(m[1])]}.{m[2]}"
        m = re.fullmatch(r"SPG_A_([12])\.(\d)\.(.*)", name)   # SPG_A_1 = conv4 block, SPG_A_2 = conv5 block
        if m:
            return f"body.conv{int(m[1]) + 3}_{int(m[2]) // 2 + 1}.{m[3]}"
    if arch == "resnet50":
        name = re.sub(r"^SPG_A1\.0\.", "layer3.0.", name)
        m = re.fullmatch(r"SPG_A2\.(\d+)\.(.*)", name)
        if m:
            return f"layer3.{int(m[1]) + 1}.{m[2]}"
    return name


def to_ours(arch: str, state: dict) -> dict:
    out = {}
    for k, v in state.items():
        name = ours_name(arch, k)
        out[name] = v.flatten(1) if name == "fc.weight" else v
    return out


def randomize(model: nn.Module, seed: int = 0) -> None:
    """Non-zero biases and non-trivial BN statistics (the reference's init leaves them at 0 / 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))


def ref_model(arch: str, large: bool = False) -> nn.Module:
    return REF_BUILDERS[arch](architecture_type="spg", pretrained=False, num_classes=NUM_CLASSES,
                              large_feature_map=large)


def ours_from(arch: str, r: nn.Module, large: bool = False) -> SPGModel:
    m = build_model(arch, NUM_CLASSES, architecture_type="spg", large_feature_map=large)
    m.load_state_dict(to_ours(arch, r.state_dict()), strict=True)   # strict: the name map is 1:1
    return m.double()


@pytest.fixture(scope="module", params=list(REF_BUILDERS))
def pair(request):
    """(arch, wsolevaluation's model, ours) with the same random weights, float64."""
    torch.manual_seed(0)
    r = ref_model(request.param)
    randomize(r)
    r.double()
    return request.param, r, ours_from(request.param, r)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(2, 3, SIZE, SIZE, generator=g, dtype=torch.float64), torch.tensor([1, 3])


def ref_forward(r: nn.Module, xr: torch.Tensor, y: torch.Tensor, **kw):
    """wsolevaluation's forward, plus its SPG_A4 output (feat_map), caught with a hook."""
    head = r.SPG_A_4 if hasattr(r, "SPG_A_4") else r.SPG_A4
    seen = {}
    handle = head.register_forward_hook(lambda mod, inp, out: seen.setdefault("feat_map", out))
    try:
        out = r(xr, y, **kw)
    finally:
        handle.remove()
    return out, seen["feat_map"]


def assert_outputs_match(ours: dict, out_r: dict, feat_map_r: torch.Tensor, y: torch.Tensor) -> None:
    for key in ("logits", "logits_b1", "logits_b2", "logits_c"):
        torch.testing.assert_close(ours[key], out_r[key], msg=key)
    torch.testing.assert_close(ours["feat_map"], feat_map_r)
    torch.testing.assert_close(spg_attention(ours["feat_map"], y, (224, 224)), out_r["attention"])
    torch.testing.assert_close(spg_fused_attention(ours["logits_b1"], ours["logits_b2"], (224, 224)),
                               out_r["fused_attention"])


# -- forward, CAM, loss and gradients against the reference -------------------------------------------

def test_eval_outputs_and_cam_match_reference(pair, batch):
    arch, r, m = pair
    x, y = batch
    r.eval(), m.eval()
    with torch.no_grad():
        xr = m.normalize(x)
        out_r, fm_r = ref_forward(r, xr, y)
        ours = m.spg_outputs(x)
        assert_outputs_match(ours, out_r, fm_r, y)
        assert ours["feat_map"].shape[-1] == SIZE // 16
        torch.testing.assert_close(m.head(ours["features"]), out_r["logits"])
        # the test-time CAM: SPG_A4's raw map of the given class ([W] return_cam=True), through the
        # project's CAM entry point (class_maps); None = the predicted class
        cams_r = r(xr, y, return_cam=True)
        maps, logits = cam_and_logits(m, x, y)
        torch.testing.assert_close(maps, cams_r)
        torch.testing.assert_close(logits, out_r["logits"])
        pred = out_r["logits"].argmax(1)
        torch.testing.assert_close(m.class_maps(x, None)[0], fm_r[torch.arange(2), pred])
        # min-max removes the bias and the 1/Cf: the mean-form CAM normalises to the same map
        base = cam_from_features(m, ours["features"], y)
        for b in range(len(y)):
            want = normalize_scoremap(cams_r[b].numpy(), (SIZE, SIZE))
            np.testing.assert_allclose(normalize_scoremap(base[b].numpy(), (SIZE, SIZE)), want, atol=1e-9)


def test_train_outputs_loss_and_gradients_match_reference(pair, batch):
    arch, r, m = pair
    x, y = batch
    r.train(), m.train()
    r.zero_grad(), m.zero_grad()
    xr = m.normalize(x).detach()
    torch.manual_seed(5)       # Inception's three dropouts draw the same masks in both
    out_r, fm_r = ref_forward(r, xr, y)
    torch.manual_seed(5)
    ours = m.spg_outputs(x)
    assert_outputs_match(ours, out_r, fm_r, y)

    loss_r = ref_spg.get_loss(out_r, y, THRESHOLDS)
    loss, terms = spg_loss(ours, y, THRESHOLDS, (224, 224))
    torch.testing.assert_close(loss, loss_r)
    (h1, l1), (h2, l2), (h3, l3) = THRESHOLDS
    b2i = torch.sigmoid(nn.Upsample(size=(224, 224), mode="bilinear")(out_r["logits_b2"]))
    want = {"bce_b2": ref_spg._get_loss_attention(out_r["logits_b2"], out_r["attention"], h1, l1),
            "bce_b1": ref_spg._get_loss_attention(out_r["logits_b1"], b2i, h2, l2),
            "bce_c": ref_spg._get_loss_attention(out_r["logits_c"], out_r["fused_attention"], h3, l3)}
    for key, value in want.items():
        torch.testing.assert_close(terms[key], value.detach(), msg=key)

    loss_r.backward()
    loss.backward()
    ours_params = dict(m.named_parameters())
    for name, p in r.named_parameters():
        q = ours_params[ours_name(arch, name)]
        torch.testing.assert_close(q.grad, p.grad.view_as(q.grad), msg=name)


def test_large_feature_map_matches_reference(pair, batch):
    arch, r, _ = pair
    x, y = batch
    r_large = ref_model(arch, large=True)
    r_large.load_state_dict(r.state_dict())
    r_large.double().eval()
    m = ours_from(arch, r_large, large=True).eval()
    with torch.no_grad():
        out_r, fm_r = ref_forward(r_large, m.normalize(x), y)
        ours = m.spg_outputs(x)
    assert ours["feat_map"].shape[-2:] == (SIZE // 8, SIZE // 8)
    assert_outputs_match(ours, out_r, fm_r, y)


def test_lr_groups_follow_wsolevaluation(pair):
    arch, r, m = pair
    patterns = REF_LR_PATTERNS[arch]
    ref_x10 = {n for n, _ in r.named_parameters() if any(p in n for p in patterns) == (arch == "resnet50")}
    ours_x10 = {n for n, _ in m.named_parameters() if m.is_new_parameter(n)}
    assert ours_x10 == {ours_name(arch, n) for n in ref_x10}
    old, new = m.split_parameters()
    assert len(new) == len(ours_x10) and len(old) + len(new) == len(list(m.parameters()))
    if arch == "vgg_gap":   # SPG trains the pretrained conv4 / conv5 blocks at x10 too
        assert {"body.conv4_1.weight", "body.conv5_3.bias", "fc.weight"} <= ours_x10
        assert "body.conv3_3.weight" not in ours_x10
    if arch == "resnet50":  # ResNetSpg has no `fc.`: its SPG_A4 and every head train at x1
        assert all(n.startswith("layer4.") for n in ours_x10)


def test_vgg_bn_lr_groups():
    m = build_model("vgg_gap_bn_small", 3, architecture_type="spg")
    new = {n for n, _ in m.named_parameters() if m.is_new_parameter(n)}
    assert {"body.bn4_1.weight", "body.bn5_3.bias", "body.conv4_1.weight", "SPG_A_3.2.weight"} <= new
    assert not {n for n in new if n.startswith(("body.conv3", "body.bn3", "body.conv1"))}


# -- the loss on hand-made outputs: the mask rules, the sizes ------------------------------------------

def synthetic_outputs(h: int = 28):
    """Batch of 2, 4 classes, h x h maps (28: large_feature_map's size at 224; one cell of a 14x14 map
    already spreads over more than 30 pixels above 0.7 at 224). Image 0: a broad block of foreground;
    image 1: a one-cell peak in its class map and all-negative B logits, so that its masks take the
    "fewer than 30 pixels" branch."""
    g = torch.Generator().manual_seed(3)
    y = torch.tensor([2, 1])
    block = (slice(h // 4, h // 4 + max(1, 3 * h // 7)),) * 2
    feat_map = torch.randn(2, 4, h, h, generator=g, dtype=torch.float64) * 0.1
    feat_map[0, 2] = 0.0
    feat_map[0, 2][block] = 5.0
    feat_map[1, 1] = 0.0
    feat_map[1, 1, h // 2, h // 2] = 4.0
    b = torch.full((2, 1, h, h), -3.0, dtype=torch.float64)
    b[0, 0][block] = 3.0
    b = b + torch.randn(b.shape, generator=g, dtype=torch.float64) * 0.3
    outputs = {"logits": torch.randn(2, 4, generator=g, dtype=torch.float64),
               "feat_map": feat_map, "logits_b1": b + 0.2, "logits_b2": b.clone(),
               "logits_c": torch.randn(2, 1, h, h, generator=g, dtype=torch.float64)}
    return {k: v.requires_grad_(True) for k, v in outputs.items()}, y


@pytest.mark.parametrize("thresholds", [THRESHOLDS, ((0.99, 0.01), (0.5, 0.05), (0.9, 0.1))])
def test_loss_matches_reference_with_both_mask_branches(thresholds):
    outputs, y = synthetic_outputs()
    ref_out = dict(outputs)
    ref_out["attention"], ref_out["fused_attention"] = ref_spg.compute_attention(
        outputs["feat_map"], y, outputs["logits_b1"], outputs["logits_b2"])
    (h1, _), (h2, _), (h3, _) = thresholds
    b2i = torch.sigmoid(nn.Upsample(size=(224, 224), mode="bilinear")(outputs["logits_b2"])).detach()
    for att, h in ((ref_out["attention"], h1), (b2i, h2), (ref_out["fused_attention"], h3)):
        above = (att > h).flatten(1).sum(1)
        assert above[0] >= 30 and above[1] < 30   # image 0: the threshold; image 1: 0.7 * max
    loss_r = ref_spg.get_loss(ref_out, y, thresholds)
    grads_r = torch.autograd.grad(loss_r, [outputs[k] for k in ("logits", "logits_b1", "logits_b2", "logits_c")])
    loss, _ = spg_loss(outputs, y, thresholds, (224, 224))
    grads = torch.autograd.grad(loss, [outputs[k] for k in ("logits", "logits_b1", "logits_b2", "logits_c")])
    torch.testing.assert_close(loss, loss_r)
    for g, g_r in zip(grads, grads_r):
        torch.testing.assert_close(g, g_r)
    for att, (h, low) in ((ref_out["attention"], thresholds[0]), (b2i, thresholds[1])):
        torch.testing.assert_close(spg_mask(att, h, low), ref_spg.get_mask(att, h, low))


def test_loss_size_switch():
    outputs, y = synthetic_outputs(h=4)
    at224, _ = spg_loss(outputs, y, THRESHOLDS, (224, 224))
    at64, terms = spg_loss(outputs, y, THRESHOLDS, (64, 64))
    assert torch.isfinite(at64) and not torch.isclose(at64, at224)
    assert set(terms) == {"ce", "bce_b2", "bce_b1", "bce_c"}
    torch.testing.assert_close(sum(terms.values()), at64)
    # the method: None upsamples to the input's size (== 224 at 224 px), an int to that fixed size
    torch.manual_seed(0)
    model = build_model("vgg_gap_tiny", 4, architecture_type="spg")
    x, y = torch.rand(1, 3, 224, 224), torch.tensor([2])
    losses = {}
    for size in (None, 224, 64):
        torch.manual_seed(1)
        losses[size] = SPGMethod(SPGConfig(spg_loss_size=size)).step(model, x, y).loss
    assert losses[None].item() == losses[224].item() != losses[64].item()


def test_all_ignored_term_is_zero_not_nan():
    """An all-zero class map (dead ReLUs before SPG_A4, zero bias) makes the attention 0/0 = NaN, so
    every pixel is ignored: wsolevaluation's BCE over the empty selection is NaN; ours is 0
    (documented deviation)."""
    outputs, y = synthetic_outputs(h=4)
    outputs["feat_map"] = torch.zeros_like(outputs["feat_map"])
    ref_out = dict(outputs)
    ref_out["attention"], ref_out["fused_attention"] = ref_spg.compute_attention(
        outputs["feat_map"], y, outputs["logits_b1"], outputs["logits_b2"])
    assert torch.isnan(ref_spg.get_loss(ref_out, y, THRESHOLDS))
    loss, terms = spg_loss(outputs, y, THRESHOLDS, (224, 224))
    assert terms["bce_b2"].item() == 0.0 and torch.isfinite(loss)


# -- the method and its settings -------------------------------------------------------------------

def test_method_registration_settings_and_step():
    method = build_method("spg")
    assert isinstance(method, SPGMethod) and method.model_options() == {"architecture_type": "spg"}
    assert method.supported_archs == SPG_ARCHS
    cfg = method.cfg
    assert (cfg.spg_threshold_1h, cfg.spg_threshold_1l, cfg.spg_threshold_2h, cfg.spg_threshold_2l,
            cfg.spg_threshold_3h, cfg.spg_threshold_3l, cfg.spg_loss_size) == (0.7, 0.01, 0.5, 0.05, 0.7, 0.1, None)
    c = load_config(None, ["method.name=spg", "method.spg.spg_loss_size=224", "method.spg.spg_threshold_2h=0.6"])
    assert build_method("spg", c.method).cfg.spg_loss_size == 224 and c.method.spg.thresholds[1] == (0.6, 0.05)
    for bad in ("method.spg.spg_loss_size=0", "method.spg.spg_threshold_1h=1.5", "method.spg.spg_loss_size=input"):
        with pytest.raises(ConfigError, match="spg_"):
            load_config(None, [bad])

    torch.manual_seed(0)
    model = build_model("resnet_tiny", 3, **method.model_options())
    x, y = torch.rand(2, 3, 48, 48), torch.tensor([0, 2])
    out = method.step(model, x, y)
    assert set(out.stats) == {"ce", "bce_b2", "bce_b1", "bce_c"}
    assert out.loss.item() == pytest.approx(sum(out.stats.values()), rel=1e-5)
    assert out.logits.shape == (2, 3) and not out.logits.requires_grad
    out.loss.backward()
    for name in ("fc.weight", "SPG_B_1a.0.weight", "SPG_B_2a.0.weight", "SPG_B_shared.2.weight",
                 "SPG_C.2.weight", "conv1.weight"):
        assert dict(model.named_parameters())[name].grad.abs().sum() > 0, name
    with pytest.raises(ValueError, match="architecture_type='spg'"):
        method.step(build_model("resnet_tiny", 3), x, y)


def test_unsupported_arch_and_options():
    with pytest.raises(ValueError, match="supports archs vgg_gap, .*inception_v3"):
        build_model("wrn28_10", 10, architecture_type="spg")
    with pytest.raises(TypeError):
        build_model("resnet_tiny", 3, architecture_type="spg", width=0.5)


# -- narrow variants, shapes, checkpoints, pretrained weights -------------------------------------------

@pytest.mark.parametrize("arch, head, c_hidden", [("vgg_gap_tiny", 32, 32), ("vgg_gap_small", 128, 128),
                                                   ("vgg_gap_bn_small", 128, 128), ("resnet18", 256, 128),
                                                   ("resnet_tiny", 256, 128)])
def test_narrow_variants(arch, head, c_hidden):
    torch.manual_seed(0)
    for large in (False, True):
        m = build_model(arch, 3, architecture_type="spg", large_feature_map=large).eval()
        assert m.SPG_B_1a[0].out_channels == m.SPG_B_shared[0].in_channels == head
        assert m.SPG_C[0].out_channels == c_hidden and m.SPG_C[0].in_channels == m.fc.in_features
        seen = {}
        for name in ("SPG_B_1a", "SPG_B_2a"):
            getattr(m, name).register_forward_hook(lambda mod, inp, out, name=name: seen.setdefault(name, inp[0]))
        with torch.no_grad():
            out = m.spg_outputs(torch.rand(2, 3, 64, 64))
        h = 8 if large else 4
        assert out["feat_map"].shape == (2, 3, h, h)
        assert out["logits_b1"].shape == out["logits_b2"].shape == out["logits_c"].shape == (2, 1, h, h)
        if arch == "resnet_tiny":   # a 1-block layer3: B2 taps the same block as B1
            assert seen["SPG_B_2a"] is seen["SPG_B_1a"]
        else:
            assert not torch.equal(seen["SPG_B_2a"], seen["SPG_B_1a"])


@pytest.mark.parametrize("arch", ["vgg_gap_bn_small", "resnet_tiny"])
def test_checkpoint_rebuild(tmp_path, arch):
    torch.manual_seed(0)
    m = build_model(arch, 3, architecture_type="spg", large_feature_map=True).eval()
    assert m.build_args["architecture_type"] == "spg" and m.build_args["large_feature_map"] is True
    again = build_model(**m.build_args).eval()
    again.load_state_dict(m.state_dict())
    save_checkpoint(tmp_path / "c", m)
    loaded, _ = load_checkpoint(tmp_path / "c")
    x = torch.rand(2, 3, 48, 48)
    with torch.no_grad():
        for other in (again, loaded):
            assert torch.equal(other(x), m(x))
            assert torch.equal(other.class_maps(x, None)[0], m.class_maps(x, None)[0])


def test_pretrained_vgg_fills_conv4_conv5(tmp_path):
    torch.manual_seed(0)
    state = torchvision.models.vgg16(weights=None).state_dict()
    torch.save(state, tmp_path / "vgg16.pth")
    m = build_model("vgg_gap", NUM_CLASSES, architecture_type="spg", pretrained=tmp_path / "vgg16.pth")
    r = ref.vgg16(architecture_type="spg", pretrained=True, pretrained_path=str(tmp_path),
                  num_classes=NUM_CLASSES, large_feature_map=False)
    ours = m.state_dict()
    loaded = [k for k in r.state_dict() if k.startswith(("features.", "SPG_A_1.", "SPG_A_2."))]
    assert len(loaded) == 26
    for k in loaded:   # wsolevaluation's features.17.. -> SPG_A_1 / SPG_A_2 renames land on our conv4 / conv5
        assert torch.equal(ours[ours_name("vgg_gap", k)], r.state_dict()[k]), k
    assert torch.equal(ours["body.conv4_1.weight"], state["features.17.weight"])
    assert torch.equal(ours["body.conv5_3.bias"], state["features.28.bias"])


def test_pretrained_resnet50(tmp_path):
    torch.manual_seed(0)
    state = torchvision.models.resnet50(weights=None).state_dict()
    torch.save(state, tmp_path / "resnet50.pth")
    m = build_model("resnet50", NUM_CLASSES, architecture_type="spg", pretrained=tmp_path / "resnet50.pth")
    r = ref.resnet50(architecture_type="spg", pretrained=True, pretrained_path=str(tmp_path), dataset_name="CUB",
                     num_classes=NUM_CLASSES, large_feature_map=False)
    ours = m.state_dict()
    for k, v in r.state_dict().items():
        if not k.startswith(("SPG_A4", "SPG_B", "SPG_C")):
            assert torch.equal(ours[ours_name("resnet50", k)], v), k
    assert not torch.equal(ours["fc.weight"], state["fc.weight"][:NUM_CLASSES])
    assert torch.equal(ours["layer3.3.conv2.weight"], state["layer3.3.conv2.weight"])
