"""Progress lines for the long steps, and output folders that a failure does not leave empty."""

import io
import re
import sys
import time

import pytest

from fireflys_sw import progress
from fireflys_sw.outdir import removed_if_empty_on_failure
from fireflys_sw.progress import Progress, run_logged


@pytest.fixture
def fast_lines(monkeypatch):
    monkeypatch.setattr(progress, "LINE_INTERVAL", 0.05)
    monkeypatch.setattr(progress, "TICK", 0.01)
    monkeypatch.delenv("FIREFLYS_PROGRESS", raising=False)


def test_short_step_is_quiet():
    out = io.StringIO()
    with Progress("quick", total=3, unit="images", stream=out) as bar:
        bar.update(3)
    assert out.getvalue() == ""


def test_counted_lines(fast_lines):
    out = io.StringIO()
    with Progress("golden model", total=4, unit="images", stream=out) as bar:
        for _ in range(4):
            time.sleep(0.07)
            bar.update()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("fireflys: golden model: ")
    assert any(re.fullmatch(r"fireflys: golden model: [1-3]/4 images \(\d+%\), 0 s, "
                            r"[\d.]+ images/s", line) for line in lines)
    assert lines[-1] == "fireflys: golden model: done in 0 s"


def test_opaque_step_ticks_with_status(fast_lines):
    out = io.StringIO()
    with Progress("verilator build", status=lambda: "linking", stream=out):
        time.sleep(0.2)
    lines = out.getvalue().splitlines()
    assert len(lines) >= 3          # the clock moves without any update from the work
    assert lines[0] == "fireflys: verilator build: 0 s, linking"


def test_disabled(fast_lines, monkeypatch):
    monkeypatch.setenv("FIREFLYS_PROGRESS", "0")
    out = io.StringIO()
    with Progress("x", stream=out):
        time.sleep(0.1)
    assert out.getvalue() == ""


def test_run_logged_status_from_log(fast_lines, tmp_path, capsys):
    script = "import time\nfor k in range(3):\n    print('step', k, flush=True)\n" \
             "    time.sleep(0.1)\n"
    seen = []

    def describe(line):
        seen.append(line)
        return line.replace("step", "doing step") if line.startswith("step") else None

    code = run_logged([sys.executable, "-c", script], what="tool",
                      log_path=tmp_path / "tool.log", describe=describe, initial="starting")
    assert code == 0
    assert (tmp_path / "tool.log").read_text() == "step 0\nstep 1\nstep 2\n"
    err = capsys.readouterr().err
    assert "fireflys: tool: " in err and "doing step" in err
    assert "fireflys: tool: done in" in err


def test_run_logged_follows_the_tools_own_logs(fast_lines, tmp_path, capsys):
    """A tool that is quiet on its output and writes its own log (yosys -q -l, nextpnr
    --quiet --log: the ULX3S build) still shows what it does."""
    script = ("import time\nwith open('own.log', 'w') as f:\n    for k in range(3):\n"
              "        f.write(f'phase {k}\\n'); f.flush(); time.sleep(0.15)\n")
    code = run_logged([sys.executable, "-c", script], what="quiet tool",
                      log_path=tmp_path / "tool.log", initial="starting", cwd=tmp_path,
                      follow=["own.log", "not-yet-written.log"],
                      describe=lambda line: line.replace("phase", "in phase"))
    assert code == 0
    assert (tmp_path / "tool.log").read_text() == ""
    err = capsys.readouterr().err
    assert "fireflys: quiet tool: " in err and "in phase" in err


def test_failed_step_leaves_no_empty_folder(tmp_path):
    out = tmp_path / "a" / "b"
    with pytest.raises(RuntimeError):
        with removed_if_empty_on_failure(out) as where:
            where.mkdir(parents=True)
            raise RuntimeError("no fit")
    assert not (tmp_path / "a").exists()


def test_failed_step_keeps_folders_with_files(tmp_path):
    out = tmp_path / "a"
    with pytest.raises(RuntimeError):
        with removed_if_empty_on_failure(out) as where:
            where.mkdir()
            (where / "log.txt").write_text("half done")
            raise RuntimeError("crash")
    assert (out / "log.txt").exists()
    existing = tmp_path / "old"
    existing.mkdir()
    with pytest.raises(RuntimeError):
        with removed_if_empty_on_failure(existing):
            raise RuntimeError("crash")
    assert existing.is_dir()        # it was there before: not ours to remove
