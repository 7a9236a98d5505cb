"""Cached pages follow the data: every model's change expires the cached pages that show it.

The models are discovered from the SQLAlchemy registry, so a model added later is checked
without editing this file: it must declare the cached topics its rows are shown in
(``__cache_topics__``) or be listed below as shown on no cached page, with the reason.
"""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from datetime import timedelta

import pytest
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Mapped, mapped_column

from app.core import cache, cache_topics
from app.core.encryption import encrypted_columns
from app.core.tenancy import TenantMixin, is_tenant_model, tenant_context
from app.issues import services as issues
from app.models import Label, Membership, Notification, Project, SavedView, User
from app.models.base import utcnow
from tests.accounts import login, make_org, make_user, post_form
from tests.conftest import CSRF_TOKEN
from tests.factories import make_acme
from tests.isolation import RowBuilder, all_mappers

#: Models shown on no cached page (or fragment), with the reason. Everything else declares
#: its topics.
NOT_ON_CACHED_PAGES = {
    "AuditEvent": "an append-only record, read afresh by the audit log page and its exports (never cached)",
    "AuditCheckpoint": "a signed checkpoint of the audit chain, read only by `flask audit verify`",
    "FeatureFlag": "read through each process's memo under the global flags version, which an operator's "
    "change moves (app/flags/state.py); the page it gates, the reports, is not cached whole",
    "HeldSlug": "a deleted organization's address, read only when an organization is made",
    "ReportSnapshot": "read on each report page view, which compares its data version",
    "Task": "read live by the task pages and the system check's, which poll it",
    "ImportProblem": "listed on an import task's page and its CSV download, which are not cached",
    "OutboxMail": "mail waiting to be sent, shown on no page",
    "TenantOutboxMail": "an organization's mail waiting to be sent, shown on no page",
    "RecoveryCode": "checked at sign-in and counted on the two-factor page, which is not cached",
    "ApiKey": "read by the API on each call and listed on the API keys settings page, neither cached",
    "ApiIdempotentRequest": "a POST's kept answer, read only by the API when its Idempotency-Key comes again",
    "SsoConnection": "read by the single sign-on pages and settings, which are not cached",
    "SsoIdentity": "read when someone signs in through a provider, shown on no page",
    "SsoDomain": "listed on the single sign-on settings page, which is not cached",
    "VerifiedDomain": "read when someone continues with SSO or joins by signing in, shown on no cached page",
    "WebhookMessage": "an event sent to webhooks, shown in the delivery log, which is not cached",
    "WebhookDelivery": "listed in an endpoint's delivery log, which is not cached",
    "WebhookAttempt": "shown on a delivery's page, which is not cached",
}

#: Columns a generic edit leaves alone, with the reason.
UNTOUCHED_COLUMNS = {
    ("users", "session_epoch"): "changing it ends the viewer's session (tested elsewhere)",
    ("memberships", "role"): "a role the app does not know refuses the member (roles tested elsewhere)",
    ("organizations", "slug"): "the pages are addressed by it: they would all answer 404",
    ("projects", "key"): "the project's pages are addressed by it: they would answer 404",
}

PAGES = (
    "/acme/projects/WEB/issues",
    "/acme/projects/WEB/board",
    "/acme/issues",
    "/acme/search?q=login",
    "/acme/",
)


def _models() -> list[type]:
    return [mapper.class_ for mapper in all_mappers()]


def _topic_models() -> list[type]:
    return [model for model in _models() if cache_topics.topics_of(model)]


def declaration_problems(models: list[type]) -> list[str]:
    """Models that neither declare cached topics nor say why no cached page shows them."""
    problems = []
    for model in models:
        name = model.__name__
        if cache_topics.expires_anything(model) and name in NOT_ON_CACHED_PAGES:
            problems.append(f"{name} declares cached topics and is listed as not shown")
        if not cache_topics.expires_anything(model) and not NOT_ON_CACHED_PAGES.get(name):
            problems.append(f"{name} declares no __cache_topics__ and is not listed in NOT_ON_CACHED_PAGES")
    return problems


