"""A constant table read through a block RAM's output register (:class:`RegisteredRom`).

A block RAM's data come out late after the clock edge that reads them (an ECP5 DP16KD without
its output register: about 5.8 ns of the 8 ns that 125 MHz leaves), so whatever takes them,
even a plain register across some routing, limits the clock (the readout core's weight tables,
issue 14). The RAM's own output register, a cycle later, comes out fast. Synthesis does not
infer that register on the ECP5 (Yosys maps every read as ``REGMODE "NOREG"``), so on an ECP5
platform the table is built from ``DP16KD`` instances with ``REGMODE "OUTREG"``; everywhere
else (simulation, other families, the synthesis estimates) it is a :class:`memory.Memory`
read port and a register after it, with the same timing.
"""

from amaranth.hdl import ClockSignal, Const, Instance, Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.vendor import LatticePlatform

from .util import check_positive

__all__ = ["RegisteredRom", "dp16kd_layout", "dp16kd_initvals"]

#: DP16KD configurations: data width -> (rows, low address bits tied to 0). The INITVAL
#: parameters hold 1024 slots of 20 bits; an x18 row fills a slot's low 18 bits, two x9 rows
#: its two 9-bit halves, and in the narrower modes each 9-bit half holds 8 bits of rows (its
#: ninth bit unused), as Yosys' own mapping does (checked against it in the tests).
_DP16KD_MODES = {18: (1024, 4), 9: (2048, 3), 4: (4096, 2), 2: (8192, 1), 1: (16384, 0)}


def dp16kd_layout(width: int, depth: int):
    """``(data width per block, blocks side by side)`` for a ``width`` x ``depth`` table in
    DP16KDs (the fewest blocks, then the widest mode), or ``None`` where one row of blocks
    cannot hold it (deeper than 16384 rows)."""
    fits = [(-(-width // mode), -mode) for mode, (rows, _) in _DP16KD_MODES.items()
            if depth <= rows]
    if not fits:
        return None
    blocks, mode = min(fits)
    return -mode, blocks


def dp16kd_initvals(words, mode: int) -> dict[str, int]:
    """The ``INITVAL_00`` .. ``INITVAL_3F`` parameters (320-bit integers) of a DP16KD in
    ``mode`` (1, 2, 4, 9 or 18 bits) holding ``words`` (row ``a`` at address ``a``): each
    parameter covers 16 slots of 20 bits (see ``_DP16KD_MODES``)."""
    slots = [0] * 1024
    for a, word in enumerate(words):
        if mode >= 9:
            slot, part = divmod(a, 18 // mode)
            offset = part * mode
        else:
            per_half = 8 // mode
            slot, rest = divmod(a, 2 * per_half)
            half, part = divmod(rest, per_half)
            offset = 9 * half + part * mode
        slots[slot] |= (int(word) & ((1 << mode) - 1)) << offset
    return {f"INITVAL_{k:02X}": sum(slots[k * 16 + i] << (20 * i) for i in range(16))
            for k in range(64)}


class RegisteredRom(wiring.Component):
    """A constant table of ``len(init)`` rows of ``width`` bits, read through an output
    register.

    Timing: at a clock edge with ``en`` high the row at ``addr`` is read; at a clock edge with
    ``oce`` high ``data`` takes the row of the previous read. (A :class:`memory.Memory` read port
    with ``en``, then a register loaded while ``oce`` is high.)

    Parameters
    ----------
    width : int
        Bits per row.
    init : sequence of int
        The rows (unsigned ``width``-bit values).
    block_ram : bool
        Whether the table belongs in block RAM (the DP16KD form on an ECP5); ``False`` leaves
        the mapping to synthesis (a small table: LUTs).
    second_port : bool
        A second read (``addr_b`` -> ``data_b``, the same ``en`` and ``oce``): a DP16KD's port
        B, no more blocks.

    Members
    -------
    addr : ``In(range(len(init)))``
    en : ``In(1)``
    oce : ``In(1)``
    data : ``Out(width)``
    addr_b : ``In(range(len(init)))`` (``second_port``)
    data_b : ``Out(width)`` (``second_port``)
    """

    def __init__(self, width: int, init, *, block_ram: bool = True, second_port: bool = False):
        self.width = check_positive("width", width)
        self.block_ram = bool(block_ram)
        self.second_port = bool(second_port)
        self.init = [int(v) for v in init]
        if not self.init:
            raise ValueError("init must hold at least one row")
        if any(not 0 <= v < (1 << width) for v in self.init):
            raise ValueError(f"init rows must be unsigned {width}-bit values")
        super().__init__({
            "addr": In(range(max(len(self.init), 2))),
            "en": In(1),
            "oce": In(1),
            "data": Out(width),
            **({"addr_b": In(range(max(len(self.init), 2))), "data_b": Out(width)}
               if self.second_port else {}),
        })

    def elaborate(self, platform):
        m = Module()
        layout = dp16kd_layout(self.width, len(self.init)) if self.block_ram else None
        if isinstance(platform, LatticePlatform) and platform.family == "ecp5" and layout:
            self._dp16kd(m, *layout)
            return m
        m.submodules.table = table = memory.Memory(shape=self.width, depth=len(self.init),
                                                   init=self.init)
        reads = [(self.addr, self.data)] + ([(self.addr_b, self.data_b)]
                                            if self.second_port else [])
        for addr, out in reads:
            rd = table.read_port()
            m.d.comb += [rd.addr.eq(addr), rd.en.eq(self.en)]
            with m.If(self.oce):
                m.d.sync += out.eq(rd.data)
        return m

    def _dp16kd(self, m, mode, n_blocks):
        _, low = _DP16KD_MODES[mode]
        addr_bits = len(self.addr)
        for b in range(n_blocks):
            lo, hi = b * mode, min(self.width, (b + 1) * mode)
            words = [(v >> lo) & ((1 << (hi - lo)) - 1) for v in self.init]
            params = {f"p_{k}": Const(v, 320) for k, v in dp16kd_initvals(words, mode).items()}
            ports = {}
            for i in range(14):
                a = i - low
                ports[f"i_ADA{i}"] = self.addr[a] if 0 <= a < addr_bits else Const(0, 1)
                ports[f"i_ADB{i}"] = (self.addr_b[a] if self.second_port and 0 <= a < addr_bits
                                      else Const(0, 1))
            for i in range(18):
                ports[f"i_DIA{i}"] = ports[f"i_DIB{i}"] = Const(0, 1)
                if i < hi - lo:
                    ports[f"o_DOA{i}"] = self.data[lo + i]
                    if self.second_port:
                        ports[f"o_DOB{i}"] = self.data_b[lo + i]
            for port in ("A", "B"):
                for i in range(3):
                    ports[f"i_CS{port}{i}"] = Const(0, 1)
            m.submodules[f"dp16kd{b}"] = Instance(
                "DP16KD",
                p_DATA_WIDTH_A=mode, p_DATA_WIDTH_B=mode,
                p_REGMODE_A="OUTREG", p_REGMODE_B="OUTREG" if self.second_port else "NOREG",
                p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC",
                p_CSDECODE_A="0b000", p_CSDECODE_B="0b000",
                p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL",
                p_GSR="DISABLED", **params,
                i_CLKA=ClockSignal(), i_CEA=self.en, i_OCEA=self.oce, i_WEA=Const(0, 1),
                i_RSTA=Const(0, 1),
                i_CLKB=ClockSignal(),
                i_CEB=self.en if self.second_port else Const(0, 1),
                i_OCEB=self.oce if self.second_port else Const(0, 1),
                i_WEB=Const(0, 1), i_RSTB=Const(0, 1),
                **ports)
