"""The factory has no side effects; configuration comes from the environment."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import pytest
from cryptography.fernet import Fernet

from app.config import (
    PROJECT_ROOT,
    ConfigError,
    DevelopmentConfig,
    ProductionConfig,
    TestingConfig,
    config_from_env,
    normalize_database_url,
)

GOOD_SECRET = "x" * 48
#: A key made for this run of the tests: no key is kept in the repository.
ENCRYPTION_KEY = Fernet.generate_key().decode()
GOOD_AUDIT_KEY = "k" * 48


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DATABASE_URL", "REDIS_URL"}}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=PROJECT_ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.processes
def test_import_and_factory_open_no_socket(tmp_path):
    """Importing the package and calling create_app opens no socket and creates no database."""
    db_file = tmp_path / "never-created.db"
    result = _python(
        f"""
        import sys

        def refuse_sockets(event, args):
            if event in ("socket.__new__", "socket.connect", "socket.getaddrinfo"):
                raise RuntimeError("socket opened: " + event)

        sys.addaudithook(refuse_sockets)
        import app
        from app.config import TestingConfig
        config = TestingConfig.from_env({{
            "DATABASE_URL": "sqlite:///{db_file}",
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "WORKLANE_INSTANCE_PATH": "{tmp_path}",
        }})
        flask_app = app.create_app(config)
        assert flask_app.url_map is not None
        print("factory ok")
        """,
        {},
    )
    assert result.returncode == 0, result.stderr
    assert "factory ok" in result.stdout
    assert not db_file.exists()


@pytest.mark.processes
@pytest.mark.parametrize("missing", ["SECRET_KEY", "AUDIT_SIGNING_KEY"])
def test_production_without_a_secret_exits_with_clear_message(tmp_path, missing):
    """Production refuses to start without SECRET_KEY, or without AUDIT_SIGNING_KEY (the audit
    checkpoints' key), and says which variable is missing."""
    secrets = {"SECRET_KEY": GOOD_SECRET, "AUDIT_SIGNING_KEY": GOOD_AUDIT_KEY}
    del secrets[missing]
    result = _python(
        "import wsgi",
        {
            "WORKLANE_ENV": "production",
            "DATABASE_URL": "postgresql://app@db.invalid/worklane",
            "REDIS_URL": "redis://cache.invalid:6379/0",
            "WORKLANE_INSTANCE_PATH": str(tmp_path),
            **secrets,
        },
    )
    assert result.returncode == 1
    assert "cannot start" in result.stderr
    assert missing in result.stderr.split("variable(s):", 1)[-1]
    assert "Traceback" not in result.stderr


def test_production_lists_every_missing_setting():
    """All missing production settings are named at once."""
    with pytest.raises(ConfigError) as excinfo:
        ProductionConfig.from_env({})
    message = str(excinfo.value)
    for name in (
        "SECRET_KEY",
        "AUDIT_SIGNING_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "SMTP_URL",
        "PUBLIC_URL",
        "ENCRYPTION_KEYS",
    ):
        assert name in message


def test_production_rejects_short_secret_and_sqlite():
    """A short SECRET_KEY or a SQLite database is refused in production."""
    env = {
        "AUDIT_SIGNING_KEY": GOOD_AUDIT_KEY,
        "DATABASE_URL": "postgresql://a@b/c",
        "REDIS_URL": "redis://r:6379/0",
        "SMTP_URL": "smtp://m:25",
        "PUBLIC_URL": "https://worklane.example.com",
        "ENCRYPTION_KEYS": ENCRYPTION_KEY,
    }
    with pytest.raises(ConfigError, match="at least 32"):
        ProductionConfig.from_env({**env, "SECRET_KEY": "short"})
    with pytest.raises(ConfigError, match="PostgreSQL"):
        ProductionConfig.from_env({**env, "SECRET_KEY": GOOD_SECRET, "DATABASE_URL": "sqlite:///x.db"})


def test_production_rejects_a_short_or_reused_audit_signing_key():
    """The audit signing key is at least 32 characters and is not the SECRET_KEY."""
    env = {"SECRET_KEY": GOOD_SECRET, "DATABASE_URL": "postgresql://a@b/c", "REDIS_URL": "redis://r:6379/0"}
    env |= {"SMTP_URL": "smtp://m:25", "PUBLIC_URL": "https://worklane.example.com"}
    env |= {"ENCRYPTION_KEYS": ENCRYPTION_KEY}
    with pytest.raises(ConfigError, match="AUDIT_SIGNING_KEY must be at least 32"):
        ProductionConfig.from_env({**env, "AUDIT_SIGNING_KEY": "short"})
    with pytest.raises(ConfigError, match="AUDIT_SIGNING_KEY must differ"):
        ProductionConfig.from_env({**env, "AUDIT_SIGNING_KEY": GOOD_SECRET})
    config = ProductionConfig.from_env({**env, "AUDIT_SIGNING_KEY": GOOD_AUDIT_KEY})
    assert config.AUDIT_SIGNING_KEY == GOOD_AUDIT_KEY


def test_development_derives_an_audit_signing_key(tmp_path):
    """Development derives a stable audit signing key from its own secret, different from it."""
    first = DevelopmentConfig.from_env({"WORKLANE_INSTANCE_PATH": str(tmp_path)})
    second = DevelopmentConfig.from_env({"WORKLANE_INSTANCE_PATH": str(tmp_path)})
    assert first.AUDIT_SIGNING_KEY == second.AUDIT_SIGNING_KEY
    assert len(first.AUDIT_SIGNING_KEY) >= 32 and first.AUDIT_SIGNING_KEY != first.SECRET_KEY
    environ = {"WORKLANE_INSTANCE_PATH": str(tmp_path), "AUDIT_SIGNING_KEY": "g" * 40}
    given = DevelopmentConfig.from_env(environ)
    assert given.AUDIT_SIGNING_KEY == "g" * 40


def test_production_config_is_secure():
    """A complete production config has secure cookies and the psycopg driver."""
    config = ProductionConfig.from_env(
        {
            "SECRET_KEY": GOOD_SECRET,
            "AUDIT_SIGNING_KEY": GOOD_AUDIT_KEY,
            "DATABASE_URL": "postgres://a@b/c",
            "REDIS_URL": "redis://r:6379/0",
            "SMTP_URL": "smtp://mail.example.com:587?starttls=true",
            "PUBLIC_URL": "https://worklane.example.com",
            "ENCRYPTION_KEYS": ENCRYPTION_KEY,
        }
    )
    assert config.SESSION_COOKIE_SECURE is True
    assert config.SQLALCHEMY_DATABASE_URI == "postgresql+psycopg://a@b/c"


PRODUCTION = {
    "SECRET_KEY": GOOD_SECRET,
    "DATABASE_URL": "postgres://a@b/c",
    "REDIS_URL": "redis://r:6379/0",
    "SMTP_URL": "smtp://mail.example.com:25",
    "PUBLIC_URL": "https://worklane.example.com",
    "AUDIT_SIGNING_KEY": GOOD_AUDIT_KEY,
}


def test_production_refuses_to_start_without_encryption_keys():
    """Production names ENCRYPTION_KEYS when it is missing, refuses a value that is no Fernet
    key, and takes several keys newest first."""
    with pytest.raises(ConfigError, match="missing required environment variable\\(s\\): ENCRYPTION_KEYS"):
        ProductionConfig.from_env(PRODUCTION)
    with pytest.raises(ConfigError, match="ENCRYPTION_KEYS must be Fernet keys"):
        ProductionConfig.from_env({**PRODUCTION, "ENCRYPTION_KEYS": "not-a-key"})
    older = Fernet.generate_key().decode()
    config = ProductionConfig.from_env({**PRODUCTION, "ENCRYPTION_KEYS": f"{ENCRYPTION_KEY}, {older}"})
    assert (ENCRYPTION_KEY, older) == config.ENCRYPTION_KEYS


@pytest.mark.processes
def test_production_without_encryption_keys_exits_with_clear_message(tmp_path):
    """`import wsgi` in production without ENCRYPTION_KEYS exits naming it, without a traceback."""
    result = _python(
        "import wsgi",
        {**PRODUCTION, "WORKLANE_ENV": "production", "WORKLANE_INSTANCE_PATH": str(tmp_path)},
    )
    assert result.returncode == 1
    assert "cannot start" in result.stderr and "ENCRYPTION_KEYS" in result.stderr
    assert "Traceback" not in result.stderr


TESTING = {"DATABASE_URL": "sqlite:///unused.db", "REDIS_URL": "redis://r:6379/0"}


def test_development_and_tests_derive_a_key_from_the_secret(tmp_path):
    """Without ENCRYPTION_KEYS, development and tests use a key derived from their secret key
    (a different secret, a different key); a key given is used as it is."""
    first = DevelopmentConfig.from_env({"WORKLANE_INSTANCE_PATH": str(tmp_path)})
    again = DevelopmentConfig.from_env({"WORKLANE_INSTANCE_PATH": str(tmp_path)})
    other = DevelopmentConfig.from_env({"WORKLANE_INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "y" * 48})
    assert first.ENCRYPTION_KEYS == again.ENCRYPTION_KEYS != other.ENCRYPTION_KEYS
    Fernet(first.ENCRYPTION_KEYS[0])  # a usable key
    assert len(TestingConfig.from_env(TESTING).ENCRYPTION_KEYS) == 1
    given = TestingConfig.from_env({**TESTING, "ENCRYPTION_KEYS": ENCRYPTION_KEY})
    assert given.ENCRYPTION_KEYS == (ENCRYPTION_KEY,)


def test_development_keeps_its_own_secret(tmp_path):
    """Development creates a private secret under instance/ once and reuses it."""
    first = DevelopmentConfig.from_env({"WORKLANE_INSTANCE_PATH": str(tmp_path)})
    second = DevelopmentConfig.from_env({"WORKLANE_INSTANCE_PATH": str(tmp_path)})
    secret_file = tmp_path / "secret_key"
    assert first.SECRET_KEY == second.SECRET_KEY
    assert len(first.SECRET_KEY) >= 32
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert f"sqlite:///{tmp_path / 'worklane.db'}" == first.SQLALCHEMY_DATABASE_URI


def test_dotenv_is_read_in_development_only(tmp_path):
    """A .env file fills in development settings; the real environment wins; production ignores it."""
    dotenv = tmp_path / ".env"
    dotenv.write_text("REDIS_URL=redis://from-dotenv:6379/3\nLOG_LEVEL=debug\n")
    env = {"WORKLANE_INSTANCE_PATH": str(tmp_path), "LOG_LEVEL": "warning"}
    config = config_from_env(env, dotenv_path=dotenv)
    assert config.REDIS_URL == "redis://from-dotenv:6379/3"
    assert config.LOG_LEVEL == "WARNING"
    with pytest.raises(ConfigError, match="REDIS_URL"):
        config_from_env(
            {"WORKLANE_ENV": "production", "SECRET_KEY": GOOD_SECRET, "DATABASE_URL": "postgres://a@b/c"},
            dotenv_path=dotenv,
        )


def test_unknown_environment_is_refused():
    """A misspelt WORKLANE_ENV is an error, not a silent fallback."""
    with pytest.raises(ConfigError, match="WORKLANE_ENV"):
        config_from_env({"WORKLANE_ENV": "prod"}, dotenv_path=None)


def test_bad_number_is_a_config_error(tmp_path):
    """A non-numeric RQ_JOB_TIMEOUT is reported by name."""
    with pytest.raises(ConfigError, match="RQ_JOB_TIMEOUT"):
        DevelopmentConfig.from_env({"WORKLANE_INSTANCE_PATH": str(tmp_path), "RQ_JOB_TIMEOUT": "soon"})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+psycopg://u:p@h:5432/d"),
        ("postgresql://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_url_spellings(given, expected):
    """Heroku-style and plain PostgreSQL URLs use the psycopg 3 driver."""
    assert normalize_database_url(given) == expected
