"""A strict reader of ``.npz`` files (a zip of ``.npy`` arrays) that cannot be made to run code,
allocate without bound, or fail with anything but the caller's one-line error.

Why not ``np.load``: it hands a member without the ``.npy`` magic back as bytes, parses the
``.npy`` header with Python's tokenizer (``tokenize.TokenError``, ``TypeError`` on a ``b'descr'``
key), allocates the shape a header claims before reading the data (a 2.5 kB file can claim
``(10**12,)``), and lets ``zlib.error`` / ``NotImplementedError`` from the zip layer through.

Here, before anything is allocated:

* the file must be a regular file of at most :data:`~fireflys_sw.limits.MAX_FILE_BYTES`; its zip
  end record is read first, and a central directory of more than
  :data:`~fireflys_sw.limits.MAX_ZIP_DIRECTORY_BYTES` or
  :data:`~fireflys_sw.limits.MAX_MEMBERS` members (or a zip64 archive) is refused;
* a member is read only when the caller asks for it by name, so an unused member is never
  decompressed; it must be stored or deflated (zip methods 0 and 8) and not encrypted;
* its ``.npy`` header (format 1.0, 2.0 or 3.0, at most
  :data:`~fireflys_sw.limits.MAX_NPY_HEADER_BYTES`) is parsed by a small strict parser of exactly
  ``{'descr': '<i8', 'fortran_order': False, 'shape': (3,)}`` (no ``eval``, no tokenizer, no
  recursion); only integer dtypes of 1, 2, 4 or 8 bytes are accepted;
* the element count the shape claims is checked against the caller's bound, and the member's
  declared uncompressed size must equal header + data exactly, before the data is read; the data
  of all members together is bounded by :data:`~fireflys_sw.limits.MAX_DATA_BYTES`.

Every failure is raised as the caller's :class:`~fireflys_sw.errors.FireflysError` subclass with
one line naming the file, the member (or field) and the rule broken.
"""

from __future__ import annotations

import os
import re
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import FireflysError
from .limits import (MAX_DATA_BYTES, MAX_FILE_BYTES, MAX_MEMBERS, MAX_NPY_HEADER_BYTES,
                     MAX_ZIP_DIRECTORY_BYTES)

__all__ = ["NpzFile", "parse_npy_header"]

_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_ZIP64_LOCATOR = b"PK\x06\x07"
_NPY_MAGIC = b"\x93NUMPY"
#: What the zip layer and zlib raise for damaged data (wrapped into the caller's error).
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError,
               RuntimeError, ValueError, struct.error, OverflowError, UnicodeDecodeError,
               KeyError, IndexError)
_INT_DESCR = re.compile(r"^([<>|])([iu])([1248])$")
_NPY_TOKEN = re.compile(r"""\s*(?:('[^'\\\n]*'|"[^"\\\n]*")   # a string without escapes
                              |([0-9]{1,19})L?                # an integer (Python 2 may add L)
                              |(True|False)
                              |([{}():,]))""", re.VERBOSE)


