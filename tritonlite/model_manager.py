"""Model lifecycle: load, reload, unload and poll, with per-version states and reasons.

Reads on the request path are lock-free: each model record swaps in a new ``serving`` dict on
load/unload, so :meth:`ModelManager.get` never waits behind a load.
"""

from __future__ import annotations

import base64
import logging
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from tritonlite.backends.base import LoadContext, default_cpu_instance_count
from tritonlite.backends.ensemble import find_ensemble_cycle
from tritonlite.backends.registry import BackendRegistry
from tritonlite.config import (
    ModelConfig,
    default_model_filename,
    load_config_file,
    normalize,
    parse_json_config,
    validate,
)
from tritonlite.errors import (
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    TritonLiteError,
    UnavailableError,
)
from tritonlite.model import ModelVersion, describe_load_error, load_version
from tritonlite.remote_repository import RemoteRepository
from tritonlite.repository import ModelLocation, ModelState, available_versions, fingerprint, scan, select_versions

_log = logging.getLogger("tritonlite.repository")

#: first-version file -> backend, for configs that name neither platform nor backend (SPEC 4.5.3)
_FILE_BACKENDS = (
    ("model.plan", "tensorrt"),
    ("model.onnx", "onnxruntime"),
    ("model.xml", "openvino"),
    ("model.pt", "pytorch"),
    ("model.pt2", "pytorch"),
    ("model.py", "python"),
)


@dataclass
class VersionStatus:
    state: ModelState
    reason: str = ""


@dataclass(eq=False)
class ModelRecord:
    """Everything known about one model name."""

    name: str
    serving: dict[int, ModelVersion] = field(default_factory=dict)
    latest: ModelVersion | None = None
    states: dict[int, VersionStatus] = field(default_factory=dict)
    fingerprint: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    override_dir: Path | None = None

    def publish(self, serving: dict[int, ModelVersion]) -> None:
        self.serving = serving
        self.latest = serving[max(serving)] if serving else None


