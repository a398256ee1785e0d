"""What a clock relies on (fireflys_hw.timing): the levels a clock allows, and the depth a
synthesis measured, kept per design and quoted by compile and simulate."""

import dataclasses
from types import SimpleNamespace

import pytest

from fireflys_hw.depth import PathDepth
from fireflys_hw.timing import clock_note, design_key, levels_for, record_depth, recorded_depth


@dataclasses.dataclass(frozen=True)
class _Layer:
    index: int
    p_co: int
    p_ci: int
    fifo_depth: int = 8
    dense: bool = False


@dataclasses.dataclass(frozen=True)
class _Plan:
    layers: tuple
    clock_hz: float = 333e6


def _report(levels=9):
    deep = PathDepth(levels, 3, "synapses.detector2.b_pair", "synapses.level[4]", ("LUT6",))
    cores = (SimpleNamespace(index=0, depth=PathDepth(5, 5, "a", "b")),
             SimpleNamespace(index=2, depth=deep))
    return SimpleNamespace(depth=deep, depth_module="top.core1", cores=cores, family="xcup",
                           artifact="net")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FIREFLYS_CACHE", str(tmp_path))
    return tmp_path


def test_levels_a_clock_allows():
    assert levels_for(333e6) == 6          # 3 ns at 0.5 ns per level (issue 14's figure)
    assert levels_for(100e6) == 20
    assert levels_for(100e6, "xc7") == 12
    assert levels_for(125e6, "ecp5") == 5
    assert levels_for(10e9) == 1


def test_depth_is_kept_per_design(cache):
    plan = _Plan((_Layer(0, 1, 8, dense=True), _Layer(2, 16, 8)))
    assert recorded_depth(7, plan) is None
    path = record_depth(7, plan, _report())
    assert path.parent == cache / "depth"
    record = recorded_depth(7, plan)
    assert record["levels"] == 9 and record["cores"] == {"0": 5, "2": 9}
    assert record["where"] == ("layer 2's core: synapses.detector2.b_pair -> "
                               "synapses.level[4]")
    # the clock and the budgets are not the design; parallelism, FIFOs and the model are
    assert recorded_depth(7, dataclasses.replace(plan, clock_hz=100e6)) == record
    other = _Plan((_Layer(0, 1, 8, dense=True), _Layer(2, 8, 8)))
    assert design_key(7, other, "xcup") != design_key(7, plan, "xcup")
    assert recorded_depth(7, other) is None and recorded_depth(8, plan) is None
    assert recorded_depth(7, plan, "ecp5") is None
    # a damaged record is no record
    path.write_text("{not json")
    assert recorded_depth(7, plan) is None


def test_clock_note(cache):
    plan = _Plan((_Layer(0, 4, 4),))
    note = clock_note(7, plan, 333e6, "net")
    assert note["levels_allowed"] == 6 and note["levels_measured"] is None
    assert note["note"] == ("333 MHz needs at most about 6 logic levels between registers on "
                            "xcup (estimate, 0.5 ns per level with routing); this design's "
                            "depth is not measured: `fireflys synth net --family xcup` "
                            "measures it")
    record_depth(7, plan, _report(9))
    note = clock_note(7, plan, 333e6, "net")
    assert note["levels_measured"] == 9
    assert note["note"].endswith("; this design measures 9 (layer 2's core: "
                                 "synapses.detector2.b_pair -> synapses.level[4]), so 333 MHz "
                                 "is out of reach (about 222 MHz)")
    assert clock_note(7, plan, 100e6, "net")["note"].endswith("within it")
