"""``tritonlite`` talks like ``tritonserver``: --version, one-line start-up errors naming server and port, log formats."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from model_repos import IDENTITY_PY, identity_py_config, write_model
from tritonlite import __version__
from tritonlite.logformat import TritonFormatter, table

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "tritonlite", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def test_version_flag() -> None:
    r = _run("--version")
    assert r.returncode == 0 and r.stdout == f"tritonlite {__version__}\n"


@pytest.mark.parametrize("server", ["HTTP", "GRPC", "Metrics"])
def test_busy_port_is_one_line_naming_server_and_port(tmp_path: Path, server: str) -> None:
    if server == "GRPC":
        pytest.importorskip("tritonlite.grpc")
    repo = tmp_path / "models"
    write_model(repo, "identity_py", identity_py_config("identity_py"), {"1/model.py": IDENTITY_PY})
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        flags = {"HTTP": "--http-port", "GRPC": "--grpc-port", "Metrics": "--metrics-port"}
        ports = {f: "0" for f in flags.values()} | {flags[server]: str(port)}
        r = _run("serve", "--model-repository", str(repo), "--log-info", "false", *(x for kv in ports.items() for x in kv))
    assert r.returncode == 1, r.stderr
    assert r.stderr == f"error: failed to start {server} service: Unavailable - Socket '127.0.0.1:{port}' already in use\n"


def _record(msg: str, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("tritonlite.repository", level, "/x/model_manager.py", 201, msg, None, None)
    rec.created = 1796392856.692394  # 2026-12-04T14:00:56.692394Z
    rec.process = 4242
    rec.__dict__.update(extra)
    return rec


def test_default_and_iso8601_lines_match_triton() -> None:
    text = TritonFormatter("default").format(_record("successfully loaded 'simple' version 1"))
    assert re.fullmatch(r'I1204 \d\d:00:56\.692394 4242 model_manager\.py:201\] "successfully loaded \'simple\' version 1"',
                        text), text  # local time, as Triton's default format
    text = TritonFormatter("ISO8601").format(_record("a \"quoted\"\nline", logging.WARNING))
    assert text == '2026-12-04T14:00:56Z W 4242 model_manager.py:201] "a \\"quoted\\"\\nline"'
    assert TritonFormatter("ISO8601", escape=False).format(_record("raw", logging.DEBUG)).endswith("V 4242 model_manager.py:201] raw")


def test_json_lines_and_tables() -> None:
    block = table(("Model", "Version", "Status"), [("simple", "1", "READY")])
    assert block.splitlines() == ["+--------+---------+--------+", "| Model  | Version | Status |",
                                  "+--------+---------+--------+", "| simple | 1       | READY  |",
                                  "+--------+---------+--------+"]
    entry = json.loads(TritonFormatter("json").format(_record("", logging.ERROR, block=block)))
    assert entry == {"timestamp": "2026-12-04T14:00:56.692394Z", "level": "ERROR", "pid": 4242, "file": "model_manager.py",
                     "line": 201, "logger": "tritonlite.repository", "message": "", "block": block}
    assert TritonFormatter("ISO8601").format(_record("", block=block)) == f"2026-12-04T14:00:56Z I 4242 model_manager.py:201]\n{block}"
    wrapped = table(("Option", "Value"), [("server_extensions", "a " * 40)], max_width=20).splitlines()
    assert len(wrapped) == 4 + 4 and all(len(row) == len(wrapped[0]) for row in wrapped)
    with pytest.raises(ValueError, match="invalid log format 'xml'"):
        TritonFormatter("xml")