def _first_line(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    kind = type(error)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    return f"{name}: {text}"[:200]


def parse_npy_header(text: str) -> tuple[str, bool, tuple[int, ...]]:
    """``(descr, fortran_order, shape)`` of a ``.npy`` header dict literal.

    Accepts exactly a dict with the keys ``'descr'`` (a string), ``'fortran_order'`` (``True`` /
    ``False``) and ``'shape'`` (a tuple of non-negative integers of at most 19 digits); raises
    ``ValueError`` naming the problem otherwise. Linear in the length, no recursion.
    """
    tokens: list[tuple[str, object]] = []
    pos, end = 0, len(text.rstrip())
    while pos < end:
        m = _NPY_TOKEN.match(text, pos)
        if not m or m.end() == pos:
            pos += len(text[pos:]) - len(text[pos:].lstrip())
            raise ValueError(f"unexpected character {text[pos:pos + 1]!r} at offset {pos}")
        pos = m.end()
        if m[1] is not None:
            tokens.append(("str", m[1][1:-1]))
        elif m[2] is not None:
            tokens.append(("int", int(m[2])))
        elif m[3] is not None:
            tokens.append(("bool", m[3] == "True"))
        else:
            tokens.append((m[4], None))
    i = 0

    def take(kind: str) -> object:
        nonlocal i
        if i >= len(tokens) or tokens[i][0] != kind:
            got = "the end" if i >= len(tokens) else repr(tokens[i][1] if tokens[i][1] is not None
                                                          else tokens[i][0])
            raise ValueError(f"expected {kind!r}, got {got}")
        i += 1
        return tokens[i - 1][1]

    def peek() -> str | None:
        return tokens[i][0] if i < len(tokens) else None

    take("{")
    fields: dict[str, object] = {}
    while peek() != "}":
        key = take("str")
        if key in fields:
            raise ValueError(f"key {key!r} appears twice")
        take(":")
        if peek() == "(":
            take("(")
            shape: list[int] = []
            while peek() != ")":
                shape.append(take("int"))
                if peek() != ")":
                    take(",")
                elif len(shape) == 1 and tokens[i - 1][0] != ",":
                    raise ValueError("a one-element shape must be written (n,)")
            take(")")
            fields[key] = tuple(shape)
        elif peek() in ("str", "bool", "int"):
            fields[key] = take(peek())
        else:
            raise ValueError(f"the value of {key!r} must be a string, True/False or a tuple")
        if peek() != "}":
            take(",")
    take("}")
    if i != len(tokens):
        raise ValueError("text after the closing brace")
    if set(fields) != {"descr", "fortran_order", "shape"}:
        raise ValueError(f"keys must be 'descr', 'fortran_order' and 'shape', not "
                         f"{sorted(fields)}")
    descr, fortran, shape = fields["descr"], fields["fortran_order"], fields["shape"]
    if not isinstance(descr, str):
        raise ValueError(f"'descr' must be a string, not {descr!r}")
    if not isinstance(fortran, bool):
        raise ValueError(f"'fortran_order' must be True or False, not {fortran!r}")
    if not isinstance(shape, tuple):
        raise ValueError(f"'shape' must be a tuple, not {shape!r}")
    return descr, fortran, shape


def _dtype_name(descr: str) -> str:
    """A readable name for a ``descr`` that is not an accepted integer type."""
    if len(descr) <= 8 and re.fullmatch(r"[<>|=]?[a-zA-Z][0-9]{0,2}", descr):
        try:
            return np.dtype(descr).name
        except (TypeError, ValueError):
            pass
    return repr(descr[:40])


class NpzFile:
    """An open ``.npz`` file; read members by name with :meth:`read_integers` / :meth:`read_bytes`.

    Parameters
    ----------
    path : path-like
        The file.
    error : type of FireflysError
        The exception raised for every problem.
    where : str
        The start of every message (``"artifact 'net.npz'"``).
    what : str
        What the file should be, in messages about a damaged container (``"not a readable
        fireflys artifact (.npz): ..."``).

    Attributes
    ----------
    names : list of str
        The members' names without the ``.npy`` suffix, in archive order.
    unexpected : list of str
        The members' full names that do not end in ``.npy``.
    """

    def __init__(self, path: str | os.PathLike, error: type[FireflysError], where: str,
                 what: str = ".npz file", *, max_file_bytes: int | None = None,
                 max_data_bytes: int | None = None, max_dims: int = 4):
        # None: the artifact limits, read at call time (the tests patch them)
        max_file_bytes = MAX_FILE_BYTES if max_file_bytes is None else max_file_bytes
        self.path = Path(path)
        self.what = what
        self.error = error
        self.where = where
        self._data_bytes = 0
        self._max_data_bytes = MAX_DATA_BYTES if max_data_bytes is None else max_data_bytes
        self._max_dims = max_dims
        try:
            st = os.stat(self.path)
        except OSError as e:
            raise self.fail(f"cannot be read: {e.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            raise self.fail("is not a regular file")
        if st.st_size > max_file_bytes:
            raise self.fail(f"is {st.st_size} bytes, larger than the limit of {max_file_bytes}")
        try:
            self._file = open(self.path, "rb")
        except OSError as e:
            raise self.fail(f"cannot be read: {e.strerror}") from None
        try:
            try:
                self._check_end_record(st.st_size)
            except OSError as e:
                raise self.fail(f"cannot be read: {_first_line(e)}") from None
            try:
                self._zip = zipfile.ZipFile(self._file)
            except _ZIP_ERRORS as e:
                raise self.fail(f"not a readable {self.what}: {_first_line(e)}") from None
            infos = self._zip.infolist()
            if len(infos) > MAX_MEMBERS:
                raise self.fail(f"has {len(infos)} members, more than the limit of {MAX_MEMBERS}")
            self._infos: dict[str, zipfile.ZipInfo] = {}
            self.unexpected: list[str] = []
            seen: set[str] = set()
            for info in infos:
                if info.filename in seen:
                    raise self.fail(f"has the member {info.filename[:80]!r} twice")
                seen.add(info.filename)
                if info.filename.endswith(".npy"):
                    self._infos[info.filename[:-4]] = info
                else:
                    self.unexpected.append(info.filename)
            self.names = list(self._infos)
        except BaseException:
            self._file.close()
            raise

    def fail(self, problem: str) -> FireflysError:
        return self.error(f"{self.where}: {problem}")

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "NpzFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_end_record(self, size: int) -> None:
        """Bound the central directory from the end record before zipfile reads it (zipfile
        reads the whole directory into objects of ~0.5 kB per member)."""
        if size < _EOCD_SIZE:
            raise self.fail(f"not a readable {self.what}: only {size} bytes")
        tail_size = min(size, _EOCD_SIZE + 0xFFFF)
        self._file.seek(size - tail_size)
        tail = self._file.read(tail_size)
        # the same search as zipfile: the last 22 bytes without a comment, else the last record
        if tail[-_EOCD_SIZE:-_EOCD_SIZE + 4] == _EOCD and tail[-2:] == b"\0\0":
            start = len(tail) - _EOCD_SIZE
        else:
            start = tail.rfind(_EOCD)
        if start < 0 or start + _EOCD_SIZE > len(tail):
            raise self.fail(f"not a readable {self.what}: no zip end-of-central-directory "
                            f"record (truncated, or not a zip file)")
        _, _, _, _, members, directory_bytes, _, _ = struct.unpack(
            "<4s4H2LH", tail[start:start + _EOCD_SIZE])
        locator = size - tail_size + start - 20
        if locator >= 0 and self._zip64_at(locator):
            raise self.fail("is a zip64 archive, which fireflys does not read (artifacts are "
                            "far smaller than 4 GiB)")
        if members > MAX_MEMBERS:
            raise self.fail(f"lists {members} members, more than the limit of {MAX_MEMBERS}")
        if directory_bytes > MAX_ZIP_DIRECTORY_BYTES:
            raise self.fail(f"has a zip directory of {directory_bytes} bytes, more than the "
                            f"limit of {MAX_ZIP_DIRECTORY_BYTES}")
        self._file.seek(0)

    def _zip64_at(self, offset: int) -> bool:
        self._file.seek(offset)
        return self._file.read(4) == _ZIP64_LOCATOR

    def _info(self, name: str, field: str) -> zipfile.ZipInfo:
        info = self._infos.get(name)
        if info is None:
            raise self.fail(f"{field} is missing (member {name + '.npy'!r})")
        member = info.filename
        if info.flag_bits & 0x1:
            raise self.fail(f"{field}: member {member!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise self.fail(f"{field}: member {member!r} uses zip compression method "
                            f"{info.compress_type} (only 0, stored, and 8, deflate, are read)")
        return info

    def _read_npy(self, name: str, field: str, max_elements: int
                  ) -> tuple[str, np.ndarray | None, tuple[int, ...], bool, bytes]:
        """``(descr, dtype or None if not an accepted integer type, shape, fortran, data)``."""
        info = self._info(name, field)
        member = info.filename
        try:
            with self._zip.open(info) as f:
                prefix = f.read(10)
                if len(prefix) < 10 or prefix[:6] != _NPY_MAGIC:
                    raise self.fail(f"{field}: member {member!r} is not a .npy array (no "
                                    f"\\x93NUMPY magic)")
                major, minor = prefix[6], prefix[7]
                if (major, minor) not in ((1, 0), (2, 0), (3, 0)):
                    raise self.fail(f"{field}: member {member!r} has .npy format version "
                                    f"{major}.{minor} (1.0, 2.0 or 3.0 are read)")
                if major == 1:
                    header_len, offset = struct.unpack("<H", prefix[8:10])[0], 10
                else:
                    more = f.read(2)
                    if len(more) < 2:
                        raise self.fail(f"{field}: member {member!r} ends inside its .npy header")
                    header_len, offset = struct.unpack("<I", prefix[8:10] + more)[0], 12
                if header_len > MAX_NPY_HEADER_BYTES:
                    raise self.fail(f"{field}: member {member!r} has a .npy header of "
                                    f"{header_len} bytes, more than the limit of "
                                    f"{MAX_NPY_HEADER_BYTES}")
                raw = f.read(header_len)
                if len(raw) < header_len:
                    raise self.fail(f"{field}: member {member!r} ends inside its .npy header")
                try:
                    text = raw.decode("utf-8" if major == 3 else "latin1")
                    descr, fortran, shape = parse_npy_header(text)
                except (ValueError, UnicodeDecodeError) as e:
                    raise self.fail(f"{field}: member {member!r} has a malformed .npy header: "
                                    f"{str(e)[:120]}") from None
                m = _INT_DESCR.match(descr)
                dtype = None
                if m and (m[1] != "|" or m[3] == "1"):
                    dtype = np.dtype(descr)
                if dtype is None:
                    return descr, None, shape, fortran, b""
                if len(shape) > self._max_dims:
                    raise self.fail(f"{field}: member {member!r} has {len(shape)} dimensions "
                                    f"(at most {self._max_dims})")
                count = 1
                for d in shape:
                    count *= d
                if count > max_elements:
                    raise self.fail(f"{field}: member {member!r} claims shape {list(shape)}, "
                                    f"{count} elements, more than the limit of {max_elements}")
                nbytes = count * dtype.itemsize
                if info.file_size != offset + header_len + nbytes:
                    raise self.fail(f"{field}: member {member!r} holds "
                                    f"{info.file_size - offset - header_len} bytes of data, but "
                                    f"its shape {list(shape)} of {dtype.name} needs {nbytes}")
                if self._data_bytes + nbytes > self._max_data_bytes:
                    raise self.fail(f"{field}: the arrays hold more than the limit of "
                                    f"{self._max_data_bytes} bytes")
                self._data_bytes += nbytes
                data = f.read(nbytes)
                if len(data) != nbytes or f.read(1):
                    raise self.fail(f"{field}: member {member!r} holds {len(data)} bytes of data, "
                                    f"not {nbytes}")
        except FireflysError:
            raise
        except _ZIP_ERRORS as e:
            raise self.fail(f"{field}: member {member!r} cannot be read: {_first_line(e)}") \
                from None
        return descr, dtype, shape, fortran, data

    def read_integers(self, name: str, field: str, max_elements: int) -> np.ndarray:
        """Member ``name + '.npy'`` as an int64 array (any integer dtype of at most 8 bytes whose
        values fit int64); ``field`` names it in messages."""
        descr, dtype, shape, fortran, data = self._read_npy(name, field, max_elements)
        if dtype is None:
            raise self.fail(f"{field} must hold integers, not {_dtype_name(descr)}")
        array = np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")
        if dtype.kind == "u" and dtype.itemsize == 8 and array.size \
                and int(array.max()) > np.iinfo(np.int64).max:
            raise self.fail(f"{field} has values up to {int(array.max())}, beyond the int64 range")
        return np.array(array, dtype=np.int64, order="C")   # a writable copy

    def read_array(self, name: str, field: str, dtype, max_elements: int) -> np.ndarray:
        """Member ``name + '.npy'`` as a C-ordered array of exactly ``dtype`` (an integer type;
        its byte order may differ), no conversion to int64 (e.g. a uint8 frame cache)."""
        descr, found, shape, fortran, data = self._read_npy(name, field, max_elements)
        want = np.dtype(dtype)
        if found is None or found.kind != want.kind or found.itemsize != want.itemsize:
            what = _dtype_name(descr) if found is None else found.name
            raise self.fail(f"{field} must hold {want.name}, not {what}")
        array = np.frombuffer(data, found).reshape(shape, order="F" if fortran else "C")
        return np.array(array, dtype=want, order="C")   # a writable native copy

    def read_bytes(self, name: str, field: str, max_bytes: int) -> bytes:
        """Member ``name + '.npy'``, a one-dimensional uint8 array, as bytes."""
        descr, dtype, shape, _, data = self._read_npy(name, field, max_bytes)
        if dtype is None or dtype != np.uint8 or len(shape) != 1:
            what = _dtype_name(descr) if dtype is None else dtype.name
            raise self.fail(f"{field} must be a one-dimensional uint8 array, not {what} of shape "
                            f"{list(shape)}")
        return data
