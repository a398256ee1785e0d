"""E3NE's radix encoding: training, BN folding and export (``fireflys train --encoding radix``).

A radix network is a quantised CNN whose hidden activations are ``T``-bit unsigned integers,
sent between layers as their ``T`` binary digits (most significant first), so that the same
binary sparse cores serve it (``docs/numeric-contract.md``, "Radix layers"). Because a ``T``-bit
activation is exact, training needs no time loop: it is a quantisation-aware ANN.

Two phases, one model (:class:`RadixNet`):

1. **float + BN**: conv -> BatchNorm -> activation fake-quantised to ``T`` bits with the fixed
   power-of-two scale ``2^-f`` (``f = T - 2``: BN normalises the pre-activation, so ``[0, 4)``
   covers it), i.e. ``a = clip(round(z 2^f), 0, 2^T - 1) 2^-f``; the input is
   ``X / (2^input_bits - 1)``, ``X`` the integer input of the contract.
2. **folded, integer QAT** (:meth:`RadixNet.fold`): BN is folded into the conv
   (``w g / sigma``, ``(b - mu) g / sigma + beta``) and the input scale into the weights, so that
   each layer maps integer inputs to an integer accumulator. Each output channel gets a
   power-of-two weight scale ``2^e`` (the largest that keeps ``|mean| + 3 sigma`` of its
   weights inside the signed ``weight_bits`` range, E3NE's clipping); the readout shares one
   ``e`` so its scores compare. Forward (straight-through rounding)::

       Wq = clip(round(v 2^e), -2^(b-1), 2^(b-1) - 1) * mask      # integer weights
       Bq = round(bias 2^e)
       acc = Bq + Wq . X                                         # integer accumulator
       Y  = clip(floor(acc / 2^s + 1/2), 0, 2^T - 1),  s = e - f  # rounding right shift
       readout: score = acc, logits = acc 2^-e

   ``mask`` is magnitude pruning, ramped to the target sparsity over the first two thirds of
   phase 1 (so that BN adapts to it) and kept through phase 2. In ``eval()`` the forward is computed in float64 on these integers, which is exact,
   so the model is bit for bit the exported artifact's golden model (``tests/sw/test_radix.py``).

The power-of-two weight scale is E3NE's choice and what the contract needs (a shift per channel);
FireFly-S's per-channel LSQ step would need a multiplier in the requantisation.
"""

from __future__ import annotations

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
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from .artifact import (Artifact, InputEncoding, LayerKind, PoolLayer, SynapticLayer,
                       save_artifact, signed_range)
from .datasets import load_dataset
from .errors import FireflysError
from .golden import quantise_images, run_golden
from .spec import ConvSpec, FCSpec, NeuronKind, PoolSpec, parse_spec

__all__ = ["RadixConfig", "RadixNet", "train_radix", "export_radix", "radix_model_from_artifact"]

log = logging.getLogger(__name__)

BIAS_BITS = 16


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


def _floor_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.floor(x) - x).detach()


