"""Numpy reference generators for the gateware's streams (no Amaranth import).

:func:`pixel_beats` is a map as spike-stream beats (one per pixel, all steps).
:func:`im2col_windows` is the window stream (:mod:`fireflys_hw.gateware.streams`) that the dataflow
orchestrator must produce for one frame, beat for beat (empty chunks dropped, or not with
``drop_empty=False``); the synapse-array tests feed it to the detectors, the orchestrator tests
compare against it. :func:`lane_outputs` is what a :class:`~fireflys_hw.gateware.synapse.SynapseArray`
must emit for that frame, from the golden model.
"""

from __future__ import annotations

import numpy as np

from fireflys_sw.artifact import LayerKind, SynapticLayer
from fireflys_sw.golden import neuron_dynamics, synaptic_currents

from .weights import window_kernel

__all__ = ["bit_planes", "pixel_beats", "any_step", "im2col_windows", "window_beats", "lane_outputs",
           "WINDOW_FIELDS"]

WINDOW_FIELDS = ("spikes", "chunk", "group", "last_chunk")


def any_step(spikes: int, p_ci: int, steps: int) -> int:
    """A window chunk's spikes (``steps * p_ci`` bits, bit ``t * p_ci + i``) ORed over the
    steps: the ``p_ci`` channels that spike at some step."""
    mask = (1 << p_ci) - 1
    out = 0
    for t in range(steps):
        out |= (spikes >> (t * p_ci)) & mask
    return out


def pixel_beats(x: np.ndarray) -> list[int]:
    """``x[t, c, h, w]`` (0/1) as spike-stream beats, one per pixel in raster order: bit ``t *
    C + c`` of a beat is ``x[t, c]`` (:mod:`fireflys_hw.gateware.streams`)."""
    x = np.asarray(x)
    T, c, h, w = x.shape
    flat = x.reshape(T * c, h, w)
    return [sum(int(b) << i for i, b in enumerate(flat[:, i, j]) if b)
            for i in range(h) for j in range(w)]


def bit_planes(x: np.ndarray, input_bits: int) -> np.ndarray:
    """``x[..., c, h, w]`` (integers in ``[0, 2**input_bits)``) as binary channels
    ``c * input_bits + b`` = bit ``b`` of ``x[c]``."""
    x = np.asarray(x, np.int64)
    planes = (x[..., :, None, :, :] >> np.arange(input_bits).reshape(-1, 1, 1)) & 1
    shape = x.shape[:-3] + (x.shape[-3] * input_bits,) + x.shape[-2:]
    return planes.reshape(shape)


def window_beats(spikes: np.ndarray, kernel: tuple[int, int], p_ci: int,
                 n_groups: int, drop_empty: bool = True) -> list[dict]:
    """The window stream of an (already padded) binary map ``spikes[t, c, h, w]``, valid
    convolution with ``kernel = (Kh, Kw)``, stride 1: for each output pixel (raster order),
    ``for group: for chunk``, each chunk carrying its ``p_ci`` channels at every step (bit ``t *
    p_ci + i``); a list of dicts with the fields of :func:`~fireflys_hw.gateware.streams.window_chunk`.
    With ``drop_empty`` a chunk that is 0 at every step is left out unless it is a window's last
    (the orchestrator's behaviour)."""
    spikes = np.asarray(spikes)
    T, c, h, w = spikes.shape
    kh_n, kw_n = kernel
    nci = -(-c // p_ci)
    n_chunks = kh_n * kw_n * nci
    xp = np.zeros((T, nci * p_ci, h, w), np.int64)
    xp[:, :c] = spikes
    # words[h, w, ci_chunk]: each chunk at every step as a T * P_Ci-bit integer (bit t * P_Ci + i)
    xw = xp.reshape(T, nci, p_ci, h, w).transpose(3, 4, 1, 0, 2).reshape(h, w, nci, T * p_ci)
    words = [[[sum(int(b) << i for i, b in enumerate(xw[y, x, k]) if b) for k in range(nci)]
              for x in range(w)] for y in range(h)]
    beats = []
    for oh in range(h - kh_n + 1):
        for ow in range(w - kw_n + 1):
            # in chunk order (kh, kw, ci_chunk)
            win = [words[oh + a][ow + b][k] for a in range(kh_n) for b in range(kw_n)
                   for k in range(nci)]
            for g in range(n_groups):
                for ch in range(n_chunks):
                    last = ch == n_chunks - 1
                    if drop_empty and not last and not win[ch]:
                        continue
                    beats.append({"spikes": win[ch], "chunk": ch, "group": g,
                                  "last_chunk": int(last)})
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
                   input_bits: int | None = None, static_input: bool = False,
                   drop_empty: bool = True) -> list[dict]:
    """The window-stream beats of one frame ``spikes[t, c, h, w]`` entering ``layer``.

    The map is zero-padded by ``layer.padding`` (conv) and scanned with the layer's window
    (:func:`~fireflys_hw.compiler.weights.window_kernel`: the kernel, or the whole map for fc),
    each window replayed ``ceil(Co / p_co)`` times. With ``input_bits`` (first layer), ``spikes``
    holds integers and is expanded into bit planes first. With ``static_input`` (the input is
    the same at every step, a direct-encoded first layer) only ``t = 0`` is streamed.
    ``drop_empty``: as :func:`window_beats`.
    """
    x = _binary_input(spikes[:1] if static_input else spikes, layer, input_bits)
    n_groups = -(-layer.out_channels // p_co)
    return window_beats(x, window_kernel(layer), p_ci, n_groups, drop_empty)


def lane_outputs(spikes: np.ndarray, layer: SynapticLayer, p_co: int,
                 input_bits: int | None = None) -> list[dict]:
    """The beats a synapse array emits for one frame ``spikes[t, c, h, w]`` (golden model).

    Spiking layer: per output pixel (raster order), per group a dict ``{"spikes": T * P_Co-bit
    int (bit t * p_co + l: lane l = channel group * p_co + l at step t, 0 past Co), "group"}``.
    Readout: per
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
    for h in range(oh):
        for w in range(ow):
            for g in range(n_groups):
                bits = s[:, g * p_co:(g + 1) * p_co, h, w].reshape(-1)
                out.append({"spikes": sum(int(b) << i for i, b in enumerate(bits) if b),
                            "group": g})
    return out
