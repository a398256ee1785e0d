"""Logic depth from a Yosys JSON netlist (:mod:`fireflys_hw.depth`)."""

import pytest

from fireflys_hw.depth import PathDepth, module_depth, netlist_depth


def _cell(kind, ins, outs):
    conns = {**{f"I{k}": [b] for k, b in enumerate(ins)},
             **{f"O{k}": [b] for k, b in enumerate(outs)}}
    dirs = {**{f"I{k}": "input" for k in range(len(ins))},
            **{f"O{k}": "output" for k in range(len(outs))}}
    return {"type": kind, "connections": conns, "port_directions": dirs}


def _ff(d, q):
    return {"type": "FDRE", "connections": {"C": [2], "D": [d], "Q": [q]},
            "port_directions": {"C": "input", "D": "input", "Q": "output"}}


def _module():
    # ra (bit 10) -> LUT -> CARRY8 -> LUT -> rb (bit 20); ra -> LUT -> rc (bit 30): the deeper
    # path is 3 levels (2 LUTs), from ra's output to rb's input
    return {
        "ports": {"clk": {"direction": "input", "bits": [2]},
                  "o": {"direction": "output", "bits": [30]}},
        "cells": {
            "ra": _ff(21, 10), "rb": _ff(13, 20), "rc": _ff(31, 30),
            "l1": _cell("LUT3", [10, "0"], [11]),
            "c1": _cell("CARRY8", [11, 10], [12]),
            "l2": _cell("LUT6", [12, 11], [13]),
            "l3": _cell("LUT2", [10], [31]),
            "l4": _cell("LUT1", [20], [21]),
        },
        "netnames": {"a_q": {"bits": [10], "hide_name": 0}, "b_d": {"bits": [13], "hide_name": 0},
                     "$auto$x": {"bits": [13], "hide_name": 1},
                     "sum": {"bits": [12, 11], "hide_name": 0}},
    }


def test_deepest_path_between_registers():
    d = module_depth(_module(), "xcup")
    assert d == PathDepth(levels=3, luts=2, start="a_q", end="b_d",
                          cells=("LUT3", "CARRY8", "LUT6"))
    assert d.as_dict()["path"] == ["LUT3", "CARRY8", "LUT6"]


def test_ram_and_ports_break_paths():
    m = _module()
    # rb becomes a LUT RAM: still a break; an output port is an end
    m["cells"]["rb"]["type"] = "RAM32M"
    assert module_depth(m, "xcup").levels == 3
    m["cells"]["rb"]["type"] = "LUT1"           # now combinational: ra -> ... -> rb -> l4 -> ra
    m["cells"]["rb"]["port_directions"]["Q"] = "output"
    assert module_depth(m, "xcup").levels == 5


def test_combinational_loop_and_bad_family():
    m = _module()
    m["cells"]["ra"]["type"] = "LUT1"
    m["cells"]["rb"]["type"] = "LUT1"
    with pytest.raises(ValueError, match=r"^combinational loop through cell "):
        module_depth(m, "xcup")
    with pytest.raises(ValueError, match=r"^family must be one of xc7, xcup, ecp5, not 'ice40'$"):
        netlist_depth({"modules": {}}, "ice40")


def test_netlist_skips_library_cells():
    netlist = {"modules": {"top": _module(), "LUT6": {"attributes": {"blackbox": 1}}}}
    assert list(netlist_depth(netlist, "xcup")) == ["top"]
    assert netlist_depth(netlist, "xcup", modules=["none"]) == {}


# --- the gate on the gateware's logic depth -------------------------------------------------------

#: The most logic levels any core may have after ``synth_xilinx -family xcup`` (flip-flops and LUT
#: RAM breaking paths): issue 14's target. Every core of this test's network measures 5-6 since
#: the window FIFO's registered read, the detector's R stage, the block-RAM table for big
#: tables, the thermometer result credit and the readout's registered adder tree.
XCUP_DEPTH_LIMIT = 6


@pytest.mark.slow
@pytest.mark.synth
def test_every_core_within_the_depth_limit(tmp_path, monkeypatch):
    # a small network with every kind of core: the dense first layer, detector conv cores at
    # P_Ci < Ci and = Ci, max-pooling and the fc readout with its argmax
    from fireflys_hw.flow import make_plan
    from fireflys_hw.synth import synthesise_accelerator
    from fireflys_sw.synthetic import random_artifact
    monkeypatch.setenv("FIREFLYS_CACHE", str(tmp_path))
    art = random_artifact("1x12x12-8c3p1-16c3p1-mp2-16c3p1-mp2-10fc", seed=1, T=4)
    plan = make_plan(art, device="xczu5ev")
    assert plan.dense_first
    report = synthesise_accelerator(art, plan, family="xcup")
    deep = {c.index: c.depth.levels for c in report.cores}
    assert len(deep) == len(plan.layers)
    assert max(deep.values()) <= XCUP_DEPTH_LIMIT, \
        f"cores deeper than {XCUP_DEPTH_LIMIT} levels: {deep} ({report.depth})"
    assert report.links_depth.levels <= XCUP_DEPTH_LIMIT
