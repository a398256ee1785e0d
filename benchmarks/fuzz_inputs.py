"""Fuzz benchmark: mutated and hostile inputs through what reads them (issue 16).

Usage::

    python benchmarks/fuzz_inputs.py                                  # the full counts
    python benchmarks/fuzz_inputs.py --kinds artifacts=500,specs=500  # a quick run
    python benchmarks/fuzz_inputs.py --kinds specs=5000 --json report.json

One section per input kind (``SECTIONS`` below; the case functions are in
:mod:`fireflys_sw.fuzzing`: artifacts and specs now, plans, link byte streams and command lines
to come). Each case runs in a worker process under ``signal.alarm``, so a case that runs past
``--timeout`` seconds is counted as a hang, and the workers' peak resident memory is reported
(``getrusage``; the workers also run under an address-space limit so that a blow-up fails
instead of taking the machine). Per kind it prints the inputs, how many were accepted, refused
with the project's one-line error, ended in a traceback, hung, or gave a silently wrong result
(accepted though it must be refused, a golden model result that differs from the exact contract,
a one-line rule broken). Exit status 1 when any count that must be 0 is not, or the peak memory
exceeds ``--memory-mb``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")   # one BLAS thread per worker: the workers are the parallelism

import argparse
import collections
import json
import multiprocessing
import resource
import signal
import sys
import tempfile
import time
import traceback

#: Input kinds: name -> default count (the counts issue 16 asks for). A new kind adds a case
#: function to ``fireflys_sw.fuzzing.CASES`` and a line here.
SECTIONS = {
    "artifacts": 10_000,
    "specs": 5_000,
    "plans": 3_000,
    "link": 5_000,
}

#: Kinds whose case function also takes a scratch folder for the files it writes.
_WRITES_FILES = {"artifacts", "plans"}


def _cases() -> dict:
    from fireflys_hw.fuzzing import CASES as HW_CASES
    from fireflys_sw.fuzzing import CASES as SW_CASES
    return {**SW_CASES, **HW_CASES}

_scratch = None
_timeout = 10


class _Hang(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` in the code under
    test swallows it."""


def _on_alarm(signum, frame):
    raise _Hang()


