"""The API's conventions a client relies on: Idempotency-Key (the first answer again; another
request refused; one still running refused; a failed one gives the key up; a day's keeping) and
the per-key rate limit with its RateLimit headers and Retry-After."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import ApiIdempotentRequest, ApiKey, Issue, Organization
from app.models.base import utcnow
from app.plans import catalog
from tests.factories import make_acme
from tests.support.api import Api, make_key


@pytest.fixture
def acme(db_session):
    team = make_acme()
    ids = (team.id, team.owner.id)
    db_session.commit()
    return ids


@pytest.fixture
def api(client, acme):
    return Api(client, make_key(*acme))


def _issues(org_id) -> int:
    with tenant_context(org_id):
        return db.session.scalar(select(func.count()).select_from(Issue))


NEW = {"project": "WEB", "title": "Made once"}


def test_the_same_request_with_the_same_key_gets_the_first_answer(api, acme):
    """Sent three times with one Idempotency-Key: one issue, three identical answers, replays marked."""
    first = api.post("/issues", json=NEW, headers={"Idempotency-Key": "release-42"})
    assert first.status_code == 201
    for _ in range(2):
        again = api.post("/issues", json=NEW, headers={"Idempotency-Key": "release-42"})
        assert again.status_code == 201 and again.get_json() == first.get_json()
        assert (
            again.headers["Idempotent-Replayed"] == "true" and again.headers["ETag"] == first.headers["ETag"]
        )
    assert "Idempotent-Replayed" not in first.headers
    assert _issues(acme[0]) == 1
    assert api.post("/issues", json=NEW, headers={"Idempotency-Key": "release-43"}).status_code == 201
    assert _issues(acme[0]) == 2


def test_the_same_key_with_another_request_is_refused(api, acme):
    """Another body, or another path, with a used key: 422, nothing made."""
    assert api.post("/issues", json=NEW, headers={"Idempotency-Key": "k1"}).status_code == 201
    response = api.post("/issues", json={**NEW, "title": "Other"}, headers={"Idempotency-Key": "k1"})
    assert response.status_code == 422 and "another request" in response.get_json()["detail"]
    response = api.post("/labels", json={"name": "x"}, headers={"Idempotency-Key": "k1"})
    assert response.status_code == 422
    assert _issues(acme[0]) == 1


def test_a_key_still_in_use_is_refused_with_409(api, acme):
    """While the first request with a key runs (its claim has no answer yet), the next gets 409."""
    org_id, _owner = acme
    with tenant_context(org_id):
        key_id = db.session.scalar(select(ApiKey.id))
        body = json.dumps(NEW).encode()
        db.session.add(
            ApiIdempotentRequest(
                api_key_id=key_id,
                idempotency_key="busy",
                method="POST",
                path="/api/v1/issues",
                body_hash=hashlib.sha256(body).hexdigest(),
            )
        )
        db.session.flush()
    db.session.commit()
    response = api.client.post(
        "/api/v1/issues",
        data=json.dumps(NEW),
        headers={**api._headers(None), "Idempotency-Key": "busy", "Content-Type": "application/json"},
    )
    assert response.status_code == 409 and "being processed" in response.get_json()["detail"]
    assert _issues(org_id) == 0


def test_a_failed_request_gives_its_key_up(api, acme):
    """A refused request (404: no such project) keeps nothing: the corrected request with the same
    key is made."""
    bad = api.post("/issues", json={**NEW, "project": "NOPE"}, headers={"Idempotency-Key": "fix-me"})
    assert bad.status_code == 404
    good = api.post("/issues", json=NEW, headers={"Idempotency-Key": "fix-me"})
    assert good.status_code == 201 and "Idempotent-Replayed" not in good.headers
    assert _issues(acme[0]) == 1


def test_a_key_is_kept_for_a_day(api, acme):
    """Past its day a key is free again: the request is made anew."""
    assert api.post("/issues", json=NEW, headers={"Idempotency-Key": "daily"}).status_code == 201
    with tenant_context(acme[0]):
        db.session.execute(update(ApiIdempotentRequest).values(created_at=utcnow() - timedelta(hours=25)))
    db.session.commit()
    again = api.post("/issues", json={**NEW, "title": "Tomorrow"}, headers={"Idempotency-Key": "daily"})
    assert again.status_code == 201 and again.get_json()["title"] == "Tomorrow"


def test_a_malformed_key_is_a_400(api):
    """An Idempotency-Key with spaces or too long is refused with the rule."""
    response = api.post("/issues", json=NEW, headers={"Idempotency-Key": "has space"})
    assert response.status_code == 400 and "visible ASCII" in response.get_json()["detail"]


def _on_plan(org_id, plan: str) -> None:
    with tenant_context(org_id):
        db.session.get(Organization, org_id).plan = plan
        db.session.commit()


def test_each_key_has_its_plans_rate_limit_with_headers(app, client, acme, monkeypatch):
    """On a plan of 3 requests a minute: three answers counting down in RateLimit, the fourth a
    429 with Retry-After and a reason; another key of the organization is counted apart."""
    monkeypatch.setitem(catalog.PLANS, "free", dataclasses.replace(catalog.FREE, api_requests_per_minute=3))
    _on_plan(acme[0], "free")
    api = Api(client, make_key(*acme))
    for remaining in (2, 1, 0):
        response = api.get("/projects")
        assert response.status_code == 200
        assert response.headers["RateLimit-Policy"] == '"key";q=3;w=60'
        assert re.fullmatch(rf'"key";r={remaining};t=\d+', response.headers["RateLimit"])
    refused = api.get("/projects")
    assert refused.status_code == 429 and refused.mimetype == "application/problem+json"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "3 requests a minute" in refused.get_json()["detail"]
    assert refused.headers["RateLimit"].startswith('"key";r=0;')
    other = Api(client, make_key(*acme, name="Other"))
    assert other.get("/projects").status_code == 200


def test_kept_answers_are_purged_after_their_day(app, api, acme):
    """The hourly purge deletes answers kept over a day, and only those."""
    from app.apikeys.jobs import purge_idempotent_requests

    assert api.post("/issues", json=NEW, headers={"Idempotency-Key": "old"}).status_code == 201
    assert (
        api.post("/issues", json={**NEW, "title": "New"}, headers={"Idempotency-Key": "new"}).status_code
        == 201
    )
    with tenant_context(acme[0]):
        db.session.execute(
            update(ApiIdempotentRequest)
            .where(ApiIdempotentRequest.idempotency_key == "old")
            .values(created_at=utcnow() - timedelta(hours=25))
        )
    db.session.commit()
    with app.app_context():
        assert purge_idempotent_requests() == 1
    with tenant_context(acme[0]):
        assert list(db.session.scalars(select(ApiIdempotentRequest.idempotency_key))) == ["new"]


def test_the_plan_names_the_keys_rate(client, acme):
    """A Team organization's keys may make the Team plan's 600 requests a minute."""
    _on_plan(acme[0], "team")
    response = Api(client, make_key(*acme)).get("/projects")
    assert response.headers["RateLimit-Policy"] == '"key";q=600;w=60'


def test_the_plans_quotas_hold_through_the_api(client, acme):
    """On a plan of 3 projects, the API's 4th project is a 403 with the plan's reason, and nothing
    is made (the organization has WEB; two more fit)."""
    _on_plan(acme[0], "free")
    api = Api(client, make_key(*acme))
    for key in ("TWO", "THREE"):
        assert api.post("/projects", json={"key": key, "name": key.title()}).status_code == 201
    refused = api.post("/projects", json={"key": "FOUR", "name": "Four"})
    assert refused.status_code == 403 and "includes 3 active projects" in refused.get_json()["detail"]
    assert api.get("/projects/FOUR").status_code == 404


def test_an_address_sending_keys_that_do_not_work_is_slowed_down(app, client, acme, monkeypatch):
    """After three refused keys a minute, the address gets a 429 even with a good key; another
    address is not affected."""
    monkeypatch.setitem(app.config, "API_REFUSED_KEYS_PER_IP", "3 per minute")
    from app.apikeys.services import new_token

    guess = Api(client, new_token(acme[0]))  # well formed, never made
    for _ in range(3):
        assert guess.get("/projects").status_code == 401
    good = Api(client, make_key(*acme))
    refused = good.get("/projects")
    assert refused.status_code == 429 and "keys that do not work" in refused.get_json()["detail"]
    assert refused.headers["Retry-After"] == "60"
    elsewhere = good.get("/projects", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert elsewhere.status_code == 200
