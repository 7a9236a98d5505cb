"""An issue's page, from the cache while nothing it shows has changed.

Two levels, both keyed by the organization and by the versions of what they show (the issue's
own topic ``("issue", id)``, moved by any change to the issue or to its assignees, labels,
watchers, comments and history; ``members``, ``labels`` and ``projects`` for names and
mentions):

- the issue's **shared parts** (title, description, comments and history, details, who
  watches, the edit form's values and choices): the same for everyone who may see the issue, rendered once
  per change and never holding anything of a person (no token, no permission);
- the **person's page** around them (their forms, watch button, controls their role allows,
  unread count), stored per person and URL with the CSRF token as a placeholder, also keyed by
  their own versions (notifications, account: name, role). A page with a flash message is
  rendered, not stored. Stored with it is the page's **frame**: the same page with slots where
  the issue's parts, the watch button's state and the edit form go, kept under every version
  but the issue's own. After a change to the issue only the parts and the person's edit form
  are rendered, and filled into the frame.

The issue a reference names is remembered per process (``_REFS``), so a warm page needs no
query and a page after an edit reads the issue by its id: a remembered id is trusted only as far
as cached data rendered for that id, or its row read now, says its reference is the one asked
for, under versions that move if that reference changes (a project key, an issue moved or
deleted); otherwise the reference is looked up first. The URL also remembers which
versions and page it read (``page_cache.remember_page``), so the next request for it reads them with
its session: a warm page costs one Redis round trip.
"""

from __future__ import annotations

import functools
import hashlib
import re
import uuid

from flask import Response, abort, g, make_response, render_template, request, session, url_for
from markupsafe import Markup, escape

from app.auth.identity import signed_in
from app.core import cache, compression, page_cache
from app.core.csrf_tokens import csrf_token
from app.core.markdown import MENTION_PLACEHOLDER, RENDERER_VERSION, stored_html
from app.core.tenancy import require_tenant
from app.issues import edit_form, page_queries, queries
from app.models.work import PRIORITY_LABELS
from app.orgs.context import current_access
from app.projects.workflow import state_choices

#: What an issue's page shows besides the issue's own rows: people's names (and who a mention
#: names), label names, the project's name.
PAGE_TOPICS = ("members", "labels", "projects")
#: What the person's page shows of the viewer's own: their unread count (and their account).
VIEWER_TOPICS = ("notifications",)
#: Moved when what the shared parts hold changes, so parts stored in another shape are not read.
PARTS_SHAPE = 3
#: (organization, reference) -> the issue id last found for it in this process.
_REFS: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
_MAX_REFS = 100_000


@functools.lru_cache(maxsize=4096)
def page_topics(issue_id) -> tuple:
    """The topics an issue's page shows (one tuple per issue and process: a warm page looks it up
    by the tuple and compares it with the one noted for its URL)."""
    return (("issue", issue_id), *PAGE_TOPICS)


#: A reference as asked for -> as the issue's ``ref`` spells it (``web-07`` is ``WEB-7``).
_canonical_ref = functools.lru_cache(maxsize=4096)(queries.canonical_ref_or_404)


def _remembered(ref: str) -> uuid.UUID | None:
    return _REFS.get((require_tenant(), ref))


def _remember(ref: str, issue_id: uuid.UUID) -> None:
    if len(_REFS) >= _MAX_REFS:
        _REFS.clear()
    _REFS[(require_tenant(), ref)] = issue_id


# --- the shared parts ---------------------------------------------------------------------


def shared_parts(issue_id, ref: str) -> dict | None:
    """The issue's shared parts, or None when the issue ``issue_id`` is not ``ref`` (any more).
    Parts rendered here are stored with the page (``page_response``), or at once by
    ``store_rendered_parts``."""
    numbers = ".".join(map(str, cache.versions(*page_topics(issue_id))))
    key = cache.tenant_key("issue-parts", issue_id, f"v{numbers}.r{RENDERER_VERSION}.s{PARTS_SHAPE}")
    missed = g.setdefault("issue_parts_missed", set())
    parts = None if key in missed else cache.get(key)
    if parts is None:
        missed.add(key)
        # The versions were read before the data: a change committed meanwhile moves them again.
        found = page_queries.issue_page(issue_id)
        if found is None or found[0].ref != ref:
            return None
        parts = _render_parts(*found)
        g.issue_parts_rendered = {key: parts}
    return parts if parts["ref"] == ref else None


