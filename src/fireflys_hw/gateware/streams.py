"""The payloads that flow between the components of a layer core and between cores.

Two stream formats connect everything (all are ``amaranth.lib.stream`` signatures with
valid/ready backpressure; a transfer happens on ``valid & ready``):

* **Spike stream** (between cores, and into the first core): one beat is one pixel, **all its
  time steps and channels**: ``SpikeBeat(T * C)``, bit ``t * C + c`` the spike of channel ``c``
  at step ``t``. Beats come in raster order (row ``h``, then column ``w``); a frame is ``H *
  W`` beats. A static input (a direct-encoded first layer: the same image at every step) carries
  one step per beat (``C`` bits; :class:`~fireflys_hw.gateware.core.LayerCore`'s ``static_input``). The
  first layer's multi-bit input is carried as bit planes: channel ``c`` bit ``b`` is binary input
  channel ``c * input_bits + b`` whose weights are scaled by ``2**b`` (so the same binary sparse
  machinery serves it, radix style).
* **Window stream** (orchestrator -> sparsity detectors): the spikes of one output pixel's
  receptive field, cut into chunks of ``P_Ci`` channels, **each carrying those channels at every
  streamed step** (``S * P_Ci`` bits, bit ``t * P_Ci + i``; ``S = T``, or 1 for a static input):
  ``WindowChunk``. Loop order ``for group in Co/P_Co: for chunk in K*K*ceil(Ci/P_Ci)``, no
  loop over ``t``: the lanes compute all ``T`` currents of a window in one pass. A chunk is
  ``(kh, kw, ci0..ci0+P_Ci-1)`` with ``chunk = (kh * Kw + kw) * n_ci_chunks + ci_chunk`` (``Kw``
  the window width: K for a conv, the map width for a fully connected layer); channels past
  ``Ci`` in the last chunk are 0. ``last_chunk`` marks the last chunk of a window (of a group:
  the neuron updates follow it). Chunks whose spikes are 0 at every step are not sent (the
  orchestrator drops them), except the last chunk of a window, which carries the end mark.
"""

from amaranth.hdl import Cat, Const, Elaboratable, Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .util import check_positive

__all__ = ["spike_beat", "spike_stream", "window_chunk", "window_stream", "effectual_event",
           "LaneQueue", "SkidBuffer"]


def spike_beat(bits: int) -> data.StructLayout:
    """One pixel: ``bits = steps * channels`` spike bits, bit ``t * channels + c``."""
    return data.StructLayout({"spikes": bits})


def spike_stream(bits: int) -> stream.Signature:
    return stream.Signature(spike_beat(bits))


def window_chunk(p_ci: int, n_chunks: int, steps: int, n_groups: int) -> data.StructLayout:
    """One chunk of ``P_Ci`` channels of an output pixel's receptive field at every one of
    ``steps`` time steps (bit ``t * P_Ci + i``), for one group of ``P_Co`` output channels."""
    return data.StructLayout({
        "spikes": p_ci * steps,
        "chunk": range(max(n_chunks, 2)),
        "group": range(max(n_groups, 2)),
        "last_chunk": 1,
    })


def window_stream(p_ci: int, n_chunks: int, steps: int, n_groups: int) -> stream.Signature:
    return stream.Signature(window_chunk(p_ci, n_chunks, steps, n_groups))


def effectual_event(weight_bits: int, T: int, n_groups: int) -> data.StructLayout:
    """One detector output slot.

    ``pair``: ``weight`` is the weight of an effectual (input, non-zero weight) pair, one whose
    input spikes in at least one of the ``T`` steps; ``steps`` bit ``t`` says whether it spikes
    at step ``t`` (the neuron lane adds ``weight`` into the accumulators of those steps).
    Otherwise the slot only carries ``end``. ``end``: the last slot of a window (the neuron
    updates follow it); ``group``: its group.
    """
    return data.StructLayout({
        "weight": signed(weight_bits),
        "pair": 1,
        "steps": T,
        "end": 1,
        "group": range(max(n_groups, 2)),
    })


