"""Offline packing of a synaptic layer's weights for the dual-side sparsity detectors (numpy only).

FireFly-S cuts every output channel's weight bitmap into ``P_Ci``-bit vectors, one per window
chunk, and stores only the non-zero weights, compressed, in chunk order. Lane ``l`` of a
``P_Co``-lane synapse array serves output channels ``c = group * P_Co + l``; its store holds, for
``group in range(n_groups)``, ``chunk in range(n_chunks)``, ``bit in range(P_Ci)``, the non-zero
weights in that order. ``base[l, group, chunk]`` is the store address of the vector's first
non-zero weight, so a set bit ``b`` of the vector has its weight at
``base + popcount(bitmap & ((1 << b) - 1))``.

Chunk numbering follows the window stream (:mod:`fireflys_hw.gateware.streams`): ``chunk = (kh * Kw
+ kw)
* n_ci_chunks + ci_chunk`` and bit ``b`` of a chunk is input channel ``ci_chunk * P_Ci + b``. A
fully connected layer is the convolution whose window is its whole input map, so ``(Kh, Kw) =
(H, W)`` of its input. The first layer's multi-bit input is carried as bit planes: binary
channel ``c * input_bits + b`` has weight ``W[:, c] * 2**b``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fireflys_sw.artifact import LayerKind, SynapticLayer
from fireflys_sw.golden import signed_bits

__all__ = ["PackedWeights", "pack_weights", "expanded_weight", "window_kernel"]


def _check_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    return int(value)


def window_kernel(layer: SynapticLayer) -> tuple[int, int]:
    """``(Kh, Kw)`` of the layer's window: the kernel for conv, the whole input map for fc."""
    if layer.kind is LayerKind.FC:
        return layer.in_shape[1], layer.in_shape[2]
    return layer.kernel, layer.kernel


def expanded_weight(layer: SynapticLayer, input_bits: int = 1) -> np.ndarray:
    """The weights as ``(Co, Ci * input_bits, Kh, Kw)`` int64, with bit-plane expansion:
    binary channel ``c * input_bits + b`` has weight ``W[:, c] * 2**b``. ``input_bits = 1`` is a
    spiking (binary) input and returns the weights unchanged (fc reshaped to its window)."""
    input_bits = _check_int("input_bits", input_bits)
    co, ci = layer.out_channels, layer.in_channels
    kh, kw = window_kernel(layer)
    w = np.asarray(layer.weight, np.int64).reshape(co, ci, kh, kw)
    scale = (1 << np.arange(input_bits, dtype=np.int64)).reshape(1, 1, input_bits, 1, 1)
    return (w[:, :, None] * scale).reshape(co, ci * input_bits, kh, kw)


