"""The Markdown preview of a description or comment: sanitized, mentions of the organization's
own members linked, for those who may write, and a clear answer to anything else."""

from __future__ import annotations

import pytest

from tests.accounts import login
from tests.conftest import csrf_token_from
from tests.factories import make_acme, make_beta


@pytest.fixture
def acme(db_session):
    """Acme with Grace a member and Vic a viewer, Beta beside it (Bert's handle is ``bert``): Grace's id."""
    acme = make_acme({"grace@example.com": "member", "vic@example.com": "viewer"})
    make_beta()
    db_session.commit()
    return {"grace": acme.people["grace@example.com"].id}


def _preview(client, **form):
    token = csrf_token_from(client.get("/acme/projects/WEB/issues/new").get_data(as_text=True))
    return client.post("/acme/preview", data={"csrf_token": token, **form})


def test_a_description_previews_sanitized_with_members_linked(client, acme):
    """Bold shows bold, a script is dropped, @grace links to her issues and @bert (another
    organization's) stays text."""
    login(client, "grace@example.com")
    text = "**Bold** <script>alert(1)</script> for @grace and @bert"
    response = _preview(client, preview_field="description", description=text)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<strong>Bold</strong>" in html and "<script" not in html
    grace = acme["grace"]
    assert f'href="/acme/issues?assignee={grace}"' in html
    assert "@bert" in html and "?assignee=" in html and html.count("?assignee=") == 1


def test_a_comment_previews_and_limits_are_said(client, acme):
    """A comment previews; an empty text, one too long and an unknown field each get a message."""
    login(client, "grace@example.com")
    assert "<em>soon</em>" in _preview(client, preview_field="body", body="*soon*").get_data(as_text=True)
    assert "Nothing to preview yet." in _preview(client, preview_field="body", body="  ").get_data(
        as_text=True
    )
    too_long = _preview(client, preview_field="body", body="x" * 20_001)
    assert too_long.status_code == 200 and "at most 20,000 characters" in too_long.get_data(as_text=True)
    unknown = _preview(client, preview_field="title", title="x")
    assert unknown.status_code == 400 and "no such text" in unknown.get_data(as_text=True)


def test_only_writers_preview_and_the_form_token_is_required(client, app, acme):
    """A viewer is refused (403), and a post without the form's token is refused (400)."""
    login(client, "vic@example.com")
    token = csrf_token_from(client.get("/acme/issues").get_data(as_text=True))
    viewer = client.post("/acme/preview", data={"csrf_token": token, "preview_field": "body", "body": "x"})
    assert viewer.status_code == 403
    other = app.test_client()
    login(other, "grace@example.com")
    assert other.post("/acme/preview", data={"preview_field": "body", "body": "x"}).status_code == 400
