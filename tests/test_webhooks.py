"""Outbound webhooks end to end in one process: the settings pages, events published by the issue
services through the transactional outbox, deliveries made by the delivery job against a real
local receiver and verified with the Standard Webhooks reference verifier (PyPI
``standardwebhooks``), the retry schedule, Retry-After, 410, disabling with one mail, redelivery
from the log, and the SSRF refusals on the form and at delivery time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import event, func, select
from standardwebhooks import Webhook, WebhookVerificationError
from werkzeug.datastructures import MultiDict

from app.core.tenancy import tenant_context
from app.extensions import db
from app.issues import services as issues
from app.models import (
    AuditEvent,
    Issue,
    Project,
    User,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
from app.models.base import utcnow
from app.webhooks import delivery as deliveries
from app.webhooks import events, services
from app.webhooks.jobs import deliver_webhook, purge_webhook_log, queue_due_webhook_deliveries
from tests.accounts import login, post_form, sent_mails
from tests.factories import OWNER, make_acme, make_beta
from tests.support.forms import post_forms
from tests.support.webhook_receiver import Reply

SETTINGS = "/acme/settings/webhooks"


@pytest.fixture
def receiver(webhook_receiver):
    return webhook_receiver


@pytest.fixture
def teams(db_session):
    """Acme (owner Olive, admin Ada, member Grace; project WEB) and Beta (owner Bert)."""
    acme = make_acme({"ada@example.com": "admin", "grace@example.com": "member"})
    beta = make_beta()
    db_session.commit()
    return SimpleNamespace(
        acme=SimpleNamespace(
            id=acme.id, name=acme.org.name, owner_id=acme.owner.id, ada_id=acme.people["ada@example.com"].id
        ),
        beta=SimpleNamespace(id=beta.id),
    )


def _endpoint(app, org_id, url: str, event_types=("issue.created", "issue.updated", "comment.created")):
    """An endpoint made by the service the page uses (committed); returns (id, secret)."""
    with app.app_context(), tenant_context(org_id):
        endpoint = services.create(url, "", list(event_types))
        db.session.commit()
        return endpoint.id, endpoint.secret


@pytest.fixture
def hooked(app, teams, receiver):
    """Acme with one endpoint at the receiver, subscribed to every issue and comment event."""
    endpoint_id, secret = _endpoint(app, teams.acme.id, receiver.url())
    return SimpleNamespace(acme=teams.acme, beta=teams.beta, endpoint_id=endpoint_id, secret=secret)


def _deliveries(app, org_id) -> list[WebhookDelivery]:
    with app.app_context(), tenant_context(org_id):
        return list(db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at)))


def _deliver(app, org_id, delivery_id) -> str:
    """Run the delivery job as the worker does (as the organization, in an app context)."""
    with app.app_context(), tenant_context(org_id):
        return deliver_webhook(str(delivery_id))


def _make_due(app, org_id, delivery_id) -> None:
    """Move the delivery's next attempt to now, as if its wait had passed."""
    with app.app_context(), tenant_context(org_id):
        delivery = WebhookDelivery.get_scoped(db.session, delivery_id)
        delivery.next_attempt_at = utcnow() - timedelta(seconds=1)
        db.session.commit()


def _attempts(app, org_id, delivery_id) -> list[WebhookAttempt]:
    with app.app_context(), tenant_context(org_id):
        statement = select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id)
        return list(db.session.scalars(statement.order_by(WebhookAttempt.number)))


def _new_issue(app, team, title="Login fails"):
    """An issue in WEB, made by the owner through the issue services (committed); its id."""
    with app.app_context(), tenant_context(team.id):
        project = db.session.scalar(select(Project).where(Project.key == "WEB"))
        issue = issues.create_issue(project, db.session.get(User, team.owner_id), title)
        db.session.commit()
        return issue.id


