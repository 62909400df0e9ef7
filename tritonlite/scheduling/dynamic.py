"""Triton's dynamic batcher: one queue per model, one batcher thread, one worker thread per instance.

A batch is cut only when an instance is idle (core waits for a free payload slot), so while every
instance is busy requests pile up and the next batch takes as many as fit. How a batch is cut
follows core ``DynamicBatchScheduler::GetDynamicBatch`` (SPEC §4.8), see :meth:`BatchForm.choose`.
Queues, priorities and queue policies live in :mod:`tritonlite.scheduling.queues`.

Who cuts: an instance thread that has just finished a batch cuts its next one itself when one is
ready to go (under load this skips two thread hand-offs per batch, worth ~20% throughput in
CPython); otherwise it reports idle and the batcher thread takes over: it wakes on arrivals, sleeps
out ``max_queue_delay_microseconds`` and drains the queue on stop. Both cut under the one lock.

Unlike core, a batch is never grown after it is handed to an instance (core's payload can still
take requests until the instance starts it); a batch is only cut for an instance that is already
free, which makes that case moot.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from typing import Any, Callable, Hashable, Sequence

from tritonlite.backends.base import BackendInstance
from tritonlite.errors import CancelledError, TritonLiteError, UnavailableError
from tritonlite.request import InferenceRequest, InferResult, ResponseSink
from tritonlite.scheduling.queues import CANCELLED, PriorityQueues, QueueEntry
from tritonlite.scheduling.runner import BatchRunner

_log = logging.getLogger("tritonlite.scheduling")
_STOP = object()
_UNSET = object()


def batch_key_function(config: Any) -> Callable[[InferenceRequest], Hashable] | None:
    """What must be equal for two requests to share a batch, or None when anything may be mixed.

    Core ``SetConfiguredScheduler``: shape tensors must match in shape and content; inputs with a
    variable (-1) config dim that are not ``allow_ragged_batch`` must match in shape (batch dim
    aside). With any ``optional`` input, the set of given inputs must match too
    (``RequiredEqualInputs``).
    """
    enforce: dict[str, bool] = {}
    for inp in config.input:
        if inp.is_shape_tensor:
            enforce[inp.name] = True
        elif not inp.allow_ragged_batch and any(int(d) == -1 for d in inp.dims):
            enforce[inp.name] = False
    optional = any(inp.optional for inp in config.input)
    if not enforce and not optional:
        return None
    batching = int(config.max_batch_size) > 0

    def key(request: InferenceRequest) -> Hashable:
        inputs = request.backend_inputs
        parts: list[Hashable] = []
        for name, content in enforce.items():
            arr = inputs.get(name)
            if arr is None:
                parts.append((name, None))
            elif content:
                parts.append((name, arr.shape, arr.tobytes()))
            else:
                parts.append((name, arr.shape[1:] if batching else arr.shape))
        return tuple(parts), (frozenset(inputs) if optional else None)

    return key


class BatchForm:
    """The batch-cutting rule of one model (max size, preferred sizes, queue delay)."""

    def __init__(self, config: Any) -> None:
        db = config.dynamic_batching
        # core: max_batch_size_ = max(1, max_batch_size) -- a non-batching model runs one request at a time
        self.max_batch = max(1, int(config.max_batch_size))
        self.preferred = frozenset(int(s) for s in db.preferred_batch_size)
        self.max_preferred = max(self.preferred, default=0)
        self.delay_ns = int(db.max_queue_delay_microseconds) * 1000
        self.check_keys = batch_key_function(config) is not None

    def choose(
        self, queues: PriorityQueues, now_ns: int, flush: bool, dropped: list[tuple[QueueEntry, str]]
    ) -> tuple[int, int | None]:
        """Return ``(count, wait_ns)``: send the first ``count`` entries now, or wait ``wait_ns``.

        ``(0, None)``: nothing queued. ``flush`` (stopping) sends what is pending without waiting.
        """
        count = size = mark = 0
        send_now = False
        first_key: Any = _UNSET
        oldest = closest = 0
        for e in queues.candidates(now_ns, dropped):
            if count == 0:
                first_key = e.key
            else:
                # would pass the largest preferred size: remember the cut, keep scanning (the delay decides)
                if size + e.size > self.max_preferred and mark == 0:
                    mark = count
                if size + e.size > self.max_batch:
                    send_now = True
                    break
                if self.check_keys and e.key != first_key:
                    send_now = True
                    break
            count += 1
            size += e.size
            oldest = e.enqueued_ns if oldest == 0 else min(oldest, e.enqueued_ns)
            if e.deadline_ns:
                closest = e.deadline_ns if closest == 0 else min(closest, e.deadline_ns)
            if size in self.preferred:
                mark = count
        if count == 0:
            return 0, None
        waited = now_ns - oldest
        delay_exceeded = flush or (self.delay_ns != 0 and waited >= self.delay_ns)
        if mark and not delay_exceeded:
            return mark, 0
        if send_now or size >= self.max_preferred or delay_exceeded or self.delay_ns == 0:
            return count, 0
        wait = self.delay_ns - waited
        if closest:
            # wake when a pending request expires, so the batch is re-formed without it
            wait = min(wait, max(closest - now_ns, 1000))
        return 0, wait


class _Ordering:
    """``preserve_ordering``: responses are released in the order requests left the queue.

    Each request gets a slot when it is dequeued and its sink is replaced by one that records into
    the slot; slots are flushed to the original sinks from the front, as far as they are complete
    (core ``DelegateResponse``/``FinalizeResponses``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deliver = threading.Lock()
        self._slots: deque[list[Any]] = deque()  # [original sink, pending events, final seen]

    def delegate(self, request: InferenceRequest) -> None:
        slot: list[Any] = [request.sink, [], False]
        with self._lock:
            self._slots.append(slot)

        def record(result: InferResult | None, error: TritonLiteError | None, final: bool, reason: str) -> None:
            with self._lock:
                slot[1].append((result, error, final, reason))
                slot[2] = slot[2] or final
            self._flush()

        request.sink = ResponseSink(record)

    def _flush(self) -> None:
        with self._deliver:  # one flusher at a time keeps the delivery order
            ready: list[tuple[ResponseSink, tuple[Any, ...]]] = []
            with self._lock:
                while self._slots and self._slots[0][1]:
                    sink, events, final = self._slots[0]
                    ready.extend((sink, ev) for ev in events)
                    events.clear()
                    if not final:
                        break
                    self._slots.popleft()
            for sink, (result, error, final, reason) in ready:
                if error is None:
                    sink.send(result, final)
                elif reason == "BACKEND":
                    sink.send(InferResult(error=error), final)
                else:
                    sink.fail(error, reason)


class _Worker:
    """One instance and the thread that runs the batches handed to it."""

    def __init__(self, name: str, instance: BackendInstance, thread_name: str, owner: "DynamicBatchScheduler") -> None:
        self.name = name
        self.instance = instance
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=owner._work, args=(self,), name=thread_name, daemon=True)


