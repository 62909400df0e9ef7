"""A server-side HTTP/2 connection (RFC 9113) for gRPC, on ``asyncio.Protocol``.

Why not grpcio's server: its Python server pays ~190 µs of polling-thread and worker-thread hand-offs
per unary call before any work (measured in benchmarks/README.md), more than the whole request costs
here. This connection parses frames straight from the socket on the event loop, hands whole gRPC
messages to a :class:`CallHandler`, and writes every frame produced during one loop pass with one
``transport.write``. HPACK decoding uses the ``hpack`` package; a header block seen before is served
from a cache (gRPC clients repeat the same indexed headers on every call), and responses use only
literal-without-indexing fields, so the encoder keeps no state.

Scope: what gRPC needs, done properly: the preface, SETTINGS, PING, GOAWAY, RST_STREAM, HEADERS with
CONTINUATION and padding, DATA with padding, flow control both ways (inbound windows replenished in
bulk; outbound data queued per stream until the peer's windows allow it, split at its
MAX_FRAME_SIZE). No server push, no priorities (ignored, as RFC 9113 allows).
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from typing import Any, Protocol

import hpack

_log = logging.getLogger("tritonlite.grpc")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# error codes
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = 0x5, 0x6, 0x7, 0x8, 0x9

# settings
S_HEADER_TABLE_SIZE, S_ENABLE_PUSH, S_MAX_CONCURRENT_STREAMS, S_INITIAL_WINDOW_SIZE = 1, 2, 3, 4
S_MAX_FRAME_SIZE, S_MAX_HEADER_LIST_SIZE = 5, 6

DEFAULT_WINDOW = 65535
MAX_WINDOW = 2**31 - 1
#: what this server lets a peer send before it must wait for a WINDOW_UPDATE (per stream, and the connection)
RECV_WINDOW = 16 * 1024 * 1024
#: frames up to this size are accepted (the peer may send larger DATA frames: fewer frames to parse)
RECV_MAX_FRAME = 1024 * 1024
MAX_HEADER_LIST = 1024 * 1024
#: streams open at once per connection; more are refused (REFUSED_STREAM: the client may retry)
MAX_STREAMS = 4096
#: answered streams after which the pending output is written at once instead of at the end of the loop pass:
#: a client with many calls in flight gets answers (and sends its next calls) while the rest still run, so
#: its work and ours overlap instead of alternating (identity, 16 streams: 23k -> 29k calls/s on one core)
FLUSH_EVERY = 8
#: decoded header blocks remembered per connection
_HEADER_CACHE = 256

_frame_head = struct.Struct(">HBBBL")  # length (24 bits as 16+8), type, flags, stream id
_u32 = struct.Struct(">L")
_settings_item = struct.Struct(">HL")


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return _frame_head.pack(n >> 8, n & 0xFF, ftype, flags, stream_id) + payload


def frame_header(ftype: int, flags: int, stream_id: int, length: int) -> bytes:
    return _frame_head.pack(length >> 8, length & 0xFF, ftype, flags, stream_id)


# ---- HPACK, encoding side: literal header fields without indexing (RFC 7541 §6.2.2) -------------------
def _hpack_int(value: int, prefix_bits: int, first: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _hpack_string(s: bytes) -> bytes:
    return _hpack_int(len(s), 7, 0) + s


def literal(name: str, value: str | bytes) -> bytes:
    """One header field as a literal without indexing, new name, no Huffman coding."""
    v = value if isinstance(value, bytes) else value.encode("latin-1")
    return b"\x00" + _hpack_string(name.encode("ascii")) + _hpack_string(v)


class Stream:
    """One client-initiated stream; ``handler_state`` belongs to the :class:`CallHandler`."""

    __slots__ = ("id", "headers", "send_window", "recv_unacked", "outq", "closed_local", "closed_remote",
                 "handler_state", "reset")

    def __init__(self, stream_id: int, send_window: int) -> None:
        self.id = stream_id
        self.headers: dict[str, str] = {}
        self.send_window = send_window
        self.recv_unacked = 0
        #: queued output waiting for flow-control window: [payload bytes, end_stream] for DATA, or
        #: [header block frame bytes, None] for trailers
        self.outq: deque[list[Any]] = deque()
        self.closed_local = False
        self.closed_remote = False
        self.handler_state: Any = None
        self.reset = False


class CallHandler(Protocol):
    """What the connection calls; all on the event loop's thread."""

    def on_headers(self, conn: "H2Connection", stream: Stream) -> None: ...
    def on_data(self, conn: "H2Connection", stream: Stream, data: bytearray, end_stream: bool) -> None: ...
    def on_reset(self, conn: "H2Connection", stream: Stream) -> None: ...


