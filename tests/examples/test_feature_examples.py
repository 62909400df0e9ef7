"""Each feature example (examples/<feature>/client.py) runs as a user would run it and prints what it promises."""

from __future__ import annotations

import ast

import pytest

from model_repos import EXAMPLES, run_example


def test_dynamic_batching_runs_concurrent_callers_in_fewer_executions() -> None:
    lines = run_example("dynamic_batching")
    for i in range(8):
        assert lines[i].startswith(f"caller {i}: [{2.0 * i}, {2.0 * i + 1.0}] (executed in a batch of ")
    batch_of = [int(line.split("batch of ")[1].split()[0]) for line in lines[:8]]
    counts = lines[8].split(", ")
    assert counts[0] == "inference_count: 8"
    executions = int(counts[1].removeprefix("execution_count: "))
    assert 1 <= executions < 8
    sizes = ast.literal_eval(lines[9].removeprefix("batch sizes run: "))
    assert sum(size * n for size, n in sizes.items()) == 8 and sum(sizes.values()) == executions
    assert max(batch_of) > 1 and set(batch_of) <= set(sizes)


def test_sequence_state_keeps_one_running_total_per_sequence() -> None:
    assert run_example("sequence_state") == [
        "sequence 1001 adds  1: total 1",
        "sequence 1002 adds 10: total 10",
        "sequence 1001 adds  2: total 3",
        "sequence 1002 adds 20: total 30",
        "sequence 1001 adds  3: total 6",
        "sequence 1002 adds 30: total 60",
        "sequence 1001 adds  4: total 10",
        "inference_count: 7",
        "rejected: inference request for sequence 1001 to model 'accumulator' must specify the START flag on the first "
        "request of the sequence",
    ]


def test_ensemble_runs_pre_onnx_post_as_one_model() -> None:
    pytest.importorskip("onnxruntime", reason="the ensemble's classifier step is an ONNX model")
    assert run_example("ensemble") == [
        "'A great film with good acting.': positive (0.953)",
        "'An awful plot.': negative (0.881)",
        "'Good music, bad sound, great cast.': positive (0.881)",
        "'Bad, bad, bad.': negative (0.953)",
        "sentiment: inference_count 4, execution_count 1",
        "preprocess: inference_count 4, execution_count 1",
        "classifier: inference_count 4, execution_count 1",
        "postprocess: inference_count 4, execution_count 1",
    ]


def test_committed_ensemble_classifier_matches_its_builder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("onnx", reason="rebuilding the ONNX file needs the onnx package")
    from model_repos import onnx_models

    rebuilt = onnx_models.sentiment(tmp_path / "model.onnx")
    assert rebuilt.read_bytes() == (EXAMPLES / "ensemble" / "model_repository" / "classifier" / "1" / "model.onnx").read_bytes()


def test_bls_model_calls_other_models_with_exec_and_async_exec() -> None:
    assert run_example("bls") == [
        "hypotenuse([3.0, 5.0, 8.0], [4.0, 12.0, 15.0]) = [5.0, 13.0, 17.0]",
        "hypotenuse: inference_count 1",
        "square: inference_count 2",
        "add: inference_count 1",
        "error: InternalError: add failed: A and B must have the same shape, got [3] and [2]",
    ]


def test_decoupled_model_streams_over_the_python_api_and_tritonclient_grpc() -> None:
    pytest.importorskip("tritonclient.grpc", reason="the example's second half uses tritonclient[grpc]")
    pytest.importorskip("grpc", reason="the gRPC door needs grpcio")
    assert run_example("decoupled") == [
        "stream_infer: 7 responses: streams | arrive | one | word | at | a | time",
        "tritonclient gRPC stream (request r1): 7 responses, then final: 0:streams 1:arrive 2:one 3:word 4:at 5:a 6:time",
    ]


def test_custom_metrics_appear_on_metrics_next_to_nv_metrics() -> None:
    assert run_example("custom_metrics") == [
        "'hello': 1 words",
        "'the quick brown fox': 4 words",
        "'one two three four five six seven': 7 words",
        "# TYPE word_count_words counter",
        'word_count_words{model="word_count",version="1"} 12',
        "# TYPE word_count_longest_text gauge",
        'word_count_longest_text{model="word_count",version="1"} 7',
        "# TYPE word_count_text_words histogram",
        'word_count_text_words_count{model="word_count",version="1"} 3',
        'word_count_text_words_sum{model="word_count",version="1"} 12',
        'word_count_text_words_bucket{model="word_count",version="1",le="2"} 1',
        'word_count_text_words_bucket{model="word_count",version="1",le="5"} 2',
        'word_count_text_words_bucket{model="word_count",version="1",le="10"} 3',
        'word_count_text_words_bucket{model="word_count",version="1",le="+Inf"} 3',
        'nv_inference_request_success{model="word_count",version="1"} 3',
    ]
