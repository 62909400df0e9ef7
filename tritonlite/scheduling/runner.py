"""The one place a backend instance is called: run a batch, time it, deliver every outcome.

All schedulers (default, dynamic, sequence) hand batches to :meth:`BatchRunner.run`, so
timestamps, statistics and error handling are the same whatever formed the batch. With the engine's
rate limiter on, ``run`` also waits for the instance's resources; the scheduler calls :meth:`idle`
when the instance has no next batch at hand, which gives them back.
"""

from __future__ import annotations

import logging
import time
from typing import Sequence

from tritonlite.backends.base import BackendInstance
from tritonlite.errors import CancelledError, InternalError, InvalidArgumentError, TritonLiteError
from tritonlite.request import REQUEST_RELEASE_ALL, REQUEST_RELEASE_RESCHEDULE, InferenceRequest
from tritonlite.scheduling.rate_limiter import InstanceGate
from tritonlite.stats import ModelStats

_log = logging.getLogger("tritonlite.scheduling")


class BatchRunner:
    """Executes batches for one model version and reports them to its statistics."""

    def __init__(self, model_name: str, version: int, stats: ModelStats, decoupled: bool = False) -> None:
        self.model_name = model_name
        self.version = str(version)
        self.stats = stats
        self.decoupled = decoupled
        #: id(instance) -> its rate limiter gate; None when the engine's rate limiter is off
        self.gates: dict[int, InstanceGate] | None = None
        #: set by a scheduler that runs rescheduled requests again (the iterative sequence batcher)
        self.allow_reschedule = False

    def idle(self, instance: BackendInstance) -> None:
        """The instance has no next batch at hand: release its rate limiter resources (no-op when off)."""
        if self.gates is not None:
            self.gates[id(instance)].release()

    def run(self, instance: BackendInstance, requests: Sequence[InferenceRequest]) -> list[InferenceRequest]:
        """Execute one batch; returns the requests the backend released with RESCHEDULE (see below).

        Only a runner with ``allow_reschedule`` returns any: elsewhere such a request fails with
        Triton's error, since no scheduler would ever run it again.
        """
        live: list[InferenceRequest] = []
        for r in requests:
            if r.is_cancelled():
                r.sink.fail(CancelledError("Request was cancelled"), "CANCELED")  # type: ignore[union-attr]
            else:
                live.append(r)
        if not live:
            return []
        if self.gates is not None:
            self.gates[id(instance)].acquire()
        start = time.monotonic_ns()
        queued = 0  # requests that came through a queue (not a sequence batcher's null requests)
        for r in live:
            t = r.times
            if t.queue_start:
                queued += 1
            t.compute_start = start
            t.compute_input_end = t.compute_infer_end = 0
        self.stats.record_started(queued)
        try:
            results = instance.execute(live)
        except TritonLiteError as exc:
            self._fail_all(live, exc)
            return []
        except Exception as exc:  # a backend bug must not kill the instance thread
            _log.exception("backend of model '%s' raised", self.model_name)
            self._fail_all(live, InternalError(f"{type(exc).__name__}: {exc}"))
            return []
        rescheduled = self._rescheduled(live)
        end = time.monotonic_ns()
        first = live[0].times
        input_end = first.compute_input_end or start
        infer_end = first.compute_infer_end or end
        batch = sum(r.batch_size or 1 for r in live)
        self.stats.record_execution(batch, start, input_end, infer_end, end)
        if results is None:  # the backend delivered through each request's sink (decoupled)
            return rescheduled
        if len(results) != len(live):
            self._fail_all(live, InternalError(
                f"backend of model '{self.model_name}' returned {len(results)} responses for {len(live)} requests"))
            return []
        for r, res in zip(live, results):
            if res is None:  # a rescheduled request answers in a later execution
                continue
            t = r.times
            t.compute_input_end = t.compute_input_end or input_end
            t.compute_infer_end = t.compute_infer_end or infer_end
            t.compute_output_end = end
            res.model_name = self.model_name
            res.model_version = self.version
            res.id = r.id
            r.sink.send(res, final=True)  # type: ignore[union-attr]
        return rescheduled

    def _rescheduled(self, requests: Sequence[InferenceRequest]) -> list[InferenceRequest]:
        """Requests released with RESCHEDULE (their flags are reset for the next execution)."""
        picked: list[InferenceRequest] = []
        for r in requests:
            if not r.release_flags & REQUEST_RELEASE_RESCHEDULE:
                continue
            r.release_flags = REQUEST_RELEASE_ALL
            if self.allow_reschedule:
                picked.append(r)
            else:
                r.sink.fail(InvalidArgumentError(  # type: ignore[union-attr]
                    "Request is released with TRITONSERVER_REQUEST_RELEASE_RESCHEDULE, while the model is not "
                    "configured to handle such a flag."), "BACKEND")
        return picked

    def _fail_all(self, requests: Sequence[InferenceRequest], error: TritonLiteError) -> None:
        for r in requests:
            r.release_flags = REQUEST_RELEASE_ALL
            r.sink.fail(error, "BACKEND")  # type: ignore[union-attr]


__all__ = ["BatchRunner"]
