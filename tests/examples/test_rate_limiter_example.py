"""examples/rate_limiter: in-process (exclusion and the exact priority order) and over HTTP against
``tritonlite serve --rate-limit execution_count --rate-limit-resource gpu_slot:1`` with tritonclient."""

from __future__ import annotations


import pytest

from model_repos import EXAMPLES, run_example

EXAMPLE = EXAMPLES / "rate_limiter"


def _run(*args: str) -> list[str]:
    return run_example("rate_limiter", *args)


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
