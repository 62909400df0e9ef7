"""Triton's ``local`` cache: responses in this process's memory, bounded by bytes, least recently used out.

Like Triton's local cache (``triton-inference-server/local_cache``) it is shared by every model of
its engine; an entry larger than the whole cache is not stored; inserting a key already present is
reported as such (Triton then records no cache miss). It keeps the counters Triton's local cache
publishes as ``nv_cache_*`` gauges.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from tritonlite.cache.entry import CacheEntry

INSERTED, EXISTS, TOO_LARGE = "inserted", "exists", "too_large"


class LocalCache:
    """An LRU dict of :class:`CacheEntry` under one lock; ``size`` is the byte budget."""

    name = "local"

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self._lock = threading.Lock()
        self._entries: OrderedDict[bytes, CacheEntry] = OrderedDict()
        self.used = 0
        self.lookups = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.lookup_ns = 0
        self.insert_ns = 0

    def lookup(self, key: bytes) -> CacheEntry | None:
        start = time.monotonic_ns()
        with self._lock:
            entry = self._entries.get(key)
            self.lookups += 1
            if entry is None:
                self.misses += 1
            else:
                self.hits += 1
                self._entries.move_to_end(key)
            self.lookup_ns += time.monotonic_ns() - start
        return entry

    def insert(self, key: bytes, entry: CacheEntry) -> str:
        """Store ``entry``, evicting least recently used entries until it fits."""
        start = time.monotonic_ns()
        with self._lock:
            try:
                if key in self._entries:
                    return EXISTS
                if entry.nbytes > self.size:
                    return TOO_LARGE
                entries = self._entries
                while self.used + entry.nbytes > self.size:
                    _, old = entries.popitem(last=False)
                    self.used -= old.nbytes
                    self.evictions += 1
                entries[key] = entry
                self.used += entry.nbytes
                return INSERTED
            finally:
                self.insert_ns += time.monotonic_ns() - start

    def __len__(self) -> int:
        return len(self._entries)

    def gauges(self) -> dict[str, Any]:
        """The values of Triton's local-cache gauges (``nv_cache_util`` … ``nv_cache_insertion_duration``)."""
        with self._lock:
            return {
                "nv_cache_util": self.used / self.size if self.size else 0.0,
                "nv_cache_num_entries": len(self._entries),
                "nv_cache_num_lookups": self.lookups,
                "nv_cache_num_hits": self.hits,
                "nv_cache_num_misses": self.misses,
                "nv_cache_num_evictions": self.evictions,
                "nv_cache_lookup_duration": self.lookup_ns // 1000,
                "nv_cache_insertion_duration": self.insert_ns // 1000,
            }

    def close(self) -> None:
        with self._lock:
            self._entries.clear()
            self.used = 0


__all__ = ["LocalCache", "INSERTED", "EXISTS", "TOO_LARGE"]
