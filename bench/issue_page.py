"""The issue page alone: a cache hit, the page after an edit (a miss), and req/s under load as a
share of ``/healthz`` in the same run.

    .venv/bin/python -m bench.issue_page                 # 10 organizations, 2,000 filler issues
    .venv/bin/python -m bench.issue_page --rounds 200 --duration 15

It builds the same measured organization as ``bench/run`` (a throw-away PostgreSQL and Redis,
the app role under row-level security, one web process as the Procfile's ``web``), then:

- **sequential** (one keep-alive connection): each round first moves the measured issue's own
  cache version in Redis, as any change to the issue does at commit, then requests the page
  twice: the first is the page after an edit (a miss), the second a hit;
- **wrk** on ``/healthz`` and on the issue page, taking turns, with the 1-minute load average as
  each starts.

Descriptions and comments are loaded by ``COPY``, without their stored HTML; as after the
migration, ``flask markdown render`` stores it first (when the code has that command).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import redis

from app.core.security import hash_password
from bench import dataset, load
from bench.harness import PAGES, build
from bench.services import flask, run_benchmark, say


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.issue_page", description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=10, help="organizations (default 10)")
    parser.add_argument("--issues", type=int, default=2000, help="filler issues (default 2,000)")
    parser.add_argument("--rounds", type=int, default=150, help="sequential rounds (default 150)")
    parser.add_argument("--duration", type=int, default=15, help="seconds of each wrk run (default 15)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=8)
    return parser.parse_args(argv)


def measure(args, services, results: dict) -> None:
    filler = dataset.filler_sizes(args.orgs, args.issues)
    system = build(services, args.orgs, 0, filler, hash_password(dataset.BENCH_PASSWORD))
    try:
        flask(system.env, "markdown", "render")
        results["stored_html"] = True
    except SystemExit:
        results["stored_html"] = False  # code without stored HTML
    system.start(args.web_threads)
    try:
        key = system.issue_version_key
        cache = redis.Redis.from_url(system.env["REDIS_URL"])
        page = PAGES["issue"]
        times: dict[str, list[float]] = {"miss": [], "hit": [], "healthz": []}
        offset = system.web.log_path.stat().st_size
        say(f"sequential: {args.rounds} rounds of miss, hit, /healthz")
        load_before = os.getloadavg()[0]
        for i in range(args.rounds):
            cache.incr(key)
            for kind in ("miss", "hit"):
                response = system.client.get(page, request_id=f"{kind}-{i}")
                assert response.status == 200, (page, response.status)
                times[kind].append(response.seconds * 1000)
            response = system.client.get(PAGES["healthz"], request_id=f"healthz-{i}", cookie=False)
            times["healthz"].append(response.seconds * 1000)
        time.sleep(0.3)
        server = load.access_durations(system.web.log_path, offset)
        results["sequential"] = {
            kind: {
                "client_ms": load.summarize(values),
                "server_ms": load.summarize([server[f"{kind}-{i}"] for i in range(len(values))]),
            }
            for kind, values in times.items()
        }
        results["sequential"]["load"] = [load_before, os.getloadavg()[0]]
        wrk = {"connections": args.connections, "threads": args.threads, "seconds": args.duration}
        browser = {"Cookie": system.cookie, "Accept-Encoding": load.BROWSER_ENCODING}
        results["wrk"] = {}
        for name, path, headers in (("healthz", PAGES["healthz"], {}), ("issue", page, browser)) * 2:
            load.run_wrk(system.web.url + path, headers=headers, **{**wrk, "seconds": 3})
            say(f"wrk {name}")
            load_average = os.getloadavg()[0]
            run = load.run_wrk(system.web.url + path, headers=headers, **wrk)
            run["load"] = load_average
            results["wrk"].setdefault(name, []).append(run)
    finally:
        system.stop()
    print(report(results))


def report(results: dict) -> str:
    sequential, wrk = results["sequential"], results["wrk"]
    lines = [
        "| measure | client ms (median) | server ms (median) | p90 client ms |",
        "| --- | ---: | ---: | ---: |",
    ]
    for kind in ("hit", "miss", "healthz"):
        client, server = sequential[kind]["client_ms"], sequential[kind]["server_ms"]
        lines.append(f"| {kind} | {client['median']} | {server['median']} | {client['p90']} |")
    lines.append(f"\nload (1 min) before / after the sequential rounds: {sequential['load']}\n")
    lines.append("| wrk run | req/s | p50 ms | load |")
    lines.append("| --- | ---: | ---: | ---: |")
    for name, runs in wrk.items():
        for run in runs:
            p50 = run["latency_ms"].get("p50", run["latency_ms"].get("p50.0", ""))
            lines.append(f"| {name} | {run['rps']} | {p50} | {run['load']:.2f} |")
    healthz = sum(run["rps"] for run in wrk["healthz"]) / len(wrk["healthz"])
    issue = sum(run["rps"] for run in wrk["issue"]) / len(wrk["issue"])
    lines.append(f"\nissue page ÷ /healthz: {issue:.0f} / {healthz:.0f} = {issue / healthz:.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    load.wrk_path()
    settings = {"settings": vars(args)}
    return run_benchmark("issue-page", settings, lambda services, found: measure(args, services, found))


if __name__ == "__main__":
    sys.exit(main())
