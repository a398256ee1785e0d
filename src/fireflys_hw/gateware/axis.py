"""The accelerator with AXI4-Stream ports, for a DMA engine (e.g. Xilinx AXI DMA on a Zynq
UltraScale+ such as the KV260's; see ``docs/boards.md``).

Ports (Verilog names as written, so that Vivado's module reference infers two AXI4-Stream
interfaces clocked by ``aclk``):

* ``aclk``, ``aresetn`` (active low): the clock and reset of everything inside;
* ``s_axis_tdata`` / ``s_axis_tvalid`` / ``s_axis_tready`` / ``s_axis_tlast``: input beats, one
  per transfer, in the low bits of ``tdata`` (``8 * 2**k`` bits, the least that holds a beat,
  as DMA engines want a power-of-two byte count); ``tlast`` on the last beat of each frame.
  The frame boundaries come from the beat count (:attr:`Accelerator.beats_per_frame`);
  a ``tlast`` where the count disagrees sets ``frame_error`` (sticky until reset);
* ``m_axis_tdata`` (32 bits) / ``m_axis_tvalid`` / ``m_axis_tready`` / ``m_axis_tlast``: per
  frame, the result payload (:mod:`fireflys_hw.host.protocol`: scores, then the class index) as
  ``ceil(result_bits / 32)`` little-endian words, ``tlast`` on the last;
* ``frame_error``: see above.

So a DMA transfer of ``N`` frames is ``N * beats_per_frame * tdata_bytes`` bytes out of memory
and ``N * result_words * 4`` bytes back in.
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AXIStreamAccelerator", "axis_data_bits", "RESULT_WORD_BITS"]

RESULT_WORD_BITS = 32


def axis_data_bits(bits: int) -> int:
    """``tdata`` width for ``bits``: the least power-of-two number of bytes that holds them."""
    nbytes = 1
    while nbytes * 8 < bits:
        nbytes *= 2
    return nbytes * 8


class AXIStreamAccelerator(wiring.Component):
    """An :class:`~fireflys_hw.gateware.accelerator.Accelerator` between an AXI4-Stream slave
    (frames in) and master (results out), in its own ``aclk`` / ``aresetn`` domain.

    Parameters
    ----------
    accelerator : Accelerator
        Not yet elaborated; with or without profiling counters (not brought out).

    Members
    -------
    See the module docstring; widths ``in_data_bits`` (``s_axis_tdata``) and 32
    (``m_axis_tdata``).

    Attributes
    ----------
    in_data_bits : int
    result_words : int
        32-bit words per result.
    """

    def __init__(self, accelerator):
        self.accelerator = accelerator
        self.beat_bits = Value.cast(accelerator.input.payload).shape().width
        self.result_bits = Value.cast(accelerator.output.payload).shape().width
        self.in_data_bits = axis_data_bits(self.beat_bits)
        self.result_words = -(-self.result_bits // RESULT_WORD_BITS)
        super().__init__({
            "aclk": In(1),
            "aresetn": In(1),
            "s_axis_tdata": In(self.in_data_bits),
            "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "m_axis_tdata": Out(RESULT_WORD_BITS),
            "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1),
            "m_axis_tlast": Out(1),
            "frame_error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        # local: the domain is this module's own (clocked by aclk), not a parent's
        m.domains.sync = cd = ClockDomain("sync", local=True)
        m.d.comb += [cd.clk.eq(self.aclk), cd.rst.eq(~self.aresetn)]
        acc = self.accelerator
        m.submodules.accelerator = acc
        bpf = acc.beats_per_frame

        # frames in
        m.d.comb += [Value.cast(acc.input.payload).eq(self.s_axis_tdata[:self.beat_bits]),
                     acc.input.valid.eq(self.s_axis_tvalid),
                     self.s_axis_tready.eq(acc.input.ready)]
        beat = Signal(range(bpf))
        with m.If(self.s_axis_tvalid & self.s_axis_tready):
            last = beat == bpf - 1
            m.d.sync += beat.eq(Mux(last, 0, beat + 1))
            with m.If(self.s_axis_tlast != last):
                m.d.sync += self.frame_error.eq(1)

        # results out, one 32-bit word at a time
        words = self.result_words
        result = Signal(words * RESULT_WORD_BITS)
        word = Signal(range(words))
        with m.FSM():
            with m.State("idle"):
                m.d.comb += acc.output.ready.eq(1)
                with m.If(acc.output.valid):
                    m.d.sync += [result.eq(Value.cast(acc.output.payload)), word.eq(0)]
                    m.next = "send"
            with m.State("send"):
                m.d.comb += [self.m_axis_tvalid.eq(1),
                             self.m_axis_tdata.eq(result[:RESULT_WORD_BITS]),
                             self.m_axis_tlast.eq(word == words - 1)]
                with m.If(self.m_axis_tready):
                    m.d.sync += [result.eq(result >> RESULT_WORD_BITS), word.eq(word + 1)]
                    with m.If(word == words - 1):
                        m.next = "idle"
        return m
