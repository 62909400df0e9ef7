"""examples/rate_limiter: in-process (exclusion and the exact priority order) and over HTTP against
``tritonlite serve --rate-limit execution_count --rate-limit-resource gpu_slot:1`` with tritonclient."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from model_repos import EXAMPLES, ROOT

EXAMPLE = EXAMPLES / "rate_limiter"


def _run(*args: str) -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(EXAMPLE / "client.py"), *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.splitlines()


def test_rate_limiter_example_in_process() -> None:
    assert _run() == [
        "resources: {'0': {'gpu_slot': 1}}",
        "exclusive: 16 executions, at most 1 at a time, 0 overlapping",
        # classifier was waiting when the held slot came free (0 runs x 2 < detector's 1 x 1), then two
        # detector turns per classifier turn until detector's queue is empty
        "priority: order after the slot was freed: C D C D D C D D C D C C",
        "priority: by detector's last turn: detector 7 runs x priority 1 = 7, classifier 4 runs x priority 2 = 8 "
        "(the limiter serves the lowest product first)",
    ]


def test_rate_limiter_example_over_http_against_the_cli_flags() -> None:
    pytest.importorskip("tritonclient.http", reason="tritonclient is not installed (pip install 'tritonclient[all]')")
    from served import ServedProcess

    flags = ["--rate-limit", "execution_count", "--rate-limit-resource", "gpu_slot:1"]
    with ServedProcess(EXAMPLE / "model_repository", flags) as server:
        lines = _run("--url", server.http)
    assert lines == ["exclusive over HTTP: 16 executions, at most 1 at a time, 0 overlapping"]
