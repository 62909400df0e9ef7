"""Triton's sequence batcher (core ``SequenceBatchScheduler``), strategies ``direct`` and ``oldest``.

A START request takes a free *sequence slot* (``(slot, instance)``, lowest slot first, so sequences
spread over instances) or, when none is free, joins the FIFO *backlog*, which collects all of that
sequence's requests until an ending sequence hands its slot over. Later requests of a sequence go
to its slot. The mapping correlation id → sequence is dropped as soon as the END request arrives,
so the same id may start again at once; the slot itself is freed when END is scheduled.

* direct: one thread per instance; each batch takes the front request of slots 0..highest ready
  slot, so batch index == slot index; empty slots get a *null request* (READY false, CORRID 0,
  zero data) whose response is discarded.
* oldest: one thread per instance with ``max_candidate_sequences`` slots; a sequence has at most one
  request issued at a time (the next is issued when it completes), and issued requests are batched
  oldest first using ``preferred_batch_size`` / ``max_queue_delay_microseconds``.

The reaper thread (``tritonlite.<model>.sequence-reaper``) frees the slot of a sequence idle for
``max_sequence_idle_microseconds`` (a later request for it fails for want of START) and rejects
backlogged sequences whose request ``timeout`` expired. Control and state tensors come from
:mod:`tritonlite.scheduling.sequence_state`.

``iterative_sequence: true`` (core ``IterativeSequencer``): a request without correlation id gets
one of its own and the START flag; after each execution, a request the model released with
RESCHEDULE is queued again on its sequence (no START, no END), and one released for good ends its
sequence, freeing the slot for the backlog.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import deque
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Sequence

from tritonlite.backends.base import BackendInstance
from tritonlite.datatypes import DataType
from tritonlite.errors import CancelledError, InvalidArgumentError, TritonLiteError, UnavailableError
from tritonlite.request import InferenceRequest, RequestFlag
from tritonlite.scheduling.runner import BatchRunner
from tritonlite.scheduling.sequence_state import SequenceControls, SequenceState, StateSpec, null_request, state_sink

_log = logging.getLogger("tritonlite.scheduling")
_RELEASE = object()  # queued by the reaper: "free this slot" (core's nullptr request)
_START, _END = int(RequestFlag.SEQUENCE_START), int(RequestFlag.SEQUENCE_END)
Failures = list  # [(request, error, reason)], settled outside the lock


class _Seq:
    """One sequence: its queued requests, implicit state and where it runs (None while backlogged)."""

    __slots__ = ("corrid", "queue", "state", "batcher", "slot", "last_ns", "expires_ns", "in_flight", "owner")

    def __init__(self, corrid: int | str) -> None:
        #: iterative sequences: the request that started the sequence (its state sink is made once)
        self.owner: InferenceRequest | None = None
        self.corrid = corrid
        self.queue: deque[Any] = deque()
        self.state: SequenceState | None = None
        self.batcher: _Batcher | None = None
        self.slot = -1
        self.last_ns = 0
        self.expires_ns = 0  # backlog expiry from request timeouts (0: none)
        self.in_flight = False


class _PaddingAwareStats:
    """The model's statistics as the runner sees them, minus padding in ``inference_count``.

    Triton reports null requests in ``batch_stats`` (a padded batch of 4 counts at size 4) but never
    in ``inference_count`` or the success counts (qa ``sequence_corrid_batcher_test``: 12 requests
    in four padded batches of 4 give ``{4: 4}``, success 12, inference_count 12). Padding sinks
    discard, so success counts already exclude them; this removes them from ``inference_count``.
    """

    def __init__(self, stats: Any) -> None:
        self._stats = stats
        self.local = threading.local()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stats, name)

    def record_execution(self, batch_size: int, *times: int) -> None:
        self._stats.record_execution(batch_size, *times)
        padding = getattr(self.local, "padding", 0)
        if padding:
            with getattr(self._stats, "_lock", None) or nullcontext():
                self._stats.inference_count -= padding


def _model_dir(instances: Sequence[tuple[str, BackendInstance]]) -> Path | None:
    for _, inst in instances:
        for holder in (inst, getattr(inst, "context", None)):
            found = getattr(holder, "model_dir", None)
            if found:
                return Path(found)
    return None


class SequenceBatchScheduler:
    """Slots, backlog and reaper shared by one batcher (and thread) per instance."""

    def __init__(self, config: Any, runner: BatchRunner, instances: Sequence[tuple[str, BackendInstance]],
                 model_dir: str | Path | None = None) -> None:
        if not instances:
            raise UnavailableError(f"model '{runner.model_name}' has no non-passive instance to schedule on")
        sb = config.sequence_batching
        self.model_name = runner.model_name
        self.controls = SequenceControls(config)
        #: iterative_sequence: a request without correlation id starts its own sequence, and a request
        #: the model releases with RESCHEDULE runs again in a later batch (core ``IterativeSequencer``)
        self.iterative = bool(sb.iterative_sequence)
        self._next_id = 1
        runner.allow_reschedule = self.iterative
        self.states = StateSpec.all_from_config(config, Path(model_dir) if model_dir else _model_dir(instances))
        self.max_batch_size = int(config.max_batch_size)
        self.idle_ns = int(sb.max_sequence_idle_microseconds or 1_000_000) * 1000
        self.equal_shape = tuple(
            i.name for i in config.input if not i.allow_ragged_batch and (i.is_shape_tensor or -1 in list(i.dims))
        )
        self.check_presence = any(i.optional for i in config.input)
        self.input_names = frozenset(i.name for i in config.input)
        self.stats = _PaddingAwareStats(runner.stats)
        runner.stats = self.stats  # type: ignore[assignment]
        self.runner = runner
        self.mu = threading.Lock()
        self.sequences: dict[int | str, _Seq] = {}  # until the END request arrives
        self.backlog: deque[_Seq] = deque()
        self.free: list[tuple[int, int]] = []  # heap of (slot, batcher index)
        self.stopping = False
        oldest = sb.WhichOneof("strategy_choice") == "oldest"
        slots = max(1, self.max_batch_size)
        if oldest and sb.oldest.max_candidate_sequences > 0:
            slots = int(sb.oldest.max_candidate_sequences)
        kind = _OldestBatcher if oldest else _DirectBatcher
        self.batchers: list[_Batcher] = [kind(self, i, name, inst, slots, sb) for i, (name, inst) in enumerate(instances)]
        for b in self.batchers:
            for s in range(slots):
                heapq.heappush(self.free, (s, b.index))
        self.reaper_cv = threading.Condition(self.mu)
        self.threads = [
            threading.Thread(target=b.loop, name=f"tritonlite.{self.model_name}.{b.name}", daemon=True) for b in self.batchers
        ]
        self.threads.append(threading.Thread(target=self._reap, name=f"tritonlite.{self.model_name}.sequence-reaper", daemon=True))
        for t in self.threads:
            t.start()

    # ------------------------------------------------------------------------------------- enqueue
    def _check(self, request: InferenceRequest) -> TritonLiteError | None:
        if request.batch_size > 1:
            return InvalidArgumentError(
                f"inference request to model '{self.model_name}' must specify batch-size 1 due to requirements of sequence batcher"
            )
        cid = request.correlation_id
        if (cid == 0 or cid == "" or cid is None) and self.iterative:
            self._own_sequence(request)
            cid = request.correlation_id
        if cid == 0 or cid == "" or cid is None:
            return InvalidArgumentError(
                f"inference request to model '{self.model_name}' must specify a non-zero or non-empty correlation ID"
            )
        try:
            self.controls.check_correlation_id(request)
        except InvalidArgumentError as exc:
            return exc
        return None

    def _own_sequence(self, request: InferenceRequest) -> None:
        """Give a request of an iterative model its own sequence: a fresh id and the START flag."""
        with self.mu:
            while self._next_id in self.sequences or str(self._next_id) in self.sequences:
                self._next_id += 1
            number = self._next_id
            self._next_id += 1
        request.correlation_id = str(number) if self.controls.corrid_type is DataType.BYTES else number
        request.flags = _START

    def enqueue(self, request: InferenceRequest) -> None:
        error = self._check(request)
        if error is None:
            with self.mu:
                error = self._enqueue_locked(request)
        if error is not None:
            request.sink.fail(error, "OTHER")  # type: ignore[union-attr]

    def _enqueue_locked(self, request: InferenceRequest) -> TritonLiteError | None:
        cid, flags = request.correlation_id, request.flags
        if self.stopping:
            return UnavailableError(f"model '{self.model_name}' is unloading")
        seq = self.sequences.get(cid)
        if seq is None and not flags & _START:
            return InvalidArgumentError(
                f"inference request for sequence {cid} to model '{self.model_name}' must specify the START flag "
                "on the first request of the sequence"
            )
        now = time.monotonic_ns()
        if seq is None:
            seq = _Seq(cid)
            if self.free:
                slot, index = heapq.heappop(self.free)
                self.batchers[index].assign(seq, slot)
            else:
                self.backlog.append(seq)
            self.sequences[cid] = seq
        elif flags & _START:
            _log.warning("sequence %s for model '%s' has a conflict. The previous sequence did not end before this "
                         "sequence start. Previous sequence will be terminated early.", cid, self.model_name)
        seq.last_ns = now
        if seq.batcher is None and request.timeout_us:
            expires = now + int(request.timeout_us) * 1000
            seq.expires_ns = min(seq.expires_ns or expires, expires)
            self.reaper_cv.notify_all()
        if flags & _END:
            del self.sequences[cid]
        seq.queue.append(request)
        if seq.batcher is not None:
            seq.batcher.on_enqueue(seq)
        return None

    # ----------------------------------------------------------------------------- shared helpers
    def prepare(self, request: InferenceRequest, seq: _Seq) -> None:
        """Add control and state tensors; route the state outputs back into the sequence's state."""
        inputs = dict(request.backend_inputs)
        inputs.update(self.controls.tensors(request.flags, request.correlation_id))
        again = seq.owner is request  # a rescheduled request of an iterative sequence
        if request.flags & _START:
            seq.owner = request
        if self.states:
            if seq.state is None or request.flags & _START:
                seq.state = SequenceState(self.states)
            state = seq.state
            inputs.update(state.inputs())
            if not again:
                extra = tuple(s.output_name for s in self.states if s.output_name not in request.output_names)
                request.output_names = tuple(request.output_names) + extra
                request.sink = state_sink(request.sink, state, extra)  # type: ignore[arg-type]
        request.backend_inputs = inputs

    def compatible(self, a: InferenceRequest, b: InferenceRequest) -> bool:
        """Core ``RequiredEqualInputs``: variable-shape inputs without ragged batching must match."""
        if self.check_presence and (a.backend_inputs.keys() & self.input_names) != (b.backend_inputs.keys() & self.input_names):
            return False
        for name in self.equal_shape:
            x, y = a.backend_inputs.get(name), b.backend_inputs.get(name)
            if x is not None and y is not None and x.shape != y.shape:
                return False
        return True

    def release(self, batcher: "_Batcher", slot: int, failures: Failures) -> _Seq | None:
        """Free ``slot``: cancel what its sequence still queues, then hand it to the next backlog sequence."""
        old = batcher.slots[slot]
        if old is not None:
            leftover = [r for r in old.queue if r is not _RELEASE]
            old.queue.clear()
            old.batcher = None
            if self.sequences.get(old.corrid) is old:
                del self.sequences[old.corrid]
            failures.extend((r, CancelledError("Request was cancelled"), "CANCELED") for r in leftover)
        while self.backlog:
            seq = self.backlog.popleft()
            if any(r is not _RELEASE and r.is_cancelled() for r in seq.queue):
                if self.sequences.get(seq.corrid) is seq:
                    del self.sequences[seq.corrid]
                failures.extend((r, CancelledError("Request was cancelled"), "CANCELED") for r in seq.queue if r is not _RELEASE)
                continue
            seq.expires_ns = 0
            batcher.assign(seq, slot)
            return seq
        batcher.slots[slot] = None
        heapq.heappush(self.free, (slot, batcher.index))
        return None

    def execute(self, batcher: "_Batcher", batch: list[InferenceRequest], padding: int) -> None:
        self.stats.local.padding = padding
        try:
            rescheduled = self.runner.run(batcher.instance, batch)
        finally:
            self.stats.local.padding = 0
        if self.iterative:
            self._after_iteration(batch, rescheduled)

    def _after_iteration(self, batch: list[InferenceRequest], rescheduled: list[InferenceRequest]) -> None:
        """Iterative sequences: queue rescheduled requests again; end the sequence of the released ones.

        A rescheduled request continues its sequence with neither START nor END. One the model
        released for good ends its sequence (core: a cancelled null END request frees the slot),
        unless it carried END itself, which already freed it.
        """
        again = {id(r) for r in rescheduled}
        failures: Failures = []
        with self.mu:
            for request in batch:
                if request.sink is None or id(request) in again:
                    continue
                if request.flags & _END or not request.correlation_id:
                    continue
                seq = self.sequences.get(request.correlation_id)
                if seq is not None and seq.batcher is not None and seq.owner is request:
                    del self.sequences[request.correlation_id]
                    seq.queue.append(_RELEASE)
                    seq.batcher.on_enqueue(seq)
            for request in rescheduled:
                if request.flags & _END:
                    failures.append((request, InvalidArgumentError(
                        "Request is released with TRITONSERVER_REQUEST_RELEASE_RESCHEDULE, while the model is not "
                        "configured to handle such a flag."), "BACKEND"))
                    continue
                request.flags = 0
                request.mark_queued()
                self.stats.record_queued()
                error = self._enqueue_locked(request)
                if error is not None:
                    failures.append((request, error, "OTHER"))
        _settle(failures)

    # -------------------------------------------------------------------------------------- reaper
    def _reap(self) -> None:
        while True:
            failures: Failures = []
            with self.mu:
                if self.stopping:
                    return
                now = time.monotonic_ns()
                wake = now + self.idle_ns
                for cid, seq in list(self.sequences.items()):
                    if seq.batcher is None:
                        continue  # backlogged sequences are not reaped; they are revisited later
                    idle_at = seq.last_ns + self.idle_ns
                    if idle_at <= now:
                        _log.info("sequence %s of model '%s' idle past max_sequence_idle_microseconds: slot freed",
                                  cid, self.model_name)
                        del self.sequences[cid]
                        seq.queue.append(_RELEASE)
                        seq.batcher.on_enqueue(seq)
                    else:
                        wake = min(wake, idle_at)
                for seq in list(self.backlog):
                    if seq.expires_ns and seq.expires_ns <= now:
                        self.backlog.remove(seq)
                        if self.sequences.get(seq.corrid) is seq:
                            del self.sequences[seq.corrid]
                        error = UnavailableError("timeout of the corresponding sequence has been expired")
                        failures.extend((r, error, "REJECTED") for r in seq.queue if r is not _RELEASE)
                    elif seq.expires_ns:
                        wake = min(wake, seq.expires_ns)
                if not failures:
                    self.reaper_cv.wait(max(0.0, (wake - now) / 1e9) + 0.0005)
            _settle(failures)

    def stop(self) -> None:
        """Run what the slots hold, fail what the backlog still holds, then join every thread."""
        with self.mu:
            if self.stopping:
                return
            self.stopping = True
            self.reaper_cv.notify_all()
            for b in self.batchers:
                b.cv.notify_all()
        for t in self.threads:
            t.join()
        failures: Failures = []
        with self.mu:
            error = UnavailableError(f"model '{self.model_name}' is unloading")
            for seq in self.backlog:
                failures.extend((r, error, "OTHER") for r in seq.queue if r is not _RELEASE)
            self.backlog.clear()
            self.sequences.clear()
        _settle(failures)


