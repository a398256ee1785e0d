"""benchmarks/bench_encoding.py: its rows (measured and recorded) and its refusals."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_encoding.py"


def run(*args):
    env = {"PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


@pytest.mark.parametrize("args,message", [
    (["--images", "x"], "argument --images: must be an integer, not 'x'"),
    (["--images", "0"], "argument --images: must be at least 1, not '0'"),
    (["--simulate", "-1"], "argument --simulate: must not be negative, not '-1'"),
    (["--radix", "four"], "--radix takes T=NAME_OR_PATH, not 'four'"),
])
def test_bad_arguments_give_one_line(args, message):
    if args[0] == "--radix" and not Path("/usr/share/datasets/fashion-mnist").is_dir():
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    r = run(*args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].endswith(message)


def test_rows_measured_and_recorded():
    if not Path("/usr/share/datasets/fashion-mnist").is_dir():
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    r = run("--images", "50", "--simulate", "0", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["T"] if row["encoding"] == "radix" else "lif": row
            for row in json.loads(r.stdout)}
    assert set(rows) == {"lif", 3, 4, 6}
    for key in ("lif", 4):                 # the shipped artifacts: measured on the 50 images
        row = rows[key]
        assert row["images"] == 50 and not row.get("recorded")
        assert 0.5 < row["accuracy"] <= 1 and 0.85 < row["weight_sparsity"] < 0.95
        assert 0 < row["spike_density"] < 1
    assert rows[4]["encoding"] == "radix" and rows["lif"]["encoding"] == "direct lif"
    for t in (3, 6):                       # not shipped: the recorded figures, marked
        assert rows[t]["recorded"] and "source" in rows[t]
        assert "cycles_per_frame" not in rows[t]
