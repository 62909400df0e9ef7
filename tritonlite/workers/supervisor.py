"""``tritonlite serve --workers N``: start N worker processes, forward SIGINT/SIGTERM, reap them.

The supervisor serves nothing itself. Workers are this same command with ``--worker-index i``; they
share a private 0700 directory for their Unix sockets and a random key (in the environment, not on
the command line). A worker that exits takes the others down with it (one exit status for all).
On Linux each worker also dies with the supervisor (PR_SET_PDEATHSIG), so no process is left behind.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from typing import Sequence

AUTHKEY_ENV = "TRITONLITE_WORKER_AUTHKEY"


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def run(argv: Sequence[str], workers: int, exit_timeout_secs: float) -> int:
    """Run ``workers`` copies of ``tritonlite <argv>`` until a signal or until one of them exits."""
    directory = tempfile.mkdtemp(prefix="tritonlite-workers-")
    os.chmod(directory, 0o700)
    env = dict(os.environ, **{AUTHKEY_ENV: secrets.token_hex(16)})
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    children: list[subprocess.Popen] = []
    try:
        for i in range(workers):
            cmd = [sys.executable, "-m", "tritonlite", *argv, "--worker-index", str(i), "--worker-dir", directory]
            children.append(subprocess.Popen(cmd, env=env, preexec_fn=_die_with_parent))
        status = 0
        while not stop.wait(0.2):
            exited = [c for c in children if c.poll() is not None]
            if exited:
                status = exited[0].returncode or 0
                break
        for child in children:
            if child.poll() is None:
                child.send_signal(received[0] if received else signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=exit_timeout_secs + 5.0)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            status = status or max(0, child.returncode or 0)
        return status
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(directory, ignore_errors=True)


__all__ = ["run", "AUTHKEY_ENV"]