def parts_for(issue_ref: str) -> tuple[uuid.UUID, dict]:
    """The id and shared parts of the issue ``issue_ref`` names (404 if none)."""
    ref = queries.canonical_ref_or_404(issue_ref)
    remembered = _remembered(ref)
    # A remembered id is trusted only as far as its cached parts, or its row read now, carry the
    # reference asked for (the row is read by id in the current organization).
    if remembered is not None and (parts := shared_parts(remembered, ref)) is not None:
        return remembered, parts
    for _ in range(3):
        issue_id, _version = queries.issue_stamp_or_404(issue_ref)
        _remember(ref, issue_id)
        parts = shared_parts(issue_id, ref)
        if parts is not None:
            return issue_id, parts
        # Its reference changed between the two reads: read again what it names now.
    abort(503, "The issue kept changing while its page was read: try again.")


def store_rendered_parts(page: dict | None = None) -> None:
    """Store the parts this request rendered, with ``page`` ({key: value}), in one round trip."""
    values = {**g.pop("issue_parts_rendered", {}), **(page or {})}
    if values:
        cache.store_many(values, timeout=cache.DEFAULT_TIMEOUT)


def _render_parts(
    issue: page_queries.ShownIssue,
    assignee_ids: set[str],
    watchers: set[str],
    label_ids: set[str],
    timeline: list,
) -> dict:
    comments = [entry for entry in timeline if entry.kind == "comment"]
    people, labels, handles = queries.issue_page_choices()
    states = state_choices(issue.project_key)
    # The issue's assignees and labels, named from the tenant's cached members and labels (in
    # their order, by name); one the cache does not know (a label made since, someone assigned
    # who has left) is read with the rest.
    assignees = [person for person in people if person.id in assignee_ids]
    if len(assignees) < len(assignee_ids):
        assignees = queries.people_named(assignee_ids)
    issue_labels = [label for label in labels if label.id in label_ids]
    if len(issue_labels) < len(label_ids):
        issue_labels = queries.labels_named(label_ids)
    mention_url = mention_url_for(handles) if _has_mentions(issue, comments) else None

    def html_of(row) -> Markup:
        if isinstance(row, page_queries.ShownIssue):
            text, html, made_with = row.description, row.description_html, row.description_html_version
        else:
            text, html, made_with = row.body, row.body_html, row.body_html_version
        return stored_html(text, html, made_with, mention_url)

    main = render_template(
        "issues/_issue_main.html",
        issue=issue,
        labels=issue_labels,
        timeline=timeline,
        html_of=html_of,
        state_labels=dict(states),
        priority_labels=PRIORITY_LABELS,
    )
    shown = details_shown(issue, assignees, issue_labels, states)
    return {
        "ref": issue.ref,
        "title": issue.title,
        "project_name": issue.project_name,
        "project_url": url_for("issues.project_list", project_key=issue.project_key),
        "main": str(main),
        "shown": shown,
        "watchers": watchers,
        "values": edit_form.edit_values(issue, label_ids, assignee_ids),
        "people": people,
        "labels": labels,
        "states": states,
    }


def details_shown(issue: page_queries.ShownIssue, assignees: list, labels: list, states: list) -> dict:
    """What the details beside the issue show (plain values, kept with the shared parts); ``states``
    are its project's (key, name)."""
    return {
        "state": issue.state,
        "state_labels": dict(states),
        "priority": issue.priority,
        "assignees": assignees,
        "labels": labels,
        "due_date": issue.due_date,
        "estimate": issue.estimate,
        "created_at": issue.created_at,
    }


