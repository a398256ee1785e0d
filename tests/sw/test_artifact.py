"""The artifact file: round trip, and one clear error per malformed field."""

import io
import re
import json

import numpy as np
import pytest

from fireflys_sw.artifact import ARTIFACT_VERSION, load_artifact, save_artifact
from fireflys_sw.errors import ArtifactError
from fireflys_sw.golden import run_golden
from fireflys_sw.synthetic import random_artifact, random_images


@pytest.fixture
def saved(tmp_path):
    artifact = random_artifact("1x8x8-4c3p1-mp2-6c3p1-mp2-5fc", seed=2)
    path = save_artifact(artifact, tmp_path / "net.npz")
    return artifact, path


def rewrite(path, edit_header=None, edit_arrays=None):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays["header"].tobytes())
    if edit_header:
        edit_header(header)
    if edit_arrays:
        edit_arrays(arrays)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


def test_round_trip_is_exact(saved):
    artifact, path = saved
    loaded = load_artifact(path)
    images = random_images(artifact, 8)
    np.testing.assert_array_equal(run_golden(artifact, images).scores,
                                  run_golden(loaded, images).scores)
    assert loaded.metadata == artifact.metadata
    assert loaded.version == 1  # LIF/IF artifacts are still written as version 1


def set_key(*keys, value):
    def edit(header):
        obj = header
        for key in keys[:-1]:
            obj = obj[key]
        obj[keys[-1]] = value
    return edit


def drop_key(*keys):
    def edit(header):
        obj = header
        for key in keys[:-1]:
            obj = obj[key]
        del obj[keys[-1]]
    return edit


HEADER_CASES = [
    (set_key("format", value="other"), r"format must be 'fireflys-artifact'"),
    (set_key("version", value=ARTIFACT_VERSION + 1), r"version is 3, newer than this fireflys"),
    (set_key("version", value="1"), r"version must be a positive integer"),
    (drop_key("name"), r"name is missing"),
    (set_key("name", value=3), r"name must be a string"),
    (set_key("T", value=0), r"T is 0, outside \[1, 256\]"),
    (set_key("T", value=2.5), r"T must be an integer"),
    (drop_key("input"), r"input is missing"),
    (set_key("input", "shape", value=[1, 8]), r"input.shape must be three positive integers"),
    (set_key("input", "bits", value=0), r"input.bits is 0, outside"),
    (set_key("input", "encoding", value="rate"), r"input.encoding is 'rate', not one of"),
    (set_key("weight_bits", value=9), r"weight_bits is 9, outside \[2, 8\]"),
    (set_key("bias_bits", value=1), r"bias_bits is 1, outside"),
    (set_key("threshold_bits", value=40), r"threshold_bits is 40, outside"),
    (set_key("layers", value=[]), r"layers must be a non-empty list"),
    (set_key("layers", 0, "kind", value="deconv"), r"layers\[0\].kind is 'deconv'"),
    (set_key("layers", 0, "in_shape", value=[2, 8, 8]),
     r"layers\[0\].in_shape is \[2, 8, 8\] but the previous layer gives \[1, 8, 8\]"),
    (set_key("layers", 0, "out_shape", value=[4, 7, 7]),
     r"layers\[0\].out_shape is \[4, 7, 7\], expected \[4, 8, 8\]"),
    (set_key("layers", 0, "padding", value=3), r"layers\[0\].padding is 3 with kernel 3"),
    (set_key("layers", 0, "kernel", value=-1), r"layers\[0\].kernel is -1, outside"),
    (set_key("layers", 0, "neuron", value="izhikevich"), r"layers\[0\].neuron is 'izhikevich'"),
    (set_key("layers", 0, "leak_shift", value=0), r"layers\[0\].leak_shift is 0: a LIF layer"),
    (set_key("layers", 0, "neuron", value="none"), r"layers\[0\].neuron is 'none' \(readout\)"),
    (set_key("layers", 1, "kernel", value=9), r"layers\[1\].kernel is 9: a pool window"),
    (set_key("layers", 4, "kernel", value=3), r"layers\[4\].kernel must be 0 for a fully"),
    (set_key("metadata", value=[1]), r"metadata must be a JSON object"),
]


