"""The per-request floor, in process: what each layer of the web stack costs a request.

Calls the WSGI app directly (no socket, no waitress) with a prepared environ, ``--rounds``
times per page, for ``/healthz`` and a warm (cached) issue list of a signed-in member, and
reports microseconds per request: elapsed, and the calling thread's CPU time (what a busy
machine disturbs least), each the best of five runs. With ``--layers`` it also samples the
calls with py-spy and shares the CPU time out over the layers (a sample counts for the
innermost layer on its stack; py-spy leaves out a thread waiting in a system call), which
gives the per-layer table; with ``--redis-calls`` it lists the Redis round trips and counts
the SQL statements of one request of each page.

Needs ``redis-server`` (a throw-away one on a free port is started) and uses an SQLite
database in a temporary directory; the access log is written (to ``/dev/null``) at INFO, as
``bench/run`` has it.

    .venv/bin/python -m bench.floor --rounds 5000 --layers --redis-calls
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: (layer, substrings of a frame) from the most specific; a sample goes to the first layer that
#: one of its frames (searched from the innermost) matches.
LAYERS = (
    ("access log (app/core/logs.py, logging, JSON)", ("app/core/logs.py", "logging/", "pythonjsonlogger/")),
    ("HTTP metrics (app/core/metrics.py, prometheus)", ("app/core/metrics.py", "prometheus_client/")),
    ("session (app/core/sessions.py)", ("app/core/sessions.py", "app/core/session_")),
    ("security headers, host check (app/core/security.py)", ("app/core/security.py",)),
    ("input checks, static versions, helpers (app/core/web.py)", ("app/core/web.py",)),
    (
        "cache versions and page (app/core/cache.py)",
        ("app/core/cache.py", "app/core/cache_", "app/core/page_cache.py", "flask_caching/"),
    ),
    ("account, login (app/auth, flask_login)", ("app/auth/", "flask_login/")),
    ("tenant (app/orgs/context.py, app/core/tenancy.py)", ("app/orgs/context.py", "app/core/tenancy.py")),
    ("replica chooser (app/core/replica.py)", ("app/core/replica.py",)),
    ("rate limiter (flask_limiter)", ("flask_limiter/", "limits/")),
    ("compression (flask_compress)", ("flask_compress/", "brotli")),
    ("CSRF (flask_wtf)", ("flask_wtf/",)),
    ("database session teardown (SQLAlchemy)", ("sqlalchemy/", "flask_sqlalchemy/", "app/core/database.py")),
    ("Werkzeug routing", ("werkzeug/routing",)),
    ("Werkzeug request/response, Flask dispatch", ("werkzeug/", "flask/")),
)
REDIS_CLIENT = ("redis/",)
#: Werkzeug and Flask themselves: a sample goes there only when no layer is on its stack.
GENERIC = "Werkzeug request/response, Flask dispatch"
#: The two WSGI wrappers around everything else: their own time counts, not what they call.
WRAPPERS = ("__call__ (app/core/metrics.py)", "timed_wsgi_app (app/core/logs.py)")


def _layer_of(frames: list[str]) -> str:
    """The innermost layer on a stack (a wrapper only when it is the innermost frame of ours)."""
    found = None
    for index, frame in enumerate(reversed(frames)):
        if any(wrapper in frame for wrapper in WRAPPERS) and index > 0:
            continue
        label = next((name for name, needles in LAYERS if any(n in frame for n in needles)), None)
        if label == GENERIC:
            found = found or label
        elif label:
            return label
    return found or "other (the loop, the view)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(directory: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("redis-server did not start")


def build_app(directory: Path, redis_url: str):
    from flask_migrate import upgrade

    from app import create_app
    from app.config import PROJECT_ROOT, TestingConfig

    env = {
        "WORKLANE_ENV": "testing",
        "DATABASE_URL": "sqlite:///" + str(directory / "floor.db"),
        "REDIS_URL": redis_url,
        "WORKLANE_INSTANCE_PATH": str(directory / "instance"),
        "LOG_LEVEL": "INFO",
    }
    config = TestingConfig.from_env(env)
    config.LOG_LEVEL = "INFO"
    app = create_app(config)
    # The access line is formatted and written as in production, to nowhere.
    for handler in logging.getLogger().handlers:
        if handler.get_name() == "worklane":
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115
    with app.app_context():
        upgrade(directory=str(PROJECT_ROOT / "migrations"))
    return app


def seed(app) -> str:
    """Acme with 40 WEB issues; returns the owner's session cookie after logging in."""
    from app.extensions import db
    from tests.accounts import login
    from tests.factories import OWNER, make_acme

    with app.app_context():
        team = make_acme(members={"grace@example.com": "member"})
        for n in range(40):
            team.add_issue(f"Issue number {n}")
        db.session.commit()
    client = app.test_client()
    login(client, OWNER)
    return client.get_cookie("worklane_session").value


