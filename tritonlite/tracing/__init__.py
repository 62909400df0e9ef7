"""Request tracing (Triton's ``--trace-config`` and trace extension): see :mod:`tritonlite.tracing.tracer`."""

from tritonlite.tracing.settings import TRACE_DEFAULTS, TraceSettings, parse_trace_config
from tritonlite.tracing.tracer import RequestTrace, Tracer

__all__ = ["Tracer", "RequestTrace", "TraceSettings", "parse_trace_config", "TRACE_DEFAULTS"]
