"""The query language of search boxes, read alike for both engines: words, "phrases", ``or``
and ``-excluded`` terms (``parse_query``), the last word also found as the start of a longer one
(as it is typed: "Safar" finds "Safari"), and what each engine is given: the FTS5 MATCH
expression of SQLite (``fts5_expression``) and the tsquery text of PostgreSQL
(``tsquery_text``). Any input is safe: it can never be a syntax error."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace

#: Longest query looked at (characters); the rest is ignored.
MAX_QUERY_LENGTH = 256
#: At most this many terms of a query are used.
MAX_TERMS = 24
#: The shortest last word that is also looked for as the start of longer words.
MIN_PREFIX = 2


@dataclass(frozen=True)
class Term:
    """A word or a quoted phrase of a query, as the words the tokenizers will see."""

    words: tuple[str, ...]
    excluded: bool = False
    #: Joined to the term before it with OR.
    alternative: bool = False
    #: Its last word also matches as the start of a longer word (the last word of a query).
    prefix: bool = False


#: PostgreSQL's english stop words (the Snowball list). The 'english' configuration drops them
#: from queries; FTS5 indexes every word, so the query parser drops them for both engines alike.
_STOP_WORDS_TEXT = """
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she
her hers herself it its itself they them their theirs themselves what which who whom this that
these those am is are was were be been being have has had having do does did doing a an the and
but if or because as until while of at by for with about against between into through during
before after above below to from up down in out on off over under again further then once here
there when where why how all any both each few more most other some such no nor not only own
same so than too very s t can will just don should now
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"[^\W_]+")
#: Control characters (NUL among them) and lone surrogates: no database driver takes them all.
_UNSAFE_CHARACTER_CATEGORIES = {"Cc", "Cs"}


def clean_query(query) -> str:
    """The query as the engines see it: bounded in length, without control characters."""
    query = str(query or "")[:MAX_QUERY_LENGTH]
    return "".join(" " if unicodedata.category(ch) in _UNSAFE_CHARACTER_CATEGORIES else ch for ch in query)


def parse_query(query: str) -> list[Term]:
    """Read a web-search style query: words, "phrases", ``or`` and ``-excluded`` terms.

    Punctuation separates words; a token of several words (``e-mail``) is a phrase. The last
    term, when it is a plain word being looked for (not quoted, not excluded) of at least
    ``MIN_PREFIX`` characters, is a prefix too.
    """
    terms: list[Term] = []
    pending_or = False
    last_plain = False
    for match in _TOKEN.finditer(query):
        negation, phrase, word = match.groups()
        if word is not None:
            if word.lower() == "or":
                pending_or = bool(terms) and not terms[-1].excluded
                continue
            negation = "-" if word.startswith("-") else ""
            phrase = word.lstrip("-")
        words = tuple(_WORD.findall(phrase))
        if all(w.lower() in STOP_WORDS for w in words):
            continue  # nothing to look for (a phrase keeps its stop words: FTS5 matches them)
        excluded = bool(negation)
        terms.append(Term(words, excluded=excluded, alternative=pending_or and not excluded))
        last_plain = word is not None and not excluded and len(words) == 1
        pending_or = False
        if len(terms) == MAX_TERMS:
            break
    if terms and last_plain and len(terms[-1].words[-1]) >= MIN_PREFIX:
        terms[-1] = replace(terms[-1], prefix=True)
    return terms


def fts5_expression(terms: list[Term]) -> str:
    """An FTS5 MATCH expression for the terms: every term a quoted string, never an operator."""
    groups: list[list[str]] = []
    excluded = []
    for term in terms:
        quoted = '"' + " ".join(term.words).replace('"', '""') + '"' + (" *" if term.prefix else "")
        if term.excluded:
            excluded.append(quoted)
        elif term.alternative and groups:
            groups[-1].append(quoted)
        else:
            groups.append([quoted])
    expression = " AND ".join("(" + " OR ".join(group) + ")" for group in groups)
    return "(" + expression + ")" + "".join(f" NOT {term}" for term in excluded)


def tsquery_text(terms: list[Term]) -> str:
    """The terms as the text of a PostgreSQL tsquery, for ``to_tsquery('english', …)``: words
    (letters and digits only, so never an operator) joined with ``&``, ``|``, ``!`` and, within a
    phrase, ``<->``; a prefix term's last word followed by ``:*``."""
    groups: list[list[str]] = []
    excluded = []
    for term in terms:
        words = list(term.words)
        if term.prefix:
            words[-1] += ":*"
        phrase = " <-> ".join(words)
        if term.excluded:
            excluded.append(f"!({phrase})")
        elif term.alternative and groups:
            groups[-1].append(f"({phrase})")
        else:
            groups.append([f"({phrase})"])
    return " & ".join(["(" + " | ".join(group) + ")" for group in groups] + excluded)
