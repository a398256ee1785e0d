"""What the planner's modules share: the planning error, the gateware constants the models
assume, and a layer's window geometry (numpy only, no Amaranth)."""

from __future__ import annotations

from fireflys_sw.artifact import LayerKind, SynapticLayer
from fireflys_sw.errors import FireflysError

__all__ = ["PlanError", "PLAN_FORMAT", "PLAN_VERSION", "WINDOW_DEPTH", "LANE_FIFO_DEPTH",
           "TABLE_BRAM_ROWS", "BUFFER_LUTRAM_BITS", "lane_block", "binary_in_channels",
           "layer_window"]

PLAN_FORMAT = "fireflys-plan"
PLAN_VERSION = 1

#: Window beats per detector lane FIFO in the gateware
#: (:data:`fireflys_hw.gateware.synapse.DEFAULT_WINDOW_DEPTH` is this).
WINDOW_DEPTH = 16

#: Entries of a neuron lane's output FIFO (the gateware's default ``depth``): also the
#: results a synapse array keeps in flight.
LANE_FIFO_DEPTH = 16

#: Rows from which a detector's bitmap table is a block RAM (a memory with a synchronous read,
#: which Yosys maps to block RAM at this size), not a LUT ROM: a LUT ROM of 10 blocks of 64
#: rows (the fc readout's, one lane over 10 groups) came out of ABC as 7-8 levels of shared
#: address decoders (issue 14). The resource model follows the same rule.
TABLE_BRAM_ROWS = 512

#: Bits up to which an orchestrator's pixel buffer is distributed RAM (``ram_style``), not block
#: RAM: a block RAM's output without its output register has a 5.8 ns clock-to-out on the ECP5
#: (nextpnr), so the chunk it feeds into the lane FIFOs left 2 ns for the rest of a 125 MHz
#: cycle (the ULX3S build's critical path, 11.3 ns); a buffer this small fills a tenth of a
#: block anyway (issue 14). The resource model follows the same rule.
BUFFER_LUTRAM_BITS = 4096


class PlanError(FireflysError, ValueError):
    """A plan that cannot be made (the model does not fit) or a plan file that is malformed."""


def binary_in_channels(layer: SynapticLayer, input_bits: int) -> int:
    return layer.in_channels * input_bits


def layer_window(layer: SynapticLayer) -> tuple[int, int]:
    """``(Kh, Kw)``: the kernel for conv, the whole input map for fc (as the gateware does)."""
    if layer.kind is LayerKind.FC:
        return layer.in_shape[1], layer.in_shape[2]
    return layer.kernel, layer.kernel


def lane_block(window_depth: int, n_chunks: int) -> int:
    """Consecutive windows over which :func:`predicted_cycles` takes the busiest lane: 2 when
    a lane's FIFO of window beats holds a whole window (``window_depth >= n_chunks``), so that
    a lane can run up to a window ahead of or behind the others and a busy window of one lane
    evens out with a light one; else 1. An empirical rule: exact simulation of random layers
    and a random SCNN5 put the cores within a few per cent of the model with it (a lane
    drifts by up to ``window_depth`` beats, not by whole blocks, and its look-ahead has limits
    of its own, so no block length is right for every layer)."""
    return 2 if window_depth and window_depth >= n_chunks else 1
