"""Training throughput (images/s) of scnn5 on this CPU: the dense float baseline (conv-BN-LIF),
the compressed recipe (gradient rewiring with its sparsity schedule + per-channel LSQ +
integer LIF), the compressed recipe distilling from a float teacher (``--distill-from``), with
the teacher's logits computed once per run (what ``fireflys train`` does; the pass itself, about
one evaluation of the training set, is not in the figure) and, side by side, with one more
teacher forward pass per batch (what it did before), and the compressed recipe under 2-process
DistributedDataParallel (gloo), each process on half of the same global batch.

Usage: python benchmarks/bench_train.py [--batches N] [--batch-size N] [--threads N] [--no-ddp]
Wall-clock figures, measured in one run; random inputs (the data do not change the cost). On a
shared machine the figures follow the load: compare them within one run.
"""

import argparse
import os
import tempfile
import time

import torch
import torch.nn.functional as F

from fireflys_sw.models import build_model
from fireflys_sw.rewiring import GradientRewiring, SparsitySchedule, layer_targets, rewire


def _compressed(model):
    thetas = rewire(model, include_bias=False)
    ids = {id(p) for p in thetas}
    scales = [p for n, p in model.named_parameters() if n.endswith(".scale")]
    others = [p for p in model.parameters() if id(p) not in ids | {id(s) for s in scales}]
    optimiser = GradientRewiring([{"params": thetas, "rewired": True, "prior": "pruned"},
                                  {"params": others, "rewired": False},
                                  {"params": scales, "rewired": False, "sgd": True}])
    schedule = SparsitySchedule(thetas, layer_targets([tuple(t.shape) for t in thetas], 0.9))
    return optimiser, schedule


def throughput(quantised: bool, batches: int, batch_size: int, rank: int = 0,
               world: int = 1, distill: str | None = None) -> float:
    """Images/s; ``distill``: None, ``"cached"`` (teacher logits computed before the clock
    starts) or ``"per-batch"`` (a teacher forward pass in every step)."""
    torch.manual_seed(0)
    model = build_model("scnn5", quantised=quantised, batch_norm=not quantised)
    teacher = None
    if distill:
        from fireflys_sw.train import TrainConfig, _distilled_loss
        teacher = build_model("scnn5", quantised=False, batch_norm=True).eval()
        config = TrainConfig()
    schedule = None
    if quantised:
        optimiser, schedule = _compressed(model)
    else:
        optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)
    x = torch.randint(0, 256, (batch_size, 1, 28, 28)).float()[rank::world]
    y = torch.randint(0, 10, (batch_size,))[rank::world]
    for i in range(batches + 1):
        if i == 1:
            start = time.perf_counter()
        logits = model.logits(net(x))
        loss = F.cross_entropy(logits, y)
        if teacher is not None:
            if distill == "per-batch" or i == 0:
                with torch.no_grad():
                    target = teacher.logits(teacher(x))
            loss = _distilled_loss(loss, logits, target, config)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if schedule is not None:
            schedule.enforce(0.5)
    return batches * batch_size / (time.perf_counter() - start)


def _ddp_worker(rank, world, init_file, batches, batch_size, threads, result):
    import torch.distributed as dist
    torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)
    try:
        rate = throughput(True, batches, batch_size, rank, world)
        if rank == 0:
            result.put(rate)
    finally:
        dist.destroy_process_group()


def ddp_throughput(batches: int, batch_size: int, threads: int, world: int = 2) -> float:
    import torch.multiprocessing as mp
    context = mp.get_context("spawn")
    result = context.SimpleQueue()
    with tempfile.TemporaryDirectory() as tmp:
        mp.start_processes(_ddp_worker, args=(world, os.path.join(tmp, "init"), batches,
                                              batch_size, threads, result),
                           nprocs=world, join=True, start_method="spawn")
    return result.get()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="threads per process")
    parser.add_argument("--no-ddp", action="store_true", help="skip the 2-process DDP figure")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"scnn5 training throughput, T = 4, global batch {args.batch_size}, "
          f"{args.threads} thread(s) per process, {os.cpu_count()} CPUs")
    f = throughput(False, args.batches, args.batch_size)
    print(f"  dense float baseline (conv-BN-LIF):            {f:7.0f} images/s")
    q = throughput(True, args.batches, args.batch_size)
    print(f"  compressed (rewiring + LSQ + integer LIF):     {q:7.0f} images/s")
    k = throughput(True, args.batches, args.batch_size, distill="cached")
    print(f"  compressed, distilling, teacher logits once:   {k:7.0f} images/s")
    b = throughput(True, args.batches, args.batch_size, distill="per-batch")
    print(f"  compressed, distilling, teacher every batch:   {b:7.0f} images/s")
    if not args.no_ddp:
        d = ddp_throughput(args.batches, args.batch_size, args.threads)
        print(f"  compressed, 2-process DDP (gloo):              {d:7.0f} images/s")
    print(f"  ratio compressed / float: {q / f:.2f}; distilling / compressed: {k / q:.2f}; "
          f"teacher logits once / every batch: {k / b:.2f}")


if __name__ == "__main__":
    main()
