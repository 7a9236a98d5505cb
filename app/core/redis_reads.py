"""Several Redis commands sent in one write and read back on one pooled connection.

A warm page reads its session and what goes with it (the account, the page and its versions)
in one round trip of two commands. redis-py's pipeline does that with a pipeline object made per
call, retry and observability wrappers, and per-command bookkeeping for features the web paths do
not use (transactions, watches, HIMPORT field sets, client-side caching): about 230 Python calls,
more than the rest of the session's reading. ``read_together`` sends the same bytes on the same
kind of connection (the breaker of ``app/core/redis_breaker.py`` sits in it) and reads the
replies as the pipeline does: every reply is read before anything is raised, so the pooled socket
never holds half a reply, and a connection that failed is closed before it goes back to the pool.
"""

from __future__ import annotations

from typing import Any

from redis.connection import HiredisRespSerializer
from redis.exceptions import ResponseError
from redis.utils import HIREDIS_AVAILABLE

if HIREDIS_AVAILABLE:
    from hiredis import pack_command


def read_together(client, *commands: tuple) -> list[Any]:
    """The replies of ``commands`` (each ``(name, *args)``), sent to ``client``'s Redis in one
    write, each passed through the client's response callback as a pipeline's are. Raises the
    first error reply (a ``ResponseError``) once every reply is read, like ``pipeline.execute()``;
    on a connection error or timeout the connection is closed and the error raised."""
    pool = client.connection_pool
    callbacks = client.response_callbacks
    connection = pool.get_connection()
    try:
        connection.send_packed_command(_packed(connection, commands))
        replies, error = [], None
        for command in commands:
            try:
                reply = connection.read_response()
            except ResponseError as exc:
                error = error or exc
                replies.append(exc)
                continue
            callback = callbacks.get(command[0])
            replies.append(reply if callback is None else callback(reply))
    except BaseException:
        connection.disconnect()  # a reply may be half read: the socket is not used again
        raise
    finally:
        pool.release(connection)
    if error is not None:
        raise error
    return replies


def _packed(connection, commands: tuple[tuple, ...]) -> list[bytes]:
    """``commands`` in the Redis protocol, as the connection packs them: by hiredis, as its packer
    does for a command named by one word, without the packer's checks of each argument."""
    if HIREDIS_AVAILABLE and type(connection._command_packer) is HiredisRespSerializer:
        return [b"".join([pack_command(command) for command in commands])]
    return connection.pack_commands(commands)
