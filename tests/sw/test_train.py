"""Compression-aware training end to end on a small slice of real MNIST: LSQ gradients,
export equal to the evaluated model, checkpoints and resume, logs and plots."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fireflys_sw.artifact import load_artifact  # noqa: E402
from fireflys_sw.datasets import load_dataset  # noqa: E402
from fireflys_sw.errors import FireflysError  # noqa: E402
from fireflys_sw.golden import run_golden  # noqa: E402
from fireflys_sw.models import build_model, mse_step  # noqa: E402
from fireflys_sw.train import TrainConfig, train  # noqa: E402

pytestmark = pytest.mark.torch

SMALL = "1x28x28-4c3p1-mp2-8c3p1-mp2-10fc"


def test_lsq_scales_get_gradients_and_stay_per_channel():
    torch.manual_seed(0)
    model = build_model(SMALL)
    x = torch.randint(0, 256, (8, 1, 28, 28)).float()
    model.calibrate(x)
    loss = torch.nn.functional.cross_entropy(model.logits(model(x)), torch.arange(8))
    loss.backward()
    conv, _, readout = model.synapses[0], model.synapses[1], model.readout
    assert conv.scale.shape == (4,) and readout.scale.shape == (1,)
    assert conv.scale.grad is not None and conv.scale.grad.abs().sum() > 0
    # one scale per output channel, shared by the channel's weights, bias and threshold
    q = conv.integer_weight().detach()
    unit = conv.unit().detach()
    w = conv.weight.detach()
    inside = q.abs() < 7
    recon = (q * conv.scale.abs().detach().reshape(-1, 1, 1, 1))
    assert torch.all((recon - w).abs()[inside] <= conv.scale.abs().max() / 2 + 1e-6)
    assert torch.allclose(unit, conv.scale.abs().detach() / 255)


def test_bad_configs():
    for kwargs, message in [({"target_sparsity": 0.3}, r"--sparsity must be in \[0.5, 1\)"),
                            ({"weight_bits": 9}, r"--weight-bits must be in 2..8"),
                            ({"model": "1x28x28-foo"}, r"unknown layer token 'foo'")]:
        with pytest.raises(FireflysError, match=message):
            train(TrainConfig(**kwargs))


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".", "", "x\\y", "-x", "a\nb",
                                  "n" * 129, 5])
def test_config_name_must_be_plain(tmp_path, name):
    """A name that is not one plain file name (it would write outside ``out``) is refused by
    the config itself, from Python as from the command line: one line, nothing written."""
    out = tmp_path / "out"
    with pytest.raises(FireflysError, match=r"^--name must be a plain name \(no '/'") as info:
        train(TrainConfig(dataset="mnist5k", model=SMALL, epochs=1, out=str(out), name=name))
    assert "\n" not in str(info.value)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    # a config changed after construction is checked again when it runs
    config = TrainConfig(dataset="mnist5k", model=SMALL, epochs=1, out=str(out), name="ok")
    object.__setattr__(config, "name", name)
    with pytest.raises(FireflysError, match=r"^--name must be a plain name"):
        train(config)
    assert list(tmp_path.iterdir()) == []
    # plain names pass the check
    assert TrainConfig(name="run-1.v2").name == "run-1.v2"


def test_unknown_dataset_and_unwritable_output(tmp_path):
    with pytest.raises(FireflysError, match=r"imagenet"):
        train(TrainConfig(dataset="imagenet", out=str(tmp_path)))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(FireflysError, match=r"output directory .* is not writable"):
        train(TrainConfig(dataset="mnist5k", out=str(blocker / "sub")))


def test_train_export_resume(tmp_path):
    config = TrainConfig(dataset="mnist5k", model=SMALL, epochs=1, batch_size=32,
                         train_limit=256, test_limit=100, out=str(tmp_path), name="tiny",
                         alpha=0.5)
    report = train(config, progress=False)
    artifact = load_artifact(report["artifact"])
    # the reported accuracy is the golden model's on the exported artifact
    data = load_dataset("mnist5k")
    golden = run_golden(artifact, data.test_x[:100])
    assert report["golden_test_accuracy"] == pytest.approx((golden.prediction ==
                                                            data.test_y[:100]).mean())
    assert artifact.metadata["test_accuracy"] == report["golden_test_accuracy"]
    assert "fireflys train" in artifact.metadata["command"]
    # the torch evaluation per epoch is bit-exact with the golden model too
    assert report["history"][0]["test_accuracy"] == pytest.approx(report["golden_test_accuracy"])
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    entry = json.loads(lines[0])
    assert {"loss", "train_accuracy", "test_accuracy", "weight_sparsity",
            "spike_density"} <= set(entry)
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert (tmp_path / "sparsity.png").stat().st_size > 0
    # resume: one more epoch from the checkpoint
    resumed = train(TrainConfig(**{**config.__dict__, "epochs": 2, "resume": True}),
                    progress=False)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 2


def test_float_baseline(tmp_path):
    report = train(TrainConfig(dataset="mnist5k", model=SMALL, epochs=1, batch_size=32,
                               train_limit=128, test_limit=50, out=str(tmp_path),
                               dense_float=True), progress=False)
    assert 0 <= report["float_test_accuracy"] <= 1
    assert "artifact" not in report
    # compressed fine-tuning from the baseline starts from its weights, batch norm folded in
    model = build_model(SMALL)
    from fireflys_sw.models import fold_batchnorm
    from fireflys_sw.train import _initialise_from
    _initialise_from(model, tmp_path / "checkpoint.pt")
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["model"]
    baseline = build_model(SMALL, quantised=False, batch_norm=True)
    baseline.load_state_dict(state)
    assert torch.equal(model.synapses[0].weight, fold_batchnorm(baseline).synapses[0].weight)
    tuned = train(TrainConfig(dataset="mnist5k", model=SMALL, epochs=1, batch_size=32,
                              train_limit=64, test_limit=20, out=str(tmp_path / "ft"),
                              init_from=str(tmp_path / "checkpoint.pt")), progress=False)
    assert "--init-from" in load_artifact(tuned["artifact"]).metadata["command"]
    # from a compressed run: its LSQ step sizes (the units of its thresholds) are kept
    again = build_model(SMALL)
    _initialise_from(again, tmp_path / "ft" / "checkpoint.pt")
    state = torch.load(tmp_path / "ft" / "checkpoint.pt", weights_only=True)["model"]
    assert torch.equal(again.synapses[0].scale, state["layers.0.scale"])
    with pytest.raises(FireflysError, match=r"--init-from .*: not a fireflys training checkpoint"):
        train(TrainConfig(dataset="mnist5k", model=SMALL, out=str(tmp_path / "x"),
                          init_from=str(tmp_path / "curves.png")))


def test_lsq_init_ignores_pruned_weights():
    """The step size of a pruned layer comes from its surviving weights: zeros cost nothing
    at any step, so pruning most of a layer leaves the step where its survivors need it."""
    torch.manual_seed(0)
    model = build_model(SMALL)
    syn = model.synapses[0]
    with torch.no_grad():
        dense = syn.weight.clone()
        keep = torch.rand(dense.shape, generator=torch.Generator().manual_seed(1)) < 0.3
        keep.reshape(len(dense), -1)[:, 0] = True       # every channel keeps a survivor
        syn.weight.copy_(torch.where(keep, dense, torch.zeros_like(dense)))
        syn.init_scale()
        pruned = syn.scale.clone()
        k = keep.reshape(len(pruned), -1)
        survivors = dense.reshape(len(pruned), -1)
        for c in range(len(pruned)):
            expected = mse_step(survivors[c][k[c]][None], syn.qn, syn.qp)
            assert pruned[c] == pytest.approx(float(expected[0]))


def test_init_from_another_spec_is_one_line(tmp_path):
    """A checkpoint of another model gets one line naming what does not match."""
    from fireflys_sw.train import _initialise_from
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": build_model(SMALL).state_dict()}, path)
    wider = build_model("1x28x28-6c3p1-mp2-8c3p1-mp2-10fc")      # same layers, other widths
    with pytest.raises(FireflysError, match=r"^--init-from .*checkpoint\.pt': shapes differ "
                                            r"from this model \(.*\)$"):
        _initialise_from(wider, path)
    deeper = build_model("1x28x28-4c3p1-mp2-8c3p1-mp2-8c3p1-10fc")   # a layer more
    with pytest.raises(FireflysError, match=r"^--init-from .*: the checkpoint has no "
                                            r"layers\.\d+\.weight; it was trained for another "
                                            r"model spec$"):
        _initialise_from(deeper, path)


def test_distillation_from_the_float_baseline(tmp_path):
    """--distill-from: the loss is Hinton's mix of the labels' cross-entropy and the KL to the
    teacher's softened logits; the teacher is the float baseline, frozen, batch norm and all;
    anything else is refused in one line."""
    import torch.nn.functional as F
    from fireflys_sw.train import _distilled_loss, _load_teacher, _teacher_logits
    train(TrainConfig(dataset="mnist5k", model=SMALL, epochs=1, batch_size=32, train_limit=64,
                      test_limit=20, out=str(tmp_path / "float"), dense_float=True),
          progress=False)
    teacher = _load_teacher(tmp_path / "float" / "checkpoint.pt")
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    x = torch.randint(0, 256, (6, 1, 28, 28)).float()
    y = torch.arange(6)
    target = teacher.logits(teacher(x))
    # the targets are computed once per run, in batches, for every training image: the same
    # logits the teacher gives each batch
    once = _teacher_logits(teacher, x.numpy().astype(np.uint8), batch_size=4, progress=False)
    assert once.shape == target.shape
    assert torch.allclose(once, target, atol=1e-5)
    config = TrainConfig(distill_weight=0.25, distill_temperature=3.0)
    # a student that already gives the teacher's logits owes nothing to the soft term
    hard = F.cross_entropy(target, y)
    assert float(_distilled_loss(hard, target, target, config)) == pytest.approx(
        0.75 * float(hard), rel=1e-5)
    # otherwise the soft term is tau^2 KL(teacher || student) at temperature tau
    student = torch.zeros_like(target)
    expected = 0.75 * float(F.cross_entropy(student, y)) + 0.25 * 9.0 * float(
        (F.softmax(target / 3, 1) * (F.log_softmax(target / 3, 1) - F.log_softmax(student, 1)))
        .sum(1).mean())
    got = _distilled_loss(F.cross_entropy(student, y), student, target, config)
    assert float(got) == pytest.approx(expected, rel=1e-5)
    report = train(TrainConfig(dataset="mnist5k", model=SMALL, epochs=1, batch_size=32,
                               train_limit=64, test_limit=20, out=str(tmp_path / "kd"),
                               init_from=str(tmp_path / "float" / "checkpoint.pt"),
                               distill_from=str(tmp_path / "float" / "checkpoint.pt")),
                   progress=False)
    assert "--distill-from" in load_artifact(report["artifact"]).metadata["command"]
    # the teacher must be a float baseline, and a file of fireflys'
    with pytest.raises(FireflysError, match=r"^--distill-from .*: not a float baseline's "
                                            r"checkpoint \(train the teacher with --float\)$"):
        train(TrainConfig(dataset="mnist5k", model=SMALL, epochs=1, out=str(tmp_path / "x"),
                          distill_from=str(tmp_path / "kd" / "checkpoint.pt")))
    with pytest.raises(FireflysError, match=r"^--distill-from .*: not a fireflys training "
                                            r"checkpoint"):
        train(TrainConfig(dataset="mnist5k", model=SMALL, epochs=1, out=str(tmp_path / "y"),
                          distill_from=str(tmp_path / "float" / "curves.png")))
    with pytest.raises(FireflysError, match=r"^--distill-weight must be in \[0, 1\]"):
        train(TrainConfig(distill_weight=1.5))


def test_augment_batch_shifts_and_mirrors():
    from fireflys_sw.train import augment_batch
    x = torch.zeros(64, 1, 8, 8)
    x[:, 0, 3, 2] = 1.0                      # one lit pixel, away from the border
    same = augment_batch(x, np.random.default_rng(0), "none")
    assert same is x
    moved = augment_batch(x, np.random.default_rng(1), "shift")
    assert moved.shape == x.shape
    rows, cols = np.nonzero(moved[:, 0].reshape(64, -1).numpy())[1] // 8, \
        np.nonzero(moved[:, 0].reshape(64, -1).numpy())[1] % 8
    assert len(rows) == 64                   # each image keeps its pixel, moved by <= 2
    assert set(rows) == {1, 2, 3, 4, 5} and set(cols) == {0, 1, 2, 3, 4}
    again = augment_batch(x, np.random.default_rng(1), "shift")
    assert torch.equal(moved, again)         # the draws come from the generator alone
    mirrored = augment_batch(x, np.random.default_rng(2), "shift-flip")
    cols = np.nonzero(mirrored[:, 0].reshape(64, -1).numpy())[1] % 8
    assert (cols >= 5).any() and (cols <= 4).any()   # some images mirrored (col 7 - c)


def test_augmented_training_and_its_refusals(tmp_path):
    report = train(TrainConfig(dataset="mnist5k", model=SMALL, epochs=1, batch_size=32,
                               train_limit=64, test_limit=20, out=str(tmp_path),
                               dense_float=True, augment="shift"), progress=False)
    assert 0 <= report["float_test_accuracy"] <= 1
    with pytest.raises(FireflysError, match="--augment must be one of none, shift, shift-flip"):
        train(TrainConfig(dataset="mnist5k", model=SMALL, out=str(tmp_path / "x"),
                          augment="rotate"))
