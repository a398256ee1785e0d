# amaranth: UnusedElaboratable=no
"""SkidBuffer: beats in order under random stalls, full rate, and nothing combinational through
it (ready, valid and payload out of it do not move with the other side's signals in the same
cycle)."""

import random

from amaranth.sim import Simulator
from streams_helpers import get, put, run_sim, valid_cycles

from fireflys_hw.gateware.streams import SkidBuffer


def test_beats_in_order_under_random_stalls():
    dut = SkidBuffer(12)
    beats = [random.Random(1).randrange(4096) for _ in range(400)]
    got = []

    async def producer(ctx):
        await put(ctx, dut.input, beats, stall_prob=0.4, rng=2)

    async def consumer(ctx):
        got.extend(await get(ctx, dut.output, len(beats), stall_prob=0.4, rng=3))

    run_sim(dut, producer, consumer)
    assert got == beats


def test_full_rate_with_one_cycle_of_latency():
    dut = SkidBuffer(8)
    assert valid_cycles(dut, list(range(40)), 40) == list(range(1, 41))


def test_outputs_come_from_registers():
    dut = SkidBuffer(8)
    rng = random.Random(4)
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def bench(ctx):
        for n in range(300):
            ctx.set(dut.input.payload, n % 256)
            ctx.set(dut.input.valid, rng.random() < 0.6)
            ctx.set(dut.output.ready, rng.random() < 0.5)
            before = [ctx.get(s) for s in (dut.input.ready, dut.output.valid,
                                            dut.output.payload)]
            # the other side's signals change within the cycle: nothing out of the buffer moves
            ctx.set(dut.output.ready, not ctx.get(dut.output.ready))
            ctx.set(dut.input.valid, not ctx.get(dut.input.valid))
            ctx.set(dut.input.payload, (n * 7 + 1) % 256)
            assert [ctx.get(s) for s in (dut.input.ready, dut.output.valid,
                                         dut.output.payload)] == before
            await ctx.tick()

    sim.add_testbench(bench)
    sim.run()
