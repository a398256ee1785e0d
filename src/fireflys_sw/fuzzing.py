"""Mutated and hostile inputs, for the property tests (``tests/sw/test_robustness.py``) and the
fuzz benchmark (``benchmarks/fuzz_inputs.py``).

Every case is made from a seed alone (``random.Random(seed)``), so a failure is reproduced by its
seed. Each input kind has a *case* function that builds one input and runs it through what reads
it, and returns a :class:`CaseResult`:

* ``accepted``: the input was read, and every check of the result passed;
* ``refused``: it raised the project's own error (:class:`~fireflys_sw.errors.FireflysError`)
  with a one-line message;
* ``wrong``: it was read but should have been refused, or the result is wrong (the golden model
  disagrees with an exact Python-integer reading of the contract, or a value-preserving mutation
  changed the scores), or a project error of more than one line;
* any other exception propagates: that is a traceback, counted by the caller.

Artifact mutations act on the whole file (bit flips, truncation, spliced bytes), on the zip
container (compression method, encryption flag, corrupt deflate data, extra, duplicate and
unused members, a member of 1 GiB, a zip64 marker, a huge directory), on the ``.npy`` members
(hostile header dicts, claimed shapes, dtypes, values) and on the JSON header (values,
deletions, depth, semantic rules the hardware needs). Spec cases are grammar-based random specs and mutated presets.
"""

from __future__ import annotations

import io
import json
import random
import struct
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import FireflysError

__all__ = ["CaseResult", "ARTIFACT_MUTATIONS", "artifact_case", "spec_case", "random_spec_text",
           "reference_scores", "artifact_bases", "mutate_artifact"]


@dataclass
class CaseResult:
    """What one case did: ``outcome`` is ``accepted``, ``refused`` or ``wrong``; ``label`` names
    the mutation; ``detail`` the message (refused, wrong)."""

    outcome: str
    label: str
    detail: str = ""


# --- an exact reading of the contract ------------------------------------------------------------

def reference_scores(artifact, images: np.ndarray) -> list[list[int]]:
    """Scores by ``docs/numeric-contract.md`` with int64 currents (|I| < 2**48 within the limits)
    and Python-integer membranes: slow, but no width can overflow. Independent of
    :mod:`fireflys_sw.golden`."""
    from .artifact import InputEncoding, LayerKind, PoolLayer
    from .spec import NeuronKind
    a = artifact
    top = a.input_max
    images = np.asarray(images).astype(np.int64)
    if a.input_encoding is InputEncoding.DIRECT:
        x = (2 * images * top + 255) // 510
        x = np.repeat(x[:, None], a.T, axis=1)
    else:
        x = np.minimum(images, top)
    n, T = x.shape[:2]
    for layer in a.layers:
        if isinstance(layer, PoolLayer):
            k = layer.kernel
            c, oh, ow = layer.out_shape
            x = x[..., :oh * k, :ow * k].reshape(n, T, c, oh, k, ow, k).max(axis=(4, 6))
            continue
        w = layer.weight.astype(np.int64)
        co, oh, ow = layer.out_shape
        if layer.kind is LayerKind.FC:
            cur = (x.reshape(n, T, -1) @ w.T).reshape(n, T, co, 1, 1)
        else:
            p, k = layer.padding, layer.kernel
            xp = np.pad(x, ((0, 0), (0, 0), (0, 0), (p, p), (p, p)))
            cur = np.zeros((n, T, co, oh, ow), np.int64)
            for kh in range(k):
                for kw in range(k):
                    cur += np.einsum("ntchw,oc->ntohw", xp[..., kh:kh + oh, kw:kw + ow],
                                     w[:, :, kh, kw])
        cur = cur + layer.bias.astype(np.int64)[None, None, :, None, None]
        if layer.is_readout:
            return [[int(v) for v in cur[i].sum(axis=0).reshape(-1).tolist()] for i in range(n)]
        v = np.zeros((n, co, oh, ow), object)
        th = np.array([int(t) for t in layer.threshold], object)[None, :, None, None]
        out = np.zeros((n, T, co, oh, ow), np.int64)
        for t in range(T):
            i_t = cur[:, t].astype(object)
            h = v + ((i_t - v) >> layer.leak_shift) if layer.neuron is NeuronKind.LIF else v + i_t
            s = np.asarray(h >= th, dtype=bool)
            v = np.where(s, 0, h)
            out[:, t] = s
        x = out
    raise AssertionError("no readout layer")


