"""The benchmark: build datasets, serve them as the Procfile does, load them, report against the targets.

Run it through ``bench/run`` (see docs/performance.md). Each step of the preset is a database
of its own (10 organizations, and 1,000 for ``full``), generated from the same seed: the
measured organization and the first filler organizations are the same in each, so the steps
differ only in how many tenants share the tables. Each database gets its own web process, and
the measurements alternate between them (request by request, run by run), so that whatever
else the machine is doing meanwhile weighs on both alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import redis

from app.core.security import hash_password
from bench import dataset, load, profiling, report
from bench.cpu import Interference
from bench.services import (
    APP_ROLE,
    RESULTS,
    ROOT,
    HelloProcess,
    Services,
    WebProcess,
    flask,
    say,
    write_results,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--preset",
        choices=sorted(dataset.PRESETS),
        default="full",
        help="full: 10 and 1,000 organizations, 200,000 issues (default); small: 10 and 100, 20,000",
    )
    parser.add_argument(
        "--orgs", help="organizations at each step, comma-separated (default: the preset's, e.g. 10,1000)"
    )
    parser.add_argument(
        "--issues", type=int, help="issues of the filler organizations (the measured one adds 5,500)"
    )
    parser.add_argument("--duration", type=int, default=15, help="seconds of each wrk run (default 15)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument(
        "--web-threads",
        type=int,
        default=int(os.environ.get("WEB_THREADS") or 8),
        help="waitress threads (default: WEB_THREADS, else 8)",
    )
    parser.add_argument(
        "--samples", type=int, default=150, help="sequential rounds, each requesting every page (default 150)"
    )
    parser.add_argument(
        "--quiet",
        type=float,
        default=0.15,
        help="before each measurement, wait until other processes use less than this share of the "
        "machine (default 0.15)",
    )
    parser.add_argument("--quiet-wait", type=float, default=60, help="…but at most this many seconds")
    parser.add_argument(
        "--jobs",
        type=int,
        default=2000,
        help="trivial jobs for the one-worker throughput run (default 2,000; 0 skips it)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="also profile the last step with py-spy (extra runs)"
    )
    args = parser.parse_args(argv)
    preset = dataset.PRESETS[args.preset]
    args.steps = tuple(int(n) for n in args.orgs.split(",")) if args.orgs else preset.org_steps
    if args.steps != tuple(sorted(set(args.steps))) or args.steps[0] < 1:
        parser.error("--orgs must be increasing numbers, e.g. 10,1000")
    args.issues = args.issues if args.issues is not None else preset.issues
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    load.wrk_path()
    # A stop signal unwinds through the finally below, which tears the servers down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.time()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    if args.profile and not profiling.py_spy():
        raise SystemExit("--profile needs py-spy: pip install -r bench/requirements.txt")
    services = Services()
    systems: list[System] = []
    results = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "bench/run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "preset": args.preset,
        "settings": {
            "org_steps": args.steps,
            "filler_issues": args.issues,
            "wrk": f"-t{args.threads} -c{args.connections} -d{args.duration}s --timeout 30s --latency",
            "web_threads": args.web_threads,
            "sequential_rounds": args.samples,
            "accept_encoding": load.BROWSER_ENCODING,
            "quiet": args.quiet,
            "quiet_wait_s": args.quiet_wait,
        },
    }
    try:
        services.start()
        results["machine"] = machine(services)
        results["code"] = code_version()
        password_hash = hash_password(dataset.BENCH_PASSWORD)
        filler = dataset.filler_sizes(args.steps[-1], args.issues)
        for index, orgs in enumerate(args.steps):
            systems.append(build(services, orgs, index, filler, password_hash))
        for system in systems:
            system.start(args.web_threads)
        hello = HelloProcess({}, args.web_threads, services.work / "hello.log")
        hello.start()
        ours = [os.getpid(), hello.process.pid, *(system.web.process.pid for system in systems)]
        monitor = Interference(lambda: [*ours, *services.pids()])
        results["hello_world"] = measure_hello(hello, args, monitor)
        hello.stop()
        steps = measure(systems, args, monitor, stamp)
        for system, step in zip(systems, steps, strict=True):
            step.update(organizations=system.orgs, build_seconds=system.build_seconds, rows=system.rows)
        results["steps"] = steps
        if args.jobs:
            results["jobs"] = measure_jobs(services, args, monitor, redis_db=len(systems))
    finally:
        for system in systems:
            system.stop()
        say("stopping PostgreSQL and Redis")
        services.stop()
    results["total_seconds"] = round(time.time() - started, 1)
    results["targets"] = report.targets(results)
    path = write_results(stamp, results)
    print()
    print(report.markdown(results))
    print(f"\nresults: {path.relative_to(ROOT)}")
    return 0


@dataclass
class System:
    """One database with its dataset, served by its own web process, and a logged-in client."""

    orgs: int
    services: Services
    env: dict[str, str]
    measured_org_id: object
    build_seconds: float
    rows: dict[str, int]
    issue_id: str = ""
    web: WebProcess | None = None
    client: load.Client | None = None
    cookie: str = ""
    cache: redis.Redis | None = field(default=None, repr=False)

    @property
    def version_key(self) -> str:
        """The Redis key of the measured organization's issue-cache version (app/core/cache.py)."""
        return f"worklane:cache:t:{self.measured_org_id}:version:issues"

    @property
    def issue_version_key(self) -> str:
        """The cache version of the measured issue's own rows (``issue.<id>``), which its page follows."""
        return f"worklane:cache:t:{self.measured_org_id}:version:issue.{self.issue_id}"

    def as_after_an_edit(self) -> None:
        """Move the versions an edit of the measured issue moves at commit: its page and the lists miss."""
        with self.cache.pipeline() as pipe:
            pipe.incr(self.version_key)
            pipe.incr(self.issue_version_key)
            pipe.execute()

    def start(self, threads: int) -> None:
        self.web = WebProcess(self.env, threads, self.services.work / f"web-{self.orgs}.log")
        self.web.start()
        self.client = load.Client(self.web.url)
        self.cookie = self.client.login(dataset.BENCH_EMAIL, dataset.BENCH_PASSWORD)
        for name, marker in MARKERS.items():
            load.check_page(self.client, PAGES[name], marker)
        self.cache = redis.Redis.from_url(self.env["REDIS_URL"])

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.web is not None:
            self.web.stop()


