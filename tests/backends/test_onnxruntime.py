"""ONNX Runtime backend: auto-complete, session options from parameters, GPU refusal, BYTES, instances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tritonlite import InferenceEngine, UnavailableError
from tritonlite.backends.base import LoadContext
from tritonlite.backends.onnxruntime import OnnxRuntimeBackend, _session_options
from tritonlite.config import parse_pbtxt

from model_repos import onnx_models, write_model


def test_auto_complete_fills_inputs_outputs_and_batching(tmp_path: Path) -> None:
    onnx_models.add_sub(tmp_path / "auto" / "1" / "model.onnx")  # no config.pbtxt at all
    with InferenceEngine(tmp_path) as engine:
        cfg = engine.model_config("auto")
        assert cfg["backend"] == "onnxruntime" and cfg["max_batch_size"] == 4
        assert "dynamic_batching" in cfg
        assert [(i["name"], i["data_type"], i["dims"]) for i in cfg["input"]] == [("INPUT0", "TYPE_FP32", [16]), ("INPUT1", "TYPE_FP32", [16])]
        assert [(o["name"], o["dims"]) for o in cfg["output"]] == [("OUTPUT0", [16]), ("OUTPUT1", [16])]
        assert cfg["instance_group"][0]["count"] == 2  # Triton's onnxruntime CPU default
        x = np.ones((3, 16), np.float32)
        np.testing.assert_array_equal(engine.infer("auto", {"INPUT0": x, "INPUT1": x}).as_numpy("OUTPUT1"), 0 * x)


def test_auto_complete_keeps_given_fields_and_fixed_batch_models(tmp_path: Path) -> None:
    onnx_models.identity(tmp_path / "fixed" / "1" / "model.onnx", [2, 3])
    write_model(tmp_path, "fixed", 'platform: "onnxruntime_onnx"\n')
    with InferenceEngine(tmp_path) as engine:
        cfg = engine.model_config("fixed")
        assert cfg["max_batch_size"] == 0 and cfg["input"][0]["dims"] == [2, 3]
        x = np.arange(6, dtype=np.float32).reshape(2, 3)
        np.testing.assert_array_equal(engine.infer("fixed", {"INPUT0": x}).as_numpy("OUTPUT0"), x)


def test_auto_complete_off_with_strict_model_config(tmp_path: Path) -> None:
    onnx_models.add_sub(tmp_path / "partial" / "1" / "model.onnx")
    write_model(tmp_path, "partial", 'platform: "onnxruntime_onnx"\nmax_batch_size: 4\n')
    with InferenceEngine(tmp_path, strict_model_config=True) as engine:
        entry = engine.repository_index()[0]
        assert entry["state"] == "UNAVAILABLE"
        assert entry["reason"].startswith("model 'partial' must list its inputs and outputs in ")
    with InferenceEngine(tmp_path) as engine:
        assert engine.is_model_ready("partial")


def _config(params: str, graph_level: int | None = None) -> object:
    text = f'name: "m" platform: "onnxruntime_onnx" {params}'
    if graph_level is not None:
        text += f" optimization {{ graph {{ level: {graph_level} }} }}"
    return parse_pbtxt(text)


def test_session_options_follow_tritons_parameter_names() -> None:
    import onnxruntime as ort

    opts = _session_options(ort, _config(
        'parameters { key: "intra_op_thread_count" value { string_value: "3" } }'
        'parameters { key: "inter_op_thread_count" value { string_value: "2" } }'
        'parameters { key: "execution_mode" value { string_value: "1" } }'
        'parameters { key: "enable_mem_arena" value { string_value: "0" } }',
        graph_level=-1,
    ))
    assert opts.intra_op_num_threads == 3 and opts.inter_op_num_threads == 2
    assert opts.execution_mode == ort.ExecutionMode.ORT_PARALLEL
    assert opts.enable_cpu_mem_arena is False
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert _session_options(ort, _config("", 1)).graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    assert _session_options(ort, _config("")).graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    with pytest.raises(ValueError, match="parameter 'intra_op_thread_count' of model 'm' must be an integer, got 'many'"):
        _session_options(ort, _config('parameters { key: "intra_op_thread_count" value { string_value: "many" } }'))


def test_gpu_instance_is_refused_cleanly_without_cuda(tmp_path: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has the CUDA provider")
    path = onnx_models.add_sub(tmp_path / "1" / "model.onnx")
    cfg = parse_pbtxt('name: "g" platform: "onnxruntime_onnx" max_batch_size: 8 '
                      'input [{name: "INPUT0" data_type: TYPE_FP32 dims: [16]}, {name: "INPUT1" data_type: TYPE_FP32 dims: [16]}] '
                      'output [{name: "OUTPUT0" data_type: TYPE_FP32 dims: [16]}]')
    ctx = LoadContext("g", 1, cfg, tmp_path, tmp_path / "1", path, instance_name="g_0_0", instance_kind="GPU")
    with pytest.raises(UnavailableError, match="KIND_GPU but onnxruntime has no CUDAExecutionProvider"):
        OnnxRuntimeBackend().create_instance(ctx)


def test_kind_gpu_config_without_gpu_is_unavailable_with_reason(tmp_path: Path) -> None:
    onnx_models.add_sub(tmp_path / "gpu_model" / "1" / "model.onnx")
    write_model(tmp_path, "gpu_model", 'platform: "onnxruntime_onnx"\ninstance_group [ { kind: KIND_GPU } ]\n')
    with InferenceEngine(tmp_path) as engine:
        if engine.is_model_ready("gpu_model"):
            pytest.skip("this machine has a GPU")
        reason = engine.repository_index()[0]["reason"]
        assert "KIND_GPU but no GPU is available" in reason


def test_string_tensors_round_trip(tmp_path: Path) -> None:
    onnx_models.identity(tmp_path / "strings" / "1" / "model.onnx", ["n"], dtype="STRING")
    with InferenceEngine(tmp_path) as engine:
        cfg = engine.model_config("strings")
        assert cfg["input"][0]["data_type"] == "TYPE_STRING"
        out = engine.infer("strings", {"INPUT0": np.array([b"abc", "déf"], dtype=object)}).as_numpy("OUTPUT0")
        assert out.dtype == object and list(out) == [b"abc", "déf".encode()]


def test_model_file_errors_make_the_model_unavailable(tmp_path: Path) -> None:
    write_model(tmp_path, "corrupt", 'platform: "onnxruntime_onnx"\nmax_batch_size: 0\n'
                'input [{name: "X" data_type: TYPE_FP32 dims: [1]}]\noutput [{name: "Y" data_type: TYPE_FP32 dims: [1]}]\n',
                {"1/model.onnx": b"not an onnx file"})
    write_model(tmp_path, "missing", 'platform: "onnxruntime_onnx"\n'
                'input [{name: "X" data_type: TYPE_FP32 dims: [1]}]\noutput [{name: "Y" data_type: TYPE_FP32 dims: [1]}]\n',
                {"1/other.bin": b""})
    with InferenceEngine(tmp_path, strict_model_config=True) as engine:
        index = {e["name"]: e for e in engine.repository_index()}
        assert index["corrupt"]["state"] == "UNAVAILABLE" and "failed to load ONNX model" in index["corrupt"]["reason"]
        assert "unable to find ONNX model file" in index["missing"]["reason"]
