"""Robustness-dataset readers: tiny files in each real format, written by the tests themselves.

All pixels and labels here are synthetic (random or hand-set); only the file formats are real.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from wsol.data.images import ImageLoadError
from wsol.data.robustness import (
    CIFAR10C_ART2020,
    CIFAR10C_BENCHMARK,
    CIFAR10C_CORRUPTIONS,
    ClassificationDataset,
    ClassificationSplit,
    DatasetFormatError,
    available_cifar10c,
    collate_classification,
    read_cifar10,
    read_cifar10c,
    read_flowers17,
    read_flowers102,
    read_gtsrb,
    read_svhn,
)

# --------------------------------------------------------------------------- writers


def _cifar_batch(path: Path, data: np.ndarray, labels) -> None:
    with open(path, "wb") as fh:
        pickle.dump({b"batch_label": b"x", b"data": data, b"labels": list(labels)}, fh, protocol=2)


def write_cifar(root: Path, n: int = 4, seed: int = 0) -> Path:
    """cifar-10-batches-py/ with n images per batch; returns the folder."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        _cifar_batch(folder / name, rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n))
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": names, b"num_vis": 3072}, fh, protocol=2)
    return folder


def write_ppm(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PPM")


HEADER = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"


def write_gtsrb(root: Path, rng) -> dict:
    """2 classes x 2 train images, 2 test images; returns {relative path: pixels}."""
    pixels = {}
    for c in (0, 1):
        folder = root / "Final_Training" / "Images" / f"{c:05d}"
        lines = [HEADER]
        for k in range(2):
            name = f"00000_{k:05d}.ppm"
            img = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
            write_ppm(folder / name, img)
            pixels[f"Final_Training/Images/{c:05d}/{name}"] = img
            lines.append(f"{name};12;10;1;2;10;8;{c}")
        (folder / f"GT-{c:05d}.csv").write_text("\n".join(lines) + "\n")
    lines = [HEADER]
    for k, c in enumerate((1, 0)):
        img = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
        write_ppm(root / "Final_Test" / "Images" / f"{k:05d}.ppm", img)
        pixels[f"Final_Test/Images/{k:05d}.ppm"] = img
        lines.append(f"{k:05d}.ppm;11;9;1;1;9;7;{c}")
    (root / "Final_Test" / "GT-final_test.csv").write_text("\r\n".join(lines) + "\r\n")
    return pixels


def write_jpgs(root: Path, names) -> None:
    (root / "jpg").mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(np.full((8, 10, 3), 120, np.uint8)).save(root / "jpg" / name)


def write_cifar10c(root: Path, n: int = 2) -> np.ndarray:
    """gaussian_noise.npy with 5 blocks of n images; block s (1-based) has pixel value 10*s + i."""
    root.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((5 * n, 32, 32, 3), np.uint8)
    for s in range(5):
        for i in range(n):
            arr[s * n + i] = 10 * (s + 1) + i
    np.save(root / "gaussian_noise.npy", arr)
    np.save(root / "labels.npy", np.tile(np.arange(n, dtype=np.uint8) + 3, 5))
    return arr


# --------------------------------------------------------------------------- CIFAR-10


def test_cifar10_planes_become_hwc_pixels(tmp_path):
    folder = write_cifar(tmp_path)
    data = np.zeros((4, 3072), np.uint8)
    data[1, 0 * 1024 + 5 * 32 + 7] = 11  # R plane, row 5, column 7
    data[1, 1 * 1024 + 5 * 32 + 7] = 22  # G
    data[1, 2 * 1024 + 5 * 32 + 7] = 33  # B
    _cifar_batch(folder / "test_batch", data, [9, 0, 3, 1])
    split = read_cifar10(tmp_path, "test")  # the parent folder works too
    assert split.name == "cifar10/test" and split.in_memory
    assert split.images.shape == (4, 32, 32, 3) and split.images.dtype == np.uint8
    assert split.images[1, 5, 7].tolist() == [11, 22, 33]
    assert split.images[1].sum() == 66
    assert split.labels.dtype == np.int64 and split.labels.tolist() == [9, 0, 3, 1]
    assert split.class_names[0] == "airplane" and len(split.class_names) == 10
    train = read_cifar10(folder, "train")
    assert train.images.shape == (20, 32, 32, 3) and len(train) == 20


def test_cifar10_bad_input(tmp_path):
    folder = write_cifar(tmp_path)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DatasetFormatError, match="data_batch_3"):
        read_cifar10(tmp_path, "train")
    _cifar_batch(folder / "test_batch", np.zeros((4, 3000), np.uint8), [0, 1, 2, 3])
    with pytest.raises(DatasetFormatError, match=r"test_batch.*\(N, 3072\)"):
        read_cifar10(folder, "test")
    _cifar_batch(folder / "test_batch", np.zeros((4, 3072), np.uint8), [0, 1, 10, 3])
    with pytest.raises(DatasetFormatError, match=r"test_batch.*0\.\.9.*10"):
        read_cifar10(folder, "test")
    _cifar_batch(folder / "test_batch", np.zeros((4, 3072), np.uint8), [0, 1, 2])
    with pytest.raises(DatasetFormatError, match="test_batch: 3 labels for 4 images"):
        read_cifar10(folder, "test")
    (folder / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DatasetFormatError, match="test_batch: not a CIFAR-10 python pickle"):
        read_cifar10(folder, "test")


