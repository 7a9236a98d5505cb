"""The isolation harness's machinery: it discovers what to check by itself.

Every tenant model in the SQLAlchemy registry and every tenant route in the URL map is
checked; a model or route added later is covered without editing the harness. The checks
are plain functions returning a list of problems, so the harness's own tests can feed
them deliberately broken models and routes and see them fail.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapper

from app.core.tenancy import has_system_rows, is_tenant_model
from app.extensions import db
from app.models.base import utcnow

#: Tables that name an organization without being owned by one.
#: verified_domains: the global claim on an email domain (one organization per domain), read by
#: domain before anyone is signed in; its rows are also in the tenant table sso_domains.
GLOBAL_TABLES_REFERRING_TO_ORGANIZATIONS: set[str] = {"verified_domains"}


def all_mappers(registry=None) -> list[Mapper]:
    registry = registry or db.Model.registry
    return sorted(registry.mappers, key=lambda m: m.class_.__name__)


def tenant_models(registry=None) -> list[type]:
    return [m.class_ for m in all_mappers(registry) if is_tenant_model(m.class_)]


# --- static checks on the schema ------------------------------------------------------


def unmarked_tenant_tables(mappers: list[Mapper]) -> list[str]:
    """Models that hold tenant data (a tenant_id column or a link to organizations)
    without the TenantMixin, so nothing scopes them."""
    problems = []
    for mapper in mappers:
        cls = mapper.class_
        if is_tenant_model(cls):
            continue
        table = mapper.local_table
        refers = any(fk.column.table.name == "organizations" for fk in table.foreign_keys)
        if "tenant_id" in table.c or (refers and table.name not in GLOBAL_TABLES_REFERRING_TO_ORGANIZATIONS):
            problems.append(f"{cls.__name__} ({table.name}) holds tenant data but is not a TenantMixin model")
    return problems


def key_problems(models: list[type]) -> list[str]:
    """Keys ready for distribution by tenant: tenant_id in the primary key, every unique
    constraint and index, and both ends of every foreign key between tenant tables."""
    tenant_table_names = {m.__table__.name for m in models}
    problems = []
    for model in models:
        table = model.__table__
        name = table.name
        pk = [c.name for c in table.primary_key.columns]
        if has_system_rows(model):
            # Rows of no organization (tenant_id NULL) cannot have tenant_id in their key.
            if pk != ["id"] or not table.c.tenant_id.nullable:
                problems.append(f"{name}: a model with system rows is keyed by id, tenant_id nullable")
        elif not pk or pk[0] != "tenant_id":
            problems.append(f"{name}: primary key {pk} must start with tenant_id")
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint) and "tenant_id" not in constraint.columns:
                problems.append(f"{name}: unique constraint {constraint.name} lacks tenant_id")
            if isinstance(constraint, ForeignKeyConstraint):
                remote = constraint.referred_table.name
                if remote in tenant_table_names:
                    local_cols = [c.name for c in constraint.columns]
                    remote_cols = [e.column.name for e in constraint.elements]
                    if "tenant_id" not in local_cols or "tenant_id" not in remote_cols:
                        problems.append(
                            f"{name}: foreign key to {remote} must include tenant_id at both ends"
                        )
        for column in table.columns:
            if column.unique:
                problems.append(f"{name}.{column.name}: unique=True without tenant_id")
        for index in table.indexes:
            if index.unique and "tenant_id" not in index.columns:
                problems.append(f"{name}: unique index {index.name} lacks tenant_id")
    return problems


# --- building rows ----------------------------------------------------------------------


def _value_for(column, serial: int):
    type_ = column.type
    if isinstance(type_, Uuid):
        return uuid.uuid4()
    if isinstance(type_, String | Text):
        length = getattr(type_, "length", None) or 40
        return f"v{serial}-{uuid.uuid4().hex}"[: max(1, min(length, 40))]
    if isinstance(type_, Boolean):
        return False
    if isinstance(type_, Integer):
        return serial
    if isinstance(type_, Numeric | Float):
        return 1
    if isinstance(type_, DateTime):
        return utcnow() + timedelta(days=30)
    if isinstance(type_, Date):
        return date.today()
    if isinstance(type_, JSON):
        return {}
    impl = getattr(type_, "impl", None)
    if impl is not None and isinstance(impl, DateTime):
        return utcnow() + timedelta(days=30)
    if impl is not None and isinstance(impl, Text):  # an encrypted text (app/core/encryption.py)
        return f"v{serial}-{uuid.uuid4().hex}"
    raise NotImplementedError(f"no generic value for {column} of type {type_!r}")


class RowBuilder:
    """Creates a valid row of any model, with its parents, in the current session."""

    def __init__(self, session):
        self.session = session
        self.serial = 0

    def new_user(self):
        from app.models import User

        user = User(email=f"u{uuid.uuid4().hex[:12]}@example.com", name="Someone", password_hash="!")
        self.session.add(user)
        self.session.flush()
        return user

    def build(self, model: type, tenant_id: uuid.UUID, **values):
        self.serial += 1
        table = model.__table__
        row = {}
        fk_columns = {}
        for constraint in table.foreign_key_constraints:
            target = constraint.referred_table.name
            local = [c.name for c in constraint.columns if c.name != "tenant_id"]
            if not local:
                continue
            if target == "users":
                parent = self.new_user()
                for col, element in zip(constraint.columns, constraint.elements, strict=True):
                    fk_columns[col.name] = getattr(parent, element.column.name)
            elif target == "organizations":
                continue
            elif target == "workflow_states":
                continue  # the project has the default states; its state is the default key
            else:
                parent_model = next(m for m in tenant_models() if m.__table__.name == target)
                parent = self.build(parent_model, tenant_id)
                for col, element in zip(constraint.columns, constraint.elements, strict=True):
                    fk_columns[col.name] = getattr(parent, element.column.name)
        for column in table.columns:
            if column.name in values or column.name == "tenant_id":
                continue
            if column.name in fk_columns:
                row[column.name] = fk_columns[column.name]
            elif column.primary_key and column.default is not None:
                continue
            elif column.info.get("choices"):
                row[column.name] = column.info["choices"][0]
            elif not column.nullable and column.default is None and column.server_default is None:
                row[column.name] = _value_for(column, self.serial)
        row.update(values)
        if "tenant_id" in table.c:
            row["tenant_id"] = tenant_id
        obj = model(**row)
        self.session.add(obj)
        self.session.flush()
        return obj


def sample_string_column(model: type):
    """A plain string column a bulk UPDATE can change (not a key, not unique, no fixed choices)."""
    table = model.__table__
    unique_columns = {
        column.name
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
        for column in constraint.columns
    } | {column.name for index in table.indexes if index.unique for column in index.columns}
    for column in table.columns:
        if (
            column.primary_key
            or column.foreign_keys
            or column.info.get("choices")
            or column.name in unique_columns
        ):
            continue
        if isinstance(column.type, String | Text):
            return column
    return None


def changed_marker(column) -> str:
    """The value the bulk-update check writes, cut to fit the column."""
    length = getattr(column.type, "length", None) or 40
    return "changed-by-a"[:length]


# --- routes ------------------------------------------------------------------------------------

#: Routes that take an object key but serve no tenant data, with the reason.
GLOBAL_OBJECT_ROUTES = {
    "system_check.show": "system checks, tasks of no tenant: for operators (OPERATOR_EMAILS) only",
    "system_check.status": "system checks, tasks of no tenant: for operators (OPERATOR_EMAILS) only",
    "operators.retry_job": "RQ job ids, for operators (OPERATOR_EMAILS), who act across organizations",
    "operators.delete_job": "RQ job ids, for operators (OPERATOR_EMAILS), who act across organizations",
    "operators.suspend": "organization ids, for operators (OPERATOR_EMAILS), who act across organizations",
    "operators.unsuspend": "organization ids, for operators (OPERATOR_EMAILS), who act across organizations",
    "operators.plan": "organization ids, for operators (OPERATOR_EMAILS), who act across organizations",
    "operators.set_flag": "a feature flag's name (flags are the system's), for operators (OPERATOR_EMAILS)",
    "operators.impersonate": "people's ids, for operators (OPERATOR_EMAILS), who act across organizations",
    "sso.start": "an organization's address: single sign-on starts before the person is a member, and "
    "shows only whether the organization signs in that way",
    "sso.callback": "an organization's address: the provider sends the person back here with the state "
    "their own session holds",
    "sso.break_glass": "an organization's address: only its owners (from their own cached account) get "
    "the form",
}
#: URL arguments that are signed tokens, checked by signature rather than by tenant.
TOKEN_ARGUMENTS = {"token", "filename"}
#: URL arguments that are not object keys, with a valid value to use.
PLAIN_ARGUMENTS = {"state": "todo", "state_key": "todo", "chart": "throughput", "field_name": "state"}


def model_for_argument(argument: str):
    """``membership_id`` -> (Membership, "id"); ``project_key`` -> (Project, "key")."""
    prefix, _, column = argument.rpartition("_")
    wanted = prefix.replace("_", "").lower()
    for mapper in all_mappers():
        if mapper.class_.__name__.lower() == wanted:
            return mapper.class_, column
    return None, column


def tenant_rules(app):
    return [rule for rule in app.url_map.iter_rules() if "org_slug" in rule.arguments]


def object_arguments(rule) -> list[str]:
    return sorted(arg for arg in rule.arguments if arg != "org_slug")


def untenanted_object_routes(app) -> list[str]:
    """Routes outside /<org_slug>/ that take an object key: each must be justified (the API's
    are checked with a key instead: ``api_route_problems``)."""
    problems = []
    for rule in app.url_map.iter_rules():
        if "org_slug" in rule.arguments or rule.endpoint == "static" or _is_api(rule):
            continue
        keys = [a for a in rule.arguments if a not in TOKEN_ARGUMENTS and a not in PLAIN_ARGUMENTS]
        if keys and rule.endpoint not in GLOBAL_OBJECT_ROUTES:
            problems.append(f"{rule.endpoint} ({rule.rule}) takes {keys} outside an organization")
    return problems


def route_problems(app, client, org_a, org_b, b_objects: dict, b_markers: set[str], snapshot) -> list[str]:
    """Request every tenant route as a member of A with B's slug and with B's keys.

    ``b_objects`` maps a model class to one of B's rows (as a dict of column values);
    ``snapshot()`` returns B's data, compared before and after all requests.
    """
    from tests.conftest import csrf_token_from

    problems = []
    token = csrf_token_from(client.get(f"/{org_a.slug}/").get_data(as_text=True))
    before = snapshot()
    for rule in tenant_rules(app):
        values = {}
        for argument in object_arguments(rule):
            if argument in PLAIN_ARGUMENTS:
                values[argument] = PLAIN_ARGUMENTS[argument]
                continue
            model, column = model_for_argument(argument)
            if model is None or model not in b_objects:
                problems.append(f"{rule.rule}: no way to find B's object for <{argument}>")
                break
            values[argument] = b_objects[model][column]
        else:
            for method in sorted(rule.methods & {"GET", "POST", "PUT", "PATCH", "DELETE"}):
                for slug, label in (
                    (org_b.slug, "B's organization"),
                    (org_a.slug, "A's organization, B's keys"),
                ):
                    if slug == org_a.slug and not set(values) - set(PLAIN_ARGUMENTS):
                        continue  # A's own page with no foreign key: nothing to check here
                    url = rule.build({"org_slug": slug, **values}, append_unknown=False)[1]
                    response = client.open(url, method=method, data={"csrf_token": token})
                    body = response.get_data(as_text=True)
                    if response.status_code != 404:
                        problems.append(f"{method} {url} ({label}) answered {response.status_code}, not 404")
                    leaked = sorted(marker for marker in b_markers if marker in body)
                    if leaked:
                        problems.append(f"{method} {url} ({label}) shows B's data: {leaked}")
    if snapshot() != before:
        problems.append("B's data changed during requests made as a member of A")
    return problems


# --- the JSON API: the organization is the key's -------------------------------------------------

#: The API's blueprint: its routes name objects outside /<org_slug>/, in the key's organization.
API_BLUEPRINT = "api"
#: An API URL argument -> the model and the columns (or URL keys) that name its object.
API_ARGUMENTS = {"issue": ("Issue", ("id", "ref")), "project_key": ("Project", ("key",))}


def _is_api(rule) -> bool:
    return rule.endpoint.split(".")[0] == API_BLUEPRINT


def api_rules(app):
    return [rule for rule in app.url_map.iter_rules() if _is_api(rule)]


def _api_body(endpoint: str, b_objects: dict) -> dict:
    """A body the route accepts, naming B's objects where it names any."""
    by_name = {model.__name__: row for model, row in b_objects.items()}
    bodies = {
        "create_issue": {"project": by_name["Project"]["key"], "title": "changed-by-a"},
        "update_issue": {"title": "changed-by-a"},
        "create_comment": {"body": "changed-by-a"},
        "create_project": {"key": "ABYA", "name": "changed-by-a"},
        "create_label": {"name": "changed-by-a"},
    }
    return bodies[endpoint.split(".", 1)[1]]


