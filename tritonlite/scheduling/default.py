"""Triton's default scheduler: each request runs alone on the next free instance.

One named thread per (non-passive) instance pulls from one shared queue. Stopping enqueues one
sentinel per thread behind the work already queued, so in-flight requests finish first.

A blocking caller (``engine.infer``) may instead run its request on an idle instance in its own
thread (:meth:`DefaultScheduler.run_inline`): a thread hand-off costs ~50 µs in CPython, more than
many models take to run. Each instance has a lock, so it still executes one batch at a time.
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
        self._slots = [(threading.Lock(), inst) for _, inst in instances]
        self._threads = [
            threading.Thread(target=self._work, args=(slot,), name=f"tritonlite.{runner.model_name}.{name}", daemon=True)
            for (name, _), slot in zip(instances, self._slots)
        ]
        for t in self._threads:
            t.start()

    def enqueue(self, request: InferenceRequest) -> None:
        if self._stopped:
            request.sink.fail(UnavailableError(f"model '{self._runner.model_name}' is unloading"))  # type: ignore[union-attr]
            return
        self._queue.put(request)

    def run_inline(self, request: InferenceRequest) -> bool:
        """Run ``request`` now on an idle instance in the caller's thread; False if none is idle."""
        if self._stopped or not self._queue.empty():
            return False
        for lock, instance in self._slots:
            if lock.acquire(False):
                try:
                    self._runner.run(instance, (request,))
                    self._runner.idle(instance)
                finally:
                    lock.release()
                return True
        return False

    def _work(self, slot: tuple[threading.Lock, BackendInstance]) -> None:
        if self._runner.gates is not None:
            return self._work_rate_limited(slot)
        get, run = self._queue.get, self._runner.run
        lock, instance = slot
        while True:
            item = get()
            if item is _STOP:
                return
            with lock:
                run(instance, (item,))

    def _work_rate_limited(self, slot: tuple[threading.Lock, BackendInstance]) -> None:
        """The same loop, but the instance keeps its rate limiter resources only while it has the next request."""
        get, get_nowait, run, idle = self._queue.get, self._queue.get_nowait, self._runner.run, self._runner.idle
        lock, instance = slot
        item = get()
        while item is not _STOP:
            with lock:
                run(instance, (item,))
                try:
                    item = get_nowait()
                except queue.Empty:
                    item = None
                if item is None or item is _STOP:
                    idle(instance)
            if item is None:
                item = get()

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