# --------------------------------------------------------------------------- SVHN


def test_svhn_layout_and_label_10_is_digit_0(tmp_path):
    X = np.random.default_rng(1).integers(0, 256, (32, 32, 3, 3), dtype=np.uint8)
    savemat(tmp_path / "test_32x32.mat", {"X": X, "y": np.array([[10], [1], [5]], np.uint8)})
    split = read_svhn(tmp_path, "test")
    assert split.name == "svhn/test" and split.images.shape == (3, 32, 32, 3)
    assert np.array_equal(split.images[2], X[..., 2])
    assert split.labels.tolist() == [0, 1, 5] and split.class_names[0] == "0"


def test_svhn_bad_input(tmp_path):
    with pytest.raises(DatasetFormatError, match="train_32x32.mat: file not found"):
        read_svhn(tmp_path, "train")
    path = tmp_path / "test_32x32.mat"
    X = np.zeros((32, 32, 3, 2), np.uint8)
    savemat(path, {"X": X, "y": np.array([[3], [11]])})
    with pytest.raises(DatasetFormatError, match=r"test_32x32\.mat.*1\.\.10.*11"):
        read_svhn(tmp_path)
    savemat(path, {"X": X, "labels": np.array([[3], [1]])})
    with pytest.raises(DatasetFormatError, match=r"test_32x32\.mat: missing key.*'y'"):
        read_svhn(tmp_path)
    savemat(path, {"X": np.zeros((32, 32, 2), np.uint8), "y": np.array([[3], [1]])})
    with pytest.raises(DatasetFormatError, match=r"test_32x32\.mat: 'X' must have shape"):
        read_svhn(tmp_path)


# --------------------------------------------------------------------------- GTSRB


def test_gtsrb_train_and_test(tmp_path):
    pixels = write_gtsrb(tmp_path / "GTSRB", np.random.default_rng(2))
    train = read_gtsrb(tmp_path, "train")  # finds the GTSRB/ subfolder
    assert train.name == "gtsrb/train" and len(train.class_names) == 43
    assert train.labels.tolist() == [0, 0, 1, 1]
    assert train.boxes.tolist() == [[1, 2, 10, 8]] * 4
    assert train.image_ids[2] == "Final_Training/Images/00001/00000_00000.ppm"
    test = read_gtsrb(tmp_path / "GTSRB", "test")  # GT-final_test.csv in Final_Test/, CRLF lines
    assert test.labels.tolist() == [1, 0] and test.boxes[0].tolist() == [1, 1, 9, 7]
    item = ClassificationDataset(test)[1]
    assert item["image_id"] == "Final_Test/Images/00001.ppm" and item["label"] == 0
    expected = torch.from_numpy(pixels["Final_Test/Images/00001.ppm"]).permute(2, 0, 1).float() / 255
    assert torch.equal(item["image"], expected)


