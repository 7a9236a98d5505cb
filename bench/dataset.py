"""The benchmark's data: organizations with members, projects, issues and what hangs off them.

Rows are generated in Python (ids from ``app.models.base.new_id``, like the app's) and loaded
with PostgreSQL ``COPY`` as the superuser, which row-level security does not apply to. Every
constraint of the models holds: ``tenant_id`` leads every tenant key, and the composite
foreign keys (checked by PostgreSQL during the load) point inside the row's own tenant.

One organization, ``measured``, is the same in every run and at every scale: the pages are
measured there, as its member ``bench@measured.example``. Its projects:

- ``WEB``: a usual project (the issue list and ``WEB-42``, the issue page, are measured here);
- ``BIG``: 5,000 issues, for the board;
- ``OPS``: a small one.

The other organizations are filler whose sizes follow a skewed distribution (a few large
tenants, many small ones), drawn once for the largest step so that every step holds the
same first organizations.
"""

from __future__ import annotations

import json
import random
import secrets
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from app.models.base import new_id
from app.models.labels import folded_label_name
from app.models.workflow import DEFAULT_STATES

MEASURED_SLUG = "measured"
BENCH_EMAIL = "bench@measured.example"
BENCH_PASSWORD = "bench-password-0123"
MEASURED_PROJECTS = (("WEB", "Website", 400), ("BIG", "Platform", 5000), ("OPS", "Operations", 100))
LIST_PROJECT, BOARD_PROJECT, ISSUE_REF = "WEB", "BIG", "WEB-42"
#: A word of about 130 of the measured organization's issues: the search page shows the first 30.
SEARCH_QUERY = "thumbnails"
RANK_STEP = 1024.0

# Columns loaded, per table, in foreign-key order.
TABLES = {
    "organizations": ("id", "slug", "name", "created_at"),
    "users": (
        "id",
        "email",
        "name",
        "password_hash",
        "email_verified_at",
        "session_epoch",
        "created_at",
        "last_login_at",
    ),
    "memberships": ("tenant_id", "id", "user_id", "role", "created_at"),
    "projects": (
        "tenant_id",
        "id",
        "key",
        "name",
        "description",
        "issue_counter",
        "created_by_id",
        "created_at",
        "updated_at",
    ),
    "workflow_states": ("tenant_id", "id", "project_id", "key", "name", "category", "position", "created_at"),
    "labels": ("tenant_id", "id", "name", "folded_name", "color", "created_at"),
    "issues": (
        "tenant_id",
        "id",
        "project_id",
        "number",
        "title",
        "description",
        "state",
        "priority",
        "due_date",
        "estimate",
        "created_by_id",
        "created_at",
        "updated_at",
        "closed_at",
        "version",
        "rank",
    ),
    "issue_assignees": ("tenant_id", "issue_id", "user_id"),
    "issue_labels": ("tenant_id", "issue_id", "label_id"),
    "issue_watchers": ("tenant_id", "issue_id", "user_id"),
    "comments": ("tenant_id", "id", "issue_id", "author_id", "body", "created_at", "updated_at"),
    "issue_activities": (
        "tenant_id",
        "id",
        "issue_id",
        "actor_id",
        "field",
        "old_value",
        "new_value",
        "created_at",
    ),
    "notifications": (
        "tenant_id",
        "id",
        "user_id",
        "issue_id",
        "actor_id",
        "kind",
        "excerpt",
        "created_at",
        "read_at",
    ),
    "saved_views": ("tenant_id", "id", "user_id", "project_id", "name", "filters", "created_at"),
}


@dataclass(frozen=True)
class Preset:
    #: Organizations in the database at each measured step (the measured one included).
    org_steps: tuple[int, ...]
    #: Issues of the other organizations at the last step (the measured one adds 5,500).
    issues: int


PRESETS = {
    "small": Preset(org_steps=(10, 100), issues=20_000),
    "full": Preset(org_steps=(10, 1000), issues=200_000),
}

