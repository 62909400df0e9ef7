"""``TritonReplica``: one Serve replica owning one ``InferenceEngine`` and the doors' own handlers.

HTTP requests run through the asyncio door's ``HttpApp`` and gRPC calls through the gRPC door's
``InferenceServicer`` method handlers, so every route and RPC, error text and status code is the
doors' own. The ingress (:mod:`tritonlite.ray.ingress`) forwards requests here as plain bytes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from typing import Any, AsyncIterator, Iterator, Mapping, Sequence

import numpy as np
from ray import serve

from tritonlite.ray.autoscaling import PENDING_METRIC, pending_from_metrics_text

_log = logging.getLogger("tritonlite.ray")

#: replica methods a control-log entry may name (see ``TritonIngress``)
CONTROL_METHODS = frozenset({"http_request", "grpc_unary", "load_model", "unload_model"})
GRPC_THREADS = 32


class _Abort(Exception):
    def __init__(self, code: Any, details: str) -> None:
        super().__init__(details)
        self.code, self.details = code, details


class _CallContext:
    """The part of ``grpc.ServicerContext`` the gRPC door's handlers use, for one forwarded call."""

    def __init__(self, metadata: Sequence[tuple[str, str]]) -> None:
        self._metadata = tuple(metadata)
        self._callbacks: list[Any] = []

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def add_callback(self, callback: Any) -> bool:
        self._callbacks.append(callback)
        return True

    def abort(self, code: Any, details: str) -> None:
        raise _Abort(code, details)

    def end(self) -> None:
        for callback in self._callbacks:
            try:
                callback()
            except Exception:  # noqa: BLE001 - a failing cleanup must not hide the call's answer
                _log.exception("gRPC call cleanup failed")


def _next(items: Iterator[Any]) -> tuple[bool, Any]:
    try:
        return True, next(items)
    except StopIteration:
        return False, None


