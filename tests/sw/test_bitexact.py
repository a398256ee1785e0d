"""Verification ladder step 1: the quantised PyTorch model in eval mode and the numpy golden
model compute the same spikes and scores, bit for bit."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fireflys_sw.artifact import InputEncoding  # noqa: E402
from fireflys_sw.export import export_artifact, model_from_artifact  # noqa: E402
from fireflys_sw.golden import run_golden  # noqa: E402
from fireflys_sw.models import IntegerLIFNode, build_model  # noqa: E402
from fireflys_sw.spec import NeuronKind  # noqa: E402
from fireflys_sw.synthetic import random_artifact, random_images  # noqa: E402

pytestmark = pytest.mark.torch

SPECS = [
    "1x12x12-6c3p1-mp2-8c3p1-mp2-5fc",
    "2x10x10-4c3p0-6c1p0-mp2-7",
    "3x9x9-5c3p1-5c3p1-mp3-4c3p0-3fc",
    "1x8x8-4c5p2-mp2-6c3p1-4c4p0",   # a conv readout with a 1x1 output
]


def torch_spikes(model, images):
    """Per spiking layer, the spikes ``(N, T, C, ...)`` of the model in eval mode."""
    recorded = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: recorded.append(out.detach().clone()))
             for m in model.layers if isinstance(m, IntegerLIFNode)]
    with torch.no_grad():
        score = model(torch.from_numpy(images.astype(np.int64)))
    for h in hooks:
        h.remove()
    return score.numpy(), [r.transpose(0, 1).numpy().astype(np.uint8) for r in recorded]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("spec", SPECS)
def test_random_integer_networks(spec, seed):
    rng = np.random.default_rng(seed)
    neuron = NeuronKind.LIF if seed % 2 == 0 else NeuronKind.IF
    encoding = InputEncoding.DIRECT if seed < 3 else InputEncoding.FRAMES
    artifact = random_artifact(spec, seed=seed, T=int(rng.integers(1, 6)), neuron=neuron,
                               leak_shift=int(rng.integers(1, 4)) if neuron is NeuronKind.LIF
                               else 0, weight_bits=int(rng.integers(2, 9)),
                               weight_sparsity=float(rng.uniform(0.3, 0.95)),
                               encoding=encoding, input_bits=8 if seed < 3 else 2)
    images = random_images(artifact, 12, seed=seed)
    model = model_from_artifact(artifact)
    score, spikes = torch_spikes(model, images)
    golden = run_golden(artifact, images, record=True)
    spiking = [s for layer, s in zip(artifact.layers, golden.spikes)
               if getattr(layer, "threshold", None) is not None]
    assert len(spikes) == len(spiking)
    for i, (ours, gold) in enumerate(zip(spikes, spiking)):
        np.testing.assert_array_equal(ours, gold, err_msg=f"spikes of spiking layer {i}, "
                                                          f"seed {seed}")
    np.testing.assert_array_equal(score.astype(np.int64), golden.scores,
                                  err_msg=f"scores, seed {seed}")
    # the networks must actually spike, or the test proves little
    assert 0 < spiking[0].mean() < 1, "the first layer neither silent nor saturated"


@pytest.mark.parametrize("seed", range(3))
def test_export_of_trained_style_model(seed):
    """A model with LSQ scales, export and golden model agree (through silent-channel removal)."""
    torch.manual_seed(seed)
    model = build_model("1x16x16-6c3p1-mp2-8c3p1-mp2-10fc", T=4)
    with torch.no_grad():   # prune, and lower the thresholds so that the random model spikes
        for syn in model.synapses:
            syn.weight[syn.weight.abs() < syn.weight.abs().median()] = 0
    for node in model.layers:
        if isinstance(node, IntegerLIFNode):
            node.v_threshold = 0.1
    artifact, removed = export_artifact(model, name="t")
    images = np.random.default_rng(seed).integers(0, 256, (16, 1, 16, 16)).astype(np.uint8)
    model.eval()
    with torch.no_grad():
        score = model(torch.from_numpy(images.astype(np.int64))).numpy().astype(np.int64)
    golden = run_golden(artifact, images, record=True)
    np.testing.assert_array_equal(score, golden.scores)
    assert golden.spike_counts[0] > 0