def test_every_model_says_which_cached_pages_show_it():
    """Each model declares the cached topics it feeds, or is listed as shown on no cached page."""
    known = {model.__name__ for model in _models()}
    stale = [f"{name} is listed but is no model" for name in NOT_ON_CACHED_PAGES if name not in known]
    assert declaration_problems(_models()) + stale == []


def test_the_check_catches_an_undeclared_model():
    """A new tenant model that declares nothing and is not listed is reported."""
    from sqlalchemy.orm import DeclarativeBase

    class Base(DeclarativeBase):
        pass

    class Widget(TenantMixin, Base):
        __tablename__ = "widgets"
        id: Mapped[uuid.UUID] = mapped_column(primary_key=True)

    assert declaration_problems([Widget, Project]) == [
        "Widget declares no __cache_topics__ and is not listed in NOT_ON_CACHED_PAGES"
    ]


# --- the mechanism, model by model ------------------------------------------------------------


def _topics_of_row(model, row) -> list[tuple]:
    """(topic, tenant, part) for each of the row's topics, read while the row is there."""
    return [
        (topic, getattr(row, "tenant_id", None), getattr(row, topic.per) if topic.per else None)
        for topic in cache_topics.topics_of(model)
    ]


def _versions(app, topics) -> dict[tuple, int]:
    """The current version of each topic (in its organization), read from Redis as it is."""
    from app.extensions import redis_connections

    redis = redis_connections.client(app)
    found = {}
    for topic, tenant, part in topics:
        if topic.of_user:
            key = cache.user_topic_key(part, topic.name)
        else:
            key = cache.topic_key_in(tenant, topic.name, *([part] if part is not None else []))
        found[topic, tenant, part] = int(redis.get(app.config["CACHE_KEY_PREFIX"] + key) or 0)
    return found


def _plain_columns(model, skip_constrained: bool):
    """Columns a generic edit may change: no primary or foreign keys, no fixed choices (nor, if
    asked, unique or checked values)."""
    table = model.__table__
    keys = {c.name for con in table.constraints if isinstance(con, UniqueConstraint) for c in con.columns}
    checks = " ".join(str(c.sqltext) for c in table.constraints if isinstance(c, CheckConstraint))
    for column in table.columns:
        if (
            column.primary_key
            or column.foreign_keys
            or column.info.get("choices")
            or (table.name, column.name) in UNTOUCHED_COLUMNS
            or (skip_constrained and (column.unique or column.name in keys or column.name in checks))
        ):
            continue
        yield column


def _editable_column(model):
    """A column a generic edit can change to another value of its type (None: there is none)."""
    for column in _plain_columns(model, skip_constrained=True):
        if _changed_value(column, None) is not None:
            return column
    return None


def _two_orgs(db_session):
    alice, bert = make_user("alice@example.com"), make_user("bert@example.com")
    return make_org(alice, "Alpha", "alpha"), make_org(bert, "Beta", "beta")


def _new_row(db_session, model, org_id):
    if model is User:
        return RowBuilder(db_session).new_user()
    with tenant_context(org_id):
        return RowBuilder(db_session).build(model, org_id)


@pytest.mark.parametrize("model", _topic_models(), ids=lambda m: m.__name__)
def test_inserting_changing_and_deleting_a_row_moves_its_topics_at_commit(app, db_session, model):
    """Each write to a row moves the row's topics once committed, in its organization only."""
    # A model with an encrypted column (app/core/encryption.py) reads its keys from the app.
    with app.app_context() if encrypted_columns([model]) else nullcontext():
        _writes_move_topics(app, db_session, model)


