"""Shared test settings."""

import pytest


@pytest.fixture(autouse=True)
def _quiet_progress(monkeypatch):
    """No progress lines on stderr in tests (several pin stderr to the one error line);
    tests/sw/test_progress.py turns them back on where it checks them."""
    monkeypatch.setenv("FIREFLYS_PROGRESS", "0")
