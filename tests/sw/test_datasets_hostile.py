"""Hostile data set files, written by the tests: each is refused with one DatasetError line,
before anything large is allocated or decompressed (issue 16): IDX dimensions whose product
overflows, gzip bombs (decompression stops at the size the header promises), CIFAR pickles that
name code or claim 10**9 labels in a few bytes, and a damaged or hostile frame cache."""

from __future__ import annotations

import gzip
import pickle
import struct
import time
import zlib

import numpy as np
import pytest

from fireflys_sw.datasets import read_idx
from fireflys_sw.datasets.cifar10 import _read_cifar_batch
from fireflys_sw.datasets.dvs_gesture import _cached, _read_cache
from fireflys_sw.errors import DatasetError
from fireflys_sw.limits import MAX_DATASET_BYTES


def one_line(pattern: str, fn, *args) -> str:
    with pytest.raises(DatasetError, match=pattern) as info:
        fn(*args)
    assert "\n" not in str(info.value)
    return str(info.value)


def idx_header(dims, type_code=0x08) -> bytes:
    return bytes([0, 0, type_code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_dimensions_whose_product_overflows(tmp_path, gz):
    # (2**32 - 1)**3 * 8 bytes: beyond int64; refused from the header alone
    path = tmp_path / ("x.idx.gz" if gz else "x.idx")
    raw = idx_header([2**32 - 1] * 3, 0x0E) + b"\0" * 64
    path.write_bytes(gzip.compress(raw) if gz else raw)
    one_line(rf"^IDX file .* claims shape \[4294967295, 4294967295, 4294967295\] of float64, "
             rf"\d+ bytes, more than the limit of {MAX_DATASET_BYTES}$", read_idx, path)


def test_idx_too_many_dimensions(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(bytes([0, 0, 8, 200]) + b"\0" * 800)
    one_line(r"^IDX file .* has a bad magic number 000008c8", read_idx, path)


def test_gzip_bomb_stops_at_the_promised_size(tmp_path, monkeypatch):
    # a header promising 784 bytes, then 64 MiB of zeros (64 kB compressed): read 785 bytes
    path = tmp_path / "train-images-idx3-ubyte.gz"
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    body = [compressor.compress(idx_header([1, 28, 28]))]
    zeros = b"\0" * (1 << 20)
    body += [compressor.compress(zeros) for _ in range(64)]
    path.write_bytes(b"".join(body) + compressor.flush())
    assert path.stat().st_size < 200_000
    seen = []
    real_read = gzip.GzipFile.read

    def counting_read(self, size=-1):
        data = real_read(self, size)
        seen.append(len(data))
        return data
    monkeypatch.setattr(gzip.GzipFile, "read", counting_read)
    start = time.perf_counter()
    one_line(r"^IDX file .* is longer than its header says: more than 800 bytes, expected 800 "
             r"for shape \[1, 28, 28\] of uint8 \(decompressed\)$", read_idx, path)
    assert sum(seen) <= 801 and time.perf_counter() - start < 30   # loose for busy CI


def test_gzip_bomb_claiming_too_much_is_refused_from_its_header(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_header([70000, 256, 256])))
    one_line(rf"claims shape \[70000, 256, 256\] of uint8, 4587520000 bytes, more than the "
             rf"limit of {MAX_DATASET_BYTES}$", read_idx, path)


def cifar(tmp_path, batch, protocol=pickle.DEFAULT_PROTOCOL):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=protocol) if not isinstance(batch, bytes)
                     else batch)
    return path


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("touch pwned",))


def test_cifar_pickle_naming_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = cifar(tmp_path, {b"data": np.zeros((1, 3072), np.uint8), b"labels": _Evil()})
    one_line(r"^cifar10: .* is not a readable CIFAR-10 batch \(refusing to load "
             r"(posix|os)\.system", _read_cifar_batch, path)
    assert not (tmp_path / "pwned").exists()


def test_cifar_labels_of_zero_size_elements_are_refused(tmp_path):
    # a 6 kB pickle whose labels array claims 10**9 entries (itemsize 0): refused before the
    # conversion that would allocate 8 GB
    labels = np.empty(10**9, dtype=[])
    path = cifar(tmp_path, {b"data": np.zeros((2, 3072), np.uint8), b"labels": labels})
    assert path.stat().st_size < 10_000
    one_line(r"^cifar10: b'labels' in .* must be 2 integers in 0\.\.9 to match b'data'$",
             _read_cifar_batch, path)


@pytest.mark.parametrize("labels", [[0] * 3, [0, 1.5], [0, 2**70], [0, True], "ab",
                                    np.zeros(2, object), np.zeros((2, 1), np.int64), [0, 10]])
def test_cifar_labels_must_match_the_data(tmp_path, labels):
    path = cifar(tmp_path, {b"data": np.zeros((2, 3072), np.uint8), b"labels": labels})
    one_line(r"^cifar10: .*(must be 2 integers in 0\.\.9|not a readable)", _read_cifar_batch,
             path)


def test_cifar_valid_batch_still_reads(tmp_path):
    path = cifar(tmp_path, {b"data": np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072),
                            b"labels": [3, 9]}, protocol=2)
    x, y = _read_cifar_batch(path)
    assert x.shape == (2, 3, 32, 32) and y.tolist() == [3, 9]


def _frames(n=2, T=2):
    rng = np.random.default_rng(0)
    return {"train_x": rng.integers(0, 5, (n, T, 2, 48, 48), dtype=np.uint8),
            "train_y": np.arange(n, dtype=np.int64), "test_x": np.zeros((1, T, 2, 48, 48),
                                                                         np.uint8),
            "test_y": np.zeros(1, np.int64)}


def test_frame_cache_round_trip_and_key(tmp_path):
    path = tmp_path / "fireflys-frames-T2.npz"
    arrays = _frames()
    out = _cached(path, "k1", lambda: arrays)
    assert path.is_file()
    again = _cached(path, "k1", lambda: pytest.fail("rebuilt a valid cache"))
    assert all(np.array_equal(again[k], out[k]) and again[k].dtype == out[k].dtype
               for k in out)
    assert _read_cache(path, "k2") is None


@pytest.mark.parametrize("hostile", ["pickle", "huge", "not a zip", "wrong dtype"])
def test_hostile_frame_cache_is_refused_then_rebuilt(tmp_path, hostile):
    path = tmp_path / "fireflys-frames-T2.npz"
    key = np.frombuffer(b"k1", np.uint8)
    if hostile == "pickle":
        np.savez(path, key=key, train_x=np.array([_Evil()], object), **{
            k: v for k, v in _frames().items() if k != "train_x"})
    elif hostile == "huge":
        # a .npy header claiming 10**12 uint8 elements in a small member
        header = b"{'descr': '|u1', 'fortran_order': False, 'shape': (1000000000000,), }"
        header += b" " * (118 - len(header)) + b"\n"
        import zipfile
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("key.npy", _npy(key))
            z.writestr("train_x.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header))
                       + header + b"\0" * 16)
    elif hostile == "not a zip":
        path.write_bytes(b"PK\x05\x06" + b"\xff" * 100)
    else:
        np.savez(path, key=key, **dict(_frames(), train_x=np.zeros((2, 2, 2, 48, 48),
                                                                     np.float32)))
    message = one_line(r"^dvs-gesture: frame cache ", _read_cache, path, "k1")
    assert len(message) < 400
    arrays = _frames()
    out = _cached(path, "k1", lambda: arrays)
    assert out is arrays and _read_cache(path, "k1") is not None


def _npy(array):
    import io
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
