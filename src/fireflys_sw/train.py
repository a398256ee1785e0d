"""Compression-aware training (FireFly-S Sec. III): gradient-rewiring pruning plus
per-channel LSQ, then export of the integer artifact whose golden-model accuracy is reported.

``train(TrainConfig(...))`` is the API; ``fireflys train`` wraps it. Each epoch writes a
checkpoint (``checkpoint.pt``) and a line of ``log.jsonl``; ``resume=True`` continues from the
checkpoint. At the end the quantised model is exported (silent channels removed) to
``<out>/<name>.npz``, evaluated with the golden model on the test set, and the curves are
plotted to ``curves.png`` and ``sparsity.png``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .argtypes import plain_name_problem
from .artifact import InputEncoding, save_artifact
from .datasets import load_dataset
from .errors import FireflysError
from .export import export_artifact
from .golden import run_golden
from .models import IntegerLIFNode, SpikingNet, build_model, fold_batchnorm
from .progress import Progress
from .rewiring import GradientRewiring, SparsitySchedule, layer_targets, rewire
from .spec import NeuronKind, PoolSpec, parse_spec

__all__ = ["TrainConfig", "train", "evaluate_model"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (saved in the checkpoint and the artifact)."""

    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    model: str = "scnn5"
    T: int = 4
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    target_sparsity: float = 0.9
    alpha: float = 0.1
    cap_sparsity: bool = False
    weight_decay: float = 0.0
    weight_bits: int = 4
    input_bits: int = 8
    neuron: str = "lif"
    leak_shift: int = 1
    dense_float: bool = False
    seed: int = 0
    out: str = "runs/train"
    name: str | None = None
    init_spike_density: float = 0.15
    init_from: str | None = None
    train_limit: int | None = None
    test_limit: int | None = None
    resume: bool = False
    batch_norm: bool = True
    val_size: int = 0
    prune_epochs: float | None = None
    allocation: str = "sqrt-erk"
    readout_sparsity: float | None = None
    prune_bias: bool = False
    scale_lr: float = 1e-5
    distributed: bool = False
    device: str = "cpu"
    distill_from: str | None = None
    distill_weight: float = 0.5
    distill_temperature: float = 4.0
    finetune_lr: float | None = None
    augment: str = "none"

    def __post_init__(self):
        # the name becomes a file name under ``out``: refused here, before anything is written,
        # however the config was made (``--name`` is checked by argparse already)
        self._check_name()

    def _check_name(self) -> None:
        if self.name is not None:
            problem = plain_name_problem(self.name)
            if problem is not None:
                raise FireflysError(f"--name {problem}")

    def validate(self) -> None:
        self._check_name()
        if not 0.5 <= self.target_sparsity < 1:
            raise FireflysError(f"--sparsity must be in [0.5, 1), not {self.target_sparsity}")
        if not 2 <= self.weight_bits <= 8:
            raise FireflysError(f"--weight-bits must be in 2..8, not {self.weight_bits}")
        for name in ("epochs", "batch_size", "T"):
            if getattr(self, name) < 1:
                raise FireflysError(f"--{name.replace('_', '-')} must be at least 1, not "
                                    f"{getattr(self, name)}")
        if self.lr <= 0:
            raise FireflysError(f"--lr must be positive, not {self.lr}")
        if self.allocation not in ("erk", "sqrt-erk", "uniform"):
            raise FireflysError(f"--allocation must be erk, sqrt-erk or uniform, not "
                                f"{self.allocation!r}")
        if self.readout_sparsity is not None and not 0 <= self.readout_sparsity < 1:
            raise FireflysError(f"--readout-sparsity must be in [0, 1), not "
                                f"{self.readout_sparsity}")
        if self.prune_epochs is not None and not 0 <= self.prune_epochs <= self.epochs:
            raise FireflysError(f"--prune-epochs must be in [0, --epochs], not "
                                f"{self.prune_epochs}")
        if self.val_size < 0:
            raise FireflysError(f"--val-size must be >= 0, not {self.val_size}")
        if not 0 <= self.distill_weight <= 1:
            raise FireflysError(f"--distill-weight must be in [0, 1], not {self.distill_weight}")
        if self.distill_temperature <= 0:
            raise FireflysError(f"--distill-temperature must be positive, not "
                                f"{self.distill_temperature}")
        if self.finetune_lr is not None and self.finetune_lr <= 0:
            raise FireflysError(f"--finetune-lr must be positive, not {self.finetune_lr}")
        if self.augment not in AUGMENTATIONS:
            raise FireflysError(f"--augment must be one of {', '.join(AUGMENTATIONS)}, not "
                                f"{self.augment!r}")
        if self.neuron not in ("lif", "if"):
            raise FireflysError(f"--neuron must be lif or if, not {self.neuron!r}")
        parse_spec(self.model)

    @property
    def ramp_epochs(self) -> float:
        """Epochs of the pruning ramp; the rest fine-tune with a fixed mask."""
        return self.prune_epochs if self.prune_epochs is not None else round(0.6 * self.epochs)


