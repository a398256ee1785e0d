"""The hardware flow's commands for the ``fireflys`` CLI: ``compile`` and ``simulate``.

A thin layer over :func:`fireflys_hw.flow.compile_accelerator` and
:func:`fireflys_hw.flow.simulate_accelerator`; the main CLI adds them with::

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

from fireflys_sw.errors import FireflysError

__all__ = ["add_subcommands", "parse_parallelism", "CliError"]

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
    g.add_argument("--lut-budget", type=int, metavar="N", help="LUTs the plan may use")
    g.add_argument("--fps", type=float, metavar="F", help="stop raising parallelism at this "
                                                          "predicted frame rate")


def _add_data(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--dataset", metavar="NAME",
                   help=f"data set whose test images {what} (default: {DEFAULT_DATASET} for "
                        f"1x28x28 models, else random images; 'synthetic' forces random)")
    p.add_argument("--data-dir", metavar="DIR", help="directory with the data set files")


def add_subcommands(subparsers) -> None:
    """Add ``compile`` and ``simulate`` to an ``argparse`` subparsers object (each sets
    ``run``)."""
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
    p.add_argument("--images", type=int, default=8, metavar="N",
                   help="images to simulate (default 8)")
    _add_data(p, "are simulated")
    p.add_argument("--backend", choices=("verilator", "pysim"), default="verilator",
                   help="Verilator (compiled Verilog; default) or Amaranth's Python simulator "
                        "(slow: small models only)")
    p.add_argument("--clock-mhz", type=float, default=333.0, metavar="F",
                   help="clock for the frame rate (default 333, FireFly-S on the KV260)")
    p.add_argument("--stall-in", type=float, default=0.0, metavar="P",
                   help="probability of a gap before each input beat (default 0)")
    p.add_argument("--stall-out", type=float, default=0.0, metavar="P",
                   help="probability of output ready low in a cycle (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the gaps and stalls")
    p.add_argument("--vcd", metavar="FILE", help="write a waveform (slow for whole frames)")
    _add_planning(p)
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(run=run_simulate)


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
    from .flow import compile_accelerator
    result = compile_accelerator(artifact, args.out, images=images,
                                 profile=not args.no_profile, **planning)
    if args.json:
        print(json.dumps(result.report))
    else:
        print(result.files["report_text"].read_text(), end="")
    return 0


def run_simulate(args) -> int:
    planning = _planning(args)
    if args.images < 1:
        raise CliError(f"--images must be at least 1, not {args.images}")
    if not args.clock_mhz > 0:
        raise CliError(f"--clock-mhz must be positive, not {args.clock_mhz}")
    for flag, p in (("--stall-in", args.stall_in), ("--stall-out", args.stall_out)):
        if not 0.0 <= p < 1.0:
            raise CliError(f"{flag} must be in [0, 1), not {p}")
    artifact = _load(args)
    images, source = _images(artifact, args, args.images)
    from .flow import simulate_accelerator
    report = simulate_accelerator(artifact, images, backend=args.backend, vcd=args.vcd,
                                  clock_hz=args.clock_mhz * 1e6, stall_in=args.stall_in,
                                  stall_out=args.stall_out, seed=args.seed, **planning)
    if args.json:
        d = report.as_dict()
        d["images"] = source
        print(json.dumps(d))
    else:
        print(f"{source}:")
        print(report.format())
    return 0 if report.mismatches == 0 else 1
