"""The union-find sweep for MaxBoxAccV2 equals findContours (RETR_TREE) boxes at every level."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from wsol._component_sweep import v2_best_iou_per_cut
from wsol.localization import _to_uint8, boxes_at_thresholds_reference, cut_levels
from wsol.metrics import BoxEvaluator, iou

TH = np.arange(0, 1, 0.01)


def reference(scoremap, gt, thresholds=TH):
    boxes = boxes_at_thresholds_reference(scoremap, thresholds, multi_contour=True)
    return np.array([iou(b, gt).max() for b in boxes])


def sweep(scoremap, gt, thresholds=TH):
    u8 = _to_uint8(scoremap)
    return v2_best_iou_per_cut(u8, gt, cut_levels(int(u8.max()), thresholds))


def hand_made():
    ring = np.zeros((12, 12)); ring[2:10, 2:10] = 1; ring[4:8, 4:8] = 0
    island = ring.copy(); island[5:7, 5:7] = 0.7  # an island inside the hole
    border = np.zeros((10, 10)); border[0:4, :] = 1; border[6:, 3:6] = 0.5
    diagonal = np.eye(9) * 0.9; diagonal[::-1] += np.eye(9) * 0.4
    checker = (np.indices((8, 8)).sum(0) % 2).astype(float)
    pixels = np.zeros((7, 7)); pixels[1, 1] = pixels[5, 3] = pixels[3, 6] = 1
    diamond = np.zeros((11, 11)); diamond[5, 1:10] = 1; diamond[1:10, 5] = 1; diamond[5, 5] = 0
    hole_at_edge_gap = np.ones((8, 8)); hole_at_edge_gap[2:6, 2:6] = 0; hole_at_edge_gap[2:6, 0] = 0
    return [ring, island, border, diagonal, checker, pixels, diamond, hole_at_edge_gap]


@pytest.mark.parametrize("k", range(8))
def test_hand_made_maps(k):
    m = hand_made()[k]
    H, W = m.shape
    for gt in ([[0, 0, W - 1, H - 1]], [[2, 2, 7, 7]], [[4, 4, 7, 7], [0, 0, 1, 1]], [[1, 1, 1, 1]]):
        gt = np.array(gt)
        assert np.array_equal(sweep(m, gt), reference(m, gt)), (k, gt)


def test_random_and_cam_like_maps():
    rng = np.random.default_rng(0)
    for i in range(40):
        if i % 3 == 0:
            m = cv2.resize(rng.random((7, 7)), (56, 48), interpolation=cv2.INTER_CUBIC)
            m += rng.normal(0, 0.01, m.shape)
        elif i % 3 == 1:
            m = rng.random((17, 23))
        else:
            m = (rng.random((25, 25)) > 0.5) * rng.random((25, 25))
        m = (m - m.min()) / (m.max() - m.min())
        H, W = m.shape
        x0, y0 = rng.integers(0, W - 2), rng.integers(0, H - 2)
        gt = np.array([[x0, y0, rng.integers(x0, W), rng.integers(y0, H)], [0, 0, W // 2, H // 2]])
        th = np.arange(0, 1, 0.001) if i < 4 else TH
        assert np.array_equal(sweep(m, gt, th), reference(m, gt, th)), i


def test_constant_and_nan_maps_give_the_empty_box():
    gt = np.array([[0, 0, 0, 0], [2, 2, 5, 5]])
    for m in (np.zeros((8, 8)), np.full((8, 8), np.nan)):
        assert np.array_equal(sweep(m, gt), reference(m, gt))
        assert (sweep(m, gt) == 1.0).all()  # [0,0,0,0] vs GT [0,0,0,0]


def test_box_evaluator_v2_only_matches_both_modes():
    rng = np.random.default_rng(3)
    maps = [cv2.resize(rng.random((8, 8)), (40, 40), interpolation=cv2.INTER_CUBIC) for _ in range(6)]
    maps = [(m - m.min()) / (m.max() - m.min()) for m in maps]
    gts = [np.array([[5, 5, 30, 25]]) for _ in maps]
    a, b = BoxEvaluator(0.01, multi_contour=True), BoxEvaluator(0.01, multi_contour="both")
    a.accumulate(np.stack(maps), gts)
    b.accumulate(np.stack(maps), gts)
    assert a.compute()["MaxBoxAccV2"] == b.compute()["MaxBoxAccV2"]
    assert a.compute()["curve"]["MaxBoxAccV2"] == b.compute()["curve"]["MaxBoxAccV2"]


def cam_like(rng, n, shape=(48, 56), dtype=np.float64):
    """n smooth CAM-like maps (n, H, W) in [0, 1] with pixel noise, and one GT set each."""
    maps, gts = [], []
    for _ in range(n):
        m = cv2.resize(rng.random((6, 7)), shape[::-1], interpolation=cv2.INTER_CUBIC)
        m = m + rng.normal(0, 0.01, m.shape)
        maps.append(((m - m.min()) / (m.max() - m.min())).astype(dtype))
        x0, y0 = rng.integers(0, shape[1] - 2), rng.integers(0, shape[0] - 2)
        gts.append(np.array([[x0, y0, rng.integers(x0, shape[1]), rng.integers(y0, shape[0])]]))
    return np.stack(maps), gts


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batch_matches_single_map_path_and_find_contours(threads, dtype):
    import numba

    from wsol._component_sweep import v2_best_iou_batch

    rng = np.random.default_rng(5)
    maps, gts = cam_like(rng, 7, dtype=dtype)
    maps[3] = (rng.random(maps[3].shape) > 0.6) * rng.random(maps[3].shape)  # many holes and islands
    maps[4] = 0.0  # constant: no contour at any level
    previous = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        for th in (TH, np.arange(0, 1, 0.001)):
            got = v2_best_iou_batch(maps, gts, th)
            assert np.array_equal(got, v2_best_iou_batch(np.stack([_to_uint8(m) for m in maps]), gts, th))
            for m, gt, row in zip(maps, gts, got):
                assert np.array_equal(row, sweep(m, gt, th))
            for i in (0, 3, 4):
                assert np.array_equal(got[i], reference(maps[i], gts[i], th)), i
    finally:
        numba.set_num_threads(previous)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_quantise_matches_to_uint8(dtype):
    from wsol._component_sweep import _quantise

    rng = np.random.default_rng(6)
    levels = np.arange(256) / 255  # values at and around every quantisation step
    maps = [rng.random((9, 11)) * 1.4 - 0.2, np.concatenate([levels, np.nextafter(levels, 2),
                                                            np.nextafter(levels, -1)]).reshape(24, 32),
            np.full((4, 4), np.inf), np.full((3, 3), 1.0)]
    nan = rng.random((5, 5)); nan[2, 3] = np.nan
    for m in maps + [nan]:
        m = m.astype(dtype)
        u8 = np.empty(m.shape, np.uint8)
        _quantise(m, np.array([0, 1, 255], dtype), u8)
        assert np.array_equal(u8, _to_uint8(m))


def test_box_evaluator_batched_v2_matches_per_image_path_with_top1():
    rng = np.random.default_rng(7)
    maps, gts = cam_like(rng, 9, dtype=np.float32)
    correct = rng.random(9) > 0.4
    a, b = BoxEvaluator(0.01, multi_contour=True), BoxEvaluator(0.01, multi_contour="both")
    for sl in (slice(0, 4), slice(4, 5), slice(5, 9)):  # several batches, one of a single map
        a.accumulate(maps[sl], gts[sl], correct[sl])
        b.accumulate(maps[sl], gts[sl], correct[sl])
    ra, rb = a.compute(), b.compute()
    for key in ("gt_known_loc_at_best", "top1_loc_at_best", "best_threshold", "curve"):
        assert ra[key]["MaxBoxAccV2"] == rb[key]["MaxBoxAccV2"], key
    assert ra["num_images"] == rb["num_images"] == 9


def test_the_batch_sweep_leaves_torch_thread_count_alone():
    """numba's OpenMP layer sets the calling thread's OpenMP count, which is torch's too: a training
    process on one torch thread must stay on one after a validation scored its boxes (measured
    before the guard: at::get_num_threads() 1 -> 2, and a resumed run no longer matched)."""
    import torch

    from wsol._component_sweep import best_iou_batch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        maps = np.random.default_rng(0).random((4, 24, 24)).astype(np.float32)
        best_iou_batch(maps, [np.array([[1, 1, 10, 10]])] * 4, np.linspace(0, 1, 11))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
