"""The audit log's hash chain: built in order, one chain under concurrent writers, and
`flask audit verify` passing on a clean log and failing on every kind of tampering."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from app.audit.chain import ChainBroken, apply_retention, sign_checkpoint
from app.audit.jobs import sign_audit_checkpoints
from app.core import audit
from app.core.audit_chain import GENESIS_HASH, _lock_key, entry_hash
from app.core.queue.queues import enqueue
from app.core.tenancy import tenant_context, unscoped
from app.extensions import db
from app.models import AuditCheckpoint, AuditEvent
from app.models.base import new_id, utcnow
from tests.conftest import run_flask
from tests.factories import make_acme, make_beta
from tests.support.workers import wait_for


def _entries(session, org_id) -> list[AuditEvent]:
    session.expire_all()
    with tenant_context(org_id):
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.sequence)))


def _record(org_id, count: int, action: str = "test.event") -> None:
    with tenant_context(org_id):
        for number in range(count):
            audit.record(action, number=number)
        db.session.flush()  # in the organization (row-level security checks the new rows)


def _verify(app, *args):
    return app.test_cli_runner().invoke(args=["audit", "verify", *args])


def _checkpoint(app, session, org_id) -> None:
    with app.app_context(), tenant_context(org_id):
        sign_checkpoint(org_id)
        session.commit()


def _retention(app, org_id, **after) -> int:
    """Apply the retention as it will run ``after`` (days) from now."""
    with app.app_context(), tenant_context(org_id):
        deleted = apply_retention(org_id, now=utcnow() + timedelta(**after))
        db.session.commit()
    return deleted


def _sql(session, org_id, statement: str, **values) -> None:
    """Change the log behind the ORM's back, as someone with database access would."""
    with tenant_context(org_id):
        session.execute(text(statement), values)
    session.commit()


@pytest.fixture
def acme(db_session):
    team = make_acme({"grace@example.com": "admin"})
    _record(team.id, 4)
    db_session.commit()
    return team.ref


def test_entries_are_chained_in_order(app, db_session, acme):
    """Each entry has the next sequence number, the previous entry's hash, and a hash of its fields."""
    entries = _entries(db_session, acme.id)
    assert [entry.sequence for entry in entries] == [1, 2, 3, 4, 5]
    assert entries[0].action == "organization.created" and entries[0].prev_hash == GENESIS_HASH
    for before, entry in itertools.pairwise(entries):
        assert entry.prev_hash == before.hash
    assert all(entry.hash == entry_hash(entry) for entry in entries)
    assert entries[0].actor_name == "Olive Owner" and entries[0].actor_email == "owner@example.com"
    assert entries[0].target_label == "Acme"


def test_each_organization_has_its_own_chain(app, db_session, acme):
    """Another organization's entries start their own chain at 1."""
    beta = make_beta()
    _record(beta.id, 2)
    db_session.commit()
    assert [entry.sequence for entry in _entries(db_session, beta.id)] == [1, 2, 3]
    assert _entries(db_session, beta.id)[0].prev_hash == GENESIS_HASH


def test_a_savepoint_rolled_back_leaves_no_gap(app, db_session, acme):
    """An entry added in a savepoint that rolls back gives its place to the next one."""
    with tenant_context(acme.id):
        nested = db_session.begin_nested()
        audit.record("test.undone")
        db_session.flush()
        nested.rollback()
        audit.record("test.kept")
        db_session.commit()
    entries = _entries(db_session, acme.id)
    assert [(entry.sequence, entry.action) for entry in entries[-2:]] == [(5, "test.event"), (6, "test.kept")]
    assert _verify(app).exit_code == 0


def test_verify_passes_on_a_clean_log(app, db_session, acme):
    """A log nobody touched verifies, before and after a checkpoint."""
    result = _verify(app)
    assert result.exit_code == 0, result.output
    assert "acme: ok (5 entries, 0 checkpoints)" in result.output
    _checkpoint(app, db_session, acme.id)
    _record(acme.id, 1)
    db_session.commit()
    result = _verify(app, "--org", "acme")
    assert result.exit_code == 0, result.output
    assert "acme: ok (6 entries, 1 checkpoints)" in result.output


