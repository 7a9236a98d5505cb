"""The state, priority, label and assignee pieces of rows, cards and results."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from jinja2 import Environment

from app.issues import badges
from app.models.work import PRIORITY_LABELS
from app.models.workflow import DEFAULT_STATES

STATE_LABELS = {key: name for key, name, _category in DEFAULT_STATES}

#: The Jinja macros these functions replaced, as the reference for what they write.
MACROS = (
    '{% macro state_badge(state, labels) -%}<span class="state state--{{ state }}">{{ labels[state] }}</span>'
    "{%- endmacro %}"
    '{% macro priority_icon(priority, labels) -%}<span class="priority priority--{{ priority }}" '
    'title="{{ labels[priority] }}"><span class="visually-hidden">{{ labels[priority] }}</span></span>'
    "{%- endmacro %}"
    "{% macro label_chips(labels) -%}{% for l in labels %}"
    '<span class="chip label--{{ l.color_name }}">{{ l.name }}</span>{% endfor %}'
    "{%- endmacro %}"
    '{% macro avatars(users) -%}{% for u in users %}<span class="avatar" title="{{ u.name }}">'
    "{{ u.name[:1] }}</span>{% endfor %}{%- endmacro %}"
)
NAMES = ["Grace", "<b>Bold</b> & co", "Quote \"q\" 's'", "Émile", "", "日本"]
COLORS = ["red", "gray", "blue", "green", "violet", 'x"<y>']


@pytest.fixture(scope="module")
def macros():
    return Environment(autoescape=True).from_string(MACROS).module


@pytest.mark.parametrize("state", list(STATE_LABELS))
def test_a_state_badge_is_what_the_template_wrote(macros, state):
    """Each state's badge is the HTML the list and search templates wrote."""
    assert str(badges.state_badge(state, STATE_LABELS)) == str(macros.state_badge(state, STATE_LABELS))
    odd = {state: '<Odd> & "label"'}
    assert str(badges.state_badge(state, odd)) == str(macros.state_badge(state, odd))


@pytest.mark.parametrize("priority", list(PRIORITY_LABELS))
def test_a_priority_icon_is_what_the_template_wrote(macros, priority):
    """Each priority's icon is the HTML the templates wrote, its label escaped in the title."""
    assert str(badges.priority_icon(priority, PRIORITY_LABELS)) == str(
        macros.priority_icon(priority, PRIORITY_LABELS)
    )
    odd = {priority: "'Urgent' <now> & \"then\""}
    assert str(badges.priority_icon(priority, odd)) == str(macros.priority_icon(priority, odd))


def test_label_chips_and_avatars_escape_names_as_the_template_did(macros):
    """Labels and people with markup, quotes and non-Latin names come out as the templates wrote them."""
    named = [SimpleNamespace(name=name, color_name=color) for name, color in zip(NAMES, COLORS, strict=True)]
    assert str(badges.label_chips(named)) == str(macros.label_chips(named))
    assert str(badges.avatars(named)) == str(macros.avatars(named))
    assert str(badges.label_chips([])) == str(macros.label_chips([])) == ""
    assert "&lt;b&gt;" in str(badges.label_chips(named)) and "<b>" not in str(badges.avatars(named))
