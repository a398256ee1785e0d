# amaranth: UnusedElaboratable=no
"""The link's version 2 (sequence number, CRC, checked results) in the gateware and the host
driver, with injected faults (issue 16).

Against the simulated gateware (:mod:`fireflys_hw.sim.serial`): a damaged frame is flagged in
its result, records carry valid CRCs and echo the frame's ``seq``, the byte-level link model
sends the same bytes, and the host gets golden scores through damaged lines. Against the link
model (thousands of cases, the fuzz section ``link``): bit flips, dropped, duplicated,
inserted and truncated bytes, duplicated and dropped records, wrong info records: the host
returns golden scores or fails with one line, never a wrong score.
"""

import dataclasses
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fireflys_hw.flow import build_accelerator, make_plan
from fireflys_hw.fuzzing import _WRONG_INFO, _wrong_info, link_bases, link_case
from fireflys_hw.gateware.link import link_info
from fireflys_hw.host.beats import input_beats
from fireflys_hw.host.board import Board, BoardError
from fireflys_hw.host.protocol import (INFO_REQUEST, RESULT_SYNC, crc_ok, encode_readout,
                                       frame_bytes, model_id)
from fireflys_hw.sim.linkmodel import FAULTS, FaultyPort, LinkModel
from fireflys_hw.sim.serial import simulated_board
from fireflys_sw.golden import run_golden
from fireflys_sw.synthetic import random_artifact, random_images

FAST = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def tiny():
    art = random_artifact("1x4x4-2c3p1-mp2-3fc", seed=0, T=2, input_bits=2,
                          weight_sparsity=0.5, spike_density=0.3)
    plan = make_plan(art, parallelism=[(2, 2), (3, 2)])
    images = random_images(art, 3, seed=4)
    return art, plan, images, run_golden(art, images)


def _board(tiny):
    art, plan, _, _ = tiny
    return simulated_board(build_accelerator(art, plan, profile=False), divisor=4,
                           model_id=model_id(art))


def _model(tiny):
    art, plan, images, golden = tiny
    info = link_info(build_accelerator(art, plan, profile=False), model_id(art))
    beats = input_beats(art, images)
    lookup = {frame_bytes(beats[k], info.beat_bits)[2:-2]:
              encode_readout(golden.scores[k], golden.prediction[k], info.classes,
                             info.score_bits) for k in range(len(images))}
    return info, lookup


def test_gateware_flags_a_damaged_frame_and_echoes_seq(tiny):
    art, _, images, golden = tiny
    info, _ = _model(tiny)
    port = _board(tiny)
    beats = input_beats(art, images)
    damaged = bytearray(frame_bytes(beats[0], info.beat_bits, seq=5))
    damaged[3] ^= 0x04
    port.write(bytes(damaged) + frame_bytes(beats[1], info.beat_bits, seq=6))
    n = 1 + info.record_bytes
    first, second = port.read(n), port.read(n)
    assert first[0] == RESULT_SYNC and first[1] == 5 and first[2] == 1 and crc_ok(first[1:])
    assert second[:3] == bytes([RESULT_SYNC, 6, 0]) and crc_ok(second[1:])
    want = encode_readout(golden.scores[1], golden.prediction[1], info.classes,
                          info.score_bits)
    assert int.from_bytes(second[3:-2], "little") == want


def test_gateware_and_link_model_send_the_same_bytes(tiny):
    art, _, images, _ = tiny
    info, lookup = _model(tiny)
    beats = input_beats(art, images)
    stream = bytes([0x13, INFO_REQUEST]) + b"".join(
        frame_bytes(beats[k], info.beat_bits, seq=200 + k) for k in range(len(images)))
    port = _board(tiny)
    port.write(stream)
    want_len = 1 + len(info.to_bytes()) + len(images) * (1 + info.record_bytes)
    got = port.read(want_len)
    model = LinkModel(info, lookup.__getitem__)
    model.write(stream)
    assert got == model.read(want_len) and len(got) == want_len


@pytest.mark.parametrize("kind, seed, rate", [("flip_in", 1, 0.05), ("flip_out", 2, 0.05),
                                              ("duplicate_record", 3, 1.0)])
def test_host_gets_golden_scores_through_a_damaged_line_to_the_gateware(tiny, kind, seed, rate):
    art, _, images, golden = tiny
    info, _ = _model(tiny)
    port = FaultyPort(_board(tiny), kind, random.Random(seed), rate=rate, budget=1,
                      record_bytes=1 + info.record_bytes)
    board = Board(port, timeout=60, retries=3)
    result = board.classify(art, images)
    np.testing.assert_array_equal(result.scores, golden.scores)
    np.testing.assert_array_equal(result.predictions, golden.prediction)
    assert port.injected == 1 and board.faults, board.faults


@pytest.mark.parametrize("which, message", [
    ("version 99", r"^the board on model: the board speaks link protocol version 99, this "
                   r"host version 2: build the bitstream and run the host with the same "
                   r"fireflys$"),
    ("score_bits 0", r"^the board on model: the board reports score_bits 0 \(2\.\.64 are "
                     r"readable\)$"),
    ("bigger beat_bits", r"^random-1x4x4-2c3p1-mp2-3fc-seed0 gives 16 beats of 2 bits per "
                         r"frame, the board on model takes 16 of 10$"),
    ("model_id", r"^the board on model carries model 0x[0-9a-f]{8}, not "),
    ("score_bits + 1", r"^the board on model reports score_bits \d+, "
                       r"random-1x4x4-2c3p1-mp2-3fc-seed0's readout has \d+$"),
])
def test_wrong_info_records_are_refused_with_one_line(which, message):
    base = link_bases()[0]
    port = LinkModel(base["info"], lambda frame: 0, info_bytes=_wrong_info(base["info"], which))
    with pytest.raises(BoardError, match=message):
        Board(port, timeout=0.01).classify(base["artifact"], base["images"])


def test_a_damaged_info_record_is_asked_for_again():
    base = link_bases()[0]
    port = FaultyPort(LinkModel(base["info"], lambda frame: 0), "flip_out", random.Random(0),
                      rate=1.0, budget=1)
    board = Board(port, timeout=0.01)
    assert board.info() == base["info"]
    # the one flipped bit hit the sync byte or the record: asked once more either way
    assert len(board.faults) == 1 and board.faults[0].startswith("the info request: ")


def test_a_board_that_keeps_failing_ends_in_one_line():
    base = link_bases()[0]
    port = FaultyPort(LinkModel(base["info"], dict(zip(base["payloads"],
                                                       base["values"])).__getitem__),
                      "flip_in", random.Random(0), rate=1.0, budget=10 ** 9)
    # every byte to the board damaged: the info request already fails, after 4 tries
    with pytest.raises(BoardError, match=r"^(no answer from the board|the result from the "
                                         r"board|unexpected byte).* \((frame 0|the info "
                                         r"request), 4 tries\)$"):
        Board(port, timeout=0.01).classify(base["artifact"], base["images"])


def test_every_fault_kind_is_drawn():
    kinds = set()
    for seed in range(400):
        kinds.add(link_case(seed).label)
    assert {f"fault {k}" for k in FAULTS} | {f"info {w}" for w in _WRONG_INFO} == kinds


@settings(FAST, max_examples=150)
@given(seed=st.integers(0, 2**32 - 1))
def test_corrupted_link_streams_never_give_a_wrong_score(seed):
    result = link_case(seed)
    assert result.outcome in ("accepted", "refused"), (seed, result)