class TritonReplica:
    """One replica: an ``InferenceEngine`` over the model repository, plus the HTTP and gRPC handlers."""

    def __init__(self, model_repository: Sequence[str], engine_options: Mapping[str, Any] | None = None,
                 max_input_size: int = 64 * 1024 * 1024) -> None:
        from tritonlite.engine import InferenceEngine
        from tritonlite.grpc.servicer import InferenceServicer
        from tritonlite.http.routes import HttpApp

        self.engine = InferenceEngine(list(model_repository), **dict(engine_options or {}))
        self.app = HttpApp(self.engine, max_input_size=max_input_size)
        self._grpc = InferenceServicer(self.engine).handlers()  # method name -> grpc.RpcMethodHandler
        # the gRPC door's handlers block (ModelInfer runs the model inline): they run on this pool
        self._grpc_pool = concurrent.futures.ThreadPoolExecutor(GRPC_THREADS, thread_name_prefix="tritonlite.ray.grpc")
        self.unique_id = serve.get_replica_context().replica_id.unique_id
        self.control_version = 0

    # ---- HTTP -----------------------------------------------------------------------------------------
    async def http_request(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes,
                           **_route: Any) -> tuple[int, list[tuple[str, str]], bytes]:
        """Run one HTTP request through the door's routes; a streamed body comes back whole."""
        from tritonlite.http.connection import Request, StreamingResponse

        resp = await self.app(Request(method, path, query, headers, bytearray(body), True))
        if isinstance(resp, StreamingResponse):
            chunks = [bytes(c) async for c in resp.chunks]
            return resp.status, list(resp.headers), b"".join(chunks)
        data = resp.body
        payload = b"".join(bytes(p) for p in data) if isinstance(data, (list, tuple)) else bytes(data)
        return resp.status, list(resp.headers), payload

    # ---- gRPC -----------------------------------------------------------------------------------------
    async def grpc_unary(self, method: str, request: bytes, metadata: Sequence[tuple[str, str]] = (),
                         **_route: Any) -> tuple[str, str, bytes]:
        """One unary RPC of ``inference.GRPCInferenceService``: (status code name, details, response bytes)."""
        handler = self._grpc.get(method)
        if handler is None or handler.unary_unary is None:
            return "UNIMPLEMENTED", f"unknown method {method}", b""
        context = _CallContext(metadata)

        def call() -> tuple[str, str, bytes]:
            try:
                response = handler.unary_unary(handler.request_deserializer(request), context)
                return "OK", "", handler.response_serializer(response)
            except _Abort as exc:
                return exc.code.name, exc.details, b""
            finally:
                context.end()

        return await asyncio.get_running_loop().run_in_executor(self._grpc_pool, call)

    async def grpc_stream(self, request: bytes, metadata: Sequence[tuple[str, str]] = (),
                          **_route: Any) -> AsyncIterator[tuple[str, str, bytes]]:
        """One request of a ``ModelStreamInfer`` call: its stream responses, as (code name, details, bytes)."""
        handler = self._grpc["ModelStreamInfer"]
        context = _CallContext(metadata)
        loop = asyncio.get_running_loop()
        responses = handler.stream_stream(iter([handler.request_deserializer(request)]), context)
        try:
            while True:
                try:
                    more, item = await loop.run_in_executor(self._grpc_pool, _next, responses)
                except _Abort as exc:  # triton_grpc_error mode: the first error ends the call
                    yield exc.code.name, exc.details, b""
                    return
                if not more:
                    return
                yield "OK", "", handler.response_serializer(item)
        finally:
            context.end()  # closes the stream session first: a reader blocked in next() wakes up
            try:
                responses.close()
            except ValueError:  # still running in the pool after a cancel: it ends on its own
                pass

    # ---- Python handle API ----------------------------------------------------------------------------
    async def infer(self, model_name: str, inputs: Mapping[str, Any], options: Mapping[str, Any],
                    **_route: Any) -> dict[str, np.ndarray]:
        """The outputs of one inference (raises the engine's error)."""
        result = await self.engine.submit(model_name, inputs, **dict(options))
        return dict(result.outputs)

    async def load_model(self, name: str, config: Any = None, files: Mapping[str, bytes] | None = None,
                         **_route: Any) -> str:
        await asyncio.get_running_loop().run_in_executor(None, lambda: self.engine.load_model(name, config, files))
        return self.unique_id

    async def unload_model(self, name: str, unload_dependents: bool = False, **_route: Any) -> str:
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: self.engine.unload_model(name, unload_dependents=unload_dependents))
        return self.unique_id

    # ---- control log, metrics, health ------------------------------------------------------------------
    async def sync_control(self, entries: Sequence[tuple[int, str, tuple]], **_route: Any) -> int:
        """Replay the ingress's model-control log (entries newer than this replica's); returns the version reached.

        A replica that starts after a load/unload (a replacement, or autoscaling) loads what the
        repository and ``engine_options`` say; this brings it to the state the others are in.
        """
        for version, method, args in sorted(entries, key=lambda e: e[0]):
            if version <= self.control_version or method not in CONTROL_METHODS:
                continue
            try:
                await getattr(self, method)(*args)
            except Exception as exc:  # noqa: BLE001 - it failed on the others' engines too, or not: log and go on
                _log.warning("replaying %s failed on replica %s: %s", method, self.unique_id, exc)
            self.control_version = version
        return self.control_version

    def model_statistics(self, name: str = "", version: str = "", **_route: Any) -> dict[str, Any]:
        """This replica's share of Triton's statistics (the ingress sums every replica's)."""
        return self.engine.model_statistics(name, version)

    def metrics_text(self, **_route: Any) -> tuple[str, str]:
        """(this replica's unique id, its engine's Prometheus page)."""
        return self.unique_id, self.engine.metrics() if self.engine.metrics_enabled else ""

    def model_ready(self, name: str, version: str = "", **_route: Any) -> tuple[str, bool]:
        return self.unique_id, self.engine.is_model_ready(name, version)

    def record_autoscaling_stats(self) -> dict[str, float]:
        """Serve's custom autoscaling metric: requests queued in this replica's engine."""
        if not self.engine.metrics_enabled:
            return {}
        return {PENDING_METRIC: pending_from_metrics_text(self.engine.metrics())}

    def __del__(self) -> None:  # Serve's documented clean-up hook: it calls it when it stops the replica
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.close()  # cancels what is in flight, so the gRPC pool's calls end too
            self.engine = None
        pool = getattr(self, "_grpc_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["CONTROL_METHODS", "TritonReplica"]
