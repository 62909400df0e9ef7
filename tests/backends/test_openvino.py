"""OpenVINO backend: IR and ONNX models built here; f32 precision, dynamic batch, parameters, auto-complete, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ov = pytest.importorskip("openvino")

from openvino import opset13 as ops  # noqa: E402

from tritonlite import InferenceEngine, InvalidArgumentError, UnavailableError  # noqa: E402
from tritonlite.backends.openvino import OpenVINOBackend, compile_properties  # noqa: E402
from tritonlite.config import parse_pbtxt  # noqa: E402

from framework_harness import execute_batch, make_context  # noqa: E402
from model_repos import onnx_models, write_model  # noqa: E402

W = (np.arange(32, dtype=np.float32).reshape(8, 4) - 13.0) / 7.0


def _dense_ir(path: Path, batch: int | None = 1) -> Path:
    """x[batch, 8] @ W + 0.1, saved as IR without fp16 weight compression; batch None = dynamic."""
    x = ops.parameter([batch if batch is not None else -1, 8], np.float32, name="INPUT0")
    y = ops.add(ops.matmul(x, ops.constant(W), False, False), ops.constant(np.float32(0.1)))
    y.output(0).get_tensor().set_names({"OUTPUT0"})
    path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.Model([y], [x], "dense"), str(path), compress_to_fp16=False)
    return path


DENSE_CONFIG = """
    name: "dense"
    backend: "openvino"
    max_batch_size: 8
    input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 8 ] } ]
    output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]