def test_verify_fails_on_an_entry_edited_in_the_database(app, db_session, acme):
    """An UPDATE through SQL (past the ORM's append-only guard) is named by its sequence number."""
    _sql(db_session, acme.id, "UPDATE audit_events SET ip_address = '10.6.6.6' WHERE sequence = 3")
    result = _verify(app)
    assert result.exit_code == 1
    assert "acme: FAILED: entry #3" in result.output and "was altered" in result.output


def test_verify_fails_on_a_deleted_middle_entry(app, db_session, acme):
    """A gap in the sequence is a deleted entry."""
    _sql(db_session, acme.id, "DELETE FROM audit_events WHERE sequence = 2")
    result = _verify(app)
    assert result.exit_code == 1
    assert "entry #2 is missing (deleted)" in result.output


def test_verify_fails_on_a_deleted_last_entry(app, db_session, acme):
    """The latest signed checkpoint names the head: deleting the last entry truncates the chain."""
    _checkpoint(app, db_session, acme.id)
    _sql(db_session, acme.id, "DELETE FROM audit_events WHERE sequence = 5")
    result = _verify(app)
    assert result.exit_code == 1
    assert "the chain was truncated" in result.output and "#5" in result.output


def test_verify_fails_on_a_rewritten_chain(app, db_session, acme):
    """An edit with every later hash computed again is caught by the signed head."""
    _checkpoint(app, db_session, acme.id)
    with tenant_context(acme.id):
        entries = db_session.scalars(select(AuditEvent).order_by(AuditEvent.sequence)).all()
        db_session.expunge_all()  # the copies are changed here only, never flushed
        previous = entries[1].hash
        for entry in entries[2:]:
            entry.ip_address, entry.prev_hash = "10.6.6.6", previous
            previous = entry.hash = entry_hash(entry)
            db_session.execute(
                text(
                    "UPDATE audit_events SET ip_address = :ip, prev_hash = :prev, hash = :hash "
                    "WHERE sequence = :sequence"
                ),
                {
                    "ip": entry.ip_address,
                    "prev": entry.prev_hash,
                    "hash": entry.hash,
                    "sequence": entry.sequence,
                },
            )
    db_session.commit()
    result = _verify(app)
    assert result.exit_code == 1, result.output
    assert "is not the entry the checkpoint" in result.output and "rewritten" in result.output


def test_verify_fails_on_a_forged_checkpoint(app, db_session, acme):
    """A checkpoint not signed with AUDIT_SIGNING_KEY is refused."""
    with app.app_context(), tenant_context(acme.id):
        db_session.add(
            AuditCheckpoint(
                id=new_id(),
                created_at=utcnow(),
                entry_count=3,
                head_sequence=3,
                head_hash="f" * 64,
                anchor_sequence=0,
                anchor_hash=GENESIS_HASH,
                signature="0" * 64,
            )
        )
        db_session.commit()
    result = _verify(app)
    assert result.exit_code == 1
    assert "signature does not match (forged or altered)" in result.output


def test_retention_deletes_old_entries_and_the_chain_still_verifies(app, db_session, acme, monkeypatch):
    """Entries older than the organization keeps are deleted; the signed anchor keeps the rest verifiable."""
    later = utcnow() + timedelta(days=100)
    monkeypatch.setattr("app.core.audit_chain.utcnow", lambda: later)
    _record(acme.id, 2, "test.later")
    db_session.commit()
    monkeypatch.undo()
    deleted = _retention(app, acme.id, days=366)
    db_session.commit()
    assert deleted == 5
    assert [(e.sequence, e.action) for e in _entries(db_session, acme.id)] == [
        (6, "test.later"),
        (7, "test.later"),
    ]
    result = _verify(app)
    assert result.exit_code == 0, result.output
    _record(acme.id, 1)  # the chain goes on from its head
    db_session.commit()
    assert _verify(app).exit_code == 0
    _sql(db_session, acme.id, "DELETE FROM audit_events WHERE sequence = 6")  # not retention's doing
    assert "entry #6 is missing" in _verify(app).output


