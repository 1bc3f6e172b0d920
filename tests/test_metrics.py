"""wsol.metrics: IoU, MaxBoxAcc(V2), fixed-threshold Loc, PxAP, mIoU.

Cross-checks: straightforward copies of wsolevaluation's BoxEvaluator / MaskEvaluator
loops (per threshold per image, below, independent of wsol code) and scikit-learn's
average_precision_score.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from wsol.localization import normalize_scoremap
from wsol.metrics import (BoxEvaluator, LocEvaluator, PxAPEvaluator, iou, iou_art2020, mask_iou,
                          pxap_from_histograms)


from wsoleval_reference import wsoleval_boxes, wsoleval_multiple_iou  # noqa: E402


def wsoleval_boxes_at(scoremap, thresholds, multi_contour):
    boxes = [wsoleval_boxes(scoremap, t, multi_contour) for t in thresholds]
    return boxes, [len(b) for b in boxes]


def wsoleval_box_evaluator(scoremaps, gt_boxes, interval, multi_contour, deltas=(30, 50, 70)):
    thresholds = np.arange(0, 1, interval)
    num_correct = {d: np.zeros(len(thresholds)) for d in deltas}
    for scoremap, gt in zip(scoremaps, gt_boxes):  # the per-image loop
        boxes, counts = wsoleval_boxes_at(scoremap, thresholds, multi_contour)
        multiple_iou = wsoleval_multiple_iou(np.concatenate(boxes), gt)
        sliced, idx = [], 0
        for nr in counts:
            sliced.append(max(multiple_iou.max(1)[idx:idx + nr])); idx += nr
        for d in deltas:
            num_correct[d][np.where(np.asarray(sliced) >= d / 100)[0]] += 1
    return {d: num_correct[d] * 100 / len(scoremaps) for d in deltas}


def wsoleval_pxap(scoremaps, gt_masks, interval):
    thresholds = list(np.arange(0, 1, interval))
    edges = np.append(thresholds, [1.0, 2.0, 3.0])
    ht = np.zeros(len(edges) - 1); hf = np.zeros(len(edges) - 1)
    for s, g in zip(scoremaps, gt_masks):
        ht += np.histogram(s[g == 1], bins=edges)[0]
        hf += np.histogram(s[g == 0], bins=edges)[0]
    tp = ht[::-1].cumsum(); fn = ht.sum() - tp; fp = hf[::-1].cumsum()
    total = 0.0
    for i in range(1, len(tp)):
        if tp[i] + fp[i] != 0:
            total += tp[i] / (tp[i] + fp[i]) * (tp[i] / (tp[i] + fn[i]) - tp[i - 1] / (tp[i - 1] + fn[i - 1]))
    return 100 * total


def blob_maps(rng, n, size=224, noise=0.0):
    maps, boxes = [], []
    for _ in range(n):
        m = cv2.GaussianBlur(rng.random((14, 14)), (0, 0), rng.uniform(0.5, 2.0))
        m = cv2.resize(m, (size, size), interpolation=cv2.INTER_CUBIC) + noise * rng.standard_normal((size, size))
        maps.append(normalize_scoremap(m, (size, size)))
        k = rng.integers(1, 3)
        x0, y0 = rng.integers(0, size // 2, k), rng.integers(0, size // 2, k)
        w, h = rng.integers(size // 8, size // 2, k), rng.integers(size // 8, size // 2, k)
        boxes.append(np.stack([x0, y0, np.minimum(x0 + w, size - 1), np.minimum(y0 + h, size - 1)], 1))
    return np.stack(maps), boxes


# --- IoU ------------------------------------------------------------------------------------
def test_iou_reference_values():
    assert iou([[1, 2, 5, 6]], [[3, 1, 4, 5]])[0, 0] == pytest.approx(8 / 27)
    assert iou([[0, 0, 0, 0]], [[0, 0, 0, 0]])[0, 0] == 1.0
    assert iou([[0, 0, 1, 1]], [[5, 5, 6, 6]])[0, 0] == 0.0
    out = iou(np.array([[1, 2, 5, 6], [0, 0, 0, 0]]), np.array([[3, 1, 4, 5], [0, 0, 1, 1], [2, 2, 3, 3]]))
    assert out.shape == (2, 3)
    rng = np.random.default_rng(0)
    a = np.sort(rng.integers(0, 30, (7, 2, 2)), axis=1).transpose(0, 2, 1).reshape(7, 4)[:, [0, 2, 1, 3]]
    b = np.sort(rng.integers(0, 30, (5, 2, 2)), axis=1).transpose(0, 2, 1).reshape(5, 4)[:, [0, 2, 1, 3]]
    np.testing.assert_allclose(iou(a, b), wsoleval_multiple_iou(a, b))


def test_iou_validation():
    with pytest.raises(ValueError, match="negative"):
        iou([[-1, 0, 3, 3]], [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="x1 < x0"):
        iou([[4, 0, 3, 3]], [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="shape"):
        iou([[0, 0, 1]], [[0, 0, 1, 1]])


def test_iou_art2020_does_not_clamp():
    a, b = [[0, 0, 1, 1]], [[5, 5, 6, 6]]  # iw = ih = -3 -> "intersection" 9
    assert iou(a, b)[0, 0] == 0.0
    assert iou_art2020(a, b)[0, 0] == pytest.approx(9 / (4 + 4 - 9) if 4 + 4 - 9 > 0 else 0.0)
    a, b = [[0, 0, 9, 9]], [[12, 12, 13, 13]]  # iw = ih = -2 -> 4 / (100 + 4 - 4)
    assert iou_art2020(a, b)[0, 0] == pytest.approx(4 / 100)
    assert iou_art2020([[1, 2, 5, 6]], [[3, 1, 4, 5]])[0, 0] == pytest.approx(8 / 27)


# --- MaxBoxAcc ------------------------------------------------------------------------------
@pytest.mark.parametrize("noise", [0.0, 0.03])
def test_box_evaluator_matches_wsoleval_loop(noise):
    rng = np.random.default_rng(3)
    maps, boxes = blob_maps(rng, 6, noise=noise)
    ev = BoxEvaluator(cam_curve_interval=0.01, multi_contour="both")
    ev.accumulate(maps[:4], boxes[:4])
    ev.accumulate(maps[4:], boxes[4:])
    res = ev.compute()
    for mc, key in ((False, "MaxBoxAcc"), (True, "MaxBoxAccV2")):
        ref = wsoleval_box_evaluator(maps, boxes, 0.01, mc)
        for d in (30, 50, 70):
            np.testing.assert_array_equal(np.array(res["curve"][key][str(d)]), ref[d])
            assert res[key][str(d)] == ref[d].max()
            assert res["best_threshold"][key][str(d)] == np.arange(0, 1, 0.01)[np.argmax(ref[d])]
    assert res["MaxBoxAccV2"]["mean"] == pytest.approx(np.mean([ref[d].max() for d in (30, 50, 70)]))
    assert "mean" not in res["MaxBoxAcc"]


def test_box_evaluator_fine_interval_matches_wsoleval_loop():
    rng = np.random.default_rng(4)
    maps, boxes = blob_maps(rng, 2, size=96, noise=0.02)
    ev = BoxEvaluator(cam_curve_interval=0.001, multi_contour=True)
    ev.accumulate(maps, boxes)
    ref = wsoleval_box_evaluator(maps, boxes, 0.001, True)
    for d in (30, 50, 70):
        np.testing.assert_array_equal(np.array(ev.compute()["curve"]["MaxBoxAccV2"][str(d)]), ref[d])


def test_box_evaluator_per_image_loop():
    """Hand-made: counts are per image (a fork once accumulated outside the loop)."""
    size = 40
    hit = np.zeros((size, size)); hit[10:20, 10:20] = 1.0       # box [10,10,20,20]
    miss = np.zeros((size, size)); miss[30:35, 0:5] = 1.0       # far from the GT
    gt = np.array([[10, 10, 19, 19]])
    ev = BoxEvaluator(cam_curve_interval=0.1, multi_contour="both")
    ev.accumulate(np.stack([hit, miss, hit]), [gt, gt, gt], correct=[True, True, False])
    res = ev.compute()
    assert res["num_images"] == 3
    for key in ("MaxBoxAcc", "MaxBoxAccV2"):
        assert res[key]["50"] == pytest.approx(200 / 3)
        assert res["curve"][key]["50"] == pytest.approx([200 / 3] * 10)
        assert res["top1_loc_at_best"][key]["50"] == pytest.approx(100 / 3)
        assert res["gt_known_loc_at_best"][key]["50"] == res[key]["50"]
    curves = ev.curves()
    assert set(curves) == {"thresholds"} | {f"{k} IoU{d}" for k in ("MaxBoxAcc", "MaxBoxAccV2") for d in (30, 50, 70)}
    assert curves["thresholds"].shape == curves["MaxBoxAccV2 IoU50"].shape == (10,)
    # one at a time == all at once
    ev2 = BoxEvaluator(cam_curve_interval=0.1, multi_contour="both")
    for m, c in zip((hit, miss, hit), (True, True, False)):
        ev2.accumulate(m[None], [gt], correct=[c])
    assert ev2.compute() == res


def test_box_evaluator_empty_map_and_errors():
    ev = BoxEvaluator(cam_curve_interval=0.25, multi_contour=False)
    with pytest.raises(RuntimeError):
        ev.compute()
    ev.accumulate(np.zeros((1, 20, 20)), [np.array([[0, 0, 0, 0]])])  # [0,0,0,0] vs itself: IoU 1
    res = ev.compute()
    assert res["MaxBoxAcc"]["50"] == 100.0 and "MaxBoxAccV2" not in res and "top1_loc_at_best" not in res
    with pytest.raises(ValueError):
        ev.accumulate(np.zeros((2, 20, 20)), [np.array([[0, 0, 1, 1]])])
    with pytest.raises(ValueError):
        BoxEvaluator(multi_contour="all")


def test_loc_evaluator():
    m = np.zeros((224, 224)); m[50:100, 60:120] = 1.0
    gt = np.array([[60, 50, 119, 99]])
    far = np.array([[0, 50, 10, 99]])  # disjoint in x only (both-axes disjoint boxes can "hit" under art2020)
    for protocol in ("art2020", "wsoleval"):
        ev = LocEvaluator(0.2, protocol=protocol)
        ev.accumulate(np.stack([m, m]), [gt, far], correct=[False, True])
        pred = ev.accumulate(m[None], [gt], correct=[True])
        assert pred.shape == (1, 4) and pred[0].tolist() == [60, 50, 120, 100]
        res = ev.compute()
        assert res["gt_known_loc"] == pytest.approx(200 / 3)
        assert res["top1_loc"] == pytest.approx(100 / 3)
    with pytest.raises(ValueError):
        LocEvaluator(0.2, protocol="adl")
    # the art2020 unclamped-IoU quirk: a box disjoint in both axes can count as a hit
    quirk = np.array([[0, 0, 5, 5]])  # iw = -54, ih = -44: "inter" 2376, union 771, "IoU" 3.08
    art, wsol_ = LocEvaluator(0.2, "art2020"), LocEvaluator(0.2, "wsoleval")
    for ev in (art, wsol_):
        ev.accumulate(m[None], [quirk])
    assert art.compute()["gt_known_loc"] == 100.0 and wsol_.compute()["gt_known_loc"] == 0.0


# --- PxAP / mIoU ----------------------------------------------------------------------------
def test_pxap_perfect_and_constant():
    gt = np.zeros((2, 16, 16), np.uint8); gt[:, 4:10, 4:12] = 1
    ev = PxAPEvaluator(0.01)
    ev.accumulate(gt.astype(float), gt)
    assert ev.compute()["PxAP"] == pytest.approx(100.0)
    ev = PxAPEvaluator(0.01)
    ev.accumulate(np.zeros((2, 16, 16)), gt)
    assert ev.compute()["PxAP"] == pytest.approx(100 * gt.mean())


def test_pxap_ignore_pixels():
    gt = np.zeros((16, 16), np.uint8); gt[4:10, 4:12] = 1; gt[0:2, :] = 255
    s = gt.astype(float).copy(); s[0:2, :] = 1.0  # high scores on ignored pixels do not count
    ev = PxAPEvaluator(0.01)
    ev.accumulate(s[None], gt[None])
    assert ev.compute()["PxAP"] == pytest.approx(100.0)


def test_pxap_matches_wsoleval_loop_and_sklearn():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(5)
    maps, _ = blob_maps(rng, 4, size=48, noise=0.05)
    gts = (maps > 0.6).astype(np.uint8)
    flip = rng.random(gts.shape) < 0.1
    gts[flip] = 1 - gts[flip]
    gts[:, :2, :] = 255
    ev = PxAPEvaluator(0.01)
    ev.accumulate(maps, gts)
    assert ev.compute()["PxAP"] == pytest.approx(wsoleval_pxap(maps, gts, 0.01), rel=1e-12)
    # sklearn agrees when every score sits exactly on a bin's lower edge (one distinct score
    # per bin); on raw scores PxAP is a binned approximation and differs slightly.
    th = np.arange(0, 1, 0.01)
    q = th[np.clip(np.searchsorted(th, maps, side="right") - 1, 0, len(th) - 1)]
    ev = PxAPEvaluator(0.01)
    ev.accumulate(q, gts)
    keep = gts != 255
    ap = average_precision_score(gts[keep] == 1, q[keep])
    assert ev.compute()["PxAP"] == pytest.approx(100 * ap, rel=1e-9)


def test_pxap_score_one_in_its_own_bin():
    h_t = np.zeros(5); h_f = np.zeros(5)  # thresholds [0, .5] -> bins [0,.5) [.5,1) [1,2) [2,3]
    h_t[2] = 3; h_f[1] = 1; h_t[1] = 1
    res = pxap_from_histograms(h_t, h_f)
    # reversed: [2,3]: skip; [1,2): P=1, R=3/4; [.5,1): P=4/5, R=1
    assert res["PxAP"] == pytest.approx(100 * (0.75 + 0.8 * 0.25))


def test_miou_and_piou():
    rng = np.random.default_rng(6)
    maps, _ = blob_maps(rng, 3, size=32)
    gts = (maps > 0.5).astype(np.uint8); gts[0, 0, :] = 255
    ev = PxAPEvaluator(0.1, fixed_threshold=0.3)
    ev.accumulate(maps, gts)
    res = ev.compute()
    th = np.arange(0, 1, 0.1)
    direct = [100 * np.mean([mask_iou(m >= t, g) for m, g in zip(maps, gts)]) for t in th]
    np.testing.assert_allclose(res["curve"]["mIoU"], direct)
    assert res["mIoU"] == pytest.approx(max(direct))
    assert res["mIoU_threshold"] == th[int(np.argmax(direct))]
    assert res["mIoU_at_fixed"] == pytest.approx(direct[3])
    keep = gts != 255
    pooled = [100 * np.sum((maps >= t) & (gts == 1)) / np.sum(((maps >= t) | (gts == 1)) & keep) for t in th]
    np.testing.assert_allclose(res["curve"]["pIoU"], pooled)
    assert mask_iou(np.zeros((3, 3), bool), np.zeros((3, 3), np.uint8)) == 1.0
