"""Structured logs: one JSON object per line, with the request id when there is one.

Every process (web, worker, scheduler, CLI) logs the same way, so an operator
can follow one request id from the access log into the jobs it started.
"""

from __future__ import annotations

import logging
import queue
import random
import re
import sys
import threading
import time
from contextlib import contextmanager

import msgspec
from flask import Flask, g, has_request_context, request
from pythonjsonlogger.msgspec import msgspec_default

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_HANDLER_NAME = "worklane"

access_logger = logging.getLogger("worklane.access")

# --- secrets: links that carry tokens are redacted in every log line ------------------------

#: URL variables and query parameters whose values are secrets (sign-in, reset, download links).
SECRET_NAMES = frozenset({"token", "signature", "secret", "password"})
REDACTED = "[redacted]"
_NOT_IN_SEGMENT = r"[^/?#&\s\"'<>]+"
_RULE_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_SECRET_PARAMETER = re.compile(
    r"([?&;](?:" + "|".join(sorted(SECRET_NAMES)) + r")=)[^&#;\s\"'<>]*", re.IGNORECASE
)
#: One pattern per URL rule with a secret variable, its parts as groups; the secret ones are redacted.
_secret_rules: dict[str, tuple[re.Pattern, tuple[bool, ...]]] = {}
#: All of them in one pattern, to tell at once whether a text holds any (None: no such rule).
_any_secret_rule: re.Pattern | None = None
#: The text each of them starts with, in one pattern (None: a rule starts with its variable). A
#: text without any is not searched with ``_any_secret_rule``, whose branches are tried at every
#: character (a page's path of 18 characters: 14,000 instructions a search, four a request).
_secret_rule_start: re.Pattern | None = None


def remember_secret_routes(app: Flask) -> None:
    """Learn which URL rules carry secrets (a variable in ``SECRET_NAMES``), so ``redact`` hides them.

    Derived from the URL map: a route added later with a ``<token>`` is covered as it is.
    """
    for rule in app.url_map.iter_rules():
        if rule.rule in _secret_rules or not set(rule.arguments) & SECRET_NAMES:
            continue
        parts, secret, position = [], [], 0
        for match in _RULE_VARIABLE.finditer(rule.rule):
            parts.append("(" + re.escape(rule.rule[position : match.start()]) + ")")
            secret.append(False)
            parts.append("(" + _NOT_IN_SEGMENT + ")")
            secret.append(match.group(1) in SECRET_NAMES)
            position = match.end()
        parts.append("(" + re.escape(rule.rule[position:]) + ")")
        secret.append(False)
        _secret_rules[rule.rule] = (re.compile("".join(parts)), tuple(secret))
    global _any_secret_rule, _secret_rule_start
    if _secret_rules:
        _any_secret_rule = re.compile("|".join(f"(?:{p.pattern})" for p, _ in _secret_rules.values()))
        starts = {_RULE_VARIABLE.split(rule, maxsplit=1)[0] for rule in _secret_rules}
        _secret_rule_start = None if "" in starts else re.compile("|".join(map(re.escape, sorted(starts))))


def redact(text: str) -> str:
    """``text`` with the secret parts of token-carrying paths and query parameters replaced.

    ``/reset-password/<token>`` becomes ``/reset-password/[redacted]`` wherever it appears
    (an access-log line, a full URL in an error), and so does ``?token=…``.
    """
    if not isinstance(text, str) or ("/" not in text and "=" not in text):
        return text
    if (
        _any_secret_rule is not None
        and (_secret_rule_start is None or _secret_rule_start.search(text))
        and _any_secret_rule.search(text)
    ):
        for pattern, secret in _secret_rules.values():
            text = pattern.sub(
                lambda m, secret=secret: "".join(
                    REDACTED if is_secret else m.group(i + 1) for i, is_secret in enumerate(secret)
                ),
                text,
            )
    if "=" not in text:
        return text
    return _SECRET_PARAMETER.sub(lambda m: m.group(1) + REDACTED, text)


