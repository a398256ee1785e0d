"""Evaluate an artifact with the golden model on a data set (the ``fireflys eval`` job)."""

from __future__ import annotations

import time


from .artifact import Artifact, PoolLayer, load_artifact
from .datasets import load_dataset
from .errors import FireflysError
from .golden import run_golden
from .progress import Progress

__all__ = ["evaluate_artifact"]


def evaluate_artifact(artifact: Artifact | str, dataset: str, *, data_dir: str | None = None,
                      limit: int | None = None, batch_size: int = 64) -> dict:
    """Golden-model accuracy of ``artifact`` on the test split of ``dataset``; a report dict
    with ``accuracy``, ``images``, ``weight_sparsity``, ``weight_bits`` and per-layer
    ``spike_density`` (``None`` for the readout)."""
    if not isinstance(artifact, Artifact):
        artifact = load_artifact(artifact)
    data = load_dataset(dataset, data_dir, T=artifact.T)
    want = (artifact.input_shape, artifact.classes, artifact.input_encoding.value)
    have = (data.input_shape, data.classes, data.encoding)
    if want[0] != have[0] or want[1] > have[1] or want[2] != have[2]:
        raise FireflysError(
            f"artifact {artifact.name!r} takes {want[2]} input {list(want[0])} with {want[1]} "
            f"classes, but {data.name} gives {have[2]} input {list(have[0])} with {have[1]} "
            f"classes: pick the matching --dataset")
    x, y = data.test_x[:limit], data.test_y[:limit]
    start = time.perf_counter()
    with Progress(f"golden model on {data.name}", total=len(x), unit="images") as bar:
        result = run_golden(artifact, x, batch_size=batch_size, on_batch=bar.update)
    seconds = time.perf_counter() - start
    names = [("pool" if isinstance(l, PoolLayer) else l.kind.value) + str(i)
             for i, l in enumerate(artifact.layers)]
    return {
        "artifact": artifact.name,
        "dataset": data.name,
        "notice": data.notice,
        "accuracy": float((result.prediction == y).mean()) if len(y) else 0.0,
        "images": int(len(y)),
        "weight_sparsity": artifact.weight_sparsity(),
        "weight_bits": artifact.weight_bits,
        "T": artifact.T,
        "spike_density": dict(zip(names, result.spike_density())),
        "seconds": seconds,
        "images_per_s": len(y) / seconds if seconds else None,
    }
