"""Training throughput (images/s) of scnn5 on this CPU: the compressed recipe (gradient
rewiring + per-channel LSQ + integer LIF) side by side with the dense float baseline.

Usage: python benchmarks/bench_train.py [--batches N] [--threads N]
Wall-clock figures, measured in one run; random inputs (the data do not change the cost).
"""

import argparse
import time

import torch
import torch.nn.functional as F

from fireflys_sw.models import build_model
from fireflys_sw.rewiring import GradientRewiring, rewire


def throughput(quantised: bool, batches: int, batch_size: int) -> float:
    torch.manual_seed(0)
    model = build_model("scnn5", quantised=quantised)
    if quantised:
        thetas = rewire(model)
        ids = {id(p) for p in thetas}
        optimiser = GradientRewiring([{"params": thetas, "rewired": True},
                                      {"params": [p for p in model.parameters()
                                                  if id(p) not in ids], "rewired": False}])
    else:
        optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, 256, (batch_size, 1, 28, 28)).float()
    y = torch.randint(0, 10, (batch_size,))
    for i in range(batches + 1):
        if i == 1:
            start = time.perf_counter()
        loss = F.cross_entropy(model.logits(model(x)), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return batches * batch_size / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"scnn5 training throughput, T = 4, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads")
    q = throughput(True, args.batches, args.batch_size)
    f = throughput(False, args.batches, args.batch_size)
    print(f"  compressed (rewiring + LSQ + integer LIF): {q:7.0f} images/s")
    print(f"  dense float baseline (SpikingJelly LIF):   {f:7.0f} images/s")
    print(f"  ratio compressed / float: {q / f:.2f}")


if __name__ == "__main__":
    main()
