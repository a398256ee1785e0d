"""Board targets: build trees, the ECP5 bitstream, fit checks, and the AXI4-Stream top."""

# amaranth: UnusedElaboratable=no

import json
import os
import random
import re
import subprocess

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, ClockSignal, Module, ResetSignal
from amaranth.sim import Simulator

from fireflys_boards import BOARDS, BoardError, board_target, build_board, parse_nextpnr_log
from fireflys_boards.core_timing import time_core
from fireflys_hw.gateware.axis import AXIStreamAccelerator, axis_data_bits
from fireflys_hw.flow import build_accelerator, make_plan
from fireflys_hw.host.beats import decode_readout, input_beats
from fireflys_hw.host.protocol import model_id
from fireflys_hw.synth import yosys_command
from fireflys_sw.artifact import save_artifact
from fireflys_sw.cli import main
from fireflys_sw.golden import run_golden
from fireflys_sw.synthetic import random_artifact, random_images

TINY_PARALLELISM = [(2, 2), (3, 2)]


@pytest.fixture(scope="module")
def tiny():
    return random_artifact("1x4x4-2c3p1-mp2-3fc", seed=0, T=2, input_bits=2,
                           weight_sparsity=0.5, spike_density=0.3)


@pytest.fixture(scope="module")
def scnn5():
    return random_artifact("scnn5", seed=0, T=4, weight_sparsity=0.9, spike_density=0.15)


# --- names and fit ------------------------------------------------------------------------------

