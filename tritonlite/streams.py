"""Streams of responses for one request (decoupled models), iterable with ``for`` and ``async for``.

Every response lands in a positional ``concurrent.futures.Future``; the sync iterator calls
``.result()`` on the next one and the async iterator awaits the same future — one implementation.
The stream ends after the response that carries the final flag (a final flag with no response
just ends it). An error raises from the iterator and ends the stream.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, AsyncIterator, Iterator

from tritonlite.errors import CancelledError, TritonLiteError
from tritonlite.request import InferenceRequest, InferResult

_END = object()


class ResponseStream:
    """The responses of one request, in the order the model sent them."""

    def __init__(self, request: InferenceRequest | None = None) -> None:
        self.request = request
        self._lock = threading.Lock()
        self._slots: dict[int, concurrent.futures.Future] = {}
        self._produced = 0
        self._consumed = 0
        self._closed = False

    # ---- producer side (the request's sink) ---------------------------------------------------------
    def _slot(self, index: int) -> concurrent.futures.Future:
        fut = self._slots.get(index)
        if fut is None:
            fut = self._slots[index] = concurrent.futures.Future()
        return fut

    def push(self, result: InferResult | None, error: TritonLiteError | None, final: bool) -> None:
        """Add a response (or an error); responses after the end are dropped."""
        with self._lock:
            if self._closed:
                return
            items: list[Any] = []
            if error is not None:
                items.append(error)
                final = True
            elif result is not None:
                items.append(result)
            if final:
                items.append(_END)
                self._closed = True
            futs = []
            for item in items:
                idx = self._produced
                # a consumer already waiting on this index created the future and left it to us
                fut = self._slots.pop(idx) if idx < self._consumed else self._slot(idx)
                futs.append((fut, item))
                self._produced += 1
        for fut, item in futs:
            if isinstance(item, BaseException):
                fut.set_exception(item)
            else:
                fut.set_result(item)

    def cancel(self) -> None:
        """Cancel the request: queued work is dropped, the model sees is_cancelled(), the stream ends."""
        if self.request is not None:
            self.request.cancel()
        self.push(None, CancelledError("Request was cancelled"), True)

    # ---- consumer side --------------------------------------------------------------------------------
    def _next_future(self) -> concurrent.futures.Future:
        with self._lock:
            idx = self._consumed
            self._consumed += 1
            return self._slots.pop(idx) if idx < self._produced else self._slot(idx)

    def __iter__(self) -> Iterator[InferResult]:
        return self

    def __next__(self) -> InferResult:
        if self._consumed > 0 and self._closed and self._consumed >= self._produced:
            raise StopIteration
        item = self._next_future().result()
        if item is _END:
            raise StopIteration
        return item

    def __aiter__(self) -> AsyncIterator[InferResult]:
        return self

    async def __anext__(self) -> InferResult:
        if self._consumed > 0 and self._closed and self._consumed >= self._produced:
            raise StopAsyncIteration
        item = await asyncio.wrap_future(self._next_future())
        if item is _END:
            raise StopAsyncIteration
        return item


__all__ = ["ResponseStream"]