def _writes_move_topics(app, db_session, model):
    org_a, org_b = _two_orgs(db_session)
    db_session.commit()
    other = _topics_of_row(model, _new_row(db_session, model, org_b.id))
    db_session.commit()
    other_before = _versions(app, other)

    def unmoved(before):
        after = _versions(app, list(before))
        return [topic for topic in before if after[topic] <= before[topic]]

    with tenant_context(org_a.id):
        row = _new_row(db_session, model, org_a.id)
        topics = _topics_of_row(model, row)
        before = _versions(app, topics)
        assert _versions(app, topics) == before, "moved before the commit"
        db_session.commit()
        assert unmoved(before) == [], "insert"

        column = _editable_column(model)
        if column is not None:
            before = _versions(app, topics)
            setattr(row, column.key, _changed_value(column, getattr(row, column.key)))
            db_session.flush()
            db_session.rollback()
            assert _versions(app, topics) == before, "a rolled-back change moved versions"
            setattr(row, column.key, _changed_value(column, getattr(row, column.key)))
            db_session.commit()
            assert unmoved(before) == [], "update"

            before = _versions(app, topics)
            where = [c == getattr(row, c.key) for c in inspect(model).primary_key]
            value = _changed_value(column, getattr(row, column.key))
            db_session.execute(update(model).where(*where).values({column.key: value}))
            db_session.commit()
            assert unmoved(before) == [], "bulk update"

        before = _versions(app, topics)
        db_session.delete(row)
        db_session.commit()
        assert unmoved(before) == [], "delete"

        again = _new_row(db_session, model, org_a.id)
        topics = _topics_of_row(model, again)
        db_session.commit()
        before = _versions(app, topics)
        where = [c == getattr(again, c.key) for c in inspect(model).primary_key]
        db_session.execute(delete(model).where(*where))
        db_session.commit()
        assert unmoved(before) == [], "bulk delete"
    if is_tenant_model(model):
        assert _versions(app, other) == other_before, "another organization's versions moved"


def test_a_bulk_insert_moves_the_topics_of_each_row(app, db_session):
    """Rows inserted by one statement (as the export import does) move their topics, per person."""
    org_a, _ = _two_orgs(db_session)
    grace = make_user("grace@example.com")
    db_session.commit()
    with tenant_context(org_a.id):
        before = (cache.version("labels"), cache.version("views", grace.id))
    from sqlalchemy import insert

    with tenant_context(org_a.id):
        db_session.execute(insert(Label), [{"tenant_id": org_a.id, "name": "bug"}])
        db_session.execute(
            insert(SavedView), [{"tenant_id": org_a.id, "user_id": grace.id, "name": "Mine", "filters": {}}]
        )
        db_session.commit()
        with app.app_context():
            after = (cache.version("labels"), cache.version("views", grace.id))
    assert after[0] > before[0] and after[1] > before[1]


# --- cached pages against a fresh rendering ---------------------------------------------------


@pytest.fixture
def acme(db_session):
    """Acme: Olive (owner) and Grace (member, the viewer); WEB with an issue that has a label, an
    assignee and a comment mentioning Grace, and a saved view of Grace's."""
    acme = make_acme({"grace@example.com": "member"}, labels=("bug",))
    olive, grace = acme.owner, acme.people["grace@example.com"]
    issue = acme.add_issue("Broken login", assignee_ids=[olive.id], label_ids=[acme.labels["bug"].id])
    with tenant_context(acme.id):
        issues.add_comment(issue, olive, "Look @grace")
        db_session.add(SavedView(user_id=grace.id, name="Grace's bugs", filters={"state": ["todo"]}))
        db_session.commit()
    return acme.id


def _without_tokens(page: tuple[int, str]) -> tuple[int, str]:
    """The page without its CSRF tokens (signed with the second they were made in)."""
    status, html = page
    return status, CSRF_TOKEN.sub("csrf", html)


def _pages(client) -> dict[str, tuple[int, str]]:
    found = {}
    for url in PAGES:
        response = client.get(url)
        found[url] = (response.status_code, response.get_data(as_text=True))
    return found


def _fresh_pages(client, redis_client) -> dict[str, tuple[int, str]]:
    """The pages rendered from the database: every cached value dropped first."""
    for key in redis_client.scan_iter("worklane:cache:*"):
        redis_client.delete(key)
    return _pages(client)


