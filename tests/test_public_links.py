"""Links in mail come from PUBLIC_URL, never from the request's Host; production refuses other hosts."""

from __future__ import annotations

import logging
import re

from flask.testing import FlaskClient

from app.config import PROJECT_ROOT
from tests.accounts import PASSWORD, login, make_org, make_user, post_form, sent_mails
from tests.conftest import csrf_token_from, production_app
from tests.support.launcher import run_script

EVIL = "evil.example"
URL = re.compile(r"https?://[^\s\"'<>]+")


class ForgedHostClient(FlaskClient):
    """A test client whose every request says ``Host: evil.example`` (its cookies follow)."""

    def open(self, *args, **kwargs):
        kwargs["headers"] = {"Host": EVIL, **dict(kwargs.get("headers") or {})}
        return super().open(*args, **kwargs)


def _forged(app) -> ForgedHostClient:
    return ForgedHostClient(app, app.response_class, use_cookies=True)


def _links(mail) -> list[str]:
    return URL.findall(mail.text) + URL.findall(mail.html)


def _foreign_links(app, mails) -> list[str]:
    """Every URL of these mails that is not on PUBLIC_URL (the layout's own URLs included)."""
    public = app.config["PUBLIC_URL"].rstrip("/") + "/"
    return [
        url
        for mail in mails
        for url in _links(mail)
        if not (url + "/").startswith(public) and "www.w3.org" not in url
    ]


def test_reset_link_ignores_a_forged_host(app, db_session, redis_client):
    """A reset requested with ``Host: evil.example`` mails a link on PUBLIC_URL."""
    make_user("ada@example.com")
    db_session.commit()
    response = post_form(_forged(app), "/forgot-password", email="ada@example.com")
    assert response.status_code == 200
    [mail] = sent_mails(redis_client, "ada@example.com")
    assert EVIL not in mail.text and EVIL not in mail.html
    assert re.search(re.escape(app.config["PUBLIC_URL"]) + r"/reset-password/\S+", mail.text)
    assert _foreign_links(app, [mail]) == []


