# amaranth: UnusedElaboratable=no
"""NeuronLanes (charge / fire / reset, readout sums) and Argmax against the golden model."""

import dataclasses
import random

import numpy as np
import pytest

from fireflys_sw.golden import neuron_dynamics
from fireflys_sw.spec import NeuronKind
from fireflys_hw.gateware.neuron import Argmax, NeuronLanes
from layers_helpers import random_layer
from streams_helpers import expect_idle, get, put, run_sim


def drive_events(lanes_dut, windows, rng):
    """Testbenches that play, per lane, the slots of ``windows[lane]`` (a list per group of
    ``(weight, steps)`` pairs) with random gaps; lanes run independently, as behind real
    detectors."""
    def make(lane):
        async def tb(ctx):
            ev = lanes_dut.events[lane]
            lrng = random.Random(rng.random())
            for group, pairs in windows[lane]:
                slots = [(w, st, 1) for w, st in pairs] or [(0, 0, 0)]
                for i, (w, st, pair) in enumerate(slots):
                    while lrng.random() < 0.4:
                        await ctx.tick()
                    ctx.set(ev.valid, 1)
                    ctx.set(ev.payload, {"weight": w, "pair": pair, "steps": st,
                                         "end": i == len(slots) - 1, "group": group})
                    await ctx.tick()
                    ctx.set(ev.valid, 0)
        return tb
    return [make(lane) for lane in range(lanes_dut.p_co)]