def _changed_value(column, value):
    type_ = column.type
    if isinstance(type_, String | Text):
        length = getattr(type_, "length", None) or 40
        return ("Changed " + uuid.uuid4().hex)[: max(1, min(length, 20))]
    if isinstance(type_, Boolean):
        return not value
    if isinstance(type_, Integer):
        return (value or 0) + 1
    if isinstance(type_, Float):
        return (value or 0.0) + 1.0
    if isinstance(type_, DateTime) or isinstance(getattr(type_, "impl", None), DateTime):
        return (value or utcnow()) - timedelta(days=3)
    if isinstance(type_, Date):
        return (value or utcnow().date()) - timedelta(days=3)
    return None


def _rows_of(db_session, model, org_id):
    if model is User:
        return db_session.scalars(select(User)).all()
    if not is_tenant_model(model):
        return [db_session.get(model, org_id)] if model.__name__ == "Organization" else []
    with tenant_context(org_id):
        return db_session.scalars(select(model)).unique().all()


def _edit_every_column(db_session, model, org_id) -> list[str]:
    """Change each plain column of every row of ``model`` (one savepoint each: a value the
    schema refuses is skipped). Returns what was changed."""
    changed = []
    table = model.__table__
    for row in _rows_of(db_session, model, org_id):
        with tenant_context(getattr(row, "tenant_id", None)):
            for column in _plain_columns(model, skip_constrained=False):
                value = _changed_value(column, getattr(row, column.key))
                if value is None:
                    continue
                savepoint = db_session.begin_nested()
                try:
                    setattr(row, column.key, value)
                    db_session.flush()
                except (DBAPIError, StatementError, ValueError, PermissionError):
                    savepoint.rollback()
                    continue
                savepoint.commit()
                changed.append(f"{table.name}.{column.name}")
    db_session.commit()
    return changed


def _leaf_models() -> list[type]:
    """Tenant models no other table points to: deleting their rows cascades nowhere."""
    referred = {fk.column.table.name for mapper in all_mappers() for fk in mapper.local_table.foreign_keys}
    return [m for m in _models() if is_tenant_model(m) and m.__table__.name not in referred]


def _assert_served_as_fresh(client, redis_client, served, what):
    fresh = _fresh_pages(client, redis_client)
    stale = [url for url in PAGES if _without_tokens(served[url]) != _without_tokens(fresh[url])]
    assert stale == [], f"{what}: cached pages not re-rendered: {stale}"


def test_the_cached_pages_are_served_as_rendered_fresh(app, client, db_session, redis_client, acme):
    """With nothing changed, the warm pages equal a fresh rendering (what the checks below rely on)."""
    login(client, "grace@example.com")
    _pages(client)
    served = _pages(client)
    assert all(status == 200 for status, _ in served.values())
    _assert_served_as_fresh(client, redis_client, served, "nothing changed")


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_editing_any_model_re_renders_the_cached_pages(app, client, db_session, redis_client, acme, model):
    """After any column of any model changes, each warm cached page shows what a fresh rendering shows."""
    login(client, "grace@example.com")
    _pages(client)
    _pages(client)  # warm
    changed = _edit_every_column(db_session, model, acme)
    served = _pages(client)
    _assert_served_as_fresh(client, redis_client, served, f"{model.__name__} edited ({changed})")


@pytest.mark.parametrize("model", _leaf_models(), ids=lambda m: m.__name__)
def test_deleting_any_model_re_renders_the_cached_pages(app, client, db_session, redis_client, acme, model):
    """After rows of any model are deleted, each warm cached page shows what a fresh rendering shows."""
    if model.__name__ in ("AuditEvent", "AuditCheckpoint"):
        pytest.skip("audit events and checkpoints are append-only")
    login(client, "grace@example.com")
    _pages(client)
    _pages(client)  # warm
    grace = _grace(db_session)
    rows = [
        row
        for row in _rows_of(db_session, model, acme)
        if not (model.__name__ == "Membership" and row.user_id == grace)  # she would see a 404
    ]
    with tenant_context(acme):
        for row in rows:
            db_session.delete(row)
        db_session.commit()
    served = _pages(client)
    _assert_served_as_fresh(client, redis_client, served, f"{len(rows)} {model.__name__} deleted")


