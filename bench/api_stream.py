"""API stream benchmark: time and peak memory of the web process streaming every issue of an organization.

    .venv/bin/python -m bench.api_stream                      # 5,000 and 50,000 issues
    .venv/bin/python -m bench.api_stream --sizes 2000,20000
    .venv/bin/python -m bench.api_stream --access-log off --streams 3 --env MALLOC_ARENA_MAX=1

Not part of the tests. It starts its own PostgreSQL and Redis (bench/services.py), builds one
organization per size with the benchmark's dataset builder (as bench/exports.py does) and
gives it an API key (``issues:read projects:read``, made by the organization's owner). For
each size and access-log setting it starts the Procfile's ``web`` process fresh
(``flask --app wsgi web``, as bench/harness.py does): the access log on is production's
``LOG_LEVEL=INFO``, off is ``LOG_LEVEL=WARNING``. It makes one small API call
(``GET /api/v1/projects``) and takes the process's peak resident set then as the baseline;
then it reads ``GET /api/v1/issues/stream`` in 64 KiB chunks (never the whole body at once),
counts its lines and checks they are the organization's issues; ``--streams`` reads it again
as many times in the same process. Peak memory is the kernel's high-water mark of the web
process's resident set (``VmHWM`` in ``/proc/<pid>/status``), sampled with the resident set
itself (``VmRSS``) every 20 ms while the body is read and once more at its end.

Writes ``bench/results/api-stream-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import psycopg

from bench import dataset
from bench.exports import build_organization, status_kib
from bench.harness import code_version, machine
from bench.services import Services, WebProcess, run_benchmark, say

DATABASE = "api_stream"
#: Waitress threads of the web process (the Procfile's default).
WEB_THREADS = 8
#: Bytes asked of the socket at a time while the stream is read.
CHUNK = 64 * 1024
SCOPES = "issues:read projects:read"


def give_api_key(services: Services, org_id: str) -> str:
    """An API key of the organization, made by its owner, valid for a day; the token."""
    from app.apikeys.services import new_token, token_hash

    token = new_token(uuid.UUID(org_id))
    now = datetime.now(UTC)
    with psycopg.connect(services.url("postgres", DATABASE)) as connection:
        owner = connection.execute(
            "SELECT user_id FROM memberships WHERE tenant_id = %s AND role = 'owner'", (org_id,)
        ).fetchone()
        if owner is None:
            raise SystemExit(f"organization {org_id} has no owner")
        connection.execute(
            "INSERT INTO api_keys (tenant_id, id, name, scopes, token_hash, last_four, created_by_id,"
            " created_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                org_id,
                uuid.uuid4(),
                "Stream benchmark",
                SCOPES,
                token_hash(token),
                token[-4:],
                owner[0],
                now,
                now + timedelta(days=1),
            ),
        )
    return token


def count_issues(services: Services, org_id: str) -> int:
    return int(services.psql(f"SELECT count(*) FROM issues WHERE tenant_id = '{org_id}'", DATABASE))


def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


class PeakSampler:
    """Reads a process's ``VmHWM`` and ``VmRSS`` every 20 ms in a thread until stopped: ``peak``
    (the kernel's high-water mark) and ``rss_max`` (the largest resident set seen), in KiB."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak = status_kib(pid)
        self.rss_max = status_kib(pid, "VmRSS")
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        self.peak = max(self.peak, status_kib(self.pid))
        self.rss_max = max(self.rss_max, status_kib(self.pid, "VmRSS"))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self.samples += 1
            self._stop.wait(0.02)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()  # the high-water mark keeps what came after the last sample


def _get(url: str, path: str, token: str) -> http.client.HTTPResponse:
    where = urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=300)
    connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    return connection.getresponse()


def small_call(url: str, token: str) -> None:
    """``GET /api/v1/projects``, which must answer 200."""
    response = _get(url, "/api/v1/projects", token)
    body = response.read()
    if response.status != 200:
        raise SystemExit(f"GET /api/v1/projects answered {response.status}: {body[:500]!r}")


def stream(url: str, token: str) -> dict:
    """Read ``GET /api/v1/issues/stream`` a chunk at a time: its lines, bytes and seconds."""
    started = time.perf_counter()
    response = _get(url, "/api/v1/issues/stream", token)
    if response.status != 200:
        raise SystemExit(f"GET /api/v1/issues/stream answered {response.status}: {response.read(2000)!r}")
    headers_at = time.perf_counter() - started
    first_chunk_at = None
    lines = size = 0
    last = b"\n"
    while chunk := response.read1(CHUNK):
        if first_chunk_at is None:
            first_chunk_at = time.perf_counter() - started
        lines += chunk.count(b"\n")
        size += len(chunk)
        last = chunk[-1:]
    if last != b"\n":
        lines += 1  # a last line without its newline
    return {
        "lines": lines,
        "bytes": size,
        "seconds": round(time.perf_counter() - started, 2),
        "headers_seconds": round(headers_at, 3),
        "first_chunk_seconds": round(first_chunk_at or 0, 3),
        "headers": {name: value for name, value in response.getheaders() if name.lower() != "date"},
    }


