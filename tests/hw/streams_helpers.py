"""Shared helpers for driving and collecting ``amaranth.lib.stream`` interfaces in simulation.

Usage::

    from streams_helpers import put, get, run_sim

    async def producer(ctx):
        await put(ctx, dut.input, items, stall_prob=0.3, rng=rng)

    async def consumer(ctx):
        out.extend(await get(ctx, dut.output, n, stall_prob=0.3, rng=rng))

    run_sim(dut, producer, consumer, max_cycles=100_000)

* ``put`` drives items with random gaps (``valid`` low for a random number of cycles between
  beats); ``get`` collects with random ``ready``-low stalls. Random gaps/stalls are the default.
* Items may be ints (the whole payload's bits), dicts (fields of a ``StructLayout`` payload,
  nested dicts/lists allowed: they go through ``ShapeCastable.const``) or ``data.Const``.
* ``get`` returns plain Python values: ints, or dicts/lists for struct/array payloads
  (``to_plain``), so results compare with ``==`` against expected dicts.
* Deadlocks fail instead of hanging: ``get`` raises ``TimeoutError`` after ``watchdog`` cycles
  without a transfer, and ``run_sim`` adds a background watchdog on the total cycle count.
* Waveforms: set ``FIREFLYS_VCD=path.vcd`` (or a directory, then one file per test name) to dump.
"""

import os
import random

from amaranth.hdl import ClockDomain, Const, Module, Value, ValueCastable
from amaranth.lib import data
from amaranth.sim import Simulator

__all__ = ["put", "get", "payload_encoder", "expect_idle", "to_plain", "with_clock", "run_sim",
           "make_rng"]


def make_rng(rng=None):
    """``rng`` as a ``random.Random`` (an int is a seed; ``None`` is seed 0)."""
    if isinstance(rng, random.Random):
        return rng
    return random.Random(0 if rng is None else rng)


def to_plain(value):
    """A sampled payload as ints / dicts / lists (recursively), comparable with ``==``."""
    if isinstance(value, data.Const):
        layout = value.shape()
        if isinstance(layout, data.ArrayLayout):
            return [to_plain(value[i]) for i in range(layout.length)]
        return {name: to_plain(value[name]) for name, _ in layout}
    return int(value)


def payload_encoder(payload):
    """A function from an item (int, dict, ``data.Const``) to the payload's raw bits, with a
    cache: converting a dict through ``ShapeCastable.const`` costs about a millisecond, and
    window beats repeat a lot."""
    shape = payload.shape() if isinstance(payload, ValueCastable) else None
    cache = {}

    def encode(item):
        if isinstance(item, int) or shape is None:
            return int(item)
        if isinstance(item, dict):
            key = _freeze(item)
            if key not in cache:
                cache[key] = Const.cast(shape.const(item)).value
            return cache[key]
        return Const.cast(shape.const(item)).value

    return encode


def _freeze(item):
    if isinstance(item, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in item.items()))
    if isinstance(item, (list, tuple)):
        return tuple(_freeze(v) for v in item)
    return int(item)


async def put(ctx, stream, items, stall_prob=0.3, rng=None, *, watchdog=10_000):
    """Drive ``items`` into ``stream`` (the DUT's ``In`` stream) with random gaps.

    Parameters
    ----------
    ctx : testbench context
    stream : stream interface (``payload``, ``valid``, ``ready``)
    items : iterable of int | dict | data.Const
    stall_prob : float
        Probability of one idle cycle (``valid`` low) before each beat, repeated geometrically.
    rng : random.Random | int | None
    watchdog : int
        Fail with ``TimeoutError`` if one beat waits this many cycles for ``ready``.
    """
    rng = make_rng(rng)
    encode = payload_encoder(stream.payload)
    raw = Value.cast(stream.payload)
    for n, item in enumerate(items):
        while rng.random() < stall_prob:
            await ctx.tick()
        ctx.set(stream.valid, 1)
        ctx.set(raw, encode(item))
        waited = 0
        while True:
            _, _, ready = await ctx.tick().sample(stream.ready)
            if ready:
                break
            waited += 1
            if waited > watchdog:
                raise TimeoutError(f"input beat {n} not accepted for {watchdog} cycles")
        ctx.set(stream.valid, 0)


