"""What the data set loaders share: the :class:`Dataset` they return and the checks of a user's
directory and error text."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError

__all__ = ["Dataset", "user_dir", "one_line"]


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


def user_dir(dataset: str, root: str | os.PathLike | None, layout: str) -> Path:
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


def one_line(text: object) -> str:
    """An exception's text folded onto one line, for the 'because ...' part of a message."""
    return " ".join(str(text).split()) or type(text).__name__
