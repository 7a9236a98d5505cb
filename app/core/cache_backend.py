"""The cache's Redis backend (``CACHE_TYPE``): Flask-Caching's, forgiving an unreachable Redis."""

from __future__ import annotations

import logging
from typing import Any

from flask_caching.backends import RedisCache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class ForgivingRedisCache(RedisCache):
    """Flask-Caching's Redis backend (``CACHE_TYPE``), answering as an empty cache while its Redis
    is unreachable: a read misses and a write is dropped, so every page is rendered from the
    database instead of failing (with the circuit breaker of app/core/redis_breaker.py, without
    waiting either)."""

    def _unreachable(self, exc: RedisError, answer: Any) -> Any:
        log.warning("cache unavailable", extra={"error": str(exc)})
        return answer

    def get(self, key: str) -> Any:
        try:
            return super().get(key)
        except RedisError as exc:
            return self._unreachable(exc, None)

    def get_many(self, *keys: str) -> list[Any]:
        try:
            return super().get_many(*keys)
        except RedisError as exc:
            return self._unreachable(exc, [None] * len(keys))

    def has(self, key: str) -> bool:
        try:
            return super().has(key)
        except RedisError as exc:
            return self._unreachable(exc, False)

    def set(self, key: str, value: Any, timeout: Any = None) -> Any:
        try:
            return super().set(key, value, timeout)
        except RedisError as exc:
            return self._unreachable(exc, False)

    def add(self, key: str, value: Any, timeout: Any = None) -> Any:
        try:
            return super().add(key, value, timeout)
        except RedisError as exc:
            return self._unreachable(exc, False)

    def set_many(self, mapping: dict[str, Any], timeout: Any = None) -> list[Any]:
        try:
            return super().set_many(mapping, timeout)
        except RedisError as exc:
            return self._unreachable(exc, [])

    def delete(self, key: str) -> bool:
        try:
            return super().delete(key)
        except RedisError as exc:
            return self._unreachable(exc, False)

    def delete_many(self, *keys: str) -> list[Any]:
        try:
            return super().delete_many(*keys)
        except RedisError as exc:
            return self._unreachable(exc, [])
