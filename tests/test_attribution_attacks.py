"""Ghorbani et al.'s attribution attacks and the chen2019 / art2020 presets (REFERENCE §7).

Behavioural tests run on a WRN-10-1 trained for 30 Adam steps on a toy two-class problem
(a red or a blue 5x5 patch at a random place on 16x16 noise); it classifies the test images
perfectly and its saliency sits on the patch, so the attacks have something to move.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from wsol.attacks import (
    PRESETS,
    AttributionAttackResult,
    SaliencySettings,
    attribution_attack,
    evaluate_attribution_robustness,
    get_preset,
    saliency_map,
)
from wsol.attacks.attribution import (
    _context,
    _loss_grad_chunked,
    _loss_grad_single_pass,
    _surrogate_grad,
    resolve_max_rows,
)
from wsol.models import build_model, input_second_order, smooth_activations

SIZE = 16


def toy(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n,3,16,16) images on the 0-255 grid and labels (n,): class 0 red patch, 1 blue patch."""
    g = torch.Generator().manual_seed(seed)
    x = 0.3 + 0.2 * torch.rand(n, 3, SIZE, SIZE, generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    for i in range(n):
        r, c = torch.randint(0, SIZE - 5, (2,), generator=g).tolist()
        x[i, :, r:r + 5, c:c + 5] = 0.1
        x[i, 0 if y[i] == 0 else 2, r:r + 5, c:c + 5] = 0.9
    return torch.round(x * 255) / 255, y


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: tiny models, one thread


@pytest.fixture(scope="module")
def trained(one_thread):
    torch.manual_seed(0)
    model = build_model("wrn_10_1", 2)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for step in range(30):
        x, y = toy(32, seed=100 + step)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    x, y = toy(8, seed=999)
    with torch.no_grad():
        assert (model(x).argmax(1) == y).all()
    return model, x, y


def as_double(model):
    """A float64 copy of `model` (eval mode): batched and per-image runs then agree to ~1e-15."""
    copy = build_model("wrn_10_1", 2).double().eval()
    copy.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in model.state_dict().items()})
    return copy


def small(name: str, **overrides):
    """A preset cut down for CPU tests: 8-point IG, k = 20 of 256 pixels, few iterations."""
    base = dict(iterations=5, attack_k=20, metric_k=20, step_size=2 / 255,
                attack_saliency={"steps": 8}, metric_saliency={"steps": 8}, num_images=None)
    base.update(overrides)
    return get_preset(name, **base)


# ----------------------------------------------------------------------------- presets

def test_presets_match_reference_7_2():
    art = PRESETS["art2020"]
    assert (art.epsilon, art.step_size, art.iterations, art.attack_k, art.metric_k) == (8 / 255, 1 / 255, 50, 100, 100)
    assert art.random_start and art.surrogate_beta == 50 and not art.round_pixels
    assert (art.selection, art.restarts, art.failure_policy, art.num_images) == ("kendall_masked", 1, "skip", 1001)
    assert art.attack_saliency == SaliencySettings("ig", "logit", "right", 100, "abs_sum", "sum_1024")
    assert art.metric_saliency == SaliencySettings("ig", "ce", "trapezoid", 100, "abs_mean", "sum_1024")
    assert art.metric_saliency.num_points == 101
    pgd = (art.pgd_epsilon, art.pgd_step_size, art.pgd_steps, art.pgd_random_start)
    assert pgd == (8 / 255, 2 / 255, (40, 20), True)

    chen = {d: get_preset("chen2019", dataset=d) for d in ("gtsrb", "flower", "mnist")}
    assert PRESETS["chen2019"] == chen["gtsrb"]
    rows = {d: (p.epsilon, p.step_size, p.iterations, p.attack_k, p.metric_k, p.round_pixels) for d, p in chen.items()}
    assert rows == {"gtsrb": (8 / 255, 1 / 255, 50, 100, 100, True),
                    "flower": (8 / 255, 1 / 255, 100, 1000, 1000, True),
                    "mnist": (0.3, 0.01, 100, 200, 100, False)}
    for p in chen.values():
        assert not p.random_start and p.surrogate_beta == 1.0
        assert (p.selection, p.restarts, p.failure_policy) == ("kendall_full", 3, "score_one")
        assert p.attack_saliency == p.metric_saliency == SaliencySettings("ig", "logit", "right", 100, "abs_sum", "hw")
    d = chen["gtsrb"].to_dict()
    assert d["epsilon_255"] == pytest.approx(8.0) and d["attack_saliency"]["steps"] == 100


