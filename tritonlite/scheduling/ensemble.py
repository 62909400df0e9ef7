"""Triton's ensemble scheduler: run a DAG of steps, each on its composing model's own scheduler.

No thread is held per request. ``enqueue`` submits the steps whose inputs are ready through the
engine (``_submit_request``, or ``_submit_with_callback`` for a decoupled composing model), so a step
is validated, queued, batched and counted in statistics by its own model, exactly like a client
request; each step's responses store its outputs and submit the steps they complete. The first
failing step fails the request with its own error, and later steps are not started.

Decoupled composing models (Triton's rules, core ``EnsembleContext``): every response of a
decoupled step is a new *iteration* of its output tensors, and each downstream step runs once per
iteration. A non-decoupled step's outputs keep the iteration of its inputs (the load-time check
guarantees a step never mixes tensors from two decoupled origins). The ensemble sends a response
each time every requested output has a tensor of one iteration, and the final flag once no step is
in flight (alone, when the last event produced no response). Such an ensemble is itself decoupled:
clients read it with ``stream_infer`` / gRPC ``ModelStreamInfer``. A step response may carry the
parameters ``sequence_id`` / ``sequence_start`` / ``sequence_end``: the steps downstream of it then
run with that correlation id and those flags (how a generator feeds a sequence model).

Only the steps needed for the requested outputs run (Triton prunes the graph the same way). Tensors
pass between batching and non-batching models as Triton's ``ReshapeTensorDims`` does: a tensor
without a batch dim gets one of size 1 for a batching model when its shape matches the model's dims,
and a batch of 1 loses its batch dim for a non-batching model whose dims it does not otherwise match.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from tritonlite.errors import CancelledError, InternalError, InvalidArgumentError, TritonLiteError, UnavailableError
from tritonlite.request import InferenceRequest, InferResult, RequestFlag
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
    """The steps one set of requested outputs needs, and how many readers each produced tensor has."""

    steps: frozenset[int]
    refs: dict[str, int]  # produced tensor -> plan steps reading it (+1 when it is a requested output)


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

    __slots__ = ("source", "batching", "dims", "decoupled")

    def __init__(self, source: Any) -> None:
        self.source = source
        self.batching = int(source.get("max_batch_size", 0)) > 0
        self.dims = {t["name"]: [int(d) for d in t.get("dims", [])] for t in source.get("input", [])}
        self.decoupled = bool(source.get("model_transaction_policy", {}).get("decoupled", False))


class _Held:
    """One iteration of one ensemble tensor; ``seq`` is the (correlation id, flags) it carries on."""

    __slots__ = ("array", "batch", "refs", "seq")

    def __init__(self, array: np.ndarray, batch: int, refs: int, seq: tuple[Any, int] | None) -> None:
        self.array = array
        self.batch = batch
        self.refs = refs
        self.seq = seq


@dataclass(eq=False)
class _Run:
    """One submission of a step for one iteration of its inputs."""

    step: _Step
    iteration: int
    request: InferenceRequest
    decoupled: bool


class _Context:
    """The state of one ensemble request."""

    __slots__ = ("request", "plan", "inputs", "tensors", "running", "counters", "finished", "lock",
                 "send_lock", "outbox", "all_done", "responded", "durations")

    def __init__(self, request: InferenceRequest, plan: _Plan) -> None:
        self.request = request
        self.plan = plan
        #: ensemble inputs (iteration 0 only): name -> (array, batch size: 0 when it has no batch dim)
        self.inputs: dict[str, tuple[np.ndarray, int]] = {}
        #: produced tensor -> iteration -> held tensor
        self.tensors: dict[str, dict[int, _Held]] = {}
        #: runs submitted (or about to be) whose final response has not come
        self.running: set[_Run] = set()
        #: decoupled step -> next iteration number for its outputs
        self.counters: dict[int, int] = {}
        self.finished = False
        self.lock = threading.Lock()
        #: serialises deliveries so responses leave in order and the final flag comes last
        self.send_lock = threading.Lock()
        self.outbox: deque[dict[str, np.ndarray]] = deque()
        self.all_done = False
        self.responded = False
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
        self._decoupled = bool(config.model_transaction_policy.decoupled)
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
            ctx.inputs[name] = (arr, batch)
        with ctx.lock:
            if not ctx.plan.steps:  # every requested output is an ensemble input passed through
                ctx.outbox.append(self._outputs(ctx, 0))
                ctx.all_done = True
                runs: list[_Run] = []
            else:
                runs = [self._prepare_run(ctx, self._steps[i], 0) for i in sorted(ctx.plan.steps) if not self._steps[i].needs]
        self._submit(ctx, runs)
        self._flush(ctx)

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
        refs: dict[str, int] = {}
        for idx in needed:
            for tensor in self._steps[idx].needs:
                refs[tensor] = refs.get(tensor, 0) + 1
        for out in key:
            if out in self._produced:
                refs[out] = refs.get(out, 0) + 1
        plan = _Plan(frozenset(needed), refs)
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
    def _take(self, ctx: _Context, tensor: str, iteration: int) -> _Held:
        """A produced tensor for one reader; dropped once its last reader took it (``ctx.lock`` held)."""
        by_iter = ctx.tensors[tensor]
        held = by_iter[iteration]
        held.refs -= 1
        if held.refs <= 0:
            del by_iter[iteration]
        return held

    def _prepare_run(self, ctx: _Context, step: _Step, iteration: int) -> _Run:
        """Build the step's request from the tensors of ``iteration`` (``ctx.lock`` held)."""
        request = ctx.request
        shape = self._shape(step)
        inputs: dict[str, np.ndarray] = {}
        seq: tuple[Any, int] | None = None
        taken: dict[str, _Held] = {}
        for model_input, tensor in step.inputs:
            if tensor in step.needs:
                held = taken.get(tensor) or self._take(ctx, tensor, iteration)
                taken[tensor] = held
                arr, batch = held.array, held.batch
                seq = seq or held.seq
            else:
                given = ctx.inputs.get(tensor)
                if given is None:  # an optional ensemble input the client left out
                    continue
                arr, batch = given
            if shape is not None:
                arr = _adapt(arr, batch, shape.dims.get(model_input), shape.batching)
            inputs[model_input] = arr
        corrid, flags = seq if seq is not None else (request.correlation_id, request.flags)
        sub = InferenceRequest(
            model_name=step.model_name,
            model_version=step.model_version,
            inputs=inputs,
            requested_outputs=tuple(o for o, _ in step.outputs),
            id=request.id,
            correlation_id=corrid,
            flags=flags,
            priority=request.priority,
            timeout_us=request.timeout_us,
            parameters=dict(request.parameters),
            parent=request,
            trace=request.trace,  # the engine makes it a child trace (parent_id) of the ensemble's
        )
        run = _Run(step, iteration, sub, bool(shape is not None and shape.decoupled))
        ctx.running.add(run)
        return run

    def _submit(self, ctx: _Context, runs: list[_Run]) -> None:
        """Hand prepared runs to their models (never called with ``ctx.lock`` held)."""
        for run in runs:
            if ctx.request.is_cancelled():
                self._fail(ctx, CancelledError("Request was cancelled"), "CANCELED")
                return
            if ctx.finished:
                return
            try:
                if run.decoupled:
                    self._engine._submit_with_callback(
                        run.request, lambda res, err, final, r=run: self._on_response(ctx, r, res, err, final)
                    )
                else:
                    future = self._engine._submit_request(run.request)
                    future.add_done_callback(lambda fut, r=run: self._on_future(ctx, r, fut))
            except TritonLiteError as exc:  # the engine reports through the future; this is a safety net
                self._on_response(ctx, run, None, exc, True)
            except Exception as exc:
                self._on_response(ctx, run, None, InternalError(f"{type(exc).__name__}: {exc}"), True)

    def _on_future(self, ctx: _Context, run: _Run, future: Any) -> None:
        try:
            result: InferResult = future.result()
        except TritonLiteError as exc:
            self._on_response(ctx, run, None, exc, True)
            return
        except BaseException as exc:  # a cancelled future, or a bug below the engine
            error = CancelledError("Request was cancelled") if ctx.request.is_cancelled() else InternalError(
                f"{type(exc).__name__}: {exc}")
            self._on_response(ctx, run, None, error, True)
            return
        self._on_response(ctx, run, result, None, True)

    def _on_response(self, ctx: _Context, run: _Run, result: InferResult | None, error: TritonLiteError | None,
                     final: bool) -> None:
        """One response of one step run: store its outputs, start what they complete, deliver."""
        if error is None and ctx.request.is_cancelled():
            error = CancelledError("Request was cancelled")
        if error is not None:
            reason = "CANCELED" if isinstance(error, CancelledError) else "OTHER"
            with ctx.lock:
                ctx.running.discard(run)
            self._fail(ctx, _same_error(error), reason)
            return
        ready: list[_Run] = []
        with ctx.lock:
            if ctx.finished:
                return
            try:
                if result is not None:
                    ready = self._store(ctx, run, result)
            except TritonLiteError as exc:
                error = exc
            if final and error is None:
                ctx.running.discard(run)
                t = run.request.times
                if t.compute_start:
                    ctx.durations[0] += max(0, t.compute_input_end - t.compute_start)
                    ctx.durations[1] += max(0, t.compute_infer_end - t.compute_input_end)
                    ctx.durations[2] += max(0, t.compute_output_end - t.compute_infer_end)
                if not ctx.running:
                    ctx.all_done = True
        if error is not None:
            self._fail(ctx, error, "OTHER")
            return
        self._submit(ctx, ready)
        self._flush(ctx)

    def _store(self, ctx: _Context, run: _Run, result: InferResult) -> list[_Run]:
        """Keep a step response's outputs as one iteration; prepare the runs and responses it completes."""
        step = run.step
        if run.decoupled:
            iteration = ctx.counters.get(step.index, 0)
            ctx.counters[step.index] = iteration + 1
        else:
            iteration = run.iteration
        seq = _sequence_override(result.parameters, run.request)
        batch = run.request.batch_size
        stored: list[str] = []
        for model_output, tensor in step.outputs:
            refs = ctx.plan.refs.get(tensor, 0)
            if refs == 0:
                continue  # an output nobody downstream reads for this request
            arr = result.outputs.get(model_output)
            if arr is None:
                raise InternalError(
                    f"in ensemble '{self._name}', model '{step.model_name}' (step {step.index}) returned no output "
                    f"'{model_output}' for ensemble tensor '{tensor}'"
                )
            ctx.tensors.setdefault(tensor, {})[iteration] = _Held(arr, batch, refs, seq)
            stored.append(tensor)
        ready: list[_Run] = []
        seen: set[int] = set()
        for tensor in stored:
            for consumer in self._consumers.get(tensor, ()):
                if consumer in seen or consumer not in ctx.plan.steps:
                    continue
                seen.add(consumer)
                cstep = self._steps[consumer]
                if all(iteration in ctx.tensors.get(t, {}) for t in cstep.needs):
                    ready.append(self._prepare_run(ctx, cstep, iteration))
        wanted = [o for o in ctx.request.output_names if o in self._produced]
        if any(o in stored for o in wanted) and all(iteration in ctx.tensors.get(o, {}) for o in wanted):
            ctx.outbox.append(self._outputs(ctx, iteration))
        return ready

    def _outputs(self, ctx: _Context, iteration: int) -> dict[str, np.ndarray]:
        """The requested outputs of one iteration, reshaped as the ensemble declares them (lock held)."""
        outputs: dict[str, np.ndarray] = {}
        for name in ctx.request.output_names:
            if name in self._produced:
                held = self._take(ctx, name, iteration)
                arr, batch = held.array, held.batch
            else:
                arr, batch = ctx.inputs[name]
            outputs[name] = _adapt(arr, batch, self._output_dims.get(name), self._batching)
        return outputs

    # ---- completion ---------------------------------------------------------------------------------
    def _close(self, ctx: _Context) -> bool:
        """Mark ``ctx`` finished; False when it already was. Cancels steps still in flight."""
        with ctx.lock:
            if ctx.finished:
                return False
            ctx.finished = True
            leftover = [run.request for run in ctx.running]
            ctx.running.clear()
            ctx.tensors.clear()
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
            with ctx.send_lock:
                ctx.request.sink.fail(error, reason)  # type: ignore[union-attr]
        finally:
            self._release()

    def _flush(self, ctx: _Context) -> None:
        """Deliver queued responses in order; the last one (or a lone flag) carries FINAL once nothing runs."""
        with ctx.send_lock:
            while True:
                with ctx.lock:
                    if ctx.finished:
                        return
                    outputs = ctx.outbox.popleft() if ctx.outbox else None
                    last = ctx.all_done and not ctx.outbox
                    if outputs is None and not last:
                        return
                    if last:
                        ctx.finished = True
                    if outputs is not None:
                        ctx.responded = True
                    responded = ctx.responded
                try:
                    if last:
                        self._deliver_final(ctx, outputs, responded)
                    else:
                        self._send(ctx, outputs, final=False)  # type: ignore[arg-type]
                except Exception as exc:
                    self._delivery_failed(ctx, exc, last)
                    return
                if last:
                    self._release()
                    return

    def _delivery_failed(self, ctx: _Context, exc: Exception, last: bool) -> None:
        """A response could not be handed to the request's sink: end the request (once)."""
        if not last and not self._close(ctx):
            return
        try:
            if isinstance(exc, TritonLiteError):  # the sink refused (it was already closed)
                _log.debug("ensemble '%s' stopped delivering: %s", self._name, exc.message)
            else:
                _log.error("ensemble '%s' failed to deliver its response", self._name, exc_info=exc)
                ctx.request.sink.fail(InternalError(f"{type(exc).__name__}: {exc}"), "OTHER")  # type: ignore[union-attr]
        finally:
            self._release()

    def _send(self, ctx: _Context, outputs: dict[str, np.ndarray], final: bool) -> None:
        result = InferResult(outputs=outputs)
        result.model_name = self._runner.model_name
        result.model_version = self._runner.version
        result.id = ctx.request.id
        ctx.request.sink.send(result, final=final)  # type: ignore[union-attr]

    def _deliver_final(self, ctx: _Context, outputs: dict[str, np.ndarray] | None, responded: bool) -> None:
        """The end of the request: statistics, then the last response or the lone final flag."""
        request = ctx.request
        if outputs is None and not responded and not self._decoupled:
            request.sink.fail(InvalidArgumentError(  # type: ignore[union-attr]
                f"in ensemble '{self._name}', unexpected deadlock, at least one output is not set while no more "
                "ensemble steps can be made"), "OTHER")
            return
        t = request.times
        t.compute_input_end = t.compute_start + ctx.durations[0]
        t.compute_infer_end = t.compute_input_end + ctx.durations[1]
        t.compute_output_end = t.compute_infer_end + ctx.durations[2]
        self._runner.stats.record_execution(
            request.batch_size or 1, t.compute_start, t.compute_input_end, t.compute_infer_end, t.compute_output_end
        )
        if outputs is not None:
            self._send(ctx, outputs, final=True)
        else:
            request.sink.send(None, final=True)  # type: ignore[union-attr]


