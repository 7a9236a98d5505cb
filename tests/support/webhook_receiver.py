"""A webhook receiver for the tests: a threaded HTTP server on 127.0.0.1 that records every
request and answers as a test scripts it (200 by default; 500, 410, 429 with Retry-After, a
redirect, or an answer held until the test releases it); over TLS when given a context."""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    #: Set: the answer waits until it is set (or ``hold_seconds`` pass).
    hold: threading.Event | None = None
    hold_seconds: float = 30


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    """``url`` to give an endpoint; ``script(Reply(...), …)`` the next answers; ``requests``."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.scheme = "https" if tls is not None else "http"
        self.requests: list[Received] = []
        self._replies: list[Reply] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._changed:
                    reply = receiver._replies.pop(0) if receiver._replies else Reply()
                    receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                    receiver._changed.notify_all()
                if reply.hold is not None:
                    reply.hold.wait(reply.hold_seconds)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the client gave up waiting

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def script(self, *replies: Reply) -> None:
        with self._changed:
            self._replies.extend(replies)

    def wait_for(self, count: int, seconds: float = 30) -> list[Received]:
        """The requests once there are ``count`` of them (AssertionError after ``seconds``)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= count, seconds):
                raise AssertionError(f"the receiver got {len(self.requests)} requests, expected {count}")
            return list(self.requests)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
