"""The golden model against a naive, loop-by-loop reading of the numeric contract."""

import dataclasses

import numpy as np
import pytest

from fireflys_sw.artifact import InputEncoding, LayerKind, PoolLayer, SynapticLayer
from fireflys_sw.golden import (encode_input, layer_widths, quantise_images, run_golden,
                                signed_bits)
from fireflys_sw.spec import NeuronKind
from fireflys_sw.synthetic import random_artifact, random_images


def naive_forward(artifact, image):
    """The contract for one input, with explicit loops (slow, obviously right)."""
    T = artifact.T
    if artifact.input_encoding is InputEncoding.DIRECT:
        q = [[[(2 * int(v) * artifact.input_max + 255) // 510 for v in row] for row in ch]
             for ch in image]
        x = [q] * T
    else:
        x = [[[[min(int(v), artifact.input_max) for v in row] for row in ch] for ch in frame]
             for frame in image]
    for layer in artifact.layers:
        if isinstance(layer, PoolLayer):
            k = layer.kernel
            c, oh, ow = layer.out_shape
            x = [[[[max(x[t][ch][i * k + a][j * k + b] for a in range(k) for b in range(k))
                    for j in range(ow)] for i in range(oh)] for ch in range(c)]
                 for t in range(T)]
            continue
        co, oh, ow = layer.out_shape
        ci, h, w = layer.in_shape
        cur = [[[[0] * ow for _ in range(oh)] for _ in range(co)] for _ in range(T)]
        for t in range(T):
            for o in range(co):
                for i in range(oh):
                    for j in range(ow):
                        acc = int(layer.bias[o])
                        if layer.kind is LayerKind.FC:
                            flat = [x[t][cc][a][b] for cc in range(ci) for a in range(h)
                                    for b in range(w)]
                            acc += sum(int(wv) * v for wv, v in zip(layer.weight[o], flat))
                        else:
                            k, p = layer.kernel, layer.padding
                            for cc in range(ci):
                                for a in range(k):
                                    for b in range(k):
                                        r, s = i + a - p, j + b - p
                                        if 0 <= r < h and 0 <= s < w:
                                            acc += int(layer.weight[o, cc, a, b]) * x[t][cc][r][s]
                        cur[t][o][i][j] = acc
        if layer.is_readout:
            return [sum(cur[t][o][0][0] for t in range(T)) for o in range(co)]
        out = [[[[0] * ow for _ in range(oh)] for _ in range(co)] for _ in range(T)]
        for o in range(co):
            for i in range(oh):
                for j in range(ow):
                    v = 0
                    for t in range(T):
                        if layer.neuron is NeuronKind.LIF:
                            h_ = v + ((cur[t][o][i][j] - v) >> layer.leak_shift)
                        else:
                            h_ = v + cur[t][o][i][j]
                        s = 1 if h_ >= layer.threshold[o] else 0
                        v = 0 if s else h_
                        out[t][o][i][j] = s
        x = out
    raise AssertionError("no readout")


@pytest.mark.parametrize("seed", range(6))
def test_golden_matches_naive_contract(seed):
    rng = np.random.default_rng(seed)
    spec = ["1x6x6-3c3p1-mp2-4c3p0-3fc", "2x5x5-3c3p0-2c1p0-4", "1x7x7-2c3p1-mp3-3fc"][seed % 3]
    neuron = [NeuronKind.LIF, NeuronKind.IF][seed % 2]
    encoding = InputEncoding.FRAMES if seed >= 4 else InputEncoding.DIRECT
    artifact = random_artifact(spec, seed=seed, T=int(rng.integers(1, 5)), neuron=neuron,
                               leak_shift=int(rng.integers(1, 4)) if neuron is NeuronKind.LIF
                               else 0, weight_sparsity=0.5, encoding=encoding,
                               input_bits=int(rng.integers(1, 9)))
    images = random_images(artifact, 5, seed=seed)
    golden = run_golden(artifact, images)
    for n in range(len(images)):
        expected = naive_forward(artifact, images[n])
        assert golden.scores[n].tolist() == expected, f"seed {seed}, image {n}"
        assert golden.prediction[n] == int(np.argmax(expected))


def test_argmax_ties_pick_lowest_index():
    artifact = random_artifact("1x4x4-2c3p1-3fc", seed=1)
    readout = artifact.layers[-1]
    zero = dataclasses.replace(readout, weight=np.zeros_like(readout.weight),
                               bias=np.array([5, 7, 7]))
    artifact = dataclasses.replace(artifact, layers=artifact.layers[:-1] + (zero,))
    result = run_golden(artifact, random_images(artifact, 3))
    assert result.prediction.tolist() == [1, 1, 1]
    assert result.scores[0].tolist() == [5 * artifact.T, 7 * artifact.T, 7 * artifact.T]


def test_quantise_images_rounds_half_up():
    u = np.arange(256)
    for bits in range(1, 9):
        top = (1 << bits) - 1
        expected = np.floor(u * top / 255 + 0.5).astype(np.int64)
        np.testing.assert_array_equal(quantise_images(u, bits), expected)
    np.testing.assert_array_equal(quantise_images(u, 8), u)


def test_lif_floor_shift_of_negative_values():
    """``>>`` is floor, not truncation: (-3) >> 1 == -2."""
    layer = SynapticLayer(LayerKind.FC, (1, 1, 1), (1, 1, 1), 0, 0, np.array([[1]]),
                          np.array([0]), np.array([100]), NeuronKind.LIF, 1)
    from fireflys_sw.golden import neuronal_charge
    assert int(neuronal_charge(np.array(0), np.array(-3), layer.neuron, 1)) == -2
    assert int(neuronal_charge(np.array(-2), np.array(-3), layer.neuron, 1)) == -3


@pytest.mark.parametrize("neuron", [NeuronKind.LIF, NeuronKind.IF])
def test_widths_hold_worst_case_inputs(neuron):
    """Drive every channel with its extreme current for all T steps: the membrane stays within
    the derived bounds (so a register of membrane_bits never overflows)."""
    artifact = random_artifact("1x5x5-4c3p1-3fc", seed=3, neuron=neuron,
                               leak_shift=2 if neuron is NeuronKind.LIF else 0, T=6,
                               weight_sparsity=0.2)
    layer = artifact.layers[0]
    widths = layer_widths(layer, artifact.input_max, artifact.T)
    lo, hi = layer.current_bounds(artifact.input_max)
    for current in (lo, hi):
        v = np.zeros_like(current)
        for _ in range(artifact.T):
            h = v + ((current - v) >> layer.leak_shift) if neuron is NeuronKind.LIF else v + current
            assert widths.membrane[0] <= h.min() and h.max() <= widths.membrane[1]
            assert widths.membrane[0] <= (current - v).min()
            assert (current - v).max() <= widths.membrane[1]
            v = np.where(h >= layer.threshold, 0, h)
    # the extremes are reached by real inputs: all-max pixels where weights are positive
    assert widths.current == (int(lo.min()), int(hi.max()))
    assert signed_bits(-8, 7) == 4 and signed_bits(-9, 7) == 5 and signed_bits(0, 8) == 5


def test_encode_frames_clips_counts():
    artifact = random_artifact("2x4x4-2c3p1-3fc", seed=0, encoding=InputEncoding.FRAMES,
                               input_bits=2, T=3)
    frames = np.full((1, 3, 2, 4, 4), 9, np.uint8)
    assert encode_input(artifact, frames).max() == 3


def one_if_neuron(bias, threshold, T):
    """One IF neuron (weight 0) read by a one-class readout; bias/threshold at 31/32 bits."""
    from fireflys_sw.artifact import Artifact
    hidden = SynapticLayer(LayerKind.FC, (1, 1, 1), (1, 1, 1), 0, 0, np.zeros((1, 1), np.int64),
                           np.array([bias]), np.array([threshold]), NeuronKind.IF, 0)
    readout = SynapticLayer(LayerKind.FC, (1, 1, 1), (1, 1, 1), 0, 0, np.ones((1, 1), np.int64),
                            np.zeros(1, np.int64), None, NeuronKind.NONE, 0)
    artifact = Artifact("if", T, (1, 1, 1), 8, InputEncoding.DIRECT, 4, 31, 32,
                        (hidden, readout))
    artifact.validate()
    return artifact


@pytest.mark.parametrize("bias, threshold, T, spikes", [
    # T * bias = -5 * 2**29 is below int32: the membrane never reaches the threshold 1
    (-(1 << 29), 1, 5, [0, 0, 0, 0, 0]),
    # 4 * 2**29 = 2**31 reaches the threshold 2**31 - 1 at the last step
    (1 << 29, (1 << 31) - 1, 4, [0, 0, 0, 1]),
])
def test_if_membrane_uses_the_derived_width(bias, threshold, T, spikes):
    """The two minimal cases of issue 16: the current fits int32, the IF membrane does not."""
    from fireflys_sw.golden import membrane_dtype
    artifact = one_if_neuron(bias, threshold, T)
    hidden = artifact.layers[0]
    assert layer_widths(hidden, artifact.input_max, T).membrane_bits > 32
    assert membrane_dtype(hidden, artifact.input_max, T) is np.int64
    result = run_golden(artifact, np.zeros((2, 1, 1, 1), np.uint8), record=True)
    assert result.spikes[0][:, :, 0, 0, 0].tolist() == [spikes, spikes]
    assert result.scores.tolist() == [[sum(spikes)], [sum(spikes)]]
    assert naive_forward(artifact, np.zeros((1, 1, 1), np.uint8)) == [sum(spikes)]


def test_narrow_membranes_stay_int32():
    artifact = one_if_neuron(3, 10, 4)
    from fireflys_sw.golden import membrane_dtype
    assert membrane_dtype(artifact.layers[0], artifact.input_max, 4) is np.int32


@pytest.mark.parametrize("seed", range(3))
def test_conv_offset_by_offset_equals_im2col(seed, monkeypatch):
    """Large conv layers sum the kernel offsets one by one (bounded memory): same currents."""
    from fireflys_sw import golden
    artifact = random_artifact("2x7x7-3c3p1-4c5p2-mp2-3fc", seed=seed, weight_sparsity=0.3,
                               T=3, encoding=InputEncoding.FRAMES, input_bits=3)
    images = random_images(artifact, 4, seed=seed)
    expected = run_golden(artifact, images).scores
    monkeypatch.setattr(golden, "_IM2COL_BYTES", 0)
    np.testing.assert_array_equal(run_golden(artifact, images).scores, expected)
    assert expected.tolist() == [naive_forward(artifact, image) for image in images]
