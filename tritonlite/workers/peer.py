"""The private link between worker processes, and the engine view the doors of a worker get.

Design: SO_REUSEPORT balances *connections*, so a sequence's requests can reach any worker. Every
correlation id has one owner worker (``owner_of``: the id modulo the worker count, CRC32 for string
ids). A worker that receives a request for a sequence-batched model whose owner is another worker
forwards it over that owner's Unix socket (:class:`PeerListener`) and relays the responses; all
other requests run locally. Forwarding keeps the request order of a sequence: each correlation id
maps to one FIFO lane per peer, and a lane sends its next request only after the previous one's
final response.

The same socket answers ``metrics``, ``statistics``, ``load`` and ``unload``, so whichever worker a
client reaches sums the metrics and statistics of all of them and applies model control to all; and
``shm`` and ``settings``, so a client shared memory region registered (or log and trace settings
changed) through one connection holds on every worker, as it does on one Triton server.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import zlib
from multiprocessing.connection import Client, Connection, Listener
from typing import Any, Callable

from tritonlite import errors
from tritonlite.errors import TritonLiteError, UnavailableError
from tritonlite.futures import InferFuture
from tritonlite.protocol.settings import settings_for
from tritonlite.protocol.shm import registry_for
from tritonlite.request import InferenceRequest, InferResult
from tritonlite.workers.aggregate import merge_metrics, merge_statistics

_log = logging.getLogger("tritonlite.workers")

#: forwarding lanes per peer: sequences on different lanes run concurrently
LANES = 8
CONNECT_TIMEOUT_S = 10.0


def socket_path(directory: str, index: int) -> str:
    return os.path.join(directory, f"worker-{index}.sock")


def owner_of(correlation_id: int | str, workers: int) -> int:
    """The worker that runs every request of sequence ``correlation_id``."""
    if isinstance(correlation_id, str):
        return zlib.crc32(correlation_id.encode()) % workers
    return int(correlation_id) % workers


def _pack_error(exc: BaseException) -> tuple[str, str]:
    name = type(exc).__name__ if isinstance(exc, TritonLiteError) else "InternalError"
    return name, str(exc)


def _unpack_error(packed: tuple[str, str] | None) -> TritonLiteError | None:
    if packed is None:
        return None
    cls = getattr(errors, packed[0], errors.InternalError)
    if not (isinstance(cls, type) and issubclass(cls, TritonLiteError)):
        cls = errors.InternalError
    return cls(packed[1])


def _slim(request: InferenceRequest) -> dict[str, Any]:
    """The fields a request needs to be rebuilt in another process (numpy inputs pickle by value)."""
    return {
        "model_name": request.model_name, "inputs": {k: v for k, v in request.inputs.items()},
        "requested_outputs": request.requested_outputs, "model_version": request.model_version, "id": request.id,
        "parameters": dict(request.parameters), "priority": request.priority, "timeout_us": request.timeout_us,
        "correlation_id": request.correlation_id, "flags": request.flags,
    }


def _connect(path: str, authkey: bytes) -> Connection:
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while True:
        try:
            return Client(path, family="AF_UNIX", authkey=authkey)
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                raise UnavailableError(f"worker socket {path} is not answering") from None
            time.sleep(0.05)


class PeerListener:
    """Serves one worker's engine to the other workers over ``socket_path(directory, index)``."""

    def __init__(self, engine: Any, path: str, authkey: bytes) -> None:
        self.engine = engine
        self.path = path
        self._listener = Listener(path, family="AF_UNIX", authkey=authkey)
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="tritonlite.workers.listener", daemon=True)

    def start(self) -> "PeerListener":
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed = True
        try:
            self._listener.close()
        except OSError:
            pass

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn = self._listener.accept()
            except (OSError, EOFError):
                if self._closed:
                    return
                continue
            threading.Thread(target=self._serve, args=(conn,), name="tritonlite.workers.peer", daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        try:
            while True:
                message = conn.recv()
                kind = message[0]
                if kind == "infer":
                    self._infer(conn, message[1])
                    continue
                try:
                    conn.send(("ok", self._control(kind, *message[1:])))
                except TritonLiteError as exc:
                    conn.send(("error", _pack_error(exc)))
        except (EOFError, OSError):
            pass
        finally:
            conn.close()

    def _control(self, kind: str, *args: Any) -> Any:
        if kind == "metrics":
            return self.engine.metrics()
        if kind == "statistics":
            return self.engine.model_statistics(*args)
        if kind == "load":
            return self.engine.load_model(*args)
        if kind == "unload":
            return self.engine.unload_model(*args)
        if kind == "shm":
            return registry_for(self.engine).apply_local(*args)
        if kind == "settings":
            return settings_for(self.engine).apply_local(*args)
        raise errors.InvalidArgumentError(f"unknown worker request '{kind}'")

    def _infer(self, conn: Connection, fields: dict[str, Any]) -> None:
        answers: queue.SimpleQueue = queue.SimpleQueue()
        request = InferenceRequest(**fields)
        self.engine._submit_with_callback(request, lambda result, error, final: answers.put((result, error, final)))
        while True:
            result, error, final = answers.get()
            conn.send((result, None if error is None else _pack_error(error), final))
            if final:
                return


class _Lane:
    """One FIFO of forwarded requests to one peer, over one connection."""

    def __init__(self, path: str, authkey: bytes, name: str) -> None:
        self.path, self.authkey = path, authkey
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.conn: Connection | None = None
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            fields, on_response = job
            try:
                if self.conn is None:
                    self.conn = _connect(self.path, self.authkey)
                self.conn.send(("infer", fields))
                while True:
                    result, error, final = self.conn.recv()
                    on_response(result, _unpack_error(error), final)
                    if final:
                        break
            except (OSError, EOFError, TritonLiteError) as exc:
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                on_response(None, UnavailableError(f"the worker owning this sequence is not answering: {exc}"), True)


class WorkerEngine:
    """The engine as one worker's doors see it: local, except sequences owned by another worker and
    the answers that must cover every worker. Everything else is the local engine's own attribute."""

    def __init__(self, engine: Any, index: int, workers: int, directory: str, authkey: bytes) -> None:
        self._engine = engine
        self.worker_index = index
        self.worker_count = workers
        self._directory = directory
        self._authkey = authkey
        self._lanes: dict[tuple[int, int], _Lane] = {}
        self._lanes_lock = threading.Lock()
        # client shared memory and log/trace settings changed through one worker hold on every worker
        registry_for(engine).fan_out = lambda *change: self._ask_peers("shm", *change)
        settings_for(engine).fan_out = lambda *change: self._ask_peers("settings", *change)

    @property
    def local_engine(self) -> Any:
        """This worker's own engine (its shared memory registry and settings are the ones the doors use)."""
        return self._engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    # ---- sequence affinity -----------------------------------------------------------------------------
    def _remote_owner(self, request: InferenceRequest) -> int | None:
        if not request.correlation_id:
            return None
        try:
            mv = self._engine._loaded_version(request.model_name, request.model_version)
        except TritonLiteError:
            return None  # the local engine answers with the right error
        if not mv.config.HasField("sequence_batching"):
            return None
        owner = owner_of(request.correlation_id, self.worker_count)
        return None if owner == self.worker_index else owner

    def _forward(self, owner: int, request: InferenceRequest, on_response: Callable[..., None]) -> None:
        lane_no = owner_of(request.correlation_id, self.worker_count * LANES) // self.worker_count % LANES
        key = (owner, lane_no)
        with self._lanes_lock:
            lane = self._lanes.get(key)
            if lane is None:
                lane = self._lanes[key] = _Lane(socket_path(self._directory, owner), self._authkey,
                                                f"tritonlite.workers.lane.{owner}.{lane_no}")
        lane.jobs.put((_slim(request), on_response))

    def _submit_request(self, request: InferenceRequest, inline: bool = False) -> InferFuture:
        owner = self._remote_owner(request)
        if owner is None:
            return self._engine._submit_request(request, inline)
        fut = InferFuture()
        fut.request = request

        def done(result: InferResult | None, error: TritonLiteError | None, final: bool) -> None:
            if final:
                fut.settle(result, error)

        self._forward(owner, request, done)
        return fut

    def _submit_unary(self, request: InferenceRequest, on_done: Callable[..., None], inline: bool = False) -> None:
        owner = self._remote_owner(request)
        if owner is None:
            self._engine._submit_unary(request, on_done, inline)
            return
        self._forward(owner, request, lambda result, error, final: on_done(result, error) if final else None)

    def _submit_unary_many(self, items: list[tuple[InferenceRequest, Callable[..., None]]], inline: bool = False) -> None:
        local = []
        for request, on_done in items:
            owner = self._remote_owner(request)
            if owner is None:
                local.append((request, on_done))
            else:
                self._forward(owner, request, lambda result, error, final, cb=on_done: cb(result, error) if final else None)
        if local:
            self._engine._submit_unary_many(local, inline)

    def _submit_with_callback(self, request: InferenceRequest, on_response: Callable[..., None]) -> None:
        owner = self._remote_owner(request)
        if owner is None:
            self._engine._submit_with_callback(request, on_response)
            return
        self._forward(owner, request, on_response)

    # ---- answers over every worker -------------------------------------------------------------------
    def _ask_peers(self, *message: Any) -> list[Any]:
        answers = []
        for i in range(self.worker_count):
            if i == self.worker_index:
                continue
            conn = _connect(socket_path(self._directory, i), self._authkey)
            try:
                conn.send(message)
                status, value = conn.recv()
            except (OSError, EOFError) as exc:
                raise UnavailableError(f"worker {i} is not answering: {exc}") from None
            finally:
                conn.close()
            if status == "error":
                raise _unpack_error(value)  # type: ignore[misc]
            answers.append(value)
        return answers

    def metrics(self) -> str:
        return merge_metrics([self._engine.metrics(), *self._ask_peers("metrics")])

    def model_statistics(self, name: str = "", version: str | int = "") -> dict[str, Any]:
        return merge_statistics([self._engine.model_statistics(name, version), *self._ask_peers("statistics", name, version)])

    def load_model(self, name: str, config: Any = None, files: Any = None) -> None:
        self._engine.load_model(name, config, files)
        self._ask_peers("load", name, config, files)

    def unload_model(self, name: str, unload_dependents: bool = False) -> None:
        self._engine.unload_model(name, unload_dependents)
        self._ask_peers("unload", name, unload_dependents)


__all__ = ["PeerListener", "WorkerEngine", "owner_of", "socket_path"]