# --- the artifacts mutated -----------------------------------------------------------------------

@dataclass
class _Base:
    artifact: Any
    members: list[tuple[str, bytes]]       # (name, .npy bytes) in file order
    header: dict
    images: np.ndarray
    scores: list[list[int]]                # reference_scores(artifact, images)


_BASES: list[_Base] | None = None


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def artifact_bases() -> list[_Base]:
    """Small valid artifacts the mutations start from (built once per process): LIF and IF,
    direct and frame input, a conv readout, 31/32-bit extremes, and a shipped artifact."""
    global _BASES
    if _BASES is not None:
        return _BASES
    import dataclasses
    from .artifact import InputEncoding, save_artifact, shipped_artifacts, load_artifact
    from .spec import NeuronKind
    from .synthetic import random_artifact, random_images
    artifacts = [
        random_artifact("1x8x8-4c3p1-mp2-6c3p1-mp2-5fc", seed=2),
        random_artifact("2x6x6-3c3p0-4fc", seed=1, neuron=NeuronKind.IF, leak_shift=0, T=3,
                        encoding=InputEncoding.FRAMES, input_bits=2),
        random_artifact("1x3x3-2c3p1-3c3", seed=3, T=2, input_bits=4),
        random_artifact("1x5x5-3c2p1-mp3-2fc", seed=4, T=5, weight_bits=8, leak_shift=3),
    ]
    # wide values: biases and thresholds across 31/32 bits on IF neurons, T = 16
    rng = np.random.default_rng(5)
    wide = random_artifact("1x4x4-3c3p1-4fc-3fc", seed=5, neuron=NeuronKind.IF, leak_shift=0,
                           T=16)
    layers = []
    for layer in wide.layers:
        bias = rng.integers(-(1 << 29), 1 << 29, layer.out_channels)
        th = None if layer.is_readout else rng.integers(1, (1 << 31) - 1, layer.out_channels)
        layers.append(dataclasses.replace(layer, bias=bias, threshold=th))
    artifacts.append(dataclasses.replace(wide, layers=tuple(layers), bias_bits=31,
                                         threshold_bits=32))
    # one real network: the shipped default (a LIF model that reference_scores covers; the
    # radix model's equations are another contract)
    shipped = shipped_artifacts()
    if "scnn5-fashion-mnist" in shipped:
        artifacts.append(load_artifact(shipped["scnn5-fashion-mnist"]))
    bases = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, artifact in enumerate(artifacts):
            path = save_artifact(artifact, Path(tmp) / f"base{i}.npz")
            with zipfile.ZipFile(path) as zf:
                members = [(info.filename, zf.read(info)) for info in zf.infolist()]
            header = json.loads(np.load(io.BytesIO(members[0][1])).tobytes())
            images = random_images(artifact, 2, seed=i)
            bases.append(_Base(artifact, members, header, images,
                               reference_scores(artifact, images)))
    _BASES = bases
    return bases


def _zip(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> bytes:
    import warnings
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", compression=method) as zf:
        warnings.simplefilter("ignore")   # duplicate names are meant
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data, compress_type=method)
    return buffer.getvalue()


