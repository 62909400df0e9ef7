"""Schedulers: small objects with ``enqueue(request)`` and ``stop()`` that feed a BatchRunner.

Which one a model gets is configuration (the ``scheduling_choice`` oneof), decided in one place:
:func:`make_scheduler`.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

from tritonlite.backends.base import BackendInstance
from tritonlite.request import InferenceRequest
from tritonlite.scheduling.default import DefaultScheduler
from tritonlite.scheduling.runner import BatchRunner


class Scheduler(Protocol):
    """``enqueue`` queues; ``run_inline`` (optional) may run a request in the caller's thread."""

    def enqueue(self, request: InferenceRequest) -> None: ...

    def stop(self) -> None: ...


def make_scheduler(
    config: Any,
    runner: BatchRunner,
    instances: Sequence[tuple[str, BackendInstance]],
    engine: Any = None,
    model_dir: Any = None,
) -> Scheduler:
    """Pick the scheduler the config asks for: ensemble, sequence, dynamic, or the default one."""
    choice = config.WhichOneof("scheduling_choice")
    if config.platform == "ensemble" or choice == "ensemble_scheduling":
        from tritonlite.scheduling.ensemble import EnsembleScheduler

        return EnsembleScheduler(config, runner, engine)
    if choice == "sequence_batching":
        from tritonlite.scheduling.sequence import SequenceBatchScheduler

        return SequenceBatchScheduler(config, runner, instances, model_dir=model_dir)
    if choice == "dynamic_batching":
        from tritonlite.scheduling.dynamic import DynamicBatchScheduler

        return DynamicBatchScheduler(config, runner, instances)
    return DefaultScheduler(runner, instances)


__all__ = ["Scheduler", "BatchRunner", "DefaultScheduler", "make_scheduler"]
