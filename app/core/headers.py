"""Small operations on response headers that the request path runs on every response."""

from __future__ import annotations

import time

from werkzeug.http import http_date


def vary_on(headers, name: str) -> None:
    """Name the request header ``name`` in the response's Vary (once): what ``response.vary.add``
    does, without parsing the header into a set and writing it back."""
    vary = headers.get("Vary")
    if not vary:
        headers["Vary"] = name
    elif (named := vary_naming(vary, name)) is not None:
        headers["Vary"] = named


def vary_naming(vary: str, name: str) -> str | None:
    """The non-empty Vary header ``vary`` with the request header ``name`` added, or None when
    it names it already."""
    if name.lower() in [part.strip().lower() for part in vary.split(",")]:
        return None
    return f"{vary}, {name}"


#: The second ``http_date_now`` last formatted, and its text (replaced whole: one read sees both).
_date_stamp: tuple[int, str] = (-1, "")


def http_date_now() -> str:
    """The current time as an HTTP date, as ``werkzeug.http.http_date()`` writes it (to the
    second), formatted once a second."""
    global _date_stamp
    stamp, second = _date_stamp, int(time.time())
    if stamp[0] != second:
        stamp = _date_stamp = (second, http_date(second))
    return stamp[1]
