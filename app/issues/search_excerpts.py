"""The excerpts of search hits: sentinels around the matched words, made ``<mark>`` tags in text
otherwise escaped (``Marks``), and on PostgreSQL the excerpts kept per issue, question and
version of the issue's text, so that ``ts_headline`` makes only those of text that changed."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass

from markupsafe import Markup, escape

from app.core import cache
from app.extensions import cache as app_cache
from app.extensions import db
from app.issues.search_sql import POSTGRES_EXCERPTS

#: Seconds an issue's excerpt for a question is kept (it is kept per version of the issue's text).
EXCERPT_SECONDS = 3600
#: Part of the excerpts' keys: a new number whenever the way excerpts are made changes.
EXCERPT_FORMAT = 1

_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}


@dataclass(frozen=True)
class Marks:
    """Sentinels the engines put around matched words, random per search.

    User text cannot contain them by chance, so after escaping everything, exactly the
    sentinels become ``<mark>`` tags. ``edge`` is a word ts_headline finds at both ends of
    the text, so that it keeps the punctuation there (``[API] …``, ``Vec<String>``).
    """

    start: str
    stop: str
    edge: str

    @classmethod
    def new(cls) -> Marks:
        nonce = secrets.token_hex(16)
        return cls(f"S{nonce}", f"E{nonce}", f"X{nonce}")

    def headline_options(self) -> str:
        return (
            f"StartSel={self.start}, StopSel={self.stop}, MaxWords=30, MinWords=12, "
            'MaxFragments=2, FragmentDelimiter=" … "'
        )

    def headline_params(self) -> dict[str, str]:
        """The parameters of ``search_sql._headline`` (PostgreSQL's excerpts)."""
        return {"headline_options": self.headline_options(), "edge": self.edge}

    def to_markup(self, excerpt: str, *, html_escaped: bool = False) -> Markup:
        if html_escaped:
            excerpt = _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], excerpt)
        escaped = str(escape(" ".join(excerpt.replace(self.edge, " ").split())))
        escaped = escaped.replace(self.start, "<mark>").replace(self.stop, "</mark>")
        return Markup(escaped)  # every character of user text was escaped above


def _excerpt_key(question: str, issue_id, stamp) -> str:
    """The key an issue's excerpt is kept under: per tenant, question (as PostgreSQL parsed it)
    and version of the issue's text."""
    digest = hashlib.sha256(question.encode()).hexdigest()[:32]
    return cache.tenant_key("excerpt", EXCERPT_FORMAT, digest, issue_id, stamp)


def excerpts_made_or_kept(rows, marks: Marks, kept: dict[str, str]) -> list[Markup]:
    """The excerpts of rows read by ``search_sql.POSTGRES_SEARCH_EXCERPTING``: those it made (kept for later
    searches, as ``postgres_excerpts`` keeps them), and, where it made none, those in ``kept``."""
    excerpts, fresh = [], {}
    for row in rows:
        if row.snippet is None:  # the text is the one the kept excerpt was made from
            excerpts.append(Markup(kept.get(f"{row.issue_id} {row.stamp}", "")))  # escaped when made
            continue
        excerpt = marks.to_markup(row.snippet, html_escaped=True)
        fresh[_excerpt_key(row.question, row.issue_id, row.stamp)] = str(excerpt)
        excerpts.append(excerpt)
    cache.store_many(fresh, timeout=EXCERPT_SECONDS)
    return excerpts


def postgres_excerpts(tenant_id, query: str, rows) -> list[Markup]:
    """The excerpts of a page of hits (rows with ``issue_id``, ``stamp`` and ``question``), made by
    ``ts_headline`` only for the issues whose text changed since they were last made for this
    question: ``ts_headline`` parses and stems all the text it is given, most of a search's time.

    An excerpt is kept per issue, question (the query as PostgreSQL parsed it, so "Thumbnails"
    and "thumbnail" share theirs) and **stamp**: the row version of the issue's ``issue_search``
    row (``xmin`` and ``ctid``), which the triggers rewrite whenever the issue's title or
    description or any of its comments is written. So after an edit only the edited issue is
    excerpted again. An excerpt made in a later snapshot than the page's rows is kept under the
    stamp it was made from.
    """
    if not rows:
        return []
    question = rows[0].question

    def key(issue_id, stamp) -> str:
        return _excerpt_key(question, issue_id, stamp)

    kept = app_cache.get_many(*(key(row.issue_id, row.stamp) for row in rows))
    missing = [row.issue_id for row, excerpt in zip(rows, kept, strict=True) if excerpt is None]
    made: dict[uuid.UUID, str] = {}
    if missing:
        marks = Marks.new()
        params = {"query": query, **marks.headline_params()}
        found = db.session.execute(POSTGRES_EXCERPTS, {**params, "tenant_id": tenant_id, "ids": missing})
        fresh = {}
        for row in found:
            made[row.issue_id] = str(marks.to_markup(row.snippet or "", html_escaped=True))
            fresh[key(row.issue_id, row.stamp)] = made[row.issue_id]
        cache.store_many(fresh, timeout=EXCERPT_SECONDS)
    return [
        Markup(excerpt if excerpt is not None else made.get(row.issue_id, ""))  # escaped when made
        for row, excerpt in zip(rows, kept, strict=True)
    ]
