"""A bare WSGI hello world: the second ceiling of ``bench/run``, served by the same waitress
settings as the web process (``bench.services.HelloProcess``). What a page costs beyond it is
what Worklane itself costs per request."""

from __future__ import annotations

BODY = b"hello, world\n"


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))])
    return [BODY]
