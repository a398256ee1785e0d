"""Output directories that a failed step does not leave behind empty, and the cache's root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["removed_if_empty_on_failure", "cache_root"]


def cache_root() -> Path:
    """Where builds and measurements are cached: ``$FIREFLYS_CACHE``, default
    ``~/.cache/fireflys`` (Verilator builds, synthesis results, logic depths each in a folder)."""
    base = os.environ.get("FIREFLYS_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "fireflys"


@contextmanager
def removed_if_empty_on_failure(path: str | os.PathLike) -> Iterator[Path]:
    """Run a step that writes into directory ``path``: if the step raises, the directories
    on the way to ``path`` that did not exist before and are still empty are removed again
    (deepest first), so a failed ``compile`` or ``train`` leaves no empty folder for the user
    to mistake for a result. Directories with anything in them are kept."""
    out = Path(path).absolute()
    missing = []
    p = out
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    try:
        yield Path(path)
    except BaseException:
        for d in missing:                    # deepest first
            try:
                d.rmdir()                   # only succeeds on an empty directory
            except OSError:
                break
        raise
