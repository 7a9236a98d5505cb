"""Optional sampling profile of the web process under load (``bench/run --profile``), with py-spy.

py-spy samples the running process from outside (no change to the app), only the thread that
holds the GIL, so the samples show where the interpreter's time goes. The raw collapsed stacks
are kept next to the results; a summary gives the share of samples inside each library
(inclusive: a sample counts for every library on its stack) and the app's own functions that
held the most samples.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

# (label, substrings of a frame's file path); a sample counts once per label it passes through.
CATEGORIES = (
    ("SQLAlchemy (ORM, Core, and the driver below it)", ("sqlalchemy/",)),
    ("psycopg (PostgreSQL round trips)", ("psycopg/",)),
    ("Jinja templates (rendering)", ("jinja2/", "templates/")),
    ("compression (Flask-Compress, brotli)", ("flask_compress/", "brotli")),
    ("Redis client (cache, sessions)", ("redis/",)),
    ("server-side session", ("app/core/sessions.py", "app/core/session_")),
    ("login / user loading", ("flask_login/",)),
    ("Markdown rendering and sanitizing", ("markdown_it/", "nh3", "app/core/markdown.py")),
    ("logging", ("logging/", "pythonjsonlogger/")),
    ("CSRF and forms", ("flask_wtf/", "wtforms/")),
)


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return found if Path(found).exists() else None


def start(pid: int, seconds: int, output: Path) -> subprocess.Popen:
    # --gil: only the thread holding the GIL, i.e. where the interpreter's one core goes.
    command = [py_spy(), "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200", "--gil"]
    command += ["--format", "raw", "--nolineno", "--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def summarize(raw_path: Path, top: int = 12) -> dict:
    """Shares of the request threads' samples per library and per app function."""
    total = 0
    by_category: Counter[str] = Counter()
    by_app_function: Counter[str] = Counter()
    for line in raw_path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit() or "waitress/" not in stack:
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        for label, needles in CATEGORIES:
            if any(needle in frame for frame in frames for needle in needles):
                by_category[label] += samples
        app_frames = {f for f in frames if "app/" in f and "site-packages" not in f}
        app_frames |= {f for f in frames if "templates/" in f and "site-packages" not in f}
        for frame in app_frames:
            by_app_function[frame] += samples
    if not total:
        return {"samples": 0}
    return {
        "samples": total,
        "libraries": {label: round(n / total, 3) for label, n in by_category.most_common()},
        "app_functions": {frame: round(n / total, 3) for frame, n in by_app_function.most_common(top)},
    }
