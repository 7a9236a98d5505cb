"""The web process's log lines: written by a thread of their own, every one, in order, whole."""

from __future__ import annotations

import json
import logging
import threading

from app.core.logs import JsonLineFormatter, LineHandler, RequestContextFilter


class _Stream:
    """A stream that records each write and the thread that made it."""

    def __init__(self):
        self.writes: list[tuple[str, str]] = []

    def write(self, text: str) -> None:
        self.writes.append((threading.current_thread().name, text))

    def flush(self) -> None:
        pass

    def lines(self) -> list[dict]:
        return [json.loads(line) for _, text in self.writes for line in text.splitlines()]


def _handler() -> tuple[LineHandler, _Stream, logging.Logger]:
    stream = _Stream()
    handler = LineHandler(stream)
    handler.setFormatter(JsonLineFormatter())
    handler.addFilter(RequestContextFilter())
    logger = logging.getLogger("tests.log_writer")
    logger.propagate = False
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    return handler, stream, logger


def test_threads_logging_at_once_leave_the_writing_to_the_writer_and_lose_no_line():
    """Eight threads logging 200 lines each: none of them writes; all 1,600 lines come out whole."""
    handler, stream, logger = _handler()

    def log_lines(thread: int) -> None:
        for n in range(200):
            logger.info("line %s", n, extra={"thread_no": thread, "n": n})

    threads = [threading.Thread(target=log_lines, args=(t,), name=f"web-{t}") for t in range(8)]
    with handler.in_background():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    lines = stream.lines()
    assert len(lines) == 1600
    for t in range(8):  # each thread's lines in the order it logged them
        assert [line["n"] for line in lines if line["thread_no"] == t] == list(range(200))
    writers = {name for name, _ in stream.writes}
    assert not writers & {f"web-{t}" for t in range(8)}, writers
    assert len(stream.writes) < 1600  # written many lines at a time


def test_a_line_takes_the_request_id_of_the_request_that_logged_it(app):
    """The request id is read in the request's thread, though the line is written after it ends."""
    handler, stream, logger = _handler()
    with handler.in_background():
        for request_id in ("first-request", "second-request"):
            with app.test_request_context("/"):
                from flask import g

                g.request_id = request_id
                logger.info("inside %s", request_id)
    assert [(line["message"], line["request_id"]) for line in stream.lines()] == [
        ("inside first-request", "first-request"),
        ("inside second-request", "second-request"),
    ]


def test_outside_the_web_process_the_logging_thread_writes_its_own_line():
    """Without the background writer (workers, the CLI) each line is written at once, by its logger."""
    handler, stream, logger = _handler()
    logger.info("at once")
    assert stream.writes and stream.writes[0][0] == threading.current_thread().name
    with handler.in_background():
        pass
    logger.info("again at once")
    assert [line["message"] for line in stream.lines()] == ["at once", "again at once"]
    assert stream.writes[-1][0] == threading.current_thread().name


def test_a_line_that_cannot_be_formatted_does_not_take_the_others_with_it(capsys):
    """One record that fails to format is reported; the lines queued with it are written."""
    handler, stream, logger = _handler()
    with handler.in_background():
        logger.info("before")
        logger.info("broken %d", "not a number")
        logger.info("after")
    assert [line["message"] for line in stream.lines()] == ["before", "after"]
    assert "Logging error" in capsys.readouterr().err