def _settle(failures: Failures) -> None:
    for request, error, reason in failures:
        request.sink.fail(error, reason)


# ------------------------------------------------------------------------------------------ batchers
class _Batcher:
    """One instance's slots and thread; subclasses decide how batches form."""

    def __init__(self, sched: SequenceBatchScheduler, index: int, name: str, instance: BackendInstance,
                 slots: int, sb: Any) -> None:
        self.sched, self.index, self.name, self.instance = sched, index, name, instance
        self.slots: list[_Seq | None] = [None] * slots
        self.cv = threading.Condition(sched.mu)

    def assign(self, seq: _Seq, slot: int) -> None:
        seq.batcher, seq.slot = self, slot
        self.slots[slot] = seq
        if seq.queue:
            self.on_enqueue(seq)

    def on_enqueue(self, seq: _Seq) -> None:
        self.cv.notify()

    def loop(self) -> None:
        while True:
            failures: Failures = []
            with self.cv:
                while True:
                    batch, padding, wait = self.form(failures)
                    if batch or failures:
                        break
                    self.sched.runner.idle(self.instance)  # rate limiter: nothing at hand, free the resources
                    if self.sched.stopping and self.idle():
                        return
                    self.cv.wait(wait)
            _settle(failures)
            if batch:
                self.sched.execute(self, batch, padding)
                self.after(batch)

    def idle(self) -> bool:
        return not any(s is not None and s.queue for s in self.slots)

    def form(self, failures: Failures) -> tuple[list[InferenceRequest], int, float | None]:
        raise NotImplementedError

    def after(self, batch: list[InferenceRequest]) -> None:
        """Called without the lock once a batch has run."""

    def _drop_dead_fronts(self, failures: Failures) -> None:
        """Free the slots whose front is the reaper's marker or a cancelled request (core BatcherThread)."""
        for i, seq in enumerate(self.slots):
            while seq is not None and seq.queue and not seq.in_flight and (
                seq.queue[0] is _RELEASE or seq.queue[0].is_cancelled()
            ):
                seq = self.sched.release(self, i, failures)


