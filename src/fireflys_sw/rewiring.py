r"""Gradient-rewiring pruning (Chen et al., IJCAI 2021), as used by FireFly-S.

Every rewired tensor (the ``weight`` and, optionally, the ``bias`` of each convolution and
fully connected layer) is re-expressed through a hidden parameter :math:`\theta` and a sign
:math:`s` frozen at the sign of the initial weight:

.. math::

    w = s \odot \operatorname{ReLU}(\theta), \qquad
    s = \begin{cases} -1 & w_0 < 0 \\ +1 & w_0 \ge 0 \end{cases}, \qquad
    \theta_0 = |w_0| .

A connection with :math:`\theta \le 0` is pruned (:math:`w = 0`, exactly), and because the
gradient reaching :math:`\theta` is *not* gated by the ReLU,

.. math::

    \frac{\partial L}{\partial \theta} := s \odot \frac{\partial L}{\partial w},

a pruned connection whose loss gradient pushes it away from zero (in the direction of its sign)
keeps climbing and regrows once :math:`\theta > 0`. A connection can never change sign: a loss
gradient that wants to cross zero drives :math:`\theta` negative, i.e. prunes it.

Pruning pressure comes from a Laplace prior on :math:`\theta`,

.. math::

    p(\theta) = \frac{\alpha}{2} e^{-\alpha |\theta - \mu|}, \qquad
    \mu = \frac{\ln\bigl(2 (1 - p)\bigr)}{\alpha} \le 0 ,

whose centre :math:`\mu` is chosen so that :math:`P(\theta < 0) = p`, the target sparsity
(:math:`p \in [0.5, 1)`). Its negative log-gradient :math:`\alpha \operatorname{sign}(\theta - \mu)`
is added to the update by :class:`GradientRewiring` (see there for how it enters Adam).

Pieces:

* :class:`Rewiring` -- the :mod:`torch.nn.utils.parametrize` parametrisation
  :math:`\theta \mapsto s \odot \operatorname{ReLU}(\theta)` with the ungated backward;
* :func:`rewire` / :func:`unrewire` -- register / remove it on every ``nn.Conv2d`` and
  ``nn.Linear`` (SpikingJelly's ``activation_based.layer.Conv2d``/``Linear`` subclass these);
* :class:`GradientRewiring` -- Adam(W) on :math:`\theta` plus the prior;
* :func:`weight_sparsity` -- the fraction of exactly-zero weights per layer and in total.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.utils import parametrize

__all__ = ["GradientRewiring", "Rewiring", "rewire", "unrewire", "weight_sparsity",
           "SparsitySchedule", "layer_targets"]

logger = logging.getLogger(__name__)

#: Attribute set (to ``True``) on every theta parameter that :func:`rewire` returns, so that
#: :class:`GradientRewiring` can tell rewired groups from ordinary ones without being told.
REWIRED_ATTR = "_fireflys_rewired"

#: Layer types whose ``weight`` (and ``bias``) :func:`rewire` parametrises.
REWIRED_LAYERS: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear)


class _SignedReLU(torch.autograd.Function):
    r"""Forward :math:`s \odot \operatorname{ReLU}(\theta)`; backward :math:`g \mapsto s \odot g`.

    The backward deliberately ignores the ReLU's zero derivative for :math:`\theta < 0`: that is
    what lets pruned connections regrow (the "straight-through" gradient of the paper).
    """

    @staticmethod
    def forward(ctx, theta: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(sign)
        return sign * theta.clamp(min=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (sign,) = ctx.saved_tensors
        return grad * sign, None


def _sign_of(weight: torch.Tensor) -> torch.Tensor:
    """``sign(weight)`` with 0 mapped to +1 (a zero weight must still have a direction to grow)."""
    return torch.where(weight < 0, -1.0, 1.0).to(dtype=weight.dtype, device=weight.device)


class Rewiring(nn.Module):
    r"""Parametrisation :math:`w = s \odot \operatorname{ReLU}(\theta)` with a frozen sign.

    Register it with :func:`torch.nn.utils.parametrize.register_parametrization` (or, for a whole
    model, with :func:`rewire`); the parameter that the optimiser then sees,
    ``module.parametrizations.<name>.original``, is :math:`\theta`.

    Parameters
    ----------
    weight : torch.Tensor
        The initial weight :math:`w_0`; its sign (0 counted as +1) becomes the frozen sign
        :math:`s`, stored in the persistent buffer ``sign`` (so it is saved in ``state_dict``
        and follows ``.to(device)``).

    Notes
    -----
    The backward pass gives :math:`\partial L / \partial \theta = s \odot \partial L / \partial w`
    for every element, including pruned ones (:math:`\theta < 0`).

    :meth:`right_inverse` maps a weight to :math:`\theta = s \odot w`. For the initial weight
    this is :math:`|w_0|`; assigning a weight whose entries disagree with the frozen sign gives
    those entries :math:`\theta < 0`, i.e. prunes them -- zero being the closest weight that
    the frozen sign can represent.
    """

    sign: torch.Tensor

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.register_buffer("sign", _sign_of(weight.detach()))

    def forward(self, theta: torch.Tensor) -> torch.Tensor:
        return _SignedReLU.apply(theta, self.sign)

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        return self.sign * weight


def _rewired_names(module: nn.Module) -> list[str]:
    """Names of ``module``'s tensors whose parametrisation chain contains a :class:`Rewiring`."""
    if not parametrize.is_parametrized(module):
        return []
    return [name for name, chain in module.parametrizations.items()
            if any(isinstance(p, Rewiring) for p in chain)]