#: ``--augment``: random translations of up to ``AUGMENT_SHIFT`` pixels (zeros fill in), and
#: with ``shift-flip`` left-right mirror images too (not for digits or text).
AUGMENTATIONS = ("none", "shift", "shift-flip")
AUGMENT_SHIFT = 2


def augment_batch(xb: torch.Tensor, rng: np.random.Generator, kind: str,
                  shift: int = AUGMENT_SHIFT) -> torch.Tensor:
    """A training batch of images ``(N, C, H, W)`` with each image moved by a random whole
    number of pixels in ``[-shift, shift]`` each way (the uncovered border is zero, the image's
    background) and, for ``kind`` ``shift-flip``, each mirrored left-right with probability
    1/2; ``none`` returns the batch as it is. The draws come from ``rng`` alone, so a run is
    reproducible (and the ranks of a distributed run, seeded alike, agree)."""
    if kind == "none":
        return xb
    n, _, h, w = xb.shape
    padded = F.pad(xb, (shift, shift, shift, shift))
    dy, dx = rng.integers(0, 2 * shift + 1, size=(2, n))
    out = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    if kind == "shift-flip":
        flip = torch.from_numpy(rng.random(n) < 0.5)
        out[flip] = out[flip].flip(-1)
    return out


def _batches(x, y, batch_size, rng=None, soft=None):
    """Batches ``(x, y)`` in a shuffled (``rng``) or the stored order; with ``soft`` (one row
    per image), ``(x, y, soft)``."""
    order = rng.permutation(len(x)) if rng is not None else np.arange(len(x))
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        batch = torch.from_numpy(x[idx].astype(np.float32)), torch.from_numpy(y[idx])
        yield batch if soft is None else batch + (soft[torch.from_numpy(idx)],)


@torch.no_grad()
def evaluate_model(model: SpikingNet, x, y, batch_size: int = 256) -> tuple[float, list[float]]:
    """Accuracy and per-layer spike density of ``model`` in eval mode (bit-exact with the
    golden model for a quantised model)."""
    was = model.training
    model.eval()
    spikes, steps, hooks = {}, {}, []
    nodes = [m for m in model.layers if isinstance(m, (IntegerLIFNode,)) or
             type(m).__name__ in ("LIFNode", "IFNode")]

    def hook(index):
        def record(_module, _inputs, output):
            spikes[index] = spikes.get(index, 0.0) + float(output.sum())
            steps[index] = steps.get(index, 0) + output.numel()
        return record

    for i, node in enumerate(nodes):
        hooks.append(node.register_forward_hook(hook(i)))
    correct = 0
    for xb, yb in _batches(x, y, batch_size):
        device = next(model.parameters()).device
        correct += int((model(xb.to(device)).argmax(1).cpu() == yb).sum())
    for h in hooks:
        h.remove()
    model.train(was)
    density = [spikes[i] / steps[i] for i in range(len(nodes))] if nodes and steps else []
    return correct / max(len(x), 1), density