# --- words ---------------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST = _words(
    "Ada Grace Alan Katherine Edsger Barbara Donald Margaret Linus Guido Anita Radia Ken Dennis Frances "
    "Hedy Tim Sophie John Leslie Shafi Whitfield Yukihiro Rasmus Bjarne Niklaus Jean Carol Raj Mei "
    "Amara Tomas Ingrid Kofi Lucia Mateo Priya Omar Hana Lars"
)
LAST = _words(
    "Lovelace Hopper Turing Johnson Dijkstra Liskov Knuth Hamilton Torvalds Rossum Borg Perlman Thompson "
    "Ritchie Allen Lamarr Berners Wilson Backus Lamport Goldwasser Diffie Matsumoto Lerdorf Stroustrup "
    "Wirth Sammet Shaw Reddy Chen Okafor Novak Larsen Mensah Garcia Rossi Patel Haddad Sato Berg"
)
ORG_WORDS_A = _words(
    "Blue Northern Quiet Bright Silver Red Swift Open Green Clear Solid Happy Deep Urban Prime"
)
ORG_WORDS_B = _words("Harbor Peak River Forge Field Signal Orbit Cedar Beacon Stone Meadow Pixel Anchor")
ORG_WORDS_C = _words("Labs Studio Works Systems Group Collective Partners Digital Co Software")
PROJECT_KEYS = (
    ("WEB", "Website"),
    ("API", "Public API"),
    ("MOB", "Mobile app"),
    ("OPS", "Operations"),
    ("DATA", "Data platform"),
    ("DOC", "Documentation"),
    ("DSGN", "Design system"),
    ("BILL", "Billing"),
)
LABELS = (
    ("bug", "#dc2626"),
    ("feature", "#2563eb"),
    ("ux", "#db2777"),
    ("performance", "#ea580c"),
    ("security", "#7c3aed"),
    ("tech-debt", "#6b7280"),
    ("customer", "#059669"),
    ("docs", "#0891b2"),
    ("infra", "#4d7c0f"),
    ("good first issue", "#ca8a04"),
)
VERBS = (
    "Fix",
    "Add",
    "Improve",
    "Refactor",
    "Investigate",
    "Update",
    "Remove",
    "Document",
    "Migrate",
    "Speed up",
    "Support",
    "Handle errors in",
    "Validate",
    "Clean up",
    "Redesign",
    "Write tests for",
    "Expose",
    "Cache",
    "Paginate",
    "Localize",
)
OBJECTS = (
    "the login form",
    "CSV export",
    "invoice PDFs",
    "the search results page",
    "the password reset email",
    "the billing webhook",
    "avatar uploads",
    "dashboard charts",
    "API rate limits",
    "mobile navigation",
    "the onboarding checklist",
    "audit log filters",
    "SSO configuration",
    "timezone handling",
    "notification settings",
    "dark mode",
    "the report scheduler",
    "file attachments",
    "project archiving",
    "keyboard shortcuts",
    "the pricing page",
    "the signup funnel",
    "team invitations",
    "the activity feed",
    "two-factor setup",
    "session timeouts",
    "the import wizard",
    "email digests",
    "the public status page",
    "webhook retries",
    "the settings sidebar",
    "bulk editing",
    "saved filters",
    "the markdown editor",
    "image thumbnails",
    "the usage report",
    "account deletion",
    "the data export job",
    "role permissions",
    "the empty states",
)
QUALIFIERS = (
    "",
    "",
    "",
    " on Safari",
    " for large accounts",
    " after the last release",
    " in the admin area",
    " when the session expires",
    " for read-only members",
    " on slow networks",
    " behind the proxy",
    " in Firefox",
    " (regression)",
    " for non-English locales",
    " on small screens",
    " during deploys",
)
SENTENCES = (
    "Customers on the enterprise plan reported this twice this week.",
    "It only happens when the account has more than a few hundred projects.",
    "The request takes several seconds and sometimes times out.",
    "We should keep the current behaviour behind a feature flag until the migration is done.",
    "The error message does not tell people what to do next.",
    "Support has a workaround, but it involves editing the data by hand.",
    "This blocks the release of the new onboarding flow.",
    "The design team shared mockups in the last review.",
    "Logs show a spike of 500 responses right after the deploy.",
    "We need to agree on the wording with the documentation team.",
    "Measure before and after; the last attempt made it slower on mobile.",
    "The old endpoint stays until every client has moved to the new one.",
    "Accessibility: the control cannot be reached with the keyboard.",
    "The translations for German and Japanese are missing.",
    "Nobody owns this part of the code since the reorganisation.",
    "It is reproducible on staging with the seeded demo account.",
    "Check the retry policy first; the provider rate-limits aggressively.",
    "A quick fix is possible, but the real problem is the data model.",
    "Make sure the export includes archived projects as well.",
    "Several people asked for this on the community forum.",
    "The cache is not invalidated when a member changes role.",
    "We promised this to a customer for the end of the quarter.",
    "The test is flaky on CI and passes locally.",
    "Let's pair on this once the review queue is empty.",
)
STEPS = (
    "Sign in as a member with two organizations",
    "Open the project settings",
    "Switch to the other organization",
    "Reload the page",
    "Export the list as CSV",
    "Change the time zone in the account settings",
    "Archive the project and restore it",
    "Open the same page on a phone",
)
COMMENTS = (
    "I can reproduce this on the latest build.",
    "Looks good to me, merging after CI passes.",
    "Could this be related to the cache change from last week?",
    "Moved to the next cycle; we ran out of time.",
    "The fix is deployed to staging, please verify.",
    "Customer confirmed the workaround helps for now.",
    "I'd rather split this into two smaller issues.",
    "Added a test that fails without the fix.",
    "This needs a design decision before we continue.",
    "Numbers after the change: p95 went from 420 ms to 180 ms.",
    "Not sure this is still relevant after the redesign.",
    "Pinged the vendor, waiting for their answer.",
)
STATE_WEIGHTS = (
    ("backlog", 15),
    ("todo", 20),
    ("in_progress", 10),
    ("in_review", 5),
    ("done", 45),
    ("cancelled", 5),
)
STATE_LABELS = {
    "backlog": "Backlog",
    "todo": "Todo",
    "in_progress": "In progress",
    "in_review": "In review",
    "done": "Done",
    "cancelled": "Cancelled",
}


