# amaranth: UnusedElaboratable=no
"""Random small networks through the Amaranth simulator against the golden model (hypothesis).

Each case draws a tiny network (convolutions of kernel 1-3 with any padding, max-pools, fully
connected layers, an fc or 1x1 conv readout; LIF, IF or radix neurons; T, input bits, weight
bits, direct or event-frame encoding; weight sparsity and spike density), a parallelism per core
(any ``P_Co`` in ``[1, Co]``, any ``P_Ci`` up to and beyond the padded ``Ci'``, not only powers
of two), sometimes the dense first core, sometimes the shallowest FIFOs a plan may ask for
(depth 2), and streams 1-3 frames through it in pysim with random gaps before input beats and
random ``ready`` stalls at the output; every score and class must equal the golden model's.

A configuration the flow refuses with its own one-line error (a ``FireflysError``) is not a
failure, but is counted: the test fails if the strategy mostly draws refused cases. Anything
else -- a mismatch, a hang (a tight ``max_idle``), another exception -- is a bug.

The default run draws :data:`DEFAULT_CASES` cases (derandomized: the same every run);
``-m slow`` runs :data:`SLOW_SHARDS` shards of :data:`SLOW_CASES_PER_SHARD` (>= 1,000 in all,
one shard per xdist worker).
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, note, seed, settings
from hypothesis import strategies as st

from fireflys_hw.flow import make_plan, simulate_accelerator
from fireflys_sw.artifact import InputEncoding
from fireflys_sw.errors import FireflysError
from fireflys_sw.spec import ConvSpec, NeuronKind, PoolSpec, parse_spec
from fireflys_sw.synthetic import random_artifact, random_images, random_radix_artifact

DEFAULT_CASES = 30
SLOW_SHARDS = 10
SLOW_CASES_PER_SHARD = 100

SETTINGS = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@dataclasses.dataclass(frozen=True)
class Case:
    spec: str
    radix: bool
    T: int
    input_bits: int
    weight_bits: int
    encoding: InputEncoding
    neuron: NeuronKind
    leak_shift: int
    weight_sparsity: float
    spike_density: float
    image_density: float
    frames: int
    parallelism: tuple[tuple[int, int], ...]
    dense_first: bool
    shallow_fifos: bool
    stall_in: float
    stall_out: float
    seed: int


@st.composite
def specs(draw) -> str:
    """A tiny spec: ``CxHxW``, 0-2 convolutions (each maybe followed by a max-pool), maybe a
    hidden fc layer, then an fc readout or a conv readout that leaves one pixel."""
    c, h, w = draw(st.integers(1, 2)), draw(st.integers(4, 6)), draw(st.integers(4, 6))
    tokens = [f"{c}x{h}x{w}"]
    for _ in range(draw(st.integers(0, 2))):
        k = draw(st.integers(1, 3))
        p = draw(st.integers(0, k - 1))
        if min(h, w) + 2 * p - k + 1 < 1:
            continue
        tokens.append(f"{draw(st.integers(1, 4))}c{k}p{p}")
        h, w = h + 2 * p - k + 1, w + 2 * p - k + 1
        if min(h, w) >= 2 and draw(st.booleans()):
            k = draw(st.integers(2, min(3, h, w)))
            tokens.append(f"mp{k}")
            h, w = h // k, w // k
    if draw(st.integers(0, 3)) == 0:
        tokens.append(f"{draw(st.integers(2, 6))}fc")
        h = w = 1
    if h == w and h <= 3 and draw(st.booleans()):
        tokens.append(f"{draw(st.integers(2, 5))}c{h}p0")        # conv readout, one pixel
    else:
        tokens.append(f"{draw(st.integers(2, 5))}fc")
    return "-".join(tokens)


@st.composite
def cases(draw) -> Case:
    spec = draw(specs())
    net = parse_spec(spec)
    radix = draw(st.integers(0, 4)) == 0
    T = draw(st.integers(1, 3))
    input_bits = draw(st.sampled_from([1, 2, 3, 8] if not radix else [1, 2, 3]))
    encoding = InputEncoding.DIRECT if radix else draw(st.sampled_from(list(InputEncoding)))
    neuron = NeuronKind.RADIX if radix else draw(st.sampled_from([NeuronKind.LIF,
                                                                  NeuronKind.IF]))
    # the synaptic layers' binary input channels: C * input_bits for the first, C after
    synaptic = [(i, layer) for i, layer in enumerate(net.layers)
                if not isinstance(layer, PoolSpec)]
    parallelism = []
    for k, (i, layer) in enumerate(synaptic):
        c_in = net.shapes[i][0] * (input_bits if k == 0 else 1)
        co = net.shapes[i + 1][0]
        p_ci_max = 1 << (c_in - 1).bit_length()
        parallelism.append((draw(st.integers(1, co)), draw(st.integers(1, 2 * p_ci_max))))
    first = net.layers[0]
    dense_ok = encoding is InputEncoding.DIRECT and isinstance(first, ConvSpec) \
        and len(synaptic) > 1
    return Case(
        spec=spec, radix=radix, T=T, input_bits=input_bits,
        weight_bits=draw(st.sampled_from([2, 3, 4, 8])), encoding=encoding, neuron=neuron,
        leak_shift=draw(st.integers(1, 4)),     # LIF tau = 2**k; IF: unused
        weight_sparsity=draw(st.sampled_from([0.0, 0.3, 0.6, 0.8, 0.95])),
        spike_density=draw(st.sampled_from([0.05, 0.15, 0.3, 0.5])),
        image_density=draw(st.sampled_from([0.2, 0.5, 1.0])),
        frames=draw(st.integers(1, 3)), parallelism=tuple(parallelism),
        dense_first=dense_ok and draw(st.booleans()),
        shallow_fifos=draw(st.integers(0, 3)) == 0,
        stall_in=draw(st.sampled_from([0.0, 0.2, 0.5, 0.8])),
        stall_out=draw(st.sampled_from([0.0, 0.3, 0.6, 0.9])),
        seed=draw(st.integers(0, 2**32 - 1)))


def build(case: Case):
    """The artifact, images and plan of ``case`` (the flow's own errors propagate)."""
    if case.radix:
        artifact = random_radix_artifact(case.spec, seed=case.seed, T=case.T,
                                         weight_bits=case.weight_bits,
                                         weight_sparsity=case.weight_sparsity,
                                         input_bits=case.input_bits)
    else:
        artifact = random_artifact(case.spec, seed=case.seed, T=case.T,
                                   weight_bits=case.weight_bits,
                                   weight_sparsity=case.weight_sparsity, neuron=case.neuron,
                                   leak_shift=case.leak_shift,
                                   input_bits=case.input_bits, encoding=case.encoding,
                                   spike_density=case.spike_density)
    images = random_images(artifact, case.frames, seed=case.seed, density=case.image_density)
    plan = make_plan(artifact, parallelism=list(case.parallelism), images=images)
    layers = list(plan.layers)
    if case.dense_first:
        # what a plan file may ask for: the first core as the dense datapath (a whole pixel
        # per beat: P_Ci = in_bits, one chunk per kernel position)
        first = layers[0]
        k = artifact.layers[first.index].kernel
        layers[0] = dataclasses.replace(first, dense=True, p_ci=first.in_bits, n_chunks=k * k)
    if case.shallow_fifos:
        layers = [dataclasses.replace(lp, fifo_depth=2) for lp in layers[:-1]] + layers[-1:]
    return artifact, images, dataclasses.replace(plan, layers=tuple(layers))


def check_case(case: Case, tally: dict) -> None:
    note(repr(case))
    try:
        artifact, images, plan = build(case)
    except FireflysError as error:
        # refused with the project's own one-line error: legitimate, but counted
        assert "\n" not in str(error), str(error)
        tally["refused"] = tally.get("refused", 0) + 1
        tally.setdefault("reasons", []).append(str(error))
        return
    # a hang is a failure, found within a few frame intervals (not after minutes)
    max_idle = 20 * (int(plan.frame_cycles) + 64 * artifact.input_shape[1]
                     * artifact.input_shape[2]) + 2_000
    max_idle = int(max_idle / (1 - case.stall_in) / (1 - case.stall_out))
    report = simulate_accelerator(artifact, images, plan=plan, backend="pysim",
                                  stall_in=case.stall_in, stall_out=case.stall_out,
                                  seed=case.seed, max_idle=max_idle)
    assert report.frames == case.frames
    assert report.mismatches == 0, (f"frames {report.mismatched_frames} differ from the golden "
                                    f"model: {case!r}")
    tally["simulated"] = tally.get("simulated", 0) + 1


def run_cases(n: int, shard: int | None = None) -> dict:
    tally: dict = {}

    @settings(SETTINGS, max_examples=n)
    @given(case=cases())
    def inner(case):
        check_case(case, tally)

    if shard is not None:
        inner = seed(shard)(inner)
    inner()
    # most drawn cases must really run: a strategy that mostly draws refused networks tests
    # nothing
    assert tally.get("simulated", 0) >= 0.8 * (tally.get("simulated", 0)
                                               + tally.get("refused", 0)), tally
    return tally


def test_random_networks_against_golden():
    tally = run_cases(DEFAULT_CASES)
    assert tally.get("simulated", 0) >= 0.8 * DEFAULT_CASES, tally


@pytest.mark.slow
@pytest.mark.parametrize("shard", range(SLOW_SHARDS))
def test_random_networks_against_golden_slow(shard):
    tally = run_cases(SLOW_CASES_PER_SHARD, shard=1000 + shard)
    assert tally.get("simulated", 0) >= 0.8 * SLOW_CASES_PER_SHARD, tally
