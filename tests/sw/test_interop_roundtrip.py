"""Artifact -> NIR -> artifact: the same integers, identical golden outputs; the commands; and
an imported network compiled and simulated bit for bit against the golden model."""

import json

import numpy as np
import pytest

nir = pytest.importorskip("nir", reason="the nir package is not installed (pip install "
                                        "'fireflys[interop]')")

from fireflys_sw.artifact import (InputEncoding, PoolLayer, load_artifact,  # noqa: E402
                                  save_artifact, shipped_artifacts)
from fireflys_sw.cli import main  # noqa: E402
from fireflys_sw.golden import run_golden  # noqa: E402
from fireflys_sw.interop import InteropError, artifact_to_nir, export_nir, import_nir  # noqa: E402
from fireflys_sw.spec import NeuronKind  # noqa: E402

pytestmark = pytest.mark.interop
from fireflys_sw.synthetic import random_artifact, random_images  # noqa: E402


def assert_same_network(a, b):
    assert (a.T, a.input_shape, a.input_bits, a.input_encoding, a.weight_bits) == \
        (b.T, b.input_shape, b.input_bits, b.input_encoding, b.weight_bits)
    assert len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers):
        assert type(la) is type(lb) and la.in_shape == lb.in_shape and la.out_shape == lb.out_shape
        if isinstance(la, PoolLayer):
            assert la.kernel == lb.kernel
            continue
        assert (la.kind, la.kernel, la.padding, la.neuron, la.leak_shift) == \
            (lb.kind, lb.kernel, lb.padding, lb.neuron, lb.leak_shift)
        assert np.array_equal(la.weight, lb.weight) and np.array_equal(la.bias, lb.bias)
        assert (la.threshold is None and lb.threshold is None) or \
            np.array_equal(la.threshold, lb.threshold)


def round_trip(artifact, tmp_path):
    path = export_nir(artifact, tmp_path / "net.nir")
    return import_nir(path, remove_silent=False).artifact


@pytest.mark.parametrize("name", sorted(shipped_artifacts()))
def test_shipped_models_round_trip(name, tmp_path):
    a = load_artifact(name)
    if a.radix:
        with pytest.raises(InteropError, match=r"is a radix network .*cannot be written as NIR"):
            export_nir(a, tmp_path / "net.nir")
        assert not (tmp_path / "net.nir").exists()
        return
    b = round_trip(a, tmp_path)
    assert_same_network(a, b)
    x = random_images(a, 32, seed=1)
    assert np.array_equal(run_golden(a, x).scores, run_golden(b, x).scores)


RANDOM = [
    dict(spec="1x12x12-4c3p1-mp2-6c3p0-10fc"),
    dict(spec="1x8x8-3c3p1-mp2-5fc", neuron=NeuronKind.IF, weight_bits=2, T=3),
    dict(spec="2x10x10-4c5p2-mp2-4c1p0-mp2-8fc-6fc", leak_shift=3, weight_bits=8, T=6,
         input_bits=4),
    dict(spec="2x6x6-3c3p1-4fc", encoding=InputEncoding.FRAMES, input_bits=2, T=5),
    dict(spec="20x1x1-16fc-12fc-4fc", leak_shift=5),
]


@pytest.mark.parametrize("case", RANDOM, ids=[c["spec"] for c in RANDOM])
@pytest.mark.parametrize("seed", [0, 1])
def test_random_networks_round_trip(case, seed, tmp_path):
    options = dict(case)
    a = random_artifact(options.pop("spec"), seed=seed, **options)
    b = round_trip(a, tmp_path)
    assert_same_network(a, b)
    x = random_images(a, 24, seed=seed + 7)
    assert np.array_equal(run_golden(a, x).scores, run_golden(b, x).scores)


