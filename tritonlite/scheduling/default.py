"""Triton's default scheduler: each request runs alone on the next free instance.

One named thread per (non-passive) instance pulls from one shared queue. Stopping enqueues one
sentinel per thread behind the work already queued, so in-flight requests finish first.
"""

from __future__ import annotations

import queue
import threading
from typing import Sequence

from tritonlite.backends.base import BackendInstance
from tritonlite.errors import UnavailableError
from tritonlite.request import InferenceRequest
from tritonlite.scheduling.runner import BatchRunner

_STOP = object()


class DefaultScheduler:
    """N instances, N threads, one FIFO queue."""

    def __init__(self, runner: BatchRunner, instances: Sequence[tuple[str, BackendInstance]]) -> None:
        if not instances:
            raise UnavailableError(f"model '{runner.model_name}' has no non-passive instance to schedule on")
        self._runner = runner
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._work, args=(inst,), name=f"tritonlite.{runner.model_name}.{name}", daemon=True)
            for name, inst in instances
        ]
        for t in self._threads:
            t.start()

    def enqueue(self, request: InferenceRequest) -> None:
        if self._stopped:
            request.sink.fail(UnavailableError(f"model '{self._runner.model_name}' is unloading"))  # type: ignore[union-attr]
            return
        self._queue.put(request)

    def _work(self, instance: BackendInstance) -> None:
        get, run = self._queue.get, self._runner.run
        while True:
            item = get()
            if item is _STOP:
                return
            run(instance, (item,))

    def stop(self) -> None:
        """Finish queued work, then join every instance thread."""
        if self._stopped:
            return
        self._stopped = True
        for _ in self._threads:
            self._queue.put(_STOP)
        for t in self._threads:
            t.join()


__all__ = ["DefaultScheduler"]