class _DirectBatcher(_Batcher):
    def __init__(self, sched: SequenceBatchScheduler, index: int, name: str, instance: BackendInstance,
                 slots: int, sb: Any) -> None:
        super().__init__(sched, index, name, instance, slots, sb)
        self.delay_ns = int(sb.direct.max_queue_delay_microseconds) * 1000
        self.min_utilization = float(sb.direct.minimum_slot_utilization)

    def form(self, failures: Failures) -> tuple[list[InferenceRequest], int, float | None]:
        self._drop_dead_fronts(failures)
        ready = [i for i, s in enumerate(self.slots) if s is not None and s.queue]
        if not ready:
            return [], 0, None
        if self.delay_ns and self.min_utilization > 0:
            oldest = min(self.slots[i].queue[0].times.queue_start for i in ready)  # type: ignore[union-attr]
            waited = time.monotonic_ns() - oldest
            if waited <= self.delay_ns and len(ready) / len(self.slots) < self.min_utilization:
                return [], 0, (self.delay_ns - waited) / 1e9
        template: InferenceRequest | None = None
        taken: dict[int, InferenceRequest] = {}
        for i in ready:
            seq = self.slots[i]
            assert seq is not None
            request = seq.queue[0]
            if template is not None and not self.sched.compatible(template, request):
                continue  # waits for a later batch; this slot is padded now
            seq.queue.popleft()
            self.sched.prepare(request, seq)
            template = template or request
            taken[i] = request
            if request.flags & _END:
                self.sched.release(self, i, failures)
        assert template is not None
        batch = [taken[i] if i in taken else null_request(template, self.sched.controls) for i in range(max(taken) + 1)]
        return batch, len(batch) - len(taken), None


