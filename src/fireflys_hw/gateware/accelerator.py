"""The whole accelerator: one layer core per synaptic layer, chained by FIFOs (FireFly-S Sec. IV).

Spatial and fully pipelined: every synaptic layer has its own :class:`~fireflys_hw.gateware.core.
LayerCore` (a max-pool that follows a synaptic layer is fused into that core), cores are chained
by :class:`amaranth.lib.fifo.SyncFIFOBuffered` and run concurrently on successive frames, so the
slowest core sets the frame interval.

Input beats (the host side)
---------------------------
The accelerator takes the first layer's input as a spike stream
(:func:`~fireflys_hw.gateware.streams.spike_stream`), **one beat per pixel** in raster order (row
``h``, column ``w``), ``H * W`` beats per frame; with ``C' = C * input_bits``, bit ``t * C' + c *
input_bits + b`` of a beat is bit ``b`` of the integer input ``x[t, c, h, w]`` (bit planes, see
:mod:`fireflys_hw.gateware.streams`):

* **direct encoding** (``artifact.input_encoding`` ``DIRECT``, the image repeated at every
  step): ``C'``-bit beats, ``t = 0`` only; the first core computes the current once and
  applies it at every step (:func:`~fireflys_hw.host.beats.static_input`);
* **frames** (``FRAMES``, a different input at every step): ``T * C'``-bit beats, every step
  of the pixel.

Frames follow each other with no gap or marker (:attr:`Accelerator.beats_per_frame`).
:func:`~fireflys_hw.host.beats.input_beats` turns uint8 images (as
:func:`fireflys_sw.golden.run_golden` takes them) into these beats with
:func:`fireflys_sw.golden.encode_input`, and
:func:`~fireflys_hw.host.beats.decode_readout` turns an output beat back into scores and class.

Profiling counters
------------------
With ``profile=True`` (the default) the ``counters`` port carries free-running counters of
``counter_bits`` bits (they wrap), in the order of :attr:`Accelerator.counter_names`:

* ``cycles``: clock cycles since reset;
* ``frames_in``: frames whose last input beat was taken; ``frames_out``: result beats sent;
* per core ``k`` (``core{k}_...``):

  - ``in``: cycles in which the core's input takes a beat;
  - ``windows``: cycles in which its window stream (orchestrator -> synapse array) transfers
    a beat (at most ``Ho * Wo * G * n_chunks`` per frame: the chunks that spike at some step,
    and each window's last);
  - ``busy``: cycles in which the core has work -- its orchestrator's walk holds a chunk
    (:attr:`~fireflys_hw.gateware.orchestrator.DataflowOrchestrator.walking`: a window beat
    offered, or an empty chunk dropped) or a lane's FIFO holds window beats
    (:attr:`~fireflys_hw.gateware.synapse.SynapseArray.working`) -- and is not ``blocked``:
    the synapse array admits beats (it has credit,
    :attr:`~fireflys_hw.gateware.synapse.SynapseArray.credit`) or works through the beats in
    its lanes' FIFOs; over a steady-state interval this is the core's own cycles per frame,
    and the core whose ``busy`` is closest to the whole interval is the bottleneck;
  - ``blocked``: cycles in which the window stream is valid, the synapse array is out of
    credit and its lanes have nothing left to do: the core is held back by the downstream
    (next core, FIFO or host); the rest of the interval, ``cycles - busy - blocked``, the core
    waits for input;
  - ``pairs``: effectual (spike in some step AND non-zero weight) pairs processed by all its
    lanes (each once per window, whatever the steps it spikes in), so that its utilisation is
    ``pairs / (p_co * cycles)``.

A dense first core (:class:`~fireflys_hw.gateware.direct_conv.DirectCore`, ``dense_first``) has no
window stream or detector lanes; its flags are :meth:`~fireflys_hw.gateware.direct_conv.DirectCore.
profile_flags`: ``busy`` counts the cycles in which its convolution progresses, ``windows`` the
spike beats it sends (its own cycles per frame are the larger of the two), ``blocked`` the
cycles in which a complete window waits for room downstream; ``pairs`` stays 0.

Snapshots of the counters taken at each output transfer (the simulators do this) give every
figure over any interval by differences. ``profile=False`` leaves the port out (synthesis).

Verilog ports (``amaranth.back.verilog``, module ``top``): ``clk``, ``rst``, ``input__valid``,
``input__ready``, ``input__payload`` (:attr:`Accelerator.beat_bits` bits), ``output__valid``,
``output__ready``, ``output__payload`` (``classes * score_bits`` bits of two's complement
scores, class 0 in the low bits, then the class index), ``counters`` (``len(counter_names) *
counter_bits`` bits, counter 0 in the low bits).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from fireflys_sw.artifact import Artifact, PoolLayer, SynapticLayer, check_artifact

from ..compiler.direct import direct_conv_fits
from ..compiler.resources import fifo_depth
from ..host.beats import static_input
from .core import LayerCore, readout_beat
from .direct_conv import DirectCore
from .streams import spike_stream
from .synapse import DEFAULT_WINDOW_DEPTH
from .util import popcount

__all__ = ["Accelerator", "accelerator_stages", "default_fifo_depth", "CORE_COUNTERS"]

#: The per-core counters, in port order (see the module docstring).
CORE_COUNTERS = ("in", "windows", "busy", "blocked", "pairs")


def accelerator_stages(artifact: Artifact) -> list[tuple[int, SynapticLayer, PoolLayer | None]]:
    """The cores of ``artifact``: ``(index in artifact.layers, synaptic layer, fused pool or
    None)`` per synaptic layer.

    Runs :func:`~fireflys_sw.artifact.check_artifact` first (the semantic rules the loader and
    the planner share), so an artifact the loader refuses is refused here with the same line
    (:class:`~fireflys_sw.errors.ArtifactError`, a ``ValueError``); the checks below are what is
    left of the mapping (a network not starting with a synaptic layer, a pool not following a
    spiking synaptic layer, a readout leaving more than one pixel) and cannot fail after it.
    """
    if not isinstance(artifact, Artifact):
        raise TypeError(f"artifact must be an Artifact, not {artifact!r}")
    check_artifact(artifact, f"artifact {artifact.name!r}")
    stages = []
    for i, layer in enumerate(artifact.layers):
        if isinstance(layer, SynapticLayer):
            stages.append([i, layer, None])
        elif isinstance(layer, PoolLayer):
            if not stages or stages[-1][2] is not None or stages[-1][1].is_readout:
                raise ValueError(f"layer {i} (max-pool) must follow a spiking conv or fc layer "
                                 f"to be fused into its core")
            stages[-1][2] = layer
        else:
            raise TypeError(f"layer {i} is not a SynapticLayer or PoolLayer: {layer!r}")
    if not stages:
        raise ValueError("artifact has no synaptic layer")
    last = stages[-1][1]
    if not last.is_readout or tuple(last.out_shape[1:]) != (1, 1):
        raise ValueError(f"the last layer must be a readout leaving one pixel (an fc layer), "
                         f"not {last.kind.value} with out_shape {list(last.out_shape)}")
    return [tuple(s) for s in stages]


def default_fifo_depth(T: int, out_width: int) -> int:
    """FIFO entries between two cores: one row of the producer's output map (``width`` beats,
    a beat being a pixel at every step: the burst a max-pool releases at once), at least 2,
    rounded up to a power of two (the planner's :func:`fireflys_hw.compiler.fifo_depth` for
    spiking layers)."""
    return fifo_depth(T, out_width)


class Accelerator(wiring.Component):
    """An artifact's whole network in hardware: input beats in, one result beat per frame out.

    Parameters
    ----------
    artifact : Artifact
        The network (:func:`accelerator_stages` lists its cores).
    parallelism : sequence of (p_co, p_ci), or mapping {layer index: (p_co, p_ci)}
        Per synaptic layer, in order (or keyed by position in ``artifact.layers``, as
        :meth:`fireflys_hw.compiler.Plan.parallelism` returns it).
    fifo_depths : sequence of int or None
        Entries of the FIFO after each core but the last (``len(cores) - 1`` values); default
        :func:`default_fifo_depth` of the producer's output map.
    depth : int
        Output FIFO entries per detector lane (:class:`~fireflys_hw.gateware.core.LayerCore`).
    window_depth : int
        Window beats per detector lane FIFO (:class:`~fireflys_hw.gateware.synapse.SynapseArray`).
    drop_empty : bool
        The orchestrators leave out window chunks that are 0 at every step (``False``: every
        chunk is sent, for comparison).
    dense_first : bool
        Core 0 is a :class:`~fireflys_hw.gateware.direct_conv.DirectCore` (the dense datapath
        of a direct-encoded first conv layer; its ``p_ci`` is not used) instead of a
        :class:`~fireflys_hw.gateware.core.LayerCore`.
    profile : bool
        Add the ``counters`` port (module docstring).
    counter_bits : int
        Width of each counter.

    Members
    -------
    input : ``In(spike_stream(beat_bits))``
        ``H * W`` beats per frame (module docstring,
        :func:`~fireflys_hw.host.beats.input_beats`).
    output : ``Out(stream.Signature(readout_beat(classes, score_bits)))``
        One beat per frame: ``scores`` (``sum_t I`` per class) and ``index`` (argmax, lowest
        index on ties).
    counters : ``Out(data.ArrayLayout(unsigned(counter_bits), len(counter_names)))``
        With ``profile``: the profiling counters (module docstring).

    Attributes
    ----------
    cores : list of LayerCore
        One per synaptic layer.
    layer_indices : list of int
        Position of each core's synaptic layer in ``artifact.layers``.
    fifo_depths : list of int
    counter_names : list of str
    """

    def __init__(self, artifact: Artifact, parallelism, fifo_depths: Sequence[int] | None = None,
                 *, depth: int = 16, window_depth: int = DEFAULT_WINDOW_DEPTH,
                 drop_empty: bool = True, dense_first: bool = False, profile: bool = True,
                 counter_bits: int = 48):
        stages = accelerator_stages(artifact)
        self.artifact = artifact
        self.layer_indices = [i for i, _, _ in stages]
        pairs = _parallelism_list(parallelism, self.layer_indices)
        T = artifact.T
        n_links = len(stages) - 1
        if fifo_depths is None:
            fifo_depths = [default_fifo_depth(T, (pool or layer).out_shape[2])
                           for _, layer, pool in stages[:-1]]
        fifo_depths = list(fifo_depths)
        if len(fifo_depths) != n_links:
            raise ValueError(f"fifo_depths must have {n_links} values (one per link between "
                             f"cores), not {len(fifo_depths)}")
        for d in fifo_depths:
            if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 2:
                raise ValueError(f"fifo_depths must be integers of at least 2, not {d!r}")
        self.fifo_depths = [int(d) for d in fifo_depths]
        if isinstance(counter_bits, bool) or not isinstance(counter_bits, int) \
                or counter_bits < 8:
            raise ValueError(f"counter_bits must be an integer of at least 8, not "
                             f"{counter_bits!r}")
        self.counter_bits = counter_bits
        self.profile = bool(profile)
        self.dense_first = bool(dense_first)
        if self.dense_first and not (static_input(artifact) and direct_conv_fits(stages[0][1])):
            raise ValueError("dense_first needs a direct-encoded first layer that is a spiking "
                             "conv layer")
        self.cores = []
        for k, ((i, layer, pool), (p_co, p_ci)) in enumerate(zip(stages, pairs)):
            if k == 0 and self.dense_first:
                self.cores.append(DirectCore(layer, p_co=p_co, T=T, per_step=False,
                                             input_bits=artifact.input_bits, pool=pool))
                continue
            self.cores.append(LayerCore(layer, p_co=p_co, p_ci=p_ci, T=T,
                                        input_bits=artifact.input_bits if k == 0 else 1,
                                        pool=pool, depth=depth, window_depth=window_depth,
                                        drop_empty=drop_empty,
                                        static_input=k == 0 and static_input(artifact),
                                        radix=artifact.radix))
        self.parallelism = pairs
        self.T = T
        self.counter_names = ["cycles", "frames_in", "frames_out"] + [
            f"core{k}_{name}" for k in range(len(self.cores)) for name in CORE_COUNTERS]
        readout = self.cores[-1]
        self.score_bits = readout.score_bits
        sig = {
            "input": In(spike_stream(self.cores[0].beat_bits)),
            "output": Out(stream.Signature(readout_beat(artifact.classes, self.score_bits))),
        }
        if self.profile:
            sig["counters"] = Out(data.ArrayLayout(unsigned(counter_bits),
                                                   len(self.counter_names)))
        super().__init__(sig)

    @property
    def in_channels(self) -> int:
        """Bits per input beat, ``C * input_bits``."""
        return self.cores[0].in_channels

    @property
    def beat_bits(self) -> int:
        """Bits per input beat: ``C * input_bits`` (direct encoding) or ``T * C *
        input_bits`` (frames)."""
        return self.cores[0].beat_bits

    @property
    def beats_per_frame(self) -> int:
        """Input beats per frame: ``H * W``."""
        return self.cores[0].beats_per_frame

    @property
    def classes(self) -> int:
        return self.artifact.classes

    def counter_index(self, name: str) -> int:
        return self.counter_names.index(name)

    def elaborate(self, platform):
        m = Module()
        for k, core in enumerate(self.cores):
            m.submodules[f"core{k}"] = core
        wiring.connect(m, wiring.flipped(self.input), self.cores[0].input)
        for k, d in enumerate(self.fifo_depths):
            link = fifo.SyncFIFOBuffered(width=self.cores[k].layer.out_channels * self.T,
                                         depth=d)
            m.submodules[f"fifo{k}"] = link
            wiring.connect(m, self.cores[k].output, link.w_stream)
            wiring.connect(m, link.r_stream, self.cores[k + 1].input)
        wiring.connect(m, self.cores[-1].output, wiring.flipped(self.output))
        if self.profile:
            self._elaborate_counters(m)
        return m

    def _elaborate_counters(self, m: Module):
        bits = self.counter_bits
        counters = [Signal(bits, name=name) for name in self.counter_names]
        m.d.comb += [self.counters[i].eq(c) for i, c in enumerate(counters)]
        by_name = dict(zip(self.counter_names, counters))
        m.d.sync += by_name["cycles"].eq(by_name["cycles"] + 1)

        # frames in: the beat counter wraps at a frame
        beats = self.beats_per_frame
        beat = Signal(range(beats))
        with m.If(self.input.valid & self.input.ready):
            with m.If(beat == beats - 1):
                m.d.sync += [beat.eq(0), by_name["frames_in"].eq(by_name["frames_in"] + 1)]
            with m.Else():
                m.d.sync += beat.eq(beat + 1)
        with m.If(self.output.valid & self.output.ready):
            m.d.sync += by_name["frames_out"].eq(by_name["frames_out"] + 1)

        # the profiled signals live inside the cores; they are only read here
        for k, core in enumerate(self.cores):
            if isinstance(core, DirectCore):
                # no detector lanes: its pairs counter stays 0
                for name, flag in core.profile_flags().items():
                    c = by_name[f"core{k}_{name}"]
                    with m.If(flag):
                        m.d.sync += c.eq(c + 1)
                continue
            win = core.orchestrator.output
            # the synapse array's own admission flag: a window beat waiting while it is low
            # is held back by the downstream, one waiting while it is high by the detectors;
            # out of credit, the lanes still work through the beats in their FIFOs
            credit = core.synapses.credit
            working = credit | core.synapses.working
            flags = {
                "in": core.input.valid & core.input.ready,
                "windows": win.valid & win.ready,
                # the walk (sending or dropping chunks) or the lanes have work, and the
                # downstream does not hold the core
                "busy": ((core.orchestrator.walking | core.synapses.working)
                         & ~(win.valid & ~working)),
                "blocked": win.valid & ~working,
            }
            for name, flag in flags.items():
                c = by_name[f"core{k}_{name}"]
                with m.If(flag):
                    m.d.sync += c.eq(c + 1)
            lanes = core.synapses.lanes
            pair_bits = [ev.valid & ev.payload.pair for ev in lanes.events]
            c = by_name[f"core{k}_pairs"]
            m.d.sync += c.eq(c + popcount(Cat(*pair_bits)))


def _parallelism_list(parallelism, indices: list[int]) -> list[tuple[int, int]]:
    if isinstance(parallelism, Mapping):
        missing = [i for i in indices if i not in parallelism]
        extra = sorted(set(parallelism) - set(indices))
        if missing or extra:
            raise ValueError(f"parallelism must have the synaptic layers {indices} as keys, "
                             f"not {sorted(parallelism)}")
        items = [parallelism[i] for i in indices]
    else:
        items = list(parallelism)
        if len(items) != len(indices):
            raise ValueError(f"parallelism must have {len(indices)} (p_co, p_ci) pairs (one per "
                             f"synaptic layer), not {len(items)}")
    pairs = []
    for item in items:
        try:
            p_co, p_ci = item
        except (TypeError, ValueError):
            raise ValueError(f"parallelism entries must be (p_co, p_ci) pairs, not "
                             f"{item!r}") from None
        pairs.append((int(p_co), int(p_ci)))
    return pairs