def _layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, REWIRED_LAYERS)]


def _label(name: str) -> str:
    return repr(name) if name else "<root>"


def rewire(model: nn.Module, *, include_bias: bool = True) -> list[nn.Parameter]:
    r"""Rewire every ``nn.Conv2d`` / ``nn.Linear`` of ``model`` in place.

    Registers :class:`Rewiring` on each layer's ``weight`` (and ``bias``, when present and
    ``include_bias``), with :math:`\theta_0 = |w_0|` and :math:`s = \operatorname{sign}(w_0)`
    (0 counted as +1), so the model computes exactly what it computed before.

    Parameters
    ----------
    model : torch.nn.Module
        The network; SpikingJelly ``activation_based.layer.Conv2d`` / ``Linear`` are included
        (they subclass the torch layers), in either step mode.
    include_bias : bool, default True
        Rewire the biases too. A rewired bias keeps the sign of its initial value forever; a
        bias initialised to 0 gets :math:`s = +1` and can only be non-negative.

    Returns
    -------
    list of torch.nn.Parameter
        The :math:`\theta` parameters, in module order (weight before bias), to hand to
        :class:`GradientRewiring`. Each is tagged so that a parameter group built from them is
        treated as rewired by default.

    Raises
    ------
    ValueError
        If a layer's tensor is already parametrised (rewiring twice, or rewiring after some
        other parametrisation -- e.g. a quantiser -- was registered; rewire first, because the
        chain is applied in registration order and theta must be the raw parameter).
    """
    layers = _layers(model)
    # check everything before changing anything, so that a failure leaves the model untouched
    for name, module in layers:
        if _rewired_names(module):
            raise ValueError(f"layer {_label(name)} is already rewired")
        if parametrize.is_parametrized(module):
            tensors = ", ".join(module.parametrizations.keys())
            raise ValueError(f"layer {_label(name)} already has a parametrisation on {tensors}; "
                             "call rewire() before registering other parametrisations")
    thetas: list[nn.Parameter] = []
    count = 0
    for name, module in layers:
        tensor_names = ["weight"]
        if include_bias and module.bias is not None:
            tensor_names.append("bias")
        for tensor_name in tensor_names:
            weight = getattr(module, tensor_name)
            parametrize.register_parametrization(module, tensor_name, Rewiring(weight))
            theta = getattr(module.parametrizations, tensor_name).original
            setattr(theta, REWIRED_ATTR, True)
            thetas.append(theta)
            count += theta.numel()
    logger.info("rewired %d tensors in %d layers (%d parameters)", len(thetas), len(layers), count)
    return thetas