def test_get_preset_errors_and_overrides():
    with pytest.raises(ValueError, match="valid: chen2019, art2020"):
        get_preset("madry")
    with pytest.raises(ValueError, match="valid: gtsrb, flower, mnist"):
        get_preset("chen2019", dataset="cifar10")
    with pytest.raises(ValueError, match=r"'epsilonn'.*valid fields: name, dataset, attack"):
        get_preset("art2020", epsilonn=0.1)
    with pytest.raises(ValueError, match=r"'stepz'.*valid: method, objective"):
        get_preset("art2020", attack_saliency={"stepz": 3})
    with pytest.raises(ValueError, match="failure_policy must be one of 'score_one', 'skip'"):
        get_preset("art2020", failure_policy="drop")
    with pytest.raises(ValueError, match="saliency reduction"):
        get_preset("art2020", metric_saliency={"reduction": "l2"})
    p = get_preset("art2020", iterations=3, attack_saliency={"steps": 10})
    assert p.iterations == 3 and p.attack_saliency.steps == 10 and p.attack_saliency.normalization == "sum_1024"
    with pytest.raises(Exception):
        p.iterations = 4  # frozen


# ----------------------------------------------------------------------------- saliency

def test_saliency_map_normalisation_and_the_art2020_inconsistency(trained):
    model, x, y = trained
    art = small("art2020")
    att = saliency_map(model, x, y, art)                      # sum_1024
    met = saliency_map(model, x, y, art, which="metric")
    hw = saliency_map(model, x, y, SaliencySettings(steps=8))  # Ghorbani: sums to H*W
    assert att.shape == met.shape == (8, SIZE, SIZE) and (att >= 0).all()
    torch.testing.assert_close(att.sum((1, 2)), torch.full((8,), 1024.0))
    torch.testing.assert_close(hw.sum((1, 2)), torch.full((8,), float(SIZE * SIZE)))
    torch.testing.assert_close(att, hw * 1024 / SIZE ** 2)    # same map, only the total differs
    assert not torch.allclose(att, met, atol=1e-2)            # CE/trapezoid/mean_c differs
    res = attribution_attack(model, x[:2], y[:2], small("art2020", iterations=1))
    torch.testing.assert_close(res.orig_maps, met[:2])        # reported maps: the metric saliency


@pytest.mark.parametrize("settings", [SaliencySettings(steps=8),
                                      SaliencySettings(method="grad", objective="ce", reduction="abs_mean",
                                                       normalization="sum_1024"),
                                      SaliencySettings(objective="ce", rule="trapezoid", steps=8,
                                                       reduction="abs_mean", normalization="none")])