class LaneQueue(Elaboratable):
    """A lane's FIFO (window beats, neuron results): :class:`amaranth.lib.fifo.SyncFIFO`'s
    ports and timing
    (``w_data``, ``w_en``, ``w_rdy``, ``r_data``, ``r_en``, ``r_rdy``; a small distributed RAM
    read asynchronously, a beat written in one cycle readable in the next), but its fill level
    is a thermometer code (``filled[i]``: more than ``i`` beats), so that ``r_en`` and
    ``w_en``, which come from hand-shakes, only steer one LUT per flip-flop, not a counter's
    carry chain (issue 14).

    ``registered_read``: ``r_data`` comes from a flip-flop, not from the RAM's asynchronous
    read, with the same timing: the first two beats are held in registers and the RAM is read
    at the third's slot, so that a pop only picks what the registers take (a beat written into
    an empty queue is at ``r_data`` in the next cycle, as before). ``2 * width`` flip-flops
    more; whatever follows ``r_data`` starts at a register (the window queues: the detector's
    bitmap table is read at the beat's address, issue 14). ``next_data`` (with
    ``registered_read``) is what
    ``r_data`` holds in the next cycle, for a reader that looks a beat up one cycle early (a
    block RAM table read at the next head's address has its row out with the head).

    ``registered_pop`` (with ``registered_read``): a pop takes effect inside the queue a cycle
    later, from a flip-flop (``pop_r``), so that the reader's ready (a hand-shake chain
    decided at the far end, the detector's) ends at one flip-flop instead of steering every
    register of the queue (the ULX3S build's critical path: the detector's "free" into its
    window queue's pop, 10.05 ns, 7.65 of it routing). The ports keep SyncFIFO's timing: what
    they show is the queue with the pending pop applied (``r_data`` picks the second register
    while a pop is pending; ``r_rdy``, ``w_rdy`` and :meth:`below` count it), so a reader
    sees no difference, cycle for cycle. A write that finds the queue full inside, a pop
    pending, goes to the popped beat's slot. One multiplexer per bit of ``r_data``.
    """

    def __init__(self, width: int, depth: int, registered_read: bool = False,
                 registered_pop: bool = False):
        self.width = check_positive("width", width)
        self.depth = check_positive("depth", depth)
        self.registered_read = bool(registered_read)
        self.registered_pop = bool(registered_pop)
        if self.registered_pop and not self.registered_read:
            raise ValueError("registered_pop needs registered_read (the beats it picks "
                             "between are in registers)")
        self.w_data = Signal(width)
        self.w_en = Signal()
        self.w_rdy = Signal()
        self.r_data = Signal(width)
        self.r_en = Signal()
        self.r_rdy = Signal()
        self.filled = Signal(depth)
        self.next_data = Signal(width)
        #: ``next_data`` = ``next_second`` if ``next_pick`` else ``next_head``: the two beats
        #: that can be the next head, which do not depend on this cycle's pop, and the pick,
        #: which does (a reader can look both up and pick after its own registers)
        self.next_head = Signal(width)
        self.next_second = Signal(width)
        self.next_pick = Signal()
        #: a pop decided in the previous cycle, not yet applied to ``filled`` (registered_pop)
        self.pop_r = Signal()
        # the same, inverted, for :meth:`below` only: a flip-flop of its own, which the placer
        # can put by the fill-level readers (a room flag ANDed over lanes) while ``pop_r``
        # stays by the queue's registers (inverted, so that Yosys does not merge the two)
        self._no_pop_r = Signal(init=1)

    def below(self, n: int):
        """``level < n`` (``0 < n <= depth``): a flip-flop; with ``registered_pop`` one LUT of
        two fill flip-flops and a copy of ``pop_r`` (the level with the pending pop applied)."""
        if not self.registered_pop:
            return ~self.filled[n - 1]
        above = self.filled[n] if n < self.depth else Const(0)
        return ~self.filled[n - 1] | (~self._no_pop_r & ~above)

    def elaborate(self, platform):
        m = Module()
        D = self.depth
        m.submodules.storage = storage = memory.Memory(shape=self.width, depth=D, init=[])
        wr = storage.write_port()
        wptr = Signal(range(D))
        # the slot read next; with ``registered_read`` the third beat's (two ahead of the head)
        rptr = Signal(range(D), init=2 % D if self.registered_read else 0)
        do_write = self.w_en & self.w_rdy
        take = self.r_en & self.r_rdy            # the reader's pop, as the ports show it
        # the pop applied to the storage: now, or the previous cycle's (registered_pop)
        do_read = self.pop_r if self.registered_pop else take

        def step(ptr):
            return ptr + 1 if D & (D - 1) == 0 else Mux(ptr == D - 1, 0, ptr + 1)

        rd = storage.read_port(domain="comb")
        if self.registered_read:
            # The first two beats are kept in registers beside the RAM (``head``, ``second``)
            # and the RAM is read at a register, the slot of the third (``rptr`` runs two
            # ahead): a pop only picks what each register takes, one multiplexer after the
            # read decision, where the RAM read at the next head had followed it (the
            # detector's hand-shakes, the read address, the RAM: core 1's critical path alone
            # on the ECP5, 8.6 ns). A beat written while the queue holds fewer than two after
            # this cycle's read goes straight to the register it belongs in. The port stays
            # asynchronous: Yosys would build a transparent synchronous one on ECP5's LUT RAM
            # as an address register before an asynchronous read.
            head = Signal(self.width)
            second = Signal(self.width)
            holds = [self.filled[i] if i < D else Const(0) for i in range(3)]
            # the beats in order, the one written now after those held
            nth = [Mux(holds[0], head, self.w_data), Mux(holds[1], second, self.w_data),
                   Mux(holds[2], rd.data, self.w_data)]
            head_next = Mux(do_read, nth[1], nth[0])
            second_next = Mux(do_read, nth[2], nth[1])
            m.d.comb += rd.addr.eq(rptr)
            m.d.sync += [head.eq(head_next), second.eq(second_next)]
            if self.registered_pop:
                # the ports show the storage with the pending pop applied; next cycle's
                # head also skips this cycle's pop (the hand-shake steers this multiplexer,
                # which only the look-ahead reader uses, not the storage)
                m.d.sync += [self.pop_r.eq(take), self._no_pop_r.eq(~take)]
                m.d.comb += [
                    self.r_data.eq(Mux(self.pop_r, second, head)),
                    self.next_pick.eq(take),
                ]
            else:
                m.d.comb += self.r_data.eq(head)
            m.d.comb += [
                self.next_head.eq(head_next),
                self.next_second.eq(second_next),
                self.next_data.eq(Mux(self.next_pick, self.next_second, self.next_head)),
            ]
        else:
            m.d.comb += [rd.addr.eq(rptr), self.r_data.eq(rd.data)]
        if self.registered_pop:
            m.d.comb += [
                self.w_rdy.eq(~self.filled[D - 1] | self.pop_r),
                self.r_rdy.eq(Mux(self.pop_r, self.filled[1] if D > 1 else 0,
                                  self.filled[0])),
            ]
        else:
            m.d.comb += [
                self.w_rdy.eq(~self.filled[D - 1]),
                self.r_rdy.eq(self.filled[0]),
            ]
        m.d.comb += [
            wr.addr.eq(wptr),
            wr.data.eq(self.w_data),
            wr.en.eq(do_write),
        ]

        with m.If(do_write):
            m.d.sync += wptr.eq(step(wptr))
        with m.If(do_read):
            m.d.sync += rptr.eq(step(rptr))
        with m.If(do_write & ~do_read):
            m.d.sync += self.filled.eq(Cat(Const(1, 1), self.filled[:D - 1]))
        with m.Elif(do_read & ~do_write):
            m.d.sync += self.filled.eq(self.filled[1:])
        return m


