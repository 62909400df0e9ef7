"""``InferenceEngine``: the composition root every door talks to.

It owns the backend registry, the model manager (and its poll thread) and the request path:
build an :class:`InferenceRequest`, validate it against the model version, queue it on that
version's scheduler and hand back an :class:`InferFuture`.
"""

from __future__ import annotations

import glob
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from tritonlite import __version__
from tritonlite.backends.registry import BackendRegistry
from tritonlite.cache import create_cache
from tritonlite.errors import InvalidArgumentError, TritonLiteError, UnavailableError, UnsupportedError
from tritonlite.futures import InferFuture
from tritonlite.metrics.registry import MetricsRegistry
from tritonlite.model import ModelVersion
from tritonlite.model_manager import ModelManager
from tritonlite.remote_repository import RemoteRepository, is_remote
from tritonlite.infer_options import InferOptions, core_request
from tritonlite.request import InferenceRequest, InferResult, ResponseSink, parse_version
from tritonlite.scheduling.rate_limiter import RateLimiter
from tritonlite.tracing import Tracer
from tritonlite.streams import ResponseStream
from tritonlite.stats import ModelStats

try:
    from typing import Unpack  # Python 3.11+
except ImportError:  # Python 3.10: only type checkers read the annotation
    if TYPE_CHECKING:
        from typing_extensions import Unpack

CONTROL_MODES = ("none", "poll", "explicit")

#: protocol extensions the engine itself implements (servers add their own)
EXTENSIONS = (
    "model_repository",
    "model_repository(unload_dependents)",
    "model_configuration",
    "parameters",
    "statistics",
)