def test_scoring_maps_come_from_the_one_heatmap_path(trained, settings):
    """The attacks' scoring maps are wsol.attribution.saliency_maps' (normalize=...), and equal
    the attack's own differentiable construction bit for bit (so no score moved)."""
    from wsol.attacks.saliency import attribution, to_saliency
    from wsol.attribution import saliency_maps

    model, x, y = trained
    scored = saliency_map(model, x, y, settings, max_rows=16)
    own = to_saliency(attribution(model, x, y, settings, False, 16), settings)
    assert torch.equal(scored, own) and scored.dtype == x.dtype and not scored.requires_grad
    opts = ({"variant": settings.objective} if settings.method == "grad" else
            {"steps": settings.steps, "rule": settings.rule, "objective": settings.objective,
             "internal_batch_size": 16})
    maps, logits = saliency_maps(model, x, y, settings.method, reduction=settings.reduction,
                                 normalize=settings.normalization, **opts)
    torch.testing.assert_close(maps, scored, rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(logits, model(x))
    with pytest.raises(ValueError, match="own resolution"):
        saliency_maps(model, x, y, "grad", normalize="hw", size=(8, 8))
    with pytest.raises(ValueError, match="unknown normalize"):
        saliency_maps(model, x, y, "grad", normalize="l1")


def test_chunked_surrogate_gradient_equals_single_pass(trained):
    x, y = trained[1][:3].double(), trained[2][:3]
    model = as_double(trained[0])
    preset = small("chen2019", dataset="mnist")
    ctx = _context(model, x, y, preset, "topk", None, None)
    s = preset.attack_saliency
    with smooth_activations(model, 1.0):
        full = _loss_grad_single_pass(model, x, "topk", ctx, s)
        chunked = _loss_grad_chunked(model, x, "topk", ctx, s, max_rows=7)   # 2 path points a pass
    assert full.abs().max() > 0
    torch.testing.assert_close(chunked, full, rtol=1e-9, atol=1e-12)


def test_row_bound_splits_passes_without_changing_the_surrogate_gradient(trained):
    x, y = trained[1][:3].double(), trained[2][:3]
    model = as_double(trained[0])
    preset = small("art2020", attack_saliency={"steps": 6})
    ctx = _context(model, x, y, preset, "topk", None, None)
    s = preset.attack_saliency
    calls = []
    hook = model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    with smooth_activations(model, preset.surrogate_beta):
        full = _surrogate_grad(model, x, "topk", ctx, s, None)
        assert calls == [18]                                          # 3 images x 6 points in one pass
        calls.clear()
        grouped = _surrogate_grad(model, x, "topk", ctx, s, 13)      # whole images: 2 + 1
        assert calls == [12, 6]
        calls.clear()
        per_image = _surrogate_grad(model, x, "topk", ctx, s, 4)     # a path longer than the bound
        assert max(calls) <= 4
    hook.remove()
    assert full.abs().max() > 0
    torch.testing.assert_close(grouped, full, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(per_image, full, rtol=1e-9, atol=1e-12)


def test_resolve_max_rows_and_its_errors(trained):
    model, x, y = trained
    art = get_preset("art2020")
    assert resolve_max_rows(None, model, x, y, art) is None and resolve_max_rows(300, model, x, y, art) == 300
    # CPU: the largest activation of a pass (WRN-10-1: 16 channels at full size) under 16 MiB ...
    assert resolve_max_rows("auto", model, x, y, art) == 16 * 2**20 // (16 * SIZE * SIZE * 4)
    # ... but at least one image's longest path (art2020's metric IG: 101 points)
    big = torch.rand(1, 3, 256, 256)
    assert resolve_max_rows("auto", model, big, y[:1], art) == 101
    for bad in (0, -3, 2.5, "all", True):
        with pytest.raises(ValueError, match="max_rows must be a positive int, None"):
            resolve_max_rows(bad, model, x, y, art)
    with pytest.raises(ValueError, match="max_rows"):
        attribution_attack(model, x, y, art, max_rows="fast")
    with pytest.raises(ValueError, match="max_rows"):
        evaluate_attribution_robustness(model, [(x, y)], art, max_rows=0)


def test_cuda_row_probe_arithmetic(trained, monkeypatch):
    """The CUDA "auto" bound from one image's peak memory (torch.cuda faked; the model runs on the CPU)."""
    from wsol.attacks import attribution as att

    model, x, y = trained
    preset = small("art2020", attack_saliency={"steps": 6})
    mem = {"allocated": 3_000_000, "peak": 0, "per_row": 250_000}
    fake = {"synchronize": lambda dev=None: None,
            "mem_get_info": lambda dev=None: (1_000_000_000, 2_000_000_000),
            "memory_reserved": lambda dev=None: 5_000_000,
            "memory_allocated": lambda dev=None: mem["allocated"],
            "reset_peak_memory_stats": lambda dev=None: mem.update(peak=mem["allocated"]),
            "max_memory_allocated": lambda dev=None: mem["peak"]}
    for name, fn in fake.items():
        monkeypatch.setattr(torch.cuda, name, fn)
    real_step = att._step_direction

    def step(*args):
        mem["peak"] = mem["allocated"] + 6 * mem["per_row"]     # over the 6 path points
        return real_step(*args)

    monkeypatch.setattr(att, "_step_direction", step)
    # usable = free 1e9 + cached (5e6 - 3e6); half of it / 250 kB a row
    assert att._probe_rows(model, x[:1], y[:1], preset, "topk", None) == int(0.5 * 1_002_000_000 / 250_000)
    mem["per_row"] = 10**12                                        # not even one image fits half
    assert att._probe_rows(model, x[:1], y[:1], preset, "topk", None) == 6   # still one image's path


def test_attack_result_does_not_depend_on_the_row_bound(trained):
    model = as_double(trained[0])
    x, y = trained[1][:3].double(), trained[2][:3]
    preset = small("art2020", iterations=3, attack_saliency={"steps": 6}, metric_saliency={"steps": 6})
    runs = [attribution_attack(model, x, y, preset, max_rows=rows, seed=1) for rows in (None, "auto", 7, 4)]
    for other in runs[1:]:
        torch.testing.assert_close(other.x_adv, runs[0].x_adv)
        torch.testing.assert_close(other.adv_maps, runs[0].adv_maps)
        assert torch.equal(other.success, runs[0].success)


# ----------------------------------------------------------------------------- attack

def test_attack_stays_in_ball_and_range_keeps_labels_and_skips_wrong_images(trained):
    model, x, y = trained
    y = y.clone()
    y[0] = 1 - y[0]                                           # misclassified: not attacked
    preset = small("art2020", iterations=4)
    res = attribution_attack(model, x, y, preset, kind="topk", seed=0)
    assert isinstance(res, AttributionAttackResult)
    assert res.x_adv.shape == x.shape and res.success.dtype == torch.bool
    assert res.orig_correct.tolist() == [False] + [True] * 7
    assert not res.success[0] and torch.equal(res.x_adv[0], x[0])
    assert res.success[1:].all()
    assert (res.x_adv - x).abs().max() <= preset.epsilon + 1e-6
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    with torch.no_grad():
        pred = model(res.x_adv).argmax(1)
    assert (pred[res.success] == y[res.success]).all()
    assert math.isnan(res.measures["selection"][0]) and (res.measures["selection"][1:] < 1).all()
    assert torch.equal(res.adv_maps[0], res.orig_maps[0])


def test_chen2019_iterates_on_integer_grid(trained):
    model, x, y = trained
    preset = small("chen2019", dataset="gtsrb", iterations=3, step_size=1 / 255)
    res = attribution_attack(model, x[:4], y[:4], preset)
    v = res.x_adv * 255
    assert (v - v.round()).abs().max() < 1e-4
    assert ((res.x_adv - x[:4]).abs() * 255).max() <= 8 + 1e-4
    assert res.success.all() and not torch.equal(res.x_adv, x[:4])


def test_topk_attack_lowers_intersection_more_than_random_noise(trained):
    model, x, y = trained
    preset = small("chen2019", iterations=6)
    topk = attribution_attack(model, x, y, preset, kind="topk")
    rand = attribution_attack(model, x, y, preset, kind="random", seed=0)
    assert topk.success.all() and rand.success.all()
    in_topk = topk.measures["topk_intersection"].mean().item()
    in_rand = rand.measures["topk_intersection"].mean().item()
    assert in_topk < in_rand - 0.15, (in_topk, in_rand)  # 0.61 vs 0.96; gap >= 0.21 over 4 seeds
    assert topk.measures["kendall"].mean() < rand.measures["kendall"].mean()


def test_mass_center_attack_moves_the_centre(trained):
    model, x, y = trained
    preset = small("chen2019", iterations=6)
    mc = attribution_attack(model, x, y, preset, kind="mass_center")
    rand = attribution_attack(model, x, y, preset, kind="random", seed=0)
    shift = mc.measures["center_shift"]
    assert mc.success.all() and shift.mean() > 0.25           # 1.05 px (0.43-1.23 over 4 seeds)
    assert shift.mean() > rand.measures["center_shift"].mean() + 0.2, (shift, rand.measures["center_shift"])


def test_targeted_attack_pulls_saliency_into_the_region(trained):
    model, x, y = trained
    preset = small("chen2019", iterations=4)
    with pytest.raises(ValueError, match="target_region"):
        attribution_attack(model, x[:2], y[:2], preset, kind="targeted")
    region = torch.zeros(SIZE, SIZE)
    region[:, :4] = 1                                          # the left 4 columns
    res = attribution_attack(model, x[:4], y[:4], preset, kind="targeted", target_region=region)
    share = lambda s: (s * region).sum((1, 2)) / s.sum((1, 2))  # noqa: E731
    sal = lambda xs: saliency_map(model, xs, y[:4], preset)     # noqa: E731
    assert res.success.all() and (share(sal(res.x_adv)) > share(sal(x[:4]))).all()


def test_batched_result_equals_one_image_at_a_time(trained):
    model = as_double(trained[0])
    x, y = trained[1][:4].double(), trained[2][:4]
    preset = small("chen2019", dataset="gtsrb", iterations=3, attack_saliency={"steps": 4},
                   metric_saliency={"steps": 4})
    batch = attribution_attack(model, x, y, preset)
    for i in range(4):
        one = attribution_attack(model, x[i:i + 1], y[i:i + 1], preset)
        torch.testing.assert_close(one.x_adv[0], batch.x_adv[i])
        torch.testing.assert_close(one.adv_maps[0], batch.adv_maps[i])
        assert one.success[0] == batch.success[i]
        for name, value in one.measures.items():
            torch.testing.assert_close(value[0], batch.measures[name][i], equal_nan=True)


def test_per_image_seeds_make_random_start_attacks_independent_of_the_batch(trained):
    model = as_double(trained[0])
    x, y = trained[1][:4].double(), trained[2][:4]
    preset = small("art2020", iterations=3, attack_saliency={"steps": 4}, metric_saliency={"steps": 4})
    assert preset.random_start
    batch = attribution_attack(model, x, y, preset, seed=[10, 11, 12, 13])
    for i in range(4):
        one = attribution_attack(model, x[i:i + 1], y[i:i + 1], preset, seed=[10 + i])
        torch.testing.assert_close(one.x_adv[0], batch.x_adv[i])
        assert one.success[0] == batch.success[i]
    again = attribution_attack(model, x[2:], y[2:], preset, seed=torch.tensor([12, 13]))
    torch.testing.assert_close(again.x_adv, batch.x_adv[2:])
    other = attribution_attack(model, x, y, preset, seed=[20, 21, 22, 23])
    assert not torch.equal(other.x_adv, batch.x_adv)                 # the seeds do matter
    noise = attribution_attack(model, x, y, preset, kind="random", seed=[1, 2, 3, 4])
    torch.testing.assert_close(attribution_attack(model, x[1:2], y[1:2], preset, kind="random", seed=[2]).x_adv[0],
                               noise.x_adv[1])
    for bad in ([1, 2], [1, 2, 3, 4.0], "7", 2.5, True):
        with pytest.raises(ValueError, match="seed must be"):
            attribution_attack(model, x, y, preset, seed=bad)


def test_evaluation_scores_do_not_depend_on_the_loader_batching(trained):
    model = as_double(trained[0])
    x, y = trained[1].double(), trained[2]
    preset = small("art2020", iterations=2, attack_saliency={"steps": 4}, metric_saliency={"steps": 4})
    scores = []
    for size in (8, 3):
        batches = [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]
        scores.append(evaluate_attribution_robustness(model, batches, preset, seed=5))
    for key in ("IN", "K", "num_success", "kendall_masked_mean"):
        assert scores[0][key] == pytest.approx(scores[1][key], rel=1e-12, abs=1e-12), key


def test_attack_leaves_parameters_and_convolutions_as_they_were(trained):
    model = trained[0]
    before = [p.requires_grad for p in model.parameters()]
    attribution_attack(model, trained[1][:2], trained[2][:2], small("art2020", iterations=1), seed=0)
    assert [p.requires_grad for p in model.parameters()] == before
    assert not any("forward" in m.__dict__ for m in model.modules())


def test_lean_surrogate_step_equals_the_standard_double_backward(trained, monkeypatch):
    """The attack direction with wsol.models.input_second_order equals PyTorch's own conv double backward."""
    import contextlib

    from wsol.attacks import attribution as att

    model = as_double(trained[0])
    x, y = trained[1][:3].double(), trained[2][:3]
    preset = small("art2020", attack_saliency={"steps": 6})
    ctx = _context(model, x, y, preset, "topk", None, None)
    with smooth_activations(model, preset.surrogate_beta):
        standard = _surrogate_grad(model, x, "topk", ctx, preset.attack_saliency, None)
    with input_second_order(model), smooth_activations(model, preset.surrogate_beta):
        lean = _surrogate_grad(model, x, "topk", ctx, preset.attack_saliency, None)
    assert standard.abs().max() > 0
    torch.testing.assert_close(lean, standard, rtol=1e-10, atol=1e-14)
    direction = att._step_direction(model, x, "topk", ctx, preset, None, None)   # the lean path
    monkeypatch.setattr(att, "input_second_order", lambda m: contextlib.nullcontext(m))
    assert torch.equal(direction, att._step_direction(model, x, "topk", ctx, preset, None, None))


def test_bf16_attack_stays_valid_and_close_to_float32(trained):
    """precision="bf16": same ball, range and label rule, float32 scores, nearly the same directions."""
    from wsol.attacks import attribution as att

    model, x, y = trained
    preset = small("art2020", iterations=4)
    ctx = _context(model, x, y, preset, "topk", None, None)
    d32 = att._step_direction(model, x, "topk", ctx, preset, None, None)
    d16 = att._step_direction(model, x, "topk", ctx, preset, None, None, "bf16")
    agree = (d16 == d32).float().mean().item()
    assert 0.8 < agree < 1.0, agree          # autocast changes some signs, not most
    res16 = attribution_attack(model, x, y, preset, seed=1, precision="bf16")
    res32 = attribution_attack(model, x, y, preset, seed=1)
    assert res16.x_adv.dtype == torch.float32 and res16.adv_maps.dtype == res32.adv_maps.dtype
    assert (res16.x_adv - x).abs().max() <= preset.epsilon + 1e-6
    assert res16.x_adv.min() >= 0 and res16.x_adv.max() <= 1
    with torch.no_grad():
        assert (model(res16.x_adv).argmax(1) == y).all()
    assert res16.success.all()
    # the scores of the bf16 attack's iterates are float32 maps: recomputing them agrees exactly
    again = saliency_map(model, res16.x_adv, y, preset, which="metric")
    torch.testing.assert_close(res16.adv_maps, again)
    in16, in32 = (r.measures["topk_intersection"].mean().item() for r in (res16, res32))
    assert abs(in16 - in32) < 0.15, (in16, in32)
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
        attribution_attack(model, x, y, preset, precision="fp16")
    rep = evaluate_attribution_robustness(model, [(x, y)], small("art2020", iterations=1), precision="bf16")
    assert rep["attack_precision"] == "bf16"


def test_bf16_without_hardware_support_warns_once(trained, monkeypatch, caplog):
    """bf16 on a CPU without AVX512-BF16 / AMX is emulated (several times slower): one warning."""
    from wsol.attacks import precision

    model, x, y = trained
    for name, has in (("_is_avx512_bf16_supported", False), ("_is_amx_tile_supported", True)):
        monkeypatch.setattr(torch.cpu, name, lambda has=has: has, raising=False)
    assert precision.native_bf16(torch.device("cpu"))                  # AMX alone is enough
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert not precision.native_bf16(torch.device("cpu"))
    precision._warn_emulated.cache_clear()
    preset = small("art2020", iterations=2)
    with caplog.at_level("WARNING", logger="wsol.attacks.precision"):
        attribution_attack(model, x[:2], y[:2], preset, precision="fp32")
        assert not caplog.records                                      # fp32: nothing to say
        for _ in range(2):
            attribution_attack(model, x[:2], y[:2], preset, precision="bf16")
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "SLOWER" in warned[0] and "AVX512-BF16 or AMX" in warned[0]


def test_restarts_keep_the_best_run(trained):
    model, x, y = trained
    one = attribution_attack(model, x[:4], y[:4], small("art2020", iterations=3), seed=3)
    three = attribution_attack(model, x[:4], y[:4], small("art2020", iterations=3, restarts=3), seed=3)
    assert (three.measures["selection"] <= one.measures["selection"]).all()


# ----------------------------------------------------------------------------- evaluation

def test_failure_policy_flows_into_the_evaluator(trained):
    model, x, y = trained
    batches = [(x[:4], y[:4]), {"image": x[4:], "label": y[4:]}]
    # iterations = 0: no iterate at all, so every attack fails
    chen = evaluate_attribution_robustness(model, batches, small("chen2019", iterations=0))
    assert chen["failure_policy"] == "score_one" and chen["preset"]["name"] == "chen2019"
    assert (chen["num_attacked"], chen["num_failed"], chen["num_images"], chen["num_success"]) == (8, 8, 8, 0)
    assert chen["IN"] == 100 and chen["K"] == 100
    art = evaluate_attribution_robustness(model, batches, small("art2020", iterations=0))
    assert art["failure_policy"] == "skip" and (art["num_skipped"], art["num_images"]) == (8, 0)
    assert math.isnan(art["IN"])
    ok = evaluate_attribution_robustness(model, batches, small("art2020", iterations=2, metric_k=30), max_images=5,
                                         seed=0)
    assert (ok["num_attacked"], ok["num_images"], ok["num_skipped"]) == (5, 5, 0)
    assert 0 < ok["IN"] <= 100 and "kendall_masked_mean" in ok and ok["preset"]["metric_k"] == 30
    assert ok["clean_accuracy"] == 1.0 and model.training is False
    assert ok["max_rows"] == art["max_rows"] == 1024                # "auto" on the CPU (16 MiB / 16 KiB a row)
