"""The wire between an isolated Python model's parent (the engine) and its child (the stub).

Two pieces, used by both sides:

* :class:`Channel` — framed messages over a Unix stream socket. A frame is a 4-byte length and a
  pickled ``(kind, ident, payload)`` tuple of plain builtins (never arrays, never tritonlite objects,
  so a child running another Python can read it). A frame may carry one file descriptor
  (``SCM_RIGHTS``): the shared memory holding the frame's tensors.
* :class:`TensorWriter` / :class:`TensorReader` — tensors through shared memory, two ways:

  - large tensors: the sender writes every tensor of a frame into one fresh anonymous memory file
    (``memfd``), sends its descriptor and closes it; the receiver maps it and wraps numpy arrays around
    the mapping (no copy). The mapping lives as long as some array still points into it, so a model
    may keep its inputs and a client its outputs.
  - small tensors of the execute round trip (the common case): a persistent per-child
    :class:`Arena` mapped by both sides, one half per direction. The sender copies into its half, the
    receiver copies out before answering; only one execute is in flight per instance, so a half is
    free again when the answer (or the next execute) arrives. No descriptor passing, no new mapping.

  Nothing is named, so nothing is left in ``/dev/shm`` when either side dies.
"""

from __future__ import annotations

import mmap
import os
import pickle
import socket
import struct
import tempfile
import threading
from typing import Any, Iterable, Sequence

import numpy as np

from tritonlite.datatypes import deserialize_bytes_tensor, serialize_bytes_tensor
from tritonlite.errors import InternalError, TritonLiteError, error_from_code

_HEADER = struct.Struct("<I")
_PICKLE_PROTOCOL = 4  # readable by every Python a conda-pack env is likely to hold
_ALIGN = 64
_BYTES = "BYTES"

#: a tensor's place in a frame's shared memory: (dtype str or "BYTES", shape, offset, nbytes)
TensorSpec = tuple


class ChannelClosed(EOFError):
    """The peer closed its end (exited, crashed or was killed)."""