@dataclass(frozen=True, eq=False)
class PackedWeights:
    """One layer's weights packed per detector lane.

    Attributes
    ----------
    p_co, p_ci : int
        Lanes (output channels per group) and bits per window chunk.
    n_groups : int
        ``ceil(Co / P_Co)``; the lanes of the last group past ``Co`` hold no weights.
    n_ci_chunks, n_chunks : int
        ``ceil(Ci' / P_Ci)`` and ``Kh * Kw * n_ci_chunks`` (``Ci'`` = binary input channels).
    out_channels, in_channels : int
        ``Co`` and ``Ci'`` (``Ci * input_bits``).
    kernel : (int, int)
        ``(Kh, Kw)`` of the window.
    bitmaps : ndarray of bool, ``(P_Co, n_groups, n_chunks, P_Ci)``
        Non-zero-weight bitmap, cut into ``P_Ci``-bit vectors (bit ``b`` = ``[..., b]``).
    bases : ndarray of int64, ``(P_Co, n_groups, n_chunks)``
        Store address of each vector's first non-zero weight.
    stores : tuple of ndarray of int64
        Per lane, the non-zero weights in (group, chunk, bit) order.
    weight_bits : int
        Signed width that holds every stored weight (at least 2).
    """

    p_co: int
    p_ci: int
    n_groups: int
    n_ci_chunks: int
    n_chunks: int
    out_channels: int
    in_channels: int
    kernel: tuple[int, int]
    bitmaps: np.ndarray
    bases: np.ndarray
    stores: tuple[np.ndarray, ...]
    weight_bits: int

    @property
    def store_depth(self) -> int:
        """Words of the largest lane store (at least 1: a memory cannot be empty)."""
        return max(1, max(len(s) for s in self.stores))

    @property
    def address_bits(self) -> int:
        """Bits of a store address ``base + offset`` (``base`` can equal the store length)."""
        return max(1, int(max(len(s) for s in self.stores)).bit_length())

    def bitmap_words(self, lane: int) -> list[int]:
        """Lane ``lane``'s bitmap vectors as ``P_Ci``-bit integers, index ``group * n_chunks +
        chunk``."""
        bits = self.bitmaps[lane].reshape(-1, self.p_ci).astype(object)
        weights = [1 << b for b in range(self.p_ci)]
        return [int(sum(int(v) * w for v, w in zip(row, weights))) for row in bits]

    def lane_effectual(self, lane: int, group: int, chunk: int, spikes: int) -> int:
        """Effectual pairs of a chunk: ``popcount(spikes & bitmap)``."""
        return bin(spikes & self.bitmap_words(lane)[group * self.n_chunks + chunk]).count("1")

    def unpack(self) -> np.ndarray:
        """The weights ``(Co, Ci', Kh, Kw)`` rebuilt from bitmaps and stores (round trip)."""
        kh, kw = self.kernel
        full = np.zeros((self.n_groups * self.p_co, self.n_ci_chunks * self.p_ci, kh, kw),
                        np.int64)
        for lane in range(self.p_co):
            store = self.stores[lane]
            for g in range(self.n_groups):
                for ch in range(self.n_chunks):
                    k, cc = divmod(ch, self.n_ci_chunks)
                    addr = int(self.bases[lane, g, ch])
                    for b in np.flatnonzero(self.bitmaps[lane, g, ch]):
                        full[g * self.p_co + lane, cc * self.p_ci + b, k // kw, k % kw] = \
                            store[addr]
                        addr += 1
        return full[:self.out_channels, :self.in_channels]


def pack_weights(layer: SynapticLayer, p_co: int, p_ci: int,
                 input_bits: int = 1) -> PackedWeights:
    """Cut ``layer``'s weights into per-lane bitmaps and compressed non-zero stores.

    Parameters
    ----------
    layer : SynapticLayer
        A conv or fc layer.
    p_co : int
        Lanes ``P_Co`` (at most ``Co``; ``Co`` need not be a multiple: the last group is padded
        with empty lanes).
    p_ci : int
        Bits per window chunk ``P_Ci``.
    input_bits : int
        ``> 1`` for the first layer's multi-bit input (bit-plane expansion, see
        :func:`expanded_weight`).
    """
    p_co = _check_int("p_co", p_co)
    p_ci = _check_int("p_ci", p_ci)
    if p_co > layer.out_channels:
        raise ValueError(f"p_co must be at most the layer's output channels "
                         f"({layer.out_channels}), not {p_co}")
    w = expanded_weight(layer, input_bits)
    co, ci, kh, kw = w.shape
    n_groups = -(-co // p_co)
    nci = -(-ci // p_ci)
    n_chunks = kh * kw * nci
    full = np.zeros((n_groups * p_co, nci * p_ci, kh, kw), np.int64)
    full[:co, :ci] = w
    # (lane, group, kh, kw, ci_chunk, bit) -> (lane, group, chunk, bit) in window-stream order
    vec = full.reshape(n_groups, p_co, nci, p_ci, kh, kw).transpose(1, 0, 4, 5, 2, 3)
    vec = vec.reshape(p_co, n_groups, n_chunks, p_ci)
    bitmaps = vec != 0
    counts = bitmaps.sum(axis=-1).reshape(p_co, -1)
    bases = (np.cumsum(counts, axis=1) - counts).reshape(p_co, n_groups, n_chunks)
    stores = tuple(vec[lane][bitmaps[lane]].astype(np.int64) for lane in range(p_co))
    nz = w[w != 0]
    weight_bits = max(2, signed_bits(int(nz.min()), int(nz.max())) if nz.size else 2)
    return PackedWeights(p_co, p_ci, n_groups, nci, n_chunks, co, ci, (kh, kw), bitmaps,
                         bases.astype(np.int64), stores, weight_bits)
