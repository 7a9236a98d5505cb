"""Commands read together on one pooled connection (app/core/redis_reads.py), as a pipeline reads them."""

from __future__ import annotations

import pytest
from redis import Redis
from redis.client import Pipeline
from redis.exceptions import ConnectionError, ResponseError

from app.core.redis_breaker import client_options
from app.core.redis_reads import read_together
from tests.accounts import login
from tests.conftest import free_port
from tests.factories import make_acme


def test_the_replies_are_those_of_a_pipeline(redis_client):
    """A hash, present and missing values: the same replies as a redis-py pipeline's."""
    redis_client.hset("reads:hash", mapping={"a": b"1", "b": b"\x00two"})
    redis_client.set("reads:value", b"!\x80value")
    commands = [
        ("HGETALL", "reads:hash"),
        ("MGET", "reads:value", "reads:missing"),
        ("HGETALL", "reads:none"),
    ]
    pipe = redis_client.pipeline(transaction=False)
    pipe.hgetall("reads:hash")
    pipe.mget(["reads:value", "reads:missing"])
    pipe.hgetall("reads:none")
    assert read_together(redis_client, *commands) == pipe.execute()
    assert read_together(redis_client, *commands) == [
        {b"a": b"1", b"b": b"\x00two"},
        [b"!\x80value", None],
        {},
    ]


def test_an_error_reply_is_raised_after_every_reply_is_read(redis_client):
    """A refused command (HGETALL of a string) raises after every reply is read: the socket stays in step."""
    redis_client.set("reads:string", b"text")
    redis_client.set("reads:after", b"after")
    pool = redis_client.connection_pool
    connection = pool.get_connection()  # the connection read_together takes next
    pool.release(connection)
    sock = connection._sock
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        read_together(redis_client, ("HGETALL", "reads:string"), ("MGET", "reads:after"))
    assert connection._sock is sock and not connection.can_read()
    assert read_together(redis_client, ("MGET", "reads:after")) == [[b"after"]]


def test_a_connection_that_fails_is_closed_and_given_back():
    """No Redis listening: a connection error is raised and the pool keeps no connection in use."""
    client = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", **client_options("redis://", 0.2, 0.2))
    with pytest.raises(ConnectionError):
        read_together(client, ("HGETALL", "reads:hash"), ("MGET", "reads:value"))
    pool = client.connection_pool
    assert not pool._in_use_connections
    assert all(connection._sock is None for connection in pool._available_connections)


def test_a_warm_page_makes_no_pipeline_object(app, client, db_session, monkeypatch):
    """A warm list reads its session, account and page without a redis-py pipeline."""
    make_acme({"grace@example.com": "member"}).add_issue("Broken login")
    db_session.commit()
    login(client, "grace@example.com")
    client.get("/acme/issues")
    client.get("/acme/issues")
    executed = []
    execute = Pipeline.execute
    monkeypatch.setattr(
        Pipeline, "execute", lambda pipe, *args, **kw: executed.append(1) or execute(pipe, *args, **kw)
    )
    assert client.get("/acme/issues").status_code == 200
    assert executed == []