def _check_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise FireflysError(f"output directory {str(out)!r} is not writable ({error.strerror}); "
                            f"choose another with --out") from error


def _sparsity(model: SpikingNet) -> dict[str, float]:
    """Per-layer fraction of zero integer (or float) weights."""
    result, zeros, total = {}, 0, 0
    with torch.no_grad():
        for i, syn in enumerate(model.synapses):
            w = syn.integer_weight() if model.quantised else syn.weight
            z, n = int((w == 0).sum()), w.numel()
            result[f"layer{i}"] = z / n
            zeros, total = zeros + z, total + n
    result["total"] = zeros / total
    return result


def _lr_at(config: TrainConfig, progress: float) -> float:
    """Cosine learning rate over the whole run (``progress`` in epochs): the fixed-mask
    fine-tuning after the ramp runs at the low end of it. With ``finetune_lr`` (learning-rate
    rewinding, Renda et al. 2020) the fixed-mask phase has a cosine of its own from that rate."""
    ramp = config.ramp_epochs
    if config.finetune_lr is not None and not config.dense_float and config.epochs > ramp \
            and progress >= ramp:
        done = min((progress - ramp) / (config.epochs - ramp), 1.0)
        return config.finetune_lr * 0.5 * (1.0 + math.cos(math.pi * done))
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(progress / config.epochs, 1.0)))


def _distributed(device: str = "cpu") -> tuple[int, int]:
    """``(rank, world_size)``; initialises the process group (gloo on CPU, NCCL on CUDA) when
    started by ``torchrun`` and not yet initialised."""
    import torch.distributed as dist
    if not dist.is_available():
        raise FireflysError("--distributed needs a PyTorch build with torch.distributed")
    if not dist.is_initialized():
        import os
        if "RANK" not in os.environ:
            raise FireflysError("--distributed: start with torchrun --nproc_per_node N "
                                "-m fireflys_sw.train ... (no RANK in the environment)")
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _build(config: TrainConfig, data) -> SpikingNet:
    return build_model(parse_spec(config.model).text, T=config.T,
                       neuron_kind=NeuronKind(config.neuron), leak_shift=config.leak_shift,
                       quantised=not config.dense_float, weight_bits=config.weight_bits,
                       input_bits=config.input_bits, encoding=InputEncoding(data.encoding),
                       batch_norm=config.batch_norm and config.dense_float)


