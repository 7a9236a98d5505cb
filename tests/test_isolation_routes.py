"""The isolation harness, route level: every tenant route, found in the URL map, refuses B's data."""

from __future__ import annotations

import json
import uuid

import pytest
from flask import abort
from sqlalchemy import select

from app.core.tenancy import tenant_context, unscoped
from app.extensions import db
from app.models import Issue, Membership, Organization
from app.orgs.context import tenant_blueprint
from tests.accounts import OrgRef, login, make_org, make_user
from tests.isolation import (
    RowBuilder,
    anonymous_enqueue_problems,
    api_route_problems,
    api_rules,
    route_problems,
    tenant_models,
    tenant_rules,
    untenanted_object_routes,
)
from tests.support.api import Api, make_key


def _row_dict(obj) -> dict:
    """Column values, plus the attributes that name the object in URLs (``Issue.ref``)."""
    values = {column.key: getattr(obj, column.key) for column in obj.__table__.columns}
    for name in getattr(type(obj), "__url_keys__", ()):
        values[name] = getattr(obj, name)
    return values


@pytest.fixture
def two_orgs(app, db_session):
    """A (where the test user is owner) and B (full of recognisable data the user must never see).

    Built in an app context (encrypted columns read their keys from the app), committed before it
    ends: the end of an app context removes the session, as the end of a request does."""
    with app.app_context():
        user_a = make_user("member-of-a@example.com", name="Alice of A")
        user_b = make_user("secret-b-owner@example.com", name="Bertha Secret")
        org_a = make_org(user_a, "Alpha Org", "alpha")
        org_b = make_org(user_b, "Beta Secret Org", "beta-secret")
        builder = RowBuilder(db_session)
        b_objects, markers = {}, {"Beta Secret Org", "Bertha Secret", "secret-b-owner@example.com"}
        with tenant_context(org_a.id):
            for model in tenant_models():
                builder.build(model, None)
        with tenant_context(org_b.id):
            for model in tenant_models():
                row = builder.build(model, None)
                b_objects[model] = _row_dict(row)
                markers |= {v for v in b_objects[model].values() if isinstance(v, str) and len(v) >= 8}
            b_objects[Membership] = _row_dict(db_session.scalars(select(Membership)).first())
        db_session.commit()
        return (
            OrgRef(org_a.id, org_a.slug, org_a.name),
            OrgRef(org_b.id, org_b.slug, org_b.name),
            b_objects,
            markers,
        )


def _snapshot_of(app, db_session, org_b):
    def snapshot():
        db_session.expire_all()
        state = {"org": _row_dict(db_session.get(Organization, org_b.id))}
        with app.app_context(), unscoped("isolation harness snapshot"):
            for model in tenant_models():
                rows = db_session.scalars(select(model).where(model.tenant_id == org_b.id)).all()
                state[model.__name__] = sorted(
                    json.dumps(_row_dict(r), default=str, sort_keys=True) for r in rows
                )
        return state

    return snapshot


def test_every_object_route_is_a_tenant_route(app):
    """Every route taking an object key lives under /<org_slug>/ (or is justified as global)."""
    assert untenanted_object_routes(app) == []


def test_harness_found_tenant_routes(app):
    """The harness has tenant routes to check, with and without object keys."""
    rules = tenant_rules(app)
    assert len(rules) >= 8
    assert any(len(rule.arguments) > 1 for rule in rules)


def test_tenant_routes_refuse_other_tenants(app, client, db_session, two_orgs):
    """As a member of A: B's slug and B's keys answer 404, show none of B's data, change nothing."""
    org_a, org_b, b_objects, markers = two_orgs
    login(client, "member-of-a@example.com")
    assert client.get("/alpha/").status_code == 200
    problems = route_problems(
        app, client, org_a, org_b, b_objects, markers, _snapshot_of(app, db_session, org_b)
    )
    assert problems == []


