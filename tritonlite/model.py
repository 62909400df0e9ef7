"""One loaded model version: its config, backend instances, scheduler and statistics.

Built by :func:`load_version`; the request path only calls :meth:`ModelVersion.enqueue`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tritonlite.backends.base import BackendInstance, LoadContext
from tritonlite.cache import ModelCache
from tritonlite.config import config_to_json, instance_names
from tritonlite.errors import TritonLiteError
from tritonlite.request import InferenceRequest
from tritonlite.scheduling import BatchRunner, Scheduler, make_scheduler
from tritonlite.scheduling.rate_limiter import InstanceGate, gate_config
from tritonlite.stats import ModelStats
from tritonlite.validation import IOSpec, normalize_request
from tritonlite.warmup import build_samples, run_samples

_log = logging.getLogger("tritonlite.model")


@dataclass(eq=False)
class ModelVersion:
    """A READY version of a model. ``close`` drains its queue and releases its instances."""

    name: str
    version: int
    config: Any
    config_json: dict[str, Any]
    spec: IOSpec
    stats: ModelStats
    instances: list[tuple[str, BackendInstance]]
    scheduler: Scheduler
    model_dir: Path
    load_seconds: float = 0.0
    decoupled: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    gates: list[InstanceGate] = field(default_factory=list)
    #: the response cache of this version (``response_cache { enable: true }`` on an engine with a cache)
    cache: ModelCache | None = None

    def enqueue(self, request: InferenceRequest, inline: bool = False) -> None:
        """Validate and queue; a validation error is raised to the caller before anything is queued.

        ``inline`` lets a blocking caller run the request in its own thread when an instance is idle.
        """
        normalize_request(request, self.spec, self.name)
        request.mark_queued()
        if self.cache is not None and self.cache.serve(request, self.scheduler):
            return  # answered from the response cache
        self.stats.record_queued()
        if inline:
            run_inline = getattr(self.scheduler, "run_inline", None)
            if run_inline is not None and run_inline(request):
                return
        self.scheduler.enqueue(request)

    def enqueue_many(self, requests: list[InferenceRequest], inline: bool = False) -> None:
        """:meth:`enqueue` for the requests a door collected in one pass; each request's own errors go
        to its sink. With ``inline`` a batching scheduler may run the whole burst as batches in the
        caller's thread (:meth:`DynamicBatchScheduler.run_inline_many`)."""
        ready: list[InferenceRequest] = []
        for request in requests:
            try:
                normalize_request(request, self.spec, self.name)
            except TritonLiteError as exc:
                request.sink.fail(exc, "OTHER")  # type: ignore[union-attr]
                continue
            request.mark_queued()
            if self.cache is not None and self.cache.serve(request, self.scheduler):
                continue
            ready.append(request)
        if not ready:
            return
        self.stats.record_queued(len(ready))
        run_many = getattr(self.scheduler, "run_inline_many", None) if inline else None
        if run_many is not None:
            run_many(ready)
            return
        run_inline = getattr(self.scheduler, "run_inline", None) if inline else None
        for request in ready:
            try:
                if run_inline is None or not run_inline(request):
                    self.scheduler.enqueue(request)
            except TritonLiteError as exc:
                request.sink.fail(exc, "OTHER")  # type: ignore[union-attr]

    def is_ready(self) -> bool:
        for _, inst in self.instances:
            probe = getattr(inst, "is_ready", None)
            if probe is not None and not probe():
                return False
        return True

    def close(self) -> None:
        try:
            self.scheduler.stop()
        finally:
            if self.gates:
                self.gates[0].limiter.unregister(self.gates)
            for name, inst in self.instances:
                try:
                    inst.close()
                except Exception:  # finalize errors are logged, never raised into unload
                    _log.exception("closing instance %s of model '%s' failed", name, self.name)


def load_version(backend: Any, ctx: LoadContext) -> ModelVersion:
    """Create every instance of one version and start its scheduler; undo everything on failure."""
    started = time.monotonic()
    cfg = ctx.config
    spec = IOSpec.from_config(cfg)
    # the pending gauge is kept only for metrics; an ensemble starts each request as it arrives
    count_pending = bool(getattr(ctx.engine, "metrics_enabled", False)) and cfg.platform != "ensemble"
    stats = ModelStats(ctx.model_name, ctx.model_version, count_pending=count_pending)
    created: list[tuple[str, BackendInstance]] = []
    active: list[tuple[str, BackendInstance]] = []
    gates: list[InstanceGate] = []
    limiter = getattr(ctx.engine, "rate_limiter", None)
    try:
        limited: list[tuple[str, int, Any]] = []
        for inst in instance_names(cfg):
            ictx = LoadContext(
                model_name=ctx.model_name,
                model_version=ctx.model_version,
                config=cfg,
                model_dir=ctx.model_dir,
                version_dir=ctx.version_dir,
                model_path=ctx.model_path,
                engine=ctx.engine,
                instance_name=inst.name,
                instance_kind=inst.kind,
                device_id=inst.device_id,
            )
            instance = backend.create_instance(ictx)
            created.append((inst.name, instance))
            if not inst.passive:
                active.append((inst.name, instance))
                limited.append((inst.name, inst.device_id, gate_config(cfg, inst.group_name)))
        if limiter is not None and limiter.enabled and active and cfg.platform != "ensemble":
            # registered before warmup: as in core, warmup runs through the rate limiter
            gates = limiter.register(ctx.model_name, limited)
        if cfg.model_warmup:  # before the scheduler exists: the version is not READY until this succeeds
            samples = build_samples(cfg, ctx.model_dir, ctx.model_name)
            for i, (_, instance) in enumerate(active):
                run_samples(samples, instance, spec, ctx.model_name, gates[i] if gates else None)
        decoupled = bool(cfg.model_transaction_policy.decoupled)
        runner = BatchRunner(ctx.model_name, ctx.model_version, stats, decoupled=decoupled)
        if gates:
            runner.gates = {id(inst): g for (_, inst), g in zip(active, gates)}
        scheduler = make_scheduler(cfg, runner, active, ctx.engine, model_dir=ctx.model_dir)
    except BaseException:
        if gates:
            limiter.unregister(gates)
        for _, inst in created:
            try:
                inst.close()
            except Exception:
                _log.exception("closing a half-loaded instance of '%s' failed", ctx.model_name)
        raise
    engine_cache = getattr(ctx.engine, "response_cache", None)
    cache = ModelCache(engine_cache, stats, ctx.model_name, ctx.model_version) if cfg.response_cache.enable and engine_cache is not None else None
    return ModelVersion(
        name=ctx.model_name,
        version=ctx.model_version,
        config=cfg,
        config_json=config_to_json(cfg),
        spec=spec,
        stats=stats,
        instances=created,
        scheduler=scheduler,
        model_dir=ctx.model_dir,
        load_seconds=time.monotonic() - started,
        decoupled=decoupled,
        gates=gates,
        cache=cache,
    )


def describe_load_error(exc: BaseException) -> str:
    """The reason text a failed load leaves in the repository index."""
    if isinstance(exc, TritonLiteError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


__all__ = ["ModelVersion", "load_version", "describe_load_error"]
