"""Runs in parts: ``fireflys simulate --jobs J`` (Verilator processes at once) and ``--shard
K/N`` with ``fireflys merge-reports`` (a job array's slices joined): the merged report is one
run's for the same frames."""

import json
from dataclasses import replace

import pytest

from fireflys_hw.cli import shard_spec
from fireflys_hw.report import MergeError, merge_parts, merge_reports, part_from_dict
from fireflys_hw.sim.run import split_frames
from fireflys_hw.sim.verilator import verilator_unavailable
from fireflys_sw.artifact import save_artifact
from fireflys_sw.cli import main
from fireflys_sw.synthetic import random_artifact

#: What a run in several pipelines may differ in from one run (each part starts empty; the
#: report's parts_note says so); everything else must be equal.
PER_PIPELINE = {"total_cycles", "sim_seconds", "sim_cycles_per_second", "build_seconds",
                "convert_seconds", "parts", "parts_note", "observed_interval",
                "steady_state_reliable", "steady_state_note"}


def test_split_frames():
    assert split_frames(7, 3) == [(0, 2), (2, 4), (4, 7)]
    assert split_frames(4, 4) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert split_frames(5, 1) == [(0, 5)]
    for n in range(1, 30):
        for parts in range(1, n + 1):
            slices = split_frames(n, parts)
            assert slices[0][0] == 0 and slices[-1][1] == n
            assert all(a < b for a, b in slices)
            assert all(b == c for (_, b), (c, _) in zip(slices, slices[1:]))
            assert max(b - a for a, b in slices) - min(b - a for a, b in slices) <= 1
    with pytest.raises(ValueError, match=r"^cannot split 2 frames into 3 non-empty parts$"):
        split_frames(2, 3)