def test_unknown_board_is_one_line(capsys, tiny, tmp_path):
    with pytest.raises(BoardError, match=r"^unknown board 'arty': known boards are arty-a7-35, "
                                         r"arty-a7-100, ulx3s-85f, kv260$"):
        board_target("arty")
    path = save_artifact(tiny, tmp_path / "tiny.npz")
    assert main(["build", str(path), "--board", "nexys", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["fireflys: error: unknown board 'nexys': known boards are arty-a7-35, "
                   "arty-a7-100, ulx3s-85f, kv260"]
    assert not (tmp_path / "b").exists()


def test_model_does_not_fit_fixed_parallelism(capsys, scnn5, tmp_path):
    big = [(8, 1), (16, 8), (32, 16), (64, 32), (64, 64), (10, 64)]
    with pytest.raises(BoardError, match=r"^random-1x28x28-.* does not fit arty-a7-35 \(xc7a35t\), "
                                         r"by the planner's resource model: (.*; )?LUT: "
                                         r"[\d,]+ > 20,800 \(\+[\d,]+, \d+ %\)"):
        build_board(scnn5, "arty-a7-35", tmp_path / "b", parallelism=big)
    path = save_artifact(scnn5, tmp_path / "scnn5.npz")
    rc = main(["build", str(path), "--board", "arty-a7-35", "--out", str(tmp_path / "b"),
               "--dataset", "synthetic", "--parallelism", ",".join(f"{a}:{b}" for a, b in big)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "does not fit arty-a7-35" in err[0]
    assert not (tmp_path / "b").exists()


def test_model_does_not_fit_planned(tmp_path):
    # at 70 % weight sparsity its block RAM alone exceeds the xc7a35t's 50 blocks
    scnn9 = random_artifact("scnn9", seed=0, T=4, weight_sparsity=0.7, spike_density=0.15)
    with pytest.raises(BoardError, match=r"^arty-a7-35: .* does not fit xc7a35t even at the "
                                         r"least parallelism: (LUT|FF|BRAM) [\d.,]+ > [\d.,]+ "
                                         r"by [\d.,]+"):
        build_board(scnn9, "arty-a7-35", tmp_path / "b")


def test_parse_nextpnr_log():
    text = """Info: Max frequency for clock '$glbnet$clk': 48.10 MHz (PASS at 25.00 MHz)
Info: Device utilisation:
Info:       TRELLIS_FF:   601/83640     0%
Info:     TRELLIS_COMB:  1286/83640     1%
Info: Max frequency for clock '$glbnet$clk': 84.33 MHz (PASS at 25.00 MHz)
"""
    parsed = parse_nextpnr_log(text)
    assert parsed["fmax_mhz"] == {"$glbnet$clk": 84.33}
    assert parsed["utilisation"]["TRELLIS_COMB"] == [1286, 83640]
    assert parsed["critical_path"] is None


def test_parse_critical_path():
    # the shape of nextpnr-ecp5's report; the last report of the clock is the routed one
    block = """Info: Critical path report for clock '$glbnet$clk' (posedge -> posedge):
Info:       type curr  total name
Info:   clk-to-q  0.52  0.52 Source {src}.Q
Info:    routing  1.15  1.67 Net a[1] (13,35) -> (12,36)
Info:                          Sink mid.B
Info:      logic  0.24  1.91 Source mid.F
Info:    routing  1.17  3.08 Net b[0] (12,36) -> (11,35)
Info:                          Sink {dst}.CE
Info:      setup  0.10  3.18 Source {dst}.CE
"""
    text = (block.format(src="early", dst="x") + "Info: Critical path report for cross-domain "
            "path '<async>' -> '<async>':\n" + block.format(src="core1.fifo0.r_addr",
                                                          dst="argmax.best"))
    assert parse_nextpnr_log(text)["critical_path"] == {
        "clock": "$glbnet$clk", "ns": 3.18, "logic_ns": 0.86, "routing_ns": 2.32,
        "source": "core1.fifo0.r_addr.Q", "sink": "argmax.best.CE"}


# --- build trees --------------------------------------------------------------------------------

XILINX_PINS = {"arty-a7-35": ("D10", "A9", "xc7a35ticsg324-1L"),
               "arty-a7-100": ("D10", "A9", "xc7a100ticsg324-1L"),
               "kv260": ("E10", "D10", "xczu5ev-sfvc784-2-i")}


@pytest.mark.parametrize("board", sorted(XILINX_PINS))
def test_xilinx_build_tree(tiny, tmp_path, board):
    tx, rx, part = XILINX_PINS[board]
    result = build_board(tiny, board, tmp_path, parallelism=TINY_PARALLELISM)
    for name in ("top.v", "top.xdc", "top.tcl", "build_top.sh", "plan.json", "board.json"):
        assert (tmp_path / name).is_file(), name
    tcl = (tmp_path / "top.tcl").read_text()
    assert f"create_project -force -name top -part {part}" in tcl
    assert "synth_design -top top" in tcl and "write_bitstream" in tcl
    xdc = (tmp_path / "top.xdc").read_text()
    assert f'set_property LOC {tx} [get_ports "uart_0__tx__io"]' in xdc
    assert f'set_property LOC {rx} [get_ports "uart_0__rx__io"]' in xdc
    assert "create_clock" in xdc and "LVCMOS33" in xdc
    assert "vivado" in (tmp_path / "build_top.sh").read_text()
    verilog = (tmp_path / "top.v").read_text()
    assert "module top(" in verilog
    manifest = json.loads((tmp_path / "board.json").read_text())
    assert manifest["board"] == board and manifest["model_id"] == f"0x{model_id(tiny):08x}"
    assert manifest["link"]["beats_per_frame"] == 16 and manifest["link"]["classes"] == 3
    assert manifest["divisor"] == 868              # 100 MHz / 115200 baud
    assert result.plan.parallelism() == {0: (2, 2), 2: (3, 2)}
    if board == "kv260":
        assert "PS8 ps (" in verilog and "BUFG_PS" in verilog
        axis = (tmp_path / "axis" / "fireflys_axis.v").read_text()
        assert "module fireflys_axis(" in axis
        for port in ("aclk", "aresetn", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready",
                     "s_axis_tlast", "m_axis_tdata", "m_axis_tvalid", "m_axis_tready",
                     "m_axis_tlast"):
            assert f" {port};" in axis, port
        assert "input [7:0] s_axis_tdata;" in axis and "output [31:0] m_axis_tdata;" in axis
        header = axis[axis.index("module fireflys_axis("):].split(";", 1)[0]
        assert "clk," not in header.replace("aclk,", "") and "rst" not in header
    else:
        assert "BUFGCTRL" in verilog or "BUFGCE" in verilog


def test_cli_build_arty(capsys, tiny, tmp_path):
    path = save_artifact(tiny, tmp_path / "tiny.npz")
    rc = main(["build", str(path), "--board", "arty-a7-100", "--out", str(tmp_path / "b"),
               "--parallelism", "2:2,3:2", "--baud", "921600"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "arty-a7-100 (xc7a100ticsg324-1L, 100 MHz)" in out
    assert "UART link at 921600 baud: 20 bytes per frame in, 8 out" in out
    assert json.loads((tmp_path / "b" / "board.json").read_text())["divisor"] == 109


def test_bad_baud_is_one_line(tiny, tmp_path):
    with pytest.raises(BoardError, match=r"^ulx3s-85f: baud 12000000 is too fast for a 25 MHz "
                                         r"clock"):
        build_board(tiny, "ulx3s-85f", tmp_path, parallelism=TINY_PARALLELISM, baud=12_000_000,
                    clock_hz=25e6)


# --- the ECP5 system clock ----------------------------------------------------------------------

def test_pll_settings_exact_and_in_range():
    from fireflys_boards.ecp5_pll import CLKOP_HZ, PFD_HZ, VCO_HZ, pll_settings
    s = pll_settings(25e6, 125e6)
    assert (s.out_hz, s.clki_div, s.clkfb_div) == (125e6, 1, 5)
    assert VCO_HZ[0] <= s.vco_hz <= VCO_HZ[1]
    assert pll_settings(25e6, 100e6).out_hz == 100e6
    for mhz in (3.2, 10, 48, 66.6, 90, 133.3, 150, 222, 399):
        s = pll_settings(25e6, mhz * 1e6)
        assert abs(s.out_hz - mhz * 1e6) / (mhz * 1e6) < 0.03, (mhz, s)
        assert PFD_HZ[0] <= 25e6 / s.clki_div <= PFD_HZ[1]
        assert VCO_HZ[0] <= s.vco_hz <= VCO_HZ[1] and CLKOP_HZ[0] <= s.out_hz <= CLKOP_HZ[1]
        assert np.isclose(25e6 / s.clki_div * s.clkfb_div, s.out_hz)
    # the nearest when no divider pair is exact: 48 MHz needs a 1 MHz comparison frequency
    assert pll_settings(25e6, 48e6).out_hz == 46.875e6
    for bad in (1e6, 500e6):
        with pytest.raises(ValueError, match=r"^the ECP5 PLL gives 3\.125-400 MHz, not"):
            pll_settings(25e6, bad)
    with pytest.raises(ValueError, match=r"^the ECP5 PLL takes 8-400 MHz in"):
        pll_settings(5e6, 100e6)


def test_ulx3s_runs_from_the_pll(tiny, tmp_path):
    result = build_board(tiny, "ulx3s-85f", tmp_path, parallelism=TINY_PARALLELISM,
                         run_toolchain=False)
    r = result.report
    assert r["clock_hz"] == 125e6 and r["oscillator_hz"] == 25e6
    assert r["pll"] == {"clki_div": 1, "clkfb_div": 5, "clkop_div": 6, "vco_hz": 750e6}
    assert r["divisor"] == round(125e6 / 115_200)
    # nextpnr places for the PLL's clock, and writes the bitstream if it is missed
    lpf = (tmp_path / "top.lpf").read_text()
    assert re.search(r'FREQUENCY NET "[\w.]+" 125000000\.0 HZ;', lpf)
    assert 'FREQUENCY PORT "clk25_0__io" 25000000.0 HZ;' in lpf
    assert "--timing-allow-fail" in (tmp_path / "build_top.sh").read_text()
    rtlil = (tmp_path / "top.il").read_text()
    assert "cell \\EHXPLLL" in rtlil and "parameter \\CLKFB_DIV 5" in rtlil
    slow = build_board(tiny, "ulx3s-85f", tmp_path / "slow", parallelism=TINY_PARALLELISM,
                       clock_hz=48e6, run_toolchain=False)
    assert slow.report["clock_hz"] == 46.875e6


def test_clock_choice_refusals(tiny, tmp_path):
    with pytest.raises(BoardError, match=r"^arty-a7-35 runs at its 100 MHz clock; a PLL clock "
                                         r"\(--clock-mhz\) is only built for ECP5 boards "
                                         r"\(ulx3s-85f\)$"):
        build_board(tiny, "arty-a7-35", tmp_path, parallelism=TINY_PARALLELISM, clock_hz=50e6)
    with pytest.raises(BoardError, match=r"^ulx3s-85f: the ECP5 PLL gives 3\.125-400 MHz, "
                                         r"not 1000 MHz$"):
        build_board(tiny, "ulx3s-85f", tmp_path, parallelism=TINY_PARALLELISM, clock_hz=1e9)
    assert not any(tmp_path.iterdir())


def test_toolchain_failure_line(tmp_path):
    from fireflys_boards import _toolchain_failure
    target = board_target("ulx3s-85f")
    (tmp_path / "toolchain.log").write_text("line\nlast line\n")
    assert _toolchain_failure(target, tmp_path) == (
        f"the ECP5 toolchain failed for ulx3s-85f: last line (see {tmp_path / 'toolchain.log'})")
    (tmp_path / "top.tim").write_text("Info: x\nERROR: Unable to place cell 'a'\nERROR: b\n")
    assert _toolchain_failure(target, tmp_path) == (
        f"the ECP5 toolchain failed for ulx3s-85f: ERROR: Unable to place cell 'a' "
        f"(see {tmp_path / 'top.tim'})")
    (tmp_path / "top.rpt").write_text("2.46. Executing ABC9 pass.\nERROR: Assert failed.\n")
    assert _toolchain_failure(target, tmp_path).endswith(
        f"ERROR: Assert failed. (see {tmp_path / 'top.rpt'})")


@pytest.mark.slow
@pytest.mark.synth
def test_ecp5_toolchain_failure_names_the_report(tiny, tmp_path, monkeypatch):
    # yosys runs with -q: its error is in top.rpt, not on the console; the one line says it
    # and names the file
    import fireflys_boards
    fake = tmp_path / "fake-yosys"
    fake.write_text("#!/bin/sh\necho 'some log' > top.rpt\n"
                    "echo 'ERROR: Assert `x` failed in kernel/rtlil.cc:3091.' >> top.rpt\n"
                    "exit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(fireflys_boards, "_yowasp_env",
                        lambda: {**os.environ, "YOSYS": str(fake)})
    out = tmp_path / "build"
    with pytest.raises(BoardError, match=r"^the ECP5 toolchain failed for ulx3s-85f: ERROR: "
                                         r"Assert `x` failed in kernel/rtlil\.cc:3091\. \(see "
                                         + re.escape(str(out / "top.rpt")) + r"\)$"):
        build_board(tiny, "ulx3s-85f", out, parallelism=TINY_PARALLELISM)


@pytest.mark.synth
def test_ulx3s_bitstream_and_fmax(tiny, tmp_path):
    result = build_board(tiny, "ulx3s-85f", tmp_path, parallelism=TINY_PARALLELISM)
    bit = tmp_path / "top.bit"
    assert bit.is_file() and bit.stat().st_size > 100_000
    assert (tmp_path / "top.lpf").read_text().count("LOCATE COMP") >= 2
    fmax = result.fmax_mhz
    assert fmax and all(mhz > 25 for mhz in fmax.values())
    util = result.report["nextpnr"]["utilisation"]
    assert 0 < util["TRELLIS_COMB"][0] < util["TRELLIS_COMB"][1]
    assert util["EHXPLLL"][0] == 1
    assert result.report["nextpnr"]["timing_met"] == all(mhz >= 125 for mhz in fmax.values())
    assert json.loads((tmp_path / "board.json").read_text())["nextpnr"]["fmax_mhz"] == fmax


@pytest.mark.synth
def test_core_placed_and_routed_alone(tiny, tmp_path):
    """One core alone on the ULX3S (benchmarks/bench_timing.py --ecp5-cores): its logic is
    kept (the harness observes every output bit), the report names a path inside it."""
    plan = make_plan(tiny, parallelism=TINY_PARALLELISM, device="LFE5U-85F")
    report = time_core(tiny, plan, 1, tmp_path)
    assert report["layer"] == plan.layers[1].describe()
    assert report["fmax_mhz"] > 25 and report["clock_hz"] == 125e6
    assert report["timing_met"] == (report["fmax_mhz"] >= 125)
    crit = report["critical_path"]
    assert crit["ns"] == pytest.approx(1000 / report["fmax_mhz"], rel=0.02)
    assert "core." in crit["source"] + crit["sink"]
    # the readout's detector, lane and argmax survive synthesis: hundreds of LUTs, not a few
    assert report["utilisation"]["TRELLIS_COMB"][0] > 300
    assert json.loads((tmp_path / "core.json").read_text())["fmax_mhz"] == report["fmax_mhz"]


def test_core_timing_bad_index_is_one_line(tiny, tmp_path):
    plan = make_plan(tiny, parallelism=TINY_PARALLELISM, device="LFE5U-85F")
    with pytest.raises(BoardError, match=r"^core 2: .* has cores 0 \.\. 1$"):
        time_core(tiny, plan, 2, tmp_path)


@pytest.mark.synth
@pytest.mark.parametrize("board,family", [("arty-a7-35", "xc7"), ("kv260", "xcup")])
def test_xilinx_verilog_synthesises(tiny, tmp_path, board, family):
    # the build tree's Verilog is complete: Yosys maps it (Vivado is not available here);
    # amaranth's Arty clock buffer carries a SIM_DEVICE that Yosys' BUFGCTRL model lacks
    build_board(tiny, board, tmp_path, parallelism=TINY_PARALLELISM)
    subprocess.run([yosys_command(), "-q", "-p",
                    f"read_verilog top.v; setparam -unset SIM_DEVICE t:BUFGCTRL; "
                    f"synth_xilinx -flatten -family {family} -top top; tee -q -o stat.txt stat"],
                   cwd=tmp_path, check=True, capture_output=True)
    stat = (tmp_path / "stat.txt").read_text()
    assert "LUT" in stat and "FDRE" in stat


# --- the AXI4-Stream top ------------------------------------------------------------------------

def _axis_run(dut, frames, *, last_at, seed=0, stall=0.3):
    """Drive ``frames`` into ``s_axis`` with random gaps (``tlast`` where ``last_at(frame, k)``)
    and collect results from ``m_axis`` with random stalls."""
    top = Module()
    top.domains.tb = ClockDomain("tb")
    top.submodules.dut = dut
    top.d.comb += [dut.aclk.eq(ClockSignal("tb")), dut.aresetn.eq(~ResetSignal("tb"))]
    rng = random.Random(seed)
    results, words = [], []

    async def producer(ctx):
        for f, frame in enumerate(frames):
            for k, beat in enumerate(frame):
                while rng.random() < stall:
                    ctx.set(dut.s_axis_tvalid, 0)
                    await ctx.tick("tb")
                ctx.set(dut.s_axis_tdata, int(beat[0]))
                ctx.set(dut.s_axis_tlast, last_at(f, k))
                ctx.set(dut.s_axis_tvalid, 1)
                await ctx.tick("tb").until(dut.s_axis_tready)
        ctx.set(dut.s_axis_tvalid, 0)

    async def consumer(ctx):
        waited = 0
        while len(results) < len(frames):
            ready = rng.random() >= stall
            ctx.set(dut.m_axis_tready, ready)
            _, _, valid, data, last = await ctx.tick("tb").sample(
                dut.m_axis_tvalid, dut.m_axis_tdata, dut.m_axis_tlast)
            waited += 1
            assert waited < 100_000
            if valid and ready:
                words.append(int(data))
                if last:
                    results.append(sum(w << (32 * i) for i, w in enumerate(words)))
                    words.clear()
        results.append(bool(ctx.get(dut.frame_error)))

    sim = Simulator(top)
    sim.add_clock(1e-8, domain="tb")
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return results[:-1], results[-1]


def test_axis_round_trip_bit_exact(tiny):
    plan = make_plan(tiny, parallelism=TINY_PARALLELISM)
    acc = build_accelerator(tiny, plan, profile=False)
    dut = AXIStreamAccelerator(acc)
    assert dut.in_data_bits == 8 and dut.result_words == 1
    images = random_images(tiny, 4, seed=7)
    beats = input_beats(tiny, images)
    bpf = beats.shape[1]
    values, error = _axis_run(dut, beats, last_at=lambda f, k: k == bpf - 1)
    golden = run_golden(tiny, images)
    assert not error
    for k, value in enumerate(values):
        scores, index = decode_readout(value, tiny.classes, acc.score_bits)
        assert scores == list(golden.scores[k]) and index == golden.prediction[k]


def test_axis_flags_misplaced_tlast(tiny):
    acc = build_accelerator(tiny, make_plan(tiny, parallelism=TINY_PARALLELISM), profile=False)
    beats = input_beats(tiny, random_images(tiny, 1, seed=7))
    _, error = _axis_run(AXIStreamAccelerator(acc), beats, last_at=lambda f, k: k == 3,
                         stall=0.0)
    assert error


def test_axis_data_bits():
    assert [axis_data_bits(b) for b in (1, 8, 9, 17, 33, 100)] == [8, 8, 16, 32, 64, 128]


def test_board_registry():
    assert set(BOARDS) == {"arty-a7-35", "arty-a7-100", "ulx3s-85f", "kv260"}
    assert board_target(" KV260 ").device == "xczu5ev"
    assert np.isclose(board_target("ulx3s-85f").clock_hz, 25e6)
