"""The `make run` launcher (scripts/run.py) loaded as a module, for tests of its parts."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from app.config import PROJECT_ROOT


def run_script() -> ModuleType:
    """A fresh copy of scripts/run.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("worklane_run_script", PROJECT_ROOT / "scripts" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
