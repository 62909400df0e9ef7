"""Request tracing: Triton's JSON trace file (``trace_mode=triton``) or OpenTelemetry spans.

The engine asks :meth:`Tracer.start` for a trace only when some setting has tracing on (or the
request carries a parent trace), so tracing off costs one attribute test per request. A trace
records nothing while the request runs: when the request completes, :meth:`RequestTrace.finish`
reads the request's own timestamps (``RequestTimes``, the points that feed statistics and metrics)
and its tensors, and the tracer writes or exports them. An ensemble's step requests and the BLS
requests a Python model makes with ``trace=request.trace()`` get child traces (``parent_id``); the
whole tree is written when the top-level request ends (a child that ends later is written alone).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import threading
import time
from typing import Any, Mapping

import numpy as np

from tritonlite.tracing.settings import parse_trace_config, TraceSettings

_log = logging.getLogger("tritonlite.tracing")


class RequestTrace:
    """One traced request: ids, the setting that sampled it, and what it collected at completion."""

    __slots__ = ("tracer", "id", "parent", "root", "setting", "model_name", "model_version", "request_id",
                 "start_ns", "end_ns", "times", "tensors", "children", "context", "frontend", "frontend_pending",
                 "written", "span_id", "otel_trace_id")

    def __init__(self, tracer: "Tracer", setting: Mapping[str, Any], model_name: str, model_version: int,
                 request_id: str, parent: "RequestTrace | None" = None, context: str = "") -> None:
        self.tracer = tracer
        self.id = next(tracer._ids)
        self.parent = parent
        self.root: RequestTrace = parent.root if parent is not None else self
        self.setting = setting
        self.model_name = model_name
        self.model_version = model_version
        self.request_id = request_id
        self.start_ns = time.monotonic_ns()
        self.end_ns = 0
        self.times: list[tuple[str, int]] = []
        self.tensors: list[tuple[str, str, np.ndarray]] = []
        self.children: list[RequestTrace] = []
        #: the W3C ``traceparent`` a door received with the request (OpenTelemetry mode)
        self.context = context
        #: timestamps a door adds around the engine (``HTTP_RECV_START`` ...), written with the root
        self.frontend: list[tuple[str, int]] = []
        #: a door that adds timestamps after the engine is done (``HTTP_SEND_END``) sets this and calls :meth:`close`
        self.frontend_pending = False
        #: set (under the tracer's lock) once this root's tree is written: a child ending later is written alone
        self.written = False
        #: OpenTelemetry ids fixed now, so a model can hand its span's context on (``get_context``) before export
        self.span_id = 0
        self.otel_trace_id = 0
        if setting["trace_mode"] == "opentelemetry":
            self.span_id = random.getrandbits(64) or 1
            self.otel_trace_id = self.root.otel_trace_id if parent is not None else _trace_id_of(context)

    @property
    def tensors_on(self) -> bool:
        return "TENSORS" in self.setting["trace_level"]

    def child(self, model_name: str, model_version: int, request_id: str) -> "RequestTrace":
        """The trace of a request this one spawned (an ensemble step, a BLS request): same setting, ``parent_id`` = this id.

        Core's ``InferenceTrace::SpawnChildTrace``: the child has its own id and this one's level and output.
        """
        return RequestTrace(self.tracer, self.setting, model_name, model_version, request_id, parent=self)

    def context_json(self) -> str:
        """What python_backend's ``InferenceTrace.get_context()`` returns: in OpenTelemetry mode the JSON
        ``{"traceparent": "00-<trace id>-<this model span's id>-01"}`` (Triton's ``PrepareTraceContext``), else ""."""
        if not self.span_id:
            return ""
        return json.dumps({"traceparent": f"00-{self.otel_trace_id:032x}-{self.span_id:016x}-01"})

    def finish(self, request: Any, end_ns: int, outputs: Mapping[str, np.ndarray] | None) -> None:
        """The request completed: collect its timestamps (and tensors), then write the tree if this is the root."""
        self.end_ns = end_ns
        t = request.times
        points = [("REQUEST_START", self.start_ns), ("QUEUE_START", t.queue_start), ("COMPUTE_START", t.compute_start),
                  ("COMPUTE_INPUT_END", t.compute_input_end), ("COMPUTE_OUTPUT_START", t.compute_infer_end),
                  ("COMPUTE_END", t.compute_output_end), ("REQUEST_END", end_ns)]
        self.times = [(name, ns) for name, ns in points if ns]
        if self.tensors_on:
            self.tensors = [("TENSOR_QUEUE_INPUT", k, v) for k, v in request.inputs.items()]
            self.tensors += [("TENSOR_BACKEND_INPUT", k, v) for k, v in request.backend_inputs.items()]
            self.tensors += [("TENSOR_BACKEND_OUTPUT", k, v) for k, v in (outputs or {}).items()]
        if self.parent is not None:
            with self.tracer._lock:
                late = self.root.written
                if not late:
                    self.parent.children.append(self)
            if late:  # e.g. a BLS request of a decoupled model that outlived its parent request
                self.tracer._write(self, root=False)
        elif not self.frontend_pending:
            self.tracer._write(self)

    def close(self) -> None:
        """Called by a door that set ``frontend_pending``, once its own timestamps are in (exactly once)."""
        if self.frontend_pending:
            self.frontend_pending = False
            if self.end_ns:
                self.tracer._write(self)

    def walk(self) -> list["RequestTrace"]:
        out = [self]
        for c in self.children:
            out.extend(c.walk())
        return out


def _trace_id_of(traceparent: str) -> int:
    """The trace id of a W3C ``traceparent`` (``00-<32 hex>-<16 hex>-<2 hex>``), or a fresh random one."""
    parts = traceparent.split("-") if traceparent else ()
    if len(parts) == 4 and len(parts[1]) == 32:
        try:
            value = int(parts[1], 16)
        except ValueError:
            value = 0
        if value:
            return value
    return random.getrandbits(128) or 1


def _tensor_data(arr: np.ndarray) -> str:
    """Triton's ``data`` text: the flat values comma-separated (BYTES quoted, bools 1/0)."""
    flat = np.asarray(arr).reshape(-1)
    if flat.dtype == object or flat.dtype.kind in "SU":
        return ",".join('"' + (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)) + '"' for v in flat)
    if flat.dtype == np.bool_:
        return ",".join("1" if v else "0" for v in flat)
    if flat.dtype.kind == "f":
        return ",".join(format(float(v), "g") for v in flat)
    return ",".join(str(int(v)) for v in flat)


