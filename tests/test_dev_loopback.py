"""Development conveniences stay on this machine: the web's default address and /dev/mail."""

from __future__ import annotations

import subprocess

import pytest

from app.config import PROJECT_ROOT


def _web_listen_address(env: dict[str, str]) -> str:
    """The host:port the Procfile's web line computes in this environment (run by sh)."""
    line = next(
        entry.split(":", 1)[1]
        for entry in (PROJECT_ROOT / "Procfile").read_text().splitlines()
        if entry.startswith("web:")
    )
    command = line.replace("exec flask --app wsgi web", "printf '%s\\n'", 1)
    output = subprocess.run(
        ["sh", "-c", command], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    host = next(arg for arg in output if arg.startswith("--host=")).removeprefix("--host=")
    port = next(arg for arg in output if arg.startswith("--port=")).removeprefix("--port=")
    return f"{host}:{port}"


@pytest.mark.processes
def test_development_web_listens_on_loopback_by_default():
    """Without HOST the web binds 127.0.0.1 in development and testing; production keeps all interfaces."""
    assert _web_listen_address({}) == "127.0.0.1:5000"
    assert _web_listen_address({"WORKLANE_ENV": "development", "PORT": "5123"}) == "127.0.0.1:5123"
    assert _web_listen_address({"WORKLANE_ENV": "testing"}) == "127.0.0.1:5000"
    assert _web_listen_address({"WORKLANE_ENV": "production"}) == "0.0.0.0:5000"
    assert _web_listen_address({"WORKLANE_ENV": "production", "HOST": "10.0.0.5"}) == "10.0.0.5:5000"
    assert _web_listen_address({"HOST": "0.0.0.0"}) == "0.0.0.0:5000"


@pytest.fixture
def dev_app(make_dev_app, tmp_path):
    """A development app (the only kind with /dev/mail) reading an empty mail folder."""
    (tmp_path / "mail").mkdir()
    return make_dev_app(tmp_path / "mail")


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "127.0.0.2"])
def test_dev_mail_answers_this_machine(dev_app, address):
    """/dev/mail opens for loopback addresses."""
    client = dev_app.test_client()
    assert client.get("/dev/mail", environ_base={"REMOTE_ADDR": address}).status_code == 200


@pytest.mark.parametrize("address", ["192.168.1.20", "10.0.0.7", "203.0.113.9", "2001:db8::1"])
def test_dev_mail_refuses_other_machines(dev_app, address):
    """/dev/mail and its messages answer 403 to any address that is not loopback."""
    client = dev_app.test_client()
    for path in ("/dev/mail", "/dev/mail/20260101T000000.000000Z-0000.eml"):
        response = client.get(path, environ_base={"REMOTE_ADDR": address})
        assert response.status_code == 403, path
        assert "only served to this machine" in response.get_data(as_text=True)
