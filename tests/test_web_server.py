"""The web process's waitress server: what it logs when every thread is busy."""

from __future__ import annotations

import http.client
import logging
import threading

from tests.support.workers import wait_for
from workers.web import GracefulServer, QueuedRequests


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_requests_queued_behind_busy_threads_give_one_warning_with_the_deepest_queue(caplog):
    """Ten requests queued behind one busy thread log one warning, naming the deepest queue."""
    release = threading.Event()

    def slow_app(environ, start_response):
        release.wait(30)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    server = GracefulServer(slow_app, 5, host="127.0.0.1", port=0, threads=1)
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    host, port = server.addresses[0]
    answers: list[int] = []

    def fetch():
        connection = http.client.HTTPConnection(host, port, timeout=30)
        connection.request("GET", "/")
        answers.append(connection.getresponse().status)
        connection.close()

    clients = [threading.Thread(target=fetch) for _ in range(11)]
    with caplog.at_level(logging.WARNING, logger="waitress.queue"):
        for client in clients:
            client.start()
        wait_for(lambda: len(server.dispatcher.queue) == 10, timeout=15, message="ten queued requests")
        release.set()
        for client in clients:
            client.join(30)
    server.stop()
    serving.join(15)

    assert answers == [200] * 11
    queued = [r for r in caplog.records if r.name == "waitress.queue"]
    assert len(queued) == 1
    assert queued[0].getMessage() == "requests are waiting for a web thread"
    assert queued[0].queue_depth_max >= 1


def test_the_web_threads_end_before_the_pipe_that_wakes_the_loop_closes():
    """A stopped server closes its wake-up pipe only after its threads have ended, and a late pull
    of it (a request cut at the deadline) does nothing instead of writing to a closed descriptor."""
    server = GracefulServer(lambda environ, start_response: [], 5, host="127.0.0.1", port=0, threads=2)
    trigger = server.server.trigger
    threads_at_close: list[int] = []
    close = trigger.close

    def close_and_count():
        threads_at_close.append(len(server.dispatcher.threads))
        close()

    trigger.close = close_and_count
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    wait_for(lambda: len(server.dispatcher.threads) == 2, timeout=15, message="two web threads")
    server.stop()
    serving.join(15)

    assert threads_at_close and threads_at_close[0] == 0
    server.server.pull_trigger()  # as a thread finishing a cut request would


def test_the_queue_warning_repeats_once_per_period_with_what_happened_since():
    """After the period the next queued request logs again, with the queue seen since the last line."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = logging.getLogger("tests.web_queue")
    logger.addHandler(Collect())
    logger.propagate = False
    clock = _Clock()
    log = QueuedRequests(logger, seconds=10, clock=clock)

    log.warning("Task queue depth is %d", 1)
    for depth in (4, 7, 2):
        clock.now += 1
        log.warning("Task queue depth is %d", depth)
    clock.now += 10
    log.warning("Task queue depth is %d", 3)

    assert [(r.queue_depth_max, r.requests_queued) for r in records] == [(1, 1), (7, 4)]


def test_a_request_that_must_wait_hands_the_interpreter_to_the_threads_at_work(monkeypatch):
    """Each queued request makes the loop yield the GIL, so busy threads finish before more is read."""
    import workers.web

    slept: list[float] = []
    monkeypatch.setattr(workers.web.time, "sleep", slept.append)
    log = QueuedRequests(logging.getLogger("tests.web_queue_yield"), seconds=10, clock=_Clock())
    for depth in (1, 2, 3):
        log.warning("Task queue depth is %d", depth)
    assert slept == [0, 0, 0]
