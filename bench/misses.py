"""The issue list and the board after an edit (cache misses) as the number of organizations grows,
with each statement they run explained as the app runs it.

    .venv/bin/python -m bench.misses                          # 10 and 100 organizations (small)
    .venv/bin/python -m bench.misses --rounds 100 --explain
    .venv/bin/python -m bench.misses --before ../old-checkout  # that code first, then this one

It builds the databases of ``bench/run --preset small`` (same seed, the same measured
organization in each; the app role under row-level security), serves each with its own web
process, and then, in rounds that alternate between the databases, moves the measured
organization's issue-cache version (what an edit does at commit) and requests the list and the
board once each: both miss. The server times come from the access log.

``--explain`` also requests each page in this process and prints every statement it ran with
``EXPLAIN (ANALYZE, BUFFERS)``, run as the app role with the tenant set as the app sets it.

``--before DIR`` measures the code checked out in DIR first (its web processes, the databases
migrated down to its head), then migrates them back up and measures this code, back to back.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
import redis

from app.core.security import hash_password
from bench import dataset, load
from bench.harness import PAGES, build
from bench.services import APP_ROLE, ROOT, VENV_BIN, flask, free_port, run_benchmark, say

MISSES = ("list", "board")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.misses", description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", default="10,100", help="organizations of each database (default 10,100)")
    parser.add_argument("--issues", type=int, default=20_000, help="filler issues at the last step")
    parser.add_argument("--rounds", type=int, default=60, help="rounds of misses (default 60)")
    parser.add_argument("--web-threads", type=int, default=8)
    parser.add_argument("--explain", action="store_true", help="print each statement's plan")
    parser.add_argument("--before", type=Path, help="a checkout of older code to measure first")
    parser.add_argument(
        "--auto-explain",
        type=int,
        metavar="MS",
        help="log the plan of each statement of the web processes slower than MS (auto_explain) "
        "and print them: the plans the server really used (prepared statements included)",
    )
    parser.add_argument(
        "--hold", type=int, default=0, metavar="S", help="keep the databases S seconds at the end (psql)"
    )
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the web processes")
    args = parser.parse_args(argv)
    args.steps = tuple(int(n) for n in args.orgs.split(","))
    return args


class Web:
    """``flask --app wsgi web`` of the code in ``root``, as the Procfile runs it."""

    def __init__(self, env: dict, threads: int, log_path: Path, root: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        command = [str(VENV_BIN / "flask"), "--app", "wsgi", "web", "--host=127.0.0.1", f"--port={self.port}"]
        command.append(f"--threads={threads}")
        env = {**os.environ, **env, "WEB_THREADS": str(threads), "PORT": str(self.port)}
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the web process exited:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        self.client = load.Client(self.url)
        self.client.login(dataset.BENCH_EMAIL, dataset.BENCH_PASSWORD)

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def time_misses(systems, webs, rounds: int, tag: str) -> list[dict]:
    """Server and client times of each page's miss, per system; the systems take turns."""
    caches = [redis.Redis.from_url(system.env["REDIS_URL"]) for system in systems]
    for web in webs:
        for page in MISSES:
            load.check_page(web.client, PAGES[page], dataset.LIST_PROJECT if page == "list" else "BIG-")
    offsets = [web.log_path.stat().st_size for web in webs]
    client = [{page: [] for page in MISSES} for _ in systems]
    for i in range(-5, rounds):  # five warm-up rounds
        order = list(range(len(systems)))
        order = order if i % 2 == 0 else order[::-1]
        for n in order:
            caches[n].incr(systems[n].version_key)
        for page in MISSES:
            for n in order:
                response = webs[n].client.get(PAGES[page], request_id=f"{tag}-{page}-{i}")
                assert response.status == 200, (PAGES[page], response.status)
                if i >= 0:
                    client[n][page].append(response.seconds * 1000)
    time.sleep(0.3)
    found = []
    for n, web in enumerate(webs):
        durations = load.access_durations(web.log_path, offsets[n])
        found.append(
            {
                page: {
                    "server_ms": load.summarize([durations[f"{tag}-{page}-{i}"] for i in range(rounds)]),
                    "client_ms": load.summarize(client[n][page]),
                }
                for page in MISSES
            }
        )
    return found


