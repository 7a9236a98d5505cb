"""Organization API keys in the settings: made through the rendered form and shown once, kept
only as a hash, limited in lifetime, revoked, revoked when their maker leaves, and refused at
the API once expired or revoked."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, update
from werkzeug.datastructures import MultiDict

from app.apikeys import services as api_keys
from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import ApiKey, AuditEvent, Membership
from app.models.base import utcnow
from tests.accounts import login
from tests.factories import make_acme
from tests.support.api import Api, make_key
from tests.support.forms import parse_forms

KEYS = "/acme/settings/api-keys"
TOKEN = re.compile(r"wlk_[0-9A-Za-z]{60}")


@pytest.fixture
def acme(db_session):
    """Acme with an admin (ava@), a member (grace@) and a viewer."""
    team = make_acme({"ava@example.com": "admin", "grace@example.com": "member", "vic@example.com": "viewer"})
    ids = (team.id, team.owner.id, {email: user.id for email, user in team.people.items()})
    db_session.commit()
    return ids


def _submit(client, page_url, action_path, changes=None, extra=()):
    """Submit the form posting to ``action_path`` as the page renders it, with ``changes`` to its
    fields and ``extra`` (name, value) pairs for boxes ticked."""
    page = client.get(page_url)
    assert page.status_code == 200, page.status_code
    forms = [f for f in parse_forms(page.get_data(as_text=True), page_url) if f.method == "POST"]
    (form,) = [f for f in forms if urlsplit(f.action).path == action_path]
    changes = changes or {}
    pairs = [(name, changes.get(name, value)) for name, value in form.submission()]
    sent = {name for name, _ in pairs}
    pairs += [(name, value) for name, value in changes.items() if name not in sent]
    names = {control.name for control in form.controls}
    for name, _value in extra:
        assert name in names, f"the form has no {name}"
    method, action = form.target()
    return client.open(action, method=method, data=MultiDict(pairs + list(extra)))


def _audit(org_id, prefix):
    with tenant_context(org_id):
        found = select(AuditEvent.action).where(AuditEvent.action.like(prefix)).order_by(AuditEvent.sequence)
        return list(db.session.scalars(found))


def test_an_admin_makes_a_key_that_is_shown_once_and_stored_as_a_hash(client, acme):
    """The form as rendered, two scopes ticked: the key is on the answer once, works at the API,
    is stored as its SHA-256 with its last four characters, and is audited."""
    org_id, _owner, _people = acme
    login(client, "ava@example.com")
    response = _submit(
        client,
        KEYS,
        KEYS,
        {"key-name": "Release script"},
        extra=[("key-scopes", "issues:read"), ("key-scopes", "projects:read")],
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    (token,) = set(TOKEN.findall(response.get_data(as_text=True)))
    assert api_keys.well_formed(token)
    listing = client.get(KEYS).get_data(as_text=True)
    assert token not in listing and f"wlk_…{token[-4:]}" in listing and "Release script" in listing
    with tenant_context(org_id):
        key = db.session.scalar(select(ApiKey))
    assert key.token_hash == hashlib.sha256(token.encode()).hexdigest() and key.last_four == token[-4:]
    assert key.scope_list == ("issues:read", "projects:read")
    assert _audit(org_id, "api_key.%") == ["api_key.created"]
    assert Api(client, token).get("/projects").status_code == 200
    listing = client.get(KEYS).get_data(as_text=True)
    assert "from 127.0.0.1" in listing  # its last use, and where from


def test_a_key_needs_a_name_and_a_scope(client, acme):
    """Without a name or a scope the form says so (422) and no key is made."""
    org_id, *_ = acme
    login(client, "ava@example.com")
    response = _submit(client, KEYS, KEYS, {"key-name": ""})
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert "Give the key a name" in text and "Choose at least one scope" in text
    with tenant_context(org_id):
        assert db.session.scalar(select(ApiKey)) is None


def test_the_organization_limits_how_long_keys_live(client, acme):
    """Once the longest lifetime is 30 days, the form offers no longer one, and a longer one sent
    anyway is refused."""
    org_id, *_ = acme
    login(client, "owner@example.com")
    assert _submit(client, KEYS, f"{KEYS}/lifetime", {"max_days": "30"}).status_code == 303
    page = client.get(KEYS).get_data(as_text=True)
    offered = re.findall(r'<option[^>]*value="(\d+)"', page)
    assert offered and max(int(days) for days in offered) == 30
    refused = _submit(
        client, KEYS, KEYS, {"key-name": "Long", "key-days": "365"}, extra=[("key-scopes", "admin")]
    )
    assert refused.status_code == 422
    assert _audit(org_id, "api_key.%") == ["api_key.max_days_changed"]
    bad = _submit(client, KEYS, f"{KEYS}/lifetime", {"max_days": "5000"})
    assert bad.status_code == 422 and "Choose between 1 and 730 days" in bad.get_data(as_text=True)


def test_members_and_viewers_cannot_manage_keys(app, acme):
    """The settings page and its actions are for owners and admins."""
    for email in ("grace@example.com", "vic@example.com"):
        client = app.test_client()
        login(client, email)
        assert client.get(KEYS).status_code == 403


def test_a_revoked_key_is_refused_at_once(client, acme):
    """Revoking asks first; afterwards the key gets a 401 saying it was revoked; audited."""
    org_id, owner, _ = acme
    token = make_key(org_id, owner)
    api = Api(client, token)
    assert api.get("/projects").status_code == 200
    login(client, "owner@example.com")
    with tenant_context(org_id):
        key_id = db.session.scalar(select(ApiKey.id))
    page = client.get(f"{KEYS}/{key_id}/revoke")
    assert page.status_code == 200 and "Revoke the key" in page.get_data(as_text=True)
    assert _submit(client, f"{KEYS}/{key_id}/revoke", f"{KEYS}/{key_id}/revoke").status_code == 303
    response = api.get("/projects")
    assert response.status_code == 401 and "revoked" in response.get_json()["detail"]
    assert _audit(org_id, "api_key.%") == ["api_key.created", "api_key.revoked"]


def test_an_expired_key_is_refused_with_its_date(client, acme):
    """A key past its expiry gets a 401 naming the day it expired."""
    org_id, owner, _ = acme
    token = make_key(org_id, owner)
    with tenant_context(org_id):
        db.session.execute(update(ApiKey).values(expires_at=utcnow() - timedelta(days=1)))
    db.session.commit()
    response = Api(client, token).get("/projects")
    assert response.status_code == 401 and "expired on" in response.get_json()["detail"]


def test_a_members_keys_are_revoked_when_they_are_removed(client, acme):
    """An admin's key stops when the admin is removed: revoked, audited, refused at the API."""
    org_id, _owner, people = acme
    token = make_key(org_id, people["ava@example.com"])
    assert Api(client, token).get("/projects").status_code == 200
    login(client, "owner@example.com")
    with tenant_context(org_id):
        membership_id = db.session.scalar(
            select(Membership.id).where(Membership.user_id == people["ava@example.com"])
        )
    path = f"/acme/members/{membership_id}/remove"
    assert _submit(client, path, path).status_code in (302, 303)
    with tenant_context(org_id):
        assert db.session.scalar(select(ApiKey.revoked_at)) is not None
    response = Api(client, token).get("/projects")
    assert response.status_code == 401
    assert "api_key.revoked" in _audit(org_id, "api_key.%")


def test_a_key_follows_its_makers_role(client, acme):
    """A key made by an admin who is then made a viewer can read but no longer write."""
    org_id, _owner, people = acme
    api = Api(client, make_key(org_id, people["ava@example.com"]))
    with tenant_context(org_id):
        membership = db.session.scalar(
            select(Membership).where(Membership.user_id == people["ava@example.com"])
        )
        membership.role = "viewer"
        db.session.commit()  # the cached account follows the membership
    assert api.get("/projects").status_code == 200
    response = api.post("/issues", json={"project": "WEB", "title": "x"})
    assert response.status_code == 403 and "viewer" in response.get_json()["detail"]