def triton_entries(trace: RequestTrace) -> list[dict[str, Any]]:
    """The JSON objects Triton's trace file holds for one trace tree (core ``TraceActivity`` order)."""
    from tritonlite.datatypes import DataType

    out: list[dict[str, Any]] = []
    for t in trace.walk():
        head: dict[str, Any] = {"id": t.id, "model_name": t.model_name, "model_version": t.model_version}
        if t.request_id:
            head["request_id"] = t.request_id
        if t.parent is not None:
            head["parent_id"] = t.parent.id
        out.append(head)
        stamps = sorted((t.frontend if t is trace else []) + t.times, key=lambda p: p[1])
        tensors = {"TENSOR_QUEUE_INPUT": [], "TENSOR_BACKEND_INPUT": [], "TENSOR_BACKEND_OUTPUT": []}
        for activity, name, arr in t.tensors:
            arr = np.asarray(arr)
            tensors[activity].append({"id": t.id, "activity": activity, "tensor": {
                "name": name, "data": _tensor_data(arr), "shape": ",".join(str(d) for d in arr.shape),
                "dtype": DataType.from_numpy(arr.dtype).protocol_name}})
        after = {"QUEUE_START": "TENSOR_QUEUE_INPUT", "COMPUTE_START": "TENSOR_BACKEND_INPUT",
                 "COMPUTE_OUTPUT_START": "TENSOR_BACKEND_OUTPUT"}
        for name, ns in stamps:
            out.append({"id": t.id, "timestamps": [{"name": name, "ns": ns}]})
            if name in after:
                out.extend(tensors.pop(after[name]))
        for rest in tensors.values():
            out.extend(rest)
    return out


