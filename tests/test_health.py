"""Liveness and readiness endpoints for operators and load balancers."""

from __future__ import annotations

from flask_migrate import upgrade

from app.config import PROJECT_ROOT
from tests.conftest import free_port


def test_healthz_answers_without_dependencies(client):
    """/healthz is 200 JSON and never cached."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_reports_every_check(client):
    """/readyz is 200 with database, schema revision and Redis all good."""
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    body = response.json
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["database"]["schema_revision"] == body["checks"]["database"]["code_revision"]
    assert body["checks"]["redis"]["ok"] is True


def test_readyz_fails_when_redis_is_down(migrated_env, make_app):
    """/readyz is 503 naming Redis when Redis cannot be reached; /healthz stays 200."""
    app = make_app({**migrated_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    client = app.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["redis"]["ok"] is False
    assert "Connection" in response.json["checks"]["redis"]["error"]
    assert response.json["checks"]["database"]["ok"] is True
    assert client.get("/healthz").status_code == 200


def test_readyz_fails_when_database_is_down(migrated_env, make_app):
    """/readyz is 503 naming the database when it cannot be reached."""
    url = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2"
    app = make_app({**migrated_env, "DATABASE_URL": url})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["database"]["ok"] is False
    assert response.json["checks"]["redis"]["ok"] is True


def test_readyz_fails_until_migrations_reach_head(migrated_env, make_app, tmp_path):
    """A database behind the migration head is not ready; after upgrade it is."""
    app = make_app({**migrated_env, "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"})
    client = app.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    database = response.json["checks"]["database"]
    assert database["schema_revision"] is None
    assert database["code_revision"]
    with app.app_context():
        upgrade(directory=str(PROJECT_ROOT / "migrations"))
    assert client.get("/readyz").status_code == 200