def train(config: TrainConfig, *, progress: bool = True) -> dict:
    """Run a training; return the final report (also written to ``<out>/report.json``).

    Compressed runs (not ``dense_float``): every conv/fc weight is rewired; its sparsity follows
    a cubic ramp to the per-layer target (:func:`~fireflys_sw.rewiring.layer_targets`, whose
    weighted mean is ``target_sparsity``) over ``ramp_epochs``, then the mask is fixed and the
    rest of the run fine-tunes at the low end of the cosine learning rate. LSQ step sizes are
    re-initialised (MSE-optimal on the surviving weights) at each epoch of the ramp and at its
    end, and train by SGD (their own group, ``scale_lr``), where LSQ's gradient scale acts.
    """
    config.validate()
    rank, world = _distributed(config.device) if config.distributed else (0, 1)
    main = rank == 0
    out = Path(config.out)
    if main:
        _check_out(out)
    data = load_dataset(config.dataset, config.data_dir, T=config.T)
    if data.notice and main:
        log.warning(data.notice)
    train_x, train_y = data.train_x[:config.train_limit], data.train_y[:config.train_limit]
    val_x, val_y = train_x[len(train_x) - config.val_size:], train_y[len(train_y) - config.val_size:]
    if config.val_size:
        train_x, train_y = train_x[:-config.val_size], train_y[:-config.val_size]
    test_x, test_y = data.test_x[:config.test_limit], data.test_y[:config.test_limit]
    if config.augment != "none" and train_x.ndim != 4:
        raise FireflysError(f"--augment {config.augment}: {config.dataset} is not a set of "
                            f"static images (shifts and mirrors are for images); leave it out")
    spec = parse_spec(config.model)
    if spec.input_shape != data.input_shape or spec.classes != data.classes:
        raise FireflysError(f"model {spec.text!r} takes {list(spec.input_shape)} and gives "
                            f"{spec.classes} classes, but {data.name} has "
                            f"{list(data.input_shape)} and {data.classes} classes")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = _build(config, data)
    checkpoint_path = out / "checkpoint.pt"
    resuming = config.resume and checkpoint_path.exists()
    if config.init_from and not resuming:
        _initialise_from(model, Path(config.init_from))
    elif not resuming and not (config.dense_float and config.batch_norm):
        sample = torch.from_numpy(train_x[rng.permutation(len(train_x))[:64]].astype(np.float32))
        with Progress("calibrating the initial spike density (forward passes per layer)"):
            density = model.calibrate(sample, spike_density=config.init_spike_density)
        log.info("initial spike density per layer after calibration: %s",
                 ", ".join(f"{d:.3f}" for d in density))
    teacher = _load_teacher(Path(config.distill_from)) if config.distill_from else None
    schedule = None
    if config.dense_float:
        optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                      weight_decay=config.weight_decay)
        groups_lr = [1.0]
    else:
        thetas = rewire(model, include_bias=config.prune_bias)
        theta_ids = {id(p) for p in thetas}
        scales = [p for n, p in model.named_parameters() if n.endswith(".scale")]
        scale_ids = {id(p) for p in scales}
        others = [p for p in model.parameters() if id(p) not in theta_ids | scale_ids]
        optimiser = GradientRewiring(
            [{"params": thetas, "rewired": True, "prior": "pruned"},
             {"params": others, "rewired": False},
             {"params": scales, "rewired": False, "sgd": True, "lr": config.scale_lr}],
            lr=config.lr, alpha=config.alpha, target_sparsity=config.target_sparsity,
            cap_at_target=config.cap_sparsity, weight_decay=config.weight_decay)
        groups_lr = [1.0, 1.0, config.scale_lr / config.lr]
        weights = [t for t in thetas if t.dim() > 1]
        targets = layer_targets([tuple(t.shape) for t in weights], config.target_sparsity,
                                allocation=config.allocation,
                                readout_sparsity=config.readout_sparsity)
        if config.prune_bias:
            biases = [t for t in thetas if t.dim() == 1]
            weights, targets = weights + biases, targets + [config.target_sparsity] * len(biases)
        schedule = SparsitySchedule(weights, targets)
        if main:
            log.info("pruning targets per layer: %s (ramp over %s epochs, then a fixed mask)",
                     ", ".join(f"{t:.3f}" for t in targets), config.ramp_epochs)
    history: list[dict] = []
    start_epoch = 0
    if resuming:
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        if schedule is not None and state.get("pruning"):
            schedule.load_state_dict(state["pruning"])
        rng.bit_generator.state = state["rng"]
        history, start_epoch = state["history"], state["epoch"]
        log.info("resumed from %s at epoch %d", checkpoint_path, start_epoch)
    device = torch.device(config.device)
    if device.type == "cuda" and config.distributed:
        device = torch.device("cuda", rank % torch.cuda.device_count())
    model.to(device)
    teacher_logits = None
    if teacher is not None:
        # the frozen teacher gives every image the same logits in every epoch: one pass, not one
        # per batch per epoch (a third of a distilling epoch's time)
        teacher_logits = _teacher_logits(teacher, train_x, device, progress=progress and main)
        del teacher
    if device.type != "cpu":
        # the optimiser state (on resume) follows its parameters
        optimiser.load_state_dict(optimiser.state_dict())
    net = model
    if config.distributed:
        from torch.nn.parallel import DistributedDataParallel
        net = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda"
                                      else None)
    if main:
        with (out / "config.json").open("w") as f:
            json.dump(dataclasses.asdict(config), f, indent=1)
    steps = math.ceil(len(train_x) / config.batch_size)
    for epoch in range(start_epoch, config.epochs):
        model.train()
        seen = correct = 0
        loss_sum = 0.0
        t0, c0 = time.time(), time.process_time()
        if schedule is not None and schedule.masks is None:
            if epoch >= config.ramp_epochs:
                schedule.fix()
                _init_scales(model)
                log.info("epoch %d: mask fixed at %s", epoch + 1,
                         ", ".join(f"{v:.3f}" for v in _sparsity(model).values()))
            else:
                _init_scales(model)
        bar = tqdm(_batches(train_x, train_y, config.batch_size, rng, teacher_logits),
                   disable=not (progress and main), total=steps, file=sys.stderr,
                   desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
                   # a log file gets a line every half minute, a terminal a live bar
                   mininterval=0.1 if sys.stderr.isatty() else 30.0)
        # the epoch's augmentation draws: their own generator, seeded by the epoch, so that a
        # resumed run draws what the uninterrupted one would have
        aug_rng = np.random.default_rng([config.seed, epoch, 0xA06])
        for step, (xb, yb, *soft) in enumerate(bar):
            xb = augment_batch(xb, aug_rng, config.augment)
            position = epoch + step / steps
            for group, factor in zip(optimiser.param_groups, groups_lr):
                group["lr"] = _lr_at(config, position) * factor
            if world > 1:
                # each rank takes its share of the global batch; DDP averages the gradients
                xb, yb, soft = xb[rank::world], yb[rank::world], [t[rank::world] for t in soft]
            xb, yb = xb.to(device), yb.to(device)
            score = net(xb)
            logits = model.logits(score)
            loss = F.cross_entropy(logits, yb)
            if soft:
                loss = _distilled_loss(loss, logits, soft[0].to(device), config)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            if schedule is not None:
                ramp = config.ramp_epochs
                schedule.enforce((position + 1 / steps) / ramp if ramp > 0 else 1.0)
            seen += len(yb)
            correct += int((logits.argmax(1) == yb).sum())
            loss_sum += float(loss.detach()) * len(yb)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}",
                            refresh=False)      # else every batch forces a line into a log
        train_time, cpu_time = time.time() - t0, time.process_time() - c0
        if not main:
            continue
        val_acc = evaluate_model(model, val_x, val_y)[0] if len(val_x) else None
        test_acc, density = evaluate_model(model, test_x, test_y)
        sparsity = _sparsity(model)
        entry = {"epoch": epoch + 1, "loss": loss_sum / seen, "train_accuracy": correct / seen,
                 "val_accuracy": val_acc, "test_accuracy": test_acc, "weight_sparsity": sparsity,
                 "spike_density": density, "images_per_s": seen * world / train_time,
                 "seconds": train_time, "cpu_seconds": cpu_time,
                 "lr": _lr_at(config, epoch + 1),
                 "mask_fixed": bool(schedule is not None and schedule.masks is not None)}
        history.append(entry)
        log.info("epoch %d: loss %.4f train %.4f val %s test %.4f sparsity %.4f (%.0f img/s, "
                 "%.0f s)", epoch + 1, entry["loss"], entry["train_accuracy"],
                 "-" if val_acc is None else f"{val_acc:.4f}", test_acc, sparsity["total"],
                 entry["images_per_s"], train_time)
        with (out / "log.jsonl").open("a") as f:
            f.write(json.dumps(entry) + "\n")
        torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(),
                    "pruning": schedule.state_dict() if schedule is not None else None,
                    "rng": rng.bit_generator.state, "history": history, "epoch": epoch + 1,
                    "config": dataclasses.asdict(config)}, checkpoint_path)
    if not main:
        return {}
    if schedule is not None and schedule.masks is None and config.epochs >= config.ramp_epochs:
        # a run whose ramp ends with the last epoch: the final targets hold for the export
        schedule.fix()
    report = {"config": dataclasses.asdict(config), "history": history,
              "dataset": data.name, "notice": data.notice}
    name = config.name or f"{spec.text if config.model not in ('scnn5', 'scnn7', 'scnn9') else config.model}-{data.name}"
    if not config.name:     # never the name of a shipped model
        name += f"-e{config.epochs}-s{config.seed}"
    if config.dense_float:
        report["float_test_accuracy"] = history[-1]["test_accuracy"] if history else None
        report["float_val_accuracy"] = history[-1]["val_accuracy"] if history else None
    else:
        command = "fireflys train " + " ".join(_cli_args(config))
        artifact, removed = export_artifact(model, name=name, metadata={
            "dataset": data.name, "command": command, "epochs": config.epochs,
            "target_sparsity": config.target_sparsity, "seed": config.seed})
        golden = run_golden(artifact, test_x)
        accuracy = float((golden.prediction == test_y).mean())
        artifact = artifact.with_metadata(
            test_accuracy=accuracy, test_images=int(len(test_x)),
            weight_sparsity=artifact.weight_sparsity(), silent_channels_removed=removed)
        path = save_artifact(artifact, out / f"{name}.npz")
        report.update(artifact=str(path), golden_test_accuracy=accuracy,
                      weight_sparsity=artifact.weight_sparsity(), silent_channels_removed=removed,
                      spike_density=golden.spike_density())
        log.info("exported %s: golden accuracy %.4f at weight sparsity %.4f, silent channels "
                 "removed %s", path, accuracy, artifact.weight_sparsity(), removed)
    with (out / "report.json").open("w") as f:
        json.dump(report, f, indent=1)
    plot_history(history, out, [i for i, layer in enumerate(spec.layers)
                                 if not isinstance(layer, PoolSpec)])
    return report


