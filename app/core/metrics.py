"""HTTP metrics of the web processes, in Prometheus form (served by ``/metrics``, ``app/operators``).

Per request: a count by route, method and status, a latency histogram by route, and the requests
in flight. The route is the URL rule that matched (``/<org_slug>/issues/<ref>``), never the raw
path, so the number of series stays bounded; a request no rule matched counts as ``(unmatched)``.

One process keeps its numbers in memory. Several web processes behind the proxy share them
through ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, chosen by the library
when the variable is set before it is imported): each process writes its own files there and a
scrape of any one process reads them all, so one scrape shows every web process. The in-flight
gauge sums the live processes only; a process marks itself dead as it exits. The directory must be
emptied before the web processes start (``docs/operations.md``, Metrics).

The metrics are created on the first request, so processes that serve none (workers, the
scheduler, commands) write no files.
"""

from __future__ import annotations

import atexit
import os
import threading
import time

from flask import Flask, request

#: Where the URL rule of a request is left for the middleware (set as soon as Flask has routed it).
ROUTE_KEY = "worklane.route"
UNMATCHED = "(unmatched)"
#: Methods counted by name; any other (a client may send anything) counts as ``other``.
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))

#: Latency buckets in seconds: pages answer in milliseconds; the top buckets catch the stalls.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_lock = threading.Lock()
_metrics = None


def multiprocess_dir() -> str | None:
    """The shared directory of multiprocess mode (the library reads the same variable)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _HttpMetrics:
    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

        disable_created_metrics()  # no *_created series: nothing here reads them
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "worklane_http_requests",
            "HTTP requests answered, by route (URL rule), method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "worklane_http_request_duration_seconds",
            "Time to answer an HTTP request (until the response starts), by route (URL rule).",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "worklane_http_requests_in_flight",
            "HTTP requests being answered now, summed over the live web processes.",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        # The labelled series, looked up once each (``labels()`` checks and locks every time).
        self._counted: dict[tuple[str, str, str], object] = {}
        self._timed: dict[str, object] = {}
        if multiprocess_dir():
            from prometheus_client import multiprocess

            atexit.register(multiprocess.mark_process_dead, os.getpid())

    def record(self, route: str, method: str, status: str, seconds: float) -> None:
        counted = self._counted.get((route, method, status))
        if counted is None:
            counted = self._counted[route, method, status] = self.requests.labels(route, method, status)
        timed = self._timed.get(route)
        if timed is None:
            timed = self._timed[route] = self.latency.labels(route)
        counted.inc()
        timed.observe(seconds)


def _http_metrics() -> _HttpMetrics:
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = _HttpMetrics()
    return _metrics


class MetricsMiddleware:
    """Counts and times every request that reaches the app, whatever answers it."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        metrics = _http_metrics()
        status = ["500"]

        def recording_start_response(status_line, headers, exc_info=None):
            status[0] = status_line[:3]
            return start_response(status_line, headers, exc_info)

        metrics.in_flight.inc()
        started = time.perf_counter()
        try:
            return self.wsgi_app(environ, recording_start_response)
        finally:
            elapsed = time.perf_counter() - started
            metrics.in_flight.dec()
            method = environ.get("REQUEST_METHOD", "")
            route = environ.get(ROUTE_KEY, UNMATCHED)
            metrics.record(route, method if method in METHODS else "other", status[0], elapsed)


def _remember_route() -> None:
    current = request._get_current_object()
    rule = current.url_rule
    current.environ[ROUTE_KEY] = rule.rule if rule is not None else UNMATCHED


def register_http_metrics(app: Flask) -> None:
    """Wrap the app in the metrics middleware; note each request's URL rule before anything else."""
    app.before_request_funcs.setdefault(None, []).insert(0, _remember_route)
    app.wsgi_app = MetricsMiddleware(app.wsgi_app)


def http_metrics_text() -> str:
    """The HTTP series in Prometheus text format: this process's, or every web process's."""
    from prometheus_client import CollectorRegistry, generate_latest

    metrics = _http_metrics()
    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = metrics.registry
    return generate_latest(registry).decode()