class RadixNet(nn.Module):
    """The radix training model for a spec (see the module docstring for the two phases).

    Parameters
    ----------
    spec : str
        Model spec or preset.
    T : int
        Activation bits (= time steps = digits).
    input_bits : int
        Bits of the integer input ``X`` (E3NE: ``T``).
    weight_bits : int
        Signed weight width.
    """

    def __init__(self, spec: str, *, T: int = 4, input_bits: int | None = None,
                 weight_bits: int = 4):
        super().__init__()
        self.spec = parse_spec(spec)
        self.T = T
        self.input_bits = T if input_bits is None else input_bits
        self.weight_bits = weight_bits
        self.frac = max(T - 2, 0)                   # activation scale 2^-f
        self.synapses = nn.ModuleList()
        self.norms = nn.ModuleList()
        n = len(self.spec.layers)
        for i, (ls, shape) in enumerate(zip(self.spec.layers, self.spec.shapes)):
            if isinstance(ls, PoolSpec):
                continue
            readout = i == n - 1
            if isinstance(ls, ConvSpec):
                self.synapses.append(nn.Conv2d(shape[0], ls.out_channels, ls.kernel,
                                               padding=ls.padding))
                self.norms.append(nn.Identity() if readout else nn.BatchNorm2d(ls.out_channels))
            else:
                c, h, w = shape
                self.synapses.append(nn.Linear(c * h * w, ls.out_features))
                self.norms.append(nn.Identity() if readout else nn.BatchNorm1d(ls.out_features))
        self.folded = False
        self.float_masks = [torch.ones_like(syn.weight) for syn in self.synapses]

    @property
    def top(self) -> int:
        return (1 << self.T) - 1

    def _input(self, images: torch.Tensor) -> torch.Tensor:
        """The integer input ``X`` of the contract (as float), from uint8-valued images."""
        u = images.to(torch.int64)
        return ((2 * u * ((1 << self.input_bits) - 1) + 255) // 510).to(torch.float32)

    # --- phase 1 -------------------------------------------------------------------------
    def _float_forward(self, X: torch.Tensor) -> torch.Tensor:
        a = X / ((1 << self.input_bits) - 1)
        scale = float(1 << self.frac)
        j = 0
        for ls in self.spec.layers:
            if isinstance(ls, PoolSpec):
                a = F.max_pool2d(a, ls.kernel)
                continue
            if isinstance(ls, FCSpec):
                a = a.flatten(1)
            syn = self.synapses[j]
            w = syn.weight * self.float_masks[j]
            z = (F.conv2d(a, w, syn.bias, padding=syn.padding) if isinstance(syn, nn.Conv2d)
                 else F.linear(a, w, syn.bias))
            z = self.norms[j](z)
            if j == len(self.synapses) - 1:
                return z
            a = torch.clamp(_round_ste(z * scale), 0, self.top) / scale
            j += 1
        raise AssertionError("spec without a readout")

    # --- phase 2 -------------------------------------------------------------------------
    @torch.no_grad()
    def fold(self) -> None:
        """Fold BN and the input scale into the weights, choose each channel's exponent."""
        if self.folded:
            return
        qp = (1 << (self.weight_bits - 1)) - 1
        self.v = nn.ParameterList()
        self.b = nn.ParameterList()
        exps, masks = [], []
        n = len(self.synapses)
        for j, (syn, norm) in enumerate(zip(self.synapses, self.norms)):
            w, b = (syn.weight * self.float_masks[j]).detach().clone(), syn.bias.detach().clone()
            if isinstance(norm, (nn.BatchNorm1d, nn.BatchNorm2d)):
                g = norm.weight / torch.sqrt(norm.running_var + norm.eps)
                w = w * g.reshape((-1,) + (1,) * (w.dim() - 1))
                b = (b - norm.running_mean) * g + norm.bias
            w = w * (1.0 / ((1 << self.input_bits) - 1) if j == 0 else 2.0 ** -self.frac)
            flat = w.reshape(w.shape[0], -1)
            clip = flat.abs().mean(1) + 3 * flat.abs().std(1) if flat.shape[1] > 1 else flat.abs()[:, 0]
            clip = torch.minimum(clip, flat.abs().amax(1)).clamp_min(1e-12)
            e = torch.floor(torch.log2((qp + 0.5) / clip))
            if j == n - 1:
                e = torch.full_like(e, float(e.min()))          # one scale for the readout
            else:
                e = torch.clamp(e, min=float(self.frac))          # shift s = e - f >= 0
            self.v.append(nn.Parameter(w))
            self.b.append(nn.Parameter(b))
            exps.append(e)
            masks.append(self.float_masks[j].clone())
        self.exps = exps
        self.masks = masks
        self.folded = True

    def integer_layer(self, j: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Layer ``j``'s integer weights, bias and exponent (straight-through rounding)."""
        lo, hi = signed_range(self.weight_bits)
        e = self.exps[j]
        scale = (2.0 ** e).reshape((-1,) + (1,) * (self.v[j].dim() - 1))
        wq = torch.clamp(_round_ste(self.v[j] * scale), lo, hi) * self.masks[j]
        blo, bhi = signed_range(BIAS_BITS)
        bq = torch.clamp(_round_ste(self.b[j] * 2.0 ** e), blo, bhi)
        return wq, bq, e

    def shifts(self) -> list[torch.Tensor]:
        return [e - self.frac for e in self.exps[:-1]]

    def _integer_forward(self, X: torch.Tensor) -> torch.Tensor:
        exact = not self.training
        a = X.double() if exact else X
        j = 0
        for ls in self.spec.layers:
            if isinstance(ls, PoolSpec):
                a = F.max_pool2d(a, ls.kernel)              # max of the T-bit values
                continue
            if isinstance(ls, FCSpec):
                a = a.flatten(1)
            wq, bq, e = self.integer_layer(j)
            if exact:
                wq, bq = wq.double(), bq.double()
            syn = self.synapses[j]
            if isinstance(syn, nn.Conv2d):
                acc = F.conv2d(a, wq, bq, padding=syn.padding)
            else:
                acc = F.linear(a, wq, bq)
            if j == len(self.synapses) - 1:
                return acc
            s = (e - self.frac).to(acc.dtype).reshape((1, -1) + (1,) * (acc.dim() - 2))
            a = torch.clamp(_floor_ste(acc * 2.0 ** -s + 0.5), 0, self.top)
            j += 1
        raise AssertionError("spec without a readout")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Scores for uint8-valued images ``(N, C, H, W)``: float logits before folding, the
        integer readout accumulator after."""
        X = self._input(images)
        return self._integer_forward(X) if self.folded else self._float_forward(X)

    def logits(self, score: torch.Tensor) -> torch.Tensor:
        return score.float() * 2.0 ** -float(self.exps[-1][0]) if self.folded else score

    @torch.no_grad()
    def prune(self, sparsity: float, first_cap: float = 0.5) -> None:
        """Magnitude pruning per layer to ``sparsity`` (the first, tiny layer at most
        ``first_cap``); pruned weights stay pruned. Before folding it prunes the float
        weights, whose BatchNorm then adapts to the pruned kernels (pruning after folding,
        with no BN to re-normalise, lost ~20 points more in a 5,000-image trial)."""
        weights = list(self.v) if self.folded else [syn.weight for syn in self.synapses]
        masks = self.masks if self.folded else self.float_masks
        for j, v in enumerate(weights):
            p = min(sparsity, first_cap) if j == 0 else sparsity
            k = int(p * v.numel())
            if k < 1:
                continue
            scores = (v.abs() * masks[j]).flatten()
            threshold = scores.kthvalue(k).values
            masks[j] = ((v.abs() > threshold) & (masks[j] > 0)).float()

    @torch.no_grad()
    def weight_sparsity(self) -> dict[str, float]:
        result, zeros, total = {}, 0, 0
        for j in range(len(self.synapses)):
            wq = (self.integer_layer(j)[0] if self.folded
                  else self.synapses[j].weight * self.float_masks[j])
            z, n = int((wq == 0).sum()), wq.numel()
            result[f"layer{j}"] = z / n
            zeros, total = zeros + z, total + n
        result["total"] = zeros / total
        return result

    def state(self) -> dict:
        return {"model": self.state_dict(), "folded": self.folded,
                "v": [p.detach() for p in getattr(self, "v", [])],
                "b": [p.detach() for p in getattr(self, "b", [])],
                "exps": getattr(self, "exps", []), "masks": getattr(self, "masks", [])}


@torch.no_grad()
def export_radix(model: RadixNet, *, name: str, metadata: dict | None = None) -> Artifact:
    """The folded model as a radix artifact (``docs/artifact.md``, version 2)."""
    if not model.folded:
        raise FireflysError("export_radix: the model must be folded (phase 2) first")
    spec = model.spec
    layers, j = [], 0
    shifts = model.shifts()
    n = len(spec.layers)
    for i, (ls, shape_in, shape_out) in enumerate(zip(spec.layers, spec.shapes, spec.shapes[1:])):
        if isinstance(ls, PoolSpec):
            layers.append(PoolLayer(shape_in, shape_out, ls.kernel))
            continue
        wq, bq, _ = model.integer_layer(j)
        weight = wq.round().to(torch.int64).numpy()
        bias = bq.round().to(torch.int64).numpy()
        readout = i == n - 1
        conv = isinstance(ls, ConvSpec)
        layers.append(SynapticLayer(
            LayerKind.CONV if conv else LayerKind.FC, shape_in, shape_out,
            ls.kernel if conv else 0, ls.padding if conv else 0, weight, bias, None,
            NeuronKind.NONE if readout else NeuronKind.RADIX, 0,
            None if readout else shifts[j].round().to(torch.int64).numpy()))
        j += 1
    artifact = Artifact(
        name=name, T=model.T, input_shape=spec.input_shape, input_bits=model.input_bits,
        input_encoding=InputEncoding.DIRECT, weight_bits=model.weight_bits,
        bias_bits=BIAS_BITS, threshold_bits=16, layers=tuple(layers),
        metadata={"spec": spec.text, "encoding": "radix", **(metadata or {})})
    artifact.validate()
    return artifact


@torch.no_grad()
def radix_model_from_artifact(artifact: Artifact) -> RadixNet:
    """A folded :class:`RadixNet` that computes ``artifact`` exactly (for checks on real data):
    ``e[c] = s[c] + f`` recovers each channel's exponent (the readout's is 0), and the float
    weights are the integers scaled back, so the model's rounding gives them again."""
    from .export import spec_of
    if not artifact.radix:
        raise FireflysError(f"artifact {artifact.name!r} has no radix layers")
    model = RadixNet(spec_of(artifact), T=artifact.T, input_bits=artifact.input_bits,
                     weight_bits=artifact.weight_bits)
    model.fold()
    for j, layer in enumerate(artifact.synaptic_layers):
        e = (torch.zeros(layer.out_channels) if layer.shift is None
             else torch.from_numpy(layer.shift).double() + model.frac)
        scale = (2.0 ** e).reshape((-1,) + (1,) * (layer.weight.ndim - 1))
        w = torch.from_numpy(layer.weight).double()
        model.v[j].data = (w / scale).float()
        model.b[j].data = (torch.from_numpy(layer.bias).double() / 2.0 ** e).float()
        model.exps[j] = e.float()
        model.masks[j] = (w != 0).float()
    return model


@dataclass(frozen=True)
class RadixConfig:
    """A radix training run: ``float_epochs`` of phase 1, ``epochs`` of phase 2."""

    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    model: str = "scnn5"
    T: int = 4
    input_bits: int | None = None
    float_epochs: int = 3
    epochs: int = 2
    batch_size: int = 64
    lr: float = 1e-3
    qat_lr: float = 2e-4
    target_sparsity: float = 0.85
    weight_bits: int = 4
    validation: int = 5000
    seed: int = 0
    out: str = "runs/radix"
    name: str | None = None
    train_limit: int | None = None
    test_limit: int | None = None

    def validate(self) -> None:
        if not 2 <= self.T <= 16:
            raise FireflysError(f"-T must be in 2..16 for radix encoding, not {self.T}")
        if not 0 <= self.target_sparsity < 1:
            raise FireflysError(f"--sparsity must be in [0, 1), not {self.target_sparsity}")
        if not 2 <= self.weight_bits <= 8:
            raise FireflysError(f"--weight-bits must be in 2..8, not {self.weight_bits}")
        parse_spec(self.model)

    def command(self) -> str:
        args = [f"--encoding radix --dataset {self.dataset} --model {self.model} -T {self.T}",
                f"--float-epochs {self.float_epochs} --epochs {self.epochs}",
                f"--batch-size {self.batch_size} --lr {self.lr} --qat-lr {self.qat_lr}",
                f"--sparsity {self.target_sparsity} --weight-bits {self.weight_bits}",
                f"--seed {self.seed}"]
        if self.input_bits:
            args.append(f"--input-bits {self.input_bits}")
        if self.train_limit:
            args.append(f"--train-limit {self.train_limit}")
        return "fireflys train " + " ".join(args)


def _batches(x, y, batch_size, rng=None):
    order = rng.permutation(len(x)) if rng is not None else np.arange(len(x))
    for start in range(0, len(x), batch_size):
        idx = order[start:start + batch_size]
        yield torch.from_numpy(x[idx].astype(np.float32)), torch.from_numpy(y[idx])


@torch.no_grad()
def _accuracy(model: RadixNet, x, y) -> float:
    was = model.training
    model.eval()
    correct = sum(int((model(xb).argmax(1) == yb).sum()) for xb, yb in _batches(x, y, 500))
    model.train(was)
    return correct / max(len(x), 1)


def train_radix(config: RadixConfig, *, progress: bool = True) -> dict:
    """Train, fold, fine-tune and export a radix network; return the report (also written to
    ``<out>/report.json``; one line per epoch in ``<out>/log.jsonl``).

    The last ``validation`` training images are held out and are what the log's accuracy is
    measured on; the test split is used once, by the golden model on the exported artifact.
    """
    config.validate()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_dataset(config.dataset, config.data_dir)
    if data.encoding != "direct":
        raise FireflysError(f"radix encoding takes static images; {data.name} has event frames")
    train_x, train_y = data.train_x, data.train_y
    val_x, val_y = train_x[-config.validation:], train_y[-config.validation:]
    train_x, train_y = train_x[:-config.validation], train_y[:-config.validation]
    train_x, train_y = train_x[:config.train_limit], train_y[:config.train_limit]
    test_x, test_y = data.test_x[:config.test_limit], data.test_y[:config.test_limit]
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = RadixNet(config.model, T=config.T, input_bits=config.input_bits,
                     weight_bits=config.weight_bits)
    history: list[dict] = []
    log_path = out / "log.jsonl"
    log_path.write_text("")
    total = config.float_epochs + config.epochs
    steps_per_epoch = math.ceil(len(train_x) / config.batch_size)
    optimiser = scheduler = None
    for epoch in range(total):
        phase = "float" if epoch < config.float_epochs else "qat"
        if epoch == config.float_epochs or (epoch == 0 and phase == "qat"):
            model.fold()
            optimiser = None
        if optimiser is None:
            params = (list(model.v) + list(model.b)) if model.folded else list(model.parameters())
            lr = config.qat_lr if model.folded else config.lr
            n_epochs = config.epochs if model.folded else config.float_epochs
            optimiser = torch.optim.Adam(params, lr=lr)
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimiser, T_max=max(1, n_epochs * steps_per_epoch))
        model.train()
        seen = correct = 0
        loss_sum = 0.0
        t0 = time.time()
        # pruning: ramped over the first two thirds of the float phase
        ramp = max(1, (2 * config.float_epochs * steps_per_epoch) // 3)
        every = max(1, min(50, ramp // 20))
        bar = tqdm(_batches(train_x, train_y, config.batch_size, rng), disable=not progress,
                   total=steps_per_epoch, file=sys.stderr, leave=False,
                   desc=f"epoch {epoch + 1}/{total} ({phase})",
                   mininterval=0.1 if sys.stderr.isatty() else 30.0)
        for step, (xb, yb) in enumerate(bar):
            done = epoch * steps_per_epoch + step
            if not model.folded and done % every == 0:
                model.prune(config.target_sparsity * min(1.0, done / ramp))
            logits = model.logits(model(xb))
            loss = F.cross_entropy(logits, yb)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            scheduler.step()
            seen += len(yb)
            correct += int((logits.argmax(1) == yb).sum())
            loss_sum += float(loss.detach()) * len(yb)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        if not model.folded:
            model.prune(config.target_sparsity * min(1.0, (epoch + 1) * steps_per_epoch / ramp))
        seconds = time.time() - t0
        entry = {"epoch": epoch + 1, "phase": phase, "loss": loss_sum / seen,
                 "train_accuracy": correct / seen,
                 "validation_accuracy": _accuracy(model, val_x, val_y),
                 "weight_sparsity": model.weight_sparsity(), "seconds": seconds,
                 "images_per_s": seen / seconds}
        history.append(entry)
        log.info("epoch %d (%s): loss %.4f train %.4f validation %.4f sparsity %.4f (%.0f s)",
                 epoch + 1, phase, entry["loss"], entry["train_accuracy"],
                 entry["validation_accuracy"], entry["weight_sparsity"]["total"], seconds)
        with log_path.open("a") as f:
            f.write(json.dumps(entry) + "\n")
    model.fold()
    name = config.name or f"{config.model}-{data.name}-radix-t{config.T}"
    artifact = export_radix(model, name=name, metadata={
        "dataset": data.name, "command": config.command(), "config": dataclasses.asdict(config),
        "validation_accuracy": history[-1]["validation_accuracy"] if history else None})
    golden = run_golden(artifact, test_x)
    accuracy = float((golden.prediction == test_y).mean())
    artifact = artifact.with_metadata(test_accuracy=accuracy, test_images=int(len(test_x)),
                                      weight_sparsity=artifact.weight_sparsity())
    path = save_artifact(artifact, out / f"{name}.npz")
    torch.save(model.state(), out / "checkpoint.pt")
    report = {"config": dataclasses.asdict(config), "history": history, "dataset": data.name,
              "artifact": str(path), "golden_test_accuracy": accuracy,
              "weight_sparsity": artifact.weight_sparsity(),
              "spike_density": golden.spike_density()}
    with (out / "report.json").open("w") as f:
        json.dump(report, f, indent=1)
    log.info("exported %s: golden test accuracy %.4f at weight sparsity %.4f", path, accuracy,
             artifact.weight_sparsity())
    return report
