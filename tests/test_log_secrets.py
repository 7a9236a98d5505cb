"""Secrets stay out of logs and job arguments: links that carry tokens are redacted everywhere."""

from __future__ import annotations

import logging
import re

import pytest

from tests.accounts import make_user, post_form, sent_mails


def _logged_text(caplog) -> str:
    """Everything the captured records hold: messages, arguments and extra fields."""
    return "\n".join(f"{record.getMessage()} {vars(record)!r}" for record in caplog.records)


def _token_rules(app):
    from app.core.logs import SECRET_NAMES

    return [rule for rule in app.url_map.iter_rules() if set(rule.arguments) & SECRET_NAMES]


def test_a_reset_link_leaves_no_token_in_the_logs(client, db_session, redis_client, caplog):
    """Opening and posting a live reset link logs the path with the token redacted."""
    make_user("ada@example.com")
    db_session.commit()
    post_form(client, "/forgot-password", email="ada@example.com")
    path = sent_mails(redis_client, "ada@example.com")[0].link()
    token = path.rsplit("/", 1)[1]
    caplog.clear()  # only the two requests below (an earlier test may have left INFO on)
    with caplog.at_level(logging.INFO):
        assert client.get(path).status_code == 200
        assert client.get(path + "?next=/x&token=" + token).status_code == 200
    assert token not in _logged_text(caplog)
    access = [r for r in caplog.records if r.name == "worklane.access"]
    assert len(access) == 2
    assert access[0].path == "/reset-password/[redacted]"
    assert access[1].getMessage() == "GET /reset-password/[redacted]?next=/x&token=[redacted] 200"


def test_every_route_with_a_token_in_its_path_is_redacted(app, client, caplog):
    """Every URL rule with a token variable (found in the URL map) is logged redacted, whatever it answers."""
    rules = _token_rules(app)
    names = {rule.endpoint for rule in rules}
    assert {
        "auth.reset_password",
        "auth.verify_email",
        "auth.confirm_email_change",
        "orgs.invitation",
    } <= names
    secret = "s3cr3t-Zm9vYmFy.abc_def"
    with caplog.at_level(logging.INFO, logger="worklane.access"):
        for rule in rules:
            values = {name: secret if name in {"token", "signature"} else "acme" for name in rule.arguments}
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m, values=values: values[m.group(1)], rule.rule)
            client.get(path)
    assert len([r for r in caplog.records if r.name == "worklane.access"]) == len(rules)
    assert secret not in _logged_text(caplog)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("GET /verify/abc.DEF-123 200", "GET /verify/[redacted] 200"),
        (
            '"GET /account/email/confirm/abc HTTP/1.1" 400',
            '"GET /account/email/confirm/[redacted] HTTP/1.1" 400',
        ),
        ("https://w.test/invitations/abc/signup", "https://w.test/invitations/[redacted]/signup"),
        (
            "/acme/settings/export/download?token=abc&x=1",
            "/acme/settings/export/download?token=[redacted]&x=1",
        ),
        ("/acme/issues?q=token", "/acme/issues?q=token"),
        ("/verify/", "/verify/"),
    ],
)
def test_redact_hides_token_segments_and_token_parameters_in_any_text(app, line, expected):
    """One function redacts token path segments and token query parameters in free text."""
    from app.core.logs import redact

    assert redact(line) == expected


def test_the_log_handler_redacts_lines_of_any_logger(app):
    """A line from any logger (a library's request line, an error with a URL) is written redacted."""
    [handler] = [h for h in logging.getLogger().handlers if h.get_name() == "worklane"]
    record = logging.LogRecord(
        "werkzeug", logging.INFO, __file__, 1, '"%s" %s', ("GET /reset-password/abc.def HTTP/1.1", 200), None
    )
    record.url = "http://x/verify/abc.def"
    assert handler.filter(record)
    line = handler.format(record)
    assert "abc.def" not in line and "/reset-password/[redacted]" in line and "/verify/[redacted]" in line


def test_no_job_in_redis_carries_a_token_after_a_reset_request(client, db_session, redis_client):
    """After a reset request, no job hash in Redis holds the reset token (arguments, description or meta)."""
    from rq.job import Job

    make_user("ada@example.com")
    db_session.commit()
    assert post_form(client, "/forgot-password", email="ada@example.com").status_code == 200
    token = sent_mails(redis_client, "ada@example.com")[0].link().rsplit("/", 1)[1]
    hashes = [key for key in redis_client.scan_iter("rq:job:*") if redis_client.type(key) == b"hash"]
    assert hashes, "the delivery job is queued"
    for key in hashes:
        job = Job.fetch(key.decode().removeprefix("rq:job:"), connection=redis_client)
        assert token not in repr((job.args, job.kwargs, job.description, job.meta))
        assert not any(token.encode() in value for value in redis_client.hgetall(key).values())


def test_a_text_without_a_secret_route_is_not_searched_for_one(app, monkeypatch):
    """A path naming no token-carrying route's start is not searched with the routes' combined pattern."""
    from app.core import logs

    searched = []

    class Counted:
        def __init__(self, pattern):
            self.pattern = pattern

        def search(self, text):
            searched.append(text)
            return self.pattern.search(text)

    monkeypatch.setattr(logs, "_any_secret_rule", Counted(logs._any_secret_rule))
    assert logs.redact("GET /acme/issues/WEB-1 200") == "GET /acme/issues/WEB-1 200"
    assert searched == []
    assert logs.redact("/acme/reset-password/abc/x") == "/acme/reset-password/[redacted]/x"
    assert searched == ["/acme/reset-password/abc/x"]
