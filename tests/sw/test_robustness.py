"""Property-based tests (hypothesis): random valid and mutated artifacts go through load ->
golden model with no exception but the project's own one-line error and no wrong score; random
spec strings parse or are refused with one line; the strict .npy header parser agrees with numpy
and raises nothing but ValueError. ``benchmarks/fuzz_inputs.py`` runs the same cases by the
thousand."""

import io
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fireflys_sw.artifact import InputEncoding, load_artifact, save_artifact
from fireflys_sw.errors import FireflysError, SpecError
from fireflys_sw.fuzzing import (ARTIFACT_MUTATIONS, artifact_case, mutate_artifact,
                                 reference_scores, spec_case)
from fireflys_sw.golden import run_golden
from fireflys_sw.npzfile import parse_npy_header
from fireflys_sw.spec import NeuronKind, parse_spec
from fireflys_sw.synthetic import random_artifact, random_images

# derandomized: the default run draws the same cases every time (a failure prints its seed)
FAST = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@settings(FAST, max_examples=150)
@given(seed=st.integers(0, 2**32 - 1))
def test_mutated_artifacts_load_or_refuse(seed):
    with tempfile.TemporaryDirectory() as tmp:
        result = artifact_case(seed, tmp)
    assert result.outcome in ("accepted", "refused"), (seed, result)


def test_every_mutation_kind_is_drawn():
    labels = {mutate_artifact(seed)[1].split(":")[0] for seed in range(250)}
    assert labels == set(ARTIFACT_MUTATIONS)


@st.composite
def small_specs(draw):
    c, h = draw(st.integers(1, 3)), draw(st.integers(3, 9))
    tokens, (ch, size), last_pool = [f"{c}x{h}x{h}"], (c, h), True
    for _ in range(draw(st.integers(0, 3))):
        if not last_pool and size >= 2 and draw(st.booleans()):
            k = draw(st.integers(2, min(3, size)))
            tokens.append(f"mp{k}")
            size, last_pool = size // k, True
        else:
            k = draw(st.integers(1, min(3, size + 2)))
            p = draw(st.integers(0, k - 1))
            if size + 2 * p - k + 1 < 1:
                continue
            ch = draw(st.integers(1, 5))
            tokens.append(f"{ch}c{k}p{p}")
            size, last_pool = size + 2 * p - k + 1, False
    tokens.append(f"{draw(st.integers(1, 6))}fc")
    return "-".join(tokens)


@settings(FAST, max_examples=40)
@given(spec=small_specs(), seed=st.integers(0, 1000), T=st.integers(1, 6),
       neuron=st.sampled_from([NeuronKind.LIF, NeuronKind.IF]),
       encoding=st.sampled_from(list(InputEncoding)), input_bits=st.integers(1, 8),
       weight_bits=st.integers(2, 8))
def test_random_valid_artifacts_round_trip(spec, seed, T, neuron, encoding, input_bits,
                                           weight_bits):
    artifact = random_artifact(spec, seed=seed, T=T, neuron=neuron, encoding=encoding,
                               leak_shift=2 if neuron is NeuronKind.LIF else 0,
                               input_bits=input_bits, weight_bits=weight_bits,
                               weight_sparsity=0.5)
    images = random_images(artifact, 3, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_artifact(save_artifact(artifact, f"{tmp}/a.npz"))
    scores = run_golden(loaded, images).scores
    np.testing.assert_array_equal(scores, run_golden(artifact, images).scores)
    assert scores.tolist() == reference_scores(artifact, images)


@settings(FAST, max_examples=300)
@given(seed=st.integers(0, 2**32 - 1))
def test_random_specs_parse_or_refuse(seed):
    result = spec_case(seed)
    assert result.outcome in ("accepted", "refused"), (seed, result)


@settings(FAST, max_examples=150)
@given(text=st.text(max_size=80))
def test_any_text_is_a_spec_or_one_line(text):
    try:
        net = parse_spec(text)
    except SpecError as error:
        assert "\n" not in str(error)
    else:
        assert net.text.isascii()


@settings(FAST, max_examples=300)
@given(text=st.text(max_size=200))
def test_npy_header_parser_raises_only_value_error(text):
    try:
        parse_npy_header(text)
    except ValueError:
        pass


@settings(FAST, max_examples=100)
@given(shape=st.lists(st.integers(0, 5), max_size=4),
       dtype=st.sampled_from(["<i1", "<i2", ">i4", "<i8", "<u1", ">u8", "<f4"]),
       fortran=st.booleans())
def test_npy_header_parser_agrees_with_numpy(shape, dtype, fortran):
    array = np.zeros(shape, dtype, order="F" if fortran else "C")
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array)
    raw = buffer.getvalue()
    length = int.from_bytes(raw[8:10], "little")
    descr, fortran_order, parsed = parse_npy_header(raw[10:10 + length].decode("latin1"))
    assert np.dtype(descr) == array.dtype and parsed == tuple(shape)
    assert fortran_order == (fortran and array.ndim > 1 and not array.flags.c_contiguous)


def test_errors_are_the_projects(tmp_path):
    """The base class callers catch: every refusal above is a FireflysError."""
    path = tmp_path / "x.npz"
    path.write_bytes(b"PK\x05\x06" + bytes(18))
    with pytest.raises(FireflysError, match=r"header is missing"):
        load_artifact(path)