def test_shard_spec():
    import argparse
    assert shard_spec("2/4") == (2, 4) and shard_spec(" 1/1 ") == (1, 1)
    for text, why in (("3/2", r"1 <= K <= N"), ("0/2", r"1 <= K <= N"), ("x", "K/N"),
                      ("1/2/3", "K/N"), ("-1/2", "K/N"), ("1.5/2", "K/N"), ("", "K/N")):
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            shard_spec(text)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One run of 3 random frames and the same frames as shards 1/2 and 2/2, in pysim (the
    shards' logic does not depend on the backend), through the CLI: the report files."""
    d = tmp_path_factory.mktemp("shards")
    tiny = random_artifact("1x4x4-2c3p1-mp2-3fc", seed=0, T=2, input_bits=2,
                           weight_sparsity=0.5, spike_density=0.3)
    model = str(save_artifact(tiny, d / "tiny.npz"))
    base = ["simulate", model, "--images", "3", "--backend", "pysim", "--parallelism",
            "2:2,3:2"]
    assert main(base + ["--report", str(d / "one.json")]) == 0
    for k in (1, 2):
        assert main(base + ["--shard", f"{k}/2", "--report", str(d / f"part{k}.json")]) == 0
    return d, base


def test_merged_report_is_one_runs(runs, capsys):
    d, _ = runs
    one = json.loads((d / "one.json").read_text())
    parts = [json.loads((d / f"part{k}.json").read_text()) for k in (1, 2)]
    assert [(p["first_frame"], p["frames"]) for p in parts] == [(0, 1), (1, 2)]
    assert main(["merge-reports", str(d / "part2.json"), str(d / "part1.json"), "--json",
                 "--report", str(d / "merged.json")]) == 0
    merged = json.loads(capsys.readouterr().out)
    assert json.loads((d / "merged.json").read_text()) == merged
    assert one["parts"] == 1 and merged["parts"] == 2 and "separate pipelines" in \
        merged["parts_note"]
    assert merged["frames"] == 3 and merged["mismatches"] == 0
    differ = {k for k in set(one) | set(merged) if one.get(k) != merged.get(k)}
    assert differ <= PER_PIPELINE, {k: (one.get(k), merged.get(k)) for k in differ - PER_PIPELINE}
    # the per-core work counters add up exactly; each part's fill and drain are its own
    assert merged["counters"] == one["counters"]
    assert merged["total_cycles"] >= one["total_cycles"]
    # the text form says how the parts combine
    assert main(["merge-reports", str(d / "part1.json"), str(d / "part2.json")]) == 0
    out = capsys.readouterr().out
    assert "merged 2 partial reports: 3 frames" in out and "separate pipelines" in out


def test_merge_refuses_what_is_not_one_run(runs):
    d, _ = runs
    data = [json.loads((d / f"part{k}.json").read_text()) for k in (1, 2)]

    def merge(*parts):
        return merge_parts([(p, f"p{i}") for i, p in enumerate(parts)])

    with pytest.raises(MergeError, match=r"^p1 and p0 are both shard 1/2$"):
        merge(data[0], data[0])
    with pytest.raises(MergeError, match=r"^shard 2/2 is missing$"):
        merge(data[0])
    with pytest.raises(MergeError, match=r"^p1 and p0 differ in model \(its weights and shapes"):
        merge(data[0], dict(data[1], model_id=data[1]["model_id"] ^ 1))
    with pytest.raises(MergeError, match=r"^p1 and p0 differ in plan"):
        merge(data[0], dict(data[1], plan_id="0" * 16))
    with pytest.raises(MergeError, match=r"^p1 and p0 differ in artifact"):
        merge(data[0], dict(data[1], artifact="other"))
    with pytest.raises(MergeError, match=r"different splits"):
        merge(data[0], dict(data[1], shard={"index": 2, "count": 3, "frames_total": 3}))
    with pytest.raises(MergeError, match=r"^p0: not a partial simulation report"):
        merge({"frames": 3})
    with pytest.raises(MergeError, match=r"^p0: a partial simulation report with a missing"):
        merge({k: v for k, v in data[0].items() if k != "counters"})
    # slices that overlap or leave a gap (merge_reports checks the frames themselves)
    a, _, _ = part_from_dict(data[0], "a")
    b, _, _ = part_from_dict(data[1], "b")
    with pytest.raises(MergeError, match=r"^frame 0 is in b and in another part "
                                         r"\(overlapping slices\)$"):
        merge_reports([a, replace(b, first_frame=0)], names=["a", "b"])
    with pytest.raises(MergeError, match=r"^frame 1 is in no part \(missing a slice before b\)$"):
        merge_reports([a, replace(b, first_frame=2)], names=["a", "b"], frames_total=4)
    with pytest.raises(MergeError, match=r"^frames 1-2 are in no part "
                                         r"\(missing slices of 3 frames\)$"):
        merge_reports([a], frames_total=3)


def _one_line_error(capsys, argv):
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and err and ": error: " in err[-1], err
    assert not any("Traceback" in line for line in err), err
    return err[-1]


def test_bad_arguments_one_line(runs, capsys, tmp_path):
    d, base = runs
    assert "1 <= K <= N" in _one_line_error(capsys, base + ["--shard", "3/2"])
    assert "--jobs" in _one_line_error(capsys, base + ["--jobs", "0"])
    assert "--backend pysim runs in this process" in _one_line_error(
        capsys, base + ["--jobs", "2"])
    assert "leave some empty" in _one_line_error(
        capsys, base + ["--shard", "1/4", "--report", str(tmp_path / "p.json")])
    assert "needs --report FILE" in _one_line_error(capsys, base + ["--shard", "1/2"])
    assert "does not exist" in _one_line_error(
        capsys, base + ["--shard", "1/2", "--report", str(tmp_path / "no" / "p.json")])
    junk = tmp_path / "junk.json"
    junk.write_text("{")
    assert "not JSON" in _one_line_error(capsys, ["merge-reports", str(junk)])
    assert "cannot read" in _one_line_error(capsys, ["merge-reports", str(tmp_path / "none")])
    assert "both shard 1/2" in _one_line_error(
        capsys, ["merge-reports", str(d / "part1.json"), str(d / "part1.json")])
    assert "not a partial simulation report" in _one_line_error(
        capsys, ["merge-reports", str(d / "one.json")])


VERILATOR = verilator_unavailable()


@pytest.mark.slow
@pytest.mark.skipif(VERILATOR is not None, reason=f"Verilator unavailable: {VERILATOR}")
def test_jobs_equal_one_run_verilator(tmp_path):
    """--jobs 3 on Verilator (one build, three processes at once) against one process, and
    against the shards merged: the same report but for each pipeline's own fill."""
    from fireflys_hw.flow import make_plan, simulate_accelerator
    from fireflys_sw.synthetic import random_images
    a = random_artifact("1x8x8-4c3p1-mp2-6c3p1-5fc", seed=2, T=2, input_bits=2,
                        weight_sparsity=0.6, spike_density=0.3)
    images = random_images(a, 7, seed=4)
    plan = make_plan(a, parallelism=[(2, 2), (3, 4), (5, 4)])
    one = simulate_accelerator(a, images, plan=plan)
    jobs = simulate_accelerator(a, images, plan=plan, jobs=3)
    shards = [simulate_accelerator(a, images[s:e], plan=plan, sample=images, first_frame=s)
              for s, e in split_frames(7, 2)]
    merged = merge_reports(shards)
    assert jobs.parts == 3 and merged.parts == 2 and one.mismatches == 0
    for other in (jobs, merged):
        d1, d2 = one.as_dict(), other.as_dict()
        differ = {k for k in set(d1) | set(d2) if d1.get(k) != d2.get(k)}
        assert differ <= PER_PIPELINE, differ
        assert (other.scores == one.scores).all()
