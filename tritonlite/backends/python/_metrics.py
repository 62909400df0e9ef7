"""``pb_utils.MetricFamily`` / ``Metric``: custom Prometheus metrics from Python models (SPEC §5.6).

A family is registered in the engine of the model that creates it (the current model context) and
shown on that engine's ``/metrics`` after the ``nv_*`` families; it and its metrics go away when that
model version unloads. Outside a model, or when the engine has metrics disabled, a family still works
but is shown nowhere. Errors are :class:`TritonModelException` with python_backend's wording.
"""

from __future__ import annotations

import enum
from typing import Any, Sequence

from tritonlite.backends.python._context import current_context
from tritonlite.backends.python._types import TritonModelException, as_text
from tritonlite.errors import TritonLiteError
from tritonlite.metrics.custom import COUNTER, GAUGE, HISTOGRAM, CustomFamily, CustomSeries


class MetricKind(enum.IntEnum):
    COUNTER = 0
    GAUGE = 1
    HISTOGRAM = 2


_KIND_NAMES = {MetricKind.COUNTER: COUNTER, MetricKind.GAUGE: GAUGE, MetricKind.HISTOGRAM: HISTOGRAM}


class Metric:
    """One labelled metric of a family (``MetricFamily.Metric(labels, buckets)``)."""

    def __init__(self, series: CustomSeries) -> None:
        self._series = series

    def increment(self, value: float) -> None:
        """Add ``value`` (counters: non-negative only; gauges: any sign)."""
        _call("Failed to increment metric value: ", self._series.increment, value)

    def set(self, value: float) -> None:
        """Set a gauge."""
        _call("Failed to set metric value: ", self._series.set, value)

    def observe(self, value: float) -> None:
        """Record one observation in a histogram."""
        _call("Failed to observe metric value: ", self._series.observe, value)

    def value(self) -> float:
        """The current value of a counter or gauge."""
        return float(_call("Failed to get metric value: ", self._series.get))


class MetricFamily:
    """``MetricFamily(name, description, kind)`` with kind ``MetricFamily.COUNTER``, ``GAUGE`` or ``HISTOGRAM``."""

    MetricKind = MetricKind
    COUNTER = MetricKind.COUNTER
    GAUGE = MetricKind.GAUGE
    HISTOGRAM = MetricKind.HISTOGRAM

    def __init__(self, name: str, description: str, kind: int) -> None:
        if name is None or description is None or kind is None:
            raise TypeError("MetricFamily needs a name, a description and a kind")
        name, description = as_text(name, "name"), as_text(description, "description")
        try:
            kind_name = _KIND_NAMES[MetricKind(int(kind))]
        except (ValueError, TypeError):
            raise TritonModelException(
                "Error when creating MetricFamily: Unsupported kind passed to MetricFamily constructor."
            ) from None
        ctx = current_context()
        registry = getattr(ctx.engine, "metrics_registry", None) if ctx is not None else None
        self._owner: Any = None
        try:
            if registry is not None and registry.enabled:
                self._owner = (ctx.model_name, ctx.model_version)  # type: ignore[union-attr]
                self._family = registry.custom.family(name, description, kind_name, owner=self._owner)
            else:
                self._family = CustomFamily(name, description, kind_name)
        except TritonLiteError as exc:
            raise TritonModelException(f"Error when creating MetricFamily: {exc.message}") from exc
        self.name = name
        self.description = description
        self.kind = MetricKind(int(kind))

    def Metric(self, labels: dict[str, str] | None = None, buckets: Sequence[float] | None = None) -> Metric:  # noqa: N802
        """The metric with these labels (created on first use); ``buckets`` (upper bounds) only for histograms."""
        try:
            series = self._family.metric(labels, buckets, owner=self._owner)
        except TritonLiteError as exc:
            raise TritonModelException(f"Error when creating Metric: {exc.message}") from exc
        return Metric(series)

    def __repr__(self) -> str:
        return f"MetricFamily(name={self.name!r}, kind={self.kind.name})"


def _call(prefix: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except TritonLiteError as exc:
        raise TritonModelException(prefix + exc.message) from exc


__all__ = ["Metric", "MetricFamily", "MetricKind"]
