"""Calling the JSON API as a client does: a key made by the service the settings page uses, sent
as a bearer token."""

from __future__ import annotations

from app.apikeys import services as api_keys
from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import Organization, User

ALL_SCOPES = [
    "projects:read",
    "projects:write",
    "issues:read",
    "issues:write",
    "comments:read",
    "comments:write",
    "labels:write",
    "members:read",
]


def make_key(org_id, user_id, scopes=None, days: int = 30, name: str = "Script") -> str:
    """A key of the organization made by the user, committed; returns its token."""
    with tenant_context(org_id):
        org, user = db.session.get(Organization, org_id), db.session.get(User, user_id)
        _key, token = api_keys.create(org, user, name, scopes or ALL_SCOPES, days)
        db.session.flush()  # the audit entry too, while the organization is set (row-level security)
    db.session.commit()
    return token


class Api:
    """A test client that sends ``token`` with every request."""

    def __init__(self, client, token: str):
        self.client, self.token = client, token

    def _headers(self, headers):
        return {"Authorization": f"Bearer {self.token}", **(headers or {})}

    def get(self, path, headers=None, **kwargs):
        return self.client.get(f"/api/v1{path}", headers=self._headers(headers), **kwargs)

    def post(self, path, json=None, headers=None, **kwargs):
        return self.client.post(f"/api/v1{path}", json=json, headers=self._headers(headers), **kwargs)

    def patch(self, path, json=None, headers=None, **kwargs):
        return self.client.patch(f"/api/v1{path}", json=json, headers=self._headers(headers), **kwargs)
