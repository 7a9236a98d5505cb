"""The audit log's hash chain: canonical entries, their hashes, the per-organization lock and head,
and the signatures of checkpoints.

Each organization's entries form one chain: entry *n* holds ``prev_hash`` = the hash of entry
*n - 1* (``GENESIS_HASH`` for the first) and ``hash`` = SHA-256 of its canonical serialisation
(:func:`canonical_entry`, which includes ``prev_hash``). Changing any field of an entry changes its
hash; deleting one leaves a gap in the sequence numbers; rewriting every hash after an edit is
caught by a checkpoint, whose HMAC only a holder of ``AUDIT_SIGNING_KEY`` can make.

Entries are appended one at a time per organization: on PostgreSQL the writer takes a
transaction-scoped advisory lock keyed by the organization (held to commit or rollback), on
SQLite the database's one writer lock serialises them. The head the next entry follows is read
under that lock, so two requests never fork the chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from app.models import AuditCheckpoint, AuditEvent
from app.models.base import utcnow

#: The ``prev_hash`` of an organization's first entry, and the anchor before any was deleted.
GENESIS_HASH = "0" * 64
#: The session's ``info`` key holding the chain heads this transaction has moved, per organization.
_HEADS = "audit_chain_heads"


def _moment(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value is not None else None


def _text(value) -> str | None:
    return str(value) if value is not None else None


def canonical_entry(event: AuditEvent) -> bytes:
    """The bytes an entry's hash is computed over: every field, in a fixed order and form."""
    fields = {
        "v": 1,
        "tenant_id": _text(event.tenant_id),
        "sequence": event.sequence,
        "id": _text(event.id),
        "action": event.action,
        "actor_id": _text(event.actor_id),
        "actor_name": event.actor_name,
        "actor_email": event.actor_email,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_label": event.target_label,
        "data": event.data or {},
        "ip_address": event.ip_address,
        "request_id": event.request_id,
        "created_at": _moment(event.created_at),
        "prev_hash": event.prev_hash,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(event: AuditEvent) -> str:
    return hashlib.sha256(canonical_entry(event)).hexdigest()


def plain_data(data: dict) -> dict:
    """``data`` as the JSON column gives it back (ids and dates as text), so the hash computed
    before the entry is stored is the one computed from the stored row."""
    return json.loads(json.dumps(data, default=str, sort_keys=True))


# --- signing checkpoints -------------------------------------------------------------------------


def _signing_key() -> bytes:
    key = current_app.config.get("AUDIT_SIGNING_KEY")
    if not key:
        raise RuntimeError("AUDIT_SIGNING_KEY is not set: audit checkpoints cannot be signed")
    return key.encode()


def checkpoint_signature(checkpoint: AuditCheckpoint) -> str:
    fields = {
        "v": 1,
        "tenant_id": _text(checkpoint.tenant_id),
        "id": _text(checkpoint.id),
        "created_at": _moment(checkpoint.created_at),
        "entry_count": checkpoint.entry_count,
        "head_sequence": checkpoint.head_sequence,
        "head_hash": checkpoint.head_hash,
        "anchor_sequence": checkpoint.anchor_sequence,
        "anchor_hash": checkpoint.anchor_hash,
    }
    message = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(_signing_key(), message, hashlib.sha256).hexdigest()


def signature_valid(checkpoint: AuditCheckpoint) -> bool:
    return hmac.compare_digest(checkpoint.signature or "", checkpoint_signature(checkpoint))


# --- the lock and the head -----------------------------------------------------------------------


def _lock_key(tenant_id: uuid.UUID) -> int:
    digest = hashlib.sha256(b"worklane.audit-chain:" + tenant_id.bytes).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_chain(session: Session, tenant_id: uuid.UUID) -> None:
    """Hold the organization's chain until this transaction ends (PostgreSQL; SQLite writers
    already run one at a time)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(tenant_id)})


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    """The current organization's latest checkpoint."""
    newest_first = (AuditCheckpoint.created_at.desc(), AuditCheckpoint.id.desc())
    return session.scalar(select(AuditCheckpoint).order_by(*newest_first).limit(1))


def stored_head(session: Session) -> tuple[int, str]:
    """(sequence, hash) of the current organization's last stored entry; with no entry, the
    anchor of its latest checkpoint (every entry deleted by retention), else the genesis."""
    last = session.execute(
        select(AuditEvent.sequence, AuditEvent.hash).order_by(AuditEvent.sequence.desc()).limit(1)
    ).first()
    if last is not None:
        return last.sequence, last.hash
    checkpoint = latest_checkpoint(session)
    if checkpoint is not None:
        return checkpoint.anchor_sequence, checkpoint.anchor_hash
    return 0, GENESIS_HASH


def _pending_head(session: Session, tenant_id: uuid.UUID) -> tuple[int, str] | None:
    """The last entry of the organization this session has added but not yet flushed."""
    pending = [
        (obj.sequence, obj.hash)
        for obj in session.new
        if isinstance(obj, AuditEvent) and obj.tenant_id == tenant_id and obj.sequence is not None
    ]
    return max(pending) if pending else None


def append(session: Session, tenant_id: uuid.UUID, event: AuditEvent) -> None:
    """Give ``event`` its place at the head of the organization's chain (under the lock)."""
    heads = session.info.setdefault(_HEADS, {})
    if tenant_id not in heads:
        lock_chain(session, tenant_id)
        with session.no_autoflush:
            heads[tenant_id] = max(stored_head(session), _pending_head(session, tenant_id) or (0, ""))
    sequence, prev_hash = heads[tenant_id]
    event.created_at = utcnow()
    event.sequence, event.prev_hash = sequence + 1, prev_hash
    event.hash = entry_hash(event)
    heads[tenant_id] = (event.sequence, event.hash)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _forget_heads(session: Session, *args) -> None:
    """The transaction (or a savepoint) ended: the heads it knew may have moved or been undone,
    and they are read again, under the lock, for the next entry."""
    session.info.pop(_HEADS, None)
