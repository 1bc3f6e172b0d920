"""ART: the loss against a direct, unvectorized computation of REFERENCE.md §1.2; the attack (§1.3)."""

from __future__ import annotations

import contextlib
import math

import pytest
import torch
import torch.nn.functional as F

from wsol.config import ARTConfig
from wsol.methods import build_method
from wsol.methods.base import frozen_bn_stats
from wsol.methods.art import (ARTMethod, _masked_triplet, art_attack, art_attr_term, logit_gradients, project,
                              topk_indices)
from wsol.models import build_model, smooth_activations


def tiny_model(num_classes=4, seed=0, arch="vgg_gap_tiny"):
    torch.manual_seed(seed)
    return build_model(arch, num_classes).double()


def batch(n=3, size=16, num_classes=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g, dtype=torch.float64)
    y = torch.randint(0, num_classes, (n,), generator=g)
    return x, y


# -- the direct formula --------------------------------------------------------------------

def phi(t: torch.Tensor, kind: str) -> torch.Tensor:
    """One sample (C,H,W) -> vector."""
    return t.abs().mean(dim=0).reshape(-1) if kind == "abs_mean" else t.reshape(-1)


def dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    dot = sum(a[j] * b[j] for j in range(a.numel()))  # deliberately elementwise
    return 1 - dot / ((torch.sqrt(sum(a[j] ** 2 for j in range(a.numel()))) + 1e-8)
                      * (torch.sqrt(sum(b[j] ** 2 for j in range(b.numel()))) + 1e-8))


def reference_attr(model, x, x_adv, y, beta, kind, pair=True):
    """L_attr of §1.2 written out row by row: per-row gradients, per-entry distances, loops for mining."""
    rows = torch.cat([x, x_adv]) if pair else x_adv
    labels = torch.cat([y, y]) if pair else y
    R, N = len(rows), len(x)
    u = model.normalize(rows).detach().requires_grad_(True)
    with smooth_activations(model, beta):
        z = model.classifier(model.extract(u).mean(dim=(2, 3)))
        g1, g2 = [], []
        for r in range(R):
            yr = int(labels[r])
            runner = max((z[r, i] for i in range(z.shape[1]) if i != yr), key=lambda t: float(t.detach()))
            # the batch objective is a mean over rows: row r's share is z[r, .] / R
            g1.append(torch.autograd.grad(z[r, yr] / R, u, create_graph=True, retain_graph=True)[0][r])
            g2.append(torch.autograd.grad(runner / R, u, create_graph=True, retain_graph=True)[0][r])
    total = 0
    for r in range(R):
        partners = [k for k in range(R) if (k % N if pair else k) == (r % N if pair else r)]
        d_ap = max((dist(phi(u[r], kind), phi(g1[k], kind)) for k in partners), key=lambda t: float(t.detach()))
        d_an = min((dist(phi(u[r], kind), phi(g2[k], kind)) for k in partners), key=lambda t: float(t.detach()))
        total = total + torch.log1p(torch.exp(-(d_an - d_ap)))
    return total / R


@pytest.mark.parametrize("kind", ["abs_mean", "signed"])
@pytest.mark.parametrize("pair", [True, False])
def test_attr_loss_matches_direct_formula(kind, pair):
    model = tiny_model()
    x, y = batch(n=2, size=16)
    x_adv = (x + 0.03 * torch.randn_like(x)).clamp(0, 1)
    cfg = ARTConfig(beta=2.0, projection=kind, attr_inputs="pair" if pair else "adv_only")
    ours = art_attr_term(model, x, x_adv, y, cfg)
    ref = reference_attr(model, x, x_adv, y, cfg.beta, kind, pair)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-9, abs=1e-12)
    params = [p for p in model.parameters()]
    g_ours = torch.autograd.grad(ours, params, allow_unused=True)
    g_ref = torch.autograd.grad(ref, params, allow_unused=True)
    for a, b in zip(g_ours, g_ref):
        if a is None or b is None:
            assert a is None and b is None
            continue
        assert torch.allclose(a, b, rtol=1e-7, atol=1e-12)
    assert any(a is not None and a.abs().sum() > 0 for a in g_ours), "L_attr must train the weights"


def test_mining_uses_the_twin():
    """With pairs, a row's positive distance is the max over itself and its twin, not its own alone."""
    model = tiny_model()
    x, y = batch(n=3, size=16)
    x_adv = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    paired = art_attr_term(model, x, x_adv, y, ARTConfig(attr_inputs="pair")).item()
    # the same rows treated as six singletons (no mining) give a smaller loss: max >= own, min <= own
    rows = torch.cat([x, x_adv])
    single = art_attr_term(model, rows, rows, torch.cat([y, y]), ARTConfig(attr_inputs="adv_only")).item()
    assert paired >= single - 1e-12


