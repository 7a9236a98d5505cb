"""Instructions per request, in process, counted by Valgrind: a measure a busy machine does not move.

    .venv/bin/python -m bench.instructions                       # /healthz, a warm list, an issue page
    .venv/bin/python -m bench.instructions --rounds 200 /healthz
    .venv/bin/python -m bench.instructions miss:/acme/issues/WEB-1  # the issue page after an edit

Times on a shared 2-core machine move by 10 to 20% from run to run; the number of instructions the
interpreter executes for a request does not (two runs agree within about 1%). For each path this
runs ``bench/floor.py``'s app (SQLite, a throw-away Redis, the access log written to /dev/null)
under ``valgrind --tool=callgrind`` with instrumentation off while the app is built, seeded and
warmed up, turns it on (``callgrind_control``) for ``--rounds`` requests made inside
``itertools.starmap`` (callgrind counts only inside that call), and prints the instructions per
request: Python, C extensions (brotli, hiredis, pickle) and the C library, not the kernel.
A path written ``miss:<path>`` is asked for after moving the cache versions an edit of an issue
moves at commit, as ``bench/run`` does (the organization's issues and each issue's own rows; one
Redis ``INCR`` per version, counted with the request).

Needs ``valgrind`` (Debian package ``valgrind``; as root it is installed when missing).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATHS = ("/healthz", "/acme/issues", "/acme/issues/WEB-1")


def parse_args(argv=None) -> argparse.Namespace:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("paths", nargs="*", default=list(PATHS), help="paths (signed in, but /healthz)")
    parser.add_argument("--rounds", type=int, default=100, help="requests counted per path")
    parser.add_argument("--serve", nargs=3, metavar=("PATH", "ROUNDS", "SYNC"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def valgrind() -> str:
    found = shutil.which("valgrind")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "valgrind"], check=False, capture_output=True)
        found = shutil.which("valgrind")
    if found is None:
        raise SystemExit("valgrind is missing: apt-get install valgrind")
    return found


def count(path: str, rounds: int) -> int:
    """Instructions per request of ``path``, over ``rounds`` requests."""
    with tempfile.TemporaryDirectory(prefix="worklane-instructions.") as directory:
        sync, out = Path(directory) / "sync", Path(directory) / "callgrind.out"
        command = [
            valgrind(),
            "--tool=callgrind",
            "--instr-atstart=no",
            "--toggle-collect=starmap_next",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "bench.instructions",
            "--serve",
            path,
            str(rounds),
            str(sync),
        ]
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        ready = sync.with_suffix(".ready")
        while not ready.exists():
            if process.poll() is not None:
                raise SystemExit(process.stdout.read()[-3000:])
            time.sleep(0.2)
        subprocess.run(["callgrind_control", "-i", "on", ready.read_text()], check=True, capture_output=True)
        sync.with_suffix(".go").touch()
        output, _ = process.communicate()
    collected = re.search(r"Collected : (\d+)", output)
    if process.returncode != 0 or collected is None:
        raise SystemExit(output[-3000:])
    return int(collected.group(1)) // rounds


def serve(path: str, rounds: int, sync: str) -> None:
    """Inside valgrind: build and warm the app, wait for instrumentation, make the requests."""
    from bench import floor

    directory = Path(tempfile.mkdtemp(prefix="worklane-instructions-app."))
    redis, url = floor.start_redis(directory)
    try:
        app = floor.build_app(directory, url)
        cookie = floor.seed(app)
        miss = path.startswith("miss:")
        path = path.removeprefix("miss:")
        environ = floor.environ_for(app, path, None if path == "/healthz" else cookie)
        call = floor.call
        for _ in range(200):
            status, _body = call(app, environ)
        if miss:
            call = _after_an_edit(url, call)
            status, _body = call(app, environ)
        if not status.startswith("200"):
            raise SystemExit(f"{path} answered {status}")
        # As the web process does before it serves (workers/web.py): what start-up and the warm-up
        # made stays out of later collections, so a full collection of them, which comes every few
        # thousand requests, does not fall into the counted ones at random.
        gc.collect()
        gc.freeze()
        Path(sync).with_suffix(".ready").write_text(str(os.getpid()))
        while not Path(sync).with_suffix(".go").exists():
            time.sleep(0.05)
        list(itertools.starmap(call, itertools.repeat((app, environ), rounds)))
    finally:
        redis.kill()
        shutil.rmtree(directory, ignore_errors=True)


def _after_an_edit(redis_url: str, call):
    """``call`` preceded by moving the versions an edit of an issue moves at commit, as
    ``bench/run`` does: the organization's ``issues`` and each issue's own rows (``issue.<id>``)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = [*client.scan_iter(match="*:version:issue.*"), *client.scan_iter(match="*:version:issues")]
    if not keys:
        raise SystemExit("no issue versions in the cache: the page did not follow one")

    def edited_then_called(app, environ):
        for key in keys:
            client.incr(key)
        return call(app, environ)

    return edited_then_called


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.serve:
        path, rounds, sync = args.serve
        serve(path, int(rounds), sync)
        return 0
    print("| path | instructions per request |\n| --- | ---: |")
    for path in args.paths:
        print(f"| `{path}` | {count(path, args.rounds):,} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
