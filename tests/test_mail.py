"""Outgoing email: templates, the queued delivery job, SMTP settings and the development mail pages."""

from __future__ import annotations

import ipaddress
import json
import os
import smtplib
import ssl
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from rq import Queue
from rq.job import Job
from sqlalchemy import select

from app.config import (
    PROJECT_ROOT,
    ConfigError,
    DevelopmentConfig,
    ProductionConfig,
)
from app.core.mail import render_email, send_email
from app.core.mail_delivery import deliver_email
from app.core.mailserver import SmtpSettings, parse_smtp_url
from app.core.queue.queues import HIGH
from app.devmail import is_message_name
from app.extensions import db
from tests.conftest import PRODUCTION_ENCRYPTION_KEY, free_port, run_flask

EMAIL_CONTEXTS = {
    "verify_email": {"name": "Ada", "verify_url": "https://worklane.test/verify/v3r1fy"},
    "reset_password": {
        "name": "Ada",
        "reset_url": "https://worklane.test/reset/r3s3t",
        "expires_in": "45 minutes",
    },
    "invitation": {
        "inviter_name": "Grace Hopper",
        "org_name": "Analytical Engines",
        "role": "admin",
        "accept_url": "https://worklane.test/invitations/1nv1te",
        "expires_in": "7 days",
    },
    "email_change": {
        "name": "Ada",
        "confirm_url": "https://worklane.test/email/c0nf1rm",
        "new_email": "ada@new.example",
    },
    "password_changed": {"name": "Ada"},
    "email_change_requested": {
        "name": "Ada",
        "old_email": "ada@old.example",
        "new_email": "ada@new.example",
        "reset_url": "https://worklane.test/forgot-password",
    },
    "email_changed": {"name": "Ada", "old_email": "ada@old.example", "new_email": "ada@new.example"},
}
GOOD_SECRET = "x" * 48


@pytest.mark.parametrize("template", sorted(EMAIL_CONTEXTS))
def test_each_template_renders_subject_text_and_html_with_its_context(app, template):
    """Each account email renders a one-line subject, a text and an HTML part that carry its context."""
    context = EMAIL_CONTEXTS[template]
    with app.app_context():
        email = render_email(template, **context)
    assert email.subject and "\n" not in email.subject
    for value in context.values():
        assert str(value) in email.text
        assert str(value) in email.html
    for key, value in context.items():
        if key.endswith("_url"):
            assert f'href="{value}"' in email.html
    assert "You are receiving this email because" in email.text
    assert "You are receiving this email because" in email.html
    assert email.html.lstrip().startswith("<!doctype html>")
    assert f"<title>{email.subject}</title>" in email.html
    assert "Worklane" in email.html and "{%" not in email.text


def test_every_email_template_has_a_text_and_an_html_part():
    """Every template under templates/email/ has both parts, the account emails included."""
    folder = PROJECT_ROOT / "templates" / "email"
    names = {path.name for path in folder.iterdir() if not path.name.startswith("_")}
    stems = {name.rsplit(".", 1)[0] for name in names}
    assert names == {f"{stem}.{ext}" for stem in stems for ext in ("txt", "html")}
    assert set(EMAIL_CONTEXTS) <= stems


def test_html_part_is_escaped_and_text_part_is_not(app):
    """Context is HTML-escaped in the HTML part and left as typed in the text part and subject."""
    with app.app_context():
        email = render_email(
            "invitation",
            **{**EMAIL_CONTEXTS["invitation"], "org_name": "<b>R&D</b>", "inviter_name": "O'Hara"},
        )
    assert email.subject == "O'Hara invited you to join <b>R&D</b> on Worklane"
    assert "<b>R&D</b>" in email.text
    assert "&lt;b&gt;R&amp;D&lt;/b&gt;" in email.html and "<b>R&D</b>" not in email.html


def test_send_email_stores_the_mail_and_queues_only_its_id_at_commit(app, db_session, redis_client):
    """send_email renders into the outbox now; the commit queues its delivery (high queue) by id only."""
    from app.models import OutboxMail

    with app.test_request_context("/"):
        mail_id = send_email("Ada <ada@example.com>", "reset_password", **EMAIL_CONTEXTS["reset_password"]).id
        assert Queue(HIGH, connection=redis_client).count == 0
        db_session.commit()
    [job_id] = Queue(HIGH, connection=redis_client).job_ids
    stored = Job.fetch(job_id, connection=redis_client)
    assert stored.func_name == "app.core.mail_delivery.deliver_outbox_mail"
    assert stored.args == (str(mail_id),) and stored.kwargs == {}
    row = db_session.get(OutboxMail, mail_id)
    assert (row.recipient, row.subject) == ("Ada <ada@example.com>", "Reset your Worklane password")
    assert (
        "https://worklane.test/reset/r3s3t" in row.text_body
        and "https://worklane.test/reset/r3s3t" in row.html_body
    )
    assert (row.status, row.attempts) == ("pending", 0)
    assert "r3s3t" not in stored.description  # the worker logs the description


