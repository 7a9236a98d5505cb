"""Markdown that people write (issue descriptions, comments), rendered safely.

The source is parsed by markdown-it-py (the CommonMark preset, plus tables,
strikethrough and links for bare URLs) with raw HTML off: ``<b>`` in the text is
shown as text. The parser's tokens are adjusted before rendering, and the HTML
is then sanitized by nh3 against an explicit allowlist, so a parser mistake still
cannot put a script, a style or an event handler on the page.

Decisions, kept here so the allowlist and the parser agree:

- **Line breaks.** A single newline is a line break, as people expect in a
  comment box (``breaks``); everything else is CommonMark.
- **Headings** are demoted by two levels (``#`` becomes ``<h3>``, clamped at
  ``<h6>``): the page owns ``<h1>`` and ``<h2>``, so those are not allowed.
- **Images** are not shown: the CSP only loads images from this site, and a
  remote image would tell its host who reads the issue. ``![alt](url)`` becomes
  a link to the image whose text is the alt text (just the text when the URL is
  not allowed).
- **Links** may use ``http``, ``https`` and ``mailto``, or be a path on this site
  (``/acme/…``) or a fragment (``#…``); ``//host`` and any other relative form are
  not links. A link whose URL is not allowed is shown as its text. Every link
  gets ``rel="nofollow noopener noreferrer"``.
- **Bare URLs** are linked when they start with a scheme or ``www.``, and
  email addresses become ``mailto:`` links; ``setup.py`` stays text.
- **Code** keeps ``class="language-xyz"`` for fenced blocks (for a highlighter);
  tables keep the column alignment as an ``align`` attribute, never ``style``.
- **Mentions** are ``@handle`` (an email local part) outside code and links; the
  handle is compared lower-cased. ``\\@handle`` is not a mention.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markupsafe import Markup, escape

MentionURL = Callable[[str], str | None]

ALLOWED_TAGS = frozenset(
    {
        *("p", "br", "hr", "blockquote", "pre", "code", "strong", "em", "del", "s", "a"),
        *("h3", "h4", "h5", "h6"),  # headings are demoted: the page owns h1 and h2
        *("ul", "ol", "li"),
        *("table", "thead", "tbody", "tr", "th", "td"),
    }
)
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "class"},
    "code": {"class"},
    "pre": {"class"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
}
ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow noopener noreferrer"
HEADING_SHIFT = 2  # "#" renders as <h3>

MENTION_CLASS = "mention"
# "@" not preceded by anything that makes it part of an email address or a path;
# a handle may hold single dots but not end with one ("thanks @ada." mentions ada),
# and one followed by another "@" is an address, not a mention.
MENTION = re.compile(r"@((?>[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*))(?!@)")
_NOT_BEFORE_MENTION = re.compile(r"[\w.%+\-/@]")
_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.-]{1,40}")
_LANGUAGE_CLASS = re.compile(r"language-[A-Za-z0-9_+#.-]{1,40}")
_ALIGN = re.compile(r"text-align:(left|center|right)")
_URL_IGNORED = re.compile(r"[\t\n\r]|^[\x00-\x20]+|[\x00-\x20]+$")


def is_allowed_url(url: str) -> bool:
    """An http, https or mailto URL, a path on this site or a fragment; nothing else.

    Tabs and newlines, and control characters and spaces at either end, are
    dropped first, as browsers do (``java\\tscript:``).
    """
    url = _URL_IGNORED.sub("", url)
    if not url:
        return False
    if url.startswith("#"):
        return True
    if url.startswith("/"):
        return not url.startswith("//") and "\\" not in url
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    return scheme in ALLOWED_SCHEMES and (scheme == "mailto" or bool(parts.netloc))


# --- the parser and its token adjustments --------------------------------------------


def _new_parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": True, "breaks": True, "typographer": False})
    md.enable(["table", "strikethrough", "linkify"])
    # Protocol-relative and ftp URLs are not allowed links (is_allowed_url): leave them as text.
    md.linkify.add("//", None).add("ftp:", None)
    md.core.ruler.before("text_join", "worklane", _adjust_tokens)
    return md


_parsers = threading.local()


def _parser() -> MarkdownIt:
    """One parser per thread: the linkify matcher keeps state between calls."""
    md = getattr(_parsers, "md", None)
    if md is None:
        md = _parsers.md = _new_parser()
    return md


def _adjust_tokens(state: StateCore) -> None:
    """Demote headings, move table alignment out of ``style``, tidy fences, handle inlines."""
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + HEADING_SHIFT, 6)}"
        elif token.type in ("th_open", "td_open"):
            match = _ALIGN.fullmatch(str(token.attrs.pop("style", "")))
            if match:
                token.attrSet("align", match.group(1))
        elif token.type == "fence":
            language = token.info.split(maxsplit=1)[0] if token.info.strip() else ""
            token.info = language if _LANGUAGE.fullmatch(language) else ""
        elif token.type == "inline" and token.children:
            token.children = _adjust_inline(token.children, state.env)


def _adjust_inline(children: list[Token], env: dict) -> list[Token]:
    result: list[Token] = []
    link_depth = 0
    previous_char = ""
    for index, token in enumerate(children):
        if token.type == "link_open":
            link_depth += 1
            href = str(token.attrGet("href") or "")
            following = children[index + 1] if index + 1 < len(children) else None
            if not is_allowed_url(href) or _is_fuzzy_domain_link(token, href, following):
                token.type = "unwrapped_link_open"
        elif token.type == "link_close":
            link_depth -= 1
        elif token.type == "image":
            result.extend(_image_as_link(token, inside_link=link_depth > 0))
            previous_char = ""
            continue
        elif token.type == "text" and link_depth == 0:
            result.extend(_split_mentions(token, previous_char, env))
            previous_char = token.content[-1:]
            continue
        previous_char = token.content[-1:] if token.type == "text_special" else ""
        result.append(token)
    return _drop_unwrapped_links(result)


def _is_fuzzy_domain_link(token: Token, href: str, following: Token | None) -> bool:
    """A bare ``name.tld`` that linkify guessed at (``setup.py``), as opposed to ``www.…``."""
    if token.markup != "linkify" or not href.startswith("http://"):
        return False
    text = following.content if following is not None else ""
    return "://" not in text and not text.lower().startswith("www.")


def _drop_unwrapped_links(tokens: list[Token]) -> list[Token]:
    """Remove links marked as not allowed, and their closing tags, keeping the text."""
    result: list[Token] = []
    stack: list[bool] = []
    for token in tokens:
        if token.type in ("link_open", "unwrapped_link_open"):
            stack.append(token.type == "unwrapped_link_open")
            if stack[-1]:
                continue
        elif token.type == "link_close" and stack and stack.pop():
            continue
        result.append(token)
    return result


def _image_as_link(image: Token, inside_link: bool) -> list[Token]:
    alt = _plain_text(image.children or [])
    src = str(image.attrGet("src") or "")
    if inside_link or not is_allowed_url(src):
        return [_text(alt)] if alt else []
    link = Token("link_open", "a", 1, attrs={"href": src})
    title = image.attrGet("title")
    if title:
        link.attrSet("title", str(title))
    return [link, _text(alt or src), Token("link_close", "a", -1)]


def _split_mentions(token: Token, previous_char: str, env: dict) -> list[Token]:
    """Cut a text token around its mentions; known ones become mention links."""
    text = token.content
    mentions: set[str] | None = env.get("mentions")
    mention_url: MentionURL | None = env.get("mention_url")
    pieces: list[Token] = []
    start = 0
    for match in MENTION.finditer(text):
        before = text[match.start() - 1] if match.start() else previous_char
        if before and _NOT_BEFORE_MENTION.fullmatch(before):
            continue
        handle = match.group(1).lower()
        if mentions is not None:
            mentions.add(handle)
        url = mention_url(handle) if mention_url else None
        if not url or not is_allowed_url(url):
            continue
        if match.start() > start:
            pieces.append(_text(text[start : match.start()]))
        pieces.append(Token("link_open", "a", 1, attrs={"href": url, "class": MENTION_CLASS}))
        pieces.append(_text(match.group(0)))
        pieces.append(Token("link_close", "a", -1))
        start = match.end()
    if not pieces:
        return [token]
    if start < len(text):
        pieces.append(_text(text[start:]))
    return pieces


def _text(content: str) -> Token:
    return Token("text", "", 0, content=content)


def _plain_text(tokens: list[Token]) -> str:
    parts = []
    for token in tokens:
        if token.type in ("text", "text_special", "code_inline"):
            parts.append(token.content)
        elif token.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif token.children:
            parts.append(_plain_text(token.children))
    return "".join(parts)


# --- sanitizing ------------------------------------------------------------------------


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "class":
        if tag == "a":
            return value if value == MENTION_CLASS else None
        return value if _LANGUAGE_CLASS.fullmatch(value) else None
    if attribute == "align":
        return value if value in ("left", "center", "right") else None
    if attribute == "start":
        return value if value.isdigit() and len(value) < 10 else None
    return value


def _relative_url(url: str) -> str | None:
    return url if is_allowed_url(url) else None


_sanitizer = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    attributes=ALLOWED_ATTRIBUTES,
    attribute_filter=_filter_attribute,
    strip_comments=True,
    link_rel=LINK_REL,
    url_schemes=set(ALLOWED_SCHEMES),
    url_relative=_relative_url,
)


def sanitize_html(html: str) -> str:
    """HTML reduced to the allowlist above: the last wall, whatever the parser produced."""
    return _sanitizer.clean(html)


# --- the public helpers ----------------------------------------------------------------


def render_markdown(text: str | None, mention_url: MentionURL | None = None) -> Markup:
    """Markdown source as sanitized HTML, safe to put in a page as it is.

    ``mention_url(handle)`` gets each mentioned handle lower-cased and returns the
    URL to link it to, or None to leave it as text.
    """
    if not text:
        return Markup("")
    md = _parser()
    env = {"mention_url": mention_url}
    html = md.renderer.render(md.parse(str(text), env), md.options, env)
    return Markup(sanitize_html(html))


def extract_mentions(text: str | None) -> set[str]:
    """The lower-cased handles mentioned in the source (not in code, links or emails)."""
    if not text:
        return set()
    mentions: set[str] = set()
    _parser().parse(str(text), {"mentions": mentions})
    return mentions


def markdown_excerpt(text: str | None, length: int = 160) -> str:
    """Plain text of the source for lists and notifications: no markup, one line, at most ``length``."""
    if not text:
        return ""
    parts = []
    for token in _parser().parse(str(text)):
        if token.type == "inline":
            parts.append(_plain_text(token.children or []))
        elif token.type in ("fence", "code_block"):
            parts.append(token.content)
        parts.append(" ")
    plain = " ".join("".join(parts).split())
    if len(plain) <= length:
        return plain
    cut = plain[: max(length - 1, 0)]
    space = cut.rfind(" ")
    if not plain[len(cut)].isspace() and space > length // 2:
        cut = cut[:space]  # end at a word, unless that loses more than half
    return cut.rstrip(" .,;:-") + "…"


# --- rendered once, when the text is written --------------------------------------------

#: Bumped whenever a change here alters the HTML of some text: stored HTML rendered with
#: another version is rendered again when read (``stored_html``).
RENDERER_VERSION = 1
#: Stands in for a mention's URL in stored HTML. Who a handle names changes with the members
#: (added, removed, their email changed), so stored HTML keeps every mention as a link to this
#: path, and ``resolve_mentions`` puts in the member's URL, or the plain text, when shown.
MENTION_PLACEHOLDER = "/__mention__/"
_STORED_MENTION = re.compile(
    '<a href="'
    + re.escape(MENTION_PLACEHOLDER)
    + r'([A-Za-z0-9_.\-]+)" class="'
    + MENTION_CLASS
    + '" rel="'
    + re.escape(LINK_REL)
    + r'">(@[A-Za-z0-9_.\-]+)</a>'
)


def render_for_storage(text: str | None) -> str:
    """The sanitized HTML of the source to store beside it, mentions left to ``resolve_mentions``."""
    return str(render_markdown(text, lambda handle: MENTION_PLACEHOLDER + handle))


def resolve_mentions(stored: str, mention_url: MentionURL | None) -> Markup:
    """Stored HTML as ``render_markdown(text, mention_url)`` would give it now.

    Only links in the exact form ``render_for_storage`` makes are touched (the text cannot
    make a link with the mention class); a handle that names nobody becomes its text again.
    """

    def link(match: re.Match) -> str:
        url = mention_url(match.group(1)) if mention_url else None
        if not url or not is_allowed_url(url):
            return match.group(2)
        return f'<a href="{escape(url)}" class="{MENTION_CLASS}" rel="{LINK_REL}">{match.group(2)}</a>'

    return Markup(_STORED_MENTION.sub(link, stored))


def stored_html(text: str | None, html: str | None, version: int | None, mention_url: MentionURL | None):
    """The text's HTML from what was stored when it was written, rendered again when the
    stored copy is missing or was made by another renderer version."""
    if not text:
        return Markup("")
    if html is None or version != RENDERER_VERSION:
        html = render_for_storage(text)
    return resolve_mentions(html, mention_url)
