"""Labels: created by admins on the settings screen or by members from an issue's form, renamed,
recoloured and deleted by admins. Names are unique per organization whatever their case; the
database has the last word (a unique index on the folded name), so two people creating the same
name at once end with one label and the second is told so."""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from app.core import audit
from app.extensions import db
from app.models import IssueLabel, Label
from app.models.labels import DEFAULT_LABEL_COLOR, LABEL_COLORS, folded_label_name


class LabelError(ValueError):
    """A refusal shown to the person as it is (next to the name they typed)."""


def clean_name(name: str) -> str:
    """The name as stored: spaces at the ends dropped, runs of spaces inside made one."""
    return " ".join((name or "").split())


def label_named(name: str, other_than=None) -> Label | None:
    """The organization's label with this name, whatever its case (other than ``other_than``)."""
    statement = select(Label).where(Label.folded_name == folded_label_name(clean_name(name)))
    if other_than is not None:
        statement = statement.where(Label.id != other_than.id)
    return db.session.scalar(statement)


def label_or_404(label_id) -> Label:
    """The label with this id in the current organization, or 404."""
    label = Label.get_scoped(db.session, label_id)
    if label is None:
        abort(404)
    return label


def _taken(name: str, existing: Label | None = None) -> LabelError:
    shown = existing.name if existing is not None else name
    return LabelError(f"A label named “{shown}” already exists.")


def _check_color(color: str) -> None:
    if color not in LABEL_COLORS.values():
        raise LabelError("Choose one of the colours shown.")


def _write(label: Label, new: bool, **values) -> None:
    """Set ``values`` on the label and flush it in a savepoint: a name another label took in the
    meantime is a LabelError, and the rest of the request's work stays."""
    try:
        with db.session.begin_nested():
            for field, value in values.items():
                setattr(label, field, value)
            db.session.add(label)
    except IntegrityError as exc:
        name = values.get("name", label.name)
        raise _taken(name, label_named(name, other_than=None if new else label)) from exc


def create_label(name: str, color: str = DEFAULT_LABEL_COLOR) -> Label:
    """A new label of the current organization (LabelError when the name is taken)."""
    name = clean_name(name)
    _check_color(color)
    if existing := label_named(name):
        raise _taken(name, existing)
    label = Label()
    _write(label, True, name=name, color=color)
    audit.record("label.created", target=label, name=name, color=color)
    return label


def label_for_issue(name: str) -> Label:
    """The label an issue's form names in its "new label" field: the existing one of that name
    (whatever its case), or a new one in the default colour."""
    name = clean_name(name)
    if existing := label_named(name):
        return existing
    try:
        return create_label(name)
    except LabelError:  # created by someone else in the meantime: use theirs
        found = label_named(name)
        if found is None:
            raise
        return found


def update_label(label: Label, name: str, color: str) -> list[str]:
    """Rename and recolour; returns the fields changed (audited when there are any)."""
    name = clean_name(name)
    _check_color(color)
    old_name = label.name
    changed = [field for field, value in (("name", name), ("color", color)) if getattr(label, field) != value]
    if not changed:
        return []
    if "name" in changed and (existing := label_named(name, other_than=label)):
        raise _taken(name, existing)
    _write(label, False, name=name, color=color)
    audit.record("label.updated", target=label, name=name, old_name=old_name, fields=changed)
    return changed


def issue_count(label: Label) -> int:
    """How many issues carry the label."""
    statement = select(func.count()).select_from(IssueLabel).where(IssueLabel.label_id == label.id)
    return db.session.scalar(statement)


def delete_label(label: Label) -> int:
    """Delete the label and take it off its issues; returns how many issues had it."""
    count = issue_count(label)
    db.session.execute(delete(IssueLabel).where(IssueLabel.label_id == label.id))
    db.session.delete(label)
    audit.record("label.deleted", target=label, name=label.name, issues=count)
    db.session.flush()
    return count


@dataclass(frozen=True)
class LabelUse:
    label: Label
    issues: int


def labels_in_use() -> list[LabelUse]:
    """Every label of the organization by name, with how many issues carry it."""
    rows = db.session.execute(
        select(Label, func.count(IssueLabel.issue_id))
        .outerjoin(IssueLabel, (IssueLabel.tenant_id == Label.tenant_id) & (IssueLabel.label_id == Label.id))
        .group_by(Label.tenant_id, Label.id)
        .order_by(Label.folded_name)
    ).all()
    return [LabelUse(label, count) for label, count in rows]
