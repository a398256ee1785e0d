# amaranth: UnusedElaboratable=no
"""RegisteredRom: its timing in simulation (read at ``en``, output register at ``oce``), and its
ECP5 form, DP16KD instances with the output register, whose contents and address wiring are
those of Yosys' own mapping of the same table."""

import json
import os
import random
import subprocess
import tempfile

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import memory
from amaranth.sim import Simulator

from fireflys_hw.gateware.bram import RegisteredRom, dp16kd_initvals, dp16kd_layout
from fireflys_hw.synth import yosys_command


def _table(width, depth, seed):
    rng = random.Random(seed)
    return [rng.randrange(1 << width) for _ in range(depth)]


@pytest.mark.parametrize("second_port", [False, True])
def test_reads_at_en_and_registers_at_oce(second_port):
    init = _table(7, 40, 1)
    dut = RegisteredRom(7, init, second_port=second_port)
    rng = random.Random(2)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    ports = [(dut.addr, dut.data)] + ([(dut.addr_b, dut.data_b)] if second_port else [])

    async def bench(ctx):
        # per port: the row the last en read; the output register
        read, data = [0] * len(ports), [0] * len(ports)
        for _ in range(400):
            assert [ctx.get(out) for _, out in ports] == data
            addrs = [rng.randrange(40) for _ in ports]
            en, oce = rng.random() < 0.7, rng.random() < 0.6
            for (addr, _), a in zip(ports, addrs):
                ctx.set(addr, a)
            ctx.set(dut.en, en)
            ctx.set(dut.oce, oce)
            await ctx.tick()
            data = [r if oce else d for r, d in zip(read, data)]
            read = [init[a] if en else r for a, r in zip(addrs, read)]

    sim.add_testbench(bench)
    sim.run()


def test_bad_tables_are_refused():
    with pytest.raises(ValueError, match="at least one row"):
        RegisteredRom(4, [])
    with pytest.raises(ValueError, match="unsigned 4-bit"):
        RegisteredRom(4, [16])


def test_dp16kd_layout():
    assert dp16kd_layout(15, 2560) == (4, 4)      # the readout's bitmap table
    assert dp16kd_layout(4, 1896) == (9, 1)       # its weight store
    assert dp16kd_layout(20, 1024) == (18, 2)
    assert dp16kd_layout(3, 9000) == (1, 3)
    assert dp16kd_layout(1, 16385) is None


def _ecp5():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform
    return ULX3S_85F_Platform()


class _Inferred(Elaboratable):
    """The same table as a plain Memory read port, for Yosys to map itself."""

    def __init__(self, width, init):
        self.addr = Signal(range(len(init)))
        self.en = Signal()
        self.data = Signal(width)
        self.width, self.init = width, init

    def elaborate(self, platform):
        m = Module()
        m.submodules.table = table = memory.Memory(shape=self.width, depth=len(self.init),
                                                   init=self.init)
        rd = table.read_port()
        m.d.comb += [rd.addr.eq(self.addr), rd.en.eq(self.en), self.data.eq(rd.data)]
        return m


def _dp16kds(text):
    """Yosys' DP16KD cells of an RTLIL design (``synth_ecp5``), and the top's port bits."""
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "t.il"), "w") as f:
            f.write(text)
        subprocess.run([yosys_command(), "-q", "-p",
                        "read_rtlil t.il; synth_ecp5 -top top; write_json n.json"],
                       cwd=tmp, check=True)
        with open(os.path.join(tmp, "n.json")) as f:
            top = json.load(f)["modules"]["top"]
    cells = [c for c in top["cells"].values() if c["type"] == "DP16KD"]
    return cells, {name: p["bits"] for name, p in top["ports"].items()}


def _param(value):
    return int(value, 2) if set(value) <= {"0", "1"} else int(value, 16)


@pytest.mark.synth
@pytest.mark.parametrize("width,depth,mode", [(9, 1500, 9), (14, 700, 18), (4, 3000, 4),
                                              (2, 6000, 2), (1, 9000, 1)])
