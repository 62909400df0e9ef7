"""Parse and check a response-cache configuration: the engine's ``cache_config`` and Triton's ``--cache-config``.

The form is Triton's: one cache implementation name with its settings, e.g. ``{"local": {"size":
1048576}}`` or ``--cache-config local,size=1048576`` (repeatable, one ``<cache>,<key>=<value>`` each).
Values may be strings or numbers. Unlike Triton, which ignores settings it does not know, an unknown
setting is an error here: a misspelt ``szie`` would otherwise silently leave the cache off.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping

from tritonlite.errors import InvalidArgumentError

#: settings each implementation takes (the required ones first)
LOCAL_SETTINGS = ("size",)
REDIS_SETTINGS = ("host", "port", "user", "password", "db", "connect_timeout", "socket_timeout", "pool_size", "wait_timeout")
_REDIS_TLS = ("tls_enabled", "cert", "key", "cacert", "cacert_dir", "sni")


def parse_cli_settings(args: Iterable[str]) -> dict[str, dict[str, str]]:
    """``["local,size=1048576", ...]`` → ``{"local": {"size": "1048576"}}`` with Triton's format errors."""
    out: dict[str, dict[str, str]] = {}
    for arg in args:
        name, comma, setting = arg.partition(",")
        if not comma or not name:
            raise InvalidArgumentError(
                f"No cache specified. --cache-config option format is <cache name>,<setting>=<value>. Got {arg}"
            )
        key, eq, value = setting.partition("=")
        if not eq or not key:
            raise InvalidArgumentError(f"--cache-config option format is '<cache name>,<setting>=<value>'. Got {arg}")
        out.setdefault(name.strip(), {})[key.strip()] = value.strip()
    return out


def normalize_cache_config(raw: Mapping[str, Mapping[str, Any]] | None) -> tuple[str, dict[str, Any]] | None:
    """Check ``raw`` and return ``(implementation, typed settings)``, or None when no cache is configured."""
    if raw is None or len(raw) == 0:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidArgumentError(f"cache_config must be a mapping like {{'local': {{'size': 1048576}}}}, got {type(raw).__name__}")
    if len(raw) > 1:
        raise InvalidArgumentError(
            "found multiple cache configurations, but only a single cache is currently supported"
        )
    (name, settings), = raw.items()
    if not isinstance(settings, Mapping):
        raise InvalidArgumentError(f"cache config '{name}' must map setting names to values, got {type(settings).__name__}")
    if name == "local":
        return name, _local(settings)
    if name == "redis":
        return name, _redis(settings)
    raise InvalidArgumentError(f"unknown cache implementation '{name}' in the cache config: tritonlite has 'local' and 'redis'")


def _unknown(name: str, settings: Mapping[str, Any], known: tuple[str, ...]) -> None:
    for key in settings:
        if key not in known:
            raise InvalidArgumentError(
                f"cache config '{name}' has unknown setting '{key}'; known settings: {', '.join(known)}"
            )


def _int(name: str, key: str, value: Any, minimum: int) -> int:
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        number = int(str(value).strip()) if not isinstance(value, (int, float)) else int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or number < minimum:
        what = "a positive integer" if minimum > 0 else "a non-negative integer"
        raise InvalidArgumentError(f"cache config '{name}' setting '{key}' must be {what}, got '{value}'")
    return number


def _local(settings: Mapping[str, Any]) -> dict[str, Any]:
    _unknown("local", settings, LOCAL_SETTINGS)
    if "size" not in settings:
        raise InvalidArgumentError("Failed to initialize LocalCache: config didn't contain a valid 'size' field.")
    return {"size": _int("local", "size", settings["size"], 1)}


def _redis(settings: Mapping[str, Any]) -> dict[str, Any]:
    for key in settings:
        if key in _REDIS_TLS:
            raise InvalidArgumentError(f"cache config 'redis' setting '{key}': TLS to Redis is not supported by tritonlite")
    _unknown("redis", settings, REDIS_SETTINGS)
    if "host" not in settings or "port" not in settings:
        raise InvalidArgumentError(
            "Failed to initialize RedisCache, didn't specify address. Must at a minimum specify 'host' and 'port' "
            "in the configuration - e.g. --cache-config redis,host=redis --cache-config redis,port=6379"
        )
    host = str(settings["host"]).strip()
    if not host:
        raise InvalidArgumentError("cache config 'redis' setting 'host' must not be empty")
    out: dict[str, Any] = {"host": host, "port": _int("redis", "port", settings["port"], 1)}
    if out["port"] > 65535:
        raise InvalidArgumentError(f"cache config 'redis' setting 'port' must be in [1, 65535], got '{settings['port']}'")
    user = settings.get("user", os.environ.get("TRITONCACHE_REDIS_USERNAME"))
    password = settings.get("password", os.environ.get("TRITONCACHE_REDIS_PASSWORD"))
    if user:
        out["user"] = str(user)
    if password:
        out["password"] = str(password)
    if "db" in settings:
        out["db"] = _int("redis", "db", settings["db"], 0)
    if "pool_size" in settings:
        out["pool_size"] = _int("redis", "pool_size", settings["pool_size"], 1)
    for key in ("connect_timeout", "socket_timeout", "wait_timeout"):
        if key in settings:
            ms = _int("redis", key, settings[key], 0)
            out[key] = ms / 1000.0 if ms else None  # 0 = wait forever
    return out


__all__ = ["normalize_cache_config", "parse_cli_settings", "LOCAL_SETTINGS", "REDIS_SETTINGS"]