@pytest.mark.parametrize("edit, message", HEADER_CASES)
def test_malformed_header_fields(saved, edit, message):
    _, path = saved
    rewrite(path, edit_header=edit)
    with pytest.raises(ArtifactError, match=message) as info:
        load_artifact(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def set_array(key, value):
    def edit(arrays):
        arrays[key] = value
    return edit


def drop_array(key):
    def edit(arrays):
        del arrays[key]
    return edit


ARRAY_CASES = [
    (drop_array("layers.0.weight"), r"layers\[0\].weight is missing"),
    (set_array("layers.0.weight", np.zeros((4, 1, 3, 3), np.float32)),
     r"layers\[0\].weight must hold integers, not float32"),
    (set_array("layers.0.weight", np.zeros((4, 1, 2, 2), np.int8)),
     r"layers\[0\].weight has shape \[4, 1, 2, 2\], expected \[4, 1, 3, 3\]"),
    (set_array("layers.0.weight", np.full((4, 1, 3, 3), 8, np.int8)),
     r"layers\[0\].weight has values in \[8, 8\], outside the 4-bit range \[-8, 7\]"),
    (set_array("layers.0.bias", np.zeros(3, np.int64)),
     r"layers\[0\].bias has shape \[3\], expected \[4\]"),
    (set_array("layers.0.bias", np.full(4, 1 << 30, np.int64)),
     r"layers\[0\].bias has values .* outside the 24-bit range"),
    (drop_array("layers.0.threshold"), r"layers\[0\].threshold is missing"),
    (set_array("layers.0.threshold", np.zeros(4, np.int64)),
     r"layers\[0\].threshold has values in \[0, 0\], outside \[1, "),
    (set_array("layers.0.threshold", np.ones(5, np.int64)),
     r"layers\[0\].threshold has shape \[5\], expected \[4\]"),
    (set_array("layers.4.threshold", np.ones(5, np.int64)),
     r"layers\[4\].threshold must be absent for the readout"),
    (set_array("layers.4.weight", np.zeros((5, 6 * 2 * 2 + 1), np.int8)),
     r"layers\[4\].weight has shape \[5, 25\], expected \[5, 24\]"),
]


@pytest.mark.parametrize("edit, message", ARRAY_CASES)
def test_malformed_arrays(saved, edit, message):
    _, path = saved
    rewrite(path, edit_arrays=edit)
    with pytest.raises(ArtifactError, match=message):
        load_artifact(path)


def test_header_not_json(saved):
    _, path = saved
    rewrite(path, edit_arrays=set_array("header", np.frombuffer(b"{not json", np.uint8)))
    # rewrite re-encodes the header it parsed; write the broken one directly instead
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["header"] = np.frombuffer(b"{not json", np.uint8)
    np.savez(path.open("wb"), **arrays)
    with pytest.raises(ArtifactError, match=r"header is not valid JSON"):
        load_artifact(path)


def test_no_header(saved):
    _, path = saved
    np.savez(path.open("wb"), weights=np.zeros(3))
    with pytest.raises(ArtifactError, match=r"header is missing \(not a fireflys artifact\)"):
        load_artifact(path)


def test_truncated_file(saved):
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=r"not a readable fireflys artifact \(.npz\)") as info:
        load_artifact(path)
    assert "\n" not in str(info.value)


def test_not_a_zip(tmp_path):
    path = tmp_path / "x.npz"
    path.write_text("hello")
    with pytest.raises(ArtifactError, match=r"not a readable fireflys artifact"):
        load_artifact(path)


def test_missing_file_names_the_shipped_models(tmp_path):
    with pytest.raises(ArtifactError, match=r"artifact '.*nope.npz' not found: give a path"):
        load_artifact(tmp_path / "nope.npz")