class Channel:
    """Framed, thread-safe sends and single-reader receives over one connected Unix socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._send_lock = threading.Lock()

    def send(self, kind: str, ident: int = 0, payload: Any = None, fd: int | None = None) -> None:
        data = pickle.dumps((kind, ident, payload), protocol=_PICKLE_PROTOCOL)
        frame = _HEADER.pack(len(data)) + data
        with self._send_lock:
            try:
                if fd is None:
                    self.sock.sendall(frame)
                else:
                    sent = socket.send_fds(self.sock, [frame], [fd])
                    if sent < len(frame):
                        self.sock.sendall(frame[sent:])
            except OSError as exc:
                raise ChannelClosed(str(exc)) from exc

    def recv(self) -> tuple[str, int, Any, int | None]:
        """The next frame as ``(kind, ident, payload, fd)``; raises :class:`ChannelClosed` at end of stream."""
        fds: list[int] = []
        head = b""
        while len(head) < _HEADER.size:
            try:
                chunk, got, _, _ = socket.recv_fds(self.sock, _HEADER.size - len(head), 4)
            except OSError as exc:
                raise ChannelClosed(str(exc)) from exc
            fds.extend(got)
            if not chunk:
                raise ChannelClosed("end of stream")
            head += chunk
        (length,) = _HEADER.unpack(head)
        body = bytearray(length)
        view = memoryview(body)
        pos = 0
        while pos < length:
            try:
                n = self.sock.recv_into(view[pos:], length - pos)
            except OSError as exc:
                raise ChannelClosed(str(exc)) from exc
            if n == 0:
                raise ChannelClosed("end of stream inside a frame")
            pos += n
        for extra in fds[1:]:
            os.close(extra)
        kind, ident, payload = pickle.loads(body)
        return kind, ident, payload, (fds[0] if fds else None)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# --------------------------------------------------------------------------- shared-memory tensors
def _anonymous_file() -> int:
    if hasattr(os, "memfd_create"):
        return os.memfd_create("tritonlite-tensors", os.MFD_CLOEXEC)
    handle = tempfile.TemporaryFile()  # unlinked at once; still shareable by descriptor
    fd = os.dup(handle.fileno())
    handle.close()
    return fd


#: bytes of each direction's half of a child's arena
ARENA_HALF_BYTES = 1 << 20


class Arena:
    """A shared mapping of two halves: ``outgoing`` is written by this side, ``incoming`` by the peer.

    The mapping is released with the object (no explicit close: a half may still be in use by a
    thread that has not yet noticed the child died).
    """

    def __init__(self, fd: int, is_parent: bool) -> None:
        self.map = mmap.mmap(fd, 2 * ARENA_HALF_BYTES)
        first, second = memoryview(self.map)[:ARENA_HALF_BYTES], memoryview(self.map)[ARENA_HALF_BYTES:]
        self.outgoing, self.incoming = (first, second) if is_parent else (second, first)

    @staticmethod
    def new_fd() -> int:
        """A fresh memory file sized for an arena; the parent maps it and sends it to the child once."""
        fd = _anonymous_file()
        os.ftruncate(fd, 2 * ARENA_HALF_BYTES)
        return fd


class TensorWriter:
    """Collects the tensors of one frame; :meth:`finish` writes them to an arena half or a memory file."""

    def __init__(self) -> None:
        self._buffers: list[tuple[int, Any]] = []
        self._size = 0

    def add(self, array: np.ndarray) -> TensorSpec:
        if array.dtype == np.object_ or array.dtype.kind in ("S", "U"):
            data: Any = serialize_bytes_tensor(array)
            dtype = _BYTES
            nbytes = len(data)
        else:
            if not array.flags.c_contiguous:
                array = np.ascontiguousarray(array)
            data = array
            dtype = array.dtype.str
            nbytes = array.nbytes
        offset = self._size
        if nbytes:
            self._buffers.append((offset, data))
            self._size = offset + (nbytes + _ALIGN - 1) // _ALIGN * _ALIGN
        return (dtype, tuple(int(d) for d in array.shape), offset, nbytes)

    def add_named(self, arrays: Iterable[tuple[str, np.ndarray]]) -> list[tuple[str, TensorSpec]]:
        return [(name, self.add(np.asarray(arr))) for name, arr in arrays]

    def finish_into(self, arena: Arena | None) -> tuple[int | None, bool]:
        """``(fd, False)`` for a memory file, ``(None, True)`` when everything fit into ``arena.outgoing``."""
        if arena is not None and self._buffers and self._size <= ARENA_HALF_BYTES:
            out = arena.outgoing
            for offset, data in self._buffers:
                view = memoryview(data).cast("B")
                out[offset: offset + len(view)] = view
            self._buffers.clear()
            return None, True
        return self.finish(), False

    def finish(self) -> int | None:
        """The descriptor to send (the caller closes it after sending), or None when no byte was added."""
        if not self._buffers:
            return None
        fd = _anonymous_file()
        try:
            for offset, data in self._buffers:
                view = memoryview(data).cast("B")
                done = 0
                while done < len(view):
                    done += os.pwrite(fd, view[done:], offset + done)
        except BaseException:
            os.close(fd)
            raise
        self._buffers.clear()
        return fd


class TensorReader:
    """The receiving side of one frame's shared memory: views of a memory file, or copies out of an arena."""

    def __init__(self, fd: int | None, arena: Arena | None = None) -> None:
        self._map: Any = None
        self._copy = arena is not None
        if arena is not None:
            self._map = arena.incoming
        elif fd is not None:
            try:
                self._map = mmap.mmap(fd, 0)
            finally:
                os.close(fd)

    def get(self, spec: TensorSpec) -> np.ndarray:
        dtype, shape, offset, nbytes = spec
        if dtype == _BYTES:
            if nbytes == 0:
                return np.empty(shape, dtype=np.object_)
            assert self._map is not None
            return deserialize_bytes_tensor(memoryview(self._map)[offset: offset + nbytes]).reshape(shape)
        np_dtype = np.dtype(dtype)
        if nbytes == 0:
            return np.empty(shape, dtype=np_dtype)
        assert self._map is not None
        array = np.frombuffer(self._map, dtype=np_dtype, count=nbytes // np_dtype.itemsize, offset=offset).reshape(shape)
        return array.copy() if self._copy else array

    def get_named(self, specs: Sequence[tuple[str, TensorSpec]]) -> dict[str, np.ndarray]:
        return {name: self.get(spec) for name, spec in specs}


# --------------------------------------------------------------------------- errors and results
def encode_error(error: BaseException) -> tuple[int, str]:
    """``(code, message)`` of an error; anything that is not a TritonLiteError is INTERNAL."""
    if isinstance(error, TritonLiteError):
        return int(error.code), error.message
    return int(InternalError("").code), f"{type(error).__name__}: {error}"


def decode_error(encoded: tuple[int, str]) -> TritonLiteError:
    return error_from_code(encoded[0], encoded[1])


def encode_result(writer: TensorWriter, outputs: dict[str, np.ndarray], parameters: dict[str, Any],
                  error: BaseException | None) -> dict[str, Any]:
    """A result (outputs through ``writer``, parameters, optional error) as a plain dict."""
    return {
        "outputs": writer.add_named(outputs.items()) if error is None else [],
        "parameters": dict(parameters or {}),
        "error": encode_error(error) if error is not None else None,
    }


__all__ = [
    "ARENA_HALF_BYTES", "Arena", "Channel", "ChannelClosed", "TensorReader", "TensorSpec", "TensorWriter",
    "decode_error", "encode_error", "encode_result",
]
