"""Names people read (of users, organizations, projects, issues, views): no invisible controls.

Bidirectional overrides and isolates (U+202A to U+202E, U+2066 to U+2069), direction marks
(U+200E, U+200F, U+061C) and zero-width characters (U+200B to U+200D, U+2060 to U+2064,
U+FEFF, U+00AD, U+180E) are invisible, yet they reorder or hide what a name shows: a
right-to-left override makes "report<U+202E>fdp.exe" read "reportexe.pdf". Every
name-like field refuses them with one message, through :class:`VisibleText` on forms or
:func:`invisible_text_problem` elsewhere.
"""

from __future__ import annotations

import re

from wtforms.validators import ValidationError

INVISIBLE_CHARACTERS = re.compile(
    "[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
MESSAGE = (
    "Remove the invisible formatting characters (such as a right-to-left override or a "
    "zero-width space): they change how the name reads."
)


def invisible_text_problem(value: str | None) -> str | None:
    """The message to show when ``value`` holds invisible formatting characters, else None."""
    if value and INVISIBLE_CHARACTERS.search(value):
        return MESSAGE
    return None


class VisibleText:
    """Form validator: the field's text may not hold invisible formatting characters."""

    def __call__(self, form, field):
        problem = invisible_text_problem(field.data if isinstance(field.data, str) else None)
        if problem:
            raise ValidationError(problem)
