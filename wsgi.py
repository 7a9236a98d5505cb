"""WSGI entry point: ``waitress-serve wsgi:app`` and ``flask --app wsgi …`` (with worker, scheduler)."""

import sys

from app import create_app
from app.config import ConfigError, config_from_env
from workers.cli import register_process_commands

try:
    app = create_app(config_from_env())
except ConfigError as exc:
    sys.exit(f"worklane: cannot start: {exc}")
register_process_commands(app)
