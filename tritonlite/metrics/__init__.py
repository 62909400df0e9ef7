"""Prometheus metrics with Triton's names (SPEC appendix A): one registry per engine.

    engine = InferenceEngine(repo, metrics_config={"summary_latencies": True})
    text = engine.metrics()                       # the /metrics text, in-process
    with MetricsServer(engine, port=8002):        # or serve it
        ...

Nothing here imports prometheus_client: the text is written directly (Triton's counters have no
``_total`` suffix). NVML (``nvidia-ml-py``) is imported only when an engine asks for GPU metrics.
"""

from typing import Any

from tritonlite.metrics.custom import CustomFamily, CustomSeries
from tritonlite.metrics.registry import BUILTIN_FAMILIES, MetricsConfig, MetricsRegistry


def __getattr__(name: str) -> Any:
    # the HTTP endpoint (and http.server) is imported only by those who serve it
    if name in ("MetricsServer", "serve"):
        from tritonlite.metrics import server

        return getattr(server, name)
    raise AttributeError(f"module 'tritonlite.metrics' has no attribute '{name}'")


__all__ = [
    "BUILTIN_FAMILIES",
    "CustomFamily",
    "CustomSeries",
    "MetricsConfig",
    "MetricsRegistry",
    "MetricsServer",
    "serve",
]
