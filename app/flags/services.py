"""Operators setting a flag: mode, percentage, organizations named by their addresses.

A flag is the system's, not an organization's, so its change is not in any organization's audit
log: the row keeps who changed it last and when (shown on ``/operators/flags``), and every change
is written to the log (``worklane.flags``, with the operator's address and the states before and
after), which the deployment keeps with its other logs.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import select

from app.core import cache
from app.core.cache_topics import expire_at_commit
from app.extensions import db
from app.flags.catalog import FLAGS
from app.flags.state import TOPIC
from app.models import FeatureFlag, Organization, User

log = logging.getLogger("worklane.flags")

#: Organizations one flag may list by name (more is a percentage's job).
MAX_LISTED = 200


class FlagError(ValueError):
    """A refusal shown to the operator as it is."""


def rows() -> dict[str, FeatureFlag]:
    return {row.name: row for row in db.session.scalars(select(FeatureFlag))}


def slugs_of(organization_ids) -> list[str]:
    """The addresses of the listed organizations still there, by address."""
    ids = [found for value in organization_ids or () if (found := _uuid(value)) is not None]
    if not ids:
        return []
    return sorted(db.session.scalars(select(Organization.slug).where(Organization.id.in_(ids))))


def _uuid(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def parse_slugs(text: str) -> list[str]:
    """Addresses typed one per line or separated by commas or spaces, lower-cased, each once."""
    return list(dict.fromkeys(part.lower() for part in text.replace(",", " ").split()))


def set_flag(operator: User, name: str, mode: str, percentage: int | None, slugs: list[str]) -> FeatureFlag:
    """Set the flag ``name``; FlagError for an unknown flag, mode, percentage or address. The
    caller commits; every process sees the change from the commit on."""
    if name not in FLAGS:
        raise FlagError(f"There is no flag {name}.")
    if mode not in FeatureFlag.MODES:
        raise FlagError("Choose how the flag is set.")
    percentage = percentage or 0
    if not 0 <= percentage <= 100:
        raise FlagError("The percentage is a whole number from 0 to 100.")
    ids: list[str] = []
    if mode == FeatureFlag.LISTED:
        if len(slugs) > MAX_LISTED:
            raise FlagError(f"List at most {MAX_LISTED} organizations; use a percentage for more.")
        named = select(Organization.slug, Organization.id).where(Organization.slug.in_(slugs))
        found = dict(db.session.execute(named).all())
        unknown = [slug for slug in slugs if slug not in found]
        if unknown:
            raise FlagError(f"No organization has the address {', '.join(unknown)}.")
        ids = [str(found[slug]) for slug in slugs]
    row = db.session.get(FeatureFlag, name)
    before = None if row is None else (row.mode, row.percentage, list(row.organization_ids or ()))
    if row is None:
        row = FeatureFlag(name=name)
        db.session.add(row)
    row.mode = mode
    row.percentage = percentage if mode == FeatureFlag.PERCENTAGE else 0
    row.organization_ids = ids
    row.updated_by_id = operator.id
    db.session.flush()
    expire_at_commit(db.session, [cache.global_topic_key(TOPIC)])
    log.info(
        "feature flag set",
        extra={
            "flag": name,
            "operator": operator.email,
            "before": before,
            "after": (row.mode, row.percentage, ids),
        },
    )
    return row
