"""Per-key rate limits of the API, with their state in every answer.

Each key may make its organization's plan's number of requests a minute (``requests_per_minute``),
counted in a moving window in Redis, shared by every web process (Flask-Limiter's storage and
strategy). Answers carry ``RateLimit-Policy`` and ``RateLimit`` (the IETF HTTPAPI rate limit
fields: quota, window, what remains, seconds to reset); past the limit the answer is a 429
problem with ``Retry-After``. While Redis cannot be reached each process counts in its own
memory, as the pages' limits do, rather than stopping the API.
"""

from __future__ import annotations

import logging
import math
import time

from flask import current_app, g
from limits import RateLimitItemPerMinute, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from app import plans
from app.api.problems import ApiProblem
from app.extensions import db, limiter
from app.models import Organization

log = logging.getLogger(__name__)

POLICY = "key"
_WINDOW_SECONDS = 60
_fallback = MovingWindowRateLimiter(MemoryStorage())


def requests_per_minute(organization_id) -> int | None:
    """How many requests a minute each key of the organization may make: its plan's number
    (``app/plans/catalog.py``; None: no limit)."""
    return plans.api_requests_per_minute(db.session.get(Organization, organization_id))


def _hit(item, key_id: str) -> tuple[bool, float, int]:
    """(allowed, when the window frees a request (epoch seconds), remaining)."""
    for strategy in _strategies():
        try:
            allowed = strategy.hit(item, "api", key_id)
            reset, remaining = strategy.get_window_stats(item, "api", key_id)
            return allowed, reset, remaining
        except Exception:  # the storage cannot be reached: count in this process
            log.warning("API rate limit counted in memory: its storage failed", exc_info=True)
    return True, time.time() + _WINDOW_SECONDS, item.amount


def _strategies():
    return [limiter.limiter, _fallback] if current_app.config["RATELIMIT_ENABLED"] else []


def refused_keys_item():
    return parse(current_app.config["API_REFUSED_KEYS_PER_IP"])


def too_many_refused_keys(address: str) -> bool:
    """Whether the address sent too many keys that did not work lately (a guesser)."""
    for strategy in _strategies():
        try:
            return not strategy.test(refused_keys_item(), "api-refused", address)
        except Exception:
            log.warning("API refused-key limit counted in memory: its storage failed", exc_info=True)
    return False


def count_refused_key(address: str) -> None:
    for strategy in _strategies():
        try:
            strategy.hit(refused_keys_item(), "api-refused", address)
            return
        except Exception:
            log.warning("API refused-key limit counted in memory: its storage failed", exc_info=True)


def check() -> None:
    """Count this request against the key's limit (after it is known), or answer 429."""
    quota = requests_per_minute(g.api_key.tenant_id)
    if quota is None:
        return  # the plan sets no limit
    item = RateLimitItemPerMinute(quota)
    allowed, reset_at, remaining = _hit(item, str(g.api_key.id))
    seconds = max(0, math.ceil(reset_at - time.time()))
    g.api_rate = {
        "RateLimit-Policy": f'"{POLICY}";q={quota};w={_WINDOW_SECONDS}',
        "RateLimit": f'"{POLICY}";r={max(0, remaining)};t={seconds}',
    }
    if not allowed:
        wait = max(1, seconds)
        raise ApiProblem(
            429,
            f"This key may make {quota} requests a minute: wait {wait} seconds.",
            headers={**g.api_rate, "Retry-After": str(wait)},
        )


def add_headers(response):
    for name, value in g.get("api_rate", {}).items():
        response.headers.setdefault(name, value)
    return response