def explain(system, services) -> None:
    """Request each page in this process; print every statement it ran, explained as the app role."""
    from sqlalchemy import event

    from app import create_app
    from app.config import config_from_env
    from app.core import tenancy
    from app.extensions import db

    os.environ.update({**system.env, "LOG_LEVEL": "WARNING"})
    app = create_app(config_from_env())
    captured: list[tuple[str, object, str, bool, float]] = []
    started = {}

    def before(conn, cursor, statement, parameters, context, executemany):
        started[id(cursor)] = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany):
        ms = (time.perf_counter() - started.pop(id(cursor), time.perf_counter())) * 1000
        if statement.lstrip().upper().startswith("SELECT") and "set_config" not in statement:
            tenant = str(tenancy.current_tenant_id() or "")
            captured.append((statement, parameters, tenant, tenancy.is_unscoped(), ms))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    client = app.test_client()
    page = client.get("/login")
    token = load.CSRF_TOKEN.search(page.get_data(as_text=True)).group(1)
    answer = client.post(
        "/login",
        data={"csrf_token": token, "email": dataset.BENCH_EMAIL, "password": dataset.BENCH_PASSWORD},
    )
    assert answer.status_code == 303, answer.status_code
    cache = redis.Redis.from_url(system.env["REDIS_URL"])
    for name in MISSES:
        client.get(PAGES[name])  # connections, templates
        cache.incr(system.version_key)
        captured.clear()
        response = client.get(PAGES[name])
        assert response.status_code == 200, (name, response.status_code)
        print(f"\n#### {system.orgs} organizations: {name} miss, {len(captured)} statements\n")
        database = system.env["DATABASE_URL"].rsplit("/", 1)[1]
        with psycopg.connect(services.url(APP_ROLE, database)) as connection:
            for statement, parameters, tenant, unscoped, ms in captured:
                connection.execute(
                    "SELECT set_config('app.tenant_id', %s, true), set_config('app.unscoped', %s, true)",
                    (tenant, "on" if unscoped else "off"),
                )
                rows = connection.execute(
                    "EXPLAIN (ANALYZE, BUFFERS, SUMMARY) " + statement, parameters
                ).fetchall()
                connection.rollback()
                print(f"-- {ms:.2f} ms in the app\n{' '.join(statement.split())[:600]}")
                print("\n".join("   " + row[0] for row in rows))
    event.remove(engine, "before_cursor_execute", before)
    event.remove(engine, "after_cursor_execute", after)


def head_of(root: Path, env: dict) -> str:
    """The migration head of the code in ``root``."""
    result = subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "wsgi", "db", "heads"],
        cwd=root,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()[0]


def measure(args, services, results: dict) -> None:
    filler = dataset.filler_sizes(args.steps[-1], args.issues)
    password = hash_password(dataset.BENCH_PASSWORD)
    systems = [build(services, orgs, n, filler, password) for n, orgs in enumerate(args.steps)]
    runs = []
    if args.before:
        revision = head_of(args.before.resolve(), systems[0].env)
        for system in systems:
            say(f"{system.orgs} organizations: migrations down to {revision}")
            flask(system.env, "db", "downgrade", revision)
        runs.append(("before", args.before.resolve()))
    runs.append(("this code", ROOT))
    extra = dict(item.split("=", 1) for item in args.env)
    if args.auto_explain is not None:
        for system in systems:
            database = system.env["DATABASE_URL"].rsplit("/", 1)[1]
            for setting, value in (
                ("session_preload_libraries", "auto_explain"),
                ("auto_explain.log_min_duration", f"{args.auto_explain}ms"),
                ("auto_explain.log_analyze", "on"),
                ("auto_explain.log_buffers", "on"),
            ):
                services.psql(
                    f"ALTER ROLE {APP_ROLE} IN DATABASE {database} SET {setting} = '{value}'", database
                )
    for label, root in runs:
        if label == "this code" and args.before:
            for system in systems:
                flask(system.env, "db", "upgrade")
        for system in systems:
            system.cache = redis.Redis.from_url(system.env["REDIS_URL"])
        webs = [
            Web(
                {**system.env, **extra},
                args.web_threads,
                services.work / f"web-{label[:4]}-{system.orgs}.log",
                root,
            )
            for system in systems
        ]
        try:
            say(f"{label}: {args.rounds} rounds of misses ({', '.join(MISSES)})")
            load_before = os.getloadavg()[0]
            found = time_misses(systems, webs, args.rounds, label.split()[0])
            results.setdefault("runs", {})[label] = {
                "load": [load_before, os.getloadavg()[0]],
                "steps": dict(zip((str(s.orgs) for s in systems), found, strict=True)),
            }
        finally:
            for web in webs:
                web.stop()
    if args.auto_explain is not None:
        print((services.work / "pglog" / "pg.log").read_text())
    if args.explain:
        for system in systems:
            explain(system, services)
    print(report(results))
    if args.hold:
        for system in systems:
            say(f"{system.orgs} organizations: {system.env['DATABASE_URL']}")
        say(f"holding for {args.hold} s")
        time.sleep(args.hold)


def report(results: dict) -> str:
    lines = []
    for label, run in results["runs"].items():
        lines.append(
            f"\n{label} (1-minute load before / after: {run['load'][0]:.2f} / {run['load'][1]:.2f})\n"
        )
        lines.append("| page (miss) | organizations | server median ms | p95 | client median ms |")
        lines.append("| --- | ---: | ---: | ---: | ---: |")
        for page in MISSES:
            for orgs, step in run["steps"].items():
                server, client = step[page]["server_ms"], step[page]["client_ms"]
                lines.append(
                    f"| {page} | {orgs} | {server['median']} | {server['p95']} | {client['median']} |"
                )
        steps = list(run["steps"].values())
        for page in MISSES:
            ratio = steps[-1][page]["server_ms"]["median"] / steps[0][page]["server_ms"]["median"]
            lines.append(f"\n{page}: last ÷ first step (server medians) = {ratio:.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    settings = {"settings": {k: str(v) for k, v in vars(args).items()}}
    return run_benchmark("misses", settings, lambda services, found: measure(args, services, found))


if __name__ == "__main__":
    sys.exit(main())
