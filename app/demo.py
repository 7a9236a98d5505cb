"""Demo data for `make run`: an organization with a few people, so a newcomer sees a living product."""

from __future__ import annotations

from sqlalchemy import select

from app.auth.passwords import hash_new_password
from app.core.tenancy import tenant_context
from app.extensions import db
from app.models import Organization, User
from app.models.base import utcnow
from app.orgs.services import create_organization

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "worklane-demo"
DEMO_SLUG = "acme"
TEAM = [
    ("Grace Hopper", "grace@example.com", "admin"),
    ("Alan Turing", "alan@example.com", "member"),
    ("Katherine Johnson", "katherine@example.com", "member"),
    ("Edsger Dijkstra", "edsger@example.com", "viewer"),
]


def _user(name: str, email: str) -> User:
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(
            email=email, name=name, password_hash=hash_new_password(DEMO_PASSWORD), email_verified_at=utcnow()
        )
        db.session.add(user)
        db.session.flush()
    return user


PROJECTS = [
    ("WEB", "Website", "The marketing site and the sign-up flow."),
    ("API", "Public API", "Endpoints, SDKs and their documentation."),
    ("OPS", "Operations", "Infrastructure, deploys and on-call."),
]
LABELS = ["bug", "feature", "performance", "security", "design", "docs"]
SUBJECTS = [
    "login form",
    "password reset",
    "billing page",
    "search results",
    "dashboard charts",
    "invite emails",
    "rate limiter",
    "export job",
    "webhooks",
    "audit log",
    "mobile layout",
    "dark mode",
    "CSV import",
    "API keys",
    "deploy pipeline",
    "backups",
    "error pages",
    "notifications",
    "board columns",
    "onboarding",
]
PROBLEMS = [
    "Fix {s} on Safari",
    "{s} is slow with large accounts",
    "Add filters to {s}",
    "Redesign {s}",
    "Document {s}",
    "{s} shows the wrong time zone",
    "Make {s} accessible",
    "Translate {s}",
    "{s} fails when the session expires",
    "Add tests for {s}",
    "Remove the old {s}",
    "Speed up {s}",
]
COMMENTS = [
    "I can reproduce this on the latest build.",
    "Picked this up, PR coming today.",
    "@grace could you take a look at the approach?",
    "Blocked on the design review.",
    "Fixed in the last deploy, please verify.",
    "Customer reported it again this morning.",
    "Let's split this into two issues.",
    "@alan this touches your area.",
]
ISSUES_PER_PROJECT = 100


def seed_demo() -> tuple[bool, str, str]:
    """Create the demo organization once; returns (created, login email, password)."""
    from app.models import Membership

    if db.session.scalar(select(Organization).where(Organization.slug == DEMO_SLUG)) is not None:
        return False, DEMO_EMAIL, DEMO_PASSWORD
    owner = _user("Demo Owner", DEMO_EMAIL)
    org = create_organization(owner, "Acme Corporation", DEMO_SLUG)
    org.plan = "team"  # room for what the demo holds, and its usage page shows a plan with limits
    with tenant_context(org.id):
        people = [owner]
        for name, email, role in TEAM:
            user = _user(name, email)
            people.append(user)
            db.session.add(Membership(user_id=user.id, role=role))
        db.session.flush()
        _seed_work(people)
    db.session.commit()
    return True, DEMO_EMAIL, DEMO_PASSWORD


def _seed_work(people) -> None:
    """A few projects with a few hundred issues, their history, comments and notifications."""
    import random
    from datetime import timedelta

    from app.issues import services as issues
    from app.models import Label, Project
    from app.models.workflow import DEFAULT_STATES

    rng = random.Random(42)
    labels = [Label(name=name) for name in LABELS]
    db.session.add_all(labels)
    db.session.flush()
    writers = people[:4]
    for key, name, description in PROJECTS:
        project = Project(key=key, name=name, description=description, created_by_id=people[0].id)
        db.session.add(project)
        db.session.flush()
        for _ in range(ISSUES_PER_PROJECT):
            subject = rng.choice(SUBJECTS)
            title = rng.choice(PROBLEMS).format(s=subject)
            title = title[0].upper() + title[1:]
            actor = rng.choice(writers)
            issue = issues.create_issue(
                project,
                actor,
                title,
                description=f"The {subject} needs work.\n\n- seen by customers\n- affects **{name}**",
                state=rng.choices([key for key, _, _ in DEFAULT_STATES], weights=[3, 4, 3, 2, 5, 1])[0],
                priority=rng.randint(0, 4),
                assignee_ids=[u.id for u in rng.sample(writers, rng.randint(0, 2))],
                label_ids=[label.id for label in rng.sample(labels, rng.randint(0, 2))],
                due_date=(utcnow() + timedelta(days=rng.randint(-5, 30))).date()
                if rng.random() < 0.3
                else None,
                estimate=rng.choice([None, 1, 2, 3, 5, 8]),
            )
            for _ in range(rng.randint(0, 3)):
                issues.add_comment(issue, rng.choice(writers), rng.choice(COMMENTS))
            if rng.random() < 0.3:
                issues.update_issue(issue, rng.choice(writers), priority=rng.randint(0, 4))
            # Spread the history over the last two months, as a living project has it.
            age = timedelta(days=rng.uniform(1, 60))
            issue.created_at = utcnow() - age
            issue.updated_at = issue.created_at + age * rng.uniform(0, 0.95)
        db.session.flush()
    _leave_a_few_unread()


def _leave_a_few_unread(keep: int = 6) -> None:
    """Everyone starts with their latest few notifications unread, the rest read."""
    from sqlalchemy import update

    from app.models import Notification

    for user_id in set(db.session.scalars(select(Notification.user_id))):
        latest = select(Notification.id).where(Notification.user_id == user_id)
        latest = latest.order_by(Notification.created_at.desc()).limit(keep).scalar_subquery()
        db.session.execute(
            update(Notification)
            .where(Notification.user_id == user_id, Notification.id.not_in(latest))
            .values(read_at=utcnow()),
            execution_options={"synchronize_session": False},
        )
