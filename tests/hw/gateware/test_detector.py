# amaranth: UnusedElaboratable=no
"""SparsityDetector: the effectual weights of every window (pairs effectual in any step, each
with its spike at every step), in order, under input gaps; and the exact cycle count of
:func:`detector_cycles` for back-to-back input."""

import dataclasses
import random

import numpy as np
import pytest
from amaranth.hdl import Fragment

from fireflys_sw.artifact import LayerKind
from fireflys_hw.gateware import detector
from fireflys_hw.gateware.detector import DETECTOR_LATENCY, SparsityDetector, detector_cycles
from fireflys_hw.compiler.reference import any_step, im2col_windows
from fireflys_hw.compiler.weights import pack_weights
from layers_helpers import random_layer, random_spikes
from streams_helpers import put, run_sim


def expected_events(pw, lane, beats, T):
    """Per window beat stream, the slots (weight and its steps, or None; end; group) a lane
    must emit."""
    words = pw.bitmap_words(lane)
    store = pw.stores[lane]
    out, window_pairs = [], 0
    for b in beats:
        vec = words[b["group"] * pw.n_chunks + b["chunk"]]
        x = any_step(b["spikes"], pw.p_ci, T) & vec
        addr = int(pw.bases[lane, b["group"], b["chunk"]])
        for bit in range(pw.p_ci):
            if vec >> bit & 1:
                if x >> bit & 1:
                    steps = sum((b["spikes"] >> (t * pw.p_ci + bit) & 1) << t for t in range(T))
                    out.append(((int(store[addr]), steps), 0, b["group"]))
                    window_pairs += 1
                addr += 1
        if b["last_chunk"]:
            if window_pairs:
                w, _, g = out[-1]
                out[-1] = (w, 1, g)
            else:
                out.append((None, 1, b["group"]))
            window_pairs = 0
    return out


def per_window(events):
    """Slots grouped into windows: ``(group, [(weight, steps)])``. Whether a window's end
    mark rides on its last pair or takes a slot of its own depends on timing (an empty last
    chunk that reaches A1 while the last pair is still in B merges), so only this is the
    contract."""
    windows, weights = [], []
    for w, end, g, *_ in events:
        if w is not None:
            weights.append(w)
        if end:
            windows.append((g, weights))
            weights = []
    assert not weights, "slots after the last end mark"
    return windows


def beat_work(pw, lane, beats, T):
    words = pw.bitmap_words(lane)
    return [(bin(any_step(b["spikes"], pw.p_ci, T)
                 & words[b["group"] * pw.n_chunks + b["chunk"]]).count("1"),
             bool(b["last_chunk"])) for b in beats]


def random_case(seed):
    rng = np.random.default_rng(seed)
    layer = random_layer(rng)
    while layer.in_channels * layer.out_shape[1] * layer.out_shape[2] > 150:
        layer = random_layer(rng)      # keep the default run fast
    T = int(rng.choice([1, 2, 4]))
    p_co = int(rng.integers(1, min(4, layer.out_channels) + 1))
    p_ci = int(rng.choice([4, 8]))
    x = random_spikes(rng, layer, T)
    pw = pack_weights(layer, p_co, p_ci)
    # the detector takes empty chunks too (the orchestrator may be built without dropping)
    beats = im2col_windows(x, layer, p_ci, p_co, drop_empty=bool(seed % 2))
    return rng, layer, T, pw, beats


def collect_windows(dut, beats, n_windows, gap_prob, seed):
    """Like :func:`collect_events`, until ``n_steps`` end marks came (slot count varies)."""
    events = []

    async def producer(ctx):
        await put(ctx, dut.input, beats, gap_prob, random.Random(seed))

    async def monitor(ctx):
        ends, idle = 0, 0
        while ends < n_windows:
            _, _, valid, ev = await ctx.tick().sample(dut.events.valid, dut.events.payload)
            if valid:
                events.append(((int(ev.weight), int(ev.steps)) if ev.pair else None,
                               int(ev.end), int(ev.group)))
                ends += int(ev.end)
                idle = 0
            idle += 1
            assert idle < 1000, "detector deadlocked"
        for _ in range(DETECTOR_LATENCY + 2):
            _, _, valid = await ctx.tick().sample(dut.events.valid)
            assert not valid, "extra event slot"

    run_sim(dut, producer, monitor)
    return events