async def get(ctx, stream, n, stall_prob=0.3, rng=None, *, watchdog=10_000, plain=True):
    """Collect ``n`` beats from ``stream`` (the DUT's ``Out`` stream) with random stalls.

    Returns the payloads as a list (``to_plain`` values unless ``plain=False``). ``ready`` is
    low in a cycle with probability ``stall_prob``. Raises ``TimeoutError`` after ``watchdog``
    consecutive cycles without a transfer.
    """
    rng = make_rng(rng)
    out = []
    idle = 0
    while len(out) < n:
        ready = rng.random() >= stall_prob
        ctx.set(stream.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        if valid and ready:
            out.append(to_plain(payload) if plain else payload)
            idle = 0
        else:
            idle += 1
            if idle > watchdog:
                raise TimeoutError(f"no output transfer for {watchdog} cycles after "
                                   f"{len(out)} of {n} beats")
    ctx.set(stream.ready, 0)
    return out


async def expect_idle(ctx, stream, cycles=20):
    """Hold ``ready`` high for ``cycles`` cycles and fail if any beat comes out."""
    ctx.set(stream.ready, 1)
    for _ in range(cycles):
        _, _, valid = await ctx.tick().sample(stream.valid)
        if valid:
            raise AssertionError("extra output beat after the expected end")
    ctx.set(stream.ready, 0)


def with_clock(dut):
    """``dut`` under a top module that owns the ``sync`` domain (so combinational-only DUTs
    simulate with a clock too)."""
    top = Module()
    top.domains.sync = ClockDomain("sync")
    top.submodules.dut = dut
    return top


def _vcd_path(name):
    path = os.environ.get("FIREFLYS_VCD")
    if not path:
        return None
    if os.path.isdir(path):
        test = os.environ.get("PYTEST_CURRENT_TEST", name or "sim").split(" ")[0]
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in test)
        return os.path.join(path, safe + ".vcd")
    return path


def run_sim(dut, *testbenches, max_cycles=200_000, period=1e-8, name=None, clocked=True):
    """Simulate ``dut`` with the given ``async def tb(ctx)`` testbenches until they all return.

    A background watchdog raises ``TimeoutError`` after ``max_cycles`` clock cycles (a deadlock
    that keeps some testbench waiting forever). With ``FIREFLYS_VCD`` set, waveforms are written.
    Returns the number of cycles simulated (as counted by the watchdog).
    """
    top = with_clock(dut) if clocked else dut
    sim = Simulator(top)
    sim.add_clock(period)
    cycles = [0]

    async def watchdog(ctx):
        while True:
            await ctx.tick()
            cycles[0] += 1
            if cycles[0] > max_cycles:
                raise TimeoutError(f"simulation ran past {max_cycles} cycles (deadlock?)")

    sim.add_testbench(watchdog, background=True)
    for tb in testbenches:
        sim.add_testbench(tb)
    vcd = _vcd_path(name)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return cycles[0]


def valid_cycles(dut, beats, n):
    """The cycles (from 0) in which the first ``n`` beats at ``dut.output`` are valid:
    ``beats`` offered at ``dut.input`` back to back from cycle 0, the output always ready."""
    got = []

    async def producer(ctx):
        await put(ctx, dut.input, beats, 0.0)

    async def consumer(ctx):
        ctx.set(dut.output.ready, 1)
        cycle = 0
        while len(got) < n:
            _, _, valid = await ctx.tick().sample(dut.output.valid)
            if valid:
                got.append(cycle)
            cycle += 1

    run_sim(dut, producer, consumer)
    return got
