"""The command palette's answers (``/<org>/palette?q=``, JSON) and the choice of a project for a
new issue (``/<org>/new-issue``): what they find, who may ask, and never another organization's rows."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from app.core.tenancy import tenant_context
from app.projects import services as projects
from tests.accounts import login
from tests.factories import make_acme, make_beta


@pytest.fixture
def acme(db_session):
    """Acme: Olive (owner) and Vic (viewer); Website (WEB) and Public API (API), with issues."""
    acme = make_acme({"vic@example.com": "viewer"}, projects=("WEB", "API"))
    acme.add_issue("Kestrel feeds the chicks")
    acme.add_issue("Osprey builds a nest")
    acme.add_issue("Puffin carries sand eels", project="API")
    db_session.commit()
    return acme


def _palette(client, words: str, org: str = "acme") -> dict:
    response = client.get(f"/{org}/palette?q={quote(words)}")
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "application/json"
    assert "no-store" in response.headers["Cache-Control"]
    return response.get_json()


def _refs(answer: dict) -> list[str]:
    return [issue["ref"] for issue in answer["issues"]]


def _keys(answer: dict) -> list[str]:
    return [project["key"] for project in answer["projects"]]


def test_issues_are_found_by_title_words_and_by_reference(client, acme):
    """Title words find the issue; a reference, in any case, names it first; each comes with its address."""
    login(client, "owner@example.com")
    answer = _palette(client, "osprey nest")
    assert answer["issues"] == [
        {"ref": "WEB-2", "title": "Osprey builds a nest", "state": "todo", "url": "/acme/issues/WEB-2"}
    ]
    assert _refs(_palette(client, "api-1")) == ["API-1"]
    assert _refs(_palette(client, "WEB-1"))[0] == "WEB-1"
    assert _refs(_palette(client, "WEB-99")) == []


def test_projects_are_found_by_key_and_by_name(client, acme):
    """A key's start or the words of a name find the project, with its issues' address."""
    login(client, "owner@example.com")
    assert _palette(client, "we")["projects"] == [
        {"key": "WEB", "name": "Website", "archived": False, "url": "/acme/projects/WEB/issues"}
    ]
    assert _keys(_palette(client, "public api")) == ["API"]
    assert _keys(_palette(client, "nothing like it")) == []


def test_archived_projects_come_after_active_ones(client, db_session, acme):
    """An archived project is still found, marked, after the active ones."""
    with tenant_context(acme.id):
        projects.set_archived(acme.projects["API"], True)
        db_session.commit()
    login(client, "owner@example.com")
    answer = _palette(client, "i")  # "Public API" and "Website" both hold an i
    assert [(p["key"], p["archived"]) for p in answer["projects"]] == [("WEB", False), ("API", True)]


def test_an_empty_question_finds_nothing(client, acme):
    """No words, no rows (the palette shows its pages then)."""
    login(client, "owner@example.com")
    assert _palette(client, "") == {"projects": [], "issues": []}
    assert _palette(client, "   ") == {"projects": [], "issues": []}
    assert client.get("/acme/palette").get_json() == {"projects": [], "issues": []}


@pytest.mark.parametrize(
    "words",
    [
        '"',
        "-",
        "---",
        "%",
        "_",
        "'",
        "*",
        ":*",
        "a & b | !c",
        "or",
        "\\",
        "WEB-999999999",
        "WEB-1234567890",
        "x" * 5000,
        "ünïcödé 🦉",
        "<script>",
        "(",
        ")",
    ],
)
def test_any_text_is_an_answer_never_an_error(client, acme, words):
    """Odd or long text answers JSON like any question; it is never a server error."""
    login(client, "owner@example.com")
    answer = _palette(client, words)
    assert set(answer) == {"projects", "issues"}


def test_a_control_character_is_refused(client, acme):
    """A NUL in the question is a 400, as everywhere; the words without it are answered."""
    login(client, "owner@example.com")
    assert client.get("/acme/palette?q=kestrel%00b").status_code == 400
    assert _refs(_palette(client, "kestrel")) == ["WEB-1"]


def test_who_may_ask(app, client, db_session, acme):
    """A viewer may; a visitor is sent to log in; someone of another organization gets a 404."""
    make_beta()
    db_session.commit()
    assert client.get("/acme/palette?q=kestrel").status_code in (302, 401)
    login(client, "vic@example.com")
    assert _refs(_palette(client, "kestrel")) == ["WEB-1"]
    stranger = app.test_client()
    login(stranger, "bert@example.com")
    assert stranger.get("/acme/palette?q=kestrel").status_code == 404


def test_another_organizations_rows_are_never_answered(app, client, db_session, acme):
    """Beta's project and issues, by words, key or a reference Acme also uses, stay Beta's."""
    beta = make_beta(projects={"WEB": "Zanzibar web", "ZED": "Zanzibar secrets"})
    beta.add_issue("Zanzibar secret plans", project="WEB")
    beta.add_issue("Zanzibar vault", project="ZED")
    db_session.commit()
    login(client, "owner@example.com")
    for words in ("zanzibar", "secret", "ZED", "ZED-1", "zed-1", "vault"):
        assert _palette(client, words) == {"projects": [], "issues": []}, words
    answer = _palette(client, "WEB-1")
    assert answer["issues"][0]["title"] == "Kestrel feeds the chicks"
    assert "Zanzibar" not in str(answer)
    bert = app.test_client()
    login(bert, "bert@example.com")
    assert sorted(_refs(_palette(bert, "zanzibar", org="beta"))) == ["WEB-1", "ZED-1"]
    assert _palette(bert, "kestrel", org="beta") == {"projects": [], "issues": []}


def test_new_issue_goes_to_the_only_active_project(client, db_session, acme):
    """With one active project, "New issue" is that project's form."""
    with tenant_context(acme.id):
        projects.set_archived(acme.projects["API"], True)
        db_session.commit()
    login(client, "owner@example.com")
    response = client.get("/acme/new-issue")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/acme/projects/WEB/issues/new")


def test_new_issue_offers_the_active_projects(app, client, acme):
    """With several active projects, the page links each one's form; a viewer may not create issues."""
    login(client, "owner@example.com")
    html = client.get("/acme/new-issue").get_data(as_text=True)
    assert 'href="/acme/projects/API/issues/new"' in html
    assert 'href="/acme/projects/WEB/issues/new"' in html
    viewer = app.test_client()
    login(viewer, "vic@example.com")
    assert viewer.get("/acme/new-issue").status_code == 403
