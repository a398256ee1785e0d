# amaranth: UnusedElaboratable=no
"""The UART, the host link and the host driver, against the simulated board top.

The round trips run the real gateware (UART receiver and transmitter, byte FIFO, link,
accelerator) in Amaranth's simulator behind a simulated serial line
(:class:`fireflys_hw.sim.serial.SimulatedSerial`) at a few clocks per bit, and compare every
score and class with :func:`fireflys_sw.golden.run_golden`.
"""

import random
import socket
import threading

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring

from fireflys_hw.flow import build_accelerator, make_plan
from fireflys_hw.host.beats import input_beats
from fireflys_hw.host.board import Board, BoardError
from fireflys_hw.gateware.link import UARTBridge, link_info
from fireflys_hw.host.protocol import (FRAME_SYNC, INFO_BYTES, LinkInfo, crc16, frame_bytes,
                                       model_id)
from fireflys_hw.sim.serial import SimulatedSerial, simulated_board
from fireflys_hw.gateware.uart import UARTReceiver, UARTTransmitter, baud_divisor
from fireflys_sw.artifact import save_artifact
from fireflys_sw.cli import main
from fireflys_sw.golden import run_golden
from fireflys_sw.synthetic import random_artifact, random_images
from streams_helpers import put, run_sim


@pytest.fixture(scope="module")
def tiny():
    return random_artifact("1x4x4-2c3p1-mp2-3fc", seed=0, T=2, input_bits=2,
                           weight_sparsity=0.5, spike_density=0.3)


@pytest.fixture(scope="module")
def tiny_plan(tiny):
    return make_plan(tiny, parallelism=[(2, 2), (3, 2)])


# --- UART --------------------------------------------------------------------------------------

class _Loop(wiring.Component):
    """A transmitter wired to a receiver."""

    def __init__(self, tx_divisor, rx_divisor):
        self.tx = UARTTransmitter(tx_divisor)
        self.rx = UARTReceiver(rx_divisor)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.tx, m.submodules.rx = self.tx, self.rx
        m.d.comb += self.rx.rx.eq(self.tx.tx)
        return m


def _loop_bytes(dut, data, stall_prob, rng, max_cycles):
    """Send ``data`` through the loop (random gaps before bytes with ``stall_prob``) and take
    every received byte; return them and the receiver's (overrun, framing error) at the end."""
    got, errors = [], []

    async def producer(ctx):
        await put(ctx, dut.tx.data, data, stall_prob=stall_prob, rng=rng)

    async def consumer(ctx):
        ctx.set(dut.rx.data.ready, 1)
        while len(got) < len(data):
            _, _, valid, payload = await ctx.tick().sample(dut.rx.data.valid,
                                                           dut.rx.data.payload)
            if valid:
                got.append(int(payload))
        errors.extend([ctx.get(dut.rx.overrun), ctx.get(dut.rx.framing_error)])

    run_sim(dut, producer, consumer, max_cycles=max_cycles)
    return got, tuple(errors)


@pytest.mark.parametrize("divisor", [4, 7])
def test_uart_loopback(divisor):
    rng = random.Random(divisor)
    data = [rng.randrange(256) for _ in range(40)] + [0x00, 0xFF, 0x55, 0xAA]
    got, errors = _loop_bytes(_Loop(divisor, divisor), data, 0.3, rng,
                              max_cycles=40 * 12 * divisor * 3)
    assert errors == (0, 0)
    assert got == data


def test_uart_tolerates_two_percent_baud_error():
    # the receiver's clock 2 % off the transmitter's: the mid-bit sample still lands in the bit
    data = list(range(0, 256, 7))
    got, _ = _loop_bytes(_Loop(50, 51), data, 0.0, None, max_cycles=len(data) * 12 * 51 * 2)
    assert got == data


def test_uart_overrun_and_framing_error():
    dut = UARTReceiver(4)

    async def bench(ctx):
        ctx.set(dut.data.ready, 0)

        async def send(byte, stop=1):
            for level in [0] + [(byte >> i) & 1 for i in range(8)] + [stop]:
                ctx.set(dut.rx, level)
                await ctx.tick().repeat(4)
            ctx.set(dut.rx, 1)
            await ctx.tick().repeat(8)

        await send(0x12)
        assert ctx.get(dut.data.valid) and ctx.get(dut.data.payload) == 0x12
        assert not ctx.get(dut.overrun)
        await send(0x34)                   # the first byte was not taken
        assert ctx.get(dut.overrun) and ctx.get(dut.data.payload) == 0x12
        await send(0x56, stop=0)
        assert ctx.get(dut.framing_error)

    run_sim(dut, bench, max_cycles=2_000)


