"""OpenTelemetry export of request traces (``trace_mode=opentelemetry``; extra ``tritonlite[tracing]``).

Spans follow Triton's ``tracer.cc``: a root ``InferRequest`` span (child of the W3C ``traceparent``
the client sent, if any), one span per model named after it with the attributes
``triton.model_name``, ``triton.model_version``, ``triton.trace_id``, ``triton.trace_parent_id``,
``triton.request_id`` and the REQUEST/QUEUE timestamps as events, and under it a ``compute``
span with the COMPUTE_* events. An ensemble's steps are model spans under the ensemble's span.
The provider is this engine's own (never the process-global one) and exports over OTLP/HTTP
through a batch span processor with Triton's ``bsp_*`` settings. Spans are made when a trace tree is
done, with the ids each trace fixed when it started (``RequestTrace.span_id`` / ``otel_trace_id``),
so the context a Python model handed on during execute (``get_context``) names its real span.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Mapping

from tritonlite.errors import UnsupportedError
from tritonlite.tracing.settings import OTEL_DEFAULTS

_MODEL_EVENTS = ("REQUEST_START", "QUEUE_START", "REQUEST_END")


class _PresetIds:
    """The SDK's id generator, except that the next span (and root trace) id can be fixed by this thread."""

    def __init__(self, fallback: Any) -> None:
        self._fallback = fallback
        self._next = threading.local()

    def preset(self, span_id: int, trace_id: int = 0) -> None:
        self._next.span_id, self._next.trace_id = span_id, trace_id

    def generate_span_id(self) -> int:
        value = getattr(self._next, "span_id", 0)
        self._next.span_id = 0
        return value or self._fallback.generate_span_id()

    def generate_trace_id(self) -> int:  # asked only for a span without a valid parent (the root)
        value = getattr(self._next, "trace_id", 0)
        self._next.trace_id = 0
        return value or self._fallback.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        return True


class OtelExporter:
    """One engine's TracerProvider + OTLP/HTTP exporter; :meth:`export` turns a finished trace tree into spans."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
            from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
            from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, set_span_in_context
            from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
        except ImportError as exc:
            raise UnsupportedError(
                f"trace mode 'opentelemetry' needs opentelemetry-sdk and its OTLP HTTP exporter ({exc}); "
                "install 'tritonlite[tracing]'"
            ) from exc
        cfg = {**OTEL_DEFAULTS, **config}
        attrs = {"service.name": "triton-inference-server"}
        for item in cfg.get("resource") or []:
            key, _, value = item.partition("=")
            attrs[key] = value
        self._ids = _PresetIds(RandomIdGenerator())
        self._provider = TracerProvider(resource=Resource.create(attrs), id_generator=self._ids)
        self._span_context = lambda trace_id, span_id: NonRecordingSpan(
            SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)))
        self._provider.add_span_processor(BatchSpanProcessor(
            OTLPSpanExporter(endpoint=cfg["url"]),
            max_queue_size=int(cfg["bsp_max_queue_size"]),
            schedule_delay_millis=float(cfg["bsp_schedule_delay"]),
            max_export_batch_size=int(cfg["bsp_max_export_batch_size"]),
        ))
        self._tracer = self._provider.get_tracer("triton-server")
        self._kind = SpanKind.SERVER
        self._in_context = set_span_in_context
        self._propagator = TraceContextTextMapPropagator()
        #: monotonic ns + offset = wall-clock ns (OpenTelemetry timestamps are wall clock; Triton does the same)
        self._offset = time.time_ns() - time.monotonic_ns()

    def export(self, trace: Any) -> None:
        if trace.parent is not None:  # a child that ended after its tree was exported: under its parent's span
            parent = self._span_context(trace.otel_trace_id, trace.parent.span_id)
            self._model_span(trace, self._in_context(parent))
            return
        off = self._offset
        ctx = self._propagator.extract({"traceparent": trace.context}) if trace.context else None
        self._ids.preset(0, trace.otel_trace_id)  # the root span's trace id, unless the client's context gives one
        stamps = dict(trace.frontend)
        begin = min([trace.start_ns, *stamps.values()])
        end = max([trace.end_ns, *stamps.values()])
        root = self._tracer.start_span("InferRequest", context=ctx, kind=self._kind, start_time=begin + off)
        for name, ns in sorted(trace.frontend, key=lambda p: p[1]):
            root.add_event(name, timestamp=ns + off)
        self._model_span(trace, self._in_context(root))
        root.end(end_time=end + off)

    def _model_span(self, t: Any, parent_ctx: Any) -> None:
        off = self._offset
        attributes: dict[str, Any] = {
            "triton.model_name": t.model_name,
            "triton.model_version": int(t.model_version),
            "triton.trace_id": int(t.id),
            "triton.trace_parent_id": int(t.parent.id) if t.parent is not None else 0,
        }
        if t.request_id:
            attributes["triton.request_id"] = t.request_id
        self._ids.preset(t.span_id)
        span = self._tracer.start_span(t.model_name, context=parent_ctx, kind=self._kind,
                                       start_time=t.start_ns + off, attributes=attributes)
        times = dict(t.times)
        for name in _MODEL_EVENTS[:2]:
            if name in times:
                span.add_event(name, timestamp=times[name] + off)
        ctx = self._in_context(span)
        if "COMPUTE_START" in times:
            compute = self._tracer.start_span("compute", context=ctx, kind=self._kind, start_time=times["COMPUTE_START"] + off)
            for name in ("COMPUTE_START", "COMPUTE_INPUT_END", "COMPUTE_OUTPUT_START", "COMPUTE_END"):
                if name in times:
                    compute.add_event(name, timestamp=times[name] + off)
            compute.end(end_time=times.get("COMPUTE_END", t.end_ns) + off)
        for child in t.children:
            self._model_span(child, ctx)
        span.add_event("REQUEST_END", timestamp=t.end_ns + off)
        span.end(end_time=t.end_ns + off)

    def shutdown(self) -> None:
        """Export what is batched and stop the processor thread."""
        self._provider.shutdown()


__all__ = ["OtelExporter"]