def api_route_problems(app, client, token: str, b_objects: dict, b_markers: set[str], snapshot) -> list[str]:
    """Call every API route with A's key: B's objects (by each name they have) answer 404, no
    answer shows B's data, and B's data stays as it was."""
    problems = []
    by_name = {model.__name__: row for model, row in b_objects.items()}
    headers = {"Authorization": f"Bearer {token}", "If-Match": "*"}
    before = snapshot()
    for rule in api_rules(app):
        argument_values: list[dict] = [{}]
        for argument in sorted(rule.arguments):
            if argument not in API_ARGUMENTS:
                problems.append(f"{rule.rule}: no way to name B's object for <{argument}> (API_ARGUMENTS)")
                argument_values = []
                break
            model, columns = API_ARGUMENTS[argument]
            argument_values = [{**v, argument: by_name[model][c]} for v in argument_values for c in columns]
        for values in argument_values:
            url = rule.build(values, append_unknown=False)[1]
            for method in sorted(rule.methods & {"GET", "POST", "PUT", "PATCH", "DELETE"}):
                try:
                    body = _api_body(rule.endpoint, b_objects) if method != "GET" else None
                except KeyError:
                    problems.append(f"{method} {rule.rule}: no body to send (tests/isolation.py _api_body)")
                    continue
                query = {"q": by_name["Issue"]["title"]} if rule.endpoint == "api.search" else None
                response = client.open(url, method=method, json=body, headers=headers, query_string=query)
                text = response.get_data(as_text=True)
                if values and response.status_code != 404:
                    problems.append(f"{method} {url} (B's object) answered {response.status_code}, not 404")
                if not values and response.status_code >= 500:
                    problems.append(f"{method} {url} answered {response.status_code}")
                sent = f"{url} {body} {query}"  # what A sent, quoted back in a reason, is no leak
                leaked = sorted(marker for marker in b_markers if marker in text and marker not in sent)
                if leaked:
                    problems.append(f"{method} {url} shows B's data: {leaked}")
    if snapshot() != before:
        problems.append("B's data changed during API calls made with A's key")
    return problems


