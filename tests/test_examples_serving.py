"""``examples/serving`` and ``examples/prometheus`` against a real ``tritonlite serve`` child process, with the
official tritonclient; the Grafana dashboard may only query metric names the server really exports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from model_repos import EXAMPLES, ROOT

pytest.importorskip("tritonclient.http", reason="tritonclient is not installed (pip install 'tritonclient[all]')")
pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed")

from served import ServedProcess  # noqa: E402

PROMETHEUS = EXAMPLES / "prometheus"


def run_client(script: Path, *args: str) -> list[str]:
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.splitlines()


def test_serving_example_with_tritonclient_over_http_and_grpc() -> None:
    with ServedProcess(EXAMPLES / "serving" / "model_repository") as server:
        lines = run_client(EXAMPLES / "serving" / "client.py", "--http", server.http, "--grpc", server.grpc)
    from tritonlite import __version__

    assert lines == [
        f"http: live=True ready=True server=triton {__version__}",
        "http: simple inputs [('INPUT0', 'INT32', [-1, 16]), ('INPUT1', 'INT32', [-1, 16])]",
        "http (binary): OUTPUT0[:4]=[1, 2, 3, 4] OUTPUT1[:4]=[-1, 0, 1, 2] id=h1",
        "http (json): OUTPUT0[:4]=[1, 2, 3, 4] OUTPUT1[:4]=[-1, 0, 1, 2] id=h1",
        "http error: [request id: <id_unknown>] unexpected shape for input 'INPUT0' for model 'simple'. Expected [-1,16], got [1,8]",
        "grpc: live=True ready=True",
        "grpc: OUTPUT0[:4]=[1, 2, 3, 4] OUTPUT1[:4]=[-1, 0, 1, 2]",
        "grpc stream: repeat -> [(0, 7), (1, 8), (2, 9)]",
        "grpc error: StatusCode.NOT_FOUND Request for unknown model: 'no_such_model' is not found",
        "grpc: simple inference_count=3",
    ]


@pytest.fixture(scope="module")
def prometheus_run() -> tuple[list[str], str]:
    """The prometheus example's client output and a scrape taken after it, from one server."""
    args = ["--allow-metrics", "true", "--metrics-address", "127.0.0.1", "--metrics-port", "0",
            "--metrics-config", "summary_latencies=true"]
    with ServedProcess(PROMETHEUS / "model_repository", args) as server:
        lines = run_client(PROMETHEUS / "client.py", "--http", server.http, "--metrics", server.metrics, "--requests", "64")
        with urllib.request.urlopen(f"http://{server.metrics}/metrics", timeout=10) as resp:
            text = resp.read().decode()
    return lines, text


def test_prometheus_example_drives_load_and_prints_scraped_series(prometheus_run: tuple[list[str], str]) -> None:
    lines, _ = prometheus_run
    assert lines[:4] == [
        "sent 64 requests: 64 correct, 2 refused",
        'nv_inference_request_success{model="double",version="1"} 64',
        'nv_inference_count{model="double",version="1"} 64',
        'nv_inference_request_failure{model="double",reason="OTHER",version="1"} 2',
    ]
    assert lines[4].startswith("nv_inference_exec_count between 1 and 64: True (mean batch ")
    assert lines[5:] == [
        "mean request latency > 0 us: True",
        "p50 from nv_inference_request_summary_us: present",
        "nv_cpu_utilization present: True",
    ]


def _exported_families(text: str) -> set[str]:
    return set(re.findall(r"^# TYPE (nv_\w+) ", text, re.M))


def _queried_metrics(expr: str, exported: set[str]) -> set[str]:
    """Metric names in a PromQL expression; a summary's or histogram's ``_sum`` / ``_count`` / ``_bucket``
    series counts as its family (``nv_inference_count`` is a family of its own)."""
    names = set()
    for name in re.findall(r"\bnv_\w+", expr):
        folded = re.sub(r"_(sum|count|bucket)$", "", name)
        names.add(name if name in exported or folded not in exported else folded)
    return names


def test_grafana_dashboard_queries_only_metrics_tritonlite_exports(prometheus_run: tuple[list[str], str]) -> None:
    _, text = prometheus_run
    exported = _exported_families(text)
    assert {"nv_inference_request_success", "nv_inference_request_summary_us", "nv_cpu_utilization"} <= exported
    dashboard = json.loads((PROMETHEUS / "grafana_dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    exprs.append(dashboard["templating"]["list"][0]["definition"])
    assert len(exprs) >= 10
    queried: set[str] = set()
    for expr in exprs:
        names = _queried_metrics(expr, exported)
        assert names, f"query names no nv_* metric: {expr}"
        assert names <= exported, f"{sorted(names - exported)} not exported by tritonlite (query: {expr})"
        queried |= names
    assert len(queried) >= 12  # the dashboard covers counts, latencies, queue/compute, batching, host
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}" and panel["targets"] and panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])


def test_prometheus_scrape_config_targets_the_metrics_port() -> None:
    text = (PROMETHEUS / "prometheus.yml").read_text()
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    config = yaml.safe_load(text)
    job = config["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["localhost:8002"]
    from tritonlite.cli import build_parser

    serve = build_parser().parse_args(["serve", "--model-repository", "x"])
    assert serve.metrics_port == 8002
