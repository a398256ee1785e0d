"""Numpy reference generators for the gateware's streams (no Amaranth import).

:func:`im2col_windows` is the window stream (:mod:`fireflys_hw.gateware.streams`) that the dataflow
orchestrator must produce for one frame, beat for beat; the synapse-array tests feed it to the
detectors, the orchestrator tests compare against it. :func:`lane_outputs` is what a
:class:`~fireflys_hw.gateware.synapse.SynapseArray` must emit for that frame, from the golden
model.
"""

from __future__ import annotations

import numpy as np

from fireflys_sw.artifact import LayerKind, SynapticLayer
from fireflys_sw.golden import neuron_dynamics, synaptic_currents

from .weights import window_kernel

__all__ = ["bit_planes", "im2col_windows", "window_beats", "lane_outputs", "WINDOW_FIELDS"]

WINDOW_FIELDS = ("spikes", "chunk", "t", "group", "last_chunk", "last_step")


def bit_planes(x: np.ndarray, input_bits: int) -> np.ndarray:
    """``x[..., c, h, w]`` (integers in ``[0, 2**input_bits)``) as binary channels
    ``c * input_bits + b`` = bit ``b`` of ``x[c]``."""
    x = np.asarray(x, np.int64)
    planes = (x[..., :, None, :, :] >> np.arange(input_bits).reshape(-1, 1, 1)) & 1
    shape = x.shape[:-3] + (x.shape[-3] * input_bits,) + x.shape[-2:]
    return planes.reshape(shape)


def window_beats(spikes: np.ndarray, kernel: tuple[int, int], p_ci: int,
                 n_groups: int) -> list[dict]:
    """The window stream of an (already padded) binary map ``spikes[t, c, h, w]``, valid
    convolution with ``kernel = (Kh, Kw)``, stride 1: for each output pixel (raster order),
    ``for group: for t: for chunk``; a list of dicts with the fields of
    :func:`~fireflys_hw.gateware.streams.window_chunk`."""
    spikes = np.asarray(spikes)
    T, c, h, w = spikes.shape
    kh_n, kw_n = kernel
    nci = -(-c // p_ci)
    n_chunks = kh_n * kw_n * nci
    xp = np.zeros((T, nci * p_ci, h, w), np.int64)
    xp[:, :c] = spikes
    weights = 1 << np.arange(p_ci, dtype=np.int64)
    # words[t, h, w, ci_chunk]: each chunk as a P_Ci-bit integer
    words = (xp.reshape(T, nci, p_ci, h, w) * weights.reshape(1, 1, -1, 1, 1)).sum(axis=2)
    words = words.transpose(0, 2, 3, 1)
    beats = []
    for oh in range(h - kh_n + 1):
        for ow in range(w - kw_n + 1):
            # (T, n_chunks) in chunk order (kh, kw, ci_chunk)
            win = words[:, oh:oh + kh_n, ow:ow + kw_n, :].reshape(T, n_chunks)
            for g in range(n_groups):
                for t in range(T):
                    for ch in range(n_chunks):
                        beats.append({"spikes": int(win[t, ch]), "chunk": ch, "t": t,
                                      "group": g, "last_chunk": int(ch == n_chunks - 1),
                                      "last_step": int(t == T - 1)})
    return beats


def _binary_input(spikes: np.ndarray, layer: SynapticLayer, input_bits: int | None):
    x = np.asarray(spikes)
    if input_bits is not None and input_bits > 1:
        x = bit_planes(x, input_bits)
    if layer.kind is LayerKind.CONV and layer.padding:
        p = layer.padding
        x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    return x


def im2col_windows(spikes: np.ndarray, layer: SynapticLayer, p_ci: int, p_co: int,
                   input_bits: int | None = None, static_input: bool = False) -> list[dict]:
    """The window-stream beats of one frame ``spikes[t, c, h, w]`` entering ``layer``.

    The map is zero-padded by ``layer.padding`` (conv) and scanned with the layer's window
    (:func:`~fireflys_hw.compiler.weights.window_kernel`: the kernel, or the whole map for fc),
    each window replayed ``ceil(Co / p_co)`` times. With ``input_bits`` (first layer), ``spikes``
    holds integers and is expanded into bit planes first. With ``static_input`` (the input is
    the same at every step, a direct-encoded first layer) only ``t = 0`` is streamed.
    """
    x = _binary_input(spikes[:1] if static_input else spikes, layer, input_bits)
    n_groups = -(-layer.out_channels // p_co)
    return window_beats(x, window_kernel(layer), p_ci, n_groups)


def lane_outputs(spikes: np.ndarray, layer: SynapticLayer, p_co: int,
                 input_bits: int | None = None) -> list[dict]:
    """The beats a synapse array emits for one frame ``spikes[t, c, h, w]`` (golden model).

    Spiking layer: per output pixel (raster order), ``for group: for t`` a dict ``{"spikes":
    P_Co-bit int (lane l = channel group * p_co + l, 0 past Co), "group", "t"}``. Readout: per
    output pixel, per group, ``{"scores": [sum_t I of each lane (0 past Co)], "group"}``.
    """
    x = np.asarray(spikes, np.int64)[None]
    input_max = (1 << input_bits) - 1 if input_bits else 1
    cur = synaptic_currents(layer, x, input_max).astype(np.int64)   # (1, T, Co, OH, OW)
    co, oh, ow = layer.out_shape
    T = x.shape[1]
    n_groups = -(-co // p_co)
    pad = n_groups * p_co - co
    out = []
    if layer.is_readout:
        scores = np.pad(cur[0].sum(axis=0), ((0, pad), (0, 0), (0, 0)))
        for h in range(oh):
            for w in range(ow):
                for g in range(n_groups):
                    out.append({"scores": [int(v) for v in scores[g * p_co:(g + 1) * p_co, h, w]],
                                "group": g})
        return out
    s = np.pad(neuron_dynamics(cur, layer)[0].astype(np.int64),
               ((0, 0), (0, pad), (0, 0), (0, 0)))
    weights = 1 << np.arange(p_co, dtype=np.int64)
    for h in range(oh):
        for w in range(ow):
            for g in range(n_groups):
                for t in range(T):
                    bits = s[t, g * p_co:(g + 1) * p_co, h, w]
                    out.append({"spikes": int((bits * weights).sum()), "group": g, "t": t})
    return out
