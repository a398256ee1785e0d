# amaranth: UnusedElaboratable=no
"""The whole accelerator against the golden model: several frames in flight, random stalls."""

import dataclasses
import os

import numpy as np
import pytest
from amaranth.hdl import Fragment

from fireflys_hw.gateware.accelerator import Accelerator, accelerator_stages
from fireflys_hw.host.beats import beat_words, decode_readout, input_beats, words_to_int
from fireflys_hw.flow import simulate_accelerator
from fireflys_hw.sim.pysim import run_pysim as _run_pysim
from fireflys_hw.compiler import measure_densities
from fireflys_hw.compiler.reference import bit_planes, window_beats
from fireflys_hw.compiler.weights import window_kernel
from fireflys_hw.sim.verilator import VerilatorError, reset_wrapper, verilator_unavailable
from fireflys_sw.artifact import InputEncoding
from fireflys_sw.golden import encode_input, run_golden
from fireflys_sw.spec import NeuronKind
from fireflys_sw.synthetic import random_artifact, random_images


def small(spec, *, seed, T=2, input_bits=2, sparsity=0.7, neuron=NeuronKind.LIF,
          encoding=InputEncoding.DIRECT):
    return random_artifact(spec, seed=seed, T=T, input_bits=input_bits,
                           weight_sparsity=sparsity, neuron=neuron, encoding=encoding,
                           spike_density=0.25)


def check(artifact, parallelism, *, frames=3, seed=0, backend="pysim", stall_in=0.2,
          stall_out=0.3, **kw):
    images = random_images(artifact, frames, seed=seed)
    report = simulate_accelerator(artifact, images, parallelism=parallelism, backend=backend,
                                  stall_in=stall_in, stall_out=stall_out, seed=seed, **kw)
    assert report.frames == frames
    assert report.mismatches == 0, (f"seed {seed}: frames {report.mismatched_frames} differ "
                                    f"from the golden model")
    return report, images


# --- pysim: bit-exact against the golden model --------------------------------------------------

@pytest.mark.parametrize("seed,spec,parallelism,T,neuron,sparsity,input_bits", [
    # the brief's network: two pools, ragged P_Co, P_Ci below and above Ci'
    (0, "1x8x8-4c3p1-mp2-6c3p1-mp2-5fc", [(3, 2), (2, 4), (5, 8)], 2, "lif", 0.7, 2),
    # IF neurons, T = 3, one group everywhere, a conv without pool before the fc
    (1, "2x5x5-3c3p1-4c3p0-3fc", [(3, 4), (4, 2), (3, 4)], 3, "if", 0.5, 1),
    # very sparse weights, T = 1, fc -> fc, three readout groups
    (2, "1x6x6-5c3p1-mp2-6fc-7fc", [(2, 1), (6, 8), (3, 2)], 1, "lif", 0.9, 3),
])
def test_accelerator_golden(seed, spec, parallelism, T, neuron, sparsity, input_bits):
    a = small(spec, seed=seed, T=T, input_bits=input_bits, sparsity=sparsity,
              neuron=NeuronKind(neuron))
    check(a, parallelism, seed=seed)


@pytest.mark.parametrize("seed", range(4))
def test_accelerator_random_networks(seed):
    """Random small networks (direct-encoded: the first core computes its current once; the
    lanes decoupled by FIFOs of window beats, or joined) equal the golden model bit for bit
    under random input gaps and output stalls."""
    rng = np.random.default_rng(seed)
    spec = ["1x6x6-3c3p1-mp2-4c3p1-5fc", "2x5x5-4c3p0-3fc", "1x4x4-2c3p1-3c3p1-mp2-4fc",
            "3x4x4-5c1p0-mp2-6fc"][seed]
    a = small(spec, seed=seed, T=int(rng.choice([1, 2, 3])), input_bits=int(rng.integers(1, 4)),
              sparsity=float(rng.uniform(0.3, 0.9)), neuron=NeuronKind(rng.choice(["lif", "if"])))
    stages = accelerator_stages(a)
    par = [(int(rng.integers(1, layer.out_channels + 1)), int(rng.choice([1, 2, 4, 8])))
           for _, layer, _ in stages]
    window_depth = [16, 0, 2, 16][seed]
    acc = Accelerator(a, par, window_depth=window_depth)
    assert acc.cores[0].static_input
    images = random_images(a, 3, seed=seed)
    beats = input_beats(a, images)
    trace = _run_pysim(acc, beats, len(images), stall_in=0.2, stall_out=0.3, seed=seed,
                       max_idle=50_000)
    golden = run_golden(a, images)
    for f, value in enumerate(trace.out_payloads):
        scores, index = decode_readout(value, a.classes, acc.score_bits)
        assert scores == [int(v) for v in golden.scores[f]], f"seed {seed}: frame {f}"
        assert index == int(golden.prediction[f]), f"seed {seed}: frame {f}"
    assert len(trace.out_payloads) == len(images)


