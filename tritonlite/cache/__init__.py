"""Triton's response cache: ``response_cache { enable: true }`` per model, one cache per engine.

``create_cache(cache_config)`` builds the engine's cache from Triton's form (``{"local": {"size":
N}}`` or ``{"redis": {"host": ..., "port": ...}}``); :class:`ModelCache` is what a model version's
request path calls. Models whose config cannot be cached (sequence batching, decoupled) are refused at
load with Triton's messages; a model that enables the cache on an engine without one simply runs
uncached, as in Triton.
"""

from __future__ import annotations

from typing import Any, Mapping

from tritonlite.cache.config import normalize_cache_config, parse_cli_settings
from tritonlite.cache.entry import CacheEntry
from tritonlite.cache.local import LocalCache
from tritonlite.cache.model_cache import ModelCache


def create_cache(cache_config: Mapping[str, Mapping[str, Any]] | None) -> Any:
    """The engine's cache object, or None when ``cache_config`` is empty. Bad settings raise InvalidArgumentError."""
    parsed = normalize_cache_config(cache_config)
    if parsed is None:
        return None
    name, settings = parsed
    if name == "local":
        return LocalCache(settings["size"])
    from tritonlite.cache.redis_cache import RedisCache

    return RedisCache(settings)


__all__ = ["CacheEntry", "LocalCache", "ModelCache", "create_cache", "normalize_cache_config", "parse_cli_settings"]
