"""Direct-encoded LIF against E3NE's radix encoding on the same SCNN5 and Fashion-MNIST.

Usage: python benchmarks/bench_encoding.py [--lif NAME|PATH] [--radix T=PATH ...] [--images N]
                                           [--simulate N] [--json]

For each artifact (default: the shipped ``scnn5-fashion-mnist``, direct-encoded LIF, T = 4, and
the radix artifacts at T = 3, 4, 6 trained by ``fireflys train --encoding radix``, see
``src/fireflys_sw/shipped/README.md``) prints

* golden-model accuracy on the Fashion-MNIST test split (all 10,000 images unless ``--images``);
* weight sparsity (fraction of zero integer weights);
* spike density: the fraction of 1 bits among the spikes / digits leaving the hidden layers
  (mean over those layers, weighted by their sizes), on the same test images;
* cycles per frame (**exact**): the first ``--simulate`` test images (default 8) through the
  accelerator in Verilator, frames back to back, for the plan the planner picks on the xczu5ev
  (KV260) budget from those images (what ``fireflys simulate NAME --images 8`` does), every
  result checked bit for bit against the golden model (the ``bit-exact`` column); the
  planner's prediction beside it (a model);
* LUT / FF: the planner's resource model for that plan (an **estimate**, a model calibrated on
  yosys synthesis, not a synthesis run).

A radix artifact that is not here (only ``T = 4`` is shipped; ``T = 3`` and ``T = 6`` were
trained once in ``runs/`` of another machine) gets a row of the figures recorded when it was
trained, marked ``recorded``: they cannot be re-measured without the artifact, and the hardware
columns are empty.
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

#: Figures recorded when the not-shipped radix artifacts were trained (same command as the
#: shipped T = 4 one with -T 3 / -T 6, src/fireflys_sw/shipped/README.md): golden accuracy on the
#: 10,000 test images and weight sparsity; None where nothing was recorded.
RECORDED = {
    3: {"accuracy": 0.8359, "weight_sparsity": 0.900,
        "source": "src/fireflys_sw/shipped/README.md (runs/radix-t3, not shipped)"},
    6: {"accuracy": 0.8701, "weight_sparsity": None,
        "source": "reported by the training session of issue #17 (runs/radix-t6, not shipped; "
                  "no log in the repository)"},
}


def _resolve(name: str) -> str:
    """A shipped name, or a path; ``runs/radix-tT/...`` as the fallback for the T = 3 / 6
    artifacts, which are not shipped."""
    from fireflys_sw.artifact import shipped_artifacts
    if Path(name).exists() or name in shipped_artifacts():
        return name
    for candidate in Path("runs").glob(f"*/{name}.npz"):
        return str(candidate)
    return name


def available(name: str) -> bool:
    from fireflys_sw.artifact import shipped_artifacts
    resolved = _resolve(name)
    return Path(resolved).exists() or resolved in shipped_artifacts()


def measure(name: str, test_x, test_y, simulate: int) -> dict:
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
    if simulate:
        from fireflys_hw.flow import make_plan, simulate_accelerator
        images = test_x[:simulate]
        plan = make_plan(artifact, images=images)
        t0 = time.time()
        sim = simulate_accelerator(artifact, images, plan=plan)
        row.update(cycles_per_frame=float(sim.cycles_per_frame), sim_frames=int(sim.frames),
                   bit_exact=sim.mismatches == 0, mismatches=int(sim.mismatches),
                   predicted_cycles_per_frame=float(plan.frame_cycles),
                   lut=int(plan.lut), ff=int(sum(lp.ff for lp in plan.layers)),
                   dense_first=bool(plan.dense_first),
                   parallelism=[[lp.p_co, lp.p_ci] for lp in plan.layers],
                   cycles_source=f"Verilator, {sim.frames} test images (exact)",
                   lut_source="planner resource model (estimate)", sim_s=time.time() - t0)
    return row


def recorded_row(name: str, T: int) -> dict:
    rec = RECORDED.get(T)
    if rec is None:
        return {"artifact": name, "T": T, "error": "not found and nothing recorded"}
    return {"artifact": name, "encoding": "radix", "T": T, "recorded": True, **rec}


def _pct(v, width, digits=1):
    return f"{'n/a':>{width}s}" if v is None else f"{100 * v:{width - 1}.{digits}f}%"


def print_table(rows, images: int, simulate: int) -> None:
    print(f"SCNN5 on Fashion-MNIST: accuracy by the golden model on {images:,} test images; "
          f"cycles/frame exact (Verilator, {simulate} test images, every result bit-exact with "
          f"the golden model), planner plan on the xczu5ev budget; LUT an estimate (the "
          f"planner's resource model); 'recorded': figures from training, no artifact here")
    print(f"{'artifact':29s} {'encoding':10s} {'T':>2s} {'accuracy':>9s} {'w.sparsity':>10s} "
          f"{'spike dens.':>11s} {'cycles/frame':>12s} {'bit-exact':>9s} {'LUT (est.)':>10s} "
          f"{'first core':>10s}")
    for r in rows:
        if "error" in r:
            print(f"{r['artifact']:29s} error: {r['error']}")
            continue
        if r.get("recorded"):
            print(f"{r['artifact']:29s} {r['encoding']:10s} {r['T']:2d} "
                  f"{_pct(r['accuracy'], 9, 2)} {_pct(r['weight_sparsity'], 10)} "
                  f"{'-':>11s} {'-':>12s} {'-':>9s} {'-':>10s} {'-':>10s}  recorded")
            continue
        cyc = r.get("cycles_per_frame")
        lut = "-" if cyc is None else f"{r['lut']:,d}"
        print(f"{r['artifact']:29s} {r['encoding']:10s} {r['T']:2d} "
              f"{_pct(r['accuracy'], 9, 2)} {_pct(r['weight_sparsity'], 10)} "
              f"{_pct(r['spike_density'], 11)} "
              f"{'-' if cyc is None else f'{cyc:,.0f}':>12s} "
              f"{'-' if cyc is None else ('yes' if r['bit_exact'] else 'NO'):>9s} "
              f"{lut:>10s} "
              f"{'-' if cyc is None else ('dense' if r['dense_first'] else 'sparse'):>10s}")
    for r in rows:
        if r.get("recorded"):
            print(f"  {r['artifact']}: {r['source']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lif", default="scnn5-fashion-mnist")
    parser.add_argument("--radix", action="append", default=[],
                        help="T=NAME_OR_PATH (repeatable; default the T = 3, 4, 6 artifacts)")
    parser.add_argument("--images", type=_positive, help="test images (default all 10,000)")
    parser.add_argument("--simulate", type=_count, default=8,
                        help="test images through Verilator for the exact cycles (default 8; "
                             "0: no simulation)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        data = load_dataset("fashion-mnist")
    except Exception as error:
        print(f"bench_encoding: {error}", file=sys.stderr)
        return 1
    test_x, test_y = data.test_x[:args.images], data.test_y[:args.images]
    radix = dict(DEFAULT_RADIX)
    for item in args.radix:
        t, _, path = item.partition("=")
        if not t.isdigit() or not path:
            parser.error(f"--radix takes T=NAME_OR_PATH, not {item!r}")
        radix[int(t)] = path
    try:
        rows = [measure(args.lif, test_x, test_y, args.simulate)]
        for t in sorted(radix):
            rows.append(measure(radix[t], test_x, test_y, args.simulate)
                        if available(radix[t]) else recorded_row(radix[t], t))
    except Exception as error:
        print(f"bench_encoding: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print_table(rows, len(test_y), args.simulate)
    return 0


def _positive(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {text!r}")
    return value


if __name__ == "__main__":
    sys.exit(main())