class ModelManager:
    """Owns every loaded model of one engine."""

    def __init__(
        self,
        roots: Iterable[Path],
        registry: BackendRegistry,
        *,
        strict_model_config: bool,
        engine: Any,
        gpu_count: int = 0,
        load_threads: int = 4,
    ) -> None:
        #: local folders, and RemoteRepository objects for cloud URLs
        self.roots: list[Any] = [r if isinstance(r, RemoteRepository) else Path(r) for r in roots]
        #: local copy of a cloud model -> the listing signature it was fetched at (what poll compares)
        self._remote_prints: dict[Path, str] = {}
        self.registry = registry
        self.strict = strict_model_config
        self.engine = engine
        self.gpu_count = gpu_count
        self.load_threads = max(1, load_threads)
        self.records: dict[str, ModelRecord] = {}
        self._records_lock = threading.Lock()
        self._tmp: Path | None = None  # created on the first load with files
        self._metrics = getattr(engine, "metrics_registry", None)  # per-version series follow READY / unload
        #: models loaded at someone's request (startup, poll, load API), not only as an ensemble's dependency
        self._explicit: set[str] = set()
        #: ensemble -> the composing models it loaded as dependencies (for unload_dependents)
        self._ensemble_deps: dict[str, set[str]] = {}

    # ---- lookup -------------------------------------------------------------------------------------
    def get(self, name: str, version: int = -1) -> ModelVersion:
        """The version to serve; Triton's NOT_FOUND / UNAVAILABLE messages otherwise."""
        rec = self.records.get(name)
        if rec is None or not rec.states:
            raise NotFoundError(f"Request for unknown model: '{name}' is not found")
        if version < 0:
            mv = rec.latest
            if mv is None:
                raise NotFoundError(f"Request for unknown model: '{name}' has no available versions")
            return mv
        mv = rec.serving.get(version)
        if mv is not None:
            return mv
        if version in rec.states:
            raise UnavailableError(f"'{name}' version {version} is not at ready state")
        raise NotFoundError(f"Request for unknown model: '{name}' version {version} is not found")

    def _record(self, name: str) -> ModelRecord:
        with self._records_lock:
            rec = self.records.get(name)
            if rec is None:
                rec = self.records[name] = ModelRecord(name)
            return rec

    # ---- load / unload ------------------------------------------------------------------------------
    def load_many(self, names: Iterable[str]) -> dict[str, TritonLiteError | None]:
        """Load models in parallel (Triton's --model-load-thread-count); returns each outcome."""
        names = list(names)
        outcomes: dict[str, TritonLiteError | None] = {}

        def one(n: str) -> None:
            try:
                self.load(n)
                outcomes[n] = None
            except TritonLiteError as exc:
                outcomes[n] = exc

        if len(names) <= 1:
            for n in names:
                one(n)
        else:
            with ThreadPoolExecutor(self.load_threads, thread_name_prefix="tritonlite.load") as pool:
                list(pool.map(one, names))
        return outcomes

    def load(self, name: str, config_json: str | Mapping[str, Any] | None = None, files: Mapping[str, bytes | str] | None = None) -> None:
        """Load or reload ``name``; raises with Triton's load-failure text when no version comes up."""
        self._explicit.add(name)
        self._load_record(name, config_json, files)

    def _load_record(self, name: str, config_json: Any = None, files: Mapping[str, Any] | None = None) -> None:
        rec = self._record(name)
        with rec.lock:
            self._load_locked(rec, config_json, files)

    def _load_locked(self, rec: ModelRecord, config_json: Any, files: Mapping[str, Any] | None) -> None:
        name = rec.name
        try:
            model_dir, cfg, source = self._resolve(rec, config_json, files)
            fp = self._print_of(model_dir)
            if config_json is None and files is None and rec.serving and fp == rec.fingerprint:
                return  # unchanged: Triton does not reload
            backend, versions = self._prepare(name, model_dir, cfg, source)
        except TritonLiteError as exc:
            if not rec.serving and not rec.states and not files and name not in self.scan():
                pass  # no such model anywhere: Triton keeps no state for it (the repository index does not list it)
            elif not rec.serving:
                rec.states = {0: VersionStatus(ModelState.UNAVAILABLE, exc.message)} if not rec.states else {
                    v: VersionStatus(ModelState.UNAVAILABLE, exc.message) for v in rec.states
                }
            _log.error("failed to load model '%s': %s", name, exc.message)
            raise
        for v in versions:
            rec.states[v] = VersionStatus(ModelState.LOADING)
        rec.states.pop(0, None)
        new: dict[int, ModelVersion] = {}
        failures: dict[int, str] = {}
        for v in versions:
            ctx = LoadContext(
                model_name=name,
                model_version=v,
                config=cfg,
                model_dir=model_dir,
                version_dir=model_dir / str(v),
                model_path=model_dir / str(v) / default_model_filename(cfg),
                engine=self.engine,
            )
            try:
                new[v] = load_version(backend, ctx)
            except Exception as exc:  # any backend failure leaves this version UNAVAILABLE
                failures[v] = describe_load_error(exc)
                _log.error("failed to load '%s' version %d: %s", name, v, failures[v])
        if not new and rec.serving:  # a failed reload keeps the model that was serving
            for v, reason in failures.items():
                if v not in rec.serving:
                    rec.states[v] = VersionStatus(ModelState.UNAVAILABLE, reason)
            raise InvalidArgumentError(_load_failed(name, failures))
        old = rec.serving
        rec.publish(new)
        if self._metrics is not None:
            self._metrics.models_ready(new.values())
        rec.fingerprint = fp
        rec.states = {v: VersionStatus(ModelState.READY) for v in new}
        for v in new:
            _log.info("successfully loaded '%s' version %d", name, v)  # Triton's model_lifecycle wording
        rec.states.update({v: VersionStatus(ModelState.UNAVAILABLE, r) for v, r in failures.items()})
        for v, mv in old.items():
            rec.states.setdefault(v, VersionStatus(ModelState.UNAVAILABLE, "unloaded"))
            self._version_closing(mv)
            mv.close()
            if v not in new:
                _log.info("successfully unloaded '%s' version %d", name, v)
        if failures:
            raise InvalidArgumentError(_load_failed(name, failures))

    def _resolve(self, rec: ModelRecord, config_json: Any, files: Mapping[str, Any] | None) -> tuple[Path, ModelConfig, str]:
        name = rec.name
        if files:
            if config_json is None:
                raise _poll_failed(name, "the model config must be provided along with model files")
            model_dir = self._write_override(rec, files)
        else:
            found, errors = self.scan_with_errors()
            loc = found.get(name)
            if loc is None:
                if errors:  # perhaps in the repository that did not answer
                    raise UnavailableError(f"failed to load '{name}', failed to poll from model repository: {'; '.join(errors)}")
                raise _poll_failed(name)
            if loc.duplicates:
                raise InvalidArgumentError(
                    f"model '{name}' appears in multiple repositories: {', '.join(str(p) for p in (loc.path,) + loc.duplicates)}"
                )
            model_dir = loc.path
            if loc.remote is not None:  # a cloud model: its local copy, fetched when it changed
                model_dir = loc.remote.localize(name, loc.signature)
                self._remote_prints[model_dir] = f"remote:{loc.signature}"
        if config_json is not None:
            try:
                cfg, source = parse_json_config(config_json), "config override"
            except TritonLiteError as exc:  # Triton: a bad override fails the poll of the model
                raise _poll_failed(name, exc.message) from exc
        else:
            path = model_dir / "config.pbtxt"
            source = str(path)
            if path.is_file():
                cfg = load_config_file(path)
            elif self.strict:
                raise InvalidArgumentError(f"failed to load '{name}': {path} is required when auto-complete is disabled (strict_model_config)")
            else:
                cfg = ModelConfig()
        return model_dir, cfg, source

    def _write_override(self, rec: ModelRecord, files: Mapping[str, Any]) -> Path:
        """Write ``file:`` overrides into a fresh directory; any bad key or write is Triton's poll failure."""
        name = rec.name
        planned: list[tuple[Path, bytes]] = []
        for key, content in files.items():  # check everything before touching the disk
            if not isinstance(key, str) or not key.startswith("file:"):
                raise _poll_failed(name, f"unexpected load parameter '{key}': file keys must start with 'file:'")
            rel = Path(key[len("file:"):])
            if not rel.parts or rel.is_absolute() or ".." in rel.parts:
                raise _poll_failed(name, f"file path '{rel}' escapes the model directory")
            try:
                data = content if isinstance(content, (bytes, bytearray)) else base64.b64decode(content, validate=True)
            except (ValueError, TypeError) as exc:
                raise _poll_failed(name, f"file '{rel}' is not valid base64: {exc}") from exc
            planned.append((rel, bytes(data)))
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="tritonlite-overrides-"))
        target = self._tmp / name
        shutil.rmtree(target, ignore_errors=True)
        current = "."
        try:
            target.mkdir(parents=True)
            for rel, data in planned:
                current = str(rel)
                dest = target / rel
                # nothing may land outside the model's folder, a symlink on the way included
                if not dest.parent.resolve().is_relative_to(target.resolve()) or dest.is_symlink():
                    raise _poll_failed(name, f"file path '{rel}' escapes the model directory")
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
        except OSError as exc:  # e.g. ENAMETOOLONG for a file name over NAME_MAX
            shown = current if len(current) <= 64 else f"{current[:60]}..."
            raise _poll_failed(name, f"file '{shown}' could not be written: {exc.strerror or exc}") from exc
        rec.override_dir = target
        return target

    def _prepare(self, name: str, model_dir: Path, cfg: ModelConfig, source: str) -> tuple[Any, list[int]]:
        """Auto-complete, normalise and validate the config; pick the backend and versions."""
        if not cfg.name:
            cfg.name = name
        elif cfg.name != name:
            raise InvalidArgumentError(
                f"unexpected directory name '{name}' for model '{cfg.name}', directory name must equal model name"
            )
        versions_on_disk = available_versions(model_dir)
        if cfg.platform == "ensemble":
            return self._prepare_ensemble(name, model_dir, cfg, source, versions_on_disk)
        if not self.strict and not cfg.platform and not cfg.backend and versions_on_disk:
            first = model_dir / str(versions_on_disk[0])
            for fname, bname in _FILE_BACKENDS:
                if (first / fname).exists():
                    cfg.backend = bname
                    break
        backend_name = BackendRegistry.backend_name(cfg)
        backend = self.registry.get(backend_name)
        versions = select_versions(cfg, versions_on_disk)
        if not versions:
            raise InvalidArgumentError(f"failed to load '{name}': no version directory found in {model_dir}")
        if not self.strict and hasattr(backend, "auto_complete_config"):
            v = versions[-1]
            backend.auto_complete_config(
                LoadContext(
                    model_name=name,
                    model_version=v,
                    config=cfg,
                    model_dir=model_dir,
                    version_dir=model_dir / str(v),
                    model_path=model_dir / str(v) / default_model_filename(cfg),
                    engine=self.engine,
                )
            )
        if self.strict and backend_name != "python" and (not cfg.input or not cfg.output):
            raise InvalidArgumentError(
                f"model '{name}' must list its inputs and outputs in {source} when auto-complete is disabled (strict_model_config)"
            )
        if not cfg.default_model_filename:
            cfg.default_model_filename = default_model_filename(cfg)
        normalize(cfg, model_name=name, gpu_count=self.gpu_count, default_cpu_instance_count=default_cpu_instance_count(backend))
        validate(cfg, source=source, model_dir_name=name)
        for group in cfg.instance_group:
            if group.kind == group.KIND_GPU and self.gpu_count == 0:
                raise UnavailableError(
                    f"instance group '{group.name}' of model '{name}' asks for KIND_GPU but no GPU is available; use KIND_CPU or KIND_AUTO"
                )
        return backend, versions

    def unload(self, name: str, unload_dependents: bool = False) -> None:
        """Unload every version; unknown or not-loaded models are a no-op, as in Triton.

        ``unload_dependents`` also unloads the composing models an ensemble loaded as its dependencies,
        unless they were loaded at someone's request or another ensemble still uses them.
        """
        self._explicit.discard(name)
        deps = self._ensemble_deps.pop(name, None)
        try:
            self._unload_record(name)
        finally:
            if unload_dependents and deps:
                self._unload_ensemble_dependencies(deps)

    def _unload_record(self, name: str) -> None:
        rec = self.records.get(name)
        if rec is None:
            return
        with rec.lock:
            old = rec.serving
            for v in old:
                rec.states[v] = VersionStatus(ModelState.UNLOADING)
            rec.publish({})
            for v, mv in old.items():
                self._version_closing(mv)
                mv.close()
                rec.states[v] = VersionStatus(ModelState.UNAVAILABLE, "unloaded")
                _log.info("successfully unloaded '%s' version %d", name, v)
            rec.fingerprint = ""

    def _version_closing(self, mv: ModelVersion) -> None:
        if self._metrics is not None:
            self._metrics.model_unloaded(mv)

    # ---- ensembles ----------------------------------------------------------------------------------
    def _prepare_ensemble(
        self, name: str, model_dir: Path, cfg: ModelConfig, source: str, versions_on_disk: list[int]
    ) -> tuple[Any, list[int]]:
        """An ensemble: check its config and step graph, load its composing models, check the steps."""
        backend = self.registry.get(BackendRegistry.backend_name(cfg))
        normalize(cfg, model_name=name, gpu_count=self.gpu_count)
        validate(cfg, source=source, model_dir_name=name)
        versions = select_versions(cfg, versions_on_disk)
        if not versions:
            raise InvalidArgumentError(f"failed to load '{name}': no version directory found in {model_dir}")
        backend.check_graph(cfg)
        deps = sorted({step.model_name for step in cfg.ensemble_scheduling.step})
        self._check_ensemble_dependencies(name, cfg, deps)
        self._load_ensemble_dependencies(name, deps)
        backend.check_steps(cfg, lambda model, version: self._composing_config(name, model, version))
        if cfg.response_cache.enable:  # Triton: an ensemble caches only if all its composing models could
            for step in cfg.ensemble_scheduling.step:
                composing = self._composing_config(name, step.model_name, step.model_version)
                if composing.HasField("sequence_batching") or composing.model_transaction_policy.decoupled:
                    kind = "sequence batching scheduler" if composing.HasField("sequence_batching") else "'decoupled' transaction policy"
                    raise InvalidArgumentError(
                        f"Response Cache does not currently support ensemble {name}: its composing model "
                        f"'{step.model_name}' uses the {kind}. Please disable the response cache."
                    )
        return backend, versions

    def _check_ensemble_dependencies(self, name: str, cfg: ModelConfig, deps: list[str]) -> None:
        """Every composing model must exist, and ensembles must not include each other in a circle."""
        found = self.scan()
        missing = [d for d in deps if d not in found and not (d in self.records and self.records[d].serving)]
        if missing:
            raise InvalidArgumentError(f"ensemble {name} contains models that are not available: {', '.join(missing)}")
        cycle = find_ensemble_cycle(name, cfg, self._ensemble_steps_of)
        if cycle:
            raise InvalidArgumentError(f"circular dependency between ensembles: {' -> '.join(cycle)}")

    def _ensemble_steps_of(self, model: str) -> list[str]:
        """The step models of ``model`` if it is an ensemble (serving config first, else its config.pbtxt)."""
        rec = self.records.get(model)
        cfg: Any = rec.latest.config if rec is not None and rec.latest is not None else None
        if cfg is None:
            loc = self.scan().get(model)
            path = loc.path / "config.pbtxt" if loc is not None else None
            try:
                if loc is not None and loc.remote is not None:
                    path = loc.remote.localize(model, loc.signature) / "config.pbtxt"
                cfg = load_config_file(path) if path is not None and path.is_file() else None
            except TritonLiteError:
                cfg = None
        if cfg is None or cfg.platform != "ensemble":
            return []
        return [step.model_name for step in cfg.ensemble_scheduling.step]

    def _load_ensemble_dependencies(self, name: str, deps: list[str]) -> None:
        """Load the composing models that are not serving yet (each under its own record lock).

        In none/poll mode they may be loading in parallel right now: the load waits for that one and
        then returns at once, as an unchanged model is not reloaded.
        """
        self._ensemble_deps[name] = set(deps)
        for dep in deps:
            if self._record(dep).serving:
                continue
            try:
                self._load_record(dep)
            except TritonLiteError as exc:
                raise InvalidArgumentError(
                    f"ensemble '{name}' depends on '{dep}' which is not valid: {exc.message.strip()}"
                ) from None

    def _composing_config(self, name: str, model: str, version: int) -> Any:
        try:
            return self.get(model, version).config
        except TritonLiteError:
            if version > 0:
                raise InvalidArgumentError(
                    f"ensemble '{name}' depends on '{model}' whose required version {version} is not loaded"
                ) from None
            raise InvalidArgumentError(f"ensemble '{name}' depends on '{model}' which has no loaded version") from None

    def _unload_ensemble_dependencies(self, deps: Iterable[str]) -> None:
        """unload_dependents: drop composing models nobody asked for and no other ensemble uses."""
        for dep in sorted(deps):
            if dep in self._explicit or any(dep in used for used in list(self._ensemble_deps.values())):
                continue
            self.unload(dep, unload_dependents=True)

    # ---- repository views ---------------------------------------------------------------------------
    def scan(self) -> dict[str, ModelLocation]:
        """Every model of every root (an unreachable cloud root contributes none)."""
        return self.scan_with_errors()[0]

    def scan_with_errors(self) -> tuple[dict[str, ModelLocation], list[str]]:
        """The models of every root, and why a cloud root could not be listed (one message each)."""
        if not any(isinstance(r, RemoteRepository) for r in self.roots):
            return scan(self.roots), []
        found: dict[str, list[ModelLocation]] = {}
        errors: list[str] = []
        for root in self.roots:
            if isinstance(root, RemoteRepository):
                try:
                    listing = root.scan()
                except TritonLiteError as exc:
                    errors.append(exc.message)
                    continue
                for name, sig in listing.items():
                    found.setdefault(name, []).append(ModelLocation(name, root.local_path(name), remote=root, signature=sig))
            else:
                for name, loc in scan([root]).items():
                    found.setdefault(name, []).append(loc)
        out = {
            name: ModelLocation(name, locs[0].path, tuple(x.path for x in locs[1:]), locs[0].remote, locs[0].signature)
            for name, locs in found.items()
        }
        return out, errors

    def check_repositories(self) -> None:
        """Fail when a cloud repository cannot be listed (engine start-up; Triton exits the same way)."""
        for root in self.roots:
            if isinstance(root, RemoteRepository):
                root.scan()

    def _print_of(self, model_dir: Path) -> str:
        """What poll compares: a cloud model's listing signature, else the local folder's fingerprint."""
        remote = self._remote_prints.get(model_dir)
        return remote if remote is not None else fingerprint(model_dir)

    @staticmethod
    def _location_print(loc: ModelLocation) -> str:
        return f"remote:{loc.signature}" if loc.remote is not None else fingerprint(loc.path)

    def poll(self) -> None:
        """Poll mode: load new and changed models, unload removed ones (failures are logged)."""
        found, errors = self.scan_with_errors()
        for message in errors:  # models of an unreachable repository keep serving until it answers again
            _log.error("%s", message)
        for name in list(self.records):
            rec = self.records[name]
            if name not in found and rec.serving and rec.override_dir is None and not errors:
                self.unload(name)
        for name, loc in found.items():
            rec = self.records.get(name)
            if rec is not None and rec.serving and self._location_print(loc) == rec.fingerprint:
                continue
            if rec is not None and not rec.serving and rec.fingerprint == self._location_print(loc) and rec.states:
                continue
            try:
                self.load(name)
            except TritonLiteError:
                rec = self.records.get(name)
                if rec is not None and not rec.serving:
                    rec.fingerprint = self._location_print(loc)

    def index(self, ready_only: bool = False) -> list[dict[str, Any]]:
        """Triton's repository index: every model directory plus every known version state."""
        names = sorted(set(self.scan()) | {n for n, r in self.records.items() if r.states})
        out: list[dict[str, Any]] = []
        for name in names:
            rec = self.records.get(name)
            if rec is None or not rec.states:
                if not ready_only:
                    out.append({"name": name})
                continue
            for v, st in sorted(rec.states.items()):
                if ready_only and st.state is not ModelState.READY:
                    continue
                entry: dict[str, Any] = {"name": name}
                if v > 0:
                    entry["version"] = str(v)
                entry["state"] = st.state.value
                if st.reason:
                    entry["reason"] = st.reason
                out.append(entry)
        return out

    def all_ready(self) -> bool:
        """Strict readiness: every known model has every version READY or deliberately unloaded."""
        for rec in list(self.records.values()):
            if not rec.states:
                continue
            for st in rec.states.values():
                if st.state is ModelState.READY:
                    continue
                if st.state is ModelState.UNAVAILABLE and st.reason == "unloaded":
                    continue
                return False
        return True

    def close(self) -> None:
        for name in list(self.records):
            self.unload(name)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        for root in self.roots:
            if isinstance(root, RemoteRepository):
                root.close()


def _poll_failed(name: str, detail: str = "") -> InternalError:
    """Triton's answer when a model cannot be polled: unknown name, bad config override, unwritable file
    override. Clients match on the first sentence; tritonlite adds the reason after a colon (Triton only logs it)."""
    text = f"failed to load '{name}', failed to poll from model repository"
    return InternalError(f"{text}: {detail}" if detail else text)


def _load_failed(name: str, failures: Mapping[int, str]) -> str:
    parts = "".join(f"version {v} is at UNAVAILABLE state: {r};\n" for v, r in sorted(failures.items()))
    return f"load failed for model '{name}': {parts}"


__all__ = ["ModelManager", "ModelRecord", "VersionStatus"]
