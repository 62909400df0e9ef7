"""HTTP/1.1 on ``asyncio.Protocol`` with the ``httptools`` parser (the stack DESIGN decision 8 measured).

One :class:`HttpConnection` per socket: it parses requests, queues them (pipelining keeps its
order), serves one request at a time and writes the response with a ``Content-Length`` (or
chunked, for :class:`StreamingResponse`). Keep-alive follows HTTP/1.1 rules.

Serving is callback-driven, so the hot path (``/infer``) creates no task and no future: the
application's ``start(request, connection)`` either answers later through
:meth:`HttpConnection.respond` (the infer path: the engine's completion comes back to the event
loop and is written from there) or returns a coroutine, which the connection runs as a task (every
other endpoint). A client that goes away cancels the request being served (the task, or the engine
request the application registered in ``connection.cancel_current``).
Malformed HTTP gets 400 and the connection is closed; a body over the size limit is read and
discarded, then answered with 400.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from http import HTTPStatus
from typing import Any, AsyncIterator, Awaitable, Callable

try:
    import httptools
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the HTTP server needs httptools: pip install 'tritonlite[http]'") from exc

_log = logging.getLogger("tritonlite.http")

_MAX_PIPELINE = 32
_MAX_HEAD = 1024 * 1024  # request line + headers
_REASONS = {s.value: s.phrase for s in HTTPStatus}


class Request:
    """One parsed HTTP request. ``headers`` keys are lower-case; ``body`` is a writable bytearray."""

    __slots__ = ("method", "path", "query", "headers", "body", "keep_alive", "error", "recv_start", "recv_end")

    def __init__(self, method: str, path: str, query: str, headers: dict[str, str], body: bytearray, keep_alive: bool) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        #: set when the request could not be read completely (too large, truncated): answer it with 400
        self.error: str | None = None
        #: monotonic ns of the first and last byte of the request (HTTP_RECV_START / HTTP_RECV_END in traces)
        self.recv_start = 0
        self.recv_end = 0


class Response:
    """A complete response; ``body`` is bytes-like (or a list of bytes-like parts)."""

    __slots__ = ("status", "headers", "body", "trace")

    def __init__(self, status: int = 200, body: Any = b"", headers: list[tuple[str, str]] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or []
        #: the request's trace when the handler left its HTTP_SEND_* timestamps to the connection
        self.trace: Any = None


class StreamingResponse:
    """A response sent with chunked transfer encoding, one chunk per item of ``chunks``."""

    __slots__ = ("status", "headers", "chunks")

    def __init__(self, chunks: AsyncIterator[bytes], status: int = 200, headers: list[tuple[str, str]] | None = None) -> None:
        self.status = status
        self.chunks = chunks
        self.headers = headers or []


#: Triton labels some answers ``text/plain`` (its routing 404/405, health and readiness, and errors its
#: infer handler sends before parsing the request JSON or after the model ran), the rest ``application/json``
TEXT_PLAIN = "text/plain"
APPLICATION_JSON = "application/json"


def json_error(status: int, message: str, headers: list[tuple[str, str]] | None = None,
               content_type: str = APPLICATION_JSON) -> Response:
    """``{"error": message}`` with ``status``; the body is JSON whatever ``content_type`` says (as Triton's)."""
    body = json.dumps({"error": message}, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(status, body, [("Content-Type", content_type)] + (headers or []))


App = Callable[[Request], Awaitable["Response | StreamingResponse"]]

_MAX_HEADS = 512


def _head(status: int, headers: list[tuple[str, str]], length: int | None, keep_alive: bool, cache: dict[Any, bytes]) -> bytes:
    """Status line and headers; the part before Content-Length is kept in ``cache`` (one per server)
    per (status, headers, keep-alive), so a response head costs one dict lookup and one format."""
    key = (status, *headers, keep_alive)
    prefix = cache.get(key)
    if prefix is None:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
        lines.extend(f"{k}: {v}" for k, v in headers)
        if not keep_alive:
            lines.append("Connection: close")
        prefix = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        if len(cache) >= _MAX_HEADS:
            cache.clear()
        cache[key] = prefix
    if length is None:
        return prefix + b"Transfer-Encoding: chunked\r\n\r\n"
    return b"%sContent-Length: %d\r\n\r\n" % (prefix, length)


class HttpConnection(asyncio.Protocol):
    """Protocol instance of one client connection.

    ``app.start(request, connection)`` serves one request: it returns None after arranging for
    :meth:`respond` to be called (possibly at once), or a coroutine whose result is the response.
    """

    def __init__(self, app: Any, max_body: int, registry: set["HttpConnection"], heads: dict[Any, bytes] | None = None) -> None:
        self.app = app
        self.max_body = max_body
        self.registry = registry
        self.heads = heads if heads is not None else {}
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        #: set by the application while it serves a request without a task: cancels that request
        self.cancel_current: Callable[[], None] | None = None
        self._queue: collections.deque[Request] = collections.deque()
        self._current: Request | None = None  # the request being served (one at a time)
        self._task: asyncio.Task | None = None  # runs a coroutine handler or a streaming response
        self._pumping = False
        self._closed = False
        self._eof = False
        self._reading_paused = False
        self._write_paused = False
        self._drain: asyncio.Future | None = None
        self._in_message = False
        self._recv_start = 0
        self._working = False  # the app is running a request, or a streaming response is being sent
        # per-message state
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0
        self._body = bytearray()
        self._size = 0
        self._expected = -1
        self._too_large = False

    # ---- asyncio.Protocol -----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.registry.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.registry.discard(self)
        self._queue.clear()
        self._cancel_work()
        if self._drain is not None and not self._drain.done():
            self._drain.set_exception(ConnectionResetError("client disconnected"))

    def _cancel_work(self) -> None:
        """Cancel what serves the current request: its task, or the engine request the app registered."""
        if self._task is not None and not self._task.done():
            self._task.cancel()  # cancels the engine request the handler awaits
        cancel, self.cancel_current = self.cancel_current, None
        if cancel is not None:
            cancel()

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # no protocol upgrades (h2c, websocket): answer what was parsed, then close
            self._eof = True
        except httptools.HttpParserError as exc:
            self._protocol_error(f"malformed HTTP request: {exc}")

    def eof_received(self) -> bool:
        self._eof = True
        if self._working:
            # the client went away while its request runs (or streams): cancel it, like Triton
            self._cancel_work()
            return False
        if self._in_message:
            got, want = self._size, self._expected
            detail = f": got {got} of {want} body bytes" if want >= 0 else ""
            req = Request("", "", "", {}, bytearray(), False)
            req.error = f"incomplete HTTP request, the client closed the connection{detail}"
            self._in_message = False
            self._enqueue(req)
        if self._current is None and not self._queue:
            return False  # nothing left to answer: close
        return True  # keep the write side open until queued requests are answered

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None
        if self._current is None:
            self._pump()

    # ---- httptools callbacks --------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._recv_start = time.monotonic_ns()
        self._in_message = True
        self._url = b""
        self._headers = []
        self._head_size = 0
        self._body = bytearray()
        self._size = 0
        self._expected = -1
        self._too_large = False

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)
        if self._head_size > _MAX_HEAD:
            raise ValueError("request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._head_size += len(name) + len(value)
        if self._head_size > _MAX_HEAD:
            raise ValueError("request headers too large")

    def on_headers_complete(self) -> None:
        for name, value in self._headers:
            lname = name.lower()
            if lname == b"content-length":
                try:
                    self._expected = int(value)
                except ValueError:
                    self._expected = -1
                if self._expected > self.max_body:
                    self._too_large = True
            elif lname == b"expect" and value.lower() == b"100-continue" and not self._too_large and self.transport:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._too_large:
            return
        if self._size > self.max_body:
            self._too_large = True
            self._body = bytearray()
            return
        self._body += body

    def on_message_complete(self) -> None:
        self._in_message = False
        parser = self.parser
        headers: dict[str, str] = {}
        for name, value in self._headers:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        try:
            url = httptools.parse_url(self._url)
            path = url.path.decode("latin-1") if url.path else "/"
            query = url.query.decode("latin-1") if url.query else ""
        except httptools.HttpParserInvalidURLError:
            path, query = self._url.decode("latin-1"), ""
        req = Request(parser.get_method().decode("latin-1"), path, query, headers, self._body, parser.should_keep_alive())
        req.recv_start, req.recv_end = self._recv_start, time.monotonic_ns()
        if self._too_large:
            req.error = (
                f"Request body size of {self._size} bytes exceeds the maximum allowed value of {self.max_body} bytes. "
                "Use --http-max-input-size to increase the limit."
            )
        self._body = bytearray()
        self._enqueue(req)

    # ---- request processing ---------------------------------------------------------------------------
    def _enqueue(self, req: Request) -> None:
        self._queue.append(req)
        if len(self._queue) > _MAX_PIPELINE and not self._reading_paused and self.transport is not None:
            self.transport.pause_reading()
            self._reading_paused = True
        if self._current is None:
            self._pump()

    def _pump(self) -> None:
        """Serve queued requests in order, one at a time, until one is left in flight."""
        if self._pumping:  # respond() from inside app.start(): the loop below goes on
            return
        self._pumping = True
        try:
            while self._queue and self._current is None and not self._closed and not self._write_paused:
                req = self._queue.popleft()
                if self._reading_paused and len(self._queue) <= _MAX_PIPELINE // 2 and self.transport is not None:
                    self.transport.resume_reading()
                    self._reading_paused = False
                self._current = req
                if req.error is not None:
                    self.respond(json_error(400, req.error))
                    continue
                self._working = True
                try:
                    pending = self.app.start(req, self)
                except Exception as exc:  # a handler bug must not kill the connection silently
                    pending = None
                    self._handler_failed(req, exc)
                if pending is not None:
                    self._task = asyncio.get_running_loop().create_task(self._run(req, pending))
        finally:
            self._pumping = False
        if self._eof and self._current is None and not self._queue and not self._closed:
            self._close()

    async def _run(self, req: Request, pending: Awaitable["Response | StreamingResponse"]) -> None:
        """Await a coroutine handler, then answer with its response."""
        try:
            resp = await pending
        except asyncio.CancelledError:
            self._task = None
            return
        except Exception as exc:
            self._task = None
            self._handler_failed(req, exc)
            return
        self._task = None
        self.respond(resp)

    def _handler_failed(self, req: Request, exc: Exception) -> None:
        _log.error("unhandled error serving %s %s", req.method, req.path, exc_info=exc)
        self.respond(json_error(500, f"internal server error: {type(exc).__name__}: {exc}"))

    def respond(self, resp: "Response | StreamingResponse") -> None:
        """Answer the request being served (event loop thread only), then serve the next one."""
        req = self._current
        if req is None or self._closed:
            return
        self.cancel_current = None
        self._working = False
        keep = req.keep_alive and not (self._eof and not self._queue)
        if isinstance(resp, StreamingResponse):
            self._working = True
            self._task = asyncio.get_running_loop().create_task(self._stream(resp, keep))
            return
        transport = self.transport
        trace = resp.trace
        send_start = time.monotonic_ns() if trace is not None else 0
        if transport is not None:
            body = resp.body
            if isinstance(body, list):
                length = 0
                for part in body:
                    length += len(part)
                head = _head(resp.status, resp.headers, length, keep, self.heads)
                if length <= 65536:
                    transport.write(head + b"".join(body))
                else:
                    transport.writelines([head, *body])
            else:
                transport.write(_head(resp.status, resp.headers, len(body), keep, self.heads) + body)
        if trace is not None:
            trace.frontend += [("HTTP_SEND_START", send_start), ("HTTP_SEND_END", time.monotonic_ns())]
            trace.close()
        self._current = None
        if not keep:
            self._close()
            return
        if not self._pumping:
            self._pump()

    async def _stream(self, resp: StreamingResponse, keep_alive: bool) -> None:
        transport = self.transport
        try:
            if transport is None:
                return
            transport.write(_head(resp.status, resp.headers, None, keep_alive, self.heads))
            try:
                async for chunk in resp.chunks:
                    if self._closed:
                        return
                    if chunk:
                        transport.write(b"%x\r\n" % len(chunk) + bytes(chunk) + b"\r\n")
                        await self._wait_writable()
            finally:
                aclose = getattr(resp.chunks, "aclose", None)
                if aclose is not None:
                    await aclose()
            if not self._closed:
                transport.write(b"0\r\n\r\n")
        except (asyncio.CancelledError, ConnectionError):
            return
        finally:
            self._task = None
            self._working = False
        self._current = None
        if not keep_alive:
            self._close()
        else:
            self._pump()

    async def _wait_writable(self) -> None:
        if self._write_paused and not self._closed:
            if self._drain is None:
                self._drain = asyncio.get_running_loop().create_future()
            await self._drain

    def _protocol_error(self, message: str) -> None:
        if self.transport is None or self._closed:
            return
        if self._current is None and not self._queue:
            resp = json_error(400, message)
            body = resp.body
            self.transport.write(_head(400, resp.headers, len(body), False, self.heads) + body)
            self._close()
        else:
            # answer the requests already queued, then this error, then close
            req = Request("", "", "", {}, bytearray(), False)
            req.error = message
            self._queue.append(req)
            self._eof = True
            if self.transport is not None:
                self.transport.pause_reading()

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    # ---- server shutdown ------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._current is not None or bool(self._queue) or self._in_message

    def shutdown(self) -> None:
        """Close now if idle; otherwise finish the current request and close (no new ones)."""
        if not self.busy:
            self._close()
        else:
            self._eof = True

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


__all__ = ["HttpConnection", "Request", "Response", "StreamingResponse", "json_error", "TEXT_PLAIN", "APPLICATION_JSON"]