def _sequence_override(parameters: dict[str, Any], sub: InferenceRequest) -> tuple[Any, int]:
    """The (correlation id, flags) downstream steps run with: the step's own, or what its response sets.

    Triton's ``ConsumeResponse``: ``sequence_id`` (int or string), ``sequence_start`` and
    ``sequence_end`` (bools) in a response's parameters replace them; the flags then hold only the
    flags those parameters set.
    """
    if not parameters or not ({"sequence_id", "sequence_start", "sequence_end"} & parameters.keys()):
        return sub.correlation_id, sub.flags
    corrid: Any = sub.correlation_id
    flags = 0
    if "sequence_id" in parameters:
        value = parameters["sequence_id"]
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise InvalidArgumentError(
                "expected parameter 'sequence_id' to be TRITONSERVER_PARAMETER_INT or TRITONSERVER_PARAMETER_STRING"
            )
        corrid = value
    for key, flag in (("sequence_start", RequestFlag.SEQUENCE_START), ("sequence_end", RequestFlag.SEQUENCE_END)):
        if key in parameters:
            value = parameters[key]
            if not isinstance(value, bool):
                raise InvalidArgumentError(f"expect parameter '{key}' to be TRITONSERVER_PARAMETER_BOOL")
            if value:
                flags |= int(flag)
    return corrid, flags


def _same_error(error: TritonLiteError) -> TritonLiteError:
    """A fresh exception of the step's type and message (the step's own object stays with its future)."""
    try:
        copy = type(error)(error.message)
        copy.code = error.code
        return copy
    except Exception:
        return error


__all__ = ["EnsembleScheduler"]
