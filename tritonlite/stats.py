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
    """Counters for one model version; thread-safe, cheap to update."""

    def __init__(self, name: str, version: int) -> None:
        self.name = name
        self.version = version
        self._lock = threading.Lock()
        self.inference_count = 0
        self.execution_count = 0
        self.last_inference_ms = 0
        self.durations: dict[str, Duration] = {k: Duration() for k in _DURATIONS}
        self.batches: dict[int, BatchStat] = {}
        self.responses: dict[int, dict[str, Duration]] = {}
        #: observers called with (kind, payload) — metrics hook in here
        self.listeners: list[Any] = []

    def record_success(self, queue_start: int, compute_start: int, input_end: int, infer_end: int, output_end: int, end: int) -> None:
        """One request finished well: success, queue and the three compute phases."""
        with self._lock:
            d = self.durations
            d["success"].add(end - queue_start)
            d["queue"].add(compute_start - queue_start)
            d["compute_input"].add(input_end - compute_start)
            d["compute_infer"].add(infer_end - input_end)
            d["compute_output"].add(output_end - infer_end)
            self.last_inference_ms = time.time_ns() // 1_000_000
        for cb in self.listeners:
            cb("success", (queue_start, compute_start, input_end, infer_end, output_end, end))

    def record_failure(self, queue_start: int, end: int, reason: str = "OTHER") -> None:
        """One request failed (validation, backend, cancel or queue rejection)."""
        with self._lock:
            self.durations["fail"].add(end - queue_start if queue_start else 0)
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


__all__ = ["ModelStats", "Duration"]
