"""Proof that the app's SQL is single-shard routable on Citus (a pytest plugin).

During the PostgreSQL pass, every statement any engine sends (``before_cursor_execute`` on the
``Engine`` class, so apps built by tests are covered too) is recorded with the code that sent
it: the first frame in ``app/``, ``workers/``, ``migrations/`` or ``tests/``. At the end of the
session each distinct statement that reads or writes a tenant table (one with a ``tenant_id``
column) is parsed with sqlglot and judged; the run fails on any that is not routable, with the
statement, where it came from and the tables it left unpinned.

The rule, per statement (``unpinned_tables``):

- Only data statements are judged (SELECT, INSERT, UPDATE, DELETE, and what they nest). Schema
  changes (CREATE, ALTER, DROP, GRANT …) are propagated to every shard by Citus, not routed.
- Every reference to a tenant table, in every query block (the statement itself, each
  subquery, each CTE, each side of a UNION), must have its ``tenant_id`` *pinned*:
  - equal to a constant: ``t.tenant_id = %(x)s``, a literal, a cast of either, or an ``IN``
    list of exactly one such value; or
  - equal to the ``tenant_id`` of a pinned reference (``JOIN b ON b.tenant_id = a.tenant_id``,
    or a correlated subquery's ``c.tenant_id = outer.tenant_id``), transitively.
  Only conditions that must hold for every row count: the conjuncts of WHERE and of JOIN … ON
  (a condition under OR or NOT pins nothing). A column names its table by alias, looked up in
  its own query block then outwards (correlation); an unqualified column belongs to the
  block's only table.
- An INSERT into a tenant table must list ``tenant_id`` among its columns (each row then
  carries its shard key); an INSERT … SELECT is also judged on its SELECT.

All pinned references of one statement share the same value (the app sends one tenant per
transaction), so a statement that passes goes to one shard group: the distributed tables are
colocated on ``tenant_id``.

Statements the tests send themselves (fixtures, assertions, cleanup: the first project frame is
in ``tests/``) are left out, as are the migrations' (run once, by the owner, not routed per
tenant). What remains of the app that is cross-tenant by design runs inside ``unscoped(reason)``
(``app/core/tenancy.py``); ``ALLOWED`` names the reasons whose statements may fan out, each with
why. ``ALLOWED_BY_ID`` names the one table still keyed by ``id`` alone. The processes the tests
start (workers and their forked work horses, web processes, commands) record what they send
through ``tests/support/capture_site/sitecustomize.py``, put on their ``PYTHONPATH`` here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import sqlglot
from sqlglot import exp

from app.core.tenancy import unscoped_reason
from tests.support.capture_site import sitecustomize as child
from tests.support.capture_site.sitecustomize import sender

#: The directory whose sitecustomize.py records the statements of the processes the tests start.
CHILD_SITE = Path(child.__file__).parent

#: Cross-tenant by design: the reason the app gives ``unscoped(reason)`` → why the statements
#: sent inside it may reach every shard on Citus. A statement sent outside ``unscoped`` is never
#: allowed; one sent inside it under another reason is an offender like any other. Keep it short:
#: each entry is a place where Citus fans out to every shard.
ALLOWED: dict[str, str] = {
    "a user's own memberships, for the organization switcher": (
        "a person's organizations span tenants by nature; read on a miss of their cached account"
    ),
    "operators: the usage of the organizations on one page of the tenant console": (
        "operators read across organizations by nature; one grouped count per kind of row for the "
        "page of organizations shown"
    ),
    "operators: the organizations of the people found on the tenant console": (
        "a person's organizations span tenants by nature; for at most 50 people an operator searched for"
    ),
    "a person's own memberships, to delete their account": (
        "a person's organizations span tenants by nature; read when they ask to delete their account "
        "and when it is deleted, which then happens organization by organization"
    ),
    "a person's own notification email choices, for their account page": (
        "one setting per organization they belong to, on one page that lists them all"
    ),
    "the system's own tasks (tenant_id NULL), for operators": (
        "rows of no organization; they move to a table on the coordinator before Citus (docs/scaling.md)"
    ),
    "outbox sweep: mail of every organization waiting to be sent": (
        "a periodic sweep claiming due mail of every organization; each outcome is then written "
        "by tenant and id"
    ),
    "outbox sweep: notifications of every organization whose mail was not written": (
        "a periodic sweep for notifications whose mail a crash left unwritten; each is then "
        "written inside its organization"
    ),
    "housekeeping: sent mail of every organization": "an hourly delete of old mail, every shard at once",
    "housekeeping: old tasks of every organization": "a daily delete of old tasks, every shard at once",
    "housekeeping: expired invitations of every organization": (
        "a periodic delete of expired invitations, every shard at once"
    ),
    "webhook sweep: due deliveries of every organization": (
        "a periodic sweep (every 5 s) of the deliveries whose next attempt is due, by the index on "
        "(status, next_attempt_at); each attempt then runs inside its organization"
    ),
    "housekeeping: old webhook deliveries of every organization": (
        "a daily delete of old webhook deliveries, their attempts and messages, every shard at once"
    ),
    "housekeeping: kept API answers of every organization": (
        "an hourly delete of the answers kept for an Idempotency-Key past their day, every shard at once"
    ),
    "daily digest: who has notifications waiting, in every organization": (
        "once a day, who to write a digest to; each digest is then written inside its organization"
    ),
}

#: Tables whose rows are still read and written by their own key alone (``id = …``), with why; a
#: statement that leaves only these tables unpinned, each by an equality on its ``id``, is allowed.
ALLOWED_BY_ID: dict[str, str] = {
    "tasks": (
        "also holds the system's own work (tenant_id NULL), so its key is id alone and a task is "
        "loaded and flushed by id; before Citus the system's rows move out and the key becomes "
        "(tenant_id, id) again (docs/scaling.md)"
    ),
}

#: What a data statement starts with (after comments and whitespace).
_DATA_STATEMENT = re.compile(r"^\s*(?:/\*.*?\*/\s*)*(?:SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.I | re.S)


# --- the rule --------------------------------------------------------------------------------


def _is_constant(node: exp.Expression) -> bool:
    while isinstance(node, exp.Cast | exp.Paren):
        node = node.this
    return isinstance(node, exp.Placeholder | exp.Parameter | exp.Literal)


def _blocks(tree: exp.Expression) -> list[exp.Expression]:
    """Every query block of a statement: the statement and each SELECT inside it."""
    blocks = [tree] if isinstance(tree, exp.Update | exp.Delete | exp.Insert) else []
    return blocks + list(tree.find_all(exp.Select))


def _owning_block(node: exp.Expression) -> exp.Expression | None:
    parent = node.parent
    while parent is not None and not isinstance(parent, exp.Select | exp.Update | exp.Delete | exp.Insert):
        parent = parent.parent
    return parent


def _block_tables(block: exp.Expression) -> list[exp.Table]:
    """The tables a block reads or writes directly (not those of its subqueries, nor the names
    in ``FOR UPDATE OF``)."""
    return [
        table
        for table in block.find_all(exp.Table)
        if _owning_block(table) is block and table.name and not table.find_ancestor(exp.Lock)
    ]


def _conjuncts(condition: exp.Expression | None) -> list[exp.Expression]:
    if condition is None:
        return []
    if isinstance(condition, exp.Paren):
        return _conjuncts(condition.this)
    if isinstance(condition, exp.And):
        return _conjuncts(condition.this) + _conjuncts(condition.expression)
    return [condition]


def _block_conditions(block: exp.Expression) -> list[exp.Expression]:
    found = []
    where = block.args.get("where")
    if where is not None:
        found += _conjuncts(where.this)
    for join in block.args.get("joins") or []:
        found += _conjuncts(join.args.get("on"))
    return found


class _Pins:
    """Union-find over table references (by node identity) and the one constant."""

    CONSTANT = "constant"

    def __init__(self):
        self.parent: dict = {}

    def find(self, key):
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def join(self, a, b) -> None:
        self.parent[self.find(a)] = self.find(b)

    def pinned(self, key) -> bool:
        return self.find(key) == self.find(self.CONSTANT)


def _resolve(column: exp.Column, block: exp.Expression, tables_of: dict) -> exp.Table | None:
    """The table reference a column belongs to: its own block first, then enclosing ones."""
    qualifier = column.table
    while block is not None:
        tables = tables_of.get(id(block), [])
        if qualifier:
            for table in tables:
                if table.alias_or_name == qualifier:
                    return table
        elif len(tables) == 1:
            return tables[0]
        else:
            return None
        block = _owning_block(block)
    return None


def unpinned_tables(sql: str, tenant_tables: set[str], column: str = "tenant_id") -> list[str]:
    """The tenant tables a statement reaches without an equality on their ``tenant_id`` (or on
    another ``column``)."""
    if not _DATA_STATEMENT.match(sql):
        return []
    tree = sqlglot.parse_one(sql, dialect="postgres")
    blocks = _blocks(tree)
    tables_of = {id(block): _block_tables(block) for block in blocks}
    pins = _Pins()

    def tenant_column(node, block):
        if isinstance(node, exp.Column) and node.name == column:
            table = _resolve(node, block, tables_of)
            if table is not None and table.name in tenant_tables:
                return id(table)
        return None

    for block in blocks:
        for condition in _block_conditions(block):
            if isinstance(condition, exp.EQ):
                left, right = condition.this, condition.expression
                left_key, right_key = tenant_column(left, block), tenant_column(right, block)
                if left_key and right_key:
                    pins.join(left_key, right_key)
                elif (left_key and _is_constant(right)) or (right_key and _is_constant(left)):
                    pins.join(left_key or right_key, pins.CONSTANT)
            elif isinstance(condition, exp.In) and not condition.args.get("query"):
                values = condition.expressions
                key = tenant_column(condition.this, block)
                if key and len(values) == 1 and _is_constant(values[0]):
                    pins.join(key, pins.CONSTANT)
    target = tree.this if isinstance(tree, exp.Insert) else None
    if isinstance(target, exp.Schema) and column in {name.name for name in target.expressions}:
        pins.join(id(target.this), pins.CONSTANT)
    unpinned = []
    for block in blocks:
        for table in tables_of[id(block)]:
            if table.name in tenant_tables and not pins.pinned(id(table)) and table.name not in unpinned:
                unpinned.append(table.name)
    return unpinned


# --- the capture -----------------------------------------------------------------------------


def normalized(sql: str) -> str:
    """A statement with its expanded IN lists folded, so one query is one statement whatever the
    number of values it was sent with."""
    sql = re.sub(r"%\((\w+?)_\d+(?:_\d+)?\)s", r"%(\1_n)s", sql)
    sql = re.sub(r"(%\(\w+\)s)(?:, \1)+", r"\1, …", sql)
    return re.sub(r"(\([^()]*\))(?:, \1)+", r"\1, …", sql)


@dataclass
class Sent:
    """One distinct statement and where it was sent from."""

    sql: str
    origin: str  # "app", "library" (no project frame), "migrations" or "tests"
    location: str  # path:line in function
    unscoped: str | None  # the reason given to unscoped(), the allow-list's key
    count: int = 0


@dataclass
class Capture:
    tenant_tables: set[str]
    pattern: re.Pattern
    total: int = 0
    statements: dict = field(default_factory=dict)
    #: Where started processes write what they send, and how many distinct statements they sent.
    child_dir: str = ""
    from_children: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, statement: str) -> None:
        self.total += 1
        if not self.pattern.search(statement):
            return
        origin, location = sender(2)  # past record and the listener
        reason = unscoped_reason()
        with self.lock:
            key = (statement, location, reason)
            if key not in self.statements:
                self.statements[key] = Sent(statement, origin, location, reason)
            self.statements[key].count += 1


@dataclass
class Judged:
    sent: Sent
    tables: list[str]
    reason: str | None = None  # the allow-list's, when allowed


def judge(capture: Capture) -> tuple[list[Judged], list[Judged], Counter]:
    """(offenders, allowed, counts) over the app's captured statements, one per distinct
    statement (IN lists folded) and sender."""
    offenders: dict[tuple, Judged] = {}
    allowed: dict[tuple, Judged] = {}
    counts: Counter = Counter()
    distinct = set()
    for sent in capture.statements.values():
        counts[sent.origin] += sent.count
        if sent.origin not in ("app", "library"):
            continue
        shape = normalized(sent.sql)
        distinct.add(shape)
        key = (shape, sent.location, sent.unscoped)
        if key in offenders or key in allowed:
            (offenders.get(key) or allowed[key]).sent.count += sent.count
            continue
        tables = unpinned_tables(sent.sql, capture.tenant_tables)
        if not tables:
            continue
        judged = Judged(Sent(shape, sent.origin, sent.location, sent.unscoped, sent.count), tables)
        if sent.unscoped in ALLOWED:
            judged.reason = ALLOWED[sent.unscoped]
        elif set(tables) <= ALLOWED_BY_ID.keys() and not unpinned_tables(sent.sql, set(tables), "id"):
            judged.reason = "; ".join(ALLOWED_BY_ID[table] for table in tables)
        (allowed if judged.reason else offenders)[key] = judged
    counts["distinct"] = len(distinct)
    return list(offenders.values()), list(allowed.values()), counts


_capture: Capture | None = None


def _on_execute(conn, cursor, statement, parameters, context, executemany):
    if _capture is not None and conn.dialect.name == "postgresql":
        _capture.record(statement)


def pytest_configure(config):
    global _capture
    if os.environ.get("WORKLANE_TEST_DATABASE", "postgres") != "postgres":
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    import app.models  # noqa: F401  (the whole metadata)
    from app.extensions import db

    tenant_tables = {table.name for table in db.metadata.tables.values() if "tenant_id" in table.c}
    names = "|".join(sorted(tenant_tables))
    _capture = Capture(tenant_tables, re.compile(rf"\b(?:{names})\b"))
    event.listen(Engine, "before_cursor_execute", _on_execute)
    # The processes the tests start inherit the environment: they record into files here.
    _capture.child_dir = tempfile.mkdtemp(prefix="worklane-sqlcapture-")
    os.environ[child.CAPTURE_DIR] = _capture.child_dir
    os.environ[child.CAPTURE_TABLES] = names
    os.environ[child.CAPTURE_PARENT] = str(os.getpid())
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(CHILD_SITE), os.environ.get("PYTHONPATH")]))


def _merge_children(capture: Capture) -> None:
    """Add the statements the started processes recorded (once per process and distinct statement)."""
    for path in Path(capture.child_dir).glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                seen = json.loads(line)
            except ValueError:
                continue  # the last line of a process killed while writing it
            key = (seen["sql"], seen["location"], seen["unscoped"])
            if key not in capture.statements:
                capture.statements[key] = Sent(
                    seen["sql"], seen["origin"], seen["location"], seen["unscoped"]
                )
            capture.statements[key].count += 1
            capture.from_children += 1
    shutil.rmtree(capture.child_dir, ignore_errors=True)


def pytest_sessionfinish(session, exitstatus):
    if _capture is None:
        return
    _merge_children(_capture)
    offenders, allowed, counts = judge(_capture)
    session.config._sqlcapture = (offenders, allowed, counts)
    if offenders and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    result = getattr(config, "_sqlcapture", None)
    if result is None:
        return
    offenders, allowed, counts = result
    write = terminalreporter.write_line
    terminalreporter.section("Citus routability of the SQL sent")
    app_sent = counts["app"] + counts["library"]
    write(
        f"{_capture.total} statements sent, {app_sent + counts['tests'] + counts['migrations']} touching "
        f"tenant tables (app {app_sent}, tests {counts['tests']}, migrations {counts['migrations']}); "
        f"{counts['distinct']} distinct from the app; {len(allowed)} allowed (cross-tenant by design), "
        f"{len(offenders)} not routable"
    )
    write(f"  ({_capture.from_children} distinct statements came from the processes the tests started)")
    by_reason = Counter(
        judged.sent.unscoped if judged.sent.unscoped in ALLOWED else "by id: " + ", ".join(judged.tables)
        for judged in allowed
    )
    for reason, many in sorted(by_reason.items()):
        write(f"  allowed: {many} distinct statement(s), {reason}")
    for judged in offenders:
        write("")
        write(f"NOT ROUTABLE: {', '.join(judged.tables)} without tenant_id = …")
        inside = f", inside unscoped({judged.sent.unscoped!r})" if judged.sent.unscoped else ""
        write(f"  sent from {judged.sent.location}{inside} ({judged.sent.count} times)")
        write(f"  {judged.sent.sql}")