def environ_for(app, path: str, cookie: str | None) -> dict:
    from werkzeug.test import EnvironBuilder

    headers = {"Accept-Encoding": "br, gzip", "User-Agent": "floor/1", "Host": "localhost"}
    if cookie:
        headers["Cookie"] = f"worklane_session={cookie}"
    builder = EnvironBuilder(path=path, headers=headers)
    environ = builder.get_environ()
    environ["REMOTE_ADDR"] = "127.0.0.1"
    return environ


def call(app, environ: dict) -> tuple[str, bytes]:
    status = []

    def start_response(line, headers, exc_info=None):
        status.append(line)

    chunks = app(dict(environ, **{"wsgi.input": io.BytesIO()}), start_response)
    try:
        body = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return status[0], body


def time_page(app, environ: dict, rounds: int, repeats: int = 5) -> tuple[float, float]:
    """Microseconds per request: elapsed, and CPU time of the calling thread (what a busy machine
    disturbs least); the best of ``repeats`` runs of ``rounds / repeats`` calls each."""
    for _ in range(min(200, rounds)):
        call(app, environ)
    each = max(1, rounds // repeats)
    elapsed, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.thread_time()
        for _ in range(each):
            call(app, environ)
        cpu.append((time.thread_time() - started_cpu) / each * 1e6)
        elapsed.append((time.perf_counter() - started) / each * 1e6)
    return min(elapsed), min(cpu)


def profile(app, environ: dict, rounds: int, output: Path) -> dict:
    """Sample ``rounds`` calls with py-spy; the share of samples per layer, and in the Redis client."""
    from bench.profiling import py_spy

    spy = py_spy()
    if spy is None:
        raise SystemExit("py-spy is missing: .venv/bin/pip install -r bench/requirements.txt")
    done = threading.Event()
    loop_started = threading.Event()

    def loop():
        loop_started.set()
        while not done.is_set():
            call(app, environ)

    worker = threading.Thread(target=loop, name="floor-loop", daemon=True)
    worker.start()
    loop_started.wait()
    seconds = max(3, round(rounds / 1000))
    command = [spy, "record", "--pid", str(os.getpid()), "--duration", str(seconds), "--rate", "500"]
    command += ["--format", "raw", "--nolineno", "--output", str(output)]
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    done.set()
    worker.join()
    total = 0
    layers: Counter[str] = Counter()
    redis_samples = 0
    for line in output.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "loop (" not in stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        if any(needle in frame for frame in frames for needle in REDIS_CLIENT):
            redis_samples += samples
        layers[_layer_of(frames)] += samples
    return {"total": total, "layers": layers, "redis": redis_samples}


def count_round_trips(app, environ: dict) -> dict:
    """Redis commands sent (several in one write, a pipeline's or ``read_together``'s: one round
    trip) and SQL statements of one request."""
    import re

    from redis.connection import AbstractConnection
    from sqlalchemy import event

    from app.extensions import db

    trips: list[str] = []
    original_send = AbstractConnection.send_packed_command
    command_name = re.compile(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n")

    def counting_send(self, command, check_health=True):
        data = command if isinstance(command, bytes) else b"".join(command)
        names = [name.decode().upper() for name in command_name.findall(data)]
        trips.append(names[0] if len(names) == 1 else "pipeline:" + ",".join(names))
        return original_send(self, command, check_health=check_health)

    statements: list[str] = []

    def on_statement(conn, cursor, statement, *args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", on_statement)
    AbstractConnection.send_packed_command = counting_send
    try:
        call(app, environ)
    finally:
        AbstractConnection.send_packed_command = original_send
        event.remove(engine, "before_cursor_execute", on_statement)
    return {"redis": trips, "sql": len(statements)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3000)
    parser.add_argument("--layers", action="store_true", help="per-layer shares with py-spy")
    parser.add_argument("--redis-calls", action="store_true", help="Redis round trips and SQL per page")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="worklane-floor-"))
    redis, redis_url = start_redis(directory)
    try:
        app = build_app(directory, redis_url)
        cookie = seed(app)
        pages = {
            "/healthz": environ_for(app, "/healthz", None),
            "warm list /acme/issues": environ_for(app, "/acme/issues", cookie),
        }
        results = {"load": os.getloadavg()[0], "pages": {}}
        for name, environ in pages.items():
            status, body = call(app, environ)
            call(app, environ)  # the second request of the list is a cache hit
            assert status.startswith("200"), (name, status, body[:300])
            elapsed, cpu = time_page(app, environ, args.rounds)
            result = {"us_per_request": round(elapsed, 1), "cpu_us_per_request": round(cpu, 1)}
            if args.redis_calls:
                result.update(count_round_trips(app, environ))
            if args.layers:
                shares = profile(app, environ, args.rounds, directory / "profile.txt")
                # py-spy leaves out the samples of a thread waiting in a system call (Redis):
                # the shares are of CPU time.
                us, total = result["cpu_us_per_request"], shares["total"] or 1
                result["layers_us"] = {
                    label: round(us * n / total, 1) for label, n in shares["layers"].most_common()
                }
                result["redis_client_us"] = round(us * shares["redis"] / total, 1)
            results["pages"][name] = result
        print(json.dumps(results, indent=2))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        redis.terminate()
        redis.wait()
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