def _grace(db_session):
    return db_session.scalar(select(User.id).where(User.email == "grace@example.com"))


def test_a_project_renamed_in_its_settings_shows_at_once(app, client, db_session, redis_client, acme):
    """Renaming the project through its settings form re-renders the warm board and lists."""
    grace = app.test_client()
    login(grace, "grace@example.com")
    _pages(grace)
    _pages(grace)
    login(client, "owner@example.com")
    saved = post_form(client, "/acme/projects/WEB/settings", name="Storefront", description="")
    assert saved.status_code == 303
    served = _pages(grace)
    for url in PAGES[:2]:
        assert "Storefront" in served[url][1] and "Website" not in served[url][1], url
    _assert_served_as_fresh(grace, redis_client, served, "project renamed")


@pytest.mark.parametrize("model", [Project, Notification, SavedView], ids=lambda m: m.__name__)
def test_the_page_check_catches_a_model_that_declares_nothing(
    app, client, db_session, redis_client, acme, monkeypatch, model
):
    """With a model's topics taken away (the organization's, or the viewer's own), editing its rows
    leaves stale pages, and the check says so."""
    monkeypatch.setattr(model, "__cache_topics__", ())
    login(client, "grace@example.com")
    _pages(client)
    _pages(client)
    _edit_every_column(db_session, model, acme)
    served = _pages(client)
    with pytest.raises(AssertionError, match="cached pages not re-rendered"):
        _assert_served_as_fresh(client, redis_client, served, f"{model.__name__} edited")


# --- the write paths name no topic ----------------------------------------------------------


def _topic_version(app, redis_client, key: str) -> int:
    return int(redis_client.get(app.config["CACHE_KEY_PREFIX"] + key) or 0)


def test_the_pages_that_write_per_person_data_move_that_persons_topics(
    app, client, db_session, redis_client, acme
):
    """Reading the inbox, saving and deleting a view, and a role change move the person's own topics,
    though no view or service names a topic."""
    grace = _grace(db_session)
    inbox = cache.topic_key_in(acme, "notifications", grace)
    views = cache.topic_key_in(acme, "views", grace)
    account = cache.user_topic_key(grace, "account")
    members = cache.topic_key_in(acme, "members")
    login(client, "grace@example.com")

    def moved(key, post):
        before = _topic_version(app, redis_client, key)
        response = post()
        assert response.status_code == 303, response.get_data(as_text=True)[:300]
        return _topic_version(app, redis_client, key) > before

    assert moved(inbox, lambda: post_form(client, "/acme/notifications", "/acme/notifications/read-all"))
    assert moved(views, lambda: post_form(client, "/acme/issues", "/acme/views", name="Mine", q="login"))
    with tenant_context(acme):
        view_id = db_session.scalar(select(SavedView.id).where(SavedView.name == "Mine"))
    assert moved(views, lambda: post_form(client, f"/acme/views/{view_id}/delete"))
    owner = app.test_client()
    login(owner, "owner@example.com")
    with tenant_context(acme):
        membership = db_session.scalar(select(Membership.id).where(Membership.user_id == grace))
    before = _topic_version(app, redis_client, members)
    role = f"/acme/members/{membership}/role"
    assert moved(account, lambda: post_form(owner, "/acme/members", role, role="admin"))
    assert _topic_version(app, redis_client, members) > before


def test_no_named_invalidators_are_left():
    """The cache module offers no topic-naming invalidator, so no write path can depend on one."""
    import re
    from pathlib import Path

    names = [name for name in vars(cache) if re.fullmatch(r"\w+_changed|changed(_in)?", name)]
    root = Path(__file__).resolve().parent.parent
    calls = [
        f"{path.relative_to(root)}:{number}"
        for folder in ("app", "workers")
        for path in sorted((root / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\bcache\.\w*changed\w*\(", line)
    ]
    assert names == [] and calls == []
