"""Search benchmark: the search page one request at a time, from the cache and after an edit.

    .venv/bin/python -m bench.search                              # this checkout
    .venv/bin/python -m bench.search --baseline ../other-checkout  # and another one, same data
    .venv/bin/python -m bench.search --baseline ../a --baseline ../b
    .venv/bin/python -m bench.search --query "thumbnails" --samples 200 --duration 10
    .venv/bin/python -m bench.search --baseline ../other-checkout --own-databases  # schemas differ

Not part of the tests. It starts its own PostgreSQL and Redis (bench/services.py), builds the
10-organization database of ``bench/run --preset small`` (the measured organization, with its
5,500 issues, and the first nine filler organizations) and serves it with the Procfile's web
process. Each ``--baseline DIR`` adds a web process running the app of another checkout (the
code before a change, named by its directory) on the same database and Redis, and every
measurement alternates between them, so that whatever else the machine does weighs on all alike.
With ``--own-databases`` each checkout gets a database of its own, built by its own migrations
with the same data (for a change of schema, which one database cannot serve to both), and each
round moves the version in each.

As ``bench@measured.example``, each round:

- **miss**: moves the measured organization's ``issues`` version in Redis (what any edit of an
  issue does at commit), then GETs ``/measured/search?q=<query>``;
- **hit**: GETs the same page again.

With ``--edit-hit`` each round also rewrites, before the miss, the description of one of the
issues the page shows (each in turn, as the schema owner, so the triggers rewrite its search
row as an edit through the app does): the miss then makes that issue's excerpt again (on
PostgreSQL excerpts are kept per version of an issue's text), where without it every excerpt
of the page is kept.

"thumbnails" matches about 134 of the measured organization's issues; the page shows the first
30. Reported per code: medians and p95 of the request time measured by the client (one
keep-alive connection over loopback) and of the access log's ``duration_ms``, then wrk
(``-t2 -c16``, after a 3 s warm-up) on the page and on ``/healthz``, with the 1-minute load
average as each measurement starts and the share of the machine other processes used.

Writes ``bench/results/search-<timestamp>.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
import redis

from app.core.security import hash_password
from bench import dataset, load
from bench.cpu import Interference
from bench.harness import build
from bench.services import WebProcess, run_benchmark, say

SEARCH = f"/{dataset.MEASURED_SLUG}/search?q="
RESULT = re.compile(rb'<li class="card result">')


class CheckoutWebProcess(WebProcess):
    """The Procfile's web process, running the app of the checkout at ``root``."""

    def __init__(self, root: Path, *args):
        super().__init__(*args)
        self.root = root

    def command(self) -> list[str]:
        return ["env", f"--chdir={self.root}", *super().command()]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__.splitlines()[0])
    parser.add_argument("--query", default="thumbnails", help="the words searched (default: thumbnails)")
    parser.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        help="another checkout of the app, measured beside this one (repeatable)",
    )
    parser.add_argument(
        "--own-databases",
        action="store_true",
        help="each checkout on a database built by its own migrations (when the schemas differ)",
    )
    parser.add_argument(
        "--edit-hit",
        action="store_true",
        help="before each miss, also rewrite the text of one issue the page shows",
    )
    parser.add_argument("--samples", type=int, default=150, help="sequential rounds (default 150)")
    parser.add_argument("--duration", type=int, default=10, help="seconds of each wrk run (default 10)")
    parser.add_argument("--quiet-wait", type=float, default=30, help="seconds to wait for a quiet machine")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    load.wrk_path()
    settings = {"query": args.query, "samples": args.samples, "wrk_seconds": args.duration}
    settings["baselines"] = [str(path.resolve()) for path in args.baseline]
    settings["own_databases"] = args.own_databases
    settings["edit_hit"] = args.edit_hit
    return run_benchmark(
        "search", {"settings": settings}, lambda services, results: measure(services, results, args)
    )


def measure(services, results: dict, args) -> None:
    filler = dataset.filler_sizes(dataset.PRESETS["small"].org_steps[-1], dataset.PRESETS["small"].issues)
    password_hash = hash_password(dataset.BENCH_PASSWORD)
    roots = {"this": Path(__file__).resolve().parent.parent}
    for path in args.baseline:
        roots[path.resolve().name] = path.resolve()
    if args.own_databases:
        systems = {
            name: build(services, 10, index, filler, password_hash, root=root, database=f"search_{index}")
            for index, (name, root) in enumerate(roots.items())
        }
    else:
        system = build(services, 10, 0, filler, password_hash)
        systems = dict.fromkeys(roots, system)
    webs, clients = {}, {}
    try:
        for name, root in roots.items():
            webs[name] = CheckoutWebProcess(root, systems[name].env, 8, services.work / f"web-{name}.log")
            webs[name].start()
            clients[name] = load.Client(webs[name].url)
            clients[name].login(dataset.BENCH_EMAIL, dataset.BENCH_PASSWORD)
        results["figures"] = _measure(systems, services, webs, clients, args)
    finally:
        for client in clients.values():
            client.close()
        for web in webs.values():
            web.stop()
    print(markdown(results["figures"], args.query))