@pytest.mark.parametrize(
    "to",
    [
        "",
        "ada",
        "ada@",
        "@example.com",
        "ada@example.com, bob@example.com",
        "ada@example.com\nBcc: eve@example.com",
        "ada@example.com\r",
        "ada lovelace@example.com",
        "ada@example",
    ],
)
def test_send_email_refuses_implausible_recipients(app, db_session, redis_client, to):
    """A recipient that is not one plausible address on one line is a ValueError and stores nothing."""
    from app.models import OutboxMail

    with app.test_request_context("/"), pytest.raises(ValueError):
        send_email(to, "password_changed", name="Ada")
    assert Queue(HIGH, connection=redis_client).count == 0
    assert db_session.scalars(select(OutboxMail)).all() == []


def _json_lines(stderr: str) -> list[dict]:
    lines = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


@pytest.mark.processes
def test_worker_process_delivers_mail_to_the_smtp_server(
    app, committed_db, migrated_env, smtp_sink, redis_client
):
    """A real worker delivers a committed email to the SMTP sink with From, To, Subject and both parts."""
    from app.models import OutboxMail

    with app.test_request_context("/"):
        mail = send_email(
            "Ada Lovelace <ada@example.com>", "reset_password", **EMAIL_CONTEXTS["reset_password"]
        )
        mail_id = mail.id
        db.session.commit()
    env = {
        **migrated_env,
        "SMTP_URL": smtp_sink.url,
        "MAIL_FROM": "Worklane <robot@mail.worklane.test>",
        "LOG_LEVEL": "INFO",
    }
    result = run_flask(env, "worker", "--burst", "--queues", "high")
    assert result.returncode == 0, result.stderr

    [message] = smtp_sink.messages()
    assert message["From"] == "Worklane <robot@mail.worklane.test>"
    assert message["To"] == "Ada Lovelace <ada@example.com>"
    assert message["Subject"] == "Reset your Worklane password"
    assert message["Message-ID"] == f"<{mail_id}@mail.worklane.test>"
    assert abs(message["Date"].datetime - datetime.now(UTC)) < timedelta(minutes=5)
    assert message.get_content_type() == "multipart/alternative"
    assert "https://worklane.test/reset/r3s3t" in message.get_body(("plain",)).get_content()
    assert 'href="https://worklane.test/reset/r3s3t"' in message.get_body(("html",)).get_content()
    with app.app_context():
        row = db.session.get(OutboxMail, mail_id)
        assert (row.status, row.attempts) == ("sent", 1) and row.sent_at is not None

    delivered = [line for line in _json_lines(result.stderr) if line.get("message") == "email delivered"]
    assert len(delivered) == 1
    assert delivered[0]["to"] == "Ada Lovelace <ada@example.com>"
    assert delivered[0]["message_id"] == message["Message-ID"]
    assert "r3s3t" not in result.stderr  # no body, and no link from it, in any log line


@pytest.mark.processes
def test_refused_smtp_connection_keeps_the_mail_for_a_retry(app, committed_db, migrated_env, redis_client):
    """Refused SMTP connections leave the mail pending for a retry, error kept; no body in the logs."""
    from app.models import OutboxMail

    with app.test_request_context("/"):
        mail_id = send_email("ada@example.com", "reset_password", **EMAIL_CONTEXTS["reset_password"]).id
        db.session.commit()
    env = {**migrated_env, "SMTP_URL": f"smtp://127.0.0.1:{free_port()}"}
    result = run_flask(env, "worker", "--burst", "--queues", "high")
    assert result.returncode == 0, result.stderr

    with app.app_context():
        row = db.session.get(OutboxMail, mail_id)
        assert (row.status, row.attempts) == ("pending", 1)
        assert "ConnectionRefusedError" in row.last_error
        assert row.due_at > datetime.now(UTC) + timedelta(seconds=5)
    assert "ConnectionRefusedError" in result.stderr
    assert "r3s3t" not in result.stderr and "Hi Ada" not in result.stderr


def test_without_smtp_url_delivery_is_dropped_with_a_warning(app, caplog):
    """With no SMTP_URL (development without a sink) deliver_email logs a warning and sends nothing."""
    assert app.config["SMTP_URL"] is None
    with app.app_context():
        assert deliver_email("ada@example.com", "Subject", "text body", "<p>html body</p>") is None
    [record] = [r for r in caplog.records if r.name == "app.core.mail_delivery"]
    assert record.levelname == "WARNING" and "dropped" in record.getMessage()
    assert record.to == "ada@example.com"


