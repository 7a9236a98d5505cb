"""Load from outside the server process: wrk for throughput and latency under concurrency, a
small sequential HTTP client for server times, cold caches and response sizes.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from http.client import HTTPConnection, RemoteDisconnected
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_report.lua"
CSRF_TOKEN = re.compile(r'name="(?:[\w-]+-)?csrf_token" type="hidden" value="([^"]+)"')
#: What a browser sends; the pages are measured compressed, as they are served.
BROWSER_ENCODING = "br, gzip"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float


class Client:
    """One keep-alive connection to the server, with a session cookie once logged in."""

    def __init__(self, base_url: str):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.connection = HTTPConnection(self.host, self.port, timeout=30)
        #: The Cookie header: the session cookie once logged in, with the visitor's CSRF cookie.
        self.cookie: str | None = None

    def request(self, method, path, *, body=None, headers=None, cookie=True) -> Response:
        headers = dict(headers or {})
        if cookie and self.cookie:
            headers["Cookie"] = self.cookie
        started = time.perf_counter()
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
        except (RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # The server closed the kept-alive connection while it sat idle (waitress after its
            # channel timeout, a web process that restarted): a browser opens a new one and sends
            # the request again, if repeating it is safe.
            if method not in ("GET", "HEAD"):
                raise
            self.connection.close()
            self.connection = HTTPConnection(self.host, self.port, timeout=30)
            started = time.perf_counter()
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
        data = response.read()
        seconds = time.perf_counter() - started
        jar = dict(part.split("=", 1) for part in (self.cookie or "").split("; ") if "=" in part)
        for value in response.headers.get_all("Set-Cookie") or ():
            for name, morsel in SimpleCookie(value).items():
                if name.endswith(("worklane_session", "worklane_csrf")):
                    jar[name] = morsel.value
        self.cookie = "; ".join(f"{name}={value}" for name, value in jar.items()) or None
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, data, seconds)

    def get(self, path, *, encoding=BROWSER_ENCODING, request_id=None, cookie=True) -> Response:
        headers = {"Accept-Encoding": encoding}
        if request_id:
            headers["X-Request-ID"] = request_id
        return self.request("GET", path, headers=headers, cookie=cookie)

    def login(self, email: str, password: str) -> str:
        """Log in through the login form (CSRF token included); returns the Cookie header value."""
        page = self.get("/login", encoding="identity")
        match = CSRF_TOKEN.search(page.body.decode())
        if page.status != 200 or not match:
            raise SystemExit(f"GET /login answered {page.status} without a CSRF token")
        form = urlencode({"csrf_token": match.group(1), "email": email, "password": password})
        answer = self.request(
            "POST", "/login", body=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        if answer.status != 303:
            raise SystemExit(f"POST /login answered {answer.status}, not 303: the login failed")
        return self.cookie

    def close(self) -> None:
        self.connection.close()


def check_page(client: Client, path: str, marker: str) -> Response:
    """The page answers 200 with what it should show (not a login redirect or an error)."""
    response = client.get(path, encoding="identity")
    if response.status != 200 or marker.encode() not in response.body:
        raise SystemExit(f"GET {path} answered {response.status} without {marker!r}: is the session valid?")
    return response


def sizes(client: Client, path: str) -> dict:
    """Body bytes uncompressed, with brotli and with gzip, and the saving of each."""
    plain = client.get(path, encoding="identity")
    result = {"identity": len(plain.body)}
    for encoding in ("br", "gzip"):
        response = client.get(path, encoding=encoding)
        used = response.headers.get("content-encoding", "identity")
        result[encoding] = len(response.body)
        result[f"{encoding}_used"] = used
        result[f"{encoding}_saving"] = round(1 - len(response.body) / len(plain.body), 4)
    return result


# --- wrk ---------------------------------------------------------------------------------------


def wrk_path() -> str:
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk not found: apt-get install wrk (bench/run installs it when run as root)")
    return found


def wrk_version() -> str:
    result = subprocess.run([wrk_path(), "--version"], capture_output=True, text=True)
    return (result.stdout or result.stderr).split("Copyright")[0].strip()


def run_wrk(url: str, *, headers: dict[str, str], seconds: int, connections: int, threads: int) -> dict:
    """One wrk run; throughput, latency percentiles (ms) and errors from its JSON summary."""
    # A long timeout: a slow response is a latency to report, not a request to drop.
    command = [
        wrk_path(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "30s",
        "--latency",
    ]
    command += ["-s", str(WRK_SCRIPT)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    result = subprocess.run(command, capture_output=True, text=True)
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if result.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    latency = raw["latency_us"]
    requests = raw["requests"]
    return {
        "requests": requests,
        "seconds": round(raw["duration_us"] / 1e6, 3),
        "rps": round(requests / (raw["duration_us"] / 1e6), 1),
        "bytes_per_response": round(raw["bytes"] / requests) if requests else 0,
        "errors": raw["errors"],
        "latency_ms": {
            "mean": round(latency["mean"] / 1000, 2),
            "stdev": round(latency["stdev"] / 1000, 2),
            "max": round(latency["max"] / 1000, 2),
            **{f"p{k}": round(v / 1000, 2) for k, v in latency["percentiles"].items()},
        },
    }


# --- server times from the access log -----------------------------------------------------------


def access_durations(log_path: Path, offset: int) -> dict[str, float]:
    """request id -> duration_ms of every access-log line written after ``offset``."""
    durations = {}
    with open(log_path, "rb") as log:
        log.seek(offset)
        for raw in log:
            if not raw.startswith(b"{"):
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if record.get("logger") == "worklane.access" and record.get("request_id"):
                durations[record["request_id"]] = record.get("duration_ms")
    return durations


def summarize(values: list[float]) -> dict:
    ordered = sorted(values)

    def pct(p):
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    return {
        "n": len(ordered),
        "median": round(statistics.median(ordered), 2),
        "mean": round(statistics.fmean(ordered), 2),
        "p90": round(pct(90), 2),
        "p95": round(pct(95), 2),
        "min": round(ordered[0], 2),
        "max": round(ordered[-1], 2),
    }