def build(
    services: Services,
    orgs: int,
    index: int,
    filler: list[int],
    password_hash: str,
    *,
    root: Path = ROOT,
    database: str = "",
) -> System:
    """A database with ``orgs`` organizations: the measured one and the first ``orgs - 1`` fillers.

    Its schema is the one of the migrations of the checkout at ``root`` (this one by default).
    """
    database = database or f"worklane_bench_{orgs}"
    services.create_database(database)
    env = services.app_env(database, redis_db=index)
    say(f"{database}: migrations (flask --app wsgi db upgrade, as the owner)")
    flask(env, "db", "upgrade", root=root)
    check_app_role(services, database)
    say(f"{database}: {orgs:,} organizations")
    started = time.perf_counter()
    with psycopg.connect(services.url("postgres", database)) as connection:
        builder = dataset.DatasetBuilder(connection, password_hash)
        builder.measured_organization()
        builder.saved_views()
        for serial in range(1, orgs):
            builder.filler_organization(serial, filler[serial - 1])
            if builder.buffered_issues() >= 25_000:
                builder.flush()
        builder.flush()
        # Every description and comment stored with its HTML, as the app writes them; before the
        # VACUUM, which the rewritten rows need (bloat, planner statistics) as much as the load.
        flask(env, "markdown", "render", root=root)
        services.psql("VACUUM (ANALYZE)", database)  # as after the nightly maintenance
        services.psql("CHECKPOINT", database)
        rows = table_counts(connection)
        issue_id = measured_issue_id(connection, builder.measured_org_id)
    seconds = round(time.perf_counter() - started, 1)
    say(f"{database}: built in {seconds} s ({rows['issues']:,} issues, {rows['comments']:,} comments)")
    return System(orgs, services, env, builder.measured_org_id, seconds, rows, str(issue_id))


def measured_issue_id(connection, org_id) -> str:
    """The id of the measured issue (``dataset.ISSUE_REF``)."""
    key, number = dataset.ISSUE_REF.split("-")
    row = connection.execute(
        "SELECT i.id FROM issues i JOIN projects p ON p.tenant_id = i.tenant_id AND p.id = i.project_id "
        "WHERE i.tenant_id = %s AND p.key = %s AND i.number = %s",
        (org_id, key, int(number)),
    ).fetchone()
    connection.commit()
    return str(row[0])


def check_app_role(services: Services, database: str) -> None:
    """The owner's default privileges gave the app role every table: no grant-app-role needed."""
    missing = services.psql(
        "SELECT string_agg(c.relname, ', ') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public' "
        f"WHERE c.relkind = 'r' AND NOT has_table_privilege('{APP_ROLE}', c.oid, "
        "'SELECT, INSERT, UPDATE, DELETE')",
        database,
    )
    if missing:
        raise SystemExit(f"{APP_ROLE} lacks privileges on: {missing}")


def table_counts(connection) -> dict[str, int]:
    counts = {}
    for table in dataset.TABLES:
        counts[table] = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    connection.commit()
    return counts


