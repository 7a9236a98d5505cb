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

An issue page grew to 17 KB, so the large levels start at 24 KB.

A cached page (``app.core.page_cache.cached_page``, the issue page) is gzipped once, when it is
stored, at the default level up to ``COMPRESS_KEPT_LARGE_SIZE``. It is kept as it was sent to
the session it was made for (``kept_page``), which gets those bytes as they are; another session
has its own CSRF token spliced into the stored gzip stream (``precompress``, ``token_page``): per
response only the token's block and a checksum are made.
"""

from __future__ import annotations

import functools
import gzip
import struct
import zlib

import brotli
from flask import current_app, request
from flask_compress import Compress
from flask_compress.flask_compress import _choose_algorithm
from werkzeug.http import unquote_etag
from werkzeug.wrappers import Response

from app.core.headers import http_date_now, vary_naming, vary_on


class SizedCompress(Compress):
    """Flask-Compress, compressing a large body at the large-body levels itself."""

    def after_request(self, response: Response | None) -> Response:
        if response is not None and getattr(response, "spliceable", None) is not None:
            spliced = _spliced_gzip(response)
            if spliced is not None:
                return self._encoded(response, spliced, "gzip")
        if response is not None and self._is_small(response):
            # Too small to compress (Flask-Compress would decide so after its other checks):
            # only the Vary header it adds to every response.
            vary_on(response.headers, "Accept-Encoding")  # as Flask-Compress adds to every response
            return response
        if response is not None and self._is_large(response):
            algorithm = _choose_algorithm(self.enabled_algorithms, request.headers.get("Accept-Encoding", ""))
            if algorithm in ("br", "gzip") and self._compressible(response):
                response.direct_passthrough = False  # a file sent whole (a large stylesheet)
                return self._encoded(response, _compress_large(response.get_data(), algorithm), algorithm)
        return super().after_request(response)

    def _encoded(self, response: Response, body: bytes, algorithm: str) -> Response:
        """``response`` with ``body``, its content already encoded with ``algorithm``."""
        response.direct_passthrough = False
        response.set_data(body)
        headers = response.headers
        # The headers read once: each read or write by name walks them all.
        present: dict[str, str] = {}
        for name, value in headers:
            present.setdefault(name.lower(), value)
        _put(headers, present, "Content-Encoding", algorithm)
        # What Flask-Compress does to a body already encoded: Vary, and nothing else. The ETag is
        # marked with the encoding, as it does for the bodies it compresses.
        vary = present.get("vary")
        vary = "Accept-Encoding" if not vary else vary_naming(vary, "Accept-Encoding")
        if vary is not None:
            _put(headers, present, "Vary", vary)
        etag, weak = unquote_etag(present["etag"]) if "etag" in present else (None, None)
        if etag and not weak:
            response.set_etag(f"{etag}:{algorithm}", weak=False)
        conditional = etag or "last-modified" in present  # else nothing could match
        if conditional and current_app.config["COMPRESS_EVALUATE_CONDITIONAL_REQUEST"]:
            _make_conditional(response, request._get_current_object(), present)
        return response

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


def _make_conditional(response: Response, request, present: dict[str, str]) -> None:
    """``response.make_conditional(request)``, given the headers ``present`` (lowercased names,
    Content-Length among them). Ranges are not accepted here, so without If-None-Match, If-Match
    or If-Modified-Since a response is neither 304 nor 412: a GET or HEAD that sets none (most)
    is given the Date header it would add, without parsing the request's headers or the
    response's again."""
    environ = request.environ
    if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
        return
    if "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MATCH" in environ or "HTTP_IF_MODIFIED_SINCE" in environ:
        response.make_conditional(request)
    elif "date" not in present:
        response.headers.add("Date", http_date_now())


def _put(headers, present: dict[str, str], name: str, value: str) -> None:
    """``headers[name] = value``, given the headers ``present`` (lowercased names): a header not
    there yet is added without walking the others."""
    if name.lower() in present:
        headers[name] = value
    else:
        headers.add(name, value)


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


