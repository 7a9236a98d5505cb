"""The form-round-trip harness's machinery: it finds the app's edit forms by itself.

Every GET rule of the URL map is loaded (its URL arguments built from ``URL_ARGUMENTS``)
unless ``PAGES_NOT_LOADED`` says why not; every ``<form method="post">`` on the pages is
parsed as a browser sees it, and each one whose action is not a justified entry of
``ACTION_ENDPOINTS`` is an edit form: it is submitted exactly as rendered, and nothing stored
may change (no row of any table, no history or audit entry). An edit page added later is
covered without editing the harness; a GET rule it cannot build URL arguments for is a
problem, not a silent gap.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from app.core.tenancy import unscoped
from app.extensions import db
from tests.support.forms import ParsedForm, post_forms

#: GET rules the harness does not load, with the reason.
PAGES_NOT_LOADED = {
    "static": "files, not pages",
    "reports.org_csv": "a CSV download, no form",
    "reports.project_csv": "a CSV download, no form",
    "audit.export_csv": "a CSV download of the audit log (itself audited), no form",
    "audit.export_jsonl": "a JSON Lines download of the audit log (itself audited), no form",
    "imports.rejected_rows": "a CSV download (an import's rejected rows), no form",
    "exports.download": "a file download behind a signed link, no form",
    "auth.verify_email": "a mailed link that acts when opened (a signed token), no form",
    "auth.confirm_email_change": "a mailed link that acts when opened (a signed token), no form",
    "auth.reset_password": "sets a new password from a mailed link: nothing existing is shown to keep",
    "orgs.invitation": "answers an invitation (a signed token): its form is an action (join)",
    "orgs.invitation_signup": "creates an account from an invitation: nothing existing to keep",
    "operators.console": "operators' retry and delete of queued jobs: actions, shown only to operators",
    "operators.metrics": "Prometheus text for operators, no form",
    "operators.delete_job": "the question before deleting a failed job (operators only): an action's page",
    "operators.organizations": "operators' list of organizations with their usage (operators only), no form",
    "operators.people": "operators' search for a person (operators only), a search form that changes nothing",
    "operators.suspend": "the form suspending an organization (operators only): an action's page",
    "operators.impersonate": "the form to sign in as a person (operators only): an action's page",
    "operators.unsuspend": "the question before opening an organization again (operators only)",
    "operators.plan": "an organization's plan and its form (operators only): submitted as rendered in "
    "tests/test_plans.py",
    "operators.flags_page": "the feature flags and their forms (operators only): submitted as rendered in "
    "tests/test_flags.py",
    "system_check.show": "an operator's system check result (operators only), read live, no form",
    "system_check.status": "the system check's status fragment (operators only), polled, no form",
    "health.healthz": "a probe, no form",
    "health.readyz": "a probe, no form",
    "devmail.index": "development only: a list of stored mails, no form",
    "devmail.show": "development only: one stored mail, no form",
    "sso.start": "a redirect to the organization's identity provider, no form",
    "sso.callback": "the provider's redirect back (a code and the session's state), no form",
    "sso.link": "a mailed link (a signed token): its form is an action (link the account)",
    "sso.break_glass": "an owner's entry past enforced single sign-on: the password and a reason typed fresh",
    "sso_settings.remove_domain": "the question before removing a domain: an action's page",
    "sso_settings.remove": "the question before removing single sign-on: an action's page",
    "api_keys.revoke": "the question before revoking an API key: an action's page",
    "api_docs.openapi": "the API's OpenAPI document (JSON), no form",
}

#: Blueprints of no pages, with the reason: their GET rules are not loaded.
BLUEPRINTS_NOT_LOADED = {
    "api": "the JSON API: called with a key, not a session, it answers JSON and has no forms "
    "(tests/test_api.py; the isolation harness calls every route of it with another organization's key)",
}

#: POST endpoints whose forms are actions, not edits of an existing thing, with the reason.
ACTION_ENDPOINTS = {
    "auth.logout": "ends the session",
    "auth.end_session": "ends another of the person's sessions (a button)",
    "auth.end_other_sessions": "ends every other session of the person (a button)",
    "auth.login": "signs in",
    "auth.signup": "creates an account",
    "auth.forgot_password": "mails a reset link",
    "auth.resend_verification": "mails a confirmation link",
    "auth.change_password": "asks for the current and a new password; renders empty by design",
    "auth.change_email": "asks for a new address and the password; renders empty by design",
    "auth.delete_account": "asks to delete the account: the password typed fresh",
    "auth.cancel_account_deletion": "keeps an account to be deleted (a button, or its confirmation page)",
    "auth.start_two_factor": "draws a new secret to set up two-factor (a button)",
    "auth.two_factor_setup": "turns two-factor on with a code typed fresh (renders empty)",
    "auth.regenerate_recovery_codes": "makes new recovery codes after the password (renders empty)",
    "auth.disable_two_factor": "turns two-factor off after the password and a code (renders empty)",
    "auth.two_factor_sign_in": "the sign-in's second step: a code typed fresh",
    "orgs.new": "creates an organization",
    "org.leave": "leaves the organization (the form of its confirmation page)",
    "org.remove_member": "removes a member (the form of its confirmation page)",
    "org.restore_member": "undoes a removal (shown right after one)",
    "org.invite": "creates an invitation (its fields start empty)",
    "org.resend_invitation": "mails the invitation again",
    "org.revoke_invitation": "revokes an invitation (the form of its confirmation page)",
    "org.delete_organization": "asks to delete the organization: its name and the password typed fresh",
    "org.cancel_deletion": "cancels a pending deletion (a button, or the form of its confirmation page)",
    "projects.new": "creates a project",
    "projects.archive": "archives (the form of its confirmation page) or unarchives (a button)",
    "projects.add_state": "adds a workflow state (its fields start empty)",
    "projects.move_state": "moves a workflow state up or down (buttons)",
    "projects.delete_state": "deletes a workflow state (the form of its confirmation page)",
    "issues.new_issue": "creates an issue",
    "labels.create": "creates a label (its fields start empty)",
    "labels.delete": "deletes a label (the form of its confirmation page)",
    "issues.comment": "adds a comment (starts empty)",
    "issues.watch": "starts or stops watching (a button)",
    "notifications.read_all": "marks notifications read (a button)",
    "notifications.read_one": "marks a notification read and opens its issue (a button)",
    "notifications.mark_read": "marks one notification read (a button)",
    "issues.save_view": "saves the filters on screen under a name typed fresh (renders empty, required)",
    "issues.delete_view": "deletes a saved view (the form of its confirmation page)",
    "imports.upload": "uploads a file to import",
    "imports.start": "starts an import",
    "imports.check": "counts what an import would do (the preview's form), stores nothing",
    "exports.start": "starts an export",
    "reports.org_retry": "recomputes a report",
    "reports.project_retry": "recomputes a report",
    "system_check.start": "starts a system check",
    "operators.retry_job": "retries a queued job",
    "operators.delete_job": "deletes a failed job (the form of its confirmation page)",
    "operators.suspend": "suspends an organization, with a reason typed fresh",
    "operators.impersonate": "signs in as a person, with a reason typed fresh",
    "operators.end_impersonation": "ends signing in as someone (a button in the banner)",
    "operators.unsuspend": "opens a suspended organization again (the form of its confirmation page)",
    "sso.start_page": "finds an organization's single sign-on from an address typed fresh",
    "sso_settings.save_connection": "sets the identity provider; its secret is never shown, so typed fresh",
    "sso_settings.add_domain": "adds an email domain (its field starts empty)",
    "api_keys.create": "makes an API key (its fields start empty)",
    "webhooks.create": "adds a webhook endpoint (its fields start empty)",
    "webhooks.rotate": "makes a new signing secret (a button)",
    "webhooks.enable": "turns an endpoint on (a button)",
    "webhooks.disable": "turns an endpoint off (a button)",
    "webhooks.delete": "deletes an endpoint (the form of its confirmation page)",
    "webhooks.send_test": "sends a test event (a button)",
    "webhooks.redeliver": "sends a delivery's message again (a button)",
}


@dataclass
class Seed:
    """What URL arguments are built from: one of each kind of thing, with every field filled."""

    org_slug: str
    org_id: str
    user_id: str
    issue_ref: str
    project_key: str
    state: str
    task_id: str
    job_id: str
    label_id: str
    membership_id: str
    invitation_id: str
    saved_view_id: str
    webhook_endpoint_id: str = ""
    webhook_delivery_id: str = ""


#: URL argument -> how to build it from the seed.
URL_ARGUMENTS: dict[str, Callable[[Seed], str]] = {
    "org_slug": lambda seed: seed.org_slug,
    "org_id": lambda seed: seed.org_id,
    "user_id": lambda seed: seed.user_id,
    "issue_ref": lambda seed: seed.issue_ref,
    "project_key": lambda seed: seed.project_key,
    "state": lambda seed: seed.state,
    "state_key": lambda seed: seed.state,
    "task_id": lambda seed: seed.task_id,
    "job_id": lambda seed: seed.job_id,
    "label_id": lambda seed: seed.label_id,
    "membership_id": lambda seed: seed.membership_id,
    "invitation_id": lambda seed: seed.invitation_id,
    "saved_view_id": lambda seed: seed.saved_view_id,
    "webhook_endpoint_id": lambda seed: seed.webhook_endpoint_id,
    "webhook_delivery_id": lambda seed: seed.webhook_delivery_id,
}


def snapshot() -> dict[str, list[str]]:
    """Every row of every table, of every organization, as sorted JSON lines."""
    db.session.expire_all()
    state = {}
    with unscoped("form round-trip harness: nothing stored may change"):
        for table in db.metadata.sorted_tables:
            rows = db.session.execute(select(table)).mappings().all()
            state[table.name] = sorted(json.dumps(dict(row), default=str, sort_keys=True) for row in rows)
    db.session.rollback()
    return state


def differences(before: dict, after: dict) -> list[str]:
    found = []
    for table in sorted(set(before) | set(after)):
        old, new = set(before.get(table, [])), set(after.get(table, []))
        if old != new:
            gone = sorted(old - new)[:2]
            came = sorted(new - old)[:2]
            found.append(f"{table}: {len(old - new)} rows changed or removed {gone}, new or changed {came}")
    return found


def page_rules(app):
    return [rule for rule in app.url_map.iter_rules() if "GET" in rule.methods]


def endpoint_of(app, url: str, method: str = "POST") -> str | None:
    parts = urlsplit(url)
    adapter = app.url_map.bind("localhost")
    try:
        endpoint, _ = adapter.match(parts.path, method=method)
    except HTTPException:
        return None
    return endpoint


def page_urls(app, seed: Seed) -> tuple[list[str], list[str]]:
    """(URLs of every GET page to load, problems: rules the harness cannot build)."""
    urls, problems = [], []
    for rule in page_rules(app):
        if rule.endpoint in PAGES_NOT_LOADED or rule.endpoint.split(".")[0] in BLUEPRINTS_NOT_LOADED:
            continue
        values = {}
        for argument in sorted(rule.arguments):
            if argument not in URL_ARGUMENTS:
                problems.append(
                    f"{rule.endpoint} ({rule.rule}): no way to build <{argument}>; "
                    "add it to URL_ARGUMENTS (or justify the page in PAGES_NOT_LOADED)"
                )
                break
            values[argument] = URL_ARGUMENTS[argument](seed)
        else:
            urls.append(rule.build(values, append_unknown=False)[1])
    return urls, problems


def _pairs(form: ParsedForm):
    from werkzeug.datastructures import MultiDict

    return MultiDict(form.submission())


def roundtrip_problems(app, client, seed: Seed) -> tuple[list[str], list[str]]:
    """Load every page, submit every edit form as rendered; (problems, edit forms submitted)."""
    urls, problems = page_urls(app, seed)
    submitted = []
    for url in urls:
        page = client.get(url)
        if 300 <= page.status_code < 400:
            continue  # the page it leads to is a rule of its own
        if page.status_code != 200:
            problems.append(f"GET {url} answered {page.status_code} for a member with edit rights")
            continue
        for index, form in enumerate(post_forms(page.get_data(as_text=True), url)):
            method, action = form.target(form.submit_buttons()[0] if form.submit_buttons() else None)
            endpoint = endpoint_of(app, action, method)
            if endpoint is None:
                problems.append(f"{url} form #{index}: posts to {action}, which no rule serves")
                continue
            if endpoint in ACTION_ENDPOINTS:
                continue
            label = f"{url} form #{index} ({endpoint})"
            submitted.append(label)
            if not form.novalidate and (empty := form.unfilled_required()):
                problems.append(f"{label}: a browser would not submit it as rendered: {empty} empty")
                continue
            with app.app_context():  # encrypted columns are read with the app's keys
                before = snapshot()
            response = client.open(action, method=method, data=_pairs(form))
            with app.app_context():
                after = snapshot()
            if response.status_code >= 400:
                problems.append(f"{label}: submitted as rendered, answered {response.status_code}")
            problems.extend(f"{label} changed stored data: {diff}" for diff in differences(before, after))
    return problems, submitted