# --- work an anonymous request may queue ---------------------------------------------------------

#: The only jobs a request without a login may queue, with the reason.
ANONYMOUS_JOBS = {
    "app.core.mail_delivery.deliver_outbox_mail": (
        "mail to the address the visitor typed (sign-up, password reset)"
    ),
}
#: What the harness fills every form with (a form ignores the fields it does not have).
ANONYMOUS_FORM = {
    "email": "visitor@example.com",
    "name": "Visitor",
    "password": "a visitor's passphrase 42",
    "confirm": "a visitor's passphrase 42",
    "organization_name": "Visitor Org",
}


def queued_job_ids(connection) -> set[str]:
    """Every job id waiting in any lane of any priority, or scheduled to be."""
    from rq.registry import ScheduledJobRegistry

    from app.core.queue import lanes
    from app.core.queue.queues import QUEUES

    ids = set()
    for priority in QUEUES:
        for lane in lanes.lanes(connection, priority):
            ids |= {value.decode() for value in connection.lrange(lane, 0, -1)}
        ids |= set(ScheduledJobRegistry(priority, connection=connection).get_job_ids())
    return ids


def _anonymous_url(rule, org_slug: str) -> str:
    values = {}
    for argument in rule.arguments:
        converter = type(rule._converters.get(argument)).__name__
        if argument == "org_slug":
            values[argument] = org_slug
        elif argument in PLAIN_ARGUMENTS:
            values[argument] = PLAIN_ARGUMENTS[argument]
        elif converter == "UUIDConverter":
            values[argument] = uuid.uuid4()
        elif converter in ("IntegerConverter", "FloatConverter"):
            values[argument] = 1
        else:
            values[argument] = "x"
    return rule.build(values, append_unknown=False)[1]