# --- cached pages: compressed once, each response's CSRF token spliced in ----------------------
#
# A gzip body is a deflate stream: blocks, each decoded on its own, whose back-references reach
# up to 32 KB into what was decoded before. Every token slot of a page closes a quoted attribute
# (``value="…"``), so a response fills each slot with the same bytes of one fixed length: its
# token, the closing quote, and spaces up to ``SLOT_LENGTH`` (spaces inside a tag mean nothing).
# A stored page is compressed once with a stand-in of that length in each slot, cut into chunks,
# each flushed to end on a byte boundary, at the first slot and at any slot too far from the one
# before it for a back-reference; the other slots stay in the chunks as back-references to an
# earlier one. A response sends the chunks with its own slot bytes, as one uncompressed block,
# between them, then the checksum of what it sent. The stand-in is made of control bytes, which
# no page holds, with no three bytes in a row repeated, so a back-reference can only copy a
# slot's bytes into the same place of another slot: whatever the token, the stream decodes to
# the page with that token in every slot. Each stored copy is checked so with a probe; failing
# that, every slot is cut, and failing that too the page is compressed per response as any other.

#: The bytes a response puts in each token slot: a signed token (at most 123 characters), its
#: closing quote, and spaces.
SLOT_LENGTH = 128
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name or time, OS unknown
_WINDOW = 32 * 1024  # how far back a deflate back-reference reaches
#: zlib gives up the GIL over 5 KB, which costs more under load than the checksum itself.
_CRC_CHUNK = 4096


@functools.cache
def _stand_in(length: int) -> bytes:
    """``length`` control bytes (never in a page) in which no three bytes in a row repeat (the
    start of a de Bruijn sequence of order 3)."""
    alphabet = [c for c in range(1, 32) if c not in (9, 10, 13)]
    k, order, word, sequence = len(alphabet), 3, [0] * len(alphabet) * 3, []

    def extend(t: int, p: int) -> None:
        if len(sequence) >= length:
            return
        if t > order:
            if order % p == 0:
                sequence.extend(word[1 : p + 1])
            return
        word[t] = word[t - p]
        extend(t + 1, p)
        for j in range(word[t - p] + 1, k):
            word[t] = j
            extend(t + 1, t)

    extend(1, 1)
    if len(sequence) < length:
        raise ValueError(f"no stand-in of {length} bytes")
    return bytes(alphabet[i] for i in sequence[:length])


def _stored_block(data: bytes) -> bytes:
    """A deflate block holding ``data`` as it is (after a byte boundary; not the last block)."""
    return b"\x00" + struct.pack("<HH", len(data), len(data) ^ 0xFFFF) + data


