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
           "neuron_latency", "readout_registers", "DETECTOR_TAIL"]

#: Cycles from the slot a detector's B stage emits to its ``events`` output (C, D, E, F, G).
#: (Two more than before issue 14: the store address has a register of its own, and so has
#: the weight read.)
DETECTOR_TAIL = 5


def neuron_latency(T: int, readout: bool) -> int:
    """:func:`fireflys_hw.gateware.neuron.neuron_latency` (a test keeps them equal)."""
    return 2 + readout_registers(T) if readout else 2 * T + 2


def readout_registers(T: int) -> int:
    """Register stages in the readout's adder tree over its ``T`` accumulators: one after
    every level but the last (``ceil(log2 T) - 1``; issue 14: a 4-term sum in one cycle was
    the fc core's deepest path)."""
    return max(0, (T - 1).bit_length() - 1)


def lane_pairs(x: np.ndarray, mask: np.ndarray, p_co: int, p_ci: int,
               padding: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Effectual pairs of every window chunk and lane, in window-stream order.

    ``x[f, t, c, h, w]``: binary input maps (bit planes for a multi-bit first layer; ``t``
    the streamed steps), unpadded. ``mask[o, c, kh, kw]``: non-zero weights (for fc, the
    kernel is the whole map). Chunks are ``for output pixel: for group: for chunk (kh, kw,
    channel chunk)`` as :func:`fireflys_hw.compiler.reference.window_beats` lists them with
    ``drop_empty=False``; lane ``l`` of group ``g`` serves channel ``g * p_co + l``; a chunk's
    pairs are those effectual in any step (``popcount(OR over t of spikes & bitmap)``).
    Returns ``(pairs[f, chunk, lane], last_chunk[chunk], empty[f, chunk])``, ``empty`` the
    chunks that are 0 at every step (the orchestrator drops them unless ``last_chunk``)."""
    x = np.asarray(x)
    f, s, c, h, w = x.shape
    co, ci, kh, kw = mask.shape
    if ci != c:
        raise ValueError(f"mask has {ci} input channels, the maps {c}")
    x = x.any(axis=1)
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho, wo = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    nci = -(-c // p_ci)
    groups = -(-co // p_co)
    xs = np.zeros((f, nci * p_ci) + x.shape[2:], np.float32)
    xs[:, :c] = x
    ms = np.zeros((groups * p_co, nci * p_ci, kh, kw), np.float32)
    ms[:co, :ci] = mask != 0
    # out[f, oh, ow, o, ky, kx, cc]; occupied[f, oh, ow, ky, kx, cc]
    out = np.empty((f, ho, wo, groups * p_co, kh, kw, nci),
                   np.uint8 if p_ci < 256 else np.uint16)
    occupied = np.empty((f, ho, wo, kh, kw, nci), bool)
    for ky in range(kh):
        for kx in range(kw):
            win = xs[:, :, ky:ky + ho, kx:kx + wo].reshape(f, nci, p_ci, ho, wo)
            m = ms[:, :, ky, kx].reshape(-1, nci, p_ci)
            # sum over the bits of each chunk: (f, ho, wo, o, nci)
            out[:, :, :, :, ky, kx, :] = np.einsum("fcbhw,ocb->fhwoc", win, m, optimize=True)
            occupied[:, :, :, ky, kx, :] = win.any(axis=2).transpose(0, 2, 3, 1)
    n_chunks = kh * kw * nci
    # -> (f, oh, ow, group, chunk, lane)
    out = out.reshape(f, ho, wo, groups, p_co, n_chunks).transpose(0, 1, 2, 3, 5, 4)
    pairs = np.ascontiguousarray(out).reshape(f, -1, p_co)
    empty = np.broadcast_to(~occupied.reshape(f, ho, wo, 1, n_chunks),
                            (f, ho, wo, groups, n_chunks)).reshape(f, -1)
    beats = pairs.shape[1]
    chunk = np.arange(beats) % n_chunks
    return pairs, chunk == n_chunks - 1, np.ascontiguousarray(empty)


def batch_array_cycles(pairs: np.ndarray, last_chunk: np.ndarray, *,
                       empty: np.ndarray | None = None, readout: bool = False, T: int = 1,
                       window_depth: int = 16, depth: int = 16,
                       skip_empty: bool = True) -> np.ndarray:
    """Cycles of each frame through a synapse array, frames on their own (each from cycle 0,
    beats offered back to back, output always ready): ``last output cycle + 1``, as
    :func:`fireflys_hw.gateware.synapse.array_cycles` computes it for one frame. With ``empty`` (per
    frame, the chunks that are 0 at every step), the beats are every chunk and the
    orchestrator's walk that drops the empty ones sits in front (``array_cycles``'s
    ``walk``)."""
    pairs = np.asarray(pairs)
    nf, n, nl = pairs.shape
    last_chunk = np.asarray(last_chunk, bool)
    n_steps = int(last_chunk.sum())
    walk = empty is not None
    if walk:
        dropped = np.asarray(empty, bool) & ~last_chunk[None, :]
        dropped = np.concatenate([dropped, np.zeros((nf, 1), bool)], axis=1)
    latency = neuron_latency(T, readout)
    shape = (nf, nl)
    fr = np.arange(nf)
    flat_pairs = pairs.reshape(-1).astype(np.int64)
    # flat index of (frame, beat 0, lane) in flat_pairs
    base = (fr[:, None] * n * nl + np.arange(nl)[None, :])
    chunk_end = np.append(last_chunk, False)
    taken_result = chunk_end.astype(np.int64)
    # detector registers (DetectorModel): R, A0, A1 = (valid, pairs, last chunk); B = (valid,
    # slots left, last chunk, carries a pair)
    r_v = np.zeros(shape, bool)
    r_p = np.zeros(shape, np.int64)
    r_l = np.zeros(shape, bool)
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
    # each lane's FIFO holds beats head .. (beats taken) - 1: all written in earlier cycles,
    # as a beat taken in this cycle is appended after the lanes read their heads; ``taken_at``
    # maps a FIFO position to its chunk (they differ when the walk drops chunks)
    head = np.zeros(shape, np.int64)
    n_taken = np.zeros(nf, np.int64)
    taken_at = np.zeros((nf, n + 1), np.int64)
    nxt = np.zeros(nf, np.int64)              # the chunk offered (walk: in the register)
    pos = np.zeros(nf, np.int64)              # walk: the next chunk to read
    ends = np.zeros(shape, np.int64)          # windows each lane has ended
    step_end = np.zeros((nf, n_steps + 1), np.int64)   # latest lane end slot of each window
    results = np.zeros(nf, np.int64)
    taken = np.zeros(nf, np.int64)
    never = np.iinfo(np.int64).max
    pops = np.full((nf, n_steps + 1), never, np.int64)
    n_pops = np.zeros(nf, np.int64)
    popped = np.zeros(nf, np.int64)
    last_out = np.full(nf, -1, np.int64)
    room = np.ones(nf, bool)                  # the registered room flag (window_depth >= 2)
    staged = np.zeros(nf, np.int64)           # a beat in the write register (>= 2)
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
        a0_free = ~a0_v | a1_free | a0_drop
        ready = ~r_v | a0_free
        # credit: results in flight (taken, not yet popped) below depth; a pop counts from
        # the cycle after next (the array registers it); pops are distinct cycles, so at
        # most one more has happened since the last cycle
        popped += pops[fr, popped] < cycle - 1
        offered = nxt < n
        if walk:
            offered &= (pos > nxt) & ~dropped[fr, np.minimum(nxt, n)]
        take = offered & ((taken - popped) < depth)
        if window_depth >= 2:
            take &= room
            room = ((n_taken[:, None] - head) < window_depth - 1).all(axis=1)
        elif window_depth:
            take &= ((n_taken[:, None] - head) < window_depth).all(axis=1)
        if window_depth:
            # window_depth >= 2: last cycle's beat is still in the write register
            has = (head < (n_taken - staged)[:, None]) & ready
            index = taken_at[fr[:, None], np.minimum(head, n)]
        else:
            take &= ready.all(axis=1)
            has = np.broadcast_to(take[:, None], shape)
            index = np.broadcast_to(nxt[:, None], shape)
        index = np.minimum(index, n - 1)
        in_p = np.where(has, flat_pairs.take(base + index * nl), 0)
        in_l = has & chunk_end[index]
        # clock: B, then A1 from A0, A0 from R, R from the FIFO
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
        a0_v = np.where(a0_free, r_v, a0_v)
        a0_p = np.where(a0_free, r_p, a0_p)
        a0_l = np.where(a0_free, r_l, a0_l)
        r_v = np.where(ready, has, r_v)
        r_p = np.where(ready, in_p, r_p)
        r_l = np.where(ready, in_l, r_l)
        if window_depth:
            head += has
        # a lane's end slot reaches its events output DETECTOR_TAIL cycles later
        if end.any():
            ff, ll = np.nonzero(end)
            np.maximum.at(step_end, (ff, ends[ff, ll]), cycle + DETECTOR_TAIL)
            ends += end
            # a window every lane has ended (at most one per cycle per frame): its result
            done = np.flatnonzero(ends.min(axis=1) > results)
            if done.size:
                r = results[done]
                start = np.maximum(step_end[done, r] + latency, last_out[done] + 1)
                last_out[done] = start
                pops[done, n_pops[done]] = start
                n_pops[done] += 1
                results[done] = r + 1
        if window_depth >= 2:
            staged = take.astype(np.int64)
        if take.any():
            taken += take * taken_result[np.minimum(nxt, n)]
            tf = np.flatnonzero(take)
            taken_at[tf, n_taken[tf]] = nxt[tf]
            n_taken += take
        if walk:
            adv = (nxt < n) & ((pos <= nxt) | dropped[fr, np.minimum(nxt, n)] | take)
            nxt = np.where(adv, pos, nxt)
            pos = pos + adv
        else:
            nxt = nxt + take
        cycle += 1
    return last_out + 1


def predicted_cycles(layer: SynapticLayer, stats: LayerStats, p_co: int, p_ci: int, T: int,
                     *, input_bits: int = 1, static_input: bool = False,
                     window_depth: int = WINDOW_DEPTH) -> float:
    """Predicted cycles per frame of one layer core, frames back to back (model estimate).

    The formula of :mod:`fireflys_hw.gateware.core` (its module docstring;
    :func:`~fireflys_hw.gateware.core.core_cycles` evaluates the compute term on one frame). The
    dataflow is T-vectorised: per (output pixel, group) the orchestrator walks the window's
    ``n_chunks`` chunks, one per cycle, each carrying every step, and sends the ones that spike
    in some step into a FIFO of ``window_depth`` beats per detector lane; a lane needs one cycle
    per pair effectual in some step (its weight is added into the accumulators of the steps it
    spikes in), and the lanes drift apart by up to ``window_depth`` beats. So a block of ``B``
    consecutive windows costs ``max(B * n_chunks, busiest lane's pairs in the block)``, ``B =
    lane_block(window_depth, n_chunks)`` (2 when a lane FIFO holds a window, else 1;
    :func:`~fireflys_hw.compiler.base.lane_block`)::

        compute = sum over blocks of B consecutive (pixel, group) windows of
                      max(B * n_chunks, max over the lanes of the block's pairs)
        fill    = (Kh - 1) * Wp            # the window rows not prefetched during the last frame
        cycles  = max(compute + fill, Hp * Wp)        # the input side: one pixel per cycle

    ``T`` and ``static_input`` (a direct-encoded first layer, whose input is the same at every
    step) do not enter the formula: the walk and the pairs are per window whatever the steps
    a chunk carries, and the ``T`` neuron updates of a window are pipelined.
    ``window_depth = 0``: lanes that take each beat together, ``B = 1``.

    With measured ``stats.pairs`` the compute term is exact for the measured frames (mean over
    them). Without, the density model: ``mu = stats.mean_pairs`` pairs per lane and window,
    the busiest of ``P_Co`` lanes over a block ``~ mu + sqrt(2 * ln(P_Co) * mu / B)`` per
    window (the expected maximum of ``P_Co`` Poisson counts of mean ``B * mu``, Gaussian
    approximation), and ``compute = Ho * Wo * G * max(n_chunks, busiest)``. Layers whose lanes
    are each busy on consecutive chunks are slower than it (a lane's look-ahead holds two
    non-empty chunks); :func:`recurrence_cycles` sees that.
    """
    co, ho, wo = layer.out_shape
    kh, kw = layer_window(layer)
    ci = binary_in_channels(layer, input_bits)
    groups = -(-co // p_co)
    n_chunks = kh * kw * -(-ci // p_ci)
    hp = layer.in_shape[1] + 2 * layer.padding
    wp = layer.in_shape[2] + 2 * layer.padding
    block = lane_block(window_depth, n_chunks)
    if stats.pairs is not None:
        compute = sum(float(np.dot(counts, np.maximum(values, length * n_chunks)))
                      for length, values, counts in stats.lane_max_histogram(p_co, block))
    else:
        mu = stats.mean_pairs
        busiest = mu + math.sqrt(2.0 * math.log(p_co) * mu / block) if p_co > 1 else mu
        compute = ho * wo * groups * max(float(n_chunks), busiest)
    return max(compute + (kh - 1) * wp, float(hp * wp))


def recurrence_cycles(layer: SynapticLayer, stats: LayerStats, p_co: int, p_ci: int, T: int,
                      *, input_bits: int = 1, static_input: bool = False,
                      window_depth: int = WINDOW_DEPTH, depth: int = LANE_FIFO_DEPTH) -> float:
    """Predicted cycles per frame of one layer core from the synapse array's cycle recurrence
    on the measured frames (model estimate, the planner's final figure).

    Where :func:`predicted_cycles` approximates how far the lanes drift apart (blocks of
    ``lane_block`` windows), this evaluates the register-transfer recurrence of the
    orchestrator's walk (one chunk per cycle, empty chunks dropped) and the array
    (:func:`batch_array_cycles`: lane FIFOs of ``window_depth`` beats, each detector's
    look-ahead, ``depth`` results in flight, the ``T``-stage neuron chain's latency) on every
    measured frame's window chunks, then adds the same window fill and input floor::

        cycles = max(mean over frames of array cycles + (Kh - 1) * Wp,  Hp * Wp)

    It needs ``stats.inputs`` (:func:`measure_densities`); its cost is one Python iteration
    per simulated cycle for all frames together (about 0.1 ms per cycle on a laptop core), so
    the planner ranks candidates with :func:`predicted_cycles` and evaluates its choice with
    this.
    """
    if stats.inputs is None:
        raise ValueError("recurrence_cycles needs the measured inputs (measure_densities)")
    kh, _ = layer_window(layer)
    mask = expanded_weight(layer, input_bits) != 0
    pairs, last_chunk, empty = lane_pairs(stats.inputs, mask, p_co, p_ci, layer.padding)
    cycles = batch_array_cycles(pairs, last_chunk, empty=empty, readout=layer.is_readout, T=T,
                                window_depth=window_depth, depth=depth)
    hp = layer.in_shape[1] + 2 * layer.padding
    wp = layer.in_shape[2] + 2 * layer.padding
    return max(float(cycles.mean()) + (kh - 1) * wp, float(hp * wp))
