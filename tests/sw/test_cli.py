"""The command line: JSON output, and one-line errors for bad input."""

import json
import subprocess
import sys

import pytest

from fireflys_sw.artifact import save_artifact
from fireflys_sw.cli import main
from fireflys_sw.datasets import FASHION_MNIST_DEBIAN_DIR

needs_fashion = pytest.mark.skipif(not FASHION_MNIST_DEBIAN_DIR.is_dir(),
                                   reason="Debian's dataset-fashion-mnist is not installed")
from fireflys_sw.synthetic import random_artifact


@pytest.fixture
def scnn5_artifact(tmp_path):
    return save_artifact(random_artifact("scnn5", seed=0), tmp_path / "scnn5.npz")


@needs_fashion
def test_eval_json(scnn5_artifact, capsys):
    assert main(["eval", str(scnn5_artifact), "--dataset", "fashion-mnist", "--limit", "200",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 200
    assert 0.0 <= report["accuracy"] <= 1.0
    assert report["weight_bits"] == 4
    assert 0.85 < report["weight_sparsity"] < 0.95
    densities = list(report["spike_density"].values())
    assert len(densities) == 9 and densities[-1] is None
    assert all(0 <= d <= 1 for d in densities[:-1])


def test_eval_text(scnn5_artifact, capsys):
    assert main(["eval", str(scnn5_artifact), "--dataset", "mnist", "--limit", "50"]) == 0
    out = capsys.readouterr().out
    assert "note: mnist: no directory given" in out
    assert "accuracy" in out and "spike density per layer" in out


def test_info(scnn5_artifact, capsys):
    assert main(["info", str(scnn5_artifact)]) == 0
    out = capsys.readouterr().out
    assert "conv" in out and "maxpool" in out and "fc" in out


@pytest.mark.parametrize("argv, message", [
    (["eval", "no-such-model", "--dataset", "fashion-mnist"],
     r"^fireflys: error: artifact 'no-such-model' not found: give a path"),
    (["eval", "{artifact}", "--dataset", "imagenet"], r"^fireflys: error: .*imagenet"),
    (["eval", "{artifact}", "--dataset", "cifar10", "--data-dir", "/nonexistent"],
     r"^fireflys: error: cifar10"),
    (["eval", "{artifact}", "--dataset", "mnist5k", "--data-dir", "{tmp}"],
     r"^fireflys: error: "),
    (["eval", "{bad}", "--dataset", "fashion-mnist"],
     r"^fireflys: error: artifact '.*bad.npz': not a readable fireflys artifact"),
])
def test_errors_are_one_line(argv, message, scnn5_artifact, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    argv = [a.format(artifact=scnn5_artifact, tmp=tmp_path, bad=bad) for a in argv]
    code = main(argv)
    err = capsys.readouterr().err
    if argv[3:4] == ["mnist5k"]:
        # mnist5k takes no directory: it is the shipped subset, so this one succeeds
        assert code == 0
        return
    assert code == 2
    assert err.count("\n") == 1, err
    import re
    assert re.match(message, err), err


@needs_fashion
def test_dataset_model_mismatch(tmp_path, capsys):
    path = save_artifact(random_artifact("3x32x32-4c3p1-mp2-10fc", seed=0), tmp_path / "c.npz")
    assert main(["eval", str(path), "--dataset", "fashion-mnist"]) == 2
    assert "pick the matching --dataset" in capsys.readouterr().err


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "fireflys_sw.cli", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for command in ("demo", "eval", "info", "train", "init"):
        assert command in out


@needs_fashion
@pytest.mark.torch
def test_init_then_eval_a_random_scnn5(tmp_path, capsys):
    pytest.importorskip("torch")
    path = tmp_path / "random.npz"
    assert main(["init", "scnn5", "--out", str(path)]) == 0
    assert main(["eval", str(path), "--dataset", "fashion-mnist", "--limit", "100",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert report["images"] == 100 and report["weight_bits"] == 4



def _subcommands():
    import argparse

    from fireflys_sw.cli import build_parser
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_help_says_every_option_and_default(command):
    """Every option of every command has a help text, and --help states its default."""
    import argparse
    parser = _subcommands()[command]
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help, f"{command} {name} has no help"
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            text = formatter._expand_help(action)
            assert "default" in text, \
                f"{command} {name}: --help does not state the default {action.default!r}"