class DynamicBatchScheduler:
    """Queues requests by priority and policy; the batcher thread cuts batches for idle instances."""

    def __init__(self, config: Any, runner: BatchRunner, instances: Sequence[tuple[str, BackendInstance]]) -> None:
        if not instances:
            raise UnavailableError(f"model '{runner.model_name}' has no non-passive instance to schedule on")
        self._runner = runner
        self._form = BatchForm(config)
        self._key = batch_key_function(config)
        self._queues = PriorityQueues(config.dynamic_batching)
        self._ordering = _Ordering() if config.dynamic_batching.preserve_ordering else None
        self._cond = threading.Condition(threading.Lock())
        self._stopping = False
        # a burst handed over by run_inline_many may skip the queue when queueing could not change how it
        # runs: no preferred sizes (but max_batch_size, which normalisation adds and which is how batches are cut
        # anyway), batch keys, ordering, priorities, queue limits or queue timeouts
        db = config.dynamic_batching
        policies = [db.default_queue_policy, *dict(db.priority_queue_policy).values()]
        self._direct = (not self._form.preferred - {self._form.max_batch} and self._key is None and not db.preserve_ordering
                        and not int(db.priority_levels)
                        and not any(int(p.max_queue_size) or int(p.default_timeout_microseconds) for p in policies))
        model = runner.model_name
        self._workers = [_Worker(n, inst, f"tritonlite.{model}.{n}", self) for n, inst in instances]
        self._idle: deque[_Worker] = deque(self._workers)
        self._batcher = threading.Thread(target=self._batch_loop, name=f"tritonlite.{model}.batcher", daemon=True)
        for w in self._workers:
            w.thread.start()
        self._batcher.start()

    # ---- request side ---------------------------------------------------------------------------------
    def enqueue(self, request: InferenceRequest) -> None:
        """Queue ``request``; a full queue fails it at once with UNAVAILABLE (reason REJECTED)."""
        key = self._key(request) if self._key is not None else None
        error: TritonLiteError | None = None
        reason = "REJECTED"
        with self._cond:
            if self._stopping:
                error, reason = UnavailableError(f"model '{self._runner.model_name}' is unloading"), "OTHER"
            else:
                try:
                    self._queues.push(request, key, time.monotonic_ns())
                except UnavailableError as exc:
                    error = exc
                else:
                    if self._idle:
                        self._cond.notify()
        if error is not None:
            request.sink.fail(error, reason)  # type: ignore[union-attr]

    def run_inline_many(self, requests: Sequence[InferenceRequest]) -> None:
        """Queue ``requests`` (validated, as :meth:`enqueue`) and, when an instance is idle, run the
        batches they form in the caller's thread as that instance.

        For doors whose event loop collects the requests of one pass (``engine._submit_unary_many``):
        a burst of requests becomes one batch with no thread hand-off at all. With a queue delay or
        the rate limiter the batcher thread decides as usual (waiting belongs on its thread, not the
        caller's); while every instance is busy the requests simply wait in the queue, and the
        instance that finishes first cuts them.
        """
        if self._form.delay_ns or self._runner.gates is not None:
            for r in requests:
                self.enqueue(r)
            return
        failed: list[tuple[InferenceRequest, TritonLiteError, str]] = []
        worker: _Worker | None = None
        now = time.monotonic_ns()
        key_of = self._key
        with self._cond:
            if self._direct and not self._queues.size and self._idle and not self._stopping:
                # nothing waits and nothing could reorder, limit or hold these: they are the next batches
                worker = self._idle.popleft()
        if worker is not None:
            self._run_direct(worker, requests)
            return
        with self._cond:
            if self._stopping:
                error = UnavailableError(f"model '{self._runner.model_name}' is unloading")
                failed = [(r, error, "OTHER") for r in requests]
            else:
                push = self._queues.push
                for r in requests:
                    try:
                        push(r, key_of(r) if key_of is not None else None, now)
                    except UnavailableError as exc:
                        failed.append((r, exc, "REJECTED"))
                if self._idle and self._queues.size:
                    worker = self._idle.popleft()
        for r, error, reason in failed:
            r.sink.fail(error, reason)  # type: ignore[union-attr]
        if worker is not None:
            self._drive(worker)

    def _run_direct(self, worker: _Worker, requests: Sequence[InferenceRequest]) -> None:
        """Run ``requests`` as batches of up to max_batch_size, in order, as ``worker``; then whatever
        other threads queued meanwhile (:meth:`_drive`)."""
        run, instance, limit = self._runner.run, worker.instance, self._form.max_batch
        batch: list[InferenceRequest] = []
        size = 0
        for r in requests:
            n = r.batch_size or 1
            if batch and size + n > limit:
                self._run_guarded(run, instance, batch, worker)
                batch, size = [], 0
            batch.append(r)
            size += n
        if batch:
            self._run_guarded(run, instance, batch, worker)
        self._drive(worker)

    def _run_guarded(self, run: Callable[..., Any], instance: BackendInstance, batch: list[InferenceRequest], worker: _Worker) -> None:
        try:
            run(instance, batch)
        except Exception:  # a failing sink callback must not stop the caller
            _log.exception("batch of model '%s' failed on instance %s", self._runner.model_name, worker.name)

    def _drive(self, worker: _Worker) -> None:
        """Run batches as ``worker`` in this thread until the queue is empty, then give it back."""
        run, instance = self._runner.run, worker.instance
        while True:
            dropped: list[tuple[QueueEntry, str]] = []
            with self._cond:
                batch = self._take_locked(dropped)[0] if self._queues.size else None
                if batch is None and not dropped:
                    self._idle.append(worker)
                    if self._queues.size or self._stopping:
                        self._cond.notify()
            self._fail_dropped(dropped)
            if batch is None:
                if dropped:
                    continue
                self._runner.idle(instance)
                return
            try:
                run(instance, batch)
            except Exception:  # a failing sink callback must not stop the caller
                _log.exception("batch of model '%s' failed on instance %s", self._runner.model_name, worker.name)

    def deliver_cached(self, request: InferenceRequest, result: InferResult) -> None:
        """A response-cache hit: with ``preserve_ordering`` it waits behind responses of requests that
        left the queue before it (core ``DelegateResponse`` on a hit); otherwise it goes out at once."""
        if self._ordering is not None:
            with self._cond:
                self._ordering.delegate(request)
        request.sink.send(result, True)  # type: ignore[union-attr]

    # ---- batch cutting (always under the lock) -------------------------------------------------------
    def _take_locked(self, dropped: list[tuple[QueueEntry, str]]) -> tuple[list[InferenceRequest] | None, int | None]:
        """Cut the next batch if it should go now: ``(requests, 0)``; else ``(None, wait_ns or None)``.

        With ``preserve_ordering`` the requests are given their ordering slots here, under the lock,
        so slots follow dequeue order whichever thread cut the batch.
        """
        count, wait_ns = self._form.choose(self._queues, time.monotonic_ns(), self._stopping, dropped)
        if not count:
            return None, wait_ns
        requests = [e.request for e in self._queues.pop(count)]
        if self._ordering is not None:
            for r in requests:
                self._ordering.delegate(r)
        return requests, 0

    # ---- batcher thread -------------------------------------------------------------------------------
    def _batch_loop(self) -> None:
        """Cut batches for idle instances; sleep out queue delays; on stop, drain then stop the workers."""
        cond, queues = self._cond, self._queues
        while True:
            dropped: list[tuple[QueueEntry, str]] = []
            batch: list[InferenceRequest] | None = None
            worker: _Worker | None = None
            done = False
            with cond:
                while True:
                    if queues.size == 0:
                        if self._stopping:
                            done = True
                            break
                        cond.wait()
                        continue
                    if not self._idle:
                        cond.wait()
                        continue
                    batch, wait_ns = self._take_locked(dropped)
                    if batch is not None:
                        worker = self._idle.popleft()
                        break
                    if dropped:
                        break  # fail them now, outside the lock, then look again
                    if wait_ns is not None:
                        cond.wait(wait_ns / 1e9)
            self._fail_dropped(dropped)
            if worker is not None:
                worker.inbox.put(batch)
            if done:
                break
        for w in self._workers:
            w.inbox.put(_STOP)

    @staticmethod
    def _fail_dropped(dropped: list[tuple[QueueEntry, str]]) -> None:
        for entry, why in dropped:
            sink = entry.request.sink
            if sink is None:
                continue
            if why == CANCELLED:
                sink.fail(CancelledError("Request was cancelled"), "CANCELED")
            else:
                sink.fail(UnavailableError("Request timeout expired"), "REJECTED")

    # ---- instance threads -----------------------------------------------------------------------------
    def _work(self, worker: _Worker) -> None:
        """Run batches. After one, cut the next itself if it is ready (no hand-off through the batcher:
        under load that saves two thread switches per batch); otherwise report idle to the batcher."""
        get, run, instance = worker.inbox.get, self._runner.run, worker.instance
        batch = get()
        while batch is not _STOP:
            try:
                run(instance, batch)
            except Exception:  # a failing sink callback must not kill the instance thread
                _log.exception("batch of model '%s' failed on instance %s", self._runner.model_name, worker.name)
            dropped: list[tuple[QueueEntry, str]] = []
            with self._cond:
                batch = self._take_locked(dropped)[0] if self._queues.size else None
                if batch is None:
                    self._idle.append(worker)
                    self._cond.notify()
            self._fail_dropped(dropped)
            if batch is None:
                self._runner.idle(instance)
                batch = get()

    def stop(self) -> None:
        """Run everything already queued (no more queue delay), then join the batcher and every instance thread."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify()
        self._batcher.join()
        for w in self._workers:
            w.thread.join()


__all__ = ["BatchForm", "DynamicBatchScheduler", "batch_key_function"]
