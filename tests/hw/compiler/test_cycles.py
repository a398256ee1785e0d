"""The vectorised synapse-array recurrence equals the per-lane one, cycle for cycle."""

import numpy as np
import pytest

from fireflys_hw.compiler import cycles
from fireflys_hw.gateware.neuron import NEURON_LATENCY
from fireflys_hw.compiler.reference import bit_planes, im2col_windows
from fireflys_hw.gateware.synapse import array_cycles
from fireflys_hw.compiler.weights import expanded_weight, pack_weights

from layers_helpers import random_layer, random_spikes


def test_constants_match_the_gateware():
    assert cycles.NEURON_LATENCY == NEURON_LATENCY


def _binary(x, input_bits, static):
    x = np.asarray(x)[:1] if static else np.asarray(x)
    return bit_planes(x, input_bits) if input_bits > 1 else x


@pytest.mark.parametrize("seed", range(12))
def test_batch_equals_per_lane_recurrence(seed):
    rng = np.random.default_rng(seed)
    layer = random_layer(rng)
    T = int(rng.integers(1, 4))
    input_bits = int(rng.choice([1, 1, 3]))
    static = input_bits > 1 and bool(rng.integers(0, 2))
    p_co = int(rng.integers(1, layer.out_channels + 1))
    p_ci = int(rng.choice([1, 2, 4, 8]))
    window_depth = int(rng.choice([0, 2, 16]))
    depth = int(rng.choice([2, 16]))
    frames = [random_spikes(rng, layer, T, input_bits=input_bits if input_bits > 1 else None)
              for _ in range(3)]
    pw = pack_weights(layer, p_co, p_ci, input_bits)
    expected = []
    for x in frames:
        beats = im2col_windows(x, layer, p_ci, p_co, input_bits if input_bits > 1 else None,
                               static)
        out = array_cycles(pw, beats, layer.is_readout, window_depth=window_depth,
                           depth=depth, static_T=T if static else None)
        expected.append(out[-1] + 1)
    xs = np.stack([_binary(x, input_bits, static) for x in frames])
    pairs, last_chunk, last_step = cycles.lane_pairs(
        xs, expanded_weight(layer, input_bits) != 0, p_co, p_ci, layer.padding)
    beats = im2col_windows(frames[0], layer, p_ci, p_co,
                           input_bits if input_bits > 1 else None, static)
    assert pairs.shape[1] == len(beats)
    assert list(last_chunk) == [bool(b["last_chunk"]) for b in beats]
    assert list(last_step) == [bool(b["last_chunk"] and b["last_step"]) for b in beats]
    got = cycles.batch_array_cycles(pairs, last_chunk, last_step, readout=layer.is_readout,
                                        window_depth=window_depth, depth=depth,
                                        static_T=T if static else None)
    assert list(got) == expected
