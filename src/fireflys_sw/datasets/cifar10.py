"""CIFAR-10: ``cifar-10-batches-py`` (python pickles of uint8 arrays)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..limits import MAX_DATASET_BYTES
from .base import Dataset, one_line, user_dir

__all__ = ["load_cifar10"]


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
    """One CIFAR-10 batch file as ``(N, 3, 32, 32)`` uint8 images and int64 labels.

    The pickle is read by :class:`_ArrayUnpickler` (numpy arrays and plain containers only, no
    code), from a file of at most :data:`~fireflys_sw.limits.MAX_DATASET_BYTES`; ``b'labels'``
    must be a list or an integer array of exactly one entry per image, checked before it is
    converted (an array of zero-size elements can claim 10**9 entries in a few bytes)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError as e:
        raise DatasetError(f"cifar10: missing batch {str(path)!r} "
                           f"(expected {_CIFAR_LAYOUT})") from e
    except OSError as e:
        raise DatasetError(f"cifar10: {str(path)!r} cannot be read ({one_line(e)})") from e
    if size > MAX_DATASET_BYTES:
        raise DatasetError(f"cifar10: {str(path)!r} is {size} bytes, more than the limit of "
                           f"{MAX_DATASET_BYTES}")
    try:
        with path.open("rb") as f:
            # encoding="bytes": the batches were pickled by Python 2, so keys come back as bytes.
            batch = _ArrayUnpickler(f, encoding="bytes").load()
    except FileNotFoundError as e:
        raise DatasetError(f"cifar10: missing batch {str(path)!r} "
                           f"(expected {_CIFAR_LAYOUT})") from e
    except Exception as e:  # noqa: BLE001 - unpickling a bad file can raise almost anything
        raise DatasetError(f"cifar10: {str(path)!r} is not a readable CIFAR-10 batch "
                           f"({one_line(e)}; expected {_CIFAR_LAYOUT})") from e
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DatasetError(f"cifar10: {str(path)!r} is not a CIFAR-10 batch: expected a dict "
                           f"with b'data' and b'labels' ({_CIFAR_LAYOUT})")
    data, labels = batch[b"data"], batch[b"labels"]
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
            or data.shape[1] != 3072):
        shape = list(getattr(data, "shape", [])) or type(data).__name__
        raise DatasetError(f"cifar10: b'data' in {str(path)!r} is {shape}, expected a uint8 "
                           f"[N, 3072] array (1024 red, 1024 green, 1024 blue per row)")
    bad = DatasetError(f"cifar10: b'labels' in {str(path)!r} must be {len(data)} integers in "
                       f"0..9 to match b'data'")
    if isinstance(labels, np.ndarray):
        if labels.dtype.kind not in "iu" or labels.shape != (len(data),):
            raise bad
    elif not isinstance(labels, (list, tuple)) or len(labels) != len(data) or \
            not all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
        raise bad
    try:
        labels = np.asarray(labels).astype(np.int64)
    except (TypeError, ValueError, OverflowError) as e:
        raise bad from e
    if labels.shape != (len(data),) or (len(labels) and (labels.min() < 0 or labels.max() > 9)):
        raise DatasetError(f"cifar10: b'labels' in {str(path)!r} must be {len(data)} integers "
                           f"in 0..9 to match b'data'")
    # Each row is three 32x32 planes (R, G, B), row-major: exactly C, H, W order.
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(root: str | os.PathLike | None) -> Dataset:
    """CIFAR-10 (50,000 train / 10,000 test) from the python-pickle batches in ``root``
    (``root`` may be ``cifar-10-batches-py`` itself or its parent)."""
    path = user_dir("cifar10", root, _CIFAR_LAYOUT)
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
