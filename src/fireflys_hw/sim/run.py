"""One entry to the simulation backends: stream frames of input beats through an accelerator,
back to back, and get what was observed (:class:`~.trace.SimTrace`), whichever backend ran.

* ``"verilator"``: the accelerator's Verilog compiled by Verilator (:mod:`.verilator`), fast;
* ``"pysim"``: Amaranth's Python simulator (:mod:`.pysim`), slow (small networks, few frames).
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from dataclasses import dataclass

import numpy as np

from fireflys_sw.progress import Progress

from ..gateware.util import mark_used
from .trace import SimTrace

__all__ = ["BACKENDS", "SimRun", "run_frames", "split_frames"]

#: The backends, by the name the CLI and :func:`fireflys_hw.flow.simulate_accelerator` take.
BACKENDS = ("verilator", "pysim")


@dataclass(frozen=True, eq=False)
class SimRun:
    """A simulation run: one :class:`~.trace.SimTrace` per part (``traces``; one part unless
    the frames were split over several processes, each part a pipeline of its own that starts
    empty), the frames of each part (``parts``: ``(start, stop)`` in the order given), the
    Verilator build time (0 when cached, ``None`` for pysim) and the Verilog generation time
    (0 for pysim), in seconds."""

    traces: tuple
    parts: tuple
    build_seconds: float | None
    convert_seconds: float

    @property
    def trace(self) -> SimTrace:
        """The trace of a run in one part."""
        if len(self.traces) != 1:
            raise ValueError(f"this run has {len(self.traces)} parts; use traces")
        return self.traces[0]


def split_frames(n: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous slices ``(start, stop)`` of ``n`` frames, sizes differing by at
    most one (the same rule for ``--jobs`` and ``--shard``)."""
    if n < 1 or parts < 1 or parts > n:
        raise ValueError(f"cannot split {n} frames into {parts} non-empty parts")
    return [(k * n // parts, (k + 1) * n // parts) for k in range(parts)]


def run_frames(acc, beats: np.ndarray, *, backend: str, stall_in: float = 0.0,
               stall_out: float = 0.0, seed: int = 0, max_idle: int,
               vcd: str | os.PathLike | None = None,
               cache_dir: str | os.PathLike | None = None,
               verilog_text: str | None = None, jobs: int = 1) -> SimRun:
    """Simulate ``acc`` (an :class:`~fireflys_hw.gateware.accelerator.Accelerator` with its
    profiling counters) on ``beats`` ``(frames, beats_per_frame, n_words)``
    (:func:`fireflys_hw.host.beats.input_beats`).

    ``stall_in`` / ``stall_out``: probability of a gap before an input beat / of ``ready`` low
    at the output in a cycle; ``seed`` for them; ``max_idle``: cycles without a result before
    giving up; ``vcd``: write a waveform; ``cache_dir``: the Verilator build cache;
    ``verilog_text``: ``acc``'s Verilog if already written (``fireflys compile``'s ``top.v``,
    with the profiling counters), which saves converting it again.

    ``jobs``: split the frames into this many contiguous parts (at most one per frame) and run
    them at once, each in a Verilator process of its own (one build, shared); each part is a
    pipeline that starts empty, with the same ``seed``. Verilator only, and no ``vcd``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    n = len(beats)
    parts = split_frames(n, min(jobs, n))
    if len(parts) > 1 and (backend != "verilator" or vcd is not None):
        raise ValueError("several jobs need the verilator backend and no vcd")
    if backend == "pysim":
        from .pysim import run_pysim
        trace = run_pysim(acc, beats, n, stall_in=stall_in, stall_out=stall_out, seed=seed,
                          max_idle=max_idle, vcd=vcd)
        return SimRun((trace,), ((0, n),), None, 0.0)
    from amaranth.back import verilog

    from .verilator import build_simulator, run_simulator
    start = time.perf_counter()
    if verilog_text is not None:
        v_text = verilog_text
        mark_used(acc)    # its Verilog, written from an identical design, is what runs
    else:
        with Progress("generating the Verilog to simulate"):
            v_text = verilog.convert(acc, name="top")
    convert_seconds = time.perf_counter() - start
    build = build_simulator(v_text, profile=True, cache_dir=cache_dir, trace=vcd is not None)

    def run_part(part, progress=None):
        first, stop = part
        return run_simulator(build, beats[first:stop].reshape(-1, beats.shape[-1]),
                             beats_per_frame=acc.beats_per_frame, n_frames=stop - first,
                             stall_in=stall_in, stall_out=stall_out, seed=seed,
                             max_idle=max_idle, vcd=vcd, progress=progress)

    if len(parts) == 1:
        traces = (run_part(parts[0]),)
    else:
        # the work is in the Verilator processes: threads only wait for them
        with Progress(f"simulation (verilator, {len(parts)} processes)", total=n,
                      unit="frames") as bar, \
                concurrent.futures.ThreadPoolExecutor(len(parts)) as pool:
            traces = tuple(pool.map(lambda part: run_part(part, bar), parts))
    return SimRun(traces, tuple(parts), build.build_seconds, convert_seconds)


