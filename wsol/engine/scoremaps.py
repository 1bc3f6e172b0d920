"""Score saved maps (``<image_id>.npy``) against wsolevaluation metadata, as wsolevaluation does.

Each map (any size, float) is resized with cv2 bicubic to 224 x 224 and min-max
normalised; GT boxes are rescaled with wsolevaluation's int(v * 224 / W) rule; masks are
resized with nearest neighbour. OpenImages-style masks (``id,mask_path,ignore_path``) are
foreground at > 0.5 (any non-zero pixel), with ignore pixels (encoded 255) left out of PxAP;
CUB soft masks found beside the images are foreground at >= 128. A map holding NaN or Inf is
scored exactly as wsolevaluation scores it (NaN: an all-zero map, a miss) and counted in the
result's ``nonfinite_maps``, with a warning naming the first images.

Maps stream through in batches of ``batch_size``: the next batch is read and normalised (over a
few reader threads) while the current one is scored (MaxBoxAcc and MaxBoxAccV2 in one numba call
over the CPU cores, PxAP as histograms), so memory holds two batches whatever the split's size. This module
imports no torch: ``tools/evaluate_wsol.py --scoremaps`` starts in about a second.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from wsol.data.images import load_mask
from wsol.data.split import MASK_THRESHOLD, Sample
from wsol.data.wsoleval import read_wsoleval
from wsol.localization import normalize_scoremap
from wsol.metrics.box import BoxEvaluator
from wsol.metrics.mask import PxAPEvaluator

SIZE = 224

log = logging.getLogger(__name__)


def gt_mask(sample: Sample, size: int = SIZE) -> np.ndarray:
    """uint8 (size, size): 1 foreground, 0 background, 255 ignore."""
    openimages = sample.ignore_path is not None or len(sample.mask_paths) > 1
    fg = np.zeros((size, size), bool)
    for path in sample.mask_paths:
        m = cv2.resize(load_mask(path), (size, size), interpolation=cv2.INTER_NEAREST)
        fg |= (m > 0) if openimages else (m >= MASK_THRESHOLD)
    out = fg.astype(np.uint8)
    if sample.ignore_path:
        ign = cv2.resize(load_mask(sample.ignore_path), (size, size), interpolation=cv2.INTER_NEAREST) > 0
        out[ign & ~fg] = 255
    return out


def gt_boxes(sample: Sample, size: int = SIZE) -> np.ndarray:
    """(K, 4) float64 GT boxes of ``sample`` on the size x size map: wsolevaluation's
    ``int(v * size / W)`` per coordinate (Python float arithmetic in that order, then
    truncation; as ``wsol.data.transforms.resize_boxes_wsoleval``, which pulls torch)."""
    b = np.asarray(sample.boxes, dtype=np.float64).reshape(-1, 4)
    W, H = sample.size
    return np.trunc(b * size / np.array([W, H, W, H], dtype=np.float64))


def evaluate_scoremaps(scoremaps: str | os.PathLike, metadata: str | os.PathLike,
                       mask_root: str | os.PathLike | None = None, image_root: str | os.PathLike | None = None,
                       cam_curve_interval: float = 0.01, batch_size: int = 128, progress: bool = True) -> dict:
    """MaxBoxAcc / MaxBoxAccV2 (and PxAP / mIoU when masks exist) for a folder of saved maps.

    Args:
        scoremaps: folder holding ``<image_id>.npy`` (the id keeps its folders and suffix,
            e.g. ``001.Black_footed_Albatross/x.jpg.npy``; ``<image_id without suffix>.npy`` also works).
        metadata: a wsolevaluation split folder (``.../test`` with image_ids.txt, ...).
        batch_size: maps scored per numba call; memory holds two batches (one being read).
        progress: show a progress bar (tqdm) on stderr.
    Raises:
        FileNotFoundError listing the missing maps; ValueError naming the file for a map that is
        not a .npy array, not 2-D, empty, or not real numbers.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    metadata = Path(metadata)
    split = read_wsoleval(metadata.parent, metadata.name, image_root=image_root, require_images=False,
                          mask_root=mask_root)
    paths = [_map_path(Path(scoremaps), s.image_id) for s in split.samples]
    missing = [s.image_id for s, p in zip(split.samples, paths) if p is None]
    if missing:
        raise FileNotFoundError(f"{scoremaps}: {len(missing)} score map(s) missing, e.g. "
                                f"{', '.join(m + '.npy' for m in missing[:5])}")
    has_boxes = all(s.boxes for s in split.samples)  # OpenImages-style metadata has masks only
    boxes = BoxEvaluator(cam_curve_interval=cam_curve_interval) if has_boxes else None
    masks = PxAPEvaluator(cam_curve_interval=cam_curve_interval) if split.has_masks else None
    nonfinite: list[str] = []
    jobs = list(zip(split.samples, paths))
    chunks = [jobs[i:i + batch_size] for i in range(0, len(jobs), batch_size)]
    bar = _progress(len(jobs), progress)
    load = partial(_load_batch, with_boxes=has_boxes, with_masks=masks is not None)
    # one thread reads batch k + 1 (its maps and masks over a few reader threads: PNG decoding and
    # cv2 release the GIL) while batch k is scored (numba releases the GIL too)
    with ThreadPoolExecutor(max_workers=1) as ahead, ThreadPoolExecutor(max_workers=_readers()) as readers:
        pending = ahead.submit(load, chunks[0], readers) if chunks else None
        for k in range(len(chunks)):
            maps, gts, gt_masks, bad = pending.result()
            pending = ahead.submit(load, chunks[k + 1], readers) if k + 1 < len(chunks) else None
            nonfinite += bad
            if boxes is not None:
                boxes.accumulate(maps, gts)
            if masks is not None:
                masks.accumulate(maps, gt_masks)
            bar.update(len(maps))
    bar.close()
    _warn_nonfinite(scoremaps, nonfinite)
    result = {"num_images": len(split), "cam_curve_interval": cam_curve_interval, "metadata": str(metadata),
              "scoremaps": str(scoremaps), "nonfinite_maps": len(nonfinite)}
    if boxes is not None:
        box = boxes.compute()
        result.update(MaxBoxAcc={"50": box["MaxBoxAcc"]["50"]}, MaxBoxAccV2=box["MaxBoxAccV2"],
                      best_threshold=box["best_threshold"])
    if masks is not None:
        m = masks.compute()
        result.update(PxAP=m["PxAP"], mIoU=m["mIoU"], mIoU_threshold=m["mIoU_threshold"])
    return result