def unrewire(model: nn.Module) -> None:
    r"""Remove the rewiring, leaving plain weights :math:`w = s \odot \operatorname{ReLU}(\theta)`.

    Pruned connections become exact zeros of an ordinary ``nn.Parameter``; use it before export
    or to compare with an unpruned baseline. (Torch keeps the parameter object, now holding
    :math:`w`, and this clears its rewired tag; an existing :class:`GradientRewiring` still
    treats its group as rewired, so build a new optimiser to train further.)

    Raises
    ------
    ValueError
        If no layer is rewired, or if a rewired tensor has further parametrisations chained
        after the :class:`Rewiring` (removing them would bake them into the weight too; remove
        them first). Nothing is changed when it raises.
    """
    todo = [(name, module, tensor_name) for name, module in model.named_modules()
            for tensor_name in _rewired_names(module)]
    if not todo:
        raise ValueError("model has no rewired layers")
    for name, module, tensor_name in todo:
        chain = getattr(module.parametrizations, tensor_name)
        if len(chain) != 1:
            raise ValueError(f"{tensor_name} of layer {_label(name)} has {len(chain) - 1} "
                             "other parametrisation(s) besides the rewiring; remove them first")
    for name, module, tensor_name in todo:
        parametrize.remove_parametrizations(module, tensor_name, leave_parametrized=True)
        weight = getattr(module, tensor_name)
        if hasattr(weight, REWIRED_ATTR):
            delattr(weight, REWIRED_ATTR)
    logger.info("unrewired %d tensors", len(todo))


@torch.no_grad()
def weight_sparsity(model: nn.Module) -> dict[str, float]:
    r"""Fraction of exactly-zero weights of every ``nn.Conv2d`` / ``nn.Linear`` in ``model``.

    The effective weight is counted (:math:`s \odot \operatorname{ReLU}(\theta)` for rewired
    layers, so a pruned connection counts as zero), rewired or not.

    Returns
    -------
    dict of str to float
        One entry per layer, keyed by its qualified module name (``""`` for a model that is
        itself a layer), plus ``"total"``: zeros over all those weights together. Biases are
        not counted.

    Raises
    ------
    ValueError
        If the model has no ``nn.Conv2d`` / ``nn.Linear`` layer.
    """
    layers = _layers(model)
    if not layers:
        raise ValueError("model has no Conv2d or Linear layers")
    result: dict[str, float] = {}
    zeros = total = 0
    for name, module in layers:
        weight = module.weight
        n_zero = int((weight == 0).sum())
        result[name] = n_zero / weight.numel()
        zeros += n_zero
        total += weight.numel()
    result["total"] = zeros / total
    return result


def _check_hyperparameters(group: dict) -> None:
    """Raise ``ValueError`` naming the first bad hyperparameter of a (merged) param group."""
    lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
    alpha, target_sparsity, betas = group["alpha"], group["target_sparsity"], group["betas"]
    # written as "not (ok)" so that NaN is rejected too
    if not lr >= 0:
        raise ValueError(f"lr must be >= 0, not {lr}")
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, not {eps}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, not {weight_decay}")
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise ValueError(f"betas must be two numbers in [0, 1), not {tuple(betas)}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, not {alpha}")
    if not 0.5 <= target_sparsity < 1:
        raise ValueError(f"target_sparsity must be in [0.5, 1), not {target_sparsity}")


