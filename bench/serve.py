"""Build the measured system and keep it running, to profile or try a page by hand.

    .venv/bin/python -m bench.serve                  # 10 organizations, served until Ctrl-C
    .venv/bin/python -m bench.serve --orgs 100

Starts a throw-away PostgreSQL and Redis, builds the database of ``bench/run --preset small``
with ``--orgs`` organizations (the measured one and the first fillers) and serves it with the
Procfile's ``web`` process, as ``bench/run`` does. Then it prints the address of each measured
page, the signed-in cookie of ``bench@measured.example``, the web process's id (for
``py-spy record --pid``) and its log, and waits; Ctrl-C or SIGTERM tears everything down.
"""

from __future__ import annotations

import argparse
import signal

from app.core.security import hash_password
from bench import dataset, load
from bench.harness import PAGES, build
from bench.services import WebProcess, run_benchmark, say


def parse_args(argv=None) -> argparse.Namespace:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--orgs", type=int, default=10, help="organizations in the database")
    parser.add_argument("--threads", type=int, default=8, help="waitress threads of the web process")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_benchmark("serve", {"settings": vars(args)}, lambda services, _results: serve(services, args))


def serve(services, args) -> None:
    preset = dataset.PRESETS["small"]
    filler = dataset.filler_sizes(max(args.orgs, preset.org_steps[-1]), preset.issues)
    system = build(services, args.orgs, 0, filler, hash_password(dataset.BENCH_PASSWORD))
    web = WebProcess(system.env, args.threads, services.work / "web.log")
    web.start()
    client = load.Client(web.url)
    try:
        client.login(dataset.BENCH_EMAIL, dataset.BENCH_PASSWORD)
        for name, path in PAGES.items():
            say(f"{name}: {web.url}{path}")
        say(f"cookie: {client.cookie}")
        say(f"web process: pid {web.process.pid}, log {web.log_path}")
        say("serving until Ctrl-C")
        while True:  # Ctrl-C (KeyboardInterrupt) or SIGTERM (SystemExit) unwinds through here
            signal.pause()
    finally:
        client.close()
        web.stop()


if __name__ == "__main__":
    raise SystemExit(main())
