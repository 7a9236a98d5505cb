"""HTTP metrics on /metrics: requests by route and status, latency, in flight, across web processes."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.config import PROJECT_ROOT
from tests.conftest import free_port
from tests.support.workers import stop_process, wait_for

TOKEN = "metrics-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted labels): value} of a Prometheus text page."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests_counted(page: dict, route: str, method: str = "GET", status: str = "200") -> float:
    labels = (("method", method), ("route", route), ("status", status))
    return page.get(("worklane_http_requests_total", labels), 0)


def latency_count(page: dict, route: str) -> float:
    return page.get(("worklane_http_request_duration_seconds_count", (("route", route),)), 0)


def test_metrics_count_requests_by_route_method_and_status(app, client, monkeypatch):
    """After requests, /metrics shows them by URL rule (not raw path), method and status, timed."""
    monkeypatch.setitem(app.config, "METRICS_TOKEN", TOKEN)
    before = samples(client.get("/metrics", headers=AUTH).get_data(as_text=True))
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert client.get("/no-such-page/at/all").status_code == 404
    assert client.post("/healthz").status_code == 405
    assert client.open("/healthz", method="BREW").status_code == 405
    rule = next(rule.rule for rule in app.url_map.iter_rules() if rule.endpoint == "static")
    assert client.get("/static/no-such-file.css").status_code == 404
    assert client.get("/static/another-missing.js").status_code == 404

    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    after = samples(response.get_data(as_text=True))
    assert requests_counted(after, "/healthz") - requests_counted(before, "/healthz") == 3
    assert latency_count(after, "/healthz") - latency_count(before, "/healthz") == 3
    unmatched = ("(unmatched)", "GET", "404")
    assert requests_counted(after, *unmatched) - requests_counted(before, *unmatched) == 1
    not_allowed = ("(unmatched)", "POST", "405")
    assert requests_counted(after, *not_allowed) - requests_counted(before, *not_allowed) == 1
    # A method nobody uses is not a series of its own.
    odd = ("(unmatched)", "other", "405")
    assert requests_counted(after, *odd) - requests_counted(before, *odd) == 1
    # Two files, one series: the route is the rule, whatever the path.
    assert requests_counted(after, rule, "GET", "404") - requests_counted(before, rule, "GET", "404") == 2
    assert not any("no-such" in str(labels) for _, labels in after)
    # The scrape itself is the one request in flight.
    assert after[("worklane_http_requests_in_flight", ())] == 1
    # The queue gauges are still there.
    assert ("worklane_workers_alive", ()) in after


def _get(url: str, headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _accepts(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.processes
def test_one_scrape_shows_the_requests_of_every_web_process(test_env, tmp_path):
    """Two waitress processes sharing PROMETHEUS_MULTIPROC_DIR: /metrics of either shows the sum."""
    shared = tmp_path / "metrics"
    shared.mkdir()
    env = {**os.environ, **test_env, "PROMETHEUS_MULTIPROC_DIR": str(shared), "METRICS_TOKEN": TOKEN}
    ports = [free_port(), free_port()]
    web = [
        subprocess.Popen(
            [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", "--threads=2", "wsgi:app"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        for port in ports:
            wait_for(lambda port=port: _accepts(port), 60, f"a web process listening on {port}")
        first, second = (f"http://127.0.0.1:{port}" for port in ports)
        for _ in range(2):
            assert _get(first + "/healthz")[0] == 200
        for _ in range(5):
            assert _get(second + "/healthz")[0] == 200
        assert _get(second + "/no-such-page/at/all")[0] == 404

        for base in (first, second):
            status, text = _get(base + "/metrics", AUTH)
            assert status == 200, text
            page = samples(text)
            assert requests_counted(page, "/healthz") == 7
            assert latency_count(page, "/healthz") == 7
            assert requests_counted(page, "(unmatched)", "GET", "404") == 1
            assert page[("worklane_http_requests_in_flight", ())] == 1
        # Each process wrote its own files (one per process and kind of metric).
        assert {path.name.split("_")[-1] for path in shared.iterdir()} == {f"{p.pid}.db" for p in web}
    finally:
        for process in web:
            stop_process(process, 10)
