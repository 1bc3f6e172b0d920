"""Readers for the classification datasets of the robustness evaluation, and one torch dataset.

One module per format (:mod:`.cifar`, :mod:`.svhn`, :mod:`.gtsrb`, :mod:`.flowers`), the shared
split type and checks in :mod:`.base`, the torch dataset in :mod:`.dataset`; everything is
imported from here.

Every reader takes a dataset root as users download it and returns a
:class:`ClassificationSplit`; :class:`ClassificationDataset` turns any split into items
``{"image": float32 (3,S,S) in [0,1], "label", "index", "image_id"}``.

| reader              | layout under ``root``                                                   | images     |
|---------------------|-------------------------------------------------------------------------|------------|
| :func:`read_cifar10`  | ``cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}``       | in memory  |
| :func:`read_cifar10c` | ``CIFAR-10-C/<corruption>.npy`` + ``labels.npy`` (Zenodo 2535967)        | in memory  |
| :func:`read_svhn`     | ``{train,test,extra}_32x32.mat`` (format 2, cropped digits)             | in memory  |
| :func:`read_gtsrb`    | ``Final_Training/Images/000NN/GT-000NN.csv``, ``Final_Test/Images`` + ``GT-final_test.csv`` | files |
| :func:`read_flowers17`  | ``jpg/image_0001.jpg..``, ``datasplits.mat``                          | files      |
| :func:`read_flowers102` | ``jpg/image_00001.jpg..``, ``imagelabels.mat``, ``setid.mat``         | files      |

Every format problem raises :class:`DatasetFormatError` naming the file (and the line, for
text files) and what was expected. Image files are decoded lazily by the dataset with
:func:`wsol.data.images.load_rgb`, which raises ``ImageLoadError`` naming the file.
"""

from .base import ClassificationSplit, DatasetFormatError
from .cifar import (
    CIFAR10_CLASSES,
    CIFAR10C_ART2020,
    CIFAR10C_BENCHMARK,
    CIFAR10C_CORRUPTIONS,
    CIFAR10C_RECORD,
    CIFAR10C_SEVERITIES,
    available_cifar10c,
    read_cifar10,
    read_cifar10c,
)
from .dataset import ClassificationDataset, collate_classification
from .flowers import read_flowers17, read_flowers102
from .gtsrb import GTSRB_NUM_CLASSES, read_gtsrb
from .svhn import read_svhn

__all__ = [
    "DatasetFormatError",
    "ClassificationSplit",
    "ClassificationDataset",
    "collate_classification",
    "read_cifar10",
    "read_cifar10c",
    "available_cifar10c",
    "read_svhn",
    "read_gtsrb",
    "read_flowers17",
    "read_flowers102",
    "CIFAR10_CLASSES",
    "CIFAR10C_CORRUPTIONS",
    "CIFAR10C_BENCHMARK",
    "CIFAR10C_ART2020",
    "CIFAR10C_RECORD",
    "CIFAR10C_SEVERITIES",
    "GTSRB_NUM_CLASSES",
]
