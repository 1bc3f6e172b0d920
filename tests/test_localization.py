"""wsol.localization: wsolevaluation box extraction (bit-exact), masks, art2020 boxes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from wsol.localization import (art2020_box, art2020_gray, boxes_at_threshold, boxes_at_thresholds,
                               boxes_at_thresholds_reference, contours_to_boxes, cut_levels,
                               find_contours, largest_component, level_boxes, level_contours,
                               mask_at_threshold, normalize_scoremap)


from wsoleval_reference import wsoleval_boxes  # noqa: E402  (independent copy of the reference)


def smooth_map(rng, size=224, grid=14, noise=0.0):
    m = rng.random((grid, grid))
    m = cv2.GaussianBlur(m, (0, 0), rng.uniform(0.5, 2.0))
    m = cv2.resize(m, (size, size), interpolation=cv2.INTER_CUBIC)
    m = m + noise * rng.standard_normal(m.shape)
    return normalize_scoremap(m, (size, size))


def structured_maps(size=32):
    """Hand-made maps: holes, border contact, single pixels, diagonal links, nesting."""
    maps = []
    ring = np.zeros((size, size)); ring[5:20, 5:20] = 1.0; ring[8:15, 9:12] = 0.0
    maps.append(ring)
    nested = ring.copy(); nested[10:12, 10:11] = 0.6  # island inside the hole
    maps.append(nested)
    border = np.zeros((size, size)); border[0:10, :] = 0.8; border[4:6, 3:7] = 0.0
    border[size - 1, size - 1] = 1.0
    maps.append(border)
    diag = np.zeros((size, size))
    for i in range(10):
        diag[i + 3, i + 3] = 1.0; diag[i + 3, 20 - i] = 0.5
    maps.append(diag)
    single = np.zeros((size, size)); single[7, 9] = 1.0; single[0, 0] = 1.0; single[20, 31] = 0.3
    maps.append(single)
    checker = (np.indices((size, size)).sum(0) % 2).astype(float) * 0.9
    maps.append(checker)
    diamond = np.zeros((size, size))  # 8-connected ring: outer and hole contour equal areas
    for (y, x) in [(2, 0), (1, 1), (3, 1), (0, 2), (4, 2), (1, 3), (3, 3), (2, 4)]:
        diamond[y + 10, x + 10] = 1.0
    maps.append(diamond)
    two_equal = np.zeros((size, size)); two_equal[2:5, 2:5] = 1.0; two_equal[20:23, 20:23] = 1.0
    maps.append(two_equal)
    full = np.ones((size, size)); full[10:12, 10:12] = 0.5
    maps.append(full)
    rings = np.zeros((size, size))
    for r, v in [(14, 0.2), (11, 0.4), (8, 0.6), (5, 0.8), (2, 1.0)]:
        rings[16 - r:16 + r, 16 - r:16 + r] = v
        rings[16 - r + 1:16 + r - 1, 16 - r + 1:16 + r - 1] = v * 0.5
    maps.append(rings)
    return maps


def test_normalize_scoremap():
    rng = np.random.default_rng(0)
    cam = rng.random((14, 14)).astype(np.float32)
    out = normalize_scoremap(cam)
    assert out.shape == (224, 224) and out.dtype == np.float64
    assert out.min() == 0.0 and out.max() == 1.0
    ref = cv2.resize(cam.astype(np.float64), (224, 224), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_allclose(out, (ref - ref.min()) / (ref.max() - ref.min()))
    assert not normalize_scoremap(np.full((7, 7), 3.0)).any()
    nan = cam.astype(np.float64); nan[0, 0] = np.nan
    assert not normalize_scoremap(nan).any()


def test_find_contours_signature():
    img = np.zeros((10, 10), np.uint8); img[2:5, 3:7] = 1
    contours = find_contours(img)
    assert len(contours) == 1 and cv2.boundingRect(contours[0]) == (3, 2, 4, 3)


def test_box_end_rule_and_empty():
    m = np.zeros((20, 30)); m[2:5, 3:7] = 1.0  # pixels x 3..6, y 2..4
    assert boxes_at_threshold(m, 0.5).tolist() == [[3, 2, 7, 5]]  # x + w: one past the last pixel
    m2 = np.zeros((20, 30)); m2[10:, 25:] = 1.0
    assert boxes_at_threshold(m2, 0.5).tolist() == [[25, 10, 29, 19]]  # clipped to W-1, H-1
    assert boxes_at_threshold(np.zeros((20, 30)), 0.5).tolist() == [[0, 0, 0, 0]]
    nan = np.full((20, 30), np.nan)
    assert boxes_at_threshold(nan, 0.1).tolist() == [[0, 0, 0, 0]]


def test_strict_threshold_and_truncation():
    m = np.zeros((10, 10)); m[1, 1] = 1.0; m[5, 5] = 0.5  # u8: 255 and 127
    # tau = 0.5 -> cut int(127.5) = 127 -> 127 is not > 127
    assert boxes_at_threshold(m, 0.5, multi_contour=True).tolist() == [[1, 1, 2, 2]]
    assert len(boxes_at_threshold(m, 0.49, multi_contour=True)) == 2
    assert cut_levels(255, np.array([0.0, 0.5, 0.999])).tolist() == [0, 127, 254]


def test_hole_contours_count_in_v2():
    m = np.zeros((30, 30)); m[5:20, 5:20] = 1.0; m[8:15, 9:12] = 0.0
    boxes = boxes_at_threshold(m, 0.5, multi_contour=True)
    assert sorted(boxes.tolist()) == sorted([[5, 5, 20, 20], [8, 7, 13, 16]])
    assert boxes_at_threshold(m, 0.5).tolist() == [[5, 5, 20, 20]]


@pytest.mark.parametrize("multi_contour", [False, True])
def test_reference_matches_wsoleval_copy(multi_contour):
    rng = np.random.default_rng(1)
    thresholds = np.arange(0, 1, 0.05)
    for m in structured_maps() + [smooth_map(rng, 64, 8, noise) for noise in (0.0, 0.05)]:
        for t in thresholds:
            np.testing.assert_array_equal(boxes_at_threshold(m, t, multi_contour),
                                          wsoleval_boxes(m, t, multi_contour))


@pytest.mark.parametrize("multi_contour", [False, True])
def test_fast_path_identical_structured(multi_contour):
    thresholds = np.arange(0, 1, 0.001)
    for m in structured_maps():
        fast = boxes_at_thresholds(m, thresholds, multi_contour)
        ref = [wsoleval_boxes(m, t, multi_contour) for t in thresholds]
        for a, b in zip(fast, ref):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("multi_contour", [False, True])
def test_fast_path_identical_random(multi_contour):
    rng = np.random.default_rng(2)
    maps = [smooth_map(rng, 224, 14, noise) for noise in (0.0, 0.0, 0.01, 0.1)]
    maps += [rng.random((48, 48)), (rng.random((40, 40)) > 0.6) * rng.random((40, 40))]
    maps += [smooth_map(rng, 64, 8, 0.02).astype(np.float32)]  # truncation in the map's dtype
    for interval in (0.01, 0.001):
        thresholds = np.arange(0, 1, interval)
        for m in maps:
            fast = boxes_at_thresholds(m, thresholds, multi_contour)
            ref = boxes_at_thresholds_reference(m, thresholds, multi_contour)
            for k, (a, b) in enumerate(zip(fast, ref)):
                np.testing.assert_array_equal(a, b, err_msg=f"tau={thresholds[k]}")
    # the reference helper itself against the independent copy (subset of thresholds)
    for m in maps:
        for t in np.arange(0, 1, 0.07):
            np.testing.assert_array_equal(boxes_at_threshold(m, t, multi_contour),
                                          wsoleval_boxes(m, t, multi_contour))


def test_level_boxes_vectorised_matches_per_list():
    """Vectorised boundingRect / contourArea-argmax (ties: first) == the plain per-list code."""
    rng = np.random.default_rng(3)
    maps = structured_maps() + [smooth_map(rng, 96, 8, 0.05), rng.random((40, 40)), np.zeros((9, 9))]
    for m in maps:
        contours, _, shape = level_contours(m, np.arange(0, 1, 0.004))
        for multi_contour in (False, True):
            boxes, starts = level_boxes(contours, shape, multi_contour)
            for c, b in zip(contours, np.split(boxes, starts[1:])):
                np.testing.assert_array_equal(b, contours_to_boxes(c, shape, multi_contour))


def test_constant_and_nan_maps_give_empty_boxes():
    thresholds = np.arange(0, 1, 0.1)
    for m in (np.zeros((16, 16)), np.full((16, 16), np.nan)):
        for b in boxes_at_thresholds(m, thresholds, True):
            assert b.tolist() == [[0, 0, 0, 0]]
    # a constant 1 map is all foreground at every tau < 1
    assert boxes_at_thresholds(np.ones((16, 16)), [0.0, 0.5], True)[1].tolist() == [[0, 0, 15, 15]]


def test_masks():
    m = np.zeros((10, 10)); m[1:3, 1:3] = 0.5; m[5:9, 5:9] = 0.7
    assert mask_at_threshold(m, 0.5).sum() == 4 + 16  # >= (inclusive)
    big = mask_at_threshold(m, 0.5, largest=True)
    assert big.sum() == 16 and big[5, 5]
    assert not largest_component(np.zeros((5, 5), bool)).any()
    assert not mask_at_threshold(np.full((4, 4), np.nan), 0.1).any()


def test_art2020_box():
    m = np.zeros((224, 224)); m[50:100, 180:224] = 1.0
    box = art2020_box(m, 0.2)
    assert box.tolist() == [180, 50, 224, 100]  # x + w, no W-1 clip
    assert art2020_box(np.zeros((14, 14)), 0.2).tolist() == [0, 0, 1, 1]
    assert art2020_box(np.full((14, 14), np.nan), 0.2).tolist() == [0, 0, 1, 1]
    gray = art2020_gray(np.random.default_rng(0).random((14, 14)))
    assert gray.shape == (224, 224) and gray.dtype == np.uint8
    # cubehelix is monotone in luminance: the max of the map stays the max of the gray image
    small = np.zeros((14, 14)); small[3, 4] = 1.0
    g = art2020_gray(small)
    assert np.unravel_index(np.argmax(g), g.shape) == np.unravel_index(
        np.argmax(cv2.resize(small, (224, 224), interpolation=cv2.INTER_CUBIC)), g.shape)