def _measure(systems, services, webs, clients, args) -> dict:
    versions = {(system.env["REDIS_URL"], system.version_key) for system in systems.values()}
    caches = [(redis.Redis.from_url(url), key) for url, key in sorted(versions)]
    path = SEARCH + quote(args.query)
    first = clients["this"].get(path, encoding="identity")
    if first.status != 200:
        raise SystemExit(f"GET {path} answered {first.status}")
    figures = {name: {"results_shown": len(RESULT.findall(first.body))} for name in webs}
    monitor = Interference(lambda: [os.getpid(), *(w.process.pid for w in webs.values()), *services.pids()])
    names = list(webs)

    editors = [_HitEditor(system, args.query) for system in {id(s): s for s in systems.values()}.values()]

    def rounds(count: int, tag: str) -> dict:
        times = {name: {"miss": [], "hit": []} for name in names}
        for i in range(count):
            order = names if i % 2 == 0 else names[::-1]
            if args.edit_hit:
                for editor in editors:
                    editor.edit(i)
            for cache, version_key in caches:
                cache.incr(version_key)
            for kind in ("miss", "hit"):
                for name in order:
                    response = clients[name].get(path, request_id=f"{tag}-{name}-{kind}-{i}")
                    if response.status != 200:
                        raise SystemExit(f"GET {path} answered {response.status}")
                    times[name][kind].append(response.seconds * 1000)
        return times

    rounds(10, "warmup")
    figures["quiet"] = monitor.wait_for_quiet(0.15, args.quiet_wait)
    say(f"search {args.query!r}: {args.samples} rounds of a miss and a hit")
    offsets = {name: web.log_path.stat().st_size for name, web in webs.items()}
    load_average, started = os.getloadavg()[0], monitor.snapshot()
    times = rounds(args.samples, "bench")
    others = round(monitor.share_since(started), 3)
    time.sleep(0.3)  # let the last access lines reach the logs
    for name, web in webs.items():
        durations = load.access_durations(web.log_path, offsets[name])
        entry = figures[name]
        entry["sequential"] = {"load": load_average, "others_cpu": others}
        for kind, values in times[name].items():
            server = [durations[f"bench-{name}-{kind}-{i}"] for i in range(len(values))]
            entry["sequential"][kind] = {
                "client_ms": load.summarize(values),
                "server_ms": load.summarize(server),
            }

    wrk = {"connections": 16, "threads": 2}

    def browser(name: str) -> dict[str, str]:
        return {"Cookie": clients[name].cookie, "Accept-Encoding": load.BROWSER_ENCODING}

    for target, url_path, headers in (("healthz", "/healthz", lambda name: {}), ("search", path, browser)):
        for name in names:
            url = webs[name].url + url_path
            load.run_wrk(url, headers=headers(name), seconds=3, **wrk)  # warm-up, discarded
            monitor.wait_for_quiet(0.15, args.quiet_wait)
            say(f"wrk {target} ({name})")
            load_average, started = os.getloadavg()[0], monitor.snapshot()
            result = load.run_wrk(url, headers=headers(name), seconds=args.duration, **wrk)
            result.update(load=load_average, others_cpu=round(monitor.share_since(started), 3))
            figures[name][f"wrk_{target}"] = result
            time.sleep(min(10.0, result["latency_ms"]["max"] / 1000) + 0.5)
    for editor in editors:
        editor.close()
    return figures


class _HitEditor:
    """Rewrites the description of the issues the search page shows, one per round, in turn."""

    def __init__(self, system, query: str):
        self.connection = psycopg.connect(system.env["DATABASE_MIGRATION_URL"], autocommit=True)
        self.connection.execute("SET app.unscoped = 'on'")  # the owner too is held to the tenant policy
        self.ids = [
            row[0]
            for row in self.connection.execute(
                """
                SELECT s.issue_id FROM issue_search s
                JOIN issues i ON i.tenant_id = s.tenant_id AND i.id = s.issue_id
                WHERE s.tenant_id = %(tenant)s
                  AND s.search_vector @@ websearch_to_tsquery('english', %(query)s)
                ORDER BY ts_rank_cd(s.search_vector, websearch_to_tsquery('english', %(query)s)) DESC,
                         i.created_at DESC, i.id DESC
                LIMIT 30
                """,
                {"tenant": system.measured_org_id, "query": query},
            )
        ]

    def edit(self, round_number: int) -> None:
        self.connection.execute(
            "UPDATE issues SET description = description || %s WHERE id = %s",
            (f" (round {round_number})", self.ids[round_number % len(self.ids)]),
        )

    def close(self) -> None:
        self.connection.close()


def markdown(figures: dict, query: str) -> str:
    lines = [
        f"### Search {query!r}, one request at a time (client ms / access-log ms), and under wrk -c16",
        "",
        "| code | shown | miss median | miss p95 | hit median | hit p95 | load | others' CPU "
        "| req/s | ÷ /healthz | p99 ms | load |",
        "| --- |" + " ---: |" * 11,
    ]
    for name, entry in figures.items():
        if name == "quiet":
            continue
        seq = entry["sequential"]
        miss, hit = seq["miss"], seq["hit"]
        search, healthz = entry["wrk_search"], entry["wrk_healthz"]
        cells = [
            name,
            str(entry["results_shown"]),
            f"{miss['client_ms']['median']:.1f} / {miss['server_ms']['median']:.1f}",
            f"{miss['client_ms']['p95']:.1f} / {miss['server_ms']['p95']:.1f}",
            f"{hit['client_ms']['median']:.1f} / {hit['server_ms']['median']:.1f}",
            f"{hit['client_ms']['p95']:.1f} / {hit['server_ms']['p95']:.1f}",
            f"{seq['load']:.2f}",
            f"{seq['others_cpu']:.0%}",
            f"{search['rps']:.0f}",
            f"{search['rps'] / healthz['rps']:.2f}",
            f"{search['latency_ms']['p99']:.1f}",
            f"{search['load']:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
