"""examples/decoupled_ensemble: the ensemble streams one response per generator response, in-process
(``stream_infer``) and over a tritonclient gRPC stream against ``tritonlite serve``."""

from __future__ import annotations


import pytest

from model_repos import EXAMPLES, run_example

EXAMPLE = EXAMPLES / "decoupled_ensemble"


def _run(*args: str) -> list[str]:
    return run_example("decoupled_ensemble", *args)


def test_decoupled_ensemble_example_in_process() -> None:
    assert _run() == [
        "pipeline transaction policy: {'decoupled': True}",
        "in-process stream: 'o' 'l' 'l' 'e' 'h' -> 'olleh' (5 responses)",
    ]
    assert _run("héllo wörld")[1] == (
        "in-process stream: 'd' 'l' 'r' 'ö' 'w' ' ' 'o' 'l' 'l' 'é' 'h' -> 'dlröw olléh' (11 responses)")


def test_decoupled_ensemble_example_over_a_grpc_stream() -> None:
    pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed")
    from served import ServedProcess

    with ServedProcess(EXAMPLE / "model_repository") as server:
        lines = _run("--grpc", server.grpc, "stream")
    assert lines == ["grpc stream: 'm' 'a' 'e' 'r' 't' 's' -> 'maerts' (6 responses, then the final flag)"]