def _load_batch(jobs: list[tuple[Sample, Path]], readers: ThreadPoolExecutor, with_boxes: bool, with_masks: bool):
    """Read and normalise the maps of ``jobs`` (and their GT masks) on ``readers``: ((B, 224, 224)
    float64 maps, B GT box arrays or None, (B, 224, 224) uint8 GT masks or None, ids of the maps
    holding NaN or Inf)."""
    maps = np.empty((len(jobs), SIZE, SIZE), np.float64)
    gt_masks = np.empty((len(jobs), SIZE, SIZE), np.uint8) if with_masks else None

    def read(i: int) -> bool:
        sample, path = jobs[i]
        raw = load_scoremap(path)
        maps[i] = normalize_scoremap(raw, (SIZE, SIZE))
        if with_masks:
            gt_masks[i] = gt_mask(sample)
        return bool(np.isfinite(raw).all())

    finite = list(readers.map(read, range(len(jobs))))
    nonfinite = [s.image_id for (s, _), ok in zip(jobs, finite) if not ok]
    gts = [gt_boxes(s) for s, _ in jobs] if with_boxes else None
    return maps, gts, gt_masks, nonfinite


def _readers() -> int:
    """Reader threads: the CPU cores this process may use, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


def _progress(total: int, enabled: bool):
    """A tqdm bar over ``total`` maps, or a stand-in with the same update / close."""
    if enabled:
        from tqdm import tqdm

        return tqdm(total=total, desc="scoring maps", unit="map")

    class _Quiet:
        def update(self, n):
            pass

        def close(self):
            pass

    return _Quiet()


def load_scoremap(path: Path) -> np.ndarray:
    """The (h, w) real-valued array saved at `path` (h, w >= 1); ValueError naming the file otherwise."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
        if head.startswith(b"PK"):
            raise ValueError("an .npz archive")
        if head != b"\x93NUMPY":
            raise ValueError("not a .npy file (no numpy header: a pickle, text or another format)")
        raw = np.load(path, allow_pickle=False)
    except ValueError as err:
        what = "holds Python objects (dtype object)" if "Object arrays" in str(err) else str(err)
        raise ValueError(f"{path}: {what}; expected one 2-D float array saved with np.save") from err
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: unreadable .npy file ({err})") from err
    return _checked_map(path, raw)


def _checked_map(path: Path, raw: np.ndarray) -> np.ndarray:
    if raw.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D score map, got shape {raw.shape}")
    if raw.size == 0:
        raise ValueError(f"{path}: empty score map (shape {raw.shape}); expected at least 1 x 1")
    if raw.dtype.kind not in "biuf":
        raise ValueError(f"{path}: expected real numbers, got dtype {raw.dtype}")
    return raw


def _warn_nonfinite(scoremaps, ids: list[str]) -> None:
    if ids:
        log.warning("%s: %d score map(s) hold NaN or Inf (%s%s); scored as wsolevaluation does (a NaN map "
                    "becomes all zeros: a miss); counted in nonfinite_maps", scoremaps, len(ids),
                    ", ".join(ids[:5]), ", ..." if len(ids) > 5 else "")


def _map_path(root: Path, image_id: str) -> Path | None:
    for cand in (root / f"{image_id}.npy", root / f"{Path(image_id).with_suffix('')}.npy"):
        if cand.is_file():
            return cand
    return None
