"""Custom metric families (Triton's ``TRITONSERVER_MetricFamily`` / ``TRITONSERVER_Metric``).

Python models reach them through ``pb_utils.MetricFamily``; they are shown on the engine's endpoint
after the ``nv_*`` families. Semantics follow core ``metric_family.cc``: counters only grow, only
gauges ``set``, only histograms ``observe`` and histograms have no ``value``; a family name may be
registered again with the same kind and description (the same family comes back), and a metric with
the same labels is the same series. Errors carry core's messages.

Lifetime: each family and series remembers the models (``owner``) that created it; when a model
version unloads, what only it owned is removed and the Python objects that still point at it are
invalidated (core's "Metric has been invalidated" errors), much as python_backend's stub clears them.
"""

from __future__ import annotations

import threading
from typing import Any, Hashable, Mapping, Sequence

from tritonlite.errors import AlreadyExistsError, InternalError, InvalidArgumentError, UnsupportedError
from tritonlite.metrics._distributions import Histogram
from tritonlite.metrics._text import add_label, family, format_labels, format_value, valid_label_name, valid_metric_name

COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"
KINDS = (COUNTER, GAUGE, HISTOGRAM)


class CustomSeries:
    """One labelled metric of a custom family."""

    __slots__ = ("family", "labels", "label_text", "value", "histogram", "valid", "owners")

    def __init__(self, fam: "CustomFamily", labels: dict[str, str], buckets: Sequence[float] | None) -> None:
        self.family = fam
        self.labels = labels
        self.label_text = format_labels(labels)
        self.value = 0.0
        self.histogram = Histogram(buckets) if fam.kind == HISTOGRAM else None
        self.valid = True
        self.owners: set[Hashable] = set()

    @property
    def kind(self) -> str:
        return self.family.kind

    def increment(self, value: float) -> None:
        value = float(value)
        with self.family.lock:
            self._check("increment")
            if self.family.kind == HISTOGRAM:
                raise UnsupportedError("TRITONSERVER_METRIC_KIND_HISTOGRAM does not support Increment")
            if self.family.kind == COUNTER and value < 0.0:
                raise InvalidArgumentError(
                    "TRITONSERVER_METRIC_KIND_COUNTER can only be incremented monotonically by non-negative values."
                )
            self.value += value

    def set(self, value: float) -> None:
        value = float(value)
        with self.family.lock:
            self._check("set")
            if self.family.kind != GAUGE:
                raise UnsupportedError(f"TRITONSERVER_METRIC_KIND_{self.family.kind.upper()} does not support Set")
            self.value = value

    def observe(self, value: float) -> None:
        value = float(value)
        with self.family.lock:
            self._check("set")
            if self.histogram is None:
                raise UnsupportedError(f"TRITONSERVER_METRIC_KIND_{self.family.kind.upper()} does not support Observe")
            self.histogram.observe(value)

    def get(self) -> float:
        with self.family.lock:
            self._check("get")
            if self.histogram is not None:
                raise UnsupportedError("TRITONSERVER_METRIC_KIND_HISTOGRAM does not support Value")
            return self.value

    def _check(self, verb: str) -> None:
        if not self.valid:
            raise InternalError(f"Could not {verb} metric value. Metric has been invalidated.")


