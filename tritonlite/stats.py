"""Per model-version statistics in the shape of Triton's statistics extension (SPEC appendix A.3).

Every number comes from the five request timestamps (:class:`tritonlite.request.RequestTimes`),
so statistics and Prometheus metrics can never disagree.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

_DURATIONS = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output", "cache_hit", "cache_miss")
#: the ``reason`` label values of ``nv_inference_request_failure`` (core ``FailureReason``)
FAILURE_REASONS = ("REJECTED", "CANCELED", "BACKEND", "OTHER")


@dataclass
class Duration:
    count: int = 0
    ns: int = 0

    def add(self, ns: int, count: int = 1) -> None:
        self.count += count
        self.ns += max(0, ns)

    def as_dict(self) -> dict[str, int]:
        return {"count": self.count, "ns": self.ns}


@dataclass
class BatchStat:
    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)


class ModelStats:
    """Counters for one model version; thread-safe, cheap to update.

    Besides the statistics extension it keeps what only Prometheus shows: failures per reason and
    the pending-request gauge (``count_pending``: off for ensembles, which start a request at once,
    and when the engine has no metrics).
    """

    def __init__(self, name: str, version: int, count_pending: bool = False) -> None:
        self.name = name
        self.version = version
        self._lock = threading.Lock()
        self.inference_count = 0
        self.execution_count = 0
        self.last_inference_ms = 0
        self.durations: dict[str, Duration] = {k: Duration() for k in _DURATIONS}
        self._success_durations = tuple(self.durations[k] for k in ("success", "queue", "compute_input", "compute_infer", "compute_output"))
        self.batches: dict[int, BatchStat] = {}
        self.responses: dict[int, dict[str, Duration]] = {}
        self.failures: dict[str, int] = dict.fromkeys(FAILURE_REASONS, 0)
        self.count_pending = count_pending
        #: requests queued and not yet executing (``nv_inference_pending_request_count``)
        self.pending = 0
        #: observers called with (kind, payload) — metrics hook in here. Replace the list to change it
        #: (``stats.listeners = [*stats.listeners, cb]``) so a notification in flight is not disturbed.
        self.listeners: list[Any] = []

    def record_queued(self, count: int = 1) -> None:
        """``count`` validated requests entered their scheduler's queue (``ModelVersion.enqueue``)."""
        if self.count_pending:
            with self._lock:
                self.pending += count

    def record_started(self, count: int) -> None:
        """``count`` queued requests started executing (``BatchRunner.run``)."""
        if self.count_pending:
            with self._lock:
                self.pending -= count

    def record_first_response(self, ns: int) -> None:
        """Time from queue entry to the first response of a decoupled request (for its histogram)."""
        for cb in self.listeners:
            cb("first_response", ns)

    def record_success(self, queue_start: int, compute_start: int, input_end: int, infer_end: int, output_end: int, end: int) -> None:
        """One request finished well: success, queue and the three compute phases."""
        success, queue, c_input, c_infer, c_output = self._success_durations
        with self._lock:
            success.count += 1
            success.ns += max(0, end - queue_start)
            queue.count += 1
            queue.ns += max(0, compute_start - queue_start)
            c_input.count += 1
            c_input.ns += max(0, input_end - compute_start)
            c_infer.count += 1
            c_infer.ns += max(0, infer_end - input_end)
            c_output.count += 1
            c_output.ns += max(0, output_end - infer_end)
            self.last_inference_ms = time.time_ns() // 1_000_000
        for cb in self.listeners:
            cb("success", (queue_start, compute_start, input_end, infer_end, output_end, end))

    def record_cache_hit(self, queue_start: int, lookup_start: int, hit_ns: int, end: int) -> None:
        """A response came from the cache (core ``UpdateSuccessCacheHit``): success and queue (up to the
        lookup) grow, ``cache_hit`` gets the lookup-and-copy time; compute, inference and execution
        counts do not move, nor does ``last_inference`` (set only by executions in Triton)."""
        with self._lock:
            d = self.durations
            d["success"].add(end - queue_start)
            d["queue"].add(lookup_start - queue_start)
            d["cache_hit"].add(hit_ns)
        for cb in self.listeners:
            cb("cache_hit", (lookup_start - queue_start, hit_ns, end))

    def record_cache_miss(self, ns: int) -> None:
        """A computed response was stored (core ``UpdateSuccessCacheMiss``): ``ns`` is lookup + insert.

        The request's own success duration already spans both, since it ends after the insert."""
        with self._lock:
            self.durations["cache_miss"].add(ns)
        for cb in self.listeners:
            cb("cache_miss", ns)

    def cache_snapshot(self) -> tuple[int, int, int, int]:
        """``(hit count, hit ns, miss count, miss ns)`` for the ``nv_cache_*_per_model`` families."""
        with self._lock:
            h, m = self.durations["cache_hit"], self.durations["cache_miss"]
            return h.count, h.ns, m.count, m.ns

    def record_failure(self, queue_start: int, end: int, reason: str = "OTHER", compute_start: int | None = None) -> None:
        """One request failed (validation, backend, cancel or queue rejection).

        ``compute_start == 0`` for a queued request (``queue_start != 0``) says it failed before it
        started executing (rejected, cancelled or timed out in the queue): it leaves the pending count.
        """
        with self._lock:
            self.durations["fail"].add(end - queue_start if queue_start else 0)
            self.failures[reason if reason in self.failures else "OTHER"] += 1
            if compute_start == 0 and queue_start and self.count_pending:
                self.pending -= 1
            self.last_inference_ms = time.time_ns() // 1_000_000
        for cb in self.listeners:
            cb("failure", reason)

    def record_execution(self, batch_size: int, compute_start: int, input_end: int, infer_end: int, output_end: int) -> None:
        """One backend execution of ``batch_size`` inferences."""
        with self._lock:
            self.execution_count += 1
            self.inference_count += batch_size
            b = self.batches.get(batch_size)
            if b is None:
                b = self.batches[batch_size] = BatchStat()
            b.compute_input.add(input_end - compute_start)
            b.compute_infer.add(infer_end - input_end)
            b.compute_output.add(output_end - infer_end)
        for cb in self.listeners:
            cb("execution", batch_size)

    def record_response(self, index: int, kind: str, ns: int) -> None:
        """Per-response statistics of decoupled models (``response_stats``)."""
        with self._lock:
            per = self.responses.setdefault(
                index, {k: Duration() for k in ("compute_infer", "compute_output", "success", "fail", "empty_response", "cancel")}
            )
            per[kind].add(ns)

    def metrics_snapshot(self) -> tuple[int, tuple[int, ...], int, int, int, tuple[int, ...]]:
        """What the Prometheus per-model families show, read under one lock.

        ``(success count, failures per FAILURE_REASONS, inference_count, execution_count, pending,
        cumulative ns of (success, queue, compute_input, compute_infer, compute_output))``.
        """
        with self._lock:
            d = self.durations
            return (
                d["success"].count,
                tuple(self.failures[r] for r in FAILURE_REASONS),
                self.inference_count,
                self.execution_count,
                self.pending,
                (d["success"].ns, d["queue"].ns, d["compute_input"].ns, d["compute_infer"].ns, d["compute_output"].ns),
            )

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "name": self.name,
                "version": str(self.version),
                "last_inference": self.last_inference_ms,
                "inference_count": self.inference_count,
                "execution_count": self.execution_count,
                "inference_stats": {k: v.as_dict() for k, v in self.durations.items()},
                "response_stats": {
                    str(i): {k: v.as_dict() for k, v in per.items()} for i, per in sorted(self.responses.items())
                },
                "batch_stats": [
                    {
                        "batch_size": size,
                        "compute_input": b.compute_input.as_dict(),
                        "compute_infer": b.compute_infer.as_dict(),
                        "compute_output": b.compute_output.as_dict(),
                    }
                    for size, b in sorted(self.batches.items())
                ],
                "memory_usage": [],
            }


__all__ = ["FAILURE_REASONS", "ModelStats", "Duration"]
