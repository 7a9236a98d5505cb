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
from app.core.tenancy import tenant_context
from app.models import Membership
from tests.accounts import login, make_org, make_user, post_form
from tests.conftest import CSRF_TOKEN, csrf_token_from
from tests.isolation import (
    API_ARGUMENTS,
    API_BLUEPRINT,
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
            elif rule.endpoint.split(".")[0] == API_BLUEPRINT:
                name, columns = API_ARGUMENTS[argument]
                values[argument] = next(row for m, row in objects.items() if m.__name__ == name)[columns[0]]
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
def full_org(app, db_session):
    """An organization with one row of every tenant model, and its owner signed in afterwards
    (built in an app context: encrypted columns read their keys from the app)."""
    with app.app_context():
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


# --- names: no invisible formatting characters ---------------------------------------------

RLO = "\u202e"
#: (form page, where it posts, field, other fields it needs): every form with a name-like field.
NAME_FORMS = {
    "sign-up name": ("/signup", None, "name", {"email": "n@example.com", "organization": "Org"}),
    "sign-up organization": ("/signup", None, "organization", {"name": "Nina", "email": "n@example.com"}),
    "invited sign-up name": ("{invitation}/signup", None, "name", {}),
    "account name": ("/account", "/account/profile", "profile-name", {}),
    "new organization name": ("/orgs/new", None, "name", {}),
    "new organization address": ("/orgs/new", None, "slug", {"name": "Fine Name"}),
    "organization settings name": ("/beta/settings", None, "name", {}),
    "new project name": ("/beta/projects/new", None, "name", {"key": "NEW"}),
    "new project key": ("/beta/projects/new", None, "key", {"name": "Fine"}),
    "project settings name": ("/beta/projects/WEB/settings", None, "name", {}),
    "new issue title": ("/beta/projects/WEB/issues/new", None, "title", {"state": "todo", "priority": "0"}),
    "issue title": (
        "/beta/issues/WEB-1",
        "/beta/issues/WEB-1/edit",
        "title",
        {"state": "todo", "priority": "0"},
    ),
}


@pytest.fixture
def beta(app, db_session):
    """Beta (owner Bea, project WEB with issue WEB-1) and a pending invitation to it, as a link."""
    from app.issues.services import create_issue
    from app.models import Project
    from app.orgs.services import invitation_token, invite

    owner = make_user("bea@example.com", name="Bea Owner")
    org = make_org(owner, "Beta", "beta")
    with app.app_context(), tenant_context(org.id):
        project = Project(key="WEB", name="Website")
        db_session.add(project)
        db_session.flush()
        create_issue(project, owner, "First issue")
        membership = db_session.scalars(select(Membership)).one()
        invitation = invite(membership, "guest@example.com", "member")
        db_session.flush()
        token = invitation_token(invitation)
        db_session.commit()  # before the app context ends (its teardown removes the session)
    return f"/invitations/{token}"


def _stored_names(db_session) -> list:
    from app.core.tenancy import unscoped
    from app.models import Issue, Organization, Project, SavedView, User

    db_session.expire_all()
    with unscoped("test check"):
        return sorted(
            str(value)
            for model, column in (
                (User, User.name),
                (Organization, Organization.name),
                (Organization, Organization.slug),
                (Project, Project.name),
                (Project, Project.key),
                (Issue, Issue.title),
                (SavedView, SavedView.name),
            )
            for value in db_session.scalars(select(column))
        )


@pytest.mark.parametrize("form", sorted(NAME_FORMS))
def test_every_name_field_refuses_a_right_to_left_override(app, db_session, beta, form):
    """Each name-like form field answers 422 with a message about invisible characters; nothing is stored."""
    from app.core.names import MESSAGE

    page, action, field, others = NAME_FORMS[form]
    page = page.format(invitation=beta)
    client = app.test_client()
    if not page.startswith(("/signup", "/invitations")):
        answer = login(client, "bea@example.com")
        assert answer.status_code == 303, re.findall(
            r"flash[^>]*>([^<]*)|error[^>]*>([^<]*)", answer.get_data(as_text=True)
        )
    before = _stored_names(db_session)
    data = {"password": "correct horse battery", **others, field: f"Eve{RLO}exe.fdp"}
    response = post_form(client, page, action, **data)
    assert response.status_code == 422, form
    assert MESSAGE in response.get_data(as_text=True), form
    assert _stored_names(db_session) == before


def test_a_saved_view_name_refuses_invisible_characters(client, db_session, beta):
    """Saving a view under a name with a zero-width space is a 400 that says why; no view is saved."""
    from app.core.names import MESSAGE

    login(client, "bea@example.com")
    before = _stored_names(db_session)
    response = post_form(client, "/beta/issues", "/beta/views", name="Mine\u200b", state="todo")
    assert response.status_code == 400
    assert MESSAGE in response.get_data(as_text=True)
    assert _stored_names(db_session) == before


@pytest.mark.parametrize(
    "char",
    [
        "\u202a",
        "\u202b",
        "\u202c",
        "\u202d",
        "\u202e",
        "\u2066",
        "\u2067",
        "\u2068",
        "\u2069",
        "\u200e",
        "\u200f",
        "\u200b",
        "\u200c",
        "\u200d",
        "\u2060",
        "\ufeff",
        "\u061c",
    ],
)
def test_each_invisible_character_is_refused(char):
    """Every bidirectional control, direction mark and zero-width character is caught."""
    from app.core.names import invisible_text_problem

    assert invisible_text_problem(f"Ada{char}Lovelace")
    assert invisible_text_problem("Ada Lovelace") is None
    assert invisible_text_problem("Zoë Ðrăgulescu, 王小明, محمد") is None


@pytest.mark.parametrize(
    ("cells", "complaint"),
    [
        ([f"Invoice{RLO}fdp.exe", ""], "invisible formatting characters"),
        (["Zero\u200bwidth", ""], "invisible formatting characters"),
        (["Fine title", "a\x00b"], "control character"),
        (["Nul\x00title", ""], "control character"),
    ],
)
def test_imported_titles_follow_the_same_rules(app, db_session, beta, cells, complaint):
    """A CSV row whose title holds invisible characters, or any cell a control character, is a bad row."""
    from app.imports.services import RowChecker, RowProblem
    from app.models import Organization

    org_id = db_session.scalars(select(Organization.id).where(Organization.slug == "beta")).one()
    with app.app_context(), tenant_context(org_id):
        checker = RowChecker(["title", "description"])
        assert checker.check(2, ["A plain title", "Some text\twith a tab"]).title == "A plain title"
        with pytest.raises(RowProblem, match=complaint):
            checker.check(3, cells)
