"""Straightforward copies of clovaai/wsolevaluation's box code (REFERENCE.md 6.1, 6.2), written
independently of wsol so the tests compare wsol against the reference behaviour."""

import cv2
import numpy as np


def wsoleval_boxes(scoremap, threshold, multi_contour):
    height, width = scoremap.shape
    image = np.expand_dims((scoremap * 255).astype(np.uint8), 2)
    _, thr = cv2.threshold(src=image, thresh=int(threshold * np.max(image)), maxval=255,
                           type=cv2.THRESH_BINARY)
    out = cv2.findContours(thr, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    contours = out[0] if len(out) == 2 else out[1]
    if len(contours) == 0:
        return np.asarray([[0, 0, 0, 0]])
    if not multi_contour:
        contours = [max(contours, key=cv2.contourArea)]
    boxes = []
    for c in contours:
        x, y, w, h = cv2.boundingRect(c)
        boxes.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
    return np.asarray(boxes)


def wsoleval_multiple_iou(box_a, box_b):
    box_a, box_b = np.asarray(box_a, float), np.asarray(box_b, float)
    ious = np.zeros((len(box_a), len(box_b)))
    for i, a in enumerate(box_a):
        for j, b in enumerate(box_b):
            iw = max(0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
            ih = max(0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
            inter = iw * ih
            union = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - inter
            ious[i, j] = inter / union if union > 0 else 0.0
    return ious
