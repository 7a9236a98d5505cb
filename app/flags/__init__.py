"""Feature flags: declared in ``catalog``, set by operators (``services``, ``/operators/flags``),
checked with ``enabled(name, organization_id)`` (``state``)."""

from app.flags.catalog import FLAGS, Flag
from app.flags.state import enabled

__all__ = ["FLAGS", "Flag", "enabled"]