class GradientRewiring(torch.optim.Optimizer):
    r"""Adam with decoupled weight decay on :math:`\theta`, plus the gradient-rewiring prior.

    For each parameter with gradient :math:`g_t` (for a rewired :math:`\theta` this is already
    :math:`s \odot \partial L / \partial w`, supplied by :class:`Rewiring`'s backward), step
    :math:`t` does

    .. math::

        d_t &= \operatorname{sign}(\theta_{t-1} - \mu), \qquad
        \mu = \ln\bigl(2 (1 - p)\bigr) / \alpha \\
        \theta' &= (1 - \eta \lambda)\, \theta_{t-1} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2 \\
        \theta_t &= \theta' - \frac{\eta}{1 - \beta_1^t} \left(
            \frac{m_t}{\sqrt{v_t / (1 - \beta_2^t)} + \epsilon} + \alpha\, d_t \right)

    with :math:`\eta` the learning rate, :math:`\lambda` the weight decay and :math:`p` the
    target sparsity. Groups that are not rewired (e.g. LSQ step sizes, batch-norm affine
    parameters) get the same update without the :math:`\alpha d_t` term, i.e. plain AdamW.

    **Where the prior enters.** As in the reference implementation (``gradrewire.py`` of
    Yanqi-Chen/Gradient-Rewiring), the prior term is *not* fed through the Adam moments: it is
    added after the normalisation, scaled by the same step size :math:`\eta / (1 - \beta_1^t)`.
    This keeps it a fixed-rate drift of :math:`\eta\alpha` per step (the bias-correction factor
    only enlarges the first few dozen steps, worth about 27 extra steps in total at
    :math:`\beta_1 = 0.9`), independent of the gradient scale. Fed through the moments instead,
    it would dominate :math:`v_t` wherever :math:`|g| \ll \alpha` and be renormalised into
    full-size :math:`\pm\eta` steps, which would make :math:`\alpha` meaningless as a rate.
    The decoupled weight decay replaces the reference's L2 term on :math:`w` (AdamW style); it
    shrinks :math:`\theta` toward 0 from either side.

    **The size of alpha.** A normalised Adam step moves a parameter by up to :math:`\eta`, the
    prior by :math:`\eta\alpha`, so :math:`\alpha` is the prior's strength relative to a
    consistent loss gradient. A connection without a useful gradient reaches :math:`\theta = 0`
    (is pruned) after roughly :math:`\theta_0 / (\eta \alpha)` steps (more where the loss
    gradient resists). For
    :math:`|\theta| \ll |\mu|` -- the usual case unless :math:`\alpha` is of order
    :math:`1/|\theta|` -- the sign term is +1 everywhere and the prior is a constant drift toward
    (and below) zero; the target sparsity only changes :math:`\mu`, and thus matters only for
    large :math:`\alpha`. The sparsity actually reached is set by the balance between that drift
    and the loss gradients, so check it with :func:`weight_sparsity` and tune :math:`\alpha`.

    The default :math:`\alpha = 0.1` was chosen by measurement: training from scratch with
    Adam at :math:`\eta = 10^{-3}`, batch 64, target 0.9, on scikit-learn's 8x8 digits (1400
    training images, so ~22 steps an epoch; at MNIST/CIFAR sizes the same step counts are a few
    epochs), the weight sparsity reached was

    ==========================================  =====  =====  =====  =====
    :math:`\alpha`                               0.01   0.03   0.05   0.1
    ==========================================  =====  =====  =====  =====
    LIF SNN (2 conv + 2 FC, T=4), 3000 steps     0.52   0.67   0.75   0.85
    MLP 64-512-256-10, 4000 steps                0.58   0.78          0.95
    ==========================================  =====  =====  =====  =====

    with test accuracy 0.97-0.99 in every run and no trend with :math:`\alpha`. Adam noise
    alone (:math:`\alpha = 10^{-6}`) prunes about 25 % of the MLP. So 0.1 reaches a 0.9 target
    within a few thousand steps while the prior is still only a tenth of a consistent
    gradient's step, so connections that the loss needs survive. The reference's default
    :math:`10^{-3}` (with :math:`\eta = 10^{-4}`) is meant for 512-2048 epochs; values around
    :math:`10^{-6}` have no measurable effect. Lower :math:`\alpha` if accuracy
    suffers, raise it (or train longer) if the sparsity falls short.

    Parameters
    ----------
    params : iterable
        Parameters or param groups. A group may set ``rewired`` explicitly; otherwise it is
        rewired exactly when all its parameters come from :func:`rewire` (a group that mixes the
        two without saying is an error). Every hyperparameter below can be overridden per group.
    lr : float, default 1e-3
        Learning rate :math:`\eta`.
    alpha : float, default 0.1
        Strength :math:`\alpha > 0` of the Laplace prior.
    target_sparsity : float, default 0.9
        :math:`p \in [0.5, 1)`, sets the prior's centre :math:`\mu`.
    betas : tuple of float, default (0.9, 0.999)
        Adam's moment decay rates.
    eps : float, default 1e-8
        Adam's denominator guard.
    weight_decay : float, default 0.0
        Decoupled weight decay :math:`\lambda`.
    cap_at_target : bool, default False
        Hold each tensor at the target: skip the prior's push on a tensor whose sparsity
        (fraction of :math:`\theta \le 0`) already reaches ``target_sparsity``, so the
        constant pressure of the prior does not drive it past the target (with a strong
        :math:`\alpha` or many steps it otherwise keeps pruning). The loss gradient still
        rewires; the tensor then hovers at the target instead of overshooting it.

    Raises
    ------
    ValueError
        For a hyperparameter out of range (the message names it and its value), or a group that
        mixes rewired and ordinary parameters without an explicit ``rewired`` flag.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, *, alpha: float = 0.1,
                 target_sparsity: float = 0.9, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, cap_at_target: bool = False):
        defaults = dict(lr=lr, alpha=alpha, target_sparsity=target_sparsity, betas=tuple(betas),
                        eps=eps, weight_decay=weight_decay, rewired=None,
                        cap_at_target=bool(cap_at_target), prior="all", sgd=False)
        _check_hyperparameters(defaults)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        # validate per-group overrides before the group is added, so a bad one leaves no trace
        _check_hyperparameters({**self.defaults, **{k: v for k, v in param_group.items()
                                                    if k != "params"}})
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        if group["rewired"] is None:
            tagged = [getattr(p, REWIRED_ATTR, False) for p in group["params"]]
            if any(tagged) and not all(tagged):
                self.param_groups.pop()
                raise ValueError("a param group mixes rewired thetas and ordinary parameters; "
                                 "put them in separate groups or set 'rewired' explicitly")
            group["rewired"] = all(tagged)
        group["rewired"] = bool(group["rewired"])

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimisation step (see the class docstring for the update).

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, alpha, weight_decay, eps = (group["lr"], group["alpha"], group["weight_decay"],
                                            group["eps"])
            beta1, beta2 = group["betas"]
            rewired = group["rewired"]
            if group.get("sgd"):
                self._sgd_step(group)
                continue
            mu = math.log(2.0 * (1.0 - group["target_sparsity"])) / alpha
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise RuntimeError("GradientRewiring does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                step = state["step"]
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                # the prior's direction is taken at the pre-step theta, as in the reference
                direction = torch.sign(p - mu) if rewired else None
                if direction is not None and group.get("prior") == "pruned":
                    # only pruned connections sink: a regrowing one must beat the prior
                    direction = direction * (p <= 0)
                if rewired and group["cap_at_target"] and \
                        float((p <= 0).float().mean()) >= group["target_sparsity"]:
                    direction = None
                if weight_decay != 0:
                    p.mul_(1.0 - lr * weight_decay)
                exp_avg.lerp_(grad, 1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                step_size = lr / (1.0 - beta1 ** step)
                denom = (exp_avg_sq.sqrt() / math.sqrt(1.0 - beta2 ** step)).add_(eps)
                p.addcdiv_(exp_avg, denom, value=-step_size)
                if direction is not None:
                    # after the normalisation, not through the moments (see class docstring)
                    p.add_(direction, alpha=-alpha * step_size)
        return loss

    @torch.no_grad()
    def _sgd_step(self, group: dict) -> None:
        """Plain SGD with momentum ``betas[0]`` for a group that sets ``sgd=True``: the step
        follows the gradient's size, so a gradient scale (LSQ's ``1/sqrt(N Q_P)`` on the step
        sizes) acts as intended; Adam's normalisation would cancel it."""
        lr, momentum = group["lr"], group["betas"][0]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if "momentum" not in state:
                state["momentum"] = torch.zeros_like(p)
            state["momentum"].mul_(momentum).add_(p.grad)
            if group["weight_decay"]:
                p.mul_(1.0 - lr * group["weight_decay"])
            p.add_(state["momentum"], alpha=-lr)