def _load_teacher(path: Path) -> SpikingNet:
    """The float model of a checkpoint (``--distill-from``: the float baseline's
    ``checkpoint.pt``, batch norm and all), in evaluation mode, its parameters frozen."""
    checkpoint = _load_checkpoint(path, "--distill-from")
    config = checkpoint.get("config") or {}
    if not config.get("dense_float"):
        raise FireflysError(f"--distill-from {str(path)!r}: not a float baseline's checkpoint "
                            f"(train the teacher with --float)")
    state = checkpoint["model"]
    teacher = _float_model(state, config, path, "--distill-from", "its model does not load",
                           batch_norm=any(k.endswith("running_mean") for k in state))
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    log.info("distilling from %s", path)
    return teacher


@torch.no_grad()
def _teacher_logits(teacher: SpikingNet, x, device: str | torch.device = "cpu",
                    batch_size: int = 256, *, progress: bool = True) -> torch.Tensor:
    """The teacher's logits for every image of ``x`` ``(N, classes)``, float32 on the CPU."""
    teacher.to(device)
    rows = []
    with Progress("distillation targets (the teacher's logits, once)", total=len(x),
                  unit="images") if progress else contextlib.nullcontext() as bar:
        for xb, _ in _batches(x, np.zeros(len(x), np.int64), batch_size):
            rows.append(teacher.logits(teacher(xb.to(device))).float().cpu())
            if bar is not None:
                bar.update(len(xb))
    return torch.cat(rows) if rows else torch.zeros((0, 0))