def _submit(client, page: str, action: str, **changes):
    """Submit the form of ``page`` that posts to ``action`` as the browser renders it, with the
    fields in ``changes`` (a list for several values) changed."""
    html = client.get(page).get_data(as_text=True)
    [form] = [f for f in post_forms(html, page) if f.action.endswith(action)]
    pairs = [(name, value) for name, value in form.submission() if name not in changes]
    for name, value in changes.items():
        pairs += [(name, item) for item in (value if isinstance(value, list) else [value])]
    return client.post(form.action, data=MultiDict(pairs))


def _verify(secret: str, request) -> dict:
    return Webhook(secret).verify(request.body, request.headers)


# --- the settings pages ----------------------------------------------------------------------


def test_admins_add_an_endpoint_and_see_its_secret_once(app, client, teams, receiver):
    """An admin adds an endpoint on the form; the next page shows its whsec_ secret once; the
    organization's settings link to the page; members get 403; the change is audited."""
    login(client, "ada@example.com")
    assert 'href="/acme/settings/webhooks"' in client.get("/acme/settings").get_data(as_text=True)
    response = post_form(
        client,
        SETTINGS,
        SETTINGS,
        **{
            "endpoint-url": receiver.url(),
            "endpoint-description": "CI",
            "endpoint-event_types": ["issue.created", "comment.created"],
        },
    )
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    secret = re.search(r'data-testid="webhook-secret">(whsec_[A-Za-z0-9+/=]+)<', page).group(1)
    with app.app_context(), tenant_context(teams.acme.id):
        endpoint = db.session.scalar(select(WebhookEndpoint))
        assert endpoint.secret == secret and len(Webhook(secret)._whsecret) == 32
        assert (endpoint.url, endpoint.description) == (receiver.url(), "CI")
        assert endpoint.event_types == ["issue.created", "comment.created"]
        assert "webhook.created" in db.session.scalars(select(AuditEvent.action)).all()
    assert secret not in client.get(response.headers["Location"]).get_data(as_text=True)
    member = app.test_client()
    login(member, "grace@example.com")
    assert member.get(SETTINGS).status_code == 403
    assert member.get(response.headers["Location"]).status_code == 403


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://2130706433/hook", "unusual form"),
        ("http://0177.0.0.1/hook", "unusual form"),
        ("http://[::ffff:127.0.0.1]/hook", "IPv6 form of the IPv4 address 127.0.0.1"),
        ("http://internal.example.test/hook", "resolves to an address that is not allowed: 10.0.0.5"),
        ("http://nowhere.example.test/hook", "could not be resolved"),
        ("ftp://example.com/hook", "http:// or https://"),
    ],
)
def test_the_form_refuses_urls_that_reach_inside(app, client, teams, dns_records, url, message):
    """A URL of an internal address in any form, a name resolving to one, or an unresolvable
    name is refused on the form with the reason, and nothing is stored."""
    dns_records.set_addresses("internal.example.test", "10.0.0.5")
    login(client, OWNER)
    response = post_form(
        client, SETTINGS, SETTINGS, **{"endpoint-url": url, "endpoint-event_types": ["issue.created"]}
    )
    assert response.status_code == 422
    assert message in response.get_data(as_text=True).replace("&#39;", "'")
    with tenant_context(teams.acme.id):
        assert db.session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0


def test_the_form_asks_for_an_event(client, teams, receiver):
    """An endpoint without any event is refused with a message."""
    login(client, OWNER)
    response = post_form(client, SETTINGS, SETTINGS, **{"endpoint-url": receiver.url()})
    assert response.status_code == 422
    assert "Choose at least one event." in response.get_data(as_text=True)