def test_uart_divisor_errors():
    with pytest.raises(ValueError, match=r"^divisor must be an integer of at least 4 \(clocks "
                                         r"per bit\), not 3$"):
        UARTReceiver(3)
    assert baud_divisor(100e6, 115_200) == 868
    assert baud_divisor(25e6, 115_200) == 217
    with pytest.raises(ValueError, match=r"^baud 3000000 is too fast for a 10 MHz clock"):
        baud_divisor(10e6, 3_000_000)
    with pytest.raises(ValueError, match=r"^baud 2500000 is 4\.0 % off at 12 MHz"):
        baud_divisor(12e6, 2_500_000)


# --- protocol ----------------------------------------------------------------------------------

def test_protocol_frame_and_info(tiny):
    images = random_images(tiny, 2, seed=3)
    beats = input_beats(tiny, images)
    wire = frame_bytes(beats[0], 2, seq=7)
    assert wire[0] == FRAME_SYNC and wire[1] == 7 and len(wire) == 2 + beats.shape[1] + 2
    assert list(wire[2:-2]) == [int(w) & 0xFF for w in beats[0, :, 0]]
    assert int.from_bytes(wire[-2:], "little") == crc16(wire[1:-2])
    assert crc16(b"123456789") == 0x29B1          # CRC-16/CCITT-FALSE's check value
    info = LinkInfo(beat_bits=36, beats_per_frame=784, result_bits=124, classes=10,
                    score_bits=12, model_id=0xDEADBEEF)
    assert len(info.to_bytes()) == INFO_BYTES + 2
    assert LinkInfo.from_bytes(info.to_bytes()) == info
    assert info.frame_bytes == 784 * 5
    assert model_id(tiny) == model_id(random_artifact(
        "1x4x4-2c3p1-mp2-3fc", seed=0, T=2, input_bits=2, weight_sparsity=0.5,
        spike_density=0.3, name="another name"))
    assert model_id(tiny) != model_id(random_artifact(
        "1x4x4-2c3p1-mp2-3fc", seed=1, T=2, input_bits=2, weight_sparsity=0.5,
        spike_density=0.3))


# --- round trips through the simulated board ---------------------------------------------------

@pytest.mark.parametrize("divisor,window", [(4, 1), (5, 3)])
def test_board_round_trip_bit_exact(tiny, tiny_plan, divisor, window):
    port = simulated_board(build_accelerator(tiny, tiny_plan, profile=False), divisor=divisor,
                           model_id=model_id(tiny))
    images = random_images(tiny, 5, seed=divisor)
    with Board(port, timeout=60) as board:
        info = board.check(tiny)
        assert info == link_info(build_accelerator(tiny, tiny_plan, profile=False),
                                 model_id(tiny))
        result = board.classify(tiny, images, window=window)
    golden = run_golden(tiny, images)
    np.testing.assert_array_equal(result.scores, golden.scores)
    np.testing.assert_array_equal(result.predictions, golden.prediction)
    assert not port.overrun and not port.framing_error


def test_board_frames_encoding_three_byte_beats():
    # frames encoding (a different input at every step): one beat per pixel with every step;
    # 2 steps of 3 channels of 4 bits make 24-bit beats, three bytes each on the wire
    from fireflys_sw.artifact import InputEncoding
    art = random_artifact("3x4x4-2c3p1-mp2-2fc", seed=2, T=2, input_bits=4,
                          weight_sparsity=0.5, spike_density=0.3,
                          encoding=InputEncoding.FRAMES)
    plan = make_plan(art, parallelism=[(1, 4), (2, 4)])
    acc = build_accelerator(art, plan, profile=False)
    assert link_info(acc).beat_bits == 24 and link_info(acc).beats_per_frame == 4 * 4
    port = simulated_board(acc, divisor=4, model_id=model_id(art))
    images = random_images(art, 3, seed=5)
    with Board(port, timeout=60) as board:
        result = board.classify(art, images, window=2)
    golden = run_golden(art, images)
    np.testing.assert_array_equal(result.scores, golden.scores)
    np.testing.assert_array_equal(result.predictions, golden.prediction)


def test_board_ignores_noise_between_frames_and_resyncs(tiny, tiny_plan):
    port = simulated_board(build_accelerator(tiny, tiny_plan, profile=False), divisor=4,
                           model_id=model_id(tiny))
    images = random_images(tiny, 2, seed=9)
    beats = input_beats(tiny, images)
    golden = run_golden(tiny, images)
    with Board(port, timeout=60) as board:
        info = board.info()
        # a frame cut short, then resync: the board must be back in step
        port.write(frame_bytes(beats[0], info.beat_bits)[:7])
        board.resync()
        port.write(bytes([0x00, 0x13, 0xFF]))        # noise between frames is ignored
        board.send_frame(beats[1])
        scores, index = board.read_result()
    assert scores == list(golden.scores[1]) and index == golden.prediction[1]


