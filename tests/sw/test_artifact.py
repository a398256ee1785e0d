"""The artifact file: round trip, and one clear error per malformed field."""

import io
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