def test_api_routes_refuse_other_tenants(app, client, db_session, two_orgs):
    """With A's API key: B's objects, named by every key they have, answer 404 on every API route,
    no answer shows B's data, and B's data stays as it was."""
    org_a, org_b, b_objects, markers = two_orgs
    with app.app_context(), tenant_context(org_a.id):
        owner = db.session.scalar(select(Membership.user_id).where(Membership.role == "owner"))
    token = make_key(org_a.id, owner, scopes=["admin"])
    assert Api(client, token).get("/issues").status_code == 200
    problems = api_route_problems(
        app, client, token, b_objects, markers, _snapshot_of(app, db_session, org_b)
    )
    assert problems == []
    assert len(api_rules(app)) >= 8


def test_harness_catches_an_unscoped_route(migrated_env, make_app, db_session, two_orgs):
    """A tenant route that reads another tenant's row through the escape hatch makes the harness fail."""
    app = make_app(migrated_env)
    leaky = tenant_blueprint("leaky", __name__, url_prefix="/leaky")

    @leaky.get("/<uuid:membership_id>")
    def peek(membership_id):
        with unscoped("a deliberate bug"):
            membership = db.session.scalar(select(Membership).where(Membership.id == membership_id))
            if membership is None:
                abort(404)
            return f"{membership.user.name} {membership.user.email}"

    app.register_blueprint(leaky)
    org_a, org_b, b_objects, markers = two_orgs
    client = app.test_client()
    login(client, "member-of-a@example.com")
    problems = route_problems(
        app, client, org_a, org_b, b_objects, markers, _snapshot_of(app, db_session, org_b)
    )
    assert any("/leaky/" in p and "not 404" in p for p in problems)
    assert any("/leaky/" in p and "shows B's data" in p for p in problems)


def test_harness_catches_an_api_route_that_reads_another_tenant(migrated_env, make_app, db_session, two_orgs):
    """An API route that finds an issue through the escape hatch makes the API harness fail."""
    app = make_app(migrated_env)

    def peek(issue):
        try:
            issue_id = uuid.UUID(issue)
        except ValueError:
            abort(404)
        with unscoped("a deliberate bug"):
            found = db.session.scalar(select(Issue).where(Issue.id == issue_id))
        if found is None:
            abort(404)
        return {"title": found.title}

    app.add_url_rule("/api/v1/peek/<issue>", "api.peek", peek)  # the API blueprint's hooks run for it
    org_a, org_b, b_objects, markers = two_orgs
    with app.app_context(), tenant_context(org_a.id):
        owner = db.session.scalar(select(Membership.user_id).where(Membership.role == "owner"))
    token = make_key(org_a.id, owner, scopes=["admin"])
    problems = api_route_problems(
        app, app.test_client(), token, b_objects, markers, _snapshot_of(app, db_session, org_b)
    )
    assert any("/peek/" in p and "not 404" in p for p in problems)
    assert any("/peek/" in p and "shows B's data" in p for p in problems)


def test_harness_catches_an_unjustified_global_object_route(migrated_env, make_app):
    """A route outside the organization prefix that takes an object id is reported."""
    app = make_app(migrated_env)
    app.add_url_rule("/notes/<uuid:note_id>", "notes.show", lambda note_id: str(uuid.uuid4()))
    assert any("notes.show" in p for p in untenanted_object_routes(app))


def test_no_anonymous_request_queues_work(app, db_session, redis_client):
    """Every route, requested and posted without a login, queues no job (mail to a typed address aside)."""
    make_org(make_user("owner@example.com"), "Acme", "acme")
    db_session.commit()
    assert anonymous_enqueue_problems(app, redis_client, "acme") == []


def test_harness_catches_an_anonymous_route_that_queues_work(migrated_env, make_app, redis_client):
    """A route that queues a job for anyone makes the anonymous-work check fail."""
    from app.core.queue.queues import enqueue

    app = make_app(migrated_env)

    def open_door():
        enqueue("tests.support.jobs.count_run", "anyone")
        return "queued"

    app.add_url_rule("/open-door", "open_door", open_door, methods=["POST"])
    problems = anonymous_enqueue_problems(app, redis_client, "acme")
    assert any("/open-door" in p and "count_run" in p for p in problems), problems
