"""examples/response_cache/client.py runs and prints what its docstring promises."""

from __future__ import annotations

import os
import subprocess
import sys

from model_repos import EXAMPLES, ROOT


def test_response_cache_example_answers_the_second_request_from_the_cache() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(EXAMPLES / "response_cache" / "client.py")], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("first: [[1.0, 4.0, 9.0, 16.0]] in ")
    assert lines[1].startswith("second: [[1.0, 4.0, 9.0, 16.0]] in ")
    assert lines[2] == "executions: 1 (warmup is not counted), cache hits: 1, misses: 1"