class TraceFile:
    """Triton's trace file: one JSON array in ``path``, or ``path.0``, ``path.1`` ... every ``log_frequency`` traces.

    Without ``log_frequency`` each trace is appended to ``path`` at once and the file stays a valid
    JSON array. With it, traces are kept until ``log_frequency`` of them are collected (or the
    setting's ``trace_count`` is used up), then written as the next indexed file; what remains at
    close goes to one more indexed file.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._buffer: list[str] = []
        self._index = 0
        self._main: Any = None
        self._log_frequency = 0

    def write(self, entries: list[dict[str, Any]], log_frequency: int, limited: bool, exhausted: bool) -> None:
        """Add one trace tree; ``limited``: the setting has a ``trace_count``, ``exhausted``: it is used up."""
        text = json.dumps(entries, separators=(",", ":"))[1:-1]
        with self._lock:
            self._log_frequency = log_frequency
            if log_frequency == 0 and not limited:
                self._append_main(text)
                return
            self._buffer.append(text)
            if exhausted or (log_frequency and len(self._buffer) >= log_frequency):
                self._flush_indexed()

    def _append_main(self, text: str) -> None:
        """Append to ``path``, overwriting the closing bracket, so the file is always a JSON array."""
        try:
            if self._main is None:
                self._main = open(self.path, "w+b")  # noqa: SIM115 - kept open until close()
                self._main.write(b"[" + text.encode() + b"]")
            else:
                self._main.seek(-1, os.SEEK_END)
                self._main.write(b"," + text.encode() + b"]")
            self._main.flush()
        except OSError as exc:
            _log.error("failed writing trace file %s: %s", self.path, exc)

    def _flush_indexed(self) -> None:
        if not self._buffer:
            return
        name = f"{self.path}.{self._index}"
        self._index += 1
        text, self._buffer = ",".join(self._buffer), []
        try:
            with open(name, "w") as f:
                f.write("[" + text + "]")
        except OSError as exc:
            _log.error("failed writing trace file %s: %s", name, exc)

    def close(self) -> None:
        """What is still kept goes to the next indexed file (``log_frequency`` set) or to ``path`` (Triton)."""
        with self._lock:
            if self._log_frequency:
                self._flush_indexed()
            elif self._buffer:
                text, self._buffer = ",".join(self._buffer), []
                self._append_main(text)
            if self._main is not None:
                self._main.close()
                self._main = None


class Tracer:
    """The engine's tracing: its settings, the trace ids, the trace files and the OpenTelemetry exporter."""

    def __init__(self, trace_config: Any = None) -> None:
        initial, self.otel_config = parse_trace_config(trace_config)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._files: dict[str, TraceFile] = {}
        self._inflight = 0
        self._otel: Any = None
        self.settings = TraceSettings(initial, on_change=None)
        if self.settings.trace_settings()["trace_mode"] == "opentelemetry" and self.settings.active:
            self._exporter()  # fail now (missing extra, bad settings) rather than at the first request

    @property
    def active(self) -> bool:
        return self.settings.active

    def start(self, request: Any, model_version: int) -> None:
        """Give ``request`` a trace if a setting samples it (or make its parent's trace a child); no-op otherwise."""
        parent = request.trace
        if parent is not None:
            request.trace = parent.child(request.model_name, model_version, request.id)
            return
        if not request.trace_sampled:  # a BLS request without trace=: never traced on its own (Triton)
            return
        setting = self.settings.sample(request.model_name, propagated=bool(request.trace_context))
        if setting is None:
            return
        if setting["trace_mode"] == "triton" and not setting["trace_file"]:
            return  # Triton: "trace file name is not given" makes the setting invalid
        with self._lock:
            self._inflight += 1
        trace = RequestTrace(self, setting, request.model_name, model_version, request.id, context=request.trace_context)
        if request.trace_frontend is not None:  # the door adds its send timestamps, then calls close()
            trace.frontend = list(request.trace_frontend)
            trace.frontend_pending = True
        request.trace = trace

    def _write(self, trace: RequestTrace, root: bool = True) -> None:
        """Write (or export) a finished tree; ``root=False``: a child that ended after its root was written."""
        setting = trace.setting
        with self._lock:
            if trace.written:  # a door's close() and the engine's finish() may race: write once
                return
            trace.written = True
            if root:
                self._inflight -= 1
            inflight = self._inflight
        try:
            if setting["trace_mode"] == "opentelemetry":
                self._exporter().export(trace)
                return
            path = setting["trace_file"]
            with self._lock:
                f = self._files.get(path)
                if f is None:
                    f = self._files[path] = TraceFile(path)
            exhausted = self.settings.remaining(trace.model_name) == 0 and inflight == 0
            f.write(triton_entries(trace), int(setting["log_frequency"]), int(setting["trace_count"]) >= 0, exhausted)
        except Exception:  # tracing must never fail a request
            _log.exception("writing the trace of model '%s' failed", trace.model_name)

    def _exporter(self) -> Any:
        if self._otel is None:
            from tritonlite.tracing.otel import OtelExporter

            with self._lock:
                if self._otel is None:
                    self._otel = OtelExporter(self.otel_config)
        return self._otel

    def close(self) -> None:
        """Write what the trace files still hold and flush the OpenTelemetry exporter."""
        with self._lock:
            files = list(self._files.values())
        for f in files:
            f.close()
        if self._otel is not None:
            self._otel.shutdown()


__all__ = ["Tracer", "RequestTrace", "TraceFile", "triton_entries"]