def test_changes_disabling_and_deleting_are_audited(app, client, hooked):
    """Saving changes, disabling, enabling and deleting (asked first) each write an audit entry;
    saving the form unchanged writes none."""
    login(client, OWNER)
    page = f"{SETTINGS}/{hooked.endpoint_id}"
    assert _submit(client, page, page).status_code == 303  # as rendered: nothing changes
    changed = {"endpoint-description": "Deploys", "endpoint-event_types": ["issue.created"]}
    assert _submit(client, page, page, **changed).status_code == 303
    assert _submit(client, page, "/disable").status_code == 303
    assert _submit(client, page, "/enable").status_code == 303
    question = client.get(f"{page}/delete").get_data(as_text=True)
    assert "Delete the endpoint" in question
    assert post_form(client, f"{page}/delete").status_code == 303
    with app.app_context(), tenant_context(hooked.acme.id):
        actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.sequence)).all()
        assert db.session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0
    assert [action for action in actions if action.startswith("webhook.")] == [
        "webhook.created",
        "webhook.updated",
        "webhook.disabled",
        "webhook.enabled",
        "webhook.deleted",
    ]


def test_another_organizations_endpoints_and_deliveries_are_not_found(app, client, hooked, receiver):
    """Beta's endpoint and delivery ids answer 404 to Acme's owner on every page and action."""
    beta_endpoint, _ = _endpoint(app, hooked.beta.id, receiver.url())
    with app.app_context(), tenant_context(hooked.beta.id):
        endpoint = db.session.get(WebhookEndpoint, (hooked.beta.id, beta_endpoint))
        beta_delivery = services.send_test(endpoint).id
        db.session.commit()
    login(client, OWNER)
    token = re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', client.get(SETTINGS).get_data(as_text=True)
    )
    data = {"csrf_token": token.group(1)}
    base = f"{SETTINGS}/{beta_endpoint}"
    for path in ("", "/delete", f"/deliveries/{beta_delivery}"):
        assert client.get(base + path).status_code == 404, path
    for path in ("/rotate", "/disable", "/test", "/delete", f"/deliveries/{beta_delivery}/redeliver"):
        assert client.post(base + path, data=data).status_code == 404, path
    own = f"{SETTINGS}/{hooked.endpoint_id}/deliveries/{beta_delivery}"
    assert client.get(own).status_code == 404


# --- publishing ------------------------------------------------------------------------------


def test_issue_and_comment_events_are_delivered_signed(app, hooked, receiver):
    """Creating, changing, assigning, labelling, moving and commenting on an issue each send an
    event that the reference verifier accepts, with the issue's public fields."""
    issue_id = _new_issue(app, hooked.acme)
    with app.app_context(), tenant_context(hooked.acme.id):
        issue, owner = Issue.get_scoped(db.session, issue_id), db.session.get(User, hooked.acme.owner_id)
        issues.update_issue(issue, owner, title="Login fails on Safari", priority=2)
        issues.set_assignees(issue, owner, [str(hooked.acme.ada_id)])
        issues.move_issue(issue, owner, "done")
        issues.add_comment(issue, owner, "Fixed in 1.2")
        db.session.commit()
    found = _deliveries(app, hooked.acme.id)
    assert len(found) == 5
    for delivery in found:
        assert _deliver(app, hooked.acme.id, delivery.id) == "succeeded"
    payloads = [_verify(hooked.secret, request) for request in receiver.wait_for(5)]
    assert [p["type"] for p in payloads] == [
        "issue.created",
        "issue.updated",
        "issue.updated",
        "issue.updated",
        "comment.created",
    ]
    created = payloads[0]["data"]["issue"]
    assert created["ref"] == "WEB-1" and created["project"]["key"] == "WEB" and created["number"] == 1
    assert created["url"].endswith("/acme/issues/WEB-1")
    assert payloads[1]["data"]["changed"] == ["title", "priority"]
    assert payloads[1]["data"]["issue"]["title"] == "Login fails on Safari"
    assert [a["email"] for a in payloads[2]["data"]["issue"]["assignees"]] == ["ada@example.com"]
    assert payloads[3]["data"] == {"issue": payloads[3]["data"]["issue"], "changed": ["state"]}
    assert payloads[3]["data"]["issue"]["state"] == "done"
    assert payloads[4]["data"]["comment"]["body"] == "Fixed in 1.2"
    assert payloads[4]["timestamp"].endswith("Z")
    request = receiver.requests[0]
    assert request.headers["webhook-id"].startswith("msg_")
    assert request.headers["Content-Type"] == "application/json"
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43 + "=").verify(request.body, request.headers)


