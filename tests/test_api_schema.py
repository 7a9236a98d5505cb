"""Schemathesis against the API's own OpenAPI document: for every operation, requests made up
from the document (a bounded number each, valid and invalid), sent with a key of an organization
holding a project, an issue and a label. Its default checks: never a 5xx, and every answer's
status, media type, headers and body as the document says.

Schemathesis's pytest plugin loads a schema from a fixture through a pytest internal that
pytest 9 no longer has, so the test walks the operations itself, each with Hypothesis."""

from __future__ import annotations

import dataclasses

import schemathesis
from hypothesis import HealthCheck, given, settings
from sqlalchemy import delete

from app.core.tenancy import unscoped
from app.extensions import db
from app.models import ApiIdempotentRequest
from app.plans import catalog
from tests.factories import make_acme
from tests.support.api import make_key

#: Examples per operation: enough to reach every parameter, within the suite's time.
EXAMPLES = 40


def test_every_operation_answers_as_documented(app, db_session, monkeypatch):
    """No 5xx, and status, media type, headers and body match the OpenAPI document, for each
    operation; every operation is tried."""
    unlimited = dataclasses.replace(catalog.BUSINESS, api_requests_per_minute=None)
    monkeypatch.setitem(catalog.PLANS, "business", unlimited)  # the examples are not throttled
    team = make_acme({"grace@example.com": "member"}, projects=("WEB",), labels=("bug",))
    team.add_issue("Broken login", "On Safari.")
    org_id, owner_id = team.id, team.owner.id
    db_session.commit()
    headers = {"Authorization": f"Bearer {make_key(org_id, owner_id, scopes=['admin'])}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    tried, failures = [], {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            try:
                case.call_and_validate(headers=headers)
            finally:
                # Each example stands alone: an Idempotency-Key made up again for another body
                # is a new key, not the reuse (422) it would be within one client's day.
                with unscoped("each example starts without the keys of the examples before"):
                    db.session.execute(delete(ApiIdempotentRequest))
                db.session.commit()
                db.session.remove()

        try:
            check()
        except Exception as failure:  # every operation is tried; all failures are reported
            failures[operation.label] = str(failure)[:2000]
        tried.append(operation.label)
    assert len(tried) >= 13
    assert failures == {}
