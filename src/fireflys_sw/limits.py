"""The size limits of the inputs fireflys reads, in one place.

Every reader checks these before it allocates (from a file's headers, a spec's numbers), so that a
small hostile file cannot make fireflys allocate gigabytes or run for minutes. They are far above
what the presets need (scnn7: 0.34 M weights, 48 M multiply-accumulates per step, 74 k neurons in
its largest map) and are documented in ``docs/artifact.md``; the tests hold the code to them.
"""

from __future__ import annotations

__all__ = [
    "MAX_DIM", "MAX_LAYERS", "MAX_WEIGHTS", "MAX_MAP_NEURONS", "MAX_NEURON_STEPS", "MAX_MACS",
    "MAX_FILE_BYTES", "MAX_DATA_BYTES", "MAX_HEADER_BYTES", "MAX_JSON_DEPTH",
    "MAX_NPY_HEADER_BYTES", "MAX_ZIP_DIRECTORY_BYTES", "MAX_MEMBERS", "MAX_SPEC_CHARS",
    "MAX_NUMBER_DIGITS", "MAX_PLAN_BYTES", "MAX_FIFO_DEPTH", "MAX_DATASET_BYTES",
]

#: Largest channel count, height or width of any map (and any array dimension).
MAX_DIM = 1 << 16
#: Most layers (synaptic and max-pool) in a network.
MAX_LAYERS = 256
#: Most conv/fc weights in a network, all layers together.
MAX_WEIGHTS = 1 << 24
#: Most neurons (``C * H * W``) in the input or in any layer's output map.
MAX_MAP_NEURONS = 1 << 20
#: Most neuron time steps (``T * C * H * W``) of any one map: what the golden model holds per
#: frame (int64: 256 MiB).
MAX_NEURON_STEPS = 1 << 25
#: Most multiply-accumulates per time step, all layers together (``weights * output pixels``).
MAX_MACS = 1 << 31

#: Largest artifact file on disk.
MAX_FILE_BYTES = 1 << 28
#: Most uncompressed array bytes in an artifact, all members together.
MAX_DATA_BYTES = 1 << 28
#: Largest JSON header of an artifact.
MAX_HEADER_BYTES = 1 << 20
#: Deepest nesting of ``[`` / ``{`` in a JSON header.
MAX_JSON_DEPTH = 64
#: Largest ``.npy`` header (the Python dict literal after the magic; numpy writes ~120 bytes).
MAX_NPY_HEADER_BYTES = 4096
#: Largest zip central directory (the list of members).
MAX_ZIP_DIRECTORY_BYTES = 1 << 20
#: Most zip members: the header plus weight, bias and threshold of every layer.
MAX_MEMBERS = 1 + 3 * MAX_LAYERS

#: Longest model spec string.
MAX_SPEC_CHARS = 4096
#: Most digits of one number in a spec string.
MAX_NUMBER_DIGITS = 6

#: Largest plan file (``--plan``; a 256-layer plan is ~150 kB).
MAX_PLAN_BYTES = 1 << 22
#: Most entries of the FIFO between two cores in a plan (``T * MAX_DIM``: one row of the widest
#: map at the most time steps, the most the planner asks for).
MAX_FIFO_DEPTH = 1 << 24
#: Most bytes a data set file may hold or decompress to (an IDX array, a CIFAR batch, the
#: DvsGesture frame cache): checked against the size its header promises before reading.
MAX_DATASET_BYTES = 1 << 32
