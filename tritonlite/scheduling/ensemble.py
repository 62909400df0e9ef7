"""Triton's ensemble scheduler: run a DAG of steps, each on its composing model's own scheduler.

No thread is held per request. ``enqueue`` submits the steps whose inputs are ready through
``engine.submit_request`` (so a step is validated, queued, batched and counted in statistics by its
own model, exactly like a client request) and returns; each step's future callback stores the step's
outputs and submits the steps they complete. The last step delivers the ensemble response. The
first failing step fails the request with its own error, and later steps are not started.

Only the steps needed for the requested outputs run (Triton prunes the graph the same way). Tensors
pass between batching and non-batching models as Triton's ``ReshapeTensorDims`` does: a tensor
without a batch dim gets one of size 1 for a batching model when its shape matches the model's dims,
and a batch of 1 loses its batch dim for a non-batching model whose dims it does not otherwise match.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from tritonlite.errors import CancelledError, InternalError, TritonLiteError, UnavailableError
from tritonlite.request import InferenceRequest, InferResult
from tritonlite.scheduling.runner import BatchRunner

_log = logging.getLogger("tritonlite.scheduling")

#: how long stop() waits for in-flight ensemble requests
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class _Step:
    index: int
    model_name: str
    model_version: int
    inputs: tuple[tuple[str, str], ...]  # (model input, ensemble tensor)
    outputs: tuple[tuple[str, str], ...]  # (model output, ensemble tensor)
    needs: frozenset[str]  # ensemble tensors produced by other steps that this step reads


@dataclass(frozen=True)
class _Plan:
    """The steps one set of requested outputs needs, and how many produced tensors each waits for."""

    steps: frozenset[int]
    waiting: dict[int, int]


def _dims_match(dims: Sequence[int], shape: Sequence[int]) -> bool:
    return len(dims) == len(shape) and all(d == -1 or d == s for d, s in zip(dims, shape))


def _adapt(arr: np.ndarray, batch: int, dims: Sequence[int] | None, batching: bool) -> np.ndarray:
    """Triton's ReshapeTensorDims between batching and non-batching sides (see the module doc)."""
    if dims is None or batching == (batch != 0):
        return arr
    if batching:
        return arr.reshape((1,) + arr.shape) if _dims_match(dims, arr.shape) else arr
    if batch == 1 and not _dims_match(dims, arr.shape) and arr.ndim > 0:
        return arr.reshape(arr.shape[1:])
    return arr


class _ModelShape:
    """What the scheduler needs of a composing model's config; rebuilt when that model reloads."""

    __slots__ = ("source", "batching", "dims")

    def __init__(self, source: Any) -> None:
        self.source = source
        self.batching = int(source.get("max_batch_size", 0)) > 0
        self.dims = {t["name"]: [int(d) for d in t.get("dims", [])] for t in source.get("input", [])}


class _Context:
    """The state of one ensemble request."""

    __slots__ = ("request", "plan", "tensors", "waiting", "remaining", "inflight", "finished", "lock", "durations")

    def __init__(self, request: InferenceRequest, plan: _Plan) -> None:
        self.request = request
        self.plan = plan
        #: ensemble tensor -> (array, batch size: 0 when it has no batch dim)
        self.tensors: dict[str, tuple[np.ndarray, int]] = {}
        self.waiting = dict(plan.waiting)
        self.remaining = len(plan.steps)
        self.inflight: dict[int, InferenceRequest] = {}
        self.finished = False
        self.lock = threading.Lock()
        #: summed compute_input / compute_infer / compute_output of the composing steps (ns)
        self.durations = [0, 0, 0]