def layer_targets(sizes: list[tuple[int, ...]], sparsity: float, *, allocation: str = "sqrt-erk",
                  readout_sparsity: float | None = None) -> list[float]:
    r"""Per-layer target sparsities whose weight-count-weighted mean is ``sparsity``.

    ``sizes`` are the weight shapes (``(co, ci, kh, kw)`` or ``(co, ci)``), the last one the
    readout. With :math:`r_l = (c_o + c_i + k_h + k_w) / (c_o c_i k_h k_w)` (Erdos-Renyi-kernel,
    Evci et al. 2020), layer :math:`l` keeps a density proportional to :math:`r_l^{\,e}`,
    capped at dense, scaled so that the total is met. ``allocation``:

    * ``"erk"`` (:math:`e = 1`): small layers keep much more; on SCNN5 at 0.9 the readout keeps
      74 % of its weights (two thirds of all survivors) while the big convs keep 3-4 %;
    * ``"sqrt-erk"`` (:math:`e = 1/2`, the default): between the two; on SCNN5 at 0.9 the first
      conv keeps half, the others 18, 12, 8 and 6.6 %, the readout 35 %;
    * ``"uniform"`` (:math:`e = 0`): every layer the same (the first conv too: 7 of its 72).

    ``readout_sparsity`` fixes the readout's target; the others share the rest of the budget.
    """
    counts = [math.prod(s) for s in sizes]
    total = sum(counts)
    keep = (1.0 - sparsity) * total
    fixed: dict[int, float] = {}
    if readout_sparsity is not None:
        fixed[len(sizes) - 1] = 1.0 - readout_sparsity
    exponents = {"erk": 1.0, "sqrt-erk": 0.5, "uniform": 0.0}
    if allocation not in exponents:
        raise ValueError(f"allocation must be one of {', '.join(exponents)}, not {allocation!r}")
    raw = [(sum(s) / math.prod(s)) ** exponents[allocation] for s in sizes]
    # water-filling: scale the free layers' raw densities to the budget, capping at dense
    for _ in range(len(sizes) + 1):
        budget = keep - sum(fixed[i] * counts[i] for i in fixed)
        free = [i for i in range(len(sizes)) if i not in fixed]
        weight = sum(raw[i] * counts[i] for i in free)
        eps = budget / weight if weight > 0 else 0.0
        capped = [i for i in free if eps * raw[i] > 1.0]
        if not capped:
            break
        for i in capped:
            fixed[i] = 1.0
    density = [fixed.get(i, min(1.0, max(0.0, eps * raw[i]))) for i in range(len(sizes))]
    return [1.0 - d for d in density]