def test_dp16kd_contents_and_address_as_yosys_maps_them(width, depth, mode):
    init = _table(width, depth, depth)
    inferred = _Inferred(width, init)
    theirs, ports = _dp16kds(rtlil.convert(inferred, name="top", ports=[
        inferred.addr, inferred.en, inferred.data]))
    assert len(theirs) == 1 and int(theirs[0]["parameters"]["DATA_WIDTH_A"], 2) == mode
    expected = dp16kd_initvals(init, mode)
    assert {k: _param(v) for k, v in theirs[0]["parameters"].items()
            if k.startswith("INITVAL")} == expected
    low = {18: 4, 9: 3, 4: 2, 2: 1, 1: 0}[mode]
    addr = ports["addr"]
    for i in range(14):
        bit = theirs[0]["connections"][f"ADA{i}"][0]
        assert bit == (addr[i - low] if 0 <= i - low < len(addr) else "0"), f"ADA{i}"

    # ours, elaborated for the ECP5: the same contents and wiring, the output register on
    rom = RegisteredRom(width, init)
    text = rtlil.convert(rom, name="top", platform=_ecp5(),
                         ports=[rom.addr, rom.en, rom.oce, rom.data])
    ours, ports = _dp16kds(text)
    assert len(ours) == 1
    params = ours[0]["parameters"]
    assert params["REGMODE_A"] == "OUTREG"
    assert {k: _param(v) for k, v in params.items() if k.startswith("INITVAL")} == expected
    for i in range(14):
        bit = ours[0]["connections"][f"ADA{i}"][0]
        assert bit == (ports["addr"][i - low] if 0 <= i - low < len(ports["addr"]) else "0")
    assert ours[0]["connections"]["OCEA"] == ports["oce"]
    assert [ours[0]["connections"][f"DOA{i}"][0] for i in range(width)] == ports["data"]


@pytest.mark.synth
def test_dp16kd_second_port_is_port_b():
    """``second_port``: port B of the same blocks, wired as port A is, its own output register
    with the same enables."""
    width, depth = 15, 1440                  # the shipped readout's bitmap table's shape
    init = _table(width, depth, 3)
    rom = RegisteredRom(width, init, second_port=True)
    ours, ports = _dp16kds(rtlil.convert(rom, name="top", platform=_ecp5(), ports=[
        rom.addr, rom.addr_b, rom.en, rom.oce, rom.data, rom.data_b]))
    alone, _ = _dp16kds(rtlil.convert(RegisteredRom(width, init), name="top",
                                      platform=_ecp5()))
    assert len(ours) == len(alone)
    low = {18: 4, 9: 3, 4: 2, 2: 1, 1: 0}[int(ours[0]["parameters"]["DATA_WIDTH_A"], 2)]
    seen_a, seen_b = [], []
    for cell in ours:
        c, params = cell["connections"], cell["parameters"]
        assert params["REGMODE_A"] == params["REGMODE_B"] == "OUTREG"
        assert c["CEB"] == c["CEA"] == ports["en"] and c["OCEB"] == c["OCEA"] == ports["oce"]
        for i in range(14):
            a = i - low
            assert c[f"ADB{i}"][0] == (ports["addr_b"][a] if 0 <= a < len(ports["addr_b"])
                                       else "0")
        seen_a += [ports["data"].index(c[f"DOA{i}"][0]) for i in range(18)
                   if c.get(f"DOA{i}", ["x"])[0] in ports["data"]]
        seen_b += [ports["data_b"].index(c[f"DOB{i}"][0]) for i in range(18)
                   if c.get(f"DOB{i}", ["x"])[0] in ports["data_b"]]
    assert sorted(seen_a) == sorted(seen_b) == list(range(width))


@pytest.mark.synth
def test_dp16kd_blocks_side_by_side():
    # the readout's bitmap table: 2560 rows of 15 bits, four x4 blocks, each a slice of bits
    width, depth = 15, 2560
    init = _table(width, depth, 7)
    rom = RegisteredRom(width, init)
    ours, ports = _dp16kds(rtlil.convert(rom, name="top", platform=_ecp5(),
                                         ports=[rom.addr, rom.en, rom.oce, rom.data]))
    assert len(ours) == 4
    seen = []
    for cell in ours:
        outs = [cell["connections"].get(f"DOA{i}", ["x"])[0] for i in range(4)]
        bits = [ports["data"].index(b) for b in outs if b in ports["data"]]
        lo = bits[0]
        assert bits == list(range(lo, min(lo + 4, width)))
        words = [(v >> lo) & ((1 << len(bits)) - 1) for v in init]
        assert {k: _param(v) for k, v in cell["parameters"].items()
                if k.startswith("INITVAL")} == dp16kd_initvals(words, 4)
        seen += bits
    assert sorted(seen) == list(range(width))


def test_small_tables_are_left_to_synthesis():
    rom = RegisteredRom(4, _table(4, 100, 3), block_ram=False)
    text = rtlil.convert(rom, name="top", platform=_ecp5(),
                         ports=[rom.addr, rom.en, rom.oce, rom.data])
    assert "DP16KD" not in text
    big = RegisteredRom(4, _table(4, 100, 3))
    assert "DP16KD" in rtlil.convert(big, name="top", platform=_ecp5(),
                                     ports=[big.addr, big.en, big.oce, big.data])