def collect_events(dut, beats, n_expected, gap_prob, seed):
    """Drive ``beats`` with random gaps; record every event slot and the cycle it came in
    (cycle 0 = the first input transfer when ``gap_prob == 0``)."""
    events = []

    async def producer(ctx):
        await put(ctx, dut.input, beats, gap_prob, random.Random(seed))

    async def monitor(ctx):
        cycle = 0
        while len(events) < n_expected:
            _, _, valid, ev = await ctx.tick().sample(dut.events.valid, dut.events.payload)
            if valid:
                events.append(((int(ev.weight), int(ev.steps)) if ev.pair else None,
                               int(ev.end), int(ev.group), cycle))
            cycle += 1
            assert cycle < 50 * (len(beats) + 10), "detector deadlocked"
        for _ in range(DETECTOR_LATENCY + 2):
            _, _, valid = await ctx.tick().sample(dut.events.valid)
            assert not valid, "extra event slot"

    run_sim(dut, producer, monitor)
    return events


@pytest.mark.parametrize("seed", range(8))
def test_events(seed):
    rng, layer, T, pw, beats = random_case(seed)
    lane = int(rng.integers(0, pw.p_co))
    want = expected_events(pw, lane, beats, T)
    dut = SparsityDetector(pw, lane, T)
    n_windows = sum(b["last_chunk"] for b in beats)
    got = collect_windows(dut, beats, n_windows, 0.3, seed)
    assert per_window(got) == per_window(want), f"seed {seed}"


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("skip_empty", [True, False])
def test_cycles(seed, skip_empty):
    """Back-to-back input, events always taken: every slot's cycle is what the documented
    recurrence says, and the total lies within the documented bounds (the paper's behaviour,
    ``skip_empty=False``, is exactly ``sum over chunks of max(1, pairs) + DETECTOR_LATENCY``)."""
    rng, layer, T, pw, beats = random_case(100 + seed)
    lane = int(rng.integers(0, pw.p_co))
    want = expected_events(pw, lane, beats, T)
    work = beat_work(pw, lane, beats, T)
    model = detector_cycles(work, skip_empty)
    dut = SparsityDetector(pw, lane, T, skip_empty=skip_empty)
    got = collect_events(dut, beats, len(model), 0.0, seed)
    assert [e[3] for e in got] == model, f"seed {seed}"
    assert per_window(got) == per_window(want), f"seed {seed}"
    steps, pairs = [], 0
    for n, last in work:
        pairs += n
        if last:
            steps.append(pairs)
            pairs = 0
    # B needs a slot per pair and one per window without any; the input a cycle per beat
    lower = max(sum(max(1, p) for p in steps), len(beats) - 1) + DETECTOR_LATENCY
    upper = sum(max(1, n) for n, _ in work) + DETECTOR_LATENCY
    total = model[-1] + 1
    assert lower <= total <= upper, f"seed {seed}"
    if not skip_empty:
        assert total == upper


@pytest.mark.parametrize("seed", range(4))
def test_block_ram_table(seed, monkeypatch):
    """The bitmap table as a memory with a synchronous read (block RAM, for big tables) gives
    the same slots in the same cycles as the LUT ROM."""
    monkeypatch.setattr(detector, "TABLE_BRAM_ROWS", 1)
    rng, layer, T, pw, beats = random_case(200 + seed)
    lane = int(rng.integers(0, pw.p_co))
    dut = SparsityDetector(pw, lane, T)
    assert any(name == "table" for _, name, *_ in Fragment.get(dut, None).subfragments)
    model = detector_cycles(beat_work(pw, lane, beats, T))
    got = collect_events(dut, beats, len(model), 0.0, seed)
    assert [e[3] for e in got] == model
    assert per_window(got) == per_window(expected_events(pw, lane, beats, T))


def test_dense_rate():
    """Every chunk full: one effectual pair per cycle after the fill."""
    rng = np.random.default_rng(7)
    layer = random_layer(rng, kind=LayerKind.CONV, ci=8, co=2, k=1, hw=(2, 2), sparsity=0.0,
                         padding=0)
    layer = dataclasses.replace(layer, weight=np.where(layer.weight == 0, 1, layer.weight))
    pw = pack_weights(layer, 1, 8)
    beats = im2col_windows(np.ones((2, 8, 2, 2), int), layer, 8, 1)
    got = collect_events(SparsityDetector(pw, 0, 2), beats, 8 * len(beats), 0.0, 0)
    assert all(e[0][1] == 0b11 for e in got)
    cycles = [e[3] for e in got]
    assert cycles == list(range(DETECTOR_LATENCY, DETECTOR_LATENCY + len(cycles)))


