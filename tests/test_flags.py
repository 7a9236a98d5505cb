"""Feature flags: off, on, on for listed organizations, or on for a percentage chosen by a stable
hash (an organization in at 10% stays in at 20%); set by operators; kept per process and seen by
every process as soon as an operator's change commits; the report downloads gated by one."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import update

from app.extensions import db
from app.flags import FLAGS, enabled
from app.flags import services as flags
from app.flags.state import bucket, in_percentage
from app.models import FeatureFlag, User
from tests.accounts import login, make_user, post_form
from tests.factories import make_beta
from tests.test_reports import _fresh_snapshot, _history, acme  # noqa: F401 (a fixture)

FLAG = "report_downloads"
FORM = "/operators/flags"
ACTION = f"/operators/flags/{FLAG}"


def _ids(count: int) -> list[uuid.UUID]:
    """Organization ids as the app makes them, the same on every run."""
    return [uuid.uuid5(uuid.NAMESPACE_URL, f"org-{n}") for n in range(count)]


def test_a_percentage_is_about_that_share_and_stays_sticky_when_raised():
    """At 10% about a tenth of 2,000 organizations are in; every one of them is still in at 20%,
    which takes about a fifth; 0% takes none and 100% all."""
    ids = _ids(2_000)
    at_10 = {org for org in ids if in_percentage(FLAG, org, 10)}
    at_20 = {org for org in ids if in_percentage(FLAG, org, 20)}
    assert 160 <= len(at_10) <= 240, len(at_10)
    assert 340 <= len(at_20) <= 460, len(at_20)
    assert at_10 <= at_20
    assert not any(in_percentage(FLAG, org, 0) for org in ids)
    assert all(in_percentage(FLAG, org, 100) for org in ids)
    assert bucket(FLAG, ids[0]) == bucket(FLAG, str(ids[0]))  # the id's text, however it is given


def _operator_user() -> User:
    user = make_user("ops@example.com", name="Otto Operator")
    db.session.flush()
    return user


def test_off_on_listed_and_percentage(app, db_session):
    """Unset, a flag is as declared; off and on are for everyone; listed is on for those named
    only; a percentage of 10 raised to 20 keeps every organization it had (200 of them here)."""
    ops = _operator_user()
    beta = make_beta()
    others = _ids(200)
    db.session.commit()
    assert FLAGS[FLAG].default_on and enabled(FLAG, beta.id)
    flags.set_flag(ops, FLAG, "off", None, [])
    db.session.commit()
    assert not enabled(FLAG, beta.id)
    flags.set_flag(ops, FLAG, "on", None, [])
    db.session.commit()
    assert enabled(FLAG, beta.id) and enabled(FLAG, None)
    flags.set_flag(ops, FLAG, "listed", None, ["beta"])
    db.session.commit()
    assert enabled(FLAG, beta.id) and not any(enabled(FLAG, org) for org in others)
    flags.set_flag(ops, FLAG, "percentage", 10, [])
    db.session.commit()
    in_at_10 = {org for org in others if enabled(FLAG, org)}
    flags.set_flag(ops, FLAG, "percentage", 20, [])
    db.session.commit()
    in_at_20 = {org for org in others if enabled(FLAG, org)}
    assert 5 <= len(in_at_10) <= 40 and in_at_10 < in_at_20
    with pytest.raises(flags.FlagError, match="No organization has the address nowhere"):
        flags.set_flag(ops, FLAG, "listed", None, ["beta", "nowhere"])


def test_a_change_is_seen_at_once_by_a_process_that_kept_the_settings(app, db_session):
    """The settings are kept per process: a row changed behind the flags' back is not read again;
    an operator's change moves the version at commit, so the next check anywhere reads it."""
    ops = _operator_user()
    beta = make_beta()
    flags.set_flag(ops, FLAG, "on", None, [])
    db.session.commit()
    assert enabled(FLAG, beta.id)  # read, and kept
    db.session.execute(update(FeatureFlag).values(mode="off"))
    db.session.commit()
    assert enabled(FLAG, beta.id)  # still the kept settings: no query per check
    flags.set_flag(ops, FLAG, "off", None, [])
    assert enabled(FLAG, beta.id)  # not committed yet
    db.session.commit()
    assert not enabled(FLAG, beta.id)


