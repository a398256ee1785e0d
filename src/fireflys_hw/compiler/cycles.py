"""The cycle model of a layer core (numpy only): the planner's two estimates of a core's cycles
per frame, and the synapse array's cycle recurrence under the second.

:func:`predicted_cycles` is a fast formula the search ranks candidates with;
:func:`recurrence_cycles` evaluates the synapse array's recurrence on measured frames, for
the plan the search chose.

:func:`fireflys_hw.gateware.synapse.array_cycles` evaluates the register-transfer recurrence of a
:class:`~fireflys_hw.gateware.synapse.SynapseArray` (lane FIFOs, each lane's
:class:`~fireflys_hw.gateware.detector.DetectorModel`, the result credit) one lane and one
cycle at a time in Python objects; tests hold it equal to simulation. :func:`batch_array_cycles` is
the same recurrence on numpy arrays of shape ``(frames, lanes)``, one Python iteration per clock
cycle for all frames at once, and :func:`lane_pairs` computes its input (every window beat's
effectual pairs per lane) straight from spike maps, without building the beat list. Tests hold
the two recurrences equal cycle for cycle.
"""

from __future__ import annotations

import math

import numpy as np

from fireflys_sw.artifact import SynapticLayer

from .base import LANE_FIFO_DEPTH, WINDOW_DEPTH, binary_in_channels, lane_block, layer_window
from .weights import expanded_weight
from .workload import LayerStats

__all__ = ["predicted_cycles", "recurrence_cycles", "lane_pairs", "batch_array_cycles",
           "NEURON_LATENCY", "DETECTOR_TAIL"]

#: :data:`fireflys_hw.gateware.neuron.NEURON_LATENCY` (a test keeps them equal).
NEURON_LATENCY = 2
#: Cycles from the slot a detector's B stage emits to its ``events`` output (C, D, E).
DETECTOR_TAIL = 3


