"""wsol.metrics.robustness: checked against scipy.stats.kendalltau / spearmanr and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

from wsol.metrics.robustness import (AttributionRobustnessEvaluator, center_shift, cosine_similarity,
                                     kendall_tau_b, mask_by_topk, mass_center, spearman_rho,
                                     topk_intersection, topk_mask)


def scipy_rows(fn, a, b):
    a, b = np.asarray(a).reshape(len(a), -1), np.asarray(b).reshape(len(b), -1)
    return np.array([fn(x, y).statistic for x, y in zip(a, b)])


def assert_rows_equal(ours, ref, tol=1e-12):
    ours = ours.numpy()
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_allclose(ours[~np.isnan(ref)], ref[~np.isnan(ref)], rtol=0, atol=tol)


def tie_cases():
    rng = np.random.default_rng(0)
    a = rng.random((6, 257))
    b = a + rng.normal(0, 0.3, a.shape)
    yield "float", a, b
    yield "rounded", np.round(a * 3) / 3, np.round(b * 4) / 4          # a few levels
    yield "integer", rng.integers(0, 5, (5, 12, 12)), rng.integers(0, 3, (5, 12, 12))
    yield "float32", a.astype(np.float32), b.astype(np.float32)
    yield "tiny", np.array([[1.0, 2, 2, 3]]), np.array([[3.0, 1, 1, 2]])


@pytest.mark.parametrize("name,a,b", list(tie_cases()), ids=lambda v: v if isinstance(v, str) else "")
def test_kendall_and_spearman_match_scipy(name, a, b):
    assert_rows_equal(kendall_tau_b(a, b), scipy_rows(scipy.stats.kendalltau, a, b))
    assert_rows_equal(spearman_rho(torch.as_tensor(a), torch.as_tensor(b)),
                      scipy_rows(scipy.stats.spearmanr, a, b))


def test_kendall_constant_rows_give_nan_like_scipy():
    a = np.array([[1.0, 1, 1, 1], [1.0, 2, 3, 4], [0.0, 0, 0, 0]])
    b = np.array([[1.0, 2, 3, 4], [2.0, 2, 2, 2], [0.0, 0, 0, 0]])
    tau = kendall_tau_b(a, b)
    assert torch.isnan(tau).all()
    with np.errstate(all="ignore"):
        assert np.isnan(scipy_rows(scipy.stats.kendalltau, a, b)).all()
    assert torch.isnan(kendall_tau_b([[1.0, math.nan, 2]], [[1.0, 2, 3]])).all()


def test_kendall_full_size_cub_map_with_ties():
    rng = np.random.default_rng(1)
    a = np.round(rng.random((1, 224, 224)), 3)                  # N = 50176, many ties
    b = np.round(a + rng.normal(0, 0.2, a.shape), 2)
    assert_rows_equal(kendall_tau_b(a, b), scipy_rows(scipy.stats.kendalltau, a, b))


def test_topk_intersection_by_hand():
    a = torch.tensor([[5.0, 4, 3, 2, 1, 0], [5.0, 4, 3, 2, 1, 0]])
    b = torch.tensor([[0.0, 1, 2, 3, 4, 5], [9.0, 8, 7, 6, 5, 4]])
    assert topk_intersection(a, b, 2).tolist() == [0.0, 1.0]
    assert topk_intersection(a, b, 4).tolist() == [0.5, 1.0]        # {0,1,2,3} ∩ {2,3,4,5}
    assert topk_mask(a[:1], 2).tolist() == [[True, True, False, False, False, False]]
    maps = a.reshape(2, 2, 3)                                       # (B, H, W) flattens the same
    assert topk_intersection(maps, b.reshape(2, 2, 3), 4).tolist() == [0.5, 1.0]


def test_mass_center_and_center_shift_by_hand():
    s = torch.zeros(2, 3, 4)
    s[0, 1, 2] = 7.0                                               # one pixel: row 1, column 2
    s[1, 0, 0] = s[1, 0, 3] = 1.0                                  # columns 0 and 3 of row 0
    assert mass_center(s).tolist() == [[2.0, 1.0], [1.5, 0.0]]     # [x = column, y = row]
    b = torch.zeros(1, 3, 4)
    b[0, 2, 3] = 1.0                                               # centre [3, 2]
    assert center_shift(s[1:], b).item() == pytest.approx(2.5)     # |[1.5, 0] - [3, 2]|
    assert center_shift(s[1:], b, integer=True).item() == pytest.approx(math.sqrt(8))  # [1, 0] vs [3, 2]
    assert center_shift(s[1].numpy(), b[0].numpy()).shape == (1,)  # (H, W) is one map


def test_cosine_similarity():
    a, b = torch.tensor([[1.0, 0.0], [2.0, 2.0]]), torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(cosine_similarity(a, b).numpy(), [1 / math.sqrt(2), 1.0], atol=1e-15)


def test_masked_kendall_by_hand():
    orig = torch.tensor([[4.0, 3, 2, 1, 0]])
    adv = torch.tensor([[1.0, 2, 0, 4, 3]])
    ma, mb = mask_by_topk(orig, adv, 2)                            # original top-2: positions 0, 1
    assert ma.tolist() == [[4, 3, 0, 0, 0]] and mb.tolist() == [[1, 2, 0, 0, 0]]
    # 10 pairs; the 3 zeros tie jointly (3 pairs); (0,1) discordant; the other 6 concordant.
    expected = (6 - 1) / math.sqrt((10 - 3) * (10 - 3))
    assert kendall_tau_b(ma, mb).item() == pytest.approx(expected, abs=1e-15)
    assert kendall_tau_b(orig, adv, mask=topk_mask(orig, 2)).item() == pytest.approx(expected, abs=1e-15)
    assert expected == pytest.approx(scipy.stats.kendalltau(ma[0], mb[0]).statistic, abs=1e-15)
    assert kendall_tau_b(orig, adv).item() != pytest.approx(expected)


def two_images():
    """Image 0: reversed map (hand values below); image 1: attack failed (any attacked map)."""
    orig = torch.tensor([[[5.0, 4, 3], [2, 1, 0]], [[1.0, 2, 3], [4, 5, 6]]])
    adv = torch.tensor([[[0.0, 1, 2], [3, 4, 5]], [[9.0, 0, 0], [0, 0, 0]]])
    return orig, adv, torch.tensor([True, False])


def test_evaluator_skip_policy():
    orig, adv, ok = two_images()
    ev = AttributionRobustnessEvaluator(k=2, masked_tau=True, failure_policy="skip")
    ev.accumulate(orig, adv, ok)
    out = ev.compute()
    assert (out["num_images"], out["num_skipped"], out["num_failed"]) == (1, 1, 1)
    assert out["IN"] == 0.0 and out["K"] == pytest.approx(-100.0) and out["K_std"] == 0.0
    assert out["spearman_mean"] == pytest.approx(-1.0)
    assert out["cosine_mean"] == pytest.approx(20 / 55)             # <a, b> = 20, |a|² = |b|² = 55
    assert out["center_shift_mean"] == pytest.approx(1.0)           # int [11/15, 3/15] vs int [19/15, 12/15]
    # masked: a = [5,4,0,0,0,0], b = [0,1,0,0,0,0]: n0 = 15, n1 = 6, n2 = 10, n3 = 6, nc = 4, nd = 1
    assert out["kendall_masked_mean"] == pytest.approx(3 / math.sqrt(45))
    ev_float = AttributionRobustnessEvaluator(k=2, integer_centers=False)
    ev_float.accumulate(orig[:1], adv[:1])
    assert ev_float.compute()["center_shift_mean"] == pytest.approx(math.hypot(8 / 15, 0.6))


def test_evaluator_score_one_policy():
    orig, adv, ok = two_images()
    ev = AttributionRobustnessEvaluator(k=2, masked_tau=True, failure_policy="score_one")
    ev.accumulate(orig[:1], adv[:1], np.array([True]))
    ev.accumulate(orig[1:], adv[1:], np.array([False]))
    out = ev.compute()
    assert (out["num_images"], out["num_skipped"], out["num_failed"]) == (2, 0, 1)
    assert out["IN"] == pytest.approx(50.0) and out["IN_std"] == pytest.approx(50.0)
    assert out["K"] == pytest.approx(0.0, abs=1e-12) and out["K_std"] == pytest.approx(100.0)
    assert out["spearman_mean"] == pytest.approx(0.0, abs=1e-12)
    assert out["center_shift_mean"] == pytest.approx(0.5)
    assert out["cosine_mean"] == pytest.approx((20 / 55 + 1) / 2)
    assert out["kendall_masked_mean"] == pytest.approx((3 / math.sqrt(45) + 1) / 2)
    assert out["num_nan"] == {n: 0 for n in ev.metric_names}


def test_bad_input_raises():
    a = torch.rand(2, 4, 4)
    with pytest.raises(ValueError, match="differ in shape"):
        kendall_tau_b(a, torch.rand(2, 4, 5))
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, N = 16\]"):
        topk_intersection(a, a, 17)
    with pytest.raises(ValueError, match="k must be"):
        topk_mask(a, 0)
    with pytest.raises(ValueError, match="mask"):
        kendall_tau_b(a, a, mask=torch.ones(3, 16, dtype=torch.bool))
    with pytest.raises(ValueError, match="failure_policy must be one of"):
        AttributionRobustnessEvaluator(failure_policy="ignore")
    ev = AttributionRobustnessEvaluator(k=100)
    with pytest.raises(ValueError, match="N = 16"):
        ev.accumulate(a, a)
    ev = AttributionRobustnessEvaluator(k=2)
    with pytest.raises(ValueError, match="success must be"):
        ev.accumulate(a, a, success=[True])
    with pytest.raises(ValueError, match="differ in shape"):
        ev.accumulate(a, a[:1])
    with pytest.raises(RuntimeError, match="no counted image"):
        ev.compute()
