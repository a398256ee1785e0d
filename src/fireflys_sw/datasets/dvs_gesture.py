"""IBM DvsGesture: AEDAT 3.1 event recordings with their label tables, integrated into frames
as SpikingJelly does (and cached)."""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DatasetError
from ..limits import MAX_DATASET_BYTES
from ..npzfile import NpzFile
from .base import Dataset, one_line, user_dir

__all__ = ["read_aedat31", "integrate_frames", "load_dvs_gesture"]


_DVS_LAYOUT = ("DvsGesture/user*_*.aedat (AEDAT 3.1) with user*_*_labels.csv, "
               "trials_to_train.txt and trials_to_test.txt")
_DVS_SENSOR = 128        # the DVS128 is 128 x 128 pixels
_DVS_SIZE = 48           # frames are binned down to 48 x 48
_DVS_CLASSES = 11
_AEDAT_END_HEADER = b"#!END-HEADER\r\n"
_AEDAT_PACKET = struct.Struct("<hhiiiiii")   # the 28-byte packet header
_POLARITY_EVENT = 1
_CACHE_VERSION = 2   # 2: the key as uint8 bytes, read by the strict .npz reader


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
        raise DatasetError(f"dvs-gesture: cannot read {str(path)!r}: {one_line(e)}") from e
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
                           f"({one_line(e)}; expected a header line and rows of "
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
        raise DatasetError(f"dvs-gesture: cannot read {str(path)!r}: {one_line(e)}") from e
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


#: The frame cache's arrays and their dtypes.
_CACHE_ARRAYS = {"train_x": np.uint8, "train_y": np.int64, "test_x": np.uint8,
                 "test_y": np.int64}


def _read_cache(path: Path, key: str) -> dict | None:
    """The cached arrays if ``path`` holds ``key``, None for another key; read by
    :class:`~fireflys_sw.npzfile.NpzFile` (no pickle, sizes bounded by
    :data:`~fireflys_sw.limits.MAX_DATASET_BYTES` before anything is allocated): a damaged or
    hostile cache is a :class:`DatasetError`, and the caller rebuilds it."""
    if not path.is_file():
        return None
    with NpzFile(path, DatasetError, f"dvs-gesture: frame cache {str(path)!r}",
                 max_file_bytes=MAX_DATASET_BYTES, max_data_bytes=MAX_DATASET_BYTES,
                 max_dims=5) as npz:
        if "key" not in npz.names or npz.read_bytes("key", "key", 256).decode("ascii",
                                                                          "replace") != key:
            return None
        out = {}
        for name, dtype in _CACHE_ARRAYS.items():
            if name not in npz.names:
                raise npz.fail(f"{name} is missing")
            out[name] = npz.read_array(name, name, dtype, MAX_DATASET_BYTES)
    for split in ("train", "test"):
        x, y = out[f"{split}_x"], out[f"{split}_y"]
        if x.ndim != 5 or x.shape[2:] != (2, _DVS_SIZE, _DVS_SIZE) or y.shape != x.shape[:1] \
                or (len(y) and (y.min() < 0 or y.max() >= _DVS_CLASSES)):
            raise DatasetError(f"dvs-gesture: frame cache {str(path)!r} has {split} arrays of "
                               f"shapes {list(x.shape)} and {list(y.shape)}")
    return out


def _cached(path: Path, key: str, build: Callable[[], dict]) -> dict:
    """The arrays in the cache file ``path`` if its key matches, else ``build()`` (saved to
    ``path`` when its directory is writable; a read-only data directory just goes uncached)."""
    try:
        arrays = _read_cache(path, key)
        if arrays is not None:
            return arrays
    except DatasetError:
        pass  # no cache, an old or a damaged one: rebuild it
    arrays = build()
    try:
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez_compressed(f, key=np.frombuffer(key.encode(), np.uint8), **arrays)
            # Rename into place so that a reader never sees a half-written cache.
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass  # not writable: caching is only an optimisation
    return arrays


def load_dvs_gesture(root: str | os.PathLike | None, T: int) -> Dataset:
    """IBM DvsGesture as ``(N, T, 2, 48, 48)`` event-count frames, 11 classes.

    ``root`` is the ``DvsGesture`` directory or its parent. Each labelled segment of each
    recording is one sample (see :func:`integrate_frames`); the train and test recordings are
    those listed in ``trials_to_train.txt`` and ``trials_to_test.txt``. The frames are cached
    in ``fireflys-frames-T<T>.npz`` in that directory when it is writable.
    """
    path = user_dir("dvs-gesture", root, _DVS_LAYOUT)
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