class SkidBuffer(wiring.Component):
    """A register slice for a stream: every signal out of it comes from a flip-flop, so no
    combinational path crosses it in either direction (the ready that a far consumer decides
    and the valid and payload of a far producer end at its registers), at full rate and with
    one cycle of latency.

    The beat on the output is in a register; a second register (the skid) catches the beat
    that the producer sends in the cycle the consumer stalls, which the producer could not see
    yet: ``input.ready`` is "the skid is empty", a flip-flop. Beats leave in order.

    Parameters
    ----------
    shape : shape
        The payload's shape.

    Members
    -------
    input : ``In(stream.Signature(shape))``
    output : ``Out(stream.Signature(shape))``
    """

    def __init__(self, shape):
        super().__init__({"input": In(stream.Signature(shape)),
                          "output": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        skid_valid = Signal()
        skid = Signal.like(self.input.payload)
        m.d.comb += self.input.ready.eq(~skid_valid)
        take = self.input.valid & ~skid_valid
        with m.If(~self.output.valid | self.output.ready):
            # the output register is free (or freed now): the skid's beat first, it is older
            m.d.sync += [self.output.valid.eq(skid_valid | self.input.valid),
                         skid_valid.eq(0)]
            with m.If(skid_valid):
                m.d.sync += self.output.payload.eq(skid)
            with m.Else():
                m.d.sync += self.output.payload.eq(self.input.payload)
        with m.Elif(take):
            m.d.sync += [skid_valid.eq(1), skid.eq(self.input.payload)]
        return m