"""


def test_ir_model_static_batch_becomes_dynamic_and_infers_in_f32(tmp_path: Path) -> None:
    _dense_ir(tmp_path / "dense" / "1" / "model.xml", batch=1)  # the IR says batch 1
    write_model(tmp_path, "dense", DENSE_CONFIG)
    x = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32) * 10
    with InferenceEngine(tmp_path) as engine:
        out = engine.infer("dense", {"INPUT0": x}).as_numpy("OUTPUT0")
    assert out.shape == (5, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out, x @ W + 0.1, rtol=1e-5, atol=1e-4)  # bf16 would be off by ~1e-1 here
    ctx = make_context(tmp_path / "dense", DENSE_CONFIG)
    inst = OpenVINOBackend().create_instance(ctx)
    assert inst.compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
    outs = execute_batch(inst, ctx.config, [{"INPUT0": x[:2]}, {"INPUT0": x[2:]}])
    assert [o["OUTPUT0"].shape for o in outs] == [(2, 4), (3, 4)]
    np.testing.assert_allclose(np.concatenate([o["OUTPUT0"] for o in outs]), out, rtol=1e-6)
    inst.close()


def test_onnx_file_through_openvino(tmp_path: Path) -> None:
    onnx_models.add_sub(tmp_path / "ov_onnx" / "1" / "model.onnx")
    write_model(tmp_path, "ov_onnx", """
        backend: "openvino"
        default_model_filename: "model.onnx"
        max_batch_size: 4
        input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] }, { name: "INPUT1" data_type: TYPE_FP32 dims: [ 16 ] } ]
        output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] }, { name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 16 ] } ]
    """)
    a = np.random.default_rng(1).random((3, 16), dtype=np.float32)
    b = np.random.default_rng(2).random((3, 16), dtype=np.float32)
    with InferenceEngine(tmp_path) as engine:
        res = engine.infer("ov_onnx", {"INPUT0": a, "INPUT1": b})
        np.testing.assert_allclose(res.as_numpy("OUTPUT0"), a + b, rtol=1e-6)
        np.testing.assert_allclose(res.as_numpy("OUTPUT1"), a - b, rtol=1e-6, atol=1e-7)


def test_auto_complete_from_the_model(tmp_path: Path) -> None:
    _dense_ir(tmp_path / "auto" / "1" / "model.xml", batch=None)  # no config.pbtxt: found by model.xml
    _dense_ir(tmp_path / "fixed" / "1" / "model.xml", batch=2)
    write_model(tmp_path, "fixed", 'backend: "openvino"\ninstance_group [ { kind: KIND_AUTO } ]\n')
    with InferenceEngine(tmp_path) as engine:
        cfg = engine.model_config("auto")
        assert cfg["backend"] == "openvino" and cfg["max_batch_size"] == 4 and "dynamic_batching" in cfg
        assert [(t["name"], t["data_type"], t["dims"]) for t in cfg["input"]] == [("INPUT0", "TYPE_FP32", [8])]
        assert [(t["name"], t["data_type"], t["dims"]) for t in cfg["output"]] == [("OUTPUT0", "TYPE_FP32", [4])]
        assert cfg["instance_group"][0]["kind"] == "KIND_CPU"
        fixed = engine.model_config("fixed")  # static batch, no layout: no batching, full shapes
        assert fixed["max_batch_size"] == 0 and fixed["input"][0]["dims"] == [2, 8]
        assert fixed["instance_group"][0]["kind"] == "KIND_CPU"
        x = np.ones((2, 8), np.float32)
        np.testing.assert_allclose(engine.infer("fixed", {"INPUT0": x}).as_numpy("OUTPUT0"), x @ W + 0.1, rtol=1e-5)


def test_dtype_coverage(tmp_path: Path) -> None:
    params, outs = [], []
    types = [("f64", np.float64, "FP64"), ("f16", np.float16, "FP16"), ("i32", np.int32, "INT32"), ("i64", np.int64, "INT64"),
             ("u8", np.uint8, "UINT8"), ("i8", np.int8, "INT8")]
    for name, dt, _ in types:
        p = ops.parameter([-1, 2], dt, name=name)
        o = ops.add(p, ops.constant(np.array(1, dtype=dt)))
        o.output(0).get_tensor().set_names({f"out_{name}"})
        params.append(p)
        outs.append(o)
    flag = ops.parameter([-1, 2], np.bool_, name="flag")
    neg = ops.logical_not(flag)
    neg.output(0).get_tensor().set_names({"out_flag"})
    path = tmp_path / "types" / "1" / "model.xml"
    path.parent.mkdir(parents=True)
    ov.save_model(ov.Model(outs + [neg], params + [flag]), str(path), compress_to_fp16=False)
    with InferenceEngine(tmp_path) as engine:  # auto-complete reads every type
        cfg = engine.model_config("types")
        assert {t["name"]: t["data_type"] for t in cfg["input"]} == {**{n: f"TYPE_{t}" for n, _, t in types}, "flag": "TYPE_BOOL"}
        # the CPU plugin computes i64 in i32 and f64 in f32: values chosen inside those ranges
        feeds = {"f64": np.array([[1.5, -2]]), "f16": np.array([[1.5, 2]], np.float16), "i32": np.array([[2**30, -7]], np.int32),
                 "i64": np.array([[5, -9]], np.int64), "u8": np.array([[254, 0]], np.uint8), "i8": np.array([[-5, 2]], np.int8),
                 "flag": np.array([[True, False]])}
        res = engine.infer("types", feeds)
    for name, dt, _ in types:
        out = res.as_numpy(f"out_{name}")
        assert out.dtype == dt
        np.testing.assert_array_equal(out, feeds[name] + dt(1))
    np.testing.assert_array_equal(res.as_numpy("out_flag"), [[False, True]])


def test_parameters_map_to_openvino_properties(tmp_path: Path) -> None:
    core = ov.Core()

    def props(params: str) -> dict[str, str]:
        return compile_properties(ov, core, parse_pbtxt(f'name: "m" backend: "openvino" {params}'))

    assert props("") == {"INFERENCE_PRECISION_HINT": "f32"}
    got = props('parameters { key: "NUM_STREAMS" value { string_value: "2" } }'
                'parameters { key: "PERFORMANCE_HINT" value { string_value: "throughput" } }'
                'parameters { key: "INFERENCE_NUM_THREADS" value { string_value: "1" } }'
                'parameters { key: "HINT_BF16" value { string_value: "YES" } }')
    assert got == {"INFERENCE_PRECISION_HINT": "bf16", "NUM_STREAMS": "2", "PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_NUM_THREADS": "1"}
    assert props('parameters { key: "INFERENCE_PRECISION_HINT" value { string_value: "bf16" } }')["INFERENCE_PRECISION_HINT"] == "bf16"
    with pytest.raises(InvalidArgumentError, match="'NUM_STREAMS' of model 'm' must be AUTO, NUMA or a number, got 'lots'"):
        props('parameters { key: "NUM_STREAMS" value { string_value: "lots" } }')
    with pytest.raises(InvalidArgumentError, match="'PERFORMANCE_HINT' of model 'm' must be one of"):
        props('parameters { key: "PERFORMANCE_HINT" value { string_value: "FAST" } }')

    _dense_ir(tmp_path / "dense" / "1" / "model.xml", batch=None)
    ctx = make_context(tmp_path / "dense", DENSE_CONFIG + 'parameters { key: "NUM_STREAMS" value { string_value: "2" } }'
                       'parameters { key: "INFERENCE_NUM_THREADS" value { string_value: "2" } }')
    inst = OpenVINOBackend().create_instance(ctx)
    assert int(inst.compiled.get_property("NUM_STREAMS")) == 2
    assert int(inst.compiled.get_property("INFERENCE_NUM_THREADS")) == 2
    inst.close()


def test_static_batch_with_padding_and_skip_dynamic(tmp_path: Path) -> None:
    _dense_ir(tmp_path / "dense" / "1" / "model.xml", batch=4)
    skip = 'parameters { key: "SKIP_OV_DYNAMIC_BATCHSIZE" value { string_value: "YES" } }'
    pad = 'parameters { key: "ENABLE_BATCH_PADDING" value { string_value: "YES" } }'
    x = np.random.default_rng(3).random((2, 8), dtype=np.float32)
    ctx = make_context(tmp_path / "dense", DENSE_CONFIG + skip + pad)
    inst = OpenVINOBackend().create_instance(ctx)
    out = execute_batch(inst, ctx.config, [{"INPUT0": x}])[0]["OUTPUT0"]
    assert out.shape == (2, 4)
    np.testing.assert_allclose(out, x @ W + 0.1, rtol=1e-5)
    ctx = make_context(tmp_path / "dense", DENSE_CONFIG + skip)
    inst = OpenVINOBackend().create_instance(ctx)
    with pytest.raises(InvalidArgumentError, match="OpenVINO infer failed"):
        execute_batch(inst, ctx.config, [{"INPUT0": x}])


def test_bad_input_and_bad_files_leave_the_engine_serving(tmp_path: Path) -> None:
    _dense_ir(tmp_path / "dense" / "1" / "model.xml", batch=None)
    write_model(tmp_path, "dense", DENSE_CONFIG.replace("dims: [ 8 ]", "dims: [ -1 ]").replace('name: "dense"', ""))
    write_model(tmp_path, "broken", 'backend: "openvino"\nmax_batch_size: 1\n'
                'input [{name: "X" data_type: TYPE_FP32 dims: [1]}]\noutput [{name: "Y" data_type: TYPE_FP32 dims: [1]}]\n',
                {"1/model.xml": "<net>not really</net>"})
    _dense_ir(tmp_path / "renamed" / "1" / "model.xml", batch=None)
    write_model(tmp_path, "renamed", DENSE_CONFIG.replace('name: "dense"', "").replace('"INPUT0"', '"nope"'))
    with InferenceEngine(tmp_path) as engine:
        index = {e["name"]: e for e in engine.repository_index()}
        assert "failed to read OpenVINO model" in index["broken"]["reason"]
        assert "input 'nope' is not an input of the OpenVINO model (its inputs: [['INPUT0']])" in index["renamed"]["reason"]
        with pytest.raises(InvalidArgumentError, match="OpenVINO infer failed"):
            engine.infer("dense", {"INPUT0": np.ones((1, 5), np.float32)})
        x = np.ones((1, 8), np.float32)
        np.testing.assert_allclose(engine.infer("dense", {"INPUT0": x}).as_numpy("OUTPUT0"), x @ W + 0.1, rtol=1e-5)


def test_gpu_instance_is_refused(tmp_path: Path) -> None:
    _dense_ir(tmp_path / "dense" / "1" / "model.xml")
    with pytest.raises(UnavailableError, match="openvino backend runs on the CPU device only"):
        OpenVINOBackend().create_instance(make_context(tmp_path / "dense", DENSE_CONFIG, kind="GPU"))
