"""The torch dataset over any :class:`~wsol.data.robustness.ClassificationSplit`, its training
augmentation (the CIFAR recipe, plus ART's extras) and the collate function."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..images import load_rgb
from .base import ClassificationSplit

__all__ = ["ClassificationDataset", "collate_classification"]


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 (H, W, 3) -> (size, size, 3): area interpolation to shrink, bilinear to grow."""
    H, W = image.shape[:2]
    if (H, W) == (size, size):
        return image
    interp = cv2.INTER_AREA if size <= min(H, W) else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


class _TrainAugment:
    """Random h-flip + ``pad``-pixel reflect-padded random crop back to (H, W) (CIFAR recipe), and
    optionally ART's CIFAR extras: ColorJitter(j, j, j) and a rotation within +-``rotation`` degrees.

    ``set_seed`` makes the draws repeat; :func:`wsol.data.seed_worker` finds it as
    ``dataset.transform`` in each DataLoader worker.
    """

    def __init__(self, height: int, width: int, pad: int = 4, hflip_p: float = 0.5,
                 color_jitter: float = 0.0, rotation: float = 0.0) -> None:
        import albumentations as A   # on first use (its import takes ~1.5 s)

        steps = [A.Pad(padding=pad, border_mode=cv2.BORDER_REFLECT_101),  # torchvision's "reflect"
                 A.RandomCrop(height, width),
                 A.HorizontalFlip(p=hflip_p)]
        if color_jitter > 0:
            steps.append(A.ColorJitter(brightness=color_jitter, contrast=color_jitter, saturation=color_jitter,
                                       hue=0.0, p=1.0))
        if rotation > 0:  # torchvision's RandomRotation fills with 0
            steps.append(A.Rotate(limit=rotation, border_mode=cv2.BORDER_CONSTANT, fill=0, p=1.0))
        self.pipeline = A.Compose(steps)

    def set_seed(self, seed: int) -> None:
        self.pipeline.set_random_seed(seed)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.pipeline(image=image)["image"]


class ClassificationDataset(Dataset):
    """Torch dataset over a :class:`ClassificationSplit`.

    Items: ``{"image": float32 (3, S, S) in [0, 1], "label": int, "index": int, "image_id": str}``.
    ``image_size`` resizes every image to S x S (else the stored size is kept). ``train`` adds a
    random horizontal flip and a ``pad``-pixel reflect-padded random crop (plus ``color_jitter``
    and ``rotation`` when > 0); an image-file split needs ``image_size`` then, since its files
    differ in size.
    """

    def __init__(self, split: ClassificationSplit, image_size: int | None = None, train: bool = False,
                 pad: int = 4, hflip_p: float = 0.5, color_jitter: float = 0.0, rotation: float = 0.0) -> None:
        self.split = split
        self.image_size = None if image_size is None else int(image_size)
        self.train = train
        self.transform: _TrainAugment | None = None
        if train:
            if self.image_size is not None:
                h = w = self.image_size
            elif split.in_memory:
                h, w = split.images.shape[1:3]
            else:
                raise ValueError(f"{split.name}: train=True on an image-file split needs image_size "
                                 "(the files differ in size)")
            self.transform = _TrainAugment(h, w, pad, hflip_p, color_jitter, rotation)

    def set_seed(self, seed: int) -> None:
        """Seed the random augmentation (no effect when ``train=False``)."""
        if self.transform is not None:
            self.transform.set_seed(seed)

    @property
    def class_names(self) -> list[str]:
        return self.split.class_names

    def __len__(self) -> int:
        return len(self.split)

    def load(self, index: int) -> np.ndarray:
        """The stored image, uint8 (H, W, 3)."""
        img = self.split.images[index]
        return np.asarray(img) if self.split.in_memory else load_rgb(img)

    def __getitem__(self, index: int) -> dict:
        image = self.load(index)
        if self.image_size is not None:
            image = _resize(image, self.image_size)
        if self.transform is not None:
            image = self.transform(image)
        tensor = torch.from_numpy(np.require(image, requirements=["C", "W"])).permute(2, 0, 1).float().div_(255.0)
        return {"image": tensor, "label": int(self.split.labels[index]), "index": int(index),
                "image_id": self.split.image_id(index)}


def collate_classification(items: list[dict]) -> dict:
    """Batch items: image (B, 3, S, S), label (B,) int64, index (B,) int64, image_id list, and
    ``skipped`` (always empty: kept so the training loop reads CUB and classification batches alike)."""
    return {
        "image": torch.stack([it["image"] for it in items]),
        "label": torch.tensor([it["label"] for it in items], dtype=torch.long),
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
        "image_id": [it["image_id"] for it in items],
        "skipped": [],
    }
