"""Small operations on response headers that the request path runs on every response."""

from __future__ import annotations


def vary_on(headers, name: str) -> None:
    """Name the request header ``name`` in the response's Vary (once): what ``response.vary.add``
    does, without parsing the header into a set and writing it back."""
    vary = headers.get("Vary")
    if not vary:
        headers["Vary"] = name
    elif name.lower() not in [part.strip().lower() for part in vary.split(",")]:
        headers["Vary"] = f"{vary}, {name}"