class H2Connection(asyncio.Protocol):
    """One client connection. ``handler`` gets the streams' headers and data; it answers through
    :meth:`send_headers`, :meth:`send_data` and :meth:`send_trailers`."""

    def __init__(self, handler: CallHandler, registry: set["H2Connection"]) -> None:
        self.handler = handler
        self.registry = registry
        self.transport: asyncio.Transport | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._buf = bytearray()
        self._preface_ok = False
        self.streams: dict[int, Stream] = {}
        self._last_stream = 0
        self._decoder = hpack.Decoder()
        self._decoder.max_header_list_size = MAX_HEADER_LIST
        self._header_cache: dict[bytes, dict[str, str]] = {}
        self._table_mark: Any = None
        # the continuation of a header block in progress: (stream id, flags of the HEADERS frame, parts)
        self._continuing: tuple[int, int, list[bytes]] | None = None
        # peer's settings
        self.peer_initial_window = DEFAULT_WINDOW
        self.peer_max_frame = 16384
        self.send_window = DEFAULT_WINDOW  # connection-level window for what we send
        self._recv_unacked = 0  # DATA bytes received on the connection since our last WINDOW_UPDATE
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._ended = 0  # streams answered since the last flush
        self._blocked: dict[int, Stream] = {}  # streams with output waiting for window
        self.closing = False  # GOAWAY sent or received: no new streams
        self.closed = False
        self.paused = False

    # ---- asyncio.Protocol ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.loop = asyncio.get_running_loop()
        self.registry.add(self)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                import socket

                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # pragma: no cover
                pass
        settings = b"".join(_settings_item.pack(k, v) for k, v in (
            (S_ENABLE_PUSH, 0), (S_MAX_CONCURRENT_STREAMS, MAX_STREAMS), (S_INITIAL_WINDOW_SIZE, RECV_WINDOW),
            (S_MAX_FRAME_SIZE, RECV_MAX_FRAME), (S_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST)))
        self._write(frame(SETTINGS, 0, 0, settings) + frame(WINDOW_UPDATE, 0, 0, _u32.pack(RECV_WINDOW - DEFAULT_WINDOW)))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.registry.discard(self)
        streams, self.streams = list(self.streams.values()), {}
        self._blocked.clear()
        for stream in streams:
            if not stream.reset:
                stream.reset = True
                self._notify_reset(stream)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos = 0
        if not self._preface_ok:
            if len(buf) < len(PREFACE):
                if not PREFACE.startswith(bytes(buf)):
                    self._abort_connection(PROTOCOL_ERROR, "bad connection preface")
                return
            if buf[: len(PREFACE)] != PREFACE:
                self._abort_connection(PROTOCOL_ERROR, "bad connection preface")
                return
            self._preface_ok = True
            pos = len(PREFACE)
        n = len(buf)
        try:
            while n - pos >= 9:
                hi, lo, ftype, flags, sid = _frame_head.unpack_from(buf, pos)
                length = (hi << 8) | lo
                end = pos + 9 + length
                if length > RECV_MAX_FRAME:
                    self._abort_connection(FRAME_SIZE_ERROR, f"frame of {length} bytes exceeds SETTINGS_MAX_FRAME_SIZE")
                    return
                if end > n:
                    break
                # a copy, not a view: nothing may pin ``buf`` (it is trimmed below); frames are small or
                # are copied into the call's message buffer anyway
                self._frame(ftype, flags, sid & 0x7FFFFFFF, buf[pos + 9 : end])
                pos = end
                if self.closed:
                    return
        except _ConnectionError as exc:
            self._abort_connection(exc.code, exc.reason)
            return
        if pos:
            del buf[:pos]
        self._maybe_ack_connection_window()

    # ---- frames --------------------------------------------------------------------------------------
    def _frame(self, ftype: int, flags: int, sid: int, payload: bytearray) -> None:
        if self._continuing is not None and ftype != CONTINUATION:
            raise _ConnectionError(PROTOCOL_ERROR, "expected a CONTINUATION frame")
        if ftype == DATA:
            self._on_data(flags, sid, payload)
        elif ftype == HEADERS:
            self._on_headers(flags, sid, payload)
        elif ftype == CONTINUATION:
            self._on_continuation(flags, sid, payload)
        elif ftype == SETTINGS:
            self._on_settings(flags, sid, payload)
        elif ftype == WINDOW_UPDATE:
            self._on_window_update(sid, payload)
        elif ftype == PING:
            if sid != 0 or len(payload) != 8:
                raise _ConnectionError(PROTOCOL_ERROR if sid else FRAME_SIZE_ERROR, "bad PING frame")
            if not flags & ACK:
                self._write(frame(PING, ACK, 0, bytes(payload)))
        elif ftype == RST_STREAM:
            if sid == 0 or len(payload) != 4:
                raise _ConnectionError(PROTOCOL_ERROR, "bad RST_STREAM frame")
            stream = self.streams.pop(sid, None)
            if stream is not None:
                self._blocked.pop(sid, None)
                stream.reset = True
                stream.outq.clear()
                self._notify_reset(stream)
        elif ftype == GOAWAY:
            self.closing = True
            if not self.streams:
                self._close_transport()
        elif ftype == PRIORITY:
            if sid == 0:
                raise _ConnectionError(PROTOCOL_ERROR, "PRIORITY on stream 0")
        elif ftype == PUSH_PROMISE:
            raise _ConnectionError(PROTOCOL_ERROR, "a client must not send PUSH_PROMISE")
        # unknown frame types are ignored (RFC 9113 §4.1)

    def _on_settings(self, flags: int, sid: int, payload: bytearray) -> None:
        if sid != 0:
            raise _ConnectionError(PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & ACK:
            return
        if len(payload) % 6:
            raise _ConnectionError(FRAME_SIZE_ERROR, "SETTINGS length is not a multiple of 6")
        for off in range(0, len(payload), 6):
            key, value = _settings_item.unpack_from(payload, off)
            if key == S_INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise _ConnectionError(FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE too large")
                delta = value - self.peer_initial_window
                self.peer_initial_window = value
                for stream in self.streams.values():
                    stream.send_window += delta
            elif key == S_MAX_FRAME_SIZE:
                if not 16384 <= value <= 16777215:
                    raise _ConnectionError(PROTOCOL_ERROR, "bad SETTINGS_MAX_FRAME_SIZE")
                self.peer_max_frame = value
            elif key == S_ENABLE_PUSH and value > 1:
                raise _ConnectionError(PROTOCOL_ERROR, "bad SETTINGS_ENABLE_PUSH")
        self._write(frame(SETTINGS, ACK, 0))
        if self._blocked:
            self._pump_blocked()

    def _on_window_update(self, sid: int, payload: bytearray) -> None:
        if len(payload) != 4:
            raise _ConnectionError(FRAME_SIZE_ERROR, "WINDOW_UPDATE length is not 4")
        inc = _u32.unpack_from(payload)[0] & 0x7FFFFFFF
        if sid == 0:
            if inc == 0:
                raise _ConnectionError(PROTOCOL_ERROR, "WINDOW_UPDATE of 0 on the connection")
            self.send_window += inc
            if self.send_window > MAX_WINDOW:
                raise _ConnectionError(FLOW_CONTROL_ERROR, "connection window overflow")
            if self._blocked:
                self._pump_blocked()
            return
        stream = self.streams.get(sid)
        if stream is None:
            return
        if inc == 0:
            self._reset_stream(stream, PROTOCOL_ERROR)
            return
        stream.send_window += inc
        if stream.send_window > MAX_WINDOW:
            self._reset_stream(stream, FLOW_CONTROL_ERROR)
            return
        if stream.outq:
            self._pump(stream)

    def _on_headers(self, flags: int, sid: int, payload: bytearray) -> None:
        if sid == 0 or not sid & 1:
            raise _ConnectionError(PROTOCOL_ERROR, "HEADERS on stream 0 or an even stream")
        start, end = 0, len(payload)
        if flags & PADDED:
            if not end:
                raise _ConnectionError(PROTOCOL_ERROR, "bad padding")
            pad = payload[0]
            start = 1
            end -= pad
        if flags & PRIORITY_FLAG:
            start += 5
        if end < start:
            raise _ConnectionError(PROTOCOL_ERROR, "padding exceeds the frame")
        block = bytes(payload[start:end])
        if flags & END_HEADERS:
            self._headers_complete(sid, flags, block)
        else:
            self._continuing = (sid, flags, [block])

    def _on_continuation(self, flags: int, sid: int, payload: bytearray) -> None:
        cont = self._continuing
        if cont is None or cont[0] != sid:
            raise _ConnectionError(PROTOCOL_ERROR, "unexpected CONTINUATION frame")
        cont[2].append(bytes(payload))
        if sum(len(p) for p in cont[2]) > MAX_HEADER_LIST:
            raise _ConnectionError(PROTOCOL_ERROR, "header block too large")
        if flags & END_HEADERS:
            self._continuing = None
            self._headers_complete(sid, cont[1], b"".join(cont[2]))

    def _decode_block(self, block: bytes) -> dict[str, str]:
        cached = self._header_cache.get(block)
        if cached is not None:
            return cached
        decoder = self._decoder
        table = decoder.header_table
        try:
            fields = decoder.decode(block)
        except Exception as exc:  # hpack's errors: the connection's compression state is lost
            raise _ConnectionError(COMPRESSION_ERROR, f"header block: {exc}") from None
        entries = table.dynamic_entries
        mark = (len(entries), id(entries[0]) if entries else 0, table.maxsize)
        headers: dict[str, str] = {}
        for name, value in fields:
            name = name if isinstance(name, str) else name.decode("latin-1")
            value = value if isinstance(value, str) else value.decode("latin-1")
            if name in headers and not name.startswith(":"):
                headers[name] = headers[name] + "," + value
            else:
                headers[name] = value
        if mark != self._table_mark:  # the block changed the dynamic table: indexes mean other things now
            self._table_mark = mark
            self._header_cache.clear()
        elif len(self._header_cache) < _HEADER_CACHE:
            self._header_cache[block] = headers
        return headers

    def _headers_complete(self, sid: int, flags: int, block: bytes) -> None:
        headers = self._decode_block(block)  # always decode: the HPACK state must follow every block
        stream = self.streams.get(sid)
        if stream is not None:  # trailers from the client (rare for gRPC): end of its stream
            if flags & END_STREAM:
                stream.closed_remote = True
                self.handler.on_data(self, stream, bytearray(), True)
            return
        if sid <= self._last_stream:
            raise _ConnectionError(STREAM_CLOSED, "HEADERS on a closed stream")
        self._last_stream = sid
        if self.closing:
            self._write(frame(RST_STREAM, 0, sid, _u32.pack(REFUSED_STREAM)))
            return
        if len(self.streams) >= MAX_STREAMS:
            self._write(frame(RST_STREAM, 0, sid, _u32.pack(REFUSED_STREAM)))
            return
        stream = Stream(sid, self.peer_initial_window)
        stream.headers = headers
        self.streams[sid] = stream
        self.handler.on_headers(self, stream)
        if flags & END_STREAM and not stream.reset:
            stream.closed_remote = True
            self.handler.on_data(self, stream, bytearray(), True)

    def _on_data(self, flags: int, sid: int, payload: bytearray) -> None:
        if sid == 0:
            raise _ConnectionError(PROTOCOL_ERROR, "DATA on stream 0")
        size = len(payload)
        self._recv_unacked += size
        start, end = 0, size
        if flags & PADDED:
            if not size:
                raise _ConnectionError(PROTOCOL_ERROR, "bad padding")
            start = 1
            end -= payload[0]
            if end < start:
                raise _ConnectionError(PROTOCOL_ERROR, "padding exceeds the frame")
        stream = self.streams.get(sid)
        if stream is None or stream.closed_remote:
            if sid > self._last_stream:
                raise _ConnectionError(PROTOCOL_ERROR, "DATA on an idle stream")
            return  # a stream we reset or finished: its bytes still counted for the connection window
        stream.recv_unacked += size
        end_stream = bool(flags & END_STREAM)
        if end_stream:
            stream.closed_remote = True
        elif stream.recv_unacked >= RECV_WINDOW // 2:
            self._write(frame(WINDOW_UPDATE, 0, sid, _u32.pack(stream.recv_unacked)))
            stream.recv_unacked = 0
        self.handler.on_data(self, stream, payload[start:end], end_stream)

    def _maybe_ack_connection_window(self) -> None:
        if self._recv_unacked >= RECV_WINDOW // 2:
            self._write(frame(WINDOW_UPDATE, 0, 0, _u32.pack(self._recv_unacked)))
            self._recv_unacked = 0

    # ---- sending -------------------------------------------------------------------------------------
    def send_headers(self, stream: Stream, block: bytes, end_stream: bool = False) -> None:
        """A HEADERS frame (block ≤ the peer's max frame: ours are a few dozen bytes)."""
        if stream.reset or self.closed:
            return
        flags = END_HEADERS | (END_STREAM if end_stream else 0)
        self._write(frame_header(HEADERS, flags, stream.id, len(block)) + block)
        if end_stream:
            self._close_local(stream)

    def send_data(self, stream: Stream, data: bytes, end_stream: bool = False) -> None:
        """DATA, split at the peer's frame size and held back while the flow-control windows are short."""
        if stream.reset or self.closed:
            return
        if stream.outq:
            stream.outq.append([data, end_stream])
            return
        n = len(data)
        if n <= self.peer_max_frame and n <= stream.send_window and n <= self.send_window:  # the common case
            stream.send_window -= n
            self.send_window -= n
            self._write(frame_header(DATA, END_STREAM if end_stream else 0, stream.id, n) + data)
            if end_stream:
                self._close_local(stream)
            return
        stream.outq.append([data, end_stream])
        self._pump(stream)

    def send_unary_response(self, stream: Stream, headers: bytes, data: bytes, trailers: bytes) -> None:
        """HEADERS, one DATA and the trailing HEADERS of a whole answer, as one write when the windows allow."""
        if stream.reset or self.closed:
            return
        n = len(data)
        if stream.outq or n > self.peer_max_frame or n > stream.send_window or n > self.send_window:
            self.send_headers(stream, headers)
            self.send_data(stream, data)
            self.send_trailers(stream, trailers)
            return
        stream.send_window -= n
        self.send_window -= n
        sid = stream.id
        self._write(b"".join((frame_header(HEADERS, END_HEADERS, sid, len(headers)), headers,
                              frame_header(DATA, 0, sid, n), data,
                              frame_header(HEADERS, END_HEADERS | END_STREAM, sid, len(trailers)), trailers)))
        self._close_local(stream)

    def send_trailers(self, stream: Stream, block: bytes) -> None:
        """The trailing HEADERS (END_STREAM); queued behind data still waiting for window."""
        if stream.reset or self.closed:
            return
        if stream.outq:
            stream.outq.append([block, None])
            return
        self.send_headers(stream, block, end_stream=True)

    def _pump(self, stream: Stream) -> None:
        q = stream.outq
        while q:
            item = q[0]
            data, end_stream = item
            if end_stream is None:  # trailers
                q.popleft()
                self.send_headers(stream, data, end_stream=True)
                break
            allowed = min(stream.send_window, self.send_window, self.peer_max_frame)
            if allowed <= 0 and data:
                self._blocked[stream.id] = stream
                return
            chunk = data[:allowed] if len(data) > allowed else data
            rest = data[len(chunk):]
            last = not rest
            stream.send_window -= len(chunk)
            self.send_window -= len(chunk)
            self._write(frame_header(DATA, END_STREAM if (last and end_stream) else 0, stream.id, len(chunk)) + bytes(chunk))
            if last:
                q.popleft()
                if end_stream:
                    self._close_local(stream)
            else:
                item[0] = rest
        self._blocked.pop(stream.id, None)

    def _pump_blocked(self) -> None:
        for stream in list(self._blocked.values()):
            if self.send_window <= 0:
                return
            self._blocked.pop(stream.id, None)
            self._pump(stream)

    def _close_local(self, stream: Stream) -> None:
        stream.closed_local = True
        self._ended += 1
        if self._ended >= FLUSH_EVERY:  # let the client see a few answers (and send more) while the rest run
            self._flush()
        self.streams.pop(stream.id, None)
        self._blocked.pop(stream.id, None)
        if not stream.closed_remote:
            # the call is over while the client is still sending (an early error): stop its upload
            self._write(frame(RST_STREAM, 0, stream.id, _u32.pack(NO_ERROR)))
        if self.closing and not self.streams:
            self._close_transport()

    def reset_stream(self, stream: Stream, code: int = CANCEL) -> None:
        """End a stream abruptly (RST_STREAM) from the handler's side."""
        self._reset_stream(stream, code)

    def _reset_stream(self, stream: Stream, code: int) -> None:
        if stream.reset:
            return
        stream.reset = True
        stream.outq.clear()
        self.streams.pop(stream.id, None)
        self._blocked.pop(stream.id, None)
        self._write(frame(RST_STREAM, 0, stream.id, _u32.pack(code)))
        self._notify_reset(stream)

    def _notify_reset(self, stream: Stream) -> None:
        try:
            self.handler.on_reset(self, stream)
        except Exception:  # pragma: no cover - a handler bug must not break the connection
            _log.exception("gRPC stream reset handling failed")

    def goaway(self, code: int = NO_ERROR, reason: str = "") -> None:
        """Refuse new streams; the connection closes once the open ones finish."""
        if self.closed:
            return
        self.closing = True
        self._write(frame(GOAWAY, 0, 0, _u32.pack(self._last_stream) + _u32.pack(code) + reason.encode()[:256]))
        if not self.streams:
            self._close_transport()

    def _write(self, data: bytes) -> None:
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            assert self.loop is not None
            self.loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self._flush()

    def _flush(self) -> None:
        self._ended = 0
        out, self._out = self._out, []
        if out and not self.closed and self.transport is not None:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])

    def _close_transport(self) -> None:
        if self.transport is not None and not self.closed:
            self._flush()
            self.transport.close()

    def _abort_connection(self, code: int, reason: str) -> None:
        _log.debug("gRPC connection error %d: %s", code, reason)
        self.goaway(code, reason)
        self._flush()
        if self.transport is not None:
            self.transport.close()
        self.closed = True

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class _ConnectionError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


__all__ = ["H2Connection", "Stream", "CallHandler", "literal", "frame"]
