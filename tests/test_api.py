"""The JSON API as a script uses it: bearer keys, problems with reasons, cursor pages, issues
changed only with If-Match (so nothing is lost), scopes within the maker's role, and the OpenAPI
document describing every route."""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from app.core.tenancy import tenant_context
from app.extensions import db
from app.issues import services as issues
from app.models import AuditEvent, Issue, IssueActivity, Project, User
from tests.factories import make_acme, make_beta
from tests.support.api import Api, make_key

PROBLEM = "application/problem+json"


@pytest.fixture
def acme(db_session):
    """Acme (owner Olive, member Grace, viewer Vic) with WEB-1 carrying label bug and assigned to
    Grace; Beta beside it with its own WEB-1."""
    team = make_acme(
        {"grace@example.com": "member", "vic@example.com": "viewer"}, projects=("WEB", "API"), labels=("bug",)
    )
    grace = team.people["grace@example.com"]
    team.add_issue(
        "Broken login", "It fails on Safari.", assignee_ids=[grace.id], label_ids=[team.labels["bug"].id]
    )
    beta = make_beta(projects=("WEB",))
    beta_issue = beta.add_issue("Beta's secret")
    ids = Ids(
        team.id,
        team.owner.id,
        {email: user.id for email, user in team.people.items()},
        beta.id,
        beta.owner.id,
        beta_issue.id,
    )
    db_session.commit()
    return ids


@dataclass
class Ids:
    """Acme's and Beta's ids (rows expire once a request ends the test's session)."""

    id: uuid.UUID
    owner: uuid.UUID
    people: dict[str, uuid.UUID]
    beta: uuid.UUID
    beta_owner: uuid.UUID
    beta_issue: uuid.UUID

    def key(self, person: str | None = None, **kwargs) -> str:
        return make_key(self.id, self.people[person] if person else self.owner, **kwargs)

    def add_issue(self, title: str) -> None:
        with tenant_context(self.id):
            project = db.session.scalar(select(Project).where(Project.key == "WEB"))
            issues.create_issue(project, db.session.get(User, self.owner), title)


@pytest.fixture
def api(client, acme):
    return Api(client, acme.key())