def measure_size(services: Services, env: dict, token: str, issues: int, log_name: str, streams: int) -> dict:
    """A fresh web process: its baseline peak after one small call, then ``streams`` streams of every
    issue, one after the other (the first is the measurement; later ones show what it keeps)."""
    web = WebProcess(env, WEB_THREADS, services.work / f"web-{issues}-{log_name}.log")
    load_before = os.getloadavg()
    web.start()
    later = []
    try:
        pid = web.process.pid
        started_peak = status_kib(pid)
        small_call(web.url, token)
        baseline, baseline_rss = status_kib(pid), status_kib(pid, "VmRSS")
        with PeakSampler(pid) as sampler:
            result = stream(web.url, token)
        after_rss = status_kib(pid, "VmRSS")
        for _ in range(streams - 1):
            with PeakSampler(pid) as again:
                seconds = stream(web.url, token)["seconds"]
            later.append(
                {
                    "seconds": seconds,
                    "peak_mb": _mib(again.peak),
                    "rss_max_mb": _mib(again.rss_max),
                    "rss_after_mb": _mib(status_kib(pid, "VmRSS")),
                }
            )
    except (http.client.HTTPException, OSError) as problem:
        web.stop()
        log = web.log_path.read_text(errors="replace")[-3000:]
        raise SystemExit(f"a stream failed ({problem!r}); the web process's log ends:\n{log}") from None
    finally:
        web.stop()
    if result["lines"] != issues:
        raise SystemExit(f"the stream had {result['lines']:,} lines for {issues:,} issues")
    return {
        "issues": issues,
        **result,
        "started_peak_mb": _mib(started_peak),
        "baseline_peak_mb": _mib(baseline),
        "peak_mb": _mib(sampler.peak),
        "growth_mb": _mib(sampler.peak - baseline),
        "rss_before_mb": _mib(baseline_rss),
        "rss_max_mb": _mib(sampler.rss_max),
        "rss_growth_mb": _mib(sampler.rss_max - baseline_rss),
        "rss_after_mb": _mib(after_rss),
        "samples": sampler.samples,
        "later_streams": later,
        "load_before": [round(value, 2) for value in load_before],
        "load_after": [round(value, 2) for value in os.getloadavg()],
    }


#: The web process's log level per ``--access-log`` setting: INFO writes production's JSON access
#: line of every request, WARNING writes none.
ACCESS_LOG_LEVELS = {"on": "INFO", "off": "WARNING"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api_stream", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,50000", help="issues per organization (default 5000,50000)")
    parser.add_argument(
        "--access-log",
        default="on,off",
        help="web process with the access log on (LOG_LEVEL=INFO, as in production) and/or off "
        "(LOG_LEVEL=WARNING), a fresh process each (default on,off)",
    )
    parser.add_argument(
        "--streams", type=int, default=1, help="streams per web process, one after the other (default 1)"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the web process (such as MALLOC_ARENA_MAX=1); repeatable",
    )
    args = parser.parse_args(argv)
    extra_env = dict(setting.split("=", 1) for setting in args.env)
    sizes = [int(size) for size in args.sizes.split(",")]
    access_logs = [setting.strip() for setting in args.access_log.split(",")]
    if any(setting not in ACCESS_LOG_LEVELS for setting in access_logs):
        parser.error("--access-log takes on, off or on,off")

    def measure(services: Services, results: dict) -> None:
        results["machine"] = {**machine(services), "load_before": [round(v, 2) for v in os.getloadavg()]}
        results["code"] = code_version()
        results["settings"] = {
            "web_threads": WEB_THREADS,
            "chunk_bytes": CHUNK,
            "scopes": SCOPES,
            "streams": args.streams,
            "env": extra_env,
        }
        services.migrated_app(DATABASE)
        from app.core.security import hash_password

        password_hash = hash_password(dataset.BENCH_PASSWORD)
        for size in sizes:
            say(f"building an organization of {size:,} issues")
            started = time.perf_counter()
            org_id = build_organization(services, DATABASE, size, password_hash, prefix="stream")
            token = give_api_key(services, org_id)
            issues = count_issues(services, org_id)
            say(f"built in {time.perf_counter() - started:.1f} s ({issues:,} issues); streaming")
            for setting in access_logs:
                env = {**services.app_env(DATABASE, 0), "LOG_LEVEL": ACCESS_LOG_LEVELS[setting], **extra_env}
                measured = measure_size(services, env, token, issues, setting, args.streams)
                run = {"size": size, "access_log": setting, **measured}
                results["runs"].append(run)
                say(json.dumps({key: value for key, value in run.items() if key != "headers"}))
        results["machine"]["load_after"] = [round(v, 2) for v in os.getloadavg()]

    return run_benchmark("api-stream", {"runs": []}, measure)


if __name__ == "__main__":
    sys.exit(main())
