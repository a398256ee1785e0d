"""The vectorised synapse-array recurrence equals the per-lane one, cycle for cycle, with and
without the orchestrator's walk that drops empty chunks in front."""

import numpy as np
import pytest

from fireflys_hw.compiler import cycles as cyclemodel
from fireflys_hw.gateware.neuron import neuron_latency
from fireflys_hw.compiler.reference import bit_planes, im2col_windows
from fireflys_hw.gateware.synapse import array_cycles
from fireflys_hw.compiler.weights import expanded_weight, pack_weights

from layers_helpers import random_layer, random_spikes


def test_constants_match_the_gateware():
    for T in (1, 2, 4):
        for readout in (False, True):
            assert cyclemodel.neuron_latency(T, readout) == neuron_latency(T, readout)


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
    steps = 1 if static else T
    p_co = int(rng.integers(1, layer.out_channels + 1))
    p_ci = int(rng.choice([1, 2, 4, 8]))
    window_depth = int(rng.choice([0, 2, 16]))
    depth = int(rng.choice([2, 16]))
    walk = seed % 2 == 0
    frames = [random_spikes(rng, layer, T, input_bits=input_bits if input_bits > 1 else None,
                            density=float(rng.choice([0.1, 0.3])))
              for _ in range(3)]
    pw = pack_weights(layer, p_co, p_ci, input_bits)
    expected = []
    for x in frames:
        beats = im2col_windows(x, layer, p_ci, p_co, input_bits if input_bits > 1 else None,
                               static, drop_empty=False)
        out = array_cycles(pw, beats, layer.is_readout, T=T, steps=steps,
                           window_depth=window_depth, depth=depth, walk=walk)
        expected.append(out[-1] + 1)
    xs = np.stack([_binary(x, input_bits, static) for x in frames])
    pairs, last_chunk, empty = cyclemodel.lane_pairs(
        xs, expanded_weight(layer, input_bits) != 0, p_co, p_ci, layer.padding)
    beats = im2col_windows(frames[0], layer, p_ci, p_co,
                           input_bits if input_bits > 1 else None, static, drop_empty=False)
    assert pairs.shape[1] == len(beats)
    assert list(last_chunk) == [bool(b["last_chunk"]) for b in beats]
    assert list(empty[0]) == [not b["spikes"] for b in beats]
    got = cyclemodel.batch_array_cycles(pairs, last_chunk, empty=empty if walk else None,
                                        readout=layer.is_readout, T=T,
                                        window_depth=window_depth, depth=depth)
    assert list(got) == expected