def test_only_subscribed_enabled_endpoints_get_an_event(app, hooked, receiver):
    """An endpoint gets only the events it subscribed to; a disabled one gets none."""
    comments_only, _ = _endpoint(app, hooked.acme.id, receiver.url("/comments"), ["comment.created"])
    off, _ = _endpoint(app, hooked.acme.id, receiver.url("/off"))
    with app.app_context(), tenant_context(hooked.acme.id):
        services.disable(db.session.get(WebhookEndpoint, (hooked.acme.id, off)))
        db.session.commit()
    _new_issue(app, hooked.acme)
    assert [d.endpoint_id for d in _deliveries(app, hooked.acme.id)] == [hooked.endpoint_id]
    assert comments_only != hooked.endpoint_id


def test_without_endpoints_publishing_costs_no_query(app, teams):
    """With no endpoint subscribed, publishing reads the cache only (after the first time) and
    writes nothing."""
    statements = []

    def count(*args):
        statements.append(args[2])

    with app.app_context(), tenant_context(teams.acme.id):
        assert events.publish("issue.created", lambda: pytest.fail("the payload was built")) == 0
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert events.publish("issue.created", lambda: pytest.fail("the payload was built")) == 0
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        assert statements == []
        assert db.session.scalar(select(func.count()).select_from(WebhookMessage)) == 0


def test_a_rolled_back_change_sends_nothing(app, hooked, receiver, redis_client):
    """Events are written in the change's transaction: a rollback leaves no message, no
    delivery and no queued job."""
    with app.app_context(), tenant_context(hooked.acme.id):
        project = db.session.scalar(select(Project).where(Project.key == "WEB"))
        issues.create_issue(project, db.session.get(User, hooked.acme.owner_id), "Never saved")
        assert db.session.scalar(select(func.count()).select_from(WebhookMessage)) == 1
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(WebhookMessage)) == 0
    assert redis_client.keys("rq:job:webhook-*") == []


def test_the_commit_queues_the_delivery_job(app, hooked, redis_client):
    """After the commit one delivery job per delivery is queued in the organization's lane; the
    sweep queues the same attempt under the same job id, so it is queued once."""
    _new_issue(app, hooked.acme)
    [delivery] = _deliveries(app, hooked.acme.id)
    jobs = redis_client.keys(f"rq:job:webhook-{delivery.id}-0-*")
    assert len(jobs) == 1
    with app.app_context():
        assert queue_due_webhook_deliveries() == 1
    assert redis_client.keys(f"rq:job:webhook-{delivery.id}-*") == jobs
    assert redis_client.llen(f"rq:queue:default:t:{hooked.acme.id}") == 1


# --- retries, Retry-After, 410 and disabling -------------------------------------------------


def _within(moment, seconds: float) -> bool:
    """``moment`` is ``seconds`` from now, give or take the jitter."""
    wait = (moment - utcnow()).total_seconds()
    return seconds * (1 - deliveries.JITTER) - 2 <= wait <= seconds * (1 + deliveries.JITTER) + 1