def anonymous_enqueue_problems(app, connection, org_slug: str) -> list[str]:
    """Request every route of the URL map without a login; report any job queued beyond ``ANONYMOUS_JOBS``.

    Each request comes from a new visitor (a fresh client with its own CSRF token, so a sign-up
    or a log-in along the way leaves the others anonymous). Each unsafe method is sent twice:
    with the CSRF token alone and with ``ANONYMOUS_FORM``.
    """
    from rq.job import Job

    from tests.conftest import csrf_token_from

    problems = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        url = _anonymous_url(rule, org_slug)
        for method in sorted(rule.methods & {"GET", "POST", "PUT", "PATCH", "DELETE"}):
            for form in [None] if method == "GET" else [{}, ANONYMOUS_FORM]:
                client = app.test_client()
                data = None
                if form is not None:
                    data = {
                        "csrf_token": csrf_token_from(client.get("/login").get_data(as_text=True)),
                        **form,
                    }
                before = queued_job_ids(connection)
                response = client.open(url, method=method, data=data)
                if response.status_code >= 500:
                    problems.append(f"{method} {url} answered {response.status_code}")
                for job in Job.fetch_many(sorted(queued_job_ids(connection) - before), connection=connection):
                    if job is not None and job.func_name not in ANONYMOUS_JOBS:
                        problems.append(f"{method} {url} without a login queued {job.func_name}")
    return problems


