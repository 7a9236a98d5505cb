"""Where a search's time goes after an edit (a miss), in process, on the bench's PostgreSQL.

Builds the measured organization as ``bench/run`` does (a throw-away PostgreSQL and Redis, the
app role under row-level security, one organization), builds the app in this process and calls
it directly (no socket, no waitress) as the bench's signed-in member. Each round moves the
organization's ``issues`` version, as an edit of any of its issues does at commit, then asks for
``/measured/search?q=<query>`` twice: a miss, then a hit. With ``--edit-hit`` each round first
rewrites the description of one of the issues the page shows (each in turn, as the schema
owner, so the triggers rewrite its search row as an edit through the app does): the miss then
makes that issue's excerpt again. With ``--new-question`` each miss asks a question not asked
before (the query and, excluded, a made-up word that differs each round: the same hits), so no
excerpt is kept and all of the page's are made.

Reports milliseconds per request (elapsed and the thread's CPU time, medians), the SQL
statements and Redis round trips of one miss and of one hit, and with ``--profile`` the
functions holding the most time over the misses or the hits (cProfile).

    .venv/bin/python -m bench.search_miss --rounds 300 --edit-hit --profile miss
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from urllib.parse import quote

from bench import dataset
from bench.floor import call, count_round_trips, environ_for
from bench.issue_miss import login_cookie, measured_app, print_profile, print_times, rounds_of
from bench.services import Services, say


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.search_miss", description=__doc__.splitlines()[0])
    parser.add_argument("--query", default=dataset.SEARCH_QUERY, help="the words searched")
    parser.add_argument("--rounds", type=int, default=300, help="rounds of miss then hit (default 300)")
    parser.add_argument(
        "--edit-hit", action="store_true", help="before each miss, rewrite the text of a hit the page shows"
    )
    parser.add_argument(
        "--new-question", action="store_true", help="each miss asks a question not asked before"
    )
    parser.add_argument(
        "--profile", choices=("miss", "hit"), help="cProfile the misses (or the hits) of a second pass"
    )
    parser.add_argument("--keys", action="store_true", help="list the keys of a miss's Redis round trips")
    parser.add_argument(
        "--pieces", action="store_true", help="time the parts of a miss (the search, the render, the writes)"
    )
    parser.add_argument("--top", type=int, default=30, help="functions listed by the profile (default 30)")
    parser.add_argument(
        "--callees", action="append", default=[], help="with --profile, what the functions matching this call"
    )
    return parser.parse_args(argv)


def print_round_trips(app, environ) -> None:
    """The Redis commands of one request, with their keys (a pipeline's on one line)."""
    from redis.client import Pipeline, Redis

    original_execute, original_pipeline = Redis.execute_command, Pipeline.execute

    def shown(args) -> str:
        return " ".join(str(a)[:90] for a in args if not isinstance(a, bytes))

    def execute(self, *args, **options):
        if not isinstance(self, Pipeline):
            print("  ", shown(args))
        return original_execute(self, *args, **options)

    def pipeline(self, *args, **kwargs):
        print("   pipeline:", " | ".join(shown(c[0]) for c in self.command_stack))
        return original_pipeline(self, *args, **kwargs)

    Redis.execute_command, Pipeline.execute = execute, pipeline
    try:
        call(app, environ)
    finally:
        Redis.execute_command, Pipeline.execute = original_execute, original_pipeline


#: The parts of a miss ``--pieces`` times: (label, module, function name).
PIECES = (
    ("cached_search_issues", "app.issues.search", "cached_search_issues"),
    ("  search statement", "app.issues.search", "_search"),
    ("render_template (in the view)", "app.issues.routes", "render_template"),
    ("write to the cache", "app.core.cache", "_write_collected"),
    ("session open", "app.core.sessions", "WorklaneSessionInterface.open_session"),
    ("session save", "app.core.sessions", "WorklaneSessionInterface.save_session"),
)


def timed_pieces(pieces=PIECES):
    """Wrap the functions of ``pieces`` to sum their elapsed and CPU milliseconds; returns the sums
    and a function that puts the originals back."""
    import importlib

    sums: dict[str, list[float]] = {label: [0.0, 0.0, 0] for label, _, _ in pieces}
    undo = []
    for label, module_name, name in pieces:
        owner = importlib.import_module(module_name)
        holder_name, _, attribute = name.rpartition(".")
        holder = getattr(owner, holder_name) if holder_name else owner
        if not hasattr(holder, attribute):
            continue
        original = getattr(holder, attribute)

        def wrapper(*a, _original=original, _sums=sums[label], **k):
            started, started_cpu = time.perf_counter(), time.thread_time()
            try:
                return _original(*a, **k)
            finally:
                _sums[0] += (time.perf_counter() - started) * 1000
                _sums[1] += (time.thread_time() - started_cpu) * 1000
                _sums[2] += 1

        setattr(holder, attribute, wrapper)
        undo.append((holder, attribute, original))

    def restore():
        for holder, attribute, original in undo:
            setattr(holder, attribute, original)

    return sums, restore


def measure(args) -> None:
    from bench.search import _HitEditor

    services = Services()
    try:
        services.start()
        system, app, cache = measured_app(services)
        cookie = login_cookie(app)
        editor = _HitEditor(system, args.query)
        environs: dict[str, dict] = {}
        asked = [0]

        def environ_of(number: int) -> dict:
            query = args.query
            if args.new_question:
                asked[0] += 1
                query = f"{args.query} -zq{asked[0]}x"
            if query not in environs:
                environs.clear()
                path = f"/{dataset.MEASURED_SLUG}/search?q={quote(query)}"
                environs[query] = environ_for(app, path, cookie)
                environs[query]["HTTP_HOST"] = "localhost"
            return environs[query]

        def before(number: int) -> None:
            if args.edit_hit:
                editor.edit(number)
            cache.incr(system.version_key)

        for number in range(20):
            before(number)
            call(app, environ_of(number))
        before(20)
        environ = environ_of(20)
        if args.keys:
            before(21)
            environ = environ_of(21)
            print_round_trips(app, environ)
            before(22)
        miss, hit = count_round_trips(app, environ), count_round_trips(app, environ)
        say(f"{args.rounds} rounds (load {os.getloadavg()[0]:.2f})")
        print_times(rounds_of(app, environ_of, before, args.rounds), miss, hit)
        if args.pieces:
            sums, restore = timed_pieces()
            rounds_of(app, environ_of, before, args.rounds, profiled="none")
            restore()
            print("\n| part of a miss and a hit (per round) | elapsed ms | CPU ms | calls |")
            print("| --- | ---: | ---: | ---: |")
            for label, (elapsed, cpu, calls) in sums.items():
                per_round = (elapsed / args.rounds, cpu / args.rounds, calls / args.rounds)
                print("| {} | {:.2f} | {:.2f} | {:g} |".format(label, *per_round))
        if args.profile:
            profiler = cProfile.Profile()
            rounds_of(app, environ_of, before, args.rounds, profiler, args.profile)
            print_profile(profiler, args.top)
            for pattern in args.callees:
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_callees(pattern)
                print(out.getvalue())
        editor.close()
    finally:
        services.stop()


def main(argv=None) -> int:
    measure(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
