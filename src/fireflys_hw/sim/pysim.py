"""The Amaranth simulator backend: the accelerator simulated in Python (slow: small networks and
few frames), with the same protocol as the Verilator testbench (:mod:`.verilator`)."""

from __future__ import annotations

import random
import time

import numpy as np
from amaranth.hdl import Value
from amaranth.sim import Simulator

from fireflys_sw.progress import Progress

from ..host.beats import words_to_int
from .trace import SimTrace, SimulationError

__all__ = ["run_pysim"]


def run_pysim(acc, beats: np.ndarray, n_frames: int, *, stall_in: float, stall_out: float,
              seed: int, max_idle: int, vcd=None) -> SimTrace:
    """Amaranth's Python simulator with the same protocol as the Verilator testbench."""
    bpf = acc.beats_per_frame
    items = [words_to_int(b) for frame in beats for b in frame]
    rng = random.Random(seed)
    in_payload = Value.cast(acc.input.payload)
    out_payload = Value.cast(acc.output.payload)
    counters = Value.cast(acc.counters)
    starts, out_cycles, payloads, snaps = [], [], [], []
    state = {"cycles": 0, "done": False}

    async def producer(ctx):
        cycle = 0
        for n, item in enumerate(items):
            while stall_in and rng.random() < stall_in:
                await ctx.tick()
                cycle += 1
            ctx.set(acc.input.valid, 1)
            ctx.set(in_payload, item)
            while True:
                _, _, ready = await ctx.tick().sample(acc.input.ready)
                cycle += 1
                if ready:
                    break
                if state["done"]:
                    return
            if n % bpf == 0:
                starts.append(cycle - 1)
            ctx.set(acc.input.valid, 0)

    async def consumer(ctx):
        cycle = idle = 0
        while len(out_cycles) < n_frames:
            ready = not stall_out or rng.random() >= stall_out
            ctx.set(acc.output.ready, ready)
            _, _, valid, payload, count = await ctx.tick().sample(
                acc.output.valid, out_payload, counters)
            if valid and ready:
                out_cycles.append(cycle)
                bar.update()
                payloads.append(int(payload))
                snaps.append(int(count))
                idle = 0
            else:
                idle += 1
                if idle > max_idle:
                    raise SimulationError(f"pysim: no result for {max_idle} cycles after "
                                          f"{len(out_cycles)} of {n_frames} frames (deadlock?)")
            cycle += 1
        state["cycles"] = cycle
        state["done"] = True

    sim = Simulator(acc)
    sim.add_clock(1e-8)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    start = time.perf_counter()
    with Progress("simulation (Amaranth's simulator)", total=n_frames, unit="frames") as bar:
        if vcd is not None:
            with sim.write_vcd(str(vcd)):
                sim.run()
        else:
            sim.run()
    seconds = time.perf_counter() - start
    return SimTrace(out_cycles, payloads, snaps, starts, state["cycles"], seconds)
