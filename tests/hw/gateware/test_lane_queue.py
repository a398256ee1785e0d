# amaranth: UnusedElaboratable=no
"""LaneQueue == a Python queue, cycle for cycle (SyncFIFO's timing), read asynchronously or
into a register, its pops applied at once or a cycle later (registered_pop: the ports must
not show it), under random writes and reads."""

import random

import pytest
from amaranth.sim import Simulator

from fireflys_hw.gateware.streams import LaneQueue


@pytest.mark.parametrize("registered_read,registered_pop",
                         [(False, False), (True, False), (True, True)])
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_lane_queue_matches_a_queue_cycle_for_cycle(depth, registered_read, registered_pop):
    dut = LaneQueue(8, depth, registered_read=registered_read, registered_pop=registered_pop)
    below = [dut.below(n) for n in range(1, depth + 1)]
    rng = random.Random(depth * 4 + registered_read * 2 + registered_pop)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    log = []

    async def bench(ctx):
        model, nxt = [], 0
        for _ in range(600):
            # the queue's outputs this cycle, against the model's state
            assert ctx.get(dut.w_rdy) == (len(model) < depth)
            assert ctx.get(dut.r_rdy) == bool(model)
            assert [ctx.get(b) for b in below] == [len(model) < n
                                                   for n in range(1, depth + 1)]
            if model:
                assert ctx.get(dut.r_data) == model[0]
            # reads in runs too: a pop in every cycle keeps one pending in every cycle
            w = rng.random() < 0.5
            r = rng.random() < (0.9 if rng.random() < 0.5 else 0.3)
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


def test_registered_pop_needs_registered_read():
    with pytest.raises(ValueError, match="registered_read"):
        LaneQueue(8, 4, registered_pop=True)
