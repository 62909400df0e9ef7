"""``TritonIngress``: the application's entry behind Serve's HTTP and gRPC proxies, and its handle API.

It forwards each request to a replica (by correlation id for sequence requests, see
:mod:`tritonlite.ray.routing`), sends model control to every replica and keeps it in a control log
that replicas joining later replay before they take traffic, and merges every replica's metrics and
statistics.
A replica that dies, or does not answer in time, costs its callers a retryable error (HTTP 503,
gRPC UNAVAILABLE, :class:`~tritonlite.errors.UnavailableError`), never a hang.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import re
import zlib
from typing import Any, AsyncIterator, Awaitable, Mapping
from urllib.parse import unquote

import numpy as np
from ray.exceptions import RayTaskError

from tritonlite.ray.grpc_proxy import (RawMessage, control_model_name, infer_sequence, rpc_methods, statistics_response,
                                      statistics_target)
from tritonlite.ray.membership import membership
from tritonlite.ray.metrics import merge_replica_pages
from tritonlite.ray.routing import ROUTE_KWARG, replica_route, sequence_route
from tritonlite.workers.aggregate import merge_statistics

_log = logging.getLogger("tritonlite.ray")

RETRYABLE = "tritonlite replica unavailable, retry the request"
_REPO_CONTROL = re.compile(r"/v2/repository/models/([^/]+)/(load|unload)")
_INFER = re.compile(r"/v2/models/[^/]+(?:/versions/[0-9]+)?/infer")
_STATS = re.compile(r"/v2/models(?:/([^/]+)(?:/versions/([0-9]+))?)?/stats")
_GRPC_CONTROL = ("RepositoryModelLoad", "RepositoryModelUnload")
_WATCH_S = 0.25  # how often a call aimed at one replica checks that the replica is still there
_STREAM_WINDOW = 64  # requests of one ModelStreamInfer call in flight at once


class ReplicaGone(Exception):
    """The replica a call was aimed at left the application (died, or was scaled down)."""


def _sequence(path: str, headers: Mapping[str, str], body: bytes) -> tuple[Any, bool]:
    """(``sequence_id``, ``sequence_end``) of a KServe v2 infer request body; (None, False) if none."""
    if not _INFER.fullmatch(path):
        return None, False
    encoding = (headers.get("content-encoding") or "").strip().lower()
    try:
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        length = headers.get("inference-header-content-length")
        head = body[: int(length)] if length else body
        if b"sequence_id" not in head:
            return None, False
        params = json.loads(head).get("parameters", {})
        value, end = params.get("sequence_id"), params.get("sequence_end") is True
    except (ValueError, OSError, AttributeError, zlib.error):
        return None, False  # the replica answers the malformed body with the door's own 400
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None, False
    return value, end


def _error(status: int, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", "application/json")], json.dumps({"error": message}).encode()


def _grpc_status(code_name: str) -> Any:
    import grpc

    return grpc.StatusCode[code_name]


class TritonIngress:
    """HTTP entry (``/v2/...``, ``/metrics``), gRPC service and Python handle API of the application."""

    async def __init__(self, replicas: Any, control_timeout_s: float = 120.0, request_timeout_s: float = 300.0) -> None:
        self._replicas = replicas.options()  # starts the handle's router, which publishes the replica set
        self.control_timeout_s = float(control_timeout_s)
        self.request_timeout_s = float(request_timeout_s)
        self._members = membership(replicas.app_name, replicas.deployment_name)
        #: model name -> (version, replica method, args): the latest control call per model
        self._control: dict[str, tuple[int, str, tuple]] = {}
        self._version = 0
        self._syncing: asyncio.Task | None = None
        loop = asyncio.get_running_loop()
        self._members.set_listener(lambda: loop.call_soon_threadsafe(self._sync_soon))

    # ---- calls to replicas ---------------------------------------------------------------------------
    async def replica_ids(self, wait_s: float = 30.0) -> list[str]:
        """Unique ids of the replicas the router can deliver to (waits for the router's first update)."""
        deadline = asyncio.get_running_loop().time() + wait_s
        while (ids := self._members.routable()) is None and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        return list(ids or ())

    async def _call(self, method: str, *args: Any, route: str | None = None) -> Any:
        """One call to a replica (chosen by ``route``), bounded by the request timeout."""
        kwargs = {ROUTE_KWARG: route} if route is not None else {}
        response = getattr(self._replicas, method).remote(*args, **kwargs)
        try:
            return await asyncio.wait_for(_await(response), self.request_timeout_s)
        except asyncio.TimeoutError:
            response.cancel()
            raise

    async def _call_replica(self, unique_id: str, method: str, *args: Any) -> Any:
        """One call to replica ``unique_id``; raises :class:`ReplicaGone` as soon as it leaves."""
        response = getattr(self._replicas, method).remote(*args, **{ROUTE_KWARG: replica_route(unique_id)})
        task = asyncio.ensure_future(_await(response))
        deadline = asyncio.get_running_loop().time() + self.control_timeout_s
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=_WATCH_S)
                if done:
                    return task.result()
                if unique_id not in (self._members.routable() or ()):
                    raise ReplicaGone(unique_id)
                if asyncio.get_running_loop().time() > deadline:
                    raise asyncio.TimeoutError()
        finally:
            if not task.done():
                response.cancel()
                task.cancel()

    async def _each_replica(self, method: str, *args: Any) -> dict[str, Any]:
        """``{replica id: answer}`` of every synced replica; replicas that leave meanwhile are left out."""
        ids = [uid for uid in await self.replica_ids() if self._members.is_synced(uid)]
        answers = await asyncio.gather(*(self._call_replica(uid, method, *args) for uid in ids), return_exceptions=True)
        out: dict[str, Any] = {}
        for uid, answer in zip(ids, answers):
            if isinstance(answer, ReplicaGone):
                continue
            if isinstance(answer, BaseException):
                raise answer
            out[uid] = answer
        return out

    # ---- model control log ----------------------------------------------------------------------------
    async def _control_call(self, model: str | None, method: str, *args: Any,
                            succeeded: Any = lambda answer: True) -> dict[str, Any]:
        """Apply a control call to every replica; log it (when it worked somewhere) for later replicas."""
        # from now on a replica that joins must replay the log before it takes traffic
        self._members.set_control_version(self._version + 1)
        answers = await self._each_replica(method, *args)
        if model is not None and any(succeeded(a) for a in answers.values()):
            self._version += 1
            self._control[model] = (self._version, method, args)
        self._sync_soon()  # a replica that joined during the call missed it
        return answers

    def _sync_soon(self) -> None:
        if self._members.unsynced() and (self._syncing is None or self._syncing.done()):
            self._syncing = asyncio.ensure_future(self._sync_unsynced())

    async def _sync_unsynced(self) -> None:
        """Replay the control log on every replica that joined since; it takes traffic once synced."""
        while pending := self._members.unsynced():
            entries = sorted(self._control.values(), key=lambda e: e[0])
            version = self._version
            results = await asyncio.gather(*(self._call_replica(uid, "sync_control", entries) for uid in pending),
                                           return_exceptions=True)
            for uid, reached in zip(pending, results):
                if isinstance(reached, BaseException):
                    if not isinstance(reached, ReplicaGone):
                        _log.warning("replica %s did not take the control log: %r", uid, reached)
                elif reached >= version:
                    self._members.mark_synced(uid)
            if self._members.unsynced():
                await asyncio.sleep(0.5)

    async def _merged_statistics(self, name: str, version: str) -> dict[str, Any] | None:
        """Statistics summed over every replica; None when a replica refuses (an unknown model: one
        replica then answers the request itself, with the door's own error)."""
        try:
            answers = await self._each_replica("model_statistics", name, version)
        except RayTaskError:
            return None
        return merge_statistics(list(answers.values())) if answers else None

    # ---- HTTP -----------------------------------------------------------------------------------------
    async def __call__(self, request: Any) -> Any:
        from starlette.responses import Response

        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        path, root = request.url.path, request.scope.get("root_path") or ""
        if root and path.startswith(root):  # an application under a route prefix still sees /v2/...
            path = path[len(root):] or "/"
        status, out_headers, payload = await self.handle_http(request.method, path, request.url.query, headers, body)
        response = Response(payload, status_code=status)
        for key, value in out_headers:
            response.headers[key] = value
        return response

    async def handle_http(self, method: str, path: str, query: str, headers: dict[str, str],
                          body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        """One KServe v2 HTTP request: (status, headers, body)."""
        try:
            if path == "/metrics":
                if method != "GET":
                    return _error(405, "Method Not Allowed")
                text = await self.metrics()
                return 200, [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], text.encode()
            control = _REPO_CONTROL.fullmatch(path) if method == "POST" else None
            if control:
                answers = await self._control_call(control.group(1), "http_request", method, path, query, headers, body,
                                                   succeeded=lambda a: a[0] == 200)
                if not answers:
                    return _error(503, f"{RETRYABLE}: no running replica")
                failed = [a for a in answers.values() if a[0] != 200]
                return failed[0] if failed else next(iter(answers.values()))
            stats = _STATS.fullmatch(path) if method == "GET" else None
            if stats and (merged := await self._merged_statistics(unquote(stats.group(1) or ""), stats.group(2) or "")):
                return 200, [("Content-Type", "application/json")], json.dumps(
                    merged, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            seq, end = _sequence(path, headers, body)
            return await self._call("http_request", method, path, query, headers, body, route=sequence_route(seq, end))
        except Exception as exc:  # a replica died, Serve refused, or no answer in time: retryable, never a hang
            return _error(503, f"{RETRYABLE}: {_why(exc)}")

    # ---- gRPC (Serve's gRPC proxy, see tritonlite.ray.grpc_proxy) -------------------------------------
    async def _grpc_unary(self, method: str, request: bytes, grpc_context: Any) -> RawMessage:
        metadata = list(grpc_context.invocation_metadata()) if grpc_context is not None else []
        try:
            if method in _GRPC_CONTROL:
                answers = await self._control_call(control_model_name(method, request), "grpc_unary", method, request,
                                                   metadata, succeeded=lambda a: a[0] == "OK")
                if not answers:
                    raise ReplicaGone("no running replica")
                failed = [a for a in answers.values() if a[0] != "OK"]
                code, details, payload = failed[0] if failed else next(iter(answers.values()))
            elif method == "ModelStatistics" and (merged := await self._merged_statistics(*statistics_target(request))):
                code, details, payload = "OK", "", statistics_response(merged)
            else:
                route = sequence_route(*infer_sequence(request)) if method == "ModelInfer" else None
                code, details, payload = await self._call("grpc_unary", method, request, metadata, route=route)
        except Exception as exc:  # noqa: BLE001 - see handle_http
            code, details, payload = "UNAVAILABLE", f"{RETRYABLE}: {_why(exc)}", b""
        if code != "OK" and grpc_context is not None:
            grpc_context.set_code(_grpc_status(code))
            grpc_context.set_details(details)
        return RawMessage(payload)

    async def ModelStreamInfer(self, requests: Any, grpc_context: Any = None) -> AsyncIterator[RawMessage]:  # noqa: N802
        """``ModelStreamInfer``: each request goes to a replica (a sequence's to its replica, in order);
        responses come back in request order, up to ``_STREAM_WINDOW`` requests in flight."""
        metadata = list(grpc_context.invocation_metadata()) if grpc_context is not None else []
        window: asyncio.Queue[asyncio.Queue | None] = asyncio.Queue(_STREAM_WINDOW)
        last_of_sequence: dict[Any, asyncio.Event] = {}
        tasks: set[asyncio.Task] = set()

        async def one(request: bytes, out: asyncio.Queue, after: asyncio.Event | None, done: asyncio.Event) -> None:
            try:
                if after is not None:
                    await after.wait()
                seq, end = infer_sequence(request)
                kwargs = {ROUTE_KWARG: route} if (route := sequence_route(seq, end)) is not None else {}
                stream = self._replicas.grpc_stream.options(stream=True).remote(request, metadata, **kwargs)
                async for item in stream:
                    await out.put(item)
            except Exception as exc:  # noqa: BLE001 - see handle_http
                await out.put(("UNAVAILABLE", f"{RETRYABLE}: {_why(exc)}", b""))
            finally:
                done.set()
                await out.put(None)

        async def read() -> None:
            try:
                async for request in requests:
                    seq, _ = infer_sequence(request)
                    out: asyncio.Queue = asyncio.Queue()
                    done = asyncio.Event()
                    after = last_of_sequence.get(seq) if seq is not None else None
                    if seq is not None:
                        last_of_sequence[seq] = done
                    await window.put(out)
                    task = asyncio.ensure_future(one(request, out, after, done))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            finally:
                await window.put(None)

        reader = asyncio.ensure_future(read())
        try:
            while (out := await window.get()) is not None:
                while (item := await out.get()) is not None:
                    code, details, payload = item
                    if code != "OK":  # triton_grpc_error mode, or the replica is gone: the call ends
                        if grpc_context is not None:
                            grpc_context.set_code(_grpc_status(code))
                            grpc_context.set_details(details)
                        return
                    yield RawMessage(payload)
        finally:
            reader.cancel()
            for task in list(tasks):
                task.cancel()

    # ---- Python handle API ----------------------------------------------------------------------------
    async def infer(self, model_name: str, inputs: Mapping[str, Any], **options: Any) -> dict[str, np.ndarray]:
        """Outputs of one inference; a ``sequence_id`` option keeps the sequence on one replica.

        Raises the engine's error, or :class:`~tritonlite.errors.UnavailableError` (retryable) when
        the replica died or did not answer in time."""
        from tritonlite.errors import UnavailableError

        route = sequence_route(options.get("sequence_id"), bool(options.get("sequence_end")))
        try:
            return await self._call("infer", model_name, dict(inputs), options, route=route)
        except RayTaskError:  # the engine's own error (also an instance of its TritonLiteError class)
            raise
        except Exception as exc:  # noqa: BLE001 - the replica died or did not answer: retryable
            raise UnavailableError(f"{RETRYABLE}: {_why(exc)}") from None

    async def load_model(self, name: str, config: Any = None, files: Mapping[str, bytes] | None = None) -> list[str]:
        """Load (or reload) a model on every replica; returns the replica ids that did."""
        return sorted(await self._control_call(name, "load_model", name, config, files))

    async def unload_model(self, name: str, unload_dependents: bool = False) -> list[str]:
        """Unload a model on every replica; returns the replica ids that did."""
        return sorted(await self._control_call(name, "unload_model", name, unload_dependents))

    async def model_statistics(self, name: str = "", version: str = "") -> dict[str, Any]:
        """Triton's statistics of ``name`` (every model if empty), summed over every replica."""
        merged = await self._merged_statistics(name, version)
        if merged is None:  # raise the engine's own error
            return await self._call("model_statistics", name, version)
        return merged

    async def metrics(self) -> str:
        """Every replica's metrics page, merged with a ``replica`` label."""
        pages = await self._each_replica("metrics_text")
        return merge_replica_pages(dict(pages.values()))

    async def model_ready(self, name: str, version: str = "") -> dict[str, bool]:
        """``{replica id: is the model ready there}`` for every replica."""
        return dict((await self._each_replica("model_ready", name, version)).values())

    async def replicas(self) -> list[str]:
        """Unique ids of the running replicas (the ``replica`` label of the metrics)."""
        return await self.replica_ids()


def _grpc_method(name: str) -> Any:
    async def method(self: TritonIngress, request: bytes, grpc_context: Any = None) -> RawMessage:
        return await self._grpc_unary(name, request, grpc_context)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"``inference.GRPCInferenceService/{name}`` through Serve's gRPC proxy."
    return method


for _name, _bidi in rpc_methods().items():
    if not _bidi:
        setattr(TritonIngress, _name, _grpc_method(_name))


def _why(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "no answer in time"
    if isinstance(exc, ReplicaGone):
        return f"replica {exc} left"
    _log.warning("replica call failed: %r", exc)
    return type(exc).__name__


def _await(response: Any) -> Awaitable[Any]:
    async def wait() -> Any:
        return await response

    return wait()


__all__ = ["RETRYABLE", "ReplicaGone", "TritonIngress"]