def test_gtsrb_bad_input(tmp_path):
    write_gtsrb(tmp_path, np.random.default_rng(3))
    csv = tmp_path / "Final_Training" / "Images" / "00001" / "GT-00001.csv"
    good = csv.read_text()
    csv.write_text(good.replace("00000_00001.ppm;12;10;1;2;10;8;1", "00000_00001.ppm;12;10;1;2;10;1"))
    with pytest.raises(DatasetFormatError, match=r"GT-00001\.csv:3: expected 8 fields"):
        read_gtsrb(tmp_path, "train")
    csv.write_text(good.replace("00000_00001.ppm;12;10;1;2;10;8;1", "00000_00001.ppm;12;10;1;2;10;8;0"))
    with pytest.raises(DatasetFormatError, match=r"GT-00001\.csv:3: ClassId 0 disagrees with its folder 00001"):
        read_gtsrb(tmp_path, "train")
    csv.write_text(good.replace("00000_00001.ppm", "missing.ppm"))
    with pytest.raises(DatasetFormatError, match=r"GT-00001\.csv:3: image file .*missing\.ppm not found"):
        read_gtsrb(tmp_path, "train")
    gt = tmp_path / "Final_Test" / "GT-final_test.csv"
    gt.write_bytes(gt.read_bytes().replace(b";0\r\n", b";43\r\n"))
    with pytest.raises(DatasetFormatError, match=r"GT-final_test\.csv:3: ClassId 43 is outside 0\.\.42"):
        read_gtsrb(tmp_path, "test")
    gt.unlink()
    with pytest.raises(DatasetFormatError, match="GT-final_test.csv .*not found"):
        read_gtsrb(tmp_path, "test")


# --------------------------------------------------------------------------- flowers


def _flowers17_splits(**override):
    keys = {f"{p}{f}": np.array([[1, 81, 1360]]) for p in ("trn", "val", "tst") for f in (1, 2, 3)}
    keys["tst2"] = np.array([[2, 161]])
    keys.update(override)
    return keys


def test_flowers17(tmp_path):
    write_jpgs(tmp_path, ["image_0001.jpg", "image_0002.jpg", "image_0081.jpg", "image_0161.jpg", "image_1360.jpg"])
    savemat(tmp_path / "datasplits.mat", _flowers17_splits())
    split = read_flowers17(tmp_path, "test", fold=2)
    assert split.name == "flowers17/test2" and split.labels.tolist() == [0, 2]
    assert split.image_ids == ["jpg/image_0002.jpg", "jpg/image_0161.jpg"]
    assert read_flowers17(tmp_path, "train").labels.tolist() == [0, 1, 16]
    item = ClassificationDataset(split, image_size=16)[1]
    assert item["image"].shape == (3, 16, 16) and item["label"] == 2


def test_flowers17_bad_input(tmp_path):
    write_jpgs(tmp_path, ["image_0001.jpg", "image_0081.jpg"])
    savemat(tmp_path / "datasplits.mat", _flowers17_splits(trn1=np.array([[1, 1361]])))
    with pytest.raises(DatasetFormatError, match=r"datasplits\.mat.*'trn1'.*1\.\.1360.*1361"):
        read_flowers17(tmp_path, "train")
    with pytest.raises(DatasetFormatError, match=r"image_1360\.jpg: image file not found"):
        read_flowers17(tmp_path, "val")
    savemat(tmp_path / "datasplits.mat", {"trn1": np.array([[1]])})
    with pytest.raises(DatasetFormatError, match=r"datasplits\.mat: missing key.*tst3"):
        read_flowers17(tmp_path, "test", fold=3)


def test_flowers102(tmp_path):
    write_jpgs(tmp_path, [f"image_{i:05d}.jpg" for i in range(1, 6)])
    savemat(tmp_path / "imagelabels.mat", {"labels": np.array([[3, 1, 102, 2, 5]], np.uint8)})
    savemat(tmp_path / "setid.mat", {"trnid": np.array([[1, 2]]), "valid": np.array([[3]]),
                                     "tstid": np.array([[4, 5]])})
    split = read_flowers102(tmp_path, "test")
    assert split.labels.tolist() == [1, 4] and len(split.class_names) == 102
    assert read_flowers102(tmp_path, "val").labels.tolist() == [101]
    savemat(tmp_path / "setid.mat", {"trnid": np.array([[1, 6]]), "valid": [[3]], "tstid": [[4]]})
    with pytest.raises(DatasetFormatError, match=r"setid\.mat.*'trnid'.*1\.\.5.*6"):
        read_flowers102(tmp_path, "train")
    savemat(tmp_path / "imagelabels.mat", {"labels": np.array([[3, 1, 103, 2, 5]])})
    with pytest.raises(DatasetFormatError, match=r"imagelabels\.mat.*1\.\.102.*103"):
        read_flowers102(tmp_path, "test")


# --------------------------------------------------------------------------- CIFAR-10-C


