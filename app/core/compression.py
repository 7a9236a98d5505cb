"""Response compression: Flask-Compress, with cheaper levels for large bodies.

Compression runs on every page view (a page carries its own CSRF token and CSP nonce, so a
compressed copy cannot be reused), and its cost grows with the level much faster than the
saving. Measured on the pages themselves (brotli 1 / 4, CPU per response and share saved): a
225 KB board 418 / 696 µs, 94.0 / 94.7%; a 38 KB issue list 60 / 185 µs, 82.0 / 84.7%; a
17 KB search page 36 / 108 µs, 77.4 / 80.9%. A small, text-heavy page (an issue page,
12.6 KB) costs 104 µs at quality 4 and needs it to stay above 70% saved (67.7% at quality 1,
69.8% at 3). So bodies of at least ``COMPRESS_LARGE_SIZE`` bytes are compressed at
``COMPRESS_LARGE_BR_LEVEL`` / ``COMPRESS_LARGE_LEVEL`` (gzip), and smaller ones at
Flask-Compress's own levels.
"""

from __future__ import annotations

import gzip

import brotli
from flask import current_app, request
from flask_compress import Compress
from flask_compress.flask_compress import _choose_algorithm
from werkzeug.wrappers import Response


class SizedCompress(Compress):
    """Flask-Compress, compressing a large body at the large-body levels itself."""

    def after_request(self, response: Response | None) -> Response:
        if response is not None and self._is_small(response):
            # Too small to compress (Flask-Compress would decide so after its other checks):
            # only the Vary header it adds to every response.
            _vary_on_accept_encoding(response.headers)
            return response
        if response is not None and self._is_large(response):
            algorithm = _choose_algorithm(self.enabled_algorithms, request.headers.get("Accept-Encoding", ""))
            if algorithm in ("br", "gzip") and self._compressible(response):
                response.direct_passthrough = False
                response.set_data(_compress_large(response.get_data(), algorithm))
                response.headers["Content-Encoding"] = algorithm
                # Flask-Compress adds Vary and leaves a body already encoded alone; the ETag
                # is marked with the encoding, as it does for the bodies it compresses.
                response = super().after_request(response)
                etag, weak = response.get_etag()
                if etag and not weak:
                    response.set_etag(f"{etag}:{algorithm}", weak=False)
                if current_app.config["COMPRESS_EVALUATE_CONDITIONAL_REQUEST"] and request.method in (
                    "GET",
                    "HEAD",
                ):
                    response.make_conditional(request)
                return response
        return super().after_request(response)

    @staticmethod
    def _is_small(response: Response) -> bool:
        length = response.content_length
        return length is not None and length < current_app.config["COMPRESS_MIN_SIZE"]

    @staticmethod
    def _is_large(response: Response) -> bool:
        length = response.content_length
        return (
            not response.is_streamed
            and length is not None
            and length >= current_app.config["COMPRESS_LARGE_SIZE"]
            and "Content-Encoding" not in response.headers
        )

    def _compressible(self, response: Response) -> bool:
        return response.mimetype in self.compress_mimetypes_set and 200 <= response.status_code < 300


def _vary_on_accept_encoding(headers) -> None:
    """Flask-Compress's Vary: a response's content depends on the Accept-Encoding asked for."""
    vary = headers.get("Vary")
    if not vary:
        headers["Vary"] = "Accept-Encoding"
    elif "accept-encoding" not in vary.lower():
        headers["Vary"] = f"{vary}, Accept-Encoding"


def _compress_large(data: bytes, algorithm: str) -> bytes:
    config = current_app.config
    if algorithm == "br":
        return brotli.compress(
            data,
            mode=config["COMPRESS_BR_MODE"],
            quality=config["COMPRESS_LARGE_BR_LEVEL"],
            lgwin=config["COMPRESS_BR_WINDOW"],
            lgblock=config["COMPRESS_BR_BLOCK"],
        )
    return gzip.compress(data, config["COMPRESS_LARGE_LEVEL"])
