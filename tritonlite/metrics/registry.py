"""The Prometheus registry of one engine, with Triton's metric names, types and labels (SPEC appendix A).

Per model version (labels ``model``, ``version`` and ``_<key>`` per ``metric_tags`` entry) the counts
and cumulative durations are read from the version's :class:`~tritonlite.stats.ModelStats` when the
text is rendered, so the statistics API and the metrics can never disagree and the request path pays
nothing for them. Only the optional summaries (``summary_latencies``) and the decoupled first-response
histogram (``histogram_latencies``) observe each request, through the stats' listeners.

Counter names carry no ``_total`` suffix: the text is written here, not by prometheus_client.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Hashable, Iterable, Mapping

import numpy as np

from tritonlite.errors import InvalidArgumentError
from tritonlite.metrics._distributions import DEFAULT_QUANTILES, Histogram, Summary, parse_quantiles
from tritonlite.metrics._text import add_label, family, format_labels, format_value, sanitize_label_name
from tritonlite.metrics.custom import CustomFamilies
from tritonlite.metrics.gpu import FAMILIES as GPU_FAMILIES
from tritonlite.metrics.gpu import GpuMetrics
from tritonlite.metrics.host import HostMetrics, Poller
from tritonlite.stats import FAILURE_REASONS

_log = logging.getLogger("tritonlite.metrics")

#: successes buffered per model before the summaries take them in (also done at every scrape)
SUMMARY_FLUSH_AT = 1024
FIRST_RESPONSE_HISTOGRAM = "nv_inference_first_response_histogram_ms"
DEFAULT_FIRST_RESPONSE_BUCKETS = (100.0, 500.0, 2000.0, 5000.0)

#: (name, help) of the counters read from ModelStats.metrics_snapshot; the latencies come last
_COUNTS = (
    ("nv_inference_request_success", "Number of successful inference requests, all batch sizes"),
    ("nv_inference_request_failure", "Number of failed inference requests, all batch sizes"),
    ("nv_inference_count", "Number of inferences performed (does not include cached requests)"),
    ("nv_inference_exec_count", "Number of model executions performed (does not include cached requests)"),
)
_LATENCY_COUNTERS = (
    ("nv_inference_request_duration_us", "Cumulative inference request duration in microseconds (includes cached requests)"),
    ("nv_inference_queue_duration_us", "Cumulative inference queuing duration in microseconds (includes cached requests)"),
    ("nv_inference_compute_input_duration_us", "Cumulative compute input duration in microseconds (does not include cached requests)"),
    ("nv_inference_compute_infer_duration_us", "Cumulative compute inference duration in microseconds (does not include cached requests)"),
    ("nv_inference_compute_output_duration_us",
     "Cumulative inference compute output duration in microseconds (does not include cached requests)"),
)
_SUMMARIES = (
    ("nv_inference_request_summary_us", "Summary of inference request duration in microseconds (includes cached requests)"),
    ("nv_inference_queue_summary_us", "Summary of inference queuing duration in microseconds (includes cached requests)"),
    ("nv_inference_compute_input_summary_us", "Summary of compute input duration in microseconds (does not include cached requests)"),
    ("nv_inference_compute_infer_summary_us", "Summary of compute inference duration in microseconds (does not include cached requests)"),
    ("nv_inference_compute_output_summary_us",
     "Summary of inference compute output duration in microseconds (does not include cached requests)"),
)
#: per-model response cache families (core ``metrics.cc``), only for versions that use the cache
_CACHE_COUNTERS = (
    ("nv_cache_num_hits_per_model", "Number of cache hits per model"),
    ("nv_cache_hit_duration_per_model", "Total cache hit duration per model, in microseconds"),
    ("nv_cache_num_misses_per_model", "Number of cache misses per model"),
    ("nv_cache_miss_duration_per_model", "Total cache miss (insert+lookup) duration per model, in microseconds"),
)
_CACHE_SUMMARIES = (
    ("nv_cache_hit_summary_per_model", "Summary of cache hit counts/durations per model, in microseconds."),
    ("nv_cache_miss_summary_per_model", "Summary of cache miss counts/durations per model, in microseconds."),
)
#: server-wide gauges Triton's local cache publishes (``local_cache`` ``InitMetrics``)
_CACHE_GAUGES = (
    ("nv_cache_util", "Cache utilization [0.0 - 1.0]"),
    ("nv_cache_num_entries", "Number of responses stored in response cache"),
    ("nv_cache_num_hits", "Number of cache hits in response cache"),
    ("nv_cache_num_misses", "Number of cache misses in response cache"),
    ("nv_cache_num_lookups", "Number of cache lookups in response cache"),
    ("nv_cache_num_evictions", "Number of cache evictions in response cache"),
    ("nv_cache_lookup_duration", "Total cache lookup duration (hit and miss), in microseconds"),
    ("nv_cache_insertion_duration", "Total cache insertion duration, in microseconds"),
)
_PENDING = ("nv_inference_pending_request_count", "Instantaneous number of pending requests awaiting execution per-model.")
_LOAD = ("nv_model_load_duration_secs", "Model load time in seconds")
_FIRST_RESPONSE_HELP = "Duration from request to first response in milliseconds"
_PINNED = (
    ("nv_pinned_memory_pool_total_bytes", "Pinned memory pool total memory size, in bytes"),
    ("nv_pinned_memory_pool_used_bytes", "Pinned memory pool used memory size, in bytes"),
)
_CPU = ("nv_cpu_utilization", "nv_cpu_memory_total_bytes", "nv_cpu_memory_used_bytes")

#: every family name the engine itself shows (custom families may not take them)
BUILTIN_FAMILIES = frozenset(
    [n for n, _ in _COUNTS + _LATENCY_COUNTERS + _SUMMARIES + _PINNED + _CACHE_COUNTERS + _CACHE_SUMMARIES + _CACHE_GAUGES]
    + [_PENDING[0], _LOAD[0], FIRST_RESPONSE_HISTOGRAM]
    + [n for n, _, _ in GPU_FAMILIES]
    + list(_CPU)
)

_BOOL_KEYS = ("counter_latencies", "summary_latencies", "histogram_latencies")


class MetricsConfig:
    """Triton's ``--metrics-config``: ``counter_latencies`` (default true), ``summary_latencies`` and
    ``histogram_latencies`` (default false), ``summary_quantiles`` ("0.5:0.05,0.9:0.01,...").

    ``raw`` is a mapping (values bool or "true"/"false") or an iterable of ``"key=value"`` strings.
    Unknown keys are logged and ignored, as Triton stores and ignores them.
    """

    def __init__(self, raw: Mapping[str, Any] | Iterable[str] | None = None) -> None:
        self.counter_latencies = True
        self.summary_latencies = False
        self.histogram_latencies = False
        self.summary_quantiles: tuple[tuple[float, float], ...] = DEFAULT_QUANTILES
        for key, value in self._items(raw):
            if key in _BOOL_KEYS:
                setattr(self, key, _as_bool(key, value))
            elif key == "summary_quantiles":
                try:
                    quantiles = parse_quantiles(value) if isinstance(value, str) else tuple((float(q), float(e)) for q, e in value)
                except (TypeError, ValueError) as exc:
                    raise InvalidArgumentError(f"invalid metrics config summary_quantiles: {exc}") from None
                if quantiles:
                    self.summary_quantiles = quantiles
            else:
                _log.warning("unknown metrics config setting '%s' is ignored", key)

    @staticmethod
    def _items(raw: Mapping[str, Any] | Iterable[str] | None) -> list[tuple[str, Any]]:
        if raw is None:
            return []
        if isinstance(raw, Mapping):
            return [(str(k), v) for k, v in raw.items()]
        if isinstance(raw, str):
            raw = [raw]
        items = []
        for entry in raw:
            key, sep, value = str(entry).partition("=")
            if not sep:
                raise InvalidArgumentError(f"metrics config '{entry}' must have the form <setting>=<value>")
            items.append((key.strip(), value.strip()))
        return items

    def __repr__(self) -> str:
        return (
            f"MetricsConfig(counter_latencies={self.counter_latencies}, summary_latencies={self.summary_latencies}, "
            f"histogram_latencies={self.histogram_latencies}, summary_quantiles={self.summary_quantiles})"
        )


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise InvalidArgumentError(f"metrics config {key} must be true or false, got '{value}'")


def model_labels(name: str, version: int, config: Any) -> dict[str, str]:
    """``model``, ``version`` and ``_<key>`` for each ``metric_tags`` entry of the config."""
    labels = {"model": name, "version": str(version)}
    tags = getattr(config, "metric_tags", None) or {}
    for key in sorted(tags):
        label = "_" + sanitize_label_name(key)
        if label != "_" + key:
            _log.warning("metric_tags key '%s' of model '%s' is not a valid label name; using '%s'", key, name, label)
        labels[label] = str(tags[key])
    return labels


def first_response_buckets(config: Any) -> tuple[float, ...]:
    """Buckets of the first-response histogram: ``model_metrics.metric_control`` may override them."""
    metrics = getattr(config, "model_metrics", None)
    for control in getattr(metrics, "metric_control", ()):
        if control.metric_identifier.family == FIRST_RESPONSE_HISTOGRAM and control.histogram_options.buckets:
            return tuple(float(b) for b in control.histogram_options.buckets)
    return DEFAULT_FIRST_RESPONSE_BUCKETS


class ModelSeries:
    """The series of one READY model version; summaries and histogram observe through the stats' listeners.

    A success only appends its timestamps to a list (atomic in CPython, no lock); the summaries take the
    list in by batches, computing the five durations with numpy, when it is long or at a scrape.
    """

    def __init__(self, mv: Any, config: MetricsConfig) -> None:
        self.mv = mv
        self.stats = mv.stats
        labels = model_labels(mv.name, mv.version, mv.config)
        self.labels = format_labels(labels)
        self.reason_labels = tuple(format_labels({**labels, "reason": r}) for r in FAILURE_REASONS)
        self._lock = threading.Lock()
        now = time.monotonic_ns()
        self.summaries = [Summary(config.summary_quantiles, now) for _ in _SUMMARIES] if config.summary_latencies else None
        #: the version uses the response cache: nv_cache_* series, and no request summary (as Triton)
        self.cached = getattr(mv, "cache", None) is not None
        self.cache_summaries = (
            [Summary(config.summary_quantiles, now) for _ in _CACHE_SUMMARIES] if self.cached and self.summaries is not None else None
        )
        self._pending: list[tuple[int, ...]] = []
        decoupled = bool(getattr(mv, "decoupled", False))
        self.first_response = Histogram(first_response_buckets(mv.config)) if config.histogram_latencies and decoupled else None
        self._listener = None
        if self.summaries is not None or self.first_response is not None:
            self._listener = self._observe
            self.stats.listeners = [*self.stats.listeners, self._listener]

    def detach(self) -> None:
        if self._listener is not None:
            self.stats.listeners = [cb for cb in self.stats.listeners if cb is not self._listener]
            self._listener = None

    def _observe(self, kind: str, payload: Any) -> None:
        if kind == "success":
            if self.summaries is not None:
                pending = self._pending
                pending.append(payload)  # (queue_start, compute_start, input_end, infer_end, output_end, end)
                if len(pending) >= SUMMARY_FLUSH_AT:
                    with self._lock:
                        self.flush_locked()
        elif kind == "cache_hit" and self.cache_summaries is not None:
            queue_ns, hit_ns, end = payload
            with self._lock:
                self.summaries[1].observe(max(0, queue_ns) / 1000.0, end)  # type: ignore[index]
                self.cache_summaries[0].observe(max(0, hit_ns) / 1000.0, end)
        elif kind == "cache_miss" and self.cache_summaries is not None:
            with self._lock:
                self.cache_summaries[1].observe(max(0, payload) / 1000.0, time.monotonic_ns())
        elif kind == "first_response" and self.first_response is not None:
            with self._lock:
                self.first_response.observe(max(0, payload) / 1_000_000.0)

    def flush_locked(self) -> None:
        """Move buffered successes into the summaries (hold ``_lock``). Appends racing with it stay queued."""
        pending = self._pending
        n = len(pending)
        if not n or self.summaries is None:
            return
        t = np.array(pending[:n], dtype=np.int64).T
        del pending[:n]
        q0, cs, ie, infer_end, oe, end = t
        durations = (end - q0, cs - q0, ie - cs, infer_end - ie, oe - infer_end)
        for summary, ns in zip(self.summaries, durations):
            summary.observe_many(np.maximum(ns, 0) / 1000.0, end)


class MetricsRegistry:
    """Everything ``/metrics`` shows for one engine; ``render`` gives the Prometheus text.

    ``enabled=False`` keeps the object but tracks nothing. CPU and GPU readings are refreshed every
    ``interval_ms`` on the thread ``tritonlite.metrics.poll``, which :meth:`close` joins.
    """

    def __init__(
        self,
        *,
        enabled: bool = True,
        gpu: bool = True,
        cpu: bool = True,
        interval_ms: int = 2000,
        config: Mapping[str, Any] | Iterable[str] | MetricsConfig | None = None,
    ) -> None:
        if int(interval_ms) <= 0:
            raise InvalidArgumentError(f"metrics_interval_ms must be positive, got {interval_ms}")
        self.enabled = bool(enabled)
        self.config = config if isinstance(config, MetricsConfig) else MetricsConfig(config)
        self.interval_ms = int(interval_ms)
        self._lock = threading.Lock()
        self._models: dict[tuple[str, int], ModelSeries] = {}
        self.custom = CustomFamilies(reserved=tuple(BUILTIN_FAMILIES))
        self.host = HostMetrics() if self.enabled and cpu else None
        self.gpu = GpuMetrics() if self.enabled and gpu else None
        polls = []
        if self.host is not None and self.host.available:
            polls.append(self.host.poll)
        if self.gpu is not None and self.gpu.devices:
            polls.append(self.gpu.poll)
        self._poller = Poller(polls, self.interval_ms) if polls else None
        if self._poller is not None:
            self._poller.start()
        self._closed = False
        self._cache: Any = None

    def attach_cache(self, cache: Any) -> None:
        """Show the engine's response cache's own gauges (``cache.gauges()``: Triton's local-cache set)."""
        self._cache = cache

    # ---- model lifecycle (called by the model manager) ---------------------------------------------
    def model_ready(self, mv: Any) -> None:
        """A version became READY: create its series (replacing those of a version it reloads)."""
        if not self.enabled:
            return
        series = ModelSeries(mv, self.config)
        with self._lock:
            old = self._models.get((mv.name, mv.version))
            self._models[(mv.name, mv.version)] = series
        if old is not None:
            old.detach()

    def models_ready(self, versions: Iterable[Any]) -> None:
        for mv in versions:
            self.model_ready(mv)

    def model_unloaded(self, mv: Any) -> None:
        """A version is unloading: remove its series and the custom metrics only it created."""
        if not self.enabled:
            return
        key = (mv.name, mv.version)
        with self._lock:
            series = self._models.get(key)
            replaced = series is not None and series.mv is not mv
            if series is not None and not replaced:
                del self._models[key]
        if series is not None and not replaced:
            series.detach()
        if not replaced:  # a reload of the same version keeps the custom metrics its new instances use
            self.custom.release_owner(key)

    # ---- exposition ---------------------------------------------------------------------------------
    def render(self) -> str:
        """The whole Prometheus text (format 0.0.4)."""
        lines: list[str] = []
        with self._lock:
            series = sorted(self._models.values(), key=lambda s: (s.mv.name, s.mv.version))
        snaps = [(s, s.stats.metrics_snapshot()) for s in series]
        self._render_models(lines, snaps)
        for name, help_text in _PINNED:
            family(lines, name, "gauge", help_text, [f"{name} 0"])
        if self._cache is not None:
            gauges = self._cache.gauges()
            for name, help_text in _CACHE_GAUGES:
                if name in gauges:
                    family(lines, name, "gauge", help_text, [f"{name} {format_value(float(gauges[name]))}"])
        if self.gpu is not None:
            self.gpu.render(lines)
        if self.host is not None:
            self.host.render(lines)
        self.custom.render(lines)
        return "\n".join(lines) + "\n" if lines else ""

    def _render_models(self, lines: list[str], snaps: list[tuple[ModelSeries, tuple]]) -> None:
        success, failure = _COUNTS[0], _COUNTS[1]
        family(lines, success[0], "counter", success[1], (f"{success[0]}{s.labels} {snap[0]}" for s, snap in snaps))
        family(lines, failure[0], "counter", failure[1], (
            f"{failure[0]}{lt} {n}" for s, snap in snaps for lt, n in zip(s.reason_labels, snap[1])
        ))
        for i, (name, help_text) in ((2, _COUNTS[2]), (3, _COUNTS[3])):
            family(lines, name, "counter", help_text, (f"{name}{s.labels} {snap[i]}" for s, snap in snaps))
        if self.config.counter_latencies:
            for j, (name, help_text) in enumerate(_LATENCY_COUNTERS):
                family(lines, name, "counter", help_text, (f"{name}{s.labels} {snap[5][j] // 1000}" for s, snap in snaps))
        if self.config.counter_latencies:
            cached = [(s, s.stats.cache_snapshot()) for s, _ in snaps if s.cached]
            for j, (name, help_text) in enumerate(_CACHE_COUNTERS):
                family(lines, name, "counter", help_text, (
                    f"{name}{s.labels} {c[j] // 1000 if j % 2 else c[j]}" for s, c in cached
                ))
        family(lines, _PENDING[0], "gauge", _PENDING[1], (f"{_PENDING[0]}{s.labels} {snap[4]}" for s, snap in snaps))
        family(lines, _LOAD[0], "gauge", _LOAD[1], (
            f"{_LOAD[0]}{s.labels} {format_value(float(getattr(s.mv, 'load_seconds', 0.0)))}" for s, _ in snaps
        ))
        now = time.monotonic_ns()
        histograms: list[str] = []
        summaries: list[list[str]] = [[] for _ in _SUMMARIES]
        cache_summaries: list[list[str]] = [[] for _ in _CACHE_SUMMARIES]
        for s, _ in snaps:
            with s._lock:
                s.flush_locked()
                if s.first_response is not None:
                    h, lt = s.first_response, s.labels
                    name = FIRST_RESPONSE_HISTOGRAM
                    histograms.append(f"{name}_count{lt} {h.count}")
                    histograms.append(f"{name}_sum{lt} {format_value(h.sum)}")
                    histograms.extend(f"{name}_bucket{add_label(lt, 'le', format_value(le))} {c}" for le, c in h.cumulative())
                if s.cache_summaries is not None:
                    for out, (name, _), summary in zip(cache_summaries, _CACHE_SUMMARIES, s.cache_summaries):
                        _summary_samples(out, name, s.labels, summary, now)
                if s.summaries is not None:
                    for i, (out, (name, _), summary) in enumerate(zip(summaries, _SUMMARIES, s.summaries)):
                        if i == 0 and s.cached:
                            continue  # Triton disables the request summary for models with a response cache
                        out.append(f"{name}_count{s.labels} {summary.count}")
                        out.append(f"{name}_sum{s.labels} {format_value(summary.sum)}")
                        out.extend(
                            f"{name}{add_label(s.labels, 'quantile', format_value(q))} {format_value(v)}"
                            for q, v in summary.values(now)
                        )
        family(lines, FIRST_RESPONSE_HISTOGRAM, "histogram", _FIRST_RESPONSE_HELP, histograms)
        for (name, help_text), samples in zip(_SUMMARIES, summaries):
            family(lines, name, "summary", help_text, samples)
        for (name, help_text), samples in zip(_CACHE_SUMMARIES, cache_summaries):
            family(lines, name, "summary", help_text, samples)

    # ---- lifecycle ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Join the poll thread and release NVML (model series go as their versions unload)."""
        if self._closed:
            return
        self._closed = True
        if self._poller is not None:
            self._poller.stop()
        if self.gpu is not None:
            self.gpu.close()


def _summary_samples(out: list[str], name: str, labels: str, summary: Summary, now: int) -> None:
    out.append(f"{name}_count{labels} {summary.count}")
    out.append(f"{name}_sum{labels} {format_value(summary.sum)}")
    out.extend(f"{name}{add_label(labels, 'quantile', format_value(q))} {format_value(v)}" for q, v in summary.values(now))


def custom_owner(model_name: str, version: int) -> Hashable:
    """The owner key custom metrics of a model version are registered under."""
    return (model_name, version)


__all__ = [
    "BUILTIN_FAMILIES",
    "DEFAULT_FIRST_RESPONSE_BUCKETS",
    "FIRST_RESPONSE_HISTOGRAM",
    "MetricsConfig",
    "MetricsRegistry",
    "ModelSeries",
    "custom_owner",
    "first_response_buckets",
    "model_labels",
]
