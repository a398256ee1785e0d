"""Gradient-rewiring pruning: the parametrisation, the optimiser and the helpers."""

import math

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.nn.utils import parametrize  # noqa: E402

from fireflys_sw.rewiring import (  # noqa: E402
    GradientRewiring, Rewiring, rewire, unrewire, weight_sparsity)

pytestmark = pytest.mark.torch


@pytest.fixture(autouse=True)
def _one_thread():
    """These problems are tiny: intra-op threading only adds synchronisation overhead (tens of
    ms per backward on a loaded 2-core machine), so run them single-threaded."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _theta(module, name="weight"):
    return getattr(module.parametrizations, name).original


def _sign(module, name="weight"):
    return getattr(module.parametrizations, name)[0].sign


# ---------------------------------------------------------------- pruning on a small problem


def test_reaches_target_sparsity_and_fits_sparse_ground_truth():
    """Linear regression whose ground truth uses 10 % of the weights: the optimiser prunes the
    other 90 % within a bounded number of steps while the loss falls by orders of magnitude."""
    torch.manual_seed(0)
    n_in, n_out = 40, 5
    model = nn.Linear(n_in, n_out, bias=False)
    # a sparse ground truth whose nonzeros agree with the initial signs (a rewired weight can
    # never change sign, so a disagreeing one could only be approximated by 0)
    support = torch.zeros(n_out * n_in, dtype=torch.bool)
    support[torch.randperm(n_out * n_in)[: n_out * n_in // 10]] = True
    support = support.view(n_out, n_in)
    truth = torch.where(support, torch.sign(model.weight.detach()) * 1.5, 0.0)
    x_all = torch.randn(2048, n_in)
    y_all = x_all @ truth.T + 0.01 * torch.randn(2048, n_out)

    thetas = rewire(model)
    opt = GradientRewiring(thetas, lr=2e-2, alpha=0.1, target_sparsity=0.9)
    with torch.no_grad():
        initial_loss = nn.functional.mse_loss(model(x_all), y_all).item()
    reached = None
    for step in range(1, 401):
        idx = torch.randint(0, len(x_all), (64,))
        loss = nn.functional.mse_loss(model(x_all[idx]), y_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if reached is None and weight_sparsity(model)["total"] >= 0.9:
            reached = step
    assert reached is not None and reached <= 300, (reached, weight_sparsity(model))
    assert weight_sparsity(model)["total"] >= 0.9
    with torch.no_grad():
        final_loss = nn.functional.mse_loss(model(x_all), y_all).item()
    assert final_loss < 0.01 * initial_loss
    # what survived is the true support
    assert torch.equal(model.weight != 0, support)


def test_more_alpha_prunes_more():
    """Without the prior, Adam noise alone prunes little; the prior drives sparsity up."""
    def run(alpha):
        torch.manual_seed(1)
        model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
        opt = GradientRewiring(rewire(model), lr=1e-2, alpha=alpha)
        x, y = torch.randn(256, 16), torch.randn(256, 4)
        for _ in range(200):
            loss = nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return weight_sparsity(model)["total"]

    weak, strong = run(1e-6), run(1.0)
    assert weak < 0.5
    assert strong > weak + 0.3


def test_cap_at_target_holds_sparsity_where_the_prior_would_overshoot():
    """A strong prior keeps pruning past the target; with ``cap_at_target`` every tensor stops
    near the target while still learning."""
    def run(cap):
        torch.manual_seed(3)
        model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
        opt = GradientRewiring(rewire(model), lr=1e-2, alpha=1.0, target_sparsity=0.6,
                               cap_at_target=cap)
        x, y = torch.randn(256, 16), torch.randn(256, 4)
        for _ in range(300):
            loss = nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return weight_sparsity(model)

    free, capped = run(False), run(True)
    assert free["total"] > 0.75                   # overshoots a 0.6 target
    for name, value in capped.items():
        assert 0.55 <= value <= 0.68, (name, capped)


# ---------------------------------------------------------------- ungated gradient, regrowth


def test_gradient_reaching_theta_is_ungated():
    torch.manual_seed(2)
    layer = nn.Linear(6, 3)
    rewire(layer)
    theta, sign = _theta(layer), _sign(layer)
    with torch.no_grad():
        theta[:, :3] = -0.2  # prune half the connections
    x, r = torch.randn(8, 6), torch.randn(8, 3)
    (layer(x) * r).sum().backward()
    dl_dw = r.T @ x  # d/dw of sum(r * (x w^T + b))
    assert torch.all(layer.weight[:, :3] == 0)
    assert torch.allclose(theta.grad, sign * dl_dw)
    assert torch.all(theta.grad[:, :3] != 0)
    assert torch.allclose(_theta(layer, "bias").grad, _sign(layer, "bias") * r.sum(0))


def test_pruned_weight_regrows_when_the_gradient_says_so():
    model = nn.Linear(6, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.5, -0.5, 0.3, -0.3, 0.2, -0.2]]))
    thetas = rewire(model)
    with torch.no_grad():
        _theta(model).fill_(-0.05)  # all pruned
    assert torch.all(model.weight == 0)
    # entries 0, 1 are wanted with their own sign (regrow); 2, 3 are not wanted (stay pruned);
    # 4, 5 are wanted with the opposite sign, which a rewired weight cannot take (stay pruned)
    target = torch.tensor([[1.0, -1.0, 0.0, 0.0, -1.0, 1.0]])
    opt = GradientRewiring(thetas, lr=1e-2, alpha=1e-3)
    for _ in range(300):
        loss = ((model.weight - target) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    theta, w = _theta(model).detach()[0], model.weight.detach()[0]
    assert torch.all(theta[:2] > 0)
    assert torch.allclose(w[:2], target[0, :2], atol=0.05)
    assert torch.all(theta[2:] < 0)
    assert torch.all(w[2:] == 0)


# ---------------------------------------------------------------- the optimiser's update


def test_prior_enters_after_normalisation_as_a_fixed_drift():
    """With a zero loss gradient the Adam term is 0 and theta moves by exactly
    lr * alpha / (1 - beta1^t) per step; ordinary parameters do not move at all."""
    layer = nn.Linear(3, 2, bias=False)
    thetas = rewire(layer)
    plain = nn.Parameter(torch.tensor([0.7, -0.4]))
    lr, alpha, beta1 = 1e-2, 0.5, 0.9
    opt = GradientRewiring([{"params": thetas}, {"params": [plain]}], lr=lr, alpha=alpha,
                           target_sparsity=0.9, betas=(beta1, 0.999))
    assert [g["rewired"] for g in opt.param_groups] == [True, False]
    expected = thetas[0].detach().clone()
    for t in range(1, 6):
        thetas[0].grad = torch.zeros_like(thetas[0])
        plain.grad = torch.zeros_like(plain)
        opt.step()
        # mu = ln(0.2) / 0.5 = -3.2, below every theta here, so the sign term is +1
        expected -= lr * alpha / (1 - beta1 ** t)
        assert torch.allclose(thetas[0].detach(), expected, atol=1e-7)
    assert torch.equal(plain.detach(), torch.tensor([0.7, -0.4]))


def test_prior_pulls_theta_up_below_its_centre():
    alpha, p = 10.0, 0.9
    mu = math.log(2 * (1 - p)) / alpha  # about -0.161
    layer = nn.Linear(2, 1, bias=False)
    thetas = rewire(layer)
    with torch.no_grad():
        thetas[0].copy_(torch.tensor([[-0.5, 0.1]]))
    opt = GradientRewiring(thetas, lr=1e-3, alpha=alpha, target_sparsity=p)
    thetas[0].grad = torch.zeros_like(thetas[0])
    before = thetas[0].detach().clone()
    opt.step()
    moved = (thetas[0].detach() - before)[0]
    assert before[0, 0] < mu < before[0, 1]
    assert moved[0] > 0 > moved[1]


def test_decoupled_weight_decay():
    layer = nn.Linear(2, 1, bias=False)
    thetas = rewire(layer)
    with torch.no_grad():
        thetas[0].copy_(torch.tensor([[0.8, -0.6]]))
    lr, wd, alpha = 1e-2, 0.5, 1e-3
    opt = GradientRewiring(thetas, lr=lr, alpha=alpha, weight_decay=wd)
    thetas[0].grad = torch.zeros_like(thetas[0])
    opt.step()
    expected = torch.tensor([[0.8, -0.6]]) * (1 - lr * wd) - lr * alpha / 0.1
    assert torch.allclose(thetas[0].detach(), expected, atol=1e-7)


def test_param_group_flags():
    layer = nn.Linear(2, 2)
    thetas = rewire(layer)
    scale = nn.Parameter(torch.ones(1))
    with pytest.raises(ValueError, match=r"^a param group mixes rewired thetas and ordinary "
                                         r"parameters; put them in separate groups or set "
                                         r"'rewired' explicitly$"):
        GradientRewiring(thetas + [scale])
    opt = GradientRewiring([{"params": thetas + [scale], "rewired": False},
                            {"params": [nn.Parameter(torch.ones(1))], "rewired": True}])
    assert [g["rewired"] for g in opt.param_groups] == [False, True]


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"target_sparsity": 0.3}, r"^target_sparsity must be in \[0\.5, 1\), not 0\.3$"),
    ({"target_sparsity": 1.0}, r"^target_sparsity must be in \[0\.5, 1\), not 1\.0$"),
    ({"target_sparsity": float("nan")}, r"^target_sparsity must be in \[0\.5, 1\), not nan$"),
    ({"alpha": 0.0}, r"^alpha must be > 0, not 0\.0$"),
    ({"alpha": -1e-3}, r"^alpha must be > 0, not -0\.001$"),
    ({"lr": -1.0}, r"^lr must be >= 0, not -1\.0$"),
    ({"eps": -1e-8}, r"^eps must be >= 0, not -1e-08$"),
    ({"weight_decay": -0.1}, r"^weight_decay must be >= 0, not -0\.1$"),
    ({"betas": (1.0, 0.999)}, r"^betas must be two numbers in \[0, 1\), not \(1\.0, 0\.999\)$"),
])
def test_optimiser_validation(kwargs, message):
    thetas = rewire(nn.Linear(2, 2))
    with pytest.raises(ValueError, match=message):
        GradientRewiring(thetas, **kwargs)


def test_per_group_override_is_validated():
    thetas = rewire(nn.Linear(2, 2))
    opt = GradientRewiring(thetas[:1])
    with pytest.raises(ValueError, match=r"^target_sparsity must be in \[0\.5, 1\), not 0\.2$"):
        opt.add_param_group({"params": thetas[1:], "target_sparsity": 0.2})
    assert len(opt.param_groups) == 1


def test_rewire_twice_raises_and_leaves_model_alone():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    rewire(model)
    with pytest.raises(ValueError, match=r"^layer '0' is already rewired$"):
        rewire(model)
    assert len(model[0].parametrizations.weight) == 1


def test_rewire_after_another_parametrisation_raises():
    class Double(nn.Module):
        def forward(self, x):
            return 2 * x

    model = nn.Sequential(nn.Linear(2, 2))
    parametrize.register_parametrization(model[0], "weight", Double())
    with pytest.raises(ValueError, match=r"^layer '0' already has a parametrisation on weight; "
                                         r"call rewire\(\) before registering other "
                                         r"parametrisations$"):
        rewire(model)


def test_helpers_reject_models_without_work():
    with pytest.raises(ValueError, match=r"^model has no rewired layers$"):
        unrewire(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match=r"^model has no Conv2d or Linear layers$"):
        weight_sparsity(nn.Sequential(nn.ReLU()))


# ---------------------------------------------------------------- SpikingJelly


def test_rewire_spikingjelly_multistep_keeps_output():
    pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based import functional, layer, neuron
    torch.manual_seed(3)
    net = nn.Sequential(
        layer.Conv2d(2, 4, 3, padding=1, bias=False), neuron.LIFNode(),
        layer.Conv2d(4, 4, 3, padding=1), neuron.IFNode(),
        layer.Flatten(), layer.Linear(4 * 6 * 6, 5))
    functional.set_step_mode(net, "m")
    x = (torch.rand(4, 3, 2, 6, 6) < 0.4).float()  # [T, N, C, H, W]

    def run():
        functional.reset_net(net)
        return net(x)

    before = run()
    thetas = rewire(net)
    assert len(thetas) == 5  # conv w, conv w + b, fc w + b
    assert all(isinstance(m, Rewiring) for m in net[0].parametrizations.weight)
    assert _theta(net[5]) is thetas[3]
    assert net[0].step_mode == "m" and net[5].step_mode == "m"
    after = run()
    assert after.shape == (4, 3, 5)
    assert torch.equal(before, after)  # s * relu(|w|) == w exactly
    after.sum().backward()
    assert all(t.grad is not None for t in thetas)

    opt = GradientRewiring(thetas, lr=1e-2, alpha=0.1)
    opt.step()
    assert not torch.equal(run(), before)


# ---------------------------------------------------------------- sparsity, unrewire, state


def test_weight_sparsity_counts_and_unrewire_keeps_weights():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(3 * 2 * 2, 4), nn.ReLU(), nn.Linear(4, 2))
    rewire(model)
    with torch.no_grad():
        _theta(model[0]).view(-1)[:27] = -0.1  # 27 of 54
        _theta(model[0], "bias")[:] = -1.0  # biases are not counted
        _theta(model[3]).view(-1)[:3] = -0.1  # 3 of 48
        _theta(model[3]).view(-1)[3] = 0.0  # theta exactly 0 is pruned too: 4 of 48
    # a plain (never rewired) layer counts as well
    model[5] = nn.Linear(4, 2)
    with torch.no_grad():
        model[5].weight[0] = 0.0  # 4 of 8
    sparsity = weight_sparsity(model)
    assert sparsity == {"0": 0.5, "3": 4 / 48, "5": 0.5, "total": (27 + 4 + 4) / (54 + 48 + 8)}

    x = torch.randn(5, 2, 4, 4)
    weights = {k: v.detach().clone() for k, v in
               [("0.weight", model[0].weight), ("0.bias", model[0].bias),
                ("3.weight", model[3].weight), ("3.bias", model[3].bias)]}
    out = model(x)
    unrewire(model)
    assert not parametrize.is_parametrized(model[0]) and not parametrize.is_parametrized(model[3])
    state = model.state_dict()
    assert set(state) == {"0.weight", "0.bias", "3.weight", "3.bias", "5.weight", "5.bias"}
    for key, value in weights.items():
        assert torch.equal(state[key], value)
        assert isinstance(model.get_parameter(key), nn.Parameter)
    assert torch.equal(model(x), out)
    assert weight_sparsity(model) == sparsity
    # the plain weights are no longer treated as rewired
    assert GradientRewiring(model.parameters()).param_groups[0]["rewired"] is False


def test_unrewire_refuses_chained_parametrisations():
    class Double(nn.Module):
        def forward(self, x):
            return 2 * x

    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    rewire(model)
    parametrize.register_parametrization(model[1], "bias", Double())
    with pytest.raises(ValueError, match=r"^bias of layer '1' has 1 other parametrisation\(s\) "
                                         r"besides the rewiring; remove them first$"):
        unrewire(model)
    assert parametrize.is_parametrized(model[0], "weight")  # nothing was removed


def test_include_bias_false_and_state_dict_round_trip():
    torch.manual_seed(5)
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    thetas = rewire(a, include_bias=False)
    assert len(thetas) == 1 and not parametrize.is_parametrized(a, "bias")
    with torch.no_grad():
        a.weight = -a.weight  # assignment goes through right_inverse: theta = s * w
    assert torch.all(_theta(a) < 0) and torch.all(a.weight == 0)  # a flipped sign is pruned
    with torch.no_grad():
        thetas[0].copy_(torch.randn(3, 4))
    rewire(b, include_bias=False)
    b.load_state_dict(a.state_dict())  # the frozen sign travels with the state
    assert torch.equal(a.weight, b.weight)