@pytest.fixture
def self_signed_cert(tmp_path, monkeypatch):
    """A certificate for 127.0.0.1 that this process's default TLS context trusts."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


class RecordingHandler:
    def __init__(self):
        self.messages: list[bytes] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.original_content)
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        self.logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=True)


@pytest.mark.parametrize("scheme", ["starttls", "smtps"])
def test_delivery_uses_tls_and_logs_in_as_configured(app, make_app, migrated_env, self_signed_cert, scheme):
    """STARTTLS and implicit TLS (smtps://) are used as the URL says, with the percent-decoded login."""
    handler = RecordingHandler()
    port = free_port()
    if scheme == "starttls":
        controller = Controller(
            handler,
            hostname="127.0.0.1",
            port=port,
            tls_context=self_signed_cert,
            require_starttls=True,  # refuses everything, login included, before STARTTLS
            authenticator=handler.authenticate,
        )
        url = f"smtp://robot%40worklane.test:p%40ss%3Aword@127.0.0.1:{port}?starttls=true"
    else:
        # The whole connection is TLS (aiosmtpd only tracks TLS begun by STARTTLS).
        controller = Controller(
            handler,
            hostname="127.0.0.1",
            port=port,
            ssl_context=self_signed_cert,
            authenticator=handler.authenticate,
            auth_require_tls=False,
        )
        url = f"smtps://robot%40worklane.test:p%40ss%3Aword@127.0.0.1:{port}"
    mail_app = make_app({**migrated_env, "SMTP_URL": url})
    controller.start()
    try:
        with mail_app.app_context():
            message_id = deliver_email("ada@example.com", "Hello", "text part", "<p>html part</p>")
    finally:
        controller.stop()
    assert handler.logins == [("robot@worklane.test", "p@ss:word")]
    [raw] = handler.messages
    assert f"Message-ID: {message_id}".encode() in raw


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://127.0.0.1:1025", SmtpSettings("127.0.0.1", 1025)),
        ("smtp://mail.example.com:587?starttls=true", SmtpSettings("mail.example.com", 587, starttls=True)),
        ("smtps://u:p@mail.example.com:465", SmtpSettings("mail.example.com", 465, True, False, "u", "p")),
        ("smtp://a%40b.c:p%2Fw%3F@h:25", SmtpSettings("h", 25, username="a@b.c", password="p/w?")),
    ],
)
def test_smtp_url_forms(url, expected):
    """Plain, STARTTLS and implicit-TLS URLs parse, with user and password percent-decoded."""
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://mail.example.com:25", "must look like smtp://"),
        ("smtp://mail.example.com", "needs a port"),
        ("smtp://mail.example.com:http", "invalid port"),
        ("smtp://:25", "no host"),
        ("smtp://mail.example.com:25/inbox", "must not have a path"),
        ("smtp://mail.example.com:25?tls=yes", "unknown option(s) tls"),
        ("smtp://mail.example.com:25?starttls=maybe", "starttls must be true or false"),
        ("smtps://mail.example.com:465?starttls=true", "already TLS"),
        ("smtp://user@mail.example.com:25", "no password"),
    ],
)
def test_malformed_smtp_url_is_a_config_error(tmp_path, url, complaint):
    """A malformed SMTP_URL stops the config with a message that says what is wrong."""
    with pytest.raises(ConfigError, match="SMTP_URL") as excinfo:
        DevelopmentConfig.from_env({"WORKLANE_INSTANCE_PATH": str(tmp_path), "SMTP_URL": url})
    assert complaint in str(excinfo.value)


def test_smtp_config_error_never_repeats_the_password(tmp_path):
    """The message for a bad SMTP_URL does not contain its password."""
    with pytest.raises(ConfigError) as excinfo:
        DevelopmentConfig.from_env(
            {"WORKLANE_INSTANCE_PATH": str(tmp_path), "SMTP_URL": "smtp://u:sup3rs3cret@h:25/x"}
        )
    assert "sup3rs3cret" not in str(excinfo.value)


def test_malformed_mail_from_is_a_config_error(tmp_path):
    """MAIL_FROM must be an address with a domain."""
    with pytest.raises(ConfigError, match="MAIL_FROM"):
        DevelopmentConfig.from_env({"WORKLANE_INSTANCE_PATH": str(tmp_path), "MAIL_FROM": "Worklane"})


