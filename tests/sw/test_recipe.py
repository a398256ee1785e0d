"""The accuracy recipe: batch norm folded exactly, MSE-optimal LSQ steps, pruning to a target
with a schedule (and regrowth), and DistributedDataParallel equal to one process."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fireflys_sw.datasets import load_dataset  # noqa: E402
from fireflys_sw.export import export_artifact  # noqa: E402
from fireflys_sw.golden import run_golden  # noqa: E402
from fireflys_sw.models import build_model, fold_batchnorm, mse_step  # noqa: E402
from fireflys_sw.rewiring import (GradientRewiring, SparsitySchedule, layer_targets,  # noqa: E402
                                  rewire)
from fireflys_sw.train import TrainConfig, _initialise_from, _lr_at, train  # noqa: E402

pytestmark = pytest.mark.torch

SMALL = "1x28x28-4c3p1-mp2-8c3p1-mp2-16fc-10fc"


def _bn_model(seed=0):
    """A float conv-BN-LIF model with non-trivial running statistics and affine parameters."""
    torch.manual_seed(seed)
    model = build_model(SMALL, quantised=False, batch_norm=True)
    x = torch.randint(0, 256, (32, 1, 28, 28)).float()
    model.train()
    for _ in range(5):
        model(x)
    for bn in model.modules():
        if isinstance(bn, torch.nn.modules.batchnorm._BatchNorm):
            bn.weight.data.uniform_(0.5, 2.0)
            bn.bias.data.uniform_(-0.3, 0.5)
    model.eval()
    return model, x


def test_batchnorm_folds_exactly():
    model, x = _bn_model()
    folded = fold_batchnorm(model).eval()
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    with torch.no_grad():
        a, b = model.currents(x), folded.currents(x)
    # spikes can only differ where a membrane sits within float rounding of the threshold
    assert a.abs().max() > 0
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert torch.equal(model(x).argmax(1), folded(x).argmax(1))


def test_quantised_model_from_bn_checkpoint_exports_bit_exact(tmp_path):
    model, x = _bn_model(1)
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": model.state_dict(), "config": {"model": SMALL, "T": 4}}, path)
    quantised = build_model(SMALL)
    _initialise_from(quantised, path)
    # the quantised model starts from the folded weights
    folded = fold_batchnorm(model)
    assert torch.equal(quantised.synapses[0].weight, folded.synapses[0].weight)
    artifact, _ = export_artifact(quantised, name="bn", remove_silent=False)
    quantised.eval()
    with torch.no_grad():
        score = quantised(x).numpy()
    golden = run_golden(artifact, x.numpy().astype(np.uint8))
    assert np.array_equal(golden.prediction, score.argmax(1))
    # and the 4-bit model still agrees with the float one on most inputs
    agree = (quantised(x).argmax(1) == folded.eval()(x).argmax(1)).float().mean()
    assert agree >= 0.5


def test_mse_step_beats_lsq_init():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(16, 144, generator=g) * torch.rand(16, 1, generator=g)
    w[:, ::3] = 0  # a pruned layer: zeros cost nothing at any step
    qn, qp = 8, 7

    def error(step):
        q = torch.clamp(torch.round(w / step[:, None]), -qn, qp)
        return float(((q * step[:, None] - w) ** 2).sum())

    alive = (w != 0).sum(1)
    lsq = 2 * (w.abs().sum(1) / alive) / math.sqrt(qp)
    best = mse_step(w, qn, qp)
    assert error(best) < 0.6 * error(lsq)
    # the integer grid is used: surviving weights reach beyond +-2
    assert torch.clamp(torch.round(w / best[:, None]), -qn, qp).abs().max() >= 6


def test_layer_targets_meet_the_total():
    sizes = [(8, 1, 3, 3), (16, 8, 3, 3), (32, 16, 3, 3), (64, 32, 3, 3), (64, 64, 3, 3), (10, 576)]
    counts = [math.prod(s) for s in sizes]
    for allocation in ("erk", "sqrt-erk", "uniform"):
        targets = layer_targets(sizes, 0.9, allocation=allocation)
        assert sum(t * c for t, c in zip(targets, counts)) / sum(counts) == pytest.approx(0.9)
        assert all(0 <= t < 1 for t in targets)
    targets = layer_targets(sizes, 0.9, readout_sparsity=0.5)
    assert targets[-1] == pytest.approx(0.5)
    assert sum(t * c for t, c in zip(targets, counts)) / sum(counts) == pytest.approx(0.9)
    with pytest.raises(ValueError, match=r"^allocation must be one of erk, sqrt-erk, uniform, "
                                         r"not 'random'$"):
        layer_targets(sizes, 0.9, allocation="random")


def test_pruned_weight_regrows():
    """A connection pruned by the schedule comes back when the loss needs it, and another,
    useless one is pruned in its place: the schedule holds the count, not the choice."""
    layer = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.1, 0.5]]))
    thetas = rewire(layer, include_bias=False)
    schedule = SparsitySchedule(thetas, [0.5])
    schedule.enforce(1.0)
    assert layer.weight.tolist() == [[0.0, 0.5]]  # the small one is pruned
    optimiser = GradientRewiring([{"params": thetas, "prior": "pruned"}], lr=0.02, alpha=0.1)
    x = torch.tensor([[1.0, 0.0]])  # only the first input matters: target 1
    for _ in range(200):
        loss = ((layer(x) - 1.0) ** 2).sum() + 1e-3 * layer.weight[0, 1] ** 2
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.enforce(1.0)
    assert layer.weight[0, 0] > 0.3  # regrown
    assert layer.weight[0, 1] == 0  # and the useless one pruned instead
    # after fix(), the mask holds
    schedule.fix()
    with torch.no_grad():
        thetas[0][0, 1] = 1.0
    schedule.enforce(1.0)
    assert layer.weight[0, 1] == 0


def test_sparsity_target_reached(tmp_path):
    """--sparsity is what the trained model has (within one point), biases not pruned."""
    report = train(TrainConfig(dataset="mnist5k", model=SMALL, epochs=2, prune_epochs=1,
                               batch_size=32, train_limit=320, test_limit=50,
                               target_sparsity=0.8, out=str(tmp_path), name="tiny"),
                   progress=False)
    history = report["history"]
    assert history[0]["weight_sparsity"]["total"] == pytest.approx(0.8, abs=0.01)
    assert history[1]["mask_fixed"]
    assert history[1]["weight_sparsity"]["total"] == pytest.approx(0.8, abs=0.01)
    # resuming with more epochs continues with the fixed mask
    more = train(TrainConfig(dataset="mnist5k", model=SMALL, epochs=3, prune_epochs=1,
                             batch_size=32, train_limit=320, test_limit=50, target_sparsity=0.8,
                             out=str(tmp_path), name="tiny", resume=True), progress=False)
    assert [h["epoch"] for h in more["history"]] == [1, 2, 3]
    assert more["history"][2]["weight_sparsity"]["total"] >= history[1]["weight_sparsity"]["total"]
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert checkpoint["pruning"]["masks"] is not None
    assert not any("bias.original" in k for k in checkpoint["model"])


def test_finetune_lr_rewinds_the_fixed_mask_phase():
    """--finetune-lr: the ramp follows the run's cosine, the fixed-mask phase restarts a cosine
    of its own at that rate and ends at zero; without it the run's cosine goes on."""
    plain = TrainConfig(epochs=10, prune_epochs=5, lr=1e-3)
    rewound = TrainConfig(epochs=10, prune_epochs=5, lr=1e-3, finetune_lr=4e-4)
    for progress in (0, 2.5, 4.99):
        assert _lr_at(rewound, progress) == _lr_at(plain, progress)
    assert _lr_at(plain, 5) == pytest.approx(5e-4)
    assert _lr_at(rewound, 5) == pytest.approx(4e-4)
    assert _lr_at(rewound, 7.5) == pytest.approx(2e-4)
    assert _lr_at(rewound, 10) == pytest.approx(0, abs=1e-12)
    with pytest.raises(Exception, match="--finetune-lr"):
        TrainConfig(finetune_lr=-1.0).validate()


def _ddp_worker(rank, world, init_file, config_kwargs):
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        train(TrainConfig(**config_kwargs, distributed=True), progress=False)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_processes_equal_one(tmp_path):
    import torch.multiprocessing as mp
    common = dict(dataset="mnist5k", model=SMALL, epochs=1, prune_epochs=1, batch_size=32,
                  train_limit=128, test_limit=20, target_sparsity=0.8, name="tiny")
    train(TrainConfig(**common, out=str(tmp_path / "one")), progress=False)
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), {**common, "out": str(tmp_path / "two")}),
             nprocs=2, join=True)
    one = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=True)["model"]
    two = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)["model"]
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(one[key], two[key], rtol=1e-4, atol=1e-5, msg=key)
