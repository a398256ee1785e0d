"""Bring your own network: NIR graphs and SpikingJelly modules in, NIR out.

The stages are plain functions, as in the rest of fireflys::

    source --(nir_import / spikingjelly_import)--> FloatChain --(quantise_chain)--> Artifact
                                                        |                            |
                                       run_float_chain (float, source semantics)   run_golden
                                                        \\------ import report ------/

* :func:`import_nir` (a ``.nir`` file or a ``nir.NIRGraph``) and :func:`import_spikingjelly`
  (a module, or ``"package.module:function"`` plus a weights file) return an
  :class:`ImportResult`: the artifact, the per-layer mapping and notes.
* :meth:`ImportResult.report` measures the agreement between the source and the imported
  integer network on the same inputs (accuracy on a data set when labels are given, else
  prediction agreement).
* :func:`export_nir` writes an artifact as standard NIR.

What maps how, and what is refused: ``docs/interop.md``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..artifact import Artifact, InputEncoding
from .chain import FloatChain, InteropError
from .nir_export import artifact_to_nir, export_nir
from .quantize import QuantOptions, quantise_chain

__all__ = ["ImportResult", "InteropError", "QuantOptions", "import_nir", "import_spikingjelly",
           "export_nir", "artifact_to_nir", "format_report"]


@dataclass
class ImportResult:
    """An imported network.

    Attributes
    ----------
    artifact : Artifact
        The integer network.
    chain : FloatChain
        The source as read (float, its own semantics).
    mappings : list of dict
        Per layer: the mapping chosen (tau -> shift, step rule and units, bits, sparsity,
        threshold convention).
    options : QuantOptions
        The options used (after the source's own defaults).
    source_scores : callable or None
        Images -> the source framework's own scores, where the framework is at hand
        (SpikingJelly); ``None`` for a NIR graph, whose float semantics
        (:func:`.reference.run_float_chain`) then stand for the source.
    """

    artifact: Artifact
    chain: FloatChain
    mappings: list[dict]
    options: QuantOptions
    source_scores: Callable[[np.ndarray], np.ndarray] | None = None
    notes: list[str] = field(default_factory=list)
    #: source-side predictions per input array, shared with :meth:`requantise` copies
    _source_cache: dict = field(default_factory=dict, repr=False)

    def requantise(self, **options) -> "ImportResult":
        """The same source mapped with other options (e.g. ``weight_bits=8``); the source-side
        predictions already computed for a report are reused."""
        opts = replace(self.options, **options)
        artifact, mappings = quantise_chain(self.chain, opts)
        return ImportResult(artifact, self.chain, mappings, opts, self.source_scores,
                            _pool_notes(mappings), self._source_cache)

    def _source_predictions(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from .reference import run_float_chain
        opts = self.options
        key = (id(images), opts.T, opts.input_range, opts.encoding)
        hit = self._source_cache.get(key)
        if hit is not None and hit[0] is images:
            return hit[1], hit[2]
        frames = opts.encoding is InputEncoding.FRAMES
        reference = run_float_chain(self.chain, images, T=opts.T, input_range=opts.input_range,
                                    frames=frames).argmax(axis=1)
        source = (self.source_scores(images).argmax(axis=1) if self.source_scores is not None
                  else reference)
        self._source_cache[key] = (images, reference, source)
        return reference, source

    def report(self, images: np.ndarray | None = None, labels: np.ndarray | None = None, *,
               inputs: str | None = None, random_images: int = 64, seed: int = 0) -> dict:
        """The import report (plain data): per-layer mapping, and the agreement between the
        source and the imported artifact on ``images`` (uint8; random images when ``None``):
        accuracies when ``labels`` are given, prediction agreement always."""
        from ..golden import run_golden
        a, opts = self.artifact, self.options
        frames = opts.encoding is InputEncoding.FRAMES
        if images is None:
            rng = np.random.default_rng(seed)
            shape = (random_images,) + ((opts.T,) if frames else ()) + a.input_shape
            images = rng.integers(0, 256, size=shape, dtype=np.uint8) if not frames else \
                rng.integers(0, 2, size=shape, dtype=np.uint8)
            inputs = inputs or f"{random_images} random inputs (seed {seed})"
            labels = None
        golden = run_golden(a, images).prediction
        reference, source = self._source_predictions(images)
        result: dict[str, Any] = {
            "source": self.chain.name, "framework": self.chain.framework,
            "artifact": a.name, "T": a.T, "weight_bits": a.weight_bits,
            "weight_sparsity": a.weight_sparsity(), "inputs": inputs or f"{len(images)} images",
            "images": int(len(images)),
            "source_is": ("the framework's own model" if self.source_scores is not None else
                          "the graph's float semantics (Euler steps, its own tau and threshold "
                          "convention, summed-current readout)"),
            "agreement": {
                "imported_vs_source": float((golden == source).mean()),
                "imported_vs_float_reference": float((golden == reference).mean()),
                "float_reference_vs_source": float((reference == source).mean()),
            },
            "layers": self.mappings, "notes": self.chain.notes + self.notes,
        }
        if labels is not None:
            labels = np.asarray(labels)
            result["accuracy"] = {
                "source": float((source == labels).mean()),
                "float_reference": float((reference == labels).mean()),
                "imported": float((golden == labels).mean()),
            }
        return result


def _options(chain: FloatChain, given: dict[str, Any]) -> QuantOptions:
    """Options: what the caller gave, else what the source states, else the defaults."""
    names = {f.name for f in fields(QuantOptions)}
    unknown = set(given) - names
    if unknown:
        raise TypeError(f"unknown import options: {', '.join(sorted(unknown))}")
    values = {k: v for k, v in chain.defaults.items() if k in names}
    if "encoding" in values:
        values["encoding"] = InputEncoding(values["encoding"])
    for key in ("T", "input_bits", "weight_bits", "bias_bits"):
        if key in values:
            values[key] = int(values[key])
    if "input_range" in values:
        values["input_range"] = float(values["input_range"])
    values.update({k: v for k, v in given.items() if v is not None})
    if isinstance(values.get("encoding"), str):
        values["encoding"] = InputEncoding(values["encoding"])
    return QuantOptions(**values)


def _finish(chain: FloatChain, given: dict[str, Any], source_scores=None) -> ImportResult:
    opts = _options(chain, given)
    artifact, mappings = quantise_chain(chain, opts)
    return ImportResult(artifact, chain, mappings, opts, source_scores, _pool_notes(mappings))


def _pool_notes(mappings: list[dict]) -> list[str]:
    inexact = [m["source"] for m in mappings if m.get("kind") == "maxpool" and not m["exact"]]
    if not inexact:
        return []
    return [f"pools computed as OR instead of the source's average/sum: {', '.join(inexact)} "
            f"(--pool-as-or); see the agreement figures"]


def import_nir(source: str | os.PathLike | Any, *, dt: float | None = None,
               input_shape: tuple[int, int, int] | None = None, framework: str = "nir",
               **options) -> ImportResult:
    """Import a NIR graph (a file or a ``nir.NIRGraph``).

    ``dt``: the time step (default: recovered from ``tau / r``, or the file's fireflys
    metadata). ``input_shape``: ``(C, H, W)`` when the graph does not state it. ``options``:
    the fields of :class:`QuantOptions` (``weight_bits``, ``T``, ``input_bits``,
    ``input_range``, ``step_rule``, ``sparsity``, ``pool_as_or``, ``tau_tolerance``, ...).
    """
    from .nir_import import chain_from_nir, read_nir_graph
    notes: list[str] = []
    if isinstance(source, (str, os.PathLike)):
        graph, notes = read_nir_graph(source)
        name = Path(source).stem
    else:
        graph, name = source, "nir-graph"
    meta_dt = None
    meta = getattr(graph, "metadata", None) or {}
    if dt is None and "fireflys_dt" in meta:
        meta_dt = float(np.asarray(meta["fireflys_dt"]))
    chain = chain_from_nir(graph, dt=dt if dt is not None else meta_dt, input_shape=input_shape,
                           name=name, framework=framework)
    chain = replace(chain, notes=notes + chain.notes)
    return _finish(chain, options)


def import_spikingjelly(net: Any, *, input_shape: tuple[int, int, int],
                        weights: str | os.PathLike | None = None, name: str | None = None,
                        **options) -> ImportResult:
    """Import a SpikingJelly network: a module, or ``"package.module:function"`` (built with no
    arguments) with ``weights`` (a state_dict file). ``options`` as for :func:`import_nir`."""
    from .spikingjelly_import import chain_from_spikingjelly, load_module, spikingjelly_scores
    if isinstance(net, str):
        name = name or net.partition(":")[2]
        net = load_module(net, weights)
    chain = chain_from_spikingjelly(net, input_shape, name=name)
    opts = _options(chain, options)
    scores = spikingjelly_scores(net, T=opts.T, input_range=opts.input_range,
                                 frames=opts.encoding is InputEncoding.FRAMES)
    return _finish(chain, options, scores)


def format_report(report: dict) -> str:
    """The import report as text."""
    lines = [f"imported {report['source']} ({report['framework']}) as {report['artifact']}: "
             f"{report['weight_bits']}-bit weights, T = {report['T']}, weight sparsity "
             f"{report['weight_sparsity']:.3f}"]
    for i, m in enumerate(report["layers"]):
        if m.get("kind") == "maxpool":
            how = "exact" if m["exact"] else f"source {m['source_pool']} pool computed as OR"
            lines.append(f"  {i:2d} maxpool {m['kernel']}x{m['kernel']} <- {m['source']} ({how})")
            continue
        neuron = m["neuron"]
        if m["leak_shift"] is not None:
            lo, hi = m["tau_steps"]
            tau = f"{lo:.4g}" if lo == hi else f"{lo:.4g}..{hi:.4g}"
            neuron += f" tau/dt {tau} -> 2**{m['leak_shift']} ({m['tau_error']:.1%})"
            if m["leak_rounding"]:
                neuron += ", leak rounded"
        if m["fires_on"]:
            neuron += f", fires on {m['fires_on']} -> TH {m['threshold'][0]}..{m['threshold'][1]}"
        lines.append(f"  {i:2d} {m['kind']:4s} <- {m['source']}: {neuron}; step {m['step_rule']} "
                     f"per {m['step_per']} ({m['unit'][0]:.3g}..{m['unit'][1]:.3g}), "
                     f"sparsity {m['weight_sparsity']:.3f}, clipped {m['clipped_weights']:.2%}")
    lines.append(f"  on {report['inputs']}; source = {report['source_is']}")
    if "accuracy" in report:
        acc = report["accuracy"]
        lines.append(f"  accuracy: source {acc['source']:.4f}, float reference "
                     f"{acc['float_reference']:.4f}, imported {acc['imported']:.4f}")
    agree = report["agreement"]
    lines.append(f"  prediction agreement with the source {agree['imported_vs_source']:.4f} "
                 f"(with the float reference {agree['imported_vs_float_reference']:.4f})")
    for note in report["notes"]:
        lines.append(f"  note: {note}")
    return "\n".join(lines)

