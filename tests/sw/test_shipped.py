"""The shipped, trained artifacts: present, valid, addressable by name, bit-exact on real data,
and as accurate as the README's results table says."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from fireflys_sw.artifact import load_artifact, resolve_artifact, shipped_artifacts
from fireflys_sw.cli import main
from fireflys_sw.datasets import load_dataset
from fireflys_sw.golden import run_golden

SHIPPED = {"scnn5-fashion-mnist": "fashion-mnist", "scnn5-mnist5k": "mnist5k",
           "scnn5-fashion-mnist-radix": "fashion-mnist",
           "scnn5-wide-fashion-mnist": "fashion-mnist"}
README = Path(__file__).resolve().parents[2] / "README.md"


def _data(dataset):
    if dataset == "fashion-mnist" and not Path("/usr/share/datasets/fashion-mnist").is_dir():
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    return load_dataset(dataset, None)


def test_shipped_by_name():
    assert set(SHIPPED) <= set(shipped_artifacts())
    for name in SHIPPED:
        artifact = load_artifact(name)
        assert resolve_artifact(name) == shipped_artifacts()[name]
        assert artifact.weight_bits == 4 and artifact.T == 4
        assert artifact.input_shape == (1, 28, 28) and artifact.classes == 10


# the golden model over a 10,000-image test split takes one to three minutes per model: those
# run under -m slow (make test-all); the 1,000-image mnist5k split stays in the default run
@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.slow) if SHIPPED[name] == "fashion-mnist" else name
    for name in sorted(SHIPPED)])
def test_readme_states_the_measured_accuracy(name):
    """The README's row for ``name`` carries the golden accuracy and sparsity of the artifact
    on its whole test split (measured here, not copied)."""
    data = _data(SHIPPED[name])
    artifact = load_artifact(name)
    accuracy = float((run_golden(artifact, data.test_x).prediction == data.test_y).mean())
    row = next(line for line in README.read_text().splitlines()
               if line.startswith(f"| `{name}`"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert f"{100 * accuracy:.2f}" in cells, (row, accuracy)
    assert f"{100 * artifact.weight_sparsity():.1f}" in cells, (row, artifact.weight_sparsity())


@pytest.mark.torch
@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_pytorch_and_golden_agree_on_real_images(name):
    torch = pytest.importorskip("torch")
    from fireflys_sw.export import model_from_artifact
    from fireflys_sw.radix import radix_model_from_artifact
    data = _data(SHIPPED[name])
    artifact = load_artifact(name)
    images = data.test_x[:48]
    if artifact.radix:
        model = radix_model_from_artifact(artifact).eval()
        x = torch.from_numpy(images.astype(np.float32))
    else:
        model = model_from_artifact(artifact).eval()
        x = torch.from_numpy(images.astype(np.int64))
    with torch.no_grad():
        scores = model(x).numpy()
    golden = run_golden(artifact, images)
    assert np.array_equal(scores.astype(np.int64), golden.scores.astype(np.int64))


def test_eval_json_on_a_shipped_name(capsys):
    assert main(["eval", "scnn5-mnist5k", "--dataset", "mnist5k", "--limit", "200",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 200 and report["weight_bits"] == 4
    assert report["weight_sparsity"] > 0.5


def test_demo_golden_step(capsys):
    assert main(["demo", "--limit", "300", "--no-hardware"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"accuracy 0\.\d{4} over 300 images", out), out
