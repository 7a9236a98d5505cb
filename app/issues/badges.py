"""The small pieces of an issue shown on every row, card and result: its state, its priority,
its labels and its assignees, as HTML for the templates (``state_badge(i.state, state_labels)``,
or ``state_badge(i.state, state_labels, i.ref)`` with the names of several projects' states).

They are functions, not Jinja macros: a list page rendered anew shows about 200 of them and a
board several hundred, and a macro call costs Jinja a new context each time. A state's or a
priority's badge, the same for every issue, is made once per process; names are escaped as
the templates would escape them.
"""

from __future__ import annotations

from functools import lru_cache

from markupsafe import Markup, escape


def state_badge(state: str, labels, ref: str | None = None) -> Markup:
    """``<span class="state state--…">`` with the state's label from ``labels``: by state key, or
    with ``ref`` (an issue's, like WEB-42) by project key and then by state key."""
    if ref is not None:
        labels = labels.get(ref.rsplit("-", 1)[0], {})
    return _state_badge(state, labels.get(state, state))


def priority_icon(priority: int, labels) -> Markup:
    """The priority's icon, titled with its label from ``labels`` (also read by screen readers)."""
    return _priority_icon(priority, labels[priority])


def label_chips(labels) -> Markup:
    """A chip per label, by name, in its colour (``Label.color_name``, a class of the palette)."""
    return Markup(
        "".join(
            [
                f'<span class="chip label--{escape(label.color_name)}">{escape(label.name)}</span>'
                for label in labels
            ]
        )
    )


def avatars(users) -> Markup:
    """A person's initial per person, titled with the name."""
    return Markup(
        "".join(
            [
                f'<span class="avatar" title="{name}">{escape(user.name[:1])}</span>'
                for user in users
                for name in (escape(user.name),)
            ]
        )
    )


@lru_cache(maxsize=1024)
def _state_badge(state: str, label: str) -> Markup:
    return Markup(f'<span class="state state--{escape(state)}">{escape(label)}</span>')


@lru_cache(maxsize=1024)
def _priority_icon(priority: int, label: str) -> Markup:
    label = escape(label)
    return Markup(
        f'<span class="priority priority--{escape(priority)}" title="{label}">'
        f'<span class="visually-hidden">{label}</span></span>'
    )
