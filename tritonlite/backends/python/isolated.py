"""One instance of a Python model run in a child process (``parameters { key: "isolation" ... "process" }``).

The child (:mod:`~tritonlite.backends.python._stub`) runs the same in-process instance code, so
pb_utils behaves alike; this side turns core requests into frames, tensors into shared memory
(:mod:`~tritonlite.backends.python._ipc`), and answers what the child asks of the engine (BLS,
model control, custom metrics, log records).

A child that dies (a segfault, ``os.abort()``, the OOM killer) or overruns
``isolation_execute_timeout_s`` (then it is killed) fails its in-flight requests with Triton's
INTERNAL text, ``Failed to process the request(s) for model instance '<inst>', message: Stub process
'<inst>' is not healthy.``, followed by what happened; the instance then starts a fresh child at once
and runs ``initialize`` again, and everything else in the engine keeps serving. ``close`` runs
``finalize`` in the child and reaps it (terminate, then kill, by PID); no child outlives the engine.
"""

from __future__ import annotations

import concurrent.futures
import errno
import itertools
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from typing import Any, Callable, Sequence

from tritonlite.backends.base import LoadContext
from tritonlite.backends.python._env import IsolationOptions, child_command
from tritonlite.backends.python._ipc import (
    Arena,
    Channel,
    ChannelClosed,
    TensorReader,
    TensorWriter,
    decode_error,
    encode_error,
    encode_result,
)
from tritonlite.backends.python._stub import request_from_payload, request_payload, result_from_payload
from tritonlite.config import config_to_json
from tritonlite.errors import InternalError, TritonLiteError, UnavailableError
from tritonlite.request import InferenceRequest, InferResult

_LOG = logging.getLogger("tritonlite.backends.python")
_READY_TIMEOUT_S = 5.0
_REAP_TIMEOUT_S = 5.0


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "closed its connection"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