def test_retention_of_every_entry_keeps_the_chain_going(app, db_session, acme):
    """When retention deletes every entry, the next one follows the signed anchor."""
    _retention(app, acme.id, days=400)
    db_session.commit()
    assert _entries(db_session, acme.id) == []
    assert _verify(app).exit_code == 0
    _record(acme.id, 1)
    db_session.commit()
    assert [entry.sequence for entry in _entries(db_session, acme.id)] == [6]
    assert _verify(app).exit_code == 0


def test_retention_honours_the_organizations_setting(app, db_session, acme):
    """An organization keeping 30 days loses entries older than that; one keeping 365 does not."""
    assert _retention(app, acme.id, days=31) == 0
    with unscoped("test: the setting"):
        db_session.execute(text("UPDATE organizations SET audit_retention_days = 30"))
    assert _retention(app, acme.id, days=31) == 5
    db_session.commit()
    assert _verify(app).exit_code == 0


@pytest.mark.postgres_only
def test_two_concurrent_writers_make_one_chain(app, committed_db):
    """Two requests adding entries in one organization at once wait on its chain lock: one chain."""
    with app.app_context():
        team = make_acme()
        db.session.commit()
        org_id = team.id
    errors = []

    def write(name):
        try:
            with app.app_context(), tenant_context(org_id):
                for number in range(5):
                    audit.record("test.concurrent", writer=name, number=number)
                    db.session.commit()
        except Exception as exc:  # reported by the assertion below
            errors.append(repr(exc))

    with app.app_context(), unscoped("the test holds the organization's chain lock"):
        holder = db.engine.connect()
        holder.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(org_id)})
    threads = [threading.Thread(target=write, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()

    def waiting() -> int:
        with app.app_context(), db.engine.connect() as probe:
            return probe.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'"
                )
            ).scalar()

    wait_for(lambda: waiting() >= 2, 20, "both writers to wait for the chain lock", interval=0.02)
    holder.rollback()
    holder.close()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with app.app_context():
        entries = _entries(db.session, org_id)
        assert [entry.sequence for entry in entries] == list(range(1, 12))
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
        db.session.remove()
    assert _verify(app).exit_code == 0


@pytest.mark.processes
def test_the_periodic_jobs_run_in_a_worker_and_verify_runs_as_a_command(app, committed_db, migrated_env):
    """A real worker signs the checkpoint and applies the retention; `flask audit verify` then
    passes as its own process, and fails once an entry is edited."""
    with app.app_context():
        org_id = make_acme().id
        _record(org_id, 2)
        db.session.commit()
        enqueue("app.audit.jobs.sign_audit_checkpoints")
        enqueue("app.audit.jobs.apply_audit_retention")
    assert run_flask(migrated_env, "worker", "--burst").returncode == 0
    with app.app_context(), unscoped("test: the signed checkpoint"):
        checkpoint = db.session.scalars(select(AuditCheckpoint)).one()
        assert (checkpoint.entry_count, checkpoint.head_sequence, checkpoint.anchor_sequence) == (3, 3, 0)
    verified = run_flask(migrated_env, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "acme: ok (3 entries, 1 checkpoints)" in verified.stdout
    with app.app_context(), tenant_context(org_id):
        db.session.execute(text("UPDATE audit_events SET action = 'test.hidden' WHERE sequence = 2"))
        db.session.commit()
    refused = run_flask(migrated_env, "audit", "verify", "--org", "acme")
    assert refused.returncode == 1 and "entry #2" in refused.stderr


def test_a_chain_changed_since_its_last_checkpoint_is_not_signed(app, db_session, acme):
    """The checkpoint job refuses to vouch for entries edited after they were written."""
    _checkpoint(app, db_session, acme.id)
    _record(acme.id, 2)
    db_session.commit()
    _sql(db_session, acme.id, "UPDATE audit_events SET ip_address = '10.6.6.6' WHERE sequence = 6")
    with app.app_context(), tenant_context(acme.id), pytest.raises(ChainBroken, match="entry #6"):
        sign_checkpoint(acme.id)
    with app.app_context():
        assert sign_audit_checkpoints() == 0  # the job logs the problem and signs nothing
        db_session.commit()
    with tenant_context(acme.id):
        assert len(db_session.scalars(select(AuditCheckpoint)).all()) == 1
    assert "entry #6" in _verify(app).output