def lane_pairs(x: np.ndarray, mask: np.ndarray, p_co: int, p_ci: int,
               padding: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Effectual pairs of every window beat and lane, in window-stream order.

    ``x[f, t, c, h, w]``: binary input maps (bit planes for a multi-bit first layer; ``t``
    the streamed steps), unpadded. ``mask[o, c, kh, kw]``: non-zero weights (for fc, the
    kernel is the whole map). Beats are ``for output pixel: for group: for t: for chunk
    (kh, kw, channel chunk)`` as :func:`fireflys_hw.compiler.reference.window_beats` lists them;
    lane ``l`` of group ``g`` serves channel ``g * p_co + l``. Returns ``(pairs[f, beat, lane],
    last_chunk[beat], last_step[beat])``."""
    x = np.asarray(x)
    f, s, c, h, w = x.shape
    co, ci, kh, kw = mask.shape
    if ci != c:
        raise ValueError(f"mask has {ci} input channels, the maps {c}")
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho, wo = x.shape[3] - kh + 1, x.shape[4] - kw + 1
    nci = -(-c // p_ci)
    groups = -(-co // p_co)
    xs = np.zeros((f, s, nci * p_ci) + x.shape[3:], np.float32)
    xs[:, :, :c] = x
    ms = np.zeros((groups * p_co, nci * p_ci, kh, kw), np.float32)
    ms[:co, :ci] = mask != 0
    # out[f, s, oh, ow, o, ky, kx, cc]
    out = np.empty((f, s, ho, wo, groups * p_co, kh, kw, nci),
                   np.uint8 if p_ci < 256 else np.uint16)
    for ky in range(kh):
        for kx in range(kw):
            win = xs[:, :, :, ky:ky + ho, kx:kx + wo].reshape(f, s, nci, p_ci, ho, wo)
            m = ms[:, :, ky, kx].reshape(-1, nci, p_ci)
            # sum over the bits of each chunk: (f, s, ho, wo, o, nci)
            out[:, :, :, :, :, ky, kx, :] = np.einsum("fscbhw,ocb->fshwoc", win, m,
                                                      optimize=True)
    n_chunks = kh * kw * nci
    # -> (f, oh, ow, group, t, chunk, lane)
    out = out.reshape(f, s, ho, wo, groups, p_co, n_chunks).transpose(0, 2, 3, 4, 1, 6, 5)
    pairs = np.ascontiguousarray(out).reshape(f, -1, p_co)
    beats = pairs.shape[1]
    chunk = np.arange(beats) % n_chunks
    step = (np.arange(beats) // n_chunks) % s
    return pairs, chunk == n_chunks - 1, (chunk == n_chunks - 1) & (step == s - 1)


def batch_array_cycles(pairs: np.ndarray, last_chunk: np.ndarray, last_step: np.ndarray, *,
                       readout: bool = False, window_depth: int = 16, depth: int = 16,
                       static_T: int | None = None, skip_empty: bool = True) -> np.ndarray:
    """Cycles of each frame through a synapse array, frames on their own (each from cycle 0,
    beats offered back to back, output always ready): ``last output cycle + 1``, as
    :func:`fireflys_hw.gateware.synapse.array_cycles` computes it for one frame."""
    pairs = np.asarray(pairs)
    nf, n, nl = pairs.shape
    last_chunk = np.asarray(last_chunk, bool)
    produces = last_chunk & (np.asarray(last_step, bool) | (not readout))
    step_produces = produces[last_chunk]
    n_steps = int(last_chunk.sum())
    per_result = static_T or 1
    shape = (nf, nl)
    fr = np.arange(nf)
    flat_pairs = pairs.reshape(-1).astype(np.int64)
    # flat index of (frame, beat 0, lane) in flat_pairs
    base = (fr[:, None] * n * nl + np.arange(nl)[None, :])
    chunk_end = np.append(last_chunk, False)
    taken_result = np.append(produces, False).astype(np.int64)
    # detector registers (DetectorModel): A0, A1 = (valid, pairs, last chunk); B = (valid,
    # slots left, last chunk, carries a pair)
    a0_v = np.zeros(shape, bool)
    a0_p = np.zeros(shape, np.int64)
    a0_l = np.zeros(shape, bool)
    a1_v = np.zeros(shape, bool)
    a1_p = np.zeros(shape, np.int64)
    a1_l = np.zeros(shape, bool)
    b_v = np.zeros(shape, bool)
    b_left = np.zeros(shape, np.int64)
    b_l = np.zeros(shape, bool)
    b_pair = np.zeros(shape, bool)
    # each lane's FIFO holds beats head .. nxt - 1: all written in earlier cycles, as a beat
    # taken in this cycle is appended after the lanes read their heads
    head = np.zeros(shape, np.int64)
    nxt = np.zeros(nf, np.int64)
    ends = np.zeros(shape, np.int64)          # steps each lane has ended
    step_end = np.zeros((nf, n_steps + 1), np.int64)   # latest lane end slot of each step
    results = np.zeros(nf, np.int64)
    taken = np.zeros(nf, np.int64)
    never = np.iinfo(np.int64).max
    pops = np.full((nf, n_steps + 1), never, np.int64)
    n_pops = np.zeros(nf, np.int64)
    popped = np.zeros(nf, np.int64)
    last_out = np.full(nf, -1, np.int64)
    skip = bool(skip_empty)
    nothing = np.zeros(shape, bool)           # what empty-chunk skipping does when it is off
    cycle = 0
    while (results < n_steps).any():
        # the detectors' combinational plan (DetectorModel._plan)
        b_last = b_v & (b_left <= 1)
        b_take = ~b_v | b_last
        a1_empty = (a1_v & (a1_p == 0)) if skip else nothing
        absorb = a1_empty & a1_l & b_v & b_pair & ~b_l
        discard = a1_empty & (~a1_l | absorb)
        a1_free = ~a1_v | discard | b_take
        a0_drop = (a0_v & (a0_p == 0) & ~a1_free & (~a0_l | ((a1_p > 0) & ~a1_l))) if skip \
            else nothing
        ready = ~a0_v | a1_free | a0_drop
        # credit: results in flight (taken, not yet popped) below depth; pops are distinct
        # cycles, so at most one more has happened since the last cycle
        popped += pops[fr, popped] < cycle
        take = (nxt < n) & ((taken - popped) < depth)
        if window_depth:
            take &= ((nxt[:, None] - head) < window_depth).all(axis=1)
            has = (head < nxt[:, None]) & ready
            index = head
        else:
            take &= ready.all(axis=1)
            has = np.broadcast_to(take[:, None], shape)
            index = np.broadcast_to(nxt[:, None], shape)
        in_p = np.where(has, flat_pairs.take(base + np.minimum(index, n - 1) * nl), 0)
        in_l = has & chunk_end[index]
        # clock: B, then A1 from A0, then A0 from the FIFO
        end = b_v & ((b_l & b_last) | (absorb & b_last))
        load = b_take & a1_v & ~discard
        b_left = np.where(load, a1_p, np.where(b_take, 0, b_left - 1))
        b_l = np.where(load, a1_l, ~b_take & (b_l | absorb))
        b_pair = np.where(load, a1_p > 0, ~b_take & b_pair)
        b_v = load | ~b_take
        mark = ~a1_free & a0_drop & a0_l
        a1_v = np.where(a1_free, a0_v, a1_v)
        a1_p = np.where(a1_free, a0_p, a1_p)
        a1_l = np.where(a1_free, a0_l, a1_l | mark)
        a0_v = np.where(ready, has, a0_v)
        a0_p = np.where(ready, in_p, a0_p)
        a0_l = np.where(ready, in_l, a0_l)
        if window_depth:
            head += has
        # a lane's end slot reaches its events output DETECTOR_TAIL cycles later
        if end.any():
            ff, ll = np.nonzero(end)
            np.maximum.at(step_end, (ff, ends[ff, ll]), cycle + DETECTOR_TAIL)
            ends += end
            # a step every lane has ended (at most one per cycle per frame): its result
            done = np.flatnonzero(ends.min(axis=1) > results)
            if done.size:
                r = results[done]
                made = step_produces[r]
                start = np.maximum(step_end[done, r] + NEURON_LATENCY, last_out[done] + 1)
                last_out[done] = np.where(made, start + per_result - 1, last_out[done])
                f_made = done[made]
                pops[f_made, n_pops[f_made]] = last_out[f_made]
                n_pops[f_made] += 1
                results[done] = r + 1
        if take.any():
            taken += take * taken_result[nxt]
            nxt += take
        cycle += 1
    return last_out + 1


def predicted_cycles(layer: SynapticLayer, stats: LayerStats, p_co: int, p_ci: int, T: int,
                     *, input_bits: int = 1, static_input: bool = False,
                     window_depth: int = WINDOW_DEPTH) -> float:
    """Predicted cycles per frame of one layer core, frames back to back (model estimate).

    The formula of :mod:`fireflys_hw.gateware.core` (its module docstring;
    :func:`~fireflys_hw.gateware.core.core_cycles` evaluates the compute term on one frame). Per
    (output pixel, group, streamed time step) the orchestrator sends ``n_chunks`` window beats, one
    per cycle, empty ones included, into a FIFO of ``window_depth`` beats per detector lane; a lane
    needs one cycle per effectual pair (empty chunks are dropped in its look-ahead, and the step's
    bias rides in a slot that would otherwise be wasted), and the lanes drift apart by up to
    ``window_depth`` beats. So a block of ``B`` consecutive steps costs ``max(B * n_chunks,
    busiest lane's pairs in the block)``, ``B = lane_block(window_depth, n_chunks)`` (2 when a
    lane FIFO holds a step, else 1; :func:`lane_block`)::

        S       = 1 if static_input else T     # time steps the core streams
        compute = sum over blocks of B consecutive (pixel, group, streamed step) of
                      max(B * n_chunks, max over the lanes of the block's pairs)
        compute = max(compute, Ho * Wo * G * T) if static_input   # T beats out per result
        fill    = (Kh - 1) * Wp * S        # the window rows not prefetched during the last frame
        cycles  = max(compute + fill, Hp * Wp * S)       # the input side: one beat per cycle

    ``static_input``: the layer's input is the same at every time step (a direct-encoded
    first layer); its core takes one beat per pixel and computes the current once, and the
    neuron lanes apply it at every step (:class:`fireflys_hw.gateware.core.LayerCore`). ``stats``
    are then the same at every step (as :func:`measure_densities` records them) and count once.
    ``window_depth = 0``: lanes that take each beat together, ``B = 1``.

    With measured ``stats.pairs`` the compute term is exact for the measured frames (mean over
    them). Without, the density model: ``mu = stats.mean_pairs`` pairs per lane and step, the
    busiest of ``P_Co`` lanes over a block ``~ mu + sqrt(2 * ln(P_Co) * mu / B)`` per step
    (the expected maximum of ``P_Co`` Poisson counts of mean ``B * mu``, Gaussian
    approximation), and ``compute = Ho * Wo * G * S * max(n_chunks, busiest)``. Simulated
    cores came out within a few per cent of the formula, either way (a random SCNN5: within
    3 %; ``benchmarks/bench_core.py``); layers whose lanes are each busy on consecutive
    chunks are slower than it (a lane's look-ahead holds two non-empty chunks).
    """
    co, ho, wo = layer.out_shape
    kh, kw = layer_window(layer)
    ci = binary_in_channels(layer, input_bits)
    groups = -(-co // p_co)
    n_chunks = kh * kw * -(-ci // p_ci)
    hp = layer.in_shape[1] + 2 * layer.padding
    wp = layer.in_shape[2] + 2 * layer.padding
    steps = 1 if static_input else T
    block = lane_block(window_depth, n_chunks)
    if stats.pairs is not None:
        compute = sum(float(np.dot(counts, np.maximum(values, length * n_chunks)))
                      for length, values, counts
                      in stats.lane_max_histogram(p_co, block, static_input))
    else:
        mu = stats.mean_pairs
        busiest = mu + math.sqrt(2.0 * math.log(p_co) * mu / block) if p_co > 1 else mu
        compute = ho * wo * groups * steps * max(float(n_chunks), busiest)
    if static_input:
        # the lanes emit T beats per (pixel, group), one per cycle
        compute = max(compute, float(ho * wo * groups * T))
    return max(compute + (kh - 1) * wp * steps, float(hp * wp * steps))


def recurrence_cycles(layer: SynapticLayer, stats: LayerStats, p_co: int, p_ci: int, T: int,
                      *, input_bits: int = 1, static_input: bool = False,
                      window_depth: int = WINDOW_DEPTH, depth: int = LANE_FIFO_DEPTH) -> float:
    """Predicted cycles per frame of one layer core from the synapse array's cycle recurrence
    on the measured frames (model estimate, the planner's final figure).

    Where :func:`predicted_cycles` approximates how far the lanes drift apart (blocks of
    ``lane_block`` steps), this evaluates the register-transfer recurrence of the array
    (:func:`fireflys_hw.compiler.cycles.batch_array_cycles`: lane FIFOs of ``window_depth`` beats,
    each detector's look-ahead, ``depth`` results in flight) on every measured frame's window
    beats, then adds the same window fill and input floor::

        cycles = max(mean over frames of array cycles + (Kh - 1) * Wp * S,  Hp * Wp * S)

    It needs ``stats.inputs`` (:func:`measure_densities`); its cost is one Python iteration
    per simulated cycle for all frames together (about 0.1 ms per cycle on a laptop core), so
    the planner ranks candidates with :func:`predicted_cycles` and evaluates its choice with
    this.
    """
    if stats.inputs is None:
        raise ValueError("recurrence_cycles needs the measured inputs (measure_densities)")
    kh, _ = layer_window(layer)
    mask = expanded_weight(layer, input_bits) != 0
    pairs, last_chunk, last_step = lane_pairs(stats.inputs, mask, p_co, p_ci, layer.padding)
    cycles = batch_array_cycles(pairs, last_chunk, last_step, readout=layer.is_readout,
                                window_depth=window_depth, depth=depth,
                                static_T=T if static_input else None)
    hp = layer.in_shape[1] + 2 * layer.padding
    wp = layer.in_shape[2] + 2 * layer.padding
    steps = 1 if static_input else T
    return max(float(cycles.mean()) + (kh - 1) * wp * steps, float(hp * wp * steps))
