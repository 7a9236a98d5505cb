"""Test data: an organization with its people (one of each role), projects, labels and issues.

Plain functions over the real models and the real database, the one place tests build the
organization they start from (people alone: ``make_user``, ``make_org`` and ``add_member`` in
``tests.accounts``). ``make_acme`` flushes and never commits: the caller commits when the data
is complete, inside ``db_session``'s transaction or, for other processes to see, with
``committed_db``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from app.core.tenancy import tenant_context
from app.extensions import db
from app.issues import services as issues
from app.models import Issue, Label, Organization, Project, User
from tests.accounts import OrgRef, add_member, browser_login, make_org, make_user

OWNER = "owner@example.com"

# Everyone the tests know by name: the same address is always the same person.
PEOPLE = {
    OWNER: "Olive Owner",
    "grace@example.com": "Grace Hopper",
    "vic@example.com": "Vic Viewer",
    "max@example.com": "Max Member",
    "adam@example.com": "Adam Admin",
    "ada@example.com": "Ada Admin",
    "ava@example.com": "Ava Admin",
    "dora@example.com": "Dora Digest",
    "bert@example.com": "Bert Beta",
    "ann@example.com": "Ann Owner",
    "bob@example.com": "Bob Owner",
    "grace@acme.example": "Grace Hopper",  # at a domain an organization proves (single sign-on)
}

PROJECT_NAMES = {"WEB": "Website", "API": "Public API"}


def person(email: str) -> User:
    """A verified user with the name the tests know ``email`` by."""
    return make_user(email, name=PEOPLE[email])


@dataclass
class Team:
    """An organization as ``make_team`` built it: live objects until the caller commits."""

    org: Organization
    owner: User
    people: dict[str, User] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)
    labels: dict[str, Label] = field(default_factory=dict)

    @property
    def id(self) -> uuid.UUID:
        return self.org.id

    @property
    def ref(self) -> OrgRef:
        return OrgRef(self.org.id, self.org.slug, self.org.name)

    def add_issue(
        self, title: str, *args, project: str = "WEB", author: User | None = None, **fields
    ) -> Issue:
        """An issue in ``project``, made by the service the pages use (by the owner unless ``author``)."""
        with tenant_context(self.org.id):
            return issues.create_issue(self.projects[project], author or self.owner, title, *args, **fields)


def make_team(
    name: str,
    slug: str,
    owner: str,
    members: dict[str, str] | None = None,
    projects: dict[str, str | dict] | tuple[str, ...] = (),
    labels: tuple[str, ...] = (),
) -> Team:
    """An organization owned by ``owner`` with ``members`` ({email: role}), projects and labels.

    ``projects`` names the keys (named from ``PROJECT_NAMES``) or maps each key to its name or
    its fields; the owner creates them. People are made in the order given, after the owner.
    """
    owner_user = person(owner)
    team = Team(make_org(owner_user, name, slug), owner_user, {owner: owner_user})
    for email, role in (members or {}).items():
        team.people[email] = person(email)
        add_member(team.org, team.people[email], role)
    if isinstance(projects, tuple):
        projects = {key: PROJECT_NAMES[key] for key in projects}
    with tenant_context(team.org.id):
        for key, fields in projects.items():
            fields = {"name": fields} if isinstance(fields, str) else fields
            team.projects[key] = Project(key=key, created_by_id=owner_user.id, **fields)
        team.labels = {label: Label(name=label) for label in labels}
        db.session.add_all([*team.projects.values(), *team.labels.values()])
        db.session.flush()
    return team


def make_acme(
    members: dict[str, str] | None = None,
    projects: dict[str, str | dict] | tuple[str, ...] = ("WEB",),
    labels: tuple[str, ...] = (),
) -> Team:
    """Acme (/acme/), owned by Olive (owner@example.com), with a WEB project unless told otherwise."""
    return make_team("Acme", "acme", OWNER, members, projects, labels)


def make_beta(projects: dict[str, str | dict] | tuple[str, ...] = ()) -> Team:
    """Beta (/beta/), owned by Bert (bert@example.com): the organization beside Acme."""
    return make_team("Beta", "beta", "bert@example.com", projects=projects)


def acme_in_browser(
    page, app, live_server, members: dict[str, str] | None = None, email: str = OWNER
) -> Team:
    """Acme (``make_acme(members)``, committed) with ``email`` signed in to it in the browser ``page``."""
    with app.app_context():
        acme = make_acme(members)
        db.session.commit()
    browser_login(page, live_server, email)
    return acme