def test_logit_gradients_are_of_logits_not_loss():
    model = tiny_model()
    x, y = batch(n=2, size=16)
    u = model.normalize(x).requires_grad_(True)
    with smooth_activations(model, 3.0):
        g1, g2 = logit_gradients(model, u, y, normalized=True, create_graph=False)
        z = model.classifier(model.extract(u).mean(dim=(2, 3)))
        own = torch.autograd.grad(z[0, y[0]] / 2, u)[0]
    assert torch.allclose(g1[0], own[0])
    runner = z.detach().clone()
    runner[torch.arange(2), y] = -math.inf
    assert torch.all(runner.argmax(1) != y)
    assert g2.shape == g1.shape and not torch.allclose(g1, g2)


# -- the attack ---------------------------------------------------------------------------------

def attack_objective(model, x, x_adv, y, cfg, idx):
    with smooth_activations(model, cfg.beta):
        leaf = x_adv.detach().requires_grad_(True)
        g1, g2 = logit_gradients(model, leaf, y, normalized=False)
        return _masked_triplet(model.normalize(leaf), g1, g2, idx, cfg.projection).item()


@pytest.mark.parametrize("grad_wrt", ["raw", "normalized"])
def test_attack_stays_in_ball_and_raises_attr_loss(grad_wrt):
    model = tiny_model(arch="resnet_tiny").float().eval()
    x, y = batch(n=4, size=16)
    x = x.float()
    cfg = ARTConfig(epsilon=8 / 255, steps=3, step_size=3 / 255, topk_fraction=0.3, beta=2.0,
                    attack_grad_wrt=grad_wrt)
    torch.manual_seed(5)
    start = art_attack(model, x, y, cfg, steps=0)
    torch.manual_seed(5)
    adv = art_attack(model, x, y, cfg)
    assert (adv - x).abs().max() <= cfg.epsilon + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1
    assert not adv.requires_grad
    assert all(p.grad is None for p in model.parameters())
    idx = topk_indices(torch.ones_like(x), x[0, 0].numel(), "abs_mean")  # all pixels
    assert attack_objective(model, x, adv, y, cfg, idx) > attack_objective(model, x, start, y, cfg, idx)
    # and the training loss L_attr on the pair rises too
    assert art_attr_term(model, x, adv, y, cfg).item() > art_attr_term(model, x, start, y, cfg).item()


def test_topk_mask_counts_and_projection():
    g = torch.zeros(2, 3, 4, 4)
    g[0, :, 0, 0] = 5.0
    g[1, 1, 3, 2] = -7.0
    idx = topk_indices(g, 1, "abs_mean")
    assert idx.tolist() == [[0], [14]]
    assert topk_indices(g, 1000, "signed").shape == (2, 48)  # k clamps to C*H*W
    assert project(g, "abs_mean").shape == (2, 16) and project(g, "signed").shape == (2, 48)


def test_attack_bn_mode_and_method_step():
    model = tiny_model(arch="resnet_tiny").float().train()
    x, y = batch(n=4, size=16)
    x = x.float()
    before = model.layer1[0].bn1.running_mean.clone()
    method = build_method("art", type("M", (), {"art": ARTConfig(attack_bn_mode="eval", topk_fraction=0.3)})())
    assert isinstance(method, ARTMethod)
    out = method.step(model, x, y)
    assert model.training
    assert out.logits.shape == (4, 4) and set(out.stats) == {"ce", "attr"}
    assert out.loss.item() == pytest.approx(out.stats["ce"] + 0.5 * out.stats["attr"], rel=1e-5)
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    # train-mode passes (the CE and L_attr ones) moved the running stats
    assert not torch.equal(before, model.layer1[0].bn1.running_mean)


def test_attack_in_train_mode_updates_bn_stats_q1():
    model = tiny_model(arch="resnet_tiny").float().train()
    x, y = batch(n=4, size=16)
    before = model.layer1[0].bn1.running_mean.clone()
    art_attack(model, x.float(), y, ARTConfig(topk_fraction=0.3, steps=1))
    assert not torch.equal(before, model.layer1[0].bn1.running_mean)


