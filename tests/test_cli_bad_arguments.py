"""Every subcommand of ``fireflys`` walked with bad values (issue 16): each is refused by
argparse or by one line ``fireflys: error: ...``, exit status 2, no traceback, and before any
work starts (the work functions are replaced by ones that fail the test if reached)."""

from __future__ import annotations

import pytest

from fireflys_sw.artifact import save_artifact
from fireflys_sw.cli import build_parser, main
from fireflys_sw.synthetic import random_artifact

#: Values no numeric option takes.
JUNK = ["nan", "inf", "-inf", "x", "", "1e999", "9" * 30, "\u0661"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    good = save_artifact(random_artifact("1x4x4-2c3p1-3fc", seed=0), d / "good.npz")
    junk = d / "junk.npz"
    junk.write_bytes(b"PK\x03\x04" + b"\xff" * 200)
    claim = d / "claim.npz"         # a zip whose header member claims 10**12 elements
    import struct
    import zipfile
    header = b"{'descr': '|u1', 'fortran_order': False, 'shape': (1000000000000,), }"
    header += b" " * (118 - len(header)) + b"\n"
    with zipfile.ZipFile(claim, "w") as z:
        z.writestr("header.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
    plan = d / "plan.json"
    plan.write_text('{"format": "fireflys-plan", "version": 1, "layers": [' * 1 + "]}")
    deep = d / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    # a folder that cannot be made even by root: its parent is a file
    locked = good / "sub"
    return {"good": str(good), "junk": str(junk), "claim": str(claim), "plan": str(plan),
            "deep": str(deep), "locked": str(locked), "dir": str(d),
            "missing": str(d / "nowhere" / "x")}


@pytest.fixture(autouse=True)
def no_work(monkeypatch):
    """Replace what does the work: a bad argument must be refused before it."""
    def reached(*args, **kwargs):
        raise AssertionError("the command started its work with a bad argument")
    for target in ("fireflys_sw.train.train", "fireflys_sw.evaluate.run_golden",
                   "fireflys_hw.sim.run.run_frames", "fireflys_hw.synth.synthesise"):
        module, name = target.rsplit(".", 1)
        mod = pytest.importorskip(module)
        if hasattr(mod, name):
            monkeypatch.setattr(target, reached)


def _cases(f) -> list[list[str]]:
    g = f["good"]
    cases = []
    numeric = {
        "eval": ([g, "--dataset", "mnist5k"], {"--limit": ["-1", "0"]}),
        "train": ([], {"--lr": ["0", "-1"], "--alpha": ["-1"], "--train-limit": ["0", "-1"],
                       "--test-limit": ["0", "-1"], "--threads": ["-1", "0"], "-T": ["0", "257"],
                       "--epochs": ["0"], "--batch-size": ["0"], "--sparsity": ["0.2", "1"],
                       "--weight-bits": ["0", "1", "9"], "--seed": ["-1"]}),
        "init": (["scnn5", "--out", f["dir"] + "/i.npz"],
                 {"--weight-bits": ["0", "1", "9"], "--seed": ["-1", str(1 << 40)],
                  "-T": ["0", "-3"]}),
        "demo": (["--no-hardware"], {"--limit": ["0", "-1"], "--images": ["0", "-1"]}),
        "import": (["x.nir", "--out", f["dir"] + "/m.npz"],
                   {"-T": ["0"], "--weight-bits": ["1"], "--input-bits": ["0", "17"],
                    "--dt": ["0", "-1"], "--input-range": ["0"], "--sparsity": ["1", "-0.5"],
                    "--tau-tolerance": ["-1"], "--limit": ["0"]}),
        "export": ([g, "--nir", f["dir"] + "/e.nir"], {"--dt": ["0", "-1"]}),
        "compile": ([g, "--out", f["dir"] + "/c"], {"--lut-budget": ["0", "-5"],
                                                     "--fps": ["0", "-1"]}),
        "simulate": ([g], {"--images": ["0", "-1"], "--clock-mhz": ["0", "-1"],
                           "--stall-in": ["1", "-0.1"], "--stall-out": ["1.5"],
                           "--seed": ["-1"], "--lut-budget": ["0"], "--fps": ["-2"],
                           "--jobs": ["0", "-1"], "--shard": ["3/2", "0/2", "1/0", "1/2/3"]}),
        "synth": ([g], {"--lut-budget": ["0"], "--fps": ["0"]}),
        "build": ([g, "--board", "icebreaker", "--out", f["dir"] + "/b"], {"--baud": ["0"]}),
        "run": ([g, "--port", "sim"], {"--baud": ["0"], "--images": ["0"], "--timeout": ["0"],
                                       "--window": ["0"], "--divisor": ["0"]}),
    }
    for command, (base, options) in numeric.items():
        for option, bad in options.items():
            for value in bad + JUNK[:3]:
                cases.append([command, *base, option, value])
    cases += [
        ["train", "--name", "../x", "--out", f["dir"] + "/t"],
        ["train", "--name", "/etc/x"], ["train", "--name", ".."], ["train", "--name", "a/b"],
        ["import", "x.nir", "--out", f["dir"] + "/m.npz", "--name", "../m"],
        ["info", f["junk"]], ["info", f["claim"]], ["info", f["dir"]], ["info", f["missing"]],
        ["info", f["plan"]], ["eval", f["junk"], "--dataset", "mnist5k"],
        ["eval", g, "--dataset", "nosuch"],
        ["compile", g, "--out", f["locked"]], ["compile", g, "--out", f["good"]],
        ["compile", g, "--out", f["dir"] + "/c", "--plan", f["plan"]],
        ["compile", g, "--out", f["dir"] + "/c", "--plan", f["deep"]],
        ["compile", g, "--out", f["dir"] + "/c", "--plan", f["missing"]],
        ["compile", g, "--out", f["dir"] + "/c", "--plan", f["junk"]],
        ["compile", g, "--out", f["dir"] + "/c", "--parallelism", "0:0"],
        ["compile", g, "--out", f["dir"] + "/c", "--parallelism", "x"],
        ["compile", g, "--out", f["dir"] + "/c", "--device", "nosuch"],
        ["compile", f["junk"], "--out", f["dir"] + "/c"],
        ["simulate", g, "--vcd", f["missing"]], ["simulate", g, "--vcd", f["dir"]],
        ["simulate", g, "--plan", f["deep"]], ["simulate", g, "--dataset", "nosuch"],
        ["build", g, "--board", "nosuch", "--out", f["dir"] + "/b"],
        ["build", g, "--board", "icebreaker", "--out", f["locked"]],
        ["build", g, "--board", "icebreaker", "--out", f["dir"] + "/b", "--plan", f["plan"]],
        ["init", "1x999999x999999-10fc", "--out", f["dir"] + "/i.npz"],
        ["init", "scnn5", "--out", f["locked"]],
        ["init", "nonsense", "--out", f["dir"] + "/i.npz"],
        ["export", f["junk"], "--nir", f["dir"] + "/e.nir"],
        ["run", f["junk"], "--port", "sim"],
        ["simulate", g, "--shard", "1/2"], ["simulate", g, "--images", "2", "--shard", "1/4",
                                            "--report", f["dir"] + "/p.json"],
        ["simulate", g, "--jobs", "2", "--backend", "pysim"],
        ["simulate", g, "--report", f["missing"]], ["simulate", g, "--report", f["dir"]],
        ["merge-reports", f["junk"]], ["merge-reports", f["missing"]],
        ["merge-reports", f["deep"]], ["merge-reports", f["plan"]], ["merge-reports", f["dir"]],
        ["merge-reports", f["plan"], "--report", f["missing"]],
    ]
    return cases


def test_every_subcommand_is_walked(files):
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)
    walked = {case[0] for case in _cases(files)}
    assert commands <= walked, commands - walked


def test_bad_arguments_are_refused_with_one_line(files, capsys):
    failures = []
    cases = _cases(files)
    assert len(cases) >= 87
    for argv in cases:
        try:
            status = main(argv)
        except SystemExit as exit_:
            status = exit_.code
        except BaseException as error:     # a traceback: record it and go on
            status = f"{type(error).__name__}: {str(error)[:200]}"
        err = capsys.readouterr().err.strip().splitlines()
        ok = status == 2 and bool(err) and (err[-1].startswith("fireflys: error: ") or
                                      err[-1].startswith("fireflys ") and ": error: " in err[-1])
        if not ok or any("Traceback" in line for line in err):
            failures.append(f"{argv}: status {status}, stderr {err[-3:]}")
    assert not failures, "\n".join(failures)