def test_cifar10c_constants():
    assert len(CIFAR10C_CORRUPTIONS) == 19 and len(set(CIFAR10C_CORRUPTIONS)) == 19
    assert CIFAR10C_BENCHMARK == CIFAR10C_CORRUPTIONS[:15] and "frost" in CIFAR10C_BENCHMARK
    assert len(CIFAR10C_ART2020) == 15 and set(CIFAR10C_ART2020) <= set(CIFAR10C_CORRUPTIONS)
    assert "speckle_noise" in CIFAR10C_ART2020 and "frost" not in CIFAR10C_ART2020


def test_cifar10c_severity_block(tmp_path):
    write_cifar10c(tmp_path)
    split = read_cifar10c(tmp_path, "gaussian_noise", 3)
    assert split.name == "cifar10c/gaussian_noise/3" and split.images.shape == (2, 32, 32, 3)
    assert type(split.images) is np.ndarray and split.images.flags.writeable
    assert split.images[0].min() == split.images[0].max() == 30 and split.images[1].max() == 31
    assert split.labels.tolist() == [3, 4]
    assert available_cifar10c(tmp_path) == ["gaussian_noise"]


def test_cifar10c_bad_input(tmp_path):
    write_cifar10c(tmp_path)
    with pytest.raises(ValueError, match="gaussian_noise.*saturate"):
        read_cifar10c(tmp_path, "gaussian-noise", 1)
    with pytest.raises(ValueError, match="severity"):
        read_cifar10c(tmp_path, "gaussian_noise", 6)
    with pytest.raises(DatasetFormatError, match=r"frost\.npy: file not found.*2535967"):
        read_cifar10c(tmp_path, "frost", 1)
    np.save(tmp_path / "fog.npy", np.zeros((10, 32, 32), np.uint8))
    with pytest.raises(DatasetFormatError, match=r"fog\.npy: expected uint8"):
        read_cifar10c(tmp_path, "fog", 1)
    np.save(tmp_path / "labels.npy", np.zeros(8, np.int64))
    with pytest.raises(DatasetFormatError, match=r"labels\.npy: expected integer labels of shape \(10,\)"):
        read_cifar10c(tmp_path, "gaussian_noise", 1)


# --------------------------------------------------------------------------- torch dataset


def _unique_split(n: int = 3) -> ClassificationSplit:
    """In-memory 8x8 images whose pixels differ within an image (to trace the augmentation)."""
    base = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)
    images = np.stack([base + i for i in range(n)])
    return ClassificationSplit("toy/test", images, np.arange(n) % 2, ["a", "b"])


def test_dataset_items_and_collate():
    split = _unique_split()
    ds = ClassificationDataset(split)
    item = ds[2]
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 8, 8)
    assert torch.equal(item["image"], torch.from_numpy(split.images[2]).permute(2, 0, 1).float() / 255)
    assert (item["label"], item["index"], item["image_id"]) == (0, 2, "toy/test/2")
    resized = ClassificationDataset(split, image_size=12)[0]["image"]
    assert resized.shape == (3, 12, 12) and 0 <= resized.min() and resized.max() <= 1
    batch = collate_classification([ds[i] for i in range(3)])
    assert batch["image"].shape == (3, 3, 8, 8) and batch["label"].tolist() == [0, 1, 0]
    assert batch["index"].dtype == torch.long and batch["image_id"] == ["toy/test/0", "toy/test/1", "toy/test/2"]


def test_train_augmentation_is_seeded_and_keeps_shape():
    split = _unique_split()
    ds = ClassificationDataset(split, train=True)

    def run(seed):
        ds.set_seed(seed)
        return torch.stack([ds[i]["image"] for i in range(3) for _ in range(4)])

    a, b = run(5), run(5)
    assert a.shape == (12, 3, 8, 8) and torch.equal(a, b)
    assert not torch.equal(a, run(6))
    plain = torch.stack([ClassificationDataset(split)[i]["image"] for i in range(3) for _ in range(4)])
    assert not torch.equal(a, plain)
    for k in range(12):  # reflect padding + crop + flip only move pixels: no new values
        assert set(a[k].flatten().tolist()) <= set(plain[k].flatten().tolist())


def test_file_split_needs_image_size_for_training_and_reports_bad_files(tmp_path):
    split = ClassificationSplit("files/test", [str(tmp_path / "gone.png")], [0], ["a"])
    with pytest.raises(ValueError, match="needs image_size"):
        ClassificationDataset(split, train=True)
    with pytest.raises(ImageLoadError, match="gone.png"):
        ClassificationDataset(split, image_size=8, train=True)[0]
