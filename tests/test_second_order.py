"""wsol.models.second_order: the lean conv double backward equals PyTorch's own."""

import contextlib
import copy

import pytest
import torch
from torch import nn

from wsol.models import build_model, smooth_activations
from wsol.models.second_order import (input_second_order, lean_batch_norm, lean_conv2d, lean_double_backward,
                                      lean_softplus)


def _net() -> nn.Module:
    """Strides, groups, dilation, bias, an odd size (needs output padding), BN, a linear head."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=True), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2, bias=False), nn.ReLU(),
        nn.Conv2d(8, 12, 3, stride=2, padding=2, dilation=2), nn.ReLU(),
        nn.Conv2d(12, 6, 1, stride=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4)).double().eval()


def _input_grad_and_hvp(model, x, v, beta=3.0):
    """(d z_0 / dx, d <d z_0/dx, v> / dx) on the softplus surrogate."""
    x = x.clone().requires_grad_(True)
    with smooth_activations(model, beta):
        (g,) = torch.autograd.grad(model(x)[:, 0].sum(), x, create_graph=True)
        (h,) = torch.autograd.grad((g * v).sum(), x)
    return g.detach(), h


def test_first_and_second_input_derivatives_match_the_standard_path():
    model = _net()
    x = torch.rand(5, 3, 15, 17, dtype=torch.float64)
    v = torch.randn_like(x)
    g_ref, h_ref = _input_grad_and_hvp(model, x, v)
    with input_second_order(model):
        g, h = _input_grad_and_hvp(model, x, v)
    assert h_ref.abs().max() > 0
    torch.testing.assert_close(g, g_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(h, h_ref, rtol=1e-10, atol=1e-12)


def test_wrn_surrogate_hvp_matches():
    model = build_model("wrn_10_1", 10).double().eval()
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    v = torch.randn_like(x)
    _, h_ref = _input_grad_and_hvp(model, x, v, beta=50.0)
    with input_second_order(model):
        _, h = _input_grad_and_hvp(model, x, v, beta=50.0)
    torch.testing.assert_close(h, h_ref, rtol=1e-9, atol=1e-12)


def test_lean_conv2d_weight_and_bias_gradients_when_asked_for():
    torch.manual_seed(1)
    x = torch.rand(3, 4, 9, 10, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, requires_grad=True)
    args = dict(stride=2, padding=1, dilation=1, groups=2)
    ref = torch.autograd.grad(torch.nn.functional.conv2d(x, w, b, **args).pow(2).sum(), (x, w, b))
    got = torch.autograd.grad(lean_conv2d(x, w, b, **args).pow(2).sum(), (x, w, b))
    for r, g in zip(ref, got):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


def test_context_freezes_and_restores():
    model = _net()
    model[0].weight.requires_grad_(False)                 # a frozen layer stays frozen afterwards
    before = {n: p.requires_grad for n, p in model.named_parameters()}
    with input_second_order(model):
        assert not any(p.requires_grad for p in model.parameters())
        assert all("forward" in m.__dict__ for m in model if isinstance(m, nn.Conv2d))
        with input_second_order(model):                   # nesting
            pass
        assert all("forward" in m.__dict__ for m in model if isinstance(m, nn.Conv2d))
    assert {n: p.requires_grad for n, p in model.named_parameters()} == before
    assert not any("forward" in m.__dict__ for m in model.modules())
    with pytest.raises(RuntimeError, match="boom"), input_second_order(model):
        raise RuntimeError("boom")
    assert {n: p.requires_grad for n, p in model.named_parameters()} == before
    assert not any("forward" in m.__dict__ for m in model.modules())


def test_other_convolutions_keep_their_forward():
    same = nn.Conv2d(3, 3, 3, padding="same")
    reflect = nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect")
    class Sub(nn.Conv2d):
        pass
    sub = Sub(3, 3, 3)
    model = nn.Sequential(same, reflect, sub)
    with input_second_order(model):
        assert not any("forward" in m.__dict__ for m in model)


def test_lean_path_under_bf16_autocast_tracks_float32():
    """The attack's bf16 mode: lean conv under CPU autocast gives float32 gradients close to fp32's."""
    model = build_model("wrn_10_1", 10).eval()
    x = torch.rand(2, 3, 16, 16)
    v = torch.randn_like(x)
    g32, h32 = _input_grad_and_hvp(model, x, v, beta=50.0)
    with input_second_order(model), torch.autocast("cpu", dtype=torch.bfloat16):
        g16, h16 = _input_grad_and_hvp(model, x, v, beta=50.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, h16_std = _input_grad_and_hvp(model, x, v, beta=50.0)
    assert g16.dtype == h16.dtype == torch.float32
    cos = torch.nn.functional.cosine_similarity
    assert cos(g16.flatten(), g32.flatten(), dim=0) > 0.99
    assert cos(h16.flatten(), h32.flatten(), dim=0) > 0.95
    assert cos(h16.flatten(), h16_std.flatten(), dim=0) > 0.95
    assert not torch.equal(h16, h32)        # autocast did take effect


def test_lean_conv2d_backward_with_mixed_dtypes():
    """bf16 incoming gradient, float32 weight (backward outside autocast): no dtype error."""
    x = torch.rand(2, 3, 9, 9, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = lean_conv2d(x, w, None, 1, 1)
    assert y.dtype == torch.bfloat16
    gx, gw = torch.autograd.grad(y.float().square().sum(), (x, w))
    assert gx.dtype == gw.dtype == torch.float32 and gx.abs().max() > 0


def _double_backprop_param_grads(model, x, beta=3.0):
    """Parameter gradients of a loss of the input gradient (double-backprop training, as ART's L_attr)."""
    u = x.clone().requires_grad_(True)
    with smooth_activations(model, beta):
        (g,) = torch.autograd.grad(model(u)[:, 0].sum(), u, create_graph=True)
    loss = (g * x).sum() / (g.norm() + 1) + model(x)[:, 1].sum()      # plus a first-order term
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.autograd.grad(loss, params)


@pytest.mark.parametrize("train", [False, True])
def test_lean_double_backward_gives_the_parameter_gradients_of_the_standard_path(train):
    model = _net().train(train)
    x = torch.rand(5, 3, 15, 17, dtype=torch.float64)
    ref = _double_backprop_param_grads(model, x)
    with lean_double_backward(model):
        assert all(p.requires_grad for p in model.parameters())
        got = _double_backprop_param_grads(model, x)
    assert not any("forward" in m.__dict__ for m in model.modules())
    for r, g in zip(ref, got):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


def test_the_first_order_weight_gradient_runs_only_when_asked_for(monkeypatch):
    """An input gradient through lean convolutions does not form weight gradients (that node is pruned)."""
    import wsol.models.second_order as so

    calls = []
    real = so._ConvWeightGrad.backward
    monkeypatch.setattr(so._ConvWeightGrad, "backward", staticmethod(lambda ctx, g: calls.append(1) or real(ctx, g)))
    model = _net()
    x = torch.rand(2, 3, 15, 17, dtype=torch.float64, requires_grad=True)
    with lean_double_backward(model):
        out = model(x)[:, 0].sum()
    torch.autograd.grad(out, x, retain_graph=True)
    assert calls == []
    out.backward()
    assert len(calls) == 4 and all(p.grad is not None for p in model.parameters())


# -- lean batch norm and softplus ---------------------------------------------------------------

def _bn_derivatives(bn, x, w, b, running):
    """BN output, (gx, gw, gb) with their graphs, and the gradients w.r.t. (x, w, b) of a loss of all three."""
    torch.manual_seed(5)
    y = bn(x, w, b, *running)
    r = torch.randn_like(y)
    firsts = torch.autograd.grad((torch.sin(y) * r).sum(), [t for t in (x, w, b) if t is not None],
                                 create_graph=True)
    gx = firsts[0]
    loss = (gx * gx * torch.randn_like(gx)).sum()
    if w is not None:
        loss = loss + (firsts[1] * torch.randn_like(w)).sum() + (firsts[2] ** 2 * torch.randn_like(b)).sum()
    seconds = torch.autograd.grad(loss, [t for t in (x, w, b) if t is not None])
    return [y, *firsts, *seconds, *[t for t in running if t is not None]]


@pytest.mark.parametrize("shape", [(6, 4), (4, 3, 5, 6), (2, 3, 3, 4, 5)])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("running", [True, False])
def test_lean_batch_norm_first_and_second_derivatives_match_f_batch_norm(shape, affine, running):
    """Every term of the closed-form double backward (through gx, gw and gb), 1d/2d/3d, with and
    without affine parameters and running statistics (updated the same way)."""
    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=torch.float64) * 3 + 1
    c = shape[1]
    results = []
    for lean in (False, True):
        xx = x.clone().requires_grad_(True)
        w = torch.randn(c, dtype=torch.float64).requires_grad_(True) if affine else None
        b = torch.randn(c, dtype=torch.float64).requires_grad_(True) if affine else None
        stats = (torch.zeros(c, dtype=torch.float64), torch.ones(c, dtype=torch.float64)) if running else (None, None)
        if lean:
            fn = lambda x, w, b, rm, rv: lean_batch_norm(x, w, b, rm, rv, 0.3, 1e-5)
        else:
            fn = lambda x, w, b, rm, rv: torch.nn.functional.batch_norm(x, rm, rv, w, b, True, 0.3, 1e-5)
        torch.manual_seed(1)
        if affine:
            w.data, b.data = torch.randn(c, dtype=torch.float64), torch.randn(c, dtype=torch.float64)
        results.append(_bn_derivatives(fn, xx, w, b, stats))
    ref, got = results
    assert len(ref) == len(got)
    for r, g in zip(ref, got):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-12)