def details_of(parts: dict) -> str:
    """The details as a reader sees them (values only). Rendered when asked for, not with the
    shared parts: someone who may edit gets them with a form per field instead
    (``page_forms.own_html``), so an editor's page after an edit renders them once."""
    details = parts.get("details")
    return details if details is not None else render_details(parts["shown"])


def render_details(shown: dict, **forms) -> str:
    """The details beside the issue: values alone, or with ``forms`` (``ref``, ``forms``,
    ``open_field``, ``refusal``) a form to change each."""
    return render_template(
        "issues/_issue_details.html",
        shown=shown,
        state_labels=shown["state_labels"],
        priority_labels=PRIORITY_LABELS,
        **{"forms": None, **forms},
    )


def _has_mentions(issue: page_queries.ShownIssue, comments) -> bool:
    """Whether any text may mention someone (current stored HTML without a mention link has none)."""
    stored = [
        (issue.description, issue.description_html, issue.description_html_version),
        *((c.body, c.body_html, c.body_html_version) for c in comments),
    ]
    return any(
        text and (html is None or made_with != RENDERER_VERSION or MENTION_PLACEHOLDER in html)
        for text, html, made_with in stored
    )


def mention_url_for(handles: dict[str, str]):
    """Links @mentions of members (by the handles that name them) to the issues assigned to them."""

    def url(handle: str):
        user_id = handles.get(handle.lower())
        return url_for("issues.all_issues", assignee=user_id) if user_id else None

    return url


# --- the person's page --------------------------------------------------------------------


def _viewer_versions(issue_id, user_id, along: str | None = None):
    """The versions of everything the person's page shows (and the value under ``along``)."""
    return page_cache.page_versions(page_topics(issue_id), VIEWER_TOPICS, user_id, along=along)


def _read_with_session_next_time(tenant_id, issue_id) -> None:
    """The next request for this URL reads the versions and the page ``page_response`` reads
    first with its session, in one round trip (``page_cache.page_keys_for``)."""
    page_cache.remember_page(request.path, tenant_id, "issue", page_topics(issue_id), VIEWER_TOPICS)


def _etag(issue_id, versions, user_id) -> str:
    return _etag_of(issue_id, versions, user_id, current_access().role)


@functools.lru_cache(maxsize=4096)
def _etag_of(issue_id, versions: tuple, user_id, role: str) -> str:
    """The page's ETag for the person ``user_id`` in ``role`` at ``versions`` (made once per
    process for each)."""
    return hashlib.sha256(f"{issue_id}:{versions}:{user_id}:{role}".encode()).hexdigest()[:32]