def test_failures_are_retried_on_the_schedule_and_kept_in_the_log(app, hooked, receiver):
    """A 500 is a failed attempt: kept with its answer, retried after ~5 s, then ~5 min; an
    attempt that is not due yet sends nothing; a 2xx ends the delivery."""
    receiver.script(Reply(500, {}, b"boom"), Reply(500, {}, b"boom again"))
    _new_issue(app, hooked.acme)
    [delivery] = _deliveries(app, hooked.acme.id)
    assert _deliver(app, hooked.acme.id, delivery.id) == "pending"
    [after_one] = _deliveries(app, hooked.acme.id)
    assert after_one.attempts == 1 and after_one.last_status == 500
    assert _within(after_one.next_attempt_at, 5)
    assert _deliver(app, hooked.acme.id, delivery.id) == "not due"
    assert len(receiver.requests) == 1
    _make_due(app, hooked.acme.id, delivery.id)
    assert _deliver(app, hooked.acme.id, delivery.id) == "pending"
    assert _within(_deliveries(app, hooked.acme.id)[0].next_attempt_at, 300)
    _make_due(app, hooked.acme.id, delivery.id)
    assert _deliver(app, hooked.acme.id, delivery.id) == "succeeded"
    attempts = _attempts(app, hooked.acme.id, delivery.id)
    assert [(a.number, a.response_status, a.response_excerpt) for a in attempts] == [
        (1, 500, "boom"),
        (2, 500, "boom again"),
        (3, 200, "ok"),
    ]
    assert attempts[0].request_headers["webhook-id"] == attempts[2].request_headers["webhook-id"]
    for request in receiver.wait_for(3):
        _verify(hooked.secret, request)


def test_old_deliveries_are_purged_with_their_attempts_and_messages(app, hooked, receiver):
    """The daily purge deletes deliveries that ended over 30 days ago (attempts and messages
    too), of every organization; recent and waiting ones stay."""
    _new_issue(app, hooked.acme, "Old")
    _new_issue(app, hooked.acme, "Waiting")
    old, waiting = _deliveries(app, hooked.acme.id)
    _deliver(app, hooked.acme.id, old.id)
    with app.app_context(), tenant_context(hooked.acme.id):
        db.session.get(WebhookDelivery, (hooked.acme.id, waiting.id)).created_at = utcnow() - timedelta(
            days=40
        )
        db.session.commit()
    with app.app_context():
        assert purge_webhook_log(now=utcnow()) == 0
        assert purge_webhook_log(now=utcnow() + timedelta(days=31)) == 1
    assert [d.id for d in _deliveries(app, hooked.acme.id)] == [waiting.id]
    assert _attempts(app, hooked.acme.id, old.id) == []
    with app.app_context(), tenant_context(hooked.acme.id):
        assert db.session.scalars(select(WebhookMessage.id)).all() == [waiting.message_id]


def test_the_schedule_has_jitter_and_ends():
    """Each wait of 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h is moved by the jitter;
    after the last there is none."""
    waits = [deliveries.retry_wait(n) for n in range(1, deliveries.MAX_ATTEMPTS)]
    for wait, seconds in zip(waits, (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400), strict=True):
        assert seconds * 0.85 <= wait.total_seconds() <= seconds * 1.15
    assert deliveries.retry_wait(deliveries.MAX_ATTEMPTS) is None


@pytest.mark.parametrize(
    ("status", "retry_after", "seconds"),
    [
        (429, "3600", 3600),
        (503, "http-date", 7200),
        (429, "999999", 86400),
        (429, "soon", 5),
        (500, "3600", 5),
    ],
)
def test_retry_after_moves_the_next_attempt_later(app, hooked, receiver, status, retry_after, seconds):
    """429 and 503 with Retry-After (seconds or an HTTP date, at most a day) put the next attempt
    then; an unreadable value, or one on another status, leaves the schedule."""
    if retry_after == "http-date":
        retry_after = format_datetime(utcnow() + timedelta(seconds=7200), usegmt=True)
    receiver.script(Reply(status, {"Retry-After": retry_after}))
    _new_issue(app, hooked.acme)
    [delivery] = _deliveries(app, hooked.acme.id)
    _deliver(app, hooked.acme.id, delivery.id)
    next_attempt = _deliveries(app, hooked.acme.id)[0].next_attempt_at
    if seconds == 5:
        assert _within(next_attempt, 5)
    else:
        assert seconds - 5 <= (next_attempt - utcnow()).total_seconds() <= seconds + 1