def _gpu_count() -> int:
    """NVIDIA GPUs visible to this process (device nodes; no driver library needed)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    n = len(glob.glob("/dev/nvidia[0-9]*"))
    if visible is not None:
        ids = [v for v in visible.split(",") if v.strip() and v.strip() != "-1"]
        n = min(n, len(ids))
    return n


class InferenceEngine:
    """Triton's feature set in-process: point it at a model repository and call :meth:`infer`.

    ``model_repository`` is one path or a list of paths; a path may be a cloud URL (``s3://bucket/path``, ``s3://host:port/bucket/path``, ``gs://``, ``as://``: :mod:`tritonlite.remote_repository`, extra ``[cloud]``). ``model_control_mode`` is ``"none"`` (load
    everything now), ``"poll"`` (also rescan every ``repository_poll_secs``) or ``"explicit"`` (load
    only ``startup_models``; ``"*"`` means all; then use :meth:`load_model` / :meth:`unload_model`).

    Metrics (Triton's ``--allow-metrics``, ``--allow-gpu-metrics``, ``--allow-cpu-metrics``,
    ``--metrics-interval-ms``, ``--metrics-config``): ``metrics``, ``gpu_metrics``, ``cpu_metrics``,
    ``metrics_interval_ms`` and ``metrics_config`` (e.g. ``{"summary_latencies": True}``); the text is
    :meth:`metrics`, served by ``tritonlite.metrics.MetricsServer``.

    Rate limiter (Triton's ``--rate-limit``, ``--rate-limit-resource``): ``rate_limit="execution_count"``
    makes every instance wait for its ``instance_group.rate_limiter`` resources before it executes;
    ``rate_limit_resources`` sets counts as ``"NAME:COUNT[:DEVICE]"`` strings or tuples (default: the
    largest count any instance asks). See :mod:`tritonlite.scheduling.rate_limiter`.

    Response cache (Triton's ``--cache-config``): ``cache_config={"local": {"size": BYTES}}`` or
    ``{"redis": {"host": ..., "port": ...}}``; models opt in with ``response_cache { enable: true }``.

    Tracing (Triton's ``--trace-config``): ``trace_config`` is a list of ``"[<mode>,]<setting>=<value>"``
    strings (``["level=TIMESTAMPS", "rate=1", "triton,file=/tmp/trace.json"]``) or a mapping; settings
    change at run time with :meth:`update_trace_settings`. See :mod:`tritonlite.tracing`.
    """

    def __init__(
        self,
        model_repository: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        model_control_mode: str = "none",
        startup_models: Iterable[str] = (),
        strict_model_config: bool = False,
        repository_poll_secs: float = 15.0,
        model_load_thread_count: int = 4,
        strict_readiness: bool = True,
        server_id: str = "triton",
        backends: Mapping[str, Callable[[], Any]] | None = None,
        metrics: bool = True,
        gpu_metrics: bool = True,
        cpu_metrics: bool = True,
        metrics_interval_ms: int = 2000,
        metrics_config: Mapping[str, Any] | Iterable[str] | None = None,
        rate_limit: str = "off",
        rate_limit_resources: Iterable[str | Sequence[Any]] = (),
        cache_config: Mapping[str, Mapping[str, Any]] | None = None,
        trace_config: Iterable[str] | Mapping[str, Any] | None = None,
    ) -> None:
        if model_control_mode not in CONTROL_MODES:
            raise InvalidArgumentError(f"model_control_mode must be one of {CONTROL_MODES}, got '{model_control_mode}'")
        roots = [model_repository] if isinstance(model_repository, (str, os.PathLike)) else list(model_repository)
        if not roots:
            raise InvalidArgumentError("at least one model repository path is required")
        for r in roots:
            if not is_remote(r) and not Path(r).expanduser().resolve().is_dir():
                raise InvalidArgumentError(f"model repository path '{Path(r).expanduser().resolve()}' is not a directory")
        # cloud URLs (s3://, gs://, as://) become RemoteRepository roots with local copies
        paths: list[Any] = [RemoteRepository(r) if is_remote(r) else Path(r).expanduser().resolve() for r in roots]
        self.control_mode = model_control_mode
        self.strict_readiness = strict_readiness
        self.server_id = server_id
        self.registry = BackendRegistry()
        for name, factory in (backends or {}).items():
            self.registry.register(name, factory)
        self.rate_limiter = RateLimiter(rate_limit, rate_limit_resources)
        self.tracer = Tracer(trace_config)
        #: the response cache models with ``response_cache { enable: true }`` use (None: no cache)
        self.response_cache = create_cache(cache_config)
        try:
            self.metrics_registry = MetricsRegistry(
                enabled=metrics, gpu=gpu_metrics, cpu=cpu_metrics, interval_ms=metrics_interval_ms, config=metrics_config
            )
        except BaseException:
            if self.response_cache is not None:
                self.response_cache.close()
            self.tracer.close()
            raise
        if self.response_cache is not None:
            self.metrics_registry.attach_cache(self.response_cache)
        self._manager = ModelManager(
            paths,
            self.registry,
            strict_model_config=strict_model_config,
            engine=self,
            gpu_count=_gpu_count(),
            load_threads=model_load_thread_count,
        )
        self._closed = False
        self._stop_poll = threading.Event()
        self._poll_thread: threading.Thread | None = None

        startup = list(startup_models)
        try:
            self._manager.check_repositories()  # an unreachable cloud repository fails start-up, naming it
            if model_control_mode == "explicit":
                if "*" in startup:
                    if len(startup) > 1:
                        raise InvalidArgumentError("startup model '*' must be the only startup model")
                    startup = list(self._manager.scan())
            else:
                startup = list(self._manager.scan())
            self._manager.load_many(startup)
        except BaseException:
            self._manager.close()
            self.metrics_registry.close()
            if self.response_cache is not None:
                self.response_cache.close()
            self.tracer.close()
            raise
        if model_control_mode == "poll":
            self._poll_thread = threading.Thread(
                target=self._poll_loop, args=(max(0.05, float(repository_poll_secs)),), name="tritonlite.repository.poll", daemon=True
            )
            self._poll_thread.start()

    # ---- lifecycle ----------------------------------------------------------------------------------
    def __enter__(self) -> "InferenceEngine":
        """``with InferenceEngine(...) as engine:`` closes the engine (and joins its threads) on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop polling, drain and unload every model, join every thread the engine started."""
        if self._closed:
            return
        self._closed = True
        self._stop_poll.set()
        if self._poll_thread is not None:
            self._poll_thread.join()
        try:
            self._manager.close()
        finally:
            self.metrics_registry.close()
            if self.response_cache is not None:
                self.response_cache.close()
            self.tracer.close()

    def _poll_loop(self, interval: float) -> None:
        while not self._stop_poll.wait(interval):
            try:
                self._manager.poll()
            except Exception:  # a poll must never kill the poll thread
                import logging

                logging.getLogger("tritonlite.repository").exception("repository poll failed")

    # ---- inference ----------------------------------------------------------------------------------
    def infer(self, model_name: str, inputs: Mapping[str, np.ndarray], **options: Unpack[InferOptions]) -> InferResult:
        """Run one inference and wait for its result.

        ``inputs`` maps each input name to a numpy array of the model's datatype (BYTES: an object
        array of ``bytes`` or ``str``). ``options`` are :class:`~tritonlite.InferOptions`: ``outputs``,
        ``model_version``, ``request_id``, ``parameters``, ``priority``, ``timeout_us``, ``sequence_id``,
        ``sequence_start``, ``sequence_end``. A bad request raises Triton's error
        (:class:`~tritonlite.InvalidArgumentError` for a wrong name, datatype or shape); a misused call
        (``inputs`` not a mapping, an unknown option) raises ``TypeError``.

        Same path as :meth:`submit`, except that an idle instance runs the request in this thread
        (no hand-off to an instance thread: the caller waits anyway).
        """
        return self._submit_request(core_request("infer", model_name, inputs, options), inline=True).result()

    def submit(self, model_name: str, inputs: Mapping[str, np.ndarray], **options: Unpack[InferOptions]) -> InferFuture:
        """Queue one inference and return at once: ``future.result()`` or ``await future``.

        Same inputs and options as :meth:`infer`. Errors of the request arrive through the future (so
        a batch of submits never stops half-way); a misused call raises ``TypeError`` at once.
        Cancelling the future cancels the request.
        """
        try:
            request = core_request("submit", model_name, inputs, options)
        except TritonLiteError as exc:
            fut = InferFuture()
            fut.set_exception(exc)
            return fut
        return self._submit_request(request)

    def stream_infer(self, model_name: str, inputs: Mapping[str, np.ndarray], **options: Unpack[InferOptions]) -> ResponseStream:
        """Run one inference and iterate its responses (``for`` or ``async for``): for decoupled models.

        A decoupled model may send any number of responses per request; the stream ends after the
        one with the final flag. A non-decoupled model yields exactly one result. Same inputs and
        options as :meth:`infer`; an error raises from the iterator and ends the stream.
        """
        try:
            request = core_request("stream_infer", model_name, inputs, options)
        except TritonLiteError as exc:
            stream = ResponseStream()
            stream.push(None, exc, True)
            return stream
        return self._submit_stream(request)

    # ---- the core request path the doors share (HTTP, gRPC, C, Java, BLS, ensembles, workers) --------
    def _submit_stream(self, request: InferenceRequest) -> ResponseStream:
        """Queue a prepared core request whose responses are streamed (decoupled path, BLS too)."""
        stream = ResponseStream(request)
        self._submit_with_callback(request, stream.push)
        return stream

    def _submit_with_callback(
        self, request: InferenceRequest, on_response: Callable[[InferResult | None, TritonLiteError | None, bool], None]
    ) -> None:
        """Queue a prepared core request; call ``on_response(result, error, final)`` for every response.

        The callback runs on engine threads, once per response with the model's own final flag (a
        final flag may come alone, with ``result=None``); an error always comes with ``final=True``,
        including errors before the request reaches a model. This is the push form the C ABI and
        the streaming doors need; :meth:`_submit_stream` is this plus an iterator.
        """
        try:
            mv = self._serving(request)
        except TritonLiteError as exc:
            on_response(None, exc, True)
            return
        if request.trace is not None or self.tracer.settings.active:
            self.tracer.start(request, mv.version)
        request.sink = ResponseSink(_stream_completion(on_response, request, mv.stats))
        try:
            mv.enqueue(request)
        except TritonLiteError as exc:
            request.sink.fail(exc, "OTHER")

    def _loaded_version(self, name: str, version: str | int = "") -> ModelVersion:
        """The READY version a request for ``version`` would run on (doors cache per-version facts on it).

        Raises Triton's lookup errors (NOT_FOUND / UNAVAILABLE) like :meth:`infer` would.
        """
        return self._manager.get(name, parse_version(version))

    def _serving(self, request: InferenceRequest) -> ModelVersion:
        if self._closed:
            raise UnavailableError("the inference engine is closed")
        return self._manager.get(request.model_name, request.model_version)

    def _serving_unary(self, request: InferenceRequest) -> ModelVersion:
        """The version a one-response request runs on; a decoupled model is refused (it streams)."""
        mv = self._serving(request)
        if mv.decoupled:
            raise UnsupportedError(
                f"model '{mv.name}' uses the decoupled transaction policy: use stream_infer to receive its responses"
            )
        return mv

    def _submit_request(self, request: InferenceRequest, inline: bool = False) -> InferFuture:
        """Queue a prepared core request (the path BLS and the servers use).

        ``inline=True`` is for callers that will block on the future anyway (see :meth:`infer`).
        This is :meth:`_submit_unary` settling an :class:`InferFuture`.
        """
        fut = InferFuture()
        fut.request = request
        self._submit_unary(request, fut.settle, inline)
        return fut

    def _submit_unary(
        self,
        request: InferenceRequest,
        on_done: Callable[[InferResult | None, TritonLiteError | None], None],
        inline: bool = False,
    ) -> None:
        """Queue a prepared one-response request; ``on_done(result, error)`` is called exactly once.

        The callback form of :meth:`_submit_request`, for doors that complete requests themselves
        (the HTTP server's event loop): no future, no thread hand-off beyond the engine's own. It
        runs on an engine thread, or in the caller's thread for errors found before queueing and for
        ``inline`` runs; it must be quick and must not raise.
        """
        try:
            mv = self._serving_unary(request)
        except TritonLiteError as exc:
            on_done(None, exc)
            return
        if request.trace is not None or self.tracer.settings.active:
            self.tracer.start(request, mv.version)
        request.sink = ResponseSink(_unary_completion(on_done, request, mv.stats))
        try:
            mv.enqueue(request, inline)
        except TritonLiteError as exc:
            request.sink.fail(exc, "OTHER")

    def _submit_unary_many(
        self,
        items: Sequence[tuple[InferenceRequest, Callable[[InferResult | None, TritonLiteError | None], None]]],
        inline: bool = False,
    ) -> None:
        """:meth:`_submit_unary` for a burst of requests a door collected in one pass of its event loop.

        Requests for the same model version go to its scheduler together, so with ``inline`` a
        dynamic batcher with an idle instance runs them as batches in this thread: per batch, not
        per request, thread hand-offs (none at all).
        """
        groups: dict[tuple[str, int], tuple[ModelVersion, list[InferenceRequest]]] = {}
        tracing = self.tracer.settings.active
        for request, on_done in items:
            try:
                key = (request.model_name, request.model_version)
                group = groups.get(key)
                if group is None:
                    group = groups[key] = (self._serving_unary(request), [])
            except TritonLiteError as exc:
                on_done(None, exc)
                continue
            mv = group[0]
            if request.trace is not None or tracing:
                self.tracer.start(request, mv.version)
            request.sink = ResponseSink(_unary_completion(on_done, request, mv.stats))
            group[1].append(request)
        for mv, requests in groups.values():
            mv.enqueue_many(requests, inline)

    # ---- health and metadata ------------------------------------------------------------------------
    def is_live(self) -> bool:
        """Triton's liveness: True until :meth:`close` (what ``/v2/health/live`` answers)."""
        return not self._closed

    def is_ready(self) -> bool:
        """Triton's readiness: every model READY (``strict_readiness=True``), else just live."""
        if self._closed:
            return False
        return self._manager.all_ready() if self.strict_readiness else True

    def is_model_ready(self, name: str, version: str | int = "") -> bool:
        """Whether ``name`` (``version``, default: the policy's versions) can take requests; never raises."""
        try:
            return self._manager.get(name, parse_version(version)).is_ready()
        except TritonLiteError:
            return False

    def server_metadata(self) -> dict[str, Any]:
        """Triton's server metadata: ``{"name", "version", "extensions"}`` (the doors add their extensions)."""
        return {"name": self.server_id, "version": __version__, "extensions": list(EXTENSIONS)}

    def model_metadata(self, name: str, version: str | int = "") -> dict[str, Any]:
        """Triton's model metadata: versions, platform, and shapes with -1 for the batch dim."""
        v = parse_version(version)
        mv = self._manager.get(name, v)
        cfg = mv.config
        batch = [-1] if cfg.max_batch_size > 0 else []
        versions = [str(v)] if v > 0 else [str(x) for x in sorted(self._manager.records[name].serving)]

        def tensors(items: Any) -> list[dict[str, Any]]:
            from tritonlite.datatypes import DataType

            return [
                {"name": t.name, "datatype": DataType(t.data_type).protocol_name, "shape": batch + [int(d) for d in t.dims]}
                for t in items
            ]

        return {
            "name": name,
            "versions": versions,
            "platform": cfg.platform or cfg.backend,
            "inputs": tensors(cfg.input),
            "outputs": tensors(cfg.output),
        }

    def model_config(self, name: str, version: str | int = "") -> dict[str, Any]:
        """The normalised, auto-completed config in Triton's JSON form."""
        return self._manager.get(name, parse_version(version)).config_json

    # ---- repository ---------------------------------------------------------------------------------
    def repository_index(self, ready: bool = False) -> list[dict[str, Any]]:
        """Triton's repository index: every model version found with its ``state`` and ``reason``
        (``ready=True``: only READY ones)."""
        return self._manager.index(ready_only=ready)

    def _require_explicit(self) -> None:
        if self.control_mode != "explicit":
            raise UnavailableError("explicit model load / unload is not allowed if polling is enabled")

    def load_model(self, name: str, config: str | Mapping[str, Any] | None = None, files: Mapping[str, bytes] | None = None) -> None:
        """Load or reload a model (explicit mode); ``config`` is a JSON override, ``files`` ``{"file:1/model.onnx": bytes}``."""
        self._require_explicit()
        self._manager.load(name, config_json=config, files=files)

    def unload_model(self, name: str, unload_dependents: bool = False) -> None:
        """Unload every version of a model (explicit mode); unknown models are a no-op."""
        self._require_explicit()
        self._manager.unload(name, unload_dependents=unload_dependents)

    # ---- metrics ------------------------------------------------------------------------------------
    @property
    def metrics_enabled(self) -> bool:
        """Whether this engine keeps Prometheus metrics (``metrics=True``, the default)."""
        return self.metrics_registry.enabled

    def metrics(self) -> str:
        """The Prometheus text of this engine's metrics (what ``/metrics`` serves; format 0.0.4)."""
        if not self.metrics_registry.enabled:
            raise UnsupportedError("metrics are disabled for this engine (metrics=False)")
        return self.metrics_registry.render()

    # ---- tracing ------------------------------------------------------------------------------------
    def trace_settings(self, model_name: str = "") -> dict[str, Any]:
        """Triton's trace settings (global, or ``model_name``'s own values over them); ``trace_count`` is what is left."""
        if model_name:
            self._manager.get(model_name)  # unknown model: NOT_FOUND, as Triton
        return self.tracer.settings.trace_settings(model_name)

    def update_trace_settings(self, settings: Mapping[str, Any], model_name: str = "") -> dict[str, Any]:
        """Change trace settings at run time (``trace_level``, ``trace_rate``, ``trace_count``, ``log_frequency``,
        ``trace_file``); a None value clears a model's own value (or resets a global one)."""
        if model_name:
            self._manager.get(model_name)
        return self.tracer.settings.update_trace_settings(settings, model_name, local=True)

    # ---- statistics ---------------------------------------------------------------------------------
    def model_statistics(self, name: str = "", version: str | int = "") -> dict[str, Any]:
        """Triton's statistics extension: ``{"model_stats": [...]}`` for ready versions."""
        v = parse_version(version)
        picked: list[ModelVersion] = []
        if not name:
            for rec_name in sorted(self._manager.records):
                rec = self._manager.records[rec_name]
                picked.extend(rec.serving[x] for x in sorted(rec.serving))
        else:
            rec = self._manager.records.get(name)
            if rec is None or not rec.serving:
                raise InvalidArgumentError(f"requested model '{name}' is not available")
            if v > 0:
                if v not in rec.serving:
                    raise InvalidArgumentError(f"requested model version is not available for model '{name}'")
                picked.append(rec.serving[v])
            else:
                picked.extend(rec.serving[x] for x in sorted(rec.serving))
        return {"model_stats": [mv.stats.as_dict() for mv in picked]}



def _stream_completion(
    deliver: Callable[[InferResult | None, TritonLiteError | None, bool], None], request: InferenceRequest, stats: ModelStats
) -> Callable[..., None]:
    """The sink callback of a streamed request: per-response and per-request statistics, then ``deliver``."""
    index = [0]
    first = [True]
    version = str(stats.version)

    def done(result: InferResult | None, error: TritonLiteError | None, final: bool, reason: str) -> None:
        now = time.monotonic_ns()
        t = request.times
        since = now - (t.compute_start or t.queue_start or now)
        if first[0] and t.compute_start and (result is not None or error is not None):
            first[0] = False
            stats.record_first_response(now - t.queue_start)
        if error is not None:
            stats.record_response(index[0], "cancel" if reason == "CANCELED" else "fail", since)
            stats.record_failure(t.queue_start, now, reason, t.compute_start)
        else:
            if result is not None:
                result.model_name = result.model_name or request.model_name
                result.model_version = result.model_version or version
                result.id = result.id or request.id
                if not t.cache_hit:
                    stats.record_response(index[0], "success", since)
            elif final:
                stats.record_response(index[0], "empty_response", since)
            index[0] += 1
            if final and not t.cache_hit:  # a cache hit was counted at its lookup
                infer_end = t.compute_infer_end or now
                stats.record_success(t.queue_start, t.compute_start or now, t.compute_input_end or now, infer_end, now, now)
        if final and request.trace is not None:
            request.trace.finish(request, now, result.outputs if result is not None else None)
        deliver(result, error, final)

    return done


def _unary_completion(
    on_done: Callable[[InferResult | None, TritonLiteError | None], None], request: InferenceRequest, stats: ModelStats
) -> Callable[..., None]:
    """The sink callback of a one-response request: record statistics, then hand over the outcome."""

    def done(result: InferResult | None, error: TritonLiteError | None, final: bool, reason: str) -> None:
        end = time.monotonic_ns()
        t = request.times
        if error is not None:
            stats.record_failure(t.queue_start, end, reason, t.compute_start)
        else:
            if not t.cache_hit:  # a cache hit was counted at its lookup
                stats.record_success(t.queue_start, t.compute_start, t.compute_input_end, t.compute_infer_end, t.compute_output_end, end)
        if request.trace is not None:
            request.trace.finish(request, end, result.outputs if result is not None else None)
        on_done(result if error is None else None, error)

    return done


__all__ = ["InferenceEngine", "parse_version"]
