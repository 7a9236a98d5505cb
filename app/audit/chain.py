"""Checking an organization's audit chain, signing checkpoints of it, and deleting what its
retention no longer keeps, without breaking what can be checked.

**Verification** (``flask audit verify``), per organization:

1. every checkpoint's signature is checked (a forged or altered checkpoint fails);
2. the chain is walked from the anchor of the latest checkpoint (the last entry retention
   deleted; sequence 0 and the genesis hash before any): each entry must have the next
   sequence number (a gap is a deleted entry), the previous entry's hash as ``prev_hash``, and
   a hash that matches its fields (an edited entry);
3. every checkpoint whose head is still in the log must find its head entry there with the
   signed hash, and the latest must find as many entries up to its head as it counted (a
   deleted last entry, a truncated chain, or a chain rewritten with new hashes).

**Retention** deletes a prefix of the chain (every entry up to the newest one older than the
organization's ``audit_retention_days``) and, in the same transaction, signs a checkpoint whose
anchor is the last deleted entry: the first entry left must follow it. Later checkpoints carry
the anchor forward, so the signed anchor is always the latest checkpoint's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select

from app.core import audit_chain
from app.core.audit_chain import GENESIS_HASH, entry_hash, latest_checkpoint, lock_chain, signature_valid
from app.core.tenancy import require_tenant
from app.extensions import db
from app.models import AuditCheckpoint, AuditEvent, Organization
from app.models.base import new_id, utcnow
from app.models.orgs import AUDIT_RETENTION_MIN_DAYS


@dataclass
class ChainReport:
    """What verifying one organization's chain found: ``problem`` is None when all is well."""

    entries: int
    checkpoints: int
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _short(value: str) -> str:
    return value[:12]


#: Entries read at a time while a chain is walked.
WALK_BATCH = 1000


def verify_chain() -> ChainReport:
    """Verify the current organization's chain and checkpoints; the first problem found. The
    entries are read a batch at a time, in order, whatever the length of the log. The
    organization is named in the queries too, so a caller inside ``unscoped`` gets one chain."""
    tenant_id = require_tenant()
    checkpoints = db.session.scalars(
        select(AuditCheckpoint)
        .where(AuditCheckpoint.tenant_id == tenant_id)
        .order_by(AuditCheckpoint.created_at, AuditCheckpoint.id)
    ).all()
    report = ChainReport(0, len(checkpoints))
    for checkpoint in checkpoints:
        if not signature_valid(checkpoint):
            report.problem = (
                f"checkpoint {checkpoint.id} of {checkpoint.created_at.isoformat()}: its signature does not "
                "match (forged or altered)"
            )
            return report
    anchor_sequence, anchor_hash = (0, GENESIS_HASH)
    if checkpoints:
        anchor_sequence, anchor_hash = checkpoints[-1].anchor_sequence, checkpoints[-1].anchor_hash
    walk = _Walk(anchor_sequence, anchor_hash, {c.head_sequence for c in checkpoints})
    entries = select(AuditEvent).where(AuditEvent.tenant_id == tenant_id).order_by(AuditEvent.sequence)
    entries = entries.execution_options(yield_per=WALK_BATCH)
    result = db.session.scalars(entries)
    try:
        for entry in result:
            report.problem = walk.step(entry)
            if report.problem:
                break
    finally:
        result.close()  # a walk stopped early leaves no cursor open
    report.entries = walk.count
    report.problem = report.problem or _against_checkpoints(walk, checkpoints)
    return report


class _Walk:
    """A walk along a chain from its anchor, entry by entry, keeping the hashes of the entries
    the checkpoints signed as heads."""

    def __init__(self, anchor_sequence: int, anchor_hash: str, heads=()):
        self.anchor = anchor_sequence
        self.expected, self.previous = anchor_sequence + 1, anchor_hash
        self.wanted = {head for head in heads if head > anchor_sequence}
        self.heads: dict[int, AuditEvent] = {}
        self.count = 0

    @property
    def last(self) -> int:
        return self.expected - 1

    def step(self, entry: AuditEvent) -> str | None:
        """The problem with the next entry, or None (and the walk moves past it)."""
        if entry.sequence <= self.anchor:
            return f"entry #{entry.sequence} ({entry.id}) is older than the signed anchor #{self.anchor}"
        if entry.sequence != self.expected:
            return f"entry #{self.expected} is missing (deleted): the log goes on at #{entry.sequence}"
        if entry.prev_hash != self.previous:
            return (
                f"entry #{entry.sequence} ({entry.id}) does not follow entry #{self.last}: its prev_hash "
                f"{_short(entry.prev_hash)} is not {_short(self.previous)}"
            )
        if entry_hash(entry) != entry.hash:
            return f"entry #{entry.sequence} ({entry.id}) was altered: its fields do not match its hash"
        if entry.sequence in self.wanted:
            self.heads[entry.sequence] = entry
        self.expected, self.previous = entry.sequence + 1, entry.hash
        self.count += 1
        return None


