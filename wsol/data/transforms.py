"""Image / box / mask pipelines (albumentations), one per geometry the field uses.

| kind        | image                                  | boxes                                        |
|-------------|----------------------------------------|----------------------------------------------|
| ``train``   | resize R x R, random crop S, h-flip    | moved with the image (albumentations)         |
| ``wsoleval``| resize S x S                           | ``int(v * S / W)``: truncation, as wsolevaluation |
| ``paper``   | resize R x R, centre crop S (ADL, ART) | exact: ``v * R / W - (R - S) // 2``, clipped to [0, S-1] |
| ``art2020`` | as ``paper``                           | the official code's ``v / W * (R - 1) - ((R - S) // 2 - 1)``, no clip |

S is ``image_size`` (224 for the paper; 64-128 for CPU configs) and R defaults to
``round(S * 256 / 224)``. Boxes are ``x0, y0, x1, y1`` pixel coordinates (inclusive, the
wsolevaluation convention); masks are resized with nearest neighbour, so they stay aligned
with the image pixel for pixel. Downscaling uses area interpolation (close to PIL's
antialiased bilinear, which the reference code uses); upscaling bilinear.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

if TYPE_CHECKING:
    import albumentations as A

__all__ = [
    "KINDS",
    "SampleTransform",
    "build_transform",
    "default_resize",
    "resize_boxes_wsoleval",
    "crop_boxes_exact",
    "crop_boxes_art2020",
]

KINDS = ("train", "wsoleval", "paper", "art2020")
IGNORE = 255  # mask value of pixels left out of PxAP (OpenImages' ignore regions)
_ALIASES = {"wsolevaluation": "wsoleval", "adl": "paper"}


def default_resize(image_size: int) -> int:
    """The resize side before a crop to ``image_size`` (256 for 224, as the paper)."""
    return int(round(image_size * 256 / 224))


def resize_boxes_wsoleval(boxes: np.ndarray, orig_size: tuple[int, int], new_size: tuple[int, int]) -> np.ndarray:
    """wsolevaluation's box rule: ``int(v * new / orig)`` per axis (truncation).

    boxes: (K, 4) x0,y0,x1,y1; sizes are (W, H). Returns float64 (K, 4) of integers.
    """
    (W, H), (nw, nh) = orig_size, new_size
    out = np.empty_like(np.asarray(boxes, dtype=np.float64))
    for k, (x0, y0, x1, y1) in enumerate(np.asarray(boxes, dtype=np.float64)):
        # Python float arithmetic in the reference's operation order, then truncation.
        out[k] = (int(x0 * nw / W), int(y0 * nh / H), int(x1 * nw / W), int(y1 * nh / H))
    return out


def crop_boxes_exact(boxes: np.ndarray, orig_size: tuple[int, int], resize: int, crop: int) -> np.ndarray:
    """Exact geometry of resize R x R + centre crop S: ``v * R / W - off``, clipped to [0, S-1]."""
    W, H = orig_size
    off = (resize - crop) // 2
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scale = np.array([resize / W, resize / H, resize / W, resize / H])
    return np.clip(b * scale - off, 0, crop - 1)


def crop_boxes_art2020(boxes: np.ndarray, orig_size: tuple[int, int], resize: int, crop: int) -> np.ndarray:
    """The official ART/ADL rule (REFERENCE.md §4.3): ``v / W * 255 - 15`` at 256/224, no clip."""
    W, H = orig_size
    off = (resize - crop) // 2
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scale = np.array([1 / W, 1 / H, 1 / W, 1 / H]) * (resize - 1)
    return b * scale - (off - 1)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.require(image, requirements=["C", "W"])).permute(2, 0, 1).float().div_(255.0)


class SampleTransform:
    """Callable ``(image uint8 (H,W,3), boxes (K,4), mask uint8 (H,W) | None) -> dict``.

    The dict holds ``image`` float32 (3,S,S) in [0,1], ``boxes`` float32 (K',4) in output
    pixels, ``mask`` bool (S,S) foreground (mask values > 0 other than 255) and ``ignore`` bool
    (S,S) (value 255), both None without a mask. In ``train`` mode boxes that the crop cuts off
    entirely are dropped (K' <= K); evaluation modes keep all K.
    """

    def __init__(self, kind: str = "train", image_size: int = 224, resize_size: int | None = None,
                 hflip_p: float = 0.5) -> None:
        kind = _ALIASES.get(kind, kind)
        if kind not in KINDS:
            raise ValueError(f"transform kind must be one of {KINDS} (or {tuple(_ALIASES)}), got {kind!r}")
        if image_size < 8:
            raise ValueError(f"image_size must be >= 8, got {image_size}")
        self.kind = kind
        self.image_size = int(image_size)
        self.resize_size = int(resize_size or default_resize(image_size))
        if self.kind != "wsoleval" and self.resize_size < self.image_size:
            raise ValueError(f"resize_size ({self.resize_size}) must be >= image_size ({self.image_size})")
        self.pipeline = self._build(hflip_p)

    def _build(self, hflip_p: float) -> A.Compose:
        # imported on first use: it takes ~1.5 s, and what builds no pipeline (models, metrics, benchmarks) skips it
        import albumentations as A
        s, r = self.image_size, self.resize_size
        resize = dict(interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST,
                      area_for_downscale="image")
        if self.kind == "train":
            return A.Compose(
                [A.Resize(r, r, **resize), A.RandomCrop(s, s), A.HorizontalFlip(p=hflip_p)],
                bbox_params=A.BboxParams(format="pascal_voc", label_fields=["box_ids"], clip=True),
            )
        if self.kind == "wsoleval":
            return A.Compose([A.Resize(s, s, **resize)])
        return A.Compose([A.Resize(r, r, **resize), A.CenterCrop(s, s)])

    def set_seed(self, seed: int) -> None:
        """Seed the random augmentations (each DataLoader worker should call this)."""
        self.pipeline.set_random_seed(seed)

    def __call__(self, image: np.ndarray, boxes: np.ndarray, mask: np.ndarray | None = None) -> dict:
        H, W = image.shape[:2]
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if self.kind == "train" and mask is None and not len(boxes):  # ILSVRC / OpenImages train
            return {"image": _to_tensor(self._image_only(image)), "boxes": torch.zeros((0, 4), dtype=torch.float32),
                    "mask": None, "ignore": None}
        args = {"image": image}
        if mask is not None:
            args["mask"] = mask
        if self.kind == "train":
            # Inclusive pixel boxes -> continuous [x0, x1 + 1) for albumentations, and back.
            cont = np.clip(boxes + [0, 0, 1, 1], 0, [W, H, W, H])
            args.update(bboxes=cont, box_ids=np.arange(len(boxes)))
        out = self.pipeline(**args)
        if self.kind == "train":
            new = np.asarray(out["bboxes"], dtype=np.float64).reshape(-1, 4) - [0, 0, 1, 1]
            new = np.clip(new, 0, self.image_size - 1)
            new[:, 2:] = np.maximum(new[:, 2:], new[:, :2])  # slivers under a pixel wide
        elif self.kind == "wsoleval":
            new = resize_boxes_wsoleval(boxes, (W, H), (self.image_size, self.image_size))
        elif self.kind == "paper":
            new = crop_boxes_exact(boxes, (W, H), self.resize_size, self.image_size)
        else:
            new = crop_boxes_art2020(boxes, (W, H), self.resize_size, self.image_size)
        m = out.get("mask")
        return {
            "image": _to_tensor(out["image"]),
            "boxes": torch.from_numpy(np.ascontiguousarray(new)).float(),
            "mask": None if m is None else torch.from_numpy(_foreground(m)),
            "ignore": None if m is None else torch.from_numpy(np.asarray(m) == IGNORE),
        }

    def _image_only(self, image: np.ndarray) -> np.ndarray:
        """``self.pipeline(image=image)["image"]`` without Compose's box and mask bookkeeping (a few % of a
        training image's loading time): Compose's own probability draw, then the pipeline's transforms in
        order, each with its own random state, so the same pixels and the same random stream."""
        pipeline = self.pipeline
        if not pipeline.py_random.random() < pipeline.p:  # as Compose.__call__ (p = 1: always runs)
            return image
        data = {"image": image}
        for t in pipeline.transforms:
            data = t(**data)
        return data["image"]

    def __repr__(self) -> str:
        return f"SampleTransform(kind={self.kind!r}, image_size={self.image_size}, resize_size={self.resize_size})"


def _foreground(m) -> np.ndarray:
    m = np.asarray(m)
    return (m > 0) & (m != IGNORE)


def build_transform(kind: str, image_size: int = 224, resize_size: int | None = None, **kwargs) -> SampleTransform:
    """A :class:`SampleTransform` for ``kind`` in :data:`KINDS` (``wsolevaluation`` and ``adl`` are aliases)."""
    return SampleTransform(kind, image_size, resize_size, **kwargs)
