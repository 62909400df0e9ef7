"""``tritonlite serve`` as a child process for the hardening tests: a crash is a dead process (not a
dead test runner), and its memory is measured on its own. Every wait is bounded; the process is
stopped by its PID at teardown."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]
_STARTED = re.compile(r"Started (HTTPService|GRPCInferenceService|Metrics Service) at (\S+):(\d+)")


class ServedProcess:
    """A running ``python -m tritonlite serve`` on 127.0.0.1 with free ports (HTTP, gRPC; metrics only when
    ``extra_args`` turn them on: ``--allow-metrics true --metrics-port 0``).

    The ports come from its "Started ... at HOST:PORT" lines (on either stream); ``output`` has all lines."""

    def __init__(self, repository: Path, extra_args: Sequence[str] = (), *, startup_timeout: float = 60.0) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = [sys.executable, "-m", "tritonlite", "serve", "--model-repository", str(repository),
               "--http-address", "127.0.0.1", "--http-port", "0", "--grpc-address", "127.0.0.1", "--grpc-port", "0",
               "--allow-metrics", "false", *extra_args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.ports: dict[str, int] = {}
        self._both = threading.Event()
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.errors), daemon=True).start()
        wanted = {"HTTPService", "GRPCInferenceService"}
        if "--allow-grpc" in extra_args:
            wanted.discard("GRPCInferenceService")
        self._wanted = wanted
        if not self._both.wait(startup_timeout):
            self.kill()
            raise RuntimeError(f"server did not start: {self.lines} {self.errors[-20:]}")

    def _read(self, stream, sink: list[str]) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            sink.append(line.rstrip("\n"))
            m = _STARTED.search(line)
            if m:
                self.ports[m.group(1)] = int(m.group(3))
                if self._wanted <= set(self.ports):
                    self._both.set()

    @property
    def output(self) -> list[str]:
        return self.lines + self.errors

    @property
    def http(self) -> str:
        return f"127.0.0.1:{self.ports['HTTPService']}"

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.ports['GRPCInferenceService']}"

    @property
    def metrics(self) -> str:
        return f"127.0.0.1:{self.ports['Metrics Service']}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_bytes(self) -> int:
        """Resident set size of the server process (from /proc)."""
        with open(f"/proc/{self.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def ready(self, timeout: float = 2.0) -> int:
        """Status code of GET /v2/health/ready."""
        try:
            with urllib.request.urlopen(f"http://{self.http}/v2/health/ready", timeout=timeout) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def terminate(self, timeout: float) -> int:
        """SIGTERM, then wait at most ``timeout`` seconds for the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> "ServedProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_until(predicate, timeout: float, interval: float = 0.01) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
