"""The guard of every operator page, for the operators' own pages and the system check's."""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user

from app.operators.services import is_operator


def operator_required(view):
    """Operators only; anyone else (tenant owners included) is told nothing is here: 404."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not is_operator(current_user):
            abort(404)
        return view(*args, **kwargs)

    return wrapped
