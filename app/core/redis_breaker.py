"""Short timeouts and a circuit breaker for every Redis connection a web process makes.

A Redis that hangs (paused, swapping, a network partition) must not hold a page for longer than
a short socket timeout, and once it has failed a few times in a row, must not hold pages at all:

- every client of the web paths (sessions, the cache, rate limits, enqueueing, readiness) is made
  with :func:`client_options`: connect and socket timeouts well under a second, and no retries
  (redis-py retries a failed command ten times by default, which turns a 0.3 s timeout into
  seconds);
- their connections share one :class:`RedisBreaker` per Redis server and process. After
  ``failures`` connection errors or timeouts in a row the breaker opens: commands to that
  server fail at once with :class:`RedisUnavailable` (a ``redis.ConnectionError``, so every
  caller that already copes with an unreachable Redis copes with it) instead of waiting. After
  ``reset_after`` seconds one command (the probe) is let through; if it gets an answer the
  breaker closes and every caller uses Redis again, otherwise it stays open for another
  ``reset_after``. Recovery therefore follows Redis's return by at most ``reset_after`` plus
  one round trip.

The breaker sits in the connection (a subclass of redis-py's connection classes) rather than
around each call, so clients made by libraries (Flask-Caching, Flask-Limiter) are guarded like
our own, and the calls of many threads are never serialised: a thread only takes a short lock to
read or move the breaker's state, never while it waits for Redis. (pybreaker holds its lock for
the whole guarded call, which would queue every Redis command of a threaded web process behind
the slowest one.)
"""

from __future__ import annotations

import logging
import threading
import time
from urllib.parse import urlsplit

from redis.backoff import NoBackoff
from redis.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry

log = logging.getLogger(__name__)

#: Consecutive failures that open a breaker, and how long it stays open before one probe.
FAILURES_TO_OPEN = 3
RESET_AFTER_SECONDS = 1.0


class RedisUnavailable(ConnectionError):
    """The breaker of this Redis server is open: the command was not sent."""


class RedisBreaker:
    """The state of one Redis server as this process sees it: closed, open, or probing."""

    def __init__(self, name: str, failures: int = FAILURES_TO_OPEN, reset_after: float = RESET_AFTER_SECONDS):
        self.name = name
        self.failures_to_open = failures
        self.reset_after = reset_after
        #: A probe that never reports (its caller gave up between send and read) expires.
        self.probe_timeout = max(2.0, 2 * reset_after)
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probe: tuple[int, float] | None = None  # (thread id, started)

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    def allow(self) -> bool:
        """Whether this thread may send a command now (False: fail fast)."""
        if self._opened_at is None:
            return True
        now = time.monotonic()
        me = threading.get_ident()
        with self._lock:
            if self._opened_at is None:
                return True
            if self._probe is not None:
                owner, started = self._probe
                if owner == me:
                    return True
                if now - started < self.probe_timeout:
                    return False
            elif now - self._opened_at < self.reset_after:
                return False
            self._probe = (me, now)
            return True

    def succeeded(self) -> None:
        """Redis answered: close the breaker."""
        if self._opened_at is None and self._failures == 0:
            return
        with self._lock:
            was_open = self._opened_at is not None
            self._failures, self._opened_at, self._probe = 0, None, None
        if was_open:
            log.warning("redis reachable again", extra={"redis": self.name})

    def failed(self, error: Exception) -> None:
        """A connection error or timeout: count it; open (or keep open) the breaker."""
        now = time.monotonic()
        with self._lock:
            if self._opened_at is not None:
                if self._probe is not None and self._probe[0] == threading.get_ident():
                    self._opened_at, self._probe = now, None  # the probe failed: wait again
                return
            self._failures += 1
            if self._failures < self.failures_to_open:
                return
            self._opened_at, self._probe = now, None
        log.warning(
            "redis unreachable: failing fast",
            extra={"redis": self.name, "error": str(error), "retry_after_seconds": self.reset_after},
        )


_breakers: dict[str, RedisBreaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(address: str) -> RedisBreaker:
    """The process's breaker of the Redis server at ``address`` (``host:port`` or a socket path)."""
    breaker = _breakers.get(address)
    if breaker is None:
        with _breakers_lock:
            breaker = _breakers.setdefault(address, RedisBreaker(address))
    return breaker


class _Guarded:
    """Mixed into a redis-py connection class: every command asks the server's breaker first."""

    _breaker: RedisBreaker | None = None

    def _server_breaker(self) -> RedisBreaker:
        if self._breaker is None:
            path = getattr(self, "path", None)
            self._breaker = breaker_for(path if path else f"{self.host}:{self.port}")
        return self._breaker

    def _refuse_if_open(self) -> None:
        if not self._server_breaker().allow():
            name = self._server_breaker().name
            raise RedisUnavailable(f"Redis at {name} is not answering (circuit breaker open); retrying soon")

    def connect_check_health(self, *args, **kwargs):
        if self._sock:
            return None
        self._refuse_if_open()
        try:
            return super().connect_check_health(*args, **kwargs)
        except (ConnectionError, TimeoutError) as exc:
            if not isinstance(exc, RedisUnavailable):
                self._server_breaker().failed(exc)
            raise

    def send_packed_command(self, command, check_health=True):
        self._refuse_if_open()
        try:
            return super().send_packed_command(command, check_health=check_health)
        except (ConnectionError, TimeoutError) as exc:
            if not isinstance(exc, RedisUnavailable):
                self._server_breaker().failed(exc)
            raise

    def read_response(self, *args, **kwargs):
        try:
            response = super().read_response(*args, **kwargs)
        except (ConnectionError, TimeoutError) as exc:
            self._server_breaker().failed(exc)
            raise
        self._server_breaker().succeeded()
        return response


class GuardedConnection(_Guarded, Connection):
    pass


class GuardedSSLConnection(_Guarded, SSLConnection):
    pass


class GuardedUnixConnection(_Guarded, UnixDomainSocketConnection):
    pass


def client_options(url: str, connect_timeout: float, socket_timeout: float) -> dict:
    """Keyword arguments of ``redis.from_url`` for a client of the web paths (see the module)."""
    scheme = urlsplit(url).scheme
    connection_class = {"rediss": GuardedSSLConnection, "unix": GuardedUnixConnection}.get(
        scheme, GuardedConnection
    )
    return {
        "connection_class": connection_class,
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": socket_timeout,
        "retry": Retry(NoBackoff(), 0),
        "health_check_interval": 30,
    }
