"""Schedulers: small objects with ``enqueue(request)`` and ``stop()`` that feed a BatchRunner."""

from __future__ import annotations

from typing import Protocol, Sequence

from tritonlite.backends.base import BackendInstance
from tritonlite.request import InferenceRequest
from tritonlite.scheduling.default import DefaultScheduler
from tritonlite.scheduling.runner import BatchRunner


class Scheduler(Protocol):
    """``enqueue`` queues; ``run_inline`` (optional) may run a request in the caller's thread."""

    def enqueue(self, request: InferenceRequest) -> None: ...

    def stop(self) -> None: ...


def make_scheduler(config: object, runner: BatchRunner, instances: Sequence[tuple[str, BackendInstance]]) -> Scheduler:
    """Pick the scheduler the config asks for.

    Dynamic and sequence batching arrive with the schedulers issue; until then such models run on
    the default scheduler, one request per execution, which is correct but unbatched.
    """
    return DefaultScheduler(runner, instances)


__all__ = ["Scheduler", "BatchRunner", "DefaultScheduler", "make_scheduler"]