class SparsitySchedule:
    r"""Drives rewired tensors to their target sparsities: a ramp, then a fixed mask.

    During the ramp (progress :math:`t` from 0 to 1) tensor :math:`l` must have at least
    :math:`p_l(t) = p_l (1 - (1 - t)^3)` of its :math:`	heta \le 0` (Zhu & Gupta's cubic
    schedule): after each optimiser step, :meth:`enforce` prunes the smallest positive
    :math:`	heta` (set to 0) until it has. Pruned connections keep their rewiring gradient, so a
    connection that the loss wants back climbs above zero and re-enters; the schedule then
    prunes the smallest survivor instead. At the end of the ramp (:meth:`fix`) the set of
    survivors freezes: pruned :math:`	heta` are held at :math:`\le 0` and the rest fine-tune
    (a survivor that the loss drives to zero is pruned too, so sparsity can only rise).

    Parameters
    ----------
    thetas : list of torch.Tensor
        The rewired :math:`	heta` (from :func:`rewire`), in the same order as ``targets``.
    targets : list of float
        Final sparsity per tensor (e.g. from :func:`layer_targets`).
    """

    def __init__(self, thetas: list[torch.Tensor], targets: list[float]):
        if len(thetas) != len(targets):
            raise ValueError(f"{len(thetas)} tensors but {len(targets)} targets")
        self.thetas, self.targets = list(thetas), [float(t) for t in targets]
        self.masks: list[torch.Tensor] | None = None

    @staticmethod
    def ramp(progress: float) -> float:
        t = min(max(progress, 0.0), 1.0)
        return 1.0 - (1.0 - t) ** 3

    @torch.no_grad()
    def enforce(self, progress: float) -> None:
        """Hold every tensor at (at least) its scheduled sparsity at ``progress`` in [0, 1];
        after :meth:`fix`, hold the fixed mask."""
        if self.masks is not None:
            for theta, mask in zip(self.thetas, self.masks):
                theta.masked_fill_(~mask & (theta > 0), 0.0)
            return
        share = self.ramp(progress)
        for theta, target in zip(self.thetas, self.targets):
            flat = theta.view(-1)
            k = int(math.floor(target * share * flat.numel() + 1e-9))
            if k <= 0 or int((flat <= 0).sum()) >= k:
                continue
            cut = flat.kthvalue(k).values
            flat.masked_fill_((flat <= cut) & (flat > 0), 0.0)

    @torch.no_grad()
    def fix(self) -> None:
        """Prune to the final targets and freeze the mask."""
        self.enforce(1.0)
        self.masks = [theta > 0 for theta in self.thetas]

    def state_dict(self) -> dict:
        return {"masks": None if self.masks is None else [m.clone() for m in self.masks],
                "targets": list(self.targets)}

    def load_state_dict(self, state: dict) -> None:
        self.masks = None if state.get("masks") is None else [m.clone() for m in state["masks"]]
