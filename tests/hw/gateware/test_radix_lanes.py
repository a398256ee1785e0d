# amaranth: UnusedElaboratable=no
"""Radix layers in gateware: the neuron lanes' shift-add and requantisation and the max-pool of
T-bit values against the golden model, under random stalls."""

import dataclasses
import random

import numpy as np
import pytest

from fireflys_sw.golden import max_pool, radix_digits, radix_fire
from fireflys_sw.spec import NeuronKind
from fireflys_hw.gateware.maxpool import MaxPool
from fireflys_hw.gateware.neuron import NeuronLanes
from layers_helpers import random_layer
from streams_helpers import expect_idle, get, run_sim
from test_neuron import drive_events
from test_padding import run_stream


@pytest.mark.parametrize("static", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_radix_lanes(seed, static):
    """Per window: pairs (weight, input digits) -> ``acc = B + sum w * X`` (``X`` the digits'
    value, MSB first; with ``static`` one plane, ``X`` = the bit) -> requantised ``Y`` -> its
    digits as the beat's T spikes; the readout emits ``acc``."""
    rng = np.random.default_rng(seed)
    readout = seed % 3 == 2
    layer = random_layer(rng, co=int(rng.integers(1, 9)),
                         neuron=NeuronKind.NONE if readout else NeuronKind.LIF)
    co = layer.out_channels
    p_co = int(rng.integers(1, co + 1))
    T = int(rng.choice([2, 3, 4]))
    S = 1 if static else T
    n_groups = -(-co // p_co)
    n_windows = 3
    windows = [[[[(int(rng.integers(-8, 8)), int(rng.integers(1, 1 << S)))
                  for _ in range(int(rng.integers(0, 4)) if g * p_co + lane < co else 0)]
                 for g in range(n_groups)] for lane in range(p_co)] for _ in range(n_windows)]
    # widths cover 3 slots of [-8, 7] times the largest value
    w = np.zeros_like(layer.weight.reshape(co, -1))
    if w.shape[1] < 2:
        pytest.skip("layer too small to carry the width bound")
    w[:, 0] = 8 * 4
    w[:, 1] = -8 * 4
    bias = rng.integers(-40, 41, co)
    shift = rng.integers(0, 6, co)
    layer = dataclasses.replace(
        layer, weight=w.reshape(layer.weight.shape), bias=bias, threshold=None,
        neuron=NeuronKind.NONE if readout else NeuronKind.RADIX, leak_shift=0,
        shift=None if readout else shift)
    dut = NeuronLanes(layer, p_co, T, 4, 1, depth=n_groups * n_windows, static_input=static,
                      radix=True)
    pad_bias = np.zeros(n_groups * p_co, np.int64)
    pad_bias[:co] = bias
    pad_shift = np.zeros(n_groups * p_co, np.int64)
    pad_shift[:co] = shift
    want = []
    for win in windows:
        acc = np.zeros((n_groups, p_co), np.int64)
        for lane in range(p_co):
            for g in range(n_groups):
                # the step mask's bit t is the digit of step t, which weighs 2^(T-1-t)
                value = (lambda st: st & 1) if static else (
                    lambda st: sum(((st >> t) & 1) << (T - 1 - t) for t in range(T)))
                acc[g, lane] = pad_bias[g * p_co + lane] + sum(
                    wt * value(st) for wt, st in win[lane][g])
        if readout:
            acc.reshape(-1)[co:] = 0
            want += [{"scores": [int(v) for v in acc[g]], "group": g} for g in range(n_groups)]
            continue
        y = radix_fire(acc.reshape(1, -1), pad_shift, T).reshape(n_groups, p_co)
        y.reshape(-1)[co:] = 0
        digits = radix_digits(y, T)                     # (G, T, P)
        want += [{"spikes": int(sum(int(digits[g, t, lane]) << (t * p_co + lane)
                                    for t in range(T) for lane in range(p_co))), "group": g}
                 for g in range(n_groups)]
    per_lane = [[(g, win[lane][g]) for win in windows for g in range(n_groups)]
                for lane in range(p_co)]
    got = []

    async def consumer(ctx):
        got.extend(await get(ctx, dut.output, len(want), 0.3, random.Random(seed)))
        await expect_idle(ctx, dut.output)

    run_sim(dut, *drive_events(dut, per_lane, random.Random(seed)), consumer)
    assert got == want, f"seed {seed}"
    assert dut.latency == 2 * T + 2 or readout


@pytest.mark.parametrize("seed,C,T,h,w,k", [(0, 3, 4, 4, 4, 2), (1, 2, 3, 5, 7, 2),
                                            (2, 4, 2, 6, 6, 3), (3, 1, 6, 4, 5, 2)])
def test_maxpool_takes_the_max_of_values(seed, C, T, h, w, k):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 1 << T, (C, h, w))
    values[rng.random(values.shape) < 0.3] = 0
    digits = radix_digits(values[None], T)[0]               # (T, C, h, w)
    items = [{"spikes": int(sum(int(digits[t, c, i, j]) << (t * C + c)
                                for t in range(T) for c in range(C)))}
             for i in range(h) for j in range(w)]
    pooled = max_pool(values[None], k)[0]
    pd = radix_digits(pooled[None], T)[0]
    want = [int(sum(int(pd[t, c, i, j]) << (t * C + c) for t in range(T) for c in range(C)))
            for i in range(h // k) for j in range(w // k)]
    got = run_stream(MaxPool(T * C, h, w, 1, k, planes=T), items, len(want), seed)
    assert got == want, f"seed {seed}"


def test_errors():
    rng = np.random.default_rng(0)
    layer = random_layer(rng, co=4)
    with pytest.raises(ValueError, match=r"^radix=True needs a radix layer or the readout, "
                                         r"not 'lif'$"):
        NeuronLanes(dataclasses.replace(layer, neuron=NeuronKind.LIF), 2, 4, 4, radix=True)
    with pytest.raises(ValueError, match=r"^planes must be 0 or a divisor of channels \(6\), "
                                         r"not 4$"):
        MaxPool(6, 4, 4, 1, 2, planes=4)


@pytest.mark.parametrize("seed,T,spec", [(0, 4, "1x8x8-4c3p1-mp2-6c3p1-mp2-5fc"),
                                         (1, 3, "1x6x6-3c3p1-5c3p1-mp2-4")])
def test_accelerator_radix_bit_exact_with_stalls(seed, T, spec):
    """A whole radix network in the Amaranth simulator, random stalls on input and output:
    scores and predictions equal the golden model's."""
    from fireflys_hw.flow import simulate_accelerator
    from fireflys_sw.synthetic import random_images, random_radix_artifact
    artifact = random_radix_artifact(spec, T=T, seed=seed, weight_sparsity=0.5)
    images = random_images(artifact, 2, seed=seed)
    report = simulate_accelerator(artifact, images, backend="pysim", stall_in=0.3,
                                  stall_out=0.3, seed=seed)
    assert report.frames == 2 and report.mismatches == 0, report.mismatched_frames