class EnsembleScheduler:
    """Schedules ensemble requests onto the composing models through the engine."""

    def __init__(self, config: Any, runner: BatchRunner, engine: Any) -> None:
        if engine is None:
            raise UnavailableError(f"ensemble '{runner.model_name}' needs the engine to reach its composing models")
        self._runner = runner
        self._engine = engine
        self._name = runner.model_name
        self._batching = config.max_batch_size > 0
        produced: dict[str, int] = {}
        for idx, step in enumerate(config.ensemble_scheduling.step):
            for tensor in step.output_map.values():
                produced[tensor] = idx
        self._steps: list[_Step] = []
        for idx, step in enumerate(config.ensemble_scheduling.step):
            inputs = tuple(sorted(step.input_map.items()))
            self._steps.append(
                _Step(
                    index=idx,
                    model_name=step.model_name,
                    model_version=int(step.model_version) if step.model_version > 0 else -1,
                    inputs=inputs,
                    outputs=tuple(sorted(step.output_map.items())),
                    needs=frozenset(t for _, t in inputs if t in produced),
                )
            )
        self._produced = produced
        self._consumers: dict[str, list[int]] = {}
        for s in self._steps:
            for tensor in s.needs:
                self._consumers.setdefault(tensor, []).append(s.index)
        self._output_dims = {
            t.name: [int(d) for d in (t.reshape.shape if t.HasField("reshape") else t.dims)] for t in config.output
        }
        self._plans: dict[tuple[str, ...], _Plan] = {}
        self._shapes: dict[int, _ModelShape] = {}
        self._stopped = False
        self._inflight = 0
        self._idle = threading.Condition()

    # ---- scheduler protocol -------------------------------------------------------------------------
    def enqueue(self, request: InferenceRequest) -> None:
        if self._stopped:
            request.sink.fail(UnavailableError(f"model '{self._name}' is unloading"))  # type: ignore[union-attr]
            return
        with self._idle:
            self._inflight += 1
        ctx = _Context(request, self._plan(request.output_names))
        request.times.compute_start = time.monotonic_ns()
        batch = request.batch_size if self._batching else 0
        for name, arr in request.backend_inputs.items():
            ctx.tensors[name] = (arr, batch)
        if not ctx.plan.steps:  # every requested output is an ensemble input passed through
            self._finish(ctx)
            return
        self._start(ctx, [i for i in sorted(ctx.plan.steps) if ctx.waiting[i] == 0])

    def stop(self) -> None:
        """Refuse new requests and wait (bounded) for the ones in flight to finish."""
        self._stopped = True
        deadline = time.monotonic() + STOP_TIMEOUT_S
        with self._idle:
            while self._inflight > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    _log.warning("ensemble '%s' stopped with %d request(s) still in flight", self._name, self._inflight)
                    return
                self._idle.wait(left)

    # ---- planning -----------------------------------------------------------------------------------
    def _plan(self, outputs: tuple[str, ...]) -> _Plan:
        key = tuple(sorted(outputs))
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        needed: set[int] = set()
        todo = [self._produced[o] for o in key if o in self._produced]
        while todo:
            idx = todo.pop()
            if idx in needed:
                continue
            needed.add(idx)
            todo.extend(self._produced[t] for t in self._steps[idx].needs)
        plan = _Plan(frozenset(needed), {i: len(self._steps[i].needs) for i in needed})
        if len(self._plans) < 64:
            self._plans[key] = plan
        return plan

    def _shape(self, step: _Step) -> _ModelShape | None:
        """The composing model's batching and input dims, or None when it is not available now."""
        try:
            source = self._engine.model_config(step.model_name, step.model_version if step.model_version > 0 else "")
        except TritonLiteError:
            return None  # submitting the step reports the model's own error
        cached = self._shapes.get(step.index)
        if cached is None or cached.source is not source:
            cached = self._shapes[step.index] = _ModelShape(source)
        return cached

    # ---- running steps ------------------------------------------------------------------------------
    def _start(self, ctx: _Context, ready: list[int]) -> None:
        """Submit ``ready`` steps (never called with ``ctx.lock`` held)."""
        request = ctx.request
        for idx in ready:
            if request.is_cancelled():
                self._fail(ctx, CancelledError("Request was cancelled"), "CANCELED")
                return
            step = self._steps[idx]
            shape = self._shape(step)
            with ctx.lock:
                if ctx.finished:
                    return
                inputs: dict[str, np.ndarray] = {}
                for model_input, tensor in step.inputs:
                    held = ctx.tensors.get(tensor)
                    if held is None:  # an optional ensemble input the client left out
                        continue
                    arr, batch = held
                    if shape is not None:
                        arr = _adapt(arr, batch, shape.dims.get(model_input), shape.batching)
                    inputs[model_input] = arr
                sub = InferenceRequest(
                    model_name=step.model_name,
                    model_version=step.model_version,
                    inputs=inputs,
                    requested_outputs=tuple(o for o, _ in step.outputs),
                    id=request.id,
                    correlation_id=request.correlation_id,
                    flags=request.flags,
                    priority=request.priority,
                    timeout_us=request.timeout_us,
                    parameters=dict(request.parameters),
                )
                ctx.inflight[idx] = sub
            try:
                future = self._engine.submit_request(sub)
            except TritonLiteError as exc:  # the engine reports through the future; this is a safety net
                self._step_failed(ctx, idx, exc)
                continue
            except Exception as exc:
                self._step_failed(ctx, idx, InternalError(f"{type(exc).__name__}: {exc}"))
                continue
            future.add_done_callback(lambda fut, i=idx, r=sub: self._step_done(ctx, i, r, fut))

    def _step_done(self, ctx: _Context, idx: int, sub: InferenceRequest, future: Any) -> None:
        try:
            result: InferResult = future.result()
        except TritonLiteError as exc:
            self._step_failed(ctx, idx, exc)
            return
        except BaseException as exc:  # a cancelled future, or a bug below the engine
            self._step_failed(ctx, idx, CancelledError("Request was cancelled") if ctx.request.is_cancelled()
                              else InternalError(f"{type(exc).__name__}: {exc}"))
            return
        step = self._steps[idx]
        ready: list[int] = []
        done = False
        error: TritonLiteError | None = None
        with ctx.lock:
            ctx.inflight.pop(idx, None)
            if ctx.finished:
                return
            batch = sub.batch_size
            for model_output, tensor in step.outputs:
                arr = result.outputs.get(model_output)
                if arr is None:
                    error = InternalError(
                        f"in ensemble '{self._name}', model '{step.model_name}' (step {idx}) returned no output "
                        f"'{model_output}' for ensemble tensor '{tensor}'"
                    )
                    break
                ctx.tensors[tensor] = (arr, batch)
                for consumer in self._consumers.get(tensor, ()):
                    if consumer in ctx.waiting:
                        ctx.waiting[consumer] -= 1
                        if ctx.waiting[consumer] == 0:
                            ready.append(consumer)
            if error is None:
                t = sub.times
                if t.compute_start:
                    ctx.durations[0] += max(0, t.compute_input_end - t.compute_start)
                    ctx.durations[1] += max(0, t.compute_infer_end - t.compute_input_end)
                    ctx.durations[2] += max(0, t.compute_output_end - t.compute_infer_end)
                ctx.remaining -= 1
                done = ctx.remaining == 0
        if error is not None:
            self._fail(ctx, error, "OTHER")
        elif done:
            self._finish(ctx)
        elif ready:
            self._start(ctx, sorted(ready))

    def _step_failed(self, ctx: _Context, idx: int, error: TritonLiteError) -> None:
        with ctx.lock:
            ctx.inflight.pop(idx, None)
        reason = "CANCELED" if isinstance(error, CancelledError) else "OTHER"
        self._fail(ctx, _same_error(error), reason)

    # ---- completion ---------------------------------------------------------------------------------
    def _close(self, ctx: _Context) -> bool:
        """Mark ``ctx`` finished; False when it already was. Cancels steps still in flight."""
        with ctx.lock:
            if ctx.finished:
                return False
            ctx.finished = True
            leftover = list(ctx.inflight.values())
            ctx.inflight.clear()
        for sub in leftover:
            sub.cancel()
        return True

    def _release(self) -> None:
        with self._idle:
            self._inflight -= 1
            if self._inflight <= 0:
                self._idle.notify_all()

    def _fail(self, ctx: _Context, error: TritonLiteError, reason: str) -> None:
        if not self._close(ctx):
            return
        try:
            ctx.request.sink.fail(error, reason)  # type: ignore[union-attr]
        finally:
            self._release()

    def _finish(self, ctx: _Context) -> None:
        if not self._close(ctx):
            return
        request = ctx.request
        try:
            outputs: dict[str, np.ndarray] = {}
            for name in request.output_names:
                arr, batch = ctx.tensors[name]
                outputs[name] = _adapt(arr, batch, self._output_dims.get(name), self._batching)
            t = request.times
            t.compute_input_end = t.compute_start + ctx.durations[0]
            t.compute_infer_end = t.compute_input_end + ctx.durations[1]
            t.compute_output_end = t.compute_infer_end + ctx.durations[2]
            self._runner.stats.record_execution(
                request.batch_size or 1, t.compute_start, t.compute_input_end, t.compute_infer_end, t.compute_output_end
            )
            result = InferResult(outputs=outputs)
            result.model_name = self._runner.model_name
            result.model_version = self._runner.version
            result.id = request.id
            request.sink.send(result, final=True)  # type: ignore[union-attr]
        except TritonLiteError as exc:
            request.sink.fail(exc, "OTHER")  # type: ignore[union-attr]
        except Exception as exc:
            _log.exception("ensemble '%s' failed to deliver its response", self._name)
            request.sink.fail(InternalError(f"{type(exc).__name__}: {exc}"), "OTHER")  # type: ignore[union-attr]
        finally:
            self._release()


def _same_error(error: TritonLiteError) -> TritonLiteError:
    """A fresh exception of the step's type and message (the step's own object stays with its future)."""
    try:
        copy = type(error)(error.message)
        copy.code = error.code
        return copy
    except Exception:
        return error


__all__ = ["EnsembleScheduler"]