def test_frozen_bn_stats_keeps_running_stats_and_gradients():
    model = tiny_model(arch="resnet_tiny").float().train()
    x, _ = batch(n=4, size=16)
    bn = model.layer1[0].bn1
    mean, var, count, momentum = bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone(), \
        bn.momentum
    u = x.float().requires_grad_(True)
    with frozen_bn_stats(model):
        out = model(u)
        g, = torch.autograd.grad(out.sum(), u, create_graph=True)
    # batch statistics still normalise (same output as a plain train-mode pass), buffers untouched
    assert torch.allclose(out, model(x.float()), atol=1e-6)
    g.square().sum().backward()  # double backward through the frozen pass
    assert bn.weight.grad is not None and bn.weight.grad.abs().sum() > 0
    assert bn.momentum == momentum
    assert not torch.equal(bn.running_mean, mean)  # the plain pass above moved them
    model2 = tiny_model(arch="resnet_tiny").float().train()
    with frozen_bn_stats(model2):
        model2(x.float())
    assert torch.equal(model2.layer1[0].bn1.running_mean, mean) and torch.equal(model2.layer1[0].bn1.running_var, var)
    assert torch.equal(model2.layer1[0].bn1.num_batches_tracked, count)


@pytest.mark.parametrize("mode", ["fast", "faithful"])
def test_bn_stats_ce_leaves_running_stats_to_the_ce_pass(mode):
    x, y = batch(n=4, size=16)
    x = x.float()
    cfg = ARTConfig(topk_fraction=0.3, steps=1, mode=mode, bn_stats="ce")
    model = tiny_model(arch="resnet_tiny").float().train()
    torch.manual_seed(5)
    out = ARTMethod(cfg).step(model, x, y)
    # the reference: the same x~, one plain train-mode CE pass from the same start
    ref = tiny_model(arch="resnet_tiny").float().train()
    torch.manual_seed(5)
    with frozen_bn_stats(ref):
        x_adv = ARTMethod(cfg).attack(ref, x, y)
    ref(x_adv)
    for a, b in zip(model.modules(), ref.modules()):
        if isinstance(a, torch.nn.BatchNorm2d):
            assert torch.allclose(a.running_mean, b.running_mean, atol=1e-6)
            assert torch.allclose(a.running_var, b.running_var, atol=1e-6)
            assert torch.equal(a.num_batches_tracked, b.num_batches_tracked)
    # the loss itself is the same as with every pass moving the stats (art2020)
    model_all = tiny_model(arch="resnet_tiny").float().train()
    torch.manual_seed(5)
    out_all = ARTMethod(ARTConfig(topk_fraction=0.3, steps=1, mode=mode)).step(model_all, x, y)
    assert out.loss.item() == pytest.approx(out_all.loss.item(), rel=1e-5)


def test_fast_mode_runs_with_and_without_steps():
    model = tiny_model(arch="resnet_tiny").float().train()
    x, y = batch(n=4, size=16)
    for steps in (0, 1):
        method = ARTMethod(ARTConfig(mode="fast", fast_steps=steps, topk_fraction=0.3))
        torch.manual_seed(0)
        adv = method.attack(model, x.float(), y)
        assert (adv - x.float()).abs().max() <= 2 / 255 + 1e-6
        out = method.step(model, x.float(), y)
        assert torch.isfinite(out.loss)


def test_ce_is_on_adversarial_input_only():
    model = tiny_model(arch="resnet_tiny").float().eval()
    x, y = batch(n=3, size=16)
    x = x.float()
    cfg = ARTConfig(topk_fraction=0.3, attack_bn_mode="eval")
    method = ARTMethod(cfg)
    torch.manual_seed(3)
    out = method.step(model, x, y)
    torch.manual_seed(3)
    adv = art_attack(model, x, y, cfg)
    assert out.stats["ce"] == pytest.approx(F.cross_entropy(model(adv), y).item(), rel=1e-5)


def test_fast_pair_subsets_are_an_unbiased_estimate_of_l_attr():
    """Without BN, each pair's term is independent: the mean over single-pair subsets is the full L_attr."""
    model = tiny_model()
    x, y = batch(n=3, size=16)
    x_adv = (x + 0.03 * torch.randn_like(x)).clamp(0, 1)
    cfg = ARTConfig(beta=2.0)
    full = art_attr_term(model, x, x_adv, y, cfg).item()
    parts = [art_attr_term(model, x[[i]], x_adv[[i]], y[[i]], cfg, batch_size=3).item() for i in range(3)]
    assert sum(parts) / 3 == pytest.approx(full, rel=1e-10)