def test_accelerator_frames_encoding():
    """Event frames (a different input at every step) instead of a repeated image."""
    a = small("2x4x4-3c3p1-mp2-4fc", seed=5, T=2, input_bits=2,
              encoding=InputEncoding.FRAMES)
    check(a, [(2, 2), (4, 4)], seed=5)


def test_accelerator_counters_exact():
    """The profiling counters: window beats per frame are exactly the chunks the orchestrators
    send (those that spike in some step, and each window's last), the pairs exactly the golden
    model's pairs effectual in some step, frames and beats counted right."""
    a = small("1x6x6-4c3p1-mp2-5fc", seed=3, T=2, input_bits=2)
    par = [(3, 1), (2, 4)]
    report, images = check(a, par, seed=3, stall_in=0.0, stall_out=0.0)
    stats = measure_densities(a, images)
    layers = [a.layers[0], a.layers[2]]
    for stage, layer, st, (p_co, p_ci) in zip(report.stages, layers, stats, par):
        co, ho, wo = layer.out_shape
        groups = -(-co // p_co)
        p = layer.padding
        beats = [len(window_beats(np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))),
                                  window_kernel(layer), p_ci, groups)) for x in st.inputs]
        assert stage.window_cycles == pytest.approx(np.mean(beats))
        n_chunks = window_kernel(layer)[0] * window_kernel(layer)[1] * \
            -(-st.inputs.shape[2] // p_ci)
        assert stage.window_cycles < ho * wo * groups * n_chunks
        assert stage.pairs == pytest.approx(st.pairs.sum() / len(images))
        assert stage.simulated_cycles >= stage.window_cycles
    # frames back to back with no stalls: the interval is the slowest core's busy cycles plus
    # its window fill, within the 15 % the core tests allow for the model
    slowest = max(report.stages, key=lambda s: s.simulated_cycles)
    assert report.slowest_stage == slowest.index
    assert slowest.simulated_cycles <= report.cycles_per_frame
    assert report.cycles_per_frame < 1.15 * slowest.predicted_cycles
    assert 0 < report.latency_cycles
    assert 0 < report.utilisation <= 1
    d = report.as_dict()
    for key in ("frames", "mismatches", "cycles_per_frame", "latency_cycles", "clock_hz", "fps",
                "utilisation", "stages"):
        assert key in d
    assert {"predicted_cycles", "simulated_cycles"} <= set(d["stages"][0])
    assert d["fps"] == pytest.approx(d["clock_hz"] / d["cycles_per_frame"])


# --- Verilator ----------------------------------------------------------------------------------

VERILATOR = verilator_unavailable()


def test_reset_wrapper_drives_rst_from_a_register():
    # the wrapper keeps module top's ports but rst (and none of a sub-module's), which a
    # power-on register holds high for two edges: test_accelerator_verilator checks that the
    # cycles still equal pysim's
    verilog = ("module top(clk, rst, input__payload, output__valid);\n  input clk;\n"
               "  input rst;\n  input [7:0] input__payload;\n  output output__valid;\n"
               "  wire x;\nendmodule\nmodule \\top.sub (y, clk);\n  input y;\nendmodule\n")
    text = reset_wrapper(verilog)
    assert "module sim_top(clk, input__payload, output__valid);" in text
    assert "  input [7:0] input__payload;" in text and "input rst" not in text
    assert "input y" not in text
    assert "reg [1:0] por = 2'b11;" in text
    assert ("top dut(.clk(clk), .input__payload(input__payload), "
            ".output__valid(output__valid), .rst(por[1]));") in text
    with pytest.raises(VerilatorError, match="^the Verilog has no module top$"):
        reset_wrapper("module other(a);\nendmodule\n")


@pytest.mark.skipif(VERILATOR is not None, reason=f"Verilator unavailable: {VERILATOR}")
def test_accelerator_verilator():
    """The generated Verilog, compiled with Verilator, equals the golden model (and pysim's
    cycle counts): first build ~1 min, cached afterwards (~/.cache/fireflys/verilator)."""
    a = small("1x6x6-4c3p1-mp2-6c3p1-5fc", seed=1, T=2, input_bits=2)
    par = [(2, 2), (3, 4), (5, 4)]
    v, _ = check(a, par, frames=6, seed=7, backend="verilator", stall_in=0.2, stall_out=0.3)
    assert v.build_seconds is not None and v.sim_cycles_per_second > 0
    # no stalls: Verilator and pysim agree cycle for cycle
    kw = dict(frames=3, seed=1, stall_in=0.0, stall_out=0.0)
    v, _ = check(a, par, backend="verilator", **kw)
    p, _ = check(a, par, backend="pysim", **kw)
    assert (v.cycles_per_frame, v.latency_cycles, v.total_cycles) == \
        (p.cycles_per_frame, p.latency_cycles, p.total_cycles)
    assert [s.simulated_cycles for s in v.stages] == [s.simulated_cycles for s in p.stages]


@pytest.mark.slow
@pytest.mark.skipif(VERILATOR is not None, reason=f"Verilator unavailable: {VERILATOR}")
@pytest.mark.parametrize("seed", range(4))
def test_accelerator_verilator_sweep(seed):
    rng = np.random.default_rng(seed)
    T = int(rng.choice([1, 2, 4]))
    a = small("1x12x12-6c3p1-mp2-8c3p1-mp2-10fc", seed=seed, T=T, input_bits=4,
              sparsity=float(rng.uniform(0.5, 0.95)),
              neuron=NeuronKind(rng.choice(["lif", "if"])))
    check(a, None, frames=16, seed=seed, backend="verilator", stall_in=0.1, stall_out=0.3)


@pytest.mark.slow
@pytest.mark.skipif(VERILATOR is not None, reason=f"Verilator unavailable: {VERILATOR}")
def test_accelerator_verilator_scnn5():
    a = random_artifact("scnn5", weight_sparsity=0.9, spike_density=0.15, seed=0)
    report, _ = check(a, None, frames=8, seed=0, backend="verilator", stall_in=0.0,
                      stall_out=0.0)
    assert report.cycles_per_frame < 60_000


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10, 16))
def test_accelerator_golden_sweep(seed):
    rng = np.random.default_rng(seed)
    T = int(rng.choice([1, 2, 3]))
    a = small("1x8x8-4c3p1-mp2-6c3p1-mp2-5fc", seed=seed, T=T,
              input_bits=int(rng.integers(1, 4)), sparsity=float(rng.uniform(0.3, 0.95)),
              neuron=NeuronKind(rng.choice(["lif", "if"])))
    par = [(int(rng.integers(1, 5)), int(rng.choice([1, 2, 4, 8]))),
           (int(rng.integers(1, 7)), int(rng.choice([1, 2, 4, 8]))),
           (int(rng.integers(1, 6)), int(rng.choice([1, 2, 4, 8])))]
    check(a, par, frames=4, seed=seed)


