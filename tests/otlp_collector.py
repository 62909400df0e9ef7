"""A tiny OTLP/HTTP trace receiver on 127.0.0.1 for the OpenTelemetry tests (no collector binary needed)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class OtlpCollector:
    """A tiny OTLP/HTTP receiver: keeps every ExportTraceServiceRequest body posted to /v1/traces."""

    def __init__(self) -> None:
        bodies: list[bytes] = []
        got = threading.Condition()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with got:
                    bodies.append(body if self.path == "/v1/traces" else b"")
                    got.notify_all()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.bodies, self.got = bodies, got
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, name="otlp-collector", daemon=True)
        self.thread.start()

    def spans(self) -> list[Any]:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        out = []
        for body in self.bodies:
            msg = ExportTraceServiceRequest()
            msg.ParseFromString(body)
            for rs in msg.resource_spans:
                for ss in rs.scope_spans:
                    out.extend((rs.resource, s) for s in ss.spans)
        return out

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def span_attributes(span: Any) -> dict[str, Any]:
    out = {}
    for kv in span.attributes:
        v = kv.value
        out[kv.key] = v.string_value if v.HasField("string_value") else v.int_value
    return out