def test_fast_step_uses_the_configured_fraction_of_pairs(monkeypatch):
    import wsol.methods.art as art

    seen = []
    real = art.art_attr_term
    monkeypatch.setattr(art, "art_attr_term",
                        lambda m, x, xa, y, c, **kw: seen.append(len(y)) or real(m, x, xa, y, c, **kw))
    model = tiny_model(arch="resnet_tiny").float().train()
    x, y = batch(n=8, size=16)
    ARTMethod(ARTConfig(mode="fast", fast_pair_fraction=0.25, topk_fraction=0.3)).step(model, x.float(), y)
    ARTMethod(ARTConfig(mode="fast", fast_pair_fraction=1.0, topk_fraction=0.3)).step(model, x.float(), y)
    ARTMethod(ARTConfig(mode="faithful", fast_pair_fraction=0.25, topk_fraction=0.3, steps=1)).step(
        model, x.float(), y)
    assert seen == [2, 8, 8]


# -- the lean attack path and the attack's cosine (issue 25) ------------------------------------

def _faithful_step(model, x, y, cfg, plain: bool, monkeypatch, seed=7):
    """One faithful ART step + backward on `model`: (x~, CE, L_attr, parameter grads, BN buffers).
    plain=True runs the attack and L_attr with PyTorch's own double backward (`plain_double_backward`):
    the computation before issue 25."""
    import contextlib

    import wsol.methods.art as art_module
    from wsol.models.second_order import plain_double_backward

    with monkeypatch.context() as mp, plain_double_backward() if plain else contextlib.nullcontext():
        seen = []
        real = art_module.art_attack
        mp.setattr(art_module, "art_attack", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
        torch.manual_seed(seed)
        out = ARTMethod(cfg).step(model, x, y)
    model.zero_grad(set_to_none=True)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    return seen[0], out.terms["CE"].detach(), out.terms["L_attr"].detach(), grads, buffers


@pytest.mark.parametrize("arch", ["resnet_tiny", "vgg_gap_tiny"])
@pytest.mark.parametrize("grad_wrt,bn_mode", [("raw", "train"), ("normalized", "train"), ("raw", "eval")])
def test_lean_attack_equals_plain_double_backward_in_float64(arch, grad_wrt, bn_mode, monkeypatch):
    """The attack steps run in `input_second_order`, L_attr in `lean_double_backward`: x~ (hence every
    attack sign), CE, L_attr, the parameter gradients and the BN running statistics equal those of the
    plain autograd computation."""
    x, y = batch(n=4, size=24)
    cfg = ARTConfig(topk_fraction=0.3, attack_grad_wrt=grad_wrt, attack_bn_mode=bn_mode)   # faithful, T=3
    results = []
    for plain in (False, True):
        model = tiny_model(arch=arch).train()
        results.append(_faithful_step(model, x, y, cfg, plain, monkeypatch))
        assert all(p.requires_grad for p in model.parameters())       # unfrozen after the attack
    (xa, ce, la, grads, bufs), (xb, ce_b, la_b, grads_b, bufs_b) = results
    assert not torch.equal(xa, x) and torch.equal(xa, xb)
    assert torch.allclose(ce, ce_b, rtol=1e-12, atol=0) and torch.allclose(la, la_b, rtol=1e-12, atol=0)
    for name in grads:
        assert torch.allclose(grads[name], grads_b[name], rtol=1e-10, atol=1e-14), name
    for name in bufs:
        assert torch.allclose(bufs[name].double(), bufs_b[name].double(), rtol=1e-12, atol=1e-15), name


def _authors_attack_direction(model, x_adv, y, idx, beta):
    """One attack step's direction as WSOL_CUB/art_attack.py (TopK_sal_attack) computes it, written
    out after it with torch's modules (not the toolkit's helpers): Softplus net, logit gradients
    w.r.t. the raw image, mean_c|.| maps gathered on the mask, nn.CosineSimilarity(dim=1, eps=1e-15)
    distances and nn.SoftMarginLoss(d_an - d_ap, +1)."""
    cos = torch.nn.CosineSimilarity(dim=1, eps=1e-15)
    adv = x_adv.detach().clone().requires_grad_(True)
    with smooth_activations(model, beta):
        logits = model(adv)
        top = logits.gather(1, y[:, None])
        others = torch.stack([torch.cat([logits[j, :y[j]], logits[j, y[j] + 1:]]) for j in range(len(y))])
        g1 = torch.autograd.grad(top.mean(), adv, retain_graph=True, create_graph=True)[0]
        g2 = torch.autograd.grad(others.max(dim=1)[0].mean(), adv, retain_graph=True, create_graph=True)[0]
    n = len(y)
    img = torch.mean(torch.abs(model.normalize(adv)), 1).reshape(n, -1).gather(1, idx)
    top_g1 = torch.mean(torch.abs(g1), 1).reshape(n, -1).gather(1, idx)
    top_g2 = torch.mean(torch.abs(g2), 1).reshape(n, -1).gather(1, idx)
    d_ap, d_an = 1.0 - cos(img, top_g1), 1.0 - cos(img, top_g2)
    loss = torch.nn.SoftMarginLoss()(d_an - d_ap, torch.ones_like(d_an))
    return torch.autograd.grad(loss, adv)[0]


def test_attack_step_equals_the_authors_formula_with_their_cosine():
    """One attack step (mask given) equals the authors' computation, eps 1e-15 cosine included; with
    gradients scaled to the size of a trained checkpoint's (~1e-9) the training loss's +1e-8 on each
    norm would change the direction, so the test tells the two regularisers apart."""
    import wsol.methods.art as art_module

    model = tiny_model(arch="resnet_tiny").eval()
    x, y = batch(n=3, size=16)
    cfg = ARTConfig(topk_fraction=0.3, steps=1, random_start=False, step_size=1.0, epsilon=1.0)
    idx = topk_indices(torch.randn(3, 3, 16, 16, dtype=torch.float64), round(0.3 * 256), "abs_mean")
    for scale in (1.0, 1e-9):
        with torch.no_grad():
            model.classifier.weight.mul_(scale)
        want = _authors_attack_direction(model, x, y, idx, cfg.beta)
        leaf = x.clone().requires_grad_(True)
        with smooth_activations(model, cfg.beta):
            g1, g2 = logit_gradients(model, leaf, y, normalized=False)
            got = torch.autograd.grad(_masked_triplet(model.normalize(leaf), g1, g2, idx, "abs_mean"), leaf)[0]
        assert (got - want).abs().max() <= 1e-9 * want.abs().max()
        assert torch.equal(got.sign(), want.sign())
        # the training loss's regulariser on the same inputs
        leaf = x.clone().requires_grad_(True)
        with smooth_activations(model, cfg.beta):
            g1, g2 = logit_gradients(model, leaf, y, normalized=False)
            pu, p1, p2 = [project(t, "abs_mean").gather(1, idx) for t in (model.normalize(leaf), g1, g2)]
            loss_form = F.softplus(art_module.cosine_distance(pu, p1) - art_module.cosine_distance(pu, p2)).mean()
            other = torch.autograd.grad(loss_form, leaf)[0]
        rel = ((other - want).abs().max() / want.abs().max()).item()
        assert (rel < 1e-4) if scale == 1.0 else (rel > 1e-2), (scale, rel)


@pytest.mark.parametrize("arch", ["resnet_tiny", "vgg_gap_tiny"])
def test_lean_attr_term_under_bf16_autocast_is_as_accurate_as_plain_double_backward(arch):
    """`train.amp: bf16`: L_attr and its parameter gradients through the lean paths (BatchNorm's
    closed form in autocast's mixed dtypes included) are as close to the float32 values as PyTorch's
    own double backward under the same autocast (bf16 double backprop is coarse either way: parameter
    gradients 30-45% off float32's; tests/test_second_order.py holds the BatchNorm terms tightly)."""
    from wsol.models.second_order import plain_double_backward

    x, y = batch(n=4, size=24)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    x, x_adv = x.float(), (x.float() + 0.02 * noise).clamp(0, 1)
    cfg = ARTConfig()

    def attr(precision, plain):
        model = tiny_model(arch=arch).float().train()
        with plain_double_backward() if plain else contextlib.nullcontext(), \
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = art_attr_term(model, x, x_adv, y, cfg)
        grads = torch.autograd.grad(loss.float(), list(model.parameters()), materialize_grads=True)
        return loss.detach().double(), torch.cat([g.flatten() for g in grads]).double()

    truth, plain, lean = attr("fp32", True), attr("bf16", True), attr("bf16", False)
    for t, p, q in zip(truth, plain, lean):
        err_plain, err_lean = (p - t).norm() / t.norm(), (q - t).norm() / t.norm()
        assert err_lean <= 1.5 * err_plain + 1e-4, (err_lean, err_plain)   # bf16 noise: 0.3-0.45 in both
    assert not torch.equal(lean[1], truth[1])          # autocast did take effect
