"""PyTorch backend: TorchScript and torch.export models built here; Triton's naming rules, batches, dtypes, errors."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest

torch = pytest.importorskip("torch")

# building TorchScript test models: torch 2.13 deprecates the API but still ships it (Triton serves it)
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")

from tritonlite import InferenceEngine, InvalidArgumentError, UnavailableError  # noqa: E402
from tritonlite.backends import pytorch as pt_backend  # noqa: E402
from tritonlite.backends.pytorch import PyTorchBackend, detect_format  # noqa: E402

from framework_harness import execute_batch, make_context  # noqa: E402
from model_repos import write_model  # noqa: E402


class AddSub(torch.nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor):
        return a + b, a - b


class DictOut(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return {"doubled": x * 2, "total": x.sum(dim=1, keepdim=True)}


class DictIn(torch.nn.Module):
    def forward(self, inputs: Dict[str, torch.Tensor]) -> torch.Tensor:
        return inputs["X"] * inputs["Y"]


class AllTypes(torch.nn.Module):
    def forward(self, f16: torch.Tensor, f64: torch.Tensor, i8: torch.Tensor, i16: torch.Tensor, i32: torch.Tensor,
                i64: torch.Tensor, u8: torch.Tensor, flag: torch.Tensor, bf: torch.Tensor):
        return f16 * 2, f64 * 2, i8 + 1, i16 + 1, i32 + 1, i64 + 1, u8 + 1, ~flag, bf * 2


class Upper(torch.nn.Module):
    def forward(self, words: List[str]) -> List[str]:
        return [w.upper() for w in words]


class MatVec(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.arange(12, dtype=torch.float32).reshape(4, 3) / 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


class Pair(torch.nn.Module):
    def forward(self, x, y):
        return {"prod": x * y, "sum": (x + y).to(torch.float64)}


ADD_SUB_CONFIG = """
    name: "add_sub"
    platform: "pytorch_libtorch"
    max_batch_size: 8
    input [ {{ name: "INPUT__0" data_type: TYPE_FP32 dims: [ 4 ] }}, {{ name: "INPUT__1" data_type: TYPE_FP32 dims: [ 4 ] }} ]
    output [ {{ name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 4 ] }}, {{ name: "OUTPUT__1" data_type: TYPE_FP32 dims: [ 4 ] }} ]
    {extra}
