"""The request path's two touch points with the response cache: look up before scheduling, insert on success.

One :class:`ModelCache` per model version whose config has ``response_cache { enable: true }`` while
the engine has a cache. Statistics follow Triton core (``UpdateSuccessCacheHit`` /
``UpdateSuccessCacheMiss``): a hit is a success whose queue time ends at the lookup, with its own
``cache_hit`` duration, and no compute, inference or execution counts; a miss adds the lookup plus
insert time to ``cache_miss`` once the computed response is stored (not when the key was already
there, nor for failed requests, which are never cached).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from tritonlite.cache.entry import CacheEntry
from tritonlite.cache.key import request_key
from tritonlite.cache.local import EXISTS, TOO_LARGE
from tritonlite.errors import TritonLiteError
from tritonlite.request import InferenceRequest, InferResult, ResponseSink

_log = logging.getLogger("tritonlite.cache")


class ModelCache:
    """Binds the engine's cache to one model version and its statistics."""

    __slots__ = ("cache", "stats", "model_name", "version", "_version_text")

    def __init__(self, cache: Any, stats: Any, model_name: str, version: int) -> None:
        self.cache = cache
        self.stats = stats
        self.model_name = model_name
        self.version = version
        self._version_text = str(version)

    def serve(self, request: InferenceRequest, scheduler: Any) -> bool:
        """Answer ``request`` from the cache (True) or arrange for its response to be stored (False).

        Called after validation and ``mark_queued``. ``scheduler.deliver_cached`` (optional) lets a
        scheduler that preserves response order deliver the hit in its turn.
        """
        key = request_key(self.model_name, self.version, request.backend_inputs, request.output_names)
        lookup_start = time.monotonic_ns()
        entry = self.cache.lookup(key)
        lookup_end = time.monotonic_ns()
        t = request.times
        if entry is not None:
            result = InferResult(outputs=entry.outputs_copy(), model_name=self.model_name,
                                 model_version=self._version_text, id=request.id)
            end = time.monotonic_ns()
            t.cache_hit = True
            self.stats.record_cache_hit(t.queue_start, lookup_start, end - lookup_start, end)
            deliver = getattr(scheduler, "deliver_cached", None)
            if deliver is not None:
                deliver(request, result)
            else:
                request.sink.send(result, True)  # type: ignore[union-attr]
            return True
        request.sink = ResponseSink(_inserting(request.sink, self, key, lookup_end - lookup_start))  # type: ignore[arg-type]
        return False

    def store(self, key: bytes, result: InferResult, lookup_ns: int) -> None:
        start = time.monotonic_ns()
        try:
            outcome = self.cache.insert(key, CacheEntry.from_outputs(result.outputs))
        except Exception:  # a cache fault must never fail the request it would have stored
            _log.exception("inserting into the response cache failed for model '%s'", self.model_name)
            outcome = "error"
        if outcome == EXISTS:
            return  # another request stored it first: Triton counts no miss
        if outcome == TOO_LARGE:
            _log.warning("response of model '%s' is larger than the whole cache; not cached", self.model_name)
        self.stats.record_cache_miss(lookup_ns + time.monotonic_ns() - start)


def _inserting(original: ResponseSink, owner: ModelCache, key: bytes, lookup_ns: int) -> Any:
    """The sink callback of a cache miss: store a successful final response, then pass everything on."""

    def on_response(result: InferResult | None, error: TritonLiteError | None, final: bool, reason: str) -> None:
        if error is None:
            if final and result is not None:
                owner.store(key, result, lookup_ns)
            original.send(result, final)
        elif reason == "BACKEND":
            original.send(InferResult(error=error), final)
        else:
            original.fail(error, reason)

    return on_response


__all__ = ["ModelCache"]
