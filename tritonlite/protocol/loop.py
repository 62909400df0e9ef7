"""Event-loop plumbing the HTTP and gRPC doors share: completions back to the loop once per burst,
the requests of one loop pass submitted together, and the rule for running a model on the loop.

Why per pass: a door's event loop reads every ready socket in one pass; the infer requests it
decodes there are handed to the engine together (:class:`PassSubmitter`), so a dynamic batcher with
an idle instance runs them as one batch on the loop thread, and their completions come back through
:class:`LoopCompletions` in one wake-up. Python work is paid per batch, not per request, where it can be.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import threading
from typing import Any, Awaitable, Callable

_log = logging.getLogger("tritonlite.protocol")

#: completed requests a version needs before its mean compute time is trusted
_INLINE_MIN_SAMPLES = 8


class LoopCompletions:
    """Runs callbacks pushed from any thread on one event loop's thread, waking it once per burst.

    A push from the loop's own thread runs the callback at once.
    ``push`` appends to a deque and schedules one drain if none is pending; the drain runs every
    callback queued by then (including those pushed while it runs). Two pushes racing past the
    flag at worst schedule one extra, empty drain.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident()  # built on the loop's thread
        self._items: collections.deque[Callable[[], None]] = collections.deque()
        self._scheduled = False

    def push(self, callback: Callable[[], None]) -> None:
        if threading.get_ident() == self._loop_thread:  # an error before queueing, or an inline run
            callback()
            return
        self._append(callback)

    def push_ordered(self, callback: Callable[[], None]) -> None:
        """Like :meth:`push`, but never runs ahead of callbacks already waiting, even on the loop's thread
        (a stream's responses and its end must keep their order)."""
        if threading.get_ident() == self._loop_thread and not self._items:
            callback()
            return
        self._append(callback)

    def _append(self, callback: Callable[[], None]) -> None:
        self._items.append(callback)
        if not self._scheduled:
            self._scheduled = True
            try:
                if threading.get_ident() == self._loop_thread:
                    self._loop.call_soon(self._drain)
                else:
                    self._loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop has closed (server stopped): nobody is waiting any more
                pass

    def _drain(self) -> None:
        self._scheduled = False
        items = self._items
        while items:
            callback = items.popleft()
            try:
                callback()
            except Exception:  # pragma: no cover - a completion must never stop the others
                _log.exception("completion callback failed")


class PassSubmitter:
    """Collects the infer requests decoded during one pass of the event loop and submits them together
    (``engine._submit_unary_many(items, inline=True)``) right after the pass. Loop thread only."""

    def __init__(self, engine: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._engine = engine
        self._loop = loop
        self._items: list[tuple[Any, Callable[..., None]]] = []

    def add(self, request: Any, on_done: Callable[..., None]) -> None:
        items = self._items
        items.append((request, on_done))
        if len(items) == 1:
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        items, self._items = self._items, []
        try:
            self._engine._submit_unary_many(items, True)
        except Exception:  # pragma: no cover - the engine answers every request through on_done
            _log.exception("submitting a burst of requests failed")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The doors' event loop: uvloop's (C, libuv) when installed and not turned off with
    ``TRITONLITE_EVENT_LOOP=asyncio``, else asyncio's own."""
    if os.environ.get("TRITONLITE_EVENT_LOOP", "").lower() != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def start_loop_thread(name: str, serve: Callable[[threading.Event], Awaitable[None]]) -> tuple[threading.Thread, asyncio.AbstractEventLoop]:
    """Run ``serve(ready)`` on a new event loop (:func:`new_event_loop`) in a daemon thread named ``name``.

    Returns ``(thread, loop)`` once ``serve`` has set ``ready``; if it fails first (a bind error), the
    thread is joined and its exception raised here. The loop is closed when ``serve`` returns.
    """
    ready = threading.Event()
    failure: list[BaseException] = []
    loops: list[asyncio.AbstractEventLoop] = []

    def run() -> None:
        loop = new_event_loop()
        loops.append(loop)
        try:
            loop.run_until_complete(serve(ready))
        except BaseException as exc:  # surfaced in the starting thread
            failure.append(exc)
            ready.set()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    ready.wait()
    if failure:
        thread.join()
        raise failure[0]
    return thread, loops[0]


def runs_fast(stats: Any, budget_ns: int) -> bool:
    """Whether the version's requests so far computed in under ``budget_ns`` on average (per request:
    a batch of 16 that took 160 µs is 10 µs a request).

    Such a request may run on the event loop's thread when an instance is idle (the engine's
    ``inline``): two thread hand-offs cost more than such a model. Slower models, and every model
    until it has answered a few requests, go through the instance threads. Read without the
    statistics lock: a stale figure only moves one request to the other path.
    """
    d = stats.durations
    n = d["success"].count
    if n < _INLINE_MIN_SAMPLES:
        return False
    compute = d["compute_input"].ns + d["compute_infer"].ns + d["compute_output"].ns
    # every request of a batch is charged the whole batch's compute time: per request it is that
    # over the mean batch size (inferences per execution)
    executions = stats.execution_count
    if executions:
        compute = compute * executions // max(stats.inference_count, 1)
    return compute < budget_ns * n


__all__ = ["LoopCompletions", "PassSubmitter", "new_event_loop", "runs_fast", "start_loop_thread"]
