"""The isolation harness, cache level: no value cached for one tenant is served to another."""

from __future__ import annotations

import re

import pytest

from app.core.tenancy import tenant_context
from app.extensions import cache
from tests.accounts import OrgRef, add_member, login, make_org, make_user
from tests.isolation import READ_OPERATIONS, cache_key_problems, record_cache_use


def _member_count(html: str) -> int:
    return int(re.search(r'class="stat__value">(\d+)<', html).group(1))


@pytest.fixture
def cache_records(app, monkeypatch):
    with app.app_context():  # the session app's cache backend, not the last app built
        backend = cache.cache
    return record_cache_use(monkeypatch, backend)


def test_cached_values_never_cross_tenants(app, db_session, cache_records):
    """A's and B's dashboards cache their own values under their own keys and never read the other's."""
    alice, bert = make_user("alice@example.com"), make_user("bert@example.com")
    org_a = make_org(alice, "Alpha", "alpha")
    make_org(bert, "Beta", "beta")
    add_member(org_a, make_user("second-a@example.com"), "member")
    db_session.commit()
    client_a, client_b = app.test_client(), app.test_client()
    login(client_a, "alice@example.com")
    login(client_b, "bert@example.com")
    for _ in range(2):  # a miss, then a hit
        assert _member_count(client_a.get("/alpha/").get_data(as_text=True)) == 2
        assert _member_count(client_b.get("/beta/").get_data(as_text=True)) == 1
    assert any(op == "set" and key.startswith("t:") for op, key, _ in cache_records)
    assert any(op in READ_OPERATIONS and key.startswith("t:") for op, key, _ in cache_records)
    assert cache_key_problems(cache_records) == []


def test_an_edit_shows_up_at_once(app, client, db_session):
    """After a membership change the dashboard shows the new count on the next request."""
    alice = make_user("alice@example.com")
    org_a = make_org(alice, "Alpha", "alpha")
    db_session.commit()
    org_ref = OrgRef(org_a.id, org_a.slug, org_a.name)
    login(client, "alice@example.com")
    assert _member_count(client.get("/alpha/").get_data(as_text=True)) == 1

    with tenant_context(org_ref.id):
        add_member(org_ref, make_user("new@example.com"), "viewer")
        db_session.commit()
    assert _member_count(client.get("/alpha/").get_data(as_text=True)) == 2


def test_harness_catches_a_key_without_tenant(app, db_session, cache_records):
    """A value cached under a key that names no tenant, while a tenant is set, is reported."""
    alice = make_user("alice@example.com")
    org_a = make_org(alice, "Alpha", "alpha")
    with app.app_context(), tenant_context(org_a.id):
        cache.set("role-counts", {"owner": 1})
    problems = cache_key_problems(cache_records)
    assert problems and "names no tenant" in problems[0]


def test_cached_issue_lists_never_cross_tenants(app, db_session, cache_records):
    """Two tenants with a project of the same key each get their own cached list rows."""
    from app.issues import services as issues
    from app.models import Project

    alice, bert = make_user("alice@example.com"), make_user("bert@example.com")
    orgs = {"alpha": make_org(alice, "Alpha", "alpha"), "beta": make_org(bert, "Beta", "beta")}
    for slug, owner in (("alpha", alice), ("beta", bert)):
        with tenant_context(orgs[slug].id):
            project = Project(key="WEB", name="Website")
            db_session.add(project)
            db_session.flush()
            issues.create_issue(project, owner, f"Secret plan of {slug}")
    db_session.commit()
    client_a, client_b = app.test_client(), app.test_client()
    login(client_a, "alice@example.com")
    login(client_b, "bert@example.com")
    for _ in range(2):  # a miss, then a hit
        page_a = client_a.get("/alpha/projects/WEB/issues").get_data(as_text=True)
        page_b = client_b.get("/beta/projects/WEB/issues").get_data(as_text=True)
        assert "Secret plan of alpha" in page_a and "Secret plan of beta" not in page_a
        assert "Secret plan of beta" in page_b and "Secret plan of alpha" not in page_b
    assert any(op in READ_OPERATIONS and ":issue-rows:" in key for op, key, _ in cache_records)
    assert cache_key_problems(cache_records) == []