@pytest.mark.processes
def test_production_requires_smtp_url(tmp_path):
    """Production names SMTP_URL among the missing settings, and `import wsgi` exits with that message."""
    env = {
        "SECRET_KEY": GOOD_SECRET,
        "AUDIT_SIGNING_KEY": "a" * 48,
        "DATABASE_URL": "postgres://a@b/c",
        "REDIS_URL": "redis://r:6379/0",
        "PUBLIC_URL": "https://worklane.example.com",
        "ENCRYPTION_KEYS": PRODUCTION_ENCRYPTION_KEY,
    }
    with pytest.raises(ConfigError, match="missing required environment variable\\(s\\): SMTP_URL"):
        ProductionConfig.from_env(env)
    config = ProductionConfig.from_env({**env, "SMTP_URL": "smtps://u:p@mail.example.com:465"})
    assert config.MAIL_FROM == "Worklane <no-reply@worklane.localhost>"

    base = {k: v for k, v in os.environ.items() if k not in {"SMTP_URL", "MAIL_FROM"}}
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=PROJECT_ROOT,
        env={**base, **env, "WORKLANE_ENV": "production", "WORKLANE_INSTANCE_PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "cannot start" in result.stderr and "SMTP_URL" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.processes
def test_sink_stores_whole_messages_and_stops_cleanly(smtp_sink):
    """The sink keeps each message as one complete, well-named .eml file and exits 0 on SIGTERM."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.com", "b@example.com", "Grüße"
    message.set_content("hello")
    with smtplib.SMTP("127.0.0.1", smtp_sink.port, timeout=10) as smtp:
        smtp.send_message(message)
        smtp.send_message(message)
    files = sorted(path.name for path in smtp_sink.maildir.iterdir())
    assert len(files) == 2 and all(is_message_name(name) for name in files)
    assert [m["Subject"] for m in smtp_sink.messages()] == ["Grüße", "Grüße"]
    assert smtp_sink.stop() == 0
    assert "stopped" in smtp_sink.output()


# --- /dev/mail ------------------------------------------------------------------------


@pytest.fixture
def dev_app(make_dev_app, smtp_sink):
    """A development app whose SMTP_URL is the sink and whose /dev/mail reads the sink's folder."""
    return make_dev_app(smtp_sink.maildir, SMTP_URL=smtp_sink.url)


def _deliver(app, template, **context) -> str:
    with app.app_context():
        email = render_email(template, **context)
        return deliver_email("ada@example.com", email.subject, email.text, email.html)


@pytest.mark.processes
def test_dev_mail_lists_and_shows_stored_messages(dev_app, smtp_sink):
    """/dev/mail lists caught mail newest first; a message page shows headers and the text with live links."""
    _deliver(dev_app, "password_changed", name="Ada")
    message_id = _deliver(
        dev_app, "verify_email", name="<script>x</script>", verify_url="https://w.test/v?a=1&b=2"
    )
    client = dev_app.test_client()

    listing = client.get("/dev/mail")
    assert listing.status_code == 200
    page = listing.get_data(as_text=True)
    assert "ada@example.com" in page
    assert page.index("Confirm your email address") < page.index("Your Worklane password was changed")

    name = sorted(path.name for path in smtp_sink.maildir.glob("*.eml"))[-1]
    assert f'href="/dev/mail/{name}"' in page
    shown = client.get(f"/dev/mail/{name}")
    assert shown.status_code == 200
    body = shown.get_data(as_text=True)
    assert message_id.strip("<>") in body and "Worklane &lt;no-reply@worklane.localhost&gt;" in body
    assert '<pre class="devmail-text">' in body
    assert '<a href="https://w.test/v?a=1&amp;b=2" rel="noreferrer">https://w.test/v?a=1&amp;b=2</a>' in body
    assert "&lt;script&gt;x&lt;/script&gt;" in body and "<script>x</script>" not in body
    assert f'href="/dev/mail/{name}/html"' in body


@pytest.mark.processes
def test_dev_mail_html_part_is_sandboxed(dev_app, smtp_sink):
    """The HTML part is served with a sandboxing CSP and nosniff."""
    _deliver(dev_app, "password_changed", name="Ada")
    [path] = smtp_sink.maildir.glob("*.eml")
    response = dev_app.test_client().get(f"/dev/mail/{path.name}/html")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == (
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Your Worklane password was changed" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "name",
    [
        "secret_key",
        "..%2Fsecret_key",
        "..%2F..%2Fapp%2Fconfig.py",
        "20260101T000000.000000Z-" + "0" * 32 + ".eml",  # well formed, but no such message
        "20260101T000000.000000Z-" + "0" * 32 + ".eml.tmp",
    ],
)
@pytest.mark.processes
def test_dev_mail_bad_names_are_404(dev_app, smtp_sink, name):
    """Anything but the name of a stored message is a 404, for the page and for its HTML part."""
    (smtp_sink.maildir / "secret_key").write_text("not mail")
    client = dev_app.test_client()
    assert client.get(f"/dev/mail/{name}").status_code == 404
    assert client.get(f"/dev/mail/{name}/html").status_code == 404


def test_dev_mail_pages_exist_only_in_development(app, client):
    """The testing (and production) app has no /dev/mail blueprint."""
    assert "devmail" not in app.blueprints
    assert client.get("/dev/mail").status_code == 404