def test_reset_link_ignores_x_forwarded_host_behind_a_proxy(
    make_app, migrated_env, db_session, redis_client, caplog
):
    """Behind one proxy, X-Forwarded-Host does not move the reset link; X-Forwarded-For still counts."""
    app = make_app({**migrated_env, "PROXY_COUNT": "1"})
    make_user("ada@example.com")
    db_session.commit()
    client = app.test_client()
    forwarded = {"X-Forwarded-Host": EVIL, "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "http"}
    html = client.get("/forgot-password").get_data(as_text=True)
    with caplog.at_level(logging.INFO, logger="worklane.access"):
        response = client.post(
            "/forgot-password",
            data={"csrf_token": csrf_token_from(html), "email": "ada@example.com"},
            headers=forwarded,
        )
    assert response.status_code == 200
    [access] = [r for r in caplog.records if r.name == "worklane.access"]
    assert access.remote_addr == "203.0.113.9"
    [mail] = sent_mails(redis_client, "ada@example.com")
    assert EVIL not in mail.text and EVIL not in mail.html
    assert app.config["PUBLIC_URL"] + "/reset-password/" in mail.text


def test_every_account_and_invitation_mail_uses_public_url(app, db_session, redis_client):
    """Verification, account-exists, invitation, email-change and reset mails link only to PUBLIC_URL."""
    owner = make_user("owner@example.com", name="Olive Owner")
    make_org(owner, "Acme", "acme")
    make_user("taken@example.com")
    db_session.commit()
    client = _forged(app)
    signup = {"name": "Ada", "password": PASSWORD, "organization": "Analytical"}
    assert post_form(client, "/signup", email="new@example.com", **signup).status_code == 303
    assert post_form(client, "/signup", email="taken@example.com", **signup).status_code == 303
    assert post_form(client, "/forgot-password", email="taken@example.com").status_code == 200
    login(client, "owner@example.com")
    invited = post_form(
        client, "/acme/members", "/acme/invitations", email="guest@example.com", role="member"
    )
    assert invited.status_code == 303
    changed = post_form(
        client,
        "/account",
        "/account/email",
        **{"email-email": "olive@new.example", "email-password": PASSWORD},
    )
    assert changed.status_code == 303
    mails = sent_mails(redis_client)
    recipients = {mail.to for mail in mails}
    assert {"new@example.com", "taken@example.com", "guest@example.com", "olive@new.example"} <= recipients
    assert all(_links(mail) for mail in mails)
    assert _foreign_links(app, mails) == []


def test_production_answers_400_to_a_host_public_url_does_not_name(migrated_env):
    """In production a foreign Host gets 400 on every page; PUBLIC_URL's host is served."""
    client = production_app(migrated_env).test_client()
    assert client.get("/login", base_url="https://worklane.example").status_code == 200
    assert client.get("/login", base_url="https://WORKLANE.example:443").status_code == 200
    for path in ("/login", "/forgot-password", "/no-such-page", "/acme/", "/acme/issues"):
        refused = client.get(path, base_url=f"https://{EVIL}")
        assert refused.status_code == 400, path
        assert "not served" in refused.get_data(as_text=True)
    assert client.post("/forgot-password", base_url=f"https://{EVIL}").status_code == 400
    assert client.get("/login", base_url="https://worklane.example:8443").status_code == 400


def test_production_health_checks_answer_for_any_host(migrated_env):
    """Load balancers probe /healthz by IP: the liveness check answers whatever the Host."""
    client = production_app(migrated_env).test_client()
    assert client.get("/healthz", base_url="http://10.0.0.7:8000").status_code == 200


def test_allowed_hosts_adds_names_in_production(migrated_env):
    """ALLOWED_HOSTS names extra hosts production serves (an internal name), besides PUBLIC_URL's."""
    client = production_app(migrated_env, ALLOWED_HOSTS="worklane.internal, 10.0.0.7:8000").test_client()
    assert client.get("/login", base_url="http://worklane.internal").status_code == 200
    assert client.get("/login", base_url="http://10.0.0.7:8000").status_code == 200
    assert client.get("/login", base_url=f"https://{EVIL}").status_code == 400


_SOURCE_DIRS = ("app", "workers", "templates")
_FORBIDDEN = {
    "_external": re.compile(r"\b_external\s*="),
    "request.host_url": re.compile(r"\bhost_url\b"),
    "request.url_root": re.compile(r"\burl_root\b"),
}


def test_no_link_is_built_from_the_request_host():
    """No source file or template builds an absolute URL from the request (only app.core.mail.public_url)."""
    found = []
    for folder in _SOURCE_DIRS:
        for path in sorted((PROJECT_ROOT / folder).rglob("*")):
            if path.suffix not in {".py", ".html", ".txt"}:
                continue
            text = path.read_text(encoding="utf-8")
            for label, pattern in _FORBIDDEN.items():
                if pattern.search(text):
                    found.append(f"{path.relative_to(PROJECT_ROOT)}: {label}")
    assert found == []


def test_mail_templates_take_links_from_their_context():
    """Mail templates never call url_for: every link they show comes from public_url."""
    calls = [
        str(path.relative_to(PROJECT_ROOT))
        for path in sorted((PROJECT_ROOT / "templates" / "email").rglob("*"))
        if path.is_file() and "url_for(" in path.read_text(encoding="utf-8")
    ]
    assert calls == []


def test_make_run_points_public_url_at_the_port_it_serves():
    """`make run` on another port (5000 taken or PORT given) sets PUBLIC_URL to that port."""
    run = run_script()
    taken = run.web_address({}, port_free=lambda port: False)
    assert taken["HOST"] == "127.0.0.1"
    assert taken["PUBLIC_URL"] == f"http://127.0.0.1:{taken['PORT']}" and taken["PORT"] != "5000"
    assert run.web_address({"PORT": "8123"})["PUBLIC_URL"] == "http://127.0.0.1:8123"
    assert run.web_address({"PORT": "8123", "HOST": "0.0.0.0"})["PUBLIC_URL"] == "http://127.0.0.1:8123"
    given = run.web_address({"PORT": "8123", "PUBLIC_URL": "https://dev.example"})
    assert given["PUBLIC_URL"] == "https://dev.example"
