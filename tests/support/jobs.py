"""Jobs the tests enqueue into real workers (importable by a worker started from the project root)."""

from app.extensions import redis_connections
from app.tenancy import current_tenant_id


def record_tenant(key: str) -> str:
    """Append the tenant this job runs as ("none" when none) to a Redis list."""
    seen = str(current_tenant_id() or "none")
    redis_connections.client().rpush(key, seen)
    return seen
