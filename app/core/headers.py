"""Small operations on response headers that the request path runs on every response."""

from __future__ import annotations


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
