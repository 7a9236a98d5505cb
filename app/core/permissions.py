"""Roles and what they may do: the one permission map, and the one way to check it."""

from __future__ import annotations

from functools import wraps

from flask import abort, g

OWNER = "owner"
ADMIN = "admin"
MEMBER = "member"
VIEWER = "viewer"
#: From most to least powerful.
ROLES = (OWNER, ADMIN, MEMBER, VIEWER)
ROLE_LABELS = {OWNER: "Owner", ADMIN: "Admin", MEMBER: "Member", VIEWER: "Viewer"}
ROLE_DESCRIPTIONS = {
    OWNER: "Everything, including owners, deleting the organization and billing.",
    ADMIN: "Manages members, invitations and settings.",
    MEMBER: "Creates and edits projects and issues.",
    VIEWER: "Reads everything, changes nothing.",
}

_EVERYONE = frozenset(ROLES)
_WRITERS = frozenset({OWNER, ADMIN, MEMBER})
_ADMINS = frozenset({OWNER, ADMIN})
_OWNERS = frozenset({OWNER})

#: permission -> roles that have it. Viewers hold only the read permissions.
PERMISSIONS: dict[str, frozenset[str]] = {
    "org.view": _EVERYONE,
    "org.update": _ADMINS,
    "org.delete": _OWNERS,
    "members.view": _EVERYONE,
    "members.invite": _ADMINS,
    "members.change_role": _ADMINS,
    "members.remove": _ADMINS,
    "members.manage_owners": _OWNERS,
    "work.view": _EVERYONE,
    "work.edit": _WRITERS,
    # Starting a report computation again (after a failure) costs a worker: not for viewers.
    "reports.recompute": _WRITERS,
    "projects.manage": _ADMINS,
    # Members add labels from an issue's form (work.edit); renaming and deleting is for admins.
    "labels.manage": _ADMINS,
    # A saved view shared with the organization is changed by whoever saved it, or by an admin.
    "views.manage_shared": _ADMINS,
    "audit.view": _ADMINS,
    "org.export": _ADMINS,
}

#: Permissions that change nothing; everything else is a write.
READ_PERMISSIONS = frozenset({"org.view", "members.view", "work.view"})


def role_can(role: str | None, permission: str) -> bool:
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    return role in PERMISSIONS[permission]


def can(permission: str) -> bool:
    """Whether the current member may do this (False outside an organization)."""
    # set by app.orgs.context for organization pages; the proxy resolved first (a read through it
    # costs about 1 µs)
    access = g._get_current_object().get("access")
    return access is not None and role_can(access.role, permission)


def require(permission: str):
    """View decorator: 403 unless the current member has the permission."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not can(permission):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_permission = permission
        return wrapped

    return decorator


def roles_grantable_by(role: str) -> tuple[str, ...]:
    """Roles a member with ``role`` may give to others (only owners make owners)."""
    if role == OWNER:
        return ROLES
    if role == ADMIN:
        return (ADMIN, MEMBER, VIEWER)
    return ()