def test_lean_double_backwards_refuse_a_third_derivative():
    x = torch.randn(4, 3, 5, 5, dtype=torch.float64, requires_grad=True)
    w = torch.ones(3, dtype=torch.float64, requires_grad=True)
    y = lean_batch_norm(x, w, torch.zeros(3, dtype=torch.float64), None, None)
    (gx,) = torch.autograd.grad(torch.sin(y).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="lean_batch_norm: third derivatives are not supported"):
        torch.autograd.grad((gx ** 2).sum(), x, create_graph=True)
    u = torch.randn(5, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(lean_softplus(u, 2.0).pow(2).sum(), u, create_graph=True)
    with pytest.raises(RuntimeError, match="lean_softplus: third derivatives are not supported"):
        torch.autograd.grad(g.pow(2).sum(), u, create_graph=True)


@pytest.mark.parametrize("momentum", [0.1, None, 0.0])
def test_lean_batch_norm_modules_keep_the_running_statistics_of_nn_batchnorm(momentum):
    """Train mode inside lean_double_backward: outputs, running mean/var and the batch counter as
    nn.BatchNorm2d's own (momentum None: the cumulative average; 0: frozen statistics); eval mode
    is the affine map; under autocast the lean path as well."""
    torch.manual_seed(0)
    plain, lean = nn.BatchNorm2d(3, momentum=momentum).double(), nn.BatchNorm2d(3, momentum=momentum).double()
    for step in range(3):
        x = torch.randn(4, 3, 6, 5, dtype=torch.float64) * (step + 1)
        y_ref = plain(x)
        with lean_double_backward(lean):
            y = lean(x)
        assert "Lean" in type(y.grad_fn).__name__
        torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    for name, buf in plain.named_buffers():
        torch.testing.assert_close(dict(lean.named_buffers())[name], buf, rtol=1e-12, atol=1e-12)
    lean.eval()
    with lean_double_backward(lean):
        y = lean(x.requires_grad_(True))
        assert type(y.grad_fn).__name__ == "AddcmulBackward0"          # eval mode: the affine map
    torch.testing.assert_close(y, plain.eval()(x), rtol=1e-12, atol=1e-12)
    lean.train().float()
    with lean_double_backward(lean), torch.autocast("cpu", dtype=torch.bfloat16):
        assert "Lean" in type(lean(x.float()).grad_fn).__name__          # autocast: lean too


@pytest.mark.parametrize("train", [True, False])
def test_lean_batch_norm_under_bf16_autocast_is_as_accurate_as_the_standard_path(train):
    """Autocast's mixed dtypes (bf16 input, float32 parameters and statistics), train and eval mode:
    the same forward, and first and second derivatives (input's and double-backprop parameters')
    in the standard path's dtypes and at least as close as its own to the float64 values."""
    torch.manual_seed(0)
    bn64 = nn.BatchNorm2d(6).double().train(train)
    bn64.running_mean.normal_()
    bn64.running_var.uniform_(0.5, 2.0)
    bn64.weight.data.normal_()
    bn64.bias.data.normal_()
    x = (torch.randn(8, 6, 7, 9, dtype=torch.float64) * 2 + 1).bfloat16().double()
    r = torch.randn_like(x)

    def derivatives(bn, dtype, lean):
        u = x.to(dtype).requires_grad_(True)
        with lean_double_backward(bn) if lean else contextlib.nullcontext():
            y = bn(u)
        (g,) = torch.autograd.grad((y.double().sin() * r).sum(), u, create_graph=True)
        return [y, g, *torch.autograd.grad((g.double() * g.double() * r).sum(), [u, *bn.parameters()])]

    truth = derivatives(copy.deepcopy(bn64), torch.float64, False)
    plain = derivatives(copy.deepcopy(bn64).float(), torch.bfloat16, False)
    lean = derivatives(copy.deepcopy(bn64).float(), torch.bfloat16, True)
    assert "Lean" in type(lean[0].grad_fn).__name__ or not train
    for t, p, q in zip(truth, plain, lean):
        assert q.dtype == p.dtype and q.shape == p.shape
        err_plain, err_lean = (p.double() - t).norm() / t.norm(), (q.double() - t).norm() / t.norm()
        assert err_lean <= 1.25 * err_plain + 1e-6 and err_lean < 0.1, (err_lean, err_plain)


@pytest.mark.parametrize("beta", [1.0, 3.0, 50.0])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_lean_softplus_first_and_second_derivatives_match_f_softplus(beta, dtype):
    """Inputs on both sides of the threshold (softplus is linear above beta*x = 20): values, input
    gradients and their gradients as F.softplus's, also where float32 saturates the sigmoid."""
    torch.manual_seed(0)
    x = torch.cat([torch.randn(200), torch.linspace(-30.05, 29.95, 121) / beta]).to(dtype)   # beta x = 20 is
    # not hit: there PyTorch's own first derivative takes the sigmoid and its second derivative the linear side
    r, s = torch.randn_like(x), torch.randn_like(x)
    results = []
    for fn in (torch.nn.functional.softplus, lean_softplus):
        u = x.clone().requires_grad_(True)
        y = fn(u, beta, 20.0)
        (g,) = torch.autograd.grad((y * y * r).sum(), u, create_graph=True)
        (h,) = torch.autograd.grad((g * s).sum(), u)
        results.append((y, g, h))
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
    for r_, g_ in zip(*results):
        torch.testing.assert_close(g_, r_, **tol)
    assert results[1][2][x * beta > 20].equal(results[0][2][x * beta > 20])   # linear part: exactly y' only


def test_smooth_activations_compute_the_lean_softplus():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    x = torch.randn(2, 3, requires_grad=True)
    with smooth_activations(model, 2.0):
        assert "LeanSoftplus" in type(model(x).grad_fn).__name__
        assert "LeanSoftplus" in type(torch.relu(x).grad_fn).__name__


# -- the phase form of a stem's transposed convolution ------------------------------------------

@pytest.mark.parametrize("conf", [
    dict(c=3, k=(7, 7), stride=(2, 2), padding=(3, 3), size=(17, 20)),     # ResNet's stem, odd sizes
    dict(c=3, k=(7, 7), stride=(2, 2), padding=(3, 3), size=(16, 16)),
    dict(c=2, k=(3, 5), stride=(2, 3), padding=(1, 0), size=(9, 14)),      # anisotropic
    dict(c=1, k=(4, 4), stride=(2, 2), padding=(5, 2), size=(11, 11)),     # padding beyond the kernel
    dict(c=3, k=(1, 1), stride=(2, 2), padding=(0, 0), size=(9, 10)),
])
def test_phase_transposed_convolution_equals_conv_transpose2d(conf):
    """The input gradient of a strided conv on few channels goes by _PhaseConvTranspose: the same
    values, and the same first derivatives w.r.t. grad_out and the weight (gradcheck: second ones too)."""
    from wsol.models.second_order import _by_phases, _PhaseConvTranspose

    torch.manual_seed(0)
    x = torch.randn(2, conf["c"], *conf["size"], dtype=torch.float64)
    w = torch.randn(5, conf["c"], *conf["k"], dtype=torch.float64, requires_grad=True)
    y = torch.nn.functional.conv2d(x, w, None, conf["stride"], conf["padding"])
    gy = torch.randn_like(y).requires_grad_(True)
    assert _by_phases(w, conf["stride"], (1, 1), 1)
    xr = x.clone().requires_grad_(True)
    (ref,) = torch.autograd.grad(torch.nn.functional.conv2d(xr, w, None, conf["stride"], conf["padding"]), xr, gy,
                                 create_graph=True)
    args = ((tuple(conf["stride"]), tuple(conf["padding"]), (1, 1), 1), tuple(conf["size"]))
    got = _PhaseConvTranspose.apply(gy, w, *args)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    r = torch.randn_like(ref)
    for a, b in zip(torch.autograd.grad((got * r).sum(), (gy, w)), torch.autograd.grad((ref * r).sum(), (gy, w))):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    small_gy, small_w = gy.detach()[:1, :2].clone().requires_grad_(True), w.detach()[:2].clone().requires_grad_(True)
    torch.autograd.gradgradcheck(lambda g, v: _PhaseConvTranspose.apply(g, v, *args), (small_gy, small_w))


def test_a_strided_rgb_stem_takes_the_phase_form_with_the_standard_derivatives():
    """lean_double_backward on a ResNet-style stem: input gradients, their input gradients and the
    double-backprop parameter gradients as PyTorch's own path."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.MaxPool2d(3, 2, 1), nn.Conv2d(8, 6, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4)).double().train()
    x = torch.rand(3, 3, 19, 21, dtype=torch.float64)
    v = torch.randn_like(x)
    g_ref, h_ref = _input_grad_and_hvp(model, x, v)
    ref = _double_backprop_param_grads(model, x)
    with input_second_order(model):
        g, h = _input_grad_and_hvp(model, x, v)
    with lean_double_backward(model):
        got = _double_backprop_param_grads(model, x)
    torch.testing.assert_close(g, g_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(h, h_ref, rtol=1e-10, atol=1e-12)
    for r, a in zip(ref, got):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("pool", [nn.MaxPool2d(3, 2, 1), nn.MaxPool2d(2), nn.MaxPool2d(3, 2, 0, ceil_mode=True)])
def test_max_pooling_in_channels_last_gives_the_same_values_indices_and_derivatives(pool):
    """Inside the lean contexts a CPU max pool runs in channels-last layout: bit-identical outputs and
    first and second derivatives, also with many tied maxima (ReLU zeros, rounded values)."""
    torch.manual_seed(0)
    x = (torch.relu(torch.randn(4, 8, 13, 15, dtype=torch.float64) - 0.5) * 2).round()
    r = torch.randn_like(x)
    results = []
    for lean in (False, True):
        u = x.clone().requires_grad_(True)
        with lean_double_backward(pool) if lean else contextlib.nullcontext():
            y = pool(u)
        assert ("ChannelsLast" in type(y.grad_fn).__name__) == lean
        (g,) = torch.autograd.grad(torch.nn.functional.softplus(y).sum(), u, create_graph=True)
        results.append((y, g, torch.autograd.grad(((g * r) ** 2).sum(), u)[0]))
    for a, b in zip(*results):
        assert torch.equal(a, b)


@pytest.mark.parametrize("affine", [True, False])
def test_eval_mode_batch_norm_is_the_affine_map_with_the_standard_derivatives(affine):
    """Eval mode inside the lean contexts: x * scale + shift; values, input gradients, their input
    gradients and the double-backprop weight and bias gradients as F.batch_norm's."""
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(5, affine=affine).double().eval()
    bn.running_mean.normal_()
    bn.running_var.uniform_(0.5, 2.0)
    if affine:
        bn.weight.data.normal_()
        bn.bias.data.normal_()
    x = torch.randn(4, 5, 6, 7, dtype=torch.float64)
    r = torch.randn_like(x)
    results = []
    for lean in (False, True):
        u = x.clone().requires_grad_(True)
        with lean_double_backward(bn) if lean else contextlib.nullcontext():
            y = bn(u)
        (g,) = torch.autograd.grad((torch.sin(y) * r).sum(), u, create_graph=True)
        results.append([y, g, *torch.autograd.grad((g * g).sum(), [u, *bn.parameters()])])
    assert results[1][2].abs().max() > 0
    for a, b in zip(*results):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)