ORG = dataset.MEASURED_SLUG
PAGES = {
    "healthz": "/healthz",
    "list": f"/{ORG}/projects/{dataset.LIST_PROJECT}/issues",
    "board": f"/{ORG}/projects/{dataset.BOARD_PROJECT}/board",
    "issue": f"/{ORG}/issues/{dataset.ISSUE_REF}",
    "search": f"/{ORG}/search?q={dataset.SEARCH_QUERY}",
}
MARKERS = {
    "list": f"{dataset.LIST_PROJECT}-",
    "board": f"{dataset.BOARD_PROJECT}-",
    "issue": "Bench User",
    "search": dataset.SEARCH_QUERY,
}
#: Each round first moves the issues version (what an edit does), so each page's first request
#: is a miss (``_cold``) and the second a hit on the new key (``_warm``).
SEQUENTIAL = (
    ("list_cold", "list"),
    ("list_warm", "list"),
    ("board_cold", "board"),
    ("board_warm", "board"),
    ("issue_cold", "issue"),
    ("issue_warm", "issue"),
    ("search_cold", "search"),
    ("search_warm", "search"),
    ("healthz", "healthz"),
)


def measure(systems: list[System], args, monitor: Interference, stamp: str) -> list[dict]:
    """Every system's figures; the systems take turns at each measurement."""
    steps = [
        {"sizes": {}, "server_ms": {}, "client_ms": {}, "wrk": {}, "others_cpu": {}, "quiet": {}}
        for _ in systems
    ]

    say("sizes and compression")
    for system, step in zip(systems, steps, strict=True):
        for name in ("list", "board", "issue"):
            step["sizes"][name] = load.sizes(system.client, PAGES[name])

    def sequential(rounds: int, tag: str) -> list[dict[str, list[float]]]:
        # Each round starts as after an edit (the version in the cache keys moves): the first
        # request of a cached page misses, the second hits the new key. Every request
        # alternates between the systems.
        times = [{} for _ in systems]
        for i in range(rounds):
            order = list(enumerate(systems)) if i % 2 == 0 else list(enumerate(systems))[::-1]
            for _, system in order:
                system.as_after_an_edit()
            for kind, page in SEQUENTIAL:
                for n, system in order:
                    response = system.client.get(
                        PAGES[page], request_id=f"{tag}-{kind}-{i}", cookie=page != "healthz"
                    )
                    _expect_ok(response, PAGES[page])
                    times[n].setdefault(kind, []).append(response.seconds * 1000)
        return times

    sequential(10, "warmup")
    quiet = monitor.wait_for_quiet(args.quiet, args.quiet_wait)
    say(f"sequential server times ({args.samples} rounds of every page)")
    offsets = [system.web.log_path.stat().st_size for system in systems]
    started = monitor.snapshot()
    client_times = sequential(args.samples, "bench")
    others = round(monitor.share_since(started), 3)
    time.sleep(0.3)  # let the last access lines reach the logs
    for system, step, offset, times in zip(systems, steps, offsets, client_times, strict=True):
        step["quiet"]["sequential"] = quiet
        step["others_cpu"]["sequential"] = others
        durations = load.access_durations(system.web.log_path, offset)
        for kind, values in times.items():
            ids = (f"bench-{kind}-{i}" for i in range(len(values)))
            server = [durations[rid] for rid in ids if rid in durations]
            if len(server) < len(values) * 0.95:
                raise SystemExit(f"the access log lacks server times for {kind}: is LOG_LEVEL INFO?")
            step["server_ms"][kind] = load.summarize(server)
            step["client_ms"][kind] = load.summarize(values)

    wrk = {"connections": args.connections, "threads": args.threads}
    for turn, name in enumerate(WRK_RUNS):
        order = list(zip(systems, steps, strict=True))
        for system, step in order if turn % 2 == 0 else order[::-1]:
            path, headers = wrk_target(system, name)
            load.run_wrk(system.web.url + path, headers=headers, seconds=3, **wrk)  # warm-up, discarded
            step["quiet"][name] = monitor.wait_for_quiet(args.quiet, args.quiet_wait)
            say(f"wrk {name} at {system.orgs:,} organizations: {path}")
            step.setdefault("load", {})[name] = os.getloadavg()[0]  # the 1-minute average as it starts
            started = monitor.snapshot()
            step["wrk"][name] = load.run_wrk(
                system.web.url + path, headers=headers, seconds=args.duration, **wrk
            )
            step["others_cpu"][name] = round(monitor.share_since(started), 3)
            _drain(step["wrk"][name])
            errors = step["wrk"][name]["errors"]
            if any(errors.values()):
                say(f"  wrk reported errors: {errors}")
            if name != "healthz":
                load.check_page(system.client, path, MARKERS[name.split("_")[0]])

    if args.profile:
        steps[-1]["profile"] = profile_pages(systems[-1], args, stamp)
    return steps


