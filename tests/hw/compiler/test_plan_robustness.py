"""Plans (``--plan FILE``) are checked for what the gateware can build, one line each; mutated
plans load, or are refused with one line, and an accepted one builds (hypothesis, derandomized;
``benchmarks/fuzz_inputs.py --kinds plans`` runs the same cases by the thousand). The hardware
flow refuses at its entry what the artifact loader refuses (``check_artifact``)."""

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fireflys_hw.compiler import PlanError, load_plan, plan_accelerator, plan_to_dict
from fireflys_hw.flow import build_accelerator, make_plan
from fireflys_hw.fuzzing import plan_bases, plan_case
from fireflys_hw.gateware.accelerator import accelerator_stages
from fireflys_sw.artifact import PoolLayer
from fireflys_sw.errors import ArtifactError
from fireflys_sw.limits import MAX_PLAN_BYTES

FAST = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def base():
    artifact, data = plan_bases()[0]    # 1x8x8-4c3p1-mp2-6c3p1-mp2-5fc, least parallelism
    return artifact, data


def _write(tmp_path, data, text=None):
    path = tmp_path / "plan.json"
    path.write_text(text if text is not None else json.dumps(data))
    return path


def _refused(tmp_path, artifact, data, text=None) -> str:
    with pytest.raises(PlanError) as info:
        make_plan(artifact, plan=_write(tmp_path, data, text))
    message = str(info.value)
    assert "\n" not in message
    # a file's own rules say "plan '<path>': ..."; the rules against the artifact do not
    return message.split(": ", 1)[1] if message.startswith("plan '") else message


def _with(data, **fields):
    data = json.loads(json.dumps(data))
    data["layers"][0].update(fields)
    return data


@pytest.mark.parametrize("fields, message", [
    ({"fifo_depth": 0}, "layers[0].fifo_depth is 0, outside [2, 16777216]"),
    ({"fifo_depth": 1}, "layers[0].fifo_depth is 1, outside [2, 16777216]"),
    ({"cycles": 0}, "layers[0].cycles is 0, less than 1.0"),
    ({"p_ci": 10 ** 19}, "layers[0].p_ci is 10000000000000000000, outside [1, 524288]"),
    ({"p_ci": 2 ** 30}, "layers[0].p_ci is 1073741824, outside [1, 524288]"),
    ({"p_ci": 65536}, "layers[0].p_ci is 65536, more than the 8 bits a chunk can take "
                      "(8 binary input channels)"),
    ({"p_co": 5}, "layers[0].p_co is 5, more than the layer's 4 output channels"),
    ({"pool": 1}, "layers[0].pool is 1: a pool kernel is 0 (none) or at least 2"),
])
def test_plan_field_rules(tmp_path, base, fields, message):
    artifact, data = base
    assert _refused(tmp_path, artifact, _with(data, **fields)) == message


def test_plan_rules_against_the_artifact(tmp_path, base):
    artifact, data = base
    assert _refused(tmp_path, artifact, _with(data, pool=3)) == \
        "plan layer 0 has pool 3, artifact layer 0 is followed by a 2x2 max-pool"
    assert _refused(tmp_path, artifact, _with(data, in_bits=4)).startswith(
        "plan layer 0 has in_bits 4, artifact layer 0 has 8 binary input channels")
    assert _refused(tmp_path, artifact, _with(data, n_chunks=3)) == \
        "plan layer 0 has n_chunks 3, but Kh * Kw * ceil(8 / 1) = 72"


def test_plan_cause_of_issue_16_builds_no_more(tmp_path, base):
    # the plans the review found reaching the gateware now stop at load
    artifact, data = base
    for fields in ({"fifo_depth": 1}, {"cycles": 0}, {"p_ci": 65536}):
        with pytest.raises(PlanError):
            make_plan(artifact, plan=_write(tmp_path, _with(data, **fields)))


def test_plan_file_json_limits(tmp_path, base):
    artifact, data = base
    deep = json.dumps(data)[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert _refused(tmp_path, artifact, data, deep) == \
        "file is nested too deeply (at most 64 levels)"
    assert _refused(tmp_path, artifact, data, json.dumps(data) + " " * MAX_PLAN_BYTES) == \
        f"is larger than the limit of {MAX_PLAN_BYTES} bytes"
    huge = json.dumps(data).replace('"p_ci": ', '"p_ci": ' + "9" * 5000, 1)
    assert _refused(tmp_path, artifact, data, huge).startswith("file is not valid JSON")
    many = dict(data, layers=data["layers"] * 100)
    assert _refused(tmp_path, artifact, many) == \
        "layers has 300 entries, more than the limit of 256"


def test_plan_round_trip_still_loads(tmp_path, base):
    artifact, data = base
    plan = load_plan(_write(tmp_path, data))
    assert plan_to_dict(plan) == data
    build_accelerator(artifact, plan, profile=False)


@settings(FAST, max_examples=120)
@given(seed=st.integers(0, 2**32 - 1))
def test_mutated_plans_load_or_refuse(tmp_path_factory, seed):
    result = plan_case(seed, tmp_path_factory.mktemp("plans"))
    assert result.outcome in ("accepted", "refused"), (seed, result)


def test_flow_refuses_what_the_loader_refuses(base):
    # an Artifact built in Python with a pool after a pool: ArtifactError (one line) at every
    # entry of the hardware flow, not a traceback inside the gateware
    artifact, _ = base
    layers = list(artifact.layers)
    pool = layers[1]
    c, h, w = pool.out_shape
    second = dataclasses.replace(pool, in_shape=(c, h, w), out_shape=(c, h // 2, w // 2))
    bad = dataclasses.replace(artifact, layers=tuple(layers[:2] + [second] + layers[2:]))
    assert isinstance(second, PoolLayer)
    for call in (lambda: accelerator_stages(bad), lambda: make_plan(bad),
                 lambda: plan_accelerator(bad, 0.1)):
        with pytest.raises(ArtifactError, match=r"^artifact '.*': layers\[2\]\.kind maxpool "
                                                r"must directly follow"):
            call()
