"""ACoL (`wsol.models.acol`, `wsol.methods.acol`) against wsolevaluation's own code.

wsolevaluation's VggAcol / ResNetAcol / InceptionAcol (tests/wsolevaluation_ref, verbatim) and
ours get identical weights (the reference's state dict copied into ours, names mapped) and the
same normalized input; forward outputs, `get_loss`, gradients, the test CAM
(`return_cam=True` with the GT), the LR groups (main.py's rule) and pretrained loading are
compared. Full-width VGG16 / ResNet50 / InceptionV3 run at 32-75 px, batch 2, float32 (the
same ops in the same order, so the numbers agree to rounding).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import wsolevaluation_ref
from wsolevaluation_ref.method.acol import _erase_attention, get_loss
from wsolevaluation_ref.method.util import get_attention, normalize_tensor
from wsol.attribution import saliency_maps
from wsol.engine import load_checkpoint, save_checkpoint
from wsol.methods import build_method, list_methods
from wsol.methods.acol import ACoLConfig, ACoLMethod
from wsol.models import build_model, list_architecture_types
from wsol.models.acol import ACOL_ARCHS, ACoLModel, erase_attention, minmax_hw
from wsol.models.vgg import TORCHVISION_FEATURE_NAMES
from wsol.settings import ConfigError

# conftest: no network connection (nothing may be downloaded), torch seeded with 0 before each test.
pytestmark = pytest.mark.usefixtures("no_network", "seeded")

C = 5
# reference builder name -> (our arch, input size)
# (ResNet50 48 px -> 3x3 map, VGG16 64 px -> 4x4, InceptionV3 75 px -> 4x4)
REF_ARCHS = {"vgg16": ("vgg_gap", 64), "resnet50": ("resnet50", 48), "inception_v3": ("inception_v3", 75)}


# ---------------------------------------------------------------- helpers

def _reference(ref_arch: str, large: bool = False, threshold: float = 0.7, **kw) -> nn.Module:
    return getattr(wsolevaluation_ref, ref_arch)(architecture_type="acol", num_classes=C, large_feature_map=large,
                                                 acol_drop_threshold=threshold, **kw)


def _ours_name(ref_arch: str, key: str) -> str:
    """A wsolevaluation state-dict key -> ours (only VGG's trunk is named differently)."""
    parts = key.split(".")
    if ref_arch == "vgg16" and parts[0] == "features":
        return f"body.{TORCHVISION_FEATURE_NAMES[int(parts[1])]}.{parts[2]}"
    return key


def _copy_reference(ref: nn.Module, ours: nn.Module, ref_arch: str) -> None:
    ours.load_state_dict({_ours_name(ref_arch, k): v for k, v in ref.state_dict().items()}, strict=True)


def _wsoleval_x10(ref_arch: str, name: str) -> bool:
    """wsolevaluation's lr_classifier_ratio group ([W] main.py:72-77, 130-162)."""
    patterns = {"vgg16": ["features."], "resnet50": ["layer4.", "fc."],
                "inception_v3": ["Mixed", "Conv2d_1", "Conv2d_2", "Conv2d_3", "Conv2d_4"]}[ref_arch]
    hit = any(p in name for p in patterns)
    return hit if ref_arch == "resnet50" else not hit


def _wsoleval_scoremap(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """wsolevaluation's inference: cv2 bicubic resize to (W, H), then normalize_scoremap."""
    cam = cv2.resize(cam.astype(np.float64), size, interpolation=cv2.INTER_CUBIC)
    if np.isnan(cam).any() or cam.min() == cam.max():
        return np.zeros_like(cam)
    cam = cam - cam.min()
    return cam / cam.max()


def _batch(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.rand(2, 3, size, size), torch.tensor([1, 3])


@pytest.fixture(scope="module", params=list(REF_ARCHS))
def pair(request):
    """(reference name, wsolevaluation model, our model, input size) with identical weights."""
    ref_arch = request.param
    arch, size = REF_ARCHS[ref_arch]
    torch.manual_seed(0)
    ref = _reference(ref_arch)
    ours = build_model(arch, C, architecture_type="acol", acol_threshold=0.7)
    _copy_reference(ref, ours, ref_arch)
    yield ref_arch, ref, ours, size


# ---------------------------------------------------------------- equivalence with wsolevaluation

@pytest.mark.parametrize("train", [False, True])
def test_outputs_match_reference(pair, train):
    ref_arch, ref, ours, size = pair
    ref.train(train)
    ours.train(train)
    x, y = _batch(size)
    with torch.no_grad():
        expected = ref(ours.normalize(x), y)
        got = ours.acol_outputs(x, y)
    for key in ("logits", "logit_b", "feat_map_a", "feat_map_b"):
        torch.testing.assert_close(got[key], expected[key], msg=key)


def _check_loss_and_gradients(ref: nn.Module, ours: nn.Module, ref_arch: str, x: torch.Tensor, y: torch.Tensor,
                              names: tuple[str, ...]) -> None:
    """Train mode: ACoLMethod.step's loss = [W] get_loss; the gradients of `names` (reference
    names, with the heads') are equal."""
    ref.train()
    ours.train()
    ref_out = ref(ours.normalize(x), y)
    ref_loss = get_loss(ref_out, y)
    step = ACoLMethod(ACoLConfig(acol_threshold=ours.acol_threshold)).step(ours, x, y)
    torch.testing.assert_close(step.loss, ref_loss)
    torch.testing.assert_close(step.logits, ref_out["logits"].detach())
    assert set(step.stats) == {"ce", "ce_b"}
    assert step.stats["ce"] + step.stats["ce_b"] == pytest.approx(ref_loss.item(), rel=1e-5)

    ours.zero_grad()
    ref.zero_grad()
    step.loss.backward()
    ref_loss.backward()
    ref_params = dict(ref.named_parameters())
    ours_params = dict(ours.named_parameters())
    for name in (*names, "classifier_A.0.weight", "classifier_A.4.bias", "classifier_B.2.weight",
                 "classifier_B.4.weight"):
        g_ref = ref_params[name].grad
        g = ours_params[_ours_name(ref_arch, name)].grad
        assert g_ref is not None and g_ref.abs().sum() > 0, name
        torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-6 * float(g_ref.abs().max()), msg=name)
    ours.zero_grad(set_to_none=True)
    ref.zero_grad(set_to_none=True)


# the full-width ResNet50 / InceptionV3 backward passes take 10-30 s on two shared cores
@pytest.mark.parametrize("pair", ["vgg16", pytest.param("resnet50", marks=pytest.mark.slow),
                                  pytest.param("inception_v3", marks=pytest.mark.slow)], indirect=True)
def test_loss_and_gradients_match_reference(pair):
    ref_arch, ref, ours, size = pair
    names = {"vgg16": ("features.0.weight", "features.28.weight"),
             "resnet50": ("conv1.weight", "layer4.2.conv3.weight"),
             "inception_v3": ("Conv2d_1a_3x3.conv.weight", "Mixed_6e.branch_pool.conv.weight")}[ref_arch]
    _check_loss_and_gradients(ref, ours, ref_arch, *_batch(size), names)


@pytest.mark.parametrize("large", [False, True])
def test_resnet_tiny_matches_reference_resnet_acol(large):
    """wsolevaluation's ResNetAcol class built with torchvision's BasicBlock and [1, 1, 1, 1]
    (its constructor takes any block) = our resnet_tiny ACoL: the fast ResNet check of the
    outputs, loss, gradients and large_feature_map."""
    from torchvision.models.resnet import BasicBlock
    from wsolevaluation_ref.resnet import ResNetAcol

    ref = ResNetAcol(BasicBlock, [1, 1, 1, 1], num_classes=C, large_feature_map=large, acol_drop_threshold=0.6)
    ours = build_model("resnet_tiny", C, architecture_type="acol", acol_threshold=0.6, large_feature_map=large,
                       head_width=1024)   # the reference class hard-codes 1024
    _copy_reference(ref, ours, "resnet50")
    x, y = _batch(32)
    _check_loss_and_gradients(ref, ours, "resnet50", x, y, ("conv1.weight", "layer4.0.conv2.weight"))
    ref.eval()
    ours.eval()
    with torch.no_grad():
        expected = ref(ours.normalize(x), y)
        got = ours.acol_outputs(x, y)
        for key in ("logits", "logit_b", "feat_map_a", "feat_map_b"):
            torch.testing.assert_close(got[key], expected[key], msg=key)
        torch.testing.assert_close(ours.class_maps(x, y)[0], ref(ours.normalize(x), y, return_cam=True))
    assert got["feat_map_a"].shape[-1] == (4 if large else 2)


def test_predicted_class_erasing_without_labels(pair):
    """labels None: the argmax of branch A drives the erasing, as [W] _acol_logits."""
    ref_arch, ref, ours, size = pair
    ref.eval()
    ours.eval()
    x, _ = _batch(size)
    with torch.no_grad():
        expected = ref(ours.normalize(x))
        got = ours.acol_outputs(x)
        torch.testing.assert_close(got["logit_b"], expected["logit_b"])
        torch.testing.assert_close(got["logits"], expected["logits"])
        feature = ours.features(x)
        torch.testing.assert_close(ours.head(feature), got["logits"])
        # the erasing did something: branch B's input differs from the un-erased feature
        assert not torch.allclose(ours.classifier_B(feature), got["feat_map_b"])


def test_test_cam_matches_reference(pair):
    """class_maps / saliency_maps("cam") = wsolevaluation's return_cam map with the GT driving the
    erasing, at feature resolution and after its resize + normalize_scoremap."""
    ref_arch, ref, ours, size = pair
    ref.eval()
    ours.eval()
    x, y = _batch(size)
    with torch.no_grad():
        ref_cams = ref(ours.normalize(x), y, return_cam=True)
        maps, logits = ours.class_maps(x, y)
        torch.testing.assert_close(maps, ref_cams)
    got, got_logits = saliency_maps(ours, x, y, "cam")
    assert got.shape == (2, size, size)
    for b in range(2):
        np.testing.assert_allclose(got[b].numpy(), _wsoleval_scoremap(ref_cams[b].numpy(), (size, size)),
                                   atol=1e-5)
    torch.testing.assert_close(got_logits, logits)


def test_lr_groups_follow_wsolevaluation(pair):
    ref_arch, ref, ours, _ = pair
    expected = {_ours_name(ref_arch, n) for n, _ in ref.named_parameters() if _wsoleval_x10(ref_arch, n)}
    got = {n for n, _ in ours.named_parameters() if ours.is_new_parameter(n)}
    assert got == expected
    heads_x10 = ref_arch != "resnet50"     # ResNet: layer4 at x10, ACoL's heads at x1 (kept quirk)
    assert ("classifier_A.0.weight" in got) == heads_x10
    assert ("layer4.0.conv1.weight" in got) == (ref_arch == "resnet50")
    old, new = ours.split_parameters()
    assert len(old) + len(new) == len(list(ours.parameters())) and new


@pytest.mark.parametrize("ref_arch", ["vgg16", pytest.param("resnet50", marks=pytest.mark.slow), "inception_v3"])
def test_large_feature_map_matches_reference(ref_arch):
    arch, size = REF_ARCHS[ref_arch][0], {"vgg16": 32, "resnet50": 32, "inception_v3": 48}[ref_arch]
    ref = _reference(ref_arch, large=True, threshold=0.5).eval()
    ours = build_model(arch, C, architecture_type="acol", acol_threshold=0.5, large_feature_map=True).eval()
    _copy_reference(ref, ours, ref_arch)
    x, y = _batch(size)
    with torch.no_grad():
        expected = ref(ours.normalize(x), y)
        got = ours.acol_outputs(x, y)
        torch.testing.assert_close(got["feat_map_b"], expected["feat_map_b"])
        torch.testing.assert_close(ours.class_maps(x, y)[0], ref(ours.normalize(x), y, return_cam=True))
    side = {"vgg16": 4, "resnet50": 4, "inception_v3": 6}[ref_arch]   # H/8; Inception: ceil-mode pools
    assert got["feat_map_a"].shape == (2, C, side, side)


@pytest.mark.parametrize("arch,large,side,channels", [
    ("vgg_gap_tiny", False, 14, 32), ("vgg_gap_tiny", True, 28, 32), ("vgg_gap_bn_small", False, 14, 128),
    ("resnet_tiny", False, 14, 512), ("resnet_tiny", True, 28, 512)])
def test_feature_map_at_224(arch, large, side, channels):
    model = build_model(arch, 3, architecture_type="acol", large_feature_map=large).eval()
    with torch.no_grad():
        feats = model.features(torch.rand(1, 3, 224, 224))
    assert feats.shape == (1, channels, side, side)


# ---------------------------------------------------------------- the erasing itself

def test_erase_attention_matches_reference_at_ties_and_constant_maps():
    feat_map_a = torch.rand(3, 4, 5, 5)
    feat_map_a[0, 2] = 0.25                 # constant class map: NaN attention, nothing erased
    feat_map_a[1, 1, 0, :] = torch.linspace(0, 1, 5)
    feat_map_a[1, 1, 1:, :] = 0.5           # attention exactly 0.5 on many positions
    feature = torch.randn(3, 6, 5, 5)
    labels = torch.tensor([2, 1, 0])
    for threshold in (0.0, 0.5, 0.7, 1.0):
        expected = _erase_attention(feature, get_attention(feat_map_a, labels), threshold)
        got = erase_attention(feature, feat_map_a, labels, threshold)
        torch.testing.assert_close(got, expected, equal_nan=True)
    assert torch.equal(erase_attention(feature, feat_map_a, labels, 0.7)[0], feature[0])
    torch.testing.assert_close(minmax_hw(feat_map_a[1:]),
                               normalize_tensor(feat_map_a[1:].clone()))


def test_no_gradient_through_the_mask():
    model = build_model("vgg_gap_tiny", C, architecture_type="acol").eval()
    x, y = _batch(32)
    out = model.acol_outputs(x, y)
    assert out["feat_map_a"].requires_grad and out["feat_map_b"].requires_grad
    (g,) = torch.autograd.grad(out["logit_b"].sum(), model.classifier_A[0].weight, allow_unused=True)
    assert g is None                        # branch B reaches A only through the (detached) mask


# ---------------------------------------------------------------- model interface

@pytest.mark.parametrize("arch", ["vgg_gap_tiny", "vgg_gap_bn_small", "resnet_tiny"])
def test_wsol_model_interface(arch):
    model = build_model(arch, C, architecture_type="acol").eval()
    assert isinstance(model, ACoLModel)
    x, y = _batch(64)
    with torch.no_grad():
        logits = model(x)
        torch.testing.assert_close(model.head(model.features(x)), logits)
        maps, map_logits = model.class_maps(x, None)
        torch.testing.assert_close(map_logits, logits)
        torch.testing.assert_close(maps, model.class_maps(x, logits.argmax(1))[0])
        # another target changes both the erasing and the channel
        assert not torch.allclose(model.class_maps(x, (logits.argmax(1) + 1) % C)[0], maps)
    assert maps.shape == (2, 4, 4)
    assert float(maps.amax()) == 1.0 and float(maps.amin()) >= 0.0
    for saliency in ("cam", "gradcam", "grad") if arch.startswith("vgg") else ("cam",):
        m, _ = saliency_maps(model, x, y, saliency)
        assert m.shape == (2, 64, 64) and torch.isfinite(m).all()
    with pytest.raises(AttributeError, match="classifier_weight"):
        model.classifier_weight


def test_head_widths():
    assert build_model("vgg_gap_small", C, architecture_type="acol").classifier_A[0].out_channels == 256
    assert build_model("vgg_gap_tiny", C, architecture_type="acol").classifier_B[2].out_channels == 64
    assert build_model("resnet_tiny", C, architecture_type="acol").classifier_A[0].in_channels == 512
    assert build_model("resnet_tiny", C, architecture_type="acol").classifier_A[0].out_channels == 256
    assert build_model("resnet50", C, architecture_type="acol").classifier_A[0].out_channels == 1024


def test_bad_arch_and_threshold():
    assert "acol" in list_architecture_types()
    with pytest.raises(ValueError, match="architecture_type 'acol' supports archs .*vgg_gap.*resnet50"):
        build_model("timm:resnet18", C, architecture_type="acol")
    with pytest.raises(ValueError, match="acol_threshold must be a number in \\[0, 1\\]"):
        build_model("vgg_gap_tiny", C, architecture_type="acol", acol_threshold=1.5)
    with pytest.raises(ValueError, match="no ADL"):
        build_model("vgg_gap_tiny", C, architecture_type="acol", adl=True)


def test_checkpoint_rebuild(tmp_path):
    model = build_model("vgg_gap_tiny", C, architecture_type="acol", acol_threshold=0.4,
                        large_feature_map=True).eval()
    assert model.build_args["architecture_type"] == "acol"
    again = build_model(**model.build_args)
    again.load_state_dict(model.state_dict())
    x, y = _batch(32)
    save_checkpoint(tmp_path / "ckpt", model)
    loaded, meta = load_checkpoint(tmp_path / "ckpt")
    for other in (again.eval(), loaded):
        assert isinstance(other, ACoLModel) and other.acol_threshold == 0.4 and other.large_feature_map
        with torch.no_grad():
            torch.testing.assert_close(other(x), model(x))
            torch.testing.assert_close(other.class_maps(x, y)[0], model.class_maps(x, y)[0])


# ---------------------------------------------------------------- pretrained loading

def _assert_trunk_equal(ours: nn.Module, ref: nn.Module, ref_arch: str) -> None:
    own = ours.state_dict()
    trunk = [k for k in ref.state_dict() if not k.startswith(("classifier_A", "classifier_B"))]
    assert trunk
    for key in trunk:
        torch.testing.assert_close(own[_ours_name(ref_arch, key)], ref.state_dict()[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("ref_arch", ["vgg16", "resnet50", "inception_v3"])
def test_torchvision_weights_fill_the_trunk_as_wsolevaluation(ref_arch, tmp_path):
    """A torchvision-layout file (random weights) loads into our trunk exactly as wsolevaluation's
    load_pretrained_model loads it into its own; the heads stay as initialised."""
    arch = REF_ARCHS[ref_arch][0]
    if ref_arch == "inception_v3":   # with AuxLogits, Mixed_7* and fc, which both sides drop
        tv = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict()
    else:
        tv = getattr(torchvision.models, ref_arch)(weights=None).state_dict()
    if ref_arch == "vgg16":   # the 4096-wide fc layers are left out to keep the file small
        tv = {k: v for k, v in tv.items() if not k.startswith(("classifier.0", "classifier.3"))}
    torch.save(tv, tmp_path / f"{ref_arch}.pth")
    kw = {"dataset_name": "CUB"} if ref_arch == "resnet50" else {}
    ref = _reference(ref_arch, pretrained=True, pretrained_path=str(tmp_path), **kw)
    torch.manual_seed(3)
    fresh = build_model(arch, C, architecture_type="acol")
    torch.manual_seed(3)
    ours = build_model(arch, C, architecture_type="acol", pretrained=tmp_path / f"{ref_arch}.pth")
    _assert_trunk_equal(ours, ref, ref_arch)
    first = {"vgg16": "features.0.weight", "resnet50": "conv1.weight",
             "inception_v3": "Mixed_6e.branch7x7dbl_5.conv.weight"}[ref_arch]
    assert torch.equal(ours.state_dict()[_ours_name(ref_arch, first)], tv[first])
    for key, value in fresh.state_dict().items():
        if key.startswith(("classifier_A", "classifier_B")):
            assert torch.equal(ours.state_dict()[key], value), key


def test_torchvision_vgg16_bn_fills_the_bn_trunk(tmp_path):
    """vgg_gap_bn (no wsolevaluation counterpart): torchvision vgg16_bn's features, BN statistics
    included, land on body.convX_Y / body.bnX_Y through VGG-GAP's mapping."""
    tv = {k: torch.rand_like(v) + 0.5 if v.is_floating_point() else v   # no tensor at its default init
          for k, v in torchvision.models.vgg16_bn(weights=None).state_dict().items() if k.startswith("features.")}
    torch.save(tv, tmp_path / "vgg16_bn.pth")
    ours = build_model("vgg_gap_bn", C, architecture_type="acol", pretrained=tmp_path / "vgg16_bn.pth")
    own = ours.state_dict()
    assert torch.equal(own["body.conv1_1.weight"], tv["features.0.weight"])
    assert torch.equal(own["body.bn5_3.running_var"], tv["features.41.running_var"])
    assert torch.equal(own["body.conv5_3.bias"], tv["features.40.bias"])
    assert torch.equal(own["body.bn2_2.weight"], tv["features.11.weight"])


def test_natural_checkpoint_and_acol_checkpoint_fill_the_trunk_only(tmp_path):
    natural = build_model("vgg_gap_tiny", C)
    save_checkpoint(tmp_path / "natural", natural)
    acol = build_model("vgg_gap_tiny", C, architecture_type="acol", pretrained=tmp_path / "natural.safetensors")
    for key, value in natural.state_dict().items():
        if key.startswith("body."):
            assert torch.equal(acol.state_dict()[key], value), key
    # an ACoL checkpoint as `pretrained`: trunk loaded, both heads left fresh
    save_checkpoint(tmp_path / "acol", acol)
    torch.manual_seed(7)
    fresh = build_model("vgg_gap_tiny", C, architecture_type="acol")
    torch.manual_seed(7)
    again = build_model("vgg_gap_tiny", C, architecture_type="acol", pretrained=tmp_path / "acol.safetensors")
    for key, value in again.state_dict().items():
        source = fresh if key.startswith(("classifier_A", "classifier_B")) else acol
        assert torch.equal(value, source.state_dict()[key]), key


# ---------------------------------------------------------------- the method

def test_method_registry_and_settings():
    assert "acol" in list_methods()
    method = build_method("acol")
    assert isinstance(method, ACoLMethod) and method.cfg.acol_threshold == 0.7
    assert method.model_options() == {"architecture_type": "acol", "acol_threshold": 0.7}
    assert build_method("acol", ACoLConfig(acol_threshold=0.5)).model_options()["acol_threshold"] == 0.5
    assert set(method.supported_archs) == set(ACOL_ARCHS)
    with pytest.raises(ConfigError, match="acol_threshold"):
        ACoLConfig(acol_threshold=1.5)


def test_method_rejects_a_plain_model():
    model = build_model("vgg_gap_tiny", C).train()
    with pytest.raises(ValueError, match="architecture_type='acol'"):
        ACoLMethod().step(model, *_batch(32))


def test_method_trains_a_small_model():
    torch.manual_seed(0)
    method = build_method("acol")
    model = build_model("vgg_gap_bn_small", 2, **method.model_options()).train()
    x = torch.rand(4, 3, 32, 32)
    x[2:, 0] = 1.0
    y = torch.tensor([0, 0, 1, 1])
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(8):
        out = method.step(model, x, y)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