@pytest.fixture
def operator(app, monkeypatch):
    monkeypatch.setitem(app.config, "OPERATOR_EMAILS", frozenset({"ops@example.com"}))
    _operator_user()
    db.session.commit()
    client = app.test_client()
    login(client, "ops@example.com")
    return client


def _field(name: str) -> str:
    return f"{FLAG}-{name}"


def test_the_report_downloads_follow_the_rollout(app, client, acme, operator):  # noqa: F811
    """Acme sees the CSV links under its charts, and gets the CSV, while the rollout takes it in:
    at a percentage just below its place it has neither (404), just above it has both again."""
    _history(acme.id)
    _fresh_snapshot(acme.id)
    login(client, "owner@example.com")
    link = 'href="/acme/projects/WEB/reports/throughput.csv"'
    assert link in client.get("/acme/projects/WEB/reports").text
    place = bucket(FLAG, acme.id) // 100
    below = post_form(operator, FORM, ACTION, **{_field("mode"): "percentage", _field("percentage"): place})
    assert below.status_code == 303
    assert link not in client.get("/acme/projects/WEB/reports").text
    assert "Download" not in client.get("/acme/reports").text
    assert client.get("/acme/projects/WEB/reports/throughput.csv").status_code == 404
    above = post_form(
        operator, FORM, ACTION, **{_field("mode"): "percentage", _field("percentage"): place + 1}
    )
    assert above.status_code == 303
    assert link in client.get("/acme/projects/WEB/reports").text
    assert client.get("/acme/projects/WEB/reports/throughput.csv").status_code == 200


def test_operators_set_a_flag_with_the_form(app, db_session, operator):
    """The form lists each declared flag as set; saving lists organizations by address (an unknown
    one is a form error, nothing saved) and shows who set it; others get 404."""
    make_beta()
    db.session.commit()
    page = operator.get(FORM).text
    for name in FLAGS:
        assert f'action="/operators/flags/{name}"' in page
    assert "Outbound webhooks in organization settings" in page
    unknown = post_form(
        operator, FORM, ACTION, **{_field("mode"): "listed", _field("organizations"): "beta, nowhere"}
    )
    assert unknown.status_code == 422 and "No organization has the address nowhere." in unknown.text
    assert db.session.get(FeatureFlag, FLAG) is None
    saved = post_form(operator, FORM, ACTION, **{_field("mode"): "listed", _field("organizations"): "beta"})
    assert saved.status_code == 303
    page = operator.get(FORM).text
    assert "Set by ops@example.com" in page, page
    assert "beta</textarea>" in page
    row = db.session.get(FeatureFlag, FLAG)
    assert row.mode == "listed" and len(row.organization_ids) == 1
    owner = make_user("someone@example.com")
    db.session.commit()
    visitor = app.test_client()
    login(visitor, owner.email)
    assert visitor.get(FORM).status_code == 404
    assert (
        post_form(operator, FORM, "/operators/flags/nonsense", **{"nonsense-mode": "on"}).status_code == 404
    )


def test_a_flag_check_costs_a_signed_in_page_no_round_trip_of_its_own(
    app,
    client,
    acme,  # noqa: F811
    monkeypatch,
):
    """The flags' version is read with the member's session and account (one round trip), and the
    kept settings answer: the reports page, which checks a flag, asks neither Redis nor SQL again."""
    from tests.test_request_floor import Traffic

    _fresh_snapshot(acme.id)
    login(client, "owner@example.com")
    client.get("/acme/projects/WEB/reports")
    with Traffic(app, monkeypatch).watching() as traffic:
        page = client.get("/acme/projects/WEB/reports")
    assert page.status_code == 200 and "(CSV)" in page.text
    flag_reads = [n for n, sent in enumerate(traffic.sent) if b"g:version:flags" in sent]
    assert flag_reads == [0] and traffic.round_trips[0] == ["HGETALL", "MGET"]
    assert not [s for s in traffic.statements if "feature_flags" in s]
