"""What an API key may do: read and write per resource, or everything (``admin``).

A scope lets a key use a part of the API; the key still acts within the role its maker holds
in the organization when it is used, so a key never does more than its maker could.
"""

from __future__ import annotations

ADMIN = "admin"

#: scope -> (label, the role permission it also needs: ``app.core.permissions``)
SCOPES: dict[str, tuple[str, str]] = {
    "projects:read": ("Read projects, their states and labels", "work.view"),
    "projects:write": ("Create and change projects", "projects.manage"),
    "issues:read": ("Read and search issues", "work.view"),
    "issues:write": ("Create and change issues", "work.edit"),
    "comments:read": ("Read comments", "work.view"),
    "comments:write": ("Write comments", "work.edit"),
    "labels:write": ("Create labels", "labels.manage"),
    "members:read": ("Read the members", "members.view"),
    ADMIN: ("Everything above", "org.update"),
}


def valid(scopes) -> bool:
    return bool(scopes) and all(scope in SCOPES for scope in scopes)


def grants(held: tuple[str, ...], wanted: str) -> bool:
    """Whether a key holding ``held`` may use what needs ``wanted`` (``admin`` holds every scope,
    and a write scope holds its read)."""
    if ADMIN in held or wanted in held:
        return True
    resource, _, action = wanted.partition(":")
    return action == "read" and f"{resource}:write" in held


def permission_for(scope: str) -> str:
    return SCOPES[scope][1]