def _distilled_loss(hard: torch.Tensor, logits: torch.Tensor, target: torch.Tensor,
                    config: TrainConfig) -> torch.Tensor:
    """Hinton's knowledge distillation: ``(1 - w) * cross-entropy + w * tau^2 * KL(teacher ||
    student)`` on the logits (``target``: the teacher's) softened by the temperature ``tau``
    (``tau^2`` keeps the soft term's gradient on the scale of the hard one's)."""
    tau, w = config.distill_temperature, config.distill_weight
    soft = F.kl_div(F.log_softmax(logits / tau, dim=1), F.softmax(target / tau, dim=1),
                    reduction="batchmean") * tau * tau
    return (1 - w) * hard + w * soft


def _init_scales(model: SpikingNet) -> None:
    for syn in model.synapses:
        if hasattr(syn, "init_scale"):
            syn.init_scale()


def _load_checkpoint(path: Path, option: str = "--init-from") -> dict:
    """A training checkpoint with its model state, or one line naming ``option`` and ``path``."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many kinds for a file that is not its own
        raise FireflysError(f"{option} {str(path)!r}: not a fireflys training checkpoint "
                            f"({type(error).__name__})") from error
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise FireflysError(f"{option} {str(path)!r}: not a fireflys training checkpoint "
                            f"(no model state)")
    return checkpoint


def _initialise_from(model: SpikingNet, path: Path) -> None:
    """Start from another run's weights (e.g. the float baseline's ``checkpoint.pt``): conv/fc
    weights and biases are copied, batch norm (of a float checkpoint trained with it) folded into
    them first; LSQ step sizes come from the checkpoint when it has them (a compressed run: its
    thresholds are in those units), else are initialised from the weights (the float model's
    threshold 1 and input scale map onto the integer model's units)."""
    checkpoint = _load_checkpoint(path)
    state = dict(checkpoint["model"])
    if any(k.endswith("running_mean") for k in state):
        state = _folded_state(state, checkpoint.get("config") or {}, path)
    # a rewired checkpoint stores theta and sign; recover the weights it computed
    for key in [k for k in state if k.endswith(".original")]:
        prefix = key.split(".parametrizations.")[0]
        name = key.split(".parametrizations.")[1].split(".")[0]
        sign = state.get(f"{prefix}.parametrizations.{name}.0.sign")
        if sign is not None:
            state[f"{prefix}.{name}"] = sign * torch.relu(state[key])
    wanted = {k: v for k, v in state.items() if k.endswith((".weight", ".bias", ".scale"))
              and "parametrizations" not in k}
    missing = [k for k in model.state_dict() if k.endswith((".weight", ".bias"))
               and k not in wanted]
    if missing:
        raise FireflysError(f"--init-from {str(path)!r}: the checkpoint has no {missing[0]}; "
                            f"it was trained for another model spec")
    try:
        model.load_state_dict(wanted, strict=False)
    except RuntimeError as error:
        raise FireflysError(f"--init-from {str(path)!r}: shapes differ from this model "
                            f"({str(error).splitlines()[1].strip()})") from error
    names = {id(module): name for name, module in model.named_modules()}
    for syn in model.synapses:
        if hasattr(syn, "init_scale") and f"{names[id(syn)]}.scale" not in wanted:
            syn.init_scale()
    log.info("initialised from %s", path)


def _folded_state(state: dict, config: dict, path: Path) -> dict:
    """The state of the batch-norm-free float model that a BN checkpoint's model folds to."""
    source = _float_model(state, config, path, "--init-from", "shapes differ from this model",
                          batch_norm=True)
    return fold_batchnorm(source).state_dict()


def _float_model(state: dict, config: dict, path: Path, option: str, problem: str, *,
                 batch_norm: bool) -> SpikingNet:
    """The float model a checkpoint's ``config`` describes, with its ``state`` loaded; a state
    that does not fit is one line naming ``option``, ``path`` and the ``problem``."""
    try:
        model = build_model(parse_spec(config.get("model", "scnn5")).text, T=config.get("T", 4),
                            neuron_kind=NeuronKind(config.get("neuron", "lif")),
                            leak_shift=config.get("leak_shift", 1), quantised=False,
                            input_bits=config.get("input_bits", 8), batch_norm=batch_norm)
        model.load_state_dict(state)
    except (RuntimeError, FireflysError, ValueError) as error:
        raise FireflysError(f"{option} {str(path)!r}: {problem} "
                            f"({str(error).splitlines()[0].strip()[:120]})") from error
    return model


def _cli_args(config: TrainConfig) -> list[str]:
    args = [f"--dataset {config.dataset}", f"--model {config.model}", f"-T {config.T}",
            f"--epochs {config.epochs}", f"--batch-size {config.batch_size}", f"--lr {config.lr}",
            f"--sparsity {config.target_sparsity}", f"--alpha {config.alpha}",
            f"--weight-bits {config.weight_bits}", f"--seed {config.seed}"]
    if config.cap_sparsity:
        args.append("--cap-sparsity")
    if not config.batch_norm:
        args.append("--no-batch-norm")
    if config.val_size:
        args.append(f"--val-size {config.val_size}")
    if config.prune_epochs is not None:
        args.append(f"--prune-epochs {config.prune_epochs:g}")
    args.append(f"--allocation {config.allocation}")
    if config.readout_sparsity is not None:
        args.append(f"--readout-sparsity {config.readout_sparsity}")
    if config.prune_bias:
        args.append("--prune-bias")
    args.append(f"--scale-lr {config.scale_lr}")
    if config.finetune_lr is not None:
        args.append(f"--finetune-lr {config.finetune_lr}")
    if config.augment != "none":
        args.append(f"--augment {config.augment}")
    if config.train_limit:
        args.append(f"--train-limit {config.train_limit}")
    if config.init_from:
        args.append(f"--init-from {config.init_from}")
    if config.distill_from:
        args.append(f"--distill-from {config.distill_from} --distill-weight "
                    f"{config.distill_weight} --distill-temperature {config.distill_temperature}")
    return args


def plot_history(history: list[dict], out: Path, layer_numbers: list[int] | None = None) -> None:
    """``curves.png`` (loss, accuracy) and ``sparsity.png`` (per-layer weight sparsity), with
    whole-number epoch ticks and the synaptic layers numbered as ``fireflys info`` does
    (``layer_numbers``: the spec position of each)."""
    if not history:
        return
    from matplotlib.ticker import MaxNLocator
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, [h["loss"] for h in history], marker="o")
    ax1.set(xlabel="epoch", ylabel="training loss", title="loss")
    ax2.plot(epochs, [h["train_accuracy"] for h in history], marker="o", label="train")
    if any(h.get("val_accuracy") is not None for h in history):
        ax2.plot(epochs, [h.get("val_accuracy") for h in history], marker="o",
                 label="validation")
    ax2.plot(epochs, [h["test_accuracy"] for h in history], marker="o", label="test")
    ax2.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    ax2.legend()
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    layers = [k for k in history[-1]["weight_sparsity"] if k != "total"]
    for key in layers + ["total"]:
        label = key
        if layer_numbers and key.startswith("layer") and int(key[5:]) < len(layer_numbers):
            label = f"layer {layer_numbers[int(key[5:])]}"
        ax.plot(epochs, [h["weight_sparsity"][key] for h in history], marker=".", label=label,
                linewidth=2.5 if key == "total" else 1)
    ax.set(xlabel="epoch", ylabel="weight sparsity", title="weight sparsity per layer")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    fig.savefig(out / "sparsity.png", dpi=100)
    plt.close(fig)
    log.info("wrote %s and %s (%d epoch%s)", out / "curves.png", out / "sparsity.png",
             len(history), "" if len(history) == 1 else "s")


if __name__ == "__main__":
    # torchrun --nproc_per_node N -m fireflys_sw.train --dataset ... (the `fireflys train`
    # options): one DistributedDataParallel process per rank
    from .cli import main as _cli_main
    sys.exit(_cli_main(["train", "--distributed", *sys.argv[1:]]))
