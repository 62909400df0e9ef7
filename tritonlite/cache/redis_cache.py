"""Triton's ``redis`` cache: responses in a Redis server, shared by every engine pointed at it.

Settings are those of Triton's ``redis_cache``: ``host`` and ``port`` (required), ``user``,
``password`` (also from ``TRITONCACHE_REDIS_USERNAME`` / ``TRITONCACHE_REDIS_PASSWORD``), ``db``,
``connect_timeout`` / ``socket_timeout`` (ms, 0 = wait forever), ``pool_size`` (connections, default 1)
and ``wait_timeout`` (ms to wait for a pooled connection, default 1000). The engine pings the server
at start-up, as Triton does; later, a Redis error is logged and the request runs uncached (Triton's
fallback while Redis is down). Uses the ``redis`` client (``pip install 'tritonlite[redis]'``).
"""

from __future__ import annotations

import logging
from typing import Any

from tritonlite.cache.entry import CacheEntry, decode, encode
from tritonlite.cache.local import EXISTS, INSERTED
from tritonlite.errors import InvalidArgumentError, UnavailableError

_log = logging.getLogger("tritonlite.cache")

#: key namespace inside the Redis database
KEY_PREFIX = b"tritonlite:"
USERNAME_ENV = "TRITONCACHE_REDIS_USERNAME"
PASSWORD_ENV = "TRITONCACHE_REDIS_PASSWORD"


class RedisCache:
    """GET/SET NX of :func:`~tritonlite.cache.entry.encode` blobs; no expiry (as Triton's)."""

    name = "redis"

    def __init__(self, settings: dict[str, Any]) -> None:
        try:
            import redis
        except ImportError as exc:
            raise InvalidArgumentError(
                "the 'redis' cache needs the redis client: pip install 'tritonlite[redis]'"
            ) from exc
        self.host = settings["host"]
        self.port = settings["port"]
        pool = redis.BlockingConnectionPool(
            host=self.host,
            port=self.port,
            db=settings.get("db", 0),
            username=settings.get("user"),
            password=settings.get("password"),
            socket_connect_timeout=settings.get("connect_timeout"),
            socket_timeout=settings.get("socket_timeout"),
            max_connections=settings.get("pool_size", 1),
            timeout=settings.get("wait_timeout", 1.0),
        )
        self._client = redis.Redis(connection_pool=pool)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        try:
            self._client.ping()
        except self._errors as exc:
            pool.disconnect()
            raise UnavailableError(
                f"Failed to initialize RedisCache: cannot reach redis at {self.host}:{self.port}: {exc}"
            ) from None

    def lookup(self, key: bytes) -> CacheEntry | None:
        try:
            blob = self._client.get(KEY_PREFIX + key.hex().encode())
        except self._errors as exc:
            _log.error("Failed to retrieve key: %s. %s", key.hex(), exc)
            return None
        if blob is None:
            return None
        try:
            return decode(blob)
        except Exception as exc:  # a foreign or damaged value is a miss, never a wrong answer
            _log.error("cache entry %s could not be read: %s", key.hex(), exc)
            return None

    def insert(self, key: bytes, entry: CacheEntry) -> str:
        try:
            done = self._client.set(KEY_PREFIX + key.hex().encode(), encode(entry), nx=True)
        except self._errors as exc:
            _log.error("Failed to insert key: %s. %s", key.hex(), exc)
            return "error"
        return INSERTED if done else EXISTS

    def gauges(self) -> dict[str, Any]:
        """Triton's redis cache publishes no gauges of its own."""
        return {}

    def close(self) -> None:
        self._client.connection_pool.disconnect()


__all__ = ["RedisCache", "KEY_PREFIX"]
