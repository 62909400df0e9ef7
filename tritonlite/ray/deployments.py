"""The two Serve deployments of a tritonlite application.

``TritonReplica`` (N replicas, autoscalable): one ``InferenceEngine`` and the same ``HttpApp`` the
asyncio HTTP door runs, so every ``/v2`` route, JSON and binary tensors, error texts and status
codes are the door's own. ``TritonIngress`` (the HTTP entry behind Serve's proxy, and the Python
handle API): it forwards each request to a replica, choosing one by correlation id for sequence
requests, sends model control to every replica and gathers every replica's metrics.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import re
import zlib
from typing import Any, Mapping, Sequence

import numpy as np
import ray
from ray import serve

from tritonlite.ray.autoscaling import pending_from_metrics_text
from tritonlite.ray.metrics import merge_replica_pages
from tritonlite.ray.routing import ROUTE_KWARG, replica_route, sequence_route

_log = logging.getLogger("tritonlite.ray")

REPLICA_DEPLOYMENT = "TritonReplica"
INGRESS_DEPLOYMENT = "TritonIngress"
_REPO_CONTROL = re.compile(r"/v2/repository/models/([^/]+)/(load|unload)")
_INFER = re.compile(r"/v2/models/[^/]+(?:/versions/[0-9]+)?/infer")
_RETRY = "tritonlite replica unavailable, retry the request"


class TritonReplica:
    """One replica: an ``InferenceEngine`` over the model repository, plus the HTTP routes."""

    def __init__(self, model_repository: Sequence[str], engine_options: Mapping[str, Any] | None = None,
                 max_input_size: int = 64 * 1024 * 1024) -> None:
        from tritonlite.engine import InferenceEngine
        from tritonlite.http.routes import HttpApp

        self.engine = InferenceEngine(list(model_repository), **dict(engine_options or {}))
        self.app = HttpApp(self.engine, max_input_size=max_input_size)
        self.unique_id = serve.get_replica_context().replica_id.unique_id

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

    async def infer(self, model_name: str, inputs: Mapping[str, Any], options: Mapping[str, Any],
                    **_route: Any) -> dict[str, np.ndarray]:
        """Python handle API: the outputs of one inference (raises the engine's error)."""
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

    def metrics_text(self, **_route: Any) -> tuple[str, str]:
        """(this replica's unique id, its engine's Prometheus page)."""
        return self.unique_id, self.engine.metrics() if self.engine.metrics_enabled else ""

    def model_ready(self, name: str, version: str = "", **_route: Any) -> tuple[str, bool]:
        return self.unique_id, self.engine.is_model_ready(name, version)

    def record_autoscaling_stats(self) -> dict[str, float]:
        """Serve's custom autoscaling metric: requests queued in this replica's engine."""
        if not self.engine.metrics_enabled:
            return {}
        return {"nv_inference_pending_request_count": pending_from_metrics_text(self.engine.metrics())}

    def __del__(self) -> None:  # Serve calls it when it stops the replica
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.close()
            self.engine = None


def _sequence_id(path: str, headers: Mapping[str, str], body: bytes) -> Any:
    """The ``sequence_id`` parameter of a KServe v2 infer request body, or None."""
    if not _INFER.fullmatch(path):
        return None
    encoding = (headers.get("content-encoding") or "").strip().lower()
    try:
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        length = headers.get("inference-header-content-length")
        head = body[: int(length)] if length else body
        if b"sequence_id" not in head:
            return None
        value = json.loads(head).get("parameters", {}).get("sequence_id")
    except (ValueError, OSError, AttributeError, zlib.error):
        return None  # the replica answers the malformed body with the door's own 400
    return value if isinstance(value, (int, str)) and not isinstance(value, bool) else None


def _error(status: int, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    return status, [("Content-Type", "application/json")], json.dumps({"error": message}).encode()


class TritonIngress:
    """HTTP entry (``/v2/...``, ``/metrics``) and Python handle API of the application."""

    def __init__(self, replicas: Any, control_timeout_s: float = 120.0, request_timeout_s: float = 300.0) -> None:
        self._replica_handle = replicas
        self.control_timeout_s = float(control_timeout_s)
        self.request_timeout_s = float(request_timeout_s)
        self.app_name = serve.get_replica_context().app_name

    # ---- replicas -------------------------------------------------------------------------------------
    def replica_ids(self) -> list[str]:
        """Unique ids of the replicas alive now (Serve names each replica actor after its id)."""
        prefix = f"SERVE_REPLICA::{self.app_name}#{REPLICA_DEPLOYMENT}#" if self.app_name else f"SERVE_REPLICA::{REPLICA_DEPLOYMENT}#"
        names = ray.util.list_named_actors(all_namespaces=True)
        return sorted(a["name"][len(prefix):] for a in names if a.get("namespace") == "serve" and a["name"].startswith(prefix))

    async def _call(self, method: str, *args: Any, route: str | None = None, timeout: float | None = None) -> Any:
        handle = getattr(self._replica_handle, method)
        kwargs = {ROUTE_KWARG: route} if route is not None else {}
        if route is not None:  # see CorrelationRouter: the FIFO hand-off matches on this id
            handle = handle.options(multiplexed_model_id=route)
        response = handle.remote(*args, **kwargs)
        try:
            return await asyncio.wait_for(_resolve(response), timeout or self.request_timeout_s)
        except asyncio.TimeoutError:
            response.cancel()
            raise

    async def _each_replica(self, method: str, *args: Any) -> list[Any]:
        ids = self.replica_ids()
        return await asyncio.gather(*(self._call(method, *args, route=replica_route(uid), timeout=self.control_timeout_s)
                                      for uid in ids))

    # ---- HTTP -----------------------------------------------------------------------------------------
    async def __call__(self, request: Any) -> Any:
        from starlette.responses import Response

        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        status, out_headers, payload = await self.handle_http(request.method, request.url.path, request.url.query,
                                                              headers, body)
        response = Response(payload, status_code=status)
        for key, value in out_headers:
            response.headers[key] = value
        return response

    async def handle_http(self, method: str, path: str, query: str, headers: dict[str, str],
                          body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        try:
            if path == "/metrics":
                if method != "GET":
                    return _error(405, "Method Not Allowed")
                text = await self.metrics()
                return 200, [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], text.encode()
            if method == "POST" and _REPO_CONTROL.fullmatch(path):
                answers = await self._each_replica("http_request", method, path, query, headers, body)
                if not answers:
                    return _error(503, f"{_RETRY}: no running replica")
                failed = [a for a in answers if a[0] != 200]
                return failed[0] if failed else answers[0]
            route = sequence_route(_sequence_id(path, headers, body))
            return await self._call("http_request", method, path, query, headers, body, route=route)
        except asyncio.TimeoutError:
            return _error(503, f"{_RETRY}: no answer in time")
        except Exception as exc:  # a replica died or Serve refused: retryable, never a hang
            _log.warning("replica call failed: %s", exc)
            return _error(503, f"{_RETRY}: {type(exc).__name__}")

    # ---- Python handle API ----------------------------------------------------------------------------
    async def infer(self, model_name: str, inputs: Mapping[str, Any], **options: Any) -> dict[str, np.ndarray]:
        """Outputs of one inference; a ``sequence_id`` option keeps the sequence on one replica."""
        route = sequence_route(options.get("sequence_id"))
        return await self._call("infer", model_name, dict(inputs), options, route=route)

    async def load_model(self, name: str, config: Any = None, files: Mapping[str, bytes] | None = None) -> list[str]:
        """Load (or reload) a model on every replica; returns the replica ids that did."""
        return list(await self._each_replica("load_model", name, config, files))

    async def unload_model(self, name: str, unload_dependents: bool = False) -> list[str]:
        """Unload a model on every replica; returns the replica ids that did."""
        return list(await self._each_replica("unload_model", name, unload_dependents))

    async def metrics(self) -> str:
        """Every replica's metrics page, merged with a ``replica`` label."""
        pages = await self._each_replica("metrics_text")
        return merge_replica_pages(dict(pages))

    async def model_ready(self, name: str, version: str = "") -> dict[str, bool]:
        """``{replica id: is the model ready there}`` for every replica."""
        return dict(await self._each_replica("model_ready", name, version))

    async def replicas(self) -> list[str]:
        """Unique ids of the running replicas (the ``replica`` label of the metrics)."""
        return self.replica_ids()


async def _resolve(response: Any) -> Any:
    return await response


__all__ = ["INGRESS_DEPLOYMENT", "REPLICA_DEPLOYMENT", "TritonIngress", "TritonReplica"]
