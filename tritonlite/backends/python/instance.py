"""One instance of a Python model, run in-process: python_backend's stub without the process.

The instance owns its ``model.py`` module (imported afresh), the model object, an asyncio loop thread
when the model has async methods, and the model context pb_utils calls read (rule in ``_context``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import threading
import time
from typing import Any, Sequence

from tritonlite.backends.base import LoadContext
from tritonlite.backends.python import pb_utils
from tritonlite.backends.python._context import CURRENT, MODULE_CONTEXT_KEY, ModelContext
from tritonlite.backends.python._requests import _to_infer_result
from tritonlite.backends.python.loader import find_model_class, import_model_module
from tritonlite.config import config_to_json
from tritonlite.errors import InternalError
from tritonlite.request import InferenceRequest, InferResult

_LOG = logging.getLogger("tritonlite.backends.python")
_IS_READY_TIMEOUT_S = 5.0


class PythonModelInstance:
    """Loads ``model.py``, calls ``initialize``; ``execute`` maps core requests to pb_utils and back."""

    def __init__(self, ctx: LoadContext) -> None:
        self.model_name = ctx.model_name
        self.model_version = int(ctx.model_version)
        self.instance_name = ctx.instance_name or f"{ctx.model_name}_0"
        self.decoupled = bool(ctx.config.model_transaction_policy.decoupled)
        self.context = ModelContext(
            model_name=ctx.model_name,
            model_version=self.model_version,
            model_dir=str(ctx.model_dir),
            instance_name=self.instance_name,
            engine=ctx.engine,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._closed = False
        token = CURRENT.set(self.context)
        try:
            module = import_model_module(
                ctx.model_name, self.model_version, ctx.model_path, ctx.version_dir, ctx.model_dir,
                context=self.context, context_key=MODULE_CONTEXT_KEY,
            )
            cls = find_model_class(module, ctx.model_name, ctx.model_path)
            if not callable(getattr(cls, "execute", None)):
                raise InternalError(f"Python model {ctx.model_path} does not implement `execute` method.")
            if any(inspect.iscoroutinefunction(getattr(cls, m, None)) for m in ("initialize", "execute", "finalize", "is_ready")):
                self._start_loop()
            try:
                self.model = cls()
                initialize = getattr(self.model, "initialize", None)
                if initialize is not None:
                    self._await(initialize(self._initialize_args(ctx)))
            except Exception as exc:
                raise InternalError(f"{type(exc).__name__}: {exc}") from exc
        except BaseException:
            self._stop_loop()
            raise
        finally:
            CURRENT.reset(token)

    def _initialize_args(self, ctx: LoadContext) -> dict[str, str]:
        """The str→str dict python_backend passes to ``initialize`` (SPEC §5.2)."""
        return {
            "model_config": json.dumps(config_to_json(ctx.config)),
            "model_instance_kind": ctx.instance_kind,
            "model_instance_name": self.instance_name,
            "model_instance_device_id": str(ctx.device_id),
            "model_repository": str(ctx.model_dir),
            "model_version": str(self.model_version),
            "model_name": ctx.model_name,
        }

    # ------------------------------------------------------------------ asyncio
    def _start_loop(self) -> None:
        """An event loop on its own thread, as the stub has, so tasks outlive one execute call."""
        if self._loop is not None:
            return
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=loop.run_forever, name=f"tritonlite.{self.model_name}.{self.instance_name}.asyncio", daemon=True
        )
        self._loop, self._loop_thread = loop, thread
        thread.start()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._loop_thread
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join()
        loop.close()
        self._loop = self._loop_thread = None

    async def _in_context(self, coro: Any) -> Any:
        CURRENT.set(self.context)
        return await coro

    def _await(self, value: Any, timeout: float | None = None) -> Any:
        """Run ``value`` on the instance loop when it is a coroutine; plain values pass through."""
        if not inspect.iscoroutine(value):
            return value
        self._start_loop()
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self._in_context(value), self._loop)
        return future.result(timeout)

    # ------------------------------------------------------------------ execute
    def execute(self, requests: Sequence[InferenceRequest]) -> list[InferResult] | None:
        wrap = pb_utils.InferenceRequest._incoming
        pb_requests = [wrap(r, self.model_name, self.model_version, self.decoupled) for r in requests]
        now = time.monotonic_ns()
        for r in requests:
            r.times.compute_input_end = now
        token = CURRENT.set(self.context)
        try:
            returned = self._await(self.model.execute(pb_requests))
        except Exception as exc:
            raise InternalError(
                f"Failed to process the request(s) for model '{self.instance_name}', message: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            CURRENT.reset(token)
            now = time.monotonic_ns()
            for r in requests:
                r.times.compute_infer_end = now
        if returned is None:
            return None
        if self.decoupled:
            raise InternalError(
                f"Python model '{self.instance_name}' is using the decoupled mode and the execute function must return None."
            )
        return self._collect(requests, pb_requests, returned)

    def _collect(self, requests: Sequence[InferenceRequest], pb_requests: list[pb_utils.InferenceRequest],
                 returned: Any) -> list[InferResult] | None:
        """Check a non-decoupled return value (python_backend's rules) and convert it."""
        if not isinstance(returned, list):
            raise InternalError(f"Expected a list in the execute return, found type '{type(returned)}'.")
        if len(returned) != len(requests):
            raise InternalError(
                "Number of InferenceResponse objects do not match the number of InferenceRequest objects. "
                f"InferenceRequest(s) size is:{len(requests)}, and InferenceResponse(s) size is:{len(returned)}"
            )
        through_sender = False
        for pb_request, response in zip(pb_requests, returned):
            if response is None:
                through_sender = True
                continue
            if pb_request._release_flags == pb_utils.TRITONSERVER_REQUEST_RELEASE_RESCHEDULE:
                raise InternalError(
                    "Expected a None object in the execute function return list for reschduled request, "
                    f"found type '{type(response)}'."
                )
            if not isinstance(response, pb_utils.InferenceResponse):
                raise InternalError(
                    f"Expected an 'InferenceResponse' object in the execute function return list, found type '{type(response)}'."
                )
            if pb_request._sender is not None:
                try:
                    pb_request._sender._claim(response, pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                except pb_utils.TritonModelException as exc:
                    raise InternalError(str(exc)) from exc
        results = [
            _to_infer_result(resp, req.output_names) if resp is not None else None
            for req, resp in zip(requests, returned)
        ]
        if not through_sender:
            return results  # type: ignore[return-value]
        # some responses come (or came) through the sender: deliver the returned ones the same way
        for req, result in zip(requests, results):
            if result is not None and req.sink is not None:
                req.sink.send(result, final=True)
        return None

    # ------------------------------------------------------------------ lifecycle
    def is_ready(self) -> bool:
        """The model's ``is_ready`` (sync or async; async ones time out after 5 s as not ready)."""
        check = getattr(self.model, "is_ready", None)
        if check is None:
            return not self._closed
        token = CURRENT.set(self.context)
        try:
            return bool(self._await(check(), timeout=_IS_READY_TIMEOUT_S))
        except Exception as exc:  # a failing or slow readiness check means not ready
            _LOG.warning("is_ready of model instance '%s' failed: %s", self.instance_name, exc)
            return False
        finally:
            CURRENT.reset(token)

    def close(self) -> None:
        """Call ``finalize`` (errors are logged, as Triton does) and stop the event loop."""
        if self._closed:
            return
        self._closed = True
        finalize = getattr(self.model, "finalize", None)
        if finalize is not None:
            token = CURRENT.set(self.context)
            try:
                self._await(finalize())
            except Exception:
                _LOG.exception("finalize of model instance '%s' failed", self.instance_name)
            finally:
                CURRENT.reset(token)
        self._stop_loop()


__all__ = ["PythonModelInstance"]
