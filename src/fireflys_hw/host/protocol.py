"""The byte protocol of the host link (:class:`fireflys_hw.gateware.link.HostLink`) over a UART.

Pure Python and numpy (no Amaranth), shared by the gateware and the host driver
(:mod:`fireflys_hw.host`). All multi-byte fields are little-endian.

Host -> board
-------------
* ``0xA5`` (:data:`FRAME_SYNC`), then one frame: ``beats_per_frame`` input beats of
  ``beat_bytes = ceil(beat_bits / 8)`` bytes each, every beat little-endian (bit ``j`` of the
  beat is bit ``j % 8`` of byte ``j // 8``; the unused high bits of the last byte are 0). The
  beats are the accelerator's input beats (:func:`fireflys_hw.host.beats.input_beats`), in
  their order. There is no end marker: the board counts the bytes.
* ``0x49`` (:data:`INFO_REQUEST`, ``'I'``): the board answers with an info record.
* Any other byte between frames is ignored. So a host that lost track (a frame cut short) gets
  the board back in step by sending ``beats_per_frame * beat_bytes + 1`` zero bytes (they
  finish a partial frame, whose result it discards, and are ignored otherwise), waiting for
  the result, and flushing its input (:meth:`fireflys_hw.host.board.Board.resync`).

Board -> host
-------------
* ``0x5A`` (:data:`RESULT_SYNC`), then ``result_bytes = ceil(result_bits / 8)`` bytes: the
  accelerator's output payload, little-endian: ``classes`` two's complement scores of
  ``score_bits`` bits (class 0 in the low bits), then the class index
  (:func:`fireflys_hw.host.beats.decode_readout`). One per frame, in frame order.
* ``0x49`` (:data:`INFO_REPLY`), then the :class:`LinkInfo` record (:data:`INFO_BYTES` bytes):
  ``version`` u8, ``beat_bits`` u16, ``beats_per_frame`` u32, ``result_bits`` u16,
  ``classes`` u8, ``score_bits`` u8, ``model_id`` u32 (:func:`model_id` of the artifact the
  bitstream was built from).

The board never drops a received byte as long as the accelerator takes input beats at least
as fast as the line delivers them (always the case at UART speeds on real clocks); otherwise
its receive FIFO fills and the ``overrun`` flag (an LED on the boards) is set.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["FRAME_SYNC", "INFO_REQUEST", "RESULT_SYNC", "INFO_REPLY", "PROTOCOL_VERSION",
           "INFO_BYTES", "LinkInfo", "model_id", "frame_bytes", "result_value", "beat_bytes"]

FRAME_SYNC = 0xA5
INFO_REQUEST = 0x49
RESULT_SYNC = 0x5A
INFO_REPLY = 0x49
PROTOCOL_VERSION = 1

_INFO = struct.Struct("<BHIHBBI")
#: Bytes of an info record after its ``INFO_REPLY`` byte.
INFO_BYTES = _INFO.size


def beat_bytes(bits: int) -> int:
    """Bytes that carry ``bits`` bits."""
    return max(1, -(-bits // 8))


@dataclass(frozen=True)
class LinkInfo:
    """What a board's link reports about the design behind it (see the module docstring)."""

    beat_bits: int
    beats_per_frame: int
    result_bits: int
    classes: int
    score_bits: int
    model_id: int
    version: int = PROTOCOL_VERSION

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame after its sync byte."""
        return self.beats_per_frame * beat_bytes(self.beat_bits)

    @property
    def result_bytes(self) -> int:
        return beat_bytes(self.result_bits)

    def to_bytes(self) -> bytes:
        return _INFO.pack(self.version, self.beat_bits, self.beats_per_frame, self.result_bits,
                          self.classes, self.score_bits, self.model_id & 0xFFFFFFFF)

    @classmethod
    def from_bytes(cls, data: bytes) -> "LinkInfo":
        if len(data) != INFO_BYTES:
            raise ValueError(f"an info record has {INFO_BYTES} bytes, not {len(data)}")
        version, beat_bits, bpf, result_bits, classes, score_bits, mid = _INFO.unpack(data)
        return cls(beat_bits, bpf, result_bits, classes, score_bits, mid, version)


def model_id(artifact) -> int:
    """A 32-bit fingerprint (CRC-32) of what an artifact computes: time steps, input format and
    every layer's shapes and integer parameters (not its name or metadata). The board reports
    it, so the host can tell whether the bitstream carries the model it means to run."""
    crc = zlib.crc32(repr((artifact.T, tuple(artifact.input_shape), artifact.input_bits,
                           artifact.input_encoding.value)).encode())
    for layer in artifact.layers:
        crc = zlib.crc32(repr((type(layer).__name__, tuple(layer.in_shape),
                               tuple(layer.out_shape))).encode(), crc)
        for name in ("weight", "bias", "threshold", "shift"):   # shift: radix layers only
            value = getattr(layer, name, None)
            if value is not None:
                crc = zlib.crc32(np.ascontiguousarray(value, dtype="<i8").tobytes(), crc)
        for name in ("kernel", "padding", "leak_shift"):
            crc = zlib.crc32(repr(getattr(layer, name, None)).encode(), crc)
        neuron = getattr(layer, "neuron", None)
        crc = zlib.crc32(repr(getattr(neuron, "value", neuron)).encode(), crc)
    return crc & 0xFFFFFFFF


def frame_bytes(beats: np.ndarray, beat_bits: int) -> bytes:
    """One frame on the wire: ``FRAME_SYNC`` and the beats of ``beats`` (``(n_beats,
    n_words)`` little-endian uint32 words, as :func:`fireflys_hw.host.beats.input_beats`
    gives them per frame), ``beat_bytes(beat_bits)`` bytes per beat."""
    words = np.ascontiguousarray(np.asarray(beats, dtype="<u4"))
    if words.ndim != 2:
        raise ValueError(f"beats must be (n_beats, n_words), not shape {words.shape}")
    n = beat_bytes(beat_bits)
    raw = words.view(np.uint8).reshape(len(words), -1)
    if raw.shape[1] < n:
        raise ValueError(f"beats carry {raw.shape[1] * 8} bits, fewer than {beat_bits}")
    return bytes([FRAME_SYNC]) + raw[:, :n].tobytes()


def result_value(payload: bytes) -> int:
    """A result record's payload bytes (after ``RESULT_SYNC``) as the output payload int."""
    return int.from_bytes(payload, "little")
