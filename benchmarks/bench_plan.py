"""Planner figures for the FireFly-S models: plan tables and predicted cycles per frame.

Usage: python benchmarks/bench_plan.py [--images N] [--seed S] [--models scnn5,scnn7,scnn9]

For random SCNN5 / SCNN7 / SCNN9 artifacts (:func:`fireflys_sw.synthetic.random_artifact`,
90 % weight sparsity, thresholds set for ~15 % spike density, T = 4, 4-bit weights, 8-bit
direct-encoded input) it measures the workload on ``N`` random inputs
(:func:`fireflys_hw.compiler.measure_densities`), plans each within FireFly-S's LUT budget on the
xczu5ev at 333 MHz, prints the plan table, and compares the predicted cycles per frame with
FireFly-S's published frame rates (Table VI, converted at 333 MHz).

All planner figures are MODEL ESTIMATES: cycles from the detector/orchestrator formula
(:func:`fireflys_hw.compiler.predicted_cycles`, which equals
:func:`fireflys_hw.gateware.core.core_cycles` on the measured frames and ran 1-7 % below
simulation), resources from the linear model calibrated on FireFly-S's per-module costs (not
synthesised). The networks are random, not the trained ones, so spike statistics differ from the
paper's.
"""

import argparse
import time

from fireflys_sw.synthetic import random_artifact, random_images
from fireflys_hw.compiler import PlanError, format_plan, measure_densities, plan_accelerator

# FireFly-S on the KV260 (Table VI): LUT / FF / BRAM used, FPS at 333 MHz
FIREFLY_S = {
    "scnn5": {"lut": 30_911, "bram": 5, "fps": 10_047},
    "scnn7": {"lut": 55_234, "bram": 11, "fps": 3_683},
    "scnn9": {"lut": 84_641, "bram": 76.5, "fps": 2_327},
}
CLOCK_HZ = 333e6
SWEEP = (0.1, 0.15, 0.25, 0.5)      # shares of FireFly-S's LUT budget, to see the budget bind


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16, help="inputs to measure (16)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="scnn5,scnn7,scnn9")
    args = parser.parse_args(argv)

    rows, sweep = [], []
    for name in args.models.split(","):
        ref = FIREFLY_S[name]
        start = time.perf_counter()
        artifact = random_artifact(name, seed=args.seed, weight_sparsity=0.9,
                                   spike_density=0.15)
        images = random_images(artifact, args.images, seed=args.seed + 1)
        stats = measure_densities(artifact, images)
        measured = time.perf_counter() - start
        start = time.perf_counter()
        plan = plan_accelerator(artifact, stats, device="xczu5ev", lut_budget=ref["lut"],
                                clock_hz=CLOCK_HZ)
        planned = time.perf_counter() - start
        print(f"=== {name}: random artifact, {artifact.weight_sparsity():.1%} weight sparsity, "
              f"input spike densities "
              f"{', '.join(f'{s.spike_density:.2f}' for s in stats)} "
              f"(measure {measured:.1f} s, plan {planned:.2f} s)")
        print(format_plan(plan))
        print()
        rows.append((name, plan, ref))
        plans = []
        for share in SWEEP:
            try:
                plans.append((share, plan_accelerator(artifact, stats, device="xczu5ev",
                                                      lut_budget=int(ref["lut"] * share),
                                                      clock_hz=CLOCK_HZ)))
            except PlanError as error:
                plans.append((share, error))
        sweep.append((name, plans))

    print("predicted cycles/frame (model estimate) vs FireFly-S (published FPS at 333 MHz)")
    print(f"{'model':<6} {'LUT budget':>10} {'plan LUT':>9} {'plan BRAM':>9} "
          f"{'pred cycles':>11} {'pred FPS':>9} {'FF-S cycles':>11} {'FF-S FPS':>9} "
          f"{'ratio':>6}")
    for name, plan, ref in rows:
        ref_cycles = CLOCK_HZ / ref["fps"]
        print(f"{name:<6} {ref['lut']:>10,} {plan.lut:>9,} {plan.bram_blocks:>9g} "
              f"{plan.frame_cycles:>11,.0f} {plan.fps:>9,.0f} {ref_cycles:>11,.0f} "
              f"{ref['fps']:>9,} {plan.frame_cycles / ref_cycles:>6.2f}")


    print()
    print("budget sweep (model estimates): LUT budget as a share of FireFly-S's -> plan")
    print(f"{'model':<6} {'share':>5} {'LUT budget':>10} {'plan LUT':>9} {'BRAM':>5} "
          f"{'pred cycles':>11} {'pred FPS':>9} {'bottleneck':>10} {'stopped':>9}")
    for name, plans in sweep:
        for share, plan in plans:
            if isinstance(plan, PlanError):
                print(f"{name:<6} {share:>5.0%} {int(FIREFLY_S[name]['lut'] * share):>10,}  "
                      f"does not fit: {str(plan).split(': ', 1)[1]}")
                continue
            print(f"{name:<6} {share:>5.0%} {plan.lut_budget:>10,} {plan.lut:>9,} "
                  f"{plan.bram_blocks:>5g} {plan.frame_cycles:>11,.0f} {plan.fps:>9,.0f} "
                  f"{plan.bottleneck.index:>10} {plan.stop.value:>9}")


if __name__ == "__main__":
    main()