"""


def _script(module: torch.nn.Module, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.script(module).save(str(path))
    return path


def _export(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1, max=64)
    ep = torch.export.export(Pair(), (torch.ones(2, 3), torch.ones(2, 3)), dynamic_shapes={"x": {0: batch}, "y": {0: batch}})
    torch.export.save(ep, str(path))
    return path


@pytest.fixture(scope="module")
def export_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(tmp_path_factory.mktemp("export") / "model.pt2")


def test_torchscript_index_names_batched_requests(tmp_path: Path) -> None:
    _script(AddSub(), tmp_path / "add_sub" / "1" / "model.pt")
    write_model(tmp_path, "add_sub", ADD_SUB_CONFIG.format(extra=""))
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.ones((3, 4), np.float32)
    with InferenceEngine(tmp_path) as engine:
        res = engine.infer("add_sub", {"INPUT__0": a, "INPUT__1": b})
        np.testing.assert_array_equal(res.as_numpy("OUTPUT__0"), a + b)
        np.testing.assert_array_equal(res.as_numpy("OUTPUT__1"), a - b)
        only = engine.infer("add_sub", {"INPUT__0": a[:1], "INPUT__1": b[:1]}, outputs=["OUTPUT__1"])
        assert list(only.outputs) == ["OUTPUT__1"]
    # several requests in one execute: concatenated along the batch, split back per request
    ctx = make_context(tmp_path / "add_sub", ADD_SUB_CONFIG.format(extra=""))
    inst = PyTorchBackend().create_instance(ctx)
    outs = execute_batch(inst, ctx.config, [{"INPUT__0": a, "INPUT__1": b}, {"INPUT__0": a[:1] * 5, "INPUT__1": b[:1]}])
    assert outs[0]["OUTPUT__0"].shape == (3, 4) and outs[1]["OUTPUT__0"].shape == (1, 4)
    np.testing.assert_array_equal(outs[1]["OUTPUT__1"], a[:1] * 5 - 1)
    inst.close()


def test_forward_argument_names_and_dict_outputs(tmp_path: Path) -> None:
    model_dir = tmp_path / "traced"
    model_dir.joinpath("1").mkdir(parents=True)
    traced = torch.jit.trace(AddSub(), (torch.ones(1, 4), torch.ones(1, 4)))
    traced.save(str(model_dir / "1" / "model.pt"))
    write_model(tmp_path, "traced", """
        backend: "pytorch"
        max_batch_size: 4
        input [ { name: "b" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "a" data_type: TYPE_FP32 dims: [ 4 ] } ]
        output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "OUTPUT__1" data_type: TYPE_FP32 dims: [ 4 ] } ]
    """)
    _script(DictOut(), tmp_path / "dict_out" / "1" / "model.pt")
    write_model(tmp_path, "dict_out", """
        platform: "pytorch_libtorch"
        max_batch_size: 4
        input [ { name: "INPUT__0" data_type: TYPE_FP32 dims: [ 3 ] } ]
        output [ { name: "total" data_type: TYPE_FP32 dims: [ 1 ] }, { name: "doubled" data_type: TYPE_FP32 dims: [ 3 ] } ]
    """)
    _script(DictIn(), tmp_path / "dict_in" / "1" / "model.pt")
    write_model(tmp_path, "dict_in", """
        platform: "pytorch_libtorch"
        max_batch_size: 4
        input [ { name: "X" data_type: TYPE_FP32 dims: [ 2 ] }, { name: "Y" data_type: TYPE_FP32 dims: [ 2 ] } ]
        output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 2 ] } ]
    """)
    a, b = np.full((2, 4), 5, np.float32), np.ones((2, 4), np.float32)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with InferenceEngine(tmp_path) as engine:
        res = engine.infer("traced", {"a": a, "b": b})  # bound by forward() names, not config order
        np.testing.assert_array_equal(res.as_numpy("OUTPUT__1"), a - b)
        res = engine.infer("dict_out", {"INPUT__0": x})
        np.testing.assert_array_equal(res.as_numpy("doubled"), x * 2)
        np.testing.assert_array_equal(res.as_numpy("total"), x.sum(axis=1, keepdims=True))
        xy = np.array([[1, 2]], np.float32)
        np.testing.assert_array_equal(engine.infer("dict_in", {"X": xy, "Y": xy}).as_numpy("OUTPUT__0"), xy * xy)


def test_dtype_coverage(tmp_path: Path) -> None:
    _script(AllTypes(), tmp_path / "types" / "1" / "model.pt")
    names = [("f16", "FP16"), ("f64", "FP64"), ("i8", "INT8"), ("i16", "INT16"), ("i32", "INT32"), ("i64", "INT64"),
             ("u8", "UINT8"), ("flag", "BOOL"), ("bf", "BF16")]
    inputs = ", ".join(f'{{ name: "{n}" data_type: TYPE_{t} dims: [ 2 ] }}' for n, t in names)
    outputs = ", ".join(f'{{ name: "OUTPUT__{i}" data_type: TYPE_{t} dims: [ 2 ] }}' for i, (_, t) in enumerate(names))
    write_model(tmp_path, "types", f'platform: "pytorch_libtorch"\nmax_batch_size: 2\ninput [ {inputs} ]\noutput [ {outputs} ]\n')
    bf_bits = torch.tensor([[1.5, -2.0]], dtype=torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    feeds = {
        "f16": np.array([[1.5, -2]], np.float16), "f64": np.array([[1.25, 3]], np.float64),
        "i8": np.array([[-3, 4]], np.int8), "i16": np.array([[300, -1]], np.int16), "i32": np.array([[7, 8]], np.int32),
        "i64": np.array([[2**40, 1]], np.int64), "u8": np.array([[0, 254]], np.uint8), "flag": np.array([[True, False]]),
        "bf": bf_bits,
    }
    with InferenceEngine(tmp_path) as engine:
        res = engine.infer("types", feeds)
    for i, (n, _) in enumerate(names[:-2]):
        out = res.as_numpy(f"OUTPUT__{i}")
        assert out.dtype == feeds[n].dtype
        expected = feeds[n] * 2 if n.startswith("f") else feeds[n] + 1
        np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(res.as_numpy("OUTPUT__7"), [[False, True]])
    bf_out = torch.from_numpy(res.as_numpy("OUTPUT__8").view(np.int16)).view(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(bf_out, [[3.0, -4.0]])


def test_string_lists(tmp_path: Path) -> None:
    _script(Upper(), tmp_path / "upper" / "1" / "model.pt")
    write_model(tmp_path, "upper", """
        platform: "pytorch_libtorch"
        input [ { name: "INPUT__0" data_type: TYPE_STRING dims: [ -1 ] } ]
        output [ { name: "OUTPUT__0" data_type: TYPE_STRING dims: [ -1 ] } ]
    """)
    with InferenceEngine(tmp_path) as engine:
        out = engine.infer("upper", {"INPUT__0": np.array([b"ab", "cd"], dtype=object)}).as_numpy("OUTPUT__0")
    assert out.dtype == object and list(out) == [b"AB", b"CD"]


def test_export_program_auto_complete_and_model_pt2_detection(tmp_path: Path, export_file: Path) -> None:
    (tmp_path / "pair" / "1").mkdir(parents=True)
    (tmp_path / "pair" / "1" / "model.pt2").write_bytes(export_file.read_bytes())  # no config.pbtxt at all
    with InferenceEngine(tmp_path) as engine:
        cfg = engine.model_config("pair")
        assert cfg["backend"] == "pytorch" and cfg["default_model_filename"] == "model.pt2"
        assert cfg["max_batch_size"] == 4 and "dynamic_batching" in cfg
        assert [(i["name"], i["data_type"], i["dims"]) for i in cfg["input"]] == [("x", "TYPE_FP32", [3]), ("y", "TYPE_FP32", [3])]
        assert [(o["name"], o["data_type"], o["dims"]) for o in cfg["output"]] == [("prod", "TYPE_FP32", [3]), ("sum", "TYPE_FP64", [3])]
        for n in (1, 3):
            x = np.random.default_rng(n).random((n, 3), dtype=np.float32)
            res = engine.infer("pair", {"x": x, "y": x + 1})
            np.testing.assert_allclose(res.as_numpy("prod"), x * (x + 1), rtol=1e-6)
            assert res.as_numpy("sum").dtype == np.float64
    # the same program with Triton's index names, positional
    ctx = make_context(tmp_path / "pair", """
        name: "pair" platform: "torch_aoti" max_batch_size: 8
        input [ { name: "INPUT__0" data_type: TYPE_FP32 dims: [ 3 ] }, { name: "INPUT__1" data_type: TYPE_FP32 dims: [ 3 ] } ]
        output [ { name: "sum" data_type: TYPE_FP64 dims: [ 3 ] } ]
    """)
    inst = PyTorchBackend().create_instance(ctx)
    assert inst.kind == "export"
    outs = execute_batch(inst, ctx.config, [{"INPUT__0": np.ones((2, 3), np.float32), "INPUT__1": np.ones((2, 3), np.float32)},
                                            {"INPUT__0": np.zeros((1, 3), np.float32), "INPUT__1": np.ones((1, 3), np.float32)}])
    np.testing.assert_array_equal(outs[0]["sum"], np.full((2, 3), 2.0))
    np.testing.assert_array_equal(outs[1]["sum"], np.ones((1, 3)))


def test_aoti_package_is_detected_and_loaded_with_its_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "m" / "1" / "model.pt2"
    pkg.parent.mkdir(parents=True)
    with zipfile.ZipFile(pkg, "w") as zf:  # the layout aoti_compile_and_package writes
        zf.writestr("model/archive_format", "pt2")
        zf.writestr("model/data/aotinductor/model/abc.wrapper.so", b"\0")
    assert detect_format(pkg) == "aoti"
    calls = []

    class Runner:
        def get_metadata(self) -> dict[str, str]:
            return {"AOTI_DEVICE_KEY": "cpu"}

        def __call__(self, *args):
            return {"out": args[0] + args[1]}

    def fake_loader(path: str, device_index: int = -1) -> Runner:
        calls.append((path, device_index))
        return Runner()

    import torch._inductor

    monkeypatch.setattr(torch._inductor, "aoti_load_package", fake_loader)
    ctx = make_context(tmp_path / "m", """
        name: "m" platform: "torch_aoti" max_batch_size: 4
        input [ { name: "A__0" data_type: TYPE_FP32 dims: [ 2 ] }, { name: "B__1" data_type: TYPE_FP32 dims: [ 2 ] } ]
        output [ { name: "out" data_type: TYPE_FP32 dims: [ 2 ] } ]
    """)
    inst = PyTorchBackend().create_instance(ctx)
    assert calls == [(str(pkg), -1)]
    out = execute_batch(inst, ctx.config, [{"A__0": np.ones((1, 2), np.float32), "B__1": np.full((1, 2), 2, np.float32)}])
    np.testing.assert_array_equal(out[0]["out"], [[3, 3]])


def test_bad_files_bad_names_and_bad_input_leave_the_engine_serving(tmp_path: Path) -> None:
    model_dir = tmp_path / "pickle" / "1"
    model_dir.mkdir(parents=True)
    torch.save(MatVec(), str(model_dir / "model.pt"))
    write_model(tmp_path, "pickle", ADD_SUB_CONFIG.format(extra="").replace('name: "add_sub"', ""))
    _script(AddSub(), tmp_path / "badnames" / "1" / "model.pt")
    write_model(tmp_path, "badnames", ADD_SUB_CONFIG.format(extra="").replace('name: "add_sub"', "").replace("INPUT__1", "other"))
    _script(MatVec(), tmp_path / "matvec" / "1" / "model.pt")
    write_model(tmp_path, "matvec", """
        platform: "pytorch_libtorch"
        max_batch_size: 4
        input [ { name: "INPUT__0" data_type: TYPE_FP32 dims: [ -1 ] } ]
        output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 3 ] } ]
    """)
    with InferenceEngine(tmp_path) as engine:
        index = {e["name"]: e for e in engine.repository_index()}
        assert index["pickle"]["state"] == "UNAVAILABLE" and "torch.save() pickle" in index["pickle"]["reason"]
        assert "match neither the forward() arguments ['a', 'b']" in index["badnames"]["reason"]
        x = np.ones((2, 4), np.float32)
        with pytest.raises(InvalidArgumentError, match="PyTorch execute failure"):
            engine.infer("matvec", {"INPUT__0": np.ones((2, 5), np.float32)})  # passes validation (-1), fails in matmul
        with pytest.raises(InvalidArgumentError, match="data-type is 'INT32', but model 'matvec' expects 'FP32'"):
            engine.infer("matvec", {"INPUT__0": x.astype(np.int32)})
        np.testing.assert_allclose(engine.infer("matvec", {"INPUT__0": x}).as_numpy("OUTPUT__0"), x @ MatVec().w.detach().numpy(), rtol=1e-6)


def test_gpu_instance_refused_without_cuda(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    _script(AddSub(), tmp_path / "add_sub" / "1" / "model.pt")
    ctx = make_context(tmp_path / "add_sub", ADD_SUB_CONFIG.format(extra=""), kind="GPU")
    with pytest.raises(UnavailableError, match="KIND_GPU but torch .* sees no CUDA device"):
        PyTorchBackend().create_instance(ctx)


@pytest.mark.gpu
def test_gpu_instance_runs_on_the_instance_device(tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA build of torch and a GPU")
    _script(MatVec(), tmp_path / "mv" / "1" / "model.pt")
    config = """
        name: "mv" platform: "pytorch_libtorch" max_batch_size: 4
        input [ { name: "INPUT__0" data_type: TYPE_FP32 dims: [ 4 ] } ]
        output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 3 ] } ]
        parameters { key: "ENABLE_CACHE_CLEANING" value { string_value: "true" } }
    """
    ctx = make_context(tmp_path / "mv", config, kind="GPU", device_id=0)
    inst = PyTorchBackend().create_instance(ctx)
    assert next(inst.fn.parameters()).device.type == "cuda"
    x = np.random.default_rng(0).random((3, 4), dtype=np.float32)
    out = execute_batch(inst, ctx.config, [{"INPUT__0": x[:2]}, {"INPUT__0": x[2:]}])
    expected = x @ MatVec().w.detach().numpy()
    np.testing.assert_allclose(np.concatenate([o["OUTPUT__0"] for o in out]), expected, rtol=1e-5)
    inst.close()
    # through the engine: a KIND_GPU group on a machine whose engine sees the GPU
    write_model(tmp_path, "mv", config.replace('name: "mv"', "") + "instance_group [ { kind: KIND_GPU count: 2 } ]\n")
    with InferenceEngine(tmp_path) as engine:
        if not engine.is_model_ready("mv"):
            pytest.skip(f"the engine sees no GPU device node: {engine.repository_index()}")
        assert engine.model_config("mv")["instance_group"][0]["kind"] == "KIND_GPU"
        np.testing.assert_allclose(engine.infer("mv", {"INPUT__0": x}).as_numpy("OUTPUT__0"), expected, rtol=1e-5)


def test_parameters_weight_sharing_and_process_global_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    _script(MatVec(), tmp_path / "mv" / "1" / "model.pt")
    config = """
        name: "mv" platform: "pytorch_libtorch" max_batch_size: 4
        input [ { name: "INPUT__0" data_type: TYPE_FP32 dims: [ 4 ] } ]
        output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 3 ] } ]
        parameters { key: "ENABLE_WEIGHT_SHARING" value { string_value: "true" } }
        parameters { key: "INFERENCE_MODE" value { string_value: "false" } }
        parameters { key: "DISABLE_OPTIMIZED_EXECUTION" value { string_value: "true" } }
    """
    backend = PyTorchBackend()
    first = backend.create_instance(make_context(tmp_path / "mv", config, instance="mv_0"))
    second = backend.create_instance(make_context(tmp_path / "mv", config, instance="mv_1"))
    assert first.fn is second.fn and not first.inference_mode and not first.optimized
    out = execute_batch(second, second_cfg := make_context(tmp_path / "mv", config).config, [{"INPUT__0": np.ones((1, 4), np.float32)}])
    assert out[0]["OUTPUT__0"].shape == (1, 3) and second_cfg.max_batch_size == 4
    first.close()
    second.close()
    with pytest.raises(InvalidArgumentError, match="parameter 'INFERENCE_MODE' of model 'mv' must be a boolean"):
        backend.create_instance(make_context(tmp_path / "mv", config.replace('"false"', '"maybe"')))

    # thread counts: process-global in torch, so the first model wins (recorded, never re-applied)
    applied: list[tuple[str, int]] = []

    class FakeTorch:
        @staticmethod
        def set_num_threads(n: int) -> None:
            applied.append(("intra", n))

        @staticmethod
        def set_num_interop_threads(n: int) -> None:
            raise RuntimeError("Error: cannot set number of interop threads after parallel work has started")

    monkeypatch.setattr(pt_backend, "_THREADS_SET", {})
    with caplog.at_level(logging.WARNING, logger="tritonlite.backends.pytorch"):
        pt_backend._apply_thread_settings(FakeTorch, {"INTRA_OP_THREAD_COUNT": "2", "INTER_OP_THREAD_COUNT": "1"}, "first")
        pt_backend._apply_thread_settings(FakeTorch, {"INTRA_OP_THREAD_COUNT": "3"}, "second")
    assert applied == [("intra", 2)]
    assert "cannot apply INTER_OP_THREAD_COUNT=1" in caplog.text
    assert "torch thread counts are process-global and model 'first' already set 2" in caplog.text
    with pytest.raises(InvalidArgumentError, match="'INTRA_OP_THREAD_COUNT' of model 'x' must be an integer"):
        pt_backend._apply_thread_settings(FakeTorch, {"INTRA_OP_THREAD_COUNT": "many"}, "x")