class DatasetBuilder:
    """Generates organizations into per-table row buffers and COPYs them in foreign-key order."""

    def __init__(self, connection: psycopg.Connection, password_hash: str, seed: int = 4):
        self.connection = connection
        self.password_hash = password_hash
        self.random = random.Random(seed)
        self.rows: dict[str, list[tuple]] = defaultdict(list)
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.counts: dict[str, int] = defaultdict(int)
        self._email_serial = 0
        self.bench_user_id: uuid.UUID | None = None
        self.measured_org_id: uuid.UUID | None = None
        self._loaded_tenants: list[uuid.UUID] = []
        #: Each user's mention handle (the local part of the address).
        self.handles: dict[uuid.UUID, str] = {}

    # --- people and organizations -------------------------------------------------------------

    def _user(self, domain: str, name: str | None = None, email: str | None = None) -> uuid.UUID:
        rnd = self.random
        name = name or f"{rnd.choice(FIRST)} {rnd.choice(LAST)}"
        self._email_serial += 1
        if email is None:
            local = name.lower().replace(" ", ".")
            email = f"{local}{self._email_serial}@{domain}.example"
        user_id = new_id()
        self.handles[user_id] = email.split("@", 1)[0]
        created = self.now - timedelta(days=rnd.uniform(30, 900))
        self.rows["users"].append(
            (
                user_id,
                email,
                name,
                self.password_hash,
                created,
                secrets.token_hex(8),
                created,
                self.now - timedelta(hours=rnd.uniform(1, 500)),
            )
        )
        return user_id

    def measured_organization(self) -> None:
        """The organization every page is measured in; identical in every run."""
        self.bench_user_id = self._user("measured", name="Bench User", email=BENCH_EMAIL)
        self.measured_org_id = new_id()  # known before its issues are made (WEB-42, notifications)
        self.organization(
            MEASURED_SLUG,
            "Measured Organization",
            [(key, name, count) for key, name, count in MEASURED_PROJECTS],
            members=12,
            extra_members=[(self.bench_user_id, "member")],
            rnd=random.Random(42),
            org_id=self.measured_org_id,
        )

    def filler_organization(self, serial: int, issues: int) -> uuid.UUID:
        rnd = self.random
        name = f"{rnd.choice(ORG_WORDS_A)} {rnd.choice(ORG_WORDS_B)} {rnd.choice(ORG_WORDS_C)}"
        slug = f"{name.lower().replace(' ', '-')}-{serial}"[:40].strip("-")
        project_count = 1 if issues < 60 else 2 if issues < 250 else 3 if issues < 800 else 4
        picked = rnd.sample(PROJECT_KEYS, project_count)
        weights = [rnd.uniform(0.5, 2.0) for _ in picked]
        sizes = [int(issues * w / sum(weights)) for w in weights]
        sizes[0] += issues - sum(sizes)
        # The bench user also belongs to the first two filler organizations (the switcher).
        extra = [(self.bench_user_id, "member")] if serial <= 2 and self.bench_user_id else []
        return self.organization(
            slug,
            name,
            [(key, pname, size) for (key, pname), size in zip(picked, sizes, strict=True)],
            members=max(3, min(25, 3 + issues // 40 + rnd.randint(-1, 3))),
            extra_members=extra,
            rnd=rnd,
        )

    def organization(self, slug, name, projects, members, extra_members, rnd, org_id=None) -> uuid.UUID:
        org_id = org_id or new_id()
        created = self.now - timedelta(days=rnd.uniform(400, 1200))
        self.rows["organizations"].append((org_id, slug, name, created))
        self._loaded_tenants.append(org_id)
        people = []
        for index in range(members):
            role = "owner" if index == 0 else "admin" if index == 1 else "viewer" if index == 2 else "member"
            user_id = self._user(slug)
            people.append(user_id)
            self.rows["memberships"].append((org_id, new_id(), user_id, role, created))
        for user_id, role in extra_members:
            people.append(user_id)
            self.rows["memberships"].append((org_id, new_id(), user_id, role, created))
        labels = []
        for label_name, color in rnd.sample(LABELS, rnd.randint(4, 8)):
            label_id = new_id()
            labels.append(label_id)
            folded = folded_label_name(label_name)
            self.rows["labels"].append((org_id, label_id, label_name, folded, color, created))
        for key, project_name, size in projects:
            self._project(org_id, key, project_name, size, people, labels, created, rnd)
        return org_id

    # --- projects and issues ----------------------------------------------------------------

    def _project(self, org_id, key, name, size, people, labels, org_created, rnd) -> None:
        project_id = new_id()
        created = org_created + timedelta(days=rnd.uniform(0, 30))
        self.rows["projects"].append(
            (
                org_id,
                project_id,
                key,
                name,
                f"Everything about the {name.lower()}.",
                size,  # issue_counter: the last number handed out
                people[0],
                created,
                created,
            )
        )
        for position, (state_key, state_name, category) in enumerate(DEFAULT_STATES):
            self.rows["workflow_states"].append(
                (org_id, new_id(), project_id, state_key, state_name, category, position, created)
            )
        span = (self.now - created).total_seconds()
        opened = sorted(created + timedelta(seconds=rnd.uniform(0, span)) for _ in range(size))
        column_rank: dict[str, float] = defaultdict(float)
        states = [state for state, _ in STATE_WEIGHTS]
        weights = [weight for _, weight in STATE_WEIGHTS]
        for number, created_at in enumerate(opened, start=1):
            state = rnd.choices(states, weights)[0]
            column_rank[state] += RANK_STEP
            issue_id = new_id()
            updated_at = created_at + (self.now - created_at) * rnd.random() ** 2
            special = org_id == self.measured_org_id and f"{key}-{number}" == ISSUE_REF
            assignees = rnd.sample(people, rnd.choices((0, 1, 2), (25, 60, 15))[0])
            if special and self.bench_user_id not in assignees:
                assignees.append(self.bench_user_id)
            creator = rnd.choice(people)
            title = f"{rnd.choice(VERBS)} {rnd.choice(OBJECTS)}{rnd.choice(QUALIFIERS)}"
            self.rows["issues"].append(
                (
                    org_id,
                    issue_id,
                    project_id,
                    number,
                    title,
                    self._description(rnd),
                    state,
                    rnd.choices((0, 1, 2, 3, 4), (30, 20, 25, 18, 7))[0],
                    (created_at + timedelta(days=rnd.randint(3, 60))).date() if rnd.random() < 0.3 else None,
                    rnd.choice((1, 2, 3, 5, 8)) if rnd.random() < 0.5 else None,
                    creator,
                    created_at,
                    updated_at,
                    updated_at if state in ("done", "cancelled") else None,
                    rnd.randint(1, 6),
                    column_rank[state],
                )
            )
            for user_id in assignees:
                self.rows["issue_assignees"].append((org_id, issue_id, user_id))
            for label_id in rnd.sample(labels, rnd.choices((0, 1, 2), (40, 40, 20))[0]):
                self.rows["issue_labels"].append((org_id, issue_id, label_id))
            for user_id in {creator, *assignees}:
                self.rows["issue_watchers"].append((org_id, issue_id, user_id))
            self._history(org_id, issue_id, creator, title, state, assignees, created_at, updated_at, rnd)
            comment_count = 4 if special else rnd.randint(1, 4) if rnd.random() < 0.35 else 0
            for _ in range(comment_count):
                at = created_at + (updated_at - created_at) * rnd.random()
                body = rnd.choice(COMMENTS)
                if rnd.random() < 0.3:
                    body = f"@{self.handles[rnd.choice(people)]} {body}"
                if rnd.random() < 0.3:
                    body += f"\n\n{rnd.choice(SENTENCES)}"
                self.rows["comments"].append((org_id, new_id(), issue_id, rnd.choice(people), body, at, at))
            if org_id == self.measured_org_id and key == LIST_PROJECT and number % 10 == 0:
                self._notify(org_id, issue_id, rnd.choice(people), title, updated_at, number % 30 != 0)

    def _description(self, rnd) -> str:
        paragraphs = [" ".join(rnd.sample(SENTENCES, rnd.randint(2, 4))) for _ in range(rnd.randint(1, 3))]
        if rnd.random() < 0.4:
            steps = rnd.sample(STEPS, rnd.randint(2, 4))
            paragraphs.append(
                "Steps to reproduce:\n\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
            )
        if rnd.random() < 0.2:
            paragraphs.append(
                f"```\nGET /api/v1/projects?page={rnd.randint(2, 90)}\n-> 504 after 30.0s\n```\n\n"
                "Expected: the page loads in under a second. **Actual:** a timeout."
            )
        return "\n\n".join(paragraphs)

    def _history(self, org_id, issue_id, creator, title, state, assignees, created_at, updated_at, rnd):
        activities = self.rows["issue_activities"]
        activities.append((org_id, new_id(), issue_id, creator, "created", None, title, created_at))
        path = {
            "in_progress": ["todo", "in_progress"],
            "in_review": ["todo", "in_progress", "in_review"],
            "done": ["todo", "in_progress", "done"],
            "cancelled": ["todo", "cancelled"],
        }.get(state, [])
        previous = "backlog"
        for step, new_state in enumerate(path, start=1):
            at = created_at + (updated_at - created_at) * step / len(path)
            old, new = STATE_LABELS[previous], STATE_LABELS[new_state]
            activities.append((org_id, new_id(), issue_id, creator, "state", old, new, at))
            previous = new_state
        if assignees:
            at = created_at + (updated_at - created_at) * rnd.random()
            activities.append((org_id, new_id(), issue_id, creator, "assignees", None, "someone", at))

    def _notify(self, org_id, issue_id, actor, title, at, read) -> None:
        self.rows["notifications"].append(
            (
                org_id,
                new_id(),
                self.bench_user_id,
                issue_id,
                actor,
                "assigned",
                title,
                at,
                at if read else None,
            )
        )

    def saved_views(self) -> None:
        project_id = next(row[1] for row in self.rows["projects"] if row[0] == self.measured_org_id)
        for name, filters in (("My open work", {"assignee": "me", "state": ["todo", "in_progress"]}),):
            self.rows["saved_views"].append(
                (
                    self.measured_org_id,
                    new_id(),
                    self.bench_user_id,
                    project_id,
                    name,
                    json.dumps(filters),
                    self.now,
                )
            )

    # --- loading --------------------------------------------------------------------------------

    def flush(self) -> None:
        """COPY every buffered row, in foreign-key order, in one transaction."""
        with self.connection.transaction(), self.connection.cursor() as cursor:
            # User triggers (the search vector's) would recompute the issue's vector per comment:
            # off during the load; the issues' own trigger stays on and fills each new row.
            quiet = [table for table in self._tables_with_user_triggers() if table != "issues"]
            for table in quiet:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            for table, columns in TABLES.items():
                rows = self.rows.pop(table, [])
                if not rows:
                    continue
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                self.counts[table] += len(rows)
            for table in quiet:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            if "comments" in quiet:
                # What the comments trigger would have done: fire the issues' update trigger
                # once for each issue that got comments in this batch.
                cursor.execute(
                    "UPDATE issues SET title = title WHERE (tenant_id, id) IN "
                    "(SELECT DISTINCT tenant_id, issue_id FROM comments WHERE tenant_id = ANY(%s))",
                    (self._loaded_tenants,),
                )
        self._loaded_tenants = []

    def _tables_with_user_triggers(self) -> list[str]:
        rows = self.connection.execute(
            "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND c.relname = ANY(%s)",
            (list(TABLES),),
        ).fetchall()
        return [name for (name,) in rows]

    def buffered_issues(self) -> int:
        return len(self.rows["issues"])


def filler_sizes(preset_orgs: int, total_issues: int, seed: int = 7) -> list[int]:
    """Issues per filler organization (all but the measured one): skewed, summing to the total."""
    rnd = random.Random(seed)
    count = preset_orgs - 1
    weights = [rnd.lognormvariate(0, 1.0) for _ in range(count)]
    scale = total_issues / sum(weights)
    sizes = [max(5, int(w * scale)) for w in weights]
    # Spread the rounding difference so the total is exact.
    difference = total_issues - sum(sizes)
    index = 0
    while difference != 0:
        step = 1 if difference > 0 else -1
        if sizes[index % count] + step >= 5:
            sizes[index % count] += step
            difference -= step
        index += 1
    return sizes
