"""Golden-model throughput (images/s) on scnn5, batched, on this CPU.

Usage: python benchmarks/bench_golden.py [--images N]
Prints one line per configuration; the figures are wall-clock measurements.
"""

import argparse
import os
import time


from fireflys_sw.artifact import shipped_artifacts, load_artifact
from fireflys_sw.golden import run_golden
from fireflys_sw.synthetic import random_artifact, random_images


def measure(artifact, images, batch_size):
    run_golden(artifact, images[:batch_size], batch_size=batch_size)  # warm up
    start = time.perf_counter()
    run_golden(artifact, images, batch_size=batch_size)
    return len(images) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1024)
    args = parser.parse_args()
    print(f"golden model throughput, {os.cpu_count()} CPU cores, {args.images} images")
    candidates = [("scnn5 random 4-bit, 90% weight sparsity",
                   random_artifact("scnn5", seed=0, weight_sparsity=0.9))]
    if "scnn5-fashion-mnist" in shipped_artifacts():
        candidates.append(("scnn5-fashion-mnist (shipped)", load_artifact("scnn5-fashion-mnist")))
    for name, artifact in candidates:
        images = random_images(artifact, args.images, seed=1)
        for batch_size in (32, 64, 128):
            rate = measure(artifact, images, batch_size)
            print(f"  {name:42s} batch {batch_size:4d}: {rate:8.0f} images/s")


if __name__ == "__main__":
    main()
