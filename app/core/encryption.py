"""Secrets at rest: values the app must read back (a TOTP secret) are stored encrypted.

``ENCRYPTION_KEYS`` holds Fernet keys, comma-separated, newest first (``app/config``). A value is
encrypted with the newest key and read with any of them (cryptography's ``MultiFernet``), so a
new key is put in front of the old ones, ``flask secrets rotate`` re-encrypts every stored
value under it, and the old key can then be removed.

A model declares such a column with ``EncryptedText``; the rotation finds those columns in the
model registry (``encrypted_columns``), so a column added later is rotated too.
"""

from __future__ import annotations

import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import Text, select, type_coerce, update
from sqlalchemy.types import TypeDecorator

__all__ = ["EncryptedText", "InvalidToken", "decrypt", "encrypt", "encrypted_columns", "rotate_column"]


def parse_keys(raw: str | None) -> tuple[str, ...]:
    """The keys of an ``ENCRYPTION_KEYS`` value, newest first (ValueError for one that is no Fernet key)."""
    keys = tuple(part.strip() for part in (raw or "").split(",") if part.strip())
    for key in keys:
        Fernet(key)  # raises ValueError for anything but 32 url-safe base64-encoded bytes
    return keys


@functools.cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _current() -> MultiFernet:
    return _fernet(tuple(current_app.config["ENCRYPTION_KEYS"]))


def encrypt(plaintext: str) -> str:
    """``plaintext`` encrypted (and authenticated) under the newest key."""
    return _current().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """The plaintext of ``token``, encrypted under any of the keys (InvalidToken otherwise)."""
    return _current().decrypt(token.encode("ascii")).decode()


class EncryptedText(TypeDecorator):
    """A text column stored encrypted: Python sees the plaintext, the database a Fernet token."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else encrypt(value)

    def process_result_value(self, value, dialect):
        return None if value is None else decrypt(value)


def encrypted_columns(models) -> list[tuple[type, str]]:
    """(model, attribute name) of every ``EncryptedText`` column of ``models``."""
    return [
        (model, attribute.key)
        for model in models
        for attribute in model.__mapper__.column_attrs
        if isinstance(attribute.columns[0].type, EncryptedText)
    ]


def rotate_column(session, model, name: str) -> int:
    """Re-encrypt every value of ``model.<name>`` the session can see under the newest key.

    The tokens are read and written as they are stored (``type_coerce`` to plain text), never
    as plaintext; tenant scoping applies as to any query. Returns the number of rows rewritten.
    """
    fernet = _current()
    column = getattr(model, name)
    keys = model.__mapper__.primary_key
    stored = type_coerce(column, Text)
    rows = session.execute(select(*keys, stored).where(column.is_not(None))).all()
    for *key, token in rows:
        rotated = fernet.rotate(token.encode("ascii")).decode("ascii")
        criteria = [key_column == value for key_column, value in zip(keys, key, strict=True)]
        session.execute(
            update(model).where(*criteria).values({name: type_coerce(rotated, Text)}),
            execution_options={"synchronize_session": False},
        )
    return len(rows)
