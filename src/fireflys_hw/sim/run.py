"""One entry to the simulation backends: stream frames of input beats through an accelerator,
back to back, and get what was observed (:class:`~.trace.SimTrace`), whichever backend ran.

* ``"verilator"``: the accelerator's Verilog compiled by Verilator (:mod:`.verilator`), fast;
* ``"pysim"``: Amaranth's Python simulator (:mod:`.pysim`), slow (small networks, few frames).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from fireflys_sw.progress import Progress

from .trace import SimTrace

__all__ = ["BACKENDS", "SimRun", "run_frames"]

#: The backends, by the name the CLI and :func:`fireflys_hw.flow.simulate_accelerator` take.
BACKENDS = ("verilator", "pysim")


@dataclass(frozen=True, eq=False)
class SimRun:
    """A simulation run: its ``trace``, the Verilator build time (0 when cached, ``None`` for
    pysim) and the Verilog generation time (0 for pysim), in seconds."""

    trace: SimTrace
    build_seconds: float | None
    convert_seconds: float


def run_frames(acc, beats: np.ndarray, *, backend: str, stall_in: float = 0.0,
               stall_out: float = 0.0, seed: int = 0, max_idle: int,
               vcd: str | os.PathLike | None = None,
               cache_dir: str | os.PathLike | None = None,
               verilog_text: str | None = None) -> SimRun:
    """Simulate ``acc`` (an :class:`~fireflys_hw.gateware.accelerator.Accelerator` with its
    profiling counters) on ``beats`` ``(frames, beats_per_frame, n_words)``
    (:func:`fireflys_hw.host.beats.input_beats`).

    ``stall_in`` / ``stall_out``: probability of a gap before an input beat / of ``ready`` low
    at the output in a cycle; ``seed`` for them; ``max_idle``: cycles without a result before
    giving up; ``vcd``: write a waveform; ``cache_dir``: the Verilator build cache;
    ``verilog_text``: ``acc``'s Verilog if already written (``fireflys compile``'s ``top.v``,
    with the profiling counters), which saves converting it again.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    n = len(beats)
    if backend == "pysim":
        from .pysim import run_pysim
        trace = run_pysim(acc, beats, n, stall_in=stall_in, stall_out=stall_out, seed=seed,
                          max_idle=max_idle, vcd=vcd)
        return SimRun(trace, None, 0.0)
    from amaranth.back import verilog

    from .verilator import build_simulator, run_simulator
    start = time.perf_counter()
    if verilog_text is not None:
        v_text = verilog_text
    else:
        with Progress("generating the Verilog to simulate"):
            v_text = verilog.convert(acc, name="top")
    convert_seconds = time.perf_counter() - start
    build = build_simulator(v_text, profile=True, cache_dir=cache_dir, trace=vcd is not None)
    trace = run_simulator(build, beats.reshape(-1, beats.shape[-1]),
                          beats_per_frame=acc.beats_per_frame, n_frames=n,
                          stall_in=stall_in, stall_out=stall_out, seed=seed,
                          max_idle=max_idle, vcd=vcd)
    return SimRun(trace, build.build_seconds, convert_seconds)
