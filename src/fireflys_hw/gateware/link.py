"""The host link: bytes in -> accelerator input beats, result beats -> bytes out, and the
accelerator behind a UART (:class:`UARTBridge`), the board-independent top that the board
targets in ``boards/`` wire to their pins.

The byte protocol is in :mod:`fireflys_hw.host.protocol` (version 2: sync byte, sequence
number, payload, CRC-16, little-endian).

::

    rx pin -> UARTReceiver -> byte FIFO -> HostLink -> SkidBuffer -> Accelerator.input
    tx pin <- UARTTransmitter <--------- HostLink <- SkidBuffer <- Accelerator.output
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..host.protocol import (CRC_BYTES, FRAME_SYNC, INFO_REPLY, INFO_REQUEST, RESULT_SYNC,
                             STATUS_BAD_FRAME, LinkInfo, beat_bytes, crc16)
from .streams import SkidBuffer
from .uart import UARTReceiver, UARTTransmitter

__all__ = ["HostLink", "UARTBridge", "link_info", "crc16_byte", "DEFAULT_RX_FIFO_DEPTH",
           "DEFAULT_TAG_DEPTH"]

#: Bytes the bridge buffers between the UART receiver and the link.
DEFAULT_RX_FIFO_DEPTH = 64
#: Frames whose (seq, status) the link holds until their results leave: the most frames a host
#: may keep in flight before the link stops taking bytes.
DEFAULT_TAG_DEPTH = 16


def _crc16_byte_taps() -> list[list[int]]:
    """For each bit of the next CRC register, the bits of ``Cat(crc, byte)`` it is the XOR of:
    the register update is linear over GF(2), so its matrix is read off the unit vectors."""
    taps = [[] for _ in range(16)]
    for i in range(24):
        crc, byte = (1 << i, 0) if i < 16 else (0, 1 << (i - 16))
        out = crc16(bytes([byte]), crc)
        for j in range(16):
            if out >> j & 1:
                taps[j].append(i)
    return taps


_CRC16_BYTE_TAPS = _crc16_byte_taps()


def crc16_byte(crc, byte):
    """The CRC-16/CCITT-FALSE register after one more byte (MSB first, polynomial 0x1021), one
    byte per cycle (:func:`fireflys_hw.host.protocol.crc16` in Python).

    Written as one XOR of at most a few inputs per bit (the update's GF(2) matrix), not as eight
    unrolled shift-and-Mux steps: each step used the previous one twice, which Amaranth expands
    into a tree of 2**8 copies (about 59k cells for one link) and a deep path."""
    bits = Cat(Value.cast(crc)[:16], Value.cast(byte)[:8])
    out = []
    for taps in _CRC16_BYTE_TAPS:
        term = bits[taps[0]]
        for i in taps[1:]:
            term = term ^ bits[i]
        out.append(term)
    return Cat(*out)


def _payload_shape(port):
    return port.signature.members["payload"].shape


def link_info(accelerator, model_id: int = 0) -> LinkInfo:
    """The :class:`~fireflys_hw.host.protocol.LinkInfo` of a link in front of ``accelerator``."""
    beat_bits = Value.cast(accelerator.input.payload).shape().width
    result_bits = Value.cast(accelerator.output.payload).shape().width
    return LinkInfo(beat_bits=beat_bits, beats_per_frame=accelerator.beats_per_frame,
                    result_bits=result_bits, classes=accelerator.classes,
                    score_bits=accelerator.score_bits, model_id=model_id)


class HostLink(wiring.Component):
    """Frame bytes from the host into input beats; result beats into bytes for the host.

    The protocol (:mod:`fireflys_hw.host.protocol`, version 2): ``FRAME_SYNC``, ``seq``, then
    ``beats_per_frame`` beats of ``ceil(beat_bits / 8)`` bytes, little-endian, become ``beats``
    transfers as they arrive, and the frame's CRC-16 is checked after them; each ``results``
    transfer leaves as ``RESULT_SYNC``, the frame's ``seq``, ``status`` (the CRC verdict), the
    ``ceil(result_bits / 8)`` payload bytes and their CRC-16; an ``INFO_REQUEST`` byte between
    frames is answered with ``INFO_REPLY``, ``info`` and its CRC.

    Parameters
    ----------
    beat_shape : shape
        The payload of an input beat (the accelerator's ``input`` payload).
    beats_per_frame : int
    result_shape : shape
        The payload of a result (the accelerator's ``output`` payload).
    info : LinkInfo
        The record sent in answer to ``INFO_REQUEST``.
    tag_depth : int
        Frames received whose results have not left yet that the link can hold (more stall
        the byte stream).

    Members
    -------
    rx : ``In(stream.Signature(8))``
        Bytes from the host. Taken as fast as ``beats`` is taken.
    tx : ``Out(stream.Signature(8))``
        Bytes to the host.
    beats : ``Out(stream.Signature(beat_shape))``
        Input beats for the accelerator.
    results : ``In(stream.Signature(result_shape))``
        The accelerator's results.
    """

    def __init__(self, beat_shape, beats_per_frame: int, result_shape, info: LinkInfo, *,
                 tag_depth: int = DEFAULT_TAG_DEPTH):
        if isinstance(tag_depth, bool) or not isinstance(tag_depth, int) or tag_depth < 1:
            raise ValueError(f"tag_depth must be a positive integer, not {tag_depth!r}")
        self.tag_depth = tag_depth
        if isinstance(beats_per_frame, bool) or not isinstance(beats_per_frame, int) \
                or beats_per_frame < 1:
            raise ValueError(f"beats_per_frame must be a positive integer, not "
                             f"{beats_per_frame!r}")
        if not isinstance(info, LinkInfo):
            raise TypeError(f"info must be a LinkInfo, not {info!r}")
        self.beats_per_frame = beats_per_frame
        self.info = info
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "beats": Out(stream.Signature(beat_shape)),
            "results": In(stream.Signature(result_shape)),
        })
        self.beat_bits = Value.cast(self.beats.payload).shape().width
        self.result_bits = Value.cast(self.results.payload).shape().width

    def elaborate(self, platform):
        m = Module()
        n_beat = beat_bytes(self.beat_bits)
        n_result = beat_bytes(self.result_bits)
        info_bytes = self.info.to_bytes()              # the record and its CRC

        # (seq, status) of each frame, from the end of its CRC to its result's departure: the
        # result may be ready before the frame's CRC has arrived, so the sender waits for both
        m.submodules.tags = tags = fifo.SyncFIFOBuffered(width=16, depth=self.tag_depth)

        # --- host -> accelerator -------------------------------------------------------------
        beat = Value.cast(self.beats.payload)
        shift = Signal(8 * n_beat)             # a beat's bytes, the newest at the top
        byte_i = Signal(range(n_beat))
        beat_i = Signal(range(self.beats_per_frame))
        info_pending = Signal()
        assembled = Cat(shift[8:], self.rx.payload)
        rx_seq = Signal(8)
        rx_crc = Signal(16)
        crc_low = Signal(8)
        take = self.rx.valid & self.rx.ready

        with m.If(self.beats.ready):
            m.d.sync += self.beats.valid.eq(0)
        with m.FSM(name="receive"):
            with m.State("idle"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(self.rx.valid):
                    with m.If(self.rx.payload == FRAME_SYNC):
                        m.d.sync += [byte_i.eq(0), beat_i.eq(0), rx_crc.eq(0xFFFF)]
                        m.next = "seq"
                    with m.Elif(self.rx.payload == INFO_REQUEST):
                        m.d.sync += info_pending.eq(1)
            with m.State("seq"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(self.rx.valid):
                    m.d.sync += [rx_seq.eq(self.rx.payload),
                                 rx_crc.eq(crc16_byte(rx_crc, self.rx.payload))]
                    m.next = "frame"
            with m.State("frame"):
                # a byte is only taken while the beat register is free, so a beat's payload
                # never changes while it waits
                m.d.comb += self.rx.ready.eq(~self.beats.valid)
                with m.If(take):
                    m.d.sync += [shift.eq(assembled),
                                 rx_crc.eq(crc16_byte(rx_crc, self.rx.payload))]
                    with m.If(byte_i == n_beat - 1):
                        m.d.sync += [byte_i.eq(0), self.beats.valid.eq(1),
                                     beat.eq(assembled[:self.beat_bits])]
                        with m.If(beat_i == self.beats_per_frame - 1):
                            m.next = "crc_low"
                        with m.Else():
                            m.d.sync += beat_i.eq(beat_i + 1)
                    with m.Else():
                        m.d.sync += byte_i.eq(byte_i + 1)
            with m.State("crc_low"):
                m.d.comb += self.rx.ready.eq(1)
                with m.If(self.rx.valid):
                    m.d.sync += crc_low.eq(self.rx.payload)
                    m.next = "crc_high"
            with m.State("crc_high"):
                # the frame's tag is queued with the CRC's verdict; the link waits for room
                bad = Cat(crc_low, self.rx.payload) != rx_crc
                m.d.comb += [self.rx.ready.eq(tags.w_stream.ready),
                             tags.w_stream.valid.eq(self.rx.valid),
                             tags.w_stream.payload.eq(Cat(rx_seq,
                                                          Mux(bad, STATUS_BAD_FRAME, 0)[:8]))]
                with m.If(take):
                    m.next = "idle"

        # --- accelerator -> host -------------------------------------------------------------
        # a result record's body (seq, status, payload) leaves from a shift register, its CRC
        # is computed as the bytes go; the info record is a constant with its CRC
        n_body = 2 + n_result
        body = Signal(8 * n_body)
        tx_crc = Signal(16)
        count = Signal(range(max(n_body, len(info_bytes)) + 1))
        sending_info = Signal()
        info_rom = Array(Const(b, 8) for b in info_bytes)
        with m.FSM(name="send"):
            with m.State("idle"):
                with m.If(info_pending):
                    m.d.sync += [sending_info.eq(1), info_pending.eq(0)]
                    m.next = "header"
                with m.Elif(self.results.valid & tags.r_stream.valid):
                    m.d.comb += [self.results.ready.eq(1), tags.r_stream.ready.eq(1)]
                    m.d.sync += [sending_info.eq(0), tx_crc.eq(0xFFFF),
                                 body.eq(Cat(tags.r_stream.payload,
                                             Value.cast(self.results.payload)))]
                    m.next = "header"
            with m.State("header"):
                m.d.comb += [self.tx.valid.eq(1),
                             self.tx.payload.eq(Mux(sending_info, INFO_REPLY, RESULT_SYNC))]
                with m.If(self.tx.ready):
                    m.d.sync += count.eq(0)
                    m.next = "body"
            with m.State("body"):
                m.d.comb += [self.tx.valid.eq(1),
                             self.tx.payload.eq(Mux(sending_info, info_rom[count], body[:8]))]
                with m.If(self.tx.ready):
                    m.d.sync += [count.eq(count + 1), body.eq(body >> 8),
                                 tx_crc.eq(crc16_byte(tx_crc, body[:8]))]
                    with m.If(sending_info & (count == len(info_bytes) - 1)):
                        m.next = "idle"
                    with m.If(~sending_info & (count == n_body - 1)):
                        m.d.sync += count.eq(0)
                        m.next = "crc"
            with m.State("crc"):
                m.d.comb += [self.tx.valid.eq(1),
                             self.tx.payload.eq(Mux(count == 0, tx_crc[:8], tx_crc[8:]))]
                with m.If(self.tx.ready):
                    m.d.sync += count.eq(count + 1)
                    with m.If(count == CRC_BYTES - 1):
                        m.next = "idle"
        return m


class UARTBridge(wiring.Component):
    """An accelerator behind a UART: the top of every UART board target, without pins.

    Parameters
    ----------
    accelerator : Accelerator
        Built with or without profiling counters (they are not used here).
    divisor : int
        Clocks per bit (:func:`fireflys_hw.gateware.uart.baud_divisor`).
    model_id : int
        Reported in the info record (:func:`fireflys_hw.host.protocol.model_id`).
    rx_fifo_depth : int
        Bytes buffered between the receiver and the link.

    Members
    -------
    rx : ``In(1)``
        Serial line from the host (idle high).
    tx : ``Out(1)``
        Serial line to the host.
    overrun, framing_error : ``Out(1)``
        The receiver's sticky error flags (:class:`~fireflys_hw.gateware.uart.UARTReceiver`).
    busy : ``Out(1)``
        A frame is being received or computed, or a record sent (for an activity LED; the
        simulated serial port waits for it to fall).

    Attributes
    ----------
    info : LinkInfo
        What the link reports (:func:`link_info`).
    """

    def __init__(self, accelerator, *, divisor: int, model_id: int = 0,
                 rx_fifo_depth: int = DEFAULT_RX_FIFO_DEPTH):
        if isinstance(rx_fifo_depth, bool) or not isinstance(rx_fifo_depth, int) \
                or rx_fifo_depth < 2:
            raise ValueError(f"rx_fifo_depth must be an integer of at least 2, not "
                             f"{rx_fifo_depth!r}")
        self.accelerator = accelerator
        self.divisor = divisor
        self.rx_fifo_depth = rx_fifo_depth
        self.info = link_info(accelerator, model_id)
        self.receiver = UARTReceiver(divisor)
        self.transmitter = UARTTransmitter(divisor)
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "overrun": Out(1),
            "framing_error": Out(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        acc = self.accelerator
        m.submodules.accelerator = acc
        m.submodules.receiver = rx = self.receiver
        m.submodules.transmitter = tx = self.transmitter
        m.submodules.rx_fifo = buf = fifo.SyncFIFOBuffered(width=8, depth=self.rx_fifo_depth)
        m.submodules.link = link = HostLink(_payload_shape(acc.input), acc.beats_per_frame,
                                            _payload_shape(acc.output), self.info)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx),
                     self.overrun.eq(rx.overrun), self.framing_error.eq(rx.framing_error)]
        wiring.connect(m, rx.data, buf.w_stream)
        wiring.connect(m, buf.r_stream, link.rx)
        # beats cross a register slice too: the link's beat hand-shake does not reach into the
        # first core's input registers (the ULX3S build's critical path at 116.2 MHz, 8.61 ns,
        # 7.44 of it routing, two crossings of the chip, issue 14); one cycle of latency
        m.submodules.beats = beats = SkidBuffer(_payload_shape(acc.input))
        wiring.connect(m, link.beats, beats.input)
        wiring.connect(m, beats.output, acc.input)
        # results cross a register slice: the link's send decision (which also waits for the
        # info record and the frame's tag) does not reach into the readout core's hand-shake
        # and credit (that path, across the chip, was the ULX3S build's critical one at 104.5
        # MHz, issue 14); one result per frame, one cycle later
        m.submodules.results = results = SkidBuffer(_payload_shape(acc.output))
        wiring.connect(m, acc.output, results.input)
        wiring.connect(m, results.output, link.results)
        wiring.connect(m, link.tx, tx.data)

        # frames in flight: counted at the first beat taken and at each result sent
        beats = Signal(range(acc.beats_per_frame))
        in_flight = Signal(8)
        started = acc.input.valid & acc.input.ready & (beats == 0)
        finished = acc.output.valid & acc.output.ready
        with m.If(acc.input.valid & acc.input.ready):
            m.d.sync += beats.eq(Mux(beats == acc.beats_per_frame - 1, 0, beats + 1))
        # counted a cycle late, from registers: the result hand-shake lives in the link, the
        # counter wherever the placer puts it (a chip-crossing net in front of its adder was
        # the whole ULX3S build's critical path, 10.4 ns); it only lights an LED
        started_r, finished_r = Signal(), Signal()
        m.d.sync += [started_r.eq(started), finished_r.eq(finished),
                     in_flight.eq(in_flight + started_r - finished_r)]
        # and while a record goes out: a frame counts as finished when the link takes its
        # result, some cycles before the record's first bit is on the line
        m.d.comb += self.busy.eq((in_flight != 0) | started_r | link.tx.valid)
        return m