def test_410_disables_the_endpoint_at_once(app, hooked, receiver):
    """410 Gone ends the delivery and disables the endpoint; its other waiting deliveries end;
    the owners and admins are mailed."""
    receiver.script(Reply(410, {}, b"gone"))
    _new_issue(app, hooked.acme, "One")
    _new_issue(app, hooked.acme, "Two")
    first, second = _deliveries(app, hooked.acme.id)
    assert _deliver(app, hooked.acme.id, first.id) == "failed"
    with app.app_context(), tenant_context(hooked.acme.id):
        endpoint = db.session.get(WebhookEndpoint, (hooked.acme.id, hooked.endpoint_id))
        assert endpoint.disabled_at is not None and "410" in endpoint.disabled_reason
    assert [d.status for d in _deliveries(app, hooked.acme.id)] == ["failed", "failed"]
    assert _deliver(app, hooked.acme.id, second.id) == "not due"
    assert len(receiver.requests) == 1
    assert sorted(m.to for m in sent_mails(None)) == ["ada@example.com", OWNER]


def test_the_last_failed_attempt_disables_the_endpoint_with_one_mail(app, hooked, receiver):
    """When a delivery's last scheduled attempt fails the endpoint is disabled and each owner and
    admin gets one mail, however many deliveries were failing."""
    _new_issue(app, hooked.acme, "One")
    _new_issue(app, hooked.acme, "Two")
    receiver.script(Reply(500), Reply(500))
    with app.app_context(), tenant_context(hooked.acme.id):
        for delivery in db.session.scalars(select(WebhookDelivery)):
            delivery.attempts = deliveries.MAX_ATTEMPTS - 1
        db.session.commit()
    first, second = _deliveries(app, hooked.acme.id)
    assert _deliver(app, hooked.acme.id, first.id) == "failed"
    assert _deliver(app, hooked.acme.id, second.id) == "not due"
    mails = sent_mails(None)
    assert sorted(m.to for m in mails) == ["ada@example.com", OWNER]
    assert "was disabled" in mails[0].subject and hooked.acme.name in mails[0].subject
    assert f"/acme/settings/webhooks/{hooked.endpoint_id}" in mails[0].text
    with app.app_context(), tenant_context(hooked.acme.id):
        actions = db.session.scalars(select(AuditEvent.action)).all()
    assert actions.count("webhook.disabled_by_failure") == 1


def test_a_redirect_is_a_failed_attempt_and_not_followed(app, hooked, receiver):
    """A 3xx is logged as a failed attempt; its Location is never requested."""
    receiver.script(Reply(307, {"Location": receiver.url("/elsewhere")}, b""))
    _new_issue(app, hooked.acme)
    [delivery] = _deliveries(app, hooked.acme.id)
    assert _deliver(app, hooked.acme.id, delivery.id) == "pending"
    [attempt] = _attempts(app, hooked.acme.id, delivery.id)
    assert attempt.response_status == 307 and "redirects are not followed" in attempt.error
    assert [r.path for r in receiver.requests] == ["/hook"]


