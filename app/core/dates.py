"""How Worklane writes dates and times, the one way every page and e-mail uses.

A date is "27 Nov 2026"; a moment is "27 Nov 2026 14:05 Europe/Paris", in a person's time zone
(an IANA name from ``zoneinfo``, UTC by default). Pages show a moment as ``{{ moment|when }}``: a
``<time data-relative>`` element holding the moment in UTC, in the ``datetime`` attribute (ISO)
and as its text and title. Nothing in it depends on who is looking or on when it was rendered,
so it may sit in a page or fragment the cache shares between people; app.js rewrites its text
to "3 hours ago" (every minute) and its title to the moment in the person's zone, which the
layout names on ``<html data-time-zone>``. E-mails, written for one person, show
``format_datetime(moment, their_zone)``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from flask import Flask
from markupsafe import Markup, escape

DEFAULT_TIME_ZONE = "UTC"
#: Names zoneinfo lists that are not places a person would choose.
_NOT_PLACES = frozenset({"Factory", "localtime", "posixrules"})


@lru_cache(maxsize=1)
def time_zone_names() -> tuple[str, ...]:
    """Every IANA time zone a person may choose, sorted by name."""
    return tuple(sorted(available_timezones() - _NOT_PLACES))


def is_time_zone(name: str | None) -> bool:
    """Whether ``name`` is a time zone a person may choose."""
    return bool(name) and name in _zone_set()


@lru_cache(maxsize=1)
def _zone_set() -> frozenset[str]:
    return frozenset(time_zone_names())


def time_zone_or_default(name: str | None) -> str:
    """``name`` if it is a time zone a person may choose, else UTC (a browser's guess may be anything)."""
    name = (name or "").strip()
    return name if is_time_zone(name) else DEFAULT_TIME_ZONE


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def format_date(value: date | datetime | None) -> str:
    """A date as "27 Nov 2026" (the empty string for none)."""
    if value is None:
        return ""
    return f"{value.day} {value:%b %Y}"


def format_datetime(moment: datetime | None, zone: str | None = DEFAULT_TIME_ZONE) -> str:
    """A moment as "27 Nov 2026 14:05 Asia/Tokyo", in ``zone`` (UTC for an unknown zone)."""
    if moment is None:
        return ""
    zone = time_zone_or_default(zone)
    local = _aware(moment).astimezone(ZoneInfo(zone))
    return f"{format_date(local)} {local:%H:%M} {zone}"


def iso_utc(moment: datetime) -> str:
    """The moment in UTC as ISO 8601 with a Z, for a ``datetime`` attribute and for scripts."""
    return _aware(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def time_element(moment: datetime | None, css_class: str = "") -> Markup:
    """``<time>`` for a moment: shown relative with the exact time in the person's zone on hover
    once app.js runs, the UTC date-time without it. The same for everyone who sees it."""
    if moment is None:
        return Markup("")
    exact = escape(format_datetime(moment))
    attributes = f' class="{escape(css_class)}"' if css_class else ""
    return Markup(
        f'<time{attributes} datetime="{iso_utc(moment)}" data-relative title="{exact}">{exact}</time>'
    )


def date_element(value: date | None) -> Markup:
    """``<time>`` for a calendar date (a due date): "27 Nov 2026", the same in every time zone."""
    if value is None:
        return Markup("")
    return Markup(f'<time datetime="{value.isoformat()}">{escape(format_date(value))}</time>')


def register_date_filters(app: Flask) -> None:
    """``|when`` (a moment as a <time>), ``|day`` (a date as a <time>), ``|date`` and
    ``|datetime`` (plain text, the latter in a given zone, UTC by default)."""
    app.add_template_filter(time_element, "when")
    app.add_template_filter(date_element, "day")
    app.add_template_filter(format_date, "date")
    app.add_template_filter(format_datetime, "datetime")
