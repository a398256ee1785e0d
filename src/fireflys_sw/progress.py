"""Progress for the long steps: a live tqdm bar on a terminal, else one line every few seconds.

Every step that can take more than a few seconds (golden evaluation, calibration, planning,
elaboration, the Verilator build, simulation, synthesis, nextpnr) reports through this module,
so a user always sees something move:

* on a terminal (``stderr`` is a tty), a tqdm bar that also ticks its clock while the work is
  opaque (a compiler running, Amaranth elaborating);
* otherwise (a log file, CI, a pipe), one line ``fireflys: WHAT: DONE/TOTAL UNIT, N s, ...``
  every :data:`LINE_INTERVAL` seconds, and a last ``done in N s`` line, but nothing at all for
  a step that finishes within that interval (so short runs and tests stay quiet).

``FIREFLYS_PROGRESS=0`` turns it off, ``=1`` forces the line mode even on a terminal.

Two ways to use it::

    with Progress("golden model", total=len(x), unit="images") as bar:
        for batch in ...:
            bar.update(len(batch))                 # counted work

    with Progress("verilator build", status=lambda: "compiling C++") as bar:
        subprocess.run(...)                        # opaque work: the clock ticks by itself

and :func:`run_logged` runs a tool with its output in a log file, the bar showing what the tool
is doing (the last line of the log that the caller's ``describe`` recognises).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["Progress", "run_logged", "LINE_INTERVAL", "enabled"]

#: Seconds between two progress lines when ``stderr`` is not a terminal.
LINE_INTERVAL = 5.0
#: Seconds between two refreshes of a terminal bar's clock during opaque work.
TICK = 1.0


def enabled() -> bool:
    """Whether progress is shown at all (``FIREFLYS_PROGRESS=0`` turns it off)."""
    return os.environ.get("FIREFLYS_PROGRESS", "") != "0"


def _terminal(stream) -> bool:
    if os.environ.get("FIREFLYS_PROGRESS", "") == "1":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{int(s) // 60} min {int(s) % 60:02d} s"


class Progress:
    """One step's progress (module docstring).

    Parameters
    ----------
    what : str
        The step, as the user would name it (``"golden model on fashion-mnist"``).
    total : int or None
        Units of work, if known.
    unit : str
        What a unit is (``"images"``, ``"frames"``).
    status : callable or None
        Called about every second (terminal) or at each line (otherwise) for a short text
        saying what the step is doing now (``"compiling C++, 3 files"``).
    rate : callable or None
        Like ``status``, for an extra figure such as ``"1.2 M cycles/s"``.
    stream : file
        Where to write (default ``sys.stderr``).
    """

    def __init__(self, what: str, *, total: int | None = None, unit: str = "",
                 status: Callable[[], str | None] | None = None,
                 rate: Callable[[], str | None] | None = None, stream=None):
        self.what, self.total, self.unit = what, total, unit
        self.status, self.rate = status, rate
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.start = time.monotonic()
        self._last_line = self.start
        self._lines = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._bar = None
        self._thread = None
        if not enabled():
            return
        if _terminal(self.stream):
            from tqdm import tqdm
            fmt = ("{desc}: {n_fmt}/{total_fmt} " + unit + " [{elapsed}<{remaining}]{postfix}"
                   if total else "{desc}: {elapsed}{postfix}")
            self._bar = tqdm(total=total, desc=what, file=self.stream, leave=False,
                             bar_format=fmt, mininterval=0.2)
        self._thread = threading.Thread(target=self._tick, daemon=True,
                                        name=f"progress: {what}")
        self._thread.start()

    # -- the work reports ------------------------------------------------------------------------
    def update(self, n: int = 1) -> None:
        """``n`` more units done."""
        with self._lock:
            self.done += n
            if self._bar is not None:
                self._bar.update(n)
        self._maybe_line()

    def set(self, done: int) -> None:
        """``done`` units done in all."""
        self.update(done - self.done)

    # -- output ----------------------------------------------------------------------------------
    def _extra(self) -> str:
        parts = []
        for get in (self.status, self.rate):
            if get is not None:
                try:
                    text = get()
                except Exception:       # a status is a nicety: never let it break the work
                    text = None
                if text:
                    parts.append(text)
        return ", ".join(parts)

    def _tick(self) -> None:
        period = TICK if self._bar is not None else min(TICK, LINE_INTERVAL)
        while not self._stop.wait(period):
            if self._bar is not None:
                extra = self._extra()
                with self._lock:
                    self._bar.set_postfix_str(extra, refresh=False)
                    self._bar.refresh()
            else:
                self._maybe_line()

    def _maybe_line(self) -> None:
        if self._bar is not None or not enabled() or self._thread is None:
            return
        now = time.monotonic()
        if now - self._last_line < LINE_INTERVAL:
            return
        self._last_line = now
        self._write(self._line(now))

    def _line(self, now: float) -> str:
        text = f"fireflys: {self.what}: "
        elapsed = now - self.start
        if self.total:
            text += f"{self.done:,}/{self.total:,} {self.unit} ({self.done / self.total:.0%}), "
        elif self.done:
            text += f"{self.done:,} {self.unit}, "
        text += _seconds(elapsed)
        if self.done and self.rate is None:
            text += f", {self.done / elapsed:,.1f} {self.unit}/s"
        extra = self._extra()
        return text + (f", {extra}" if extra else "")

    def _write(self, line: str) -> None:
        with self._lock:
            self._lines += 1
            try:
                print(line, file=self.stream, flush=True)
            except (OSError, ValueError):
                pass

    def close(self) -> None:
        """Stop the clock; in line mode say how long the step took if it said anything."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._lines:
            self._write(f"fireflys: {self.what}: done in "
                        f"{_seconds(time.monotonic() - self.start)}")
        self._thread = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_logged(cmd: Sequence[str], *, what: str, log_path: str | os.PathLike,
               describe: Callable[[str], str | None] | None = None,
               initial: str | None = None, follow: Sequence[str | os.PathLike] = (),
               **popen) -> int:
    """Run ``cmd`` with its output (stdout and stderr) in ``log_path``, showing progress named
    ``what`` meanwhile. ``describe`` sees every line of the log, in order, and of the files in
    ``follow`` (logs the tools write themselves, e.g. yosys' ``-l``), each in order; the status
    shown is its newest answer that is not ``None`` (``initial`` before the first). Returns the
    exit status; ``popen`` goes to :func:`subprocess.run` (``cwd``, ``env``)."""
    log_path = Path(log_path)
    cwd = Path(popen.get("cwd") or ".")
    sources = [log_path] + [cwd / Path(f) for f in follow]
    state = {"status": initial, "offsets": [0] * len(sources)}

    def status() -> str | None:
        if describe is None:
            return None
        for k, path in enumerate(sources):
            try:
                with open(path, "rb") as f:
                    f.seek(state["offsets"][k])
                    chunk = f.read()
            except OSError:
                continue
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                state["offsets"][k] += cut + 1
                for line in chunk[:cut].decode(errors="replace").splitlines():
                    text = describe(line)       # every line, in order: describe may count
                    if text:
                        state["status"] = text
        return state["status"]

    with open(log_path, "wb") as logfile, Progress(what, status=status):
        return subprocess.run(list(cmd), stdout=logfile, stderr=subprocess.STDOUT,
                              **popen).returncode