WRK_RUNS = ("healthz", "list_warm", "list_warm_identity", "board", "issue", "search")


def measure_hello(hello: HelloProcess, args, monitor: Interference) -> dict:
    """wrk on the bare WSGI hello world, with the pages' connections and threads: the ceiling."""
    wrk = {"connections": args.connections, "threads": args.threads}
    load.run_wrk(hello.url + "/", headers={}, seconds=3, **wrk)  # warm-up, discarded
    quiet = monitor.wait_for_quiet(args.quiet, args.quiet_wait)
    say("wrk on a bare WSGI hello world (the same waitress settings)")
    started = monitor.snapshot()
    load_average = os.getloadavg()[0]
    result = load.run_wrk(hello.url + "/", headers={}, seconds=args.duration, **wrk)
    result.update(quiet=quiet, others_cpu=round(monitor.share_since(started), 3), load=load_average)
    return result


def measure_jobs(services: Services, args, monitor: Interference, redis_db: int) -> dict:
    """Trivial jobs per second of one worker process (bench/jobs.py), on a database of its own."""
    from app.extensions import redis_connections
    from bench import jobs

    app, env = services.migrated_app("worklane_bench_jobs", redis_db=redis_db)
    quiet = monitor.wait_for_quiet(args.quiet, args.quiet_wait)
    say(f"jobs: {args.jobs:,} trivial jobs, one worker process")
    load_average = os.getloadavg()[0]
    result = jobs.throughput(app, env, redis_connections.client(app), 1, args.jobs, services.work)
    result.update(quiet=quiet, load=load_average)
    return result


def wrk_target(system: System, name: str) -> tuple[str, dict[str, str]]:
    """(path, headers) of one wrk run: the browser's Accept-Encoding, /healthz without a session."""
    browser = {"Cookie": system.cookie, "Accept-Encoding": load.BROWSER_ENCODING}
    return {
        "healthz": (PAGES["healthz"], {}),
        "list_warm": (PAGES["list"], browser),
        "list_warm_identity": (PAGES["list"], {"Cookie": system.cookie}),
        "board": (PAGES["board"], browser),
        "issue": (PAGES["issue"], browser),
        "search": (PAGES["search"], browser),
    }[name]


def profile_pages(system: System, args, stamp: str) -> dict:
    """py-spy profiles of the warm list and the board under wrk, and of sequential list misses."""
    found = {}
    wrk = {"connections": args.connections, "threads": args.threads}
    for name in ("list_warm", "board"):
        path, headers = wrk_target(system, name)
        output = RESULTS / f"{stamp}-profile-{name}.txt"
        say(f"profile {name} (py-spy, {args.duration} s under wrk)")
        spy = profiling.start(system.web.process.pid, args.duration, output)
        _drain(load.run_wrk(system.web.url + path, headers=headers, seconds=args.duration, **wrk))
        spy.wait()
        found[name] = profiling.summarize(output)
    output = RESULTS / f"{stamp}-profile-list_cold.txt"
    say(f"profile list_cold (py-spy, {args.duration} s of sequential misses)")
    spy = profiling.start(system.web.process.pid, args.duration, output)
    deadline = time.monotonic() + args.duration
    while time.monotonic() < deadline:
        system.cache.incr(system.version_key)
        _expect_ok(system.client.get(PAGES["list"]), PAGES["list"])
    spy.wait()
    found["list_cold"] = profiling.summarize(output)
    return found


def _drain(wrk_result: dict) -> None:
    """Let the server finish what wrk left queued before the next measurement starts."""
    time.sleep(min(10.0, wrk_result["latency_ms"]["max"] / 1000) + 0.5)


def _expect_ok(response: load.Response, path: str) -> None:
    if response.status != 200:
        raise SystemExit(f"GET {path} answered {response.status}")


def code_version() -> dict:
    """The commit measured, and the app files that differed from it (others may be editing)."""

    def git(*args):
        result = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "app", "templates", "migrations", "workers", "wsgi.py")
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted": changed.splitlines()}


def machine(services: Services) -> dict:
    def run(*command):
        return subprocess.run(command, capture_output=True, text=True).stdout.strip()

    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M)
        cpu = match.group(1) if match else ""
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": run("free", "-h").splitlines()[1].split()[1] if run("free", "-h") else "",
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": services.versions.get("postgresql"),
        "redis": services.versions.get("redis"),
        "wrk": load.wrk_version(),
    }


if __name__ == "__main__":
    sys.exit(main())