def _walk(entries, anchor_sequence: int, anchor_hash: str) -> str | None:
    """The first problem of ``entries`` as a chain from this anchor, or None."""
    walk = _Walk(anchor_sequence, anchor_hash)
    return next((problem for entry in entries if (problem := walk.step(entry))), None)


def _against_checkpoints(walk: _Walk, checkpoints) -> str | None:
    """The first checkpoint whose signed head the walked chain does not hold."""
    for checkpoint in reversed(checkpoints):
        if checkpoint.head_sequence <= walk.anchor:
            continue
        when = checkpoint.created_at.isoformat()
        head = walk.heads.get(checkpoint.head_sequence)
        if head is None:
            return (
                f"the chain was truncated: the checkpoint of {when} signed entry #{checkpoint.head_sequence} "
                f"as its head, and the log ends at #{walk.last}"
            )
        if head.hash != checkpoint.head_hash:
            return (
                f"entry #{head.sequence} ({head.id}) is not the entry the checkpoint of {when} signed "
                "(the chain was rewritten)"
            )
    latest = checkpoints[-1] if checkpoints else None
    if latest is not None and latest.head_sequence > walk.anchor:
        counted = min(walk.last, latest.head_sequence) - walk.anchor
        if counted != latest.entry_count:
            return (
                f"the checkpoint of {latest.created_at.isoformat()} counted {latest.entry_count} entries "
                f"up to #{latest.head_sequence}; the log holds {counted}"
            )
    return None


def _sign(anchor_sequence: int, anchor_hash: str) -> AuditCheckpoint:
    """A signed checkpoint of the current organization's chain as it now stands (under its lock)."""
    head_sequence, head_hash = audit_chain.stored_head(db.session)
    if head_sequence <= anchor_sequence:
        head_sequence, head_hash = anchor_sequence, anchor_hash
    count = db.session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.sequence > anchor_sequence)
    )
    checkpoint = AuditCheckpoint(
        tenant_id=require_tenant(),
        id=new_id(),
        created_at=utcnow(),
        entry_count=count or 0,
        head_sequence=head_sequence,
        head_hash=head_hash,
        anchor_sequence=anchor_sequence,
        anchor_hash=anchor_hash,
    )
    checkpoint.signature = audit_chain.checkpoint_signature(checkpoint)
    db.session.add(checkpoint)
    db.session.flush()
    return checkpoint


class ChainBroken(Exception):
    """The entries since the last signed checkpoint do not follow it: nothing is signed."""


def sign_checkpoint(tenant_id: uuid.UUID) -> AuditCheckpoint | None:
    """Sign a checkpoint of the organization's chain if it moved since the last one (the caller
    commits). Takes the chain's lock, so no entry is added between the count and the head.

    The entries added since the last checkpoint are checked first (sequence, links, hashes): a
    chain changed since is never signed (:class:`ChainBroken`), so a checkpoint vouches only for
    entries as they were written."""
    lock_chain(db.session, tenant_id)
    latest = latest_checkpoint(db.session)
    anchor = (latest.anchor_sequence, latest.anchor_hash) if latest else (0, GENESIS_HASH)
    head_sequence, head_hash = audit_chain.stored_head(db.session)
    if latest is not None and (latest.head_sequence, latest.head_hash) == (head_sequence, head_hash):
        return None
    if latest is None and head_sequence == 0:
        return None
    since = (latest.head_sequence, latest.head_hash) if latest else anchor
    newer = db.session.scalars(
        select(AuditEvent).where(AuditEvent.sequence > since[0]).order_by(AuditEvent.sequence)
    ).all()
    problem = _walk(newer, *since)
    if problem:
        raise ChainBroken(problem)
    return _sign(*anchor)


def apply_retention(tenant_id: uuid.UUID, now=None) -> int:
    """Delete the entries the organization no longer keeps and sign the new anchor (the caller
    commits); how many were deleted."""
    kept = db.session.scalar(select(Organization.audit_retention_days).where(Organization.id == tenant_id))
    days = max(kept or 0, AUDIT_RETENTION_MIN_DAYS)
    cutoff = (now or utcnow()) - timedelta(days=days)
    lock_chain(db.session, tenant_id)
    last_old = db.session.execute(
        select(AuditEvent.sequence, AuditEvent.hash)
        .where(AuditEvent.created_at < cutoff)
        .order_by(AuditEvent.sequence.desc())
        .limit(1)
    ).first()
    if last_old is None:
        return 0
    statement = delete(AuditEvent).where(AuditEvent.sequence <= last_old.sequence)
    result = db.session.execute(statement.execution_options(synchronize_session=False))
    _sign(last_old.sequence, last_old.hash)
    return result.rowcount