# --- host side and parameters -------------------------------------------------------------------

@pytest.mark.parametrize("encoding", [InputEncoding.DIRECT, InputEncoding.FRAMES])
def test_input_beats(encoding):
    """One beat per pixel, raster order, every step in it (bit t * C' + c'); direct encoding:
    step 0 only (the same at every t)."""
    a = small("3x2x3-2c3p1-4fc", seed=0, T=2, input_bits=3, encoding=encoding)
    images = random_images(a, 2, seed=1)
    beats = input_beats(a, images)
    steps = 1 if encoding is InputEncoding.DIRECT else 2
    assert beats.shape == (2, 2 * 3, 1) and beats.dtype == np.uint32
    acc = Accelerator(a, [(1, 1), (1, 1)])
    Fragment.get(acc, None)                # elaborated, as an accelerator always is in use
    assert acc.beats_per_frame == 2 * 3 and acc.beat_bits == 9 * steps
    x = np.asarray(encode_input(a, images))
    planes = bit_planes(x, 3)                       # (N, T, C*3, H, W)
    for n in range(2):
        k = 0
        for h in range(2):
            for w in range(3):
                want = sum(int(b) << (t * 9 + j) for t in range(steps)
                           for j, b in enumerate(planes[n, t, :, h, w]))
                assert words_to_int(beats[n, k]) == want
                k += 1