@pytest.mark.parametrize("static", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_lanes(seed, static):
    """Per window: pairs (weight, spike bits of every step) -> the T currents -> the golden
    neuron dynamics (or the readout's ``sum_t I``). ``static``: one step in the events (a
    direct-encoded first layer), whose current the lanes apply at every step."""
    rng = np.random.default_rng(seed)
    layer = random_layer(rng, co=int(rng.integers(1, 9)))
    co = layer.out_channels
    p_co = int(rng.integers(1, co + 1))
    T = int(rng.choice([1, 2, 4]))
    S = 1 if static else T
    n_groups = -(-co // p_co)
    wbits = 4
    n_windows = 3
    # random pairs per (window, lane, group): a weight and its spikes at the S steps (at
    # least one); lanes past Co hold no weights, so they get no pairs
    windows = [[[[(int(rng.integers(-8, 8)), int(rng.integers(1, 1 << S)))
                  for _ in range(int(rng.integers(0, 4)) if g * p_co + lane < co else 0)]
                 for g in range(n_groups)] for lane in range(p_co)] for _ in range(n_windows)]
    # the widths are derived from the layer's weights: make them cover the slot sums (at
    # most 3 slots of [-8, 7] per step)
    w = np.zeros_like(layer.weight.reshape(co, -1))
    if w.shape[1] < 2:
        pytest.skip("layer too small to carry the width bound")
    w[:, 0] = 8 * 4
    w[:, 1] = -8 * 4
    layer = dataclasses.replace(layer, weight=w.reshape(layer.weight.shape))
    dut = NeuronLanes(layer, p_co, T, wbits, 1, depth=n_groups * n_windows,
                      static_input=static)
    bias = np.zeros(n_groups * p_co, np.int64)
    bias[:co] = layer.bias
    th = np.ones(n_groups * p_co, np.int64)
    if not layer.is_readout:
        th[:co] = layer.threshold
    want = []
    for win in windows:
        current = np.zeros((n_groups, T, p_co), np.int64)
        for lane in range(p_co):
            for g in range(n_groups):
                for t in range(T):
                    current[g, t, lane] = bias[g * p_co + lane] + sum(
                        wt for wt, st in win[lane][g] if st >> (0 if static else t) & 1)
        if layer.is_readout:
            scores = current.sum(axis=1)
            scores.reshape(-1)[co:] = 0
            want += [{"scores": [int(v) for v in scores[g]], "group": g}
                     for g in range(n_groups)]
        else:
            cur = current.transpose(1, 0, 2).reshape(1, T, -1)            # (1, T, G*P)
            padded = dataclasses.replace(layer, threshold=th)
            s = neuron_dynamics(cur, padded)[0].reshape(T, n_groups, p_co)
            s[:, np.arange(n_groups * p_co).reshape(n_groups, p_co) >= co] = 0
            want += [{"spikes": int(sum(int(s[t, g, lane]) << (t * p_co + lane)
                                        for t in range(T) for lane in range(p_co))),
                      "group": g} for g in range(n_groups)]
    per_lane = [[(g, win[lane][g]) for win in windows for g in range(n_groups)]
                for lane in range(p_co)]
    got = []

    async def consumer(ctx):
        got.extend(await get(ctx, dut.output, len(want), 0.3, random.Random(seed)))
        await expect_idle(ctx, dut.output)

    run_sim(dut, *drive_events(dut, per_lane, random.Random(seed)), consumer)
    assert got == want, f"seed {seed}"


@pytest.mark.parametrize("seed", range(6))
def test_argmax(seed):
    rng = np.random.default_rng(seed)
    classes = int(rng.integers(1, 12))
    p_co = int(rng.integers(1, classes + 1))
    n_groups = -(-classes // p_co)
    dut = Argmax(classes, p_co, 8)
    frames = []
    for _ in range(6):
        scores = rng.integers(-4, 4, classes)          # small range: many ties
        frames.append(scores)
    items, want = [], []
    for scores in frames:
        padded = np.full(n_groups * p_co, 127)          # padded lanes must be ignored
        padded[:classes] = scores
        for g in range(n_groups):
            items.append({"scores": [int(v) for v in padded[g * p_co:(g + 1) * p_co]],
                          "group": g})
        want.append({"index": int(np.argmax(scores)), "score": int(scores.max())})
    got = []

    async def producer(ctx):
        await put(ctx, dut.input, items, 0.3, random.Random(seed))

    async def consumer(ctx):
        got.extend(await get(ctx, dut.output, len(want), 0.3, random.Random(seed + 1)))
        await expect_idle(ctx, dut.output)

    run_sim(dut, producer, consumer)
    assert got == want, f"seed {seed}"


def test_errors():
    rng = np.random.default_rng(0)
    layer = random_layer(rng, co=3, neuron=NeuronKind.LIF)
    with pytest.raises(ValueError, match=r"^p_co must be at most the layer's output channels "
                                         r"\(3\), not 4$"):
        NeuronLanes(layer, 4, 2, 4)
    with pytest.raises(ValueError, match=r"^depth must be at least 1, not 0$"):
        NeuronLanes(layer, 1, 2, 4, depth=0)
    with pytest.raises(ValueError, match=r"^p_co must be at most classes \(3\), not 5$"):
        Argmax(3, 5, 8)
    with pytest.raises(TypeError, match=r"^score_bits must be an integer, not 'x'$"):
        Argmax(3, 1, "x")


@pytest.mark.synth
@pytest.mark.parametrize("thresholds", [[16, 17, 18, 19, 19, 18, 17, 16], [5] * 8])
def test_threshold_bits_shared_by_every_group_are_constants(tmp_path, thresholds):
    """A threshold bit that is the same in every group is a constant after ECP5 synthesis, not
    a flip-flop with a constant D: Yosys merged those of equal value across cores into one
    flip-flop whose net crossed the chip (the ULX3S build's critical path, issue 14)."""
    import json
    import subprocess

    from fireflys_hw.synth import _component_rtlil, yosys_command
    from fireflys_sw.artifact import LayerKind

    rng = np.random.default_rng(7)
    layer = random_layer(rng, kind=LayerKind.CONV, ci=8, co=8, k=3, hw=(3, 3),
                         neuron=NeuronKind.LIF, padding=0)
    # P_Co = 2, four groups: per lane thresholds 16-19 (bits 2 and up never change), or one
    # layer threshold (V - TH at t = 0 is a constant)
    layer = dataclasses.replace(layer, threshold=np.array(thresholds))
    dut = NeuronLanes(layer, 2, 2, 4, 1, depth=4)
    (tmp_path / "lanes.il").write_text(_component_rtlil(dut, "top"))
    subprocess.run([yosys_command(), "-q", "-p",
                    "read_rtlil lanes.il; synth_ecp5 -top top; write_json lanes.json"],
                   cwd=tmp_path, check=True)
    top = json.loads((tmp_path / "lanes.json").read_text())["modules"]["top"]
    constant_d = [name for name, cell in top["cells"].items()
                  if cell["type"] == "TRELLIS_FF"
                  and isinstance(cell["connections"]["DI"][0], str)
                  and cell["parameters"].get("CEMUX", "").strip() == "1"]
    assert constant_d == []