def _patch_member(data: bytes, index: int, *, method: int | None = None,
                  flags: int | None = None) -> bytes:
    """Set the compression method / flag bits of member ``index`` in both its central directory
    entry and its local header."""
    out = bytearray(data)
    end = data.rfind(b"PK\x05\x06")
    count, _, offset = struct.unpack("<HLL", data[end + 10:end + 20])
    pos = offset
    for i in range(count):
        name_len, extra_len, comment_len = struct.unpack("<HHH", data[pos + 28:pos + 34])
        if i == index:
            local = struct.unpack("<L", data[pos + 42:pos + 46])[0]
            if method is not None:
                struct.pack_into("<H", out, pos + 10, method)
                struct.pack_into("<H", out, local + 8, method)
            if flags is not None:
                struct.pack_into("<H", out, pos + 8, flags)
                struct.pack_into("<H", out, local + 6, flags)
        pos += 46 + name_len + extra_len + comment_len
    return bytes(out)


_BIG: tuple[int, bytes, int] | None = None


def big_member() -> tuple[int, bytes, int]:
    """``(crc32, raw deflate data, size)`` of 1 GiB of zeros (about 1 MB deflated), built once per
    process: full flushes make every 1 MiB block's deflate output the same, so it is repeated."""
    global _BIG
    if _BIG is None:
        import zlib
        chunk = bytes(1 << 20)
        block = zlib.compressobj(9, zlib.DEFLATED, -15)
        data = block.compress(chunk) + block.flush(zlib.Z_FULL_FLUSH)
        crc = 0
        for _ in range(1024):
            crc = zlib.crc32(chunk, crc)
        _BIG = (crc, data * 1024 + block.flush(zlib.Z_FINISH), 1 << 30)
    return _BIG


def _zip_raw(entries: list[tuple[str, int, int, bytes, int]]) -> bytes:
    """A zip of ``(name, method, crc32, data as stored in the zip, uncompressed size)``."""
    out, central = bytearray(), bytearray()
    for name, method, crc, data, size in entries:
        raw = name.encode()
        offset = len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data),
                           size, len(raw), 0) + raw + data
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc,
                               len(data), size, len(raw), 0, 0, 0, 0, 0, offset) + raw
    start = len(out)
    out += central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                                 len(central), start, 0)
    return bytes(out)


def _hostile_value(r: random.Random) -> Any:
    return r.choice([
        0, -1, 1, 2, 3, 7, 255, 256, 65536, 1 << 31, (1 << 63) - 1, 1 << 64, -(1 << 63), 10 ** 30,
        0.5, float("nan"), float("inf"), True, False, None, "", "x" * r.randint(1, 300), "lif",
        "if", "none", "conv", "fc", "maxpool", "frames", "direct", [], [1], [1, 1, 1],
        [0, 0, 0], [1 << 16, 1 << 16, 1 << 16], [2, 3, 3], [[1]], {}, {"a": 1}, [1, 2, 3, 4],
        "sum-current", "fireflys-artifact"])


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for key, value in obj.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            out += _paths(value, prefix + (i,))
    return out


def _with_header(base: _Base, header_bytes: bytes, method: int) -> bytes:
    members = [(n, d) for n, d in base.members]
    members[0] = ("header.npy", _npy(np.frombuffer(header_bytes, np.uint8)))
    return _zip(members, method)


def _json(header: Any) -> bytes:
    return json.dumps(header).encode()


def _renumber(name: str, at: int) -> str:
    parts = name.split(".")
    if parts[0] == "layers" and int(parts[1]) >= at:
        parts[1] = str(int(parts[1]) + 1)
    return ".".join(parts)


