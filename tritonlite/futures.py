"""The one future type every door waits on: a ``concurrent.futures.Future`` that is also awaitable.

Async callers ``await`` the same object sync callers ``.result()`` — one implementation
(``asyncio.wrap_future``), no second code path. Cancelling it cancels the request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any, Generator

from tritonlite.request import InferenceRequest, InferResult


class InferFuture(concurrent.futures.Future):
    """Future of an :class:`InferResult`; ``await fut`` works in any running event loop."""

    request: InferenceRequest | None = None

    def __await__(self) -> Generator[Any, None, InferResult]:
        return asyncio.wrap_future(self).__await__()

    def cancel(self) -> bool:
        cancelled = super().cancel()
        if cancelled and self.request is not None:
            self.request.cancel()
        return cancelled

    def settle(self, result: InferResult | None, error: BaseException | None) -> None:
        """Resolve once; a future the caller already cancelled silently stays cancelled."""
        try:
            if error is not None:
                self.set_exception(error)
            else:
                self.set_result(result)
        except concurrent.futures.InvalidStateError:
            pass


__all__ = ["InferFuture"]
