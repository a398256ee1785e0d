# amaranth: UnusedElaboratable=no
"""LaneQueue == a Python queue, cycle for cycle (SyncFIFO's timing), read asynchronously or
into a register, under random writes and reads."""

import random

import pytest
from amaranth.sim import Simulator

from fireflys_hw.gateware.streams import LaneQueue


@pytest.mark.parametrize("registered_read", [False, True])
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_lane_queue_matches_a_queue_cycle_for_cycle(depth, registered_read):
    dut = LaneQueue(8, depth, registered_read=registered_read)
    rng = random.Random(depth * 2 + registered_read)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    log = []

    async def bench(ctx):
        model, nxt = [], 0
        for _ in range(600):
            # the queue's outputs this cycle, against the model's state
            assert ctx.get(dut.w_rdy) == (len(model) < depth)
            assert ctx.get(dut.r_rdy) == bool(model)
            if model:
                assert ctx.get(dut.r_data) == model[0]
            w = rng.random() < 0.5
            r = rng.random() < 0.5
            ctx.set(dut.w_data, nxt)
            ctx.set(dut.w_en, w)
            ctx.set(dut.r_en, r)
            do_w, do_r = w and len(model) < depth, r and bool(model)
            after = model[int(do_r):] + ([nxt] if do_w else [])
            if registered_read and after:
                # next_data: the head of the next cycle
                assert ctx.get(dut.next_data) == after[0]
            await ctx.tick()
            # a beat written in this cycle is readable in the next
            if do_r:
                log.append(model.pop(0))
            if do_w:
                model.append(nxt)
                nxt = (nxt + 1) % 256

    sim.add_testbench(bench)
    sim.run()
    assert log == [v % 256 for v in range(len(log))] and len(log) > 100