def test_exported_graph_is_standard_nir(tmp_path):
    a = random_artifact("1x8x8-3c3p1-mp2-5fc", seed=0)
    graph = artifact_to_nir(a)
    kinds = [type(graph.nodes[n]).__name__ for n in graph.nodes]
    assert kinds == ["Input", "Conv2d", "LIF", "SumPool2d", "Threshold", "Flatten", "Affine",
                     "I", "Output"]
    lif = graph.nodes["lif0"]
    k = a.layers[0].leak_shift
    assert np.allclose(lif.tau / lif.r, 1e-4) and np.all(lif.r == 1 << k)
    # NIR fires on v > v_threshold; v / r > TH - 1/2 is H >= TH on integers
    th = a.layers[0].threshold
    assert np.array_equal(lif.v_threshold[:, 0, 0], (1 << k) * (th - 0.5))
    path = tmp_path / "net.nir"
    nir.write(path, graph)
    back = nir.read(path)  # nir's own reader, with its type check
    assert set(back.nodes) == set(graph.nodes)


def test_import_and_export_commands(tmp_path, capsys):
    a = random_artifact("1x8x8-3c3p1-mp2-5fc", seed=2)
    src = save_artifact(a, tmp_path / "a.npz")
    assert main(["export", str(src), "--nir", str(tmp_path / "a.nir")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["import", str(tmp_path / "a.nir"), "--out", str(tmp_path / "b.npz"),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["written"] == str(tmp_path / "b.npz")
    assert [m["step_rule"] for m in report["layers"] if "step_rule" in m] == ["integer"] * 2
    b = load_artifact(tmp_path / "b.npz")
    x = random_images(a, 16, seed=3)
    assert np.array_equal(run_golden(a, x).scores, run_golden(b, x).scores)
    assert b.metadata["imported_from"] == "nir"


def test_import_command_errors_are_one_line(tmp_path, capsys):
    assert main(["import", str(tmp_path / "missing.nir"), "--out", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fireflys: error: NIR file ") and err.count("\n") == 1
    assert main(["import", "pkg:fn", "--out", str(tmp_path / "x.npz")]) == 2
    assert "needs --input-shape" in capsys.readouterr().err


def test_imported_network_simulates_bit_exactly(tmp_path):
    """Through the hardware flow's public functions, Amaranth's simulator, a tiny network."""
    from fireflys_hw.flow import simulate_accelerator
    a = random_artifact("1x4x4-2c3p1-mp2-3fc", seed=0, T=2, input_bits=2, weight_sparsity=0.5,
                        spike_density=0.3)
    imported = round_trip(a, tmp_path)
    images = random_images(imported, 3, seed=0)
    report = simulate_accelerator(imported, images, backend="pysim")
    assert report.mismatches == 0
    assert np.array_equal(np.asarray(report.predictions), run_golden(imported, images).prediction)


def test_imported_float_graph_simulates_bit_exactly():
    """A float NIR graph (snnTorch's conventions), quantised on import, through pysim."""
    from fireflys_hw.flow import simulate_accelerator
    rng = np.random.default_rng(0)
    shape = (2, 4, 4)
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([1, 4, 4])),
        "conv": nir.Conv2d(input_shape=(4, 4), weight=rng.normal(0, 1, (2, 1, 3, 3)), stride=1,
                           padding=1, dilation=1, groups=1, bias=rng.normal(0, 0.1, 2)),
        "lif": nir.LIF(tau=np.full(shape, 2e-4), r=np.full(shape, 2.0), v_leak=np.zeros(shape),
                       v_threshold=np.full(shape, 1.0), v_reset=np.zeros(shape)),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                              padding=np.array([0, 0])),
        "or": nir.Threshold(threshold=np.zeros((2, 2, 2))),
        "flat": nir.Flatten(input_type={"input": np.array([2, 2, 2])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(0, 1, (3, 8)), bias=np.zeros(3)),
        "output": nir.Output(output_type=np.array([3]))},
        edges=[("input", "conv"), ("conv", "lif"), ("lif", "pool"), ("pool", "or"),
               ("or", "flat"), ("flat", "fc"), ("fc", "output")])
    imported = import_nir(graph, T=2, input_bits=2).artifact
    images = np.random.default_rng(1).integers(0, 256, (3, 1, 4, 4), dtype=np.uint8)
    report = simulate_accelerator(imported, images, backend="pysim")
    assert report.mismatches == 0