class _OldestBatcher(_Batcher):
    def __init__(self, sched: SequenceBatchScheduler, index: int, name: str, instance: BackendInstance,
                 slots: int, sb: Any) -> None:
        super().__init__(sched, index, name, instance, slots, sb)
        self.max_batch = max(1, sched.max_batch_size)
        self.preferred = sorted(p for p in sb.oldest.preferred_batch_size if 0 < p <= self.max_batch) or [self.max_batch]
        self.delay_ns = int(sb.oldest.max_queue_delay_microseconds) * 1000
        self.issued: deque[tuple[InferenceRequest, _Seq, int]] = deque()  # (request, sequence, issue time)
        self.running = 0
        self._last: list[tuple[InferenceRequest, _Seq, int]] = []

    def on_enqueue(self, seq: _Seq) -> None:
        if not seq.in_flight:
            self.cv.notify()

    def idle(self) -> bool:
        return super().idle() and not self.issued and not self.running

    def _issue(self, failures: Failures) -> None:
        """Give every sequence with nothing in flight its next request (core ``CompleteAndNext``)."""
        self._drop_dead_fronts(failures)
        now = time.monotonic_ns()
        for seq in self.slots:
            if seq is not None and seq.queue and not seq.in_flight:
                request = seq.queue.popleft()
                self.sched.prepare(request, seq)
                seq.in_flight = True
                self.issued.append((request, seq, now))

    def form(self, failures: Failures) -> tuple[list[InferenceRequest], int, float | None]:
        self._issue(failures)
        if not self.issued:
            return [], 0, None
        first = self.issued[0][0]
        count = 0
        for request, _, _ in self.issued:
            if count == self.max_batch or not self.sched.compatible(first, request):
                break
            count += 1
        stopped_early = count < len(self.issued)
        waited = time.monotonic_ns() - self.issued[0][2]
        exceeded = self.delay_ns != 0 and waited >= self.delay_ns
        reached = [p for p in self.preferred if p <= count]
        if reached and not exceeded:
            size = reached[-1]
        elif stopped_early or count >= self.preferred[-1] or self.delay_ns == 0 or exceeded:
            size = count
        else:
            return [], 0, (self.delay_ns - waited) / 1e9
        picked = [self.issued.popleft() for _ in range(size)]
        self.running = len(picked)
        self._last = picked
        return [r for r, _, _ in picked], 0, None

    def after(self, batch: list[InferenceRequest]) -> None:
        failures: Failures = []
        with self.cv:
            for request, seq, _ in self._last:
                seq.in_flight = False
                if request.flags & _END and seq.batcher is self and self.slots[seq.slot] is seq:
                    self.sched.release(self, seq.slot, failures)
            self.running = 0
            self._last = []
        _settle(failures)


__all__ = ["SequenceBatchScheduler"]