def _problem(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status and body["title"] and body["type"].endswith(f"#problem-{status}")
    return body


# --- who calls -------------------------------------------------------------------------------


def test_a_request_without_a_valid_key_is_refused_with_the_reason(client, acme):
    """No key, another scheme, a mistyped key (checksum) and an unknown key: each a 401 saying why."""
    response = client.get("/api/v1/projects")
    assert "Send an API key" in _problem(response, 401)["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (
        "bearer token"
        in _problem(client.get("/api/v1/projects", headers={"Authorization": "Basic abc"}), 401)["detail"]
    )
    token = acme.key()
    mistyped = token[:-1] + ("A" if token[-1] != "A" else "B")
    body = _problem(Api(client, mistyped).get("/projects"), 401)
    assert "not a Worklane API key" in body["detail"]
    from app.apikeys.services import new_token

    unknown = new_token(acme.id)  # well formed, of Acme, never made
    assert _problem(Api(client, unknown).get("/projects"), 401)["detail"] == "No such API key."
    assert "Set-Cookie" not in response.headers


def test_the_api_sets_no_cookie_and_needs_no_csrf_token(api):
    """A script never gets a session cookie, and a POST needs no form token."""
    response = api.post("/issues", json={"project": "WEB", "title": "From a script"})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers


def test_a_key_works_only_in_its_organization(client, acme):
    """Beta's key sees Beta's WEB-1, never Acme's, by key or by id; Acme's ids answer 404."""
    with tenant_context(acme.id):
        acme_issue = db.session.scalar(select(Issue))
        acme_issue_id = acme_issue.id
    beta = Api(client, make_key(acme.beta, acme.beta_owner))
    assert beta.get("/issues/WEB-1").get_json()["title"] == "Beta's secret"
    _problem(beta.get(f"/issues/{acme_issue_id}"), 404)
    _problem(beta.patch(f"/issues/{acme_issue_id}", json={"title": "x"}, headers={"If-Match": '"1"'}), 404)
    _problem(beta.get("/projects/API"), 404)
    listed = beta.get("/issues").get_json()["data"]
    assert [issue["title"] for issue in listed] == ["Beta's secret"]
    assert "Broken login" not in beta.get("/search?q=broken").get_data(as_text=True)


# --- scopes and roles --------------------------------------------------------------------------


def test_a_key_does_only_what_its_scopes_and_its_makers_role_allow(client, acme):
    """A read-only key cannot write (403 naming the scope); a member's key with projects:write
    still cannot create a project, which members cannot do; a viewer's key cannot create issues."""
    reader = Api(client, acme.key(scopes=["issues:read"]))
    assert reader.get("/issues").status_code == 200
    assert (
        "issues:write"
        in _problem(reader.post("/issues", json={"project": "WEB", "title": "x"}), 403)["detail"]
    )
    _problem(reader.get("/projects"), 403)
    member = Api(client, acme.key("grace@example.com", scopes=["projects:write"]))
    assert "member" in _problem(member.post("/projects", json={"key": "NEW", "name": "New"}), 403)["detail"]
    viewer = Api(client, acme.key("vic@example.com", scopes=["issues:write"]))
    _problem(viewer.post("/issues", json={"project": "WEB", "title": "x"}), 403)
    admin_scope = Api(client, acme.key(scopes=["admin"]))
    assert admin_scope.post("/projects", json={"key": "NEW", "name": "New"}).status_code == 201


# --- reading -----------------------------------------------------------------------------------


def _cursor_after(issue_id) -> str:
    return base64.urlsafe_b64encode(issue_id.bytes).decode().rstrip("=")


def test_lists_are_paged_with_an_opaque_cursor(api, acme):
    """Seven issues in pages of three: every issue once, in the order made, has_more false at the
    end; a malformed cursor and a limit over 100 are refused with reasons."""
    for number in range(2, 8):
        acme.add_issue(f"Issue {number}")
    db.session.commit()
    seen, cursor = [], None
    while True:
        response = api.get("/issues", query_string={"limit": 3, **({"cursor": cursor} if cursor else {})})
        body = response.get_json()
        seen += [issue["key"] for issue in body["data"]]
        assert body["has_more"] == (body["next_cursor"] is not None)
        if not body["has_more"]:
            break
        cursor = body["next_cursor"]
    assert seen == [f"WEB-{n}" for n in range(1, 8)]
    first = api.get("/issues?limit=3").get_json()["next_cursor"]
    assert len(first) == 22
    # A cursor only says where to start: one of Beta's ids read as a cursor shows nothing of Beta's.
    after_beta = api.get("/issues", query_string={"cursor": _cursor_after(acme.beta_issue)}).get_json()
    assert all(issue["title"] != "Beta's secret" for issue in after_beta["data"])
    assert _problem(api.get("/issues?cursor=short"), 422)["errors"][0]["loc"] == ["cursor"]
    body = _problem(api.get("/issues?limit=101"), 422)
    assert body["errors"][0]["loc"] == ["limit"]


def test_an_issue_reads_with_its_fields_and_an_etag(api, acme):
    """By key and by id: the same issue, its assignees and labels, and its version as ETag."""
    response = api.get("/issues/web-1")
    issue = response.get_json()
    assert response.headers["ETag"] == f'"{issue["version"]}"'
    assert (issue["key"], issue["title"], issue["project"]) == ("WEB-1", "Broken login", "WEB")
    assert [a["name"] for a in issue["assignees"]] == ["Grace Hopper"]
    assert [label["name"] for label in issue["labels"]] == ["bug"]
    assert issue["url"].endswith("/acme/issues/WEB-1")
    assert api.get(f"/issues/{issue['id']}").get_json() == issue
    _problem(api.get("/issues/WEB-99"), 404)
    _problem(api.get("/issues/not-a-ref"), 404)


def test_projects_states_labels_members_and_search(api, acme):
    """Each read operation answers what the pages show."""
    assert [p["key"] for p in api.get("/projects").get_json()["data"]] == ["WEB", "API"]
    assert api.get("/projects/WEB").get_json()["name"]
    states = [s["key"] for s in api.get("/projects/WEB/states").get_json()["data"]]
    assert "todo" in states and "done" in states
    assert [label["name"] for label in api.get("/labels").get_json()["data"]] == ["bug"]
    members = {m["email"]: m["role"] for m in api.get("/members").get_json()["data"]}
    assert members == {
        "owner@example.com": "owner",
        "grace@example.com": "member",
        "vic@example.com": "viewer",
    }
    hits = api.get("/search?q=safari").get_json()["data"]
    assert [h["key"] for h in hits] == ["WEB-1"] and "Safari" in hits[0]["excerpt"]


# --- writing -----------------------------------------------------------------------------------


def test_creating_an_issue_answers_it_and_records_who_through_which_key(api, acme):
    """201 with the issue and its ETag; the history names the key's maker; audit-free data rules hold."""
    grace = acme.people["grace@example.com"]
    response = api.post(
        "/issues",
        json={
            "project": "web",
            "title": "  From CI  ",
            "priority": 3,
            "assignees": [str(grace)],
            "state": "in_progress",
        },
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    issue = response.get_json()
    assert (issue["key"], issue["title"], issue["priority"], issue["state"]) == (
        "WEB-2",
        "From CI",
        3,
        "in_progress",
    )
    assert response.headers["ETag"] == f'"{issue["version"]}"'
    with tenant_context(acme.id):
        activity = db.session.scalar(
            select(IssueActivity).where(IssueActivity.field == "created").order_by(IssueActivity.id.desc())
        )
        assert activity.actor_id == acme.owner


@pytest.mark.parametrize(
    "body, status, says",
    [
        ({"project": "NOPE", "title": "x"}, 404, "No project with the key NOPE"),
        ({"project": "WEB", "title": "   "}, 422, "schema"),
        ({"project": "WEB", "title": "x", "colour": "red"}, 422, "schema"),
        ({"project": "WEB", "title": "x", "state": "nowhere"}, 404, "has no state nowhere"),
        (
            {"project": "WEB", "title": "x", "assignees": ["0190b6f0-0000-7000-8000-000000000000"]},
            404,
            "No member with the id",
        ),
        ({"project": "WEB", "title": "x", "priority": 9}, 422, "schema"),
        ({"project": "WEB", "title": "x", "due_date": "0001-01-01"}, 422, "due date"),
    ],
)
def test_a_bad_issue_is_refused_with_its_reason_and_nothing_is_made(api, acme, body, status, says):
    """Every refusal is a 4xx problem naming what is wrong (an object named that is not there is a
    404, as in a path); no issue is created."""
    problem = _problem(api.post("/issues", json=body), status)
    assert says.lower() in (problem["detail"] + str(problem.get("errors", ""))).lower()
    with tenant_context(acme.id):
        assert (
            db.session.scalar(select(db.func.count()).select_from(Issue).where(Issue.tenant_id == acme.id))
            == 1
        )


def test_a_body_that_is_not_json_is_a_400_or_415(api):
    """Malformed JSON is a 400, a form-encoded body a 415: never a 500."""
    response = api.client.post(
        "/api/v1/issues", data="{not json", headers={**api._headers(None), "Content-Type": "application/json"}
    )
    _problem(response, 400)
    response = api.client.post("/api/v1/issues", data={"title": "x"}, headers=api._headers(None))
    _problem(response, 415)


def test_a_change_applies_only_the_fields_sent_and_keeps_the_rest(api, acme):
    """PATCH of the title keeps the description, assignees and labels; the version moves."""
    before = api.get("/issues/WEB-1")
    response = api.patch(
        "/issues/WEB-1",
        json={"title": "Login broken on Safari"},
        headers={"If-Match": before.headers["ETag"]},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    after = response.get_json()
    old = before.get_json()
    assert after["title"] == "Login broken on Safari"
    for kept in ("description", "assignees", "labels", "state", "priority"):
        assert after[kept] == old[kept], kept
    assert after["version"] > old["version"] and response.headers["ETag"] == f'"{after["version"]}"'
    response = api.patch(
        "/issues/WEB-1", json={"assignees": [], "labels": []}, headers={"If-Match": response.headers["ETag"]}
    )
    assert response.get_json()["assignees"] == [] and response.get_json()["labels"] == []
    assert response.get_json()["title"] == "Login broken on Safari"


def test_a_change_based_on_an_old_read_is_refused_and_loses_nothing(api, client, acme):
    """Two scripts read WEB-1; the first changes it; the second's change, made from the older
    read, is refused with 412 and the first one's change stays. Without If-Match: 428."""
    other = Api(client, acme.key(name="Other script"))
    etag = api.get("/issues/WEB-1").headers["ETag"]
    assert other.get("/issues/WEB-1").headers["ETag"] == etag
    assert api.patch("/issues/WEB-1", json={"priority": 4}, headers={"If-Match": etag}).status_code == 200
    refused = other.patch(
        "/issues/WEB-1", json={"priority": 1, "title": "Overwritten"}, headers={"If-Match": etag}
    )
    assert "changed since you read it" in _problem(refused, 412)["detail"]
    assert refused.headers["ETag"] != etag
    issue = api.get("/issues/WEB-1").get_json()
    assert (issue["priority"], issue["title"]) == (4, "Broken login")
    _problem(other.patch("/issues/WEB-1", json={"priority": 1}), 428)


def test_comments_are_listed_and_written(api):
    """A comment written through the API is listed with its author."""
    response = api.post("/issues/WEB-1/comments", json={"body": "Seen on iOS too."})
    assert response.status_code == 201
    listed = api.get("/issues/WEB-1/comments").get_json()["data"]
    assert [(c["body"], c["author"]["name"]) for c in listed] == [("Seen on iOS too.", "Olive Owner")]
    _problem(api.post("/issues/WEB-1/comments", json={"body": " "}), 422)


def test_projects_and_labels_are_created_and_audited_as_through_the_key(api, acme):
    """A project and a label made with a key are audited as their maker's, naming the key."""
    assert api.post("/projects", json={"key": "OPS", "name": "Operations"}).status_code == 201
    _problem(api.post("/projects", json={"key": "OPS", "name": "Again"}), 409)
    assert api.post("/labels", json={"name": "infra"}).status_code == 201
    _problem(api.post("/labels", json={"name": "infra"}), 409)
    with tenant_context(acme.id):
        events = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action.in_(["project.created", "label.created"]))
        )
        made = {event.action: event for event in events}
    for action in ("project.created", "label.created"):
        assert made[action].actor_email == "owner@example.com", action
        assert made[action].data["via"].startswith("API key Script"), action


# --- the document --------------------------------------------------------------------------------


def test_unknown_paths_and_methods_are_problems(api):
    """404 and 405 under /api/ are problem details too."""
    _problem(api.get("/nothing-here"), 404)
    _problem(api.client.delete("/api/v1/projects", headers=api._headers(None)), 405)


def test_the_openapi_document_describes_every_api_route(client, app):
    """Every route of the API blueprint is an operation of the 3.1 document, each with problems."""
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    described = {(path, method) for path, ops in document["paths"].items() for method in ops}
    routes = {
        (re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert described == routes
    for path, method in described:
        operation = document["paths"][path][method]
        assert "401" in operation["responses"] and operation["operationId"]
    assert (
        client.get("/api/v1/openapi.json", headers={"If-None-Match": response.headers["ETag"]}).status_code
        == 304
    )


def test_the_reference_page_lists_every_operation(client):
    """The reference page is made from the document: each operation and problem has its entry."""
    page = client.get("/docs/api").get_data(as_text=True)
    document = client.get("/api/v1/openapi.json").get_json()
    for path, ops in document["paths"].items():
        for method, operation in ops.items():
            assert f'id="{operation["operationId"]}"' in page
            assert f"{method.upper()} {path}" in page
    assert 'id="problem-412"' in page


def test_every_issue_streams_as_ndjson_in_batches(api, acme, monkeypatch):
    """The stream answers every issue of the filter, one JSON object per line, in the order made,
    across several batches; other organizations' issues never appear."""
    from app.api import issues as api_issues

    monkeypatch.setattr(api_issues, "STREAM_BATCH", 3)
    for number in range(2, 9):
        acme.add_issue(f"Issue {number}")
    db.session.commit()
    response = api.get("/issues/stream")
    assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
    assert response.is_streamed
    lines = response.get_data(as_text=True).splitlines()
    issues = [json.loads(line) for line in lines]
    assert [issue["key"] for issue in issues] == [f"WEB-{n}" for n in range(1, 9)]
    assert issues[0] == api.get("/issues/WEB-1").get_json()
    assert "Beta's secret" not in response.get_data(as_text=True)
    only = api.get("/issues/stream?state=todo&project=WEB").get_data(as_text=True).splitlines()
    assert len(only) == 8
    assert api.get("/issues/stream?project=NOPE").get_data() == b""


def test_the_stream_is_sent_as_it_is_read_with_the_access_log_on(api, acme, monkeypatch):
    """With the access log written (production's level), the stream still goes out a batch at a
    time: no Content-Length, several chunks, the last batch read only when it is reached."""
    import logging

    from app.api import issues as api_issues

    monkeypatch.setattr(api_issues, "STREAM_BATCH", 3)
    monkeypatch.setattr(logging.getLogger("worklane.access"), "level", logging.INFO)
    for number in range(2, 9):
        acme.add_issue(f"Issue {number}")
    db.session.commit()
    response = api.get("/issues/stream", buffered=False)
    assert response.status_code == 200 and "Content-Length" not in response.headers
    chunks = [chunk for chunk in response.response if chunk]
    assert len(chunks) == 3 and sum(chunk.count(b"\n") for chunk in chunks) == 8