def _semantic(r: random.Random, base: _Base) -> tuple[Any, str]:
    """A header that breaks one of the rules the hardware flow needs."""
    h = json.loads(json.dumps(base.header))
    layers = h["layers"]
    choice = r.randrange(5)
    if choice == 0:
        h["classes"] = h["classes"] + r.choice([-1, 1, 5])
        return h, "classes"
    if choice == 1:
        layers[-1]["leak_shift"] = r.randint(1, 16)
        return h, "readout-leak"
    if choice == 2:
        h["readout"] = r.choice(["max", "spikes", ""])
        return h, "readout-kind"
    if choice == 3:
        # a max-pool after the first pool (or in front of the network)
        pools = [i for i, e in enumerate(layers) if e["kind"] == "maxpool"]
        at = pools[0] + 1 if pools else 0
        c, hh, ww = layers[at]["in_shape"] if at < len(layers) else layers[-1]["out_shape"]
        k = 2 if min(hh, ww) >= 2 else 1
        layers.insert(at, {"kind": "maxpool", "in_shape": [c, hh, ww],
                           "out_shape": [c, hh // k, ww // k], "kernel": k})
        return h, "pool-placement"
    # a conv readout leaving several pixels: pad the readout conv (base 2's readout is a conv)
    last = layers[-1]
    if last["kind"] == "conv":
        last["padding"] = min(last["kernel"] - 1, 1)
        c, hh, ww = last["in_shape"]
        p, k = last["padding"], last["kernel"]
        last["out_shape"] = [last["out_shape"][0], hh + 2 * p - k + 1, ww + 2 * p - k + 1]
    else:
        last["out_shape"] = [last["out_shape"][0], 2, 2]
    return h, "readout-pixels"


_HOSTILE_NPY_HEADERS = [
    "{'descr': '<i8', 'fortran_order': False, 'shape': (1000000000000,), }",
    "{'descr': '<i8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
    "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), ",
    "{b'descr': '<i8', 'fortran_order': False, 'shape': (3,), }",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
    "{'descr': '|O', 'fortran_order': False, 'shape': (3,), }",
    "{'descr': [('a', '<i8')], 'fortran_order': False, 'shape': (3,), }",
    "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), 'extra': 1}",
    "{'descr': '<i8', 'fortran_order': 0, 'shape': (3,), }",
    "{'descr': '<i8', 'fortran_order': False, 'shape': (-3,), }",
    "{'descr': '<i8', 'fortran_order': False, 'shape': 3, }",
    "{'descr': '<i8', 'fortran_order': False, 'shape': (3), }",
    "{'descr': '<i8', 'fortran_order': False, 'shape': (" + "9" * 5000 + ",), }",
    "[" * 5000 + "]" * 5000,
    "{'descr': '<i8', 'fortran_order': __import__('os').system('true'), 'shape': (3,), }",
    "",
    "{}",
]


def mutate_artifact(seed: int) -> tuple[bytes, str, str, _Base]:
    """``(file bytes, label, expect, base)`` for ``seed``; ``expect`` is ``reject`` (must be
    refused), ``same`` (refused, or read with the base's scores) or ``any`` (refused, or read and
    consistent with the reference)."""
    r = random.Random(seed)
    bases = artifact_bases()
    index = r.randrange(len(bases))
    base = bases[index]
    method = r.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
    clean = _zip(base.members, method)
    kind = r.choice(ARTIFACT_MUTATIONS)
    if kind == "bitflip":
        data = bytearray(clean)
        for _ in range(r.randint(1, 8)):
            data[r.randrange(len(data))] ^= 1 << r.randrange(8)
        return bytes(data), kind, "any", base
    if kind == "bytes":
        data = bytearray(clean)
        at = r.randrange(len(data))
        data[at:at + r.randint(1, 16)] = r.randbytes(r.randint(1, 16))
        return bytes(data), kind, "any", base
    if kind == "truncate":
        return clean[:r.randrange(len(clean))], kind, "reject", base
    if kind == "splice":
        a, b = sorted(r.randrange(len(clean)) for _ in range(2))
        at = r.randrange(len(clean))
        return clean[:at] + clean[a:b] + clean[at:], kind, "any", base
    if kind == "json-value":
        h = json.loads(json.dumps(base.header))
        path = r.choice(_paths(h))
        obj = h
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = _hostile_value(r)
        expect = "same" if path[0] in ("metadata", "name") else "any"
        return _with_header(base, _json(h), method), f"{kind}:{path[0]}", expect, base
    if kind == "json-drop":
        h = json.loads(json.dumps(base.header))
        path = r.choice(_paths(h))
        obj = h
        for key in path[:-1]:
            obj = obj[key]
        del obj[path[-1]]
        expect = "same" if path[0] in ("metadata",) else "any"
        return _with_header(base, _json(h), method), kind, expect, base
    if kind == "json-raw":
        n = r.choice([10, 1000, 100_000])
        raw = r.choice([
            b"[" * n + b"]" * n, b'{"a":' * n + b"1" + b"}" * n, b"9" * n, r.randbytes(n),
            b"\xff\xfe" + b"x" * n, _json(base.header)[:r.randrange(50)], b"",
            b'{"format": "fireflys-artifact", "version": 1e400}', b"NaN", b"[1, 2,"])
        return _with_header(base, raw, method), kind, "reject", base
    if kind == "semantic":
        h, label = _semantic(r, base)
        members = list(base.members)
        if label == "pool-placement":   # renumber the members behind the inserted pool
            at = next(i for i, (a, b) in enumerate(zip(h["layers"], base.header["layers"] + [None]))
                      if a != b)
            members = [(_renumber(n, at), d) for n, d in members]
        members[0] = ("header.npy", _npy(np.frombuffer(_json(h), np.uint8)))
        return _zip(members, method), f"{kind}:{label}", "reject", base
    if kind == "npy-header":
        members = list(base.members)
        i = r.randrange(len(members))
        text = r.choice(_HOSTILE_NPY_HEADERS)
        raw = text.encode("latin1")
        version = r.choice([b"\x01\x00", b"\x02\x00", b"\x09\x09"])
        length = struct.pack("<H", len(raw)) if version[0] == 1 else struct.pack("<I", len(raw))
        if r.random() < 0.2:
            length = b"\xff\xff" if version[0] == 1 else b"\xff\xff\xff\x7f"
        magic = r.choice([b"\x93NUMPY", b"\x93NUMPY", b"junk!!"])
        members[i] = (members[i][0], magic + version + length + raw + b"\n" + b"\0" * 24)
        return _zip(members, method), kind, "reject", base
    if kind == "npy-junk":
        members = list(base.members)
        i = r.randrange(len(members))
        members[i] = (members[i][0], r.choice([b"junk", b"", r.randbytes(r.randint(1, 200)),
                                              members[i][1][:r.randrange(len(members[i][1]))]]))
        return _zip(members, method), kind, "reject", base
    if kind == "npy-fortran":
        members = list(base.members)
        i = r.randrange(1, len(members))
        array = np.load(io.BytesIO(members[i][1]))
        members[i] = (members[i][0], _npy(np.asfortranarray(array)))
        return _zip(members, method), kind, "same", base
    if kind == "npy-dtype":
        members = list(base.members)
        i = r.randrange(1, len(members))
        array = np.load(io.BytesIO(members[i][1]))
        dtype = r.choice(["<i2", ">i4", "<i8", ">i8", "|u1", "<u2", "<u4", "<u8", ">u8", "<f4",
                          "|b1", "<c8", "<U2", "<M8[s]"])
        with np.errstate(all="ignore"):
            converted = array.astype(dtype)
        members[i] = (members[i][0], _npy(converted))
        if dtype[1] not in "iu":
            return _zip(members, method), f"{kind}:{dtype}", "reject", base
        # a wrapped value is a different, possibly valid, artifact
        same = converted.astype(np.int64).tolist() == array.tolist()
        return _zip(members, method), f"{kind}:{dtype}", "same" if same else "any", base
    if kind == "npy-values":
        members = list(base.members)
        i = r.randrange(1, len(members))
        array = np.load(io.BytesIO(members[i][1])).astype(np.int64)
        if r.random() < 0.3:
            big = np.full(array.shape, (1 << 64) - 1, np.uint64)
            members[i] = (members[i][0], _npy(big))
            return _zip(members, method), f"{kind}:uint64-max", "reject", base
        flat = array.reshape(-1)
        if flat.size:
            flat[r.randrange(flat.size)] = r.choice([-(1 << 63), (1 << 63) - 1, 1 << 31,
                                                     -(1 << 31), 1 << 40, 0, 127, -128])
        members[i] = (members[i][0], _npy(flat.reshape(array.shape).astype(np.int64)))
        return _zip(members, method), kind, "any", base
    if kind == "npy-shape":
        members = list(base.members)
        i = r.randrange(1, len(members))
        array = np.load(io.BytesIO(members[i][1]))
        shape = r.choice([(array.size,), (1, array.size), (array.size, 1), (0,),
                          array.shape + (1,)])
        members[i] = (members[i][0], _npy(np.resize(array, shape)))
        same = shape == array.shape
        return _zip(members, method), kind, "same" if same else "reject", base
    if kind == "zip-method":
        i = r.randrange(len(base.members))
        m = r.choice([1, 6, 12, 14, 99, 0xFFFF])
        return _patch_member(_zip(base.members, zipfile.ZIP_STORED), i, method=m), \
            f"{kind}:{m}", "reject", base
    if kind == "zip-encrypt":
        i = r.randrange(len(base.members))
        return _patch_member(clean, i, flags=r.choice([1, 0x41, 0xFFFF])), kind, "reject", base
    if kind == "zip-deflate":
        data = bytearray(_zip(base.members, zipfile.ZIP_DEFLATED))
        # corrupt the compressed data of one member (between its local header and the next)
        with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
            info = r.choice(zf.infolist())
        start = info.header_offset + 30 + len(info.filename.encode())
        for _ in range(r.randint(1, 4)):
            at = start + r.randrange(max(1, info.compress_size))
            data[at] ^= 1 << r.randrange(8)
        return bytes(data), kind, "same", base
    if kind == "zip-extra":
        members = list(base.members)
        pools = [i for i, e in enumerate(base.header["layers"]) if e["kind"] == "maxpool"]
        name = r.choice(["evil.npy", "header", "layers.0.weight", "x/../../etc/passwd",
                         f"layers.{len(base.header['layers'])}.weight.npy",
                         "layers.00.weight.npy", "layers.0.gain.npy",
                         f"layers.{pools[0]}.weight.npy" if pools else "layers.-1.bias.npy",
                         members[r.randrange(len(members))][0]])
        payload = r.choice([_npy(np.zeros(3, np.int64)), b"junk", b""])
        members.insert(r.randrange(len(members) + 1), (name, payload))
        return _zip(members, method), f"{kind}", "reject", base
    if kind == "zip-directory":
        data = bytearray(clean)
        end = data.rfind(b"PK\x05\x06")
        field = r.choice([(8, "<H", 0xFFFF), (10, "<H", 0xFFFF), (12, "<L", 0xFFFFFFFF),
                          (12, "<L", 1 << 24), (16, "<L", 0xFFFFFFFF), (16, "<L", 0)])
        struct.pack_into(field[1], data, end + field[0], field[2])
        if r.random() < 0.3:   # a zip64 locator in front of the end record
            data[end - 20:end - 16] = b"PK\x06\x07"
        return bytes(data), kind, "any", base
    if kind == "zip-gigabyte":
        import zlib
        crc, data, size = big_member()
        names = [n for n, _ in base.members]
        name = r.choice(["extra.npy", f"layers.{len(base.header['layers'])}.weight.npy",
                         r.choice(names)])
        entries = [(n, 0, zlib.crc32(d), d, len(d)) for n, d in base.members if n != name]
        entries.insert(r.randrange(len(entries) + 1), (name, zipfile.ZIP_DEFLATED, crc, data, size))
        return _zip_raw(entries), f"{kind}", "reject", base
    if kind == "zip-many":
        members = list(base.members) + [(f"x{i}.npy", b"") for i in range(r.choice([800, 5000]))]
        return _zip(members, zipfile.ZIP_STORED), kind, "reject", base
    if kind == "not-zip":
        return r.choice([b"", b"PK", r.randbytes(r.randint(1, 3000)), b"PK\x05\x06" + b"\0" * 18,
                         b"\x93NUMPY\x01\x00" + b"x" * 100]), kind, "reject", base
    raise AssertionError(kind)


ARTIFACT_MUTATIONS = [
    "bitflip", "bytes", "truncate", "splice", "json-value", "json-drop", "json-raw", "semantic",
    "npy-header", "npy-junk", "npy-fortran", "npy-dtype", "npy-values", "npy-shape",
    "zip-method", "zip-encrypt", "zip-deflate", "zip-extra", "zip-directory", "zip-gigabyte",
    "zip-many", "not-zip",
]


def artifact_case(seed: int, directory: str | Path) -> CaseResult:
    """Mutate an artifact (:func:`mutate_artifact`), write it under ``directory``, load it and,
    if it loads, run the golden model on two inputs and compare with :func:`reference_scores`."""
    from .artifact import load_artifact
    from .golden import run_golden
    data, label, expect, base = mutate_artifact(seed)
    path = Path(directory) / f"case{seed}.npz"
    path.write_bytes(data)
    try:
        try:
            artifact = load_artifact(path)
        except FireflysError as error:
            return _refused(label, error)
        if expect == "reject":
            return CaseResult("wrong", label, "accepted an artifact that must be refused")
        images = base.images
        if artifact.input_shape != base.artifact.input_shape or \
                artifact.input_encoding is not base.artifact.input_encoding or \
                artifact.T != base.artifact.T:
            from .synthetic import random_images
            images = random_images(artifact, 2, seed=seed)
        scores = run_golden(artifact, images).scores.tolist()
        if expect == "same" and scores != base.scores:
            return CaseResult("wrong", label, "a value-preserving change altered the scores")
        neuron_steps = artifact.T * sum(int(np.prod(layer.out_shape)) for layer in artifact.layers)
        if neuron_steps <= 2_000_000 and scores != reference_scores(artifact, images):
            return CaseResult("wrong", label, "golden model != exact contract")
        return CaseResult("accepted", label)
    finally:
        path.unlink()


def _refused(label: str, error: FireflysError) -> CaseResult:
    text = str(error)
    if "\n" in text or not text or len(text) > 1000:
        return CaseResult("wrong", label, f"error message is not one short line: {text[:200]!r}")
    return CaseResult("refused", label, text[:300])


# --- specs ---------------------------------------------------------------------------------------

def random_spec_text(r: random.Random) -> str:
    """A spec string: mostly grammar-based with numbers from small to absurd, sometimes a
    mutated preset or random text (Unicode digits, separators, whitespace)."""
    from .spec import PRESETS

    def number() -> str:
        pick = r.random()
        if pick < 0.75:
            return str(r.choice([0, 1, 1, 2, 2, 3, 3, 4, 5, 8, 10, 16, 28, 32, 64]))
        if pick < 0.9:
            return str(r.randint(0, 1 << r.randint(1, 20)))
        if pick < 0.95:
            return "9" * r.choice([7, 50, 4301, 5000])
        return r.choice(["\u0661", "\u0663", "\uff13", "\u09e9", "\u2075", "0x10", "-1", "+2",
                         " 3", "3 ", "1_0", "\u00b2"])

    def layer() -> str:
        pick = r.random()
        if pick < 0.45:
            k = number() if r.random() < 0.3 else str(r.choice([1, 3, 3, 5]))
            p = number() if r.random() < 0.3 else str(r.choice([0, 1, 1, 2]))
            return f"{number()}c{k}" + (f"p{p}" if r.random() < 0.7 else "")
        if pick < 0.65:
            return f"mp{number() if r.random() < 0.3 else 2}"
        if pick < 0.9:
            return f"{number()}fc" if r.random() < 0.7 else number()
        return r.choice(["", "fc", "c3", "mp", "x", "banana", "-", "10FC", "8C3P1", "mp2 "])

    mode = r.random()
    if mode < 0.75:
        c, h, w = (number() if r.random() < 0.2 else str(r.choice([1, 2, 3]))), \
            (number() if r.random() < 0.2 else str(r.choice([4, 8, 16, 28, 32]))), \
            (number() if r.random() < 0.2 else str(r.choice([4, 8, 16, 28, 32])))
        layers = [layer() for _ in range(r.randint(0, 7))]
        if r.random() < 0.6:
            layers.append(f"{r.choice([1, 2, 10, number()])}fc")   # a readout, mostly
        return "-".join([f"{c}x{h}x{w}"] + layers)
    if mode < 0.9:
        text = r.choice(list(PRESETS.values()) + list(PRESETS))
        chars = list(text)
        for _ in range(r.randint(1, 4)):
            op = r.randrange(3)
            at = r.randrange(len(chars) + 1)
            if op == 0 and chars:
                del chars[min(at, len(chars) - 1)]
            elif op == 1:
                chars.insert(at, r.choice("0123456789-xcpmf \u0661\u00b2"))
            else:
                chars[min(at, len(chars) - 1)] = r.choice("0123456789-xcpmf")
        return "".join(chars)
    if mode < 0.97:
        return "".join(r.choice("0123456789xcpmf-\u0661\u00b2 \t\n") for _ in
                       range(r.randint(0, 60)))
    return r.choice(["", "-", "1x28x28-" + "8c3p1-" * 1000 + "10fc", "x" * 100_000,
                     "1x1x1-" + "1-" * 300 + "1", "1x1x1" + "-1" * 256])


def spec_case(seed: int) -> CaseResult:
    """Parse a random spec (:func:`random_spec_text`); an accepted one must be ASCII, re-parse to
    itself from its canonical text and stay within the size limits."""
    from .limits import MAX_MACS, MAX_MAP_NEURONS, MAX_WEIGHTS
    from .spec import ConvSpec, FCSpec, parse_spec
    r = random.Random(seed)
    text = random_spec_text(r)
    label = "grammar" if text[:1].isdigit() else "other"
    try:
        net = parse_spec(text)
    except FireflysError as error:
        return _refused(label, error)
    if not net.text.isascii() or not all(ch.isascii() for ch in text.strip()):
        return CaseResult("wrong", label, f"accepted non-ASCII spec {text[:80]!r}")
    if parse_spec(net.text) != net:
        return CaseResult("wrong", label, "the canonical text parses differently")
    weights = macs = 0
    for layer, (c, h, w), (_, oh, ow) in zip(net.layers, net.shapes, net.shapes[1:]):
        if isinstance(layer, ConvSpec):
            weights += layer.out_channels * c * layer.kernel ** 2
            macs += layer.out_channels * c * layer.kernel ** 2 * oh * ow
        elif isinstance(layer, FCSpec):
            weights += layer.out_features * c * h * w
            macs += layer.out_features * c * h * w
    if weights > MAX_WEIGHTS or macs > MAX_MACS or \
            max(c * h * w for c, h, w in net.shapes) > MAX_MAP_NEURONS:
        return CaseResult("wrong", label, "accepted a spec beyond the size limits")
    return CaseResult("accepted", label)


#: The input kinds of the fuzz benchmark: name -> case function of a seed (and a scratch folder).
CASES: dict[str, Callable[..., CaseResult]] = {"artifacts": artifact_case, "specs": spec_case}
