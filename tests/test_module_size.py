"""Modules of the app stay small enough to read: one thing each."""

from __future__ import annotations

from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"
MAX_LINES = 400


def test_no_module_of_the_app_is_over_400_lines():
    """Every Python module under app/ has at most 400 lines; a longer one is split by what it does."""
    long = {
        str(path.relative_to(APP.parent)): lines
        for path in sorted(APP.rglob("*.py"))
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