def page_response(issue_ref: str, render, edit_form):
    """The person's page of the issue: from the cache, or rendered and stored.

    ``render(parts, watch, edit_form_html)`` renders the page around the shared parts (or the
    slots of its frame), ``edit_form(parts)`` the person's edit form. Answers 304 to a matching
    If-None-Match: the ETag follows the same versions.
    """
    current = request._get_current_object()  # each read through the proxy costs about 1 µs
    user_id, tenant_id = signed_in().user_id, require_tenant()
    key = page_cache.page_key(tenant_id, "issue", user_id, current)
    storable = not session._get_current_object().get("_flashes") and not page_cache.bypassed()
    remembered = _REFS.get((tenant_id, _canonical_ref(issue_ref)))
    stored = None
    if remembered is not None and storable:
        topics = page_topics(remembered)
        page_cache.remember_page(current.path, tenant_id, "issue", topics, VIEWER_TOPICS)
        versions, stored = page_cache.page_versions(topics, VIEWER_TOPICS, user_id, along=key)
        if not (isinstance(stored, tuple) and len(stored) == 4):
            stored = None
        elif stored[:2] == (remembered, versions):
            return _answer(_etag(remembered, versions, user_id), lambda: _with_token(stored[2]))
    # Rendered anew: the choices and states the forms show are read with the shared parts.
    cache.read_ahead_while_rendering(queries.issue_page_choices_keys())
    issue_id, parts = parts_for(issue_ref)
    versions, _ = _viewer_versions(issue_id, user_id)
    if storable and issue_id != remembered:  # already noted above for the remembered issue
        _read_with_session_next_time(tenant_id, issue_id)

    def fresh() -> str:
        watch = watch_state(str(user_id) in parts["watchers"])
        if not storable:
            html = str(render(parts, watch, edit_form(parts)))
            store_rendered_parts()
            return html
        token = csrf_token()
        # The frame shows nothing of the issue but its reference (the URL's): it is kept while
        # the person's own versions and the tenant's names stay as they were. It is kept as
        # UTF-8 bytes: a warm page, which does not use it, reads it without decoding it.
        frame_versions = versions[1:]
        kept_frame = stored[3] if stored is not None and stored[0] == issue_id else (None, None)
        if kept_frame[0] == frame_versions and isinstance(kept_frame[1], bytes):
            frame = kept_frame[1].decode()
        else:
            frame = str(render(*_frame_slots(parts["ref"]))).replace(token, page_cache.CSRF_PLACEHOLDER)
        own_form = str(edit_form(parts)).replace(token, page_cache.CSRF_PLACEHOLDER)
        html = _fill(frame, parts, watch, own_form)
        compressed = compression.precompress(html, page_cache.CSRF_PLACEHOLDER)
        kept = compression.kept_page(html, page_cache.CSRF_PLACEHOLDER, compressed, token)
        store_rendered_parts({key: (issue_id, versions, kept, (frame_versions, frame.encode()))})
        return compression.kept_response(kept, page_cache.CSRF_PLACEHOLDER, token)

    etag = _etag(issue_id, versions, user_id)
    if request.if_none_match.contains(etag):
        store_rendered_parts()  # rendered for nothing this time: keep them for the next
    return _answer(etag, fresh)


def watch_state(watching: bool) -> dict:
    """The watch button's hidden value and label."""
    return {"value": "0" if watching else "1", "label": "Stop watching" if watching else "Watch"}


# --- the person's page frame: their page with slots for what follows the issue ---------------

#: A slot the frame leaves open, filled per response in one pass (so filled text is never read
#: again as a slot).
_SLOT = re.compile(r"__worklane_slot_([a-z_]+?)__")


def _slot(name: str) -> Markup:
    return Markup(f"__worklane_slot_{name}__")


def _frame_slots(ref: str) -> tuple[dict, dict, Markup]:
    """``render``'s arguments for the frame: slots in place of the parts, the watch button and
    the edit form; the reference is the URL's."""
    parts = {name: _slot(name) for name in ("title", "project_url", "project_name", "main", "details")}
    return (
        {**parts, "ref": ref},
        {"value": _slot("watch_value"), "label": _slot("watch_label")},
        _slot("edit_form"),
    )


def _fill(frame: str, parts: dict, watch: dict, edit_form: str) -> str:
    values = {
        "title": escape(parts["title"]),
        "project_url": escape(parts["project_url"]),
        "project_name": escape(parts["project_name"]),
        "main": parts["main"],
        # A reader's frame has the details' slot; an editor's has the edit form's instead.
        "details": details_of(parts) if _slot("details") in frame else "",
        "watch_value": escape(watch["value"]),
        "watch_label": escape(watch["label"]),
        "edit_form": edit_form,
    }
    return _SLOT.sub(lambda found: str(values.get(found.group(1), found.group(0))), frame)


def _with_token(kept: tuple):
    return compression.kept_response(kept, page_cache.CSRF_PLACEHOLDER, csrf_token())


def _answer(etag: str, body):
    current = request._get_current_object()
    # A request without If-None-Match (most) does not parse the header.
    if "HTTP_IF_NONE_MATCH" in current.environ and current.if_none_match.contains(etag):
        response = make_response("", 304)
    else:
        answer = body()
        response = answer if isinstance(answer, Response) else make_response(answer)
    response.set_etag(etag)
    response.headers["Cache-Control"] = "private, no-cache"
    return response
