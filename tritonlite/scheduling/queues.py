"""The dynamic batcher's queue: one FIFO per priority level, each under a ``ModelQueuePolicy``.

Follows core ``PriorityQueue``/``PolicyQueue`` (``scheduler_utils.cc``):

* levels are served in ascending order (1 is highest); with ``priority_levels == 0`` there is one
  queue (level 0) under ``default_queue_policy``;
* ``max_queue_size`` bounds each level (its live plus delayed requests) and a full level refuses
  the request with UNAVAILABLE "Exceeds maximum queue size";
* a request's deadline is ``default_timeout_microseconds``; when ``allow_timeout_override`` is set,
  a non-zero request ``timeout_us`` applies only if it is *shorter*. So with no default timeout a
  request timeout never applies (core compares ``override < default`` on unsigned values);
* timeouts and cancellation are applied lazily, when the batcher's scan reaches a request: REJECT
  drops it ("Request timeout expired"), DELAY moves it behind the level's unexpired requests
  (a delayed request has no deadline any more).
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass
from typing import Any, Hashable, Iterator

from tritonlite.errors import UnavailableError
from tritonlite.request import InferenceRequest

#: ModelQueuePolicy.TimeoutAction values
REJECT = 0
DELAY = 1

#: why a request left the queue without running (see :meth:`PriorityQueues.candidates`)
TIMED_OUT = "timeout"
CANCELLED = "cancelled"


@dataclass(eq=False, slots=True)
class QueueEntry:
    """A queued request with what the batcher needs without looking inside it again."""

    request: InferenceRequest
    enqueued_ns: int
    #: absolute monotonic deadline in ns; 0 = none
    deadline_ns: int
    #: batch-compatibility signature (None when the model has nothing to compare)
    key: Hashable
    #: what the request counts for in a batch: max(1, batch size)
    size: int


class PolicyQueue:
    """One priority level: live requests (FIFO, with deadlines) followed by delayed ones."""

    __slots__ = ("action", "default_timeout_us", "allow_override", "max_size", "live", "delayed")

    def __init__(self, policy: Any) -> None:
        self.action = int(policy.timeout_action)
        self.default_timeout_us = int(policy.default_timeout_microseconds)
        self.allow_override = bool(policy.allow_timeout_override)
        self.max_size = int(policy.max_queue_size)
        self.live: deque[QueueEntry] = deque()
        self.delayed: deque[QueueEntry] = deque()

    def __len__(self) -> int:
        return len(self.live) + len(self.delayed)

    def timeout_us(self, request: InferenceRequest) -> int:
        """The timeout that applies to ``request``: the default, or a shorter allowed override."""
        timeout = self.default_timeout_us
        override = int(request.timeout_us)
        if self.allow_override and 0 < override < timeout:
            timeout = override
        return timeout


class PriorityQueues:
    """All levels of one model; not thread-safe (the scheduler holds its lock around every call)."""

    def __init__(self, batching: Any) -> None:
        self.levels = int(batching.priority_levels)
        self.default_level = int(batching.default_priority_level) if self.levels else 0
        self._default_policy = batching.default_queue_policy
        self._policies = dict(batching.priority_queue_policy)
        self._queues: dict[int, PolicyQueue] = {}
        self._order: list[int] = []
        self.size = 0

    def level_of(self, request: InferenceRequest) -> int:
        """Core ``InferenceRequest::SetPriority``: 0 or a level above ``priority_levels`` means the default."""
        if self.levels == 0:
            return 0
        p = int(request.priority)
        return p if 1 <= p <= self.levels else self.default_level

    def _queue(self, level: int) -> PolicyQueue:
        q = self._queues.get(level)
        if q is None:
            q = self._queues[level] = PolicyQueue(self._policies.get(level, self._default_policy))
            bisect.insort(self._order, level)
        return q

    def push(self, request: InferenceRequest, key: Hashable, now_ns: int) -> None:
        """Queue ``request``; raises UnavailableError when its level is full."""
        q = self._queue(self.level_of(request))
        if q.max_size and len(q) >= q.max_size:
            raise UnavailableError("Exceeds maximum queue size")
        timeout = q.timeout_us(request)
        deadline = now_ns + timeout * 1000 if timeout else 0
        q.live.append(QueueEntry(request, now_ns, deadline, key, max(1, request.batch_size)))
        self.size += 1

    def candidates(self, now_ns: int, dropped: list[tuple[QueueEntry, str]]) -> Iterator[QueueEntry]:
        """Yield queued entries in service order, applying cancellation and timeouts on the way.

        Entries that cannot run are removed and appended to ``dropped`` with TIMED_OUT or CANCELLED;
        DELAY-expired ones move to their level's delayed queue (and are yielded there). What has been
        yielded is therefore always the head of the queue, which :meth:`pop` then removes.
        """
        for level in self._order:
            q = self._queues[level]
            live, i = q.live, 0
            while i < len(live):
                e = live[i]
                if e.request.is_cancelled():
                    del live[i]
                    self.size -= 1
                    dropped.append((e, CANCELLED))
                elif e.deadline_ns and now_ns > e.deadline_ns:
                    del live[i]
                    if q.action == DELAY:
                        e.deadline_ns = 0
                        q.delayed.append(e)
                    else:
                        self.size -= 1
                        dropped.append((e, TIMED_OUT))
                else:
                    yield e
                    i += 1
            delayed, i = q.delayed, 0
            while i < len(delayed):
                e = delayed[i]
                if e.request.is_cancelled():
                    del delayed[i]
                    self.size -= 1
                    dropped.append((e, CANCELLED))
                else:
                    yield e
                    i += 1

    def pop(self, count: int) -> list[QueueEntry]:
        """Remove and return the first ``count`` entries in service order."""
        out: list[QueueEntry] = []
        for level in self._order:
            q = self._queues[level]
            for part in (q.live, q.delayed):
                while part and len(out) < count:
                    out.append(part.popleft())
            if len(out) >= count:
                break
        self.size -= len(out)
        return out


__all__ = ["CANCELLED", "DELAY", "PolicyQueue", "PriorityQueues", "QueueEntry", "REJECT", "TIMED_OUT"]
