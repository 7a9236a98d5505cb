"""Text input: control characters are refused everywhere; names refuse invisible direction marks."""

from __future__ import annotations

import re
import uuid
from functools import partial
from html.parser import HTMLParser
from urllib.parse import quote, urljoin, urlsplit

import pytest
from sqlalchemy import select

from app.config import PROJECT_ROOT
from app.models import Membership
from app.tenancy import tenant_context
from tests.accounts import login, make_org, make_user
from tests.conftest import CSRF_TOKEN, csrf_token_from
from tests.isolation import (
    GLOBAL_OBJECT_ROUTES,
    PLAIN_ARGUMENTS,
    TOKEN_ARGUMENTS,
    RowBuilder,
    model_for_argument,
    tenant_models,
)

NUL = "a\x00b"
_READS = re.compile(r"""\b(?:args|form)(?:\.get|\.getlist)?(?:\(\s*|\[)["']([\w-]+)["']""")


def query_names() -> set[str]:
    """Every parameter name the app reads from request.args or request.form (found in its source)."""
    names = set()
    for path in (PROJECT_ROOT / "app").rglob("*.py"):
        names |= set(_READS.findall(path.read_text(encoding="utf-8")))
    return names


class FormParser(HTMLParser):
    """The forms of a page: method, action and (name, value) of each field, as a browser sees them."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            method = (attrs.get("method") or "get").lower()
            self.forms.append({"method": method, "action": attrs.get("action"), "fields": []})
        elif not self.forms or not attrs.get("name"):
            if tag == "option" and self._select and self.forms:
                self._option(attrs)
        elif tag in ("input", "textarea"):
            if attrs.get("type") not in ("submit", "button", "file"):
                self.forms[-1]["fields"].append([attrs["name"], attrs.get("value") or ""])
        elif tag == "select":
            self._select = attrs["name"]
            self.forms[-1]["fields"].append([attrs["name"], None])
        if tag == "option" and self._select and attrs.get("name"):
            self._option(attrs)

    def _option(self, attrs):
        field = next(f for f in reversed(self.forms[-1]["fields"]) if f[0] == self._select)
        if field[1] is None or "selected" in attrs:
            field[1] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def forms_of(html: str) -> list[dict]:
    parser = FormParser()
    parser.feed(html)
    return parser.forms


def _row_dict(obj) -> dict:
    values = {column.key: getattr(obj, column.key) for column in obj.__table__.columns}
    for name in getattr(type(obj), "__url_keys__", ()):
        values[name] = getattr(obj, name)
    return values


def route_urls(app, slug: str, objects: dict) -> list[tuple[str, set[str]]]:
    """(url, methods) of every route of the app, with its arguments filled from ``objects``."""
    urls = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        values = {}
        for argument in rule.arguments:
            if argument == "org_slug":
                values[argument] = slug
            elif argument in PLAIN_ARGUMENTS:
                values[argument] = PLAIN_ARGUMENTS[argument]
            elif argument in TOKEN_ARGUMENTS:
                values[argument] = "not-a-token"
            elif rule.endpoint in GLOBAL_OBJECT_ROUTES:
                values[argument] = uuid.uuid4()
            else:
                model, column = model_for_argument(argument)
                values[argument] = objects[model][column]
        urls.append((rule.build(values, append_unknown=False)[1], set(rule.methods)))
    return sorted(urls, key=lambda item: item[0])


def nul_problems(client, urls, names: set[str]) -> tuple[list[str], int]:
    """Send a NUL in every known query parameter, every field of every form, and the path.

    Returns the requests answered with a 5xx, and how many requests were made.
    """
    problems, sent = [], 0

    def check(request, what):
        """Make the request; a 5xx (or, in testing, the exception behind it) is a problem."""
        nonlocal sent
        sent += 1
        try:
            response = request()
        except Exception as exc:  # the testing app propagates what would be a 500
            problems.append(f"{what} raised {type(exc).__name__}")
            return None
        if response.status_code >= 500:
            problems.append(f"{what} answered {response.status_code}")
        return response

    for url, methods in urls:
        in_path = url.replace("/", "/%00", 1) if url != "/" else "/%00"
        check(partial(client.get, in_path), f"GET {url} with a NUL in the path")
        if "GET" not in methods:
            token = CSRF_TOKEN.search(client.get("/account").get_data(as_text=True))
            data = {"csrf_token": token.group(1) if token else "", **dict.fromkeys(names, NUL)}
            check(partial(client.post, url, data=data), f"POST {url}")
            continue
        page = check(partial(client.get, url), f"GET {url}")
        if page is None:
            continue
        forms = forms_of(page.get_data(as_text=True)) if page.mimetype == "text/html" else []
        get_fields = {name for form in forms if form["method"] == "get" for name, _ in form["fields"]}
        for name in sorted(names | get_fields):
            check(partial(client.get, f"{url}?{quote(name)}=a%00b"), f"GET {url}?{name}=<NUL>")
        for form in forms:
            action = urljoin(url, form["action"] or url)
            if form["method"] != "post" or urlsplit(action).path == "/logout":
                continue
            for index, (name, _value) in enumerate(form["fields"]):
                if name.endswith("csrf_token"):
                    continue
                data = {}
                for other, (field, value) in enumerate(form["fields"]):
                    data.setdefault(field, []).append(NUL if other == index else value)
                check(partial(client.post, action, data=data), f"POST {action} {name}=<NUL>")
    return problems, sent


@pytest.fixture
def full_org(db_session):
    """An organization with one row of every tenant model, and its owner signed in afterwards."""
    owner = make_user("owner-of-a@example.com", name="Alice Owner")
    org = make_org(owner, "Alpha Org", "alpha")
    builder = RowBuilder(db_session)
    objects = {}
    with tenant_context(org.id):
        for model in tenant_models():
            objects[model] = _row_dict(builder.build(model, None))
        objects[Membership] = _row_dict(db_session.scalars(select(Membership)).first())
    db_session.commit()
    return org.slug, objects


def test_the_harness_knows_the_query_parameters():
    """The source scan finds the parameters the pages read (search, filters, paging, next)."""
    assert {"q", "state", "label", "after", "next"} <= query_names()


def test_a_nul_byte_anywhere_is_never_a_server_error(app, client, db_session, full_org):
    """A NUL in any query parameter, form field or path segment of any route is a 4xx, never a 500."""
    slug, objects = full_org
    login(client, "owner-of-a@example.com")
    problems, sent = nul_problems(client, route_urls(app, slug, objects), query_names())
    assert problems == [], "\n".join(problems)
    assert sent > 200


def test_a_nul_in_the_search_is_a_clear_400(client, db_session, full_org):
    """Searching for text with a NUL byte says what is wrong."""
    login(client, "owner-of-a@example.com")
    response = client.get("/alpha/search?q=a%00b")
    assert response.status_code == 400
    assert "control character" in response.get_data(as_text=True)


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\x7f"])
def test_control_characters_in_a_form_are_refused_and_nothing_is_stored(client, db_session, full_org, char):
    """A control character in a form field is a 400 and the name is unchanged."""
    login(client, "owner-of-a@example.com")
    html = client.get("/account").get_data(as_text=True)
    response = client.post(
        "/account/profile", data={"profile-csrf_token": csrf_token_from(html), "profile-name": f"Eve{char}"}
    )
    assert response.status_code == 400
    assert "Alice Owner" in client.get("/account").get_data(as_text=True)


def test_tabs_and_line_breaks_are_still_text(client, db_session, full_org):
    """Tabs and line breaks are ordinary text (descriptions, comments): they pass the check."""
    login(client, "owner-of-a@example.com")
    assert client.get("/alpha/search?q=a%09b%0D%0Ac").status_code == 200