class _Child:
    """One child process and everything in flight with it; dies as a whole."""

    def __init__(self, owner: "IsolatedPythonInstance", generation: int) -> None:
        self.owner = owner
        self.generation = generation
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            cmd, env = child_command(owner.options, child_sock.fileno())
            for attempt in range(20):
                try:
                    self.proc = subprocess.Popen(
                        cmd, env=env, pass_fds=(child_sock.fileno(),), stdin=subprocess.DEVNULL,
                        start_new_session=True,  # a terminal's Ctrl-C goes to the engine, which then closes us
                    )
                    break
                except OSError as exc:
                    # ETXTBSY: a just-unpacked env python is still open for writing in a process another
                    # thread forked at that moment (until it execs): wait a little and try again
                    if exc.errno != errno.ETXTBSY or attempt == 19:
                        raise
                    time.sleep(0.05)
        except OSError as exc:
            parent_sock.close()
            raise UnavailableError(
                f"unable to start the stub process of model instance '{owner.instance_name}': {exc}"
            ) from exc
        finally:
            child_sock.close()
        self.pid = self.proc.pid
        self.channel = Channel(parent_sock)
        self.arena_fd = Arena.new_fd()  # sent with the init frame, then closed
        self.arena = Arena(self.arena_fd, is_parent=True)
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.calls: dict[int, tuple[concurrent.futures.Future, Callable[[Any, int | None], Any] | None]] = {}
        self.tokens: dict[int, InferenceRequest] = {}
        self.bls: dict[int, InferenceRequest] = {}
        self.metric_handles: dict[int, Any] = {}
        self.initialized = False
        self.unloading = False
        self.dead = False
        self.death = ""
        self.kill_reason = ""
        self.reader = threading.Thread(
            target=self._read, name=f"tritonlite.{owner.model_name}.{owner.instance_name}.stub", daemon=True
        )
        self.reader.start()

    # ---- requests to the child ---------------------------------------------------------------------
    def request(self, kind: str, payload: Any = None, fd: int | None = None,
                decode: Callable[[Any, int | None], Any] | None = None) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        with self.lock:
            if self.dead:
                fut.set_exception(self.failure())
                return fut
            ident = next(self.ids)
            self.calls[ident] = (fut, decode)
        try:
            self.channel.send(kind, ident, payload, fd)
        except ChannelClosed:
            pass  # the reader sees the end of stream and fails the call
        return fut

    def failure(self) -> TritonLiteError:
        name = self.owner.instance_name
        if self.unloading:
            return UnavailableError(f"model instance '{name}' was unloaded before its responses were complete")
        return InternalError(
            f"Failed to process the request(s) for model instance '{name}', message: Stub process '{name}' is not healthy. "
            f"{self.death}"
        )

    def kill(self, reason: str) -> None:
        """SIGKILL the child (our own child, by PID); the reader then fails everything in flight."""
        with self.lock:
            if not self.kill_reason:
                self.kill_reason = reason
        try:
            self.proc.kill()
        except OSError:
            pass

    def decode_results(self, value: Any, fd: int | None) -> tuple[list[InferResult | None] | None, list[int]]:
        """An execute answer: results (copied out of the arena, or views of a memory file) and release flags."""
        encoded, flags, in_arena = value
        if encoded is None:
            return None, flags
        reader = TensorReader(fd, self.arena if in_arena else None)
        return [result_from_payload(reader, item) for item in encoded], flags

    # ---- frames from the child (reader thread) -------------------------------------------------------
    def _read(self) -> None:
        try:
            while True:
                kind, ident, payload, fd = self.channel.recv()
                try:
                    self._dispatch(kind, ident, payload, fd)
                except Exception:  # one bad frame must not blind the instance
                    _LOG.exception("model instance '%s': handling a '%s' frame from its stub failed",
                                   self.owner.instance_name, kind)
        except ChannelClosed:
            pass
        self._on_death()

    def _dispatch(self, kind: str, ident: int, payload: Any, fd: int | None) -> None:
        if kind == "reply":
            with self.lock:
                fut, decode = self.calls.pop(ident, (None, None))
            if fut is None:
                return
            status, value = payload
            if status == "error":
                fut.set_exception(decode_error(value))
            else:
                try:
                    fut.set_result(decode(value, fd) if decode is not None else value)
                except Exception as exc:
                    fut.set_exception(exc)
        elif kind == "response":
            self._on_response(ident, payload, fd)
        elif kind == "log":
            name, level, text, path, lineno, func = payload
            logger = logging.getLogger(name)
            if logger.isEnabledFor(level):
                logger.handle(logger.makeRecord(name, level, path, lineno, "%s", (text,), None, func))
        elif kind == "bls":
            self._on_bls(ident, payload, fd)
        elif kind == "bls_cancel":
            with self.lock:
                core = self.bls.get(ident)
            if core is not None:
                core.cancel()
        elif kind == "call":
            self.owner.calls.submit(self._on_call, ident, payload)

    def _on_response(self, token: int, payload: Any, fd: int | None) -> None:
        data, error, final = payload
        with self.lock:
            request = self.tokens.get(token)
            if final:
                self.tokens.pop(token, None)
        if request is None or request.sink is None:
            return
        result = result_from_payload(TensorReader(fd), data)
        if error is not None:
            result = InferResult(error=decode_error(error))
        try:
            request.sink.send(result, final=final)
        except TritonLiteError as exc:
            _LOG.warning("model instance '%s': a response from the stub was dropped: %s", self.owner.instance_name, exc)

    def _on_bls(self, ident: int, payload: Any, fd: int | None) -> None:
        engine = self.owner.engine
        core = request_from_payload(TensorReader(fd), payload["request"])
        if core.trace is not None:  # trace=request.trace(): the execute request's trace is the parent
            with self.lock:
                parent = self.tokens.get(core.trace.token)
            core.trace = parent.trace if parent is not None else None
        if payload["decoupled"]:
            with self.lock:
                self.bls[ident] = core

            def on_response(result: InferResult | None, error: TritonLiteError | None, final: bool) -> None:
                if final:
                    with self.lock:
                        self.bls.pop(ident, None)
                writer = TensorWriter()
                data = encode_result(writer, result.outputs, result.parameters, None) if result is not None else None
                self._send_with_tensors("bls_stream", ident, (data, encode_error(error) if error else None, final), writer)

            engine._submit_with_callback(core, on_response)
            return
        future = engine._submit_request(core)

        def done(fut: concurrent.futures.Future) -> None:
            writer = TensorWriter()
            try:
                result = fut.result()
            except BaseException as exc:
                self._send_with_tensors("reply", ident, ("error", encode_error(exc)), writer)
                return
            data = encode_result(writer, result.outputs, result.parameters, result.error)
            self._send_with_tensors("reply", ident, ("result", data), writer)

        future.add_done_callback(done)

    def _send_with_tensors(self, kind: str, ident: int, payload: Any, writer: TensorWriter) -> None:
        fd = writer.finish()
        try:
            self.channel.send(kind, ident, payload, fd)
        except ChannelClosed:
            pass  # the child died; its reader fails what is in flight
        finally:
            if fd is not None:
                os.close(fd)

    def _on_call(self, ident: int, payload: Any) -> None:
        method, args = payload
        try:
            value = self.owner.engine_call(self, method, args)
            reply: Any = ("ok", value)
        except BaseException as exc:
            reply = ("error", encode_error(exc))
        try:
            self.channel.send("reply", ident, reply)
        except ChannelClosed:
            pass

    def _on_death(self) -> None:
        """The socket closed: reap the child, fail everything in flight, let the owner restart."""
        try:
            returncode: int | None = self.proc.wait(timeout=_REAP_TIMEOUT_S)
        except subprocess.TimeoutExpired:  # it closed the socket but lives on: it cannot serve, end it
            self.proc.kill()
            returncode = self.proc.wait()
        with self.lock:
            self.dead = True
            what = self.kill_reason or f"The child process (pid {self.pid}) of model '{self.owner.model_name}' {_describe_exit(returncode)}."
            self.death = what if what.endswith(".") else what + "."
            calls, self.calls = list(self.calls.values()), {}
            tokens, self.tokens = list(self.tokens.values()), {}
            bls, self.bls = list(self.bls.values()), {}
        error = self.failure()
        for fut, _ in calls:
            if not fut.done():
                fut.set_exception(error)
        for request in tokens:
            if request.sink is not None:
                request.sink.fail(error, "BACKEND")
        for core in bls:
            core.cancel()
        self.channel.close()
        self.owner.child_died(self)