class CustomFamily:
    """A named family of one kind; thread-safe (one lock per family)."""

    def __init__(self, name: str, description: str, kind: str) -> None:
        if kind not in KINDS:
            raise InvalidArgumentError("Unsupported kind passed to MetricFamily constructor.")
        if not valid_metric_name(name):
            raise InvalidArgumentError(f"Invalid metric name: '{name}'")
        self.name = name
        self.description = description
        self.kind = kind
        self.lock = threading.Lock()
        self.series: dict[tuple[tuple[str, str], ...], CustomSeries] = {}
        self.owners: set[Hashable] = set()
        self.valid = True

    def metric(
        self, labels: Mapping[str, Any] | None = None, buckets: Sequence[float] | None = None, owner: Hashable = None
    ) -> CustomSeries:
        """The series with these labels, created on first use (``buckets`` only for histograms)."""
        clean: dict[str, str] = {}
        for k, v in (labels or {}).items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise InvalidArgumentError(
                    f"Parameter [{k}] must have a type of TRITONSERVER_PARAMETER_STRING to be added as a label."
                )
            reserved = ("le",) if self.kind == HISTOGRAM else ()
            if not valid_label_name(k) or k in reserved:
                raise InvalidArgumentError(f"Invalid label name: '{k}'")
            clean[k] = v
        if self.kind == HISTOGRAM:
            if buckets is None:
                raise InvalidArgumentError("Bucket boundaries not found in Metric args.")
            bounds = [float(b) for b in buckets]
            if any(b >= c for b, c in zip(bounds, bounds[1:])):
                raise InvalidArgumentError("Histogram buckets must be in increasing order")
        elif buckets is not None:
            raise InvalidArgumentError(f"Unexpected args found in {self.kind} Metric constructor.")
        key = tuple(sorted(clean.items()))
        with self.lock:
            if not self.valid:
                raise InternalError(f"MetricFamily '{self.name}' has been removed with the model that created it")
            series = self.series.get(key)
            if series is None:
                series = self.series[key] = CustomSeries(self, clean, buckets)
            if owner is not None:
                series.owners.add(owner)
                self.owners.add(owner)
            return series

    def release(self, owner: Hashable) -> bool:
        """Drop ``owner``'s hold; remove series nobody holds. True when the family itself is now unowned."""
        with self.lock:
            for key, series in list(self.series.items()):
                series.owners.discard(owner)
                if not series.owners:
                    series.valid = False
                    del self.series[key]
            self.owners.discard(owner)
            if self.owners:
                return False
            self.valid = False
            for series in self.series.values():
                series.valid = False
            self.series.clear()
            return True

    def render(self, lines: list[str]) -> None:
        with self.lock:
            items = list(self.series.values())
            snap = [(s.label_text, s.value, s.histogram.cumulative() if s.histogram else None,
                     (s.histogram.count, s.histogram.sum) if s.histogram else None) for s in items]
        if self.kind != HISTOGRAM:
            family(lines, self.name, self.kind, self.description, (f"{self.name}{lt} {format_value(v)}" for lt, v, _, _ in snap))
            return
        samples: list[str] = []
        for lt, _, cumulative, totals in snap:
            count, total = totals  # type: ignore[misc]
            samples.append(f"{self.name}_count{lt} {count}")
            samples.append(f"{self.name}_sum{lt} {format_value(total)}")
            for le, c in cumulative:  # type: ignore[union-attr]
                samples.append(f"{self.name}_bucket{add_label(lt, 'le', format_value(le))} {c}")
        family(lines, self.name, HISTOGRAM, self.description, samples)


class CustomFamilies:
    """The custom families of one engine, by name."""

    def __init__(self, reserved: Sequence[str] = ()) -> None:
        self._lock = threading.Lock()
        self._families: dict[str, CustomFamily] = {}
        self._reserved = frozenset(reserved)

    def family(self, name: str, description: str, kind: str, owner: Hashable = None) -> CustomFamily:
        """Register (or find the identical) family ``name``."""
        if name in self._reserved:
            raise AlreadyExistsError(f"Family name '{name}' is already used by a built-in metric")
        with self._lock:
            existing = self._families.get(name)
            if existing is not None and existing.valid:
                if existing.kind != kind or existing.description != description:
                    raise AlreadyExistsError(
                        f"Family name '{name}' already exists with a different kind or description"
                    )
                fam = existing
            else:
                fam = self._families[name] = CustomFamily(name, description, kind)
        if owner is not None:
            with fam.lock:
                fam.owners.add(owner)
        return fam

    def release_owner(self, owner: Hashable) -> None:
        """A model version unloaded: remove what only it created."""
        with self._lock:
            for name, fam in list(self._families.items()):
                if owner in fam.owners and fam.release(owner):
                    del self._families[name]

    def render(self, lines: list[str]) -> None:
        with self._lock:
            families = list(self._families.values())
        for fam in families:
            fam.render(lines)


__all__ = ["COUNTER", "GAUGE", "HISTOGRAM", "KINDS", "CustomFamilies", "CustomFamily", "CustomSeries"]
