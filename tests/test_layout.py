"""The directions of imports between the packages (docs/architecture.md).

* ``fireflys_sw`` never imports Amaranth at module level (a function may, lazily);
* ``fireflys_hw`` and ``boards/`` never import torch or SpikingJelly;
* ``fireflys_hw.host`` imports neither Amaranth nor torch, nor does anything it imports;
* ``fireflys_hw.compiler`` imports no Amaranth (plans are made without building gateware);
* inside ``fireflys_hw``, a stage imports only the stages below it (``LAYERS``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SW = ROOT / "src" / "fireflys_sw"
HW = ROOT / "src" / "fireflys_hw"
BOARDS = ROOT / "boards"

#: What each part of fireflys_hw may import from fireflys_hw (the rest is above it).
LAYERS = {
    "host": {"host"},
    "compiler": {"compiler"},
    "gateware": {"gateware", "compiler", "host"},
    "sim": {"sim", "gateware", "host"},
}

TORCH = ("torch", "spikingjelly")


def _imports(path: Path, *, module_level_only: bool = False) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in ``path``; relative imports are
    resolved against the file's package."""
    tree = ast.parse(path.read_text(), str(path))
    package = list(path.parent.relative_to(ROOT).parts)   # the package holding the module
    if package[0] == "src":
        package = package[1:]
    if package[0] == "boards":
        package[0] = "fireflys_boards"
    nodes = list(ast.walk(tree))
    if module_level_only:
        # module level includes imports nested in if/try blocks, not in functions or classes
        stack, nodes = list(tree.body), []
        while stack:
            node = stack.pop()
            nodes.append(node)
            if isinstance(node, (ast.If, ast.Try, ast.With)):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    stack.extend(getattr(node, field, []))
            elif isinstance(node, ast.ExceptHandler):
                stack.extend(node.body)
    out = []
    for node in nodes:
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            out.append((node.lineno, name))
    return out


def _files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.py"))


def _violations(files, bad, **kw) -> list[str]:
    return [f"{f.relative_to(ROOT)}:{line}: imports {name}"
            for f in files for line, name in _imports(f, **kw)
            if name.split(".")[0] in bad]


def test_sw_imports_no_amaranth_at_module_level():
    assert _violations(_files(SW), ("amaranth", "amaranth_boards"), module_level_only=True) == []


def test_hw_and_boards_import_no_torch():
    assert _violations(_files(HW) + _files(BOARDS), TORCH) == []


def test_host_imports_neither_amaranth_nor_torch():
    assert _violations(_files(HW / "host"), ("amaranth", "amaranth_boards") + TORCH) == []


@pytest.mark.parametrize("stage", sorted(LAYERS))
def test_stage_imports_point_down(stage):
    bad = []
    for f in _files(HW / stage):
        for line, name in _imports(f):
            parts = name.split(".")
            if parts[0] == "fireflys_hw":
                target = parts[1] if len(parts) > 1 else ""
                if target not in LAYERS[stage]:
                    bad.append(f"{f.relative_to(ROOT)}:{line}: imports {name}")
    assert bad == []


@pytest.mark.parametrize("module, banned", [
    ("fireflys_hw.host", ("amaranth", "torch", "spikingjelly")),
    ("fireflys_hw.host.board", ("amaranth", "torch", "spikingjelly")),
    ("fireflys_hw.compiler", ("amaranth", "torch", "spikingjelly")),
    ("fireflys_hw.flow", ("torch", "spikingjelly")),
    ("fireflys_sw.golden", ("amaranth", "torch")),
])
def test_import_loads_nothing_banned(module, banned):
    """The same rules for everything a module pulls in, checked in a fresh interpreter."""
    code = (f"import sys, {module}; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(banned)!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]", f"importing {module} loads {out}"


def test_pyproject_lists_every_package():
    """pyproject.toml names the packages one by one (boards/ installs as fireflys_boards): a
    new folder must be added there, or pip install leaves it out."""
    tomllib = pytest.importorskip("tomllib")
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(ROOT / "src").parts)
             for p in (ROOT / "src").rglob("__init__.py")} | {"fireflys_boards"}
    assert listed == found