#: Attributes every LogRecord has; anything else on a record is an ``extra`` field.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class RedactSecretsFilter(logging.Filter):
    """Redacts token links in the message, its arguments and the extra fields of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        fields = vars(record)
        for name in fields.keys() - _RECORD_FIELDS:  # the extra fields
            value = fields[name]
            if isinstance(value, str):
                fields[name] = redact(value)
        return True


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` to every record logged during a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id") if has_request_context() else None
        return True


class JsonLineFormatter(logging.Formatter):
    """A record as one JSON object: ``time``, ``level``, ``logger``, ``message``, ``request_id``,
    then the record's extra fields in the order given, and ``exc_info`` / ``stack_info`` when it
    has them. The same line python-json-logger's formatter writes, made with less work per record
    (every request writes one): the time is formatted once per second (the format has no finer
    unit), and the fields are read from the record once."""

    default_time_format = "%Y-%m-%dT%H:%M:%S%z"

    def __init__(self) -> None:
        super().__init__(datefmt=self.default_time_format)
        self._encode = msgspec.json.Encoder(enc_hook=msgspec_default).encode
        self._stamp: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        stamp = self._stamp  # one read: another thread may replace it meanwhile
        if stamp[0] != second:
            stamp = self._stamp = (second, time.strftime(self.datefmt, self.converter(second)))
        return stamp[1]

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_FIELDS and not name.startswith("_"):
                line[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return self._encode(line).decode()


class LineHandler(logging.StreamHandler):
    """The one root handler: each record as a line on the stream.

    Normally the thread that logs writes the line, under the handler's lock. Inside
    ``written_in_background`` (the web process) a thread of the handler's own formats and writes
    the lines: a request's thread runs the filters (which read the request) and queues the
    record, and the writer writes what has queued every ``INTERVAL``, in one write. Eight web
    threads writing a line each per request otherwise queue on the handler's lock and on the
    write in turn, each wait handing the interpreter lock on: under load that cost a quarter of
    ``/healthz``.
    """

    #: Lines the writer formats before one write to the stream, at most.
    BATCH = 256
    #: How often the writer writes what has queued (seconds): a line is on the stream this late.
    INTERVAL = 0.02

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._queue: queue.SimpleQueue | None = None

    def handle(self, record: logging.LogRecord):
        pending = self._queue  # one read: ``written_in_background`` may end meanwhile
        if pending is None:
            return super().handle(record)
        accepted = self.filter(record)
        if accepted:
            pending.put(record)
        return accepted

    def _write_lines(self, records: list[logging.LogRecord]) -> None:
        lines = []
        for record in records:
            try:
                lines.append(self.format(record) + self.terminator)
            except Exception:
                self.handleError(record)
        try:
            self.stream.write("".join(lines))
            self.flush()
        except Exception:
            self.handleError(records[-1])

    def _write_queued(self, pending: queue.SimpleQueue) -> None:
        """Write what has queued, ``BATCH`` lines at most per write."""
        records = []
        while True:
            try:
                records.append(pending.get_nowait())
            except queue.Empty:
                break
            if len(records) >= self.BATCH:
                self._write_lines(records)
                records = []
        if records:
            self._write_lines(records)

    def _writer(self, pending: queue.SimpleQueue, stop: threading.Event) -> None:
        # Wakes on a clock, not on each record: a wake-up per line would cost what it saves.
        while True:
            stopping = stop.wait(self.INTERVAL)
            self._write_queued(pending)
            if stopping:
                return

    @contextmanager
    def in_background(self):
        pending: queue.SimpleQueue = queue.SimpleQueue()
        stop = threading.Event()
        writer = threading.Thread(target=self._writer, args=(pending, stop), name="log writer", daemon=True)
        writer.start()
        self._queue = pending
        try:
            yield
        finally:
            self._queue = None
            stop.set()
            writer.join(timeout=10)
            with self.lock:  # what a thread queued after reading the queue just before it ended
                self._write_queued(pending)


@contextmanager
def written_in_background():
    """Within the block, the root handler's lines are written by a thread of their own (see
    ``LineHandler``); at its end every queued line is written before it returns."""
    handler = next((h for h in logging.getLogger().handlers if h.get_name() == _HANDLER_NAME), None)
    if not isinstance(handler, LineHandler):
        yield
        return
    with handler.in_background():
        yield


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    """Install the one root handler (idempotent: reconfiguring replaces it)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = LineHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    if json:
        handler.setFormatter(JsonLineFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    handler.addFilter(RequestContextFilter())
    handler.addFilter(RedactSecretsFilter())
    root.addHandler(handler)
    root.setLevel(level)
    # No line shows where in the code it was logged from, or the thread or process name: each
    # record would look them up (the caller by walking the stack), as the logging HOWTO's
    # "Optimization" section says, for nothing.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    # Keep libraries' chatter out of the logs unless asked for.
    logging.getLogger("alembic.runtime.plugins").setLevel(max(logging.WARNING, root.level))


def incoming_request_id() -> str:
    """The caller's ``X-Request-ID`` when it is sane, else a fresh one (32 hex digits).

    A request id names a request, it guards nothing: it comes from the process's random
    generator (reseeded in every forked child), not from a system call as ``uuid4`` would.
    """
    candidate = request.environ.get("HTTP_X_REQUEST_ID", "")
    if _VALID_REQUEST_ID.match(candidate):
        return candidate
    return f"{random.getrandbits(128):032x}"


STARTED_KEY = "worklane.request_started"


def register_request_logging(app: Flask) -> None:
    """Request ids on the way in and out, and one access-log line per request."""
    inner = app.wsgi_app

    def timed_wsgi_app(environ, start_response):
        # Timed from the very start, so the access log counts the session load and the
        # organization lookup, which run before any before_request function.
        environ[STARTED_KEY] = time.perf_counter()
        return inner(environ, start_response)

    app.wsgi_app = timed_wsgi_app

    @app.url_value_preprocessor
    def _assign_request_id(endpoint, values):
        # App-level URL preprocessors run first: the organization lookup already logs with it.
        g.request_id = incoming_request_id()

    @app.before_request
    def _start_request():
        if not g.get("request_id"):
            g.request_id = incoming_request_id()

    @app.after_request
    def _finish_request(response):
        # Proxies resolved once: each attribute read through ``g`` or ``request`` costs about 1 µs.
        request_globals = g._get_current_object()
        request_id = request_globals.get("request_id")
        if not request_id:  # stopped before before_request ran (e.g. a 404 on the URL)
            request_id = request_globals.request_id = incoming_request_id()
        response.headers[REQUEST_ID_HEADER] = request_id
        if not access_logger.isEnabledFor(logging.INFO):
            return response
        current = request._get_current_object()
        environ = current.environ
        started = environ.get(STARTED_KEY)
        duration_ms = round((time.perf_counter() - started) * 1000, 2) if started else None
        status = response.status_code
        access_logger.info(
            "%s %s %s",
            current.method,
            redact(current.full_path.rstrip("?")),
            status,
            extra={
                "method": current.method,
                "path": redact(current.path),
                "status": status,
                "duration_ms": duration_ms,
                "remote_addr": current.remote_addr,
                "user_agent": environ.get("HTTP_USER_AGENT", "")[:200],
                # A streamed body's length is its Content-Length if it has one (a file): asking
                # Werkzeug to calculate it would read a generator whole here, holding all of it
                # in memory before the first byte is sent.
                "bytes": response.content_length
                if response.is_streamed
                else response.calculate_content_length(),
                "request_id": request_id,
            },
        )
        return response
