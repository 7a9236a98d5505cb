"""Page-wide web behaviour: versioned static URLs and template helpers."""

from __future__ import annotations

import hashlib
import math
import os
import re
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Flask, abort, request

STATIC_VERSION_ARG = "v"


class WorklaneFlask(Flask):
    """Flask, deciding once per function whether it must run through ``async_to_sync``.

    Flask asks ``inspect.iscoroutinefunction`` again for every hook of every request (about
    fifteen per request here); the answer never changes for a function, so it is kept.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._synchronous: dict = {}

    def ensure_sync(self, func):
        try:
            return self._synchronous[func]
        except KeyError:
            runnable = super().ensure_sync(func)
            if len(self._synchronous) < 10_000:  # bounded, should callables be made per request
                self._synchronous[func] = runnable
            return runnable
        except TypeError:  # an unhashable callable
            return super().ensure_sync(func)


class StaticVersions:
    """Content hashes of static files, so their URLs change when they do."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._hashes: dict[str, tuple[float, str]] = {}

    def version(self, filename: str) -> str | None:
        path = os.path.join(self.folder, filename)
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return None
        cached = self._hashes.get(filename)
        if cached and cached[0] == mtime:
            return cached[1]
        with open(path, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()[:12]
        self._hashes[filename] = (mtime, digest)
        return digest


def safe_next(target: str | None) -> str | None:
    """Only same-site relative paths are followed after login."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def duration_text(lifetime: timedelta) -> str:
    """How long something lasts, for "expires in …": ``7 days``, ``24 hours``, ``60 minutes``.

    The one rounding of every such text: to the nearest minute, then to the nearest hour from
    90 minutes and to the nearest day from 36 hours. A link made a moment before the message
    that states its lifetime still reads "7 days", not "6".
    """
    minutes = max(1, math.floor(lifetime.total_seconds() / 60 + 0.5))
    if minutes < 90:
        amount, unit = minutes, "minute"
    elif minutes < 36 * 60:
        amount, unit = math.floor(minutes / 60 + 0.5), "hour"
    else:
        amount, unit = math.floor(minutes / (24 * 60) + 0.5), "day"
    return f"{amount} {unit}{'' if amount == 1 else 's'}"


def register_static_versioning(app: Flask) -> None:
    """``url_for('static', …)`` adds ``?v=<hash>``; such URLs are cached for a year."""
    versions = StaticVersions(app.static_folder)
    immutable_age = app.config["STATIC_IMMUTABLE_MAX_AGE"]

    @app.url_defaults
    def _add_static_version(endpoint, values):
        if endpoint == "static" and STATIC_VERSION_ARG not in values:
            version = versions.version(values.get("filename", ""))
            if version:
                values[STATIC_VERSION_ARG] = version

    @app.after_request
    def _cache_versioned_static(response):
        if (
            request.endpoint == "static"
            and response.status_code == 200
            and request.args.get(STATIC_VERSION_ARG)
        ):
            response.cache_control.public = True
            response.cache_control.max_age = immutable_age
            response.cache_control.immutable = True
        return response


#: C0 control characters and DEL; tab, line feed and carriage return are ordinary text.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def has_control_characters(*texts: str) -> bool:
    return any(CONTROL_CHARACTERS.search(text) for text in texts)


_FORM_TYPES = frozenset(("application/x-www-form-urlencoded", "multipart/form-data"))


def register_input_checks(app: Flask) -> None:
    """Every request's text (path, query and form fields, names and values) is refused with a
    400 when it holds a control character such as NUL: PostgreSQL cannot store or compare
    NUL, and no field of the app means any of them. Uploaded files are not text fields."""

    # A URL value preprocessor of the app runs before those of the blueprints (the organization
    # lookup of /<org_slug>/) and before every before_request function.
    @app.url_value_preprocessor
    def _refuse_control_characters(endpoint, values):
        current = request._get_current_object()  # each read through the proxy costs about 1 µs
        environ = current.environ
        texts = [current.path]
        # Parsed only when there is something to parse; reading ``request.form`` is not free, and
        # only these bodies are parsed into form fields.
        sources = [current.args] if environ.get("QUERY_STRING") else []
        if environ.get("CONTENT_TYPE") and current.mimetype in _FORM_TYPES:
            sources.append(current.form)
        for fields in sources:
            for name, values in fields.lists():
                texts.append(name)
                texts.extend(values)
        if has_control_characters(*texts):
            abort(
                400,
                "What was sent contains a control character (such as a NUL byte), which no "
                "address or field accepts. Remove it and try again.",
            )


def register_template_helpers(app: Flask) -> None:
    from flask import g

    from app.core.dates import register_date_filters
    from app.core.fields import labelled_field
    from app.core.markdown import markdown_excerpt, render_markdown
    from app.core.permissions import ROLE_LABELS, can

    # {{ issue.description|markdown }} is sanitized HTML; |markdown_excerpt is plain text.
    app.add_template_filter(render_markdown, "markdown")
    app.add_template_global(labelled_field, "field")
    app.add_template_filter(markdown_excerpt, "markdown_excerpt")
    register_date_filters(app)

    @app.template_filter("urlencode_multi")
    def urlencode_multi(args: dict, **overrides) -> str:
        from urllib.parse import urlencode

        items = [(k, v) for k, values in args.items() if k not in overrides for v in values]
        return urlencode(items + list(overrides.items()))

    @app.context_processor
    def _layout_values():
        return {
            "app_name": "Worklane",
            "can": can,
            "role_label": ROLE_LABELS.get,
            "current_org": g.get("access"),
            "current_membership": g.get("access"),
        }
