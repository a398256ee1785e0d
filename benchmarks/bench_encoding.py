"""Direct-encoded LIF against E3NE's radix encoding on the same SCNN5 and Fashion-MNIST.

Usage: python benchmarks/bench_encoding.py [--lif NAME|PATH] [--radix T=PATH ...] [--images N]
                                           [--plan-images N] [--json]

For each artifact (default: the shipped ``scnn5-fashion-mnist``, direct-encoded LIF, T = 4, and
the radix artifacts at T = 3, 4, 6 trained by ``fireflys train --encoding radix``, see
``src/fireflys_sw/shipped/README.md``) prints

* golden-model accuracy on the Fashion-MNIST test split (all 10,000 images unless ``--images``);
* weight sparsity (fraction of zero integer weights);
* spike density: the fraction of 1 bits among the spikes / digits leaving the hidden layers
  (mean over those layers, weighted by their sizes), on the same test images;
* cycles per frame: the planner's register-transfer recurrence (``compiler.cycles``) on
  ``--plan-images`` test images, for the plan the planner picks on the xczu5ev (KV260) budget:
  exact for those images as the recurrence is cycle-exact with the synapse arrays, not a
  Verilator run;
* LUT / FF: the planner's resource model for that plan (a model calibrated on yosys
  synthesis, not a synthesis run).

The hardware columns need the gateware to know the artifact's neuron kind; where it does not
yet, they print ``n/a`` and the reason.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from fireflys_sw.artifact import load_artifact
from fireflys_sw.datasets import load_dataset
from fireflys_sw.golden import run_golden

DEFAULT_RADIX = {3: "scnn5-fashion-mnist-radix-t3", 4: "scnn5-fashion-mnist-radix",
                 6: "scnn5-fashion-mnist-radix-t6"}


def _resolve(name: str) -> str:
    """A shipped name, or a path; ``runs/radix-tT/...`` as the fallback for the T = 3 / 6
    artifacts, which are not shipped."""
    from fireflys_sw.artifact import shipped_artifacts
    if Path(name).exists() or name in shipped_artifacts():
        return name
    for candidate in Path("runs").glob(f"*/{name}.npz"):
        return str(candidate)
    return name


def measure(name: str, test_x, test_y, plan_images: int) -> dict:
    artifact = load_artifact(_resolve(name))
    t0 = time.time()
    golden = run_golden(artifact, test_x)
    row = {"artifact": artifact.name, "encoding": "radix" if artifact.radix else
           f"direct {artifact.layers[0].neuron.value}", "T": artifact.T,
           "input_bits": artifact.input_bits,
           "accuracy": float((golden.prediction == test_y).mean()), "images": int(len(test_y)),
           "weight_sparsity": artifact.weight_sparsity(), "golden_s": time.time() - t0}
    counts = sum(c for c, s in zip(golden.spike_counts, golden.neuron_steps) if s)
    steps = sum(s for s in golden.neuron_steps if s)
    row["spike_density"] = counts / steps
    row["spike_density_per_layer"] = [d for d in golden.spike_density() if d is not None]
    try:
        from fireflys_hw.flow import make_plan
        plan = make_plan(artifact, images=test_x[:plan_images])
        row.update(cycles_per_frame=float(plan.frame_cycles), lut=int(plan.lut),
                   ff=int(sum(lp.ff for lp in plan.layers)),
                   p_co=[lp.p_co for lp in plan.layers], cycles_source="planner recurrence",
                   lut_source="planner resource model")
    except Exception as error:  # the hardware side may not map this kind yet
        row.update(cycles_per_frame=None, lut=None, ff=None,
                   hardware_note=f"{type(error).__name__}: {str(error)[:160]}")
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lif", default="scnn5-fashion-mnist")
    parser.add_argument("--radix", action="append", default=[],
                        help="T=NAME_OR_PATH (repeatable; default the T = 3, 4, 6 artifacts)")
    parser.add_argument("--images", type=int, help="test images (default all 10,000)")
    parser.add_argument("--plan-images", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    data = load_dataset("fashion-mnist")
    test_x, test_y = data.test_x[:args.images], data.test_y[:args.images]
    radix = dict(DEFAULT_RADIX)
    for item in args.radix:
        t, _, path = item.partition("=")
        radix[int(t)] = path
    rows = [measure(args.lif, test_x, test_y, args.plan_images)]
    for t in sorted(radix):
        try:
            rows.append(measure(radix[t], test_x, test_y, args.plan_images))
        except Exception as error:
            rows.append({"artifact": radix[t], "T": t, "error": str(error)[:200]})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"SCNN5 on Fashion-MNIST ({len(test_y):,} test images, golden model); cycles: the "
          f"planner's recurrence on {args.plan_images} test images for its xczu5ev plan; LUT: "
          f"the planner's resource model")
    print(f"{'artifact':34s} {'encoding':11s} {'T':>2s} {'accuracy':>8s} {'w.sparsity':>10s} "
          f"{'spike dens.':>11s} {'cycles/frame':>12s} {'LUT':>7s}")
    for r in rows:
        if "error" in r:
            print(f"{r['artifact']:34s} error: {r['error']}")
            continue
        cyc = f"{r['cycles_per_frame']:12,.0f}" if r.get("cycles_per_frame") else f"{'n/a':>12s}"
        lut = f"{r['lut']:7,d}" if r.get("lut") else f"{'n/a':>7s}"
        print(f"{r['artifact']:34s} {r['encoding']:11s} {r['T']:2d} {100 * r['accuracy']:7.2f}% "
              f"{100 * r['weight_sparsity']:9.1f}% {100 * r['spike_density']:10.1f}% {cyc} {lut}")
        if r.get("hardware_note"):
            print(f"{'':34s} hardware: {r['hardware_note']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