def test_save_refuses_an_invalid_artifact(tmp_path):
    import dataclasses
    artifact = random_artifact("1x8x8-4c3p1-5fc", seed=0)
    bad = dataclasses.replace(artifact, weight_bits=3)
    with pytest.raises(ArtifactError, match=r"layers\[0\].weight has values"):
        save_artifact(bad, tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()


def test_last_layer_must_be_the_readout(saved):
    _, path = saved
    rewrite(path, edit_header=set_key("layers", 4, "neuron", value="lif"),
            edit_arrays=set_array("layers.4.threshold", np.ones(5, np.int64)))
    with pytest.raises(ArtifactError, match=r"layers\[4\].neuron is 'lif', but the last layer "
                                            r"must be the readout"):
        load_artifact(path)


# --- the container: hostile files get one line, before anything large is allocated ----------------

import struct
import tracemalloc
import zipfile

from fireflys_sw import limits


def members_of(path):
    with zipfile.ZipFile(path) as zf:
        return [(info.filename, zf.read(info)) for info in zf.infolist()]


def write_zip(path, members, method=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        for name, data in members:
            zf.writestr(name, data)


def npy(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array)
    return buffer.getvalue()


def replace_member(path, name, data, method=zipfile.ZIP_STORED):
    write_zip(path, [(n, data if n == name else d) for n, d in members_of(path)], method)


def refuses(path, message):
    with pytest.raises(ArtifactError, match=message) as info:
        load_artifact(path)
    text = str(info.value)
    assert "\n" not in text and str(path) in text
    return text


def patch_first_member(path, offset_central, offset_local, value):
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    central = struct.unpack("<L", data[end + 16:end + 20])[0]
    local = struct.unpack("<L", data[central + 42:central + 46])[0]
    struct.pack_into("<H", data, central + offset_central, value)
    struct.pack_into("<H", data, local + offset_local, value)
    path.write_bytes(bytes(data))


def test_zip_compression_method_99(saved):
    _, path = saved
    write_zip(path, members_of(path))
    patch_first_member(path, 10, 8, 99)
    refuses(path, r"header: member 'header.npy' uses zip compression method 99 \(only 0, stored, "
                  r"and 8, deflate, are read\)$")


def test_encrypted_member(saved):
    _, path = saved
    write_zip(path, members_of(path))
    patch_first_member(path, 8, 6, 1)
    refuses(path, r"header: member 'header.npy' is encrypted$")


def test_corrupt_deflate_data(saved):
    _, path = saved
    write_zip(path, members_of(path), zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    data[40:60] = b"\xff" * 20   # inside the header member's deflate stream
    path.write_bytes(bytes(data))
    refuses(path, r"header: member 'header.npy' cannot be read: (zlib.error|zipfile.BadZipFile)")


def test_member_without_npy_magic(saved):
    _, path = saved
    replace_member(path, "layers.0.bias.npy", b"junk")
    refuses(path, r"layers\[0\].bias: member 'layers.0.bias.npy' is not a .npy array \(no "
                  r"\\x93NUMPY magic\)$")


def test_deeply_nested_header(saved):
    _, path = saved
    replace_member(path, "header.npy", npy(np.frombuffer(b"[" * 10**5 + b"]" * 10**5, np.uint8)))
    refuses(path, r"header is nested too deeply \(at most 64 levels\)$")


@pytest.mark.parametrize("header, message", [
    ("{'descr': '<i8', 'fortran_order': False, 'shape': (4,), ", r"expected 'str', got the end"),
    ("{b'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", r"unexpected character 'b'"),
    ("{'descr': '<i8', 'fortran_order': False, 'shape': (4,), 'x': 1}", r"keys must be"),
    ("{'descr': '<i8', 'fortran_order': False, 'shape': (4), }", r"a one-element shape"),
    ("{'descr': '<i8', 'fortran_order': __import__('os'), 'shape': (4,), }",
     r"unexpected character '_'"),
    ("[" * 3000, r"unexpected character '\[' at offset 0"),
])
def test_malformed_npy_headers(saved, header, message):
    _, path = saved
    raw = header.encode() + b"\n"
    replace_member(path, "layers.0.bias.npy",
                   b"\x93NUMPY\x01\x00" + struct.pack("<H", len(raw)) + raw + bytes(32))
    refuses(path, r"layers\[0\].bias: member 'layers.0.bias.npy' has a malformed .npy header: "
            + message)


def test_claimed_shape_is_checked_before_allocation(saved):
    """A 2.5 kB file whose .npy header claims (10**12,) elements."""
    _, path = saved
    raw = b"{'descr': '<i8', 'fortran_order': False, 'shape': (1000000000000,), }\n"
    replace_member(path, "layers.0.bias.npy",
                   b"\x93NUMPY\x01\x00" + struct.pack("<H", len(raw)) + raw + bytes(64))
    tracemalloc.start()
    refuses(path, r"layers\[0\].bias: member 'layers.0.bias.npy' claims shape \[1000000000000\], "
                  r"1000000000000 elements, more than the limit of 65536$")
    assert tracemalloc.get_traced_memory()[1] < 4 << 20
    tracemalloc.stop()


def test_data_size_must_match_the_shape(saved):
    _, path = saved
    replace_member(path, "layers.0.bias.npy", npy(np.zeros(4, np.int64))[:-8])
    refuses(path, r"member 'layers.0.bias.npy' holds 24 bytes of data, but its shape \[4\] of "
                  r"int64 needs 32$")


def test_unused_members_are_refused_unread(saved, monkeypatch):
    """An extra member (here 64 MiB of zeros, deflated to 64 kB) is refused by its name; it is
    never decompressed."""
    _, path = saved
    big = npy(np.zeros(8 << 20, np.int64))
    write_zip(path, members_of(path) + [("layers.1.weight.npy", big)], zipfile.ZIP_DEFLATED)
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open",
                        lambda self, name, *a, **k: opened.append(getattr(name, "filename", name))
                        or real_open(self, name, *a, **k))
    tracemalloc.start()
    refuses(path, r"member 'layers.1.weight.npy' is not part of the format \(only header.npy and "
                  r"layers.<i>.weight/bias/threshold/shift.npy of the conv/fc layers the header lists\)$")
    assert tracemalloc.get_traced_memory()[1] < 4 << 20
    tracemalloc.stop()
    assert "layers.1.weight.npy" not in opened


@pytest.mark.parametrize("name", ["evil.npy", "layers.0.bias", "layers.9.weight.npy",
                                  "layers.0.gain.npy", "layers.00.weight.npy"])
def test_unknown_members(saved, name):
    _, path = saved
    write_zip(path, members_of(path) + [(name, npy(np.zeros(3, np.int64)))])
    refuses(path, rf"member '{re.escape(name)}' is not part of the format")


def test_duplicate_member(saved):
    _, path = saved
    members = members_of(path)
    with pytest.warns(UserWarning):
        write_zip(path, members + [members[1]])
    refuses(path, rf"has the member '{re.escape(members[1][0])}' twice$")


def test_uint64_beyond_int64_is_refused(saved):
    """2**64 - 1 was read as -1 and passed the range check."""
    _, path = saved
    replace_member(path, "layers.0.bias.npy", npy(np.full(4, 2**64 - 1, np.uint64)))
    refuses(path, r"layers\[0\].bias has values up to 18446744073709551615, beyond the int64 "
                  r"range$")


def test_other_integer_dtypes_read_exactly(saved):
    artifact, path = saved
    bias = artifact.layers[0].bias
    replace_member(path, "layers.0.bias.npy", npy(bias.astype(">i4")))
    np.testing.assert_array_equal(load_artifact(path).layers[0].bias, bias)


def test_not_a_regular_file(tmp_path):
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(ArtifactError, match=r"dir.npz': is not a regular file$"):
        load_artifact(tmp_path / "dir.npz")


def test_file_size_limit(saved, monkeypatch):
    _, path = saved
    monkeypatch.setattr("fireflys_sw.npzfile.MAX_FILE_BYTES", 1000)
    refuses(path, r"is \d+ bytes, larger than the limit of 1000$")


def test_too_many_members(saved):
    _, path = saved
    members = members_of(path)
    write_zip(path, members + [(f"x{i}.npy", b"") for i in range(limits.MAX_MEMBERS)])
    refuses(path, rf"lists {limits.MAX_MEMBERS + len(members)} members, more than the limit of "
                  rf"{limits.MAX_MEMBERS}$")


# --- what the hardware flow needs, refused at load ------------------------------------------------

def test_maxpool_after_maxpool(saved):
    _, path = saved

    def edit(header):
        header["layers"].insert(2, {"kind": "maxpool", "in_shape": [4, 4, 4],
                                    "out_shape": [4, 2, 2], "kernel": 2})

    def renumber(arrays):
        for key in sorted((k for k in arrays if k.startswith("layers.")), reverse=True):
            i = int(key.split(".")[1])
            if i >= 2:
                arrays[key.replace(f"layers.{i}.", f"layers.{i + 1}.")] = arrays.pop(key)

    rewrite(path, edit_header=edit, edit_arrays=renumber)
    refuses(path, r"layers\[2\].kind maxpool must directly follow a spiking conv or fc layer, not "
                  r"come after another maxpool \(the accelerator fuses each pool into that "
                  r"layer's core\)$")


def test_conv_readout_must_leave_one_pixel(tmp_path):
    import dataclasses
    artifact = random_artifact("1x3x3-2c3p1-3c3", seed=3)
    readout = artifact.layers[-1]
    wide = dataclasses.replace(readout, padding=1, out_shape=(3, 3, 3))
    with pytest.raises(ArtifactError, match=r"layers\[1\].out_shape is \[3, 3, 3\]: the readout "
                                            r"must leave one pixel \(one score per class\)"):
        dataclasses.replace(artifact, layers=(artifact.layers[0], wide)).validate()
    path = save_artifact(artifact, tmp_path / "conv.npz")
    rewrite(path, edit_header=lambda h: h["layers"][1].update(padding=1, out_shape=[3, 3, 3]))
    refuses(path, r"layers\[1\].out_shape is \[3, 3, 3\]: the readout must leave one pixel")


def test_classes_must_match_the_readout(saved):
    _, path = saved
    rewrite(path, edit_header=set_key("classes", value=7))
    refuses(path, r"classes is 7, but the readout layers\[4\] has 5 outputs$")


def test_readout_leak_shift(saved):
    _, path = saved
    rewrite(path, edit_header=set_key("layers", 4, "leak_shift", value=2))
    refuses(path, r"layers\[4\].leak_shift is 2, must be 0 for the readout")


def test_readout_kind(saved):
    _, path = saved
    rewrite(path, edit_header=set_key("readout", value="spikes"))
    refuses(path, r"readout is 'spikes', not 'sum-current' \(or 'radix-accumulator' for a "
                  r"radix network\)$")


@pytest.mark.parametrize("name, value, message", [
    ("MAX_WEIGHTS", 100, r"layers have \d+ weights, more than the limit of 100$"),
    ("MAX_MACS", 1000, r"layers need \d+ multiply-accumulates per time step, more than the "
                       r"limit of 1000$"),
    ("MAX_MAP_NEURONS", 200, r"layers\[0\].out_shape is \[4, 8, 8\], 256 neurons, more than the "
                             r"limit of 200$"),
    ("MAX_NEURON_STEPS", 500, r"layers\[0\].out_shape is \[4, 8, 8\]: T \* 256 neurons = 1024 "
                              r"neuron steps per frame, more than the limit of 500$"),
])
def test_size_limits(saved, monkeypatch, name, value, message):
    artifact, _ = saved
    monkeypatch.setattr(f"fireflys_sw.artifact.{name}", value)
    with pytest.raises(ArtifactError, match="^artifact: " + message):
        artifact.validate()


def test_docs_state_the_limits_the_code_enforces():
    from pathlib import Path
    text = (Path(__file__).parents[2] / "docs" / "artifact.md").read_text()
    table = dict(re.findall(r"^\| `(MAX_\w+)` \| (\d+) \|", text, re.M))
    assert table == {name: str(getattr(limits, name)) for name in limits.__all__}