def test_beat_words_wide():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, (5, 70))
    words = beat_words(bits)
    assert words.shape == (5, 3)
    for row, w in zip(bits, words):
        assert words_to_int(w) == sum(int(b) << j for j, b in enumerate(row))


def test_decode_readout():
    value = (3 & 0x1F) | ((-2 & 0x1F) << 5) | ((15 & 0x1F) << 10) | (2 << 15)
    assert decode_readout(value, 3, 5) == ([3, -2, 15], 2)


def test_accelerator_params():
    a = small("1x6x6-4c3p1-mp2-5fc", seed=0)
    with pytest.raises(ValueError, match=r"^parallelism must have 2 \(p_co, p_ci\) pairs \(one "
                                         r"per synaptic layer\), not 1$"):
        Accelerator(a, [(1, 1)])
    with pytest.raises(ValueError, match=r"^parallelism must have the synaptic layers \[0, 2\] "
                                         r"as keys, not \[0, 1\]$"):
        Accelerator(a, {0: (1, 1), 1: (1, 1)})
    with pytest.raises(ValueError, match=r"^fifo_depths must have 1 values \(one per link "
                                         r"between cores\), not 2$"):
        Accelerator(a, [(1, 1), (1, 1)], [4, 4])
    acc = Accelerator(a, {0: (2, 2), 2: (5, 1)})
    Fragment.get(acc, None)                # elaborated, as an accelerator always is in use
    assert acc.parallelism == [(2, 2), (5, 1)]
    assert acc.fifo_depths == [4]          # pooled 3x3 map: a row of 3 beats -> 4
    assert acc.counter_names[:3] == ["cycles", "frames_in", "frames_out"]
    assert len(acc.counter_names) == 3 + 2 * 5
    # direct encoding: one beat per pixel, the first core computes its current once
    assert acc.beats_per_frame == 36 and acc.in_channels == 2 and acc.beat_bits == 2
    assert acc.cores[0].static_input and not acc.cores[1].static_input


def test_accelerator_stages_errors():
    a = small("1x6x6-4c3p1-mp2-5fc", seed=0)
    stages = accelerator_stages(a)
    assert [(i, p is not None) for i, _, p in stages] == [(0, True), (2, False)]
    conv, pool, fc = a.layers
    # the artifact check runs first, so a misplaced pool gets the loader's own line
    with pytest.raises(ValueError, match=r"^artifact 'random-1x6x6-4c3p1-mp2-5fc-seed0': "
                                         r"layers\[0\]\.in_shape is \[4, 6, 6\] but the previous "
                                         r"layer gives \[1, 6, 6\]$"):
        accelerator_stages(dataclasses.replace(a, layers=(pool, conv, pool, fc)))
    readout = dataclasses.replace(conv, neuron=NeuronKind.NONE, threshold=None, leak_shift=0)
    with pytest.raises(ValueError, match=r"layers\[0\]\.out_shape is \[4, 6, 6\]: the readout must "
                                         r"leave one pixel \(one score per class\), e\.g\. an fc "
                                         r"layer$"):
        accelerator_stages(dataclasses.replace(a, layers=(readout,)))

if os.environ.get("FIREFLYS_VCD"):
    def test_accelerator_vcd(tmp_path):
        a = small("1x4x4-2c3p1-3fc", seed=0, T=1, input_bits=1)
        check(a, [(1, 1), (3, 2)], frames=2, vcd=tmp_path / "acc.vcd")
        assert (tmp_path / "acc.vcd").stat().st_size > 0
