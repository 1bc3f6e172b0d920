"""wsol.attribution against independent computations.

References (test-only dependencies): Captum (Saliency, IntegratedGradients,
LayerGradCam, GradientShap), pytorch-grad-cam (GradCAMPlusPlus), scipy.ndimage
(gaussian_filter, uniform_filter), numpy (percentile), and direct autograd loops.
Models are tiny random-init networks in eval mode, float64, at 32-48 px.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wsol.attribution import (
    ATTRIBUTION_METHODS,
    art2020_gradient_map,
    attribute,
    box_filter3,
    cam,
    gaussian_blur,
    gradcam,
    gradcampp,
    gradient_shap,
    input_gradient,
    integrated_gradients,
    reduce_channels,
    smoothgrad,
)
from wsol.models import build_model, smooth_activations

NUM_CLASSES = 5


def _model(arch: str = "resnet_tiny", seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model(arch, NUM_CLASSES).double().eval()
    with torch.no_grad():  # a head with some spread, so maps are not near zero
        model.fc.weight.normal_(0, 0.5)
        model.fc.bias.normal_(0, 0.5)
    return model


def _images(b: int = 2, size: int = 48, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((b, 3, size, size), generator=g, dtype=torch.float64)


@pytest.fixture(scope="module")
def resnet():
    return _model("resnet_tiny")


@pytest.fixture(scope="module")
def vgg():
    return _model("vgg_gap_tiny")


TARGET = torch.tensor([1, 3])


class Linear(nn.Module):
    """f(x) = W vec(x) + c: GradientSHAP and IG have closed forms."""

    num_classes = 2

    def __init__(self, shape=(3, 4, 4)):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(int(np.prod(shape)), 2).double()

    def forward(self, x):
        return self.lin(x.flatten(1))


# -- registry and input checks -------------------------------------------------------

def test_registry_keys_and_unknown_name(resnet):
    assert list(ATTRIBUTION_METHODS) == ["grad", "cam", "gradcam", "gradcampp", "ig",
                                         "smoothgrad", "gradshap"]
    with pytest.raises(ValueError, match="valid: grad, cam, gradcam"):
        attribute("saliency", resnet, _images(), TARGET)


def test_bad_target_and_shape(resnet):
    x = _images()
    with pytest.raises(ValueError, match="5 classes"):
        input_gradient(resnet, x, torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="5 classes"):
        cam(resnet, x, -1)
    with pytest.raises(ValueError, match="batch size 2"):
        gradcam(resnet, x, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"\(B,3,H,W\)"):
        input_gradient(resnet, x[0], 0)
    with pytest.raises(ValueError, match="integer class"):
        input_gradient(resnet, x, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="valid: right, trapezoid"):
        integrated_gradients(resnet, x, 0, rule="left")
    with pytest.raises(ValueError, match="valid: abs_mean"):
        reduce_channels(x, "abs")


def test_state_and_parameters_untouched():
    model = _model("vgg_gap_tiny")
    model.train()
    model.body.conv1_1.weight.requires_grad_(False)
    x = _images(size=32)
    for name in ATTRIBUTION_METHODS:
        opts = {"steps": 2} if name == "ig" else {"n_samples": 2} if name in (
            "smoothgrad", "gradshap") else {}
        attribute(name, model, x, TARGET, **opts)
    assert model.training and all(m.training for m in model.modules())
    assert not model.body.conv1_1.weight.requires_grad
    assert all(p.grad is None for p in model.parameters())


# -- gradient family -------------------------------------------------------------------

def test_grad_matches_captum_saliency(resnet):
    from captum.attr import Saliency

    x = _images()
    ours = input_gradient(resnet, x, TARGET)
    ref = Saliency(resnet).attribute(x.clone().requires_grad_(True), target=TARGET, abs=False)
    assert ours.shape == x.shape and ours.abs().sum() > 0
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(input_gradient(resnet, x, 2)[1:], input_gradient(resnet, x[1:], 2))


def test_grad_ce_pred_is_art_map(resnet):
    x = _images().requires_grad_(True)
    logits = resnet(x)
    loss = F.cross_entropy(logits, logits.argmax(1), reduction="sum")
    (ref,) = torch.autograd.grad(loss, x)
    torch.testing.assert_close(input_gradient(resnet, x.detach(), 0, variant="ce_pred"), ref)


def test_grad_second_order_under_smooth_activations():
    model = _model("resnet_tiny")
    x = _images(size=32)
    with smooth_activations(model, beta=10.0):
        g = input_gradient(model, x, TARGET, create_graph=True)
        assert g.requires_grad
        grads = torch.autograd.grad(g.pow(2).sum(), [model.conv1.weight, model.fc.weight])
    assert all(gr.abs().sum() > 0 for gr in grads)
    # with x requiring grad the map also reaches x (attacks differentiate through it)
    xr = x.clone().requires_grad_(True)
    with smooth_activations(model, beta=10.0):
        (gx,) = torch.autograd.grad(input_gradient(model, xr, TARGET, create_graph=True)
                                    .pow(2).sum(), xr)
    assert gx.abs().sum() > 0


def test_smoothgrad_sigma0_and_seed(resnet):
    x = _images(size=32)
    torch.testing.assert_close(smoothgrad(resnet, x, TARGET, n_samples=2, sigma=0.0),
                               input_gradient(resnet, x, TARGET))
    a = smoothgrad(resnet, x, TARGET, n_samples=3, seed=7)
    b = smoothgrad(resnet, x, TARGET, n_samples=3, seed=7)
    c = smoothgrad(resnet, x, TARGET, n_samples=3, seed=8)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    # reference loop with the same noise stream
    gen = torch.Generator().manual_seed(7)
    ref = sum(input_gradient(resnet, x + 0.15 * torch.randn(x.shape, generator=gen,
                                                            dtype=x.dtype), TARGET)
              for _ in range(3)) / 3
    torch.testing.assert_close(a, ref)


# -- integrated gradients --------------------------------------------------------------

def test_ig_right_matches_captum(resnet):
    from captum.attr import IntegratedGradients

    x = _images(size=32)
    ours = integrated_gradients(resnet, x, TARGET, steps=8, rule="right")
    ref = IntegratedGradients(resnet).attribute(x, baselines=torch.zeros_like(x),
                                                target=TARGET, n_steps=8,
                                                method="riemann_right")
    torch.testing.assert_close(ours, ref)


def _grad_at(model, x, target, kind):
    x = x.detach().requires_grad_(True)
    z = model(x)
    f = z.gather(1, target.view(-1, 1)).sum() if kind == "logit" else F.cross_entropy(
        z, target, reduction="sum")
    return torch.autograd.grad(f, x)[0]


@pytest.mark.parametrize("kind", ["logit", "ce"])
def test_ig_trapezoid_direct_loop(resnet, kind):
    x, n = _images(size=32), 6
    base = torch.full_like(x, 0.3)
    gs = [_grad_at(resnet, base + (i / n) * (x - base), TARGET, kind) for i in range(n + 1)]
    ref = sum((gs[i] + gs[i + 1]) / 2 for i in range(n)) / n * (x - base)
    ours = integrated_gradients(resnet, x, TARGET, baseline=0.3, steps=n, rule="trapezoid",
                                objective=kind)
    torch.testing.assert_close(ours, ref)


def test_ig_internal_batching_and_completeness(resnet):
    x = _images(size=32)
    full = integrated_gradients(resnet, x, TARGET, steps=7, rule="trapezoid")
    for ibs in (1, 2, 5, 6):
        chunked = integrated_gradients(resnet, x, TARGET, steps=7, rule="trapezoid",
                                       internal_batch_size=ibs)
        torch.testing.assert_close(chunked, full)
    # completeness on a linear model: IG sums to f(x) - f(b) exactly
    lin, xl = Linear(), torch.rand(2, 3, 4, 4, dtype=torch.float64)
    ig = integrated_gradients(lin, xl, 1, steps=3)
    torch.testing.assert_close(ig.flatten(1).sum(1), lin(xl)[:, 1] - lin(0 * xl)[:, 1])


def test_ig_create_graph_reaches_parameters():
    model = _model("resnet_tiny")
    x = _images(size=32)
    with smooth_activations(model, beta=10.0):
        ig = integrated_gradients(model, x, TARGET, steps=3, internal_batch_size=2,
                                  create_graph=True)
        grads = torch.autograd.grad(ig.abs().mean(1).pow(2).sum(),
                                    [model.layer1[0].conv1.weight, model.fc.weight])
    assert all(g.abs().sum() > 0 for g in grads)


# -- GradientSHAP ----------------------------------------------------------------------

def test_gradshap_linear_closed_form():
    lin = Linear()
    x = torch.rand(3, 3, 4, 4, dtype=torch.float64)
    w = lin.lin.weight[1].view(3, 4, 4)
    one = torch.rand(1, 3, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(gradient_shap(lin, x, 1, baselines=one, n_samples=3, seed=0),
                               (x - one) * w)
    torch.testing.assert_close(gradient_shap(lin, x, 1, n_samples=2, seed=0), x * w)
    refs = torch.rand(4, 3, 4, 4, dtype=torch.float64)
    est = gradient_shap(lin, x, 1, baselines=refs, n_samples=4000, stdevs=0.1, seed=0)
    exact = (x - refs.mean(0)) * w
    assert (est - exact).abs().max() < 0.15 * w.abs().max()


def test_gradshap_expectation_matches_captum(resnet):
    from captum.attr import GradientShap

    x = _images(b=1, size=32)
    t = torch.tensor([2])
    refs = torch.stack([torch.zeros(3, 32, 32), torch.full((3, 32, 32), 0.5)]).double()
    n = 400
    ours = gradient_shap(resnet, x, t, baselines=refs, n_samples=n, seed=0)
    np.random.seed(0)
    torch.manual_seed(0)
    ref = GradientShap(resnet).attribute(x, baselines=refs, target=t, n_samples=n)
    # exact expectation: the mean of the two baselines' IG (alpha ~ U(0,1))
    exact = sum(integrated_gradients(resnet, x, t, baseline=b, steps=200, rule="trapezoid")
                for b in refs) / 2

    def rel(a):
        return ((a - exact).norm() / exact.norm()).item()

    assert rel(ours) < 0.15 and rel(ref) < 0.15
    assert ((ours - ref).norm() / exact.norm()).item() < 0.2


# -- CAM family ------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["resnet_tiny", "vgg_gap_tiny"])
def test_cam_definition_and_logit_invariant(arch):
    model = _model(arch)
    x = _images()
    logits, feats = model.forward_with_features(x)
    ours = cam(model, x, TARGET)
    ref = torch.einsum("ck,bkhw->bchw", model.classifier_weight, feats)[
        torch.arange(2), TARGET] / feats.shape[1]
    assert ours.shape == feats.shape[:1] + feats.shape[2:]
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(ours.mean((1, 2)) * feats.shape[1],
                               logits[torch.arange(2), TARGET] - model.fc.bias[TARGET])
    # Grad-CAM without ReLU is proportional to CAM on a GAP + linear head
    h, w = feats.shape[2:]
    torch.testing.assert_close(gradcam(model, x, TARGET, relu=False),
                               ours * feats.shape[1] / (h * w))


@pytest.mark.parametrize("arch", ["resnet_tiny", "vgg_gap_tiny"])
def test_gradcam_matches_captum(arch):
    from captum.attr import LayerGradCam

    model = _model(arch)
    x = _images()
    if arch == "vgg_gap_tiny":  # hook relu6's output; not in-place so the hook sees it
        model.relu6.inplace = False
        target_layer = model.relu6
    else:
        target_layer = model.layer4
    ref = LayerGradCam(model, target_layer).attribute(x, target=TARGET,
                                                      relu_attributions=True)
    ours = gradcam(model, x, TARGET)
    assert ours.abs().sum() > 0
    torch.testing.assert_close(ours, ref.squeeze(1))


@pytest.mark.parametrize("arch", ["resnet_tiny", "vgg_gap_tiny"])
def test_gradcampp_matches_pytorch_grad_cam(arch):
    from pytorch_grad_cam import GradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = _model(arch)
    if arch == "vgg_gap_tiny":
        model.relu6.inplace = False
    layer = model.layer4 if arch == "resnet_tiny" else model.relu6
    x = _images()
    ours = gradcampp(model, x, TARGET)
    camobj = GradCAMPlusPlus(model, [layer])
    try:  # BaseCAM.forward up to the un-normalized, un-resized map
        targets = [ClassifierOutputTarget(int(c)) for c in TARGET]
        out = camobj.activations_and_grads(x)
        sum(tg(o) for tg, o in zip(targets, out)).backward()
        acts = camobj.activations_and_grads.activations[0].numpy()
        grads = camobj.activations_and_grads.gradients[0].numpy()
        ref = np.maximum(camobj.get_cam_image(x, layer, targets, acts, grads), 0)
    finally:
        camobj.activations_and_grads.release()
    assert ours.abs().sum() > 0
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-7, atol=1e-10)


# -- reductions, saliency_maps------------------------------------------------------------

def test_reduce_channels():
    a = torch.randn(2, 3, 4, 5)
    torch.testing.assert_close(reduce_channels(a), a.abs().mean(1))
    torch.testing.assert_close(reduce_channels(a, "abs_max"), a.abs().max(1).values)
    torch.testing.assert_close(reduce_channels(a, "sum"), a.sum(1))
    torch.testing.assert_close(reduce_channels(a, "l2"), a.norm(dim=1))


def test_saliency_maps_resize_normalise_and_match_the_raw_maps(resnet):
    import cv2

    from wsol.attribution import saliency_maps

    x = _images()
    g, logits = saliency_maps(resnet, x, TARGET)
    assert g.shape == (2, 48, 48) and g.dtype == torch.float64
    torch.testing.assert_close(logits, resnet(x))
    raw = input_gradient(resnet, x, TARGET).abs().mean(1).double()
    lo, hi = raw.amin((1, 2), keepdim=True), raw.amax((1, 2), keepdim=True)
    torch.testing.assert_close(g, (raw - lo) / (hi - lo))
    c, _ = saliency_maps(resnet, x, TARGET, "cam", size=(20, 30))
    small = cam(resnet, x, TARGET)[0].double().numpy()
    up = cv2.resize(small, (30, 20), interpolation=cv2.INTER_CUBIC)   # wsolevaluation's resize
    np.testing.assert_allclose(c[0].numpy(), (up - up.min()) / (up.max() - up.min()), atol=1e-6)
    assert float(c.min()) == 0.0 and float(c.max()) == 1.0
    pred, _ = saliency_maps(resnet, x, None, "cam")                    # predicted class
    torch.testing.assert_close(pred, saliency_maps(resnet, x, resnet(x).argmax(1), "cam")[0])
    blurred, _ = saliency_maps(resnet, x, TARGET, "grad", blur=2.0)
    assert blurred.shape == g.shape and not torch.allclose(blurred, g)
    assert saliency_maps(resnet, x, TARGET, "ig", size=(20, 30), steps=2)[0].shape == (2, 20, 30)
    with pytest.raises(ValueError, match="unknown saliency 'nope'"):
        saliency_maps(resnet, x, TARGET, "nope")


# -- art2020 gradient map --------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 32, 32), (1, 7, 9), (3, 30, 41)])
def test_gaussian_and_box_match_scipy(shape):
    from scipy.ndimage import gaussian_filter, uniform_filter

    m = torch.rand(shape, dtype=torch.float64)
    ref = np.stack([gaussian_filter(a, 3) for a in m.numpy()])
    np.testing.assert_allclose(gaussian_blur(m, 3.0).numpy(), ref, atol=1e-12)
    ref_box = np.stack([uniform_filter(a, 3, mode="constant") for a in m.numpy()])
    np.testing.assert_allclose(box_filter3(m).numpy(), ref_box, atol=1e-12)
    # the official code blurs an (H,W,1) float32 array: same result
    m32 = m.float()
    np.testing.assert_allclose(gaussian_blur(m32, 3.0).numpy(),
                               np.stack([gaussian_filter(a[..., None], 3)[..., 0]
                                         for a in m32.numpy()]), atol=1e-6)


def _art2020_numpy(g: np.ndarray, batch_global: bool = True) -> np.ndarray:
    """numpy/scipy re-implementation of the official evaluate_loc_grad post-processing."""
    from scipy.ndimage import gaussian_filter, uniform_filter

    def mm(a):
        if batch_global:
            return (a - a.min()) / (a.max() - a.min())
        lo, hi = a.min((1, 2), keepdims=True), a.max((1, 2), keepdims=True)
        return (a - lo) / (hi - lo)

    m = mm(np.abs(g).mean(1))
    m = (m - m.mean((1, 2), keepdims=True)) / m.std((1, 2), ddof=1, keepdims=True)
    flat = m.reshape(len(m), -1)
    p98 = np.percentile(flat, 98, axis=1)[:, None, None]
    p2 = np.percentile(flat, 2, axis=1)[:, None, None]
    m = mm(np.maximum(np.minimum(m, p98), p2))
    m = np.stack([uniform_filter(a, 3, mode="constant") for a in m])
    return np.stack([gaussian_filter(a, 3) for a in m])


@pytest.mark.parametrize("batch_global", [True, False])
def test_art2020_gradient_map_matches_numpy(resnet, batch_global):
    x = _images(b=3, size=40)
    g = input_gradient(resnet, x, 0, variant="ce_pred")
    ours = art2020_gradient_map(resnet, x, batch_global=batch_global)
    assert ours.shape == (3, 40, 40) and ours.dtype == x.dtype
    np.testing.assert_allclose(ours.numpy(), _art2020_numpy(g.numpy(), batch_global),
                               atol=1e-10)
    if not batch_global:  # per image: independent of the rest of the batch
        torch.testing.assert_close(ours[1:2], art2020_gradient_map(resnet, x[1:2], False))


def test_methods_run_under_no_grad(resnet):
    x = _images(size=32)
    with torch.no_grad():
        for name in ATTRIBUTION_METHODS:
            opts = {"steps": 2} if name == "ig" else {"n_samples": 2, "seed": 0} if name in (
                "smoothgrad", "gradshap") else {}
            out = attribute(name, resnet, x, TARGET, **opts)
            assert not out.requires_grad and torch.isfinite(out).all()
            if name in ("grad", "gradcam"):
                torch.testing.assert_close(out, attribute(name, resnet, x, TARGET))


def test_cam_family_create_graph():
    model = _model("resnet_tiny")
    x = _images(size=32).requires_grad_(True)
    with smooth_activations(model, beta=10.0):
        for fn in (cam, gradcam, gradcampp):
            out = fn(model, x, TARGET, create_graph=True)
            gx, gw = torch.autograd.grad(out.pow(2).sum(), [x, model.layer4[0].conv2.weight])
            assert gx.abs().sum() > 0 and gw.abs().sum() > 0
        ig = integrated_gradients(model, x, TARGET, steps=2, create_graph=True)
        (gx,) = torch.autograd.grad(ig.sum(), x)
        assert gx.abs().sum() > 0
    assert x.grad is None