def test_a_name_resolving_to_a_private_address_is_refused_at_delivery(app, hooked, receiver, dns_records):
    """A name that resolved to a public address when saved but to a private one at delivery time
    is refused then: the attempt is logged with the reason and nothing is sent."""
    dns_records.set_addresses("hooks.example.test", "93.184.215.14")
    with app.app_context(), tenant_context(hooked.acme.id):
        endpoint = db.session.get(WebhookEndpoint, (hooked.acme.id, hooked.endpoint_id))
        services.update(endpoint, "http://hooks.example.test/hook", "", ["issue.created"])
        db.session.commit()
    dns_records.set_addresses("hooks.example.test", "10.0.0.5")
    _new_issue(app, hooked.acme)
    [delivery] = _deliveries(app, hooked.acme.id)
    assert _deliver(app, hooked.acme.id, delivery.id) == "pending"
    [attempt] = _attempts(app, hooked.acme.id, delivery.id)
    assert attempt.response_status is None
    assert attempt.error.startswith("Not sent: hooks.example.test resolves to an address that is not allowed")
    assert "10.0.0.5 is a private address" in attempt.error
    assert receiver.requests == []


# --- rotation, test events and redelivery ----------------------------------------------------


def test_during_a_rotation_both_secrets_verify(app, client, hooked, receiver):
    """Rotating shows the new secret once; for a day deliveries carry two v1 signatures, the new
    secret's first, so a receiver with either secret verifies them; then only the new one signs."""
    login(client, OWNER)
    page = f"{SETTINGS}/{hooked.endpoint_id}"
    response = post_form(client, page, f"{page}/rotate")
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    new_secret = re.search(r'data-testid="webhook-secret">(whsec_[^<]+)<', shown).group(1)
    assert new_secret != hooked.secret and "The previous secret also signs deliveries until" in shown
    _new_issue(app, hooked.acme)
    [delivery] = _deliveries(app, hooked.acme.id)
    _deliver(app, hooked.acme.id, delivery.id)
    [request] = receiver.wait_for(1)
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    assert _verify(new_secret, request)["type"] == "issue.created"
    assert _verify(hooked.secret, request)["type"] == "issue.created"
    assert (
        Webhook(new_secret).sign(
            request.headers["webhook-id"],
            datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), UTC),
            request.body.decode(),
        )
        == signatures[0]
    )
    with app.app_context(), tenant_context(hooked.acme.id):
        endpoint = db.session.get(WebhookEndpoint, (hooked.acme.id, hooked.endpoint_id))
        endpoint.previous_secret_expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    redelivered = post_form(client, page, f"{page}/deliveries/{delivery.id}/redeliver")
    assert redelivered.status_code == 303
    _deliver(app, hooked.acme.id, _deliveries(app, hooked.acme.id)[-1].id)
    later = receiver.wait_for(2)[1]
    assert len(later.headers["webhook-signature"].split(" ")) == 1
    _verify(new_secret, later)
    with pytest.raises(WebhookVerificationError):
        _verify(hooked.secret, later)


def test_a_test_event_and_a_redelivery_from_the_log(app, client, hooked, receiver):
    """ "Send test event" delivers webhook.test; the log lists it; its Redeliver form, submitted as
    rendered, sends the same message (same webhook-id) again as a new delivery; the delivery's
    page shows each attempt's answer."""
    login(client, OWNER)
    page = f"{SETTINGS}/{hooked.endpoint_id}"
    assert post_form(client, page, f"{page}/test").status_code == 303
    [test_delivery] = _deliveries(app, hooked.acme.id)
    _deliver(app, hooked.acme.id, test_delivery.id)
    html = client.get(page).get_data(as_text=True)
    assert "webhook.test" in html and "Succeeded" in html
    [form] = [f for f in post_forms(html, page) if f.action.endswith("/redeliver")]
    response = client.post(form.action, data=dict(form.submission()))
    assert response.status_code == 303
    original, again = _deliveries(app, hooked.acme.id)
    assert again.redelivery_of_id == original.id and again.message_id == original.message_id
    _deliver(app, hooked.acme.id, again.id)
    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert _verify(hooked.secret, second)["type"] == "webhook.test"
    detail = client.get(f"{page}/deliveries/{original.id}").get_data(as_text=True)
    assert "Answered <strong>200</strong>" in detail and first.headers["webhook-id"] in detail
    assert "redelivery" in client.get(page).get_data(as_text=True)
