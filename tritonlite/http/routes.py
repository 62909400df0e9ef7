"""The HTTP application: Triton's routing (SPEC §1.1) and one handler per endpoint.

Every handler is a coroutine that calls only the engine's public API (blocking calls such as a
model load run in the default executor) and the shared ``tritonlite.protocol`` pieces; errors are
``TritonLiteError``s turned into ``{"error": ...}`` with the status of SPEC §1.6.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from typing import Any, Callable
from urllib.parse import unquote

from tritonlite.engine import parse_version
from tritonlite.errors import InvalidArgumentError, NotFoundError, TritonLiteError, UnavailableError, UnsupportedError
from tritonlite.http.codec import json_parse_error, parse_json
from tritonlite.http.connection import TEXT_PLAIN, Request, Response, StreamingResponse, json_error
from tritonlite.http.generate import generate, generate_stream
from tritonlite.http.infer import FutureResponder, InferHandler, error_response
from tritonlite.protocol import server_metadata
from tritonlite.protocol.models import model_info
from tritonlite.protocol.settings import settings_for
from tritonlite.protocol.shm import SHM_DISABLED, registry_for

_MODEL = re.compile(r"/v2/models/([^/]+)(?:/versions/([0-9]+))?(?:/(infer|generate|generate_stream|ready|config|stats|trace/setting))?")
_HEALTH = re.compile(r"/v2(?:/health/(live|ready))?")
_SYS_SHM = re.compile(r"/v2/systemsharedmemory(?:/region/([^/]+))?/(status|register|unregister)")
_CUDA_SHM = re.compile(r"/v2/cudasharedmemory(?:/region/([^/]+))?/(status|register|unregister)")
_REPO = re.compile(r"/v2/repository(?:/([^/]+))?/(index|models/([^/]+)/(load|unload))")

_JSON = [("Content-Type", "application/json")]


def _json(doc: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8"), list(_JSON))


def _empty(status: int = 200, content_type: str = "application/json") -> Response:
    """An empty answer; Triton labels it text/plain (health, readiness) or application/json (the rest)."""
    return Response(status, b"", [("Content-Type", content_type)])


def _not_found() -> Response:
    return json_error(404, "Not Found", None, TEXT_PLAIN)


def _method_not_allowed(content_type: str = "application/json") -> Response:
    """405; Triton labels it text/plain on health, readiness and infer, application/json elsewhere."""
    return json_error(405, "Method Not Allowed", None, content_type)


def _optional_body(req: Request) -> dict[str, Any]:
    """A settings body (repository, shared memory): absent is ``{}``; present, it must be a JSON object."""
    if not req.body.strip():
        return {}
    return _required_body(req)


def _required_body(req: Request) -> dict[str, Any]:
    """A body Triton always parses (logging, shared-memory register): empty is its parse error."""
    doc = parse_json(req.body)
    if not isinstance(doc, dict):
        raise json_parse_error("attempt to get members for non-object")
    return doc


class HttpApp:
    """Routes requests to handlers for one engine."""

    def __init__(
        self, engine: Any, *, max_input_size: int = 64 * 1024 * 1024, allow_shm: bool = False, inline_compute_us: float = 0.0
    ) -> None:
        self.engine = engine
        self.limit = int(max_input_size)
        self.allow_shm = allow_shm
        self.registry = registry_for(engine)
        self.settings = settings_for(engine)
        self._metadata = json.dumps(server_metadata(engine), separators=(",", ":")).encode()
        self._infer_handler = InferHandler(engine, self.registry, self.limit, inline_compute_us)
        #: request path -> (model name, version text, version number) of /infer routes, or None
        self._infer_routes: dict[str, tuple[str, str, int] | None] = {}

    def start(self, req: Request, conn: Any) -> Any:
        """Serve ``req`` for ``conn`` (an :class:`~tritonlite.http.connection.HttpConnection`).

        ``POST .../infer`` is answered through ``conn.respond`` (returns None); every other
        request returns the coroutine that computes its response.
        """
        if req.method == "POST":
            route = self._infer_route(req.path)
            if route is not None:
                self._infer_handler.start(req, conn, *route)
                return None
        return self(req)

    def _infer_route(self, path: str) -> tuple[str, str, int] | None:
        routes = self._infer_routes
        try:
            return routes[path]
        except KeyError:
            pass
        route = None
        m = _MODEL.fullmatch(path)
        if m is not None and m.group(3) == "infer":
            version = m.group(2) or ""
            try:
                route = (unquote(m.group(1)), version, parse_version(version))
            except TritonLiteError:
                route = None  # the slow path answers with the version error
        if len(routes) >= 1024:
            routes.clear()
        routes[path] = route
        return route

    async def __call__(self, req: Request) -> Response | StreamingResponse:
        try:
            return await self._route(req)
        except TritonLiteError as exc:
            return error_response(exc)

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    # ---- routing --------------------------------------------------------------------------------------
    async def _route(self, req: Request) -> Response | StreamingResponse:
        path, method = req.path, req.method
        if path == "/v2/models/stats":
            if method != "GET":
                return _method_not_allowed()
            return _json(self.engine.model_statistics())
        if path == "/v2/logging":
            if method == "GET":
                return _json(self.settings.log_settings())
            if method == "POST":
                return _json(self.settings.update_log_settings(_required_body(req)))
            return _method_not_allowed()
        m = _MODEL.fullmatch(path)
        if m is not None:
            name, version, action = unquote(m.group(1)), m.group(2) or "", m.group(3) or ""
            return await self._model(req, name, version, action)
        if path == "/v2":
            if method != "GET":
                return _method_not_allowed()
            return Response(200, self._metadata, list(_JSON))
        m = _HEALTH.fullmatch(path)
        if m is not None:
            if method != "GET":
                return _method_not_allowed(TEXT_PLAIN if m.group(1) else "application/json")
            ok = self.engine.is_live() if m.group(1) == "live" else self.engine.is_ready()
            return _empty(200 if ok else 400, TEXT_PLAIN)
        m = _SYS_SHM.fullmatch(path)
        if m is not None:
            return await self._shm(req, unquote(m.group(1) or ""), m.group(2), cuda=False)
        m = _CUDA_SHM.fullmatch(path)
        if m is not None:
            return await self._shm(req, unquote(m.group(1) or ""), m.group(2), cuda=True)
        m = _REPO.fullmatch(path)
        if m is not None:
            if method != "POST":
                return _method_not_allowed()
            if m.group(1):
                raise UnsupportedError("'repository_name' specification is not supported")
            if m.group(2) == "index":
                return await self._index(req)
            return await self._load_unload(req, unquote(m.group(3)), m.group(4))
        if path == "/v2/trace/setting":
            return await self._trace(req, "")
        return _not_found()

    async def _model(self, req: Request, name: str, version: str, action: str) -> Response | StreamingResponse:
        method = req.method
        if action in ("infer", "generate", "generate_stream"):
            if method != "POST":
                return _method_not_allowed(TEXT_PLAIN if action == "infer" else "application/json")
            parse_version(version)  # a version beyond int64 fails after the method check, as in Triton (std::stol)
            if action == "infer":
                return await self._infer(req, name, version)
            if action == "generate":
                return await generate(self, req, name, version)
            return await generate_stream(self, req, name, version)
        if action == "trace/setting":
            if version:
                return _not_found()
            return await self._trace(req, name)
        if method != "GET":
            return _method_not_allowed(TEXT_PLAIN if action == "ready" else "application/json")
        parse_version(version)  # after the method check, as above
        if action == "":
            return _json(self.engine.model_metadata(name, version))
        if action == "ready":
            try:
                ready = self.engine.is_model_ready(name, version)
                if not ready:
                    model_info(self.engine, name, parse_version(version))
            except NotFoundError as exc:
                # a model the repository has loaded before (now unloaded or failed) is "not ready", not unknown
                known = [e for e in self.engine.repository_index() if e["name"] == name and "state" in e]
                if version:
                    known = [e for e in known if e.get("version") == str(parse_version(version))]
                if not known:
                    return error_response(exc, None, TEXT_PLAIN)
                ready = False
            except TritonLiteError:
                ready = False
            return _empty(200, TEXT_PLAIN) if ready else json_error(400, "Model version not ready", None, TEXT_PLAIN)
        if action == "config":
            return _json(self.engine.model_config(name, version))
        # stats
        return _json(self.engine.model_statistics(name, version))

    # ---- inference ------------------------------------------------------------------------------------
    async def _infer(self, req: Request, name: str, version: str) -> Response:
        """The coroutine form of the infer path (the connection normally takes :meth:`start`)."""
        responder = FutureResponder(asyncio.get_running_loop().create_future())
        self._infer_handler.start(req, responder, name, version, parse_version(version))
        try:
            return await responder.future
        except asyncio.CancelledError:
            if responder.cancel_current is not None:
                responder.cancel_current()
            raise

    # ---- repository -----------------------------------------------------------------------------------
    async def _index(self, req: Request) -> Response:
        body = _optional_body(req)
        ready = body.get("ready", False)
        if not isinstance(ready, bool):
            raise InvalidArgumentError("Unable to parse 'ready': attempt to access JSON non-boolean as boolean")
        return _json(await self._run(self.engine.repository_index, ready))

    async def _load_unload(self, req: Request, name: str, action: str) -> Response:
        body = _optional_body(req)
        params = body.get("parameters", {})
        if not isinstance(params, dict):
            raise InvalidArgumentError("Unable to parse 'parameters': expected a JSON object")
        if action == "unload":
            dependents = params.get("unload_dependents", False)
            if not isinstance(dependents, bool):
                raise InvalidArgumentError("Unable to parse 'unload_dependents': attempt to access JSON non-boolean as boolean")
            await self._run(lambda: self.engine.unload_model(name, unload_dependents=dependents))
            return _empty()  # application/json with no body, as Triton
        config: str | None = None
        files: dict[str, bytes] = {}
        for key, value in params.items():
            if key == "config":
                if not isinstance(value, str):
                    raise InvalidArgumentError("Unable to parse 'config': attempt to access JSON non-string as string")
                config = value
            elif key.startswith("file:"):
                if not isinstance(value, str):
                    raise InvalidArgumentError(f"Unable to parse '{key}': attempt to access JSON non-string as string")
                try:
                    files[key] = base64.b64decode(value, validate=True)
                except (binascii.Error, ValueError):
                    raise InvalidArgumentError(f"Unable to parse '{key}': the value is not valid base64") from None
            else:
                raise InvalidArgumentError(f"unrecognized load parameter '{key}'.")
        await self._run(lambda: self.engine.load_model(name, config=config, files=files or None))
        return _empty()

    # ---- shared memory --------------------------------------------------------------------------------
    async def _shm(self, req: Request, region: str, action: str, cuda: bool) -> Response:
        reg = self.registry
        if action == "status":
            if req.method != "GET":
                return _method_not_allowed()
            return _json(reg.cuda_status(region) if cuda else reg.system_status(region))
        if req.method != "POST":
            return _method_not_allowed()
        if not self.allow_shm:
            raise UnsupportedError(SHM_DISABLED)
        if action == "unregister":
            (reg.unregister_cuda if cuda else reg.unregister_system)(region)
            return _empty()
        if not region:  # register needs a region name: /v2/...sharedmemory/register is not a route
            return _not_found()
        body = _required_body(req)
        byte_size = body.get("byte_size")
        if type(byte_size) is not int or byte_size < 0:
            raise InvalidArgumentError("Unable to parse 'byte_size': attempt to access JSON non-unsigned-integer as unsigned-integer")
        if cuda:
            handle = body.get("raw_handle")
            b64 = handle.get("b64") if isinstance(handle, dict) else None
            if not isinstance(b64, str):
                raise InvalidArgumentError("Unable to parse 'raw_handle': expected {\"b64\": <base64 string>}")
            try:
                raw = base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidArgumentError("Unable to parse 'raw_handle': the value is not valid base64") from None
            device_id = body.get("device_id", 0)
            if type(device_id) is not int or device_id < 0:
                raise InvalidArgumentError("Unable to parse 'device_id': attempt to access JSON non-integer as integer")
            await self._run(reg.register_cuda, region, raw, device_id, byte_size)
        else:
            key = body.get("key")
            if not isinstance(key, str):
                raise InvalidArgumentError("Unable to parse 'key': attempt to access JSON non-string as string")
            offset = body.get("offset", 0)
            if type(offset) is not int or offset < 0:
                raise InvalidArgumentError("Unable to parse 'offset': attempt to access JSON non-unsigned-integer as unsigned-integer")
            reg.register_system(region, key, offset, byte_size)
        return _empty()

    # ---- trace ----------------------------------------------------------------------------------------
    async def _trace(self, req: Request, model: str) -> Response:
        if req.method not in ("GET", "POST"):
            return _method_not_allowed()
        if model:
            try:
                model_info(self.engine, model, -1)
            except NotFoundError as exc:
                return error_response(exc)
            except UnavailableError:
                raise InvalidArgumentError(f"Request for unknown model : {model}") from None
        if req.method == "GET":
            return _json(self.settings.trace_settings(model))
        return _json(self.settings.update_trace_settings(_optional_body(req), model))


__all__ = ["HttpApp", "error_response"]