def test_board_rx_overrun_flag():
    # a core far slower than the line (P_Co = P_Ci = 1 on 8-bit input planes: ~600 cycles per
    # pixel against 40 per byte) and a 2-byte receive FIFO: bytes are lost, and the flag says so
    slow = random_artifact("1x4x4-8c3p1-mp2-3fc", seed=0, T=2, input_bits=8,
                           weight_sparsity=0.5, spike_density=0.3)
    acc = build_accelerator(slow, make_plan(slow, parallelism=[(1, 1), (1, 1)]), profile=False)
    port = SimulatedSerial(UARTBridge(acc, divisor=4, rx_fifo_depth=2), max_cycles=20_000)
    for frame in input_beats(slow, random_images(slow, 4, seed=1)):
        port.write(frame_bytes(frame, 8))
    with pytest.raises(OSError, match=r"^the simulated board lost bytes \(receive overrun\)"):
        port.read(1000)
    assert port.overrun and not port.framing_error
    # the host driver turns it into one line
    port = SimulatedSerial(UARTBridge(build_accelerator(slow, make_plan(
        slow, parallelism=[(1, 1), (1, 1)]), profile=False), divisor=4, rx_fifo_depth=2,
        model_id=model_id(slow)), max_cycles=20_000)
    with pytest.raises(BoardError, match=r"^serial port sim: the simulated board lost bytes"):
        Board(port, timeout=60).classify(slow, random_images(slow, 4, seed=1), window=4)


class _Silent:
    """A port with nothing on the other end."""

    name = "silent"

    def write(self, data):
        return len(data)

    def read(self, n):
        return b""

    def reset_input_buffer(self):
        pass

    def close(self):
        pass


def test_board_timeout_is_one_line():
    board = Board(_Silent(), timeout=0.2)
    with pytest.raises(BoardError, match=r"^no answer from the board on silent within 0\.2 s "
                                         r"while waiting for its info record; check the port, "
                                         r"the baud rate \(115200\) and that the board is "
                                         r"programmed with a fireflys bitstream \(the info "
                                         r"request, 4 tries\)$"):
        board.info()


def test_board_wrong_model(tiny, tiny_plan):
    other = random_artifact("1x4x4-2c3p1-mp2-3fc", seed=1, T=2, input_bits=2,
                            weight_sparsity=0.5, spike_density=0.3)
    port = simulated_board(build_accelerator(tiny, tiny_plan, profile=False), divisor=4,
                           model_id=model_id(tiny))
    with pytest.raises(BoardError, match=r"^the board on sim carries model 0x[0-9a-f]{8}, not "
                                         r"random-1x4x4-2c3p1-mp2-3fc-seed1 \(0x[0-9a-f]{8}\)"):
        Board(port, timeout=60).check(other)


def test_board_silent_serial_url(capsys, tiny, tmp_path):
    # a real pyserial port (socket://) whose other end accepts and never answers
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    host, port = server.getsockname()
    conns = []
    thread = threading.Thread(target=lambda: conns.append(server.accept()), daemon=True)
    thread.start()
    path = save_artifact(tiny, tmp_path / "tiny.npz")
    try:
        rc = main(["run", str(path), "--port", f"socket://{host}:{port}", "--images", "1",
                   "--timeout", "0.3"])
    finally:
        server.close()
        for conn, _ in conns:
            conn.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith(f"fireflys: error: no answer from the board on "
                                               f"socket://{host}:{port} within 0.3 s")


def test_cli_run_sim(capsys, tiny, tmp_path):
    path = save_artifact(tiny, tmp_path / "tiny.npz")
    rc = main(["run", str(path), "--port", "sim", "--images", "3", "--divisor", "4",
               "--parallelism", "2:2,3:2", "--dataset", "synthetic"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "3 random images on sim: all bit-exact with the golden model" in out


def test_crc16_byte_logic_matches_the_host_crc():
    # every (register, byte) pair the matrix is built from, and random ones, through the
    # simulator: the gateware's one-byte update is the host's crc16 on one byte
    from amaranth.hdl import Signal
    from amaranth.sim import Simulator

    from fireflys_hw.gateware.link import crc16_byte
    reg, byte = Signal(16), Signal(8)
    m = Module()
    out = Signal(16)
    m.d.comb += out.eq(crc16_byte(reg, byte))
    rng = random.Random(7)
    cases = [(1 << i, 0) for i in range(16)] + [(0, 1 << i) for i in range(8)]
    cases += [(rng.getrandbits(16), rng.getrandbits(8)) for _ in range(200)]

    async def bench(ctx):
        for r, b in cases:
            ctx.set(reg, r)
            ctx.set(byte, b)
            assert ctx.get(out) == crc16(bytes([b]), r), (r, b)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
