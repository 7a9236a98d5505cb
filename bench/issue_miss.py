"""Where the issue page's time goes after an edit (a miss), in process, on the bench's PostgreSQL.

Builds the measured organization as ``bench/run`` does (a throw-away PostgreSQL and Redis, the
app role under row-level security, one organization), builds the app in this process and calls
it directly (no socket, no waitress) as the bench's signed-in member. Each round moves the
measured issue's own cache version, as an edit does at commit, then asks for its page twice: a
miss, then a hit. Reports milliseconds per request (elapsed and the thread's CPU time, medians),
the SQL statements and Redis round trips of one miss and of one hit, and with ``--profile`` the
functions holding the most time over the misses or the hits (cProfile).

    .venv/bin/python -m bench.issue_miss --rounds 300 --profile miss
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import statistics
import sys
import time

from bench import dataset
from bench.floor import call, count_round_trips, environ_for
from bench.harness import PAGES, build
from bench.services import Services, say


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.issue_miss", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300, help="rounds of miss then hit (default 300)")
    parser.add_argument(
        "--profile", choices=("miss", "hit"), help="cProfile the misses (or the hits) of a second pass"
    )
    parser.add_argument("--top", type=int, default=30, help="functions listed by the profile (default 30)")
    parser.add_argument("--save", metavar="PATH", help="also write the profile to PATH (for pstats)")
    return parser.parse_args(argv)


def app_for(env: dict[str, str]):
    os.environ.update(env)
    from app import create_app
    from app.config import config_from_env

    app = create_app(config_from_env())
    for handler in logging.getLogger().handlers:
        if handler.get_name() == "worklane":
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115
    return app


def login_cookie(app) -> str:
    from tests.accounts import login

    client = app.test_client()
    login(client, dataset.BENCH_EMAIL, password=dataset.BENCH_PASSWORD)
    return client.get_cookie("worklane_session").value


def measured_app(services: Services):
    """The measured organization built on the started ``services``: the system, the app in this
    process, and a client of its Redis."""
    import redis

    from app.core.security import hash_password

    system = build(services, 1, 0, [], hash_password(dataset.BENCH_PASSWORD))
    app = app_for(system.env)
    return system, app, redis.Redis.from_url(system.env["REDIS_URL"])


def rounds_of(app, environ_of, before, rounds: int, profiler=None, profiled="miss") -> dict[str, list[float]]:
    """Time ``rounds`` rounds of a miss then a hit, in milliseconds (elapsed and the thread's CPU).

    Each round first calls ``before(number)`` (which moves the cache version the page reads),
    then asks twice for the request of ``environ_of(number)``. With ``profiler``, only the
    requests of the kind ``profiled`` run under it.
    """
    times: dict[str, list[float]] = {"miss": [], "hit": [], "miss_cpu": [], "hit_cpu": []}
    for number in range(rounds):
        before(number)
        environ = environ_of(number)
        for kind in ("miss", "hit"):
            if profiler is not None and kind == profiled:
                profiler.enable()
            started, started_cpu = time.perf_counter(), time.thread_time()
            status, _ = call(app, environ)
            cpu, elapsed = time.thread_time() - started_cpu, time.perf_counter() - started
            if profiler is not None and kind == profiled:
                profiler.disable()
            assert status.startswith("200"), status
            times[kind].append(elapsed * 1000)
            times[f"{kind}_cpu"].append(cpu * 1000)
    return times


def print_times(times: dict[str, list[float]], miss: dict, hit: dict) -> None:
    """The table of a miss and a hit: median milliseconds, and the SQL and Redis round trips of one."""
    print("\n| request | elapsed ms (median) | CPU ms (median) | SQL | Redis round trips |")
    print("| --- | ---: | ---: | ---: | --- |")
    for kind, trips in (("miss", miss), ("hit", hit)):
        elapsed, cpu = statistics.median(times[kind]), statistics.median(times[f"{kind}_cpu"])
        print(f"| {kind} | {elapsed:.2f} | {cpu:.2f} | {trips['sql']} | {' '.join(trips['redis'])} |")
    print(f"\nload (1 min) after: {os.getloadavg()[0]:.2f}")


def print_profile(profiler: cProfile.Profile, top: int) -> None:
    """The ``top`` functions of the profile, by cumulative time, then by their own time."""
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(top)
        print(out.getvalue())


def measure(args) -> None:
    services = Services()
    try:
        services.start()
        system, app, cache = measured_app(services)
        environ = environ_for(app, PAGES["issue"], login_cookie(app))
        environ["HTTP_HOST"] = "localhost"

        def before(_number: int) -> None:
            cache.incr(system.issue_version_key)

        def environ_of(_number: int) -> dict:
            return environ

        for number in range(20):
            before(number)
            call(app, environ)
        before(20)
        miss = count_round_trips(app, environ)
        hit = count_round_trips(app, environ)
        say(f"{args.rounds} rounds (load {os.getloadavg()[0]:.2f})")
        print_times(rounds_of(app, environ_of, before, args.rounds), miss, hit)
        if args.profile:
            profiler = cProfile.Profile()
            rounds_of(app, environ_of, before, args.rounds, profiler, args.profile)
            if args.save:
                profiler.dump_stats(args.save)
            print_profile(profiler, args.top)
    finally:
        services.stop()


def main(argv=None) -> int:
    measure(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