# --- cache ---------------------------------------------------------------------------------------

CACHE_OPERATIONS = ("get", "set", "add", "inc", "dec", "delete", "get_many", "set_many", "get_dict", "has")


def record_cache_use(monkeypatch, backend) -> list[tuple[str, str, object]]:
    """Record (operation, key, current tenant) for every call on the cache backend."""
    from app.core.tenancy import current_tenant_id

    records = []
    for name in CACHE_OPERATIONS:
        original = getattr(backend, name, None)
        if original is None:
            continue

        def recorder(*args, _name=name, _original=original, **kwargs):
            keys = args[0] if _name in ("set_many",) else args[:1] if args else []
            if _name in ("get_many", "get_dict", "delete_many"):
                keys = args
            if isinstance(keys, dict):
                keys = list(keys)
            for key in keys if isinstance(keys, list | tuple) else [keys]:
                records.append((_name, str(key), current_tenant_id()))
            return _original(*args, **kwargs)

        monkeypatch.setattr(backend, name, recorder)
    return records


READ_OPERATIONS = {"get", "get_many", "get_dict", "has"}


def cache_key_problems(records) -> list[str]:
    """Every cache access made while a tenant is set uses that tenant's keys (or a user or
    global key); a tenant's key is read only while that tenant is set. (Invalidations run
    at commit time, when no tenant may be set: writing a tenant key then is fine.)"""
    problems = []
    for operation, key, tenant in records:
        if key.startswith(("u:", "g:")):
            continue
        if not key.startswith("t:"):
            if tenant is not None:
                problems.append(f"{operation} {key!r} during tenant {tenant}: key names no tenant")
            continue
        key_tenant = key.split(":", 2)[1]
        if tenant is not None and key_tenant != str(tenant):
            problems.append(f"{operation} {key!r} while the tenant is {tenant}")
        elif tenant is None and operation in READ_OPERATIONS:
            problems.append(f"{operation} {key!r} with no tenant set")
    return problems