class IsolatedPythonInstance:
    """A Python model instance whose ``model.py`` runs in a child process; same contract as in-process."""

    def __init__(self, ctx: LoadContext, options: IsolationOptions) -> None:
        self.model_name = ctx.model_name
        self.model_version = int(ctx.model_version)
        self.instance_name = ctx.instance_name or f"{ctx.model_name}_0"
        self.decoupled = bool(ctx.config.model_transaction_policy.decoupled)
        self.options = options
        self.engine = ctx.engine
        self.restarts = 0
        self._init_payload = {
            "model_name": ctx.model_name, "model_version": self.model_version,
            "config": config_to_json(ctx.config), "model_dir": str(ctx.model_dir),
            "version_dir": str(ctx.version_dir), "model_path": str(ctx.model_path),
            "instance_name": self.instance_name, "instance_kind": ctx.instance_kind, "device_id": ctx.device_id,
            "metrics_enabled": bool(getattr(getattr(ctx.engine, "metrics_registry", None), "enabled", False)),
            "log_level": logging.getLogger("tritonlite").getEffectiveLevel(),
        }
        self._lock = threading.RLock()  # held while a child starts, so execute waits for a restart
        self._closing = False
        self._generation = 0
        self._child: _Child | None = None
        self._readers: list[threading.Thread] = []
        self._restart_error: TritonLiteError | None = None
        self.calls = concurrent.futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix=f"tritonlite.{self.model_name}.{self.instance_name}.calls"
        )
        try:
            with self._lock:
                self._child = self._start()
        except BaseException:
            self.calls.shutdown(wait=True)
            raise

    @property
    def pid(self) -> int | None:
        """PID of the current child (None while none runs)."""
        child = self._child
        return child.pid if child is not None and not child.dead else None

    # ---- child lifecycle ---------------------------------------------------------------------------
    def _start(self) -> _Child:
        """Start a child and run ``initialize`` in it; raise the load error if either fails."""
        self._generation += 1
        child = _Child(self, self._generation)
        self._readers.append(child.reader)
        try:
            fut = child.request("init", self._init_payload, child.arena_fd)
        finally:
            os.close(child.arena_fd)
        timeout = self.options.start_timeout_s or None
        try:
            info = fut.result(timeout)
        except concurrent.futures.TimeoutError:
            child.kill(f"The stub process did not finish initialize within {self.options.start_timeout_s:g} s and was killed.")
            self._reap(child)
            raise UnavailableError(
                f"model instance '{self.instance_name}': the stub process did not finish initialize within "
                f"{self.options.start_timeout_s:g} s"
            ) from None
        except TritonLiteError as exc:
            if not child.dead:  # initialize raised: the child lives on, end it
                self._stop_child(child, finalize=False)
            else:
                self._reap(child)
            raise exc from None
        child.initialized = True
        _LOG.info("model instance '%s' runs in stub process %s (%s)", self.instance_name, info["pid"], info["executable"])
        return child

    def child_died(self, child: _Child) -> None:
        """Called by the dead child's reader thread: restart now unless we are closing."""
        if self._closing or not child.initialized:
            return
        _LOG.error("Stub process '%s' is unhealthy and it will be restarted. %s", self.instance_name, child.death)
        with self._lock:
            if self._closing or self._child is not child:
                return
            self._child = None
            try:
                self._child = self._start()
                self.restarts += 1
                self._restart_error = None
            except TritonLiteError as exc:
                self._restart_error = exc
                _LOG.error("Failed to restart the stub process of model instance '%s': %s", self.instance_name, exc)

    def _current(self) -> _Child:
        with self._lock:
            if self._closing:
                raise UnavailableError(f"model instance '{self.instance_name}' is unloading")
            child = self._child
            if child is None or child.dead:
                self._child = None
                try:
                    child = self._child = self._start()
                    self.restarts += 1
                except TritonLiteError as exc:
                    raise InternalError(
                        f"Failed to process the request(s) for model instance '{self.instance_name}', message: "
                        f"Failed to restart the stub process: {exc}"
                    ) from exc
            return child

    # ---- execute -------------------------------------------------------------------------------------
    def execute(self, requests: Sequence[InferenceRequest]) -> list[InferResult | None] | None:
        child = self._current()
        writer = TensorWriter()
        tokens = []
        payload = []
        with child.lock:
            for r in requests:
                token = next(child.ids)
                child.tokens[token] = r
                tokens.append(token)
        for token, r in zip(tokens, requests):
            payload.append((token, request_payload(writer, r, r.backend_inputs, token)))
        fd, in_arena = writer.finish_into(child.arena)
        try:
            fut = child.request("exec", {"requests": payload, "arena": in_arena}, fd, child.decode_results)
        finally:
            if fd is not None:
                os.close(fd)
        timeout = self.options.execute_timeout_s or None
        try:
            try:
                outcome = fut.result(timeout)
            except concurrent.futures.TimeoutError:
                child.kill(
                    f"The execute function of model '{self.model_name}' did not return within "
                    f"{self.options.execute_timeout_s:g} s; its child process (pid {child.pid}) was killed."
                )
                outcome = fut.result()  # fails once the reader has seen the child die
        except BaseException:
            self._forget(child, tokens)  # the runner fails these requests
            raise
        results, flags = outcome
        for r, flag in zip(requests, flags):
            if flag != 1 and hasattr(r, "release_flags"):
                r.release_flags = flag
        if results is not None:
            self._forget(child, tokens)
        return results

    @staticmethod
    def _forget(child: _Child, tokens: Sequence[int]) -> None:
        with child.lock:
            for token in tokens:
                child.tokens.pop(token, None)

    # ---- what the child asks of the engine (call threads) ----------------------------------------------
    def engine_call(self, child: _Child, method: str, args: Sequence[Any]) -> Any:
        engine = self.engine
        if engine is None:
            raise UnavailableError(f"{method} needs a running engine")
        if method == "load_model":
            name, config, files = args
            kwargs: dict[str, Any] = {}
            if config:
                kwargs["config"] = config
            if files:
                kwargs["files"] = files
            return engine.load_model(name, **kwargs)
        if method == "unload_model":
            return engine.unload_model(args[0], unload_dependents=args[1])
        if method == "is_model_ready":
            return engine.is_model_ready(args[0], args[1])
        owner = (self.model_name, self.model_version)
        if method == "metric_family":
            family = engine.metrics_registry.custom.family(args[0], args[1], args[2], owner=owner)
            return self._handle(child, family)
        if method == "metric":
            family = child.metric_handles[args[0]]
            return self._handle(child, family.metric(args[1], args[2], owner=owner))
        if method == "metric_op":
            series = child.metric_handles[args[0]]
            op, value = args[1], args[2]
            return series.get() if op == "get" else getattr(series, op)(value)
        raise InternalError(f"unknown stub call '{method}'")

    @staticmethod
    def _handle(child: _Child, obj: Any) -> int:
        with child.lock:
            handle = next(child.ids)
            child.metric_handles[handle] = obj
        return handle

    # ---- readiness and close ---------------------------------------------------------------------------
    def is_ready(self) -> bool:
        """False while the child is dead or restarting; else the model's own ``is_ready``."""
        child = self._child
        if self._closing or child is None or child.dead:
            return False
        try:
            return bool(child.request("ready").result(_READY_TIMEOUT_S))
        except (concurrent.futures.TimeoutError, TritonLiteError) as exc:
            _LOG.warning("is_ready of model instance '%s' failed: %s", self.instance_name, exc)
            return False

    def _reap(self, child: _Child) -> None:
        try:
            child.proc.wait(timeout=_REAP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()
        child.reader.join()

    def _stop_child(self, child: _Child, finalize: bool = True) -> None:
        """Let open decoupled responses finish and run ``finalize`` (both bounded), then reap the child."""
        deadline = time.monotonic() + (self.options.stop_timeout_s or 0)
        while finalize and child.tokens and not child.dead and time.monotonic() < deadline:
            time.sleep(0.005)
        child.unloading = True
        if finalize and not child.dead:
            try:
                child.request("finalize").result(max(0.1, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                _LOG.error("finalize of model instance '%s' did not return within %g s; killing its stub process",
                           self.instance_name, self.options.stop_timeout_s)
            except TritonLiteError as exc:
                _LOG.error("finalize of model instance '%s' failed: %s", self.instance_name, exc)
        with child.lock:
            if not child.kill_reason:
                child.kill_reason = f"The model instance '{self.instance_name}' was unloaded."
        if child.proc.poll() is None:
            try:
                child.proc.wait(timeout=_REAP_TIMEOUT_S if finalize else 0.01)
            except subprocess.TimeoutExpired:
                child.proc.terminate()
                try:
                    child.proc.wait(timeout=1.0)
                except subprocess.TimeoutExpired:
                    child.proc.kill()
                    child.proc.wait()
        child.reader.join()

    def close(self) -> None:
        """Finalize and end the child; fail responses still open; join every thread this instance started."""
        if self._closing:
            return
        self._closing = True
        with self._lock:
            child, self._child = self._child, None
        try:
            if child is not None:
                self._stop_child(child)
        finally:
            for reader in self._readers:
                reader.join()
            self.calls.shutdown(wait=True)


__all__ = ["IsolatedPythonInstance"]