def _init(timeout: int, address_space_mb: int) -> None:
    global _scratch, _timeout
    _timeout = timeout
    _scratch = tempfile.mkdtemp(prefix="fireflys-fuzz-")
    signal.signal(signal.SIGALRM, _on_alarm)
    limit = address_space_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _run(task: tuple[str, int]) -> tuple:
    """``(kind, seed, outcome, label, detail, seconds, peak_kb)`` of one case."""
    kind, seed = task
    start = time.perf_counter()
    signal.alarm(_timeout)
    try:
        case = _cases()[kind]
        result = case(seed, _scratch) if kind in _WRITES_FILES else case(seed)
        outcome, label, detail = result.outcome, result.label, result.detail
    except _Hang:
        outcome, label, detail = "hang", "?", f"ran past {_timeout} s"
    except BaseException as error:   # noqa: BLE001 - a traceback is what is being counted
        frames = traceback.extract_tb(error.__traceback__)
        where = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else "?"
        outcome, label = "traceback", type(error).__name__
        detail = f"{type(error).__name__} at {where}: {str(error)[:200]}"
    finally:
        signal.alarm(0)
    seconds = time.perf_counter() - start
    if seconds > _timeout and outcome != "hang":
        outcome, detail = "hang", f"took {seconds:.1f} s"
    return (kind, seed, outcome, label, detail, seconds,
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _run_chunk(tasks: list[tuple[str, int]]) -> list[tuple]:
    return [_run(task) for task in tasks]


_CHUNK = 16


def _parse_kinds(text: str) -> dict[str, int]:
    kinds = {}
    for part in text.split(","):
        name, _, count = part.strip().partition("=")
        if name not in SECTIONS:
            raise SystemExit(f"fuzz_inputs: unknown kind {name!r} (known: {', '.join(SECTIONS)})")
        try:
            kinds[name] = int(count) if count else SECTIONS[name]
        except ValueError:
            raise SystemExit(f"fuzz_inputs: count of {name!r} must be an integer, not {count!r}")
        if kinds[name] < 0:
            raise SystemExit(f"fuzz_inputs: count of {name!r} must be at least 0")
    return kinds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default=",".join(f"{k}={v}" for k, v in SECTIONS.items()),
                        help="comma-separated KIND=COUNT (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="first seed of every kind")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--timeout", type=int, default=10, help="seconds before a case is a hang")
    parser.add_argument("--memory-mb", type=int, default=1024,
                        help="the peak resident memory a worker may reach")
    parser.add_argument("--address-space-mb", type=int, default=4096,
                        help="RLIMIT_AS of each worker (a blow-up becomes a MemoryError)")
    parser.add_argument("--json", help="also write the report as JSON to this file")
    args = parser.parse_args(argv)
    kinds = _parse_kinds(args.kinds)
    if args.workers < 1 or args.timeout < 1:
        raise SystemExit("fuzz_inputs: --workers and --timeout must be at least 1")

    from fireflys_sw.fuzzing import artifact_bases, big_member
    if "artifacts" in kinds:
        artifact_bases()   # built once here, inherited by the forked workers
        big_member()
    if "plans" in kinds:
        from fireflys_hw.fuzzing import plan_bases
        plan_bases()
    if "link" in kinds:
        from fireflys_hw.fuzzing import link_bases
        link_bases()

    tasks = [(kind, args.seed + i) for kind, count in kinds.items() for i in range(count)]
    report = {kind: {"inputs": 0, "accepted": 0, "refused": 0, "traceback": 0, "hang": 0,
                     "wrong": 0, "seconds": 0.0, "slowest_s": 0.0, "peak_mb": 0.0,
                     "examples": []} for kind in kinds}
    labels = {kind: collections.Counter() for kind in kinds}
    start = time.perf_counter()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(args.workers, _init, (args.timeout, args.address_space_mb),
                  maxtasksperchild=2000) as pool:
        chunks = [tasks[i:i + _CHUNK] for i in range(0, len(tasks), _CHUNK)]
        results = pool.imap_unordered(_run_chunk, chunks)
        pending: list[tuple] = []
        done = 0
        while done < len(tasks):
            try:
                if not pending:
                    # each case has its alarm; this only catches a worker the alarm cannot stop
                    pending = results.next(timeout=args.timeout * _CHUNK * 2)
                kind, seed, outcome, label, detail, seconds, peak_kb = pending.pop()
            except multiprocessing.TimeoutError:
                # a case the alarm could not interrupt: count the rest as hangs, stop
                for kind in kinds:
                    report[kind]["hang"] += 1
                print("fuzz_inputs: a worker stopped answering; aborting", file=sys.stderr)
                pool.terminate()
                break
            done += 1
            entry = report[kind]
            entry["inputs"] += 1
            entry[outcome] += 1
            entry["seconds"] += seconds
            entry["slowest_s"] = max(entry["slowest_s"], seconds)
            entry["peak_mb"] = max(entry["peak_mb"], peak_kb / 1024)
            labels[kind][(label.split(":")[0], outcome)] += 1
            if outcome in ("traceback", "hang", "wrong") and len(entry["examples"]) < 20:
                entry["examples"].append({"seed": seed, "outcome": outcome, "label": label,
                                          "detail": detail})
    wall = time.perf_counter() - start
    parent_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    failed = False
    print(f"fuzz_inputs: {len(tasks)} cases, {args.workers} workers, timeout {args.timeout} s, "
          f"seed {args.seed}, {wall:.0f} s")
    print(f"{'kind':10s} {'inputs':>7s} {'accepted':>8s} {'refused':>8s} {'traceback':>9s} "
          f"{'hang':>5s} {'wrong':>5s} {'peak MB':>8s} {'slowest s':>9s}")
    for kind, e in report.items():
        print(f"{kind:10s} {e['inputs']:7d} {e['accepted']:8d} {e['refused']:8d} "
              f"{e['traceback']:9d} {e['hang']:5d} {e['wrong']:5d} {e['peak_mb']:8.0f} "
              f"{e['slowest_s']:9.2f}")
        failed |= bool(e["traceback"] or e["hang"] or e["wrong"] or e["peak_mb"] > args.memory_mb
                       or e["inputs"] != kinds[kind])
        for ex in e["examples"]:
            print(f"    seed {ex['seed']}: {ex['outcome']} [{ex['label']}] {ex['detail']}")
    print(f"peak memory: workers {max(e['peak_mb'] for e in report.values()):.0f} MB, "
          f"parent {parent_mb:.0f} MB (limit {args.memory_mb} MB)")
    for kind in kinds:
        mix = ", ".join(f"{name} {outcome} {n}" for (name, outcome), n in
                        sorted(labels[kind].items()))
        print(f"{kind} by mutation: {mix}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "wall_s": wall, "parent_peak_mb": parent_mb,
                       "kinds": report,
                       "by_label": {k: {f"{a} {b}": n for (a, b), n in v.items()}
                                    for k, v in labels.items()}}, f, indent=1)
    return 1 if failed or parent_mb > args.memory_mb else 0


if __name__ == "__main__":
    sys.exit(main())