@pytest.mark.parametrize("pattern", [
    (0, 0, 0, 0, 0, 0, 8, 8, 0),     # busy late in the step: the empty last chunk's end mark
                                     # goes to the chunk in B (absorb), A1 moves on
    (8, 8, 0, 0, 0, 0, 0, 0, 0),     # busy early: the empties drop while B works
    (3, 3, 0, 0, 3, 3, 0, 0, 0),     # empties dropped in A0 while A1 waits for B
    (4, 0, 4, 4, 0, 0, 0, 0, 0),
    (2, 2, 0, 0, 0, 0, 0, 0, 0),
])
def test_look_ahead(pattern):
    """A 3x3 window of 8 channels, ``pattern[i]`` effectual pairs in chunk ``i``, six windows
    back to back: the
    cycles are the model's, and within a few cycles of the bound ``max(sum over windows of
    pairs, beats)`` however the pairs sit in the window (the look-ahead drops empty chunks
    while B works, in A1 and in A0, and hands an empty last chunk's end mark on)."""
    rng = np.random.default_rng(3)
    layer = random_layer(rng, kind=LayerKind.CONV, ci=8, co=1, k=3, hw=(3, 3), padding=0,
                         sparsity=0.0)
    layer = dataclasses.replace(layer, weight=np.where(layer.weight == 0, 1, layer.weight))
    T, n = 2, 6
    # the chunks directly: odd windows spike at step 1, even ones at step 0
    beats = []
    for w in range(n):
        for i, k in enumerate(pattern):
            beats.append({"spikes": (1 << k) - 1 if w % 2 == 0 else ((1 << k) - 1) << 8,
                          "chunk": i, "group": 0, "last_chunk": int(i == 8)})
    pw = pack_weights(layer, 1, 8)
    work = beat_work(pw, 0, beats, T)
    assert [k for k, _ in work] == list(pattern) * n
    model = detector_cycles(work)
    got = collect_events(SparsityDetector(pw, 0, T), beats, len(model), 0.0, 0)
    assert [e[3] for e in got] == model
    assert per_window(got) == per_window(expected_events(pw, 0, beats, T))
    bound = max(n * max(1, sum(pattern)), len(beats) - 1)
    assert model[-1] + 1 - DETECTOR_LATENCY <= bound + n


def test_empty_window_after_an_absorbed_end():
    """A window's empty last chunk hands its end mark to the busy chunk in B (absorb); the
    next window, empty, must not hand its end mark to the same chunk: B stays open for only
    one end mark (the b_open register is cleared by the absorb)."""
    rng = np.random.default_rng(5)
    layer = random_layer(rng, kind=LayerKind.CONV, ci=16, co=1, k=1, hw=(3, 3), padding=0,
                         sparsity=0.0)
    layer = dataclasses.replace(layer, weight=np.where(layer.weight == 0, 1, layer.weight))
    pw = pack_weights(layer, 1, 8)
    assert pw.n_chunks == 2
    T = 1
    # window 0: 8 pairs, then an empty last chunk; windows 1-3: empty
    beats = [{"spikes": 0xFF if w == 0 and i == 0 else 0, "chunk": i, "group": 0,
              "last_chunk": i} for w in range(4) for i in range(2)]
    work = beat_work(pw, 0, beats, T)
    assert [k for k, _ in work] == [8] + [0] * 7
    model = detector_cycles(work)
    got = collect_events(SparsityDetector(pw, 0, T), beats, len(model), 0.0, 0)
    assert [e[3] for e in got] == model
    assert per_window(got) == per_window(expected_events(pw, 0, beats, T))
    assert len(per_window(got)) == 4


def test_errors():
    rng = np.random.default_rng(0)
    pw = pack_weights(random_layer(rng, co=3), 3, 4)
    with pytest.raises(ValueError, match=r"^lane must be in \[0, 3\), not 3$"):
        SparsityDetector(pw, 3, 2)
    with pytest.raises(ValueError, match=r"^T must be at least 1, not 0$"):
        SparsityDetector(pw, 0, 0)
    with pytest.raises(TypeError, match=r"^weights must be a PackedWeights, not None$"):
        SparsityDetector(None, 0, 2)
