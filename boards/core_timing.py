# amaranth: UnusedElaboratable=no
"""One core of the accelerator placed and routed alone on the ULX3S's ECP5 (issue 14).

The whole design takes the better part of an hour through nextpnr on a small machine, and
its report names one path. A core alone takes minutes and shows that core's own paths,
without the chip-wide routing between cores and the link: a first look at where a core stands
against the clock before the whole build. The core sits in a harness that is all registers at
its edges: its input beats come from a shift register fed by an LFSR (a distinct flip-flop per
payload bit, so synthesis cannot merge bits), held while the core does not take them (the
stream rule), ``valid`` and the output's ``ready`` are LFSR bits; the output beat and ``valid``
go into a register, XOR-reduced over two more register levels to one LED pin. The numbers are
nextpnr's after routing, for the same PLL clock and constraint as the board build.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from amaranth.hdl import Cat, ClockDomain, Elaboratable, Module, Mux, Signal

__all__ = ["CoreHarness", "time_core"]

#: Taps of a maximal-length 32-bit Galois LFSR (x^32 + x^22 + x^2 + x + 1).
_LFSR_TAPS = 0x80200003


def _bits(value) -> object:
    return value.as_value() if hasattr(value, "as_value") else value


class CoreHarness(Elaboratable):
    """``core`` (a component with ``input`` and ``output`` streams) between registers, clocked
    by ``system_clock`` (an elaboratable that drives ``sync``); the module docstring says how."""

    def __init__(self, core, system_clock):
        self.core = core
        self.system_clock = system_clock

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync", reset_less=True)   # reset by the global GSR
        m.submodules.system_clock = self.system_clock
        m.submodules.core = core = self.core

        lfsr = Signal(32, init=1)
        m.d.sync += lfsr.eq(Mux(lfsr[0], (lfsr >> 1) ^ _LFSR_TAPS, lfsr >> 1))
        payload = _bits(core.input.payload)
        shift = Signal(len(payload))
        valid = Signal()
        with m.If(~valid | core.input.ready):
            m.d.sync += [shift.eq(Cat(lfsr[0], shift[:-1])), valid.eq(lfsr[1] | lfsr[2])]
        m.d.comb += [
            payload.eq(shift),
            core.input.valid.eq(valid),
            core.output.ready.eq(lfsr[3] | lfsr[4] | lfsr[5]),
        ]

        beat = Cat(_bits(core.output.payload), core.output.valid)
        seen = Signal(len(beat))
        m.d.sync += seen.eq(beat)
        parts = [seen[i:i + 16] for i in range(0, len(seen), 16)]
        folded = Signal(len(parts))
        m.d.sync += folded.eq(Cat(p.xor() for p in parts))
        result = Signal()
        m.d.sync += result.eq(folded.xor())
        m.d.comb += platform.request("led", 0).o.eq(result)
        return m


def time_core(artifact, plan, index: int, out_dir, *, clock_hz: float | None = None,
              progress: Callable[[str], None] | None = None) -> dict:
    """Place and route core ``index`` of ``artifact`` under ``plan`` (its parallelism) alone on
    the ULX3S-85F at ``clock_hz`` (default the board's PLL clock): ``{"core", "layer",
    "clock_hz", "fmax_mhz", "timing_met", "critical_path", "utilisation", "seconds",
    "out"}``. :class:`BoardError` for a bad index or a failed toolchain run."""
    from fireflys_hw.flow import build_accelerator
    from fireflys_hw.gateware.util import mark_used
    from fireflys_sw.progress import run_logged

    from . import (ECP5_NEXTPNR_OPTS, ECP5_SYNTH_OVERRIDES, BoardError, _system_clock,
                   _toolchain_failure, _ToolchainStatus, _yowasp_env, board_target,
                   parse_nextpnr_log)
    from .ecp5_pll import ECP5SystemClock

    target = board_target("ulx3s-85f")
    system_hz, pll = _system_clock(target, clock_hz)
    acc = build_accelerator(artifact, plan, profile=False)
    mark_used(acc)            # only the core below is elaborated
    if not 0 <= index < len(acc.cores):
        raise BoardError(f"core {index}: {artifact.name} has cores 0 .. {len(acc.cores) - 1}")
    core = acc.cores[index]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda message: None)
    platform = target.platform()
    harness = CoreHarness(core, ECP5SystemClock(pll))
    platform.build(harness, name="top", build_dir=str(out), do_build=False,
                   **ECP5_SYNTH_OVERRIDES, nextpnr_opts=ECP5_NEXTPNR_OPTS).extract(str(out))
    say(f"core {index}: yosys and nextpnr-ecp5 in {out}")
    start = time.perf_counter()
    code = run_logged(["sh", "build_top.sh"], what=f"ECP5 toolchain for core {index}",
                      log_path=out / "toolchain.log", describe=_ToolchainStatus(),
                      initial="yosys: reading the design", cwd=out, env=_yowasp_env(),
                      follow=["top.rpt", "top.tim"])
    if code != 0:
        raise BoardError(_toolchain_failure(target, out))
    tim = out / "top.tim"
    nextpnr = parse_nextpnr_log(tim.read_text() if tim.exists() else "")
    fmax = min(nextpnr["fmax_mhz"].values()) if nextpnr["fmax_mhz"] else None
    report = {"core": index, "layer": plan.layers[index].describe(),
              "clock_hz": system_hz, "fmax_mhz": fmax,
              "timing_met": fmax is not None and fmax >= system_hz / 1e6,
              "critical_path": nextpnr["critical_path"],
              "utilisation": {k: v for k, v in nextpnr["utilisation"].items()
                              if k in ("TRELLIS_COMB", "TRELLIS_FF", "TRELLIS_RAMW", "DP16KD")},
              "seconds": round(time.perf_counter() - start, 1), "out": str(out)}
    (out / "core.json").write_text(json.dumps(report, indent=1) + "\n")
    return report