def _chunks(parts: list[bytes], stand_in: bytes, level: int, cut_every_slot: bool) -> tuple[bytes, ...]:
    """The page ``parts`` (the text between its slots) compressed with ``stand_in`` in the slots,
    cut where a response's slot bytes go in."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 9)
    chunks, pending = [], [compressor.compress(parts[0])]
    position, last_slot = len(parts[0]), None
    for part in parts[1:]:
        if cut_every_slot or last_slot is None or position + len(stand_in) - last_slot > _WINDOW:
            chunks.append(b"".join(pending) + compressor.flush(zlib.Z_SYNC_FLUSH))
            compressor.compress(stand_in)
            compressor.flush(zlib.Z_SYNC_FLUSH)  # the stand-in's own blocks: a response sends its slot
            pending = []
        else:
            pending.append(compressor.compress(stand_in))
        last_slot = position
        pending.append(compressor.compress(part))
        position += len(stand_in) + len(part)
    chunks.append(b"".join(pending) + compressor.flush(zlib.Z_FINISH))
    return tuple(chunks)


def _slots(html: str, slot: str) -> list[bytes] | None:
    """The text between ``html``'s token slots (each slot with its closing quote), or None if it
    has none or one is not inside a quoted attribute."""
    parts = html.encode().split(slot.encode())
    if len(parts) < 2 or not all(part.startswith(b'"') for part in parts[1:]):
        return None
    return [parts[0], *(part[1:] for part in parts[1:])]


def precompress(html: str, slot: str) -> tuple[bytes, ...] | None:
    """``html``, whose token slots read ``slot``, gzipped once for ``token_page``; None when it
    cannot be spliced (no slot, a slot outside a quoted attribute, or a page that holds the
    stand-in's bytes). Compressed once per change, not per response: pages up to
    ``COMPRESS_KEPT_LARGE_SIZE`` at ``COMPRESS_LEVEL``, larger ones at ``COMPRESS_LARGE_LEVEL``."""
    parts = _slots(html, slot)
    if parts is None:
        return None
    config = current_app.config
    large = sum(map(len, parts)) >= config["COMPRESS_KEPT_LARGE_SIZE"]
    level = config["COMPRESS_LARGE_LEVEL"] if large else config["COMPRESS_LEVEL"]
    stand_in = _stand_in(SLOT_LENGTH)
    probe = bytes(b + 64 for b in stand_in)  # printable, differs from the stand-in in every byte
    for cut_every_slot in (False, True):
        chunks = _chunks(parts, stand_in, level, cut_every_slot)
        if zlib.decompress(_stored_block(probe).join(chunks), -zlib.MAX_WBITS) == probe.join(parts):
            return chunks
    return None


def token_page(html: str, slot: str, compressed: tuple[bytes, ...] | None, token: str) -> Response:
    """The page ``html`` with ``token`` in its slots; sent gzipped from ``compressed`` (from
    ``precompress``) to a client that takes gzip."""
    if compressed is None or len(token) >= SLOT_LENGTH:
        return current_app.response_class(html.replace(slot, token), mimetype="text/html")
    filled = f'{token}"'.ljust(SLOT_LENGTH)
    response = current_app.response_class(html.replace(f'{slot}"', filled), mimetype="text/html")
    response.spliceable = (compressed, filled.encode(), response.response[0], None)
    return response


# --- a page kept as it was sent ----------------------------------------------------------------
#
# A page is kept per person, and a person's session has one token (app/core/csrf_tokens.py): the
# next request for the page is most often from the session it was made for. So a cache keeps the
# page as it was sent, its body and its gzip body with that session's token in, and such a request
# is answered with them as they are: no token filled in, no checksum. Another session's request
# takes the text back out of the body and fills its own token in, as ``token_page``. The gzip
# body holds the compressed chunks between its slots, so they are kept as where they lie in it.


def kept_page(html: str, slot: str, compressed: tuple[bytes, ...] | None, token: str) -> tuple:
    """What a cache keeps of the page ``html`` (slots ``slot``) sent with ``token``, for
    ``kept_response``: ``(token, body, gzip body or None, chunks' places in it, slot's text)``."""
    response = token_page(html, slot, compressed, token)
    body = response.response[0]
    spliceable = getattr(response, "spliceable", None)
    if spliceable is None:
        return (token, body, None, None, token)
    chunks, filled, _, _ = spliceable
    gzipped = _gzip_body(chunks, filled, body)
    places, start, gap = [], len(_GZIP_HEADER), len(_stored_block(filled))
    for chunk in chunks:
        places.append((start, start + len(chunk)))
        start += len(chunk) + gap
    return (token, body, gzipped, tuple(places), filled.decode())


def kept_html(kept: tuple, slot: str) -> str:
    """The page's text of a ``kept_page``, its slots reading ``slot`` again."""
    _, body, gzipped, _, fill = kept
    return body.decode().replace(fill, slot if gzipped is None else f'{slot}"')


def kept_response(kept: tuple, slot: str, token: str) -> Response:
    """The page of ``kept_page`` with ``token`` in its slots: as it was kept when the token is
    the one it was sent with, else filled in as ``token_page`` does."""
    kept_token, body, gzipped, places, _ = kept
    if token != kept_token:
        chunks = None if gzipped is None else tuple(memoryview(gzipped)[a:b] for a, b in places)
        return token_page(kept_html(kept, slot), slot, chunks, token)
    response = current_app._get_current_object().response_class(body, mimetype="text/html")
    if gzipped is not None:
        response.spliceable = (None, None, response.response[0], gzipped)
    return response


def _gzip_body(chunks, filled: bytes, body: bytes) -> bytes:
    """The gzip stream of ``body``: its ``chunks`` with ``filled`` between them, and the trailer."""
    crc, view = 0, memoryview(body)
    for start in range(0, len(body), _CRC_CHUNK):
        crc = zlib.crc32(view[start : start + _CRC_CHUNK], crc)
    trailer = struct.pack("<II", crc, len(body) & 0xFFFFFFFF)
    return b"".join((_GZIP_HEADER, _stored_block(filled).join(chunks), trailer))


def _spliced_gzip(response: Response) -> bytes | None:
    """The gzip body of a ``token_page`` or ``kept_response`` whose body is still its own, for a
    client that takes gzip; None otherwise (the body is compressed, or not, as any other)."""
    chunks, filled, body, gzipped = response.spliceable
    response.spliceable = None
    if not (
        isinstance(response.response, list) and len(response.response) == 1 and response.response[0] is body
    ):
        return None  # the body was replaced after the page was made
    accepted = request._get_current_object().headers.get("Accept-Encoding", "")
    if response.status_code != 200 or _choose_algorithm(("gzip",), accepted) != "gzip":
        return None
    return gzipped if gzipped is not None else _gzip_body(chunks, filled, body)