def test_lean_batch_norm_and_softplus_on_channels_last_inputs():
    """A channels-last batch (a model run with --channels-last): the same first and second derivatives."""
    torch.manual_seed(0)
    x0 = torch.randn(4, 5, 6, 7, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    w0, b0, r = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64), torch.randn_like(x0)
    results = []
    for lean in (False, True):
        x, w, b = x0.clone().requires_grad_(True), w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
        y = lean_batch_norm(x, w, b, None, None) if lean else torch.nn.functional.batch_norm(x, None, None, w, b, True)
        softplus = lean_softplus if lean else torch.nn.functional.softplus
        gx, gw = torch.autograd.grad((softplus(y, 2.0) * r).sum(), (x, w), create_graph=True)
        results.append([y, gx, gw, *torch.autograd.grad((gx ** 2).sum() + gw.sum(), (x, w, b))])
    for a, b_ in zip(*results):
        torch.testing.assert_close(b_, a, rtol=1e-10, atol=1e-12)


def test_plain_double_backward_switches_every_lean_path_off_and_back():
    """The reference path the equality tests and benchmarks compare against: inside it the lean
    contexts change nothing and lean_softplus is F.softplus; outside (also after nesting) all is lean."""
    from wsol.models.second_order import plain_double_backward

    model = _net()
    x = torch.randn(3, requires_grad=True)
    with plain_double_backward():
        with plain_double_backward(), input_second_order(model), lean_double_backward(model):
            assert all(p.requires_grad for p in model.parameters())
            assert not any("forward" in m.__dict__ for m in model.modules())
        assert type(lean_softplus(x).grad_fn).__name__ == "SoftplusBackward0"
    assert "LeanSoftplus" in type(lean_softplus(x).grad_fn).__name__
    with input_second_order(model):
        assert not any(p.requires_grad for p in model.parameters())
        assert any("forward" in m.__dict__ for m in model.modules())
