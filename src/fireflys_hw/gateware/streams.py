"""The payloads that flow between the components of a layer core and between cores.

Two stream formats connect everything (all are ``amaranth.lib.stream`` signatures with
valid/ready backpressure; a transfer happens on ``valid & ready``):

* **Spike stream** (between cores, and into the first core): one beat is one pixel at one time
  step, all channels: ``SpikeBeat(channels)``. Beats come in raster order (row ``h``, then
  column ``w``) and, for each pixel, time steps ``t = 0..T-1``. A frame is ``H * W * T`` beats.
  A static input (a direct-encoded first layer: the same image at every step) has one beat per
  pixel instead, ``H * W`` per frame (:class:`~fireflys_hw.gateware.core.LayerCore`'s
  ``static_input``). The first layer's multi-bit input is carried as bit planes: channel ``c``
  bit ``b`` is binary input channel ``c * input_bits + b`` whose weights are scaled by
  ``2**b`` (so the same binary sparse machinery serves it, radix style).
* **Window stream** (orchestrator -> sparsity detectors): the spikes of one output pixel's
  receptive field, cut into ``P_Ci``-bit chunks, in the FireFly-S loop order
  ``for group in Co/P_Co: for t in T: for chunk in K*K*ceil(Ci/P_Ci)``: ``WindowChunk``. A chunk
  is ``(kh, kw, ci0..ci0+P_Ci-1)`` with ``chunk = (kh * Kw + kw) * n_ci_chunks + ci_chunk``
  (``Kw`` the window width: K for a conv, the map width for a fully connected layer);
  channels past ``Ci`` in the last chunk are 0. ``last_chunk`` marks the last chunk of a time
  step (the neuron update follows it), ``last_step`` the last time step of a group. For a
  static input the stream carries one step per group (``t = 0``, ``last_step`` always set).
"""

from amaranth.hdl import signed
from amaranth.lib import data, stream

__all__ = ["spike_beat", "spike_stream", "window_chunk", "window_stream", "effectual_event"]


def spike_beat(channels: int) -> data.StructLayout:
    """One pixel at one time step: a bit per channel."""
    return data.StructLayout({"spikes": channels})


def spike_stream(channels: int) -> stream.Signature:
    return stream.Signature(spike_beat(channels))


def window_chunk(p_ci: int, n_chunks: int, T: int, n_groups: int) -> data.StructLayout:
    """One ``P_Ci``-bit chunk of an output pixel's receptive field at one time step, for one
    group of ``P_Co`` output channels."""
    return data.StructLayout({
        "spikes": p_ci,
        "chunk": range(max(n_chunks, 2)),
        "t": range(max(T, 2)),
        "group": range(max(n_groups, 2)),
        "last_chunk": 1,
        "last_step": 1,
    })


def window_stream(p_ci: int, n_chunks: int, T: int, n_groups: int) -> stream.Signature:
    return stream.Signature(window_chunk(p_ci, n_chunks, T, n_groups))


def effectual_event(weight_bits: int, T: int, n_groups: int) -> data.StructLayout:
    """One detector output slot.

    ``pair``: ``weight`` is the weight of an effectual (spike, non-zero weight) pair; otherwise
    the slot only carries ``end``. ``end``: the last slot of a time step (the neuron update
    follows it); ``last_step``, ``t``, ``group``: the step's position in the window stream.
    """
    return data.StructLayout({
        "weight": signed(weight_bits),
        "pair": 1,
        "end": 1,
        "last_step": 1,
        "t": range(max(T, 2)),
        "group": range(max(n_groups, 2)),
    })
